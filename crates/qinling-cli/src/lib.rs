//! The command-line client: `qinling runtime|function|execution|alias|job|webhook|quota …` and
//! `qinling usage` over the v1 HTTP API.
//! It knows only the wire format, never the server's crates, so it can talk to any
//! Qinling-compatible endpoint. This file holds the argument tree's top and the dispatch; each
//! resource's commands live in the module of the same name, HTTP and its errors in `client`,
//! rendering in `output`, what all collections share in `resource`.
//!
//! Adding a resource (jobs, webhooks, …): a module with a `Resource` constant, a clap
//! `Command` enum and `async fn run(Command, &Ctx)`, and one variant below.

pub mod alias;
mod client;
pub mod execution;
pub mod function;
pub mod job;
pub mod node;
mod output;
pub mod package;
pub mod profile;
pub mod project;
pub mod quota;
mod resource;
pub mod runtime;
#[cfg(test)]
mod stub;
pub mod usage;
pub mod version;
pub mod webhook;

use std::process::ExitCode;

use clap::{Args, Subcommand};

use client::Client;
pub use output::Format;

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Runtimes: the environments functions run in.
    Runtime(Box<Scoped<runtime::Command>>),
    /// Functions: code packages with an entry point and limits.
    Function(Box<Scoped<function::Command>>),
    /// Executions: runs of a function, with their input, result and log.
    Execution(Box<Scoped<execution::Command>>),
    /// Aliases: names for function versions, optionally splitting traffic between two.
    Alias(Box<Scoped<alias::Command>>),
    /// Jobs: run a function on a cron pattern or at a given time.
    Job(Box<Scoped<job::Command>>),
    /// Webhooks: URLs that run a function when POSTed to.
    Webhook(Box<Scoped<webhook::Command>>),
    /// Quotas: a project's limits and use.
    Quota(Box<Scoped<quota::Command>>),
    /// Usage for billing: executions, duration, CPU and GiB-seconds per project and function.
    Usage(Box<Single<usage::Command>>),
    /// Nodes: the servers of the platform (a cluster's members), with their load (admin).
    Node(Box<Scoped<node::Command>>),
    /// Create a function folder: handler, sample input, test, qinling.toml manifest.
    Init(Box<project::InitArgs>),
    /// Create or update the function a folder's qinling.toml describes, from that folder.
    Deploy(Box<Single<project::DeployArgs>>),
    /// Check a server URL and token and save them as a profile (default: `default`), so
    /// later commands need neither.
    Login(Box<Single<LoginArgs>>),
    /// Print the logs of a function's latest executions; --follow prints new ones as they
    /// finish.
    Logs(Box<Single<LogsArgs>>),
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Function id or name.
    function: String,
    /// How many of the latest executions to show first.
    #[arg(long, default_value_t = 5)]
    last: usize,
    /// Keep going: print each new execution's log as it finishes (Ctrl-C to stop).
    #[arg(long, short = 'F')]
    follow: bool,
}

/// `qinling login` takes the global options only (`--url`, `--token`, `--profile`).
#[derive(Debug, Args)]
pub struct LoginArgs {}

/// A resource's subcommands, with the options every command takes. (Boxed in `CliCommand`
/// so that the binary's command enum stays small.)
#[derive(Debug, Args)]
pub struct Scoped<C: Subcommand> {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: C,
}

/// A command without subcommands, with the options every command takes.
#[derive(Debug, Args)]
pub struct Single<C: Args> {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(flatten)]
    command: C,
}

#[derive(Debug, Args)]
struct GlobalOpts {
    /// The Qinling server's root URL (without /v1) [default: the profile's, else
    /// http://127.0.0.1:7070].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "QINLING_URL"
    )]
    url: Option<String>,
    /// The profile of the configuration file to use (`qinling login` writes them)
    /// [default: default].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "QINLING_PROFILE"
    )]
    profile: Option<String>,
    /// A token, sent as X-Auth-Token.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "QINLING_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Output format.
    #[arg(
        short = 'f',
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        default_value = "table"
    )]
    format: Format,
    /// Show only this column (a field); repeat for more, in that order.
    #[arg(
        short = 'c',
        long = "column",
        global = true,
        help_heading = "Global options",
        value_name = "COLUMN"
    )]
    columns: Vec<String>,
}

