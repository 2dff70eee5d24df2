//! `GET /metrics` (Prometheus text exposition) and the HTTP request metrics: requests by
//! route template, method and status, and their latency. Route labels are the router's path
//! templates (`/v1/functions/{id}`), never raw paths, so their number is bounded by the API;
//! requests that match no route count as `unmatched`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Sets the `# HELP` text (and so the `# TYPE`) of the HTTP families. Call once the
/// recorder is installed.
pub fn describe() {
    metrics::describe_counter!(
        "qinling_http_requests_total",
        "API requests, by route template, method and status code."
    );
    metrics::describe_histogram!(
        "qinling_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "How long API requests took to answer, by route template and method."
    );
}

/// Renders the process's metrics in the Prometheus text format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// The route template a request matched, passed from the inner layer to the outer one.
#[derive(Clone)]
struct Route(String);

/// Inner layer (`route_layer`): runs only for matched routes and tags the response with the
/// template.
pub(crate) async fn tag_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let mut resp = next.run(req).await;
    if let Some(route) = route {
        resp.extensions_mut().insert(Route(route));
    }
    resp
}

/// Outer layer: counts every request and its latency.
pub(crate) fn observe(method: &axum::http::Method, started: Instant, resp: &Response) {
    let route = resp
        .extensions()
        .get::<Route>()
        .map_or_else(|| "unmatched".to_string(), |r| r.0.clone());
    let method = method.as_str().to_string();
    let status = resp.status().as_u16().to_string();
    metrics::counter!("qinling_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("qinling_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
}

pub(crate) async fn scrape(State(s): State<AppState>) -> Response {
    let Some(render) = &s.metrics else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are not enabled on this server\n",
        )
            .into_response();
    };
    s.engine.refresh_metrics().await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
        .into_response()
}
