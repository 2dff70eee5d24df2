-- Function packages kept in the database, content-addressed, for servers that share one
-- database and no file system (PostgreSQL). A SQLite server keeps its packages on local disk
-- and leaves this table empty; it exists so that both backends have the same schema.
CREATE TABLE packages (
    sha256     TEXT PRIMARY KEY NOT NULL,
    size       INTEGER NOT NULL,
    data       BLOB NOT NULL,
    created_at TEXT NOT NULL
);
