//! `qinling serve`: configuration (defaults ← TOML file ← `QINLING_*` env ← flags), wiring
//! of the store, package store, sandbox backend, pool and engine, and the HTTP server with
//! graceful shutdown. This is the only place that chooses backends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use qinling_executor::{Executor, Executors, Packages};
use qinling_pool::{Pool, PoolConfig};
use qinling_sandbox::Sandbox;
use qinling_types::RuntimeKind;
use serde::Deserialize;

/// `qinling serve` flags. Every flag also reads `QINLING_<NAME>` from the environment and
/// the key of the same name from the config file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML). Default: `<data-dir>/qinling.toml` if it exists.
    #[arg(long, env = "QINLING_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where state lives: the SQLite database, packages, runtime shims.
    #[arg(long, env = "QINLING_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the platform's state lives: `postgres://user:password@host/db` for a
    /// PostgreSQL database that several servers may share. Default: SQLite in the data dir.
    #[arg(long, env = "QINLING_DATABASE")]
    pub database: Option<String>,
    /// PostgreSQL: connections in this server's pool.
    #[arg(long, env = "QINLING_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    /// PostgreSQL: seconds after which a statement is cancelled (its request gets a 503).
    #[arg(long, env = "QINLING_DATABASE_STATEMENT_TIMEOUT")]
    pub database_statement_timeout: Option<u64>,
    /// PostgreSQL: seconds a request waits for a database connection before a 503.
    #[arg(long, env = "QINLING_DATABASE_ACQUIRE_TIMEOUT")]
    pub database_acquire_timeout: Option<u64>,
    /// Address to listen on.
    #[arg(long, env = "QINLING_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Connections the kernel queues for the API before it is ready to accept them (capped
    /// by `net.core.somaxconn`).
    #[arg(long, env = "QINLING_LISTEN_BACKLOG")]
    pub listen_backlog: Option<u32>,
    /// Pre-started workers per runtime (0 turns the pool off).
    #[arg(long, env = "QINLING_POOL_SIZE")]
    pub pool_size: Option<usize>,
    /// Running executions per worker above which a function gets another worker.
    #[arg(long, env = "QINLING_FUNCTION_CONCURRENCY")]
    pub function_concurrency: Option<usize>,
    /// Most workers one function may have; beyond, executions wait for a free slot.
    #[arg(long, env = "QINLING_MAX_WORKERS_PER_FUNCTION")]
    pub max_workers_per_function: Option<usize>,
    /// Most sync executions of one function waiting for a slot; beyond, HTTP 429.
    #[arg(long, env = "QINLING_MAX_WAITING_PER_FUNCTION")]
    pub max_waiting_per_function: Option<usize>,
    /// Seconds after which an idle function worker is released (scale to zero).
    #[arg(long, env = "QINLING_WORKER_IDLE_TIMEOUT")]
    pub worker_idle_timeout: Option<u64>,
    /// Largest accepted package, in bytes.
    #[arg(long, env = "QINLING_MAX_PACKAGE_BYTES")]
    pub max_package_bytes: Option<u64>,
    /// Most members a zip package may have.
    #[arg(long, env = "QINLING_MAX_PACKAGE_ENTRIES")]
    pub max_package_entries: Option<u64>,
    /// Largest total size of a package's members once unpacked, in bytes.
    #[arg(long, env = "QINLING_MAX_UNPACKED_PACKAGE_BYTES")]
    pub max_unpacked_package_bytes: Option<u64>,
    /// Largest accepted execution input, in bytes.
    #[arg(long, env = "QINLING_MAX_INPUT_BYTES")]
    pub max_input_bytes: Option<usize>,
    /// The python3 interpreter for the python3 runtime.
    #[arg(long, env = "QINLING_PYTHON")]
    pub python: Option<PathBuf>,
    /// The node executable for the nodejs runtime.
    #[arg(long, env = "QINLING_NODE")]
    pub node: Option<PathBuf>,
    /// Whether functions may be created with outbound network access (`network=true`).
    #[arg(long, env = "QINLING_ALLOW_NETWORK", value_name = "BOOL")]
    pub allow_network: Option<bool>,
    /// The slirp4netns executable that gives networked functions egress. Default: found on
    /// `PATH`.
    #[arg(long, env = "QINLING_SLIRP4NETNS")]
    pub slirp4netns: Option<PathBuf>,
    /// Authentication: `none` (project `default`, admin), `token` or `keystone`.
    #[arg(long, env = "QINLING_AUTH")]
    pub auth: Option<String>,
    /// Keystone URL for `--auth keystone`.
    #[arg(long, env = "QINLING_KEYSTONE_URL")]
    pub keystone_url: Option<String>,
    /// Policy file (JSON or TOML, action = "rule") overriding the default policy.
    #[arg(long, env = "QINLING_POLICY_FILE")]
    pub policy_file: Option<PathBuf>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "QINLING_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Run functions as plain processes with no isolation. Only for trusted code on a
    /// development machine.
    #[arg(long, env = "QINLING_INSECURE_NO_SANDBOX")]
    pub insecure_no_sandbox: bool,
    /// The server's public base URL (e.g. `https://faas.example.com`), used in webhook URLs.
    /// Default: the `Host` of each request.
    #[arg(long, env = "QINLING_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Invocations of one webhook allowed per minute (0: unlimited).
    #[arg(long, env = "QINLING_WEBHOOK_INVOCATIONS_PER_MINUTE")]
    pub webhook_invocations_per_minute: Option<u32>,
    /// Join a cluster: the NATS server(s) with JetStream, `nats://host:4222` (needs
    /// `--database postgres://…`, shared by every node).
    #[arg(long, env = "QINLING_CLUSTER")]
    pub cluster: Option<String>,
    /// This node's name in the cluster. Default: the host name.
    #[arg(long, env = "QINLING_NODE_NAME")]
    pub node_name: Option<String>,
    /// This node's API URL as other nodes and clients reach it. Default: `http://<listen>`.
    #[arg(long, env = "QINLING_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// What this node may run at once: workers (`64`) or millicpu (`8000m`).
    #[arg(long, env = "QINLING_CAPACITY")]
    pub capacity: Option<String>,
    /// Seconds without a heartbeat after which a node is lost and its executions failed.
    #[arg(long, env = "QINLING_NODE_TIMEOUT")]
    pub node_timeout: Option<u64>,
    /// Export execution traces over OTLP/HTTP to this collector, `http://host:4318` (spans
    /// go to `/v1/traces`; a URL with a path is used as it is). Default: off.
    #[arg(long, env = "QINLING_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// The effective configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `postgres://…`; `None`: SQLite at `<data_dir>/qinling.sqlite`.
    pub database: Option<String>,
    pub database_max_connections: u32,
    /// Seconds.
    pub database_statement_timeout: u64,
    /// Seconds.
    pub database_acquire_timeout: u64,
    pub listen: SocketAddr,
    /// The API socket's listen backlog.
    pub listen_backlog: u32,
    pub pool_size: usize,
    pub function_concurrency: usize,
    pub max_workers_per_function: usize,
    pub max_waiting_per_function: usize,
    /// Seconds after which an idle function worker is released.
    pub worker_idle_timeout: u64,
    pub max_package_bytes: u64,
    pub max_package_entries: u64,
    pub max_unpacked_package_bytes: u64,
    pub max_input_bytes: usize,
    pub python: PathBuf,
    pub node: PathBuf,
    /// Whether functions may have outbound network access (`network=true`).
    pub allow_network: bool,
    /// slirp4netns for networked functions; `None`: looked up on `PATH`.
    pub slirp4netns: Option<PathBuf>,
    pub log_format: String,
    pub insecure_no_sandbox: bool,
    pub limits: qinling_types::LimitRanges,
    /// Seconds running executions get to finish on SIGTERM.
    pub shutdown_grace_secs: u64,
    /// `[auth]`: mode, policy file, Keystone.
    pub auth: crate::auth::AuthConfig,
    /// `[quotas]`: default per-project limits.
    pub quotas: crate::auth::QuotasConfig,
    /// Public base URL for `webhook_url`; `None`: each request's `Host`.
    pub public_url: Option<String>,
    pub webhook_invocations_per_minute: u32,
    /// `nats://…` to join a cluster; `None`: a server on its own.
    pub cluster: Option<String>,
    /// `None`: the host name.
    pub node_name: Option<String>,
    /// `None`: `http://<listen>`.
    pub advertise_url: Option<String>,
    /// `64` (workers) or `8000m` (millicpu).
    pub capacity: String,
    /// Seconds.
    pub node_timeout: u64,
    /// OTLP/HTTP collector for execution traces; `None`: traces are not exported.
    pub otlp_endpoint: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            database: None,
            database_max_connections: 16,
            database_statement_timeout: 30,
            database_acquire_timeout: 5,
            listen: "127.0.0.1:7070".parse().expect("valid address"),
            listen_backlog: 4096,
            pool_size: 3,
            function_concurrency: 3,
            max_workers_per_function: 10,
            max_waiting_per_function: 100,
            worker_idle_timeout: 3600,
            max_package_bytes: 50 * 1024 * 1024,
            max_package_entries: 10_000,
            max_unpacked_package_bytes: 64 * 1024 * 1024,
            max_input_bytes: 1024 * 1024,
            python: PathBuf::from("python3"),
            node: PathBuf::from("node"),
            allow_network: true,
            slirp4netns: None,
            log_format: "text".into(),
            insecure_no_sandbox: false,
            limits: Default::default(),
            shutdown_grace_secs: 30,
            auth: Default::default(),
            quotas: Default::default(),
            public_url: None,
            webhook_invocations_per_minute: 60,
            cluster: None,
            node_name: None,
            advertise_url: None,
            capacity: "64".into(),
            node_timeout: 10,
            otlp_endpoint: None,
        }
    }
}

