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
    about = "Qinling: self-hosted Function-as-a-Service",
    after_help = "Global options of the client commands, before or after the command:\n  \
        --url <URL>          the server (env QINLING_URL; default: the profile's, else http://127.0.0.1:7070)\n  \
        --token <TOKEN>      sent as X-Auth-Token (env QINLING_TOKEN)\n  \
        --profile <NAME>     a profile `qinling login` saved (env QINLING_PROFILE)\n  \
        -f, --format <FMT>   table, json, yaml, csv or value\n  \
        -c, --column <NAME>  show only this column; repeatable"
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
    let args = Args::parse_from(hoist_global_options(std::env::args_os().collect()));
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

/// The client's global options given before the command (`qinling --url U function list`)
/// moved after its first word (`qinling function --url U list`), where they are defined; the
/// rest of the line is left as it is.
fn hoist_global_options(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const WITH_VALUE: &[&str] = &[
        "--url",
        "--token",
        "--profile",
        "-f",
        "--format",
        "-c",
        "--column",
    ];
    let mut hoisted = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let Some(arg) = args[i].to_str() else { break };
        let name = match arg.split_once('=') {
            Some((name, _)) => name,
            // `-fjson`: a short option with its value attached.
            None if !arg.starts_with("--") && arg.len() > 2 => arg.get(..2).unwrap_or(arg),
            None => arg,
        };
        if !WITH_VALUE.contains(&name) {
            break;
        }
        hoisted.push(args[i].clone());
        // `--url U` takes the next word; `--url=U` and `-fjson` carry their value.
        let attached = arg.contains('=') || (name.len() == 2 && arg.len() > 2);
        if !attached && i + 1 < args.len() {
            hoisted.push(args[i + 1].clone());
            i += 1;
        }
        i += 1;
    }
    if hoisted.is_empty() || i >= args.len() {
        return args;
    }
    let mut out = vec![args[0].clone(), args[i].clone()];
    out.extend(hoisted);
    out.extend(args[i + 1..].iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hoist(line: &str) -> String {
        let args = line.split(' ').map(std::ffi::OsString::from).collect();
        hoist_global_options(args)
            .iter()
            .map(|a| a.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn global_options_before_the_command_move_after_its_first_word() {
        for (given, parsed) in [
            (
                "qinling --url http://h:1 function list",
                "qinling function --url http://h:1 list",
            ),
            (
                "qinling -f json -c id runtime list",
                "qinling runtime -f json -c id list",
            ),
            (
                "qinling --url=http://h:1 -fjson node list",
                "qinling node --url=http://h:1 -fjson list",
            ),
            (
                "qinling function list --url http://h:1",
                "qinling function list --url http://h:1",
            ),
            (
                "qinling serve --listen 127.0.0.1:1",
                "qinling serve --listen 127.0.0.1:1",
            ),
            ("qinling --url", "qinling --url"),
            ("qinling --help", "qinling --help"),
        ] {
            assert_eq!(hoist(given), parsed);
        }
    }

    #[test]
    fn hoisted_options_parse() {
        let args = hoist_global_options(
            "qinling --url http://h:1 -f json function list"
                .split(' ')
                .map(std::ffi::OsString::from)
                .collect(),
        );
        let parsed = Args::try_parse_from(args).unwrap();
        assert!(matches!(parsed.command, Command::Cli(_)));
    }
}
