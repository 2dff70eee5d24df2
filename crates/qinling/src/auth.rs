//! Authentication settings of `qinling serve` (the `[auth]` and `[quotas]` config sections)
//! and their wiring: the policy file, the token store, and the Keystone v3 client that
//! validates `X-Auth-Token` with `GET /v3/auth/tokens` (the one HTTP client to an identity
//! service; the cache and the policy decisions live in `qinling-api` and `qinling-engine`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use qinling_api::auth::{
    Auth, BoxFuture, KeystoneAuthenticator, KeystoneClient, Mode, SystemClock, TokenAuthenticator,
};
use qinling_engine::policy::{Identity, Policy};
use qinling_engine::quotas::{Limits, QuotaConfig};
use serde::Deserialize;

/// `[auth]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `none`, `token` or `keystone`.
    pub mode: String,
    /// A JSON or TOML file of `action = "rule"` overriding the default policy.
    pub policy_file: Option<PathBuf>,
    /// Keystone's URL (the part before `/v3`), for `mode = "keystone"`.
    pub keystone_url: Option<String>,
    /// Seconds an accepted Keystone token is remembered.
    pub keystone_cache_secs: u64,
    /// Optional service user that validates tokens; without one, each token validates itself
    /// (Keystone lets a token's subject read it).
    pub keystone_username: Option<String>,
    pub keystone_password: Option<String>,
    pub keystone_project_name: Option<String>,
    pub keystone_user_domain: String,
    pub keystone_project_domain: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: "none".into(),
            policy_file: None,
            keystone_url: None,
            keystone_cache_secs: 60,
            keystone_username: None,
            keystone_password: None,
            keystone_project_name: None,
            keystone_user_domain: "Default".into(),
            keystone_project_domain: "Default".into(),
        }
    }
}

/// `[quotas]`: the default limits of every project (-1: unlimited), and whether they are
/// enforced (default: whenever authentication is on).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct QuotasConfig {
    pub enforce: Option<bool>,
    pub functions: i64,
    pub package_bytes: i64,
    pub concurrent_executions: i64,
    pub workers: i64,
    pub executions_per_minute: i64,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        let l = Limits::default();
        QuotasConfig {
            enforce: None,
            functions: l.functions,
            package_bytes: l.package_bytes,
            concurrent_executions: l.concurrent_executions,
            workers: l.workers,
            executions_per_minute: l.executions_per_minute,
        }
    }
}

impl QuotasConfig {
    pub fn engine_config(&self, auth: &AuthConfig) -> QuotaConfig {
        QuotaConfig {
            enforce: self.enforce.unwrap_or(auth.mode != "none"),
            defaults: Limits {
                functions: self.functions,
                package_bytes: self.package_bytes,
                concurrent_executions: self.concurrent_executions,
                workers: self.workers,
                executions_per_minute: self.executions_per_minute,
            },
        }
    }
}

