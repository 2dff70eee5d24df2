//! Membership: which nodes are up. Each node puts its [`NodeRecord`] in a JetStream
//! key-value bucket every heartbeat; every node reads the bucket back on the same beat and
//! keeps, per node, when its record last changed *by this node's own clock* (the entry's
//! revision moves with every put), so clocks need not agree. A node whose record has not
//! changed for the node timeout is lost. While this node cannot read the bucket (NATS
//! restarting), it knows nothing and judges no one: after it reads again, every node gets a
//! fresh timeout. This file is the bookkeeping only; the loop that talks to NATS is in
//! `lib.rs`, and the time is an argument, so the rules are tested without a clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// What a node announces about itself on every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    pub name: String,
    pub address: String,
    pub version: String,
    /// `64 workers`, `8000 millicpu`.
    pub capacity: String,
    /// Executions running on it.
    pub running: u64,
    /// Function workers bound on it.
    pub workers: u64,
    /// Its runtimes' pre-started workers: `(runtime id, available, target)`.
    pub pools: Vec<(String, usize, usize)>,
    /// When it sent this (RFC 3339, its own clock: shown, never compared).
    pub at: String,
}

struct Seen {
    record: NodeRecord,
    revision: u64,
    changed: Instant,
    lost: bool,
}

/// The nodes this node knows of.
pub struct Members {
    me: String,
    timeout: Duration,
    nodes: Mutex<HashMap<String, Seen>>,
    /// Bumped whenever a node is lost or leaves, for [`Members::wait_lost`].
    epoch: watch::Sender<u64>,
}

