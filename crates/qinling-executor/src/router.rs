//! [`Executors`]: the executors a server has, one per runtime kind, behind the one
//! [`Executor`] trait. Calls that name a kind (a run, a probe) go to that kind's executor;
//! calls that name only a function (workers, release, load) ask each executor, as any of
//! them may hold something of it.

use std::collections::HashMap;
use std::sync::Arc;

use qinling_types::RuntimeKind;

use crate::{
    Capacity, Definition, End, Executor, ExecutorError, FunctionKey, Load, Report, RunRequest,
    Stats, WorkerInfo,
};

/// Executors by runtime kind. Built once by the server binary.
#[derive(Clone, Default)]
pub struct Executors {
    by_kind: HashMap<RuntimeKind, Arc<dyn Executor>>,
    /// Each distinct executor once, in the order added.
    all: Vec<Arc<dyn Executor>>,
}

impl Executors {
    pub fn new() -> Executors {
        Executors::default()
    }

    /// Runs functions of `kinds` on `executor` (a later call for a kind replaces it).
    pub fn with(mut self, kinds: &[RuntimeKind], executor: Arc<dyn Executor>) -> Executors {
        for kind in kinds {
            self.by_kind.insert(*kind, executor.clone());
        }
        if !self.all.iter().any(|e| Arc::ptr_eq(e, &executor)) {
            self.all.push(executor);
        }
        self
    }

    fn of(&self, kind: RuntimeKind) -> Result<&Arc<dyn Executor>, ExecutorError> {
        self.by_kind.get(&kind).ok_or_else(|| {
            ExecutorError::Unavailable(format!(
                "this server does not run functions of the {} runtime",
                kind.as_str()
            ))
        })
    }
}

#[async_trait::async_trait]
impl Executor for Executors {
    fn name(&self) -> &'static str {
        "executors"
    }

    async fn prepare(
        &self,
        kind: RuntimeKind,
        package: Arc<Vec<u8>>,
        sha256: &str,
        entry: Option<&str>,
    ) -> Result<Option<String>, ExecutorError> {
        self.of(kind)?.prepare(kind, package, sha256, entry).await
    }

    fn load(&self, key: &FunctionKey) -> Option<Load> {
        self.all.iter().find_map(|e| e.load(key))
    }

    async fn run(&self, req: &RunRequest) -> Report {
        match self.of(req.definition.kind) {
            Ok(e) => e.run(req).await,
            Err(_) => Report::ended(End::Unavailable),
        }
    }

    fn add_runtime(&self, runtime_id: &str, kind: RuntimeKind) {
        if let Ok(e) = self.of(kind) {
            e.add_runtime(runtime_id, kind);
        }
    }

    fn remove_runtime(&self, runtime_id: &str) {
        for e in &self.all {
            e.remove_runtime(runtime_id);
        }
    }

    async fn probe(&self, kind: RuntimeKind) -> Result<(), ExecutorError> {
        self.of(kind)?.probe(kind).await
    }

    fn capacity(&self, runtime_id: &str) -> Option<Capacity> {
        self.all.iter().find_map(|e| e.capacity(runtime_id))
    }

    fn network_unavailable(&self, kind: RuntimeKind) -> Option<String> {
        match self.of(kind) {
            Ok(e) => e.network_unavailable(kind),
            Err(e) => Some(e.to_string()),
        }
    }

    async fn workers(&self, function_id: &str, version: Option<i64>) -> Vec<WorkerInfo> {
        let mut out = Vec::new();
        for e in &self.all {
            out.extend(e.workers(function_id, version).await);
        }
        out
    }

    async fn scale_up(
        &self,
        key: &FunctionKey,
        definition: &Definition,
        count: usize,
    ) -> Result<(), ExecutorError> {
        self.of(definition.kind)?
            .scale_up(key, definition, count)
            .await
    }

    fn scale_down(&self, key: &FunctionKey, count: usize) {
        for e in &self.all {
            e.scale_down(key, count);
        }
    }

    fn release(&self, function_id: &str, version: Option<i64>) {
        for e in &self.all {
            e.release(function_id, version);
        }
    }

    fn evict(&self, definition: &Definition) {
        if let Ok(e) = self.of(definition.kind) {
            e.evict(definition);
        }
    }

    async fn forget_package(&self, sha256: &str) {
        for e in &self.all {
            e.forget_package(sha256).await;
        }
    }

    fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        for e in &self.all {
            stats.merge(e.stats());
        }
        stats
    }

    fn shutdown(&self) {
        for e in &self.all {
            e.shutdown();
        }
    }
}
