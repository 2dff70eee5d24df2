//! Usage for billing: finished executions summed per project and function (or per project)
//! over a time range, in one `GROUP BY` query. An execution counts in the range its
//! `created_at` falls in (`since` inclusive, `until` exclusive); only finished ones count
//! (`success`, `failed`, `error`). GiB-seconds are `memory_size / 2^30 × duration` summed
//! over the executions, from the columns each execution recorded when it finished; a row
//! without a memory limit (nothing ran) counts 0.

use crate::db::{Get, on_db};
use qinling_types::{Timestamp, UsageGroup, UsageRow};

use crate::{Result, Scope, Store, ts};

/// What to sum.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub scope: Scope,
    pub function_id: Option<String>,
    /// Inclusive; `None`: from the beginning.
    pub since: Option<Timestamp>,
    /// Exclusive.
    pub until: Timestamp,
    pub group_by: UsageGroup,
}

/// Every sum is cast: PostgreSQL sums BIGINT to NUMERIC, which neither side wants.
const SUMS: &str = "COUNT(*) AS executions,
       CAST(COALESCE(SUM(CASE WHEN e.status = 'success' THEN 1 ELSE 0 END), 0) AS BIGINT) AS succeeded,
       CAST(COALESCE(SUM(CASE WHEN e.status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed,
       CAST(COALESCE(SUM(CASE WHEN e.status = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errored,
       CAST(COALESCE(SUM(e.duration_ms), 0) AS BIGINT) AS duration_ms,
       CAST(COALESCE(SUM(e.cpu_ms), 0) AS BIGINT) AS cpu_ms,
       CAST(COALESCE(SUM(CAST(e.memory_size AS DOUBLE PRECISION) * e.duration_ms), 0.0) AS DOUBLE PRECISION) AS memory_byte_ms,
       MAX(e.memory_peak_kb) AS memory_peak_max_kb";

impl Store {
    /// Usage per group, ordered by project then function id.
    pub async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageRow>> {
        on_db!(&self.db, |pool| {
            let by_function = q.group_by == UsageGroup::Function;
            let mut sql = if by_function {
                format!(
                    "SELECT e.project_id, e.function_id, MAX(f.name) AS function_name, {SUMS}
    FROM executions e LEFT JOIN functions f ON f.id = e.function_id"
                )
            } else {
                format!("SELECT e.project_id, {SUMS}\nFROM executions e")
            };
            sql.push_str(
                "\nWHERE e.status IN ('success', 'failed', 'error') AND e.created_at < $1",
            );
            let mut binds = vec![ts::to_db(q.until)];
            if let Some(since) = q.since {
                binds.push(ts::to_db(since));
                sql.push_str(&format!(" AND e.created_at >= ${}", binds.len()));
            }
            if let Some(p) = q.scope.project() {
                binds.push(p.to_string());
                sql.push_str(&format!(" AND e.project_id = ${}", binds.len()));
            }
            if let Some(f) = &q.function_id {
                binds.push(f.clone());
                sql.push_str(&format!(" AND e.function_id = ${}", binds.len()));
            }
            sql.push_str(if by_function {
                "\nGROUP BY e.project_id, e.function_id ORDER BY e.project_id, e.function_id"
            } else {
                "\nGROUP BY e.project_id ORDER BY e.project_id"
            });
            // Built from fixed text and `$N` placeholders only; values are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in &binds {
                query = query.bind(b);
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(UsageRow {
                        project_id: row.get("project_id")?,
                        function_id: if by_function {
                            row.get("function_id")?
                        } else {
                            None
                        },
                        function_name: if by_function {
                            row.get("function_name")?
                        } else {
                            None
                        },
                        executions: row.get("executions")?,
                        succeeded: row.get("succeeded")?,
                        failed: row.get("failed")?,
                        errored: row.get("errored")?,
                        duration_ms: row.get("duration_ms")?,
                        cpu_ms: row.get("cpu_ms")?,
                        memory_byte_ms: row.get("memory_byte_ms")?,
                        memory_peak_max_kb: row.get("memory_peak_max_kb")?,
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use qinling_types::{ExecutionStatus, Outcome, now};

    use super::*;
    use crate::NewExecution;

    async fn function(store: &Store, id: &str, project: &str, memory_size: u64) {
        let f = crate::fixtures::function(id, Some(format!("{id}-name")), project, memory_size);
        store.insert_function(&f).await.unwrap();
    }

    /// Records one execution and, given an outcome, finishes it.
    async fn run(
        store: &Store,
        id: &str,
        function_id: &str,
        project: &str,
        outcome: Option<(ExecutionStatus, f64, u64, u64, Option<u64>)>,
    ) {
        let new = NewExecution {
            id: id.into(),
            function_id: function_id.into(),
            function_version: 0,
            function_alias: None,
            description: None,
            sync: true,
            input: qinling_types::Input::None,
            project_id: project.into(),
            request_id: Some(format!("req-{id}")),
            trace: None,
        };
        store.insert_execution(new).await.unwrap().unwrap();
        if let Some((status, duration, cpu_ms, peak_kb, memory)) = outcome {
            let outcome = Outcome {
                duration,
                cpu_ms: Some(cpu_ms),
                memory_peak_kb: Some(peak_kb),
                ..Outcome::error(status, "x")
            };
            store
                .finish_execution(id, &outcome, memory)
                .await
                .unwrap()
                .unwrap();
        }
    }

    const MIB: u64 = 1 << 20;

    async fn setup(store: Store) -> (Store, Timestamp, Timestamp) {
        crate::fixtures::runtime(&store).await;
        function(&store, "f1", "p1", 128 * MIB).await;
        function(&store, "f2", "p1", 256 * MIB).await;
        function(&store, "g", "p2", 1024 * MIB).await;
        let before = now();
        use ExecutionStatus::*;
        run(
            &store,
            "a",
            "f1",
            "p1",
            Some((Success, 1.5, 100, 1000, Some(128 * MIB))),
        )
        .await;
        run(
            &store,
            "b",
            "f1",
            "p1",
            Some((Failed, 0.25, 50, 3000, Some(128 * MIB))),
        )
        .await;
        run(
            &store,
            "c",
            "f2",
            "p1",
            Some((Success, 2.0, 10, 2000, Some(256 * MIB))),
        )
        .await;
        run(&store, "d", "f2", "p1", Some((Error, 0.0, 0, 0, None))).await;
        run(
            &store,
            "e",
            "g",
            "p2",
            Some((Success, 4.0, 400, 500, Some(1024 * MIB))),
        )
        .await;
        // Still running: not counted.
        run(&store, "r", "g", "p2", None).await;
        let after = now();
        (store, before, after)
    }

    fn query(scope: Scope, until: Timestamp) -> UsageQuery {
        UsageQuery {
            scope,
            function_id: None,
            since: None,
            until,
            group_by: UsageGroup::Function,
        }
    }

    #[tokio::test]
    async fn sums_per_function_and_project() {
        for store in crate::testing::stores().await {
            let (store, _, after) = setup(store).await;
            let rows = store
                .usage(&query(Scope::All, after + time::Duration::seconds(1)))
                .await
                .unwrap();
            let ids: Vec<_> = rows
                .iter()
                .map(|r| (r.project_id.as_str(), r.function_id.as_deref().unwrap()))
                .collect();
            assert_eq!(ids, [("p1", "f1"), ("p1", "f2"), ("p2", "g")]);
            let f1 = &rows[0];
            assert_eq!(f1.function_name.as_deref(), Some("f1-name"));
            assert_eq!(
                (f1.executions, f1.succeeded, f1.failed, f1.errored),
                (2, 1, 1, 0)
            );
            assert_eq!((f1.duration_ms, f1.cpu_ms), (1750, 150));
            assert_eq!(f1.memory_peak_max_kb, Some(3000));
            // 1/8 GiB × 1.75 s.
            assert!((f1.gib_seconds() - 0.21875).abs() < 1e-12, "{f1:?}");
            let f2 = &rows[1];
            assert_eq!((f2.executions, f2.succeeded, f2.errored), (2, 1, 1));
            // The errored one has no memory limit: only 1/4 GiB × 2 s.
            assert!((f2.gib_seconds() - 0.5).abs() < 1e-12, "{f2:?}");
            let g = &rows[2];
            assert_eq!(
                (g.executions, g.duration_ms),
                (1, 4000),
                "running not counted"
            );
            assert!((g.gib_seconds() - 4.0).abs() < 1e-12);

            // Per project, and one project's scope.
            let mut q = query(Scope::All, after + time::Duration::seconds(1));
            q.group_by = UsageGroup::Project;
            let rows = store.usage(&q).await.unwrap();
            assert_eq!(rows.len(), 2);
            assert_eq!(
                (
                    rows[0].project_id.as_str(),
                    rows[0].function_id.as_deref(),
                    rows[0].executions,
                    rows[0].duration_ms,
                    rows[0].memory_peak_max_kb
                ),
                ("p1", None, 4, 3750, Some(3000))
            );
            assert!((rows[0].gib_seconds() - 0.71875).abs() < 1e-12);
            q.scope = Scope::Project("p2".into());
            let rows = store.usage(&q).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!((rows[0].project_id.as_str(), rows[0].cpu_ms), ("p2", 400));

            // One function.
            let mut q = query(Scope::All, after + time::Duration::seconds(1));
            q.function_id = Some("f2".into());
            let rows = store.usage(&q).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].function_id.as_deref(), Some("f2"));

            // Totals add up, peaks take the max.
            let all = store
                .usage(&query(Scope::All, after + time::Duration::seconds(1)))
                .await
                .unwrap();
            let mut total = UsageRow::default();
            for r in &all {
                total.add(r);
            }
            assert_eq!((total.executions, total.cpu_ms), (5, 560));
            assert_eq!(total.memory_peak_max_kb, Some(3000));
            assert!((total.gib_seconds() - 4.71875).abs() < 1e-12);
        }
    }

    /// Rows finished before migration 0010 get their duration from `result` and their memory
    /// limit from the definition: their usage reads as if they had recorded both.
    #[tokio::test]
    async fn the_migration_fills_in_older_rows() {
        // SQLite's migration 0010; PostgreSQL starts with these columns.
        {
            let store = Store::in_memory().await.unwrap();
            let (store, _, after) = setup(store).await;
            let q = query(Scope::All, after);
            let recorded = store.usage(&q).await.unwrap();
            sqlx::query("UPDATE executions SET duration_ms = NULL, memory_size = NULL")
                .execute(store.sqlite_pool())
                .await
                .unwrap();
            let blank = store.usage(&q).await.unwrap();
            assert!(
                blank
                    .iter()
                    .all(|r| r.duration_ms == 0 && r.gib_seconds() == 0.0)
            );
            let migration = include_str!("../migrations/0010_usage.sql");
            let code: Vec<&str> = migration
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect();
            let code = code.join("\n");
            let updates: Vec<&str> = code
                .split(';')
                .filter(|stmt| stmt.trim_start().starts_with("UPDATE"))
                .collect();
            assert_eq!(updates.len(), 2, "{updates:?}");
            for stmt in updates {
                sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.to_string()))
                    .execute(store.sqlite_pool())
                    .await
                    .unwrap();
            }
            assert_eq!(store.usage(&q).await.unwrap(), recorded);
            let running = store
                .get_execution("r", &Scope::All)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((running.duration_ms, running.memory_size), (None, None));
        }
    }

    #[tokio::test]
    async fn the_range_is_since_inclusive_until_exclusive() {
        for store in crate::testing::stores().await {
            let (store, before, after) = setup(store).await;
            let count = |since: Option<Timestamp>, until: Timestamp| {
                let store = store.clone();
                async move {
                    let mut q = query(Scope::All, until);
                    q.since = since;
                    let rows = store.usage(&q).await.unwrap();
                    rows.iter().map(|r| r.executions).sum::<i64>()
                }
            };
            assert_eq!(count(None, after).await, 5);
            assert_eq!(count(Some(before), after).await, 5);
            assert_eq!(count(None, before).await, 0);
            assert_eq!(
                count(Some(after), after + time::Duration::hours(1)).await,
                0
            );
            // The boundary: an execution created exactly at `until` is not in, at `since` is.
            let c = store
                .get_execution("c", &Scope::All)
                .await
                .unwrap()
                .unwrap()
                .created_at;
            assert_eq!(count(Some(before), c).await, 2, "a and b only");
            assert_eq!(count(Some(c), after).await, 3, "c, d and e");
            assert!(
                store
                    .usage(&query(Scope::All, before))
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }
}
