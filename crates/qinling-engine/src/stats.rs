//! A function's live statistics (an addition: `GET /v1/functions/{id}/stats`, the
//! dashboard's charts): its finished executions over the last minutes, cut into 60 equal
//! steps — count, failures, errors, cold starts, p50/p99 duration — and its workers now.
//! Read from the executions table, so every node of a cluster answers alike. The bucketing is
//! pure ([`buckets`]).

use std::time::Duration;

use qinling_store::ExecutionSample;
use qinling_types::{Error, ExecutionStatus, FunctionId, RequestContext, Timestamp, now};

use crate::Engine;

/// Steps a window is cut into.
pub const STEPS: u32 = 60;
/// The window when none is asked for, and the longest, in minutes.
pub const DEFAULT_MINUTES: u32 = 5;
pub const MAX_MINUTES: u32 = 60;

/// One step of the window (or the whole window).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatsPoint {
    /// The step's start (for the totals: the window's).
    pub start: Option<Timestamp>,
    pub executions: u64,
    /// Ended `failed` (the function's fault or its limits) and `error` (the platform's).
    pub failed: u64,
    pub errors: u64,
    pub cold_starts: u64,
    /// Nearest-rank percentiles of the durations, in milliseconds; `None` without executions.
    pub p50_ms: Option<i64>,
    pub p99_ms: Option<i64>,
}

/// What [`Engine::function_stats`] answers.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionStats {
    pub function_id: FunctionId,
    pub minutes: u32,
    pub step_seconds: f64,
    /// The window's end (now).
    pub end: Timestamp,
    pub points: Vec<StatsPoint>,
    pub totals: StatsPoint,
    /// Workers the function has now (every version, every node).
    pub workers: usize,
    /// More executions finished in the window than are counted (the newest
    /// [`qinling_store::MAX_SAMPLES`] are).
    pub truncated: bool,
}

impl Engine {
    /// The statistics of function `id` over the last `minutes` (text as given; default
    /// [`DEFAULT_MINUTES`], 1 to [`MAX_MINUTES`]). Visible to whoever may see the function.
    pub async fn function_stats(
        &self,
        ctx: &RequestContext,
        id: &FunctionId,
        minutes: Option<&str>,
    ) -> Result<FunctionStats, Error> {
        let minutes = match minutes {
            None => DEFAULT_MINUTES,
            Some(text) => match text.trim().parse::<u32>() {
                Ok(m) if (1..=MAX_MINUTES).contains(&m) => m,
                _ => {
                    return Err(Error::input(format!(
                        "minutes must be a whole number from 1 to {MAX_MINUTES}, not '{text}'."
                    )));
                }
            },
        };
        let function = self.get_function(ctx, id).await?;
        let end = now();
        let window = Duration::from_secs(u64::from(minutes) * 60);
        let since = end - window;
        let samples = self
            .inner
            .store
            .execution_samples(function.id.as_str(), since)
            .await?;
        let workers = self
            .inner
            .executor
            .workers(function.id.as_str(), None)
            .await;
        let (points, totals) = buckets(&samples, since, window);
        Ok(FunctionStats {
            function_id: function.id.clone(),
            minutes,
            step_seconds: window.as_secs_f64() / f64::from(STEPS),
            end,
            points,
            totals: StatsPoint {
                start: Some(since),
                ..totals
            },
            workers: workers.len(),
            truncated: samples.len() >= qinling_store::MAX_SAMPLES,
        })
    }
}

