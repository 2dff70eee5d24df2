-- Executions started per project and second, for the executions_per_minute quota shared by
-- every server of the database: a sliding minute is the sum of the last 60 rows, counted
-- and bumped under the project's advisory lock in the transaction that inserts the execution.
CREATE TABLE execution_rate (
    project_id TEXT NOT NULL,
    second     BIGINT NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (project_id, second)
);
