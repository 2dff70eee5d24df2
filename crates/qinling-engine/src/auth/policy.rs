//! Authorization policy (reference §6): named actions (`runtime:create`,
//! `function:get_all:all_projects`, …) mapped to oslo.policy-style rules such as
//! `rule:context_is_admin` or `role:admin or project_id:%(project_id)s`. The defaults are
//! upstream's `etc/policy.json.sample`; an operator's policy file (JSON or TOML, action →
//! rule) overrides them action by action. Pure logic: no IO, the caller passes who is asking
//! ([`Identity`]) and the target's project.

use std::collections::HashMap;

use qinling_types::{Error, RequestContext};

/// Who a request is, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub project_id: String,
    pub user_id: Option<String>,
    pub roles: Vec<String>,
}

impl Identity {
    /// Upstream's `is_admin`: the role list contains `admin`.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    /// The domain request context of this identity.
    pub fn context(&self, request_id: String) -> RequestContext {
        RequestContext {
            project_id: self.project_id.clone(),
            user_id: self.user_id.clone(),
            is_admin: self.is_admin(),
            request_id,
        }
    }
}

/// The message of every policy refusal (upstream's `NotAllowedException`).
pub const NOT_ALLOWED: &str = "Operation not allowed";

/// Upstream's defaults (`etc/policy.json.sample`), plus the same admin-only rule for the
/// quota changes this server adds.
const DEFAULTS: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin or is_admin:1"),
    ("owner", "project_id:%(project_id)s"),
    ("admin_or_owner", "rule:context_is_admin or rule:owner"),
    ("default", "rule:admin_or_owner"),
    ("runtime:create", "rule:context_is_admin"),
    ("runtime:update", "rule:context_is_admin"),
    ("runtime:delete", "rule:context_is_admin"),
    ("runtime_pool:get_all", "rule:context_is_admin"),
    ("node:get_all", "rule:context_is_admin"),
    ("function:get_all:all_projects", "rule:context_is_admin"),
    ("function_worker:get_all", "rule:context_is_admin"),
    ("function:scale_up", "rule:context_is_admin"),
    ("function:scale_down", "rule:context_is_admin"),
    ("function:detach", "rule:context_is_admin"),
    ("function_version:scale_up", "rule:context_is_admin"),
    ("function_version:scale_down", "rule:context_is_admin"),
    ("function_version:detach", "rule:context_is_admin"),
    ("execution:get_all:all_projects", "rule:context_is_admin"),
    ("webhook:get_all:all_projects", "rule:context_is_admin"),
    ("job:get_all:all_projects", "rule:context_is_admin"),
    // Not in upstream (its alias and version lists had no cross-project filter checks).
    (
        "function_alias:get_all:all_projects",
        "rule:context_is_admin",
    ),
    (
        "function_version:get_all:all_projects",
        "rule:context_is_admin",
    ),
    // Quotas are not in upstream: reading one's own is allowed, changing is for admins.
    ("quota:get", "rule:admin_or_owner"),
    ("quota:update", "rule:context_is_admin"),
    // `/metrics` names every project's runtimes and request counts.
    ("metrics:get", "rule:context_is_admin"),
    // Usage for billing (`GET /v1/usage`): one's own project, or any (and all) for admins.
    ("usage:get", "rule:admin_or_owner"),
    ("usage:get:all_projects", "rule:context_is_admin"),
];

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Always,
    Never,
    Role(String),
    Named(String),
    IsAdmin(bool),
    /// `project_id:%(project_id)s`: the caller's project is the target's.
    OwnerProject,
    /// `user_id:%(user_id)s`: the caller is the target's user.
    OwnerUser,
    /// `project_id:<literal>`.
    Project(String),
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
}

/// A policy file or rule that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("rule for '{action}' is invalid: {why}")]
    Rule { action: String, why: String },
    #[error("policy file is neither a JSON nor a TOML table of action = \"rule\" strings")]
    Format,
    #[error("rule '{0}' refers to itself through rule:")]
    Cycle(String),
}

