//! End-to-end tests of the `qinling` binary: each test starts a real server on a temporary
//! data directory and a free port and talks to it over HTTP, as users and clients do.
//! One integration binary, one module per resource (STYLE rule 8).

#![allow(
    clippy::disallowed_methods,
    reason = "the tests start the server binary itself, the one process no sandbox runs"
)]

mod harness;

mod aliases;
mod auth;
mod bad_input;
mod cli;
mod cluster;
mod dashboard;
mod executions;
mod functions;
mod hostile;
mod hostile_hardening;
mod jobs;
mod local;
mod metrics;
mod openapi;
mod postgres;
mod recovery;
mod reuse;
mod runtimes;
mod runtimes_custom;
mod runtimes_node;
mod runtimes_wasm;
mod traces;
mod usage;
mod versions;
mod webhooks;
mod workers;
