//! `qinling function version …` (`/v1/functions/{id}/versions`): create a numbered snapshot
//! of a function, list, show, download, delete, and the admin worker actions of one version
//! (detach, scale up/down). A nested collection, so it uses [`Client`](crate::client::Client)
//! directly; the function argument is an id or name.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use qinling_wire::{Scale, VersionCreate};
use reqwest::Method;
use serde_json::Value;

use crate::Ctx;
use crate::function::{FUNCTIONS, download_to};
use crate::output::{self, Column};

const COLUMNS: &[Column] = &[
    Column::Field("version_number"),
    Column::Field("id"),
    Column::Field("description"),
    Column::Field("count"),
    Column::Field("created_at"),
];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Snapshot the function's current package, entry and limits as its next version.
    Create {
        /// Function id or name.
        function: String,
        /// A free-text description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List a function's versions.
    List {
        /// Function id or name.
        function: String,
    },
    /// Show a version.
    Show {
        /// Function id or name.
        function: String,
        version: u64,
    },
    /// Download a version's code package.
    Download {
        /// Function id or name.
        function: String,
        version: u64,
        /// Where to write the zip (default: ./<id>_<version>.zip).
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Delete a version (refused while an alias, job or webhook uses it).
    Delete {
        /// Function id or name.
        function: String,
        version: u64,
    },
    /// Release all the version's workers (admin).
    Detach {
        /// Function id or name.
        function: String,
        version: u64,
    },
    /// Add workers to the version (admin).
    ScaleUp {
        /// Function id or name.
        function: String,
        version: u64,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
    },
    /// Remove workers from the version, never the last one (admin).
    ScaleDown {
        /// Function id or name.
        function: String,
        version: u64,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
    },
}

pub(crate) async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        Command::Create {
            function,
            description,
        } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            let request = client
                .request(Method::POST, &["v1", "functions", &id, "versions"])
                .json(&VersionCreate { description });
            output::emit(&ctx.show(&client.json(request).await?)?);
        }
        Command::List { function } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            let mut body = client
                .json(client.request(Method::GET, &["v1", "functions", &id, "versions"]))
                .await?;
            let versions = match body.get_mut("function_versions").map(Value::take) {
                Some(Value::Array(items)) => items,
                _ => anyhow::bail!(
                    "the server's list of versions has no 'function_versions' array: {body}"
                ),
            };
            output::emit(&ctx.list(&versions, COLUMNS)?);
        }
        Command::Show { function, version } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            let n = version.to_string();
            let body = client
                .json(client.request(Method::GET, &["v1", "functions", &id, "versions", &n]))
                .await?;
            output::emit(&ctx.show(&body)?);
        }
        Command::Download {
            function,
            version,
            output,
        } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            let path = match output {
                Some(path) => path,
                None => std::env::current_dir()
                    .context("cannot find the current directory")?
                    .join(format!("{id}_{version}.zip")),
            };
            let n = version.to_string();
            let query = [("download".to_string(), "true".to_string())];
            let response = client
                .send(client.request_with_query(
                    Method::GET,
                    &["v1", "functions", &id, "versions", &n],
                    &query,
                ))
                .await?;
            download_to(response, &path).await?;
            output::emit(&format!("Code package downloaded to {}\n", path.display()));
        }
        Command::Delete { function, version } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            let n = version.to_string();
            client
                .empty(client.request(Method::DELETE, &["v1", "functions", &id, "versions", &n]))
                .await?;
            output::emit(&format!(
                "Request to delete function {id}(version {version}) has been accepted.\n"
            ));
        }
        Command::Detach { function, version } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            let n = version.to_string();
            client
                .empty(client.request(
                    Method::POST,
                    &["v1", "functions", &id, "versions", &n, "detach"],
                ))
                .await?;
            output::emit(&format!(
                "Request to detach function {id}(version {version}) has been accepted.\n"
            ));
        }
        Command::ScaleUp {
            function,
            version,
            count,
        } => scale(ctx, &function, version, "up", count).await?,
        Command::ScaleDown {
            function,
            version,
            count,
        } => scale(ctx, &function, version, "down", count).await?,
    }
    Ok(())
}

async fn scale(
    ctx: &Ctx,
    function: &str,
    version: u64,
    direction: &str,
    count: u64,
) -> anyhow::Result<()> {
    let client = &ctx.client;
    let id = FUNCTIONS.resolve(client, function).await?;
    let n = version.to_string();
    let action = format!("scale_{direction}");
    let request = client
        .request(
            Method::POST,
            &["v1", "functions", &id, "versions", &n, &action],
        )
        .json(&Scale {
            count: Some(i64::try_from(count)?),
        });
    client.empty(request).await?;
    output::emit(&format!(
        "Request to scale {direction} function {id}(version {version}) has been accepted.\n"
    ));
    Ok(())
}