/// The target of an action: whose object it is.
#[derive(Debug, Clone, Default)]
pub struct Target<'a> {
    pub project_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
}

/// A set of rules by action name.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: HashMap<String, Rule>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::with_overrides(std::iter::empty::<(String, String)>())
            .expect("the built-in policy parses")
    }
}

impl Policy {
    /// The defaults with `overrides` (action → rule text) applied.
    pub fn with_overrides<I, K, V>(overrides: I) -> Result<Policy, PolicyError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: AsRef<str>,
    {
        let mut rules = HashMap::new();
        let all = DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(
                overrides
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.as_ref().to_string())),
            );
        for (action, text) in all {
            let rule = parse(&text).map_err(|why| PolicyError::Rule {
                action: action.clone(),
                why,
            })?;
            rules.insert(action, rule);
        }
        let policy = Policy { rules };
        for name in policy.rules.keys() {
            policy.check_cycles(name, &mut Vec::new())?;
        }
        Ok(policy)
    }

    /// Parses a policy file: a JSON object or a TOML table of `"action" = "rule"`.
    pub fn from_file_text(text: &str) -> Result<Policy, PolicyError> {
        let map: HashMap<String, String> = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(_) => toml::from_str(text).map_err(|_| PolicyError::Format)?,
        };
        Policy::with_overrides(map)
    }

    /// Whether `who` may do `action` on `target`; a refusal is a 403 `Operation not allowed`.
    /// Actions without a rule fall to `default`.
    pub fn enforce(&self, action: &str, who: &Identity, target: &Target<'_>) -> Result<(), Error> {
        if self.allows(action, who, target) {
            Ok(())
        } else {
            tracing::info!(action, project_id = %who.project_id, "refused by policy");
            Err(Error::NotAllowed(NOT_ALLOWED.into()))
        }
    }

    pub fn allows(&self, action: &str, who: &Identity, target: &Target<'_>) -> bool {
        let rule = self
            .rules
            .get(action)
            .or_else(|| self.rules.get("default"))
            .unwrap_or(&Rule::Never);
        self.eval(rule, who, target)
    }

    fn eval(&self, rule: &Rule, who: &Identity, target: &Target<'_>) -> bool {
        match rule {
            Rule::Always => true,
            Rule::Never => false,
            Rule::Role(r) => who.roles.iter().any(|have| have.eq_ignore_ascii_case(r)),
            // Cycles are refused when the policy is built, so this recursion ends.
            Rule::Named(n) => self.rules.get(n).is_some_and(|r| self.eval(r, who, target)),
            Rule::IsAdmin(want) => who.is_admin() == *want,
            Rule::OwnerProject => target.project_id == Some(who.project_id.as_str()),
            Rule::OwnerUser => who.user_id.is_some() && target.user_id == who.user_id.as_deref(),
            Rule::Project(p) => &who.project_id == p,
            Rule::And(rs) => rs.iter().all(|r| self.eval(r, who, target)),
            Rule::Or(rs) => rs.iter().any(|r| self.eval(r, who, target)),
            Rule::Not(r) => !self.eval(r, who, target),
        }
    }

    fn check_cycles(&self, name: &str, path: &mut Vec<String>) -> Result<(), PolicyError> {
        if path.iter().any(|p| p == name) {
            return Err(PolicyError::Cycle(name.to_string()));
        }
        let Some(rule) = self.rules.get(name) else {
            return Ok(());
        };
        path.push(name.to_string());
        let mut named = Vec::new();
        collect_named(rule, &mut named);
        for n in named {
            self.check_cycles(&n, path)?;
        }
        path.pop();
        Ok(())
    }
}

fn collect_named(rule: &Rule, out: &mut Vec<String>) {
    match rule {
        Rule::Named(n) => out.push(n.clone()),
        Rule::And(rs) | Rule::Or(rs) => rs.iter().for_each(|r| collect_named(r, out)),
        Rule::Not(r) => collect_named(r, out),
        _ => {}
    }
}

