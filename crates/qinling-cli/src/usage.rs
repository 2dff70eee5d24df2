//! `qinling usage` (`GET /v1/usage`, not in upstream): usage for billing per project and
//! function — executions, duration, CPU time, GiB-seconds, peak memory — over a time range.
//! `table` adds a totals line; `csv` is the server's CSV as it sent it (the columns a billing
//! system reads); `json` and `yaml` are the server's whole answer, totals and range included.

use clap::{Args, ValueEnum};
use qinling_wire::{Object, UsageRow};
use reqwest::Method;
use serde_json::Value;

use crate::Ctx;
use crate::function::FUNCTIONS;
use crate::output::{self, Format};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    /// One line per project and function.
    Function,
    /// One line per project.
    Project,
}

/// What `qinling usage` sums.
#[derive(Debug, Args)]
pub struct Command {
    /// This project's usage (your own, or any for admins).
    #[arg(long, conflicts_with = "all_projects")]
    project: Option<String>,
    /// Every project's usage (admins).
    #[arg(long)]
    all_projects: bool,
    /// Only this function (id or name).
    #[arg(long)]
    function: Option<String>,
    /// Start of the range, inclusive: an RFC 3339 time (2026-11-28T06:48:38Z) or a date
    /// (2026-11-28, midnight UTC). Default: the beginning.
    #[arg(long)]
    since: Option<String>,
    /// End of the range, exclusive, as --since. Default: now.
    #[arg(long)]
    until: Option<String>,
    /// Sum per project and function, or per project.
    #[arg(long, value_enum, default_value = "function")]
    group_by: GroupBy,
}

pub(crate) async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    let mut query = Vec::new();
    if let Some(project) = cmd.project {
        query.push(("project_id".to_string(), project));
    }
    if cmd.all_projects {
        query.push(("all_projects".to_string(), "true".to_string()));
    }
    if let Some(function) = cmd.function {
        query.push((
            "function_id".to_string(),
            FUNCTIONS.resolve(client, &function).await?,
        ));
    }
    for (key, value) in [("since", cmd.since), ("until", cmd.until)] {
        if let Some(value) = value {
            query.push((key.to_string(), value));
        }
    }
    let by_function = cmd.group_by == GroupBy::Function;
    if !by_function {
        query.push(("group_by".to_string(), "project".to_string()));
    }
    if ctx.format == Format::Csv {
        query.push(("format".to_string(), "csv".to_string()));
        let request = client.request_with_query(Method::GET, &["v1", "usage"], &query);
        let text = client.send(request).await?.text().await?;
        output::emit(&text);
        return Ok(());
    }
    let request = client.request_with_query(Method::GET, &["v1", "usage"], &query);
    let usage = client.json(request).await?;
    output::emit(&render(ctx.format, &usage, by_function));
    Ok(())
}

