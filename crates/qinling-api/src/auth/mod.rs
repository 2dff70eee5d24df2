//! Authentication and policy at the HTTP edge (reference §6). One middleware runs for every
//! request, after the request id and before routing: it decides who the caller is — nobody
//! needs to say in `none` mode (project `default`, admin, as upstream with `auth_enable =
//! False`); a stored API token in `token` mode; a Keystone v3 token in `keystone` mode — and
//! whether the policy allows the action the route names. Upstream's unauthenticated paths
//! stay open: exactly `/`, `/v1/` and `POST /v1/webhooks/<uuid>/invoke`; so do ours for load
//! balancers, `/healthz` and `/readyz` (they tell nothing but whether the server and its
//! database answer).
//!
//! Validating a token is behind [`Authenticator`]: [`keystone`] (Keystone tokens, with a short
//! cache; the Keystone HTTP client lives in the binary, so the cache is tested with a fake
//! clock and a fake Keystone) and [`tokens`] (API tokens, checked in the database). The
//! policy rules are the engine's (`qinling_engine::auth::policy`).

mod keystone;
mod tokens;

pub use keystone::{Clock, KeystoneAuthenticator, KeystoneClient, SystemClock};
pub use tokens::TokenAuthenticator;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
pub use futures_util::future::BoxFuture;
use qinling_engine::auth::policy::{Identity, Policy, Target};
use qinling_types::RequestContext;

use crate::routes::action_for;
use crate::{ApiError, AppState, RequestId};

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    /// Unknown, expired, revoked or unscoped: a 401.
    #[error("token is invalid")]
    Invalid,
    /// The identity service could not be asked: a 503.
    #[error("identity service unavailable: {0}")]
    Unavailable(String),
    /// Our own fault (database): a 500.
    #[error(transparent)]
    Internal(#[from] qinling_types::Error),
}

/// Turns a presented token into an identity.
pub trait Authenticator: Send + Sync {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, AuthFailure>>;

    /// The `WWW-Authenticate` value of 401 answers, if any.
    fn challenge(&self) -> Option<String> {
        None
    }
}

/// How requests are authenticated.
#[derive(Clone)]
pub enum Mode {
    /// Everyone is project `default` with the admin role; no policy is enforced.
    None,
    /// Every request but the exempt paths needs a token this authenticator accepts.
    Checked(Arc<dyn Authenticator>),
}

/// Authentication and policy settings of the HTTP edge.
#[derive(Clone)]
pub struct Auth {
    pub mode: Mode,
    pub policy: Arc<Policy>,
}

impl Auth {
    /// Auth off: upstream's `auth_enable = False`.
    pub fn none() -> Self {
        Auth {
            mode: Mode::None,
            policy: Arc::new(Policy::default()),
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::None => "none",
            Mode::Checked(_) => "checked",
        };
        f.debug_struct("Auth").field("mode", &mode).finish()
    }
}

/// The context of a request on an exempt path when authentication is on: no project, no
/// roles, so it can read nothing by project scope.
fn anonymous(request_id: String) -> RequestContext {
    RequestContext {
        project_id: String::new(),
        user_id: None,
        is_admin: false,
        request_id,
    }
}

/// Upstream's exempt paths: exactly `/` and `/v1/`, and `^/v1/webhooks/[a-f0-9-]+/invoke$`;
/// the health checks `/healthz` and `/readyz`; and the dashboard's static files (`/ui`,
/// `/ui/`, `/ui/<file>`: no data; what the page shows it fetches from the API with the
/// user's token).
pub fn is_exempt(path: &str) -> bool {
    if matches!(path, "/" | "/v1/" | "/healthz" | "/readyz" | "/ui" | "/ui/") {
        return true;
    }
    if let Some(file) = path.strip_prefix("/ui/") {
        return !file.is_empty() && !file.contains('/');
    }
    path.strip_prefix("/v1/webhooks/")
        .and_then(|rest| rest.strip_suffix("/invoke"))
        .is_some_and(|id| {
            !id.is_empty() && id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f' | '-'))
        })
}

/// The presented token: `X-Auth-Token`, or `Authorization: Bearer <token>` (for scrapers and
/// tools that cannot set custom headers).
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(t) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
        return Some(t.trim()).filter(|t| !t.is_empty());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The middleware: sets the request's context or answers 401/403/503.
