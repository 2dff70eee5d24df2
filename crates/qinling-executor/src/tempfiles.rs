//! The sweep of interrupted writes in a two-level content-addressed directory
//! (`<dir>/<aa>/<name>`), shared by the stores that write files there as temporary file,
//! fsync, rename, and name the temporary file after the writing process: the engine's
//! package store (`.<sha256>.<pid>.tmp`) and the wasm runtime's artefact cache
//! (`.<artefact>.<pid>.tmp`). Each says how to read the writer's pid from a name.

use std::path::Path;

/// Removes the files in `dir/*/` whose writer (`writer_of` reads its pid from the file
/// name; `None`: not a temporary file) is not `alive`. A file that cannot be removed is
/// handed to `failed` and left. Returns how many went.
pub fn remove_dead_writers(
    dir: &Path,
    writer_of: impl Fn(&str) -> Option<u32>,
    alive: impl Fn(u32) -> bool,
    mut failed: impl FnMut(&Path, std::io::Error),
) -> usize {
    let mut removed = 0;
    for d in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let Some(pid) = writer_of(&name) else {
                continue;
            };
            if alive(pid) {
                continue;
            }
            match std::fs::remove_file(f.path()) {
                Ok(()) => removed += 1,
                Err(error) => failed(&f.path(), error),
            }
        }
    }
    removed
}

/// Whether `pid` is another running process (a writer that may still finish its file):
/// what the stores pass as `alive` at open.
pub fn another_live_process(pid: u32) -> bool {
    pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
}
