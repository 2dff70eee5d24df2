-- Runtimes, functions and executions: the core resources of the v1 API.
-- Timestamps are TEXT 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (UTC), which sorts as time does.

CREATE TABLE runtimes (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT,
    image       TEXT NOT NULL,
    description TEXT,
    is_public   INTEGER NOT NULL,
    trusted     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT
);

CREATE TABLE functions (
    id             TEXT PRIMARY KEY NOT NULL,
    name           TEXT,
    description    TEXT,
    runtime_id     TEXT REFERENCES runtimes(id),
    code_source    TEXT NOT NULL,
    md5sum         TEXT NOT NULL,
    package_sha256 TEXT NOT NULL,
    package_size   INTEGER NOT NULL,
    entry          TEXT,
    cpu            INTEGER NOT NULL,
    memory_size    INTEGER NOT NULL,
    timeout        INTEGER NOT NULL,
    count          INTEGER NOT NULL DEFAULT 0,
    latest_version INTEGER NOT NULL DEFAULT 0,
    project_id     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT
);
CREATE INDEX functions_project ON functions (project_id, created_at);
CREATE INDEX functions_runtime ON functions (runtime_id);
CREATE INDEX functions_package ON functions (package_sha256);

CREATE TABLE executions (
    id               TEXT PRIMARY KEY NOT NULL,
    function_id      TEXT NOT NULL,
    function_version INTEGER NOT NULL DEFAULT 0,
    function_alias   TEXT,
    description      TEXT,
    status           TEXT NOT NULL,
    sync             INTEGER NOT NULL,
    input            TEXT,
    result           TEXT,
    logs             TEXT,
    cpu_ms           INTEGER,
    memory_peak_kb   INTEGER,
    -- Durable dispatch state of an unfinished execution: 'queued' (accepted, not yet handed
    -- to a worker) or 'started' (handed to a worker); NULL once finished.
    queue_state      TEXT,
    project_id       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT
);
CREATE INDEX executions_project ON executions (project_id, created_at);
CREATE INDEX executions_function ON executions (function_id);
CREATE INDEX executions_queue ON executions (queue_state) WHERE queue_state IS NOT NULL;
