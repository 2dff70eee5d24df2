//! Function versions, aliases, cron jobs and webhooks (reference §3.4, §3.5, §3.7, §3.8): the
//! resources that pin a function's definition and start its executions without a caller
//! waiting. Versions here are full snapshots (package, entry, limits, network access and
//! execution mode), unlike upstream's.

use crate::{ExecutionMode, Function, FunctionId, JobId, Timestamp, WebhookId};

/// Most versions one function may have (upstream's `MAX_VERSION_NUMBER`).
pub const MAX_VERSIONS: i64 = 10;

/// A numbered, immutable snapshot of a function's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionVersion {
    pub id: String,
    pub function_id: FunctionId,
    pub version_number: i64,
    pub description: Option<String>,
    pub md5sum: String,
    pub package_sha256: String,
    pub package_size: u64,
    pub entry: Option<String>,
    pub cpu: u32,
    pub memory_size: u64,
    pub timeout: u32,
    pub network: bool,
    pub execution_mode: ExecutionMode,
    /// Executions of this version.
    pub count: i64,
    pub project_id: String,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

impl FunctionVersion {
    /// The function as this version defines it: the live row's identity (id, name, runtime,
    /// project) with the snapshot's package, entry, limits, network access and execution mode.
    pub fn apply_to(&self, function: &Function) -> Function {
        Function {
            code: crate::Code::Package {
                md5sum: self.md5sum.clone(),
            },
            package_sha256: self.package_sha256.clone(),
            package_size: self.package_size,
            entry: self.entry.clone(),
            cpu: self.cpu,
            memory_size: self.memory_size,
            timeout: self.timeout,
            network: self.network,
            execution_mode: self.execution_mode,
            count: self.count,
            ..function.clone()
        }
    }

    /// Whether `function` still has exactly this definition.
    pub fn same_definition(&self, function: &Function) -> bool {
        self.package_sha256 == function.package_sha256
            && self.entry == function.entry
            && self.cpu == function.cpu
            && self.memory_size == function.memory_size
            && self.timeout == function.timeout
            && self.network == function.network
            && self.execution_mode == function.execution_mode
    }
}

/// A name for a function version. Beyond upstream: an optional second version receives
/// `additional_version_weight` percent of the executions (a weighted alias).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionAlias {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub function_id: FunctionId,
    pub function_version: i64,
    pub additional_version: Option<i64>,
    /// Percent (1..=99) of executions that go to `additional_version`.
    pub additional_version_weight: Option<u32>,
    pub project_id: String,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

impl FunctionAlias {
    /// The version an execution through this alias runs, given a uniform `roll` in 0..100.
    pub fn pick_version(&self, roll: u32) -> i64 {
        match (self.additional_version, self.additional_version_weight) {
            (Some(v), Some(w)) if roll < w => v,
            _ => self.function_version,
        }
    }
}

/// Lifecycle of a job (reference §3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Paused,
    Done,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Paused => "paused",
            JobStatus::Done => "done",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => JobStatus::Running,
            "paused" => JobStatus::Paused,
            "done" => JobStatus::Done,
            "cancelled" => JobStatus::Cancelled,
            _ => return None,
        })
    }

    /// Done and cancelled jobs never fire again and cannot be updated.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Cancelled)
    }
}

/// A job: runs a function (by id and version, or by alias) on a cron pattern and/or once at
/// a given time, `count` times at most.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub name: Option<String>,
    pub function_id: Option<FunctionId>,
    pub function_alias: Option<String>,
    pub function_version: i64,
    pub function_input: Option<String>,
    pub status: JobStatus,
    pub pattern: Option<String>,
    /// Remaining executions; `None` is unlimited.
    pub count: Option<i64>,
    pub first_execution_time: Timestamp,
    pub next_execution_time: Timestamp,
    pub project_id: String,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

/// A webhook: an unauthenticated URL that starts an async execution of its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    pub function_id: Option<FunctionId>,
    pub function_alias: Option<String>,
    /// `None` (as upstream stores when the field was omitted) runs version 0.
    pub function_version: Option<i64>,
    pub description: Option<String>,
    pub project_id: String,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_alias_picks_by_roll() {
        let mut alias = FunctionAlias {
            id: "a".into(),
            name: "prod".into(),
            description: None,
            function_id: "f".into(),
            function_version: 1,
            additional_version: Some(2),
            additional_version_weight: Some(30),
            project_id: "p".into(),
            created_at: crate::now(),
            updated_at: None,
        };
        let to_two = (0..100).filter(|r| alias.pick_version(*r) == 2).count();
        assert_eq!(to_two, 30);
        assert_eq!(alias.pick_version(29), 2);
        assert_eq!(alias.pick_version(30), 1);
        alias.additional_version = None;
        assert!((0..100).all(|r| alias.pick_version(r) == 1));
    }
}
