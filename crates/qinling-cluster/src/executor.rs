//! [`ClusterExecutor`]: the cluster behind the execution seam. A run goes to the function
//! version's home node (rendezvous order over the live nodes); a node at its capacity or at
//! the version's worker cap answers "busy" at once and the next node in the order takes it
//! (spill-over); when every node is busy the home queues it. A run on another node is a
//! NATS request carrying the [`RunRequest`]; its reply is the [`Report`]. If that node is
//! lost while the run is out, the caller gets [`End::Lost`] at once rather than waiting.
//! The worker operations span the nodes: listing asks every node, scaling goes to the home,
//! releasing and forgetting are broadcast. This file also answers other nodes' requests.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use qinling_executor::{
    Capacity, Definition, End, Executor, ExecutorError, FunctionKey, Load, NodeInfo, Report,
    RunRequest, Stats, WorkerInfo,
};
use qinling_types::RuntimeKind;

use crate::wire::{self, Broadcast, BroadcastOp, Reply, Request};
use crate::{ALL_SUBJECT, NODE_SUBJECT, NodeCapacity, Shared, placement};

/// How long a request that is not a run (list, scale) waits for a node.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a worker listing waits for each node.
const LIST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a node keeps the report of a run another node sent, for that node to ask again.
const KEEP_REPORTS: Duration = Duration::from_secs(600);

/// A run another node sent here: its report once it has one.
pub(crate) struct ForwardedRun {
    report: tokio::sync::watch::Sender<Option<wire::Rep>>,
    done: Option<Instant>,
}

pub struct ClusterExecutor {
    shared: Weak<Shared>,
}

/// How a forwarded run went.
enum Forwarded {
    Ran(Report),
    /// The node is at capacity; try the next.
    Busy,
    /// Nobody there (it left, or never got the request): try the next.
    Gone,
}

impl ClusterExecutor {
    pub(crate) fn new(shared: Weak<Shared>) -> ClusterExecutor {
        ClusterExecutor { shared }
    }

    fn shared(&self) -> Arc<Shared> {
        self.shared
            .upgrade()
            .expect("the cluster outlives its executor")
    }
}

impl Shared {
    fn me(&self) -> &str {
        &self.cfg.node_id
    }

    /// The live nodes in the order they serve `key`.
    fn order(&self, key: &FunctionKey) -> Vec<String> {
        let live = self.members.live();
        let mut ids: Vec<&str> = live.iter().map(|r| r.id.as_str()).collect();
        if !ids.contains(&self.me()) {
            // Not yet seen in the bucket (or NATS is away): this node still runs things.
            ids.push(self.me());
        }
        placement::order(&placement::key(&key.function_id, key.version), &ids)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Whether this node should turn `req` away to the next node: the version is at its
    /// worker cap here, or the node at its declared capacity.
    fn busy_for(&self, req: &RunRequest) -> bool {
        let load = self.local.load(&req.key);
        if load.is_some_and(|l| l.at_capacity) {
            return true;
        }
        match self.cfg.capacity {
            NodeCapacity::Workers(cap) => {
                // Only an execution that needs a new worker (or is in-process) adds one.
                let needs_worker = match load {
                    None => true,
                    Some(l) => l.workers.is_none_or(|w| w == 0),
                };
                let in_process = u64::from(req.definition.kind.runs_in_process());
                let used = self.workers.load(Ordering::Relaxed)
                    + in_process * self.running.load(Ordering::Relaxed);
                needs_worker && used >= cap
            }
            NodeCapacity::MilliCpu(cap) => {
                let used = self.running_millicpu.load(Ordering::Relaxed);
                used > 0 && used + u64::from(req.definition.cpu_millis) > cap
            }
        }
    }

    /// Runs `req` on this node.
    pub(crate) async fn run_here(&self, req: &RunRequest) -> Report {
        self.register_runtime(&req.definition.runtime_id, req.definition.kind);
        let cpu = u64::from(req.definition.cpu_millis);
        self.running.fetch_add(1, Ordering::Relaxed);
        self.running_millicpu.fetch_add(cpu, Ordering::Relaxed);
        let report = self.local.run(req).await;
        self.running.fetch_sub(1, Ordering::Relaxed);
        self.running_millicpu.fetch_sub(cpu, Ordering::Relaxed);
        report
    }

    /// A runtime another node created: its pool starts here on first use.
    fn register_runtime(&self, runtime_id: &str, kind: RuntimeKind) {
        let mut known = self.runtimes.lock().expect("runtimes lock");
        if known.insert(runtime_id.to_string()) {
            self.local.add_runtime(runtime_id, kind);
        }
    }

    async fn request(
        &self,
        node: &str,
        body: &Request,
        timeout: Duration,
    ) -> Result<Reply, async_nats::RequestError> {
        let payload = serde_json::to_vec(body).expect("a request serializes");
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(timeout));
        let message = self
            .client
            .send_request(format!("{NODE_SUBJECT}.{node}"), request)
            .await?;
        Ok(
            serde_json::from_slice(&message.payload).unwrap_or(Reply::Error {
                message: "an unreadable reply".into(),
            }),
        )
    }

