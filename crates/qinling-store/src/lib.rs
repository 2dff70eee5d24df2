//! The store: the only crate that speaks SQL. Two backends behind one [`Store`]: SQLite (WAL,
//! embedded, the default) and PostgreSQL (shared by several servers), each with its own
//! embedded migrations (`db.rs` says how one body of code serves both). Every read takes a
//! [`Scope`] so that project isolation is decided by the caller once and enforced here in the
//! `WHERE` clause.

mod aliases;
mod db;
mod executions;
mod filter;
#[cfg(test)]
mod fixtures;
mod functions;
mod jobs;
mod packages;
mod quotas;
mod runtimes;
mod stats;
mod tokens;
mod usage;
mod versions;
mod webhooks;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use db::PgConfig;
pub use executions::{Admission, Claimed, ExecutionFilter, ExecutionQuota, NewExecution};
pub use filter::{Filter, FilterOp};
pub use functions::{FunctionQuota, FunctionUpdate, OverQuota};
pub use jobs::JobAdvance;
pub use qinling_types::{UsageGroup, UsageRow};
pub use runtimes::RuntimeUpdate;
pub use stats::{ExecutionSample, MAX_SAMPLES};
pub use tokens::TokenRow;
pub use usage::UsageQuery;
pub use versions::VersionCreate;
pub use writer::WriterStats;

use db::Db;
use writer::{Writer, WriterConn};

/// Errors of the store. Not-found is not an error here: lookups return `Option`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Db(#[source] sqlx::Error),
    /// The database cannot be reached now (stopped, restarting, too slow): try again later.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database or its URL is not one this server can use; the message says why.
    #[error("{0}")]
    Config(String),
    #[error("corrupt row in {table}: {what}")]
    Corrupt { table: &'static str, what: String },
    #[error("the store is closed")]
    Closed,
    /// A quota checked inside a write would be exceeded.
    #[error("quota exceeded for {}", .0.resource)]
    OverQuota(functions::OverQuota),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if db::unreachable(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Db(e)
        }
    }
}

impl From<StoreError> for qinling_types::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                qinling_types::Error::Unavailable(
                    "The database is unavailable; try again shortly.".into(),
                )
            }
            StoreError::OverQuota(q) => {
                qinling_types::Error::quota_exceeded(q.resource, q.limit, q.in_use, q.adding)
            }
            e => qinling_types::Error::internal("store operation failed", e),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which projects a read may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Only this project's rows.
    Project(String),
    /// Every project (admin reads by id, `all_projects=true`, background work).
    All,
}

impl Scope {
    fn project(&self) -> Option<&str> {
        match self {
            Scope::Project(p) => Some(p),
            Scope::All => None,
        }
    }
}

/// Where the state lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file (created if missing).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database, shared by every server pointed at it.
    Postgres(PgConfig),
}

/// Handle to the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads, and the writes outside the execution hot path.
    db: Db,
    /// The execution hot path's writes, group-committed (`writer.rs`).
    writer: Writer,
    /// This server's id among those sharing the database (`None`: it is alone).
    node: Option<std::sync::Arc<str>>,
}

impl Store {
    /// Opens `database` and applies its migrations.
    pub async fn connect(database: &Database) -> Result<Store> {
        match database {
            Database::Sqlite(path) => Store::open(path).await,
            Database::Postgres(config) => Store::open_postgres(config).await,
        }
    }

