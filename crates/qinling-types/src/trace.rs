//! Execution traces: the W3C Trace Context an execution belongs to ([`TraceParent`], parsed
//! from a request's `traceparent` header), what is kept of it with the execution
//! ([`TraceContext`], a compact text in the row), the spans an execution's life is cut into
//! ([`Span`]) and the one way out for them ([`SpanSink`]; the server's is an OTLP exporter).
//! Pure: no clock, no IO.
//!
//! Span ids of an execution are derived from its id and the span's role ([`span_id`]), so
//! every node (the one that admitted it, the one that ran it) names the same spans alike
//! without telling each other.

use std::fmt;

/// A W3C `traceparent` (version 00): the caller's trace and span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The caller's `sampled` flag.
    pub sampled: bool,
}

impl TraceParent {
    /// Parses a `traceparent` header as the W3C Trace Context spec reads it: `None` for
    /// anything invalid (then a new trace starts, as the spec asks; a bad header is never an
    /// error). Versions above 00 are read by their 00 prefix.
    pub fn parse(header: &str) -> Option<TraceParent> {
        let header = header.trim();
        let version = header.get(0..2)?;
        let version = u8::from_str_radix(version, 16).ok()?;
        if !is_lower_hex(&header[0..2]) || version == 0xff {
            return None;
        }
        // Version 00 is exactly 55 characters; later versions may append `-…`.
        if (version == 0 && header.len() != 55) || header.len() < 55 {
            return None;
        }
        if version != 0 && header.len() > 55 && header.as_bytes()[55] != b'-' {
            return None;
        }
        let bytes = header.as_bytes();
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let trace_id: [u8; 16] = unhex(&header[3..35])?.try_into().ok()?;
        let span_id: [u8; 8] = unhex(&header[36..52])?.try_into().ok()?;
        let flags = unhex(&header[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The header form: `00-<trace id>-<span id>-<flags>`.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }
}

/// What an execution keeps of its trace: the trace it belongs to, the caller's span (its
/// execution span's parent, if the request had one), whether it is sampled, and when its
/// admission began (the execution span's start, which a later run on another node needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub parent: Option<[u8; 8]>,
    pub sampled: bool,
    /// Nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
}

impl TraceContext {
    /// The context of a new execution: in the caller's trace if there is one, else in a new
    /// trace `fresh_trace_id` (random, never all zero), sampled.
    pub fn new(
        parent: Option<TraceParent>,
        fresh_trace_id: [u8; 16],
        start_unix_nanos: u64,
    ) -> TraceContext {
        match parent {
            Some(p) => TraceContext {
                trace_id: p.trace_id,
                parent: Some(p.span_id),
                sampled: p.sampled,
                start_unix_nanos,
            },
            None => {
                let mut trace_id = fresh_trace_id;
                if trace_id == [0; 16] {
                    trace_id[15] = 1;
                }
                TraceContext {
                    trace_id,
                    parent: None,
                    sampled: true,
                    start_unix_nanos,
                }
            }
        }
    }

    /// The trace id as the API shows it (32 lowercase hex digits).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The `traceparent` a function is handed: its spans become children of `span`.
    pub fn traceparent_for(&self, span: [u8; 8]) -> String {
        TraceParent {
            trace_id: self.trace_id,
            span_id: span,
            sampled: self.sampled,
        }
        .header()
    }

    /// The stored form: `<trace id>-<parent span id or 16 zeros>-<flags>-<start ns>`.
    pub fn to_db(&self) -> String {
        format!(
            "{}-{}-{:02x}-{}",
            hex(&self.trace_id),
            hex(&self.parent.unwrap_or([0; 8])),
            u8::from(self.sampled),
            self.start_unix_nanos
        )
    }