    /// Runs `req` on `node`. A run is keyed by its execution id at the node, so when this
    /// node's NATS connection drops while the run is out (the request or the reply may be
    /// lost with it), the run is asked for again once connected: the node runs it if the
    /// request never came, or answers with the report of the run it has.
    async fn forward(&self, node: &str, req: &RunRequest, must_accept: bool) -> Forwarded {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            // NATS is away: a request would wait for it; run here instead.
            return Forwarded::Gone;
        }
        let body = Request::Run {
            run: req.into(),
            must_accept,
        };
        // Longer than the function may run, plus a wait for a worker at a busy home.
        let timeout = req.definition.timeout * 2 + Duration::from_secs(60);
        let deadline = tokio::time::Instant::now() + timeout;
        let name = self.members.name_of(node);
        let lost = || {
            Forwarded::Ran(Report::ended(End::Lost(
                qinling_engine::nodes::lost_message(&name),
            )))
        };
        let reply = loop {
            let mut disconnects = self.disconnects.subscribe();
            disconnects.borrow_and_update();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            tokio::select! {
                reply = self.request(node, &body, left) => break reply,
                _ = self.members.wait_lost(node) => return lost(),
                _ = disconnects.changed() => {}
            }
            tracing::info!(node = %name, execution_id = %req.execution_id(), "NATS dropped while a run was out; asking for it again");
            let connected = async {
                while self.client.connection_state() != async_nats::connection::State::Connected {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            tokio::select! {
                _ = connected => {}
                _ = self.members.wait_lost(node) => return lost(),
                _ = tokio::time::sleep_until(deadline) => break Err(async_nats::RequestErrorKind::TimedOut.into()),
            }
        };
        match reply {
            Ok(Reply::Report(rep)) => Forwarded::Ran(rep.into()),
            Ok(Reply::Busy) => Forwarded::Busy,
            Ok(other) => {
                tracing::warn!(node = %name, ?other, "a node answered a run with something else");
                Forwarded::Gone
            }
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Forwarded::Gone,
            Err(e) if e.kind() == async_nats::RequestErrorKind::TimedOut => {
                Forwarded::Ran(Report::ended(End::Lost(format!(
                    "The node {name} running the execution did not answer within {}s; the execution's outcome is unknown.",
                    timeout.as_secs()
                ))))
            }
            Err(error) => {
                // Not sent (NATS is away): run it elsewhere.
                tracing::warn!(%error, node = %name, "could not forward an execution");
                Forwarded::Gone
            }
        }
    }

    /// Answers a run another node sent: runs it, unless this node has (or had) it already —
    /// then the answer is that run's report, once there is one.
    async fn serve_run(&self, req: RunRequest, must_accept: bool) -> Reply {
        let id = req.execution_id().to_string();
        let known = {
            let mut runs = self.forwarded.lock().expect("forwarded lock");
            match runs.get(&id) {
                Some(run) => Some(run.report.subscribe()),
                None if !must_accept && self.busy_for(&req) => return Reply::Busy,
                None => {
                    let now = Instant::now();
                    runs.retain(|_, r| r.done.is_none_or(|at| now - at < KEEP_REPORTS));
                    let (tx, _) = tokio::sync::watch::channel(None);
                    runs.insert(
                        id.clone(),
                        ForwardedRun {
                            report: tx,
                            done: None,
                        },
                    );
                    None
                }
            }
        };
        let Some(mut report) = known else {
            let rep = fit(self, wire::Rep::from(&self.run_here(&req).await));
            let mut runs = self.forwarded.lock().expect("forwarded lock");
            if let Some(run) = runs.get_mut(&id) {
                run.report.send_replace(Some(rep.clone()));
                run.done = Some(Instant::now());
            }
            return Reply::Report(rep);
        };
        match report.wait_for(Option::is_some).await {
            Ok(rep) => Reply::Report(rep.clone().expect("waited for a report")),
            Err(_) => Reply::Error {
                message: "the run ended without a report".into(),
            },
        }
    }

    fn broadcast(&self, op: BroadcastOp) {
        let message = Broadcast {
            from: self.me().to_string(),
            op,
        };
        let payload = serde_json::to_vec(&message).expect("a broadcast serializes");
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Err(error) = client.publish(ALL_SUBJECT, payload.into()).await {
                tracing::warn!(%error, "could not tell the other nodes");
            }
        });
    }

    fn too_large(&self, req: &RunRequest) -> bool {
        let input = req.input.to_wire().map_or(0, |i| i.len());
        // Leave room for the rest of the request.
        input + 64 * 1024 > self.client.server_info().max_payload
    }
}

