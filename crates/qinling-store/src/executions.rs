//! Execution rows, and the durable queue state of unfinished ones.
//!
//! An execution is inserted `running` with `queue_state = 'queued'` (async) or `'started'`
//! (sync, handed to a worker at once). The dispatcher claims queued rows with a conditional
//! update, so two engines never start the same execution; finishing clears `queue_state`.
//! After a crash, [`Store::recover_executions`] fails what was started and returns what was
//! queued, so nothing stays `running` forever and nothing accepted is lost.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use qinling_types::trace::TraceContext;
use qinling_types::{Execution, ExecutionStatus, Input, Outcome, Timestamp, now};

use crate::db::{DbConn, Get, on_conn, on_db};
use crate::writer::WriteOp;
use crate::{Filter, OverQuota, Result, Scope, Store, StoreError, ts};

/// A new execution to record.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: String,
    pub function_id: String,
    pub function_version: i64,
    pub function_alias: Option<String>,
    pub description: Option<String>,
    pub sync: bool,
    /// Stored as its wire text (`Input::to_wire`), read back with `Input::parse`.
    pub input: Input,
    pub project_id: String,
    /// The request that created it (`X-Openstack-Request-Id`).
    pub request_id: Option<String>,
    /// The trace it belongs to.
    pub trace: Option<TraceContext>,
}

/// A project's execution quotas, checked inside the insert itself (`-1`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionQuota {
    pub concurrent_executions: i64,
    pub executions_per_minute: i64,
}

/// What [`Store::insert_execution_within`] did.
#[derive(Debug)]
pub enum Admission {
    Inserted(Execution),
    /// The function (version) is gone, or (for a guarded insert) its definition changed or
    /// its runtime is unavailable: the row is given back. (Over a quota is
    /// [`StoreError::OverQuota`].)
    Refused(NewExecution),
}

/// Filters of `GET /v1/executions`.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub function_id: Option<Filter>,
    pub status: Option<Filter>,
    pub description: Option<Filter>,
}

fn from_row<R: Get>(row: &R) -> Result<Execution> {
    let status: String = row.get("status")?;
    let created: String = row.get("created_at")?;
    Ok(Execution {
        id: row.get::<String>("id")?.into(),
        function_id: row.get::<String>("function_id")?.into(),
        function_version: row.get("function_version")?,
        function_alias: row.get("function_alias")?,
        description: row.get("description")?,
        status: ExecutionStatus::parse(&status).ok_or(StoreError::Corrupt {
            table: "executions",
            what: status.clone(),
        })?,
        sync: row.get("sync")?,
        input: Input::parse(row.get::<Option<String>>("input")?.as_deref()),
        result: row.get("result")?,
        logs: row.get("logs")?,
        cpu_ms: row.get("cpu_ms")?,
        memory_peak_kb: row.get("memory_peak_kb")?,
        duration_ms: row.get("duration_ms")?,
        memory_size: row.get("memory_size")?,
        cold_start_ms: row.get("cold_start_ms")?,
        request_id: row.get("request_id")?,
        // An unreadable trace is dropped, not an error: it only names spans.
        trace: row
            .get::<Option<String>>("trace")?
            .as_deref()
            .and_then(TraceContext::from_db),
        project_id: row.get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "executions",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.get("updated_at")?),
    })
}

/// What a successful claim returns.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub execution: Execution,
    /// The `updated_at` of the execution's function as it is now, or `None` when the
    /// function is gone: lets the engine check a cached definition without reading it.
    pub function_updated_at: Option<Option<Timestamp>>,
}

/// Records a new execution (see [`Store::insert_execution`]).
struct Insert {
    row: NewExecution,
    /// The row's input as stored (rendered by the caller, not in the writer task).
    input: Option<String>,
    created: String,
    /// `Some(updated_at)`: only if the function's definition is still this one and its
    /// runtime is available.
    unchanged: Option<Option<String>>,
    /// The server recording it (see [`Store::with_node`]).
    node: Option<std::sync::Arc<str>>,
}

/// The most rows one multi-row statement carries. A batch is cut into chunks whose sizes are
/// powers of two up to this, so that each kind has at most 7 statement texts, all of which
/// stay in the connection's prepared-statement cache.
const MAX_CHUNK: usize = 64;

/// Sizes of the chunks `n` rows are written in: powers of two, largest first.
fn chunks(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let size = MAX_CHUNK.min(1 << n.ilog2());
        n -= size;
        Some(size)
    })
}

/// `sql` with `{rows}` replaced by `n` rows of `cols` placeholders each, numbered
/// `$1, $2, …` across the rows and comma-separated: one text per chunk size, built once.
fn chunk_sql(
    cache: &'static OnceLock<Vec<String>>,
    sql: &str,
    cols: usize,
    n: usize,
) -> &'static str {
    let texts = cache.get_or_init(|| {
        (0..=MAX_CHUNK.ilog2())
            .map(|k| {
                let rows: Vec<String> = (0..1usize << k)
                    .map(|r| {
                        let row: Vec<String> =
                            (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
                        if cols == 1 {
                            row.concat()
                        } else {
                            format!("({})", row.join(", "))
                        }
                    })
                    .collect();
                sql.replace("{rows}", &rows.join(", "))
                    .replace("{next}", &format!("${}", (1usize << k) * cols + 1))
            })
            .collect()
    });
    &texts[n.ilog2() as usize]
}

