//! Per-project quotas (not in upstream, reference §3.9): number of functions, total package
//! bytes, unfinished executions, workers and executions started per minute. Limits are the
//! configured defaults unless an admin set a project's own (stored in the `quotas` table).
//! Exceeding one is a 403 (functions, workers), 413 (package bytes) or 429 (executions), with
//! a message that names the quota, its limit and the current use.
//!
//! Checks and the changes they guard are atomic within one server: function creates and
//! package changes check under the engine's package lock, which they hold until the row is
//! written; an execution reserves a slot ([`Slots`]) before it counts the unfinished ones and
//! keeps it until its row is written, so concurrent requests see each other (at worst a request
//! in flight is counted twice and the limit is briefly stricter, never looser). Several servers
//! on one database would need the check in the row's transaction (scale-out, later). The
//! per-minute rate is counted in memory (per server) and starts afresh on restart.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use qinling_store::Admission;
use qinling_types::Error;
use serde::{Deserialize, Serialize};

use crate::Engine;

/// The quota resources, by their wire and config names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Functions,
    PackageBytes,
    ConcurrentExecutions,
    Workers,
    ExecutionsPerMinute,
}

impl Resource {
    pub const ALL: [Resource; 5] = [
        Resource::Functions,
        Resource::PackageBytes,
        Resource::ConcurrentExecutions,
        Resource::Workers,
        Resource::ExecutionsPerMinute,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Functions => "functions",
            Resource::PackageBytes => "package_bytes",
            Resource::ConcurrentExecutions => "concurrent_executions",
            Resource::Workers => "workers",
            Resource::ExecutionsPerMinute => "executions_per_minute",
        }
    }

    pub fn from_name(name: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// One limit per resource; -1 is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub functions: i64,
    pub package_bytes: i64,
    pub concurrent_executions: i64,
    pub workers: i64,
    pub executions_per_minute: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            functions: 100,
            package_bytes: 1024 * 1024 * 1024,
            concurrent_executions: 100,
            workers: 50,
            executions_per_minute: 6000,
        }
    }
}

impl Limits {
    pub fn get(&self, r: Resource) -> i64 {
        match r {
            Resource::Functions => self.functions,
            Resource::PackageBytes => self.package_bytes,
            Resource::ConcurrentExecutions => self.concurrent_executions,
            Resource::Workers => self.workers,
            Resource::ExecutionsPerMinute => self.executions_per_minute,
        }
    }

    pub fn set(&mut self, r: Resource, v: i64) {
        match r {
            Resource::Functions => self.functions = v,
            Resource::PackageBytes => self.package_bytes = v,
            Resource::ConcurrentExecutions => self.concurrent_executions = v,
            Resource::Workers => self.workers = v,
            Resource::ExecutionsPerMinute => self.executions_per_minute = v,
        }
    }
}

/// Quota settings of the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaConfig {
    /// Whether quotas are enforced (the server turns them on with authentication).
    pub enforce: bool,
    pub defaults: Limits,
}

/// A project's limits and what it uses now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaSet {
    pub limits: Limits,
    pub usage: Limits,
    pub enforced: bool,
}

/// `limit` allows `in_use + adding`? -1 is unlimited.
pub fn check(r: Resource, limit: i64, in_use: i64, adding: i64) -> Result<(), Error> {
    if limit < 0 || in_use.saturating_add(adding) <= limit {
        return Ok(());
    }
    Err(Error::quota_exceeded(r.name(), limit, in_use, adding))
}

/// Executions started in the last minute, per project (a sliding log, at most `limit` long).
#[derive(Debug, Default)]
pub struct RateWindow {
    starts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl RateWindow {
    /// Records a start at `now` if fewer than `limit` happened in the minute before.
    pub fn admit(&self, project: &str, limit: i64, now: Instant) -> Result<(), Error> {
        if limit < 0 {
            return Ok(());
        }
        let mut all = self.starts.lock().expect("rate window lock");
        let log = all.entry(project.to_string()).or_default();
        while log
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            log.pop_front();
        }
        check(Resource::ExecutionsPerMinute, limit, log.len() as i64, 1)?;
        log.push_back(now);
        Ok(())
    }

    /// Starts in the minute before `now`.
    pub fn used(&self, project: &str, now: Instant) -> i64 {
        let all = self.starts.lock().expect("rate window lock");
        all.get(project).map_or(0, |log| {
            log.iter()
                .filter(|t| now.saturating_duration_since(**t) < WINDOW)
                .count() as i64
        })
    }
}

/// Executions being admitted per project: reserved before the unfinished ones are counted,
/// released once the execution's row is written (or the request failed).
#[derive(Debug, Default)]
pub struct Slots {
    held: Mutex<HashMap<String, i64>>,
}

