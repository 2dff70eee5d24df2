//! The `qinling` binary: `qinling serve` runs the platform; every other subcommand is the CLI,
//! which talks to a server over HTTP. This file only parses the command line and dispatches.

use qinling_cli as cli;
mod auth;
mod bench;
mod local;
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
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start-up; the size of one value does not matter"
)]
enum Command {
    /// Run the platform: API server, engine, worker pools and sandboxes.
    Serve(serve::ServeArgs),
    /// Run a function on this machine, without a server: same sandbox, shims and limits.
    Run(local::RunArgs),
    /// Measure the platform end to end: starts its own servers and prints a table and JSON.
    Bench(bench::BenchArgs),
    /// Manage API tokens for `auth.mode = "token"` (on the server's data directory).
    Token(auth::token::TokenArgs),
    /// Print a shell completion script: `source <(qinling completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `qinling man > qinling.1; man ./qinling.1`. With --dir,
    /// write one page per command there (qinling.1, qinling-function.1, …).
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Print the OpenAPI 3 document of the v1 API (also served at /v1/openapi.json).
    Openapi,
    /// The benchmark's floor server (a minimal HTTP hello-world on the same stack).
    #[command(hide = true)]
    BenchFloor {
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
    #[command(flatten)]
    Cli(cli::CliCommand),
}

fn main() -> std::process::ExitCode {
    // When the jail re-executes this binary as a sandbox's init, it never returns from here.
    qinling_sandbox::jail::run_init_if_requested();
    let args = Args::parse();
    match args.command {
        Command::Serve(serve_args) => serve::main(serve_args),
        Command::Run(run_args) => local::main(run_args),
        Command::Bench(bench_args) => bench::main(bench_args),
        Command::Token(token_args) => auth::token::main(token_args),
        Command::BenchFloor { listen } => bench::floor_main(listen),
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&qinling_api::openapi::document())
                    .expect("a JSON value serializes")
            );
            std::process::ExitCode::SUCCESS
        }
        Command::Completion { shell } => {
            let mut command = <Args as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "qinling", &mut script);
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            std::process::ExitCode::SUCCESS
        }
        Command::Man { dir } => {
            let command = <Args as clap::CommandFactory>::command();
            let written = match dir {
                None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
                Some(dir) => std::fs::create_dir_all(&dir)
                    .and_then(|()| clap_mangen::generate_to(command, &dir)),
            };
            match written {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("qinling man: {error}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Cli(cmd) => cli::main(cmd),
    }
}