/// `samples` counted into [`STEPS`] steps of the window that starts at `since` and lasts
/// `window`, and in total. Samples outside the window are left out.
pub fn buckets(
    samples: &[ExecutionSample],
    since: Timestamp,
    window: Duration,
) -> (Vec<StatsPoint>, StatsPoint) {
    let step = window / STEPS;
    let mut durations: Vec<Vec<i64>> = vec![Vec::new(); STEPS as usize];
    let mut points: Vec<StatsPoint> = (0..STEPS)
        .map(|i| StatsPoint {
            start: Some(since + step * i),
            ..StatsPoint::default()
        })
        .collect();
    let mut totals = StatsPoint::default();
    let mut all = Vec::new();
    for s in samples {
        let offset = s.finished - since;
        if offset.is_negative() || offset >= window {
            continue;
        }
        let i = ((offset.as_seconds_f64() / step.as_secs_f64()) as usize).min(STEPS as usize - 1);
        for p in [&mut points[i], &mut totals] {
            p.executions += 1;
            match s.status {
                ExecutionStatus::Failed => p.failed += 1,
                ExecutionStatus::Error => p.errors += 1,
                _ => {}
            }
            if s.cold_start_ms.is_some() {
                p.cold_starts += 1;
            }
        }
        if let Some(d) = s.duration_ms {
            durations[i].push(d);
            all.push(d);
        }
    }
    for (p, mut d) in points.iter_mut().zip(durations) {
        (p.p50_ms, p.p99_ms) = percentiles(&mut d);
    }
    (totals.p50_ms, totals.p99_ms) = percentiles(&mut all);
    (points, totals)
}

/// The nearest-rank 50th and 99th percentiles.
fn percentiles(values: &mut [i64]) -> (Option<i64>, Option<i64>) {
    if values.is_empty() {
        return (None, None);
    }
    values.sort_unstable();
    let rank = |q: f64| {
        let n = values.len();
        let r = ((q * n as f64).ceil() as usize).clamp(1, n);
        values[r - 1]
    };
    (Some(rank(0.50)), Some(rank(0.99)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Timestamp, status: ExecutionStatus, ms: i64, cold: bool) -> ExecutionSample {
        ExecutionSample {
            finished: at,
            status,
            duration_ms: Some(ms),
            cold_start_ms: cold.then_some(5),
        }
    }

    #[test]
    fn samples_fall_into_their_steps_with_percentiles() {
        let since = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let window = Duration::from_secs(60);
        let s = |secs: f64, status, ms, cold| {
            sample(since + time::Duration::seconds_f64(secs), status, ms, cold)
        };
        let samples = vec![
            s(0.0, ExecutionStatus::Success, 10, true),
            s(0.5, ExecutionStatus::Success, 20, false),
            s(0.9, ExecutionStatus::Failed, 30, false),
            s(30.2, ExecutionStatus::Error, 7, false),
            s(59.99, ExecutionStatus::Success, 1, false),
            // Outside the window: left out.
            s(-0.1, ExecutionStatus::Success, 1000, true),
            s(60.0, ExecutionStatus::Success, 1000, true),
        ];
        let (points, totals) = buckets(&samples, since, window);
        assert_eq!(points.len(), 60);
        assert_eq!(points[1].start, Some(since + Duration::from_secs(1)));
        let p = &points[0];
        assert_eq!(
            (
                p.executions,
                p.failed,
                p.errors,
                p.cold_starts,
                p.p50_ms,
                p.p99_ms
            ),
            (3, 1, 0, 1, Some(20), Some(30))
        );
        assert_eq!((points[30].executions, points[30].errors), (1, 1));
        assert_eq!(points[59].executions, 1);
        assert_eq!(
            points[10],
            StatsPoint {
                start: points[10].start,
                ..StatsPoint::default()
            }
        );
        assert_eq!(
            (
                totals.executions,
                totals.failed,
                totals.errors,
                totals.cold_starts
            ),
            (5, 1, 1, 1)
        );
        // 1, 7, 10, 20, 30: the median is the 3rd, p99 the 5th.
        assert_eq!((totals.p50_ms, totals.p99_ms), (Some(10), Some(30)));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(percentiles(&mut []), (None, None));
        assert_eq!(percentiles(&mut [4]), (Some(4), Some(4)));
        let mut hundred: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(percentiles(&mut hundred), (Some(50), Some(99)));
    }
}
