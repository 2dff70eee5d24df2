//! `qinling node list` (`GET /v1/nodes`, not in upstream; admin): the nodes of the platform
//! — each with its address, version, capacity, running executions, workers, last heartbeat
//! and status (`up`, or `lost` once its heartbeats stopped).

use clap::Subcommand;
use qinling_wire::{Node, Object};
use reqwest::Method;

use crate::Ctx;
use crate::output::{self, Column};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the nodes (a server on its own lists itself).
    List,
}

pub(crate) async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        Command::List => {
            let request = ctx.client.request(Method::GET, &["v1", "nodes"]);
            let body = ctx.client.json(request).await?;
            let nodes = body["nodes"].as_array().cloned().unwrap_or_default();
            // Every field of the wire object, in its order.
            let columns: Vec<Column> = Node::fields().into_iter().map(Column::Field).collect();
            output::emit(&ctx.list(&nodes, &columns)?);
            Ok(())
        }
    }
}
