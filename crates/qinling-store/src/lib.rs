//! The store: the only crate that speaks SQL. SQLite (WAL) through sqlx with embedded
//! migrations; written so that the same queries can run on PostgreSQL later (no
//! SQLite-only SQL outside [`Store::open`]). Every read takes a [`Scope`] so that project
//! isolation is decided by the caller once and enforced here in the `WHERE` clause.

mod executions;
mod filter;
mod functions;
mod runtimes;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use executions::{ExecutionFilter, NewExecution};
pub use filter::{Filter, FilterOp};
pub use functions::FunctionUpdate;
pub use runtimes::RuntimeUpdate;

/// Errors of the store. Not-found is not an error here: lookups return `Option`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row in {table}: {what}")]
    Corrupt { table: &'static str, what: String },
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
    pool: SqlitePool,
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
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
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
        Ok(Store { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
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