/// Prints `items` as the CLI prints a list: in `format`, with the `columns` asked for (`-c`),
/// else `defaults`. For commands outside this crate (`qinling token list`).
pub fn print_list(
    format: Format,
    columns: &[String],
    items: &[serde_json::Value],
    defaults: &[&'static str],
) -> anyhow::Result<()> {
    let defaults: Vec<output::Column> = defaults.iter().map(|c| output::Column::Field(c)).collect();
    let ctx_columns = output::pick_columns(&defaults, items, columns)?;
    output::emit(&output::list(format, items, &ctx_columns));
    Ok(())
}

/// An `--input` as given: `-` reads standard input, `@PATH` reads a file, anything else is
/// the input itself (a trailing newline of a file or of stdin is dropped).
pub fn input_arg(arg: &str) -> Result<String, String> {
    let read = |what: &str, r: std::io::Result<String>| {
        r.map(|text| text.strip_suffix('\n').unwrap_or(&text).to_string())
            .map_err(|e| format!("cannot read the input from {what}: {e}"))
    };
    if arg == "-" {
        let mut text = String::new();
        let r = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text);
        read("standard input", r)
    } else if let Some(path) = arg.strip_prefix('@') {
        read(path, std::fs::read_to_string(path))
    } else {
        Ok(arg.to_string())
    }
}

/// What a command needs to run: the server and how to print.
pub(crate) struct Ctx {
    pub client: Client,
    pub format: Format,
    /// `-c`: the columns to show, none for all.
    pub columns: Vec<String>,
}

impl Ctx {
    /// One object in the chosen format, with the chosen columns.
    pub fn show(&self, object: &serde_json::Value) -> anyhow::Result<String> {
        Ok(output::show(
            self.format,
            &output::pick(object, &self.columns)?,
        ))
    }

    /// A list in the chosen format, with the chosen columns (else `defaults`).
    pub fn list(
        &self,
        items: &[serde_json::Value],
        defaults: &[output::Column],
    ) -> anyhow::Result<String> {
        let columns = output::pick_columns(defaults, items, &self.columns)?;
        if self.columns.is_empty() || !matches!(self.format, Format::Json | Format::Yaml) {
            return Ok(output::list(self.format, items, &columns));
        }
        // JSON and YAML print whole objects: keep the chosen fields.
        let picked: Vec<serde_json::Value> = items
            .iter()
            .map(|i| {
                serde_json::Value::Object(
                    columns
                        .iter()
                        .map(|c| (c.header().to_string(), c.get(i)))
                        .collect(),
                )
            })
            .collect();
        Ok(output::list(self.format, &picked, &columns))
    }
}

pub fn main(cmd: CliCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cmd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cmd: CliCommand) -> anyhow::Result<()> {
    match cmd {
        CliCommand::Runtime(s) => runtime::run(s.command, &ctx(s.global)?).await,
        CliCommand::Function(s) => function::run(s.command, &ctx(s.global)?).await,
        CliCommand::Execution(s) => execution::run(s.command, &ctx(s.global)?).await,
        CliCommand::Alias(s) => alias::run(s.command, &ctx(s.global)?).await,
        CliCommand::Job(s) => job::run(s.command, &ctx(s.global)?).await,
        CliCommand::Webhook(s) => webhook::run(s.command, &ctx(s.global)?).await,
        CliCommand::Quota(s) => quota::run(s.command, &ctx(s.global)?).await,
        CliCommand::Usage(s) => usage::run(s.command, &ctx(s.global)?).await,
        CliCommand::Node(s) => node::run(s.command, &ctx(s.global)?).await,
        CliCommand::Init(args) => project::init(&args),
        CliCommand::Deploy(s) => project::deploy(&s.command, &ctx(s.global)?).await,
        CliCommand::Logs(s) => {
            let ctx = ctx(s.global)?;
            let a = &s.command;
            execution::function_logs(&ctx, &a.function, a.last, a.follow).await
        }
        CliCommand::Login(s) => {
            // The profile being written may not exist yet: read only flags and environment.
            let url = s
                .global
                .url
                .clone()
                .unwrap_or_else(|| profile::DEFAULT_URL.to_string());
            let token = s.global.token.clone();
            let ctx = Ctx {
                client: Client::new(&url, token.clone())?,
                format: s.global.format,
                columns: Vec::new(),
            };
            profile::login(&ctx, s.global.profile.as_deref(), &url, token).await
        }
    }
}

