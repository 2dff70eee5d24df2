//! Rendering API objects for the terminal, in the five `--format`s: `table` (prettytable-style
//! boxes, as `openstack` prints them), `json` (the server's objects, pretty-printed), `yaml`
//! (written here, no YAML crate), `csv` (a header line, then one line per object, RFC 4180
//! quoting and line ends, as `openstack -f csv`) and `value` (bare values, for scripts). Every
//! renderer returns a `String` ending in a newline, so tests compare exact text; only [`emit`]
//! writes.
//!
//! `show` renders one object with all its fields in the server's order; `list` renders the
//! [`Column`]s a resource chooses for its rows. JSON and YAML ignore the columns: they are the
//! server's objects, unmodified.

use std::io::Write;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
    Csv,
    Value,
}

/// One column of a list: a field of the object, or a value derived from it; `Named` is a
/// field asked for with `-c` that the list does not show by default.
#[derive(Clone)]
pub enum Column {
    Field(&'static str),
    Derived(&'static str, fn(&Value) -> Value),
    Named(String),
}

impl Column {
    pub fn header(&self) -> &str {
        match self {
            Column::Field(name) | Column::Derived(name, _) => name,
            Column::Named(name) => name,
        }
    }

    pub fn get(&self, item: &Value) -> Value {
        match self {
            Column::Field(name) => item.get(name).cloned().unwrap_or(Value::Null),
            Column::Named(name) => item.get(name).cloned().unwrap_or(Value::Null),
            Column::Derived(_, derive) => derive(item),
        }
    }
}

/// The fields of `object` named by `-c`, in that order; none named → the whole object.
pub fn pick(object: &Value, wanted: &[String]) -> anyhow::Result<Value> {
    let Some(fields) = object.as_object() else {
        return Ok(object.clone());
    };
    if wanted.is_empty() {
        return Ok(object.clone());
    }
    let mut out = serde_json::Map::new();
    for name in wanted {
        let value = fields.get(name).ok_or_else(|| {
            anyhow::anyhow!(
                "no column '{name}' (-c); the columns are: {}",
                fields.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        out.insert(name.clone(), value.clone());
    }
    Ok(Value::Object(out))
}

/// The list columns named by `-c`: a default column by its header, or any field the items
/// have; none named → the defaults.
pub fn pick_columns(
    defaults: &[Column],
    items: &[Value],
    wanted: &[String],
) -> anyhow::Result<Vec<Column>> {
    if wanted.is_empty() {
        return Ok(defaults.to_vec());
    }
    wanted
        .iter()
        .map(|name| {
            if let Some(c) = defaults.iter().find(|c| c.header() == name) {
                return Ok(c.clone());
            }
            if items.is_empty() || items.iter().any(|i| i.get(name).is_some()) {
                return Ok(Column::Named(name.clone()));
            }
            let mut known: Vec<String> = defaults.iter().map(|c| c.header().to_string()).collect();
            if let Some(fields) = items.first().and_then(Value::as_object) {
                known.extend(
                    fields
                        .keys()
                        .filter(|k| !known.contains(k))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
            anyhow::bail!(
                "no column '{name}' (-c); the columns are: {}",
                known.join(", ")
            )
        })
        .collect()
}

/// One object: a Field/Value table, or the object itself.
pub fn show(format: Format, object: &Value) -> String {
    let Some(fields) = object.as_object() else {
        return json(object);
    };
    match format {
        Format::Table => {
            let rows: Vec<Vec<String>> = fields
                .iter()
                .map(|(k, v)| vec![k.clone(), cell(v)])
                .collect();
            table(&["Field", "Value"], &rows)
        }
        Format::Json => json(object),
        Format::Yaml => yaml(object),
        Format::Csv => {
            let headers: Vec<&str> = fields.keys().map(String::as_str).collect();
            csv(&headers, &[fields.values().map(cell).collect()])
        }
        Format::Value => fields.values().map(|v| cell(v) + "\n").collect(),
    }
}

/// Many objects: one row per item with the given columns, or the array of objects.
pub fn list(format: Format, items: &[Value], columns: &[Column]) -> String {
    let row =
        |item: &Value| -> Vec<String> { columns.iter().map(|c| cell(&c.get(item))).collect() };
    match format {
        Format::Table => {
            let headers: Vec<&str> = columns.iter().map(Column::header).collect();
            table(&headers, &items.iter().map(row).collect::<Vec<_>>())
        }
        Format::Json => json(&Value::Array(items.to_vec())),
        Format::Yaml => yaml(&Value::Array(items.to_vec())),
        Format::Csv => {
            let headers: Vec<&str> = columns.iter().map(Column::header).collect();
            csv(&headers, &items.iter().map(row).collect::<Vec<_>>())
        }
        Format::Value => items
            .iter()
            .map(|item| row(item).join(" ") + "\n")
            .collect(),
    }
}

/// Writes to stdout. A closed pipe (`qinling … | head`) is not an error worth reporting.
pub fn emit(text: &str) {
    if cfg!(test) {
        // Through the macro, so that the test harness captures it.
        print!("{text}");
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// A value as one table cell: strings bare, JSON containers compact, null empty.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("a Value always serializes");
    text.push('\n');
    text
}

/// CSV: a header line and the rows, fields quoted when they hold a comma, a quote or a line
/// break (RFC 4180), lines ending in CRLF.
pub fn csv(headers: &[&str], rows: &[Vec<String>]) -> String {
    let line = |fields: &mut dyn Iterator<Item = &str>| -> String {
        let quoted: Vec<String> = fields
            .map(|f| {
                if f.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f.to_string()
                }
            })
            .collect();
        quoted.join(",") + "\r\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// A prettytable box: left-aligned cells, a cell with line breaks spans several lines.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let split = |s: &str| -> Vec<String> {
        let lines: Vec<String> = s
            .split('\n')
            .map(|l| l.trim_end_matches('\r').replace('\t', "    "))
            .collect();
        lines
    };
    let header_cells: Vec<Vec<String>> = headers.iter().map(|h| split(h)).collect();
    let body: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| split(c)).collect())
        .collect();

    let mut widths: Vec<usize> = header_cells.iter().map(|c| max_width(c)).collect();
    for row in &body {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(max_width(c));
        }
    }

    let border: String = widths
        .iter()
        .fold(String::from("+"), |acc, w| acc + &"-".repeat(w + 2) + "+")
        + "\n";
    let render_row = |cells: &[Vec<String>]| -> String {
        let height = cells.iter().map(Vec::len).max().unwrap_or(1);
        let mut out = String::new();
        for line in 0..height {
            out.push('|');
            for (i, c) in cells.iter().enumerate() {
                let text = c.get(line).map(String::as_str).unwrap_or("");
                let pad = widths[i] - text.chars().count();
                out.push(' ');
                out.push_str(text);
                out.push_str(&" ".repeat(pad + 1));
                out.push('|');
            }
            out.push('\n');
        }
        out
    };

    let mut out = border.clone();
    out.push_str(&render_row(&header_cells));
    out.push_str(&border);
    for row in &body {
        out.push_str(&render_row(row));
    }
    out.push_str(&border);
    out
}

fn max_width(lines: &[String]) -> usize {
    lines.iter().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// Block-style YAML. Mappings and sequences nest by two spaces; a mapping inside a sequence
/// starts on the dash's line; empty containers are `{}` and `[]`.
pub fn yaml(value: &Value) -> String {
    let mut out = String::new();
    yaml_block(&mut out, value, 0);
    out
}

fn yaml_block(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                out.push_str(&pad);
                out.push_str(&yaml_string(key));
                out.push(':');
                if is_yaml_scalar(v) {
                    out.push(' ');
                    out.push_str(&yaml_scalar(v));
                    out.push('\n');
                } else {
                    out.push('\n');
                    yaml_block(out, v, indent + 2);
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_yaml_scalar(item) {
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&yaml_scalar(item));
                    out.push('\n');
                } else {
                    // Render the nested block two deeper, then put the dash in its first indent.
                    let mut nested = String::new();
                    yaml_block(&mut nested, item, indent + 2);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&nested[indent + 2..]);
                }
            }
        }
        scalar => {
            out.push_str(&pad);
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

fn is_yaml_scalar(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => true,
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_string(s),
        Value::Object(_) => "{}".to_string(),
        Value::Array(_) => "[]".to_string(),
    }
}

/// A string plain when YAML would read it back as the same string, else double-quoted.
/// Anything starting with a digit, sign or dot is quoted: that covers numbers, YAML 1.1
/// sexagesimals and timestamps at the cost of quoting some ids, which is harmless.
pub fn yaml_string(s: &str) -> String {
    const RESERVED: &[&str] = &[
        "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n",
    ];
    const INDICATORS: &str = "-?:,[]{}#&*!|>'\"%@`";
    let first = s.chars().next();
    let needs_quotes = match first {
        None => true,
        Some(c) => {
            c.is_ascii_digit()
                || "+-.".contains(c)
                || INDICATORS.contains(c)
                || c.is_whitespace()
                || s.ends_with(char::is_whitespace)
                || s.ends_with(':')
                || s.contains(": ")
                || s.contains(" #")
                || s.chars().any(needs_escape)
                || RESERVED.contains(&s.to_ascii_lowercase().as_str())
        }
    };
    if !needs_quotes {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters YAML does not allow raw (controls), or reads as line breaks or a byte-order mark.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn runtime() -> Value {
        json!({"id": "a2819aff-7cc5-441b-b154-1ac97fc626ba", "name": "python3", "image": "python3",
               "description": null, "is_public": true, "status": "available",
               "created_at": "2026-11-28T06:45:29Z"})
    }

    const COLUMNS: &[Column] = &[
        Column::Field("id"),
        Column::Field("name"),
        Column::Field("is_public"),
    ];

    #[test]
    fn show_table_has_field_and_value_columns() {
        let expected = "\
+-------------+--------------------------------------+
| Field       | Value                                |
+-------------+--------------------------------------+
| id          | a2819aff-7cc5-441b-b154-1ac97fc626ba |
| name        | python3                              |
| image       | python3                              |
| description |                                      |
| is_public   | true                                 |
| status      | available                            |
| created_at  | 2026-11-28T06:45:29Z                 |
+-------------+--------------------------------------+
";
        assert_eq!(show(Format::Table, &runtime()), expected);
    }

    #[test]
    fn show_table_renders_json_compactly_and_splits_lines() {
        let f = json!({"code": {"source": "package", "md5sum": "c8fd"}, "log": "one\ntwo", "n": 3});
        let expected = "\
+-------+--------------------------------------+
| Field | Value                                |
+-------+--------------------------------------+
| code  | {\"source\":\"package\",\"md5sum\":\"c8fd\"} |
| log   | one                                  |
|       | two                                  |
| n     | 3                                    |
+-------+--------------------------------------+
";
        assert_eq!(show(Format::Table, &f), expected);
    }

    #[test]
    fn list_table_one_row_per_item() {
        let items = vec![
            runtime(),
            json!({"id": "b", "name": null, "is_public": false}),
        ];
        let expected = "\
+--------------------------------------+---------+-----------+
| id                                   | name    | is_public |
+--------------------------------------+---------+-----------+
| a2819aff-7cc5-441b-b154-1ac97fc626ba | python3 | true      |
| b                                    |         | false     |
+--------------------------------------+---------+-----------+
";
        assert_eq!(list(Format::Table, &items, COLUMNS), expected);
    }

    #[test]
    fn empty_list_table_is_only_the_header() {
        let expected = "\
+----+------+-----------+
| id | name | is_public |
+----+------+-----------+
+----+------+-----------+
";
        assert_eq!(list(Format::Table, &[], COLUMNS), expected);
    }

    #[test]
    fn derived_columns() {
        let columns = &[
            Column::Field("id"),
            Column::Derived("twice", |v| json!(v["n"].as_i64().unwrap_or(0) * 2)),
        ];
        assert_eq!(
            list(Format::Value, &[json!({"id": "x", "n": 21})], columns),
            "x 42\n"
        );
    }

    #[test]
    fn csv_format() {
        let items = vec![
            runtime(),
            json!({"id": "b", "name": "a, \"quoted\"\nname", "is_public": false}),
        ];
        assert_eq!(
            list(Format::Csv, &items, COLUMNS),
            "id,name,is_public\r\na2819aff-7cc5-441b-b154-1ac97fc626ba,python3,true\r\nb,\"a, \"\"quoted\"\"\nname\",false\r\n"
        );
        assert_eq!(list(Format::Csv, &[], COLUMNS), "id,name,is_public\r\n");
        assert_eq!(
            show(Format::Csv, &json!({"id": "x", "n": 3, "none": null})),
            "id,n,none\r\nx,3,\r\n"
        );
    }

    #[test]
    fn value_format() {
        let items = vec![
            runtime(),
            json!({"id": "b", "name": "two words", "is_public": false}),
        ];
        assert_eq!(
            list(Format::Value, &items, COLUMNS),
            "a2819aff-7cc5-441b-b154-1ac97fc626ba python3 true\nb two words false\n"
        );
        assert_eq!(
            show(
                Format::Value,
                &json!({"id": "x", "d": null, "code": {"a": 1}})
            ),
            "x\n\n{\"a\":1}\n"
        );
    }

    #[test]
    fn json_format_is_the_servers_objects() {
        let items = vec![json!({"id": "x", "code": "{\"source\": \"package\"}"})];
        assert_eq!(
            list(Format::Json, &items, COLUMNS),
            "[\n  {\n    \"id\": \"x\",\n    \"code\": \"{\\\"source\\\": \\\"package\\\"}\"\n  }\n]\n"
        );
        assert_eq!(
            show(Format::Json, &json!({"b": 1, "a": null})),
            "{\n  \"b\": 1,\n  \"a\": null\n}\n"
        );
    }

    #[test]
    fn yaml_of_an_object() {
        let f = json!({
            "id": "879d3625-5710-4ffa-b163-843b0e8bf4d6",
            "name": "hello",
            "description": null,
            "code": {"source": "package", "md5sum": "c8fdf79324801cd0652399f419206be6"},
            "count": 0,
            "is_public": true,
            "created_at": "2026-11-28T06:45:41Z",
            "result": "{\"output\": \"Hello, bar\", \"duration\": 0.044}",
            "empty": {},
            "none": [],
            "tags": ["a", 1, {"k": "v", "w": [true]}, ["x"]],
        });
        let expected = r#"id: "879d3625-5710-4ffa-b163-843b0e8bf4d6"
name: hello
description: null
code:
  source: package
  md5sum: c8fdf79324801cd0652399f419206be6
count: 0
is_public: true
created_at: "2026-11-28T06:45:41Z"
result: "{\"output\": \"Hello, bar\", \"duration\": 0.044}"
empty: {}
none: []
tags:
  - a
  - 1
  - k: v
    w:
      - true
  - - x
"#;
        assert_eq!(show(Format::Yaml, &f), expected);
    }

    #[test]
    fn yaml_of_a_list() {
        let items = vec![
            json!({"id": "a", "size": 1.5}),
            json!({"id": "b", "size": null}),
        ];
        assert_eq!(
            list(Format::Yaml, &items, COLUMNS),
            "- id: a\n  size: 1.5\n- id: b\n  size: null\n"
        );
        assert_eq!(list(Format::Yaml, &[], COLUMNS), "[]\n");
    }

    #[test]
    fn yaml_quotes_only_when_needed() {
        let cases = [
            ("hello", "hello"),
            ("Hello, Qinling", "Hello, Qinling"),
            ("python3-runtime:0.0.2", "python3-runtime:0.0.2"),
            ("", "\"\""),
            ("true", "\"true\""),
            ("No", "\"No\""),
            ("null", "\"null\""),
            ("~", "\"~\""),
            ("42", "\"42\""),
            ("-1", "\"-1\""),
            (".5", "\".5\""),
            ("1:20", "\"1:20\""),
            ("key: value", "\"key: value\""),
            ("ends:", "\"ends:\""),
            ("a #comment", "\"a #comment\""),
            ("#x", "\"#x\""),
            ("*ref", "\"*ref\""),
            (" lead", "\" lead\""),
            ("trail ", "\"trail \""),
            ("two\nlines", "\"two\\nlines\""),
            ("say \"hi\" \\o/", "say \"hi\" \\o/"),
            ("{\"a\": 1}", "\"{\\\"a\\\": 1}\""),
            ("bell\u{7}", "\"bell\\u0007\""),
            ("héllo", "héllo"),
        ];
        for (input, expected) in cases {
            assert_eq!(yaml_string(input), expected, "for {input:?}");
        }
    }
}
