//! `qinling job …` (`/v1/jobs`): create (cron `--pattern`, `--first-execution-time`,
//! `--count`), list, show, update, pause, resume, delete. Job arguments are ids or names.

use clap::{ArgGroup, Subcommand};
use qinling_wire::JobBody;
use reqwest::Method;

use crate::Ctx;
use crate::function::FUNCTIONS;
use crate::output::{self, Column};
use crate::resource::Resource;

pub(crate) const JOBS: Resource = Resource {
    kind: "job",
    collection: "jobs",
    named: true,
    columns: &[
        Column::Field("id"),
        Column::Field("name"),
        Column::Field("status"),
        Column::Field("pattern"),
        Column::Field("count"),
        Column::Field("next_execution_time"),
    ],
};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a function (or alias) on a cron pattern and/or once at a given time.
    #[command(group(ArgGroup::new("target").required(true).args(["function", "alias"])))]
    #[command(group(ArgGroup::new("when").required(true).multiple(true).args(["pattern", "first_execution_time"])))]
    Create {
        /// Function id or name.
        #[arg(long)]
        function: Option<String>,
        /// Function version (default 0, the latest code).
        #[arg(long, requires = "function")]
        version: Option<u64>,
        /// Function alias name (instead of --function).
        #[arg(long)]
        alias: Option<String>,
        /// A name, usable instead of the id.
        #[arg(long)]
        name: Option<String>,
        /// A 5-field cron pattern (minute hour day-of-month month day-of-week), UTC.
        #[arg(long)]
        pattern: Option<String>,
        /// The first run, e.g. 2026-11-28T06:48:38Z (UTC).
        #[arg(long)]
        first_execution_time: Option<String>,
        /// The input of each execution (`-`: standard input, `@FILE`: a file).
        #[arg(long, value_parser = crate::input_arg)]
        input: Option<String>,
        /// Run at most this many times.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// List jobs.
    List,
    /// Show a job.
    Show { job: String },
    /// Change a job's name, input, pattern, next time or status.
    #[command(group(ArgGroup::new("changes").required(true).multiple(true)
        .args(["name", "status", "pattern", "next_execution_time", "input"])))]
    Update {
        job: String,
        #[arg(long)]
        name: Option<String>,
        /// running, paused or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        pattern: Option<String>,
        #[arg(long)]
        next_execution_time: Option<String>,
        #[arg(long, value_parser = crate::input_arg)]
        input: Option<String>,
    },
    /// Pause a job.
    Pause { job: String },
    /// Resume a paused job (a cron job continues at its next tick).
    Resume { job: String },
    /// Delete jobs.
    Delete {
        #[arg(required = true)]
        jobs: Vec<String>,
    },
}

pub(crate) async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        Command::Create {
            function,
            version,
            alias,
            name,
            pattern,
            first_execution_time,
            input,
            count,
        } => {
            let mut body = JobBody {
                function_version: version.map(|v| v as i64),
                function_alias: alias,
                name,
                pattern,
                first_execution_time,
                function_input: input,
                count: count.map(|c| c as i64),
                ..JobBody::default()
            };
            if let Some(function) = function {
                body.function_id = Some(FUNCTIONS.resolve(client, &function).await?);
            }
            let request = client.request(Method::POST, &["v1", "jobs"]).json(&body);
            output::emit(&ctx.show(&client.json(request).await?)?);
        }
        Command::List => {
            let jobs = JOBS.list(client, &[]).await?;
            output::emit(&ctx.list(&jobs, JOBS.columns)?);
        }
        Command::Show { job } => {
            let id = JOBS.resolve(client, &job).await?;
            output::emit(&ctx.show(&JOBS.get(client, &id).await?)?);
        }
        Command::Update {
            job,
            name,
            status,
            pattern,
            next_execution_time,
            input,
        } => {
            let body = JobBody {
                name,
                status,
                pattern,
                next_execution_time,
                function_input: input,
                ..JobBody::default()
            };
            update(ctx, &job, body).await?;
        }
        Command::Pause { job } => update(ctx, &job, status("paused")).await?,
        Command::Resume { job } => update(ctx, &job, status("running")).await?,
        Command::Delete { jobs } => JOBS.delete(client, &jobs).await?,
    }
    Ok(())
}

/// An update that only sets the job's status (pause, resume).
fn status(status: &str) -> JobBody {
    JobBody {
        status: Some(status.to_string()),
        ..JobBody::default()
    }
}

async fn update(ctx: &Ctx, job: &str, body: JobBody) -> anyhow::Result<()> {
    let client = &ctx.client;
    let id = JOBS.resolve(client, job).await?;
    let request = client
        .request(Method::PUT, &["v1", "jobs", &id])
        .json(&body);
    output::emit(&ctx.show(&client.json(request).await?)?);
    Ok(())
}
