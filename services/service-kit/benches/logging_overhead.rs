//! What logging costs a service: nanoseconds per log line on the request path, and `GET /`
//! requests per second with logging on and off, measured in the same run.
//!
//! Run with `cargo bench -p service-kit --bench logging_overhead`. Knobs (environment):
//! `BENCH_LINES` (lines for the per-line figure, default 200000), `BENCH_SECONDS` (per
//! throughput round, default 5), `BENCH_ROUNDS` (rounds per mode, default 3),
//! `BENCH_CONNECTIONS` (concurrent keep-alive connections, default 32).
//!
//! The throughput part starts this same executable as a child process in `serve-child`
//! mode (the service skeleton with a trivial `GET /`), once with `LOG_LEVEL=info` and once
//! with `LOG_LEVEL=off`, alternating so that machine noise hits both modes alike. A child
//! process is needed because the logger is process-global.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use service_kit::config::LogConfig;
use service_kit::line::ServiceIdentity;
use service_kit::schema;
use service_kit::ServiceInfo;
use tracing_subscriber::prelude::*;

const CHILD_ARG: &str = "serve-child";

fn env_num(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(CHILD_ARG) {
        return serve_child();
    }
    per_line()?;
    throughput()
}

/// The child: the shared service skeleton answering `GET /`.
fn serve_child() -> anyhow::Result<()> {
    const INFO: ServiceInfo = ServiceInfo {
        name: "bench",
        version: "0",
        default_port: 0,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(service_kit::run(INFO, |_| {
            Ok(Router::new().route("/", get(|| async { "ok" })))
        }))
}

/// Nanoseconds per access line, formatted and queued on the calling thread, with the
/// production filter and layer.
fn per_line() -> anyhow::Result<()> {
    let lines = env_num("BENCH_LINES", 200_000);
    let dir = tempfile::tempdir()?;
    let config = LogConfig {
        dir: dir.path().to_owned(),
        buffer_lines: usize::try_from(lines)? + 16,
        ..LogConfig::default()
    };
    let identity = ServiceIdentity {
        name: "bench".into(),
        version: "0".into(),
        environment: "bench".into(),
        host: "bench-host".into(),
    };
    let (layer, handle) = service_kit::logging::build_layer(&identity, &config)?;
    let subscriber = tracing_subscriber::registry()
        .with(layer.with_filter(tracing_subscriber::EnvFilter::new("info")));
    const BATCHES: u64 = 20;
    let per_batch = (lines / BATCHES).max(1);
    let mut batch_ns = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::error_span!(
            "request",
            { schema::TRANSACTION_ID } = "01936c2e-7b3e-7c2a-9a7e-2f1d4f1e8a9b"
        );
        let _entered = span.enter();
        let mut batch_ns = Vec::new();
        for batch in 0..BATCHES {
            let started = Instant::now();
            for i in batch * per_batch..(batch + 1) * per_batch {
                tracing::info!(
                    { schema::HTTP_REQUEST_METHOD } = "GET",
                    { schema::URL_PATH } = "/loans/42",
                    { schema::HTTP_RESPONSE_STATUS_CODE } = 200u64,
                    { schema::EVENT_DURATION } = 183_000 + i,
                    { schema::EVENT_OUTCOME } = "success",
                    { schema::LOG_CATEGORY } = "ApplicationInfo",
                    "{} {} {}",
                    "GET",
                    "/loans/42",
                    200
                );
            }
            batch_ns.push(started.elapsed().as_nanos() as f64 / per_batch as f64);
        }
        batch_ns
    });
    handle.flush(Duration::from_secs(30));
    let file = handle.file().context("the bench writes a file")?;
    let written = std::fs::read_to_string(file)?.lines().count();
    let fastest = batch_ns.iter().copied().fold(f64::INFINITY, f64::min);
    let typical = median(&mut batch_ns);
    println!(
        "per log line: {fastest:.0} ns fastest batch, {typical:.0} ns median batch \
         ({BATCHES} batches of {per_batch} access lines; {written} lines in the active file, {} dropped)",
        handle.dropped_lines()
    );
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn_child(level: &str, log_dir: &std::path::Path) -> anyhow::Result<(Child, u16)> {
    let port = free_port()?;
    let child = Command::new(std::env::current_exe()?)
        .arg(CHILD_ARG)
        .env("PORT", port.to_string())
        .env("BIND_ADDR", "127.0.0.1")
        .env("LOG_DIR", log_dir)
        .env("LOG_LEVEL", level)
        .env("TOKIO_WORKER_THREADS", "1")
        .stdout(Stdio::null())
        .spawn()?;
    Ok((child, port))
}

/// Requests per second against `port` for `seconds`, over `connections` connections.
async fn load(port: u16, seconds: u64, connections: u64) -> anyhow::Result<f64> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("http://127.0.0.1:{port}/").parse()?;
    // Wait for the child to listen.
    let ready_by = Instant::now() + Duration::from_secs(10);
    while client.get(uri.clone()).await.is_err() {
        anyhow::ensure!(Instant::now() < ready_by, "bench server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = client.clone();
        let uri = uri.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            while Instant::now() < deadline {
                let Ok(response) = client.get(uri.clone()).await else {
                    continue;
                };
                let success = response.status().is_success();
                if response.into_body().collect().await.is_ok() && success {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn throughput() -> anyhow::Result<()> {
    let seconds = env_num("BENCH_SECONDS", 5);
    let rounds = env_num("BENCH_ROUNDS", 3);
    let connections = env_num("BENCH_CONNECTIONS", 32);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for (level, results) in [("off", &mut off), ("info", &mut on)] {
            let (mut child, port) = spawn_child(level, dir.path())?;
            let rate = runtime.block_on(load(port, seconds, connections));
            let _ = child.kill();
            let _ = child.wait();
            let rate = rate?;
            println!("round {}: logging {level:>4}: {rate:.0} req/s", round + 1);
            results.push(rate);
        }
    }
    let (on, off) = (median(&mut on), median(&mut off));
    let lines = std::fs::read_to_string(dir.path().join("bench.log"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    println!(
        "GET / throughput (median of {rounds} rounds of {seconds}s, {connections} connections, 1 server worker thread):"
    );
    println!("  logging off: {off:.0} req/s");
    println!("  logging on : {on:.0} req/s ({lines} lines written)");
    println!("  on/off ratio: {:.1}%", 100.0 * on / off);
    Ok(())
}
