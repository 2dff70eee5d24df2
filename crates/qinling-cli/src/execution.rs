//! `qinling execution …` (`/v1/executions`, JSON bodies): create (run a function by id, name or
//! alias), list with filters, show, delete, and print the captured log. Also what `function
//! invoke` shares: building the create request, reading `result`, fetching the log.

use anyhow::bail;
use clap::{ArgGroup, Subcommand};
use qinling_wire::ExecutionCreate;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::client::Client;
use crate::function::FUNCTIONS;
use crate::output::{self, Column};
use crate::resource::Resource;
use crate::{Ctx, parse_filter};

pub(crate) const EXECUTIONS: Resource = Resource {
    kind: "execution",
    collection: "executions",
    named: false,
    columns: &[
        Column::Field("id"),
        Column::Field("function_id"),
        Column::Field("function_version"),
        Column::Field("status"),
        Column::Field("sync"),
        Column::Derived("duration", duration),
        Column::Field("created_at"),
    ],
};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a function (by id or name) or an alias; prints the execution.
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
        /// The input (`-`: standard input, `@FILE`: a file): a JSON object becomes keyword
        /// arguments, anything else one argument.
        #[arg(long, value_parser = crate::input_arg)]
        input: Option<String>,
        /// Return at once; the execution runs in the background.
        #[arg(long = "async")]
        asynchronous: bool,
        /// A free-text description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List executions.
    List {
        /// Only executions of this function (id or name).
        #[arg(long)]
        function: Option<String>,
        /// Only executions with this status (running, success, failed, error).
        #[arg(long)]
        status: Option<String>,
        /// Filter as key=value, with an optional operator (e.g. status=neq:success,
        /// description=has:Job); repeatable.
        #[arg(long = "filter", value_name = "KEY=VALUE", value_parser = parse_filter)]
        filters: Vec<(String, String)>,
    },
    /// Show an execution.
    Show { execution: String },
    /// Delete executions (their records; running ones are not stopped).
    Delete {
        #[arg(required = true)]
        executions: Vec<String>,
    },
    /// Print an execution's log.
    Log {
        execution: String,
        /// Wait until it has finished, then print it (a log is complete when it ends).
        #[arg(long)]
        follow: bool,
    },
}

/// What an execution runs.
pub(crate) enum Target {
    Function { id: String, version: Option<u64> },
    Alias(String),
}

pub(crate) async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        Command::Create {
            function,
            version,
            alias,
            input,
            asynchronous,
            description,
        } => {
            let target = match (function, alias) {
                (Some(function), _) => Target::Function {
                    id: FUNCTIONS.resolve(client, &function).await?,
                    version,
                },
                (None, Some(alias)) => Target::Alias(alias),
                (None, None) => unreachable!("clap requires --function or --alias"),
            };
            let execution = create(client, target, input, !asynchronous, description).await?;
            output::emit(&ctx.show(&execution)?);
        }
        Command::List {
            function,
            status,
            filters,
        } => {
            let mut query = Vec::new();
            if let Some(function) = function {
                query.push((
                    "function_id".to_string(),
                    FUNCTIONS.resolve(client, &function).await?,
                ));
            }
            if let Some(status) = status {
                query.push(("status".to_string(), status));
            }
            query.extend(filters);
            let executions = EXECUTIONS.list(client, &query).await?;
            output::emit(&ctx.list(&executions, EXECUTIONS.columns)?);
        }
        Command::Show { execution } => {
            output::emit(&ctx.show(&EXECUTIONS.get(client, &execution).await?)?)
        }
        Command::Delete { executions } => EXECUTIONS.delete(client, &executions).await?,
        Command::Log { execution, follow } => {
            if follow {
                wait_finished(client, &execution).await?;
            }
            output::emit(&log(client, &execution).await?)
        }
    }
    Ok(())
}

/// `POST /v1/executions`. The input string is sent verbatim; absent options are not sent.
pub(crate) async fn create(
    client: &Client,
    target: Target,
    input: Option<String>,
    sync: bool,
    description: Option<String>,
) -> anyhow::Result<Value> {
    let body = create_body(target, input, sync, description);
    client
        .json(
            client
                .request(Method::POST, &["v1", "executions"])
                .json(&body),
        )
        .await
}

fn create_body(
    target: Target,
    input: Option<String>,
    sync: bool,
    description: Option<String>,
) -> ExecutionCreate {
    let (function_id, function_version, function_alias) = match target {
        Target::Function { id, version } => (Some(id), version.map(|v| v as i64), None),
        Target::Alias(alias) => (None, None, Some(alias)),
    };
    ExecutionCreate {
        function_id,
        function_version,
        function_alias,
        sync: Some(sync),
        input,
        description,
    }
}

