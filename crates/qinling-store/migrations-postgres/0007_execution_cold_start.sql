-- Milliseconds the execution waited for a worker to be started and bound (or a module to be
-- instantiated the first time); NULL: it found one warm (or nothing ran, or an older row).
ALTER TABLE executions ADD COLUMN cold_start_ms BIGINT;