#[async_trait::async_trait]
impl Executor for ClusterExecutor {
    fn name(&self) -> &'static str {
        "cluster"
    }

    async fn prepare(
        &self,
        kind: RuntimeKind,
        package: Arc<Vec<u8>>,
        sha256: &str,
        entry: Option<&str>,
    ) -> Result<Option<String>, ExecutorError> {
        self.shared()
            .local
            .prepare(kind, package, sha256, entry)
            .await
    }

    fn load(&self, key: &FunctionKey) -> Option<Load> {
        self.shared().local.load(key)
    }

    async fn run(&self, req: &RunRequest) -> Report {
        let s = self.shared();
        if s.too_large(req) {
            return s.run_here(req).await;
        }
        let order = s.order(&req.key);
        for node in &order {
            if node == s.me() {
                if !s.busy_for(req) {
                    return s.run_here(req).await;
                }
                continue;
            }
            match s.forward(node, req, false).await {
                Forwarded::Ran(report) => return report,
                Forwarded::Busy | Forwarded::Gone => continue,
            }
        }
        // Every node is busy: wait at the home node.
        let home = order.first().map(String::as_str).unwrap_or(s.me());
        if home != s.me()
            && let Forwarded::Ran(report) = s.forward(home, req, true).await
        {
            return report;
        }
        s.run_here(req).await
    }

    fn add_runtime(&self, runtime_id: &str, kind: RuntimeKind) {
        self.shared().register_runtime(runtime_id, kind);
    }

    fn remove_runtime(&self, runtime_id: &str) {
        let s = self.shared();
        s.runtimes.lock().expect("runtimes lock").remove(runtime_id);
        s.local.remove_runtime(runtime_id);
        s.broadcast(BroadcastOp::RemoveRuntime {
            runtime_id: runtime_id.to_string(),
        });
    }

    async fn probe(&self, kind: RuntimeKind) -> Result<(), ExecutorError> {
        self.shared().local.probe(kind).await
    }

    fn capacity(&self, runtime_id: &str) -> Option<Capacity> {
        let s = self.shared();
        let mut total = s.local.capacity(runtime_id);
        for record in s.members.live() {
            if record.id == s.me() {
                continue;
            }
            for (id, available, target) in &record.pools {
                if id == runtime_id {
                    let c = total.get_or_insert(Capacity {
                        total: 0,
                        available: 0,
                    });
                    c.total += (*target).max(*available);
                    c.available += available;
                }
            }
        }
        total
    }

    fn network_unavailable(&self, kind: RuntimeKind) -> Option<String> {
        self.shared().local.network_unavailable(kind)
    }

    async fn workers(&self, function_id: &str, version: Option<i64>) -> Vec<WorkerInfo> {
        let s = self.shared();
        let mut out: Vec<WorkerInfo> = s
            .local
            .workers(function_id, version)
            .await
            .into_iter()
            .map(|mut w| {
                w.node = Some(s.cfg.node_name.clone());
                w
            })
            .collect();
        let others: Vec<_> = s
            .members
            .live()
            .into_iter()
            .filter(|r| r.id != s.me())
            .collect();
        let body = Request::Workers {
            function_id: function_id.to_string(),
            version,
        };
        let replies = futures_util::future::join_all(
            others.iter().map(|r| s.request(&r.id, &body, LIST_TIMEOUT)),
        )
        .await;
        for (record, reply) in others.iter().zip(replies) {
            match reply {
                Ok(Reply::Workers { workers }) => {
                    out.extend(workers.into_iter().map(|w| w.info(&record.name)));
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(node = %record.name, "a node did not list its workers");
                }
            }
        }
        out.sort_by(|a, b| {
            (a.function_version, &a.node, &a.worker_name).cmp(&(
                b.function_version,
                &b.node,
                &b.worker_name,
            ))
        });
        out
    }

    async fn scale_up(
        &self,
        key: &FunctionKey,
        definition: &Definition,
        count: usize,
    ) -> Result<(), ExecutorError> {
        let s = self.shared();
        let order = s.order(key);
        let home = order.first().map(String::as_str).unwrap_or(s.me());
        if home == s.me() {
            s.register_runtime(&definition.runtime_id, definition.kind);
            return s.local.scale_up(key, definition, count).await;
        }
        let body = Request::ScaleUp {
            key: key.into(),
            definition: definition.into(),
            count,
        };
        match s.request(home, &body, ADMIN_TIMEOUT).await {
            Ok(Reply::Done) => Ok(()),
            Ok(Reply::Error { message }) => Err(ExecutorError::Internal {
                what: format!("scaling up on node {}", s.members.name_of(home)),
                message,
            }),
            Ok(_) => Err(ExecutorError::Internal {
                what: format!("scaling up on node {}", s.members.name_of(home)),
                message: "an unexpected reply".into(),
            }),
            Err(error) => Err(ExecutorError::internal(
                format!("scaling up on node {}", s.members.name_of(home)),
                error,
            )),
        }
    }

    fn scale_down(&self, key: &FunctionKey, count: usize) {
        // Spill-over nodes give up workers first, the home last.
        let s = self.shared();
        let mut order = s.order(key);
        order.reverse();
        let key = key.clone();
        let shared = s.clone();
        tokio::spawn(async move {
            let mut left = count;
            for node in order {
                if left == 0 {
                    break;
                }
                let before = if node == shared.me() {
                    shared
                        .local
                        .workers(&key.function_id, Some(key.version))
                        .await
                        .len()
                } else {
                    match shared
                        .request(
                            &node,
                            &Request::Workers {
                                function_id: key.function_id.clone(),
                                version: Some(key.version),
                            },
                            LIST_TIMEOUT,
                        )
                        .await
                    {
                        Ok(Reply::Workers { workers }) => workers.len(),
                        _ => 0,
                    }
                };
                if before == 0 {
                    continue;
                }
                // A node keeps its last worker; so does the function as a whole.
                let take = left.min(before.saturating_sub(1).max(1));
                if node == shared.me() {
                    shared.local.scale_down(&key, take);
                } else {
                    let _ = shared
                        .request(
                            &node,
                            &Request::ScaleDown {
                                key: (&key).into(),
                                count: take,
                            },
                            LIST_TIMEOUT,
                        )
                        .await;
                }
                left -= take;
            }
        });
    }

    fn release(&self, function_id: &str, version: Option<i64>) {
        let s = self.shared();
        s.local.release(function_id, version);
        s.broadcast(BroadcastOp::Release {
            function_id: function_id.to_string(),
            version,
        });
    }

    fn evict(&self, definition: &Definition) {
        let s = self.shared();
        s.local.evict(definition);
        s.broadcast(BroadcastOp::Evict {
            definition: definition.into(),
        });
    }

    async fn forget_package(&self, sha256: &str) {
        let s = self.shared();
        s.local.forget_package(sha256).await;
        s.broadcast(BroadcastOp::Forget {
            sha256: sha256.to_string(),
        });
    }

    fn stats(&self) -> Stats {
        self.shared().local.stats()
    }

    async fn nodes(&self) -> Vec<NodeInfo> {
        let s = self.shared();
        s.members
            .all()
            .into_iter()
            .map(|(r, lost)| NodeInfo {
                id: r.id,
                name: r.name,
                address: r.address,
                version: r.version,
                capacity: r.capacity,
                running: r.running,
                workers: r.workers,
                last_heartbeat: r.at,
                status: if lost { "lost" } else { "up" }.to_string(),
            })
            .collect()
    }

    fn shutdown(&self) {
        self.shared().local.shutdown();
    }
}

