//! Runtime rows.

use crate::db::{Get, on_db};
use qinling_types::{Runtime, RuntimeStatus, now};

use crate::{Result, Scope, Store, StoreError, ts};

/// Fields of a runtime that `PUT` may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RuntimeUpdate {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub image: Option<String>,
    pub status: Option<RuntimeStatus>,
}

fn from_row<R: Get>(row: &R) -> Result<Runtime> {
    let status: String = row.get("status")?;
    let created: String = row.get("created_at")?;
    Ok(Runtime {
        id: row.get::<String>("id")?.into(),
        name: row.get("name")?,
        image: row.get("image")?,
        description: row.get("description")?,
        is_public: row.get("is_public")?,
        trusted: row.get("trusted")?,
        status: RuntimeStatus::parse(&status).ok_or(StoreError::Corrupt {
            table: "runtimes",
            what: status.clone(),
        })?,
        project_id: row.get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "runtimes",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.get("updated_at")?),
    })
}

impl Store {
    pub async fn insert_runtime(&self, r: &Runtime) -> Result<()> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO runtimes (id, name, image, description, is_public, trusted, status, project_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A runtime visible to `scope`: its own, or public ones.
    pub async fn get_runtime(&self, id: &str, scope: &Scope) -> Result<Option<Runtime>> {
        on_db!(&self.db, |pool| {
            let row = match scope.project() {
                Some(p) => {
                    sqlx::query(
                        "SELECT * FROM runtimes WHERE id = $1 AND (project_id = $2 OR is_public = TRUE)",
                    )
                    .bind(id)
                    .bind(p)
                    .fetch_optional(pool)
                    .await?
                }
                None => {
                    sqlx::query("SELECT * FROM runtimes WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await?
                }
            };
            row.as_ref().map(from_row).transpose()
        })
    }

    pub async fn list_runtimes(&self, scope: &Scope) -> Result<Vec<Runtime>> {
        on_db!(&self.db, |pool| {
            let rows = match scope.project() {
                Some(p) => sqlx::query("SELECT * FROM runtimes WHERE project_id = $1 OR is_public = TRUE ORDER BY created_at, id")
                    .bind(p)
                    .fetch_all(pool)
                    .await?,
                None => sqlx::query("SELECT * FROM runtimes ORDER BY created_at, id").fetch_all(pool).await?,
            };
            rows.iter().map(from_row).collect()
        })
    }

    /// Applies `update`; returns the new row, or `None` if the runtime is gone.
    pub async fn update_runtime(
        &self,
        id: &str,
        update: &RuntimeUpdate,
    ) -> Result<Option<Runtime>> {
        on_db!(&self.db, |pool, d| {
            let mut tx = pool.begin_write().await?;
            let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT * FROM runtimes WHERE id = $1{}",
                d::FOR_UPDATE
            )))
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
            sqlx::query("UPDATE runtimes SET name = $1, description = $2, image = $3, status = $4, updated_at = $5 WHERE id = $6")
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
        })
    }

    /// Deletes a runtime unless a function (of any project) uses it. Returns `Ok(false)` when
    /// it is in use, in the same transaction as the check so no function can slip in between.
    pub async fn delete_runtime(&self, id: &str) -> Result<bool> {
        on_db!(&self.db, |pool, d| {
            let mut tx = pool.begin_write().await?;
            // PostgreSQL: lock the runtime first, so that a function created meanwhile
            // (whose foreign key check waits on this lock) cannot slip in.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM runtimes WHERE id = $1{}",
                d::FOR_UPDATE
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let used: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM functions WHERE runtime_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if used > 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM runtimes WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
