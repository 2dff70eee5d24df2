//! Functions: create with a package, show, list, update (which retires the workers bound to
//! the old definition), delete, download.

use qinling_executor::ExecutorError;
use qinling_store::{FunctionUpdate, Scope};
use qinling_types::{
    Code, Error, ExecutionMode, Function, RequestContext, RuntimeKind, RuntimeStatus, new_id, now,
};
use qinling_types::{FunctionId, RuntimeId};

use crate::Engine;
use crate::packages::PackageStore;
use crate::scope::{self, ListQuery, OwnProject};
use crate::text::{check_description, check_name};

/// A function-create request, fields as received (limits still text, checked here in
/// upstream's order: timeout, cpu, memory).
#[derive(Debug, Clone, Default)]
pub struct CreateFunction {
    pub name: Option<String>,
    pub description: Option<String>,
    pub runtime_id: Option<RuntimeId>,
    pub entry: Option<String>,
    pub cpu: Option<String>,
    pub memory_size: Option<String>,
    pub timeout: Option<String>,
    /// Outbound network access (`true`/`false`), our extension.
    pub network: Option<String>,
    /// `fork` or `reuse`, our extension; absent: the runtime kind's default.
    pub execution_mode: Option<String>,
    /// The client's md5 of the package, if it sent one.
    pub md5sum: Option<String>,
    pub package: Option<Vec<u8>>,
}

/// A function-update request; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct UpdateFunction {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub entry: Option<Option<String>>,
    pub cpu: Option<String>,
    pub memory_size: Option<String>,
    pub timeout: Option<String>,
    pub network: Option<String>,
    pub execution_mode: Option<String>,
    pub md5sum: Option<String>,
    pub package: Option<Vec<u8>>,
}

impl Engine {
    pub async fn create_function(
        &self,
        ctx: &RequestContext,
        req: CreateFunction,
    ) -> Result<Function, Error> {
        check_name("name", req.name.as_deref())?;
        check_description("description", req.description.as_deref())?;
        let ranges = &self.inner.config.limits;
        let limits = ranges
            .parse_changes(
                req.cpu.as_deref(),
                req.memory_size.as_deref(),
                req.timeout.as_deref(),
            )?
            .apply(ranges.defaults());
        let network = parse_network(req.network.as_deref())?.unwrap_or(false);
        let requested_mode = parse_execution_mode(req.execution_mode.as_deref())?;
        let runtime_id = req
            .runtime_id
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::input("\"runtime_id\" must be specified."))?;
        let runtime = self
            .inner
            .store
            .get_runtime(&runtime_id, &Scope::Project(ctx.project_id.clone()))
            .await?
            .ok_or_else(|| Error::not_found("Runtime", &runtime_id))?;
        if runtime.status != RuntimeStatus::Available {
            return Err(Error::input(format!(
                "Runtime {runtime_id} is not available."
            )));
        }
        let kind = RuntimeKind::from_image(&runtime.image);
        if network {
            self.check_network(kind)?;
        }
        let execution_mode = execution_mode_for(kind, requested_mode, None)?;
        let package = req.package.ok_or_else(|| Error::input("Package is required for a function of source 'package': send it in the 'package' form field."))?;
        let id = self.check_package(&package, req.md5sum.as_deref(), kind)?;
        // The entry resolves inside the package (checked before the executor's check);
        // the default entry of a runtime other than wasm is checked too.
        let req_entry_was_default = req.entry.as_deref().is_none_or(str::is_empty);
        if let Some(entry) = req.entry.as_deref().filter(|e| !e.is_empty()) {
            crate::entry::check_entry(kind, entry, PackageStore::names(&package).as_deref())?;
        }
        // The executor checks the package now (before the lock below: compiling a wasm
        // module may take a while), so one that cannot run is refused with the reason.
        // Without an entry, the entry is the one the executor chose, else `main.main`.
        let package = std::sync::Arc::new(package);
        let chosen = self
            .prepare_package(kind, &package, &id.sha256, req.entry.as_deref())
            .await?;
        let entry = req
            .entry
            .filter(|e| !e.is_empty())
            .or(chosen)
            .unwrap_or_else(|| "main.main".into());
        if req_entry_was_default {
            crate::entry::check_entry(kind, &entry, PackageStore::names(&package).as_deref())?;
        }
        let function = Function {
            id: new_id().into(),
            name: req.name,
            description: req.description,
            runtime_id: Some(runtime_id),
            code: Code::Package {
                md5sum: id.md5.clone(),
            },
            package_sha256: id.sha256.clone(),
            package_size: id.size,
            entry: Some(entry),
            cpu: limits.cpu,
            memory_size: limits.memory_size,
            timeout: limits.timeout,
            network,
            execution_mode,
            count: 0,
            latest_version: 0,
            project_id: ctx.project_id.clone(),
            created_at: now(),
            updated_at: None,
        };
        // The quota check and the insert it guards happen under one lock (see `quotas.rs`).
        let _guard = self.inner.package_lock.lock().await;
        self.check_function_quota(&ctx.project_id, true, id.size as i64)
            .await?;
        let existed = self.inner.packages.exists(&id.sha256).await?;
        self.inner.packages.store(&id, package.clone()).await?;
        // On a shared database the insert counts again, under the project's lock: the check
        // above saw only this server's lock.
        let inserted = match self.function_quota_in_store(&ctx.project_id).await {
            Ok(Some(quota)) => self
                .inner
                .store
                .insert_function_within(&function, quota)
                .await
                .map_err(Error::from),
            Ok(None) => self
                .inner
                .store
                .insert_function(&function)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = inserted {
            if !existed {
                self.remove_package(&id.sha256).await;
            }
            return Err(e);
        }
        Ok(function)
    }

