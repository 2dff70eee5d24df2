//! Counts read for metrics (not on any request path).

use crate::db::on_db;
use crate::{Result, Store};

impl Store {
    /// Async executions accepted and not yet started.
    pub async fn queued_executions(&self) -> Result<i64> {
        on_db!(&self.db, |pool| {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM executions WHERE queue_state = 'queued'")
                    .fetch_one(pool)
                    .await?;
            Ok(n)
        })
    }
}
