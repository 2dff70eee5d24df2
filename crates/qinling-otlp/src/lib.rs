//! The OTLP trace exporter: the server's [`SpanSink`]. Spans are queued without blocking
//! the execution that ended (a bounded queue; beyond it they are dropped and counted), and a
//! task sends them in batches as OTLP/HTTP protobuf (`POST <endpoint>/v1/traces`,
//! `application/x-protobuf`) — the protocol every OpenTelemetry collector, Jaeger and Tempo
//! receive. A collector that is away costs the spans of that moment and a warning, never an
//! execution.
//!
//! Metrics: `qinling_trace_spans_exported_total`, `qinling_trace_spans_dropped_total`
//! (`reason`: `queue_full`, `export_failed`).

pub mod proto;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prost::Message;
use qinling_types::trace::{AttrValue, Span, SpanKind, SpanSink};
use tokio::sync::{Notify, mpsc};

/// Spans (in executions' batches) the queue holds before it drops.
const QUEUE: usize = 4096;
/// Most spans one request carries.
const MAX_BATCH: usize = 1024;
/// How long the first span of a batch waits for company.
const LINGER: Duration = Duration::from_millis(500);
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one warning about a failing collector per this.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What the exported spans say about who made them (OTLP resource attributes).
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// `service.instance.id`: the node's name.
    pub instance: String,
    /// `service.version`.
    pub version: String,
}

/// The exporter; clone the `Arc` into the engine's config.
#[derive(Debug)]
pub struct OtlpExporter {
    tx: mpsc::Sender<Vec<Span>>,
    closing: Arc<Notify>,
    closed: Arc<Notify>,
    done: Arc<AtomicBool>,
}

/// `endpoint` as the URL spans are posted to: a bare `http://host:port` (or with `/`) gets
/// OTLP's `/v1/traces`; a URL with a path is used as it is. Only `http` (this build has no
/// TLS: put a collector beside the server).
pub fn traces_url(endpoint: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(endpoint.trim())
        .map_err(|e| format!("otlp endpoint '{endpoint}' is not a URL: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "otlp endpoint '{endpoint}': only http:// is supported (this build has no TLS; \
             run an OpenTelemetry collector next to the server and point it there)"
        ));
    }
    if url.host_str().is_none() {
        return Err(format!("otlp endpoint '{endpoint}' names no host"));
    }
    if url.path() == "/" || url.path().is_empty() {
        return url
            .join("/v1/traces")
            .map_err(|e| format!("otlp endpoint '{endpoint}': {e}"));
    }
    Ok(url)
}

impl OtlpExporter {
    /// Starts the exporting task (on the current tokio runtime).
    pub fn start(url: reqwest::Url, service: ServiceInfo) -> Result<Arc<OtlpExporter>, String> {
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("the OTLP HTTP client: {e}"))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let exporter = Arc::new(OtlpExporter {
            tx,
            closing: Arc::new(Notify::new()),
            closed: Arc::new(Notify::new()),
            done: Arc::new(AtomicBool::new(false)),
        });
        describe();
        let task = Sender {
            client,
            url,
            service,
            last_warning: None,
        };
        let (closing, closed, done) = (
            exporter.closing.clone(),
            exporter.closed.clone(),
            exporter.done.clone(),
        );
        tokio::spawn(async move {
            task.run(rx, closing).await;
            done.store(true, Ordering::SeqCst);
            closed.notify_waiters();
        });
        Ok(exporter)
    }

    /// Sends what is queued and stops, waiting at most `within`.
    pub async fn shutdown(&self, within: Duration) {
        let closed = self.closed.notified();
        self.closing.notify_one();
        if self.done.load(Ordering::SeqCst) {
            return;
        }
        if tokio::time::timeout(within, closed).await.is_err() {
            tracing::warn!("the OTLP exporter did not finish sending spans in {within:?}");
        }
    }
}

impl SpanSink for OtlpExporter {
    fn export(&self, spans: Vec<Span>) {
        let n = spans.len() as u64;
        if self.tx.try_send(spans).is_err() {
            metrics::counter!("qinling_trace_spans_dropped_total", "reason" => "queue_full")
                .increment(n);
        }
    }
}

fn describe() {
    metrics::describe_counter!(
        "qinling_trace_spans_exported_total",
        "Execution spans the OTLP collector accepted."
    );
    metrics::describe_counter!(
        "qinling_trace_spans_dropped_total",
        "Execution spans not exported, by reason (queue_full, export_failed)."
    );
    for reason in ["queue_full", "export_failed"] {
        metrics::counter!("qinling_trace_spans_dropped_total", "reason" => reason).increment(0);
    }
    metrics::counter!("qinling_trace_spans_exported_total").increment(0);
}

struct Sender {
    client: reqwest::Client,
    url: reqwest::Url,
    service: ServiceInfo,
    last_warning: Option<tokio::time::Instant>,
}

