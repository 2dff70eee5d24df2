//! `qinling runtime …`: create, list, show, update, delete runtimes and show a runtime's worker
//! pool (`/v1/runtimes`, JSON bodies). Runtime arguments are ids or names.

use clap::{ArgGroup, Subcommand};
use qinling_wire::{RuntimeCreate, RuntimeUpdate};
use reqwest::Method;

use crate::Ctx;
use crate::output::{self, Column};
use crate::resource::Resource;

pub(crate) const RUNTIMES: Resource = Resource {
    kind: "runtime",
    collection: "runtimes",
    named: true,
    columns: &[
        Column::Field("id"),
        Column::Field("name"),
        Column::Field("image"),
        Column::Field("status"),
        Column::Field("is_public"),
    ],
};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a runtime from an image (admin).
    Create {
        /// The runtime image, e.g. python3.
        image: String,
        /// A name, usable instead of the id.
        #[arg(long)]
        name: Option<String>,
        /// A free-text description.
        #[arg(long)]
        description: Option<String>,
        /// Visible to the creating project only.
        #[arg(long)]
        private: bool,
        /// Run this runtime's functions in an untrusted (more isolated) sandbox.
        #[arg(long)]
        untrusted: bool,
    },
    /// List runtimes.
    List,
    /// Show a runtime.
    Show {
        /// Runtime id or name.
        runtime: String,
    },
    /// Change a runtime's name, description or image (admin).
    #[command(group(ArgGroup::new("changes").required(true).multiple(true).args(["name", "description", "image"])))]
    Update {
        /// Runtime id or name.
        runtime: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New image.
        #[arg(long)]
        image: Option<String>,
    },
    /// Delete runtimes (admin).
    Delete {
        /// Runtime ids or names.
        #[arg(required = true)]
        runtimes: Vec<String>,
    },
    /// Show a runtime's pool of pre-started workers (admin).
    Pool {
        /// Runtime id or name.
        runtime: String,
    },
}

pub(crate) async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        Command::Create {
            image,
            name,
            description,
            private,
            untrusted,
        } => {
            let body = RuntimeCreate {
                id: None,
                name,
                image: Some(image),
                description,
                is_public: Some(!private),
                trusted: Some(!untrusted),
            };
            let runtime = client
                .json(
                    client
                        .request(Method::POST, &["v1", "runtimes"])
                        .json(&body),
                )
                .await?;
            output::emit(&ctx.show(&runtime)?);
        }
        Command::List => {
            let runtimes = RUNTIMES.list(client, &[]).await?;
            output::emit(&ctx.list(&runtimes, RUNTIMES.columns)?);
        }
        Command::Show { runtime } => {
            let id = RUNTIMES.resolve(client, &runtime).await?;
            output::emit(&ctx.show(&RUNTIMES.get(client, &id).await?)?);
        }
        Command::Update {
            runtime,
            name,
            description,
            image,
        } => {
            let id = RUNTIMES.resolve(client, &runtime).await?;
            let body = RuntimeUpdate {
                name: name.map(Some),
                description: description.map(Some),
                image,
            };
            let updated = client
                .json(
                    client
                        .request(Method::PUT, &["v1", "runtimes", &id])
                        .json(&body),
                )
                .await?;
            output::emit(&ctx.show(&updated)?);
        }
        Command::Delete { runtimes } => RUNTIMES.delete(client, &runtimes).await?,
        Command::Pool { runtime } => {
            let id = RUNTIMES.resolve(client, &runtime).await?;
            let pool = client
                .json(client.request(Method::GET, &["v1", "runtimes", &id, "pool"]))
                .await?;
            output::emit(&ctx.show(&pool)?);
        }
    }
    Ok(())
}