impl Slots {
    /// Reserves one slot of `project` and returns how many others were held.
    fn reserve(self: &std::sync::Arc<Self>, project: &str) -> (Slot, i64) {
        let mut held = self.held.lock().expect("quota slots lock");
        let n = held.entry(project.to_string()).or_default();
        *n += 1;
        let others = *n - 1;
        (
            Slot {
                slots: self.clone(),
                project: project.to_string(),
            },
            others,
        )
    }
}

/// How an execution is admitted against its project's quotas.
#[derive(Debug)]
pub(crate) enum Admit {
    /// Checked here already (or not enforced); the slot is held until the row is written.
    Local(#[expect(dead_code, reason = "held for its Drop, which releases the slot")] Option<Slot>),
    /// To be checked by the insert, in the shared database.
    InStore(qinling_store::ExecutionQuota),
}

/// One reserved execution slot; dropping it releases it.
#[derive(Debug)]
pub struct Slot {
    slots: std::sync::Arc<Slots>,
    project: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().expect("quota slots lock");
        if let Some(n) = held.get_mut(&self.project) {
            *n -= 1;
            if *n <= 0 {
                held.remove(&self.project);
            }
        }
    }
}

impl Engine {
    fn quota_config(&self) -> &QuotaConfig {
        &self.inner.config.quotas
    }

    /// A project's effective limits: its overrides over the defaults.
    pub async fn quota_limits(&self, project_id: &str) -> Result<Limits, Error> {
        let mut limits = self.quota_config().defaults;
        for (name, v) in self.inner.store.quota_overrides(project_id).await? {
            if let Some(r) = Resource::from_name(&name) {
                limits.set(r, v);
            }
        }
        Ok(limits)
    }

    /// A project's limits and usage (`GET /v1/quotas/{project}`).
    pub async fn quotas(&self, project_id: &str) -> Result<QuotaSet, Error> {
        let limits = self.quota_limits(project_id).await?;
        let (functions, package_bytes) = self.inner.store.function_usage(project_id).await?;
        Ok(QuotaSet {
            limits,
            usage: Limits {
                functions,
                package_bytes,
                concurrent_executions: self.inner.store.unfinished_executions(project_id).await?,
                workers: self.project_workers(project_id).await?,
                executions_per_minute: if self.inner.store.is_shared() {
                    self.inner.store.executions_last_minute(project_id).await?
                } else {
                    self.inner.rate.used(project_id, Instant::now())
                },
            },
            enforced: self.quota_config().enforce,
        })
    }

    /// Sets (`Some`) or resets to the default (`None`) some of a project's limits.
    pub async fn set_quotas(
        &self,
        project_id: &str,
        changes: &[(Resource, Option<i64>)],
    ) -> Result<QuotaSet, Error> {
        if project_id.is_empty() || project_id.len() > 255 {
            return Err(Error::input("Invalid project id."));
        }
        for (r, v) in changes {
            if let Some(v) = v
                && *v < -1
            {
                return Err(Error::input(format!(
                    "Invalid quota {}: {v}. Use a number >= 0, or -1 for unlimited.",
                    r.name()
                )));
            }
        }
        for (r, v) in changes {
            self.inner.store.set_quota(project_id, r.name(), *v).await?;
        }
        self.quotas(project_id).await
    }

    async fn project_workers(&self, project_id: &str) -> Result<i64, Error> {
        let functions = self
            .inner
            .store
            .list_functions(&qinling_store::Scope::Project(project_id.to_string()))
            .await?;
        let mut workers = 0;
        for f in &functions {
            workers += self.inner.executor.workers(&f.id, None).await.len() as i64;
        }
        Ok(workers)
    }

    /// Before a function is created (`new_function`) or its package replaced: the function
    /// count and the package bytes after the change (`package_delta` may be negative).
    pub(crate) async fn check_function_quota(
        &self,
        project_id: &str,
        new_function: bool,
        package_delta: i64,
    ) -> Result<(), Error> {
        if !self.quota_config().enforce {
            return Ok(());
        }
        let limits = self.quota_limits(project_id).await?;
        let (functions, bytes) = self.inner.store.function_usage(project_id).await?;
        if new_function {
            check(Resource::Functions, limits.functions, functions, 1)?;
        }
        if package_delta > 0 {
            check(
                Resource::PackageBytes,
                limits.package_bytes,
                bytes,
                package_delta,
            )?;
        }
        Ok(())
    }

    /// Before an execution is recorded: unfinished executions and the per-minute rate. On a
    /// database other servers share, only the limits are read here and the insert checks
    /// them ([`Engine::record`]); alone, they are checked here against the database's count
    /// and this server's memory, and the returned slot must be held until the execution's
    /// row is written.
    pub(crate) async fn check_execution_quota(&self, project_id: &str) -> Result<Admit, Error> {
        if !self.quota_config().enforce {
            return Ok(Admit::Local(None));
        }
        let limits = self.quota_limits(project_id).await?;
        if self.inner.store.is_shared() {
            return Ok(Admit::InStore(qinling_store::ExecutionQuota {
                concurrent_executions: limits.concurrent_executions,
                executions_per_minute: limits.executions_per_minute,
            }));
        }
        // Reserve first, then count: of two concurrent requests at least one sees the other.
        let (slot, others) = self.inner.slots.reserve(project_id);
        if limits.concurrent_executions >= 0 {
            let running = self.inner.store.unfinished_executions(project_id).await?;
            check(
                Resource::ConcurrentExecutions,
                limits.concurrent_executions,
                running + others,
                1,
            )?;
        }
        self.inner
            .rate
            .admit(project_id, limits.executions_per_minute, Instant::now())?;
        Ok(Admit::Local(Some(slot)))
    }

