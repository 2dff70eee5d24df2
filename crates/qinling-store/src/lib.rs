//! The store: the only crate that speaks SQL. SQLite (WAL) through sqlx with embedded
//! migrations; written so that the same queries can run on PostgreSQL later (no
//! SQLite-only SQL outside [`Store::open`]). Every read takes a [`Scope`] so that project
//! isolation is decided by the caller once and enforced here in the `WHERE` clause.

mod aliases;
mod executions;
mod filter;
#[cfg(test)]
mod fixtures;
mod functions;
mod jobs;
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

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqlitePool};

pub use executions::{Claimed, ExecutionFilter, NewExecution};
pub use filter::{Filter, FilterOp};
pub use functions::FunctionUpdate;
pub use jobs::JobAdvance;
pub use qinling_types::{UsageGroup, UsageRow};
pub use runtimes::RuntimeUpdate;
pub use tokens::TokenRow;
pub use usage::UsageQuery;
pub use versions::VersionCreate;
pub use writer::WriterStats;

use writer::{Writer, WriterConn};

/// Errors of the store. Not-found is not an error here: lookups return `Option`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row in {table}: {what}")]
    Corrupt { table: &'static str, what: String },
    #[error("the store is closed")]
    Closed,
}

impl From<StoreError> for qinling_types::Error {
    fn from(e: StoreError) -> Self {
        qinling_types::Error::internal("store operation failed", e)
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

/// Handle to the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads, and the writes outside the execution hot path.
    pool: SqlitePool,
    /// The execution hot path's writes, group-committed (`writer.rs`).
    writer: Writer,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
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
        MIGRATOR.run(&pool).await?;
        // The writer checkpoints the WAL itself, between batches (`writer.rs`).
        let writer = Writer::start(WriterConn::Own(
            sqlx::SqliteConnection::connect_with(&opts.clone().pragma("wal_autocheckpoint", "0"))
                .await?,
        ));
        Ok(Store { pool, writer })
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
        MIGRATOR.run(&pool).await?;
        let writer = Writer::start(WriterConn::Pool(pool.clone()));
        Ok(Store { pool, writer })
    }

    /// Applies the writes still queued, then closes every connection. Writes submitted
    /// afterwards fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// A transaction that will write: `BEGIN IMMEDIATE` takes the write lock up front,
    /// waiting through the busy timeout if another connection (the execution writer, say)
    /// holds it. A deferred `BEGIN` that reads first would instead fail at once with
    /// `SQLITE_BUSY` when another connection commits between its read and its write.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
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