/// `$XDG_DATA_HOME/qinling` (`~/.local/share/qinling`), or `/var/lib/qinling` for root.
pub(crate) fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/qinling");
    }
    dirs::data_dir()
        .map(|d| d.join("qinling"))
        .unwrap_or_else(|| PathBuf::from(".qinling"))
}

impl Config {
    pub fn load(args: &ServeArgs) -> anyhow::Result<Config> {
        let data_dir_hint = args.data_dir.clone().unwrap_or_else(default_data_dir);
        let file = args.config.clone().or_else(|| {
            let p = data_dir_hint.join("qinling.toml");
            p.exists().then_some(p)
        });
        let mut cfg = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Config::default(),
        };
        if let Some(v) = &args.data_dir {
            cfg.data_dir = v.clone();
        }
        if let Some(v) = &args.database {
            cfg.database = Some(v.clone());
        }
        if let Some(v) = args.database_max_connections {
            cfg.database_max_connections = v;
        }
        if let Some(v) = args.database_statement_timeout {
            cfg.database_statement_timeout = v;
        }
        if let Some(v) = args.database_acquire_timeout {
            cfg.database_acquire_timeout = v;
        }
        cfg.database()?;
        if let Some(v) = args.listen {
            cfg.listen = v;
        }
        if let Some(v) = args.listen_backlog {
            cfg.listen_backlog = v;
        }
        if let Some(v) = args.pool_size {
            cfg.pool_size = v;
        }
        if let Some(v) = args.function_concurrency {
            cfg.function_concurrency = v;
        }
        if let Some(v) = args.max_workers_per_function {
            cfg.max_workers_per_function = v;
        }
        if let Some(v) = args.max_waiting_per_function {
            cfg.max_waiting_per_function = v;
        }
        if let Some(v) = args.worker_idle_timeout {
            cfg.worker_idle_timeout = v;
        }
        if let Some(v) = args.max_package_bytes {
            cfg.max_package_bytes = v;
        }
        if let Some(v) = args.max_package_entries {
            cfg.max_package_entries = v;
        }
        if let Some(v) = args.max_unpacked_package_bytes {
            cfg.max_unpacked_package_bytes = v;
        }
        if let Some(v) = args.max_input_bytes {
            cfg.max_input_bytes = v;
        }
        if let Some(v) = &args.python {
            cfg.python = v.clone();
        }
        if let Some(v) = &args.node {
            cfg.node = v.clone();
        }
        if let Some(v) = args.allow_network {
            cfg.allow_network = v;
        }
        if let Some(v) = &args.slirp4netns {
            cfg.slirp4netns = Some(v.clone());
        }
        if let Some(v) = &args.log_format {
            cfg.log_format = v.clone();
        }
        cfg.insecure_no_sandbox |= args.insecure_no_sandbox;
        if let Some(v) = &args.public_url {
            cfg.public_url = Some(v.clone());
        }
        if let Some(v) = args.webhook_invocations_per_minute {
            cfg.webhook_invocations_per_minute = v;
        }
        if let Some(url) = &cfg.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("public_url must start with http:// or https://, not '{url}'");
        }
        if let Some(v) = &args.auth {
            cfg.auth.mode = v.clone();
        }
        if let Some(v) = &args.keystone_url {
            cfg.auth.keystone_url = Some(v.clone());
        }
        if let Some(v) = &args.policy_file {
            cfg.auth.policy_file = Some(v.clone());
        }
        cfg.auth.validate()?;
        if let Some(v) = &args.cluster {
            cfg.cluster = Some(v.clone()).filter(|v| !v.is_empty());
        }
        if let Some(v) = &args.node_name {
            cfg.node_name = Some(v.clone());
        }
        if let Some(v) = &args.advertise_url {
            cfg.advertise_url = Some(v.clone());
        }
        if let Some(v) = &args.capacity {
            cfg.capacity = v.clone();
        }
        if let Some(v) = &args.otlp_endpoint {
            cfg.otlp_endpoint = Some(v.clone()).filter(|v| !v.is_empty());
        }
        if let Some(endpoint) = &cfg.otlp_endpoint {
            qinling_otlp::traces_url(endpoint).map_err(anyhow::Error::msg)?;
        }
        if let Some(v) = args.node_timeout {
            cfg.node_timeout = v;
        }
        qinling_cluster::NodeCapacity::parse(&cfg.capacity).map_err(anyhow::Error::msg)?;
        if cfg.node_timeout < 2 {
            bail!("node_timeout must be at least 2 seconds");
        }
        if let Some(name) = &cfg.node_name
            && (name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            bail!("node_name must be 1 to 64 letters, digits, '-', '_' or '.', not '{name}'");
        }
        if let Some(url) = &cfg.cluster {
            if !url.split(',').all(|u| u.trim().starts_with("nats://")) {
                bail!("cluster must be a NATS URL, nats://host:4222, not '{url}'");
            }
            if !matches!(&cfg.database, Some(d) if d.starts_with("postgres")) {
                bail!(
                    "a cluster needs a database the nodes share: add --database postgres://user:password@host/dbname"
                );
            }
        }
        if let Some(url) = &cfg.advertise_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("advertise_url must start with http:// or https://, not '{url}'");
        }
        if cfg.max_workers_per_function == 0 {
            bail!("max_workers_per_function must be at least 1");
        }
        if cfg.function_concurrency == 0 {
            bail!("function_concurrency must be at least 1");
        }
        if cfg.listen_backlog == 0 {
            bail!("listen_backlog must be at least 1");
        }
        if !matches!(cfg.log_format.as_str(), "text" | "json") {
            bail!(
                "log_format must be 'text' or 'json', not '{}'",
                cfg.log_format
            );
        }
        Ok(cfg)
    }
}

