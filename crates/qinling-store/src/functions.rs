//! Function rows.

use crate::db::{Get, on_db};
use qinling_types::{Code, ExecutionMode, Function, RuntimeId, now};

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
    pub execution_mode: Option<ExecutionMode>,
    /// A new package: (md5, sha256, size).
    pub package: Option<(String, String, u64)>,
    /// With a new package on a shared database: the project's `package_bytes` quota,
    /// checked in the update's transaction under the project's lock.
    pub package_bytes_limit: Option<i64>,
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
        execution_mode: execution_mode(row, "functions")?,
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

/// The `execution_mode` column of a function or version row.
pub(crate) fn execution_mode<R: Get>(row: &R, table: &'static str) -> Result<ExecutionMode> {
    let text: String = row.get("execution_mode")?;
    text.parse().map_err(|_| StoreError::Corrupt {
        table,
        what: format!("execution mode {text}"),
    })
}

/// A project's function quotas, checked inside the insert (`-1`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionQuota {
    pub functions: i64,
    pub package_bytes: i64,
}

/// A function quota the insert would exceed: which, how much is in use, how much it adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    pub resource: &'static str,
    pub limit: i64,
    pub in_use: i64,
    pub adding: i64,
}

impl Store {
    pub async fn insert_function(&self, f: &Function) -> Result<()> {
        let unlimited = FunctionQuota {
            functions: -1,
            package_bytes: -1,
        };
        self.insert_function_within(f, unlimited).await
    }

