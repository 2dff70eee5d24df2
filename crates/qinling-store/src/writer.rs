//! The execution writer: the writes of the execution hot path (record, claim, finish) go
//! through one task that owns one connection and applies whatever has queued up since its
//! last commit in one transaction (group commit).
//!
//! Why: through the pool, every statement is a round trip to a connection's thread plus a
//! ping when the connection is returned, and 8 connections writing at once contend for
//! SQLite's single write lock, whose busy handler sleeps for milliseconds. Measured on the
//! 2-core benchmark machine: an insert in its own transaction costs ~80 µs on a dedicated
//! connection, the same insert in a transaction of 16 costs ~15 µs, and under 16 clients the
//! pooled path spent ~11 ms per execution in the store (`ARCHITECTURE.md`, "Decisions").
//!
//! Guarantees:
//! - an operation's future resolves only once the transaction holding it has committed, or
//!   with the error of the operation itself;
//! - one queue, one connection: batches are applied in the order their operations were
//!   submitted; within a batch, operations are grouped by kind (each kind in submission
//!   order) so that a kind writes many rows with one statement ([`WriteOp::apply_all`]);
//! - a failing operation fails alone: the batch is rolled back and its operations are applied
//!   again one transaction each, so no result of a rolled-back batch is ever reported;
//! - [`Writer::close`] applies everything submitted before it, then closes the connection;
//!   what is submitted after fails with [`StoreError::Closed`].
//!
//! Everything else (functions, runtimes, reads) keeps using the pool: those are rare, or
//! reads, which WAL lets run beside the writer.
//!
//! Checkpoints: SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, fsyncing the WAL and the database file while that batch's callers wait (every
//! ~40 lone executions: most of the single-client p99). The writer's connection has it turned
//! off; the writer checkpoints itself instead, after it has answered a batch and found its
//! queue empty, once [`CHECKPOINT_EVERY`] batches have passed, or regardless after
//! [`FORCE_CHECKPOINT_EVERY`]. Being the only writer, its checkpoints complete, so the WAL
//! starts over and stays small. (A checkpointer on a connection of its own, beside the
//! writer, was tried: frames appended during each checkpoint kept the WAL from ever
//! starting over, and it grew to 13-26 MB over 3000 small transactions.)

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor, PgPool, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::db::{DbConn, on_conn};
use crate::{Result, StoreError};

/// Most operations in one transaction; a longer queue is applied in several.
const MAX_BATCH: usize = 512;

/// Batches after which the writer checkpoints when it is idle (SQLite's own default is
/// every 1000 pages; a lone execution's batch writes about 10).
const CHECKPOINT_EVERY: u64 = 64;

/// Batches after which the writer checkpoints even though operations are waiting.
const FORCE_CHECKPOINT_EVERY: u64 = 256;

const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";

