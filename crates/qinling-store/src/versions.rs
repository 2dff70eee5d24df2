//! Function version rows: numbered snapshots of a function's definition, created and
//! deleted together with the function's `latest_version` in one transaction.

use crate::db::{Get, on_db};
use qinling_types::{Code, FunctionVersion, MAX_VERSIONS, new_id, now};

use crate::{Result, Store, StoreError, ts};

/// What creating a version came to.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionCreate {
    Created(Box<FunctionVersion>),
    /// The function does not exist in the caller's project.
    FunctionGone,
    /// The function already has [`MAX_VERSIONS`] versions.
    TooMany,
    /// The function's definition is the same as this (latest) version's.
    Unchanged(i64),
}

fn from_row<R: Get>(row: &R) -> Result<FunctionVersion> {
    let created: String = row.get("created_at")?;
    Ok(FunctionVersion {
        id: row.get("id")?,
        function_id: row.get::<String>("function_id")?.into(),
        version_number: row.get("version_number")?,
        description: row.get("description")?,
        md5sum: row.get("md5sum")?,
        package_sha256: row.get("package_sha256")?,
        package_size: row.get::<i64>("package_size")? as u64,
        entry: row.get("entry")?,
        cpu: row.get::<i64>("cpu")? as u32,
        memory_size: row.get::<i64>("memory_size")? as u64,
        timeout: row.get::<i64>("timeout")? as u32,
        network: row.get("network")?,
        execution_mode: crate::functions::execution_mode(row, "function_versions")?,
        count: row.get("count")?,
        project_id: row.get("project_id")?,
        created_at: ts::from_db(&created).ok_or(StoreError::Corrupt {
            table: "function_versions",
            what: created.clone(),
        })?,
        updated_at: ts::opt_from_db(row.get("updated_at")?),
    })
}

impl Store {
    /// Snapshots the current definition of function `function_id` (of `project_id`) as its
    /// next version, and records it as the function's `latest_version`, in one transaction.
    pub async fn insert_version(
        &self,
        function_id: &str,
        project_id: &str,
        description: Option<String>,
    ) -> Result<VersionCreate> {
        on_db!(&self.db, |pool, d| {
            let mut tx = pool.begin_write().await?;
            let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT * FROM functions WHERE id = $1 AND project_id = $2{}",
                d::FOR_UPDATE
            )))
            .bind(function_id)
            .bind(project_id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(VersionCreate::FunctionGone);
            };
            let function = crate::functions::from_row(&row)?;
            let existing: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM function_versions WHERE function_id = $1")
                    .bind(function_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if existing >= MAX_VERSIONS {
                return Ok(VersionCreate::TooMany);
            }
            let latest = sqlx::query(
                "SELECT * FROM function_versions WHERE function_id = $1 ORDER BY version_number DESC LIMIT 1",
            )
            .bind(function_id)
            .fetch_optional(&mut *tx)
            .await?;
            let latest = latest.as_ref().map(from_row).transpose()?;
            if let Some(latest) = &latest
                && latest.same_definition(&function)
            {
                return Ok(VersionCreate::Unchanged(latest.version_number));
            }
            let Code::Package { md5sum } = &function.code;
            let version = FunctionVersion {
                id: new_id(),
                function_id: function.id.clone(),
                version_number: latest.map_or(0, |l| l.version_number) + 1,
                description,
                md5sum: md5sum.clone(),
                package_sha256: function.package_sha256.clone(),
                package_size: function.package_size,
                entry: function.entry.clone(),
                cpu: function.cpu,
                memory_size: function.memory_size,
                timeout: function.timeout,
                network: function.network,
                execution_mode: function.execution_mode,
                count: 0,
                project_id: function.project_id.clone(),
                created_at: now(),
                updated_at: None,
            };
            sqlx::query(
                "INSERT INTO function_versions (id, function_id, version_number, description, md5sum, package_sha256,
                        package_size, entry, cpu, memory_size, timeout, network, execution_mode, count, project_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15)",
            )
            .bind(&version.id)
            .bind(version.function_id.as_str())
            .bind(version.version_number)
            .bind(&version.description)
            .bind(&version.md5sum)
            .bind(&version.package_sha256)
            .bind(version.package_size as i64)
            .bind(&version.entry)
            .bind(version.cpu as i64)
            .bind(version.memory_size as i64)
            .bind(version.timeout as i64)
            .bind(version.network)
            .bind(version.execution_mode.as_str())
            .bind(&version.project_id)
            .bind(ts::to_db(version.created_at))
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE functions SET latest_version = $1 WHERE id = $2")
                .bind(version.version_number)
                .bind(function_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(VersionCreate::Created(Box::new(version)))
        })
    }

    pub async fn list_versions(&self, function_id: &str) -> Result<Vec<FunctionVersion>> {
        on_db!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM function_versions WHERE function_id = $1 ORDER BY version_number",
            )
            .bind(function_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(from_row).collect()
        })
    }

    pub async fn get_version(
        &self,
        function_id: &str,
        version_number: i64,
    ) -> Result<Option<FunctionVersion>> {
        on_db!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT * FROM function_versions WHERE function_id = $1 AND version_number = $2",
            )
            .bind(function_id)
            .bind(version_number)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    /// Deletes a version and sets the function's `latest_version` to the highest remaining
    /// one; returns the deleted row, or `None` if there was none.
    pub async fn delete_version(
        &self,
        function_id: &str,
        version_number: i64,
    ) -> Result<Option<FunctionVersion>> {
        on_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query(
                "DELETE FROM function_versions WHERE function_id = $1 AND version_number = $2 RETURNING *",
            )
            .bind(function_id)
            .bind(version_number)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let deleted = from_row(&row)?;
            sqlx::query(
                "UPDATE functions SET latest_version =
                     (SELECT COALESCE(MAX(version_number), 0) FROM function_versions WHERE function_id = $1)
                 WHERE id = $2",
            )
            .bind(function_id)
            .bind(function_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(deleted))
        })
    }
}
