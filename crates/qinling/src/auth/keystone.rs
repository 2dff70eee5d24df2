//! The Keystone v3 client: validates `X-Auth-Token` with `GET /v3/auth/tokens`, as the
//! token itself or as a service user (whose token is renewed once on a 401).

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use qinling_api::auth::{BoxFuture, KeystoneClient};
use qinling_engine::auth::policy::Identity;

use super::AuthConfig;

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
    pub(super) fn new(url: String, cfg: &AuthConfig) -> anyhow::Result<Self> {
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
}
