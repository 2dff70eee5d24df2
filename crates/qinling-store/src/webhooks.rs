//! Webhook rows.

use crate::db::{Get, on_db};
use qinling_types::{FunctionId, Webhook};

use crate::{Result, Scope, Store, StoreError, ts};

fn from_row<R: Get>(row: &R) -> Result<Webhook> {
    let created: String = row.get("created_at")?;
    Ok(Webhook {
        id: row.get::<String>("id")?.into(),
        function_id: row
            .get::<Option<String>>("function_id")?
            .map(FunctionId::from),
        function_alias: row.get("function_alias")?,
        function_version: row.get("function_version")?,
        description: row.get("description")?,
        project_id: row.get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "webhooks",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.get("updated_at")?),
    })
}

impl Store {
    /// Inserts a new webhook, or replaces the row with the same id (an update).
    pub async fn put_webhook(&self, w: &Webhook) -> Result<()> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO webhooks (id, function_id, function_alias, function_version, description,
                        project_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id) DO UPDATE SET function_id = excluded.function_id, function_alias = excluded.function_alias, function_version = excluded.function_version, description = excluded.description, project_id = excluded.project_id, created_at = excluded.created_at, updated_at = excluded.updated_at",
            )
            .bind(w.id.as_str())
            .bind(w.function_id.as_deref())
            .bind(&w.function_alias)
            .bind(w.function_version)
            .bind(&w.description)
            .bind(&w.project_id)
            .bind(ts::to_db(w.created_at))
            .bind(w.updated_at.map(ts::to_db))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn get_webhook(&self, id: &str, scope: &Scope) -> Result<Option<Webhook>> {
        on_db!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT * FROM webhooks WHERE id = $1 AND ($2 IS NULL OR project_id = $3)",
            )
            .bind(id)
            .bind(scope.project())
            .bind(scope.project())
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    pub async fn list_webhooks(&self, scope: &Scope) -> Result<Vec<Webhook>> {
        on_db!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM webhooks WHERE ($1 IS NULL OR project_id = $2) ORDER BY created_at, id",
            )
            .bind(scope.project())
            .bind(scope.project())
            .fetch_all(pool)
            .await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// How many webhooks target a function (any version, or one) directly.
    pub async fn webhooks_of_function(
        &self,
        function_id: &str,
        version: Option<i64>,
    ) -> Result<i64> {
        on_db!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM webhooks WHERE function_id = $1
                     AND ($2 IS NULL OR COALESCE(function_version, 0) = $3)",
            )
            .bind(function_id)
            .bind(version)
            .bind(version)
            .fetch_one(pool)
            .await?)
        })
    }

    /// How many webhooks of `project_id` target the alias `name`.
    pub async fn webhooks_of_alias(&self, project_id: &str, name: &str) -> Result<i64> {
        on_db!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM webhooks WHERE project_id = $1 AND function_alias = $2",
            )
            .bind(project_id)
            .bind(name)
            .fetch_one(pool)
            .await?)
        })
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        on_db!(&self.db, |pool| {
            let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
