//! Execution rows, and the durable queue state of unfinished ones.
//!
//! An execution is inserted `running` with `queue_state = 'queued'` (async) or `'started'`
//! (sync, handed to a worker at once). The dispatcher claims queued rows with a conditional
//! update, so two engines never start the same execution; finishing clears `queue_state`.
//! After a crash, [`Store::recover_executions`] fails what was started and returns what was
//! queued, so nothing stays `running` forever and nothing accepted is lost.

use qinling_types::{Execution, ExecutionStatus, Outcome, now};
use sqlx::Row;

use crate::{Filter, Result, Scope, Store, StoreError, ts};

/// A new execution to record.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: String,
    pub function_id: String,
    pub function_version: i64,
    pub function_alias: Option<String>,
    pub description: Option<String>,
    pub sync: bool,
    pub input: Option<String>,
    pub project_id: String,
}

/// Filters of `GET /v1/executions`.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub function_id: Option<Filter>,
    pub status: Option<Filter>,
    pub description: Option<Filter>,
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Execution> {
    let status: String = row.try_get("status")?;
    let created: String = row.try_get("created_at")?;
    Ok(Execution {
        id: row.try_get("id")?,
        function_id: row.try_get("function_id")?,
        function_version: row.try_get("function_version")?,
        function_alias: row.try_get("function_alias")?,
        description: row.try_get("description")?,
        status: ExecutionStatus::parse(&status).ok_or(StoreError::Corrupt {
            table: "executions",
            what: status.clone(),
        })?,
        sync: row.try_get("sync")?,
        input: row.try_get("input")?,
        result: row.try_get("result")?,
        logs: row.try_get("logs")?,
        cpu_ms: row.try_get("cpu_ms")?,
        memory_peak_kb: row.try_get("memory_peak_kb")?,
        project_id: row.try_get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "executions",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.try_get("updated_at")?),
    })
}

impl Store {
    /// Records a new `running` execution and counts it on its function, in one transaction.
    /// Returns `None` when the function no longer exists.
    pub async fn insert_execution(&self, e: &NewExecution) -> Result<Option<Execution>> {
        let created = now();
        let mut tx = self.pool.begin().await?;
        let counted = sqlx::query("UPDATE functions SET count = count + 1 WHERE id = ?")
            .bind(&e.function_id)
            .execute(&mut *tx)
            .await?;
        if counted.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO executions (id, function_id, function_version, function_alias, description, status, sync, input,
                                     queue_state, project_id, created_at)
             VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
        )
        .bind(&e.id)
        .bind(&e.function_id)
        .bind(e.function_version)
        .bind(&e.function_alias)
        .bind(&e.description)
        .bind(e.sync)
        .bind(&e.input)
        .bind(if e.sync { "started" } else { "queued" })
        .bind(&e.project_id)
        .bind(ts::to_db(created))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Execution {
            id: e.id.clone(),
            function_id: e.function_id.clone(),
            function_version: e.function_version,
            function_alias: e.function_alias.clone(),
            description: e.description.clone(),
            status: ExecutionStatus::Running,
            sync: e.sync,
            input: e.input.clone(),
            result: None,
            logs: None,
            cpu_ms: None,
            memory_peak_kb: None,
            project_id: e.project_id.clone(),
            created_at: created,
            updated_at: None,
        }))
    }

    /// Claims a queued execution for running. `false` if it was already claimed, finished
    /// or deleted.
    pub async fn claim_execution(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE executions SET queue_state = 'started' WHERE id = ? AND queue_state = 'queued'",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the outcome of a running execution. Returns the updated row, or `None` if
    /// it was deleted meanwhile.
    pub async fn finish_execution(&self, id: &str, outcome: &Outcome) -> Result<Option<Execution>> {
        let row = sqlx::query(
            "UPDATE executions SET status = ?, result = ?, logs = ?, cpu_ms = ?, memory_peak_kb = ?, queue_state = NULL,
                    updated_at = ?
             WHERE id = ? AND status = 'running' RETURNING *",
        )
        .bind(outcome.status.as_str())
        .bind(outcome.result_json())
        .bind(&outcome.logs)
        .bind(outcome.cpu_ms.map(|v| v as i64))
        .bind(outcome.memory_peak_kb.map(|v| v as i64))
        .bind(ts::to_db(now()))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn get_execution(&self, id: &str, scope: &Scope) -> Result<Option<Execution>> {
        let row = match scope.project() {
            Some(p) => {
                sqlx::query("SELECT * FROM executions WHERE id = ? AND project_id = ?")
                    .bind(id)
                    .bind(p)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM executions WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_executions(
        &self,
        scope: &Scope,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>> {
        let mut sql = String::from("SELECT * FROM executions WHERE 1 = 1");
        let mut binds = Vec::new();
        if let Some(p) = scope.project() {
            sql.push_str(" AND project_id = ?");
            binds.push(p.to_string());
        }
        for (column, f) in [
            ("function_id", &filter.function_id),
            ("status", &filter.status),
            ("description", &filter.description),
        ] {
            if let Some(f) = f {
                f.push_sql(column, &mut sql, &mut binds);
            }
        }
        sql.push_str(" ORDER BY created_at, id");
        // The SQL is built from fixed column names and `?` placeholders only; values are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// Deletes an execution row; returns whether it existed.
    pub async fn delete_execution(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM executions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// After a restart: executions that were running on a worker are failed with `reason`
    /// (their outcome is unknown); queued ones are returned, oldest first, to be run.
    pub async fn recover_executions(&self, reason: &str) -> Result<(u64, Vec<String>)> {
        let outcome = Outcome::error(ExecutionStatus::Error, reason);
        let failed = sqlx::query(
            "UPDATE executions SET status = 'error', result = ?, queue_state = NULL, updated_at = ?
             WHERE queue_state = 'started' OR (queue_state IS NULL AND status = 'running')",
        )
        .bind(outcome.result_json())
        .bind(ts::to_db(now()))
        .execute(&self.pool)
        .await?;
        let queued: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM executions WHERE queue_state = 'queued' ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok((failed.rows_affected(), queued))
    }
}
