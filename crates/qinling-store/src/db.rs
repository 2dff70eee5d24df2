//! The two backends behind one [`Store`](crate::Store): SQLite (embedded, the default) and
//! PostgreSQL (shared by several servers). Each store operation is written once, in SQL both
//! understand (`$N` placeholders, `IS NOT DISTINCT FROM`, `ON CONFLICT … DO UPDATE`,
//! `RETURNING`), and compiled once per backend by [`on_db!`]: the same tokens, typed against
//! each driver, so neither path pays for an abstraction layer (no `sqlx::Any`). Where the
//! databases differ (row locks, case-insensitive `LIKE`, the write transaction) the
//! [`dialect`] of the arm says how.
//!
//! Also here: which driver errors mean "the database is unreachable" (a 503 at the edge, not a
//! 500), and the migrations of each backend with the refusal of a schema newer than the binary.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Postgres, Row, Sqlite, Transaction};

use crate::{Result, StoreError};

/// A pool of one backend.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$c` bound to the backend's pool (or connection, for [`on_conn!`]) and
/// `$d` to its [`dialect`]: the body is compiled once for each backend.
macro_rules! on_db {
    ($db:expr, |$c:ident, $d:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($c) => {
                #[allow(unused_imports)]
                use $crate::db::{BeginWrite as _, dialect::sqlite as $d};
                $body
            }
            $crate::db::Db::Postgres($c) => {
                #[allow(unused_imports)]
                use $crate::db::{BeginWrite as _, dialect::postgres as $d};
                $body
            }
        }
    };
    ($db:expr, |$c:ident| $body:expr) => {
        $crate::db::on_db!($db, |$c, _dialect| $body)
    };
}
pub(crate) use on_db;

/// The connection a write operation of the execution writer runs on.
pub(crate) enum DbConn<'c> {
    Sqlite(&'c mut sqlx::SqliteConnection),
    Postgres(&'c mut sqlx::PgConnection),
}

/// As [`on_db!`], on a [`DbConn`]: `$c` is the backend's `&mut Connection`.
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_conn;

/// What differs between the two SQL dialects, by name, for use inside [`on_db!`].
pub(crate) mod dialect {
    pub(crate) mod sqlite {
        /// Appended to a `SELECT` of a read-modify-write transaction. SQLite has no row
        /// locks: the write transaction already holds the database's write lock.
        pub(crate) const FOR_UPDATE: &str = "";
        /// Case-insensitive substring match (SQLite's `LIKE` is, for ASCII).
        pub(crate) const ILIKE: &str = "LIKE";
        /// Serialises a project's admissions until the transaction ends: nothing to do, the
        /// write transaction holds SQLite's one write lock.
        pub(crate) const PROJECT_LOCK: Option<&str> = None;
        pub(crate) fn conn(c: &mut sqlx::SqliteConnection) -> super::super::DbConn<'_> {
            super::super::DbConn::Sqlite(c)
        }
    }
    pub(crate) mod postgres {
        pub(crate) const FOR_UPDATE: &str = " FOR UPDATE";
        pub(crate) const ILIKE: &str = "ILIKE";
        pub(crate) const PROJECT_LOCK: Option<&str> =
            Some("SELECT pg_advisory_xact_lock(hashtextextended('qinling-project:' || $1, 0))");
        pub(crate) fn conn(c: &mut sqlx::PgConnection) -> super::super::DbConn<'_> {
            super::super::DbConn::Postgres(c)
        }
    }
}

/// A column type both drivers decode.
pub(crate) trait Col:
    Sized
    + for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
{
}
impl<T> Col for T where
    T: Sized
        + for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
{
}

/// A row of either backend, read by column name: lets one `from_row` serve both.
pub(crate) trait Get {
    fn get<T: Col>(&self, column: &str) -> Result<T>;
}

impl Get for SqliteRow {
    fn get<T: Col>(&self, column: &str) -> Result<T> {
        Ok(self.try_get(column)?)
    }
}

impl Get for PgRow {
    fn get<T: Col>(&self, column: &str) -> Result<T> {
        Ok(self.try_get(column)?)
    }
}

