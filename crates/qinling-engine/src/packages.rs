//! Function packages on local disk, content-addressed by SHA-256:
//! `<dir>/<aa>/<sha256>.zip` (a wasm function's bare module is stored as sent, under the
//! same name). A package is checked before it is stored: a readable zip,
//! no entry escaping the package root, no symlinks, within the size limit. Writes are atomic
//! (temporary file, fsync, rename), so a crash never leaves a half-written package under its
//! final name; the temporary files a crash does leave (`.<sha256>.<pid>.tmp`, named after the
//! server that wrote them) are removed when the store is next opened, once that server is
//! gone.
//!
//! With a shared database (PostgreSQL), the database holds every package too
//! ([`PackageStore::shared_in`]) and the local directory is this server's cache of it: a
//! server can run a function whose package another server stored. A package is written to
//! the database before its function row, read from the local cache when there, else fetched
//! once and cached, and removed from both once no function or version refers to it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use md5::Digest as _;
use qinling_executor::{ExecutorError, Packages};
use qinling_types::Error;

/// Digests of a stored package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageId {
    pub md5: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct PackageStore {
    dir: PathBuf,
    /// The database that every server sharing it reads packages from; `None`: the local
    /// directory is the only copy (SQLite, one server).
    shared: Option<qinling_store::Store>,
}

impl PackageStore {
    pub fn open(dir: &Path) -> std::io::Result<PackageStore> {
        std::fs::create_dir_all(dir)?;
        let store = PackageStore {
            dir: dir.to_path_buf(),
            shared: None,
        };
        let removed =
            store.remove_stale_temp_files(qinling_executor::tempfiles::another_live_process);
        if removed > 0 {
            tracing::info!(
                removed,
                "removed temporary package files left by a server that stopped during an upload"
            );
        }
        Ok(store)
    }

    /// Keeps every package in `store` too, for the other servers sharing it; the directory
    /// becomes a cache.
    pub fn shared_in(mut self, store: qinling_store::Store) -> PackageStore {
        self.shared = Some(store);
        self
    }

    /// Removes the temporary files of interrupted writes (`.<sha256>.<pid>.tmp`) whose
    /// writer is not running (`alive` says whether a pid is another live process; a
    /// server sharing the directory may be writing its own). Returns how many went.
    fn remove_stale_temp_files(&self, alive: impl Fn(u32) -> bool) -> usize {
        qinling_executor::tempfiles::remove_dead_writers(
            &self.dir,
            temp_file_writer,
            alive,
            |file, error| {
                tracing::warn!(%error, file = %file.display(), "could not remove a temporary package file");
            },
        )
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2]).join(format!("{sha256}.zip"))
    }

    /// Validates `bytes` as a function package and computes its digests, without storing it.
    pub fn inspect(bytes: &[u8]) -> Result<PackageId, Error> {
        validate_zip(bytes)?;
        Ok(Self::digest(bytes))
    }

    /// The number of members of a zip package and their total size once unpacked (as its
    /// central directory says; the shims stop at what the members really hold), or `None`
    /// when `bytes` is not a zip.
    pub fn unpacked(bytes: &[u8]) -> Option<(u64, u64)> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
        let mut total = 0u64;
        for i in 0..archive.len() {
            total = total.saturating_add(archive.by_index_raw(i).ok()?.size());
        }
        Some((archive.len() as u64, total))
    }

    /// The member names of a zip package; `None` when `bytes` is not a zip (a wasm
    /// function's bare module).
    pub fn names(bytes: &[u8]) -> Option<Vec<String>> {
        let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
        archive
            .file_names()
            .map(|n| n.map(|name| name.into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .ok()
    }

    /// The digests of a package that is not a zip (a wasm function's bare module, which
    /// the wasm runtime validates instead).
    pub fn digest(bytes: &[u8]) -> PackageId {
        PackageId {
            md5: hex::encode(md5::Md5::digest(bytes)),
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            size: bytes.len() as u64,
        }
    }

    /// Stores a validated package under its hash (a no-op if it is already there).
    pub fn put(&self, id: &PackageId, bytes: &[u8]) -> Result<(), Error> {
        let path = self.path(&id.sha256);
        if path.exists() {
            return Ok(());
        }
        let parent = path.parent().expect("package paths have a parent");
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(parent)?;
            let tmp = parent.join(format!(".{}.{}.tmp", id.sha256, std::process::id()));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        };
        write().map_err(|e| Error::internal("storing the package failed", e))
    }

    pub fn get(&self, sha256: &str) -> Result<Vec<u8>, Error> {
        let mut buf = Vec::new();
        std::fs::File::open(self.path(sha256))
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| Error::internal(format!("reading package {sha256} failed"), e))?;
        Ok(buf)
    }

    pub fn remove(&self, sha256: &str) {
        if let Err(error) = std::fs::remove_file(self.path(sha256))
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, sha256, "could not remove an unused package");
        }
    }

    /// Every stored package hash (for tests and clean-up).
    pub fn list(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for d in dirs.flatten() {
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().to_string();
                if let Some(sha) = name.strip_suffix(".zip")
                    && !name.starts_with('.')
                {
                    out.push(sha.to_string());
                }
            }
        }
        out.sort();
        out
    }
}

