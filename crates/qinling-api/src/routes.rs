//! The one table of routes. Each entry names its method and path, its handler, the policy
//! action it enforces and its OpenAPI description, and everything else is derived from it:
//! the router ([`crate::router`]), the action the auth middleware checks before routing
//! ([`action_for`]) and the document ([`crate::openapi`]). A route cannot be served without
//! naming its action, or be documented without being served.

use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::openapi::{Body, Doc};
use crate::{
    AppState, aliases, executions, functions, jobs, metrics, nodes, openapi, quotas, root,
    runtimes, ui, usage, v1_redirect, v1_root, versions, webhooks, wire, workers,
};

/// The HTTP methods the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    /// The lowercase name, as OpenAPI writes it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    fn is(self, method: &Method) -> bool {
        *method
            == match self {
                Verb::Get => Method::GET,
                Verb::Post => Method::POST,
                Verb::Put => Method::PUT,
                Verb::Delete => Method::DELETE,
            }
    }
}

/// The policy action a route enforces (reference §6; upstream's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing to enforce (the API roots, this document, the unauthenticated webhook invoke).
    None,
    /// This action, on the caller's own project.
    Fixed(&'static str),
    /// `<resource>:get_all`, or `<resource>:get_all:all_projects` when the query names
    /// `all_projects` (true) or any `project_id`.
    List(&'static str),
    /// `usage:get` on the project the query names (the last `project_id`), or
    /// `usage:get:all_projects`.
    Usage,
    /// This action on the project the path names (`{project_id}`).
    Quota(&'static str),
}

/// One route.
pub(crate) struct Route {
    pub method: Verb,
    /// The path as OpenAPI and axum write it (`{id}` for a parameter).
    pub path: &'static str,
    /// Also served with a trailing slash (upstream's collections accept both).
    pub slash: bool,
    pub handler: fn(MethodFilter) -> MethodRouter<AppState>,
    pub action: Action,
    /// `None`: served but not documented (the `/v1` redirect).
    pub doc: Option<Doc>,
}

/// Every route, in the order the OpenAPI document lists them.
#[rustfmt::skip]
pub(crate) static ROUTES: &[Route] = &[
    Route { method: Verb::Get, path: "/", slash: false, handler: |m| on(m, root), action: Action::None, doc: Some(Doc { summary: "API versions", query: &[], body: Body::None, responses: &[(200, "Versions", Some("Versions"))] }) },
    Route { method: Verb::Get, path: "/v1/", slash: false, handler: |m| on(m, v1_root), action: Action::None, doc: Some(Doc { summary: "The v1 API's resources", query: &[], body: Body::None, responses: &[(200, "Resources", Some("Resources"))] }) },
    Route { method: Verb::Get, path: "/metrics", slash: false, handler: |m| on(m, metrics::scrape), action: Action::Fixed("metrics:get"), doc: Some(Doc { summary: "Prometheus metrics (text exposition format)", query: &[], body: Body::None, responses: &[(200, "Metrics", Some("Text"))] }) },
    Route { method: Verb::Get, path: "/healthz", slash: false, handler: |m| on(m, nodes::healthz), action: Action::None, doc: Some(Doc { summary: "Liveness: the server process answers", query: &[], body: Body::None, responses: &[(200, "{\"status\": \"ok\"}", Some("Object"))] }) },
    Route { method: Verb::Get, path: "/readyz", slash: false, handler: |m| on(m, nodes::readyz), action: Action::None, doc: Some(Doc { summary: "Readiness: the server can serve requests (its database answers)", query: &[], body: Body::None, responses: &[(200, "{\"status\": \"ready\"}", Some("Object")), (503, "{\"status\": \"unavailable\", \"reason\"}", Some("Object"))] }) },
    Route { method: Verb::Get, path: "/v1", slash: false, handler: |m| on(m, v1_redirect), action: Action::None, doc: None },
    // The dashboard's page, script and style (no data, no token: `ui.rs`).
    Route { method: Verb::Get, path: "/ui", slash: false, handler: |m| on(m, ui::root), action: Action::None, doc: None },
    Route { method: Verb::Get, path: "/ui/", slash: false, handler: |m| on(m, ui::index), action: Action::None, doc: None },
    Route { method: Verb::Get, path: "/ui/{file}", slash: false, handler: |m| on(m, ui::file), action: Action::None, doc: None },
    Route { method: Verb::Get, path: "/v1/openapi.json", slash: false, handler: |m| on(m, openapi::serve), action: Action::None, doc: Some(Doc { summary: "This document", query: &[], body: Body::None, responses: &[(200, "OpenAPI 3 document", Some("Object"))] }) },
    // Runtimes.
    Route { method: Verb::Get, path: "/v1/runtimes", slash: true, handler: |m| on(m, runtimes::list), action: Action::List("runtime"), doc: Some(Doc { summary: "List runtimes", query: &[], body: Body::None, responses: &[(200, "Runtimes", Some("RuntimeList")), (400, "Bad request", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/runtimes", slash: true, handler: |m| on(m, runtimes::create), action: Action::Fixed("runtime:create"), doc: Some(Doc { summary: "Create a runtime (admin)", query: &[], body: Body::Json("RuntimeCreate"), responses: &[(201, "Created", Some("Runtime")), (400, "Bad request", Some("Fault")), (409, "Conflict", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/runtimes/{id}", slash: false, handler: |m| on(m, runtimes::show), action: Action::Fixed("runtime:get"), doc: Some(Doc { summary: "Show a runtime", query: &[], body: Body::None, responses: &[(200, "Runtime", Some("Runtime")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Put, path: "/v1/runtimes/{id}", slash: false, handler: |m| on(m, runtimes::update), action: Action::Fixed("runtime:update"), doc: Some(Doc { summary: "Update a runtime (admin)", query: &[], body: Body::Json("RuntimeUpdate"), responses: &[(200, "Updated", Some("Runtime")), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault")), (409, "Conflict", Some("Fault"))] }) },
    Route { method: Verb::Delete, path: "/v1/runtimes/{id}", slash: false, handler: |m| on(m, runtimes::delete), action: Action::Fixed("runtime:delete"), doc: Some(Doc { summary: "Delete a runtime (admin)", query: &[], body: Body::None, responses: &[(204, "Deleted", None), (403, "In use", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/runtimes/{id}/pool", slash: false, handler: |m| on(m, runtimes::pool), action: Action::Fixed("runtime_pool:get_all"), doc: Some(Doc { summary: "Pool capacity of a runtime (admin)", query: &[], body: Body::None, responses: &[(200, "Capacity", Some("Pool")), (404, "Not found", Some("Fault"))] }) },
    // Functions (pecan: forms, faultstring-only errors).
    Route { method: Verb::Get, path: "/v1/functions", slash: true, handler: |m| on(m, functions::list), action: Action::List("function"), doc: Some(Doc { summary: "List functions", query: &["all_projects", "project_id"], body: Body::None, responses: &[(200, "Functions", Some("FunctionList")), (400, "Bad request", Some("PecanFault")), (403, "Forbidden", Some("PecanFault"))] }) },
    Route { method: Verb::Post, path: "/v1/functions", slash: true, handler: |m| on(m, functions::create), action: Action::Fixed("function:create"), doc: Some(Doc { summary: "Create a function from a package", query: &[], body: Body::Form("FunctionCreate"), responses: &[(201, "Created", Some("Function")), (400, "Bad request", Some("PecanFault")), (404, "Runtime not found", Some("PecanFault")), (409, "Runtime not available", Some("PecanFault")), (413, "Too large", Some("PecanFault")), (415, "Unsupported media type", Some("PecanFault"))] }) },
    Route { method: Verb::Get, path: "/v1/functions/{id}", slash: false, handler: |m| on(m, functions::show), action: Action::Fixed("function:get"), doc: Some(Doc { summary: "Show a function, or download its package with download=true", query: &["download"], body: Body::None, responses: &[(200, "Function (or application/zip)", Some("Function")), (404, "Not found", Some("PecanFault"))] }) },
    Route { method: Verb::Put, path: "/v1/functions/{id}", slash: false, handler: |m| on(m, functions::update), action: Action::Fixed("function:update"), doc: Some(Doc { summary: "Update a function", query: &[], body: Body::Form("FunctionUpdate"), responses: &[(200, "Updated", Some("Function")), (400, "Bad request", Some("PecanFault")), (404, "Not found", Some("PecanFault")), (413, "Too large", Some("PecanFault")), (415, "Unsupported media type", Some("PecanFault"))] }) },
    Route { method: Verb::Delete, path: "/v1/functions/{id}", slash: false, handler: |m| on(m, functions::delete), action: Action::Fixed("function:delete"), doc: Some(Doc { summary: "Delete a function", query: &[], body: Body::None, responses: &[(204, "Deleted", None), (403, "In use", Some("PecanFault")), (404, "Not found", Some("PecanFault"))] }) },
    // Workers.
    Route { method: Verb::Get, path: "/v1/functions/{id}/stats", slash: false, handler: |m| on(m, functions::stats), action: Action::Fixed("function:get"), doc: Some(Doc { summary: "A function's live statistics: the last minutes (default 5, at most 60) in 60 steps (not in upstream)", query: &["minutes"], body: Body::None, responses: &[(200, "Statistics", Some("FunctionStats")), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/functions/{id}/workers", slash: true, handler: |m| on(m, workers::list), action: Action::Fixed("function_worker:get_all"), doc: Some(Doc { summary: "List a function's workers (admin)", query: &["function_version"], body: Body::None, responses: &[(200, "Workers", Some("WorkerList")), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/functions/{id}/scale_up", slash: false, handler: |m| on(m, workers::scale_up), action: Action::Fixed("function:scale_up"), doc: Some(Doc { summary: "Add workers (admin)", query: &[], body: Body::Json("Scale"), responses: &[(202, "Accepted", None), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/functions/{id}/scale_down", slash: false, handler: |m| on(m, workers::scale_down), action: Action::Fixed("function:scale_down"), doc: Some(Doc { summary: "Remove workers, never the last (admin)", query: &[], body: Body::Json("Scale"), responses: &[(202, "Accepted", None), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/functions/{id}/detach", slash: false, handler: |m| on(m, workers::detach), action: Action::Fixed("function:detach"), doc: Some(Doc { summary: "Release all workers (admin)", query: &[], body: Body::None, responses: &[(202, "Accepted", None), (404, "Not found", Some("Fault"))] }) },
    // Function versions, aliases, jobs and webhooks (issue 5; engine `versions.rs`, `aliases.rs`, `jobs.rs`, `webhooks.rs`).
    Route { method: Verb::Get, path: "/v1/functions/{id}/versions", slash: true, handler: |m| on(m, versions::list), action: Action::List("function_version"), doc: Some(Doc { summary: "List a function's versions", query: &[], body: Body::None, responses: &[(200, "Versions", Some("VersionList")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/functions/{id}/versions", slash: true, handler: |m| on(m, versions::create), action: Action::Fixed("function_version:create"), doc: Some(Doc { summary: "Snapshot the function as its next version", query: &[], body: Body::Json("VersionCreate"), responses: &[(201, "Created", Some("Version")), (400, "Bad request", Some("Fault")), (403, "Unchanged or too many", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/functions/{id}/versions/{n}", slash: false, handler: |m| on(m, versions::show), action: Action::Fixed("function_version:get"), doc: Some(Doc { summary: "Show a version, or download its package with download=true", query: &["download"], body: Body::None, responses: &[(200, "Version (or the zip)", Some("Version")), (400, "Bad request", Some("PecanFault")), (404, "Not found", Some("PecanFault"))] }) },
    Route { method: Verb::Delete, path: "/v1/functions/{id}/versions/{n}", slash: false, handler: |m| on(m, versions::delete), action: Action::Fixed("function_version:delete"), doc: Some(Doc { summary: "Delete a version", query: &[], body: Body::None, responses: &[(204, "Deleted", None), (400, "Bad request", Some("Fault")), (403, "In use", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/functions/{id}/versions/{n}/scale_up", slash: false, handler: |m| on(m, workers::scale_up), action: Action::Fixed("function_version:scale_up"), doc: Some(Doc { summary: "Add workers to a version (admin)", query: &[], body: Body::Json("Scale"), responses: &[(202, "Accepted", None), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/functions/{id}/versions/{n}/scale_down", slash: false, handler: |m| on(m, workers::scale_down), action: Action::Fixed("function_version:scale_down"), doc: Some(Doc { summary: "Remove workers of a version, never the last (admin)", query: &[], body: Body::Json("Scale"), responses: &[(202, "Accepted", None), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/functions/{id}/versions/{n}/detach", slash: false, handler: |m| on(m, workers::detach), action: Action::Fixed("function_version:detach"), doc: Some(Doc { summary: "Release all workers of a version (admin)", query: &[], body: Body::None, responses: &[(202, "Accepted", None), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/aliases", slash: true, handler: |m| on(m, aliases::list), action: Action::List("function_alias"), doc: Some(Doc { summary: "List aliases", query: &["all_projects", "project_id"], body: Body::None, responses: &[(200, "Aliases", Some("AliasList")), (400, "Bad request", Some("Fault")), (403, "Forbidden", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/aliases", slash: true, handler: |m| on(m, aliases::create), action: Action::Fixed("function_alias:create"), doc: Some(Doc { summary: "Create an alias (optionally weighted between two versions)", query: &[], body: Body::Json("AliasBody"), responses: &[(201, "Created", Some("Alias")), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/aliases/{name}", slash: false, handler: |m| on(m, aliases::show), action: Action::Fixed("function_alias:get"), doc: Some(Doc { summary: "Show an alias", query: &[], body: Body::None, responses: &[(200, "Alias", Some("Alias")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Put, path: "/v1/aliases/{name}", slash: false, handler: |m| on(m, aliases::update), action: Action::Fixed("function_alias:update"), doc: Some(Doc { summary: "Update an alias", query: &[], body: Body::Json("AliasBody"), responses: &[(200, "Updated", Some("Alias")), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Delete, path: "/v1/aliases/{name}", slash: false, handler: |m| on(m, aliases::delete), action: Action::Fixed("function_alias:delete"), doc: Some(Doc { summary: "Delete an alias", query: &[], body: Body::None, responses: &[(204, "Deleted", None), (403, "In use", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/jobs", slash: true, handler: |m| on(m, jobs::list), action: Action::List("job"), doc: Some(Doc { summary: "List jobs", query: &["all_projects", "project_id"], body: Body::None, responses: &[(200, "Jobs", Some("JobList")), (400, "Bad request", Some("Fault")), (403, "Forbidden", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/jobs", slash: true, handler: |m| on(m, jobs::create), action: Action::Fixed("job:create"), doc: Some(Doc { summary: "Create a cron or one-time job", query: &[], body: Body::Json("JobBody"), responses: &[(201, "Created", Some("Job")), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault")), (413, "Input too large", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/jobs/{id}", slash: false, handler: |m| on(m, jobs::show), action: Action::Fixed("job:get"), doc: Some(Doc { summary: "Show a job", query: &[], body: Body::None, responses: &[(200, "Job", Some("Job")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Put, path: "/v1/jobs/{id}", slash: false, handler: |m| on(m, jobs::update), action: Action::Fixed("job:update"), doc: Some(Doc { summary: "Update a job (name, input, pattern, next time, pause/resume/cancel)", query: &[], body: Body::Json("JobBody"), responses: &[(200, "Updated", Some("Job")), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Delete, path: "/v1/jobs/{id}", slash: false, handler: |m| on(m, jobs::delete), action: Action::Fixed("job:delete"), doc: Some(Doc { summary: "Delete a job", query: &[], body: Body::None, responses: &[(204, "Deleted", None), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/webhooks", slash: true, handler: |m| on(m, webhooks::list), action: Action::List("webhook"), doc: Some(Doc { summary: "List webhooks", query: &["all_projects", "project_id"], body: Body::None, responses: &[(200, "Webhooks", Some("WebhookList")), (400, "Bad request", Some("Fault")), (403, "Forbidden", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/webhooks", slash: true, handler: |m| on(m, webhooks::create), action: Action::Fixed("webhook:create"), doc: Some(Doc { summary: "Create a webhook for a function version or an alias", query: &[], body: Body::Json("WebhookBody"), responses: &[(201, "Created", Some("Webhook")), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/webhooks/{id}", slash: false, handler: |m| on(m, webhooks::show), action: Action::Fixed("webhook:get"), doc: Some(Doc { summary: "Show a webhook", query: &[], body: Body::None, responses: &[(200, "Webhook", Some("Webhook")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Put, path: "/v1/webhooks/{id}", slash: false, handler: |m| on(m, webhooks::update), action: Action::Fixed("webhook:update"), doc: Some(Doc { summary: "Update a webhook", query: &[], body: Body::Json("WebhookBody"), responses: &[(200, "Updated", Some("Webhook")), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Delete, path: "/v1/webhooks/{id}", slash: false, handler: |m| on(m, webhooks::delete), action: Action::Fixed("webhook:delete"), doc: Some(Doc { summary: "Delete a webhook", query: &[], body: Body::None, responses: &[(204, "Deleted", None), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/webhooks/{id}/invoke", slash: false, handler: |m| on(m, webhooks::invoke), action: Action::None, doc: Some(Doc { summary: "Invoke a webhook (no authentication): query, form or JSON object become keyword arguments", query: &[], body: Body::Json("Object"), responses: &[(202, "Accepted: {\"execution_id\"}", Some("WebhookInvoked")), (400, "Bad request", Some("PecanFault")), (404, "Not found", Some("PecanFault")), (429, "Rate limited", Some("PecanFault"))] }) },
    // Executions.
    Route { method: Verb::Get, path: "/v1/executions", slash: true, handler: |m| on(m, executions::list), action: Action::List("execution"), doc: Some(Doc { summary: "List executions; filters take eq:/neq:/in:/nin:/gt:/gte:/lt:/lte:/has: prefixes", query: &["function_id", "function_version", "function_alias", "status", "description", "project_id", "all_projects", "created_at", "updated_at", "sync", "input", "result", "id"], body: Body::None, responses: &[(200, "Executions", Some("ExecutionList")), (400, "Bad request", Some("Fault")), (403, "Forbidden", Some("Fault"))] }) },
    Route { method: Verb::Post, path: "/v1/executions", slash: true, handler: |m| on(m, executions::create), action: Action::Fixed("execution:create"), doc: Some(Doc { summary: "Run a function (sync or async)", query: &[], body: Body::Json("ExecutionCreate"), responses: &[(201, "Created", Some("Execution")), (400, "Bad request", Some("Fault")), (404, "Not found", Some("Fault")), (409, "Runtime not available", Some("Fault")), (413, "Input too large", Some("Fault")), (429, "At the concurrency limit", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/executions/{id}", slash: false, handler: |m| on(m, executions::show), action: Action::Fixed("execution:get"), doc: Some(Doc { summary: "Show an execution", query: &[], body: Body::None, responses: &[(200, "Execution", Some("Execution")), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Delete, path: "/v1/executions/{id}", slash: false, handler: |m| on(m, executions::delete), action: Action::Fixed("execution:delete"), doc: Some(Doc { summary: "Delete an execution", query: &[], body: Body::None, responses: &[(204, "Deleted", None), (404, "Not found", Some("Fault"))] }) },
    Route { method: Verb::Get, path: "/v1/executions/{id}/log", slash: false, handler: |m| on(m, executions::log), action: Action::Fixed("execution_log:get"), doc: Some(Doc { summary: "An execution's log (text/plain; 204 when empty)", query: &[], body: Body::None, responses: &[(200, "Log", Some("Text")), (204, "Empty log", None), (404, "Not found", Some("PecanFault"))] }) },
    // Quotas (not in upstream).
    Route { method: Verb::Get, path: "/v1/quotas/{project_id}", slash: false, handler: |m| on(m, quotas::show), action: Action::Quota("quota:get"), doc: Some(Doc { summary: "A project's quota limits and usage", query: &[], body: Body::None, responses: &[(200, "Quota", Some("Quota")), (400, "Bad request", Some("Fault")), (403, "Not allowed", Some("Fault"))] }) },
    Route { method: Verb::Put, path: "/v1/quotas/{project_id}", slash: false, handler: |m| on(m, quotas::update), action: Action::Quota("quota:update"), doc: Some(Doc { summary: "Change a project's quota limits (admin; null resets one, -1 is unlimited)", query: &[], body: Body::Json("QuotaUpdate"), responses: &[(200, "Quota", Some("Quota")), (400, "Bad request", Some("Fault")), (403, "Not allowed", Some("Fault"))] }) },
    Route { method: Verb::Delete, path: "/v1/quotas/{project_id}", slash: false, handler: |m| on(m, quotas::reset), action: Action::Quota("quota:update"), doc: Some(Doc { summary: "Reset a project's quota limits to the defaults (admin)", query: &[], body: Body::None, responses: &[(204, "Reset", None), (400, "Bad request", Some("Fault")), (403, "Not allowed", Some("Fault"))] }) },
    // The platform's nodes (not in upstream).
    Route { method: Verb::Get, path: "/v1/nodes", slash: true, handler: |m| on(m, nodes::list), action: Action::Fixed("node:get_all"), doc: Some(Doc { summary: "The nodes of the platform (admin): a cluster's members with address, version, capacity, running executions, workers, last heartbeat and status (up or lost); a server on its own lists itself", query: &[], body: Body::None, responses: &[(200, "Nodes", Some("NodeList")), (403, "Not allowed", Some("Fault"))] }) },
    // Usage for billing (not in upstream).
    Route { method: Verb::Get, path: "/v1/usage", slash: false, handler: |m| on(m, usage::show), action: Action::Usage, doc: Some(Doc { summary: "Usage of finished executions per project and function (or per project) created in [since, until): counts, duration, CPU, GiB-seconds (memory limit / 2^30 × seconds), peak memory; CSV with format=csv or Accept: text/csv", query: &["since", "until", "project_id", "all_projects", "function_id", "group_by", "format"], body: Body::None, responses: &[(200, "Usage", Some("Usage")), (400, "Bad request (a time, group_by or format)", Some("Fault")), (403, "Another project's usage", Some("Fault"))] }) },
];

/// The router's routes: every entry, with its trailing-slash twin where it has one.
pub(crate) fn add_routes(mut router: axum::Router<AppState>) -> axum::Router<AppState> {
    for r in ROUTES {
        router = router.route(r.path, (r.handler)(r.method.filter()));
        if r.slash {
            router = router.route(&format!("{}/", r.path), (r.handler)(r.method.filter()));
        }
    }
    router
}

/// Whether a request path (segments, empty ones dropped) has a route path's shape.
fn matches(route: &str, segs: &[&str]) -> bool {
    let want: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
    want.len() == segs.len()
        && want
            .iter()
            .zip(segs)
            .all(|(w, s)| w.starts_with('{') || w == s)
}

/// The policy action a request names, and the target's project when the request names one
/// (quotas, usage); otherwise the target is the caller's own project, as upstream. `None`
/// for requests no route serves (they answer 404 or 405 after authentication) and for routes
/// without an action.
pub fn action_for(
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Option<(String, Option<String>)> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let route = ROUTES
        .iter()
        .find(|r| r.method.is(method) && matches(r.path, &segs))?;
    let params = || -> Vec<(String, String)> {
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default()
    };
    match route.action {
        Action::None => None,
        Action::Fixed(action) => Some((action.into(), None)),
        Action::List(resource) => {
            let cross_project = params()
                .iter()
                .any(|(k, v)| (k == "all_projects" && wire::truthy(v)) || k == "project_id");
            Some(if cross_project {
                (format!("{resource}:get_all:all_projects"), None)
            } else {
                (format!("{resource}:get_all"), None)
            })
        }
        Action::Usage => {
            let params = params();
            if params
                .iter()
                .any(|(k, v)| k == "all_projects" && wire::truthy(v))
            {
                return Some(("usage:get:all_projects".into(), None));
            }
            let project = params
                .into_iter()
                .rev()
                .find(|(k, _)| k == "project_id")
                .map(|(_, v)| v);
            Some(("usage:get".into(), project))
        }
        Action::Quota(action) => {
            let at = route
                .path
                .split('/')
                .filter(|s| !s.is_empty())
                .position(|s| s == "{project_id}")?;
            Some((action.into(), Some(segs[at].to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_route_is_unique_and_every_served_path_but_the_redirect_is_documented() {
        let mut seen = BTreeSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method.as_str(), r.path)),
                "{} {} twice",
                r.method.as_str(),
                r.path
            );
            assert!(
                // The dashboard's files are pages, not API.
                r.doc.is_some() || r.path == "/v1" || r.path.starts_with("/ui"),
                "{} {} undocumented",
                r.method.as_str(),
                r.path
            );
        }
    }

    #[test]
    fn every_route_but_the_open_ones_names_an_action() {
        let open: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.action == Action::None)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            open,
            [
                "/",
                "/v1/",
                "/healthz",
                "/readyz",
                "/v1",
                "/ui",
                "/ui/",
                "/ui/{file}",
                "/v1/openapi.json",
                "/v1/webhooks/{id}/invoke"
            ]
        );
    }

    #[test]
    fn routes_name_upstream_actions() {
        let cases: &[(Method, &str, Option<&str>, &str)] = &[
            (Method::POST, "/v1/runtimes", None, "runtime:create"),
            (Method::POST, "/v1/runtimes/", None, "runtime:create"),
            (Method::GET, "/v1/runtimes", None, "runtime:get_all"),
            (Method::PUT, "/v1/runtimes/x", None, "runtime:update"),
            (Method::DELETE, "/v1/runtimes/x", None, "runtime:delete"),
            (
                Method::GET,
                "/v1/runtimes/x/pool",
                None,
                "runtime_pool:get_all",
            ),
            (
                Method::GET,
                "/v1/functions",
                Some("all_projects=true"),
                "function:get_all:all_projects",
            ),
            (
                Method::GET,
                "/v1/functions",
                Some("all_projects=false"),
                "function:get_all",
            ),
            (
                Method::GET,
                "/v1/functions",
                Some("project_id=x"),
                "function:get_all:all_projects",
            ),
            (Method::DELETE, "/v1/functions/f", None, "function:delete"),
            (
                Method::GET,
                "/v1/functions/f/workers/",
                None,
                "function_worker:get_all",
            ),
            (
                Method::POST,
                "/v1/functions/f/scale_up",
                None,
                "function:scale_up",
            ),
            (
                Method::POST,
                "/v1/functions/f/detach",
                None,
                "function:detach",
            ),
            (
                Method::POST,
                "/v1/functions/f/versions",
                None,
                "function_version:create",
            ),
            (
                Method::POST,
                "/v1/functions/f/versions/1/scale_down",
                None,
                "function_version:scale_down",
            ),
            (
                Method::GET,
                "/v1/executions",
                Some("all_projects=1"),
                "execution:get_all:all_projects",
            ),
            (
                Method::GET,
                "/v1/executions/e/log",
                None,
                "execution_log:get",
            ),
            (
                Method::GET,
                "/v1/webhooks",
                Some("all_projects=true"),
                "webhook:get_all:all_projects",
            ),
            (
                Method::GET,
                "/v1/jobs",
                Some("project_id=p"),
                "job:get_all:all_projects",
            ),
            (Method::PUT, "/v1/aliases/a", None, "function_alias:update"),
            (Method::GET, "/metrics", None, "metrics:get"),
        ];
        for (m, p, q, want) in cases {
            let (action, target) = action_for(m, p, *q).unwrap_or_else(|| panic!("{m} {p}"));
            assert_eq!(&action, want, "{m} {p} {q:?}");
            assert_eq!(target, None);
        }
        assert_eq!(
            action_for(&Method::PUT, "/v1/quotas/p1", None),
            Some(("quota:update".into(), Some("p1".into())))
        );
        assert_eq!(
            action_for(&Method::GET, "/v1/quotas/p1", None),
            Some(("quota:get".into(), Some("p1".into())))
        );
        assert_eq!(
            action_for(&Method::GET, "/v1/usage", Some("since=2026-01-01")),
            Some(("usage:get".into(), None))
        );
        assert_eq!(
            action_for(&Method::GET, "/v1/usage", Some("project_id=a&project_id=b")),
            Some(("usage:get".into(), Some("b".into())))
        );
        assert_eq!(
            action_for(&Method::GET, "/v1/usage", Some("all_projects=yes")),
            Some(("usage:get:all_projects".into(), None))
        );
        assert_eq!(action_for(&Method::POST, "/v1/usage", None), None);
        assert_eq!(action_for(&Method::GET, "/v2/functions", None), None);
        assert_eq!(action_for(&Method::PATCH, "/v1/functions", None), None);
    }
}
