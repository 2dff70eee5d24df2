//! Domain nouns shared by every layer: resources (runtimes, functions, executions), their
//! statuses, resource limits, the request context and the domain [`Error`]. No IO lives here,
//! and nothing here knows HTTP or SQL.

mod error;
mod ids;
mod limits;
mod model;
mod time_fmt;
pub mod trace;
mod triggers;
mod usage;

pub use error::{Error, Result};
pub use ids::{ExecutionId, FunctionId, JobId, RuntimeId, WebhookId};
pub use limits::{Limit, LimitChanges, LimitRanges, Range, ResourceLimits};
pub use model::*;
pub use time_fmt::{Timestamp, format_precise, format_ts, now};
pub use triggers::*;
pub use usage::{UsageGroup, UsageRow};

/// A fresh random resource id (UUID4, 36 characters), as upstream uses.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `s` is a UUID in its canonical hyphenated form.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// Who is asking. Auth is off in the embedded default: every request is project `default`
/// with the admin role; the auth issue fills this from tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub project_id: String,
    pub user_id: Option<String>,
    pub is_admin: bool,
    pub request_id: String,
}

impl RequestContext {
    /// The context of a request when authentication is disabled.
    pub fn unauthenticated(request_id: String) -> Self {
        Self {
            project_id: "default".into(),
            user_id: None,
            is_admin: true,
            request_id,
        }
    }
}
