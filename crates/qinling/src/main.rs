//! The `qinling` binary: `qinling serve` runs the platform; every other subcommand is the CLI,
//! which talks to a server over HTTP. This file only parses the command line and dispatches.

use qinling_cli as cli;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "qinling",
    version,
    about = "Qinling: self-hosted Function-as-a-Service"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: API server, engine, worker pools and sandboxes.
    Serve(serve::ServeArgs),
    #[command(flatten)]
    Cli(cli::CliCommand),
}

fn main() -> std::process::ExitCode {
    // When the jail re-executes this binary as a sandbox's init, it never returns from here.
    qinling_sandbox::jail::run_init_if_requested();
    let args = Args::parse();
    match args.command {
        Command::Serve(serve_args) => serve::main(serve_args),
        Command::Cli(cmd) => cli::main(cmd),
    }
}