/// Guarded rows (`guarded` true) need the function's definition unchanged and its runtime
/// available; the others need the function (version) to exist. The counts are bumped after,
/// once per function (version), for the rows that went in.
const INSERT_SQL: &str = "WITH v (id, function_id, function_version, function_alias, description, sync, input,
               queue_state, project_id, request_id, created_at, guarded, expect_updated_at, node, trace) AS (VALUES {rows})
INSERT INTO executions (id, function_id, function_version, function_alias, description, status, sync, input,
                        queue_state, project_id, request_id, created_at, node, trace)
SELECT v.id, v.function_id, v.function_version, v.function_alias, v.description, 'running', v.sync,
       v.input, v.queue_state, v.project_id, v.request_id, v.created_at, v.node, v.trace
FROM v
WHERE CASE
    WHEN v.guarded THEN EXISTS (
        SELECT 1 FROM functions f JOIN runtimes r ON r.id = f.runtime_id
        WHERE f.id = v.function_id AND f.updated_at IS NOT DISTINCT FROM v.expect_updated_at AND r.status = 'available')
    WHEN v.function_version = 0 THEN EXISTS (SELECT 1 FROM functions f WHERE f.id = v.function_id)
    ELSE EXISTS (SELECT 1 FROM function_versions fv
                 WHERE fv.function_id = v.function_id AND fv.version_number = v.function_version)
END
RETURNING id";

impl WriteOp for Insert {
    type Output = bool;

    fn single_statement(&self) -> bool {
        false
    }

    async fn apply(&self, conn: &mut DbConn<'_>) -> Result<bool> {
        Ok(Self::apply_all(&[self], conn).await?[0])
    }

    async fn apply_all(ops: &[&Self], conn: &mut DbConn<'_>) -> Result<Vec<bool>> {
        static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
        let mut inserted = HashSet::new();
        let mut rest = ops;
        for size in chunks(ops.len()) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let sql = chunk_sql(&TEXTS, INSERT_SQL, 15, size);
            on_conn!(&mut *conn, |c| {
                let mut q = sqlx::query(sql);
                for op in chunk {
                    let e = &op.row;
                    q = q
                        .bind(&e.id)
                        .bind(&e.function_id)
                        .bind(e.function_version)
                        .bind(&e.function_alias)
                        .bind(&e.description)
                        .bind(e.sync)
                        .bind(&op.input)
                        .bind(if e.sync { "started" } else { "queued" })
                        .bind(&e.project_id)
                        .bind(&e.request_id)
                        .bind(&op.created)
                        // The definition check is about version 0, the only one cached.
                        .bind(op.unchanged.is_some() && e.function_version == 0)
                        .bind(op.unchanged.clone().flatten())
                        // A sync execution starts on this server at once.
                        .bind(if e.sync { op.node.as_deref() } else { None })
                        .bind(e.trace.map(|t| t.to_db()));
                }
                for row in q.fetch_all(&mut **c).await? {
                    inserted.insert(row.get::<String>("id")?);
                }
            });
        }
        // Version 0 is counted on the function, version N on its version row (§3.6).
        let mut counts: HashMap<(&str, i64), i64> = HashMap::new();
        for op in ops.iter().filter(|op| inserted.contains(&op.row.id)) {
            *counts
                .entry((&op.row.function_id, op.row.function_version))
                .or_default() += 1;
        }
        for ((function_id, version), n) in counts {
            on_conn!(&mut *conn, |c| {
                let q = if version == 0 {
                    sqlx::query("UPDATE functions SET count = count + $1 WHERE id = $2")
                        .bind(n)
                        .bind(function_id)
                } else {
                    sqlx::query(
                        "UPDATE function_versions SET count = count + $1 WHERE function_id = $2 AND version_number = $3",
                    )
                    .bind(n)
                    .bind(function_id)
                    .bind(version)
                };
                q.execute(&mut **c).await?;
            });
        }
        Ok(ops.iter().map(|op| inserted.contains(&op.row.id)).collect())
    }
}

/// Claims a queued execution (see [`Store::claim_execution`]).
struct Claim {
    id: String,
    /// The claiming server; one writer, one server, so the same for every claim of a batch.
    node: Option<std::sync::Arc<str>>,
}

/// '' stands for "never updated", so that NULL can mean "no such function".
const CLAIM_SQL: &str = "UPDATE executions SET queue_state = 'started', node = {next}
WHERE queue_state = 'queued' AND id IN ({rows})
RETURNING *, (SELECT COALESCE(updated_at, '') FROM functions
              WHERE functions.id = executions.function_id) AS function_updated_at";

impl WriteOp for Claim {
    type Output = Option<Claimed>;

    fn single_statement(&self) -> bool {
        true
    }

    async fn apply(&self, conn: &mut DbConn<'_>) -> Result<Option<Claimed>> {
        Ok(Self::apply_all(&[self], conn).await?.pop().flatten())
    }

