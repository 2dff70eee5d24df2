//! Cron jobs (reference §3.7): create, list, show, update (name, input, pattern, next time,
//! pause/resume/cancel), delete; and the job ticker, a reconciler that fires due jobs as async
//! executions (`Created by Job <id>`).
//!
//! Exactly once per tick, across every node on one database and through a node dying
//! mid-tick: a tick's execution has an id derived from the job row as it was when due
//! ([`tick_execution_id`]), so recording it twice fails on the primary key; it is recorded
//! first, and only then is the tick claimed with a conditional update of the job row
//! ([`qinling_store::Store::advance_job`]). A node that dies between the two leaves the job
//! due, and the next ticker finds the execution already there and only advances the job.
//! After downtime a job fires once for everything it
//! missed, then continues at the next tick after now (upstream fired one missed period every
//! 3 s). Jobs live in the database, so they survive restarts. The schedule arithmetic is
//! pure ([`advance`], [`parse_pattern`]) and the ticker takes the time as an argument
//! ([`run_due`]), so both are tested without waiting for the clock.

use std::time::Duration;

use qinling_store::{JobAdvance, Scope, Store};
use qinling_types::{Error, Job, JobStatus, RequestContext, Timestamp, new_id, now};
use qinling_types::{FunctionId, JobId};

use crate::scope::{self, ListQuery, OwnProject};
use crate::{CreateExecution, Engine, ExecutionTarget};

/// How often the ticker looks for due jobs.
pub const TICK: Duration = Duration::from_millis(500);

/// A job-create request, fields as received.
#[derive(Debug, Clone, Default)]
pub struct CreateJob {
    pub name: Option<String>,
    pub function_id: Option<FunctionId>,
    pub function_alias: Option<String>,
    pub function_version: i64,
    pub function_input: Option<String>,
    pub pattern: Option<String>,
    pub first_execution_time: Option<String>,
    pub count: Option<i64>,
}

/// A job-update request; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct UpdateJob {
    pub name: Option<String>,
    pub function_input: Option<String>,
    pub status: Option<String>,
    pub pattern: Option<String>,
    pub next_execution_time: Option<String>,
}

/// A 5-field cron pattern (minute hour day-of-month month day-of-week, or an `@hourly`-style
/// alias), parsed.
pub fn parse_pattern(pattern: &str) -> Result<croner::Cron, Error> {
    let invalid = || Error::input(format!("The specified pattern is not valid: {pattern}"));
    let fields = pattern.split_whitespace().count();
    if fields != 5 && !(fields == 1 && pattern.trim_start().starts_with('@')) {
        return Err(invalid());
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|_| invalid())
}

fn to_chrono(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond())
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp::from_unix_timestamp(t.timestamp())
        .map(|s| s + time::Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos())))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The first tick of `cron` after `t` (or at `t`, if `inclusive`).
pub fn next_tick(cron: &croner::Cron, t: Timestamp, inclusive: bool) -> Result<Timestamp, Error> {
    cron.find_next_occurrence(&to_chrono(t), inclusive)
        .map(from_chrono)
        .map_err(|_| {
            Error::input(format!(
                "The specified pattern never matches a future time: {}",
                cron.pattern
            ))
        })
}

/// How firing `job` at `now` leaves it: one execution fewer; `done` when none remain or it
/// has no pattern; else due at the pattern's first tick after `now` (so a tick missed while
/// the server was down is fired once, not once per missed period).
pub fn advance(job: &Job, now: Timestamp) -> Result<JobAdvance, Error> {
    let count = job.count.map(|c| (c - 1).max(0));
    let finished = count == Some(0) || job.pattern.is_none();
    match (&job.pattern, finished) {
        (Some(pattern), false) => {
            let cron = parse_pattern(pattern)?;
            let after = now.max(job.next_execution_time);
            Ok(JobAdvance {
                next_execution_time: next_tick(&cron, after, false)?,
                count,
                status: JobStatus::Running,
            })
        }
        _ => Ok(JobAdvance {
            next_execution_time: job.next_execution_time,
            count: Some(count.unwrap_or(0)),
            status: JobStatus::Done,
        }),
    }
}

