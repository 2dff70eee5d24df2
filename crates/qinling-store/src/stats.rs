//! Counts read for metrics (not on any request path), and the samples of a function's live
//! statistics (`GET /v1/functions/{id}/stats`).

use qinling_types::{ExecutionStatus, Timestamp};

use crate::db::{Get, on_db};
use crate::{Result, Store, StoreError, ts};

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

/// One finished execution, as a function's live statistics count it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionSample {
    /// When its outcome was recorded.
    pub finished: Timestamp,
    pub status: ExecutionStatus,
    pub duration_ms: Option<i64>,
    pub cold_start_ms: Option<i64>,
}

/// Most samples [`Store::execution_samples`] returns (the newest).
pub const MAX_SAMPLES: usize = 50_000;

impl Store {
    /// The executions of `function_id` (every version) that finished at or after `since`,
    /// newest first, at most [`MAX_SAMPLES`].
    pub async fn execution_samples(
        &self,
        function_id: &str,
        since: Timestamp,
    ) -> Result<Vec<ExecutionSample>> {
        let rows = on_db!(&self.db, |pool| {
            sqlx::query(
                "SELECT updated_at, status, duration_ms, cold_start_ms FROM executions
                 WHERE function_id = $1 AND status <> 'running' AND updated_at >= $2
                 ORDER BY updated_at DESC LIMIT $3",
            )
            .bind(function_id)
            .bind(ts::to_db(since))
            .bind(MAX_SAMPLES as i64)
            .fetch_all(pool)
            .await?
            .iter()
            .map(
                |row| -> Result<(String, String, Option<i64>, Option<i64>)> {
                    Ok((
                        row.get("updated_at")?,
                        row.get("status")?,
                        row.get("duration_ms")?,
                        row.get("cold_start_ms")?,
                    ))
                },
            )
            .collect::<Result<Vec<_>>>()
        })?;
        rows.into_iter()
            .map(|(at, status, duration_ms, cold_start_ms)| {
                Ok(ExecutionSample {
                    finished: ts::from_db(&at).ok_or_else(|| StoreError::Corrupt {
                        table: "executions",
                        what: at.clone(),
                    })?,
                    status: ExecutionStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                        table: "executions",
                        what: status.clone(),
                    })?,
                    duration_ms,
                    cold_start_ms,
                })
            })
            .collect()
    }
}
