//! Whose rows a caller sees: the one rule for every resource. A read by id sees the caller's
//! project, or every project for admins ([`by_id`]); a list sees the caller's project unless
//! the caller names another project or all of them, which only admins may ([`for_list`]). The
//! HTTP edge hands over the caller's [`RequestContext`] and a [`ListQuery`]; the store gets
//! the resulting [`Scope`] and enforces it in its `WHERE` clause.

use qinling_store::{Filter, Scope};
use qinling_types::{Error, RequestContext};

use crate::auth::policy::NOT_ALLOWED;

/// Which projects a list asks for (`project_id`, `all_projects` of the query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// One project's rows (wins over `all_projects`).
    pub project_id: Option<String>,
    /// Every project's rows.
    pub all_projects: bool,
}

/// Whether a non-admin may name their own project in `project_id`: the v1 lists refuse any
/// `project_id` from a non-admin (as upstream, whose policy treats it as `all_projects`);
/// `GET /v1/usage` accepts the caller's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnProject {
    Refused,
    Allowed,
}

/// The scope of a read by id: admins see every project, others their own.
pub(crate) fn by_id(ctx: &RequestContext) -> Scope {
    if ctx.is_admin {
        Scope::All
    } else {
        Scope::Project(ctx.project_id.clone())
    }
}

/// Whether a row of `project_id` is visible to `ctx` by id (the same rule as [`by_id`], for
/// rows already in hand).
pub(crate) fn visible(ctx: &RequestContext, project_id: &str) -> bool {
    ctx.is_admin || ctx.project_id == project_id
}

/// The scope of a list: the named project (admins; the caller's own where `own` allows),
/// every project (admins), else the caller's own. Anything else is 403.
pub(crate) fn for_list(
    ctx: &RequestContext,
    q: &ListQuery,
    own: OwnProject,
) -> Result<Scope, Error> {
    let refused = || Error::NotAllowed(NOT_ALLOWED.into());
    match (&q.project_id, q.all_projects) {
        (Some(p), _) if ctx.is_admin || (own == OwnProject::Allowed && *p == ctx.project_id) => {
            Ok(Scope::Project(p.clone()))
        }
        (Some(_), _) => Err(refused()),
        (None, true) if ctx.is_admin => Ok(Scope::All),
        (None, true) => Err(refused()),
        (None, false) => Ok(Scope::Project(ctx.project_id.clone())),
    }
}

/// An execution list: the projects, and filters with Qinling's operator prefixes (`eq:`,
/// `in:`, `has:`, …) as the query string gave them.
#[derive(Debug, Clone, Default)]
pub struct ExecutionQuery {
    pub projects: ListQuery,
    pub function_id: Option<String>,
    pub status: Option<String>,
    pub description: Option<String>,
}

impl ExecutionQuery {
    pub(crate) fn filter(&self) -> qinling_store::ExecutionFilter {
        let parse = |v: &Option<String>| v.as_deref().map(Filter::parse);
        qinling_store::ExecutionFilter {
            function_id: parse(&self.function_id),
            status: parse(&self.status),
            description: parse(&self.description),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(is_admin: bool) -> RequestContext {
        RequestContext {
            project_id: "mine".into(),
            user_id: None,
            is_admin,
            request_id: "req-1".into(),
        }
    }

    fn q(project: Option<&str>, all_projects: bool) -> ListQuery {
        ListQuery {
            project_id: project.map(str::to_string),
            all_projects,
        }
    }

    fn name(s: Result<Scope, Error>) -> String {
        match s {
            Ok(Scope::Project(p)) => p,
            Ok(Scope::All) => "*".into(),
            Err(e) => format!("refused: {e}"),
        }
    }

    /// (admin, project_id, all_projects, own project allowed) → the scope.
    #[test]
    fn list_scope_rule() {
        let refused = format!("refused: {NOT_ALLOWED}");
        let cases: &[(bool, Option<&str>, bool, OwnProject, &str)] = &[
            (false, None, false, OwnProject::Refused, "mine"),
            (false, None, true, OwnProject::Refused, &refused),
            (false, Some("mine"), false, OwnProject::Refused, &refused),
            (false, Some("other"), false, OwnProject::Refused, &refused),
            (false, Some("mine"), false, OwnProject::Allowed, "mine"),
            (false, Some("mine"), true, OwnProject::Allowed, "mine"),
            (false, Some("other"), false, OwnProject::Allowed, &refused),
            (false, None, true, OwnProject::Allowed, &refused),
            (true, None, false, OwnProject::Refused, "mine"),
            (true, None, true, OwnProject::Refused, "*"),
            (true, Some("other"), false, OwnProject::Refused, "other"),
            (true, Some("other"), true, OwnProject::Refused, "other"),
            (true, Some("other"), true, OwnProject::Allowed, "other"),
        ];
        for (admin, project, all, own, want) in cases {
            assert_eq!(
                name(for_list(&ctx(*admin), &q(*project, *all), *own)),
                *want,
                "admin={admin} project_id={project:?} all_projects={all} {own:?}"
            );
        }
    }

    #[test]
    fn reads_by_id() {
        assert_eq!(by_id(&ctx(true)), Scope::All);
        assert_eq!(by_id(&ctx(false)), Scope::Project("mine".into()));
        assert!(visible(&ctx(false), "mine"));
        assert!(!visible(&ctx(false), "other"));
        assert!(visible(&ctx(true), "other"));
    }

    #[test]
    fn execution_filters_keep_their_operators() {
        let q = ExecutionQuery {
            status: Some("in:success,failed".into()),
            description: Some("has:Job".into()),
            ..ExecutionQuery::default()
        };
        let f = q.filter();
        assert_eq!(f.function_id, None);
        assert_eq!(f.status, Some(Filter::parse("in:success,failed")));
        assert_eq!(f.description, Some(Filter::parse("has:Job")));
    }
}