fn ctx(global: GlobalOpts) -> anyhow::Result<Ctx> {
    let (url, token) = server(&global)?;
    Ok(Ctx {
        client: Client::new(&url, token)?,
        format: global.format,
        columns: global.columns,
    })
}

/// The server and token: flags and environment over the profile over the default URL.
fn server(global: &GlobalOpts) -> anyhow::Result<(String, Option<String>)> {
    let profile = profile::load(global.profile.as_deref())?;
    let url = global
        .url
        .clone()
        .or(profile.url)
        .unwrap_or_else(|| profile::DEFAULT_URL.to_string());
    Ok((url, global.token.clone().or(profile.token)))
}

/// `--filter key=value`, forwarded as a query parameter.
fn parse_filter(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("'{s}' is not key=value (e.g. status=neq:success)")),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    /// The binary's shape: `CliCommand` flattened next to other subcommands.
    #[derive(Debug, Parser)]
    #[command(name = "qinling")]
    struct Top {
        #[command(subcommand)]
        command: TopCommand,
    }

    #[derive(Debug, Subcommand)]
    enum TopCommand {
        Serve,
        #[command(flatten)]
        Cli(CliCommand),
    }

    fn parse(args: &[&str]) -> Result<CliCommand, clap::Error> {
        let matches = Top::command()
            .try_get_matches_from(std::iter::once("qinling").chain(args.iter().copied()))?;
        match Top::from_arg_matches(&matches)?.command {
            TopCommand::Cli(cli) => Ok(cli),
            TopCommand::Serve => panic!("not a CLI command"),
        }
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Top::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_action() {
        for args in [
            &["runtime", "--url", "http://h:1", "-f", "json", "list"][..],
            &["runtime", "list", "--url", "http://h:1", "--format", "json"][..],
        ] {
            let CliCommand::Runtime(s) = parse(args).unwrap() else {
                panic!()
            };
            assert_eq!(
                (s.global.url.as_deref(), s.global.format),
                (Some("http://h:1"), Format::Json)
            );
        }
    }

    #[test]
    fn usage_errors() {
        let kind = |args: &[&str]| parse(args).unwrap_err().kind();
        use clap::error::ErrorKind::*;
        assert_eq!(
            kind(&["function", "create", "--runtime", "r"]),
            MissingRequiredArgument
        );
        assert_eq!(
            kind(&[
                "function",
                "create",
                "--runtime",
                "r",
                "--file",
                "a",
                "--package",
                "b"
            ]),
            ArgumentConflict
        );
        assert_eq!(kind(&["function", "update", "f"]), MissingRequiredArgument);
        assert_eq!(kind(&["runtime", "update", "r"]), MissingRequiredArgument);
        assert_eq!(kind(&["runtime", "delete"]), MissingRequiredArgument);
        assert_eq!(
            kind(&["function", "scale-up", "f", "--count", "0"]),
            ValueValidation
        );
        assert_eq!(kind(&["execution", "create"]), MissingRequiredArgument);
        assert_eq!(
            kind(&["execution", "create", "--function", "f", "--alias", "a"]),
            ArgumentConflict
        );
        assert_eq!(
            kind(&["execution", "list", "--filter", "nokey"]),
            ValueValidation
        );
        assert_eq!(kind(&["runtime", "list", "-f", "xml"]), InvalidValue);
        assert_eq!(
            kind(&["usage", "--project", "p", "--all-projects"]),
            ArgumentConflict
        );
        assert_eq!(kind(&["usage", "--group-by", "runtime"]), InvalidValue);
        assert!(parse(&["usage", "--since", "2026-11-01", "-f", "csv"]).is_ok());
    }

    #[test]
    fn filters() {
        assert_eq!(
            parse_filter("status=neq:success"),
            Ok(("status".into(), "neq:success".into()))
        );
        assert_eq!(
            parse_filter("description=has:a=b"),
            Ok(("description".into(), "has:a=b".into()))
        );
        assert!(parse_filter("=x").is_err());
        assert!(parse_filter("x").is_err());
    }
}
