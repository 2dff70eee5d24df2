//! HTTP to a Qinling server, and the one place where HTTP failures become CLI errors: a status
//! of 400 or more becomes an [`ApiError`] (`<message> (HTTP <code>)`, the message taken from
//! whichever error body the server sent), an unreachable server becomes a message naming the
//! URL and `qinling serve`. Also builds upload parts, with a progress bar for large packages.
//!
//! Resource modules build requests with [`Client::request`] and finish them with
//! [`Client::json`], [`Client::empty`] or [`Client::send`]; they never look at status codes.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::multipart::Part;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde_json::Value;

/// Uploads larger than this get a progress bar (when stderr is a terminal).
const PROGRESS_THRESHOLD: usize = 4 * 1024 * 1024;
const UPLOAD_CHUNK: usize = 64 * 1024;

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

/// The server answered with an error status.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}

impl Client {
    /// `base` is the service root (`http://host:7070`), without `/v1`.
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Client> {
        let base = Url::parse(base).with_context(|| format!("invalid server URL '{base}'"))?;
        if base.scheme() != "http" {
            bail!(
                "unsupported server URL '{base}': this client speaks plain http only; \
                 put a TLS-terminating proxy in front of it or use an http:// URL"
            );
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("qinling-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client {
            http,
            base,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// `<base>/<segments…>`, each segment percent-encoded, so ids and names cannot change the path.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http URL always has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    pub fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.authorized(self.http.request(method, self.url(segments)))
    }

    /// [`Client::request`] with query parameters, percent-encoded.
    pub fn request_with_query(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(String, String)],
    ) -> RequestBuilder {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.authorized(self.http.request(method, url))
    }

    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.header("X-Auth-Token", token),
            None => request,
        }
    }

    /// Sends, and turns transport failures and error statuses into errors.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        if response.status().as_u16() >= 400 {
            return Err(ApiError::from_response(response).await.into());
        }
        Ok(response)
    }

    /// Sends and parses a JSON body.
    pub async fn json(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response = self.send(request).await?;
        let url = response.url().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "the server's answer to {url} is not JSON: {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// Sends and ignores the (empty) body: deletes and actions (204, 202).
    pub async fn empty(&self, request: RequestBuilder) -> anyhow::Result<()> {
        self.send(request).await.map(drop)
    }

    fn transport_error(&self, error: reqwest::Error) -> anyhow::Error {
        let url = error
            .url()
            .map_or_else(|| self.base.to_string(), Url::to_string);
        let cause = root_cause(&error);
        if error.is_connect() {
            anyhow!(
                "Cannot connect to the Qinling server at {} ({cause}).\n\
                 Is it running? Start one with `qinling serve`, or point --url (or QINLING_URL) at a running server.",
                self.base.as_str().trim_end_matches('/')
            )
        } else if error.is_timeout() {
            anyhow!("The request to {url} timed out ({cause}).")
        } else {
            anyhow!("The request to {url} failed: {cause}")
        }
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

impl ApiError {
    async fn from_response(response: Response) -> ApiError {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        ApiError {
            status: status.as_u16(),
            message: error_message(status, &headers, &body),
        }
    }
}

/// The human message of an error response, as python-qinlingclient finds it: `faultstring`
/// of the Qinling bodies (`{"faultstring"}` from plain pecan handlers, `{"faultcode",
/// "faultstring", "debuginfo"}` from WSME ones), else `description` of WebOb's
/// `{"code", "title", "description"}`, else the `Server-Error-Message` header, else the text
/// of an HTML page or the plain body, else the status's reason phrase.
pub fn error_message(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> String {
    let header = headers
        .get("Server-Error-Message")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let text = String::from_utf8_lossy(body);
    let text = text.trim();

    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) {
        let field = |name: &str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        if let Some(message) = field("faultstring")
            .or_else(|| field("description"))
            .or(header)
            .or_else(|| field("title"))
        {
            return message.to_string();
        }
    }
    if let Some(message) = header {
        return message.to_string();
    }
    let is_html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"))
        || text.starts_with('<');
    let message = if is_html {
        strip_tags(text)
    } else {
        text.to_string()
    };
    if message.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        message
    }
}

/// The text of an HTML page: tags removed, whitespace collapsed; `<head>`, `<script>` and
/// `<style>` content is dropped.
fn strip_tags(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    let mut skip_until: Option<&str> = None;
    while let Some(start) = rest.find('<') {
        if skip_until.is_none() {
            text.push_str(&rest[..start]);
            text.push(' ');
        }
        let Some(end) = rest[start..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].trim().to_ascii_lowercase();
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
            .collect();
        match skip_until {
            Some(closing) if name == closing => skip_until = None,
            Some(_) => {}
            None => {
                skip_until = match name.as_str() {
                    "head" => Some("/head"),
                    "script" => Some("/script"),
                    "style" => Some("/style"),
                    _ => None,
                }
            }
        }
        rest = &rest[start + end + 1..];
    }
    if skip_until.is_none() {
        text.push_str(rest);
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A file part for a multipart upload. Large uploads to a terminal stream in chunks through a
/// byte-counting wrapper that drives a progress bar on stderr.
pub fn file_part(file_name: &str, data: Vec<u8>) -> Part {
    let part = if data.len() > PROGRESS_THRESHOLD && std::io::stderr().is_terminal() {
        let len = data.len() as u64;
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(len),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(format!("Uploading {file_name}"));
        Part::stream_with_length(reqwest::Body::wrap_stream(counted_chunks(data, bar)), len)
    } else {
        Part::bytes(data)
    };
    part.file_name(file_name.to_string())
}

/// The data as a stream of chunks; each chunk advances the bar as the HTTP client takes it.
fn counted_chunks(
    data: Vec<u8>,
    bar: indicatif::ProgressBar,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let data = Arc::new(data);
    futures_util::stream::unfold(0usize, move |offset| {
        let data = Arc::clone(&data);
        let bar = bar.clone();
        async move {
            if offset >= data.len() {
                bar.finish_and_clear();
                return None;
            }
            let end = (offset + UPLOAD_CHUNK).min(data.len());
            bar.inc((end - offset) as u64);
            Some((Ok(data[offset..end].to_vec()), end))
        }
    })
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use reqwest::header::HeaderValue;

    use super::*;
    use crate::stub::{Stub, block_on};

    fn message(
        status: u16,
        content_type: Option<&str>,
        header: Option<&str>,
        body: &str,
    ) -> String {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        if let Some(h) = header {
            headers.insert("Server-Error-Message", HeaderValue::from_str(h).unwrap());
        }
        error_message(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body.as_bytes(),
        )
    }

    #[test]
    fn error_messages_from_the_server_bodies() {
        let json = Some("application/json");
        let cases = [
            // plain pecan handlers
            (
                404,
                json,
                None,
                r#"{"faultstring": "Function not found [id=x]"}"#,
                "Function not found [id=x]",
            ),
            // WSME handlers
            (
                400,
                json,
                None,
                r#"{"faultcode": "Client", "faultstring": "Unknown argument: \"name\"", "debuginfo": null}"#,
                "Unknown argument: \"name\"",
            ),
            (
                500,
                json,
                None,
                r#"{"faultcode": "Server", "faultstring": "boom", "debuginfo": "trace"}"#,
                "boom",
            ),
            // WebOb errors with Accept: application/json
            (
                401,
                json,
                Some("Failed to validate access token"),
                r#"{"code": 401, "title": "Unauthorized", "description": "Failed to validate access token: Authentication required"}"#,
                "Failed to validate access token: Authentication required",
            ),
            (
                406,
                json,
                None,
                r#"{"code": 406, "title": "Not Acceptable", "description": null}"#,
                "Not Acceptable",
            ),
            (
                405,
                json,
                Some("Download image function is not allowed."),
                r#"{"code": 405, "title": "Method Not Allowed", "description": null}"#,
                "Download image function is not allowed.",
            ),
            // WebOb HTML pages
            (
                405,
                Some("text/html; charset=UTF-8"),
                Some("Download image function is not allowed."),
                "<html><body>405</body></html>",
                "Download image function is not allowed.",
            ),
            (
                404,
                Some("text/html; charset=UTF-8"),
                None,
                "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  The resource could not be found.<br/><br/>\n </body>\n</html>",
                "404 Not Found The resource could not be found.",
            ),
            // anything else
            (
                500,
                Some("text/plain"),
                None,
                "A server error occurred.  Please contact the administrator.\n",
                "A server error occurred.  Please contact the administrator.",
            ),
            (502, None, None, "", "Bad Gateway"),
            (
                400,
                json,
                None,
                r#"["not", "an", "object"]"#,
                r#"["not", "an", "object"]"#,
            ),
        ];
        for (status, content_type, header, body, expected) in cases {
            assert_eq!(
                message(status, content_type, header, body),
                expected,
                "for {body:?}"
            );
        }
    }

    #[test]
    fn api_error_display() {
        let e = ApiError {
            status: 404,
            message: "Function not found [id=x]".into(),
        };
        assert_eq!(e.to_string(), "Function not found [id=x] (HTTP 404)");
    }

    #[test]
    fn urls_keep_the_base_path_and_encode_segments() {
        let c = Client::new("http://h:7070/", None).unwrap();
        assert_eq!(
            c.url(&["v1", "functions", "a/b?c"]).as_str(),
            "http://h:7070/v1/functions/a%2Fb%3Fc"
        );
        let c = Client::new("http://h/qinling", None).unwrap();
        assert_eq!(
            c.url(&["v1", "runtimes"]).as_str(),
            "http://h/qinling/v1/runtimes"
        );
        assert!(Client::new("https://h", None).is_err());
        assert!(Client::new("not a url", None).is_err());
    }

    #[test]
    fn errors_and_tokens_over_http() {
        let stub = Stub::serve(vec![(
            404,
            "application/json",
            r#"{"faultstring": "Execution not found [id=e]"}"#.into(),
        )]);
        let client = Client::new(&stub.url, Some("tok".into())).unwrap();
        let err = block_on(client.json(client.request(Method::GET, &["v1", "executions", "e"])))
            .unwrap_err();
        assert_eq!(
            err.downcast_ref::<ApiError>().unwrap().to_string(),
            "Execution not found [id=e] (HTTP 404)"
        );
        let request = stub.requests().remove(0);
        assert!(
            request
                .head
                .starts_with("GET /v1/executions/e HTTP/1.1\r\n"),
            "{}",
            request.head
        );
        assert!(
            request.header("x-auth-token").as_deref() == Some("tok"),
            "{}",
            request.head
        );
    }

    #[test]
    fn connection_refused_names_the_url_and_serve() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = Client::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let err =
            block_on(client.json(client.request(Method::GET, &["v1", "functions"]))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "Cannot connect to the Qinling server at http://127.0.0.1:{port} ("
            )),
            "{text}"
        );
        assert!(text.contains("`qinling serve`"), "{text}");
    }

    #[test]
    fn counted_chunks_cover_the_data_and_the_bar() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let bar = indicatif::ProgressBar::hidden();
        bar.set_length(data.len() as u64);
        let chunks: Vec<Vec<u8>> = block_on(
            counted_chunks(data.clone(), bar.clone())
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
        );
        assert_eq!(chunks.len(), 4);
        assert_eq!(chunks.concat(), data);
        assert_eq!(bar.position(), 200_000);
    }
}
