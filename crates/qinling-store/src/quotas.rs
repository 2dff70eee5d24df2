//! Per-project quota overrides and the usage counts quotas are checked against. Which
//! resources exist and what the defaults are is the engine's business (`qinling_engine`
//! `quotas`); here a quota is a (project, resource name) → limit row.

use crate::db::{Get, on_db};

use crate::{Result, Store};

impl Store {
    /// The project's overrides, as (resource, limit) pairs.
    pub async fn quota_overrides(&self, project_id: &str) -> Result<Vec<(String, i64)>> {
        on_db!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT resource, hard_limit FROM quotas WHERE project_id = $1 ORDER BY resource",
            )
            .bind(project_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.get("resource")?, r.get("hard_limit")?)))
                .collect()
        })
    }

    /// Sets (or, with `None`, removes) a project's override of one quota.
    pub async fn set_quota(
        &self,
        project_id: &str,
        resource: &str,
        limit: Option<i64>,
    ) -> Result<()> {
        on_db!(&self.db, |pool| {
            match limit {
                Some(limit) => {
                    sqlx::query(
                        "INSERT INTO quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3)
                         ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
                    )
                    .bind(project_id)
                    .bind(resource)
                    .bind(limit)
                    .execute(pool)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM quotas WHERE project_id = $1 AND resource = $2")
                        .bind(project_id)
                        .bind(resource)
                        .execute(pool)
                        .await?;
                }
            }
            Ok(())
        })
    }

    /// (number of functions, total package bytes) of a project.
    pub async fn function_usage(&self, project_id: &str) -> Result<(i64, i64)> {
        on_db!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(package_size), 0) AS BIGINT) AS bytes
                 FROM functions WHERE project_id = $1",
            )
            .bind(project_id)
            .fetch_one(pool)
            .await?;
            Ok((row.get("n")?, row.get("bytes")?))
        })
    }

    /// Executions of a project that have not finished (queued or running).
    pub async fn unfinished_executions(&self, project_id: &str) -> Result<i64> {
        on_db!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM executions
                 WHERE queue_state IS NOT NULL AND project_id = $1",
            )
            .bind(project_id)
            .fetch_one(pool)
            .await?;
            Ok(row.get("n")?)
        })
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn overrides_set_replace_remove() {
        for store in crate::testing::stores().await {
            store.set_quota("p", "functions", Some(3)).await.unwrap();
            store.set_quota("p", "functions", Some(4)).await.unwrap();
            store.set_quota("p", "workers", Some(-1)).await.unwrap();
            store.set_quota("q", "workers", Some(9)).await.unwrap();
            assert_eq!(
                store.quota_overrides("p").await.unwrap(),
                vec![("functions".to_string(), 4), ("workers".to_string(), -1)]
            );
            store.set_quota("p", "functions", None).await.unwrap();
            assert_eq!(
                store.quota_overrides("p").await.unwrap(),
                vec![("workers".to_string(), -1)]
            );
            assert_eq!(store.function_usage("p").await.unwrap(), (0, 0));
            assert_eq!(store.unfinished_executions("p").await.unwrap(), 0);
        }
    }
}
