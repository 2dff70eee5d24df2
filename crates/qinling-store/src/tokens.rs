//! API token rows (`auth.mode = "token"`). The store keeps only the SHA-256 of a token's
//! secret; hashing, generation and the validity rules (expiry, revocation) live in the engine
//! (`qinling_engine::tokens`), which passes hashes and the current time in.

use crate::db::{Get, on_db};

use crate::{Result, Store};

/// A stored API token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub token_sha256: String,
    pub project_id: String,
    pub user_id: String,
    pub roles: Vec<String>,
    pub description: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn from_row<R: Get>(row: &R) -> Result<TokenRow> {
    let roles: String = row.get("roles")?;
    Ok(TokenRow {
        id: row.get("id")?,
        token_sha256: row.get("token_sha256")?,
        project_id: row.get("project_id")?,
        user_id: row.get("user_id")?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        description: row.get("description")?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        revoked_at: row.get("revoked_at")?,
    })
}

impl Store {
    pub async fn insert_token(&self, t: &TokenRow) -> Result<()> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO api_tokens (id, token_sha256, project_id, user_id, roles, description,
                                         created_at, expires_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&t.id)
            .bind(&t.token_sha256)
            .bind(&t.project_id)
            .bind(&t.user_id)
            .bind(t.roles.join(","))
            .bind(&t.description)
            .bind(t.created_at)
            .bind(t.expires_at)
            .bind(t.revoked_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The token whose secret hashes to `sha256`, revoked or expired ones included.
    pub async fn token_by_hash(&self, sha256: &str) -> Result<Option<TokenRow>> {
        on_db!(&self.db, |pool| {
            let row = sqlx::query("SELECT * FROM api_tokens WHERE token_sha256 = $1")
                .bind(sha256)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    /// Every token, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>> {
        on_db!(&self.db, |pool| {
            let rows = sqlx::query("SELECT * FROM api_tokens ORDER BY created_at, id")
                .fetch_all(pool)
                .await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// Marks a token revoked at `now`; false if there is no such token or it already was.
    pub async fn revoke_token(&self, id: &str, now: i64) -> Result<bool> {
        on_db!(&self.db, |pool| {
            let done = sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, hash: &str) -> TokenRow {
        TokenRow {
            id: id.into(),
            token_sha256: hash.into(),
            project_id: "p".into(),
            user_id: "u".into(),
            roles: vec!["admin".into(), "member".into()],
            description: None,
            created_at: 10,
            expires_at: Some(20),
            revoked_at: None,
        }
    }

    #[tokio::test]
    async fn insert_find_list_revoke() {
        for store in crate::testing::stores().await {
            store.insert_token(&token("t1", "h1")).await.unwrap();
            store.insert_token(&token("t2", "h2")).await.unwrap();
            assert_eq!(
                store.token_by_hash("h1").await.unwrap(),
                Some(token("t1", "h1"))
            );
            assert_eq!(store.token_by_hash("nope").await.unwrap(), None);
            assert_eq!(store.list_tokens().await.unwrap().len(), 2);
            assert!(store.revoke_token("t1", 15).await.unwrap());
            assert!(
                !store.revoke_token("t1", 16).await.unwrap(),
                "revoked twice"
            );
            assert!(!store.revoke_token("nope", 16).await.unwrap());
            let t1 = store.token_by_hash("h1").await.unwrap().unwrap();
            assert_eq!(t1.revoked_at, Some(15));
        }
    }
}
