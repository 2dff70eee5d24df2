//! In-flight bounds per function version for executors without workers (wasm runs every
//! execution in its own instance): at most `running` executions of one version run at
//! once, the rest wait in order, and [`Slots::load`] tells admission how many run and wait
//! — the same figures a worker pool reports, so the engine's one 429 rule covers both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::{FunctionKey, Load};

/// Most function versions tracked; past it, idle ones are dropped.
const MAX_TRACKED: usize = 10_000;

/// In-flight executions per function version.
pub struct Slots {
    running: usize,
    map: Mutex<HashMap<FunctionKey, Arc<Slot>>>,
}

struct Slot {
    /// One permit per execution that may run; waiters queue in order.
    permits: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
}

/// One execution's claim on a slot of its function version; dropping it frees the slot.
pub struct SlotGuard {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _slot: Arc<Slot>,
}

/// Counts a waiting execution for as long as it waits (also when it is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slots {
    /// At most `running` (at least 1) executions of one version at once.
    pub fn new(running: usize) -> Slots {
        Slots {
            running: running.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Running and waiting executions of `key`, if it has had any.
    pub fn load(&self, key: &FunctionKey) -> Option<Load> {
        let map = self.map.lock().expect("slots lock");
        let s = map.get(key)?;
        let running = self.running.saturating_sub(s.permits.available_permits());
        Some(Load {
            workers: None,
            running,
            waiting: s.waiting.load(Ordering::SeqCst),
            at_capacity: running >= self.running,
        })
    }

    /// Waits until `key` runs fewer than the bound and claims a slot.
    pub async fn acquire(&self, key: &FunctionKey) -> SlotGuard {
        let slot = {
            let mut map = self.map.lock().expect("slots lock");
            if map.len() >= MAX_TRACKED && !map.contains_key(key) {
                map.retain(|_, s| Arc::strong_count(s) > 1);
            }
            map.entry(key.clone())
                .or_insert_with(|| {
                    Arc::new(Slot {
                        permits: Arc::new(tokio::sync::Semaphore::new(self.running)),
                        waiting: AtomicUsize::new(0),
                    })
                })
                .clone()
        };
        slot.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(&slot.waiting);
        let permit = slot
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("slot semaphores are never closed");
        drop(waiting);
        SlotGuard {
            _permit: permit,
            _slot: slot,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn figures(l: Option<Load>) -> Option<(usize, usize, bool)> {
        l.map(|l| (l.running, l.waiting, l.at_capacity))
    }

    #[tokio::test]
    async fn slots_bound_running_executions() {
        let slots = Arc::new(Slots::new(2));
        let key = FunctionKey {
            function_id: "f".into(),
            version: 0,
        };
        assert_eq!(slots.load(&key), None);
        let a = slots.acquire(&key).await;
        assert_eq!(figures(slots.load(&key)), Some((1, 0, false)));
        let _b = slots.acquire(&key).await;
        assert_eq!(figures(slots.load(&key)), Some((2, 0, true)));
        let waiter = {
            let slots = slots.clone();
            let key = key.clone();
            tokio::spawn(async move { slots.acquire(&key).await })
        };
        while figures(slots.load(&key)) != Some((2, 1, true)) {
            tokio::task::yield_now().await;
        }
        drop(a);
        let _c = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter got the freed slot")
            .unwrap();
        assert_eq!(figures(slots.load(&key)), Some((2, 0, true)));
    }

    #[tokio::test]
    async fn a_cancelled_waiter_is_not_counted() {
        let slots = Arc::new(Slots::new(1));
        let key = FunctionKey {
            function_id: "f".into(),
            version: 3,
        };
        let _a = slots.acquire(&key).await;
        let cancelled = tokio::time::timeout(Duration::from_millis(20), slots.acquire(&key)).await;
        assert!(cancelled.is_err());
        assert_eq!(figures(slots.load(&key)), Some((1, 0, true)));
    }
}
