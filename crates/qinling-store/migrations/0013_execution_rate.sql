-- Executions started per project and second, for the executions_per_minute quota when
-- several servers share the database (a sliding minute is the sum of the last 60 rows).
-- A SQLite server keeps that window in memory and leaves this table empty.
CREATE TABLE execution_rate (
    project_id TEXT NOT NULL,
    second     INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (project_id, second)
);
