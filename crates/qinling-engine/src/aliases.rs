//! Function aliases (reference §3.5): create, list, show, update, delete, addressed by name
//! within the caller's project. Function and versions are validated (upstream: unchecked or a
//! 500), and an alias in use by a job or webhook cannot be deleted. Beyond upstream, an alias
//! may split executions between two versions by weight; one is picked per execution. What an execution runs is an [`ExecutionTarget`] — a function version or an alias —
//! and [`Engine::resolve_target`] is the one place an alias becomes a function version, for
//! executions made by a request, a job tick or a webhook.

use qinling_types::FunctionId;
use qinling_types::{Error, FunctionAlias, RequestContext, new_id, now};

use crate::Engine;
use crate::scope::{self, ListQuery, OwnProject};

/// What an execution runs: a function at a version (0 is the function itself), or an alias
/// of the acting project, resolved when the execution is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionTarget {
    Function { id: FunctionId, version: i64 },
    Alias(String),
}

impl ExecutionTarget {
    /// The target a request or a stored job/webhook names: the alias when it names one (it
    /// takes precedence, as upstream), else the function at `version`; `None` when neither.
    pub fn named(
        alias: Option<&str>,
        function_id: Option<&str>,
        version: i64,
    ) -> Option<ExecutionTarget> {
        match (alias, function_id) {
            (Some(name), _) => Some(ExecutionTarget::Alias(name.to_string())),
            (None, Some(id)) => Some(ExecutionTarget::Function {
                id: FunctionId::new(id),
                version,
            }),
            (None, None) => None,
        }
    }

    /// The alias name, if the target is one (recorded on the execution).
    pub fn alias(&self) -> Option<&str> {
        match self {
            ExecutionTarget::Alias(name) => Some(name),
            ExecutionTarget::Function { .. } => None,
        }
    }
}

/// An alias-create request.
#[derive(Debug, Clone)]
pub struct CreateAlias {
    pub name: String,
    pub function_id: FunctionId,
    pub function_version: i64,
    pub description: Option<String>,
    pub additional_version: Option<i64>,
    pub additional_version_weight: Option<i64>,
}

/// An alias-update request; `None` leaves a field unchanged. The weighted pair is replaced
/// together: `Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct UpdateAlias {
    pub function_id: Option<FunctionId>,
    pub function_version: Option<i64>,
    pub description: Option<String>,
    pub additional: Option<Option<(i64, i64)>>,
}

fn alias_not_found(name: &str) -> Error {
    Error::NotFound {
        kind: "FunctionAlias",
        key: format!("name={name}"),
    }
}

impl Engine {
    pub async fn create_alias(
        &self,
        ctx: &RequestContext,
        req: CreateAlias,
    ) -> Result<FunctionAlias, Error> {
        if req.name.trim().is_empty() {
            return Err(Error::input("Alias name must not be empty."));
        }
        crate::text::check_name("name", Some(&req.name))?;
        crate::text::check_description("description", req.description.as_deref())?;
        if req.additional_version.is_some() != req.additional_version_weight.is_some() {
            return Err(Error::input(
                "additional_version and additional_version_weight go together: send both or neither.",
            ));
        }
        let additional = req.additional_version.zip(req.additional_version_weight);
        let alias = FunctionAlias {
            id: new_id(),
            name: req.name,
            description: req.description,
            function_id: req.function_id,
            function_version: req.function_version,
            additional_version: additional.map(|(v, _)| v),
            additional_version_weight: additional.map(|(_, w)| w as u32),
            project_id: ctx.project_id.clone(),
            created_at: now(),
            updated_at: None,
        };
        self.check_alias(ctx, &alias, additional).await?;
        self.inner.store.put_alias(&alias).await?;
        Ok(alias)
    }

