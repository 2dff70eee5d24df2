-- Function packages shared by every server of the database, content-addressed (ARCHITECTURE.md,
-- "Packages on PostgreSQL"). Each server keeps a local cache on disk; this is the copy every
-- server can reach. Stored out of line by TOAST, uncompressed (packages are zips).
CREATE TABLE packages (
    sha256     TEXT PRIMARY KEY NOT NULL,
    size       BIGINT NOT NULL,
    data       BYTEA NOT NULL,
    created_at TEXT NOT NULL
);
ALTER TABLE packages ALTER COLUMN data SET STORAGE EXTERNAL;
