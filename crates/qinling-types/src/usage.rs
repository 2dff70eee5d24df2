//! Usage nouns (not in upstream): the grouping of usage rows and the sums of one group. The
//! store computes them, the engine adds the totals, the HTTP edge renders them.

/// How usage rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsageGroup {
    /// One row per (project, function).
    #[default]
    Function,
    /// One row per project.
    Project,
}

/// The sums of one group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsageRow {
    pub project_id: String,
    /// `None` when grouped by project.
    pub function_id: Option<String>,
    /// The function's name now; `None` when it has none, is deleted, or grouped by project.
    pub function_name: Option<String>,
    pub executions: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// Platform errors (status `error`): the function did not run, or its outcome is unknown.
    pub errored: i64,
    pub duration_ms: i64,
    pub cpu_ms: i64,
    /// Σ memory_size (bytes) × duration (ms); [`UsageRow::gib_seconds`] converts.
    pub memory_byte_ms: f64,
    pub memory_peak_max_kb: Option<i64>,
}

/// Bytes per GiB times milliseconds per second.
const BYTE_MS_PER_GIB_SECOND: f64 = 1024.0 * 1024.0 * 1024.0 * 1000.0;

impl UsageRow {
    /// GiB-seconds: memory limit in GiB (bytes / 2^30) × seconds, summed.
    pub fn gib_seconds(&self) -> f64 {
        self.memory_byte_ms / BYTE_MS_PER_GIB_SECOND
    }

    /// Adds another group's sums to these (for totals).
    pub fn add(&mut self, other: &UsageRow) {
        self.executions += other.executions;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.errored += other.errored;
        self.duration_ms += other.duration_ms;
        self.cpu_ms += other.cpu_ms;
        self.memory_byte_ms += other.memory_byte_ms;
        self.memory_peak_max_kb = match (self.memory_peak_max_kb, other.memory_peak_max_kb) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

impl UsageGroup {
    /// The wire name of a grouping (`group_by`).
    pub fn as_str(self) -> &'static str {
        match self {
            UsageGroup::Function => "function",
            UsageGroup::Project => "project",
        }
    }
}
