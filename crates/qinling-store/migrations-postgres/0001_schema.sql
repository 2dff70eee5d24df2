-- The whole schema for PostgreSQL, as the SQLite migrations 0001-0011 leave it. The two
-- backends keep the same tables, columns and meanings; the types are PostgreSQL's own:
-- BIGINT for every integer (the store reads them as i64), BOOLEAN for flags. Timestamps
-- stay TEXT 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (UTC), as on SQLite: they sort as time does and
-- one conversion (`ts.rs`) serves both. Later migrations are numbered per backend.

CREATE TABLE runtimes (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT,
    image       TEXT NOT NULL,
    description TEXT,
    is_public   BOOLEAN NOT NULL,
    trusted     BOOLEAN NOT NULL,
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
    package_size   BIGINT NOT NULL,
    entry          TEXT,
    cpu            BIGINT NOT NULL,
    memory_size    BIGINT NOT NULL,
    timeout        BIGINT NOT NULL,
    count          BIGINT NOT NULL DEFAULT 0,
    latest_version BIGINT NOT NULL DEFAULT 0,
    project_id     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT,
    network        BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX functions_project ON functions (project_id, created_at);
CREATE INDEX functions_runtime ON functions (runtime_id);
CREATE INDEX functions_package ON functions (package_sha256);

CREATE TABLE executions (
    id               TEXT PRIMARY KEY NOT NULL,
    function_id      TEXT NOT NULL,
    function_version BIGINT NOT NULL DEFAULT 0,
    function_alias   TEXT,
    description      TEXT,
    status           TEXT NOT NULL,
    sync             BOOLEAN NOT NULL,
    input            TEXT,
    result           TEXT,
    logs             TEXT,
    cpu_ms           BIGINT,
    memory_peak_kb   BIGINT,
    -- 'queued' (accepted, not yet handed to a worker) or 'started'; NULL once finished.
    queue_state      TEXT,
    project_id       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT,
    request_id       TEXT,
    duration_ms      BIGINT,
    memory_size      BIGINT
);
CREATE INDEX executions_project ON executions (project_id, created_at);
CREATE INDEX executions_function ON executions (function_id);
CREATE INDEX executions_queue ON executions (queue_state) WHERE queue_state IS NOT NULL;
CREATE INDEX executions_created ON executions (created_at);

CREATE TABLE function_versions (
    id             TEXT PRIMARY KEY NOT NULL,
    function_id    TEXT NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    version_number BIGINT NOT NULL,
    description    TEXT,
    md5sum         TEXT NOT NULL,
    package_sha256 TEXT NOT NULL,
    package_size   BIGINT NOT NULL,
    entry          TEXT,
    cpu            BIGINT NOT NULL,
    memory_size    BIGINT NOT NULL,
    timeout        BIGINT NOT NULL,
    count          BIGINT NOT NULL DEFAULT 0,
    project_id     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT,
    network        BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (function_id, version_number)
);
CREATE INDEX function_versions_package ON function_versions (package_sha256);

CREATE TABLE function_aliases (
    id                        TEXT PRIMARY KEY NOT NULL,
    name                      TEXT NOT NULL,
    description               TEXT,
    function_id               TEXT NOT NULL,
    function_version          BIGINT NOT NULL DEFAULT 0,
    additional_version        BIGINT,
    additional_version_weight BIGINT,
    project_id                TEXT NOT NULL,
    created_at                TEXT NOT NULL,
    updated_at                TEXT,
    UNIQUE (project_id, name),
    UNIQUE (project_id, function_id, function_version)
);

CREATE TABLE jobs (
    id                   TEXT PRIMARY KEY NOT NULL,
    name                 TEXT,
    function_id          TEXT,
    function_alias       TEXT,
    function_version     BIGINT NOT NULL DEFAULT 0,
    function_input       TEXT,
    status               TEXT NOT NULL,
    pattern              TEXT,
    count                BIGINT,
    first_execution_time TEXT NOT NULL,
    next_execution_time  TEXT NOT NULL,
    project_id           TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT
);
CREATE INDEX jobs_due ON jobs (status, next_execution_time);
CREATE INDEX jobs_project ON jobs (project_id, created_at);

CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY NOT NULL,
    function_id      TEXT,
    function_alias   TEXT,
    function_version BIGINT,
    description      TEXT,
    project_id       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT
);
CREATE INDEX webhooks_project ON webhooks (project_id, created_at);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    project_id   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    roles        TEXT NOT NULL,
    description  TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE quotas (
    project_id  TEXT NOT NULL,
    resource    TEXT NOT NULL,
    hard_limit  BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);
