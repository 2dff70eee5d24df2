-- Usage records for billing and the request id on executions (issue 8). Each finished
-- execution keeps what it is billed on: its duration and the memory limit it ran with; usage
-- is aggregated from these columns (`usage.rs`), GiB-seconds = memory_size / 2^30 × duration.

-- The X-Openstack-Request-Id of the request that created the execution (the POST of a sync
-- or async execution, a webhook's invoke), or `req-job-<job id>` for a job's executions.
ALTER TABLE executions ADD COLUMN request_id TEXT;
-- Milliseconds the function ran, as its runtime reported (the `duration` of `result`).
ALTER TABLE executions ADD COLUMN duration_ms INTEGER;
-- Bytes: the `memory_size` of the definition the execution ran (the function's or the
-- version's at run time); NULL when nothing ran (the function was gone).
ALTER TABLE executions ADD COLUMN memory_size INTEGER;

-- Rows finished before this migration: the duration from their `result`, the memory limit
-- from the definition as it is now (a version's snapshot is exact; a function's may have
-- changed since). Executions of deleted functions keep NULL and count 0 GiB-seconds.
UPDATE executions
SET duration_ms = CAST(ROUND(json_extract(result, '$.duration') * 1000) AS INTEGER)
WHERE status <> 'running' AND json_valid(result)
  AND json_type(result, '$.duration') IN ('integer', 'real');
UPDATE executions
SET memory_size = CASE
    WHEN function_version = 0 THEN (SELECT f.memory_size FROM functions f
                                    WHERE f.id = executions.function_id)
    ELSE (SELECT fv.memory_size FROM function_versions fv
          WHERE fv.function_id = executions.function_id
            AND fv.version_number = executions.function_version)
END
WHERE status <> 'running';

-- Time-range queries over every project (an admin's `all_projects`); a project's use the
-- existing (project_id, created_at) index.
CREATE INDEX executions_created ON executions (created_at);