/// The id of the execution a job's due tick fires: a UUID (version 8) from a digest of the
/// job's id, its due time and the row's last change, so every node computes the same id for
/// the same tick, and a job moved back to an earlier time (which changes the row) fires
/// again.
pub fn tick_execution_id(job: &Job) -> String {
    use sha2::{Digest, Sha256};
    let changed = job.updated_at.unwrap_or(job.created_at);
    let digest = Sha256::digest(format!(
        "qinling job tick\0{}\0{}\0{}",
        job.id,
        job.next_execution_time.unix_timestamp_nanos(),
        changed.unix_timestamp_nanos()
    ));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// What firing one tick came to.
#[derive(Debug)]
pub enum Fired {
    /// Its execution was recorded now.
    Now,
    /// Its execution was there already (another node, or one that died before advancing).
    Already,
}

/// One pass of the ticker at `now`: for every due job, `fire`s its tick (with the tick's
/// execution id) unless the job's schedule ends, then advances the job. Returns how many
/// ticks this pass recorded. A tick whose firing failed for a reason that will pass (the
/// database unreachable) is left due for the next pass; one refused for good (a quota, a
/// deleted function) is skipped, as a missed tick. A job whose pattern no longer parses is
/// cancelled.
pub async fn run_due<F, Fut>(store: &Store, now: Timestamp, mut fire: F) -> Result<usize, Error>
where
    F: FnMut(Job, String) -> Fut,
    Fut: std::future::Future<Output = Result<Fired, Error>>,
{
    let mut fired = 0;
    for job in store.due_jobs(now).await? {
        let advance = match advance(&job, now) {
            Ok(a) => a,
            Err(error) => {
                tracing::warn!(%error, job_id = %job.id, "cancelling a job whose schedule cannot advance");
                JobAdvance {
                    next_execution_time: job.next_execution_time,
                    count: job.count,
                    status: JobStatus::Cancelled,
                }
            }
        };
        if advance.status != JobStatus::Cancelled {
            let id = tick_execution_id(&job);
            match fire(job.clone(), id).await {
                Ok(Fired::Now) => fired += 1,
                Ok(Fired::Already) => {}
                Err(error @ (Error::Unavailable(_) | Error::Internal { .. })) => {
                    tracing::warn!(%error, job_id = %job.id, "a job's tick could not be recorded; trying again");
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, job_id = %job.id, "a job's tick was refused; skipping it");
                }
            }
        }
        store
            .advance_job(&job.id, job.next_execution_time, &advance)
            .await?;
    }
    Ok(fired)
}

/// Parses a job time: RFC 3339 (`2026-11-28T06:48:38Z`, an offset, fractions) or a naive
/// `YYYY-MM-DD[T ]HH:MM[:SS]`, taken as UTC.
pub fn parse_time(raw: &str) -> Result<Timestamp, Error> {
    use time::format_description::well_known::Rfc3339;
    let raw = raw.trim();
    if let Ok(t) = Timestamp::parse(raw, &Rfc3339) {
        return Ok(t.to_offset(time::UtcOffset::UTC));
    }
    let naive = raw.replace('T', " ");
    let formats = [
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]"
        ),
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ];
    for f in formats {
        if let Ok(t) = time::PrimitiveDateTime::parse(&naive, f) {
            return Ok(t.assume_utc());
        }
    }
    Err(Error::input(format!(
        "Invalid time '{raw}': use ISO 8601, e.g. 2026-11-28T06:48:38Z or '2026-11-28 06:48:38' (UTC)."
    )))
}

/// A job time from the caller must not be in the past (upstream: at least a minute ahead).
fn future_time(raw: &str, now: Timestamp) -> Result<Timestamp, Error> {
    let t = parse_time(raw)?;
    if t < now - time::Duration::seconds(1) {
        return Err(Error::input(format!(
            "Execution time {raw} is in the past: give a time from now on (UTC)."
        )));
    }
    Ok(t)
}

fn job_not_found(id: &str) -> Error {
    Error::not_found("Job", id)
}