/// Answers another node's request.
pub(crate) async fn serve_request(shared: &Shared, message: async_nats::Message) {
    let Some(reply_to) = message.reply.clone() else {
        return;
    };
    let reply = match serde_json::from_slice::<Request>(&message.payload) {
        Err(error) => Reply::Error {
            message: format!("an unreadable request: {error}"),
        },
        Ok(Request::Run { run, must_accept }) => match run.request() {
            Err(message) => Reply::Error { message },
            Ok(req) => shared.serve_run(req, must_accept).await,
        },
        Ok(Request::Workers {
            function_id,
            version,
        }) => Reply::Workers {
            workers: shared
                .local
                .workers(&function_id, version)
                .await
                .iter()
                .map(wire::Worker::from)
                .collect(),
        },
        Ok(Request::ScaleUp {
            key,
            definition,
            count,
        }) => match definition.definition() {
            Err(message) => Reply::Error { message },
            Ok(definition) => {
                shared.register_runtime(&definition.runtime_id, definition.kind);
                match shared.local.scale_up(&key.into(), &definition, count).await {
                    Ok(()) => Reply::Done,
                    Err(e) => Reply::Error {
                        message: e.to_string(),
                    },
                }
            }
        },
        Ok(Request::ScaleDown { key, count }) => {
            shared.local.scale_down(&key.into(), count);
            Reply::Done
        }
    };
    let payload = serde_json::to_vec(&reply).expect("a reply serializes");
    if let Err(error) = shared.client.publish(reply_to, payload.into()).await {
        tracing::warn!(%error, "could not answer another node");
    }
}

