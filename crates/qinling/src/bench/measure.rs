//! The benchmark's measuring primitives: a keep-alive HTTP client per simulated client,
//! one execution request with a check of its answer ([`Target`]), closed-loop latency with a
//! warm-up, throughput of many clients over a fixed time, and exact percentiles.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::Value;

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()
        .expect("http client")
}

pub(super) async fn post_json(
    c: &reqwest::Client,
    url: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let r = c.post(url).json(body).send().await?;
    let status = r.status();
    let v: Value = r.json().await?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {v}");
    }
    Ok(v)
}

/// Percentiles of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(super) struct Dist {
    pub(super) n: usize,
    pub(super) p50_ms: f64,
    pub(super) p90_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
}

pub(super) fn dist(mut d: Vec<Duration>) -> Dist {
    d.sort();
    let at = |q: f64| {
        d.get(((d.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |x| x.as_secs_f64() * 1e3)
    };
    Dist {
        n: d.len(),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}

/// One execution request and a check of its answer.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) url: String,
    pub(super) body: Value,
}

impl Target {
    pub(super) async fn call(&self, c: &reqwest::Client) -> anyhow::Result<()> {
        let v = post_json(c, &self.url, &self.body).await?;
        if v["status"] != "success" {
            bail!("execution did not succeed: {v}");
        }
        Ok(())
    }
}

pub(super) async fn latency(t: &Target, requests: usize) -> anyhow::Result<Dist> {
    let c = client();
    for _ in 0..requests / 10 + 1 {
        t.call(&c).await?;
    }
    let mut out = Vec::with_capacity(requests);
    for _ in 0..requests {
        let start = Instant::now();
        t.call(&c).await?;
        out.push(start.elapsed());
    }
    Ok(dist(out))
}

#[derive(Debug, serde::Serialize)]
pub(super) struct Throughput {
    pub(super) clients: usize,
    pub(super) seconds: f64,
    pub(super) requests: u64,
    pub(super) per_second: f64,
    pub(super) latency: Dist,
}

pub(super) async fn throughput(
    t: &Target,
    clients: usize,
    secs: u64,
) -> anyhow::Result<Throughput> {
    throughput_over(std::slice::from_ref(t), clients, secs).await
}

/// [`throughput`] with the clients spread over `targets` (client `k` calls `targets[k % n]`:
/// the nodes of a cluster).
pub(super) async fn throughput_over(
    targets: &[Target],
    clients: usize,
    secs: u64,
) -> anyhow::Result<Throughput> {
    let run = |secs: f64| {
        let tasks: Vec<_> = (0..clients)
            .map(|k| {
                let t = targets[k % targets.len()].clone();
                tokio::spawn(async move {
                    let c = client();
                    let end = Instant::now() + Duration::from_secs_f64(secs);
                    let mut lat = Vec::new();
                    while Instant::now() < end {
                        let start = Instant::now();
                        t.call(&c).await?;
                        lat.push(start.elapsed());
                    }
                    anyhow::Ok(lat)
                })
            })
            .collect();
        async move {
            let start = Instant::now();
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await??);
            }
            anyhow::Ok((all, start.elapsed()))
        }
    };
    run(1.0).await?;
    let (lat, elapsed) = run(secs as f64).await?;
    let n = lat.len() as u64;
    Ok(Throughput {
        clients,
        seconds: elapsed.as_secs_f64(),
        requests: n,
        per_second: n as f64 / elapsed.as_secs_f64(),
        latency: dist(lat),
    })
}
