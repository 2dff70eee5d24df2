//! Job rows, and the conditional update that claims one tick of a job, so that several
//! ticker loops (or servers) sharing the database fire each tick exactly once.

use crate::db::{Get, on_db};
use qinling_types::{FunctionId, Job, JobStatus, Timestamp};

use crate::{Result, Scope, Store, StoreError, ts};

fn from_row<R: Get>(row: &R) -> Result<Job> {
    let corrupt = |what: String| StoreError::Corrupt {
        table: "jobs",
        what,
    };
    let time = |col: &str| -> Result<Timestamp> {
        let s: String = row.get(col)?;
        ts::from_db(&s).ok_or_else(|| corrupt(s.clone()))
    };
    let status: String = row.get("status")?;
    Ok(Job {
        id: row.get::<String>("id")?.into(),
        name: row.get("name")?,
        function_id: row
            .get::<Option<String>>("function_id")?
            .map(FunctionId::from),
        function_alias: row.get("function_alias")?,
        function_version: row.get("function_version")?,
        function_input: row.get("function_input")?,
        status: JobStatus::parse(&status).ok_or_else(|| corrupt(status.clone()))?,
        pattern: row.get("pattern")?,
        count: row.get("count")?,
        first_execution_time: time("first_execution_time")?,
        next_execution_time: time("next_execution_time")?,
        project_id: row.get("project_id")?,
        created_at: time("created_at")?,
        updated_at: ts::opt_from_db(row.get("updated_at")?),
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
        on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO jobs (id, name, function_id, function_alias, function_version, function_input,
                        status, pattern, count, first_execution_time, next_execution_time, project_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, function_id = excluded.function_id, function_alias = excluded.function_alias, function_version = excluded.function_version, function_input = excluded.function_input, status = excluded.status, pattern = excluded.pattern, count = excluded.count, first_execution_time = excluded.first_execution_time, next_execution_time = excluded.next_execution_time, project_id = excluded.project_id, created_at = excluded.created_at, updated_at = excluded.updated_at",
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
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn get_job(&self, id: &str, scope: &Scope) -> Result<Option<Job>> {
        on_db!(&self.db, |pool| {
            let row =
                sqlx::query("SELECT * FROM jobs WHERE id = $1 AND ($2 IS NULL OR project_id = $3)")
                    .bind(id)
                    .bind(scope.project())
                    .bind(scope.project())
                    .fetch_optional(pool)
                    .await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    pub async fn list_jobs(&self, scope: &Scope) -> Result<Vec<Job>> {
        on_db!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM jobs WHERE ($1 IS NULL OR project_id = $2) ORDER BY created_at, id",
            )
            .bind(scope.project())
            .bind(scope.project())
            .fetch_all(pool)
            .await?;
            rows.iter().map(from_row).collect()
        })
    }

    pub async fn delete_job(&self, id: &str) -> Result<bool> {
        on_db!(&self.db, |pool| {
            let done = sqlx::query("DELETE FROM jobs WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Running jobs whose next execution time is at or before `now`, earliest first.
    pub async fn due_jobs(&self, now: Timestamp) -> Result<Vec<Job>> {
        on_db!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM jobs WHERE status = 'running' AND next_execution_time <= $1
                 ORDER BY next_execution_time, id",
            )
            .bind(ts::to_db(now))
            .fetch_all(pool)
            .await?;
            rows.iter().map(from_row).collect()
        })
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
        on_db!(&self.db, |pool| {
            let done = sqlx::query(
                "UPDATE jobs SET next_execution_time = $1, count = $2, status = $3, updated_at = $4
                 WHERE id = $5 AND status = 'running' AND next_execution_time = $6",
            )
            .bind(ts::to_db(advance.next_execution_time))
            .bind(advance.count)
            .bind(advance.status.as_str())
            .bind(ts::to_db(qinling_types::now()))
            .bind(id)
            .bind(ts::to_db(due))
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// How many unfinished (running or paused) jobs target a function (any version, or one)
    /// directly.
    pub async fn jobs_of_function(&self, function_id: &str, version: Option<i64>) -> Result<i64> {
        on_db!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs WHERE function_id = $1 AND status IN ('running', 'paused')
                     AND ($2 IS NULL OR function_version = $3)",
            )
            .bind(function_id)
            .bind(version)
            .bind(version)
            .fetch_one(pool)
            .await?)
        })
    }

    /// How many unfinished jobs of `project_id` target the alias `name`.
    pub async fn jobs_of_alias(&self, project_id: &str, name: &str) -> Result<i64> {
        on_db!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs WHERE project_id = $1 AND function_alias = $2
                     AND status IN ('running', 'paused')",
            )
            .bind(project_id)
            .bind(name)
            .fetch_one(pool)
            .await?)
        })
    }
}