pub(crate) async fn middleware(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let drain_limit = s.config.max_body;
    match decide(&s, req).await {
        Ok((req, ctx)) => {
            let mut req = req;
            let request_id = ctx.request_id.clone();
            req.extensions_mut()
                .insert(RequestId(request_id, Some(Arc::new(ctx))));
            next.run(req).await
        }
        Err((body, refusal)) => {
            // Read (a bounded part of) the refused request's body, so a client still sending
            // an upload sees the answer rather than a reset connection.
            drain(body, drain_limit).await;
            refusal
        }
    }
}

async fn drain(body: axum::body::Body, limit: usize) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut read = 0;
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    while read <= limit {
        tokio::select! {
            chunk = stream.next() => match chunk {
                Some(Ok(c)) => read += c.len(),
                _ => break,
            },
            _ = &mut deadline => break,
        }
    }
}

/// Who the request is, or the refusal (with the request's body, to drain).
#[expect(
    clippy::result_large_err,
    reason = "one call per request, returned at once to the middleware: boxing would only add an allocation"
)]
async fn decide(
    s: &AppState,
    req: Request,
) -> Result<(Request, RequestContext), (axum::body::Body, Response)> {
    let refuse = |req: Request, resp: Response| Err((req.into_body(), resp));
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let ctx = match &s.auth.mode {
        Mode::None => RequestContext::unauthenticated(request_id.clone()),
        Mode::Checked(_) if is_exempt(req.uri().path()) => anonymous(request_id.clone()),
        Mode::Checked(authn) => {
            let Some(token) = presented_token(req.headers()) else {
                let resp = unauthorized(
                    req.headers(),
                    authn.as_ref(),
                    "Failed to validate access token: Authentication required".into(),
                );
                return refuse(req, resp);
            };
            let identity = match authn.authenticate(token).await {
                Ok(identity) => identity,
                Err(AuthFailure::Invalid) => {
                    // Upstream echoes the token; a shortened form is enough to tell which.
                    let shown: String = token.chars().take(12).collect();
                    let resp = unauthorized(
                        req.headers(),
                        authn.as_ref(),
                        format!("Failed to validate access token: Auth token is invalid: {shown}…"),
                    );
                    return refuse(req, resp);
                }
                Err(AuthFailure::Unavailable(why)) => {
                    tracing::error!(error = %why, "identity service unavailable");
                    let resp = ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The Keystone service is temporarily unavailable.",
                    )
                    .into_response();
                    return refuse(req, resp);
                }
                Err(AuthFailure::Internal(e)) => {
                    return refuse(req, ApiError::from(e).into_response());
                }
            };
            if let Some((action, target_project)) =
                action_for(req.method(), req.uri().path(), req.uri().query())
            {
                let target = Target {
                    project_id: Some(target_project.as_deref().unwrap_or(&identity.project_id)),
                    user_id: identity.user_id.as_deref(),
                };
                if let Err(e) = s.auth.policy.enforce(&action, &identity, &target) {
                    return refuse(req, ApiError::from(e).into_response());
                }
            }
            identity.context(request_id.clone())
        }
    };
    Ok((req, ctx))
}

/// A 401 as keystonemiddleware answers it: WebOb JSON when the client accepts JSON, else
/// HTML; the message also in `Server-Error-Message`.
fn unauthorized(headers: &HeaderMap, authn: &dyn Authenticator, message: String) -> Response {
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let mut resp = if json {
        crate::error::webob(StatusCode::UNAUTHORIZED, Some(&message))
    } else {
        let body = format!(
            "<html>\n <head>\n  <title>401 Unauthorized</title>\n </head>\n <body>\n  <h1>401 Unauthorized</h1>\n  This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.<br /><br />\n{message}\n\n\n </body>\n</html>"
        );
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            body,
        )
            .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&message.replace('…', "...")) {
        resp.headers_mut().insert("Server-Error-Message", v);
    }
    if let Some(c) = authn.challenge()
        && let Ok(v) = HeaderValue::from_str(&c)
    {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exempt_paths_are_exactly_upstreams() {
        for p in [
            "/",
            "/v1/",
            "/v1/webhooks/540f420d-c5de-4b0b-b144-1b2510107918/invoke",
            "/healthz",
            "/readyz",
        ] {
            assert!(is_exempt(p), "{p}");
        }
        for p in [
            "/v1",
            "/v1/functions",
            "/v1//",
            "/v1/webhooks/540f420d/invoke/",
            "/v1/webhooks//invoke",
            "/v1/webhooks/ABC/invoke",
            "/v1/webhooks/x/../../functions/invoke",
            "/v1/webhooks/540f420d",
            "/metrics",
            "/healthz/",
            "/readyz/x",
        ] {
            assert!(!is_exempt(p), "{p}");
        }
    }
}
