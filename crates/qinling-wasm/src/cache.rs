//! Where compiled modules are kept: in memory, a bounded map evicting the least recently
//! used; on disk, one precompiled artefact per module under the cache directory
//! (`<dir>/<aa>/<package sha256>.<entry digest>.cwasm`), so a restart does not recompile
//! every function. Artefacts are written atomically (temporary file, rename) by this server
//! only; see [`Artefacts::load`] for why that matters. The temporary files a crash leaves
//! (`.<artefact>.<pid>.tmp`) are removed at the next start, once their writer is gone.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::Digest as _;

use crate::{Module, ModuleKey};

/// Compiled modules in memory, at most `capacity`; the least recently used goes first.
pub(crate) struct Memory {
    inner: Mutex<Lru>,
}

struct Lru {
    capacity: usize,
    clock: u64,
    entries: HashMap<ModuleKey, (Arc<Module>, u64)>,
}

impl Memory {
    pub(crate) fn new(capacity: usize) -> Memory {
        Memory {
            inner: Mutex::new(Lru {
                capacity: capacity.max(1),
                clock: 0,
                entries: HashMap::new(),
            }),
        }
    }

    pub(crate) fn get(&self, key: &ModuleKey) -> Option<Arc<Module>> {
        let mut lru = self.inner.lock().expect("module cache lock");
        lru.clock += 1;
        let now = lru.clock;
        let (module, used) = lru.entries.get_mut(key)?;
        *used = now;
        Some(module.clone())
    }

    pub(crate) fn put(&self, key: ModuleKey, module: Arc<Module>) {
        let mut lru = self.inner.lock().expect("module cache lock");
        lru.clock += 1;
        let now = lru.clock;
        if lru.entries.len() >= lru.capacity && !lru.entries.contains_key(&key) {
            let oldest = lru
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                lru.entries.remove(&oldest);
            }
        }
        lru.entries.insert(key, (module, now));
    }

    /// Forgets the modules of a package (every entry), or one module.
    pub(crate) fn remove(&self, package: &str, entry: Option<&str>) {
        let mut lru = self.inner.lock().expect("module cache lock");
        lru.entries
            .retain(|k, _| k.package != package || entry.is_some_and(|e| e != k.entry));
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.lock().expect("module cache lock").entries.len()
    }
}

/// The pid in the name of a temporary artefact (`.<sha256>.<16 hex>.cwasm.<pid>.tmp`, as
/// `Artefacts::store` names them), or `None` for any other name.
fn temp_file_writer(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (artefact, pid) = rest.rsplit_once('.')?;
    let (package, entry) = artefact.strip_suffix(".cwasm")?.split_once('.')?;
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(package) || !hex(entry) || entry.len() != 16 {
        return None;
    }
    pid.parse().ok()
}

/// Precompiled artefacts on disk.
pub(crate) struct Artefacts {
    dir: PathBuf,
}

impl Artefacts {
    /// Opens the cache directory, removing the temporary files of writes a crash cut short
    /// (`.<artefact>.<pid>.tmp`) whose writer is gone (another live server sharing the
    /// directory may be writing its own).
    pub(crate) fn open(dir: &Path) -> std::io::Result<Artefacts> {
        std::fs::create_dir_all(dir)?;
        let artefacts = Artefacts {
            dir: dir.to_path_buf(),
        };
        let removed =
            artefacts.remove_stale_temp_files(qinling_executor::tempfiles::another_live_process);
        if removed > 0 {
            tracing::info!(
                removed,
                "removed temporary wasm artefacts left by a server that stopped while writing them"
            );
        }
        Ok(artefacts)
    }

    /// Removes the temporary files of interrupted writes whose writer is not running
    /// (`alive` says whether a pid is another live process). Returns how many went.
    fn remove_stale_temp_files(&self, alive: impl Fn(u32) -> bool) -> usize {
        qinling_executor::tempfiles::remove_dead_writers(
            &self.dir,
            temp_file_writer,
            alive,
            |file, error| {
                tracing::warn!(%error, file = %file.display(), "could not remove a temporary wasm artefact");
            },
        )
    }

    /// The artefact's path; `None` for a package key that is not a hex digest (it would not
    /// be a file name of ours).
    fn path(&self, key: &ModuleKey) -> Option<PathBuf> {
        let p = &key.package;
        if p.len() < 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let entry = hex::encode(&sha2::Sha256::digest(key.entry.as_bytes())[..8]);
        Some(self.dir.join(&p[..2]).join(format!("{p}.{entry}.cwasm")))
    }

    /// Loads the artefact of `key`, if this server wrote one and it suits `engine`. An
    /// artefact that does not (written by another wasmtime version or configuration) is
    /// removed, so the caller compiles afresh and replaces it.
    pub(crate) fn load(
        &self,
        engine: &wasmtime::Engine,
        key: &ModuleKey,
    ) -> Option<wasmtime::Module> {
        let path = self.path(key)?;
        if !path.exists() {
            return None;
        }
        // SAFETY: `deserialize_file` maps the file and runs its machine code unchecked, so it
        // must only be given bytes that `Module::serialize` produced. The file is in the
        // server's own data directory, written only by `store` below (atomically, under a
        // name no upload can choose), and wasmtime checks its header (version, target,
        // settings) before use. Whoever can write the data directory can already replace
        // the database and the packages, so this trusts nothing new.
        let loaded = unsafe { wasmtime::Module::deserialize_file(engine, &path) };
        match loaded {
            Ok(module) => Some(module),
            Err(error) => {
                tracing::info!(error = %format!("{error:#}"), path = %path.display(), "recompiling a wasm module whose cached artefact does not suit this engine");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes the artefact of `key` (temporary file, fsync, rename). Failing only costs a
    /// compilation at the next start, so errors are logged, not returned.
    pub(crate) fn store(&self, key: &ModuleKey, module: &wasmtime::Module) {
        let Some(path) = self.path(key) else { return };
        let write = || -> Result<(), String> {
            let bytes = module.serialize().map_err(|e| format!("{e:#}"))?;
            let parent = path.parent().expect("artefact paths have a parent");
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            let tmp = parent.join(format!(
                ".{}.{}.tmp",
                path.file_name().unwrap_or_default().to_string_lossy(),
                std::process::id()
            ));
            let mut f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
            f.write_all(&bytes).map_err(|e| e.to_string())?;
            f.sync_all().map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
        };
        if let Err(error) = write() {
            tracing::warn!(%error, path = %path.display(), "could not cache a compiled wasm module");
        }
    }

    /// Removes every artefact of a package.
    pub(crate) fn remove(&self, package: &str) {
        let probe = ModuleKey {
            package: package.to_string(),
            entry: String::new(),
        };
        let Some(dir) = self
            .path(&probe)
            .and_then(|p| p.parent().map(Path::to_path_buf))
        else {
            return;
        };
        let Ok(files) = std::fs::read_dir(&dir) else {
            return;
        };
        let prefix = format!("{package}.");
        for f in files.flatten() {
            if f.file_name().to_string_lossy().starts_with(&prefix)
                && let Err(error) = std::fs::remove_file(f.path())
            {
                tracing::warn!(%error, path = %f.path().display(), "could not remove a cached wasm module");
            }
        }
    }

    /// Every artefact file.
    #[cfg(test)]
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
                if f.path().extension().is_some_and(|e| e == "cwasm") {
                    out.push(f.path());
                }
            }
        }
        out.sort();
        out
    }
}
