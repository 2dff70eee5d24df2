//! The command-line client: `qinling runtime|function|execution …` over the v1 HTTP API.
//! It knows only the wire format, never the server's crates, so it can talk to any
//! Qinling-compatible endpoint.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum CliCommand {}

pub fn main(cmd: CliCommand) -> std::process::ExitCode {
    match cmd {}
}
