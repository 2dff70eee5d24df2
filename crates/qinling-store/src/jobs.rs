//! Job rows, and the conditional update that claims one tick of a job, so that several
//! ticker loops (or servers) sharing the database fire each tick exactly once.

use qinling_types::{FunctionId, Job, JobStatus, Timestamp};
use sqlx::Row;

use crate::{Result, Scope, Store, StoreError, ts};

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Job> {
    let corrupt = |what: String| StoreError::Corrupt {
        table: "jobs",
        what,
    };
    let time = |col: &str| -> Result<Timestamp> {
        let s: String = row.try_get(col)?;
        ts::from_db(&s).ok_or_else(|| corrupt(s.clone()))
    };
    let status: String = row.try_get("status")?;
    Ok(Job {
        id: row.try_get::<String, _>("id")?.into(),
        name: row.try_get("name")?,
        function_id: row
            .try_get::<Option<String>, _>("function_id")?
            .map(FunctionId::from),
        function_alias: row.try_get("function_alias")?,
        function_version: row.try_get("function_version")?,
        function_input: row.try_get("function_input")?,
        status: JobStatus::parse(&status).ok_or_else(|| corrupt(status.clone()))?,
        pattern: row.try_get("pattern")?,
        count: row.try_get("count")?,
        first_execution_time: time("first_execution_time")?,
        next_execution_time: time("next_execution_time")?,
        project_id: row.try_get("project_id")?,
        created_at: time("created_at")?,
        updated_at: ts::opt_from_db(row.try_get("updated_at")?),
    })
}

/// How a claimed tick leaves a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobAdvance {
    pub next_execution_time: Timestamp,
    pub count: Option<i64>,
    pub status: JobStatus,
}

impl Store {
    /// Inserts a new job, or replaces the row with the same id (an update).
    pub async fn put_job(&self, j: &Job) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO jobs (id, name, function_id, function_alias, function_version, function_input,
                    status, pattern, count, first_execution_time, next_execution_time, project_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(j.id.as_str())
        .bind(&j.name)
        .bind(j.function_id.as_deref())
        .bind(&j.function_alias)
        .bind(j.function_version)
        .bind(&j.function_input)
        .bind(j.status.as_str())
        .bind(&j.pattern)
        .bind(j.count)
        .bind(ts::to_db(j.first_execution_time))
        .bind(ts::to_db(j.next_execution_time))
        .bind(&j.project_id)
        .bind(ts::to_db(j.created_at))
        .bind(j.updated_at.map(ts::to_db))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_job(&self, id: &str, scope: &Scope) -> Result<Option<Job>> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ? AND (? IS NULL OR project_id = ?)")
            .bind(id)
            .bind(scope.project())
            .bind(scope.project())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_jobs(&self, scope: &Scope) -> Result<Vec<Job>> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE (? IS NULL OR project_id = ?) ORDER BY created_at, id",
        )
        .bind(scope.project())
        .bind(scope.project())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn delete_job(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM jobs WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Running jobs whose next execution time is at or before `now`, earliest first.
    pub async fn due_jobs(&self, now: Timestamp) -> Result<Vec<Job>> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE status = 'running' AND next_execution_time <= ?
             ORDER BY next_execution_time, id",
        )
        .bind(ts::to_db(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Claims the tick of `job` due at `due`: moves it on as `advance` says, only if it is
    /// still running with that next execution time. `false`: someone else claimed it, or the
    /// job was changed or deleted meanwhile.
    pub async fn advance_job(
        &self,
        id: &str,
        due: Timestamp,
        advance: &JobAdvance,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET next_execution_time = ?, count = ?, status = ?, updated_at = ?
             WHERE id = ? AND status = 'running' AND next_execution_time = ?",
        )
        .bind(ts::to_db(advance.next_execution_time))
        .bind(advance.count)
        .bind(advance.status.as_str())
        .bind(ts::to_db(qinling_types::now()))
        .bind(id)
        .bind(ts::to_db(due))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many unfinished (running or paused) jobs target a function (any version, or one)
    /// directly.
    pub async fn jobs_of_function(&self, function_id: &str, version: Option<i64>) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE function_id = ? AND status IN ('running', 'paused')
                 AND (? IS NULL OR function_version = ?)",
        )
        .bind(function_id)
        .bind(version)
        .bind(version)
        .fetch_one(&self.pool)
        .await?)
    }

    /// How many unfinished jobs of `project_id` target the alias `name`.
    pub async fn jobs_of_alias(&self, project_id: &str, name: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE project_id = ? AND function_alias = ?
                 AND status IN ('running', 'paused')",
        )
        .bind(project_id)
        .bind(name)
        .fetch_one(&self.pool)
        .await?)
    }
}
