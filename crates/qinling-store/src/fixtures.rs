//! Test fixtures shared by the store's unit tests: a runtime row and function rows with the
//! fields the tests care about, everything else fixed.

use qinling_types::{Code, Function, Runtime, RuntimeStatus, now};

use crate::Store;

/// Inserts runtime `rt` (python3, public, available) of project `p`.
pub async fn runtime(store: &Store) {
    store
        .insert_runtime(&Runtime {
            id: "rt".into(),
            name: Some("python3".into()),
            image: "python3".into(),
            description: None,
            is_public: true,
            trusted: true,
            status: RuntimeStatus::Available,
            project_id: "p".into(),
            created_at: now(),
            updated_at: None,
        })
        .await
        .unwrap();
}

/// A function of runtime `rt` with the given id, name, project and memory limit.
pub fn function(id: &str, name: Option<String>, project: &str, memory_size: u64) -> Function {
    Function {
        id: id.into(),
        name,
        description: None,
        runtime_id: Some("rt".into()),
        code: Code::Package { md5sum: "m".into() },
        package_sha256: "s".into(),
        package_size: 1,
        entry: None,
        cpu: 100,
        memory_size,
        timeout: 5,
        network: false,
        execution_mode: qinling_types::ExecutionMode::Fork,
        count: 0,
        latest_version: 0,
        project_id: project.into(),
        created_at: now(),
        updated_at: None,
    }
}
