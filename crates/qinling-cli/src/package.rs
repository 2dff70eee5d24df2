//! Code packages as the client builds them: a zip given by the user is sent as it is, a single
//! file is zipped in memory (keeping its executable bit), a folder is zipped with its
//! `.qinlingignore` honoured; and what a path most likely means when the user did not say —
//! its runtime (`hello.py` → python3) and its entry (`hello.py` → `hello.main`). `qinling
//! function create|update`, `qinling deploy` and `qinling run` all build packages here.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use md5::Digest;

/// The file a folder may hold to keep paths out of its package: one pattern per line, `#`
/// comments; `*` and `?` match within a name; a pattern with a `/` matches the path from the
/// folder's root, one without matches any name along the path; a trailing `/` matches only
/// folders.
pub const IGNORE_FILE: &str = ".qinlingignore";

/// Never packaged from a folder: version control, caches, local environments.
const ALWAYS_IGNORED: &[&str] = &[
    ".git/",
    ".hg/",
    "__pycache__/",
    "*.pyc",
    ".venv/",
    ".DS_Store",
];

/// A code package ready to upload.
#[derive(Debug)]
pub struct Package {
    /// The name of the upload's file part.
    pub file_name: String,
    pub data: Vec<u8>,
}

impl Package {
    /// `--file` (a file zipped here, a folder zipped here, a zip sent as it is) or `--package`
    /// (sent as is); neither → `None`.
    pub fn load(file: Option<&Path>, package: Option<&Path>) -> anyhow::Result<Option<Package>> {
        if let Some(path) = file {
            return Package::from_path(path).map(Some);
        }
        if let Some(path) = package {
            return Ok(Some(Package {
                file_name: base_name(path)?,
                data: read(path)?,
            }));
        }
        Ok(None)
    }

    /// The package a path stands for: a folder zipped (see [`IGNORE_FILE`]), a zip or a wasm
    /// module as it is, any other file zipped alone.
    pub fn from_path(path: &Path) -> anyhow::Result<Package> {
        let name = base_name(path)?;
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            return Ok(Package {
                file_name: format!("{name}.zip"),
                data: zip_folder(path)?,
            });
        }
        let content = read(path)?;
        if is_zip(&content) {
            eprintln!(
                "note: {} is a zip archive; sending it as the package (as --package does)",
                path.display()
            );
            return Ok(Package {
                file_name: name,
                data: content,
            });
        }
        if content.starts_with(WASM_MAGIC) {
            return Ok(Package {
                file_name: name,
                data: content,
            });
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        Ok(Package {
            file_name: format!("{name}.zip"),
            data: zip_single_file_mode(&name, &content, mode)?,
        })
    }

