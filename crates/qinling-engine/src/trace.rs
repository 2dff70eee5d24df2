//! An execution's trace: the spans its life is cut into, built from marks the engine takes
//! on the wall clock as it goes ([`Marks`], [`RunMarks`]) and handed to the server's
//! [`SpanSink`] once the outcome is recorded.
//!
//! ```text
//! execution                      (SERVER; parent: the request's traceparent, if any)
//! ├── admission                  trace start → the row is recorded
//! ├── queue                      recorded → a worker is sought (sync: a slot; async: the queue)
//! ├── cold_start                 a worker bound / a module instantiated (only when one was)
//! ├── run                        the function itself (its own spans go under this one)
//! └── record                     the outcome written
//! ```
//!
//! The executor reports durations, not instants: `run` ends when the executor returned and
//! lasts the reported duration, `cold_start` starts when the executor was asked. Span ids are
//! derived from the execution id ([`span_id`]), so the admitting node and the running node
//! name them alike. Building spans is pure ([`execution_spans`]); only [`wall_nanos`] reads
//! the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qinling_types::trace::{AttrValue, Span, SpanKind, TraceContext, span_id};
use qinling_types::{Execution, ExecutionStatus, Outcome};

/// Now, in nanoseconds since the Unix epoch.
pub(crate) fn wall_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A timestamp in nanoseconds since the Unix epoch.
pub(crate) fn nanos_of(ts: qinling_types::Timestamp) -> u64 {
    u64::try_from(ts.unix_timestamp_nanos()).unwrap_or(0)
}

/// What the engine saw of one run through the executor.
#[derive(Debug, Clone)]
pub(crate) struct RunMarks {
    /// When the executor was asked, and when it answered.
    pub asked: u64,
    pub answered: u64,
    /// What the executor reported: time to get a worker that had to be started, and how long
    /// the function ran.
    pub cold_start: Option<Duration>,
    pub ran: Duration,
    pub function_name: Option<String>,
    pub runtime_id: String,
}

/// The marks of an execution's life.
#[derive(Debug, Clone)]
pub(crate) struct Marks {
    /// When its row was recorded (admission's end; for a queued execution, its
    /// `created_at`).
    pub admitted: u64,
    /// `None` when nothing ran (its function was deleted first).
    pub run: Option<RunMarks>,
    /// When the outcome was recorded.
    pub recorded: u64,
}

impl crate::Engine {
    /// Hands `execution`'s spans to the sink, if tracing is on and the trace is sampled.
    pub(crate) fn export_trace(&self, execution: &Execution, outcome: &Outcome, marks: Marks) {
        let (Some(sink), Some(trace)) = (&self.inner.config.spans, &execution.trace) else {
            return;
        };
        if trace.sampled {
            sink.export(execution_spans(execution, trace, outcome, &marks));
        }
    }
}