/// The first bytes of every WebAssembly binary module (a wasm function's package may be a
/// bare module instead of a zip).
pub(crate) const WASM_MAGIC: &[u8] = b"\0asm";

/// The store as the engine's async code uses it: every file operation (reads, fsyncs,
/// renames, removals) runs on the blocking pool, never on an async worker thread.
impl PackageStore {
    /// Whether a package is stored (one `stat`, not a walk of the directory; with a shared
    /// database, one indexed lookup when it is not cached here).
    pub async fn exists(&self, sha256: &str) -> Result<bool, Error> {
        let path = self.path(sha256);
        if tokio::fs::try_exists(path).await.unwrap_or(false) {
            return Ok(true);
        }
        match &self.shared {
            Some(db) => Ok(db.has_package(sha256).await?),
            None => Ok(false),
        }
    }

    /// Reads a stored package: from the local directory, else (shared) from the database,
    /// caching it here.
    pub async fn read(&self, sha256: &str) -> Result<Arc<Vec<u8>>, Error> {
        let (store, sha) = (self.clone(), sha256.to_string());
        let local = blocking(move || match std::fs::read(store.path(&sha)) {
            Ok(bytes) => Ok(Some(Arc::new(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::internal(format!("reading package {sha} failed"), e)),
        })
        .await?;
        if let Some(bytes) = local {
            return Ok(bytes);
        }
        let missing = || {
            Error::internal(
                format!("reading package {sha256} failed"),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        };
        let Some(db) = &self.shared else {
            return Err(missing());
        };
        let bytes = Arc::new(db.get_package(sha256).await?.ok_or_else(missing)?);
        let id = Self::digest(&bytes);
        if id.sha256 != sha256 {
            return Err(Error::internal(
                format!("package {sha256} in the database is corrupt"),
                std::io::Error::from(std::io::ErrorKind::InvalidData),
            ));
        }
        let (store, cached) = (self.clone(), bytes.clone());
        if let Err(error) = blocking(move || store.put(&id, &cached)).await {
            // Served from memory this time; the next read fetches it again.
            tracing::warn!(%error, sha256, "could not cache a package from the database");
        }
        Ok(bytes)
    }

    /// Stores a validated package (see [`PackageStore::put`]), and (shared) in the
    /// database, before any row refers to it.
    pub async fn store(&self, id: &PackageId, bytes: Arc<Vec<u8>>) -> Result<(), Error> {
        if let Some(db) = &self.shared {
            db.put_package(&id.sha256, &bytes).await?;
        }
        let (store, id) = (self.clone(), id.clone());
        blocking(move || store.put(&id, &bytes)).await
    }

    /// Removes a package (see [`PackageStore::remove`]) here and (shared) from the database.
    pub async fn discard(&self, sha256: &str) {
        if let Some(db) = &self.shared
            && let Err(error) = db.delete_package(sha256).await
        {
            tracing::warn!(%error, sha256, "could not remove an unused package from the database");
        }
        let (store, sha256) = (self.clone(), sha256.to_string());
        let _ = blocking(move || {
            store.remove(&sha256);
            Ok(())
        })
        .await;
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal("a package file operation", e))?
}

/// Executors read packages through this (binding a worker, loading a wasm module).
#[async_trait::async_trait]
impl Packages for PackageStore {
    async fn get(&self, sha256: &str) -> Result<Arc<Vec<u8>>, ExecutorError> {
        self.read(sha256)
            .await
            .map_err(|e| ExecutorError::internal("reading a package", e))
    }
}

/// The pid in the name of a temporary package file (`.<sha256>.<pid>.tmp`), or `None` for
/// any other name.
fn temp_file_writer(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (sha, pid) = rest.rsplit_once('.')?;
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pid.parse().ok()
}

/// Checks that `bytes` is a zip whose entries all stay inside the package root and that
/// contains no symlinks.
fn validate_zip(bytes: &[u8]) -> Result<(), Error> {
    let invalid = || Error::input("Package is not a valid ZIP package.");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|_| invalid())?;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|_| invalid())?;
        let name = entry.name().map_err(|_| invalid())?.to_string();
        if entry.enclosed_name().is_none()
            || name.starts_with('/')
            || name.contains('\\')
            || name.split('/').any(|c| c == "..")
        {
            return Err(Error::input(format!(
                "Package entry '{name}' points outside the package root; use relative paths without '..'."
            )));
        }
        if entry.is_symlink() {
            return Err(Error::input(format!(
                "Package entry '{name}' is a symbolic link; symlinks are not allowed in packages."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a zip from (name, content) pairs.
    pub fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            for (name, content) in files {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                w.write_all(content.as_bytes()).unwrap();
            }
            w.finish().unwrap();
        }
        buf.into_inner()
    }

    fn symlink_zip() -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            w.add_symlink(
                "link",
                "/etc/shadow",
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            w.finish().unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn validation() {
        let cases: Vec<(&str, Vec<u8>, Result<(), &str>)> = vec![
            ("plain", zip_of(&[("hello.py", "def main(): pass")]), Ok(())),
            ("nested", zip_of(&[("pkg/mod.py", "x = 1")]), Ok(())),
            (
                "not a zip",
                b"hello".to_vec(),
                Err("Package is not a valid ZIP package."),
            ),
            (
                "empty",
                Vec::new(),
                Err("Package is not a valid ZIP package."),
            ),
            (
                "zip slip",
                zip_of(&[("../../evil.py", "x")]),
                Err(
                    "Package entry '../../evil.py' points outside the package root; use relative paths without '..'.",
                ),
            ),
            (
                "absolute",
                zip_of(&[("/etc/evil.py", "x")]),
                Err(
                    "Package entry '/etc/evil.py' points outside the package root; use relative paths without '..'.",
                ),
            ),
            (
                "symlink",
                symlink_zip(),
                Err(
                    "Package entry 'link' is a symbolic link; symlinks are not allowed in packages.",
                ),
            ),
        ];
        for (what, bytes, expect) in cases {
            let got = PackageStore::inspect(&bytes)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert_eq!(got, expect.map_err(str::to_string), "{what}");
        }
    }

    #[test]
    fn temporary_files_of_dead_writers_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path()).unwrap();
        let bytes = zip_of(&[("a.py", "x = 1")]);
        let id = PackageStore::inspect(&bytes).unwrap();
        store.put(&id, &bytes).unwrap();
        let sub = dir.path().join(&id.sha256[..2]);
        let sha = "ab".repeat(32);
        let dead = sub.join(format!(".{sha}.4000001.tmp"));
        let live = sub.join(format!(".{sha}.4000002.tmp"));
        let other = sub.join(".notes.4000001.tmp");
        for f in [&dead, &live, &other] {
            std::fs::write(f, b"half a package").unwrap();
        }
        assert_eq!(store.remove_stale_temp_files(|pid| pid == 4000002), 1);
        assert!(!dead.exists());
        assert!(live.exists(), "a live writer's file stays");
        assert!(other.exists(), "only our own temporary names are touched");
        assert_eq!(store.get(&id.sha256).unwrap(), bytes);
        // Opening does the same, with /proc telling who is alive (no pid 4000002 here).
        drop(store);
        PackageStore::open(dir.path()).unwrap();
        assert!(!live.exists());
        assert_eq!(temp_file_writer(&format!(".{sha}.12.tmp")), Some(12));
        assert_eq!(temp_file_writer(&format!("{sha}.zip")), None);
    }

    #[test]
    fn put_get_remove() {
        let dir = std::env::temp_dir().join(format!("qinling-pkg-test-{}", std::process::id()));
        let store = PackageStore::open(&dir).unwrap();
        let bytes = zip_of(&[("a.py", "x = 1")]);
        let id = PackageStore::inspect(&bytes).unwrap();
        store.put(&id, &bytes).unwrap();
        store.put(&id, &bytes).unwrap();
        assert_eq!(store.get(&id.sha256).unwrap(), bytes);
        assert_eq!(store.list(), vec![id.sha256.clone()]);
        store.remove(&id.sha256);
        assert!(store.list().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
