//! Authentication settings of `qinling serve` (the `[auth]` and `[quotas]` config sections)
//! and their wiring: the policy file, the token store, and the Keystone v3 client
//! ([`keystone`], the one HTTP client to an identity service). The `qinling token` command is
//! [`token`]. The middleware and the Keystone cache live in `qinling-api`'s `auth/`, the
//! policy rules and token rules in `qinling-engine`'s `auth/`.

mod keystone;
pub mod token;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use keystone::HttpKeystone;
use qinling_api::auth::{Auth, KeystoneAuthenticator, Mode, SystemClock, TokenAuthenticator};
use qinling_engine::auth::policy::Policy;
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
                qinling_engine::auth::tokens::Tokens::new(store.clone()),
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

#[cfg(test)]
mod tests {
    use super::*;

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
