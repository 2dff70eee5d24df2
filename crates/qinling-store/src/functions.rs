//! Function rows.

use crate::db::{Get, on_db};
use qinling_types::{Code, Function, RuntimeId, now};

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

pub(crate) fn from_row<R: Get>(row: &R) -> Result<Function> {
    let source: String = row.get("code_source")?;
    let code = match source.as_str() {
        "package" => Code::Package {
            md5sum: row.get("md5sum")?,
        },
        other => {
            return Err(StoreError::Corrupt {
                table: "functions",
                what: format!("code source {other}"),
            });
        }
    };
    let created: String = row.get("created_at")?;
    Ok(Function {
        id: row.get::<String>("id")?.into(),
        name: row.get("name")?,
        description: row.get("description")?,
        runtime_id: row
            .get::<Option<String>>("runtime_id")?
            .map(RuntimeId::from),
        code,
        package_sha256: row.get("package_sha256")?,
        package_size: row.get::<i64>("package_size")? as u64,
        entry: row.get("entry")?,
        cpu: row.get::<i64>("cpu")? as u32,
        memory_size: row.get::<i64>("memory_size")? as u64,
        timeout: row.get::<i64>("timeout")? as u32,
        network: row.get("network")?,
        count: row.get("count")?,
        latest_version: row.get("latest_version")?,
        project_id: row.get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "functions",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.get("updated_at")?),
    })
}

impl Store {
    pub async fn insert_function(&self, f: &Function) -> Result<()> {
        on_db!(&self.db, |pool| {
            let Code::Package { md5sum } = &f.code;
            sqlx::query(
                "INSERT INTO functions (id, name, description, runtime_id, code_source, md5sum, package_sha256, package_size,
                                        entry, cpu, memory_size, timeout, network, count, latest_version, project_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'package', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
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
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn get_function(&self, id: &str, scope: &Scope) -> Result<Option<Function>> {
        on_db!(&self.db, |pool| {
            let row = match scope.project() {
                Some(p) => {
                    sqlx::query("SELECT * FROM functions WHERE id = $1 AND project_id = $2")
                        .bind(id)
                        .bind(p)
                        .fetch_optional(pool)
                        .await?
                }
                None => {
                    sqlx::query("SELECT * FROM functions WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await?
                }
            };
            row.as_ref().map(from_row).transpose()
        })
    }

    pub async fn list_functions(&self, scope: &Scope) -> Result<Vec<Function>> {
        on_db!(&self.db, |pool| {
            let rows = match scope.project() {
                Some(p) => {
                    sqlx::query(
                        "SELECT * FROM functions WHERE project_id = $1 ORDER BY created_at, id",
                    )
                    .bind(p)
                    .fetch_all(pool)
                    .await?
                }
                None => {
                    sqlx::query("SELECT * FROM functions ORDER BY created_at, id")
                        .fetch_all(pool)
                        .await?
                }
            };
            rows.iter().map(from_row).collect()
        })
    }

    /// Applies `update`; returns the new row and the previous package hash, or `None` if the
    /// function is gone.
    pub async fn update_function(
        &self,
        id: &str,
        update: &FunctionUpdate,
    ) -> Result<Option<(Function, String)>> {
        on_db!(&self.db, |pool, d| {
            let mut tx = pool.begin_write().await?;
            let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT * FROM functions WHERE id = $1{}",
                d::FOR_UPDATE
            )))
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
                "UPDATE functions SET name = $1, description = $2, entry = $3, cpu = $4, memory_size = $5, timeout = $6, network = $7,
                        md5sum = $8, package_sha256 = $9, package_size = $10, updated_at = $11 WHERE id = $12",
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
        })
    }

    /// Deletes a function row; returns whether it existed.
    pub async fn delete_function(&self, id: &str) -> Result<bool> {
        on_db!(&self.db, |pool| {
            let done = sqlx::query("DELETE FROM functions WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// How many functions and function versions use the package with this hash.
    pub async fn package_references(&self, sha256: &str) -> Result<i64> {
        on_db!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM functions WHERE package_sha256 = $1)
                      + (SELECT COUNT(*) FROM function_versions WHERE package_sha256 = $2)",
            )
            .bind(sha256)
            .bind(sha256)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Every package hash in use, for cleaning the package directory.
    pub async fn package_hashes(&self) -> Result<Vec<String>> {
        on_db!(&self.db, |pool| {
            Ok(
                sqlx::query_scalar("SELECT package_sha256 FROM functions UNION SELECT package_sha256 FROM function_versions")
                    .fetch_all(pool)
                    .await?,
            )
        })
    }
}
