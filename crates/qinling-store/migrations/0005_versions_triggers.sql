-- Function versions, aliases, jobs and webhooks (issue 5). Timestamps as in 0001: TEXT
-- 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (UTC), which sorts as time does.

-- A version is a full snapshot of its function's definition: package, entry and limits.
CREATE TABLE function_versions (
    id             TEXT PRIMARY KEY NOT NULL,
    function_id    TEXT NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    version_number INTEGER NOT NULL,
    description    TEXT,
    md5sum         TEXT NOT NULL,
    package_sha256 TEXT NOT NULL,
    package_size   INTEGER NOT NULL,
    entry          TEXT,
    cpu            INTEGER NOT NULL,
    memory_size    INTEGER NOT NULL,
    timeout        INTEGER NOT NULL,
    count          INTEGER NOT NULL DEFAULT 0,
    project_id     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT,
    UNIQUE (function_id, version_number)
);
CREATE INDEX function_versions_package ON function_versions (package_sha256);

-- Aliases are addressed by name within a project; as upstream, at most one alias names a
-- given (function, version). `additional_version` gets `additional_version_weight` percent
-- of the executions (a weighted alias, beyond upstream).
CREATE TABLE function_aliases (
    id                        TEXT PRIMARY KEY NOT NULL,
    name                      TEXT NOT NULL,
    description               TEXT,
    function_id               TEXT NOT NULL,
    function_version          INTEGER NOT NULL DEFAULT 0,
    additional_version        INTEGER,
    additional_version_weight INTEGER,
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
    function_version     INTEGER NOT NULL DEFAULT 0,
    function_input       TEXT,
    status               TEXT NOT NULL,
    pattern              TEXT,
    count                INTEGER,
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
    function_version INTEGER,
    description      TEXT,
    project_id       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT
);
CREATE INDEX webhooks_project ON webhooks (project_id, created_at);
