//! Webhook rows.

use qinling_types::{FunctionId, Webhook};
use sqlx::Row;

use crate::{Result, Scope, Store, StoreError, ts};

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Webhook> {
    let created: String = row.try_get("created_at")?;
    Ok(Webhook {
        id: row.try_get::<String, _>("id")?.into(),
        function_id: row
            .try_get::<Option<String>, _>("function_id")?
            .map(FunctionId::from),
        function_alias: row.try_get("function_alias")?,
        function_version: row.try_get("function_version")?,
        description: row.try_get("description")?,
        project_id: row.try_get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "webhooks",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.try_get("updated_at")?),
    })
}

impl Store {
    /// Inserts a new webhook, or replaces the row with the same id (an update).
    pub async fn put_webhook(&self, w: &Webhook) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO webhooks (id, function_id, function_alias, function_version, description,
                    project_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(w.id.as_str())
        .bind(w.function_id.as_deref())
        .bind(&w.function_alias)
        .bind(w.function_version)
        .bind(&w.description)
        .bind(&w.project_id)
        .bind(ts::to_db(w.created_at))
        .bind(w.updated_at.map(ts::to_db))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_webhook(&self, id: &str, scope: &Scope) -> Result<Option<Webhook>> {
        let row =
            sqlx::query("SELECT * FROM webhooks WHERE id = ? AND (? IS NULL OR project_id = ?)")
                .bind(id)
                .bind(scope.project())
                .bind(scope.project())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_webhooks(&self, scope: &Scope) -> Result<Vec<Webhook>> {
        let rows = sqlx::query(
            "SELECT * FROM webhooks WHERE (? IS NULL OR project_id = ?) ORDER BY created_at, id",
        )
        .bind(scope.project())
        .bind(scope.project())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// How many webhooks target a function (any version, or one) directly.
    pub async fn webhooks_of_function(
        &self,
        function_id: &str,
        version: Option<i64>,
    ) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhooks WHERE function_id = ?
                 AND (? IS NULL OR COALESCE(function_version, 0) = ?)",
        )
        .bind(function_id)
        .bind(version)
        .bind(version)
        .fetch_one(&self.pool)
        .await?)
    }

    /// How many webhooks of `project_id` target the alias `name`.
    pub async fn webhooks_of_alias(&self, project_id: &str, name: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhooks WHERE project_id = ? AND function_alias = ?",
        )
        .bind(project_id)
        .bind(name)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
