//! The native runtimes (python3, nodejs, custom) in one place: their shims — the programs
//! that run inside a worker's sandbox and speak the worker protocol, embedded so the binary
//! is self-contained (`shims/`, [`shims`]) — the framed worker protocol itself
//! ([`protocol`], `docs/worker-protocol.md`), and how `serve` finds each runtime's
//! executable on the host and what the sandbox must show of it ([`Launcher`],
//! `launchers.rs`). The pool starts workers from these launchers and talks the protocol;
//! nothing here starts a worker or knows a sandbox.

mod launchers;
pub mod protocol;

pub use launchers::{LaunchError, Launcher, custom_launcher, node_launcher, python_launcher};

/// The runtime shims, embedded so the binary is self-contained.
pub mod shims {
    /// The python3 worker shim (`shims/python3.py`).
    pub const PYTHON3: &str = include_str!("../shims/python3.py");
    /// The nodejs worker shim (`shims/nodejs.js`): a supervisor and its executors.
    pub const NODEJS: &str = include_str!("../shims/nodejs.js");
    /// The custom-runtime worker shim (`shims/custom.py`): runs the package's own executable.
    pub const CUSTOM: &str = include_str!("../shims/custom.py");
}