/// Parses oslo.policy's text syntax: `or` < `and` < `not`, parentheses, and the atoms `@`,
/// `!`, `role:R`, `rule:N`, `is_admin:1|0|True|False`, `project_id:%(project_id)s`,
/// `user_id:%(user_id)s`, `project_id:<literal>`. An empty rule allows everyone.
fn parse(text: &str) -> Result<Rule, String> {
    // As oslo.policy: words split on whitespace, with leading '(' and trailing ')' peeled off
    // (so `%(project_id)s` keeps its own parentheses).
    let mut tokens: Vec<&str> = Vec::new();
    for word in text.split_whitespace() {
        let mut w = word;
        while let Some(rest) = w.strip_prefix('(') {
            tokens.push("(");
            w = rest;
        }
        let mut closing = 0;
        while let Some(rest) = w.strip_suffix(')')
            && !rest.ends_with("%(project_id")
            && !rest.ends_with("%(user_id")
        {
            closing += 1;
            w = rest;
        }
        if !w.is_empty() {
            tokens.push(w);
        }
        tokens.extend(std::iter::repeat_n(")", closing));
    }
    if tokens.is_empty() {
        return Ok(Rule::Always);
    }
    let mut pos = 0;
    let rule = parse_or(&tokens, &mut pos)?;
    if pos != tokens.len() {
        return Err(format!("unexpected '{}'", tokens[pos]));
    }
    Ok(rule)
}

fn parse_or(t: &[&str], pos: &mut usize) -> Result<Rule, String> {
    let mut parts = vec![parse_and(t, pos)?];
    while t.get(*pos).is_some_and(|w| w.eq_ignore_ascii_case("or")) {
        *pos += 1;
        parts.push(parse_and(t, pos)?);
    }
    Ok(if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        Rule::Or(parts)
    })
}

fn parse_and(t: &[&str], pos: &mut usize) -> Result<Rule, String> {
    let mut parts = vec![parse_not(t, pos)?];
    while t.get(*pos).is_some_and(|w| w.eq_ignore_ascii_case("and")) {
        *pos += 1;
        parts.push(parse_not(t, pos)?);
    }
    Ok(if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        Rule::And(parts)
    })
}

fn parse_not(t: &[&str], pos: &mut usize) -> Result<Rule, String> {
    if t.get(*pos).is_some_and(|w| w.eq_ignore_ascii_case("not")) {
        *pos += 1;
        return Ok(Rule::Not(Box::new(parse_not(t, pos)?)));
    }
    match t.get(*pos) {
        None => Err("rule ends too early".into()),
        Some(&"(") => {
            *pos += 1;
            let inner = parse_or(t, pos)?;
            if t.get(*pos) != Some(&")") {
                return Err("missing ')'".into());
            }
            *pos += 1;
            Ok(inner)
        }
        Some(atom) => {
            *pos += 1;
            parse_atom(atom)
        }
    }
}