impl Engine {
    pub async fn create_job(&self, ctx: &RequestContext, req: CreateJob) -> Result<Job, Error> {
        crate::text::check_name("name", req.name.as_deref())?;
        if req.function_id.is_none() && req.function_alias.is_none() {
            return Err(Error::input(
                "Either function_alias or function_id must be provided.",
            ));
        }
        self.check_job_input(req.function_input.as_deref())?;
        let pattern = req.pattern.filter(|p| !p.trim().is_empty());
        if pattern.is_none() && req.first_execution_time.is_none() {
            return Err(Error::input(
                "pattern or first_execution_time must be specified.",
            ));
        }
        let t = now();
        let first = req
            .first_execution_time
            .as_deref()
            .map(|raw| future_time(raw, t))
            .transpose()?;
        if let Some(c) = req.count
            && c < 1
        {
            return Err(Error::input(format!(
                "Invalid count {c}: give the number of executions (at least 1), or none for no limit."
            )));
        }
        let (first, count) = match &pattern {
            None => {
                if req.count.is_some_and(|c| c > 1) {
                    return Err(Error::input(
                        "pattern must be provided if count is greater than 1.",
                    ));
                }
                (first.expect("checked above"), Some(1))
            }
            Some(p) => {
                let cron = parse_pattern(p)?;
                let first = match first {
                    Some(f) => next_tick(&cron, f, true)?,
                    None => next_tick(&cron, t, false)?,
                };
                (first, req.count)
            }
        };
        if req.function_version < 0 {
            return Err(Error::input(format!(
                "Invalid function_version {}: it must be 0 (the function) or a version number.",
                req.function_version
            )));
        }
        let (function_id, alias) = match req.function_alias {
            Some(name) => {
                self.get_alias(ctx, &name).await?;
                (None, Some(name))
            }
            None => {
                let id = req.function_id.expect("checked above");
                let function = self.get_function(ctx, &id).await?;
                self.function_at_version(function, req.function_version)
                    .await?;
                (Some(id), None)
            }
        };
        let job = Job {
            id: new_id().into(),
            name: req.name,
            function_id,
            function_version: if alias.is_some() {
                0
            } else {
                req.function_version
            },
            function_alias: alias,
            function_input: req.function_input,
            status: JobStatus::Running,
            pattern,
            count,
            first_execution_time: first,
            next_execution_time: first,
            project_id: ctx.project_id.clone(),
            created_at: t,
            updated_at: None,
        };
        self.inner.store.put_job(&job).await?;
        Ok(job)
    }

    /// A job's input becomes each execution's input: the same size limit applies, up front.
    fn check_job_input(&self, input: Option<&str>) -> Result<(), Error> {
        let max = self.inner.config.max_input_bytes;
        match input {
            Some(i) if i.len() > max => Err(Error::TooLarge(format!(
                "function_input is {} bytes, larger than the maximum execution input of {max} bytes.",
                i.len()
            ))),
            _ => Ok(()),
        }
    }

    pub async fn get_job(&self, ctx: &RequestContext, id: &JobId) -> Result<Job, Error> {
        self.inner
            .store
            .get_job(id, &scope::by_id(ctx))
            .await?
            .ok_or_else(|| job_not_found(id))
    }

    pub async fn list_jobs(&self, ctx: &RequestContext, q: &ListQuery) -> Result<Vec<Job>, Error> {
        let scope = scope::for_list(ctx, q, OwnProject::Refused)?;
        Ok(self.inner.store.list_jobs(&scope).await?)
    }