impl Sender {
    async fn run(mut self, mut rx: mpsc::Receiver<Vec<Span>>, closing: Arc<Notify>) {
        let mut closing_now = false;
        loop {
            // The first spans of a batch, or the end.
            let first = if closing_now {
                rx.try_recv().ok()
            } else {
                tokio::select! {
                    spans = rx.recv() => spans,
                    _ = closing.notified() => {
                        closing_now = true;
                        rx.try_recv().ok()
                    }
                }
            };
            let Some(mut batch) = first else {
                return;
            };
            // Company for them, for a moment (none when closing).
            let deadline = tokio::time::Instant::now() + LINGER;
            while batch.len() < MAX_BATCH {
                let more = if closing_now {
                    rx.try_recv().ok()
                } else {
                    tokio::select! {
                        more = rx.recv() => more,
                        _ = tokio::time::sleep_until(deadline) => None,
                        _ = closing.notified() => {
                            closing_now = true;
                            rx.try_recv().ok()
                        }
                    }
                };
                match more {
                    Some(more) => batch.extend(more),
                    None => break,
                }
            }
            self.send(batch).await;
        }
    }

    async fn send(&mut self, spans: Vec<Span>) {
        let n = spans.len() as u64;
        let body = encode(&self.service, spans);
        let result = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await;
        let failure = match result {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("the collector answered {}", r.status())),
            Err(e) => Some(e.to_string()),
        };
        match failure {
            None => metrics::counter!("qinling_trace_spans_exported_total").increment(n),
            Some(error) => {
                metrics::counter!("qinling_trace_spans_dropped_total", "reason" => "export_failed")
                    .increment(n);
                let now = tokio::time::Instant::now();
                if self
                    .last_warning
                    .is_none_or(|at| now.duration_since(at) >= WARN_EVERY)
                {
                    self.last_warning = Some(now);
                    tracing::warn!(url = %self.url, %error, spans = n, "spans could not be exported (warned at most once a minute)");
                }
            }
        }
    }
}

/// The OTLP request for `spans`.
pub fn encode(service: &ServiceInfo, spans: Vec<Span>) -> Vec<u8> {
    let kv = |key: &str, value: AttrValue| proto::KeyValue {
        key: key.to_string(),
        value: Some(proto::AnyValue {
            value: Some(match value {
                AttrValue::Str(s) => proto::Value::String(s),
                AttrValue::Int(n) => proto::Value::Int(n),
                AttrValue::Bool(b) => proto::Value::Bool(b),
                AttrValue::Float(x) => proto::Value::Double(x),
            }),
        }),
    };
    let spans = spans
        .into_iter()
        .map(|s| proto::Span {
            trace_id: s.trace_id.to_vec(),
            span_id: s.span_id.to_vec(),
            parent_span_id: s.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: s.name,
            kind: match s.kind {
                SpanKind::Internal => 1,
                SpanKind::Server => 2,
            },
            start_time_unix_nano: s.start_unix_nanos,
            end_time_unix_nano: s.end_unix_nanos,
            attributes: s.attributes.into_iter().map(|(k, v)| kv(&k, v)).collect(),
            status: Some(match s.error {
                Some(message) => proto::Status { message, code: 2 },
                None => proto::Status {
                    message: String::new(),
                    code: 0,
                },
            }),
            flags: 1,
        })
        .collect();
    proto::ExportTraceServiceRequest {
        resource_spans: vec![proto::ResourceSpans {
            resource: Some(proto::Resource {
                attributes: vec![
                    kv("service.name", "qinling".into()),
                    kv("service.instance.id", service.instance.clone().into()),
                    kv("service.version", service.version.clone().into()),
                ],
            }),
            scope_spans: vec![proto::ScopeSpans {
                scope: Some(proto::InstrumentationScope {
                    name: "qinling".into(),
                    version: service.version.clone(),
                }),
                spans,
            }],
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_become_the_traces_url_or_a_clear_error() {
        let ok = |e: &str| traces_url(e).unwrap().to_string();
        assert_eq!(ok("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(ok("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            ok("http://c:4318/custom/traces"),
            "http://c:4318/custom/traces"
        );
        for (bad, says) in [
            ("https://c:4318", "only http://"),
            ("c:4318", "only http://"),
            ("not a url", "is not a URL"),
        ] {
            let e = traces_url(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_span_encodes_and_decodes_with_its_fields() {
        let span = Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: Some([3; 8]),
            name: "execution".into(),
            kind: SpanKind::Server,
            start_unix_nanos: 10,
            end_unix_nanos: 20,
            attributes: vec![("faas.coldstart".into(), true.into())],
            error: Some("boom".into()),
        };
        let service = ServiceInfo {
            instance: "n1".into(),
            version: "0.1.0".into(),
        };
        let bytes = encode(&service, vec![span]);
        let back = proto::ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let s = &back.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            (&s.trace_id[..], &s.span_id[..], &s.parent_span_id[..]),
            (&[1u8; 16][..], &[2u8; 8][..], &[3u8; 8][..])
        );
        assert_eq!(
            (s.kind, s.start_time_unix_nano, s.end_time_unix_nano),
            (2, 10, 20)
        );
        assert_eq!(s.status.as_ref().map(|st| st.code), Some(2));
        assert_eq!(s.attributes[0].key, "faas.coldstart");
    }

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_blocking_and_shutdown_returns() {
        // A collector that never answers: the queue fills, export() still returns at once.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = traces_url(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let exporter = OtlpExporter::start(
            url,
            ServiceInfo {
                instance: "n".into(),
                version: "v".into(),
            },
        )
        .unwrap();
        let started = std::time::Instant::now();
        for _ in 0..(QUEUE + MAX_BATCH + 100) {
            exporter.export(vec![]);
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        exporter.shutdown(Duration::from_millis(200)).await;
        drop(listener);
    }
}
