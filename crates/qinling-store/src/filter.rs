//! List filters with Qinling's operator prefixes (`eq:`, `neq:`, `in:`, `nin:`, `gt:`,
//! `gte:`, `lt:`, `lte:`, `has:`; reference §2.5), turned into bound SQL conditions.

/// A comparison operator of a list filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Neq,
    In,
    Nin,
    Gt,
    Gte,
    Lt,
    Lte,
    Has,
}

/// One filter on one column: `column <op> values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub op: FilterOp,
    pub values: Vec<String>,
}

impl Filter {
    /// Parses a query value with an optional operator prefix. A value without a known prefix
    /// is an equality test on the whole value.
    pub fn parse(raw: &str) -> Filter {
        let ops = [
            ("eq:", FilterOp::Eq),
            ("neq:", FilterOp::Neq),
            ("in:", FilterOp::In),
            ("nin:", FilterOp::Nin),
            ("gte:", FilterOp::Gte),
            ("gt:", FilterOp::Gt),
            ("lte:", FilterOp::Lte),
            ("lt:", FilterOp::Lt),
            ("has:", FilterOp::Has),
        ];
        for (prefix, op) in ops {
            if let Some(rest) = raw.strip_prefix(prefix) {
                let values = match op {
                    FilterOp::In | FilterOp::Nin => rest.split(',').map(str::to_string).collect(),
                    _ => vec![rest.to_string()],
                };
                return Filter { op, values };
            }
        }
        Filter {
            op: FilterOp::Eq,
            values: vec![raw.to_string()],
        }
    }

    /// Appends `AND <column> <op> $N…` to `sql` and the values to `binds` (numbered after
    /// those already in `binds`). `ilike` is the dialect's case-insensitive `LIKE`.
    pub(crate) fn push_sql(
        &self,
        column: &str,
        ilike: &str,
        sql: &mut String,
        binds: &mut Vec<String>,
    ) {
        let first = binds.len() + 1;
        let placeholders = (first..first + self.values.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let p = format!("${first}");
        let cond = match self.op {
            FilterOp::Eq => format!("{column} = {p}"),
            FilterOp::Neq => format!("({column} IS NULL OR {column} != {p})"),
            FilterOp::In => format!("{column} IN ({placeholders})"),
            FilterOp::Nin => format!("({column} IS NULL OR {column} NOT IN ({placeholders}))"),
            FilterOp::Gt => format!("{column} > {p}"),
            FilterOp::Gte => format!("{column} >= {p}"),
            FilterOp::Lt => format!("{column} < {p}"),
            FilterOp::Lte => format!("{column} <= {p}"),
            FilterOp::Has => format!("{column} {ilike} {p} ESCAPE '\\'"),
        };
        sql.push_str(" AND ");
        sql.push_str(&cond);
        for v in &self.values {
            if self.op == FilterOp::Has {
                let escaped = v
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                binds.push(format!("%{escaped}%"));
            } else {
                binds.push(v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let cases = [
            ("success", FilterOp::Eq, vec!["success"]),
            ("eq:a:b", FilterOp::Eq, vec!["a:b"]),
            ("neq:success", FilterOp::Neq, vec!["success"]),
            ("in:a,b", FilterOp::In, vec!["a", "b"]),
            ("nin:a", FilterOp::Nin, vec!["a"]),
            ("gte:5", FilterOp::Gte, vec!["5"]),
            ("gt:5", FilterOp::Gt, vec!["5"]),
            ("has:Job", FilterOp::Has, vec!["Job"]),
            ("unknown:x", FilterOp::Eq, vec!["unknown:x"]),
        ];
        for (raw, op, values) in cases {
            assert_eq!(
                Filter::parse(raw),
                Filter {
                    op,
                    values: values.into_iter().map(String::from).collect()
                },
                "{raw}"
            );
        }
    }
}
