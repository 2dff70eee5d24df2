//! `qinling webhook …` (`/v1/webhooks`): create (for a function version or an alias), list,
//! show, update, delete, and invoke (POST to the webhook's URL with `--param key=value`
//! pairs, as any HTTP client would; no token needed).

use clap::{ArgGroup, Subcommand};
use qinling_wire::WebhookBody;
use reqwest::Method;
use serde_json::{Map, Value};

use crate::function::FUNCTIONS;
use crate::output::{self, Column};
use crate::resource::Resource;
use crate::{Ctx, parse_filter};

pub(crate) const WEBHOOKS: Resource = Resource {
    kind: "webhook",
    collection: "webhooks",
    named: false,
    columns: &[
        Column::Field("id"),
        Column::Field("function_id"),
        Column::Field("function_version"),
        Column::Field("function_alias"),
        Column::Field("webhook_url"),
    ],
};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a webhook: a URL that runs a function (or alias) asynchronously when POSTed to.
    #[command(group(ArgGroup::new("target").required(true).args(["function", "alias"])))]
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
        #[arg(long)]
        description: Option<String>,
    },
    /// List webhooks.
    List {
        /// Filter as key=value (e.g. all_projects=true); repeatable.
        #[arg(long = "filter", value_name = "KEY=VALUE", value_parser = parse_filter)]
        filters: Vec<(String, String)>,
    },
    /// Show a webhook.
    Show { webhook: String },
    /// Point a webhook at another function version or alias, or change its description.
    #[command(group(ArgGroup::new("changes").required(true).multiple(true)
        .args(["function", "version", "alias", "description"])))]
    Update {
        webhook: String,
        /// Function id or name.
        #[arg(long, conflicts_with = "alias")]
        function: Option<String>,
        #[arg(long, conflicts_with = "alias")]
        version: Option<u64>,
        #[arg(long)]
        alias: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete webhooks.
    Delete {
        #[arg(required = true)]
        webhooks: Vec<String>,
    },
    /// Invoke a webhook; prints the id of the execution it started.
    Invoke {
        webhook: String,
        /// A keyword argument for the function, key=value; repeatable.
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_filter)]
        params: Vec<(String, String)>,
        /// The whole request body, JSON (`-`: standard input, `@FILE`: a file), instead of
        /// --param.
        #[arg(long, value_parser = crate::input_arg, conflicts_with = "params")]
        input: Option<String>,
    },
}

pub(crate) async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        Command::Create {
            function,
            version,
            alias,
            description,
        } => {
            let mut body = WebhookBody {
                function_alias: alias,
                description,
                ..WebhookBody::default()
            };
            if let Some(function) = function {
                body.function_id = Some(FUNCTIONS.resolve(client, &function).await?);
                body.function_version = Some(version.map_or(0, |v| v as i64));
            }
            let request = client
                .request(Method::POST, &["v1", "webhooks"])
                .json(&body);
            output::emit(&ctx.show(&client.json(request).await?)?);
        }
        Command::List { filters } => {
            let webhooks = WEBHOOKS.list(client, &filters).await?;
            output::emit(&ctx.list(&webhooks, WEBHOOKS.columns)?);
        }
        Command::Show { webhook } => {
            output::emit(&ctx.show(&WEBHOOKS.get(client, &webhook).await?)?);
        }
        Command::Update {
            webhook,
            function,
            version,
            alias,
            description,
        } => {
            let mut body = WebhookBody {
                function_version: version.map(|v| v as i64),
                function_alias: alias,
                description,
                ..WebhookBody::default()
            };
            if let Some(function) = function {
                body.function_id = Some(FUNCTIONS.resolve(client, &function).await?);
            }
            let request = client
                .request(Method::PUT, &["v1", "webhooks", &webhook])
                .json(&body);
            output::emit(&ctx.show(&client.json(request).await?)?);
        }
        Command::Delete { webhooks } => WEBHOOKS.delete(client, &webhooks).await?,
        Command::Invoke {
            webhook,
            params,
            input,
        } => {
            let body = match input {
                Some(text) => serde_json::from_str::<Value>(&text).map_err(|e| {
                    anyhow::anyhow!(
                        "--input of a webhook must be JSON (it is the request body): {e}"
                    )
                })?,
                None => {
                    let mut body = Map::new();
                    for (key, value) in params {
                        body.insert(key, Value::String(value));
                    }
                    Value::Object(body)
                }
            };
            let request = client
                .request(Method::POST, &["v1", "webhooks", &webhook, "invoke"])
                .json(&body);
            let answer = client.json(request).await?;
            output::emit(&ctx.show(&answer)?);
        }
    }
    Ok(())
}