impl Config {
    /// Where the state lives, checked: a PostgreSQL URL, or SQLite in the data dir.
    /// The engine's part of the configuration.
    pub fn engine_config(
        &self,
        node_name: String,
        node_address: String,
    ) -> qinling_engine::EngineConfig {
        qinling_engine::EngineConfig {
            limits: self.limits,
            max_package_bytes: self.max_package_bytes,
            max_package_entries: self.max_package_entries,
            max_unpacked_package_bytes: self.max_unpacked_package_bytes,
            max_input_bytes: self.max_input_bytes,
            max_waiting_per_function: self.max_waiting_per_function,
            quotas: self.quotas.engine_config(&self.auth),
            webhook_invocations_per_minute: self.webhook_invocations_per_minute,
            node_name,
            node_address,
            ..Default::default()
        }
    }

    pub fn database(&self) -> anyhow::Result<qinling_store::Database> {
        database(
            self.database.as_deref(),
            &self.data_dir,
            qinling_store::PgConfig {
                max_connections: self.database_max_connections,
                statement_timeout: Duration::from_secs(self.database_statement_timeout),
                acquire_timeout: Duration::from_secs(self.database_acquire_timeout),
                ..qinling_store::PgConfig::new("")
            },
        )
    }
}

/// The database named by `url` (`postgres://…`), or SQLite in `data_dir` without one;
/// `pg` gives the pool's settings.
pub(crate) fn database(
    url: Option<&str>,
    data_dir: &std::path::Path,
    pg: qinling_store::PgConfig,
) -> anyhow::Result<qinling_store::Database> {
    match url {
        None | Some("") => Ok(qinling_store::Database::Sqlite(
            data_dir.join("qinling.sqlite"),
        )),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            if pg.max_connections < 2 {
                bail!("database_max_connections must be at least 2");
            }
            if pg.statement_timeout.is_zero() || pg.acquire_timeout.is_zero() {
                bail!(
                    "database_statement_timeout and database_acquire_timeout must be at least 1 second"
                );
            }
            Ok(qinling_store::Database::Postgres(qinling_store::PgConfig {
                url: url.to_string(),
                ..pg
            }))
        }
        Some(url) => {
            let scheme = url.split("://").next().unwrap_or(url);
            bail!(
                "unsupported database '{scheme}': use postgres://user:password@host/dbname, \
                 or leave `database` unset for SQLite in the data dir"
            )
        }
    }
}

