//! Function alias rows, addressed by (project, name).

use crate::db::{Get, on_db};
use qinling_types::FunctionAlias;

use crate::{Result, Scope, Store, StoreError, ts};

fn from_row<R: Get>(row: &R) -> Result<FunctionAlias> {
    let created: String = row.get("created_at")?;
    Ok(FunctionAlias {
        id: row.get("id")?,
        name: row.get("name")?,
        description: row.get("description")?,
        function_id: row.get::<String>("function_id")?.into(),
        function_version: row.get("function_version")?,
        additional_version: row.get("additional_version")?,
        additional_version_weight: row
            .get::<Option<i64>>("additional_version_weight")?
            .map(|w| w as u32),
        project_id: row.get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "function_aliases",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.get("updated_at")?),
    })
}

impl Store {
    /// Inserts a new alias, or replaces the row with the same id (an update).
    pub async fn put_alias(&self, a: &FunctionAlias) -> Result<()> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO function_aliases (id, name, description, function_id, function_version,
                        additional_version, additional_version_weight, project_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, function_id = excluded.function_id, function_version = excluded.function_version, additional_version = excluded.additional_version, additional_version_weight = excluded.additional_version_weight, project_id = excluded.project_id, created_at = excluded.created_at, updated_at = excluded.updated_at",
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
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The alias `name` of `project_id`.
    pub async fn get_alias(&self, project_id: &str, name: &str) -> Result<Option<FunctionAlias>> {
        on_db!(&self.db, |pool| {
            let row =
                sqlx::query("SELECT * FROM function_aliases WHERE project_id = $1 AND name = $2")
                    .bind(project_id)
                    .bind(name)
                    .fetch_optional(pool)
                    .await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    pub async fn list_aliases(&self, scope: &Scope) -> Result<Vec<FunctionAlias>> {
        on_db!(&self.db, |pool| {
            let rows = match scope.project() {
                Some(p) => sqlx::query(
                    "SELECT * FROM function_aliases WHERE project_id = $1 ORDER BY created_at, id",
                )
                .bind(p)
                .fetch_all(pool)
                .await?,
                None => {
                    sqlx::query("SELECT * FROM function_aliases ORDER BY created_at, id")
                        .fetch_all(pool)
                        .await?
                }
            };
            rows.iter().map(from_row).collect()
        })
    }

    /// Aliases that point at a function (any version, or one), either as their main or their
    /// additional version.
    pub async fn aliases_of_function(
        &self,
        function_id: &str,
        version: Option<i64>,
    ) -> Result<Vec<FunctionAlias>> {
        on_db!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM function_aliases WHERE function_id = $1
                     AND ($2 IS NULL OR function_version = $3 OR additional_version = $4)
                 ORDER BY created_at, id",
            )
            .bind(function_id)
            .bind(version)
            .bind(version)
            .bind(version)
            .fetch_all(pool)
            .await?;
            rows.iter().map(from_row).collect()
        })
    }

    pub async fn delete_alias(&self, id: &str) -> Result<bool> {
        on_db!(&self.db, |pool| {
            let done = sqlx::query("DELETE FROM function_aliases WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
