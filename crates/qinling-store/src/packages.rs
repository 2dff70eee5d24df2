//! Function packages in the database, by SHA-256: the copy that every server sharing a
//! PostgreSQL database can reach (each keeps a cache on its local disk, in the engine's
//! package store). Writing the same package twice is a no-op: content addressing.

use crate::db::on_db;
use crate::{Result, Store, ts};

impl Store {
    /// Stores a package under its hash unless it is there already.
    pub async fn put_package(&self, sha256: &str, bytes: &[u8]) -> Result<()> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO packages (sha256, size, data, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(bytes.len() as i64)
            .bind(bytes)
            .bind(ts::to_db(qinling_types::now()))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A stored package's bytes, or `None`.
    pub async fn get_package(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        on_db!(&self.db, |pool| {
            Ok(
                sqlx::query_scalar("SELECT data FROM packages WHERE sha256 = $1")
                    .bind(sha256)
                    .fetch_optional(pool)
                    .await?,
            )
        })
    }

    /// Whether a package is stored.
    pub async fn has_package(&self, sha256: &str) -> Result<bool> {
        on_db!(&self.db, |pool| {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM packages WHERE sha256 = $1")
                .bind(sha256)
                .fetch_one(pool)
                .await?;
            Ok(n > 0)
        })
    }

    /// Removes a package unless a function or version refers to it (checked in the same
    /// statement, since another server may have just stored a function using it).
    pub async fn delete_package(&self, sha256: &str) -> Result<()> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "DELETE FROM packages WHERE sha256 = $1
                 AND NOT EXISTS (SELECT 1 FROM functions WHERE package_sha256 = $2)
                 AND NOT EXISTS (SELECT 1 FROM function_versions WHERE package_sha256 = $3)",
            )
            .bind(sha256)
            .bind(sha256)
            .bind(sha256)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn put_get_delete() {
        for store in crate::testing::stores().await {
            let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
            assert!(!store.has_package("aa").await.unwrap());
            store.put_package("aa", &bytes).await.unwrap();
            store
                .put_package("aa", b"ignored: same hash")
                .await
                .unwrap();
            assert!(store.has_package("aa").await.unwrap());
            assert_eq!(store.get_package("aa").await.unwrap(), Some(bytes));
            store.delete_package("aa").await.unwrap();
            assert_eq!(store.get_package("aa").await.unwrap(), None);
        }
    }
}
