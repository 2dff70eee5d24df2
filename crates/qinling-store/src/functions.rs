//! Function rows.

use qinling_types::{Code, Function, RuntimeId, now};
use sqlx::Row;

use crate::{Result, Scope, Store, StoreError, ts};

/// Fields of a function that `PUT` may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct FunctionUpdate {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub entry: Option<Option<String>>,
    pub cpu: Option<u32>,
    pub memory_size: Option<u64>,
    pub timeout: Option<u32>,
    pub network: Option<bool>,
    /// A new package: (md5, sha256, size).
    pub package: Option<(String, String, u64)>,
}

pub(crate) fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Function> {
    let source: String = row.try_get("code_source")?;
    let code = match source.as_str() {
        "package" => Code::Package {
            md5sum: row.try_get("md5sum")?,
        },
        other => {
            return Err(StoreError::Corrupt {
                table: "functions",
                what: format!("code source {other}"),
            });
        }
    };
    let created: String = row.try_get("created_at")?;
    Ok(Function {
        id: row.try_get::<String, _>("id")?.into(),
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        runtime_id: row
            .try_get::<Option<String>, _>("runtime_id")?
            .map(RuntimeId::from),
        code,
        package_sha256: row.try_get("package_sha256")?,
        package_size: row.try_get::<i64, _>("package_size")? as u64,
        entry: row.try_get("entry")?,
        cpu: row.try_get::<i64, _>("cpu")? as u32,
        memory_size: row.try_get::<i64, _>("memory_size")? as u64,
        timeout: row.try_get::<i64, _>("timeout")? as u32,
        network: row.try_get("network")?,
        count: row.try_get("count")?,
        latest_version: row.try_get("latest_version")?,
        project_id: row.try_get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "functions",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.try_get("updated_at")?),
    })
}

impl Store {
    pub async fn insert_function(&self, f: &Function) -> Result<()> {
        let Code::Package { md5sum } = &f.code;
        sqlx::query(
            "INSERT INTO functions (id, name, description, runtime_id, code_source, md5sum, package_sha256, package_size,
                                    entry, cpu, memory_size, timeout, network, count, latest_version, project_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, 'package', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(f.id.as_str())
        .bind(&f.name)
        .bind(&f.description)
        .bind(f.runtime_id.as_deref())
        .bind(md5sum)
        .bind(&f.package_sha256)
        .bind(f.package_size as i64)
        .bind(&f.entry)
        .bind(f.cpu as i64)
        .bind(f.memory_size as i64)
        .bind(f.timeout as i64)
        .bind(f.network)
        .bind(f.count)
        .bind(f.latest_version)
        .bind(&f.project_id)
        .bind(ts::to_db(f.created_at))
        .bind(f.updated_at.map(ts::to_db))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_function(&self, id: &str, scope: &Scope) -> Result<Option<Function>> {
        let row = match scope.project() {
            Some(p) => {
                sqlx::query("SELECT * FROM functions WHERE id = ? AND project_id = ?")
                    .bind(id)
                    .bind(p)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM functions WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_functions(&self, scope: &Scope) -> Result<Vec<Function>> {
        let rows = match scope.project() {
            Some(p) => {
                sqlx::query("SELECT * FROM functions WHERE project_id = ? ORDER BY created_at, id")
                    .bind(p)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM functions ORDER BY created_at, id")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(from_row).collect()
    }

    /// Applies `update`; returns the new row and the previous package hash, or `None` if the
    /// function is gone.
    pub async fn update_function(
        &self,
        id: &str,
        update: &FunctionUpdate,
    ) -> Result<Option<(Function, String)>> {
        let mut tx = self.begin_write().await?;
        let Some(row) = sqlx::query("SELECT * FROM functions WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let mut f = from_row(&row)?;
        let old_sha = f.package_sha256.clone();
        if let Some(v) = &update.name {
            f.name = v.clone();
        }
        if let Some(v) = &update.description {
            f.description = v.clone();
        }
        if let Some(v) = &update.entry {
            f.entry = v.clone();
        }
        if let Some(v) = update.cpu {
            f.cpu = v;
        }
        if let Some(v) = update.memory_size {
            f.memory_size = v;
        }
        if let Some(v) = update.timeout {
            f.timeout = v;
        }
        if let Some(v) = update.network {
            f.network = v;
        }
        if let Some((md5, sha, size)) = &update.package {
            f.code = Code::Package {
                md5sum: md5.clone(),
            };
            f.package_sha256 = sha.clone();
            f.package_size = *size;
        }
        f.updated_at = Some(now());
        let Code::Package { md5sum } = &f.code;
        sqlx::query(
            "UPDATE functions SET name = ?, description = ?, entry = ?, cpu = ?, memory_size = ?, timeout = ?, network = ?,
                    md5sum = ?, package_sha256 = ?, package_size = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&f.name)
        .bind(&f.description)
        .bind(&f.entry)
        .bind(f.cpu as i64)
        .bind(f.memory_size as i64)
        .bind(f.timeout as i64)
        .bind(f.network)
        .bind(md5sum)
        .bind(&f.package_sha256)
        .bind(f.package_size as i64)
        .bind(f.updated_at.map(ts::to_db))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some((f, old_sha)))
    }

    /// Deletes a function row; returns whether it existed.
    pub async fn delete_function(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM functions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// How many functions and function versions use the package with this hash.
    pub async fn package_references(&self, sha256: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM functions WHERE package_sha256 = ?)
                  + (SELECT COUNT(*) FROM function_versions WHERE package_sha256 = ?)",
        )
        .bind(sha256)
        .bind(sha256)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Every package hash in use, for cleaning the package directory.
    pub async fn package_hashes(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT package_sha256 FROM functions UNION SELECT package_sha256 FROM function_versions")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
