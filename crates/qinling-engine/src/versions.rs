//! Function versions (reference §3.4): create (a full snapshot of the function's package,
//! entry and limits), list, show, download, delete; and [`Engine::function_at_version`],
//! which every path that runs a version (executions, the worker API, jobs, webhooks) uses to
//! get the definition it must run.

use qinling_store::{Scope, VersionCreate};
use qinling_types::FunctionId;
use qinling_types::{Error, Function, FunctionVersion, MAX_VERSIONS, RequestContext};

use crate::Engine;

fn version_not_found(function_id: &str, n: i64) -> Error {
    Error::NotFound {
        kind: "FunctionVersion",
        key: format!("function_id={function_id}, version_number={n}"),
    }
}

impl Engine {
    /// The definition version `n` of `function` runs: the function itself for 0, else the
    /// function with the version's snapshot applied.
    pub async fn function_at_version(&self, function: Function, n: i64) -> Result<Function, Error> {
        if n == 0 {
            return Ok(function);
        }
        let version = self
            .inner
            .store
            .get_version(&function.id, n)
            .await?
            .ok_or_else(|| version_not_found(&function.id, n))?;
        Ok(version.apply_to(&function))
    }

    /// Snapshots the caller's own function (admins get no bypass, as upstream) as its next
    /// version.
    pub async fn create_version(
        &self,
        ctx: &RequestContext,
        function_id: &FunctionId,
        description: Option<String>,
    ) -> Result<FunctionVersion, Error> {
        crate::text::check_description("description", description.as_deref())?;
        // Versions reference packages: hold the package lock so a concurrent function update
        // cannot remove the package being snapshotted, and number versions one at a time.
        let _guard = self.inner.package_lock.lock().await;
        match self
            .inner
            .store
            .insert_version(function_id, &ctx.project_id, description)
            .await?
        {
            VersionCreate::Created(v) => Ok(*v),
            VersionCreate::FunctionGone => Err(Error::not_found("Function", function_id)),
            VersionCreate::TooMany => Err(Error::NotAllowed(format!(
                "Can not exceed maximum number({MAX_VERSIONS}) of versions"
            ))),
            VersionCreate::Unchanged(n) => Err(Error::NotAllowed(format!(
                "Function package not changed since the latest version {n}."
            ))),
        }
    }

    /// The versions of a function the caller may read.
    pub async fn list_versions(
        &self,
        ctx: &RequestContext,
        function_id: &FunctionId,
    ) -> Result<Vec<FunctionVersion>, Error> {
        let function = self.get_function(ctx, function_id).await?;
        Ok(self.inner.store.list_versions(&function.id).await?)
    }

    pub async fn get_version(
        &self,
        ctx: &RequestContext,
        function_id: &FunctionId,
        n: i64,
    ) -> Result<FunctionVersion, Error> {
        let function = self.get_function(ctx, function_id).await?;
        self.inner
            .store
            .get_version(&function.id, n)
            .await?
            .ok_or_else(|| version_not_found(function_id, n))
    }

    /// The package of a version, for download.
    pub async fn version_package(&self, version: &FunctionVersion) -> Result<Vec<u8>, Error> {
        let package = self.inner.packages.read(&version.package_sha256).await?;
        Ok(std::sync::Arc::unwrap_or_clone(package))
    }

    /// Deletes a version of the caller's own function, unless a job, webhook or alias uses
    /// it; releases its workers and, when nothing else uses it, its package.
    pub async fn delete_version(
        &self,
        ctx: &RequestContext,
        function_id: &FunctionId,
        n: i64,
    ) -> Result<(), Error> {
        let owner = Scope::Project(ctx.project_id.clone());
        let function = self
            .inner
            .store
            .get_function(function_id, &owner)
            .await?
            .ok_or_else(|| Error::not_found("Function", function_id))?;
        let store = &self.inner.store;
        if store.get_version(&function.id, n).await?.is_none() {
            return Err(version_not_found(function_id, n));
        }
        if store.jobs_of_function(&function.id, Some(n)).await? > 0 {
            return Err(Error::NotAllowed(
                "The function version is still associated with running job(s).".into(),
            ));
        }
        if store.webhooks_of_function(&function.id, Some(n)).await? > 0 {
            return Err(Error::NotAllowed(
                "The function version is still associated with webhook.".into(),
            ));
        }
        if !store
            .aliases_of_function(&function.id, Some(n))
            .await?
            .is_empty()
        {
            return Err(Error::NotAllowed(
                "The function version is still associated with alias.".into(),
            ));
        }
        let _guard = self.inner.package_lock.lock().await;
        let Some(deleted) = store.delete_version(&function.id, n).await? else {
            return Err(version_not_found(function_id, n));
        };
        if store.package_references(&deleted.package_sha256).await? == 0 {
            self.remove_package(&deleted.package_sha256).await;
        }
        self.inner.executor.release(&function.id, Some(n));
        Ok(())
    }

    /// Refuses to delete a function that a job, webhook or alias still uses (reference §10),
    /// and returns the packages of its versions, which go with it.
    pub(crate) async fn check_function_unused(
        &self,
        function: &Function,
    ) -> Result<Vec<String>, Error> {
        let store = &self.inner.store;
        if store.jobs_of_function(&function.id, None).await? > 0 {
            return Err(Error::NotAllowed(
                "The function is still associated with running job(s).".into(),
            ));
        }
        if store.webhooks_of_function(&function.id, None).await? > 0 {
            return Err(Error::NotAllowed(
                "The function is still associated with webhook(s).".into(),
            ));
        }
        if !store
            .aliases_of_function(&function.id, None)
            .await?
            .is_empty()
        {
            return Err(Error::NotAllowed(
                "The function is still associated with alias(es).".into(),
            ));
        }
        Ok(store
            .list_versions(&function.id)
            .await?
            .into_iter()
            .map(|v| v.package_sha256)
            .collect())
    }
}
