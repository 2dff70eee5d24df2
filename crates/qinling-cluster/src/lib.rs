//! Several `qinling serve` nodes as one platform, on NATS: membership with heartbeats in a
//! JetStream key-value bucket (`members.rs`), placement of each function version on a home
//! node by rendezvous hashing (`placement.rs`), executions forwarded to the node that runs
//! them over NATS request-reply — the cluster is one more place an execution can run, an
//! [`Executor`] wrapping the node's own (`executor.rs`) —, the async queue on a JetStream
//! work queue (`queue.rs`), and the messages nodes exchange (`wire.rs`). State stays in the
//! shared PostgreSQL database; nothing here is a source of truth for an execution, so a
//! lost message costs at most a retry, never a result.
//!
//! [`Cluster::join`] connects and announces the node; the server then builds its engine
//! with [`Cluster::executor`] and [`Cluster::queue`], and hands the engine back with
//! [`Cluster::watch`], which fails the executions of nodes the cluster loses.

mod executor;
pub mod members;
pub mod placement;
mod queue;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use qinling_engine::Engine;
use qinling_executor::Executor;

pub use executor::ClusterExecutor;
pub use members::{Members, NodeRecord};
pub use queue::JetStreamQueue;

/// The key-value bucket of node records.
const BUCKET: &str = "qinling_nodes";
/// Subjects: `qinling.node.<id>` (requests to one node) and `qinling.all` (broadcasts).
const NODE_SUBJECT: &str = "qinling.node";
const ALL_SUBJECT: &str = "qinling.all";

/// What a node may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeCapacity {
    /// Function workers bound on it (a wasm execution counts as one while it runs).
    Workers(u64),
    /// Thousandths of a core of the executions running on it.
    MilliCpu(u64),
}

impl NodeCapacity {
    /// `64` or `64w` (workers), `8000m` (millicpu).
    pub fn parse(text: &str) -> Result<NodeCapacity, String> {
        let t = text.trim();
        let bad = || {
            format!(
                "capacity must be a number of workers ('64') or millicpu ('8000m'), not '{text}'"
            )
        };
        let (digits, milli) = match t.strip_suffix('m') {
            Some(d) => (d, true),
            None => (t.strip_suffix('w').unwrap_or(t), false),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        Ok(if milli {
            NodeCapacity::MilliCpu(n)
        } else {
            NodeCapacity::Workers(n)
        })
    }
}

impl std::fmt::Display for NodeCapacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeCapacity::Workers(n) => write!(f, "{n} workers"),
            NodeCapacity::MilliCpu(n) => write!(f, "{n} millicpu"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `nats://host:4222` (several, comma-separated).
    pub url: String,
    pub node_id: String,
    pub node_name: String,
    /// This node's API base URL, as others should reach it.
    pub address: String,
    pub capacity: NodeCapacity,
    /// How often the node announces itself and reads the others.
    pub heartbeat: Duration,
    /// Silence after which a node is lost.
    pub node_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error(
        "cannot set up JetStream ({what}): {message}; is nats-server running with JetStream on (-js)?"
    )]
    JetStream { what: &'static str, message: String },
}

/// This node's part in the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) cfg: ClusterConfig,
    pub(crate) client: async_nats::Client,
    kv: kv::Store,
    pub(crate) members: Members,
    pub(crate) local: Arc<dyn Executor>,
    queue: Arc<JetStreamQueue>,
    executor: Arc<ClusterExecutor>,
    /// Executions running on this node (from here or forwarded), and their millicpu.
    pub(crate) running: AtomicU64,
    pub(crate) running_millicpu: AtomicU64,
    /// Function workers bound here, as of the last heartbeat.
    pub(crate) workers: AtomicU64,
    /// Runtimes registered with the local executor, so a forwarded run registers once.
    pub(crate) runtimes: Mutex<HashSet<String>>,
    engine: OnceLock<Engine>,
    /// Runs other nodes sent here, by execution id, while they run and for a while after
    /// (their report), so a run asked for again after a lost message is not run twice.
    pub(crate) forwarded: Mutex<HashMap<String, executor::ForwardedRun>>,
    /// Counts this node's losses of its NATS connection: a run out on another node when it
    /// changes may have lost its request or its reply, and is asked for again.
    pub(crate) disconnects: Arc<tokio::sync::watch::Sender<u64>>,
    /// When this node joined: it judges no one before a node timeout has passed.
    joined: Instant,
}

