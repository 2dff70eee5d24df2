//! API tokens for `auth.mode = "token"`: how a token is made (a random secret, of which only
//! the SHA-256 is stored), what makes one valid (known, not revoked, not expired), and the
//! operations behind `qinling token create|list|revoke`. Time comes in as a parameter so the
//! rules are tested without a clock.

use qinling_store::{Store, TokenRow};
use qinling_types::Error;
use sha2::{Digest, Sha256};

use crate::auth::policy::Identity;

/// Prefix of every secret, so leaked tokens are recognisable (secret scanners, logs).
pub const SECRET_PREFIX: &str = "qnl_";

/// A token as `qinling token create` returns it: the secret is shown only here.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub secret: String,
    pub row: TokenRow,
}

/// Why a presented token is not accepted (all are one 401 to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Unknown,
    Revoked,
    Expired,
}

/// The hex SHA-256 of a secret, as stored.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new secret: 244 bits from the operating system's random source (two UUIDv4s).
fn new_secret() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!("{SECRET_PREFIX}{}", hex::encode(bytes))
}

/// Whether a stored token is usable at `now` (Unix seconds).
pub fn check(row: &TokenRow, now: i64) -> Result<(), Invalid> {
    if row.revoked_at.is_some() {
        return Err(Invalid::Revoked);
    }
    if row.expires_at.is_some_and(|at| at <= now) {
        return Err(Invalid::Expired);
    }
    Ok(())
}

/// Parses a lifetime such as `90s`, `15m`, `12h`, `30d`, `1w` (a bare number is seconds).
pub fn parse_lifetime(text: &str) -> Result<i64, Error> {
    let text = text.trim();
    let bad = || {
        Error::input(format!(
            "Invalid lifetime '{text}': use a number with a unit s, m, h, d or w, such as 30d."
        ))
    };
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    n.checked_mul(scale).ok_or_else(bad)
}

/// Validates and records tokens in the store.
#[derive(Debug, Clone)]
pub struct Tokens {
    store: Store,
}

impl Tokens {
    pub fn new(store: Store) -> Self {
        Tokens { store }
    }

    /// Creates a token bound to a project, a user and roles; `lifetime` in seconds.
    pub async fn create(
        &self,
        project_id: &str,
        user_id: &str,
        roles: Vec<String>,
        lifetime: Option<i64>,
        description: Option<String>,
        now: i64,
    ) -> Result<NewToken, Error> {
        for (what, v) in [("project", project_id), ("user", user_id)] {
            if v.is_empty() || v.len() > 255 || v.contains(char::is_whitespace) {
                return Err(Error::input(format!(
                    "Invalid {what} '{v}': 1 to 255 characters without spaces."
                )));
            }
        }
        if let Some(bad) = roles
            .iter()
            .find(|r| r.is_empty() || r.contains([',', ' ']))
        {
            return Err(Error::input(format!(
                "Invalid role '{bad}': role names are non-empty and have no commas or spaces."
            )));
        }
        let secret = new_secret();
        let row = TokenRow {
            id: qinling_types::new_id(),
            token_sha256: hash(&secret),
            project_id: project_id.into(),
            user_id: user_id.into(),
            roles,
            description,
            created_at: now,
            expires_at: lifetime.map(|l| now.saturating_add(l)),
            revoked_at: None,
        };
        self.store.insert_token(&row).await?;
        Ok(NewToken { secret, row })
    }

    /// Who a presented secret is, or why it is not accepted.
    pub async fn validate(
        &self,
        secret: &str,
        now: i64,
    ) -> Result<Result<Identity, Invalid>, Error> {
        let Some(row) = self.store.token_by_hash(&hash(secret)).await? else {
            return Ok(Err(Invalid::Unknown));
        };
        Ok(check(&row, now).map(|()| Identity {
            project_id: row.project_id,
            user_id: Some(row.user_id),
            roles: row.roles,
        }))
    }

    pub async fn list(&self) -> Result<Vec<TokenRow>, Error> {
        Ok(self.store.list_tokens().await?)
    }

    /// Revokes a token by its id; unknown or already revoked → not found.
    pub async fn revoke(&self, id: &str, now: i64) -> Result<(), Error> {
        if self.store.revoke_token(id, now).await? {
            Ok(())
        } else {
            Err(Error::not_found("Active token", id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90").unwrap(), 90);
        assert_eq!(parse_lifetime("15m").unwrap(), 900);
        assert_eq!(parse_lifetime("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_lifetime("2w").unwrap(), 14 * 86_400);
        for bad in ["", "d", "0d", "-1d", "5y", "1.5h", "99999999999999999999w"] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn create_validate_expire_revoke() {
        let tokens = Tokens::new(Store::in_memory().await.unwrap());
        let t = tokens
            .create("pa", "ua", vec!["member".into()], Some(100), None, 1000)
            .await
            .unwrap();
        assert!(t.secret.starts_with(SECRET_PREFIX) && t.secret.len() == 68);
        assert_ne!(t.row.token_sha256, t.secret, "stored hashed");
        assert_eq!(t.row.token_sha256, hash(&t.secret));
        let who = tokens.validate(&t.secret, 1099).await.unwrap().unwrap();
        assert_eq!(who.project_id, "pa");
        assert_eq!(who.user_id.as_deref(), Some("ua"));
        assert!(!who.is_admin());
        assert_eq!(
            tokens.validate(&t.secret, 1100).await.unwrap(),
            Err(Invalid::Expired)
        );
        assert_eq!(
            tokens.validate("qnl_nope", 1000).await.unwrap(),
            Err(Invalid::Unknown)
        );

        let forever = tokens
            .create("pa", "admin", vec!["admin".into()], None, None, 1000)
            .await
            .unwrap();
        let who = tokens
            .validate(&forever.secret, i64::MAX)
            .await
            .unwrap()
            .unwrap();
        assert!(who.is_admin());
        tokens.revoke(&forever.row.id, 2000).await.unwrap();
        assert_eq!(
            tokens.validate(&forever.secret, 2001).await.unwrap(),
            Err(Invalid::Revoked)
        );
        assert!(matches!(
            tokens.revoke(&forever.row.id, 2002).await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(tokens.list().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn bad_bindings_are_refused() {
        let tokens = Tokens::new(Store::in_memory().await.unwrap());
        assert!(tokens.create("", "u", vec![], None, None, 0).await.is_err());
        assert!(
            tokens
                .create("p", "a b", vec![], None, None, 0)
                .await
                .is_err()
        );
        assert!(
            tokens
                .create("p", "u", vec!["a,b".into()], None, None, 0)
                .await
                .is_err()
        );
    }
}
