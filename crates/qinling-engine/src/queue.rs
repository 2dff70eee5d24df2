//! The async queue the dispatcher takes recorded executions from: [`AsyncQueue`], with
//! [`LocalQueue`] (a channel in this process, for a server on its own) and, in a cluster,
//! a JetStream work queue that all nodes pull from (`qinling-cluster`). Either way the row
//! in the store is the truth: the queue only says "run this id", the dispatcher claims the
//! row with a conditional update, so an id offered twice still runs once.

use std::sync::Arc;
use std::time::Duration;

use qinling_types::ExecutionId;
use tokio::sync::{Mutex, mpsc};

/// Where accepted async executions wait for a dispatcher.
#[async_trait::async_trait]
pub trait AsyncQueue: Send + Sync + 'static {
    /// Offers a recorded execution (durably, where the queue is durable). `Err` says why
    /// it could not; the row stays queued and is offered again.
    async fn push(&self, id: &ExecutionId) -> Result<(), String>;
    /// The next execution to run; waits for one. `None` once the queue is closed.
    async fn next(&self) -> Option<Box<dyn Delivery>>;
}

/// One execution handed to a dispatcher.
#[async_trait::async_trait]
pub trait Delivery: Send + Sync {
    fn id(&self) -> &ExecutionId;
    /// Still running it (called every few seconds while it runs, so a durable queue does
    /// not hand it to someone else).
    async fn working(&self);
    /// Done with it: it ran and its outcome is recorded, or it was not ours to run.
    async fn done(self: Box<Self>);
    /// It could not be claimed now (the database is unreachable): offer it again `after`.
    async fn retry(self: Box<Self>, after: Duration);
}

/// A queue in this process's memory (the row in the store is what survives a restart:
/// recovery offers queued rows again).
pub struct LocalQueue {
    tx: mpsc::UnboundedSender<ExecutionId>,
    rx: Mutex<mpsc::UnboundedReceiver<ExecutionId>>,
}

impl LocalQueue {
    pub fn new() -> Arc<LocalQueue> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(LocalQueue {
            tx,
            rx: Mutex::new(rx),
        })
    }
}

#[async_trait::async_trait]
impl AsyncQueue for LocalQueue {
    async fn push(&self, id: &ExecutionId) -> Result<(), String> {
        self.tx
            .send(id.clone())
            .map_err(|_| "the dispatcher has stopped".to_string())
    }

    async fn next(&self) -> Option<Box<dyn Delivery>> {
        let id = self.rx.lock().await.recv().await?;
        Some(Box::new(LocalDelivery {
            id,
            tx: self.tx.clone(),
        }))
    }
}

struct LocalDelivery {
    id: ExecutionId,
    tx: mpsc::UnboundedSender<ExecutionId>,
}

#[async_trait::async_trait]
impl Delivery for LocalDelivery {
    fn id(&self) -> &ExecutionId {
        &self.id
    }

    async fn working(&self) {}

    async fn done(self: Box<Self>) {}

    async fn retry(self: Box<Self>, after: Duration) {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = self.tx.send(self.id);
        });
    }
}