    /// Inserts a function if its project stays within `quota`, counted in the same
    /// transaction under the project's lock: exact across servers sharing the database.
    /// Over a quota: [`StoreError::OverQuota`].
    pub async fn insert_function_within(&self, f: &Function, quota: FunctionQuota) -> Result<()> {
        on_db!(&self.db, |pool, d| {
            let mut tx = pool.begin_write().await?;
            if quota.functions >= 0 || quota.package_bytes >= 0 {
                if let Some(lock) = d::PROJECT_LOCK {
                    sqlx::query(lock)
                        .bind(&f.project_id)
                        .execute(&mut *tx)
                        .await?;
                }
                let (n, bytes): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(package_size), 0) AS BIGINT)
                     FROM functions WHERE project_id = $1",
                )
                .bind(&f.project_id)
                .fetch_one(&mut *tx)
                .await?;
                if quota.functions >= 0 && n >= quota.functions {
                    return Err(StoreError::OverQuota(OverQuota {
                        resource: "functions",
                        limit: quota.functions,
                        in_use: n,
                        adding: 1,
                    }));
                }
                let size = f.package_size as i64;
                if quota.package_bytes >= 0 && bytes.saturating_add(size) > quota.package_bytes {
                    return Err(StoreError::OverQuota(OverQuota {
                        resource: "package_bytes",
                        limit: quota.package_bytes,
                        in_use: bytes,
                        adding: size,
                    }));
                }
            }
            let Code::Package { md5sum } = &f.code;
            sqlx::query(
                "INSERT INTO functions (id, name, description, runtime_id, code_source, md5sum, package_sha256, package_size,
                                        entry, cpu, memory_size, timeout, network, execution_mode, count, latest_version, project_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'package', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
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
            .bind(f.execution_mode.as_str())
            .bind(f.count)
            .bind(f.latest_version)
            .bind(&f.project_id)
            .bind(ts::to_db(f.created_at))
            .bind(f.updated_at.map(ts::to_db))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
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
            let limit = update
                .package
                .as_ref()
                .and(update.package_bytes_limit)
                .filter(|l| *l >= 0);
            if let Some(limit) = limit {
                // The project's lock first, then the row's (as a create takes them), so two
                // servers cannot pass the quota with one package each.
                let project: Option<String> =
                    sqlx::query_scalar("SELECT project_id FROM functions WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(project) = project else {
                    return Ok(None);
                };
                if let Some(lock) = d::PROJECT_LOCK {
                    sqlx::query(lock).bind(&project).execute(&mut *tx).await?;
                }
                let (bytes, current): (i64, i64) = sqlx::query_as(
                    "SELECT CAST(COALESCE(SUM(package_size), 0) AS BIGINT),
                            CAST(COALESCE(SUM(CASE WHEN id = $1 THEN package_size ELSE 0 END), 0) AS BIGINT)
                     FROM functions WHERE project_id = $2",
                )
                .bind(id)
                .bind(&project)
                .fetch_one(&mut *tx)
                .await?;
                let size = update.package.as_ref().map_or(0, |p| p.2 as i64);
                let delta = size - current;
                if delta > 0 && bytes.saturating_add(delta) > limit {
                    return Err(StoreError::OverQuota(OverQuota {
                        resource: "package_bytes",
                        limit,
                        in_use: bytes,
                        adding: delta,
                    }));
                }
            }
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
            if let Some(v) = update.execution_mode {
                f.execution_mode = v;
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
                        execution_mode = $8, md5sum = $9, package_sha256 = $10, package_size = $11, updated_at = $12
                  WHERE id = $13",
            )
            .bind(&f.name)
            .bind(&f.description)
            .bind(&f.entry)
            .bind(f.cpu as i64)
            .bind(f.memory_size as i64)
            .bind(f.timeout as i64)
            .bind(f.network)
            .bind(f.execution_mode.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A function's execution mode is stored, changed by an update, and snapshotted by a
    /// version (which keeps it when the function changes), on both backends.
    #[tokio::test]
    async fn execution_mode_is_stored_updated_and_snapshotted() {
        use qinling_types::ExecutionMode::{Fork, Reuse};
        for store in crate::testing::stores().await {
            crate::fixtures::runtime(&store).await;
            let mut f = crate::fixtures::function("f", None, "p", 1 << 25);
            f.execution_mode = Reuse;
            store.insert_function(&f).await.unwrap();
            let read = |store: Store| async move {
                let f = store.get_function("f", &Scope::All).await.unwrap().unwrap();
                let listed = store.list_functions(&Scope::All).await.unwrap();
                (f.execution_mode, listed[0].execution_mode)
            };
            assert_eq!(read(store.clone()).await, (Reuse, Reuse));
            let created = store.insert_version("f", "p", None).await.unwrap();
            let crate::VersionCreate::Created(v1) = created else {
                panic!("{created:?}")
            };
            assert_eq!(v1.execution_mode, Reuse);
            let (updated, _) = store
                .update_function(
                    "f",
                    &FunctionUpdate {
                        execution_mode: Some(Fork),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(updated.execution_mode, Fork);
            assert_eq!(read(store.clone()).await, (Fork, Fork));
            let v1 = store.get_version("f", 1).await.unwrap().unwrap();
            assert_eq!(v1.execution_mode, Reuse);
            // Only the mode changed: that is a new definition, so a new version.
            assert!(matches!(
                store.insert_version("f", "p", None).await.unwrap(),
                crate::VersionCreate::Created(v) if v.execution_mode == Fork
            ));
        }
    }

    /// Function creates on several servers sharing one PostgreSQL database: exactly the
    /// limit gets in; on either backend a package over the byte limit is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn function_quotas_are_checked_inside_the_insert() {
        for store in crate::testing::stores().await {
            crate::fixtures::runtime(&store).await;
            let quota = FunctionQuota {
                functions: 2,
                package_bytes: 100,
            };
            let f = |id: &str, size: u64| {
                let mut f = crate::fixtures::function(id, None, "p", 1 << 25);
                f.package_size = size;
                f
            };
            let over = |r: Result<()>| match r {
                Err(StoreError::OverQuota(q)) => q,
                other => panic!("{other:?}"),
            };
            store
                .insert_function_within(&f("a", 60), quota)
                .await
                .unwrap();
            assert_eq!(
                over(store.insert_function_within(&f("b", 50), quota).await),
                OverQuota {
                    resource: "package_bytes",
                    limit: 100,
                    in_use: 60,
                    adding: 50
                }
            );
            store
                .insert_function_within(&f("b", 40), quota)
                .await
                .unwrap();
            assert_eq!(
                over(store.insert_function_within(&f("c", 0), quota).await).resource,
                "functions"
            );
            // A new package for "b": 40 → 35 bytes passes the 100-byte quota; 35 → 41 not.
            let replace = |size: u64| FunctionUpdate {
                package: Some(("m".into(), "s".into(), size)),
                package_bytes_limit: Some(100),
                ..Default::default()
            };
            assert!(
                store
                    .update_function("b", &replace(35))
                    .await
                    .unwrap()
                    .is_some()
            );
            let err = store.update_function("b", &replace(41)).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::OverQuota(OverQuota {
                        in_use: 95,
                        adding: 6,
                        ..
                    })
                ),
                "{err:?}"
            );
        }
        let Some(admin) = crate::testing::postgres_admin() else {
            return;
        };
        let url = crate::testing::scratch_database(&admin).await.unwrap();
        let mut servers = Vec::new();
        for _ in 0..3 {
            servers.push(
                Store::open_postgres(&crate::PgConfig::new(url.clone()))
                    .await
                    .unwrap(),
            );
        }
        crate::fixtures::runtime(&servers[0]).await;
        let quota = FunctionQuota {
            functions: 5,
            package_bytes: -1,
        };
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let store = servers[i % 3].clone();
                tokio::spawn(async move {
                    let f = crate::fixtures::function(&format!("f{i}"), None, "p", 1 << 25);
                    match store.insert_function_within(&f, quota).await {
                        Ok(()) => true,
                        Err(StoreError::OverQuota(_)) => false,
                        Err(e) => panic!("{e:?}"),
                    }
                })
            })
            .collect();
        let mut inserted = 0;
        for t in tasks {
            inserted += t.await.unwrap() as usize;
        }
        assert_eq!(inserted, 5);
    }
}
