//! `token` mode: API tokens made by `qinling token create` (the rules are the engine's
//! `auth::tokens`), checked in the database on every request.

use futures_util::future::BoxFuture;
use qinling_engine::auth::policy::Identity;
use qinling_engine::auth::tokens::Tokens;

use super::{AuthFailure, Authenticator};

/// `token` mode: API tokens made by `qinling token create`, checked in the database on every
/// request (so a revocation takes effect at once).
pub struct TokenAuthenticator {
    tokens: Tokens,
}

impl TokenAuthenticator {
    pub fn new(tokens: Tokens) -> Self {
        TokenAuthenticator { tokens }
    }
}

impl Authenticator for TokenAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, AuthFailure>> {
        Box::pin(async move {
            let now = qinling_types::now().unix_timestamp();
            match self.tokens.validate(token, now).await? {
                Ok(who) => Ok(who),
                Err(why) => {
                    tracing::info!(reason = ?why, "token refused");
                    Err(AuthFailure::Invalid)
                }
            }
        })
    }
}