    /// Refuses outbound network access where the executor of the function's runtime
    /// cannot give it (or the operator does not allow it).
    fn check_network(&self, kind: Option<RuntimeKind>) -> Result<(), Error> {
        let why = match kind {
            Some(kind) => self.inner.executor.network_unavailable(kind),
            None => Some("its runtime is not known".into()),
        };
        match why {
            Some(why) => Err(Error::input(format!(
                "This function cannot have network access: {why}."
            ))),
            None => Ok(()),
        }
    }

    /// Has the executor of `kind` check a package before it is stored; returns the entry
    /// the executor chose, if it chooses one (a wasm package's module).
    async fn prepare_package(
        &self,
        kind: Option<RuntimeKind>,
        package: &std::sync::Arc<Vec<u8>>,
        sha256: &str,
        entry: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let Some(kind) = kind else { return Ok(None) };
        self.inner
            .executor
            .prepare(
                kind,
                package.clone(),
                sha256,
                entry.filter(|e| !e.is_empty()),
            )
            .await
            .map_err(|e| match e {
                ExecutorError::Invalid(why) => Error::input(why),
                ExecutorError::TooLarge(why) => Error::TooLarge(why),
                ExecutorError::Unavailable(why) => Error::Conflict(why),
                e @ ExecutorError::Internal { .. } => Error::internal("checking the package", e),
            })
    }

    /// Validates a package and its md5 against the size limit. A function of the wasm
    /// runtime (`kind`) may also send a bare module instead of a zip.
    fn check_package(
        &self,
        package: &[u8],
        md5sum: Option<&str>,
        kind: Option<RuntimeKind>,
    ) -> Result<crate::PackageId, Error> {
        let max = self.inner.config.max_package_bytes;
        if package.len() as u64 > max {
            return Err(Error::TooLarge(format!(
                "Package is {} bytes, larger than the maximum of {max} bytes.",
                package.len()
            )));
        }
        let id = if kind == Some(RuntimeKind::Wasm)
            && package.starts_with(crate::packages::WASM_MAGIC)
        {
            PackageStore::digest(package)
        } else {
            PackageStore::inspect(package)?
        };
        // What the worker will unpack: checked here, where the user hears why, rather than
        // when a worker runs out of /tmp or memory half way through.
        if let Some((entries, unpacked)) = PackageStore::unpacked(package) {
            let cfg = &self.inner.config;
            if entries > cfg.max_package_entries {
                return Err(Error::TooLarge(format!(
                    "Package has {entries} entries, more than the maximum of {} (max_package_entries).",
                    cfg.max_package_entries
                )));
            }
            if unpacked > cfg.max_unpacked_package_bytes {
                return Err(Error::TooLarge(format!(
                    "Package unpacks to {unpacked} bytes, more than the maximum of {} bytes (max_unpacked_package_bytes); a worker unpacks it into its /tmp.",
                    cfg.max_unpacked_package_bytes
                )));
            }
        }
        if let Some(md5) = md5sum.filter(|m| !m.is_empty())
            && !md5.eq_ignore_ascii_case(&id.md5)
        {
            return Err(Error::input("Package md5 mismatch."));
        }
        Ok(id)
    }

    /// A function the caller may read: its own, or any for admins.
    pub async fn get_function(
        &self,
        ctx: &RequestContext,
        id: &FunctionId,
    ) -> Result<Function, Error> {
        self.inner
            .store
            .get_function(id, &scope::by_id(ctx))
            .await?
            .ok_or_else(|| Error::not_found("Function", id))
    }

    pub async fn list_functions(
        &self,
        ctx: &RequestContext,
        q: &ListQuery,
    ) -> Result<Vec<Function>, Error> {
        let scope = scope::for_list(ctx, q, OwnProject::Refused)?;
        Ok(self.inner.store.list_functions(&scope).await?)
    }

