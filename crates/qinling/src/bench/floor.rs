//! `qinling bench-floor`: the floor the benchmark's ratios are taken against — a minimal
//! axum hello-world on the same stack as the API (tokio, hyper, serde_json), with no store
//! and no worker, measured in the same run on the same machine.

use std::process::ExitCode;

use serde_json::{Value, json};

/// `qinling bench-floor`: the floor server. It answers `POST /v1/executions` with a small
/// execution-shaped JSON document, parsing the request body like the real API does.
pub fn floor_main(listen: std::net::SocketAddr) -> ExitCode {
    use axum::routing::post;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let app = axum::Router::new().route(
            "/v1/executions",
            post(|axum::Json(body): axum::Json<Value>| async move {
                let result =
                    json!({"output": format!("Hello, {}", body["input"]), "duration": 0.0})
                        .to_string();
                (
                    axum::http::StatusCode::CREATED,
                    axum::Json(json!({"id": "floor", "status": "success", "result": result})),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
        eprintln!("floor listen={}", listener.local_addr().expect("address"));
        axum::serve(listener, app).await.expect("serve");
    });
    ExitCode::SUCCESS
}
