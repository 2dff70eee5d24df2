//! `qinling alias …` (`/v1/aliases`, addressed by name): create, list, show, update, delete.
//! `--additional-version` with `--weight` makes a weighted alias that sends that percent of
//! executions to a second version. Name-addressed, so it uses the client directly.

use anyhow::bail;
use clap::{ArgGroup, Subcommand};
use qinling_wire::AliasBody;
use reqwest::Method;
use serde_json::Value;

use crate::Ctx;
use crate::function::FUNCTIONS;
use crate::output::{self, Column};

const COLUMNS: &[Column] = &[
    Column::Field("name"),
    Column::Field("function_id"),
    Column::Field("function_version"),
    Column::Field("additional_version"),
    Column::Field("additional_version_weight"),
    Column::Field("description"),
];

/// A weighted second version.
#[derive(Debug, clap::Args)]
pub struct Split {
    /// A second version that receives --weight percent of the executions.
    #[arg(long, requires = "weight")]
    additional_version: Option<u64>,
    /// Percent (1-99) of executions that go to --additional-version.
    #[arg(long, requires = "additional_version", value_parser = clap::value_parser!(u64).range(1..100))]
    weight: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Name a function version.
    Create {
        /// The alias name.
        name: String,
        /// Function id or name.
        #[arg(long)]
        function: String,
        /// Function version (default 0, the latest code).
        #[arg(long)]
        version: Option<u64>,
        /// A free-text description.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        split: Split,
    },
    /// List aliases.
    List,
    /// Show an alias.
    Show { name: String },
    /// Point an alias elsewhere, or change its description or split.
    #[command(group(ArgGroup::new("changes").required(true).multiple(true)
        .args(["function", "version", "description", "additional_version", "no_split"])))]
    Update {
        name: String,
        /// Function id or name.
        #[arg(long)]
        function: Option<String>,
        /// Function version.
        #[arg(long)]
        version: Option<u64>,
        /// A free-text description.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        split: Split,
        /// Remove the weighted second version.
        #[arg(long, conflicts_with = "additional_version")]
        no_split: bool,
    },
    /// Delete aliases (refused while a job or webhook uses one).
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// The weighted pair of an alias body (both or neither, as clap requires).
fn split_fields(body: &mut AliasBody, split: Split) {
    body.additional_version = split.additional_version.map(|v| Some(v as i64));
    body.additional_version_weight = split.weight.map(|w| Some(w as i64));
}

pub(crate) async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        Command::Create {
            name,
            function,
            version,
            description,
            split,
        } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            let mut body = AliasBody {
                name: Some(name),
                function_id: Some(id),
                function_version: version.map(|v| v as i64),
                description,
                ..AliasBody::default()
            };
            split_fields(&mut body, split);
            let request = client.request(Method::POST, &["v1", "aliases"]).json(&body);
            output::emit(&ctx.show(&client.json(request).await?)?);
        }
        Command::List => {
            let mut body = client
                .json(client.request(Method::GET, &["v1", "aliases"]))
                .await?;
            let aliases = match body.get_mut("function_aliases").map(Value::take) {
                Some(Value::Array(items)) => items,
                _ => bail!("the server's list of aliases has no 'function_aliases' array: {body}"),
            };
            output::emit(&ctx.list(&aliases, COLUMNS)?);
        }
        Command::Show { name } => {
            let body = client
                .json(client.request(Method::GET, &["v1", "aliases", &name]))
                .await?;
            output::emit(&ctx.show(&body)?);
        }
        Command::Update {
            name,
            function,
            version,
            description,
            split,
            no_split,
        } => {
            let mut body = AliasBody {
                function_version: version.map(|v| v as i64),
                description,
                ..AliasBody::default()
            };
            if let Some(function) = function {
                body.function_id = Some(FUNCTIONS.resolve(client, &function).await?);
            }
            if no_split {
                body.additional_version = Some(None);
                body.additional_version_weight = Some(None);
            } else {
                split_fields(&mut body, split);
            }
            let request = client
                .request(Method::PUT, &["v1", "aliases", &name])
                .json(&body);
            output::emit(&ctx.show(&client.json(request).await?)?);
        }
        Command::Delete { names } => {
            let mut failed = false;
            for name in &names {
                match client
                    .empty(client.request(Method::DELETE, &["v1", "aliases", name]))
                    .await
                {
                    Ok(()) => output::emit(&format!(
                        "Request to delete alias {name} has been accepted.\n"
                    )),
                    Err(error) => {
                        eprintln!("{error:#}");
                        failed = true;
                    }
                }
            }
            if failed {
                bail!("Unable to delete the specified alias(es).");
            }
        }
    }
    Ok(())
}