    /// Records a new execution as `admit` says (guarded by a cached definition's
    /// `updated_at` when `unchanged` is given); `Err(row)`: refused for a reason other than
    /// quotas (the function or its definition changed), for the caller to decide.
    pub(crate) async fn record(
        &self,
        new: qinling_store::NewExecution,
        unchanged: Option<Option<qinling_types::Timestamp>>,
        admit: Option<&Admit>,
    ) -> Result<Result<qinling_types::Execution, qinling_store::NewExecution>, Error> {
        let store = &self.inner.store;
        match (admit, unchanged) {
            (Some(Admit::InStore(quota)), unchanged) => Ok(
                match store
                    .insert_execution_within(new, unchanged, *quota)
                    .await?
                {
                    Admission::Inserted(e) => Ok(e),
                    Admission::Refused(row) => Err(row),
                },
            ),
            (_, Some(updated_at)) => {
                Ok(store.insert_execution_if_unchanged(new, updated_at).await?)
            }
            (_, None) => {
                let row = new.clone();
                Ok(store.insert_execution(new).await?.ok_or(row))
            }
        }
    }

    /// On a shared database with quotas enforced: the project's function quotas, for the
    /// insert to check in the database (`None`: alone, or not enforced).
    pub(crate) async fn function_quota_in_store(
        &self,
        project_id: &str,
    ) -> Result<Option<qinling_store::FunctionQuota>, Error> {
        if !self.quota_config().enforce || !self.inner.store.is_shared() {
            return Ok(None);
        }
        let limits = self.quota_limits(project_id).await?;
        Ok(Some(qinling_store::FunctionQuota {
            functions: limits.functions,
            package_bytes: limits.package_bytes,
        }))
    }

    /// Before `count` workers are added to a project's function by `scale_up`.
    pub(crate) async fn check_worker_quota(
        &self,
        project_id: &str,
        count: usize,
    ) -> Result<(), Error> {
        if !self.quota_config().enforce {
            return Ok(());
        }
        let limits = self.quota_limits(project_id).await?;
        if limits.workers < 0 {
            return Ok(());
        }
        let workers = self.project_workers(project_id).await?;
        check(Resource::Workers, limits.workers, workers, count as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_the_quota_and_use() {
        assert!(check(Resource::Functions, 2, 1, 1).is_ok());
        assert!(check(Resource::Functions, -1, 1_000_000, 1).is_ok());
        let e = check(Resource::Functions, 2, 2, 1).unwrap_err();
        assert!(matches!(&e, Error::NotAllowed(_)));
        assert_eq!(
            e.to_string(),
            "Quota exceeded for functions: limit 2, in use 2."
        );
        let e = check(Resource::PackageBytes, 100, 60, 50).unwrap_err();
        assert!(matches!(&e, Error::TooLarge(_)));
        assert_eq!(
            e.to_string(),
            "Quota exceeded for package_bytes: limit 100, in use 60, requested 50."
        );
        assert!(matches!(
            check(Resource::ConcurrentExecutions, 0, 0, 1),
            Err(Error::TooMany(_))
        ));
        assert!(matches!(
            check(Resource::Workers, 3, 2, 2),
            Err(Error::NotAllowed(_))
        ));
    }

    #[test]
    fn rate_window_slides() {
        let w = RateWindow::default();
        let t0 = Instant::now();
        for i in 0..3 {
            w.admit("p", 3, t0 + Duration::from_secs(i)).unwrap();
        }
        let e = w.admit("p", 3, t0 + Duration::from_secs(10)).unwrap_err();
        assert!(matches!(&e, Error::TooMany(_)));
        assert!(
            e.to_string()
                .contains("executions_per_minute: limit 3, in use 3"),
            "{e}"
        );
        // Another project has its own window.
        w.admit("q", 3, t0 + Duration::from_secs(10)).unwrap();
        // The first start leaves the window after a minute.
        w.admit("p", 3, t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(w.used("p", t0 + Duration::from_secs(60)), 3);
        assert!(w.admit("p", 3, t0 + Duration::from_millis(60_500)).is_err());
        w.admit("p", -1, t0).unwrap();
    }

    #[test]
    fn resource_names_round_trip() {
        for r in Resource::ALL {
            assert_eq!(Resource::from_name(r.name()), Some(r));
        }
        assert_eq!(Resource::from_name("nope"), None);
    }
}
