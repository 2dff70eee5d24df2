//! The pool's two reconcilers, on one loop woken on demand and every second: release
//! function workers idle for `idle_timeout` (scale to zero), then top each runtime's pool
//! of pre-started workers up to `pool_size`. Both are idempotent and read only the pool's
//! own state; the loop holds a weak reference, so dropping the pool ends it. A runtime whose
//! workers fail to start is retried with backoff (1 s doubling to a minute), and each new
//! reason is logged once, not every second.

use std::sync::Arc;
use std::time::Duration;

use qinling_types::RuntimeKind;

use crate::{Inner, Pool};

/// Starts the loop for `inner`.
pub(crate) fn start(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let refill = inner.refill.clone();
    tokio::spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let pool = Pool { inner };
            pool.reap_idle();
            pool.refill_once().await;
            drop(pool);
            let _ = tokio::time::timeout(Duration::from_secs(1), refill.notified()).await;
        }
    });
}

impl Pool {
    /// Releases function workers unused for `idle_timeout`.
    fn reap_idle(&self) {
        let idle_timeout = self.inner.config.idle_timeout;
        let mut functions = self.inner.functions.lock().expect("functions lock");
        functions.retain(|key, fw| {
            let mut s = fw.state.lock().expect("function workers lock");
            s.workers.retain(|w| {
                let expired = !w.is_dead() && w.leases() == 0 && w.idle_for() >= idle_timeout;
                if expired {
                    tracing::info!(worker = %w.name, function_id = %key.function_id, version = key.version, "releasing an idle worker");
                    w.kill();
                }
                !expired && !w.is_dead()
            });
            // Forget functions with nothing left, unless an execution is on its way.
            !(s.workers.is_empty() && s.running == 0 && s.starting == 0)
        });
    }

    /// Starts the pre-started workers each runtime's pool lacks.
    async fn refill_once(&self) {
        let want = self.inner.config.pool_size;
        let todo: Vec<(String, RuntimeKind)> = {
            let mut runtimes = self.inner.runtimes.lock().expect("runtimes lock");
            let mut todo = Vec::new();
            let now = std::time::Instant::now();
            for (id, rp) in runtimes.iter_mut() {
                rp.idle.retain(|w| !w.is_dead());
                if rp.retry_at.is_some_and(|at| now < at) {
                    continue;
                }
                while rp.idle.len() + rp.starting < want {
                    rp.starting += 1;
                    todo.push((id.clone(), rp.kind));
                }
            }
            todo
        };
        for (runtime_id, kind) in todo {
            // A launch of this round failed: the rest wait for the backoff too.
            {
                let mut runtimes = self.inner.runtimes.lock().expect("runtimes lock");
                if let Some(rp) = runtimes.get_mut(&runtime_id)
                    && rp.retry_at.is_some()
                {
                    rp.starting -= 1;
                    continue;
                }
            }
            let started = self
                .launch(kind, &self.inner.config.pool_limits, false)
                .await;
            let mut runtimes = self.inner.runtimes.lock().expect("runtimes lock");
            match (runtimes.get_mut(&runtime_id), started) {
                (Some(rp), Ok(w)) => {
                    rp.starting -= 1;
                    rp.idle.push_back(w);
                    if rp.failures > 0 {
                        tracing::info!(runtime_id = %runtime_id, "pool workers start again");
                    }
                    rp.failures = 0;
                    rp.retry_at = None;
                    rp.last_error = None;
                }
                (Some(rp), Err(error)) => {
                    rp.starting -= 1;
                    let reason = error_chain(&error);
                    rp.failures = rp.failures.saturating_add(1);
                    let wait =
                        Duration::from_secs(1 << rp.failures.min(6)).min(Duration::from_secs(60));
                    rp.retry_at = Some(std::time::Instant::now() + wait);
                    if rp.last_error.as_deref() != Some(reason.as_str()) {
                        tracing::warn!(error = %reason, runtime_id = %runtime_id, "pool workers fail to start; retrying with backoff (up to a minute), logged again only if the reason changes");
                        rp.last_error = Some(reason);
                    } else {
                        tracing::debug!(error = %reason, runtime_id = %runtime_id, retry_in = ?wait, "pool worker failed to start");
                    }
                }
                (None, Ok(w)) => w.kill(),
                (None, Err(_)) => {}
            }
        }
    }
}

/// An error with its causes: `a: b: c` (a cause its parent already quotes is not repeated).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}