/// A transaction that will write, begun the way its backend needs.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Self::Db>>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = Sqlite;
    /// `BEGIN IMMEDIATE` takes the write lock up front, waiting through the busy timeout if
    /// another connection (the execution writer, say) holds it. A deferred `BEGIN` that reads
    /// first would instead fail at once with `SQLITE_BUSY` when another connection commits
    /// between its read and its write.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl BeginWrite for PgPool {
    type Db = Postgres;
    /// Read committed; read-modify-write transactions lock their row
    /// ([`dialect::postgres::FOR_UPDATE`]).
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.begin().await?)
    }
}

/// How the server reaches PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Connections in this server's pool.
    pub max_connections: u32,
    /// A statement running longer is cancelled (and its request answered 503).
    pub statement_timeout: Duration,
    /// How long a request waits for a connection (or for the database to answer a connect)
    /// before it is answered 503.
    pub acquire_timeout: Duration,
}

impl PgConfig {
    pub fn new(url: impl Into<String>) -> PgConfig {
        PgConfig {
            url: url.into(),
            max_connections: 16,
            statement_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) async fn connect_postgres(config: &PgConfig) -> Result<PgPool> {
    let opts: PgConnectOptions = config
        .url
        .parse()
        .map_err(|e: sqlx::Error| StoreError::Config(format!("invalid database URL: {e}")))?;
    let timeout_ms = config.statement_timeout.as_millis().max(1).to_string();
    let opts = opts
        .application_name("qinling")
        .options([("statement_timeout", timeout_ms.as_str())]);
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections.max(2))
        .acquire_timeout(config.acquire_timeout)
        .connect_with(opts)
        .await?)
}

pub(crate) static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
pub(crate) static POSTGRES_MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("./migrations-postgres");