impl AuthConfig {
    /// Checks what can be checked before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        match self.mode.as_str() {
            "none" | "token" => {}
            "keystone" => {
                if self.keystone_url.is_none() {
                    bail!("auth mode 'keystone' needs keystone_url (--keystone-url)");
                }
            }
            other => bail!("auth mode must be 'none', 'token' or 'keystone', not '{other}'"),
        }
        Ok(())
    }

    fn policy(&self) -> anyhow::Result<Policy> {
        let Some(path) = &self.policy_file else {
            return Ok(Policy::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading policy file {}", path.display()))?;
        Policy::from_file_text(&text).with_context(|| format!("policy file {}", path.display()))
    }

    /// The HTTP edge's authentication for this configuration.
    pub fn build(&self, store: &qinling_store::Store) -> anyhow::Result<Auth> {
        let policy = Arc::new(self.policy()?);
        let mode = match self.mode.as_str() {
            "none" => Mode::None,
            "token" => Mode::Checked(Arc::new(TokenAuthenticator::new(
                qinling_engine::tokens::Tokens::new(store.clone()),
            ))),
            "keystone" => {
                let url = self
                    .keystone_url
                    .clone()
                    .context("keystone_url is required")?;
                let client = HttpKeystone::new(url, self)?;
                Mode::Checked(Arc::new(KeystoneAuthenticator::new(
                    client,
                    SystemClock,
                    Duration::from_secs(self.keystone_cache_secs),
                )))
            }
            other => bail!("unknown auth mode '{other}'"),
        };
        Ok(Auth { mode, policy })
    }
}

/// Service credentials for validating tokens.
#[derive(Debug, Clone)]
struct ServiceUser {
    username: String,
    password: String,
    project_name: String,
    user_domain: String,
    project_domain: String,
}

/// Keystone v3 over HTTP.
pub struct HttpKeystone {
    url: String,
    http: reqwest::Client,
    service: Option<ServiceUser>,
    service_token: Mutex<Option<String>>,
}

impl HttpKeystone {
    fn new(url: String, cfg: &AuthConfig) -> anyhow::Result<Self> {
        let url = url
            .trim_end_matches('/')
            .trim_end_matches("/v3")
            .to_string();
        let service = match (&cfg.keystone_username, &cfg.keystone_password) {
            (Some(u), Some(p)) => Some(ServiceUser {
                username: u.clone(),
                password: p.clone(),
                project_name: cfg
                    .keystone_project_name
                    .clone()
                    .unwrap_or_else(|| "service".into()),
                user_domain: cfg.keystone_user_domain.clone(),
                project_domain: cfg.keystone_project_domain.clone(),
            }),
            (None, None) => None,
            _ => bail!("keystone_username and keystone_password go together"),
        };
        Ok(HttpKeystone {
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .context("building the Keystone HTTP client")?,
            service,
            service_token: Mutex::new(None),
        })
    }

    async fn service_token(&self, s: &ServiceUser, fresh: bool) -> Result<String, String> {
        if !fresh && let Some(t) = self.service_token.lock().expect("lock").clone() {
            return Ok(t);
        }
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": s.username, "password": s.password, "domain": {"name": s.user_domain}}}},
            "scope": {"project": {"name": s.project_name, "domain": {"name": s.project_domain}}}
        }});
        let resp = self
            .http
            .post(format!("{}/v3/auth/tokens", self.url))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("keystone: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!(
                "keystone refused the service user's credentials ({})",
                resp.status()
            ));
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .ok_or("keystone returned no X-Subject-Token")?
            .to_string();
        *self.service_token.lock().expect("lock") = Some(token.clone());
        Ok(token)
    }

    async fn validate_once(&self, token: &str, fresh: bool) -> Result<reqwest::Response, String> {
        let auth = match &self.service {
            Some(s) => self.service_token(s, fresh).await?,
            None => token.to_string(),
        };
        self.http
            .get(format!("{}/v3/auth/tokens", self.url))
            .header("X-Auth-Token", auth)
            .header("X-Subject-Token", token)
            .send()
            .await
            .map_err(|e| format!("keystone: {e}"))
    }
}

/// The identity in a `GET /v3/auth/tokens` answer; unscoped tokens have none.
fn identity_of(body: &serde_json::Value) -> Option<Identity> {
    let t = &body["token"];
    Some(Identity {
        project_id: t["project"]["id"].as_str()?.to_string(),
        user_id: t["user"]["id"].as_str().map(str::to_string),
        roles: t["roles"]
            .as_array()?
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect(),
    })
}

impl KeystoneClient for HttpKeystone {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<Identity>, String>> {
        Box::pin(async move {
            let mut resp = self.validate_once(token, false).await?;
            // A 401 with a service user means its token expired: get a new one, once.
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && self.service.is_some() {
                resp = self.validate_once(token, true).await?;
            }
            match resp.status().as_u16() {
                200 => {
                    let body: serde_json::Value = resp
                        .json()
                        .await
                        .map_err(|e| format!("keystone answer: {e}"))?;
                    Ok(identity_of(&body))
                }
                401 | 403 | 404 => Ok(None),
                other => Err(format!("keystone answered {other}")),
            }
        })
    }

    fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_token_bodies() {
        let body = serde_json::json!({"token": {
            "project": {"id": "p1", "name": "demo"},
            "user": {"id": "u1"},
            "roles": [{"id": "r", "name": "member"}, {"id": "a", "name": "admin"}]}});
        let who = identity_of(&body).unwrap();
        assert_eq!(who.project_id, "p1");
        assert!(who.is_admin());
        let unscoped = serde_json::json!({"token": {"user": {"id": "u1"}, "roles": []}});
        assert_eq!(identity_of(&unscoped), None);
    }

    #[test]
    fn modes_and_quota_enforcement() {
        let mut a = AuthConfig::default();
        a.validate().unwrap();
        assert!(!QuotasConfig::default().engine_config(&a).enforce);
        a.mode = "token".into();
        assert!(QuotasConfig::default().engine_config(&a).enforce);
        a.mode = "keystone".into();
        assert!(a.validate().is_err(), "keystone needs a URL");
        a.mode = "ldap".into();
        assert!(a.validate().is_err());
    }
}
