//! The domain error: what went wrong, in terms a user can act on. The HTTP edge maps each
//! variant to a status code and a Qinling fault body, once.

/// A domain error. Messages are the user-facing text (upstream's wording where it has one).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A resource that does not exist (or is not visible to the caller): 404.
    #[error("{kind} not found [{key}]")]
    NotFound { kind: &'static str, key: String },
    /// Bad input the caller can fix: 400.
    #[error("{0}")]
    Input(String),
    /// Forbidden by policy or by the resource's state: 403.
    #[error("{0}")]
    NotAllowed(String),
    /// The resource's state does not allow this now: 409.
    #[error("{0}")]
    Conflict(String),
    /// The request body or a package is larger than allowed: 413.
    #[error("{0}")]
    TooLarge(String),
    /// Too many requests or executions in flight: 429.
    #[error("{0}")]
    TooMany(String),
    /// The method is not available for this resource: 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A service this request needs (the database) cannot be reached now: 503. The caller
    /// may try again.
    #[error("{0}")]
    Unavailable(String),
    /// Our own fault (storage, IO): 500. The message is logged; the client sees a summary.
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub fn not_found(kind: &'static str, id: impl std::fmt::Display) -> Self {
        Error::NotFound {
            kind,
            key: format!("id={id}"),
        }
    }

    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    /// A quota (`functions`, `package_bytes`, `concurrent_executions`, `workers`,
    /// `executions_per_minute`) that `adding` more would exceed: the one wording of that
    /// refusal, and its status (403 for counts of things, 413 for bytes, 429 for executions).
    pub fn quota_exceeded(resource: &str, limit: i64, in_use: i64, adding: i64) -> Self {
        let mut message = format!("Quota exceeded for {resource}: limit {limit}, in use {in_use}");
        if adding != 1 {
            message.push_str(&format!(", requested {adding}"));
        }
        message.push('.');
        match resource {
            "package_bytes" => Error::TooLarge(message),
            "concurrent_executions" | "executions_per_minute" => Error::TooMany(message),
            _ => Error::NotAllowed(message),
        }
    }

    pub fn internal(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Internal {
            context: context.into(),
            source: source.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