/// Applies the backend's migrations. On PostgreSQL the migrator holds an advisory lock, so
/// servers starting together migrate once. A database migrated by a newer binary (a
/// migration this one does not know) is refused.
pub(crate) async fn migrate(db: &Db) -> Result<()> {
    let (result, known) = match db {
        Db::Sqlite(p) => (SQLITE_MIGRATOR.run(p).await, &SQLITE_MIGRATOR),
        Db::Postgres(p) => (POSTGRES_MIGRATOR.run(p).await, &POSTGRES_MIGRATOR),
    };
    match result {
        Ok(()) => Ok(()),
        Err(sqlx::migrate::MigrateError::VersionMissing(v)) => {
            let newest = known.iter().map(|m| m.version).max().unwrap_or(0);
            Err(StoreError::Config(format!(
                "the database's schema is newer than this qinling: it has migration {v}, \
                 this binary knows migrations up to {newest}. Run the qinling release that \
                 migrated it (or a newer one); see README, \"Backup and upgrade\""
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `e` means the database cannot be reached now (down, restarting, refusing
/// connections, too slow), as opposed to a fault of the statement itself.
pub(crate) fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            // 08: connection exception; 57P01-57P05: admin shutdown, crash shutdown, cannot
            // connect now, …; 57014: statement timeout; 53300: too many connections.
            c.starts_with("08") || c.starts_with("57P") || c == "57014" || c == "53300"
        }),
        // SQLite's "database is locked" after the busy timeout is also a "try again".
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::{PgConfig, Store, StoreError};

    /// Servers starting together on one new database: each starts, the schema is made once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers_starting_together_migrate_once() {
        let Some(admin) = crate::testing::postgres_admin() else {
            return;
        };
        let url = crate::testing::scratch_database(&admin).await.unwrap();
        let starts: Vec<_> = (0..4)
            .map(|_| {
                let config = PgConfig::new(url.clone());
                tokio::spawn(async move { Store::open_postgres(&config).await })
            })
            .collect();
        for s in starts {
            s.await.unwrap().unwrap();
        }
        let store = Store::open_postgres(&PgConfig::new(url)).await.unwrap();
        let super::Db::Postgres(pool) = &store.db else {
            unreachable!()
        };
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(applied as usize, super::POSTGRES_MIGRATOR.iter().count());
    }

    /// Rows from before execution modes get the behaviour they had: `reuse` for functions
    /// (and their versions) of a runtime of kind nodejs, `fork` for every other, on both
    /// backends.
    #[tokio::test]
    async fn old_rows_get_the_execution_mode_of_their_runtime() {
        const OLD_ROWS: &str = "
            INSERT INTO runtimes (id, name, image, description, is_public, trusted, status, project_id, created_at)
            VALUES ('rn', NULL, 'openstackqinling/nodejs-runtime:0.0.1', NULL, TRUE, TRUE, 'available', 'p', '2026-01-01T00:00:00.000000Z'),
                   ('rp', NULL, 'python3', NULL, TRUE, TRUE, 'available', 'p', '2026-01-01T00:00:00.000000Z'),
                   ('rx', NULL, 'node-tools/python3', NULL, TRUE, TRUE, 'available', 'p', '2026-01-01T00:00:00.000000Z');
            INSERT INTO functions (id, runtime_id, code_source, md5sum, package_sha256, package_size, cpu, memory_size, timeout, project_id, created_at)
            VALUES ('fn', 'rn', 'package', 'm', 's', 1, 100, 1, 5, 'p', '2026-01-01T00:00:00.000000Z'),
                   ('fp', 'rp', 'package', 'm', 's', 1, 100, 1, 5, 'p', '2026-01-01T00:00:00.000000Z'),
                   ('fx', 'rx', 'package', 'm', 's', 1, 100, 1, 5, 'p', '2026-01-01T00:00:00.000000Z');
            INSERT INTO function_versions (id, function_id, version_number, md5sum, package_sha256, package_size, cpu, memory_size, timeout, project_id, created_at)
            VALUES ('vn', 'fn', 1, 'm', 's', 1, 100, 1, 5, 'p', '2026-01-01T00:00:00.000000Z'),
                   ('vp', 'fp', 1, 'm', 's', 1, 100, 1, 5, 'p', '2026-01-01T00:00:00.000000Z');
        ";
        async fn modes(store: &Store) -> Vec<(String, &'static str)> {
            let mut out = Vec::new();
            for id in ["fn", "fp", "fx"] {
                let f = store
                    .get_function(id, &crate::Scope::All)
                    .await
                    .unwrap()
                    .unwrap();
                out.push((id.to_string(), f.execution_mode.as_str()));
                if let Some(v) = store.get_version(id, 1).await.unwrap() {
                    out.push((v.id, v.execution_mode.as_str()));
                }
            }
            out
        }
        let expected: Vec<(String, &str)> = [
            ("fn", "reuse"),
            ("vn", "reuse"),
            ("fp", "fork"),
            ("vp", "fork"),
            ("fx", "fork"),
        ]
        .iter()
        .map(|(id, m)| (id.to_string(), *m))
        .collect();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        super::SQLITE_MIGRATOR.run_to(14, &pool).await.unwrap();
        sqlx::raw_sql(OLD_ROWS).execute(&pool).await.unwrap();
        pool.close().await;
        let store = Store::open(&path).await.unwrap();
        assert_eq!(modes(&store).await, expected);

        if let Some(admin) = crate::testing::postgres_admin() {
            let url = crate::testing::scratch_database(&admin).await.unwrap();
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            super::POSTGRES_MIGRATOR.run_to(4, &pool).await.unwrap();
            sqlx::raw_sql(OLD_ROWS).execute(&pool).await.unwrap();
            pool.close().await;
            let store = Store::open_postgres(&PgConfig::new(url)).await.unwrap();
            assert_eq!(modes(&store).await, expected);
        }
    }

    /// A database that a newer binary migrated is refused, on both backends, with both
    /// versions named.
    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        let store = Store::open(&path).await.unwrap();
        let newer =
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                     VALUES (9999, 'from the future', TRUE, $1, 0)";
        sqlx::query(newer)
            .bind(vec![0u8; 48])
            .execute(store.sqlite_pool())
            .await
            .unwrap();
        store.close().await;
        let refused = |e: StoreError| {
            let text = e.to_string();
            assert!(
                text.contains("migration 9999") && text.contains("newer"),
                "{text}"
            );
        };
        refused(Store::open(&path).await.unwrap_err());
        if let Some(admin) = crate::testing::postgres_admin() {
            let url = crate::testing::scratch_database(&admin).await.unwrap();
            let store = Store::open_postgres(&PgConfig::new(url.clone()))
                .await
                .unwrap();
            let super::Db::Postgres(pool) = &store.db else {
                unreachable!()
            };
            sqlx::query(newer)
                .bind(vec![0u8; 48])
                .execute(pool)
                .await
                .unwrap();
            store.close().await;
            refused(Store::open_postgres(&PgConfig::new(url)).await.unwrap_err());
        }
    }
}