    pub fn md5(&self) -> String {
        md5_hex(&self.data)
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn base_name(path: &Path) -> anyhow::Result<String> {
    // `.` and `..` have no file name of their own: name them after the folder they are.
    let resolved;
    let path = if path.file_name().is_none() {
        resolved = std::fs::canonicalize(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        &resolved
    } else {
        path
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    Ok(name.to_string_lossy().into_owned())
}

/// The first bytes of every WebAssembly binary module.
const WASM_MAGIC: &[u8] = b"\0asm";

/// Whether `data` is a zip archive (a local file header, or the end record of an empty one).
pub(crate) fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

/// The runtime a path most likely means: `.py` → python3, `.js` → nodejs, `.wasm` → wasm,
/// another executable file → custom; a folder by the handler it holds (`main.py`,
/// `index.js`, `handler`). `None` when nothing says.
pub fn guess_runtime(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        return FOLDER_HANDLERS
            .iter()
            .find(|(file, _, _)| path.join(file).is_file())
            .map(|(_, runtime, _)| *runtime);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("py") => Some("python3"),
        Some("js" | "mjs" | "cjs") => Some("nodejs"),
        Some("wasm") => Some("wasm"),
        _ if meta.permissions().mode() & 0o111 != 0 => Some("custom"),
        _ => None,
    }
}

/// The handler files a folder without a manifest is recognised by: file, runtime, entry.
const FOLDER_HANDLERS: &[(&str, &str, &str)] = &[
    ("main.py", "python3", "main.main"),
    ("index.js", "nodejs", "index.main"),
    ("handler", "custom", "handler"),
];

/// The entry a path most likely means when none is given: `hello.py` and `hello.js` →
/// `hello.main`; a folder's handler (`main.py` → `main.main`). `None` for anything else (the
/// server's default applies).
pub fn guess_entry(path: &Path) -> Option<String> {
    if path.is_dir() {
        return FOLDER_HANDLERS
            .iter()
            .find(|(file, _, _)| path.join(file).is_file())
            .map(|(_, _, entry)| (*entry).to_string());
    }
    let ext = path.extension()?.to_str()?;
    if !matches!(ext, "py" | "js" | "mjs" | "cjs") {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    let valid = !stem.is_empty()
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    valid.then(|| format!("{stem}.main"))
}

/// A zip holding one entry, `name`, at its root, stored uncompressed (as python-qinlingclient
/// builds it). The entry's time is fixed (1980-01-01), so the same file always makes the same
/// zip and the same checksum.
#[cfg(test)]
pub(crate) fn zip_single_file(name: &str, content: &[u8]) -> anyhow::Result<Vec<u8>> {
    zip_single_file_mode(name, content, 0o644)
}

/// [`zip_single_file`] with the entry's permissions: 0o755 keeps an executable (a custom
/// runtime's handler) executable.
pub(crate) fn zip_single_file_mode(
    name: &str,
    content: &[u8],
    mode: u32,
) -> anyhow::Result<Vec<u8>> {
    let mut zip = Zip::new();
    zip.add(name, content, mode)?;
    zip.finish()
}

/// A zip built in memory with fixed entry times, so the same files make the same bytes.
struct Zip(zip::ZipWriter<std::io::Cursor<Vec<u8>>>);

impl Zip {
    fn new() -> Self {
        Self(zip::ZipWriter::new(std::io::Cursor::new(Vec::new())))
    }

    fn add(&mut self, name: &str, content: &[u8], mode: u32) -> anyhow::Result<()> {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(zip::DateTime::DEFAULT)
            .unix_permissions(mode);
        self.0
            .start_file(name, options)
            .context("cannot build the zip")?;
        self.0.write_all(content).context("cannot build the zip")
    }

    fn finish(self) -> anyhow::Result<Vec<u8>> {
        Ok(self
            .0
            .finish()
            .context("cannot build the zip")?
            .into_inner())
    }
}

/// The files of `root` that go into its package, relative, sorted, without what
/// [`IGNORE_FILE`] and [`ALWAYS_IGNORED`] exclude. Symbolic links are refused rather than
/// followed out of the folder.
pub fn folder_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut patterns: Vec<String> = ALWAYS_IGNORED.iter().map(|p| p.to_string()).collect();
    patterns.push(IGNORE_FILE.into());
    if let Ok(text) = std::fs::read_to_string(root.join(IGNORE_FILE)) {
        patterns.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(root.join(&dir))
            .with_context(|| format!("cannot read {}", root.join(&dir).display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", root.display()))?;
            let relative = dir.join(entry.file_name());
            let kind = entry.file_type()?;
            if ignored(&patterns, &relative, kind.is_dir()) {
                continue;
            }
            if kind.is_symlink() {
                bail!(
                    "{} is a symbolic link; a package holds only files (copy it in, or list it in {IGNORE_FILE})",
                    root.join(&relative).display()
                );
            } else if kind.is_dir() {
                pending.push(relative);
            } else if kind.is_file() {
                files.push(relative);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `root` zipped (see [`folder_files`]), permissions kept.
pub fn zip_folder(root: &Path) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let mut zip = Zip::new();
    for relative in folder_files(root)? {
        let path = root.join(&relative);
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        let name = relative
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", relative.display()))?;
        zip.add(name, &read(&path)?, mode)?;
    }
    zip.finish()
}

/// Whether an ignore pattern excludes `relative` (see [`IGNORE_FILE`]).
fn ignored(patterns: &[String], relative: &Path, is_dir: bool) -> bool {
    let path = relative.to_string_lossy();
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    patterns.iter().any(|pattern| {
        let (pattern, dirs_only) = match pattern.strip_suffix('/') {
            Some(p) => (p, true),
            None => (pattern.as_str(), false),
        };
        if dirs_only && !is_dir {
            return false;
        }
        match pattern.strip_prefix('/') {
            Some(anchored) => glob(anchored, &path),
            None if pattern.contains('/') => glob(pattern, &path),
            None => glob(pattern, &name),
        }
    })
}

/// `*` (any run of characters but `/`) and `?` (one character but `/`).
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                go(&p[1..], t) || (t.first().is_some_and(|c| *c != '/') && go(p, &t[1..]))
            }
            (Some('?'), Some(c)) if *c != '/' => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

pub(crate) fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5::Md5::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t, m) in [
            ("*.pyc", "a.pyc", true),
            ("*.pyc", "a.py", false),
            ("te?t", "test", true),
            ("build/*", "build/x", true),
            ("build/*", "build/x/y", false),
            ("*", "", true),
            ("a*b", "a/b", false),
        ] {
            assert_eq!(glob(p, t), m, "{p} ~ {t}");
        }
    }

    #[test]
    fn a_folder_is_zipped_without_what_it_ignores() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("lib/__pycache__")).unwrap();
        std::fs::create_dir_all(root.join("tests")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for f in [
            "main.py",
            "lib/util.py",
            "lib/__pycache__/util.cpython-311.pyc",
            "tests/test_main.py",
            "notes.md",
            ".git/HEAD",
            "input.json",
        ] {
            std::fs::write(root.join(f), f).unwrap();
        }
        std::fs::write(root.join(IGNORE_FILE), "# not shipped\ntests/\n*.md\n").unwrap();
        let files = folder_files(root).unwrap();
        let names: Vec<_> = files.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(names, ["input.json", "lib/util.py", "main.py"]);
        let zip = zip_folder(root).unwrap();
        assert_eq!(
            zip,
            zip_folder(root).unwrap(),
            "the same folder, the same bytes"
        );
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        assert_eq!(archive.len(), 3);
        let mut member = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("lib/util.py").unwrap(), &mut member)
            .unwrap();
        assert_eq!(member, "lib/util.py");
    }

    #[test]
    fn a_symbolic_link_in_a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.py"), "").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        let error = zip_folder(dir.path()).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
    }

