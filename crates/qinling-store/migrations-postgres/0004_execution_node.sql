-- The server (node) an execution was started on, so that a restarting server fails only the
-- executions it was running itself, not those of other servers sharing the database.
ALTER TABLE executions ADD COLUMN node TEXT;