/// The captured log; empty when the server has none (204).
/// Polls an execution until it is no longer `running`.
async fn wait_finished(client: &Client, id: &str) -> anyhow::Result<Value> {
    loop {
        let execution = EXECUTIONS.get(client, id).await?;
        if execution["status"] != "running" {
            return Ok(execution);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// `qinling logs FUNCTION`: the logs of its latest executions, oldest first, each under a
/// header line; with `follow`, then each execution's as it finishes, until interrupted.
pub(crate) async fn function_logs(
    ctx: &Ctx,
    function: &str,
    last: usize,
    follow: bool,
) -> anyhow::Result<()> {
    let client = &ctx.client;
    let id = FUNCTIONS.resolve(client, function).await?;
    let query = [("function_id".to_string(), id)];
    let mut shown = std::collections::HashSet::new();
    let mut first = true;
    loop {
        let mut executions = EXECUTIONS.list(client, &query).await?;
        executions.retain(|e| e["status"] != "running");
        executions.sort_by(|a, b| {
            let at = |e: &Value| {
                e["updated_at"]
                    .as_str()
                    .or(e["created_at"].as_str())
                    .unwrap_or("")
                    .to_string()
            };
            at(a).cmp(&at(b))
        });
        let fresh: Vec<&Value> = executions
            .iter()
            .filter(|e| !shown.contains(e["id"].as_str().unwrap_or_default()))
            .collect();
        let skip = if first {
            fresh.len().saturating_sub(last)
        } else {
            0
        };
        for execution in fresh.into_iter().skip(skip) {
            let id = execution["id"].as_str().unwrap_or_default().to_string();
            let text = log(client, &id).await?;
            output::emit(&format!(
                "── execution {id} ({}, {})\n{text}{}",
                execution["status"].as_str().unwrap_or("?"),
                execution["updated_at"].as_str().unwrap_or("?"),
                if text.is_empty() || text.ends_with('\n') {
                    ""
                } else {
                    "\n"
                }
            ));
            shown.insert(id);
        }
        // Everything listed counts as seen, so only new executions follow.
        for execution in &executions {
            shown.insert(execution["id"].as_str().unwrap_or_default().to_string());
        }
        first = false;
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

pub(crate) async fn log(client: &Client, id: &str) -> anyhow::Result<String> {
    let response = client
        .send(client.request(Method::GET, &["v1", "executions", id, "log"]))
        .await?;
    if response.status() == StatusCode::NO_CONTENT {
        return Ok(String::new());
    }
    Ok(response.text().await?)
}

/// `result` as an object: the server sends it as a JSON-encoded string; null or unparsable → null.
pub(crate) fn result_of(execution: &Value) -> Value {
    match execution.get("result") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(object @ Value::Object(_)) => object.clone(),
        _ => Value::Null,
    }
}

fn duration(execution: &Value) -> Value {
    result_of(execution)
        .get("duration")
        .cloned()
        .unwrap_or(Value::Null)
}

/// An error unless the execution succeeded, with the function's error output in it.
pub(crate) fn check_succeeded(execution: &Value) -> anyhow::Result<()> {
    let status = execution["status"].as_str().unwrap_or("unknown");
    if status == "success" {
        return Ok(());
    }
    let id = execution["id"].as_str().unwrap_or_default();
    match result_of(execution).get("output") {
        Some(output) if !output.is_null() => {
            bail!("Execution {id} {status}: {}", output::cell(output))
        }
        _ => bail!("Execution {id} {status}."),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::output::Format;
    use crate::stub::{Stub, block_on};

    fn execution(status: &str, result: Value) -> Value {
        json!({"id": "e1", "function_id": "f1", "function_version": 0, "status": status, "sync": true,
               "result": result, "created_at": "2026-11-28T06:45:56Z"})
    }

    /// The body as sent.
    fn body(t: Target, input: Option<String>, sync: bool, description: Option<String>) -> Value {
        serde_json::to_value(create_body(t, input, sync, description)).unwrap()
    }

    #[test]
    fn create_bodies() {
        let target = Target::Function {
            id: "f1".into(),
            version: None,
        };
        assert_eq!(
            body(target, Some("{\"name\": \"Q\"}".into()), true, None),
            json!({"function_id": "f1", "sync": true, "input": "{\"name\": \"Q\"}"})
        );
        let target = Target::Function {
            id: "f1".into(),
            version: Some(2),
        };
        assert_eq!(
            body(target, None, false, Some("d".into())),
            json!({"function_id": "f1", "function_version": 2, "sync": false, "description": "d"})
        );
        assert_eq!(
            body(Target::Alias("prod".into()), Some("Bob".into()), true, None),
            json!({"function_alias": "prod", "sync": true, "input": "Bob"})
        );
    }

    #[test]
    fn results_and_durations() {
        let e = execution(
            "success",
            json!("{\"output\": \"Hello, bar\", \"duration\": 0.044}"),
        );
        assert_eq!(
            result_of(&e),
            json!({"output": "Hello, bar", "duration": 0.044})
        );
        assert_eq!(duration(&e), json!(0.044));
        assert_eq!(duration(&execution("running", Value::Null)), Value::Null);
        assert_eq!(
            duration(&execution("error", json!("not json"))),
            Value::Null
        );
        assert_eq!(
            output::list(Format::Value, &[e], EXECUTIONS.columns),
            "e1 f1 0 success true 0.044 2026-11-28T06:45:56Z\n"
        );
    }

    #[test]
    fn failures_carry_the_output() {
        assert!(check_succeeded(&execution("success", json!("{\"output\": null}"))).is_ok());
        let failed = execution(
            "failed",
            json!("{\"output\": \"boom happened\", \"duration\": 0.013}"),
        );
        assert_eq!(
            check_succeeded(&failed).unwrap_err().to_string(),
            "Execution e1 failed: boom happened"
        );
        assert_eq!(
            check_succeeded(&execution("error", Value::Null))
                .unwrap_err()
                .to_string(),
            "Execution e1 error."
        );
    }

    #[test]
    fn logs_and_empty_logs() {
        let text = "Start execution: e1\nHello, Qinling\nFinished execution: e1\n";
        let stub = Stub::serve(vec![
            (200, "text/plain; charset=UTF-8", text.into()),
            (204, "text/plain", String::new()),
        ]);
        let client = Client::new(&stub.url, None).unwrap();
        assert_eq!(block_on(log(&client, "e1")).unwrap(), text);
        assert_eq!(block_on(log(&client, "e2")).unwrap(), "");
        let requests = stub.requests();
        assert!(
            requests[1]
                .head
                .starts_with("GET /v1/executions/e2/log HTTP/1.1\r\n"),
            "{}",
            requests[1].head
        );
    }
}