    pub async fn function_package(&self, function: &Function) -> Result<Vec<u8>, Error> {
        let package = self.inner.packages.read(&function.package_sha256).await?;
        Ok(std::sync::Arc::unwrap_or_clone(package))
    }

    pub async fn update_function(
        &self,
        ctx: &RequestContext,
        id: &FunctionId,
        req: UpdateFunction,
    ) -> Result<Function, Error> {
        check_name("name", req.name.as_ref().and_then(Option::as_deref))?;
        check_description(
            "description",
            req.description.as_ref().and_then(Option::as_deref),
        )?;
        let current = self.get_function(ctx, id).await?;
        let ranges = &self.inner.config.limits;
        let mut update = FunctionUpdate {
            name: req.name,
            description: req.description,
            entry: req.entry,
            ..Default::default()
        };
        let limits = ranges.parse_changes(
            req.cpu.as_deref(),
            req.memory_size.as_deref(),
            req.timeout.as_deref(),
        )?;
        update.cpu = limits.cpu;
        update.memory_size = limits.memory_size;
        update.timeout = limits.timeout;
        update.network = parse_network(req.network.as_deref())?;
        let requested_mode = parse_execution_mode(req.execution_mode.as_deref())?;
        let Code::Package {
            md5sum: current_md5,
        } = &current.code;
        if req.package.is_none()
            && let Some(md5) = req.md5sum.as_deref().filter(|m| !m.is_empty())
        {
            if md5.eq_ignore_ascii_case(current_md5) {
                return Err(Error::input("The function code checksum is not changed."));
            }
            return Err(Error::input(
                "A new md5sum was given without a package: send the package in the 'package' form field.",
            ));
        }
        let kind = current
            .runtime_id
            .as_deref()
            .and_then(|r| self.runtime_kind(r));
        if update.network == Some(true) {
            self.check_network(kind)?;
        }
        let execution_mode =
            execution_mode_for(kind, requested_mode, Some(current.execution_mode))?;
        update.execution_mode =
            (execution_mode != current.execution_mode).then_some(execution_mode);
        let checked = match &req.package {
            Some(package) => Some(self.check_package(package, req.md5sum.as_deref(), kind)?),
            None => None,
        };
        if req.package.is_some() || update.entry.is_some() {
            // What the updated function will run must resolve inside the package it will
            // have and pass its executor's check, before anything changes.
            let entry = match &update.entry {
                Some(Some(e)) if !e.is_empty() => e.clone(),
                Some(_) => Function {
                    entry: None,
                    ..current.clone()
                }
                .entry_or_default()
                .to_string(),
                None => current.entry_or_default().to_string(),
            };
            let (package, sha) = match (&req.package, &checked) {
                (Some(p), Some(pid)) => (std::sync::Arc::new(p.clone()), pid.sha256.clone()),
                _ => (
                    self.inner.packages.read(&current.package_sha256).await?,
                    current.package_sha256.clone(),
                ),
            };
            crate::entry::check_entry(kind, &entry, PackageStore::names(&package).as_deref())?;
            self.prepare_package(kind, &package, &sha, Some(&entry))
                .await?;
        }
        let _guard = self.inner.package_lock.lock().await;
        let mut new_package = None;
        if let (Some(package), Some(pid)) = (&req.package, checked) {
            let delta = pid.size as i64 - current.package_size as i64;
            self.check_function_quota(&current.project_id, false, delta)
                .await?;
            let existed = self.inner.packages.exists(&pid.sha256).await?;
            self.inner
                .packages
                .store(&pid, std::sync::Arc::new(package.clone()))
                .await?;
            update.package = Some((pid.md5.clone(), pid.sha256.clone(), pid.size));
            // On a shared database the update counts again under the project's lock.
            update.package_bytes_limit = self
                .function_quota_in_store(&current.project_id)
                .await?
                .map(|q| q.package_bytes);
            new_package = Some((pid.sha256, existed));
        }
        let updated = match self.inner.store.update_function(id, &update).await {
            Ok(Some(done)) => done,
            other => {
                if let Some((sha, false)) = &new_package {
                    self.remove_package(sha).await;
                }
                // Gone meanwhile: 404; over a quota, or the database unreachable: that error.
                return Err(match other {
                    Err(e) => e.into(),
                    _ => Error::not_found("Function", id),
                });
            }
        };
        let (function, old_sha) = updated;
        if old_sha != function.package_sha256
            && self.inner.store.package_references(&old_sha).await? == 0
        {
            self.remove_package(&old_sha).await;
        }
        // Workers bound to the old definition must not serve it any more.
        let definition_changed = update.package.is_some()
            || update.entry.is_some()
            || update.cpu.is_some()
            || update.memory_size.is_some()
            || update.network.is_some_and(|n| n != current.network)
            || update.execution_mode.is_some();
        if definition_changed {
            self.inner.executor.release(id, Some(0));
        }
        Ok(function)
    }

