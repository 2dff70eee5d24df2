//! The guest's stdout and stderr: in-memory buffers that keep the first `limit` bytes and
//! count the rest. A guest writing past the limit is not failed (its writes still succeed);
//! what it wrote beyond is dropped and reported, like the native runtimes' log limit.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Largest write the guest is offered at once (WASI splits larger writes).
const WRITE_PERMIT: usize = 64 * 1024;

/// One output stream of one execution. Clones share the buffer.
#[derive(Clone)]
pub(crate) struct Capture(Arc<Mutex<Buffer>>);

struct Buffer {
    bytes: Vec<u8>,
    limit: usize,
    dropped: u64,
}

impl Capture {
    pub(crate) fn new(limit: usize) -> Capture {
        Capture(Arc::new(Mutex::new(Buffer {
            bytes: Vec::new(),
            limit,
            dropped: 0,
        })))
    }

    fn push(&self, data: &[u8]) {
        let mut b = self.0.lock().expect("capture lock");
        let room = b.limit.saturating_sub(b.bytes.len());
        let kept = data.len().min(room);
        b.bytes.extend_from_slice(&data[..kept]);
        b.dropped += (data.len() - kept) as u64;
    }

    /// What was kept, and how many bytes were dropped beyond the limit.
    pub(crate) fn take(&self) -> (Vec<u8>, u64) {
        let mut b = self.0.lock().expect("capture lock");
        (std::mem::take(&mut b.bytes), b.dropped)
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Capture {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_counts_the_rest() {
        let cases: &[(&[&str], usize, &str, u64)] = &[
            (&["hello"], 10, "hello", 0),
            (&["hello", " world"], 8, "hello wo", 3),
            (&["abc", "def"], 3, "abc", 3),
            (&["abc"], 0, "", 3),
        ];
        for (writes, limit, kept, dropped) in cases {
            let c = Capture::new(*limit);
            for w in *writes {
                c.push(w.as_bytes());
            }
            let (bytes, n) = c.take();
            assert_eq!(
                (String::from_utf8(bytes).unwrap().as_str(), n),
                (*kept, *dropped),
                "{writes:?} limit {limit}"
            );
        }
    }
}