/// One write: a few statements applied on the writer's connection. The writer decides the
/// transaction around them; an operation must not begin, commit or roll back itself.
///
/// Within a batch the writer applies the operations grouped by kind (each kind in the order
/// submitted) so that a kind can apply many at once with a few statements (`apply_all`).
/// So operations must not depend on the effects of other operations of the same batch; the
/// execution operations do not: a caller submits an operation on an execution only once the
/// previous one on it has committed.
pub(crate) trait WriteOp: Send + Sync + Sized + 'static {
    type Output: Send + 'static;

    /// Whether the operation is one statement, atomic on its own, so that alone it needs
    /// no explicit transaction (one round trip instead of three).
    fn single_statement(&self) -> bool;

    fn apply<'c>(
        &'c self,
        conn: &'c mut DbConn<'_>,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'c;

    /// Applies `ops`, returning one output per operation in the same order. By default one
    /// by one; a kind can do better (every statement is a round trip to the connection's
    /// thread).
    fn apply_all<'c>(
        ops: &'c [&'c Self],
        conn: &'c mut DbConn<'_>,
    ) -> impl Future<Output = Result<Vec<Self::Output>>> + Send + 'c {
        async move {
            let mut outputs = Vec::with_capacity(ops.len());
            for op in ops {
                outputs.push(op.apply(&mut *conn).await?);
            }
            Ok(outputs)
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Applies jobs that are all of one kind (see [`run_all`]).
type RunAll =
    for<'c, 'd> fn(&'c mut [Box<dyn Job>], &'c mut DbConn<'d>) -> BoxFuture<'c, Result<()>>;

/// A submitted operation with its caller's reply channel, type-erased for the queue.
trait Job: Send {
    fn single_statement(&self) -> bool;
    /// The operation's kind: jobs of one kind are applied together by its [`RunAll`].
    fn kind(&self) -> TypeId;
    fn run_all(&self) -> RunAll;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Answers the caller: the kept output if `result` is `Ok`, else the error.
    fn complete(self: Box<Self>, result: Result<()>);
}

struct Pending<T: WriteOp> {
    op: T,
    output: Option<T::Output>,
    reply: oneshot::Sender<Result<(T::Output, T)>>,
}

impl<T: WriteOp> Job for Pending<T> {
    fn single_statement(&self) -> bool {
        self.op.single_statement()
    }

    fn kind(&self) -> TypeId {
        TypeId::of::<T>()
    }

    fn run_all(&self) -> RunAll {
        run_all::<T>
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn complete(self: Box<Self>, result: Result<()>) {
        let Pending { op, output, reply } = *self;
        let answer = result.map(|()| {
            let output = output.expect("a job that ran successfully has kept its output");
            (output, op)
        });
        // The caller may have gone away (its request was cancelled); the write stands.
        let _ = reply.send(answer);
    }
}

/// Applies `jobs`, all `Pending<T>`, with [`WriteOp::apply_all`], and keeps each output in
/// its job until the transaction's end.
fn run_all<'c, 'd, T: WriteOp>(
    jobs: &'c mut [Box<dyn Job>],
    conn: &'c mut DbConn<'d>,
) -> BoxFuture<'c, Result<()>> {
    fn pending<T: WriteOp>(job: &dyn Job) -> &Pending<T> {
        job.as_any()
            .downcast_ref()
            .expect("jobs applied together are of one kind")
    }
    Box::pin(async move {
        let outputs = {
            let ops: Vec<&T> = jobs.iter().map(|j| &pending::<T>(&**j).op).collect();
            T::apply_all(&ops, conn).await?
        };
        if outputs.len() != jobs.len() {
            return Err(StoreError::Corrupt {
                table: "executions",
                what: format!("{} outputs for {} writes", outputs.len(), jobs.len()),
            });
        }
        for (job, output) in jobs.iter_mut().zip(outputs) {
            let job: &mut Pending<T> = job
                .as_any_mut()
                .downcast_mut()
                .expect("jobs applied together are of one kind");
            job.output = Some(output);
        }
        Ok(())
    })
}

enum Msg {
    Job(Box<dyn Job>),
    Close(oneshot::Sender<()>),
}

/// Where the writer's connection comes from.
pub(crate) enum WriterConn {
    /// A connection of its own, opened with `wal_autocheckpoint = 0` (file databases).
    SqliteOwn(SqliteConnection),
    /// A connection taken from the pool for each transaction: for the in-memory database,
    /// where every connection would be a different database.
    SqlitePool(SqlitePool),
    /// PostgreSQL: a connection from the pool for each transaction, so that a connection
    /// lost with a restart of the database is replaced by the pool, not by the writer.
    Postgres(PgPool),
}

/// Counters of the writer, for tests and diagnostics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions (or lone single-statement writes) applied.
    pub batches: u64,
    /// Operations applied, successfully or not.
    pub ops: u64,
    /// Batches that failed and were applied again one operation at a time.
    pub retried_batches: u64,
    /// WAL checkpoints run by the writer.
    pub checkpoints: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    ops: AtomicU64,
    retried_batches: AtomicU64,
    checkpoints: AtomicU64,
}

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Msg>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn start(conn: WriterConn) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(conn, rx, counters.clone()));
        Writer { tx, counters }
    }

    /// Queues `op` and waits until it is committed.
    pub(crate) async fn submit<T: WriteOp>(&self, op: T) -> Result<T::Output> {
        Ok(self.submit_with(op).await?.0)
    }

    /// As [`Writer::submit`], and gives the operation back, so that what it was made of
    /// need not be cloned to be used afterwards.
    pub(crate) async fn submit_with<T: WriteOp>(&self, op: T) -> Result<(T::Output, T)> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            op,
            output: None,
            reply,
        });
        self.tx
            .send(Msg::Job(job))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Applies everything queued so far, then stops the writer and closes its connection.
    /// Idempotent.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            ops: self.counters.ops.load(Ordering::Relaxed),
            retried_batches: self.counters.retried_batches.load(Ordering::Relaxed),
            checkpoints: self.counters.checkpoints.load(Ordering::Relaxed),
        }
    }
}