    pub async fn update_job(
        &self,
        ctx: &RequestContext,
        id: &JobId,
        req: UpdateJob,
    ) -> Result<Job, Error> {
        crate::text::check_name("name", req.name.as_deref())?;
        let mut job = self.get_job(ctx, id).await?;
        if job.status.is_finished() {
            return Err(Error::input("Can not update a finished job."));
        }
        let t = now();
        let previous = job.status;
        if let Some(name) = req.name {
            job.name = Some(name);
        }
        if let Some(input) = req.function_input {
            self.check_job_input(Some(&input))?;
            job.function_input = Some(input);
        }
        let mut reschedule = false;
        if let Some(p) = req.pattern {
            if job.pattern.is_none() || p.trim().is_empty() {
                return Err(Error::input("Can not change job type."));
            }
            parse_pattern(&p)?;
            reschedule = job.pattern.as_deref() != Some(p.as_str());
            job.pattern = Some(p);
        }
        if let Some(s) = req.status {
            job.status = match JobStatus::parse(&s) {
                Some(s @ (JobStatus::Running | JobStatus::Paused | JobStatus::Cancelled)) => s,
                _ => {
                    return Err(Error::input(
                        "Invalid status: use running, paused or cancelled.",
                    ));
                }
            };
        }
        match req.next_execution_time {
            Some(raw) => job.next_execution_time = future_time(&raw, t)?,
            None if job.status == JobStatus::Running
                && (previous == JobStatus::Paused || reschedule) =>
            {
                match &job.pattern {
                    Some(p) => job.next_execution_time = next_tick(&parse_pattern(p)?, t, false)?,
                    None if job.next_execution_time < t - time::Duration::seconds(1) => {
                        return Err(Error::input(
                            "The one-time job's execution time has passed: give a new next_execution_time to resume it.",
                        ));
                    }
                    None => {}
                }
            }
            None => {}
        }
        job.updated_at = Some(t);
        self.inner.store.put_job(&job).await?;
        Ok(job)
    }

    pub async fn delete_job(&self, ctx: &RequestContext, id: &JobId) -> Result<(), Error> {
        let job = self.get_job(ctx, id).await?;
        self.inner.store.delete_job(&job.id).await?;
        Ok(())
    }

