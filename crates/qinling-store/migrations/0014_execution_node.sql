-- The server (node) an execution was started on, so that a restarting server fails only the
-- executions it was running itself, not those of other servers sharing the database. NULL:
-- started before this column, or by a server without a node id (treated as any server's).
ALTER TABLE executions ADD COLUMN node TEXT;
