//! The nodes of the platform as the engine sees them: `GET /v1/nodes` (the executor's
//! cluster, or this server alone), and what happens to a node's executions when the
//! cluster loses it — they are failed with a message naming the node, and queued
//! executions nobody has run for a while are offered to the queue again. Also whether this
//! server is ready for requests (`GET /readyz`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use qinling_executor::NodeInfo;
use qinling_types::{Error, ExecutionId, RequestContext};

use crate::Engine;

/// Queued executions older than this are offered to the queue again by a node sweep.
const STALE_QUEUED: Duration = Duration::from_secs(30);

/// Most stale queued executions offered again per sweep.
const STALE_BATCH: i64 = 1000;

/// The text a lost node's executions are failed with.
pub fn lost_message(node_name: &str) -> String {
    format!(
        "The node {node_name} running the execution was lost (it stopped sending heartbeats); the execution did not complete."
    )
}

impl Engine {
    /// The nodes of the platform (admin only: the route's policy says so).
    pub async fn list_nodes(&self, _ctx: &RequestContext) -> Result<Vec<NodeInfo>, Error> {
        let nodes = self.inner.executor.nodes().await;
        if !nodes.is_empty() {
            return Ok(nodes);
        }
        // A server on its own is a platform of one node.
        let stats = self.inner.executor.stats();
        let cfg = &self.inner.config;
        Ok(vec![NodeInfo {
            id: self.inner.store.node().unwrap_or_default().to_string(),
            name: cfg.node_name.clone(),
            address: cfg.node_address.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            capacity: "unlimited".into(),
            running: self.inner.tasks.count() as u64,
            workers: stats
                .workers_per_function
                .iter()
                .map(|(_, n)| *n as u64)
                .sum(),
            last_heartbeat: qinling_types::format_precise(qinling_types::now()),
            status: "up".into(),
        }])
    }

    /// Fails the executions a lost node was running; returns how many.
    pub async fn node_lost(&self, node_id: &str, node_name: &str) -> Result<u64, Error> {
        let failed = self
            .inner
            .store
            .fail_node_executions(node_id, &lost_message(node_name))
            .await?;
        if failed > 0 {
            tracing::warn!(
                node = node_name,
                node_id,
                failed,
                "failed the executions of a lost node"
            );
        }
        Ok(failed)
    }

    /// One sweep of a cluster node: fails the executions of every node that runs some but is
    /// not among `live` (`names` gives the names of nodes seen before), and offers queued
    /// executions that have waited long to the queue again (the node that accepted one may
    /// have been lost before its queue had it). Idempotent; every node may run it.
    pub async fn sweep_nodes(
        &self,
        live: &HashSet<String>,
        names: &HashMap<String, String>,
    ) -> Result<(), Error> {
        for node in self.inner.store.running_nodes().await? {
            if live.contains(&node) || Some(node.as_str()) == self.inner.store.node() {
                continue;
            }
            let name = names.get(&node).cloned().unwrap_or_else(|| node.clone());
            self.node_lost(&node, &name).await?;
        }
        let before = qinling_types::now() - STALE_QUEUED;
        for id in self.inner.store.queued_before(before, STALE_BATCH).await? {
            self.enqueue(ExecutionId::from(id)).await;
        }
        Ok(())
    }
}

impl Engine {
    /// Whether this server can take requests now: its database answers. (`GET /readyz`.)
    pub async fn ready(&self) -> Result<(), Error> {
        Ok(self.inner.store.ping().await?)
    }
}