fn parse_atom(atom: &str) -> Result<Rule, String> {
    match atom {
        "@" => return Ok(Rule::Always),
        "!" => return Ok(Rule::Never),
        _ => {}
    }
    let (kind, value) = atom
        .split_once(':')
        .ok_or_else(|| format!("'{atom}' is not a check such as role:admin"))?;
    match (kind, value) {
        ("role", r) if !r.is_empty() => Ok(Rule::Role(r.to_string())),
        ("rule", n) if !n.is_empty() => Ok(Rule::Named(n.to_string())),
        ("is_admin", v) => match v.to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(Rule::IsAdmin(true)),
            "0" | "false" => Ok(Rule::IsAdmin(false)),
            _ => Err(format!("is_admin takes 1 or 0, not '{v}'")),
        },
        ("project_id", "%(project_id)s") => Ok(Rule::OwnerProject),
        ("user_id", "%(user_id)s") => Ok(Rule::OwnerUser),
        ("project_id", p) if !p.is_empty() && !p.contains('%') => Ok(Rule::Project(p.to_string())),
        _ => Err(format!("unsupported check '{atom}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(project: &str, roles: &[&str]) -> Identity {
        Identity {
            project_id: project.into(),
            user_id: Some(format!("{project}-user")),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn own(p: &str) -> Target<'_> {
        Target {
            project_id: Some(p),
            user_id: None,
        }
    }

    #[test]
    fn defaults_follow_upstream() {
        let p = Policy::default();
        let admin = who("a", &["admin"]);
        let member = who("b", &["member"]);
        for action in [
            "runtime:create",
            "runtime:update",
            "runtime:delete",
            "runtime_pool:get_all",
            "function:get_all:all_projects",
            "function_worker:get_all",
            "function:scale_up",
            "function:scale_down",
            "function:detach",
            "function_version:detach",
            "execution:get_all:all_projects",
            "webhook:get_all:all_projects",
            "job:get_all:all_projects",
            "quota:update",
        ] {
            assert!(p.allows(action, &admin, &own("a")), "{action} admin");
            assert!(!p.allows(action, &member, &own("b")), "{action} member");
        }
        // Everything else falls to `default` = admin or owner.
        assert!(p.allows("function:create", &member, &own("b")));
        assert!(!p.allows("function:create", &member, &own("a")));
        assert!(p.allows("quota:get", &member, &own("b")));
        assert!(!p.allows("quota:get", &member, &own("a")));
        assert!(p.allows("quota:get", &admin, &own("b")));
        let err = p.enforce("runtime:create", &member, &own("b")).unwrap_err();
        assert!(matches!(err, Error::NotAllowed(m) if m == NOT_ALLOWED));
    }

    #[test]
    fn parses_the_rule_language() {
        let cases: &[(&str, &[&str], &str, bool)] = &[
            ("", &[], "x", true),
            ("@", &[], "x", true),
            ("!", &["admin"], "p", false),
            ("role:reader", &["Reader"], "x", true),
            ("role:reader or role:admin", &["member"], "x", false),
            ("role:a and role:b", &["a", "b"], "x", true),
            ("role:a and role:b", &["a"], "x", false),
            ("not role:a", &["b"], "x", true),
            (
                "(role:a or role:b) and project_id:%(project_id)s",
                &["b"],
                "p",
                true,
            ),
            (
                "(role:a or role:b) and project_id:%(project_id)s",
                &["b"],
                "q",
                false,
            ),
            ("role:a or role:b and role:c", &["a"], "x", true),
            ("project_id:p", &[], "x", true),
            ("is_admin:0", &["member"], "x", true),
            ("user_id:%(user_id)s", &[], "x", false),
        ];
        for (text, roles, target, want) in cases {
            let p = Policy::with_overrides([("t", *text)]).unwrap();
            assert_eq!(
                p.allows("t", &who("p", roles), &own(target)),
                *want,
                "{text:?} roles {roles:?} target {target}"
            );
        }
    }

    #[test]
    fn bad_rules_are_refused() {
        for text in [
            "role:",
            "rule",
            "(role:a",
            "role:a or",
            "is_admin:maybe",
            "x:y",
            "role:a )",
        ] {
            assert!(
                Policy::with_overrides([("t", text)]).is_err(),
                "{text:?} should not parse"
            );
        }
        let err = Policy::with_overrides([("a", "rule:b"), ("b", "rule:a")]).unwrap_err();
        assert!(matches!(err, PolicyError::Cycle(_)), "{err}");
    }

    #[test]
    fn policy_files_in_json_and_toml_override_defaults() {
        let json = r#"{"runtime:create": "role:operator", "function:create": "!"}"#;
        let toml = "\"runtime:create\" = \"role:operator\"\n\"function:create\" = \"!\"\n";
        for text in [json, toml] {
            let p = Policy::from_file_text(text).unwrap();
            assert!(p.allows("runtime:create", &who("b", &["operator"]), &own("b")));
            assert!(!p.allows("runtime:create", &who("a", &["admin"]), &own("a")));
            assert!(!p.allows("function:create", &who("a", &["admin"]), &own("a")));
            // Untouched defaults stay.
            assert!(!p.allows("runtime:delete", &who("b", &["operator"]), &own("b")));
        }
        assert!(matches!(
            Policy::from_file_text("[1, 2]"),
            Err(PolicyError::Format)
        ));
    }
}