/// The machine's host name (a node's default name).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "qinling".into())
}

/// This server's id among the servers sharing a database: made once, kept in
/// `<data-dir>/node-id`, so that it survives restarts (recovery after a restart fails only
/// the executions this server was running).
fn node_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        Ok(_) | Err(_) => {
            let id = qinling_types::new_id();
            std::fs::write(&path, format!("{id}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(id)
        }
    }
}

pub fn main(args: ServeArgs) -> std::process::ExitCode {
    let cfg = match Config::load(&args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("qinling serve: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&cfg.log_format);
    raise_nofile_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cfg)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "qinling serve failed");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QINLING_LOG")
        .unwrap_or_else(|_| "info".into());
    // Colour only for a terminal: logs read by tools (tests, journald, files) stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub(crate) fn choose_sandbox(cfg: &Config) -> anyhow::Result<Arc<dyn Sandbox>> {
    if cfg.insecure_no_sandbox {
        tracing::warn!(
            "!!! --insecure-no-sandbox: functions run as plain processes of this server's user, with NO isolation. Never use this with untrusted code. !!!"
        );
        return Ok(Arc::new(qinling_sandbox::ProcessSandbox));
    }
    sandbox_backend(cfg)
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    let sandbox = choose_sandbox(&cfg)?;
    for limit in sandbox.unenforced() {
        tracing::warn!(sandbox = sandbox.name(), "not enforced: {limit}");
    }
    if !cfg.allow_network {
        tracing::info!("functions may not have network access (allow_network = false)");
    } else if let Some(why) = sandbox.network_unavailable() {
        tracing::warn!(sandbox = sandbox.name(), "{why}");
    }
    let node_id = node_id(&cfg.data_dir)?;
    let store = qinling_store::Store::connect(&cfg.database()?)
        .await
        .context("opening the database")?
        .with_node(node_id.clone());
    let mut packages = qinling_engine::PackageStore::open(&cfg.data_dir.join("packages"))
        .context("opening the package directory")?;
    if store.backend() == "postgres" {
        // Servers sharing the database share packages through it; the directory caches.
        packages = packages.shared_in(store.clone());
    }
    let package_source: Arc<dyn Packages> = Arc::new(packages.clone());
    let executors = executors(&cfg, sandbox, package_source)?;
    let mut executor: Arc<dyn Executor> = Arc::new(executors);
    // Bound before the engine starts (requests queue in the backlog until it serves), so the
    // address a node announces is the one it got (`--listen 127.0.0.1:0` included).
    let listener = listen(cfg.listen, cfg.listen_backlog)
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let node_name = cfg.node_name.clone().unwrap_or_else(host_name);
    let address = cfg
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", listener.local_addr().unwrap_or(cfg.listen)));
    // In a cluster, executions run on this node or another (the cluster is one more
    // executor, around this node's), and async ones queue on JetStream.
    let mut queue: Arc<dyn qinling_engine::AsyncQueue> = qinling_engine::LocalQueue::new();
    let cluster = match &cfg.cluster {
        None => None,
        Some(url) => {
            let cluster = qinling_cluster::Cluster::join(
                qinling_cluster::ClusterConfig {
                    url: url.clone(),
                    node_id: node_id.clone(),
                    node_name: node_name.clone(),
                    address: address.clone(),
                    capacity: qinling_cluster::NodeCapacity::parse(&cfg.capacity)
                        .map_err(anyhow::Error::msg)?,
                    heartbeat: Duration::from_millis((cfg.node_timeout * 1000 / 5).max(200)),
                    node_timeout: Duration::from_secs(cfg.node_timeout),
                },
                executor,
            )
            .await?;
            executor = cluster.executor();
            queue = cluster.queue();
            Some(cluster)
        }
    };
    // Before the engine starts: the series it creates at start (each runtime's, at zero)
    // need the recorder.
    let metrics = install_metrics(cluster.as_ref().map(|_| node_name.as_str()))?;
    let mut engine_cfg = cfg.engine_config(node_name.clone(), address);
    let spans = match &cfg.otlp_endpoint {
        None => None,
        Some(endpoint) => {
            let url = qinling_otlp::traces_url(endpoint).map_err(anyhow::Error::msg)?;
            tracing::info!(%url, "exporting execution traces over OTLP");
            Some(
                qinling_otlp::OtlpExporter::start(
                    url,
                    qinling_otlp::ServiceInfo {
                        instance: node_name.clone(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                    },
                )
                .map_err(anyhow::Error::msg)?,
            )
        }
    };
    engine_cfg.spans = spans
        .clone()
        .map(|s| s as Arc<dyn qinling_types::trace::SpanSink>);
    let engine = qinling_engine::Engine::start_with_queue(
        store.clone(),
        executor,
        packages,
        engine_cfg,
        queue,
    )
    .await?;
    if let Some(cluster) = &cluster {
        cluster.watch(engine.clone());
    }
    let state = qinling_api::AppState {
        engine: engine.clone(),
        config: qinling_api::ApiConfig {
            max_package_body: cfg.max_package_bytes as usize + 1024 * 1024,
            max_body: cfg.max_input_bytes + 64 * 1024,
            public_url: cfg.public_url.clone(),
        },
        metrics: Some(metrics),
        auth: cfg.auth.build(&store)?,
    };
    let app = qinling_api::router(state);
    if cfg.auth.mode == "none" && !listener.local_addr()?.ip().is_loopback() {
        tracing::warn!(
            listen = %listener.local_addr()?,
            "!!! AUTHENTICATION IS OFF (auth mode 'none') and the API listens beyond loopback: anyone who can reach it is admin of project 'default' and can run code. Use --auth token or --auth keystone. !!!"
        );
    }
    tracing::info!(auth = %cfg.auth.mode, listen = %listener.local_addr()?, data_dir = %cfg.data_dir.display(), pool_size = cfg.pool_size, "qinling is serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("shutting down: finishing running executions");
    engine
        .shutdown(Duration::from_secs(cfg.shutdown_grace_secs))
        .await;
    if let Some(spans) = &spans {
        spans.shutdown(Duration::from_secs(5)).await;
    }
    if let Some(cluster) = &cluster {
        cluster.leave().await;
    }
    store.close().await;
    Ok(())
}

/// The one place that chooses where executions run: native runtimes (python3, nodejs,
/// custom) on pooled workers in `sandbox`, wasm in this process. Without node the nodejs
/// runtime, and without wasmtime's engine the wasm runtime, show `error`. `qinling serve`
/// and `qinling run` both run functions through this.
pub(crate) fn executors(
    cfg: &Config,
    sandbox: Arc<dyn Sandbox>,
    package_source: Arc<dyn Packages>,
) -> anyhow::Result<Executors> {
    let shim_dir = cfg.data_dir.join("runtimes");
    std::fs::create_dir_all(&shim_dir)
        .with_context(|| format!("creating {}", shim_dir.display()))?;
    let mut launchers = HashMap::new();
    let python = qinling_runtimes::python_launcher(&cfg.python, &shim_dir)
        .context("the python3 runtime (set --python or QINLING_PYTHON)")?;
    launchers.insert(
        RuntimeKind::Custom,
        qinling_runtimes::custom_launcher(&python, &shim_dir)?,
    );
    launchers.insert(RuntimeKind::Python3, python);
    // Node is optional: without it the nodejs runtime is registered but shows `error`.
    match qinling_runtimes::node_launcher(&cfg.node, &shim_dir) {
        Ok(launcher) => {
            launchers.insert(RuntimeKind::Nodejs, launcher);
        }
        Err(error) => tracing::warn!(
            error = format!("{error:#}"),
            "the nodejs runtime is unavailable (set --node or QINLING_NODE)"
        ),
    }
    // The one place that chooses where executions run: native runtimes on pooled workers
    // in the sandbox, wasm in this process (without the wasm runtime, wasm runtimes show
    // `error`).
    let pool = Pool::new(
        sandbox,
        PoolConfig {
            pool_size: cfg.pool_size,
            function_concurrency: cfg.function_concurrency,
            max_workers_per_function: cfg.max_workers_per_function,
            idle_timeout: Duration::from_secs(cfg.worker_idle_timeout),
            allow_network: cfg.allow_network,
            ..PoolConfig::default()
        },
        launchers,
        package_source.clone(),
    );
    let mut executors = Executors::new().with(
        &[
            RuntimeKind::Python3,
            RuntimeKind::Nodejs,
            RuntimeKind::Custom,
        ],
        Arc::new(pool),
    );
    let mut wasm_cfg = qinling_wasm::WasmConfig::new(cfg.data_dir.join("wasm"));
    wasm_cfg.max_memory_bytes = cfg.limits.memory.max;
    match qinling_wasm::WasmRuntime::new(wasm_cfg) {
        Ok(wasm) => {
            let in_flight = cfg.max_workers_per_function * cfg.function_concurrency;
            let wasm = qinling_wasm::WasmExecutor::new(
                wasm,
                package_source,
                in_flight,
                cfg.max_package_bytes,
            );
            executors = executors.with(&[RuntimeKind::Wasm], Arc::new(wasm));
        }
        Err(error) => {
            tracing::warn!(
                error = format!("{:#}", anyhow::Error::from(error)),
                "the wasm runtime is unavailable"
            );
        }
    }
    Ok(executors)
}

/// The API's socket. A burst of clients (a thousand sync requests at once) must queue in the
/// kernel rather than be refused or reset, so the backlog is ours to choose (tokio's `bind`
/// fixes it at 1024); the kernel caps it at `net.core.somaxconn`.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Raises this process's soft limit of open files to its hard limit: every connection of
/// a burst is a descriptor, and at the usual soft limit of 1,024 a thousand clients plus the
/// database and the workers' pipes would make `accept` fail. Workers are unaffected: the
/// sandbox sets their own limit.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Installs the Prometheus recorder for the `metrics` facade and returns its renderer.
/// Histograms get explicit buckets (seconds) so they aggregate across instances.
fn install_metrics(node: Option<&str>) -> anyhow::Result<qinling_api::MetricsRender> {
    const BUCKETS: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0, 300.0,
    ];
    let mut builder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .context("metric buckets")?;
    if let Some(node) = node {
        // Every series of a cluster node says which node it is.
        builder = builder.add_global_label("node", node);
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).context("installing the metrics recorder")?;
    qinling_api::describe_metrics();
    qinling_engine::metrics::describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(Arc::new(move || handle.render()))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The default sandbox backend.
fn sandbox_backend(cfg: &Config) -> anyhow::Result<Arc<dyn Sandbox>> {
    let slirp4netns = match &cfg.slirp4netns {
        Some(path) if path.is_file() => Some(path.clone()),
        Some(path) => bail!("slirp4netns {} does not exist", path.display()),
        None => qinling_sandbox::jail::find_slirp4netns(),
    };
    let jail = qinling_sandbox::JailSandbox::new(qinling_sandbox::JailConfig {
        slirp4netns,
        ..qinling_sandbox::JailConfig::default()
    })
    .context("setting up the jail sandbox")?;
    Ok(Arc::new(jail))
}