    /// Validates an alias's target and uniqueness before it is stored.
    async fn check_alias(
        &self,
        ctx: &RequestContext,
        alias: &FunctionAlias,
        additional: Option<(i64, i64)>,
    ) -> Result<(), Error> {
        let function = self.get_function(ctx, &alias.function_id).await?;
        let function = self
            .function_at_version(function, alias.function_version)
            .await?;
        if let Some((version, weight)) = additional {
            if !(1..=99).contains(&weight) {
                return Err(Error::input(format!(
                    "additional_version_weight {weight} is out of range: give the percent of executions (1 to 99) that go to additional_version."
                )));
            }
            if version == alias.function_version {
                return Err(Error::input(
                    "additional_version must differ from function_version.",
                ));
            }
            self.function_at_version(function, version).await?;
        }
        let store = &self.inner.store;
        if let Some(other) = store.get_alias(&ctx.project_id, &alias.name).await?
            && other.id != alias.id
        {
            return Err(Error::input(
                "Duplicate entry for function_aliases: ['project_id', 'name']",
            ));
        }
        let same_target = store
            .aliases_of_function(&alias.function_id, Some(alias.function_version))
            .await?;
        if same_target.iter().any(|a| {
            a.id != alias.id
                && a.project_id == alias.project_id
                && a.function_version == alias.function_version
        }) {
            return Err(Error::input(
                "Duplicate entry for function_aliases: ['project_id', 'function_id', 'function_version']",
            ));
        }
        Ok(())
    }

    pub async fn get_alias(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<FunctionAlias, Error> {
        self.inner
            .store
            .get_alias(&ctx.project_id, name)
            .await?
            .ok_or_else(|| alias_not_found(name))
    }

    pub async fn list_aliases(
        &self,
        ctx: &RequestContext,
        q: &ListQuery,
    ) -> Result<Vec<FunctionAlias>, Error> {
        let scope = scope::for_list(ctx, q, OwnProject::Refused)?;
        Ok(self.inner.store.list_aliases(&scope).await?)
    }

    pub async fn update_alias(
        &self,
        ctx: &RequestContext,
        name: &str,
        req: UpdateAlias,
    ) -> Result<FunctionAlias, Error> {
        crate::text::check_description("description", req.description.as_deref())?;
        let mut alias = self.get_alias(ctx, name).await?;
        if let Some(f) = req.function_id {
            alias.function_id = f;
        }
        if let Some(v) = req.function_version {
            alias.function_version = v;
        }
        if let Some(d) = req.description {
            alias.description = Some(d);
        }
        if let Some(additional) = req.additional {
            alias.additional_version = additional.map(|(v, _)| v);
            alias.additional_version_weight = additional.map(|(_, w)| w as u32);
        }
        let additional = alias
            .additional_version
            .zip(alias.additional_version_weight.map(i64::from));
        alias.updated_at = Some(now());
        self.check_alias(ctx, &alias, additional).await?;
        self.inner.store.put_alias(&alias).await?;
        Ok(alias)
    }

    /// Deletes an alias unless a job or webhook still uses it.
    pub async fn delete_alias(&self, ctx: &RequestContext, name: &str) -> Result<(), Error> {
        let alias = self.get_alias(ctx, name).await?;
        let store = &self.inner.store;
        if store.jobs_of_alias(&alias.project_id, &alias.name).await? > 0 {
            return Err(Error::NotAllowed(
                "The alias is still associated with running job(s).".into(),
            ));
        }
        if store
            .webhooks_of_alias(&alias.project_id, &alias.name)
            .await?
            > 0
        {
            return Err(Error::NotAllowed(
                "The alias is still associated with webhook(s).".into(),
            ));
        }
        store.delete_alias(&alias.id).await?;
        Ok(())
    }

    /// The function and version `target` runs for work acting in `project_id` (a request's
    /// caller, a job's or a webhook's owner).
    pub(crate) async fn resolve_target(
        &self,
        project_id: &str,
        target: &ExecutionTarget,
    ) -> Result<(FunctionId, i64), Error> {
        match target {
            ExecutionTarget::Function { id, version } => Ok((id.clone(), *version)),
            ExecutionTarget::Alias(name) => self.resolve_alias_in(project_id, name).await,
        }
    }

    /// The function and version an execution through alias `name` of `project_id` runs; a
    /// weighted alias picks its additional version with the configured probability.
    async fn resolve_alias_in(
        &self,
        project_id: &str,
        name: &str,
    ) -> Result<(FunctionId, i64), Error> {
        let alias = self
            .inner
            .store
            .get_alias(project_id, name)
            .await?
            .ok_or_else(|| alias_not_found(name))?;
        // A uniform roll in 0..100 from the OS-seeded generator behind UUID4.
        let roll = (uuid::Uuid::new_v4().as_u128() % 100) as u32;
        Ok((alias.function_id.clone(), alias.pick_version(roll)))
    }
}
