-- Authentication and quotas (issue 7): API tokens for `auth.mode = "token"` and per-project
-- quota overrides. Times are INTEGER Unix seconds (UTC).

-- An API token. Only the SHA-256 of the secret is stored; the secret is shown once, when
-- `qinling token create` makes it.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    project_id   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    -- Comma-separated role names.
    roles        TEXT NOT NULL,
    description  TEXT,
    created_at   INTEGER NOT NULL,
    -- NULL: never expires.
    expires_at   INTEGER,
    -- NULL: not revoked.
    revoked_at   INTEGER
);

-- A project's quota that differs from the configured default; -1 is unlimited.
CREATE TABLE quotas (
    project_id  TEXT NOT NULL,
    resource    TEXT NOT NULL,
    hard_limit  INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);
