//! `qinling quota …`: a project's quotas — show limits and use, set some, reset them to the
//! server's defaults (`/v1/quotas/{project_id}`; changes are admin-only).

use clap::{ArgGroup, Subcommand};
use qinling_wire::{Object, QuotaLimits, QuotaUpdate};
use reqwest::Method;
use serde_json::Value;

use crate::Ctx;
use crate::output::{self, Format};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a project's limits and current use (admins, or members of the project).
    Show {
        /// Project id.
        project: String,
    },
    /// Change some of a project's limits (admin). A number sets it, `-1` makes it unlimited,
    /// `default` goes back to the server's default.
    #[command(group(ArgGroup::new("changes").required(true).multiple(true).args(QuotaUpdate::fields())))]
    Set {
        /// Project id.
        project: String,
        /// Most functions.
        #[arg(long, value_parser = parse_limit, allow_negative_numbers = true)]
        functions: Option<Limit>,
        /// Most bytes of packages, all functions and versions together.
        #[arg(long, value_parser = parse_limit, allow_negative_numbers = true)]
        package_bytes: Option<Limit>,
        /// Most executions queued or running at once.
        #[arg(long, value_parser = parse_limit, allow_negative_numbers = true)]
        concurrent_executions: Option<Limit>,
        /// Most workers (checked on scale-up).
        #[arg(long, value_parser = parse_limit, allow_negative_numbers = true)]
        workers: Option<Limit>,
        /// Most executions started per minute.
        #[arg(long, value_parser = parse_limit, allow_negative_numbers = true)]
        executions_per_minute: Option<Limit>,
    },
    /// Reset all of a project's limits to the server's defaults (admin).
    Reset {
        /// Project id.
        project: String,
    },
}

/// One limit as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Value(i64),
    Default,
}

fn parse_limit(s: &str) -> Result<Limit, String> {
    if s == "default" {
        return Ok(Limit::Default);
    }
    match s.parse::<i64>() {
        Ok(n) if n >= -1 => Ok(Limit::Value(n)),
        _ => Err(format!(
            "'{s}' is not a limit: give a number >= 0, -1 for unlimited, or `default`"
        )),
    }
}

/// The `PUT` body: only the limits given; `default` is `null`.
fn changes(
    functions: Option<Limit>,
    package_bytes: Option<Limit>,
    concurrent_executions: Option<Limit>,
    workers: Option<Limit>,
    executions_per_minute: Option<Limit>,
) -> QuotaUpdate {
    let change = |limit: Option<Limit>| {
        limit.map(|limit| match limit {
            Limit::Value(n) => Some(n),
            Limit::Default => None,
        })
    };
    QuotaUpdate {
        functions: change(functions),
        package_bytes: change(package_bytes),
        concurrent_executions: change(concurrent_executions),
        workers: change(workers),
        executions_per_minute: change(executions_per_minute),
    }
}

/// A quota body as a table: one row per quota with its limit and use.
fn render(format: Format, body: &Value) -> String {
    let quota = body.get("quota").unwrap_or(body);
    if format != Format::Table {
        return output::show(format, quota);
    }
    let number = |section: &str, name: &str| match &quota[section][name] {
        Value::Number(n) if n.as_i64() == Some(-1) => "unlimited".to_string(),
        other => output::cell(other),
    };
    let rows: Vec<Vec<String>> = QuotaLimits::fields()
        .into_iter()
        .map(|name| {
            vec![
                name.to_string(),
                number("limits", name),
                number("usage", name),
            ]
        })
        .collect();
    let enforced = if quota["enforced"] == Value::Bool(false) {
        " (not enforced: authentication is off)"
    } else {
        ""
    };
    format!(
        "project {}{enforced}\n{}",
        output::cell(&quota["project_id"]),
        output::table(&["Quota", "Limit", "In use"], &rows)
    )
}

pub(crate) async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        Command::Show { project } => {
            let body = client
                .json(client.request(Method::GET, &["v1", "quotas", &project]))
                .await?;
            output::emit(&render(ctx.format, &body));
        }
        Command::Set {
            project,
            functions,
            package_bytes,
            concurrent_executions,
            workers,
            executions_per_minute,
        } => {
            let body = changes(
                functions,
                package_bytes,
                concurrent_executions,
                workers,
                executions_per_minute,
            );
            let body = client
                .json(
                    client
                        .request(Method::PUT, &["v1", "quotas", &project])
                        .json(&body),
                )
                .await?;
            output::emit(&render(ctx.format, &body));
        }
        Command::Reset { project } => {
            client
                .empty(client.request(Method::DELETE, &["v1", "quotas", &project]))
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::stub::{Stub, block_on};
    use serde_json::json;

    fn quota() -> Value {
        json!({"quota": {"project_id": "demo", "enforced": true,
            "limits": {"functions": 10, "package_bytes": -1, "concurrent_executions": 100, "workers": 50, "executions_per_minute": 6000},
            "usage": {"functions": 2, "package_bytes": 300, "concurrent_executions": 0, "workers": 1, "executions_per_minute": 4}}})
    }

    #[test]
    fn limits_parse() {
        assert_eq!(parse_limit("10"), Ok(Limit::Value(10)));
        assert_eq!(parse_limit("-1"), Ok(Limit::Value(-1)));
        assert_eq!(parse_limit("default"), Ok(Limit::Default));
        assert!(parse_limit("-2").unwrap_err().contains("-1 for unlimited"));
        assert!(parse_limit("ten").is_err());
    }

    #[test]
    fn set_sends_only_the_given_limits() {
        let stub = Stub::serve(vec![(200, "application/json", quota().to_string())]);
        let ctx = Ctx {
            client: Client::new(&stub.url, None).unwrap(),
            format: Format::Table,
            columns: Vec::new(),
        };
        let cmd = Command::Set {
            project: "demo".into(),
            functions: Some(Limit::Value(10)),
            package_bytes: None,
            concurrent_executions: None,
            workers: Some(Limit::Default),
            executions_per_minute: None,
        };
        block_on(run(cmd, &ctx)).unwrap();
        let request = stub.requests().remove(0);
        assert!(
            request.head.starts_with("PUT /v1/quotas/demo HTTP/1.1\r\n"),
            "{}",
            request.head
        );
        let body: Value = serde_json::from_str(&request.body_text()).unwrap();
        assert_eq!(body, json!({"functions": 10, "workers": null}));
    }

    #[test]
    fn table_shows_limit_and_use_per_quota() {
        let text = render(Format::Table, &quota());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "project demo");
        let row = |name: &str| {
            lines
                .iter()
                .find(|l| l.contains(&format!("| {name} ")))
                .map(|l| {
                    l.split('|')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .collect::<Vec<_>>()
                })
                .unwrap()
        };
        assert_eq!(row("functions"), ["functions", "10", "2"]);
        assert_eq!(row("package_bytes"), ["package_bytes", "unlimited", "300"]);
        assert_eq!(
            render(Format::Json, &quota()),
            output::show(Format::Json, &quota()["quota"])
        );
    }
}
