//! The dashboard (`/ui`, not in upstream): a single page (`ui/index.html`, `ui/app.js`,
//! `ui/app.css`, embedded in the binary) that signs in with a token and then uses the v1 API
//! with it — so it can see and do exactly what the API lets that token see and do. The
//! pages themselves hold no data and need no token. They are served with a strict Content
//! Security Policy (scripts and styles from this origin only, no inline script, no framing):
//! the page puts everything it gets from the API into the document as text, and the policy
//! stops a script from running even if a bug did not.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Small, and new with every release: always revalidated.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// `GET /ui`: to `/ui/`, where the page's relative asset paths resolve.
pub async fn root() -> Redirect {
    Redirect::permanent("/ui/")
}

/// `GET /ui/`.
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /ui/{file}`: the page's script and style sheet.
pub async fn file(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "app.js" => asset("text/javascript; charset=utf-8", APP_JS),
        "app.css" => asset("text/css; charset=utf-8", APP_CSS),
        "index.html" => asset("text/html; charset=utf-8", INDEX),
        _ => crate::error::webob(
            StatusCode::NOT_FOUND,
            Some("The resource could not be found."),
        ),
    }
}