impl Cluster {
    /// Connects to NATS, sets up the bucket, the stream and this node's subscriptions, and
    /// announces the node (so the others place executions on it from their next beat).
    pub async fn join(
        cfg: ClusterConfig,
        local: Arc<dyn Executor>,
    ) -> Result<Cluster, ClusterError> {
        let disconnects = Arc::new(tokio::sync::watch::Sender::new(0u64));
        let client = async_nats::ConnectOptions::new()
            .name(format!("qinling {}", cfg.node_name))
            .event_callback({
                let disconnects = disconnects.clone();
                move |event| {
                    let disconnects = disconnects.clone();
                    async move {
                        match event {
                            async_nats::Event::Disconnected => {
                                tracing::warn!("lost the connection to NATS; reconnecting");
                                disconnects.send_modify(|n| *n += 1);
                            }
                            async_nats::Event::Connected => {
                                tracing::info!("connected to NATS");
                            }
                            other => tracing::info!(event = %other, "NATS"),
                        }
                    }
                }
            })
            .max_reconnects(None)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(cfg.url.as_str())
            .await
            .map_err(|e| ClusterError::Connect {
                url: cfg.url.clone(),
                message: e.to_string(),
            })?;
        // `retry_on_initial_connect` returns before the first connection: wait for it, so a
        // wrong address is a clear error at start, not a silent retry forever.
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.connection_state() != async_nats::connection::State::Connected {
            if Instant::now() > deadline {
                return Err(ClusterError::Connect {
                    url: cfg.url.clone(),
                    message: "no answer within 10 s".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let js = jetstream::new(client.clone());
        let kv =
            ensure_bucket(&js, cfg.node_timeout)
                .await
                .map_err(|e| ClusterError::JetStream {
                    what: "the node bucket",
                    message: e.to_string(),
                })?;
        let ack_wait = (cfg.node_timeout * 3).max(Duration::from_secs(30));
        let queue = Arc::new(JetStreamQueue::new(js, ack_wait));
        queue.ensure().await.map_err(|e| ClusterError::JetStream {
            what: "the execution queue",
            message: e.to_string(),
        })?;
        let shared = Arc::new_cyclic(|weak| Shared {
            members: Members::new(&cfg.node_id, cfg.node_timeout),
            executor: Arc::new(ClusterExecutor::new(weak.clone())),
            cfg,
            client,
            kv,
            local,
            queue,
            running: AtomicU64::new(0),
            running_millicpu: AtomicU64::new(0),
            workers: AtomicU64::new(0),
            runtimes: Mutex::new(HashSet::new()),
            engine: OnceLock::new(),
            forwarded: Mutex::new(HashMap::new()),
            disconnects,
            joined: Instant::now(),
        });
        let cluster = Cluster { shared };
        cluster.subscribe().await?;
        cluster.announce().await;
        cluster.beat().await;
        tokio::spawn(cluster.clone().announcements());
        tokio::spawn(cluster.clone().heartbeats());
        tracing::info!(node = %cluster.shared.cfg.node_name, id = %cluster.shared.cfg.node_id, nats = %cluster.shared.cfg.url, capacity = %cluster.shared.cfg.capacity, "joined the cluster");
        Ok(cluster)
    }

    /// Where executions run: on this node or forwarded to another.
    pub fn executor(&self) -> Arc<dyn Executor> {
        self.shared.executor.clone()
    }

    /// The async queue all nodes share.
    pub fn queue(&self) -> Arc<dyn qinling_engine::AsyncQueue> {
        self.shared.queue.clone()
    }

    pub fn members(&self) -> &Members {
        &self.shared.members
    }

    /// From now on, the executions of nodes the cluster loses are failed through `engine`.
    pub fn watch(&self, engine: Engine) {
        let _ = self.shared.engine.set(engine);
    }

    /// Leaves the cluster (graceful stop): the others stop placing executions here at once.
    pub async fn leave(&self) {
        let _ = self.shared.kv.delete(&self.shared.cfg.node_id).await;
        let _ = self.shared.client.flush().await;
    }

    async fn subscribe(&self) -> Result<(), ClusterError> {
        let subject = format!("{NODE_SUBJECT}.{}", self.shared.cfg.node_id);
        let sub_err = |e: async_nats::SubscribeError| ClusterError::Connect {
            url: self.shared.cfg.url.clone(),
            message: e.to_string(),
        };
        let mut requests = self
            .shared
            .client
            .subscribe(subject)
            .await
            .map_err(sub_err)?;
        let mut broadcasts = self
            .shared
            .client
            .subscribe(ALL_SUBJECT)
            .await
            .map_err(sub_err)?;
        let shared = self.shared.clone();
        tokio::spawn(async move {
            while let Some(message) = requests.next().await {
                let shared = shared.clone();
                tokio::spawn(async move { executor::serve_request(&shared, message).await });
            }
        });
        let shared = self.shared.clone();
        tokio::spawn(async move {
            while let Some(message) = broadcasts.next().await {
                executor::apply_broadcast(&shared, &message.payload);
            }
        });
        Ok(())
    }

    /// This node's record, as of now.
    fn record(&self) -> NodeRecord {
        let s = &self.shared;
        let stats = s.local.stats();
        let workers: u64 = stats
            .workers_per_function
            .iter()
            .map(|(_, n)| *n as u64)
            .sum();
        s.workers.store(workers, Ordering::Relaxed);
        NodeRecord {
            id: s.cfg.node_id.clone(),
            name: s.cfg.node_name.clone(),
            address: s.cfg.address.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            capacity: s.cfg.capacity.to_string(),
            running: s.running.load(Ordering::Relaxed),
            workers,
            pools: stats.pools,
            at: qinling_types::format_precise(qinling_types::now()),
        }
    }

    /// Puts this node's record in the bucket: the heartbeat the others judge it by.
    async fn announce(&self) {
        let s = &self.shared;
        let record = serde_json::to_vec(&self.record()).expect("a node record serializes");
        let bound = s.cfg.node_timeout.max(Duration::from_secs(1));
        match tokio::time::timeout(bound, s.kv.put(&s.cfg.node_id, record.into())).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::debug!(%error, "could not announce this node"),
            Err(_) => tracing::debug!("announcing this node timed out"),
        }
    }

    /// The announcing loop, on a task of its own: nothing else this node does (reading the
    /// bucket, judging, sweeping the database) can delay its heartbeat, so a busy node is
    /// not taken for a lost one.
    async fn announcements(self) {
        let mut tick = tokio::time::interval(self.shared.cfg.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.announce().await;
        }
    }

    /// One look at the bucket: the others' records. `false` if NATS could not be read.
    async fn beat(&self) -> bool {
        let s = &self.shared;
        let bound = s.cfg.node_timeout.max(Duration::from_secs(1));
        let read = match tokio::time::timeout(bound, read_bucket(&s.kv)).await {
            Ok(read) => read,
            Err(_) => Err("reading the node bucket timed out".into()),
        };
        match read {
            Ok(entries) => {
                let now = Instant::now();
                let mut present = HashSet::new();
                for (revision, record) in entries {
                    present.insert(record.id.clone());
                    if s.members.observe(record.clone(), revision, now)
                        && record.id != s.cfg.node_id
                    {
                        tracing::info!(node = %record.name, id = %record.id, address = %record.address, "a node joined");
                    }
                }
                for (record, _) in s.members.all() {
                    if !present.contains(&record.id) {
                        tracing::info!(node = %record.name, id = %record.id, "a node left");
                        s.members.remove(&record.id);
                    }
                }
                true
            }
            Err(error) => {
                tracing::debug!(%error, "could not read the node bucket");
                false
            }
        }
    }

    /// The judging loop: read the bucket, judge, and every node timeout sweep the executions
    /// of nodes that are gone. (Announcing is `announcements`, apart.)
    async fn heartbeats(self) {
        let s = self.shared.clone();
        let mut blind = false;
        let mut last_sweep = Instant::now();
        let sweeping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        loop {
            tokio::time::sleep(s.cfg.heartbeat).await;
            let seen = self.beat().await;
            let now = Instant::now();
            if !seen {
                if !blind {
                    tracing::warn!("cannot reach NATS: judging no node until it is back");
                }
                blind = true;
                continue;
            }
            if blind {
                tracing::info!("NATS is reachable again");
                s.members.refresh(now);
                blind = false;
                continue;
            }
            for lost in s.members.expire(now) {
                tracing::warn!(node = %lost.name, id = %lost.id, "a node was lost: no heartbeat for {:?}", s.cfg.node_timeout);
                if let Some(engine) = s.engine.get() {
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        if let Err(error) = engine.node_lost(&lost.id, &lost.name).await {
                            tracing::warn!(%error, node = %lost.name, "could not fail the lost node's executions; the next sweep will");
                        }
                    });
                }
            }
            let settled = now.duration_since(s.joined) > s.cfg.node_timeout;
            if settled && now.duration_since(last_sweep) >= s.cfg.node_timeout {
                last_sweep = now;
                // On a task of its own (one at a time): a slow database must not hold up
                // this loop's reading and judging.
                if let Some(engine) = s.engine.get()
                    && !sweeping.swap(true, Ordering::AcqRel)
                {
                    let live: HashSet<String> =
                        s.members.live().into_iter().map(|r| r.id).collect();
                    let names: HashMap<String, String> = s
                        .members
                        .all()
                        .into_iter()
                        .map(|(r, _)| (r.id, r.name))
                        .collect();
                    let (engine, sweeping) = (engine.clone(), sweeping.clone());
                    tokio::spawn(async move {
                        if let Err(error) = engine.sweep_nodes(&live, &names).await {
                            tracing::warn!(%error, "sweeping the executions of lost nodes failed");
                        }
                        sweeping.store(false, Ordering::Release);
                    });
                }
            }
        }
    }
}

async fn ensure_bucket(
    js: &jetstream::Context,
    node_timeout: Duration,
) -> Result<kv::Store, async_nats::Error> {
    if let Ok(store) = js.get_key_value(BUCKET).await {
        return Ok(store);
    }
    // The bucket's stream is made here rather than with `create_key_value`, which first
    // asks for the account's info and cannot read the reply of servers before 2.10 (Debian's
    // 2.9 among them); the configuration is what `create_key_value` would make.
    let config = jetstream::stream::Config {
        name: format!("KV_{BUCKET}"),
        description: Some("qinling cluster members".into()),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        // A lost node's record is shown as lost for a while, then dropped.
        max_age: (node_timeout * 30).max(Duration::from_secs(300)),
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    match js.create_stream(config).await {
        Ok(_) => {}
        // Another node made it first.
        Err(error) if js.get_key_value(BUCKET).await.is_ok() => {
            tracing::debug!(%error, "the node bucket was made by another node");
        }
        Err(error) => return Err(error.into()),
    }
    Ok(js.get_key_value(BUCKET).await?)
}

/// Every node record in the bucket, with its revision.
async fn read_bucket(store: &kv::Store) -> Result<Vec<(u64, NodeRecord)>, async_nats::Error> {
    // The keys from the stream's subject list (one request), not `Store::keys`, whose ordered
    // consumer was seen to wait forever while other nodes put records into the bucket.
    let mut subjects = store
        .stream
        .info_with_subjects(format!("{}>", store.prefix))
        .await?;
    let mut keys = Vec::new();
    while let Some((subject, _)) = futures_util::TryStreamExt::try_next(&mut subjects).await? {
        if let Some(key) = subject.strip_prefix(store.prefix.as_str()) {
            keys.push(key.to_string());
        }
    }
    let mut out = Vec::new();
    for key in keys {
        if let Some(entry) = store.entry(&key).await?
            && entry.operation == kv::Operation::Put
            && let Ok(record) = serde_json::from_slice::<NodeRecord>(&entry.value)
        {
            out.push((entry.revision, record));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_reads_workers_or_millicpu() {
        assert_eq!(NodeCapacity::parse("64"), Ok(NodeCapacity::Workers(64)));
        assert_eq!(NodeCapacity::parse("8w"), Ok(NodeCapacity::Workers(8)));
        assert_eq!(
            NodeCapacity::parse("8000m"),
            Ok(NodeCapacity::MilliCpu(8000))
        );
        for bad in ["", "0", "-1", "many", "8 cores", "1.5"] {
            let e = NodeCapacity::parse(bad).unwrap_err();
            assert!(e.contains("capacity must be"), "{bad}: {e}");
        }
        assert_eq!(NodeCapacity::Workers(3).to_string(), "3 workers");
        assert_eq!(NodeCapacity::MilliCpu(500).to_string(), "500 millicpu");
    }
}
