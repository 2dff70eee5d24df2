//! Usage for billing (not in upstream): finished executions summed per project and function
//! over a time range — counts, duration, CPU time, GiB-seconds (memory limit in GiB × seconds
//! run, as clouds bill "GB-s") and the peak memory seen. The store sums in SQL; this module
//! parses and checks the range, decides whose usage the caller may read, and adds the totals.
//!
//! An execution belongs to the range its `created_at` falls in: `since` inclusive, `until`
//! exclusive (default: now), so consecutive ranges never count one twice.

use qinling_store::{Scope, UsageGroup, UsageQuery, UsageRow};
use qinling_types::{Error, RequestContext, Timestamp, now};

use crate::Engine;
use crate::scope::{self, ListQuery, OwnProject};

/// A usage request as the caller gave it; times and grouping are checked here.
#[derive(Debug, Clone, Default)]
pub struct UsageRequest {
    /// Another project's usage (admins; a non-admin may name only their own).
    pub project_id: Option<String>,
    /// Every project's usage (admins).
    pub all_projects: bool,
    pub function_id: Option<String>,
    /// RFC 3339 / ISO 8601, or a date `YYYY-MM-DD` (midnight UTC); inclusive.
    pub since: Option<String>,
    /// As `since`; exclusive; default now.
    pub until: Option<String>,
    /// `function` (default) or `project`.
    pub group_by: Option<String>,
}

/// The answer: one row per group, and their totals.
#[derive(Debug, Clone)]
pub struct Usage {
    pub since: Option<Timestamp>,
    pub until: Timestamp,
    pub group_by: UsageGroup,
    pub rows: Vec<UsageRow>,
    /// The rows summed (`project_id` empty, no function).
    pub totals: UsageRow,
}

/// The wire name of a grouping.
pub fn group_name(g: UsageGroup) -> &'static str {
    g.as_str()
}

/// A range bound: RFC 3339 (an offset or `Z`, optional fraction), a naive
/// `YYYY-MM-DD[T ]HH:MM[:SS]` taken as UTC, or a date `YYYY-MM-DD` meaning its midnight UTC.
pub fn parse_bound(what: &str, raw: &str) -> Result<Timestamp, Error> {
    let raw = raw.trim();
    let date = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(raw, date) {
        return Ok(d.midnight().assume_utc());
    }
    crate::jobs::parse_time(raw).map_err(|_| {
        Error::input(format!(
            "Invalid {what} '{raw}': use an ISO 8601 / RFC 3339 time such as 2026-11-28T06:48:38Z or a date such as 2026-11-28 (UTC)."
        ))
    })
}

/// Whose usage `ctx` reads: a named project (their own, or any for admins), every project
/// (admins), else their own.
fn scope(ctx: &RequestContext, req: &UsageRequest) -> Result<Scope, Error> {
    let q = ListQuery {
        project_id: req.project_id.clone(),
        all_projects: req.all_projects,
    };
    scope::for_list(ctx, &q, OwnProject::Allowed)
}

impl Engine {
    /// Usage as `req` asks, for `ctx`. Non-admins read their own project only.
    pub async fn usage(&self, ctx: &RequestContext, req: &UsageRequest) -> Result<Usage, Error> {
        let scope = scope(ctx, req)?;
        let group_by = match req.group_by.as_deref().map(str::trim) {
            None | Some("function") => UsageGroup::Function,
            Some("project") => UsageGroup::Project,
            Some(other) => {
                return Err(Error::input(format!(
                    "Invalid group_by '{other}': use function or project."
                )));
            }
        };
        let since = req
            .since
            .as_deref()
            .map(|s| parse_bound("since", s))
            .transpose()?;
        let until = match req.until.as_deref() {
            Some(u) => parse_bound("until", u)?,
            None => now(),
        };
        if let Some(since) = since
            && since > until
        {
            return Err(Error::input(format!(
                "since ({}) is after until ({}): give a range that starts before it ends.",
                req.since.as_deref().unwrap_or_default().trim(),
                req.until.as_deref().unwrap_or("now").trim()
            )));
        }
        let rows = self
            .inner
            .store
            .usage(&UsageQuery {
                scope,
                function_id: req.function_id.clone(),
                since,
                until,
                group_by,
            })
            .await?;
        let mut totals = UsageRow::default();
        for r in &rows {
            totals.add(r);
        }
        Ok(Usage {
            since,
            until,
            group_by,
            rows,
            totals,
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn scopes() {
        let ctx = |is_admin| RequestContext {
            project_id: "mine".into(),
            user_id: None,
            is_admin,
            request_id: "req-1".into(),
        };
        let req = |project: Option<&str>, all_projects| UsageRequest {
            project_id: project.map(str::to_string),
            all_projects,
            ..UsageRequest::default()
        };
        let name = |s: Result<Scope, Error>| match s {
            Ok(Scope::Project(p)) => p,
            Ok(Scope::All) => "*".into(),
            Err(e) => format!("refused: {e}"),
        };
        let refused = format!("refused: {}", crate::auth::policy::NOT_ALLOWED);
        for is_admin in [false, true] {
            assert_eq!(name(scope(&ctx(is_admin), &req(None, false))), "mine");
            assert_eq!(
                name(scope(&ctx(is_admin), &req(Some("mine"), false))),
                "mine"
            );
        }
        assert_eq!(
            name(scope(&ctx(false), &req(Some("other"), false))),
            refused
        );
        assert_eq!(name(scope(&ctx(false), &req(None, true))), refused);
        assert_eq!(name(scope(&ctx(true), &req(Some("other"), false))), "other");
        assert_eq!(name(scope(&ctx(true), &req(Some("other"), true))), "other");
        assert_eq!(name(scope(&ctx(true), &req(None, true))), "*");
    }

    #[test]
    fn bounds() {
        let cases = [
            ("2026-11-28", datetime!(2026-11-28 00:00 UTC)),
            (" 2026-11-28T06:48:38Z ", datetime!(2026-11-28 06:48:38 UTC)),
            (
                "2026-11-28T06:48:38.25+02:00",
                datetime!(2026-11-28 04:48:38.25 UTC),
            ),
            ("2026-11-28 06:48", datetime!(2026-11-28 06:48 UTC)),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_bound("since", raw).unwrap(), want, "{raw}");
        }
        for raw in [
            "yesterday",
            "2026-13-01",
            "28/11/2026",
            "",
            "2026-11-28T25:00Z",
        ] {
            let err = parse_bound("until", raw).unwrap_err().to_string();
            assert!(
                err.contains(&format!("Invalid until '{}'", raw.trim()))
                    && err.contains("2026-11-28T06:48:38Z"),
                "{raw}: {err}"
            );
        }
    }
}