async fn run(conn: WriterConn, mut rx: mpsc::UnboundedReceiver<Msg>, counters: Arc<Counters>) {
    let mut conn = conn;
    let mut closing = None;
    let mut batch: Vec<Box<dyn Job>> = Vec::new();
    let mut since_checkpoint = 0u64;
    // Ends when close is asked for, or when every handle is gone and the queue is empty.
    while closing.is_none() {
        let Some(first) = rx.recv().await else { break };
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Job(job) => batch.push(job),
                Msg::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        apply_batch(&mut conn, std::mem::take(&mut batch), &counters).await;
        // The batch is answered; a checkpoint now delays only what arrives meanwhile.
        since_checkpoint += 1;
        if let WriterConn::SqliteOwn(c) = &mut conn
            && (since_checkpoint >= FORCE_CHECKPOINT_EVERY
                || (since_checkpoint >= CHECKPOINT_EVERY && rx.is_empty()))
        {
            since_checkpoint = 0;
            checkpoint(c, &counters).await;
        }
    }
    // What was queued after the close is dropped with the receiver: those callers get
    // `Closed`, as do callers that submit from now on.
    drop(rx);
    if let WriterConn::SqliteOwn(c) = conn
        && let Err(error) = c.close().await
    {
        tracing::warn!(%error, "closing the writer's connection failed");
    }
    tracing::info!(
        ops = counters.ops.load(Ordering::Relaxed),
        transactions = counters.batches.load(Ordering::Relaxed),
        checkpoints = counters.checkpoints.load(Ordering::Relaxed),
        "execution writer stopped"
    );
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

async fn checkpoint(conn: &mut SqliteConnection, counters: &Counters) {
    counters.checkpoints.fetch_add(1, Ordering::Relaxed);
    if let Err(error) = conn.execute(CHECKPOINT).await {
        // The next one will try again; meanwhile the WAL grows.
        tracing::warn!(%error, "WAL checkpoint failed");
    }
}

async fn apply_batch(conn: &mut WriterConn, mut batch: Vec<Box<dyn Job>>, counters: &Counters) {
    counters.batches.fetch_add(1, Ordering::Relaxed);
    counters
        .ops
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    let result = transaction(conn, &mut batch).await;
    match result {
        Ok(()) => {
            for job in batch {
                job.complete(Ok(()));
            }
        }
        Err(error) if batch.len() == 1 => {
            if let Some(job) = batch.pop() {
                job.complete(Err(error));
            }
        }
        Err(error) => {
            // Nothing of the batch was committed. Apply each operation in its own
            // transaction, so that only the ones that fail by themselves report an error.
            tracing::debug!(%error, ops = batch.len(), "write batch failed; applying its operations one by one");
            counters.retried_batches.fetch_add(1, Ordering::Relaxed);
            for mut job in batch {
                let result = transaction(conn, std::slice::from_mut(&mut job)).await;
                job.complete(result);
            }
        }
    }
}

/// Applies `jobs` in one transaction (none for a lone single statement); on any error the
/// transaction is rolled back and the error returned.
async fn transaction(conn: &mut WriterConn, jobs: &mut [Box<dyn Job>]) -> Result<()> {
    let explicit = !(jobs.len() == 1 && jobs[0].single_statement());
    match conn {
        WriterConn::SqliteOwn(c) => in_transaction(&mut DbConn::Sqlite(c), explicit, jobs).await,
        WriterConn::SqlitePool(pool) => {
            let mut c = pool.acquire().await?;
            in_transaction(&mut DbConn::Sqlite(&mut c), explicit, jobs).await
        }
        WriterConn::Postgres(pool) => {
            let mut c = pool.acquire().await?;
            in_transaction(&mut DbConn::Postgres(&mut c), explicit, jobs).await
        }
    }
}

async fn in_transaction(
    c: &mut DbConn<'_>,
    explicit: bool,
    jobs: &mut [Box<dyn Job>],
) -> Result<()> {
    if explicit {
        // SQLite: IMMEDIATE takes the write lock now (waiting through the busy timeout if
        // another connection holds it) rather than fail on upgrade halfway through the batch.
        match c {
            DbConn::Sqlite(c) => c.execute("BEGIN IMMEDIATE").await.map(drop)?,
            DbConn::Postgres(c) => c.execute("BEGIN").await.map(drop)?,
        };
    }
    // Group by kind, keeping the order of first appearance and, within a kind, of
    // submission (a stable sort).
    let mut kinds: Vec<TypeId> = Vec::new();
    for job in jobs.iter() {
        if !kinds.contains(&job.kind()) {
            kinds.push(job.kind());
        }
    }
    if kinds.len() > 1 {
        jobs.sort_by_key(|j| kinds.iter().position(|k| *k == j.kind()));
    }
    let mut result = Ok(());
    let mut rest = jobs;
    while !rest.is_empty() && result.is_ok() {
        let kind = rest[0].kind();
        let n = rest.iter().take_while(|j| j.kind() == kind).count();
        let (group, tail) = rest.split_at_mut(n);
        result = (group[0].run_all())(group, c).await;
        rest = tail;
    }
    if explicit {
        if result.is_ok() {
            result = on_conn!(c, |c| c.execute("COMMIT").await.map(|_| ())).map_err(Into::into);
        }
        if result.is_err() {
            // Also after a failed COMMIT, which leaves the transaction open. An error here
            // means there is no transaction left to roll back.
            let _ = on_conn!(c, |c| c.execute("ROLLBACK").await.map(|_| ()));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::Row;
    use sqlx::sqlite::SqliteConnectOptions;

    use super::*;

    /// Appends `value` to `t`; a duplicate fails on the unique constraint.
    struct Put(i64);

    impl WriteOp for Put {
        type Output = i64;

        fn single_statement(&self) -> bool {
            true
        }

        async fn apply(&self, conn: &mut DbConn<'_>) -> Result<i64> {
            on_conn!(conn, |c| sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind(self.0)
                .execute(&mut **c)
                .await
                .map(drop)?);
            Ok(self.0)
        }
    }

    /// Two statements: a counter bump, then an insert into `t` (which may fail).
    struct CountedPut(i64);

    impl WriteOp for CountedPut {
        type Output = ();

        fn single_statement(&self) -> bool {
            false
        }

        async fn apply(&self, conn: &mut DbConn<'_>) -> Result<()> {
            on_conn!(conn, |c| sqlx::query("UPDATE c SET n = n + 1")
                .execute(&mut **c)
                .await
                .map(drop)?);
            Put(self.0).apply(conn).await.map(|_| ())
        }
    }

    async fn setup(path: Option<&std::path::Path>) -> (SqlitePool, Writer) {
        let opts = match path {
            Some(p) => SqliteConnectOptions::from_str("sqlite://")
                .unwrap()
                .filename(p)
                .create_if_missing(true),
            None => SqliteConnectOptions::from_str("sqlite::memory:").unwrap(),
        };
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS t (seq INTEGER PRIMARY KEY, v INTEGER NOT NULL UNIQUE);
             CREATE TABLE IF NOT EXISTS c (n INTEGER NOT NULL);
             INSERT INTO c SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM c);",
        )
        .execute(&pool)
        .await
        .unwrap();
        let conn = match path {
            Some(_) => WriterConn::SqliteOwn(SqliteConnection::connect_with(&opts).await.unwrap()),
            None => WriterConn::SqlitePool(pool.clone()),
        };
        (pool, Writer::start(conn))
    }

    async fn values(pool: &SqlitePool) -> Vec<i64> {
        sqlx::query("SELECT v FROM t ORDER BY seq")
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn counter(pool: &SqlitePool) -> i64 {
        sqlx::query_scalar("SELECT n FROM c")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_queue_is_applied_in_order_in_one_transaction() {
        let (pool, w) = setup(None).await;
        // Submitted before the writer task runs (single-threaded runtime): one batch.
        let (a, b, c) = tokio::join!(w.submit(Put(3)), w.submit(Put(1)), w.submit(Put(2)));
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (3, 1, 2));
        assert_eq!(values(&pool).await, vec![3, 1, 2]);
        assert_eq!(
            w.stats(),
            WriterStats {
                batches: 1,
                ops: 3,
                retried_batches: 0,
                checkpoints: 0,
            }
        );
    }

    #[tokio::test]
    async fn a_batch_is_applied_grouped_by_kind() {
        let (pool, w) = setup(None).await;
        let (a, b, c, d) = tokio::join!(
            w.submit(Put(1)),
            w.submit(CountedPut(2)),
            w.submit(Put(3)),
            w.submit(CountedPut(4)),
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok() && d.is_ok());
        // Kinds in the order they first came, each kind in the order submitted.
        assert_eq!(values(&pool).await, vec![1, 3, 2, 4]);
        assert_eq!(w.stats().batches, 1);
    }

    #[tokio::test]
    async fn a_failing_operation_fails_alone() {
        let (pool, w) = setup(None).await;
        let (a, dup, b, c) = tokio::join!(
            w.submit(CountedPut(1)),
            w.submit(CountedPut(1)),
            w.submit(CountedPut(2)),
            w.submit(Put(3)),
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert!(matches!(dup, Err(StoreError::Db(_))), "{dup:?}");
        assert_eq!(values(&pool).await, vec![1, 2, 3]);
        // The failed operation's counter bump was rolled back with it.
        assert_eq!(counter(&pool).await, 2);
        let stats = w.stats();
        assert_eq!(stats.retried_batches, 1);
        assert_eq!(stats.batches, 1);
    }

    #[tokio::test]
    async fn a_lone_failure_reports_its_error() {
        let (pool, w) = setup(None).await;
        w.submit(CountedPut(7)).await.unwrap();
        assert!(w.submit(CountedPut(7)).await.is_err());
        assert!(w.submit(Put(7)).await.is_err());
        w.submit(Put(8)).await.unwrap();
        assert_eq!(values(&pool).await, vec![7, 8]);
        assert_eq!(counter(&pool).await, 1);
    }

    #[tokio::test]
    async fn close_applies_what_was_queued_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sqlite");
        let (pool, w) = setup(Some(&path)).await;
        let (a, b, (), late) = tokio::join!(
            w.submit(Put(1)),
            w.submit(CountedPut(2)),
            w.close(),
            w.submit(Put(3)),
        );
        assert!(a.is_ok() && b.is_ok());
        assert!(matches!(late, Err(StoreError::Closed)), "{late:?}");
        assert!(matches!(w.submit(Put(4)).await, Err(StoreError::Closed)));
        w.close().await;
        assert_eq!(values(&pool).await, vec![1, 2]);
        assert_eq!(counter(&pool).await, 1);
    }

    /// Automatic checkpoints are off on the writer's connection: its own must keep the WAL
    /// from growing (3000 transactions of 3 pages would make it ~37 MB).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoints_keep_the_wal_small() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        let store = crate::Store::open(&path).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE t (seq INTEGER PRIMARY KEY, v INTEGER NOT NULL UNIQUE);
             CREATE TABLE c (n INTEGER NOT NULL); INSERT INTO c VALUES (0);",
        )
        .execute(store.sqlite_pool())
        .await
        .unwrap();
        for i in 0..3000 {
            store.writer.submit(CountedPut(i)).await.unwrap();
        }
        assert_eq!(counter(store.sqlite_pool()).await, 3000);
        let wal = std::fs::metadata(dir.path().join("q.sqlite-wal"))
            .unwrap()
            .len();
        let stats = store.writer_stats();
        assert!(stats.checkpoints >= 2, "{stats:?}");
        assert!(wal < 4 << 20, "WAL of {wal} bytes after {stats:?}");
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_submitters_are_all_answered() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, w) = setup(Some(&dir.path().join("w.sqlite"))).await;
        let tasks: Vec<_> = (0..400)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move { w.submit(CountedPut(i)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(values(&pool).await.len(), 400);
        assert_eq!(counter(&pool).await, 400);
        assert_eq!(w.stats().ops, 400);
        w.close().await;
    }
}