/// A report small enough for one NATS message: a log past what fits keeps its end.
fn fit(shared: &Shared, mut rep: wire::Rep) -> wire::Rep {
    let max = shared.client.server_info().max_payload;
    let size = |r: &wire::Rep| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len()) + 1024;
    if size(&rep) <= max {
        return rep;
    }
    let over = size(&rep) - max;
    if over < rep.logs.len() {
        let mut cut = over + 64;
        while !rep.logs.is_char_boundary(cut) {
            cut += 1;
        }
        rep.logs = format!(
            "[log cut to fit the cluster's message size]\n{}",
            &rep.logs[cut..]
        );
    } else {
        rep.logs.clear();
    }
    if size(&rep) > max {
        rep.end = "failed".into();
        rep.output = serde_json::Value::String(format!(
            "The result is larger than the cluster's message size ({max} bytes)."
        ));
    }
    rep
}

/// Applies another node's broadcast to this node.
pub(crate) fn apply_broadcast(shared: &Shared, payload: &[u8]) {
    let Ok(message) = serde_json::from_slice::<Broadcast>(payload) else {
        return;
    };
    if message.from == shared.me() {
        return;
    }
    match message.op {
        BroadcastOp::Release {
            function_id,
            version,
        } => shared.local.release(&function_id, version),
        BroadcastOp::Evict { definition } => {
            if let Ok(d) = definition.definition() {
                shared.local.evict(&d);
            }
        }
        BroadcastOp::Forget { sha256 } => {
            let local = shared.local.clone();
            tokio::spawn(async move { local.forget_package(&sha256).await });
        }
        BroadcastOp::RemoveRuntime { runtime_id } => {
            shared
                .runtimes
                .lock()
                .expect("runtimes lock")
                .remove(&runtime_id);
            shared.local.remove_runtime(&runtime_id);
        }
    }
}