    /// The job ticker: every [`TICK`], fires the jobs that are due. Stops when the engine
    /// shuts down.
    pub(crate) async fn job_ticker(self) {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if self.inner.async_slots.is_closed() {
                return;
            }
            if let Err(error) = self.fire_due_jobs(now()).await {
                tracing::warn!(%error, "job ticker pass failed");
            }
        }
    }

    /// Fires every job due at `now`; returns how many ticks this engine recorded.
    pub async fn fire_due_jobs(&self, now: Timestamp) -> Result<usize, Error> {
        run_due(&self.inner.store, now, |job, id| self.fire_job(job, id)).await
    }

    /// Records the async execution `id` of one due tick, in the job owner's project, unless
    /// it is recorded already.
    async fn fire_job(&self, job: Job, id: String) -> Result<Fired, Error> {
        let store = &self.inner.store;
        if store.get_execution(&id, &Scope::All).await?.is_some() {
            return Ok(Fired::Already);
        }
        let owner = RequestContext {
            project_id: job.project_id.clone(),
            user_id: None,
            is_admin: false,
            request_id: format!("req-job-{}", job.id),
        };
        let target = ExecutionTarget::named(
            job.function_alias.as_deref(),
            job.function_id.as_deref(),
            job.function_version,
        )
        .ok_or_else(|| Error::input("the job names no function"))?;
        let req = CreateExecution {
            target,
            description: Some(format!("Created by Job {}", job.id)),
            sync: false,
            input: job.function_input.clone(),
            trace: None,
        };
        match self
            .create_execution_as(&owner, req, Some(id.clone()))
            .await
        {
            Ok(_) => Ok(Fired::Now),
            // Another node recorded it at the same moment.
            Err(_) if matches!(store.get_execution(&id, &Scope::All).await, Ok(Some(_))) => {
                Ok(Fired::Already)
            }
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn job(pattern: Option<&str>, count: Option<i64>, next: Timestamp) -> Job {
        Job {
            id: new_id().into(),
            name: None,
            function_id: Some("f".into()),
            function_alias: None,
            function_version: 0,
            function_input: None,
            status: JobStatus::Running,
            pattern: pattern.map(str::to_string),
            count,
            first_execution_time: next,
            next_execution_time: next,
            project_id: "p".into(),
            created_at: next,
            updated_at: None,
        }
    }

    #[test]
    fn patterns() {
        for ok in ["* * * * *", "*/5 1-3 * * MON-FRI", "0 0 * * SUN", "@hourly"] {
            assert!(parse_pattern(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "61 * * * *",
            "not a cron",
            "0 0 * * * 2026",
        ] {
            let err = parse_pattern(bad).unwrap_err().to_string();
            assert_eq!(err, format!("The specified pattern is not valid: {bad}"));
        }
        let every5 = parse_pattern("*/5 * * * *").unwrap();
        let t = datetime!(2026-11-28 06:47:38 UTC);
        assert_eq!(
            next_tick(&every5, t, false).unwrap(),
            datetime!(2026-11-28 06:50:00 UTC)
        );
        let on = datetime!(2026-11-28 06:50:00 UTC);
        assert_eq!(next_tick(&every5, on, true).unwrap(), on);
        assert_eq!(
            next_tick(&every5, on, false).unwrap(),
            datetime!(2026-11-28 06:55:00 UTC)
        );
    }

    #[test]
    fn advancing() {
        let t = datetime!(2026-11-28 06:48:00 UTC);
        // One-shot: done after its execution.
        let a = advance(&job(None, Some(1), t), t).unwrap();
        assert_eq!((a.status, a.count), (JobStatus::Done, Some(0)));
        // Count 2: one left, due next minute; then done.
        let mut j = job(Some("* * * * *"), Some(2), t);
        let a = advance(&j, t + time::Duration::milliseconds(300)).unwrap();
        assert_eq!((a.status, a.count), (JobStatus::Running, Some(1)));
        assert_eq!(a.next_execution_time, datetime!(2026-11-28 06:49:00 UTC));
        j.count = a.count;
        j.next_execution_time = a.next_execution_time;
        let a = advance(&j, j.next_execution_time).unwrap();
        assert_eq!((a.status, a.count), (JobStatus::Done, Some(0)));
        // Unlimited stays unlimited.
        let a = advance(&job(Some("* * * * *"), None, t), t).unwrap();
        assert_eq!((a.status, a.count), (JobStatus::Running, None));
        // After two hours of downtime: the next tick is after now, not the one after `t`.
        let later = datetime!(2026-11-28 08:48:30 UTC);
        let a = advance(&job(Some("*/10 * * * *"), None, t), later).unwrap();
        assert_eq!(a.next_execution_time, datetime!(2026-11-28 08:50:00 UTC));
    }

    #[test]
    fn times() {
        let cases = [
            ("2026-11-28T06:48:38Z", datetime!(2026-11-28 06:48:38 UTC)),
            ("2026-11-28 06:48:38", datetime!(2026-11-28 06:48:38 UTC)),
            ("2026-11-28T06:48:38", datetime!(2026-11-28 06:48:38 UTC)),
            (
                "2026-11-28T08:48:38+02:00",
                datetime!(2026-11-28 06:48:38 UTC),
            ),
            ("2026-11-28 06:48", datetime!(2026-11-28 06:48:00 UTC)),
        ];
        for (raw, expect) in cases {
            assert_eq!(parse_time(raw).unwrap(), expect, "{raw}");
        }
        assert!(parse_time("not a date").is_err());
        let now = datetime!(2026-11-28 06:48:38 UTC);
        assert!(future_time("2026-11-28T06:40:00Z", now).is_err());
        assert!(future_time("2026-11-28T06:48:39Z", now).is_ok());
    }

    /// A stand-in for the executions table: recording an id twice fails, as on the primary
    /// key. `fail_after_insert` makes the next firing record its row and then fail, as a
    /// node that dies before advancing the job.
    #[derive(Default)]
    struct Rows {
        ids: std::sync::Mutex<Vec<(String, String)>>,
        fail_after_insert: std::sync::atomic::AtomicBool,
    }

    impl Rows {
        async fn fire(&self, job: Job, id: String) -> Result<Fired, Error> {
            let mut ids = self.ids.lock().unwrap();
            if ids.iter().any(|(i, _)| *i == id) {
                return Ok(Fired::Already);
            }
            ids.push((id, job.id.to_string()));
            if self
                .fail_after_insert
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                return Err(Error::Unavailable("the node died".into()));
            }
            Ok(Fired::Now)
        }

        fn of(&self, job: &Job) -> usize {
            let ids = self.ids.lock().unwrap();
            ids.iter().filter(|(_, j)| *j == job.id.to_string()).count()
        }
    }

    async fn pass(store: &Store, rows: &Rows, at: Timestamp) -> usize {
        run_due(store, at, |job, id| rows.fire(job, id))
            .await
            .unwrap()
    }

    /// Several tickers on one database, a count-2 job, and a stretch of downtime: every tick
    /// fires exactly once, and the job ends `done` after exactly 2 firings.
    #[tokio::test]
    async fn ticks_fire_exactly_once() {
        let store = Store::in_memory().await.unwrap();
        let rows = Rows::default();
        let t0 = datetime!(2026-11-28 06:48:00 UTC);
        let j = job(Some("* * * * *"), Some(2), t0);
        store.put_job(&j).await.unwrap();
        // Not yet due.
        pass(&store, &rows, t0 - time::Duration::seconds(1)).await;
        assert_eq!(rows.of(&j), 0);
        // Due: three tickers at the same instant; one records it.
        let mut total = 0;
        for _ in 0..3 {
            total += pass(&store, &rows, t0 + time::Duration::milliseconds(200)).await;
        }
        assert_eq!((total, rows.of(&j)), (1, 1));
        let after1 = store
            .get_job(&j.id, &qinling_store::Scope::All)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after1.count, Some(1));
        assert_eq!(after1.status, JobStatus::Running);
        assert_eq!(
            after1.next_execution_time,
            datetime!(2026-11-28 06:49:00 UTC)
        );
        // Ten minutes of downtime: the missed ticks fire once, not ten times.
        let late = datetime!(2026-11-28 06:59:10 UTC);
        for _ in 0..3 {
            pass(&store, &rows, late).await;
        }
        assert_eq!(rows.of(&j), 2);
        let done = store
            .get_job(&j.id, &qinling_store::Scope::All)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((done.status, done.count), (JobStatus::Done, Some(0)));
        // Done jobs never fire again.
        let much_later = datetime!(2026-11-29 00:00:00 UTC);
        pass(&store, &rows, much_later).await;
        assert_eq!(rows.of(&j), 2);
        // A paused job does not fire.
        let mut p = job(Some("* * * * *"), None, t0);
        p.status = JobStatus::Paused;
        store.put_job(&p).await.unwrap();
        pass(&store, &rows, much_later).await;
        assert_eq!(rows.of(&p), 0);
    }

    /// A ticker that records a tick's execution and dies before advancing the job: the next
    /// ticker finds the execution and only advances, so the tick fires once; and a job moved
    /// back to a time it already fired at fires again.
    #[tokio::test]
    async fn a_ticker_dying_mid_tick_does_not_fire_it_twice() {
        let store = Store::in_memory().await.unwrap();
        let rows = Rows::default();
        let t0 = datetime!(2026-11-28 06:48:00 UTC);
        let j = job(Some("* * * * *"), Some(3), t0);
        store.put_job(&j).await.unwrap();
        let at = t0 + time::Duration::milliseconds(100);
        rows.fail_after_insert
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(pass(&store, &rows, at).await, 0);
        let still = store
            .get_job(&j.id, &qinling_store::Scope::All)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((still.next_execution_time, still.count), (t0, Some(3)));
        assert_eq!(pass(&store, &rows, at).await, 0);
        assert_eq!(rows.of(&j), 1);
        let next = store
            .get_job(&j.id, &qinling_store::Scope::All)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.count, Some(2));
        // Moved back to t0 by an update (which changes the row): t0 fires again.
        let mut back = next.clone();
        back.next_execution_time = t0;
        back.updated_at = Some(back.updated_at.unwrap_or(t0) + time::Duration::seconds(1));
        assert_ne!(tick_execution_id(&back), tick_execution_id(&j));
        store.put_job(&back).await.unwrap();
        assert_eq!(pass(&store, &rows, at).await, 1);
        assert_eq!(rows.of(&j), 2);
    }

    #[test]
    fn tick_ids_are_uuids_fixed_by_the_row() {
        let t0 = datetime!(2026-11-28 06:48:00 UTC);
        let j = job(Some("* * * * *"), None, t0);
        let id = tick_execution_id(&j);
        assert!(qinling_types::is_uuid(&id), "{id}");
        assert_eq!(id.as_bytes()[14], b'8');
        assert_eq!(id, tick_execution_id(&j.clone()));
        let mut later = j.clone();
        later.next_execution_time = t0 + time::Duration::minutes(1);
        assert_ne!(id, tick_execution_id(&later));
    }
}