    async fn apply_all(ops: &[&Self], conn: &mut DbConn<'_>) -> Result<Vec<Option<Claimed>>> {
        static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
        let mut claimed = HashMap::new();
        let mut rest = ops;
        for size in chunks(ops.len()) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            on_conn!(&mut *conn, |c| {
                let mut q = sqlx::query(chunk_sql(&TEXTS, CLAIM_SQL, 1, size));
                for op in chunk {
                    q = q.bind(&op.id);
                }
                q = q.bind(chunk[0].node.as_deref());
                for row in q.fetch_all(&mut **c).await? {
                    let updated: Option<String> = row.get("function_updated_at")?;
                    let function_updated_at = match updated.as_deref() {
                        None => None,
                        Some("") => Some(None),
                        Some(t) => {
                            Some(Some(ts::from_db(t).ok_or_else(|| StoreError::Corrupt {
                                table: "functions",
                                what: t.to_string(),
                            })?))
                        }
                    };
                    let execution = from_row(&row)?;
                    claimed.insert(
                        execution.id.clone(),
                        Claimed {
                            execution,
                            function_updated_at,
                        },
                    );
                }
            });
        }
        // An id claimed twice in one batch: the first claim has it.
        Ok(ops
            .iter()
            .map(|op| claimed.remove(op.id.as_str()))
            .collect())
    }
}

/// Records an outcome (see [`Store::finish_execution`]).
struct Finish {
    id: String,
    status: &'static str,
    result: String,
    logs: String,
    cpu_ms: Option<i64>,
    memory_peak_kb: Option<i64>,
    duration_ms: i64,
    memory_size: Option<i64>,
    cold_start_ms: Option<i64>,
    updated_at: String,
}

const FINISH_SQL: &str =
    "WITH v (id, status, result, logs, cpu_ms, memory_peak_kb, duration_ms, memory_size,
               cold_start_ms, updated_at) AS (VALUES {rows})
UPDATE executions SET status = v.status, result = v.result, logs = v.logs, cpu_ms = v.cpu_ms,
                      memory_peak_kb = v.memory_peak_kb, duration_ms = v.duration_ms,
                      memory_size = v.memory_size, cold_start_ms = v.cold_start_ms,
                      queue_state = NULL, updated_at = v.updated_at
FROM v
WHERE executions.id = v.id AND executions.status = 'running'
RETURNING executions.id AS id";

impl WriteOp for Finish {
    type Output = bool;

    fn single_statement(&self) -> bool {
        true
    }

    async fn apply(&self, conn: &mut DbConn<'_>) -> Result<bool> {
        Ok(Self::apply_all(&[self], conn).await?[0])
    }

    async fn apply_all(ops: &[&Self], conn: &mut DbConn<'_>) -> Result<Vec<bool>> {
        static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
        let mut finished = HashSet::new();
        let mut rest = ops;
        for size in chunks(ops.len()) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            on_conn!(&mut *conn, |c| {
                let mut q = sqlx::query(chunk_sql(&TEXTS, FINISH_SQL, 10, size));
                for op in chunk {
                    q = q
                        .bind(&op.id)
                        .bind(op.status)
                        .bind(&op.result)
                        .bind(&op.logs)
                        .bind(op.cpu_ms)
                        .bind(op.memory_peak_kb)
                        .bind(op.duration_ms)
                        .bind(op.memory_size)
                        .bind(op.cold_start_ms)
                        .bind(&op.updated_at);
                }
                for row in q.fetch_all(&mut **c).await? {
                    finished.insert(row.get::<String>("id")?);
                }
            });
        }
        // (One finish per execution: an id never comes twice in a batch.)
        Ok(ops.iter().map(|op| finished.remove(&op.id)).collect())
    }
}

impl Store {
    /// Records a new `running` execution and counts it on its function (version), in one
    /// transaction. Returns `None` when the function (version) no longer exists.
    pub async fn insert_execution(&self, e: NewExecution) -> Result<Option<Execution>> {
        Ok(self.insert(e, None).await?.ok())
    }

    /// As [`Store::insert_execution`], for an execution admitted with a cached definition of
    /// a function's version 0: records it only if the function's `updated_at` is still
    /// `function_updated_at` (every change of a definition sets it) and its runtime is
    /// available. Otherwise gives the row back (`Err`) for the caller to check afresh.
    pub async fn insert_execution_if_unchanged(
        &self,
        e: NewExecution,
        function_updated_at: Option<Timestamp>,
    ) -> Result<std::result::Result<Execution, NewExecution>> {
        self.insert(e, Some(function_updated_at.map(ts::to_db)))
            .await
    }

    async fn insert(
        &self,
        row: NewExecution,
        unchanged: Option<Option<String>>,
    ) -> Result<std::result::Result<Execution, NewExecution>> {
        let created = now();
        let op = Insert {
            input: row.input.to_wire(),
            row,
            created: ts::to_db(created),
            unchanged,
            node: self.node.clone(),
        };
        let (inserted, op) = self.writer.submit_with(op).await?;
        if !inserted {
            return Ok(Err(op.row));
        }
        Ok(Ok(running_execution(op.row, created)))
    }
}

/// The row just inserted for `e` at `created`, as it reads back.
fn running_execution(e: NewExecution, created: Timestamp) -> Execution {
    Execution {
        id: e.id.into(),
        function_id: e.function_id.into(),
        function_version: e.function_version,
        function_alias: e.function_alias,
        description: e.description,
        status: ExecutionStatus::Running,
        sync: e.sync,
        input: e.input,
        result: None,
        logs: None,
        cpu_ms: None,
        memory_peak_kb: None,
        duration_ms: None,
        memory_size: None,
        cold_start_ms: None,
        request_id: e.request_id,
        trace: e.trace,
        project_id: e.project_id,
        created_at: created,
        updated_at: None,
    }
}