    #[test]
    fn runtimes_and_entries_are_guessed() {
        let dir = tempfile::tempdir().unwrap();
        let at = |f: &str| dir.path().join(f);
        std::fs::write(at("hello.py"), "").unwrap();
        std::fs::write(at("hello.js"), "").unwrap();
        std::fs::write(at("echo.wasm"), "\0asm").unwrap();
        std::fs::write(at("notes.txt"), "").unwrap();
        std::fs::write(at("handler"), "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(at("handler"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(guess_runtime(&at("hello.py")), Some("python3"));
        assert_eq!(guess_runtime(&at("hello.js")), Some("nodejs"));
        assert_eq!(guess_runtime(&at("echo.wasm")), Some("wasm"));
        assert_eq!(guess_runtime(&at("handler")), Some("custom"));
        assert_eq!(guess_runtime(&at("notes.txt")), None);
        assert_eq!(guess_entry(&at("hello.js")).as_deref(), Some("hello.main"));
        let folder = at("fn");
        std::fs::create_dir(&folder).unwrap();
        assert_eq!(guess_runtime(&folder), None);
        std::fs::write(folder.join("index.js"), "").unwrap();
        assert_eq!(guess_runtime(&folder), Some("nodejs"));
        assert_eq!(guess_entry(&folder).as_deref(), Some("index.main"));
    }
}