/// A usage answer in `format` (not CSV, which the server renders).
fn render(format: Format, usage: &Value, by_function: bool) -> String {
    let rows = usage["usage"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    // The columns are the wire row's fields (the server's CSV header).
    let columns: Vec<&str> = UsageRow::fields()
        .into_iter()
        .filter(|field| by_function || !field.starts_with("function_"))
        .collect();
    let cells = |row: &Value| -> Vec<String> {
        columns
            .iter()
            .map(|field| match (*field, &row[*field]) {
                // Six decimals: a millisecond of 128 MiB is 0.000122 GiB-seconds.
                ("gb_seconds", Value::Number(n)) => format!("{:.6}", n.as_f64().unwrap_or(0.0)),
                (_, v) => output::cell(v),
            })
            .collect()
    };
    match format {
        Format::Table => {
            let mut lines: Vec<Vec<String>> = rows.iter().map(cells).collect();
            let mut totals = cells(&usage["totals"]);
            totals[0] = "total".to_string();
            lines.push(totals);
            output::table(&columns, &lines)
        }
        Format::Value => rows.iter().map(|r| cells(r).join(" ") + "\n").collect(),
        Format::Json | Format::Yaml | Format::Csv => output::show(format, usage),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::client::Client;
    use crate::stub::{Stub, block_on};

    fn answer() -> Value {
        json!({
            "usage": [
                {"project_id": "p1", "function_id": "f1", "function_name": "hello", "executions": 3,
                 "succeeded": 2, "failed": 1, "errored": 0, "duration_s": 1.75, "cpu_s": 0.02,
                 "gb_seconds": 0.21875, "memory_peak_max_kb": 9000},
                {"project_id": "p1", "function_id": "f2", "function_name": null, "executions": 1,
                 "succeeded": 1, "failed": 0, "errored": 0, "duration_s": 0.001, "cpu_s": 0.0,
                 "gb_seconds": 0.0001220703125, "memory_peak_max_kb": null}
            ],
            "totals": {"executions": 4, "succeeded": 3, "failed": 1, "errored": 0,
                       "duration_s": 1.751, "cpu_s": 0.02, "gb_seconds": 0.2188720703125,
                       "memory_peak_max_kb": 9000},
            "since": null, "until": "2026-11-28T06:45:29.572982Z", "group_by": "function"
        })
    }

    #[test]
    fn table_has_a_totals_line() {
        let expected = "\
+------------+-------------+---------------+------------+-----------+--------+---------+------------+-------+------------+--------------------+
| project_id | function_id | function_name | executions | succeeded | failed | errored | duration_s | cpu_s | gb_seconds | memory_peak_max_kb |
+------------+-------------+---------------+------------+-----------+--------+---------+------------+-------+------------+--------------------+
| p1         | f1          | hello         | 3          | 2         | 1      | 0       | 1.75       | 0.02  | 0.218750   | 9000               |
| p1         | f2          |               | 1          | 1         | 0      | 0       | 0.001      | 0.0   | 0.000122   |                    |
| total      |             |               | 4          | 3         | 1      | 0       | 1.751      | 0.02  | 0.218872   | 9000               |
+------------+-------------+---------------+------------+-----------+--------+---------+------------+-------+------------+--------------------+
";
        assert_eq!(render(Format::Table, &answer(), true), expected);
        let by_project = render(Format::Table, &answer(), false);
        assert!(
            by_project.lines().nth(1).unwrap()
                == "| project_id | executions | succeeded | failed | errored | duration_s | cpu_s | gb_seconds | memory_peak_max_kb |",
            "{by_project}"
        );
        assert_eq!(
            render(Format::Value, &answer(), true).lines().next(),
            Some("p1 f1 hello 3 2 1 0 1.75 0.02 0.218750 9000")
        );
        let json: Value = serde_json::from_str(&render(Format::Json, &answer(), true)).unwrap();
        assert_eq!(json, answer());
    }

    #[test]
    fn options_become_the_query_and_csv_is_the_servers() {
        let csv = "project_id,function_id\r\np1,f1\r\n";
        let stub = Stub::serve(vec![(200, "text/csv; charset=utf-8", csv.to_string())]);
        let ctx = Ctx {
            client: Client::new(&stub.url, None).unwrap(),
            format: Format::Csv,
            columns: Vec::new(),
        };
        let cmd = Command {
            project: Some("p1".into()),
            all_projects: false,
            function: Some("0b6c5a57-5e6a-4b4c-9d5e-1a2b3c4d5e6f".into()),
            since: Some("2026-11-01".into()),
            until: Some("2026-12-01T00:00:00+01:00".into()),
            group_by: GroupBy::Project,
        };
        block_on(run(cmd, &ctx)).unwrap();
        let sent = stub.requests();
        assert_eq!(sent.len(), 1);
        let line = sent[0].head.lines().next().unwrap().to_string();
        assert_eq!(
            line,
            "GET /v1/usage?project_id=p1&function_id=0b6c5a57-5e6a-4b4c-9d5e-1a2b3c4d5e6f&since=2026-11-01&until=2026-12-01T00%3A00%3A00%2B01%3A00&group_by=project&format=csv HTTP/1.1"
        );
    }
}