impl Store {
    /// As [`Store::insert_execution`] (or, with `unchanged`, its guarded variant), admitted
    /// against `quota` in the same transaction, under a per-project lock: exact across every
    /// server sharing the database. The engine uses it on a shared database; a lone SQLite
    /// server checks quotas in memory instead, without the extra statements.
    pub async fn insert_execution_within(
        &self,
        row: NewExecution,
        unchanged: Option<Option<Timestamp>>,
        quota: ExecutionQuota,
    ) -> Result<Admission> {
        let created = now();
        let second = created.unix_timestamp();
        let op = Insert {
            input: row.input.to_wire(),
            row,
            created: ts::to_db(created),
            unchanged: unchanged.map(|u| u.map(ts::to_db)),
            node: self.node.clone(),
        };
        let project = op.row.project_id.clone();
        let inserted = on_db!(&self.db, |pool, d| {
            let mut tx = pool.begin_write().await?;
            if let Some(lock) = d::PROJECT_LOCK {
                sqlx::query(lock).bind(&project).execute(&mut *tx).await?;
            }
            if quota.concurrent_executions >= 0 {
                let running: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM executions WHERE queue_state IS NOT NULL AND project_id = $1",
                )
                .bind(&project)
                .fetch_one(&mut *tx)
                .await?;
                if running >= quota.concurrent_executions {
                    return Err(StoreError::OverQuota(OverQuota {
                        resource: "concurrent_executions",
                        limit: quota.concurrent_executions,
                        in_use: running,
                        adding: 1,
                    }));
                }
            }
            if quota.executions_per_minute >= 0 {
                let started: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM execution_rate
                     WHERE project_id = $1 AND second > $2",
                )
                .bind(&project)
                .bind(second - 60)
                .fetch_one(&mut *tx)
                .await?;
                if started >= quota.executions_per_minute {
                    return Err(StoreError::OverQuota(OverQuota {
                        resource: "executions_per_minute",
                        limit: quota.executions_per_minute,
                        in_use: started,
                        adding: 1,
                    }));
                }
            }
            let inserted = Insert::apply_all(&[&op], &mut d::conn(&mut tx)).await?[0];
            if inserted {
                sqlx::query(
                    "INSERT INTO execution_rate (project_id, second, n) VALUES ($1, $2, 1)
                     ON CONFLICT (project_id, second) DO UPDATE SET n = execution_rate.n + 1",
                )
                .bind(&project)
                .bind(second)
                .execute(&mut *tx)
                .await?;
                // The window needs one minute; older rows go now and then.
                if second % 60 == 0 {
                    sqlx::query(
                        "DELETE FROM execution_rate WHERE project_id = $1 AND second <= $2",
                    )
                    .bind(&project)
                    .bind(second - 120)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            inserted
        });
        if !inserted {
            return Ok(Admission::Refused(op.row));
        }
        Ok(Admission::Inserted(running_execution(op.row, created)))
    }

    /// Executions a project started in the minute before now, as the shared window counts
    /// them (see [`Store::insert_execution_within`]).
    pub async fn executions_last_minute(&self, project_id: &str) -> Result<i64> {
        let second = now().unix_timestamp();
        on_db!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM execution_rate
                 WHERE project_id = $1 AND second > $2",
            )
            .bind(project_id)
            .bind(second - 60)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Claims a queued execution for running. `None` if it was already claimed, finished
    /// or deleted.
    pub async fn claim_execution(&self, id: &str) -> Result<Option<Claimed>> {
        self.writer
            .submit(Claim {
                id: id.to_string(),
                node: self.node.clone(),
            })
            .await
    }

    /// Records the outcome of a running execution, with the memory limit (bytes) of the
    /// definition it ran (`None`: nothing ran), in one statement. Returns when it was recorded
    /// (the row's new `updated_at`), or `None` if the execution was deleted or finished
    /// meanwhile.
    pub async fn finish_execution(
        &self,
        id: &str,
        outcome: &Outcome,
        memory_size: Option<u64>,
    ) -> Result<Option<Timestamp>> {
        let at = now();
        let op = Finish {
            id: id.to_string(),
            status: outcome.status.as_str(),
            result: outcome.result_json(),
            logs: outcome.logs.clone(),
            cpu_ms: outcome.cpu_ms.map(|v| v as i64),
            memory_peak_kb: outcome.memory_peak_kb.map(|v| v as i64),
            duration_ms: outcome.duration_ms(),
            memory_size: memory_size.map(|v| v as i64),
            cold_start_ms: outcome.cold_start_ms.map(|v| v as i64),
            updated_at: ts::to_db(at),
        };
        Ok(self.writer.submit(op).await?.then_some(at))
    }