/// The spans of `execution` (in `trace`), which ended with `outcome`.
pub(crate) fn execution_spans(
    execution: &Execution,
    trace: &TraceContext,
    outcome: &Outcome,
    marks: &Marks,
) -> Vec<Span> {
    let id = execution.id.as_str();
    let root = span_id(id, "execution");
    let start = trace.start_unix_nanos;
    let admitted = marks.admitted.clamp(start, marks.recorded.max(start));
    let child = |role: &str, from: u64, to: u64, attributes: Vec<(String, AttrValue)>| Span {
        trace_id: trace.trace_id,
        span_id: span_id(id, role),
        parent: Some(root),
        name: role.to_string(),
        kind: SpanKind::Internal,
        start_unix_nanos: from,
        end_unix_nanos: to.max(from),
        attributes,
        error: None,
    };
    let mut spans = vec![child("admission", start, admitted, vec![])];
    let mut attributes: Vec<(String, AttrValue)> = vec![
        ("faas.invocation_id".into(), id.into()),
        (
            "qinling.function.id".into(),
            execution.function_id.as_str().into(),
        ),
        (
            "faas.version".into(),
            execution.function_version.to_string().into(),
        ),
        (
            "qinling.project.id".into(),
            execution.project_id.as_str().into(),
        ),
        ("qinling.execution.sync".into(), execution.sync.into()),
        (
            "qinling.execution.status".into(),
            outcome.status.as_str().into(),
        ),
    ];
    let mut end = marks.recorded.max(admitted);
    if let Some(run) = &marks.run {
        let asked = run.asked.max(admitted);
        let answered = run.answered.max(asked);
        let ran_from = answered
            .saturating_sub(run.ran.as_nanos() as u64)
            .max(asked);
        let waited_to = match run.cold_start {
            Some(cold) => {
                let cold_to = (asked + cold.as_nanos() as u64).min(ran_from);
                spans.push(child("cold_start", asked, cold_to, vec![]));
                asked
            }
            None => ran_from,
        };
        spans.push(child("queue", admitted, waited_to, vec![]));
        spans.push(child(
            "run",
            ran_from,
            answered,
            vec![("qinling.runtime.id".into(), run.runtime_id.as_str().into())],
        ));
        spans.push(child(
            "record",
            answered,
            marks.recorded.max(answered),
            vec![],
        ));
        end = end.max(answered);
        attributes.push(("faas.coldstart".into(), run.cold_start.is_some().into()));
        attributes.push(("qinling.runtime.id".into(), run.runtime_id.as_str().into()));
        attributes.push((
            "faas.name".into(),
            run.function_name
                .clone()
                .unwrap_or_else(|| execution.function_id.to_string())
                .into(),
        ));
    } else {
        spans.push(child("record", admitted, end, vec![]));
    }
    if let Some(cpu) = outcome.cpu_ms {
        attributes.push(("qinling.execution.cpu_ms".into(), (cpu as i64).into()));
    }
    if let Some(kb) = outcome.memory_peak_kb {
        attributes.push((
            "qinling.execution.memory_peak_kb".into(),
            (kb as i64).into(),
        ));
    }
    let error = (outcome.status != ExecutionStatus::Success).then(|| {
        let text = match &outcome.output {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text.chars().take(256).collect()
    });
    spans.insert(
        0,
        Span {
            trace_id: trace.trace_id,
            span_id: root,
            parent: trace.parent,
            name: "execution".into(),
            kind: SpanKind::Server,
            start_unix_nanos: start,
            end_unix_nanos: end,
            attributes,
            error,
        },
    );
    spans
}

#[cfg(test)]
mod tests {
    use qinling_types::{ExecutionId, Input};

    use super::*;

    const MS: u64 = 1_000_000;

    fn execution() -> Execution {
        Execution {
            id: ExecutionId::from("e1".to_string()),
            function_id: "f1".to_string().into(),
            function_version: 0,
            function_alias: None,
            description: None,
            status: ExecutionStatus::Running,
            sync: true,
            input: Input::parse(None),
            result: None,
            logs: None,
            cpu_ms: None,
            memory_peak_kb: None,
            duration_ms: None,
            memory_size: None,
            cold_start_ms: None,
            request_id: None,
            trace: None,
            project_id: "p".into(),
            created_at: qinling_types::now(),
            updated_at: None,
        }
    }

    fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
        spans.iter().find(|s| s.name == name).unwrap()
    }

    fn times(s: &Span) -> (u64, u64) {
        (s.start_unix_nanos / MS, s.end_unix_nanos / MS)
    }

    #[test]
    fn a_cold_run_is_cut_into_its_phases() {
        let parent = [9; 8];
        let trace = TraceContext {
            trace_id: [1; 16],
            parent: Some(parent),
            sampled: true,
            start_unix_nanos: 1000 * MS,
        };
        let marks = Marks {
            admitted: 1002 * MS,
            run: Some(RunMarks {
                asked: 1003 * MS,
                answered: 1050 * MS,
                cold_start: Some(Duration::from_millis(30)),
                ran: Duration::from_millis(15),
                function_name: Some("hello".into()),
                runtime_id: "rt".into(),
            }),
            recorded: 1052 * MS,
        };
        let mut outcome = Outcome::error(ExecutionStatus::Failed, "boom");
        outcome.cpu_ms = Some(4);
        let spans = execution_spans(&execution(), &trace, &outcome, &marks);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "execution",
                "admission",
                "cold_start",
                "queue",
                "run",
                "record"
            ]
        );
        let root = by_name(&spans, "execution");
        assert_eq!(root.parent, Some(parent));
        assert_eq!(root.span_id, span_id("e1", "execution"));
        assert_eq!(root.kind, SpanKind::Server);
        assert_eq!(root.error.as_deref(), Some("boom"));
        assert_eq!(times(root), (1000, 1052));
        for s in &spans[1..] {
            assert_eq!(s.parent, Some(root.span_id), "{}", s.name);
            assert_eq!(s.trace_id, [1; 16]);
        }
        assert_eq!(times(by_name(&spans, "admission")), (1000, 1002));
        assert_eq!(times(by_name(&spans, "queue")), (1002, 1003));
        assert_eq!(times(by_name(&spans, "cold_start")), (1003, 1033));
        assert_eq!(times(by_name(&spans, "run")), (1035, 1050));
        assert_eq!(by_name(&spans, "run").span_id, span_id("e1", "run"));
        assert_eq!(times(by_name(&spans, "record")), (1050, 1052));
        let attr = |k: &str| root.attributes.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        assert_eq!(attr("faas.name"), Some(&AttrValue::from("hello")));
        assert_eq!(attr("faas.coldstart"), Some(&AttrValue::Bool(true)));
        assert_eq!(attr("qinling.execution.cpu_ms"), Some(&AttrValue::Int(4)));
        assert_eq!(
            attr("qinling.execution.status"),
            Some(&AttrValue::from("failed"))
        );
    }

    #[test]
    fn a_warm_run_waits_in_the_queue_until_the_function_starts_and_clocks_never_go_back() {
        let trace = TraceContext {
            trace_id: [1; 16],
            parent: None,
            sampled: true,
            start_unix_nanos: 1000 * MS,
        };
        let marks = Marks {
            admitted: 1001 * MS,
            run: Some(RunMarks {
                asked: 1001 * MS,
                answered: 1010 * MS,
                cold_start: None,
                // Longer than the executor took (clocks of different processes): clamped.
                ran: Duration::from_millis(50),
                function_name: None,
                runtime_id: "rt".into(),
            }),
            recorded: 1011 * MS,
        };
        let spans = execution_spans(
            &execution(),
            &trace,
            &Outcome::error(ExecutionStatus::Success, "ok"),
            &marks,
        );
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["execution", "admission", "queue", "run", "record"]);
        assert_eq!(by_name(&spans, "execution").parent, None);
        assert_eq!(by_name(&spans, "execution").error, None);
        assert_eq!(times(by_name(&spans, "queue")), (1001, 1001));
        assert_eq!(times(by_name(&spans, "run")), (1001, 1010));
        for s in &spans {
            assert!(s.end_unix_nanos >= s.start_unix_nanos, "{}", s.name);
        }
        // Nothing ran: admission and record only.
        let spans = execution_spans(
            &execution(),
            &trace,
            &Outcome::error(ExecutionStatus::Error, "gone"),
            &Marks {
                admitted: 1001 * MS,
                run: None,
                recorded: 1003 * MS,
            },
        );
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["execution", "admission", "record"]);
    }
}