    /// Reads [`TraceContext::to_db`]'s form back; `None` if it is not that.
    pub fn from_db(s: &str) -> Option<TraceContext> {
        let mut parts = s.split('-');
        let trace_id: [u8; 16] = unhex(parts.next()?)?.try_into().ok()?;
        let parent: [u8; 8] = unhex(parts.next()?)?.try_into().ok()?;
        let flags = unhex(parts.next()?)?;
        let start_unix_nanos = parts.next()?.parse().ok()?;
        if parts.next().is_some() || flags.len() != 1 {
            return None;
        }
        Some(TraceContext {
            trace_id,
            parent: (parent != [0; 8]).then_some(parent),
            sampled: flags[0] & 1 == 1,
            start_unix_nanos,
        })
    }
}

/// The span of an execution in a given role (`"execution"`, `"admission"`, `"queue"`,
/// `"cold_start"`, `"run"`, `"record"`): FNV-1a (64-bit) of the execution id and the role,
/// never zero. The same on every node and every build (a pinned function, not std's hasher).
pub fn span_id(execution_id: &str, role: &str) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in execution_id.bytes().chain([b'/']).chain(role.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if h == 0 {
        h = 1;
    }
    h.to_be_bytes()
}

/// What a span's attribute holds.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Float(f64),
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::Str(s.to_string())
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(s)
    }
}
impl From<i64> for AttrValue {
    fn from(n: i64) -> Self {
        AttrValue::Int(n)
    }
}
impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}
impl From<f64> for AttrValue {
    fn from(x: f64) -> Self {
        AttrValue::Float(x)
    }
}

/// Whether a span is the server side of a request or work inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Server,
    Internal,
}

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(String, AttrValue)>,
    /// `Some(message)`: the span ended in error.
    pub error: Option<String>,
}

/// Where finished spans go. `export` must not block: an implementation queues (and drops,
/// counting, when it cannot keep up).
pub trait SpanSink: fmt::Debug + Send + Sync {
    fn export(&self, spans: Vec<Span>);
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The bytes of an even-length lowercase hex string.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !is_lower_hex(s) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_parses_as_the_spec_reads_it() {
        let p = TraceParent::parse(GOOD).unwrap();
        assert_eq!(hex(&p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&p.span_id), "00f067aa0ba902b7");
        assert!(p.sampled);
        assert_eq!(p.header(), GOOD);
        let unsampled = TraceParent::parse(&GOOD.replace("-01", "-00")).unwrap();
        assert!(!unsampled.sampled);
        // A later version is read by its 00 prefix, with or without more fields.
        assert!(TraceParent::parse(&GOOD.replacen("00", "01", 1)).is_some());
        assert!(TraceParent::parse(&format!("{}-extra", GOOD.replacen("00", "cc", 1))).is_some());
        for bad in [
            "",
            "garbage",
            &GOOD.to_uppercase(),
            &GOOD.replacen("00", "ff", 1),
            &format!("{GOOD}-extra"),
            &GOOD[..54],
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            &format!("{}x", GOOD.replacen("00", "01", 1)),
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn context_keeps_the_callers_trace_or_starts_one() {
        let p = TraceParent::parse(GOOD).unwrap();
        let c = TraceContext::new(Some(p), [7; 16], 42);
        assert_eq!(
            (c.trace_id, c.parent, c.sampled),
            (p.trace_id, Some(p.span_id), true)
        );
        let fresh = TraceContext::new(None, [7; 16], 42);
        assert_eq!((fresh.trace_id, fresh.parent), ([7; 16], None));
        assert_ne!(TraceContext::new(None, [0; 16], 1).trace_id, [0; 16]);
        for c in [c, fresh] {
            assert_eq!(TraceContext::from_db(&c.to_db()), Some(c));
        }
        assert_eq!(
            c.traceparent_for([1, 2, 3, 4, 5, 6, 7, 8]),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"
        );
        for bad in ["", "x", "aa-bb-01-1", &format!("{}-9", c.to_db())] {
            assert_eq!(TraceContext::from_db(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn span_ids_are_pinned_and_differ_by_role() {
        assert_eq!(hex(&span_id("e", "run")), hex(&span_id("e", "run")));
        assert_ne!(span_id("e", "run"), span_id("e", "execution"));
        assert_ne!(span_id("e", "run"), span_id("f", "run"));
        // Pinned: nodes of different builds must agree.
        assert_eq!(hex(&span_id("", "")), "af63a24c860189fe");
    }
}