    /// Opens (creating if needed) the SQLite database at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // The pool already pings a connection when it is returned; a second ping when it
            // is taken out again is one more round trip to its thread on every query.
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await?;
        let db = Db::Sqlite(pool);
        db::migrate(&db).await?;
        // The writer checkpoints the WAL itself, between batches (`writer.rs`).
        let writer = Writer::start(WriterConn::SqliteOwn(
            sqlx::SqliteConnection::connect_with(&opts.clone().pragma("wal_autocheckpoint", "0"))
                .await?,
        ));
        Ok(Store {
            db,
            writer,
            node: None,
        })
    }

    /// Connects to PostgreSQL and applies migrations (once, whichever server starts first).
    pub async fn open_postgres(config: &PgConfig) -> Result<Store> {
        let pool = db::connect_postgres(config).await?;
        let db = Db::Postgres(pool.clone());
        db::migrate(&db).await?;
        let writer = Writer::start(WriterConn::Postgres(pool));
        Ok(Store {
            db,
            writer,
            node: None,
        })
    }

    /// An in-memory database, for tests.
    pub async fn in_memory() -> Result<Store> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to ":memory:" is a different database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        let db = Db::Sqlite(pool.clone());
        db::migrate(&db).await?;
        let writer = Writer::start(WriterConn::SqlitePool(pool));
        Ok(Store {
            db,
            writer,
            node: None,
        })
    }

    /// Which backend this is: `sqlite` or `postgres` (for logs and metrics).
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Marks the executions this server starts with `node` (stable across its restarts), so
    /// that its recovery after a restart fails only its own ([`Store::recover_executions`]).
    pub fn with_node(mut self, node: impl Into<std::sync::Arc<str>>) -> Store {
        self.node = Some(node.into());
        self
    }

    /// The node id written on the executions this server starts, if set.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Whether the database answers a trivial query now (readiness probes).
    pub async fn ping(&self) -> Result<()> {
        crate::db::on_db!(&self.db, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    /// Whether other servers may share this database (PostgreSQL): then quotas are checked
    /// in it ([`Store::insert_execution_within`]) and packages kept in it.
    pub fn is_shared(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// Applies the writes still queued, then closes every connection. Writes submitted
    /// afterwards fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        self.writer.close().await;
        db::on_db!(&self.db, |pool| pool.close().await);
    }

    /// The SQLite pool, for tests that reach below the store's operations.
    #[cfg(test)]
    pub(crate) fn sqlite_pool(&self) -> &sqlx::SqlitePool {
        match &self.db {
            Db::Sqlite(p) => p,
            Db::Postgres(_) => panic!("a SQLite store was expected"),
        }
    }

    /// Counters of the execution writer's group commits.
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }
}

pub(crate) mod ts {
    //! Timestamps as stored: RFC 3339 with microseconds, UTC.
    use qinling_types::Timestamp;
    use time::format_description::FormatItem;
    use time::macros::format_description;

    const STORED: &[FormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

    pub fn to_db(t: Timestamp) -> String {
        t.to_offset(time::UtcOffset::UTC)
            .format(STORED)
            .expect("UTC timestamps format")
    }

    pub fn from_db(s: &str) -> Option<Timestamp> {
        time::PrimitiveDateTime::parse(s, STORED)
            .ok()
            .map(|p| p.assume_utc())
    }

    pub fn opt_from_db(s: Option<String>) -> Option<Timestamp> {
        s.as_deref().and_then(from_db)
    }
}

/// Databases for tests, here so that every crate's tests make them the same way: SQLite in
/// memory always, and a scratch PostgreSQL database when [`testing::ENV`] names a server
/// (`.ci/run` starts one). Without it the PostgreSQL half is skipped with a printed reason.
pub mod testing {
    use sqlx::{Connection, Executor};

    use crate::{PgConfig, Result, Store};

    /// The admin URL of a PostgreSQL server the tests may create databases on.
    pub const ENV: &str = "QINLING_TEST_POSTGRES";

    /// The admin URL from [`ENV`], or `None` after printing why PostgreSQL is skipped.
    pub fn postgres_admin() -> Option<String> {
        match std::env::var(ENV) {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                eprintln!("skipping PostgreSQL: {ENV} is not set (.ci/run sets it)");
                None
            }
        }
    }

    /// Creates an empty database on the server at `admin_url` and returns its URL.
    pub async fn scratch_database(admin_url: &str) -> Result<String> {
        let name = format!("qt_{}", qinling_types::new_id().replace('-', ""));
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        admin.close().await?;
        Ok(with_database(admin_url, &name))
    }

    /// `url` with its database name replaced by `name`.
    pub fn with_database(url: &str, name: &str) -> String {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let authority_start = base.find("://").map_or(0, |i| i + 3);
        let root = match base[authority_start..].find('/') {
            Some(i) => &base[..authority_start + i],
            None => base,
        };
        match query {
            Some(q) => format!("{root}/{name}?{q}"),
            None => format!("{root}/{name}"),
        }
    }

    /// SQLite in memory, then (when configured) a fresh PostgreSQL database.
    pub async fn stores() -> Vec<Store> {
        let mut stores = vec![Store::in_memory().await.expect("in-memory SQLite")];
        if let Some(admin) = postgres_admin() {
            let url = scratch_database(&admin)
                .await
                .expect("a scratch PostgreSQL database");
            stores.push(
                Store::open_postgres(&PgConfig::new(url))
                    .await
                    .expect("PostgreSQL store"),
            );
        }
        stores
    }

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres", "x"),
            "postgres://u:p@h:5/x"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