impl Members {
    pub fn new(me: &str, timeout: Duration) -> Members {
        Members {
            me: me.to_string(),
            timeout,
            nodes: Mutex::new(HashMap::new()),
            epoch: watch::Sender::new(0),
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// A record read from the bucket at `revision`. Returns whether the node (re)joined.
    pub fn observe(&self, record: NodeRecord, revision: u64, now: Instant) -> bool {
        let mut nodes = self.nodes.lock().expect("members lock");
        match nodes.get_mut(&record.id) {
            Some(seen) if seen.revision == revision => false,
            Some(seen) => {
                let rejoined = seen.lost;
                seen.record = record;
                seen.revision = revision;
                seen.changed = now;
                seen.lost = false;
                rejoined
            }
            None => {
                nodes.insert(
                    record.id.clone(),
                    Seen {
                        record,
                        revision,
                        changed: now,
                        lost: false,
                    },
                );
                true
            }
        }
    }

    /// The nodes whose records have not changed for the timeout, newly marked lost (never
    /// this node).
    pub fn expire(&self, now: Instant) -> Vec<NodeRecord> {
        let mut lost = Vec::new();
        {
            let mut nodes = self.nodes.lock().expect("members lock");
            for seen in nodes.values_mut() {
                if !seen.lost
                    && seen.record.id != self.me
                    && now.duration_since(seen.changed) >= self.timeout
                {
                    seen.lost = true;
                    lost.push(seen.record.clone());
                }
            }
        }
        if !lost.is_empty() {
            self.epoch.send_modify(|e| *e += 1);
        }
        lost
    }

    /// After a time this node could not read the bucket: everyone gets a fresh timeout
    /// from `now` (their silence may have been ours).
    pub fn refresh(&self, now: Instant) {
        for seen in self.nodes.lock().expect("members lock").values_mut() {
            seen.changed = now;
        }
    }

    /// A node that left (its record was deleted): gone from the list at once.
    pub fn remove(&self, id: &str) {
        if self
            .nodes
            .lock()
            .expect("members lock")
            .remove(id)
            .is_some()
        {
            self.epoch.send_modify(|e| *e += 1);
        }
    }

    /// The nodes that are up, by id (this node included once it has seen itself).
    pub fn live(&self) -> Vec<NodeRecord> {
        let nodes = self.nodes.lock().expect("members lock");
        let mut out: Vec<NodeRecord> = nodes
            .values()
            .filter(|s| !s.lost)
            .map(|s| s.record.clone())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Every node known, with whether it is lost.
    pub fn all(&self) -> Vec<(NodeRecord, bool)> {
        let nodes = self.nodes.lock().expect("members lock");
        let mut out: Vec<(NodeRecord, bool)> =
            nodes.values().map(|s| (s.record.clone(), s.lost)).collect();
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name).then(a.0.id.cmp(&b.0.id)));
        out
    }

    pub fn is_live(&self, id: &str) -> bool {
        self.nodes
            .lock()
            .expect("members lock")
            .get(id)
            .is_some_and(|s| !s.lost)
    }

    pub fn name_of(&self, id: &str) -> String {
        self.nodes
            .lock()
            .expect("members lock")
            .get(id)
            .map(|s| s.record.name.clone())
            .unwrap_or_else(|| id.to_string())
    }

    /// Resolves once `id` is no longer up (lost or left).
    pub async fn wait_lost(&self, id: &str) {
        let mut rx = self.epoch.subscribe();
        loop {
            if !self.is_live(id) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            name: format!("name-{id}"),
            address: String::new(),
            version: "0".into(),
            capacity: "64 workers".into(),
            running: 0,
            workers: 0,
            pools: vec![],
            at: String::new(),
        }
    }

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn a_node_is_lost_when_its_record_stops_changing_for_the_timeout() {
        let m = Members::new("me", T);
        let t0 = Instant::now();
        assert!(m.observe(record("me"), 1, t0));
        assert!(m.observe(record("n2"), 2, t0));
        // n2 keeps beating for a while, then stops; reading the same revision again is no beat.
        m.observe(record("n2"), 3, t0 + Duration::from_secs(5));
        m.observe(record("n2"), 3, t0 + Duration::from_secs(9));
        assert!(m.expire(t0 + Duration::from_secs(14)).is_empty());
        let lost = m.expire(t0 + Duration::from_secs(15));
        assert_eq!(
            lost.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["n2"]
        );
        // Reported once, and never this node itself, however long it is silent.
        assert!(m.expire(t0 + Duration::from_secs(100)).is_empty());
        assert_eq!(m.live().len(), 1);
        assert!(!m.is_live("n2"));
        // It comes back: it rejoins.
        assert!(m.observe(record("n2"), 9, t0 + Duration::from_secs(101)));
        assert!(m.is_live("n2"));
    }

    #[test]
    fn a_blind_spot_of_this_node_loses_no_one() {
        let m = Members::new("me", T);
        let t0 = Instant::now();
        m.observe(record("n2"), 1, t0);
        // This node could not read the bucket for 30 s; then it can again.
        m.refresh(t0 + Duration::from_secs(30));
        assert!(m.expire(t0 + Duration::from_secs(31)).is_empty());
        assert_eq!(m.expire(t0 + Duration::from_secs(40)).len(), 1);
    }

    #[tokio::test]
    async fn waiting_for_a_node_ends_when_it_is_lost_or_leaves() {
        let m = std::sync::Arc::new(Members::new("me", T));
        let t0 = Instant::now();
        m.observe(record("n2"), 1, t0);
        m.observe(record("n3"), 1, t0);
        let w = {
            let m = m.clone();
            tokio::spawn(async move { m.wait_lost("n2").await })
        };
        tokio::task::yield_now().await;
        assert!(!w.is_finished());
        m.observe(record("n3"), 2, t0 + Duration::from_secs(20));
        m.expire(t0 + Duration::from_secs(20));
        tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .unwrap()
            .unwrap();
        let w = {
            let m = m.clone();
            tokio::spawn(async move { m.wait_lost("n3").await })
        };
        m.remove("n3");
        tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .unwrap()
            .unwrap();
    }
}
