//! The pool's settings ([`PoolConfig`]), given by the server binary.

use std::time::Duration;

use qinling_sandbox::Limits;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Pre-started workers kept per runtime (0 = pool off: every worker starts on demand).
    pub pool_size: usize,
    /// Running executions per worker above which another worker is added.
    pub function_concurrency: usize,
    /// How long a starting worker may take to say it is ready.
    pub ready_timeout: Duration,
    /// How long loading a function (unzip + import) may take.
    pub bind_timeout: Duration,
    /// Limits of an unbound pool worker.
    pub pool_limits: Limits,
    /// Whether functions may be given outbound network access at all (an operator's switch;
    /// pre-started pool workers never have it).
    pub allow_network: bool,
    /// Most workers one function version may have (its concurrency limit is this times
    /// `function_concurrency`); beyond, executions wait for a free slot.
    pub max_workers_per_function: usize,
    /// A function worker idle this long is released (scale to zero).
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            pool_size: 3,
            function_concurrency: 3,
            ready_timeout: Duration::from_secs(20),
            bind_timeout: Duration::from_secs(60),
            pool_limits: Limits {
                memory_bytes: 256 * 1024 * 1024,
                cpu_millis: 1000,
                ..Limits::default()
            },
            allow_network: true,
            max_workers_per_function: 10,
            idle_timeout: Duration::from_secs(3600),
        }
    }
}
