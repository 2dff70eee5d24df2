//! The framed worker protocol (`docs/worker-protocol.md`): a 4-byte big-endian length, then a
//! JSON message or, right after `bind`, the raw package bytes.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Frames larger than this are a protocol error.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Engine → worker.
#[derive(Debug, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request<'a> {
    Bind {
        entry: &'a str,
        package_size: usize,
        function_id: &'a str,
        function_version: i64,
        /// `fork`: a fresh process per execution; `reuse`: executions run in the worker's
        /// long-lived process. A shim treats an absent mode as `fork`.
        mode: qinling_types::ExecutionMode,
    },
    Exec {
        id: &'a str,
        kwargs: Option<&'a serde_json::Map<String, serde_json::Value>>,
        args: Vec<&'a str>,
        timeout_ms: u64,
        context: &'a serde_json::Value,
        rlimits: Rlimits,
        log_limit: usize,
    },
    Ping,
}

/// Per-execution rlimits applied by the shim in the execution's process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rlimits {
    pub nofile: u64,
    pub nproc: u64,
    pub fsize: u64,
}

/// Worker → engine.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Reply {
    Ready {},
    Bound {
        ok: bool,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        logs: Option<String>,
    },
    Result(ExecReply),
    Pong {},
    Error {
        error: String,
    },
}

/// The outcome of one execution as the shim reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecReply {
    pub id: String,
    pub success: bool,
    #[serde(default)]
    pub output: serde_json::Value,
    #[serde(default)]
    pub duration: f64,
    #[serde(default)]
    pub logs: String,
    #[serde(default)]
    pub cpu_ms: Option<u64>,
    #[serde(default)]
    pub max_rss_kb: Option<u64>,
    #[serde(default)]
    pub reason: String,
}

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    // One write for small frames keeps the hot path to a single syscall.
    if payload.len() <= 64 * 1024 {
        let mut buf = Vec::with_capacity(4 + payload.len());
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(payload);
        w.write_all(&buf).await?;
    } else {
        w.write_all(&len.to_be_bytes()).await?;
        w.write_all(payload).await?;
    }
    w.flush().await
}

/// Reads one frame; `Ok(None)` on a clean EOF between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let big = vec![7u8; 200_000];
        write_frame(&mut a, b"{\"op\":\"ping\"}").await.unwrap();
        write_frame(&mut a, &big).await.unwrap();
        drop(a);
        assert_eq!(
            read_frame(&mut b).await.unwrap().unwrap(),
            b"{\"op\":\"ping\"}"
        );
        assert_eq!(read_frame(&mut b).await.unwrap().unwrap(), big);
        assert!(read_frame(&mut b).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_frame_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        let err = read_frame(&mut b).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn exec_request_shape() {
        let ctx = serde_json::json!({"execution_id": "e"});
        let req = Request::Exec {
            id: "e",
            kwargs: None,
            args: vec!["raw"],
            timeout_ms: 5000,
            context: &ctx,
            rlimits: Rlimits {
                nofile: 1024,
                nproc: 128,
                fsize: 1,
            },
            log_limit: 10,
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"op":"exec","id":"e","kwargs":null,"args":["raw"],"timeout_ms":5000,"context":{"execution_id":"e"},"rlimits":{"nofile":1024,"nproc":128,"fsize":1},"log_limit":10}"#
        );
    }
}
