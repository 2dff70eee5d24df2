//! Function alias rows, addressed by (project, name).

use qinling_types::FunctionAlias;
use sqlx::Row;

use crate::{Result, Scope, Store, StoreError, ts};

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<FunctionAlias> {
    let created: String = row.try_get("created_at")?;
    Ok(FunctionAlias {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        function_id: row.try_get::<String, _>("function_id")?.into(),
        function_version: row.try_get("function_version")?,
        additional_version: row.try_get("additional_version")?,
        additional_version_weight: row
            .try_get::<Option<i64>, _>("additional_version_weight")?
            .map(|w| w as u32),
        project_id: row.try_get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "function_aliases",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.try_get("updated_at")?),
    })
}

impl Store {
    /// Inserts a new alias, or replaces the row with the same id (an update).
    pub async fn put_alias(&self, a: &FunctionAlias) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO function_aliases (id, name, description, function_id, function_version,
                    additional_version, additional_version_weight, project_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&a.name)
        .bind(&a.description)
        .bind(a.function_id.as_str())
        .bind(a.function_version)
        .bind(a.additional_version)
        .bind(a.additional_version_weight.map(i64::from))
        .bind(&a.project_id)
        .bind(ts::to_db(a.created_at))
        .bind(a.updated_at.map(ts::to_db))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The alias `name` of `project_id`.
    pub async fn get_alias(&self, project_id: &str, name: &str) -> Result<Option<FunctionAlias>> {
        let row = sqlx::query("SELECT * FROM function_aliases WHERE project_id = ? AND name = ?")
            .bind(project_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_aliases(&self, scope: &Scope) -> Result<Vec<FunctionAlias>> {
        let rows =
            match scope.project() {
                Some(p) => sqlx::query(
                    "SELECT * FROM function_aliases WHERE project_id = ? ORDER BY created_at, id",
                )
                .bind(p)
                .fetch_all(&self.pool)
                .await?,
                None => {
                    sqlx::query("SELECT * FROM function_aliases ORDER BY created_at, id")
                        .fetch_all(&self.pool)
                        .await?
                }
            };
        rows.iter().map(from_row).collect()
    }

    /// Aliases that point at a function (any version, or one), either as their main or their
    /// additional version.
    pub async fn aliases_of_function(
        &self,
        function_id: &str,
        version: Option<i64>,
    ) -> Result<Vec<FunctionAlias>> {
        let rows = sqlx::query(
            "SELECT * FROM function_aliases WHERE function_id = ?
                 AND (? IS NULL OR function_version = ? OR additional_version = ?)
             ORDER BY created_at, id",
        )
        .bind(function_id)
        .bind(version)
        .bind(version)
        .bind(version)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn delete_alias(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM function_aliases WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
