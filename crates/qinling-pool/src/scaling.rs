//! Qinling's scaling rule as a pure function: given the workers of one function version
//! (how many executions each holds), how many are starting and how many executions want
//! one, [`decide`] says whether to add a worker, which worker to use, or to wait; and
//! [`load`] says how busy the version is for admission. The pool applies both under the
//! version's lock; nothing here touches a worker or a clock.

use qinling_executor::Load;

/// What one execution that wants a worker should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Start (or take from the runtime's pool) a new worker and bind it.
    Scale,
    /// Use the worker at this index (the least loaded with room).
    Use(usize),
    /// Every worker is full and no more may be added: wait for a change.
    Wait,
}

/// The bounds of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Executions per worker.
    pub concurrency: usize,
    /// Workers per function version.
    pub max_workers: usize,
}

/// A version's workers as the rule sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    /// Executions leased to each live worker bound to the current revision.
    pub leases: &'a [usize],
    /// Workers being started for it.
    pub starting: usize,
    /// Executions of the version that hold or want a worker, this one included.
    pub running: usize,
}

/// Add a worker when the version has none, or when running executions per worker would
/// exceed the concurrency (and the cap allows); else the least-loaded worker with room;
/// else wait.
pub(crate) fn decide(v: View<'_>, b: Bounds) -> Decision {
    let n = v.leases.len() + v.starting;
    if n == 0 || (v.running > n * b.concurrency && n < b.max_workers) {
        return Decision::Scale;
    }
    v.leases
        .iter()
        .enumerate()
        .filter(|(_, l)| **l < b.concurrency)
        .min_by_key(|(_, l)| **l)
        .map_or(Decision::Wait, |(i, _)| Decision::Use(i))
}

/// How busy the version is: at capacity once it has every worker it may have and each of
/// them is as busy as the concurrency allows (a further execution would wait); executions
/// that hold no lease are waiting.
pub(crate) fn load(v: View<'_>, b: Bounds) -> Load {
    let workers = v.leases.len() + v.starting;
    let leased: usize = v.leases.iter().sum();
    Load {
        workers: Some(workers),
        running: leased,
        waiting: v.running.saturating_sub(leased),
        at_capacity: workers >= b.max_workers && v.running >= workers * b.concurrency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds {
        concurrency: 3,
        max_workers: 2,
    };

    #[test]
    fn one_decision() {
        // (leases, starting, running, bounds, decision)
        let cases: &[(&[usize], usize, usize, Bounds, Decision)] = &[
            // No worker: add one, whatever else.
            (&[], 0, 1, B, Decision::Scale),
            // One worker, room on it: use it.
            (&[1], 0, 2, B, Decision::Use(0)),
            (&[2], 0, 3, B, Decision::Use(0)),
            // Running per worker would exceed the concurrency: add one.
            (&[3], 0, 4, B, Decision::Scale),
            // One is starting: counted as a worker, so no second start for the same load.
            (&[], 1, 2, B, Decision::Wait),
            (&[3], 1, 5, B, Decision::Wait),
            // The least-loaded worker with room.
            (
                &[3, 1, 2],
                0,
                6,
                Bounds {
                    concurrency: 3,
                    max_workers: 3,
                },
                Decision::Use(1),
            ),
            // At the cap: use the room that is left, then wait.
            (&[3, 2], 0, 7, B, Decision::Use(1)),
            (&[3, 3], 0, 7, B, Decision::Wait),
            // A cap of one worker.
            (
                &[3],
                0,
                9,
                Bounds {
                    concurrency: 3,
                    max_workers: 1,
                },
                Decision::Wait,
            ),
        ];
        for (i, (leases, starting, running, b, want)) in cases.iter().enumerate() {
            let v = View {
                leases,
                starting: *starting,
                running: *running,
            };
            assert_eq!(decide(v, *b), *want, "case {i}");
        }
    }

    /// `arrivals` executions that each keep their worker: how many workers the rule makes
    /// and how many executions wait.
    fn burst(arrivals: usize, b: Bounds) -> (usize, usize) {
        let mut leases: Vec<usize> = Vec::new();
        let mut waiting = 0;
        for running in 1..=arrivals {
            let v = View {
                leases: &leases,
                starting: 0,
                running,
            };
            match decide(v, b) {
                Decision::Scale => leases.push(1),
                Decision::Use(i) => leases[i] += 1,
                Decision::Wait => waiting += 1,
            }
        }
        (leases.len(), waiting)
    }

    #[test]
    fn bursts() {
        let wide = Bounds {
            concurrency: 3,
            max_workers: 10,
        };
        // (concurrent executions, bounds, workers, waiting)
        let cases = [
            (0, wide, 0, 0),
            (1, wide, 1, 0),
            (3, wide, 1, 0),
            (4, wide, 2, 0),
            (6, wide, 2, 0),
            (7, wide, 3, 0),
            (30, wide, 10, 0),
            // The cap: 2 workers × 3, the rest wait.
            (6, B, 2, 0),
            (9, B, 2, 3),
        ];
        for (arrivals, b, workers, waiting) in cases {
            assert_eq!(
                burst(arrivals, b),
                (workers, waiting),
                "{arrivals} executions"
            );
        }
    }

    #[test]
    fn admission_load() {
        // (leases, starting, running, workers, leased, waiting, at capacity)
        type Case = (&'static [usize], usize, usize, usize, usize, usize, bool);
        let cases: &[Case] = &[
            (&[], 0, 0, 0, 0, 0, false),
            (&[], 1, 1, 1, 0, 1, false),
            (&[3], 0, 5, 1, 3, 2, false),
            (&[3, 3], 0, 6, 2, 6, 0, true),
            (&[3, 3], 0, 10, 2, 6, 4, true),
            (&[3], 1, 8, 2, 3, 5, true),
            // Every worker it may have, with room on them: not at capacity.
            (&[1, 0], 0, 1, 2, 1, 0, false),
            (&[3, 2], 0, 5, 2, 5, 0, false),
        ];
        for (i, (leases, starting, running, workers, leased, waiting, full)) in
            cases.iter().enumerate()
        {
            let v = View {
                leases,
                starting: *starting,
                running: *running,
            };
            let l = load(v, B);
            assert_eq!(
                (l.workers, l.running, l.waiting, l.at_capacity),
                (Some(*workers), *leased, *waiting, *full),
                "case {i}"
            );
        }
    }
}
