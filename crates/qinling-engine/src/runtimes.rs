//! Runtimes: create (which registers the runtime with the executor of its kind and probes
//! it), update, delete, and restoring them at start-up.

use qinling_store::{RuntimeUpdate, Scope};
use qinling_types::RuntimeId;
use qinling_types::{Error, RequestContext, Runtime, RuntimeKind, RuntimeStatus, new_id, now};

use crate::Engine;

/// A validated runtime-create request.
#[derive(Debug, Clone)]
pub struct CreateRuntime {
    pub id: Option<RuntimeId>,
    pub name: Option<String>,
    pub image: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub trusted: bool,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateRuntime {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub image: Option<String>,
}

fn kind_of(image: &str) -> Result<RuntimeKind, Error> {
    RuntimeKind::from_image(image).ok_or_else(|| {
        Error::input(format!(
            "Unknown runtime image '{image}'. Built-in runtimes: python3 (any image name starting with 'python', e.g. 'python3' or 'openstackqinling/python3-runtime'), nodejs (any image name starting with 'node', e.g. 'nodejs'), custom (the package's own executable; image 'custom'), wasm (a WASI preview-1 command module; image 'wasm')."
        ))
    })
}

impl Engine {
    /// Creates a runtime; it answers `creating` until its probe (in the background) is done.
    pub async fn create_runtime(
        &self,
        ctx: &RequestContext,
        req: CreateRuntime,
    ) -> Result<Runtime, Error> {
        Ok(self.insert_runtime(ctx, req).await?.0)
    }

    /// Creates a runtime and returns the task probing it.
    async fn insert_runtime(
        &self,
        ctx: &RequestContext,
        req: CreateRuntime,
    ) -> Result<(Runtime, tokio::task::JoinHandle<()>), Error> {
        crate::text::check_name("name", req.name.as_deref())?;
        crate::text::check_description("description", req.description.as_deref())?;
        let kind = kind_of(&req.image)?;
        let id = match req.id {
            Some(id) if qinling_types::is_uuid(&id) => id,
            Some(id) => {
                return Err(Error::input(format!(
                    "Invalid input for field/attribute id. Value: '{id}'. Expected a UUID."
                )));
            }
            None => new_id().into(),
        };
        if self
            .inner
            .store
            .get_runtime(&id, &Scope::All)
            .await?
            .is_some()
        {
            return Err(Error::input(format!(
                "Duplicate entry for runtimes: ['id'] ({id})"
            )));
        }
        let runtime = Runtime {
            id,
            name: req.name,
            image: req.image,
            description: req.description,
            is_public: req.is_public,
            trusted: req.trusted,
            status: RuntimeStatus::Creating,
            project_id: ctx.project_id.clone(),
            created_at: now(),
            updated_at: None,
        };
        self.inner.store.insert_runtime(&runtime).await?;
        self.metrics().runtime(&runtime.id, runtime.name.as_deref());
        let probe = self.activate_runtime(runtime.id.clone(), kind);
        Ok((runtime, probe))
    }

    /// Registers the runtime with the executor that runs its kind (which fills its pool of
    /// pre-started workers, where it keeps one) and, in a task, marks it `available` once
    /// the executor's probe passes (or `error` if it fails).
    fn activate_runtime(&self, id: RuntimeId, kind: RuntimeKind) -> tokio::task::JoinHandle<()> {
        self.register_runtime(&id, kind);
        let engine = self.clone();
        tokio::spawn(async move {
            let status = match engine.inner.executor.probe(kind).await {
                Ok(()) => RuntimeStatus::Available,
                Err(error) => {
                    tracing::error!(%error, runtime_id = %id, "the runtime cannot run functions here");
                    RuntimeStatus::Error
                }
            };
            let update = RuntimeUpdate {
                status: Some(status),
                ..Default::default()
            };
            // Start-up probes several runtimes that end together; their writes need no lock
            // of ours: `update_runtime` begins with `BEGIN IMMEDIATE` (`Store::begin_write`),
            // so each waits for SQLite's write lock through the busy timeout.
            if let Err(error) = engine.inner.store.update_runtime(&id, &update).await {
                tracing::error!(%error, runtime_id = %id, "could not record the runtime's status");
            }
        })
    }

    /// At start-up: registers the pools of existing runtimes; on a fresh database, registers
    /// the built-in python3 runtime so that `qinling serve` works with no setup, and on any
    /// database the built-in nodejs, custom and wasm runtimes when no runtime of their kind exists. Returns once
    /// every runtime's probe is done, so a server that says it is serving can run functions.
    pub(crate) async fn restore_runtimes(&self) -> Result<(), Error> {
        let runtimes = self.inner.store.list_runtimes(&Scope::All).await?;
        if runtimes.is_empty()
            && self
                .inner
                .store
                .list_functions(&Scope::All)
                .await?
                .is_empty()
        {
            let ctx = RequestContext::unauthenticated("startup".into());
            let req = CreateRuntime {
                id: None,
                name: Some("python3".into()),
                image: "python3".into(),
                description: Some("Python 3 (built in)".into()),
                is_public: true,
                trusted: true,
            };
            let (_, probe) = self.insert_runtime(&ctx, req).await?;
            let mut probes = vec![probe];
            probes.extend(self.add_builtin_runtimes(&[]).await?);
            for probe in probes {
                let _ = probe.await;
            }
            return Ok(());
        }
        let mut probes: Vec<_> = runtimes
            .iter()
            .filter_map(|r| {
                RuntimeKind::from_image(&r.image).map(|kind| {
                    self.metrics().runtime(&r.id, r.name.as_deref());
                    self.activate_runtime(r.id.clone(), kind)
                })
            })
            .collect();
        probes.extend(self.add_builtin_runtimes(&runtimes).await?);
        for probe in probes {
            let _ = probe.await;
        }
        Ok(())
    }

