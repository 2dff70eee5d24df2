//! The HTTP edge: Qinling's REST API v1 on axum. Parses requests into engine calls, renders
//! engine results in the Qinling wire format, and turns domain errors into status codes and
//! fault bodies (see [`error`]). The only crate that knows HTTP.

mod aliases;
pub mod auth;
mod error;
mod executions;
mod functions;
mod jobs;
mod metrics;
mod nodes;
pub mod openapi;
mod quotas;
mod routes;
mod runtimes;
mod ui;
mod usage;
mod versions;
mod webhooks;
mod wire;
mod workers;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use qinling_engine::Engine;
use qinling_types::RequestContext;

pub use error::{ApiError, ApiResult};

/// Settings of the HTTP edge.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body for function create/update (the package plus form overhead).
    pub max_package_body: usize,
    /// Largest body of any other request.
    pub max_body: usize,
    /// The server's public base URL (`http://host:port`), for `webhook_url`; `None`: the
    /// request's `Host`.
    pub public_url: Option<String>,
}

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub config: ApiConfig,
    /// Renders `/metrics`; `None` when the server installed no exporter.
    pub metrics: Option<metrics::MetricsRender>,
    /// Authentication mode and policy (`auth.rs`).
    pub auth: auth::Auth,
}

pub use metrics::{MetricsRender, describe as describe_metrics};

/// The request id of a request: the client's `X-Openstack-Request-Id` if it is sane, else
/// a new `req-<uuid>`. Echoed on every response.
#[derive(Debug, Clone)]
pub struct RequestId(
    pub String,
    /// Who is asking, set by the auth middleware (`auth.rs`) before any handler runs.
    pub Option<std::sync::Arc<RequestContext>>,
);

/// The request's context, as the auth middleware established it. Fails closed: a request
/// that somehow bypassed the middleware is nobody (no project, not admin).
/// The caller's trace from a W3C `traceparent` header; an absent or invalid one starts a
/// new trace (as the Trace Context spec asks: never an error).
pub(crate) fn traceparent(
    headers: &axum::http::HeaderMap,
) -> Option<qinling_types::trace::TraceParent> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    qinling_types::trace::TraceParent::parse(value)
}

pub fn context(req_id: &RequestId) -> RequestContext {
    match &req_id.1 {
        Some(ctx) => (**ctx).clone(),
        None => RequestContext {
            project_id: String::new(),
            user_id: None,
            is_admin: false,
            request_id: req_id.0.clone(),
        },
    }
}

/// The HTTP API: every route of the table (`routes.rs`), WebOb-style 404/405 for the rest,
/// behind the request-id, auth and metrics layers.
pub fn router(state: AppState) -> Router {
    routes::add_routes(Router::new())
        .fallback(|| async {
            error::webob(
                StatusCode::NOT_FOUND,
                Some("The resource could not be found."),
            )
        })
        .method_not_allowed_fallback(|| async {
            error::webob(
                StatusCode::METHOD_NOT_ALLOWED,
                Some("The method is not allowed for this resource."),
            )
        })
        .route_layer(axum::middleware::from_fn(metrics::tag_route))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware,
        ))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        .unwrap_or_else(|| format!("req-{}", qinling_types::new_id()));
    req.extensions_mut().insert(RequestId(id.clone(), None));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    tracing::debug!(request_id = %id, %method, %path, status = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    metrics::observe(&method, started, &resp);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-openstack-request-id", v);
    }
    resp
}

/// `http://<host>` of the request, for discovery links.
fn base_url(headers: &axum::http::HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "127.0.0.1:7070".into());
    format!("http://{host}")
}

async fn root(headers: axum::http::HeaderMap, uri: Uri) -> impl IntoResponse {
    let href = format!("{}/v1", base_url(&headers, &uri));
    Json(qinling_wire::Versions {
        versions: vec![qinling_wire::ApiVersion {
            id: "v1.0".into(),
            status: "CURRENT".into(),
            links: vec![qinling_wire::Link {
                href,
                target: "v1".into(),
                rel: "self".into(),
            }],
        }],
    })
}

async fn v1_redirect() -> impl IntoResponse {
    (StatusCode::FOUND, [(header::LOCATION, "/v1/")])
}

async fn v1_root(
    State(_): State<AppState>,
    headers: axum::http::HeaderMap,
    uri: Uri,
) -> impl IntoResponse {
    Json(qinling_wire::Resources {
        uri: format!("{}/v1", base_url(&headers, &uri)),
    })
}

/// Reads a whole request body up to `limit` bytes; a larger one is a 413 that says the limit.
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
    what: &str,
) -> ApiResult<bytes::Bytes> {
    use futures_util::StreamExt;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than the maximum of {limit} bytes for {what}."),
        )
    };
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("Could not read the request body: {e}.")))?;
        if buf.len() + chunk.len() > limit {
            // Read (and drop) the rest of a moderately oversized body so the client, still
            // sending, sees the 413 instead of a reset connection; give up past a bound.
            let mut drained = buf.len() + chunk.len();
            let bound = limit.saturating_mul(4).max(OVERSIZE_DRAIN_MIN);
            while drained <= bound {
                match stream.next().await {
                    Some(Ok(c)) => drained += c.len(),
                    _ => break,
                }
            }
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// How much of an oversized request body is read and discarded before answering 413.
const OVERSIZE_DRAIN_MIN: usize = 16 * 1024 * 1024;
