//! Runtime rows.

use qinling_types::{Runtime, RuntimeStatus, now};
use sqlx::Row;

use crate::{Result, Scope, Store, StoreError, ts};

/// Fields of a runtime that `PUT` may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RuntimeUpdate {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub image: Option<String>,
    pub status: Option<RuntimeStatus>,
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Runtime> {
    let status: String = row.try_get("status")?;
    let created: String = row.try_get("created_at")?;
    Ok(Runtime {
        id: row.try_get::<String, _>("id")?.into(),
        name: row.try_get("name")?,
        image: row.try_get("image")?,
        description: row.try_get("description")?,
        is_public: row.try_get("is_public")?,
        trusted: row.try_get("trusted")?,
        status: RuntimeStatus::parse(&status).ok_or(StoreError::Corrupt {
            table: "runtimes",
            what: status.clone(),
        })?,
        project_id: row.try_get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "runtimes",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.try_get("updated_at")?),
    })
}

impl Store {
    pub async fn insert_runtime(&self, r: &Runtime) -> Result<()> {
        sqlx::query(
            "INSERT INTO runtimes (id, name, image, description, is_public, trusted, status, project_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.id.as_str())
        .bind(&r.name)
        .bind(&r.image)
        .bind(&r.description)
        .bind(r.is_public)
        .bind(r.trusted)
        .bind(r.status.as_str())
        .bind(&r.project_id)
        .bind(ts::to_db(r.created_at))
        .bind(r.updated_at.map(ts::to_db))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A runtime visible to `scope`: its own, or public ones.
    pub async fn get_runtime(&self, id: &str, scope: &Scope) -> Result<Option<Runtime>> {
        let row = match scope.project() {
            Some(p) => {
                sqlx::query(
                    "SELECT * FROM runtimes WHERE id = ? AND (project_id = ? OR is_public = 1)",
                )
                .bind(id)
                .bind(p)
                .fetch_optional(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT * FROM runtimes WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_runtimes(&self, scope: &Scope) -> Result<Vec<Runtime>> {
        let rows = match scope.project() {
            Some(p) => sqlx::query("SELECT * FROM runtimes WHERE project_id = ? OR is_public = 1 ORDER BY created_at, id")
                .bind(p)
                .fetch_all(&self.pool)
                .await?,
            None => sqlx::query("SELECT * FROM runtimes ORDER BY created_at, id").fetch_all(&self.pool).await?,
        };
        rows.iter().map(from_row).collect()
    }

    /// Applies `update`; returns the new row, or `None` if the runtime is gone.
    pub async fn update_runtime(
        &self,
        id: &str,
        update: &RuntimeUpdate,
    ) -> Result<Option<Runtime>> {
        let mut tx = self.begin_write().await?;
        let Some(row) = sqlx::query("SELECT * FROM runtimes WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let mut r = from_row(&row)?;
        if let Some(name) = &update.name {
            r.name = name.clone();
        }
        if let Some(d) = &update.description {
            r.description = d.clone();
        }
        if let Some(image) = &update.image {
            r.image = image.clone();
        }
        if let Some(status) = update.status {
            r.status = status;
        }
        r.updated_at = Some(now());
        sqlx::query("UPDATE runtimes SET name = ?, description = ?, image = ?, status = ?, updated_at = ? WHERE id = ?")
            .bind(&r.name)
            .bind(&r.description)
            .bind(&r.image)
            .bind(r.status.as_str())
            .bind(r.updated_at.map(ts::to_db))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(r))
    }

    /// Deletes a runtime unless a function (of any project) uses it. Returns `Ok(false)` when
    /// it is in use, in the same transaction as the check so no function can slip in between.
    pub async fn delete_runtime(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM functions WHERE runtime_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if used > 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM runtimes WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