    pub async fn get_execution(&self, id: &str, scope: &Scope) -> Result<Option<Execution>> {
        on_db!(&self.db, |pool| {
            let row = match scope.project() {
                Some(p) => {
                    sqlx::query("SELECT * FROM executions WHERE id = $1 AND project_id = $2")
                        .bind(id)
                        .bind(p)
                        .fetch_optional(pool)
                        .await?
                }
                None => {
                    sqlx::query("SELECT * FROM executions WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await?
                }
            };
            row.as_ref().map(from_row).transpose()
        })
    }

    pub async fn list_executions(
        &self,
        scope: &Scope,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>> {
        on_db!(&self.db, |pool, d| {
            let mut sql = String::from("SELECT * FROM executions WHERE 1 = 1");
            let mut binds = Vec::new();
            if let Some(p) = scope.project() {
                sql.push_str(" AND project_id = $1");
                binds.push(p.to_string());
            }
            for (column, f) in [
                ("function_id", &filter.function_id),
                ("status", &filter.status),
                ("description", &filter.description),
            ] {
                if let Some(f) = f {
                    f.push_sql(column, d::ILIKE, &mut sql, &mut binds);
                }
            }
            sql.push_str(" ORDER BY created_at, id");
            // The SQL is built from fixed column names and `$N` placeholders only; values are bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in &binds {
                q = q.bind(b);
            }
            let rows = q.fetch_all(pool).await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// Deletes an execution row; returns whether it existed.
    pub async fn delete_execution(&self, id: &str) -> Result<bool> {
        on_db!(&self.db, |pool| {
            let done = sqlx::query("DELETE FROM executions WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// After a restart: executions that were running on a worker of this server (its node
    /// id; without one, of any server) are failed with `reason` (their outcome is unknown);
    /// queued ones are returned, oldest first, to be run (claims are conditional, so another
    /// server running the same queue is harmless). Executions other servers sharing the
    /// database are running are left alone.
    pub async fn recover_executions(&self, reason: &str) -> Result<(u64, Vec<String>)> {
        on_db!(&self.db, |pool| {
            let outcome = Outcome::error(ExecutionStatus::Error, reason);
            let failed = sqlx::query(
                "UPDATE executions SET status = 'error', result = $1, queue_state = NULL, updated_at = $2
                 WHERE status = 'running' AND (queue_state IS NULL OR queue_state = 'started')
                   AND ($3 IS NULL OR node IS NULL OR node = $4)",
            )
            .bind(outcome.result_json())
            .bind(ts::to_db(now()))
            .bind(self.node.as_deref())
            .bind(self.node.as_deref())
            .execute(pool)
            .await?;
            let queued: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM executions WHERE queue_state = 'queued' ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await?;
            Ok((failed.rows_affected(), queued))
        })
    }
}

impl Store {
    /// The nodes that executions are running on (sync ones, and claimed async ones: both
    /// `started`, which the partial index on `queue_state` finds without a scan): a cluster
    /// fails those of nodes it lost.
    pub async fn running_nodes(&self) -> Result<Vec<String>> {
        on_db!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT DISTINCT node FROM executions
                 WHERE queue_state = 'started' AND status = 'running' AND node IS NOT NULL",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// Fails every execution running on `node` with `reason` (a node that was lost: what
    /// became of them is unknown); returns how many. Idempotent, and harmless to race: a
    /// row another server already finished is left alone.
    pub async fn fail_node_executions(&self, node: &str, reason: &str) -> Result<u64> {
        on_db!(&self.db, |pool| {
            let outcome = Outcome::error(ExecutionStatus::Error, reason);
            let done = sqlx::query(
                "UPDATE executions SET status = 'error', result = $1, queue_state = NULL, updated_at = $2
                 WHERE queue_state = 'started' AND status = 'running' AND node = $3",
            )
            .bind(outcome.result_json())
            .bind(ts::to_db(now()))
            .bind(node)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// Queued executions accepted before `before`, oldest first, at most `limit`: a cluster
    /// offers them to its queue again, in case the server that accepted one was lost before
    /// it could (claims are conditional, so one offered twice still runs once).
    pub async fn queued_before(&self, before: Timestamp, limit: i64) -> Result<Vec<String>> {
        on_db!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT id FROM executions WHERE queue_state = 'queued' AND created_at < $1
                 ORDER BY created_at, id LIMIT $2",
            )
            .bind(ts::to_db(before))
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use qinling_types::{Function, RuntimeStatus};

    use super::*;
    use crate::{FunctionUpdate, RuntimeUpdate};

    async fn setup(store: &Store) -> Function {
        crate::fixtures::runtime(store).await;
        let f = crate::fixtures::function("f", None, "p", 1 << 25);
        store.insert_function(&f).await.unwrap();
        store.get_function("f", &Scope::All).await.unwrap().unwrap()
    }

    fn new(id: &str, sync: bool) -> NewExecution {
        NewExecution {
            id: id.into(),
            function_id: "f".into(),
            function_version: 0,
            function_alias: None,
            description: None,
            sync,
            input: Input::parse(Some("{\"a\": 1}")),
            project_id: "p".into(),
            request_id: Some(format!("req-{id}")),
            trace: Some(TraceContext {
                trace_id: [7; 16],
                parent: Some([9; 8]),
                sampled: true,
                start_unix_nanos: 1_700_000_000_123_456_789,
            }),
        }
    }

    async fn count(store: &Store) -> i64 {
        store
            .get_function("f", &Scope::All)
            .await
            .unwrap()
            .unwrap()
            .count
    }

    #[tokio::test]
    async fn a_cached_definition_is_checked_by_the_insert() {
        for store in crate::testing::stores().await {
            let f = setup(&store).await;
            let e = store
                .insert_execution_if_unchanged(new("e1", true), f.updated_at)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((e.id.as_str(), e.status), ("e1", ExecutionStatus::Running));
            assert_eq!(count(&store).await, 1);
            // The definition changes: the old one no longer admits, the new one does.
            let update = FunctionUpdate {
                timeout: Some(9),
                ..Default::default()
            };
            store.update_function("f", &update).await.unwrap().unwrap();
            let refused = store
                .insert_execution_if_unchanged(new("e2", true), f.updated_at)
                .await
                .unwrap()
                .unwrap_err();
            assert_eq!(refused.id, "e2");
            let g = store.get_function("f", &Scope::All).await.unwrap().unwrap();
            assert!(g.updated_at.is_some());
            assert!(
                store
                    .insert_execution_if_unchanged(new("e2", true), g.updated_at)
                    .await
                    .unwrap()
                    .is_ok()
            );
            // The runtime goes away: refused, though the definition is the same.
            let down = RuntimeUpdate {
                status: Some(RuntimeStatus::Error),
                ..Default::default()
            };
            store.update_runtime("rt", &down).await.unwrap();
            assert!(
                store
                    .insert_execution_if_unchanged(new("e3", true), g.updated_at)
                    .await
                    .unwrap()
                    .is_err()
            );
            // Refused rows were neither recorded nor counted.
            assert_eq!(count(&store).await, 2);
            assert!(
                store
                    .get_execution("e3", &Scope::All)
                    .await
                    .unwrap()
                    .is_none()
            );
            // The unguarded insert only needs the function to exist.
            assert!(
                store
                    .insert_execution(new("e4", false))
                    .await
                    .unwrap()
                    .is_some()
            );
            store.delete_function("f").await.unwrap();
            assert!(
                store
                    .insert_execution(new("e5", false))
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[tokio::test]
    async fn claim_and_finish() {
        for store in crate::testing::stores().await {
            let f = setup(&store).await;
            store
                .insert_execution(new("a", false))
                .await
                .unwrap()
                .unwrap();
            let claimed = store.claim_execution("a").await.unwrap().unwrap();
            assert_eq!(
                claimed.execution.input.to_wire().as_deref(),
                Some("{\"a\": 1}")
            );
            assert_eq!(claimed.function_updated_at, Some(f.updated_at));
            assert!(store.claim_execution("a").await.unwrap().is_none());
            let outcome = Outcome {
                logs: "log\n".into(),
                cpu_ms: Some(3),
                memory_peak_kb: Some(9),
                cold_start_ms: Some(41),
                duration: 1.2345,
                ..Outcome::error(ExecutionStatus::Success, "out")
            };
            let at = store
                .finish_execution("a", &outcome, Some(1 << 27))
                .await
                .unwrap()
                .unwrap();
            let row = store
                .get_execution("a", &Scope::All)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.status, ExecutionStatus::Success);
            assert_eq!(row.logs.as_deref(), Some("log\n"));
            assert_eq!((row.cpu_ms, row.memory_peak_kb), (Some(3), Some(9)));
            assert_eq!(
                row.trace,
                new("a", true).trace,
                "the trace reads back as written"
            );
            assert_eq!(
                (row.duration_ms, row.memory_size),
                (Some(1235), Some(1 << 27))
            );
            assert_eq!(row.request_id.as_deref(), Some("req-a"));
            assert_eq!(row.result, Some(outcome.result_json()));
            assert_eq!(row.updated_at.map(ts::to_db), Some(ts::to_db(at)));
            // Finished once only.
            assert!(
                store
                    .finish_execution("a", &outcome, None)
                    .await
                    .unwrap()
                    .is_none()
            );
            // A queued execution whose function is gone claims with no function.
            store
                .insert_execution(new("b", false))
                .await
                .unwrap()
                .unwrap();
            store.delete_function("f").await.unwrap();
            let claimed = store.claim_execution("b").await.unwrap().unwrap();
            assert_eq!(claimed.function_updated_at, None);
            let (failed, queued) = store.recover_executions("gone").await.unwrap();
            assert_eq!((failed, queued.len()), (1, 0));
        }
    }

    #[tokio::test]
    async fn quotas_are_checked_inside_the_insert() {
        for store in crate::testing::stores().await {
            setup(&store).await;
            let quota = ExecutionQuota {
                concurrent_executions: 2,
                executions_per_minute: 3,
            };
            let admit = |id: &str| store.insert_execution_within(new(id, false), None, quota);
            assert!(matches!(admit("a").await.unwrap(), Admission::Inserted(_)));
            assert!(matches!(admit("b").await.unwrap(), Admission::Inserted(_)));
            match admit("c").await {
                Err(StoreError::OverQuota(OverQuota {
                    resource, in_use, ..
                })) => {
                    assert_eq!((resource, in_use), ("concurrent_executions", 2))
                }
                other => panic!("{other:?}"),
            }
            let done = Outcome::error(ExecutionStatus::Success, "x");
            store.finish_execution("a", &done, None).await.unwrap();
            assert!(matches!(admit("c").await.unwrap(), Admission::Inserted(_)));
            store.finish_execution("b", &done, None).await.unwrap();
            // Two running now, but three started this minute.
            match admit("d").await {
                Err(StoreError::OverQuota(OverQuota {
                    resource, in_use, ..
                })) => {
                    assert_eq!((resource, in_use), ("executions_per_minute", 3))
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(store.executions_last_minute("p").await.unwrap(), 3);
            assert_eq!(count(&store).await, 3);
            // Refusals other than quotas give the row back.
            let mut gone = new("e", false);
            gone.function_id = "nope".into();
            let unlimited = ExecutionQuota {
                concurrent_executions: -1,
                executions_per_minute: -1,
            };
            assert!(matches!(
                store
                    .insert_execution_within(gone, None, unlimited)
                    .await
                    .unwrap(),
                Admission::Refused(_)
            ));
        }
    }

    /// Several servers admitting at once into one PostgreSQL database: exactly the limit
    /// gets in.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers_sharing_a_database_share_its_quotas() {
        let Some(admin) = crate::testing::postgres_admin() else {
            return;
        };
        let url = crate::testing::scratch_database(&admin).await.unwrap();
        let mut servers = Vec::new();
        for _ in 0..3 {
            servers.push(
                Store::open_postgres(&crate::PgConfig::new(url.clone()))
                    .await
                    .unwrap(),
            );
        }
        setup(&servers[0]).await;
        let quota = ExecutionQuota {
            concurrent_executions: 10,
            executions_per_minute: -1,
        };
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let store = servers[i % 3].clone();
                tokio::spawn(async move {
                    match store
                        .insert_execution_within(new(&format!("e{i}"), false), None, quota)
                        .await
                    {
                        Ok(Admission::Inserted(_)) => true,
                        Err(StoreError::OverQuota(_)) => false,
                        other => panic!("{other:?}"),
                    }
                })
            })
            .collect();
        let mut inserted = 0;
        for t in tasks {
            inserted += t.await.unwrap() as usize;
        }
        assert_eq!(inserted, 10);
        assert_eq!(servers[1].unfinished_executions("p").await.unwrap(), 10);
    }

    /// A server restarting fails the executions it was running, not another server's.
    #[tokio::test]
    async fn recovery_fails_only_this_servers_executions() {
        let Some(admin) = crate::testing::postgres_admin() else {
            return;
        };
        let url = crate::testing::scratch_database(&admin).await.unwrap();
        let open = |node: &str| {
            let (url, node) = (url.clone(), node.to_string());
            async move {
                Store::open_postgres(&crate::PgConfig::new(url))
                    .await
                    .unwrap()
                    .with_node(node)
            }
        };
        let (a, b) = (open("a").await, open("b").await);
        setup(&a).await;
        a.insert_execution(new("sync-a", true))
            .await
            .unwrap()
            .unwrap();
        b.insert_execution(new("sync-b", true))
            .await
            .unwrap()
            .unwrap();
        a.insert_execution(new("async-b", false))
            .await
            .unwrap()
            .unwrap();
        a.insert_execution(new("queued", false))
            .await
            .unwrap()
            .unwrap();
        b.claim_execution("async-b").await.unwrap().unwrap();
        // A restarts.
        let (failed, queued) = a.recover_executions("gone").await.unwrap();
        assert_eq!((failed, queued), (1, vec!["queued".to_string()]));
        let status = |id: &'static str| {
            let a = a.clone();
            async move {
                a.get_execution(id, &Scope::All)
                    .await
                    .unwrap()
                    .unwrap()
                    .status
            }
        };
        assert_eq!(status("sync-a").await, ExecutionStatus::Error);
        assert_eq!(status("sync-b").await, ExecutionStatus::Running);
        assert_eq!(status("async-b").await, ExecutionStatus::Running);
        // B restarts too: its two go.
        assert_eq!(b.recover_executions("gone").await.unwrap().0, 2);
    }

    #[tokio::test]
    async fn a_lost_nodes_executions_are_failed_and_old_queued_ones_found() {
        let Some(admin) = crate::testing::postgres_admin() else {
            return;
        };
        let url = crate::testing::scratch_database(&admin).await.unwrap();
        let open = |node: &str| {
            let (url, node) = (url.clone(), node.to_string());
            async move {
                Store::open_postgres(&crate::PgConfig::new(url))
                    .await
                    .unwrap()
                    .with_node(node)
            }
        };
        let (a, b) = (open("a").await, open("b").await);
        setup(&a).await;
        for (store, id, sync) in [
            (&a, "sync-a", true),
            (&b, "sync-b", true),
            (&a, "async-b", false),
            (&a, "queued", false),
        ] {
            store
                .insert_execution(new(id, sync))
                .await
                .unwrap()
                .unwrap();
        }
        b.claim_execution("async-b").await.unwrap().unwrap();
        let mut nodes = a.running_nodes().await.unwrap();
        nodes.sort();
        assert_eq!(nodes, ["a", "b"]);
        // B is lost: its sync and its claimed async execution fail, nothing else.
        assert_eq!(b.fail_node_executions("b", "b was lost").await.unwrap(), 2);
        assert_eq!(a.fail_node_executions("b", "b was lost").await.unwrap(), 0);
        let get = |id: &'static str| {
            let a = a.clone();
            async move { a.get_execution(id, &Scope::All).await.unwrap().unwrap() }
        };
        for id in ["sync-b", "async-b"] {
            let e = get(id).await;
            assert_eq!(e.status, ExecutionStatus::Error);
            assert!(e.result.unwrap().contains("b was lost"));
        }
        assert_eq!(get("sync-a").await.status, ExecutionStatus::Running);
        assert_eq!(a.running_nodes().await.unwrap(), ["a"]);
        // A result arriving late from the lost node does not overwrite the error.
        let late = Outcome::error(ExecutionStatus::Success, "late");
        assert_eq!(
            b.finish_execution("sync-b", &late, None).await.unwrap(),
            None
        );
        // The queued one is found once it is old enough.
        let soon = now() + std::time::Duration::from_secs(1);
        assert_eq!(a.queued_before(soon, 10).await.unwrap(), ["queued"]);
        let long_ago = now() - std::time::Duration::from_secs(60);
        assert!(a.queued_before(long_ago, 10).await.unwrap().is_empty());
    }

    #[test]
    fn chunk_sizes() {
        for n in [0, 1, 2, 3, 7, 64, 65, 70, 129, 512] {
            let sizes: Vec<usize> = chunks(n).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{sizes:?}");
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= MAX_CHUNK));
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
        }
        assert_eq!(chunks(70).collect::<Vec<_>>(), [64, 4, 2]);
    }

    /// Spawns `n` tasks that each submit one write; on the test's single thread they are all
    /// queued before the writer runs, so they make one batch.
    async fn together<T, F>(n: usize, f: impl Fn(usize) -> F) -> Vec<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_batch_of_each_kind_is_written_with_a_few_statements() {
        for store in crate::testing::stores().await {
            let f = setup(&store).await;
            let before = store.writer_stats();
            // 70 rows (chunks of 64, 4 and 2), a stale definition and a missing function.
            let inserted = together(72, |i| {
                let store = store.clone();
                async move {
                    let mut e = new(&format!("e{i}"), i % 2 == 0);
                    match i {
                        70 => store
                            .insert_execution_if_unchanged(e, Some(now()))
                            .await
                            .map(|r| r.ok()),
                        71 => {
                            e.function_id = "nope".into();
                            store.insert_execution(e).await
                        }
                        _ => store
                            .insert_execution_if_unchanged(e, f.updated_at)
                            .await
                            .map(|r| r.ok()),
                    }
                }
            })
            .await;
            let ok: Vec<bool> = inserted
                .iter()
                .map(|r| r.as_ref().unwrap().is_some())
                .collect();
            assert!(ok[..70].iter().all(|b| *b) && !ok[70] && !ok[71]);
            let stats = store.writer_stats();
            assert_eq!(
                (stats.batches - before.batches, stats.retried_batches),
                (1, 0)
            );
            assert_eq!(count(&store).await, 70);

            // Claims of the 35 async ones, one of them twice.
            let claimed = together(36, |i| {
                let store = store.clone();
                let id = format!("e{}", if i == 35 { 1 } else { 2 * i + 1 });
                async move { store.claim_execution(&id).await.unwrap() }
            })
            .await;
            assert_eq!(claimed.iter().filter(|c| c.is_some()).count(), 35);
            assert!(claimed[35].is_none(), "claimed twice");
            let first = claimed[0].as_ref().unwrap();
            assert_eq!(
                (first.execution.id.as_str(), first.function_updated_at),
                ("e1", Some(f.updated_at))
            );

            // Every outcome at once, each recorded once.
            let outcome = Outcome::error(ExecutionStatus::Success, "done");
            let finish_all = |store: Store| {
                let outcome = outcome.clone();
                together(70, move |i| {
                    let (store, outcome) = (store.clone(), outcome.clone());
                    async move {
                        store
                            .finish_execution(&format!("e{i}"), &outcome, Some(1 << 20))
                            .await
                            .unwrap()
                    }
                })
            };
            assert!(finish_all(store.clone()).await.iter().all(Option::is_some));
            assert!(finish_all(store.clone()).await.iter().all(Option::is_none));
            let rows = store
                .list_executions(&Scope::All, &ExecutionFilter::default())
                .await
                .unwrap();
            assert_eq!(rows.len(), 70);
            assert!(
                rows.iter().all(|r| r.status == ExecutionStatus::Success
                    && r.result == Some(outcome.result_json()))
            );
            let (failed, queued) = store.recover_executions("gone").await.unwrap();
            assert_eq!((failed, queued.len()), (0, 0));
        }
    }

    #[tokio::test]
    async fn a_duplicate_in_a_batch_fails_alone() {
        for store in crate::testing::stores().await {
            setup(&store).await;
            let inserted = together(5, |i| {
                let store = store.clone();
                let id = if i == 3 {
                    "e0".to_string()
                } else {
                    format!("e{i}")
                };
                async move { store.insert_execution(new(&id, true)).await }
            })
            .await;
            assert!(matches!(inserted[3], Err(StoreError::Db(_))));
            assert!(
                inserted
                    .iter()
                    .enumerate()
                    .all(|(i, r)| i == 3 || matches!(r, Ok(Some(_))))
            );
            assert_eq!(store.writer_stats().retried_batches, 1);
            assert_eq!(count(&store).await, 4);
        }
    }

    /// Read-modify-write transactions on the pool take the write lock up front, so a commit
    /// of the execution writer between their read and their write cannot fail them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pool_writes_beside_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("q.sqlite")).await.unwrap();
        setup(&store).await;
        let writes = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..300 {
                    store
                        .insert_execution(new(&format!("e{i}"), true))
                        .await
                        .unwrap()
                        .unwrap();
                }
            })
        };
        for i in 0..100 {
            let update = FunctionUpdate {
                timeout: Some(1 + i % 10),
                ..Default::default()
            };
            store.update_function("f", &update).await.unwrap().unwrap();
        }
        writes.await.unwrap();
        assert_eq!(count(&store).await, 300);
        store.close().await;
    }
}
