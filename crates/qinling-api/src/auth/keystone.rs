//! `keystone` mode: a Keystone token becomes an identity through [`KeystoneClient`] (the HTTP
//! client is the binary's), and [`KeystoneAuthenticator`] remembers accepted tokens briefly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use qinling_engine::auth::policy::Identity;

use super::{AuthFailure, Authenticator};

/// Turns a Keystone token into an identity (`GET /v3/auth/tokens`); implemented over HTTP in
/// the binary. `Ok(None)`: Keystone says the token is not valid.
pub trait KeystoneClient: Send + Sync {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Identity>, String>>;

    /// Keystone's public URL, for `WWW-Authenticate`.
    fn url(&self) -> &str;
}

/// The time, for cache expiry.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Most tokens remembered; past it, expired entries go, then everything.
const CACHE_MAX: usize = 10_000;

/// Keystone validation with a short cache of accepted tokens (keyed by the token's SHA-256,
/// so the cache holds no secrets). A token revoked in Keystone stays accepted here for at most
/// `ttl`; rejections are not cached, so a new token works at once.
pub struct KeystoneAuthenticator<K, C = SystemClock> {
    client: K,
    clock: C,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Identity)>>,
}

impl<K: KeystoneClient, C: Clock> KeystoneAuthenticator<K, C> {
    pub fn new(client: K, clock: C, ttl: Duration) -> Self {
        KeystoneAuthenticator {
            client,
            clock,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: KeystoneClient, C: Clock> Authenticator for KeystoneAuthenticator<K, C> {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, AuthFailure>> {
        Box::pin(async move {
            let key = qinling_engine::auth::tokens::hash(token);
            let now = self.clock.now();
            if let Some((at, who)) = self.cache.lock().expect("cache lock").get(&key)
                && now.saturating_duration_since(*at) < self.ttl
            {
                return Ok(who.clone());
            }
            let who = self
                .client
                .validate(token)
                .await
                .map_err(AuthFailure::Unavailable)?
                .ok_or(AuthFailure::Invalid)?;
            let mut cache = self.cache.lock().expect("cache lock");
            if cache.len() >= CACHE_MAX {
                cache.retain(|_, (at, _)| now.saturating_duration_since(*at) < self.ttl);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(key, (now, who.clone()));
            Ok(who)
        })
    }

    fn challenge(&self) -> Option<String> {
        Some(format!("Keystone uri=\"{}\"", self.client.url()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct FakeKeystone {
        calls: AtomicUsize,
        valid: &'static str,
        down: bool,
    }

    impl KeystoneClient for FakeKeystone {
        fn validate<'a>(
            &'a self,
            token: &'a str,
        ) -> BoxFuture<'a, Result<Option<Identity>, String>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = if self.down {
                Err("connection refused".into())
            } else if token == self.valid {
                Ok(Some(Identity {
                    project_id: "p".into(),
                    user_id: Some("u".into()),
                    roles: vec!["member".into()],
                }))
            } else {
                Ok(None)
            };
            Box::pin(async move { answer })
        }

        fn url(&self) -> &str {
            "http://keystone"
        }
    }

    struct FakeClock(Mutex<Instant>);

    impl Clock for Arc<FakeClock> {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    #[tokio::test]
    async fn keystone_answers_are_cached_briefly() {
        let clock = Arc::new(FakeClock(Mutex::new(Instant::now())));
        let ks = KeystoneAuthenticator::new(
            FakeKeystone {
                calls: AtomicUsize::new(0),
                valid: "good",
                down: false,
            },
            clock.clone(),
            Duration::from_secs(60),
        );
        assert_eq!(ks.authenticate("good").await.unwrap().project_id, "p");
        assert_eq!(ks.authenticate("good").await.unwrap().project_id, "p");
        assert_eq!(
            ks.client.calls.load(Ordering::SeqCst),
            1,
            "second answer from cache"
        );
        assert!(matches!(
            ks.authenticate("bad").await,
            Err(AuthFailure::Invalid)
        ));
        assert!(matches!(
            ks.authenticate("bad").await,
            Err(AuthFailure::Invalid)
        ));
        assert_eq!(
            ks.client.calls.load(Ordering::SeqCst),
            3,
            "rejections are not cached"
        );
        *clock.0.lock().unwrap() += Duration::from_secs(61);
        ks.authenticate("good").await.unwrap();
        assert_eq!(
            ks.client.calls.load(Ordering::SeqCst),
            4,
            "expired entry asked again"
        );
        assert_eq!(
            ks.challenge().as_deref(),
            Some("Keystone uri=\"http://keystone\"")
        );
    }

    #[tokio::test]
    async fn keystone_down_is_unavailable_not_invalid() {
        let ks = KeystoneAuthenticator::new(
            FakeKeystone {
                calls: AtomicUsize::new(0),
                valid: "good",
                down: true,
            },
            SystemClock,
            Duration::from_secs(60),
        );
        assert!(matches!(
            ks.authenticate("good").await,
            Err(AuthFailure::Unavailable(_))
        ));
    }
}