    /// Registers the built-in runtimes added after python3 (nodejs, custom, wasm) when no runtime of their
    /// kind exists yet, so a data directory created by an older server gains them too.
    async fn add_builtin_runtimes(
        &self,
        existing: &[Runtime],
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, Error> {
        let builtins = [
            (RuntimeKind::Nodejs, "nodejs", "Node.js (built in)"),
            (
                RuntimeKind::Custom,
                "custom",
                "The package's own executable, JSON on stdin and stdout (built in)",
            ),
            (
                RuntimeKind::Wasm,
                "wasm",
                "WebAssembly: a WASI preview-1 command module, JSON on stdin and stdout, run in-process by wasmtime (built in)",
            ),
        ];
        let mut probes = Vec::new();
        for (kind, image, description) in builtins {
            if existing
                .iter()
                .any(|r| RuntimeKind::from_image(&r.image) == Some(kind))
            {
                continue;
            }
            let ctx = RequestContext::unauthenticated("startup".into());
            let req = CreateRuntime {
                id: None,
                name: Some(image.into()),
                image: image.into(),
                description: Some(description.into()),
                is_public: true,
                trusted: true,
            };
            probes.push(self.insert_runtime(&ctx, req).await?.1);
        }
        Ok(probes)
    }

    pub async fn get_runtime(
        &self,
        ctx: &RequestContext,
        id: &RuntimeId,
    ) -> Result<Runtime, Error> {
        // Private runtimes of other projects are invisible, even to admins (reference §3.2).
        self.inner
            .store
            .get_runtime(id, &Scope::Project(ctx.project_id.clone()))
            .await?
            .ok_or_else(|| Error::not_found("Runtime", id))
    }

    pub async fn list_runtimes(&self, ctx: &RequestContext) -> Result<Vec<Runtime>, Error> {
        Ok(self
            .inner
            .store
            .list_runtimes(&Scope::Project(ctx.project_id.clone()))
            .await?)
    }

    pub async fn update_runtime(
        &self,
        ctx: &RequestContext,
        id: &RuntimeId,
        req: UpdateRuntime,
    ) -> Result<Runtime, Error> {
        crate::text::check_name("name", req.name.as_ref().and_then(Option::as_deref))?;
        crate::text::check_description(
            "description",
            req.description.as_ref().and_then(Option::as_deref),
        )?;
        let current = self.get_runtime(ctx, id).await?;
        let mut update = RuntimeUpdate {
            name: req.name,
            description: req.description,
            ..Default::default()
        };
        if let Some(image) = req.image.filter(|i| *i != current.image) {
            if current.status != RuntimeStatus::Available {
                return Err(Error::Conflict(format!("Runtime {id} is not available.")));
            }
            let new_kind = kind_of(&image)?;
            if RuntimeKind::from_image(&current.image) != Some(new_kind) {
                let in_use = self
                    .inner
                    .store
                    .list_functions(&qinling_store::Scope::All)
                    .await?
                    .iter()
                    .any(|f| f.runtime_id.as_deref() == Some(id));
                if in_use {
                    return Err(Error::NotAllowed(format!(
                        "Runtime {id} is still in use by functions."
                    )));
                }
                self.deactivate_runtime(id);
                self.register_runtime(id, new_kind);
            }
            update.image = Some(image);
        }
        let runtime = self
            .inner
            .store
            .update_runtime(id, &update)
            .await?
            .ok_or_else(|| Error::not_found("Runtime", id))?;
        self.metrics().runtime(&runtime.id, runtime.name.as_deref());
        Ok(runtime)
    }

    pub async fn delete_runtime(&self, ctx: &RequestContext, id: &RuntimeId) -> Result<(), Error> {
        self.get_runtime(ctx, id).await?;
        if !self.inner.store.delete_runtime(id).await? {
            return Err(Error::NotAllowed(format!("Runtime {id} is still in use.")));
        }
        self.deactivate_runtime(id);
        Ok(())
    }

    /// Records a runtime's kind and registers it with the executor of that kind.
    /// Registers a runtime another server created since this one started (servers sharing a
    /// database learn of each other's runtimes when one of their functions first runs here).
    pub(crate) async fn learn_runtime(&self, id: &str) {
        if id.is_empty() || self.runtime_kind(id).is_some() {
            return;
        }
        if let Ok(Some(runtime)) = self.inner.store.get_runtime(id, &Scope::All).await
            && let Some(kind) = RuntimeKind::from_image(&runtime.image)
        {
            self.metrics().runtime(id, runtime.name.as_deref());
            self.register_runtime(id, kind);
        }
    }

    fn register_runtime(&self, id: &str, kind: RuntimeKind) {
        self.inner
            .kinds
            .write()
            .expect("runtime kinds lock")
            .insert(id.to_string(), kind);
        self.inner.executor.add_runtime(id, kind);
    }

    fn deactivate_runtime(&self, id: &str) {
        self.inner
            .kinds
            .write()
            .expect("runtime kinds lock")
            .remove(id);
        self.inner.executor.remove_runtime(id);
    }

    /// Pool capacity of a runtime (`GET /v1/runtimes/{id}/pool`).
    pub async fn runtime_pool(
        &self,
        ctx: &RequestContext,
        id: &RuntimeId,
    ) -> Result<qinling_executor::Capacity, Error> {
        self.get_runtime(ctx, id).await?;
        self.inner
            .executor
            .capacity(id)
            .ok_or_else(|| Error::not_found("Runtime", id))
    }
}