    pub async fn delete_function(
        &self,
        ctx: &RequestContext,
        id: &FunctionId,
    ) -> Result<(), Error> {
        let function = self.get_function(ctx, id).await?;
        if function.project_id != ctx.project_id {
            return Err(Error::NotAllowed(
                "Function can only be deleted by its owner.".into(),
            ));
        }
        // Its versions go with it (the rows cascade); jobs, webhooks and aliases must not.
        let mut packages = self.check_function_unused(&function).await?;
        packages.push(function.package_sha256.clone());
        let _guard = self.inner.package_lock.lock().await;
        if !self.inner.store.delete_function(id).await? {
            return Err(Error::not_found("Function", id));
        }
        packages.sort();
        packages.dedup();
        for sha in packages {
            if self.inner.store.package_references(&sha).await? == 0 {
                self.remove_package(&sha).await;
            }
        }
        self.inner.executor.release(id, None);
        Ok(())
    }

    /// Removes a package no function or version references any more, and what was
    /// compiled from it.
    pub(crate) async fn remove_package(&self, sha256: &str) {
        self.inner.packages.discard(sha256).await;
        self.inner.executor.forget_package(sha256).await;
    }
}

/// The `network` field: a boolean (whether it may be `true` is checked against the
/// function's runtime, `Engine::check_network`).
fn parse_network(value: Option<&str>) -> Result<Option<bool>, Error> {
    let Some(value) = value else { return Ok(None) };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(Some(true)),
        "false" | "0" | "no" | "off" => Ok(Some(false)),
        _ => Err(Error::input(format!(
            "Invalid value for network: '{value}'. Expected true or false."
        ))),
    }
}

/// The `execution_mode` field: `fork` or `reuse` (whether the runtime supports it is
/// [`execution_mode_for`]'s check).
fn parse_execution_mode(value: Option<&str>) -> Result<Option<ExecutionMode>, Error> {
    value
        .map(|v| {
            v.parse::<ExecutionMode>()
                .map_err(|e| Error::input(e.to_string()))
        })
        .transpose()
}

/// The execution mode a function of runtime `kind` gets: the one `requested`, if its
/// runtime supports it (else a 400 that says why and what to do); else the `current` one
/// if the runtime supports it (an update that names none); else the kind's default.
fn execution_mode_for(
    kind: Option<RuntimeKind>,
    requested: Option<ExecutionMode>,
    current: Option<ExecutionMode>,
) -> Result<ExecutionMode, Error> {
    let Some(kind) = kind else {
        return Ok(requested.or(current).unwrap_or_default());
    };
    if let Some(mode) = requested {
        kind.supports(mode).map_err(|why| {
            Error::input(format!(
                "execution_mode '{mode}' is not supported by the {} runtime: {why}; use '{}' or leave execution_mode out.",
                kind.as_str(),
                kind.default_execution_mode(),
            ))
        })?;
        return Ok(mode);
    }
    Ok(current
        .filter(|&mode| kind.supports(mode).is_ok())
        .unwrap_or_else(|| kind.default_execution_mode()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExecutionMode::{Fork, Reuse};
    use RuntimeKind::{Custom, Nodejs, Python3, Wasm};

    #[test]
    fn execution_mode_defaults_and_refusals() {
        let mode = |kind, requested, current| execution_mode_for(Some(kind), requested, current);
        // Create without the field: the kind's default.
        assert_eq!(mode(Python3, None, None).unwrap(), Fork);
        assert_eq!(mode(Nodejs, None, None).unwrap(), Reuse);
        assert_eq!(mode(Custom, None, None).unwrap(), Fork);
        assert_eq!(mode(Wasm, None, None).unwrap(), Fork);
        // Asked for: kept where supported.
        assert_eq!(mode(Python3, Some(Reuse), None).unwrap(), Reuse);
        assert_eq!(mode(Nodejs, Some(Fork), Some(Reuse)).unwrap(), Fork);
        // An update without the field keeps the current mode the kind supports…
        assert_eq!(mode(Python3, None, Some(Reuse)).unwrap(), Reuse);
        // …and falls back to the kind's default where it does not.
        assert_eq!(mode(Custom, None, Some(Reuse)).unwrap(), Fork);
        let refused = |kind| mode(kind, Some(Reuse), None).unwrap_err().to_string();
        assert!(
            refused(Custom).contains(
                "execution_mode 'reuse' is not supported by the custom runtime: each execution runs the package's executable as a new process"
            ),
            "{}",
            refused(Custom)
        );
        assert!(refused(Wasm).contains("each execution gets a fresh WebAssembly instance"));
        assert_eq!(
            parse_execution_mode(Some("xyz")).unwrap_err().to_string(),
            "execution_mode must be 'fork' or 'reuse', not 'xyz'"
        );
    }
}
