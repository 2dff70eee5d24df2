//! Domain errors become HTTP answers here, once. Qinling has two error-body shapes (reference
//! §2.2): WSME handlers answer `{"faultcode", "faultstring", "debuginfo"}`, plain-pecan
//! handlers `{"faultstring"}`; routing errors use WebOb's `{"code", "title", "description"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qinling_types::Error;

/// Which body shape an endpoint uses for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Wsme,
    Pecan,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub style: Style,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            style: Style::Wsme,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The same error in the plain-pecan shape.
    pub fn pecan(mut self) -> Self {
        self.style = Style::Pecan;
        self
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Input(_) => StatusCode::BAD_REQUEST,
            Error::NotAllowed(_) => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            Error::Internal { context, source } => {
                tracing::error!(error = %source, %context, "internal error");
                format!("Internal server error: {context}.")
            }
            other => other.to_string(),
        };
        ApiError {
            status,
            message,
            style: Style::Wsme,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let allow_header = (self.status == StatusCode::METHOD_NOT_ALLOWED)
            .then(|| HeaderValue::from_str(&self.message).ok())
            .flatten();
        let mut resp = match self.style {
            Style::Wsme => {
                let faultcode = if self.status.is_server_error() {
                    "Server"
                } else {
                    "Client"
                };
                let body = qinling_wire::Fault {
                    faultcode: faultcode.into(),
                    faultstring: self.message,
                    debuginfo: None,
                };
                (self.status, axum::Json(body)).into_response()
            }
            Style::Pecan => {
                let body = qinling_wire::PecanFault {
                    faultstring: self.message,
                };
                (self.status, axum::Json(body)).into_response()
            }
        };
        if let Some(v) = allow_header {
            resp.headers_mut().insert("Server-Error-Message", v);
        }
        resp
    }
}

/// A WebOb-style error (routing: 404, 405, 406).
pub fn webob(status: StatusCode, description: Option<&str>) -> Response {
    let body = serde_json::json!({
        "code": status.as_u16(),
        "title": status.canonical_reason().unwrap_or(""),
        "description": description,
        "faultstring": description.unwrap_or(status.canonical_reason().unwrap_or("")),
    });
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
