//! What logging costs a service, with the services' logger and with what a Rust team would
//! use instead (`tracing-subscriber`'s JSON formatter writing through `tracing-appender`'s
//! non-blocking writer), measured in the same run: nanoseconds per log line on the request
//! path, and `GET /` requests per second with each logger and with logging off.
//!
//! Run with `cargo bench -p service-kit --bench logging_overhead`. Knobs (environment):
//! `BENCH_LINES` (lines for the per-line figure, default 200000), `BENCH_SECONDS` (per
//! throughput round, default 5), `BENCH_ROUNDS` (rounds per mode, default 3),
//! `BENCH_CONNECTIONS` (concurrent keep-alive connections, default 32).
//!
//! Both loggers write the same line: the access line of a request, with a Tehran-time
//! timestamp, the level, the message, the request's fields and category, the
//! `transaction.id` of the request span and the service identity. `tracing-subscriber`
//! cannot add fields of its own to a line, so its lines take the identity from a root span
//! around the request span (`"spans":[{identity},{transaction.id}]`); its key names are its
//! own (`timestamp`, `level`). The services' logger also masks card numbers and credentials
//! in every text value, which the other does not.
//!
//! The per-line part alternates batches of the two loggers on one thread, so that machine
//! noise hits both alike; each logger's queue holds every line (nothing dropped), and the
//! lines in each file are counted after the run.
//!
//! The throughput part starts this same executable as a child process in `serve-child`
//! mode (the service skeleton, its layers and server, with a trivial `GET /`), with the
//! services' logger at `LOG_LEVEL=info`, with `tracing-subscriber`'s (same filter, same
//! request span and access line from the same request layer), and with `LOG_LEVEL=off`,
//! rounds alternating. A child process is needed because a logger is process-global.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::path::Path;
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
use tracing::Dispatch;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

const CHILD_ARG: &str = "serve-child";
/// The child's logger: the services' own, or `tracing-subscriber`'s.
const DIDBAN: &str = "didban";
const TRACING: &str = "tracing";

const INFO: ServiceInfo = ServiceInfo {
    name: "bench",
    version: "0",
    default_port: 0,
};

fn env_num(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(CHILD_ARG) {
        return serve_child(argv.get(2).map_or(DIDBAN, String::as_str));
    }
    let per_line = per_line()?;
    let throughput = throughput()?;
    println!();
    println!(
        "didban / tracing json: {:.2}x the ns per line (target <= 0.5; {:.2}x against tracing \
         without the identity), {:.2}x the GET / requests/s",
        per_line.didban / per_line.tracing,
        per_line.didban / per_line.bare,
        throughput.didban / throughput.tracing
    );
    Ok(())
}

/// `@timestamp` in Tehran time, the way a team using `tracing-subscriber` would write it:
/// chrono's formatting with chrono-tz's zone.
struct TehranTime;

impl FormatTime for TehranTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Tehran);
        write!(w, "{}", now.format("%Y-%m-%dT%H:%M:%S%.6f%:z"))
    }
}

/// `tracing-subscriber`'s JSON lines, flat event fields, written through `tracing-appender`'s
/// non-blocking writer; with `span_list` every span's fields (identity and transaction id),
/// without it only the current span's (the transaction id).
fn tracing_layer<S>(writer: NonBlocking, span_list: bool) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(!span_list)
        .with_span_list(span_list)
        .with_target(false)
        .with_timer(TehranTime)
        .with_writer(writer)
}

/// The span that gives `tracing-subscriber`'s lines the service identity.
fn identity_span() -> tracing::Span {
    tracing::error_span!(
        "service",
        { schema::ECS_VERSION_FIELD } = schema::ECS_VERSION,
        { schema::SERVICE_NAME } = INFO.name,
        { schema::SERVICE_VERSION } = INFO.version,
        { schema::SERVICE_ENVIRONMENT } = "bench",
        { schema::HOST_NAME } = "bench-host",
    )
}

/// The child: the shared service skeleton answering `GET /`, with the logger `logger`.
fn serve_child(logger: &str) -> anyhow::Result<()> {
    let routes = |_: &service_kit::Kit| Ok(Router::new().route("/", get(|| async { "ok" })));
    if logger != TRACING {
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(service_kit::run(INFO, routes));
    }
    let config = LogConfig::from_env()?;
    let appender = tracing_appender::rolling::never(&config.dir, "bench-tracing.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_new(&config.level)?;
    tracing_subscriber::registry()
        .with(tracing_layer(writer, true).with_filter(filter))
        .init();
    // Every span of a request thread has the identity span for its root.
    let enter_identity = || std::mem::forget(identity_span().entered());
    enter_identity();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(enter_identity)
        .build()?;
    // The kit's log handle is only read by `/health`; the services' logger is not installed.
    let identity = ServiceIdentity {
        name: INFO.name.into(),
        version: INFO.version.into(),
        environment: "bench".into(),
        host: "bench-host".into(),
    };
    let unused = tempfile::tempdir()?;
    let (_, handle) = service_kit::logging::build_layer(
        &identity,
        &LogConfig {
            dir: unused.path().to_owned(),
            ..LogConfig::default()
        },
    )?;
    let result = runtime.block_on(service_kit::app::run_with_logger(INFO, handle, routes));
    drop(guard);
    result
}

/// Median nanoseconds per line of each logger.
struct PerLine {
    didban: f64,
    /// With the same fields (identity from a span).
    tracing: f64,
    /// Without the identity.
    bare: f64,
}

/// Logs `count` access lines inside `span`, the request span, and returns ns per line.
fn access_lines(dispatch: &Dispatch, span: &tracing::Span, from: u64, count: u64) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let _entered = span.enter();
        let started = Instant::now();
        for i in from..from + count {
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
        started.elapsed().as_nanos() as f64 / count as f64
    })
}

const TRANSACTION: &str = "01936c2e-7b3e-7c2a-9a7e-2f1d4f1e8a9b";

/// Nanoseconds per access line, formatted and queued on the calling thread, with the
/// production filter and layer, and with `tracing-subscriber`'s JSON layer.
fn per_line() -> anyhow::Result<PerLine> {
    let lines = env_num("BENCH_LINES", 200_000);
    let dir = tempfile::tempdir()?;
    let config = LogConfig {
        dir: dir.path().to_owned(),
        buffer_lines: usize::try_from(lines)? + 16,
        // One file, like the other logger's, so both files hold every line.
        max_bytes: 0,
        ..LogConfig::default()
    };
    let identity = ServiceIdentity {
        name: "bench".into(),
        version: "0".into(),
        environment: "bench".into(),
        host: "bench-host".into(),
    };
    let (layer, handle) = service_kit::logging::build_layer(&identity, &config)?;
    let didban = Dispatch::new(
        tracing_subscriber::registry().with(layer.with_filter(EnvFilter::new("info"))),
    );
    let tracing_file = dir.path().join("tracing.log");
    let bare_file = dir.path().join("tracing-bare.log");
    let queue = usize::try_from(lines)? + 16;
    let non_blocking = |path: &Path| -> anyhow::Result<(NonBlocking, WorkerGuard)> {
        Ok(NonBlockingBuilder::default()
            .buffered_lines_limit(queue)
            .finish(std::fs::File::create(path)?))
    };
    let (writer, guard) = non_blocking(&tracing_file)?;
    let (bare_writer, bare_guard) = non_blocking(&bare_file)?;
    let (tracing_dropped, bare_dropped) = (writer.error_counter(), bare_writer.error_counter());
    let tracing = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_layer(writer, true).with_filter(EnvFilter::new("info"))),
    );
    let bare = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_layer(bare_writer, false).with_filter(EnvFilter::new("info"))),
    );
    let request_span = |dispatch: &Dispatch, identity: bool| {
        tracing::dispatcher::with_default(dispatch, || {
            let _identity = identity.then(|| identity_span().entered());
            tracing::error_span!("request", { schema::TRANSACTION_ID } = TRANSACTION)
        })
    };
    // The services' logger adds the identity itself; tracing's lines take it from a span.
    let loggers = [didban, tracing, bare];
    let spans = [
        request_span(&loggers[0], false),
        request_span(&loggers[1], true),
        request_span(&loggers[2], false),
    ];
    const BATCHES: u64 = 20;
    let per_batch = (lines / BATCHES).max(1);
    let mut batches: [Vec<f64>; 3] = Default::default();
    for batch in 0..BATCHES {
        let from = batch * per_batch;
        for (i, dispatch) in loggers.iter().enumerate() {
            batches[i].push(access_lines(dispatch, &spans[i], from, per_batch));
        }
    }
    drop(spans);
    handle.flush(Duration::from_secs(30));
    // The dispatchers hold the last writers: the guards' drop then waits for every line.
    drop(loggers);
    drop((guard, bare_guard));
    println!("per log line ({BATCHES} batches of {per_batch} access lines each, alternating):");
    let files = [
        handle.file().context("the bench writes a file")?.clone(),
        tracing_file,
        bare_file,
    ];
    let dropped = [
        handle.dropped_lines(),
        tracing_dropped.dropped_lines() as u64,
        bare_dropped.dropped_lines() as u64,
    ];
    let names = ["didban logger", "tracing json", "tracing, no identity"];
    let mut medians = [0.0; 3];
    for i in 0..3 {
        let fastest = batches[i].iter().copied().fold(f64::INFINITY, f64::min);
        medians[i] = median(&mut batches[i]);
        println!(
            "  {:<21}: {fastest:>5.0} ns fastest batch, {:>5.0} ns median batch ({} lines in the file, {} dropped)",
            names[i],
            medians[i],
            count_lines(&files[i]),
            dropped[i]
        );
    }
    for (name, file) in names.iter().zip(&files) {
        print_sample(name, file);
    }
    Ok(PerLine {
        didban: medians[0],
        tracing: medians[1],
        bare: medians[2],
    })
}

fn count_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// The first line of a logger's file, to show what each one wrote.
fn print_sample(name: &str, path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if let Some(line) = text.lines().next() {
        println!("  {name} line ({} bytes): {line}", line.len());
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn_child(logger: &str, level: &str, log_dir: &Path) -> anyhow::Result<(Child, u16)> {
    let port = free_port()?;
    let child = Command::new(std::env::current_exe()?)
        .args([CHILD_ARG, logger])
        .env("PORT", port.to_string())
        .env("BIND_ADDR", "127.0.0.1")
        .env("LOG_DIR", log_dir)
        .env("LOG_LEVEL", level)
        // Rotation stays on, as in production, but keeps every file so all lines are counted.
        .env("LOG_MAX_FILES", "1000")
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

/// Median requests/s with each logger.
struct Throughput {
    didban: f64,
    tracing: f64,
}

fn throughput() -> anyhow::Result<Throughput> {
    let seconds = env_num("BENCH_SECONDS", 5);
    let rounds = env_num("BENCH_ROUNDS", 3).max(1);
    let connections = env_num("BENCH_CONNECTIONS", 32);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let modes = [
        ("logging off", DIDBAN, "off"),
        ("didban logger", DIDBAN, "info"),
        ("tracing json", TRACING, "info"),
    ];
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let mut results: [Vec<f64>; 3] = Default::default();
    println!();
    for round in 0..rounds {
        for (i, (name, logger, level)) in modes.iter().enumerate() {
            let (mut child, port) = spawn_child(logger, level, dirs[i].path())?;
            let rate = runtime.block_on(load(port, seconds, connections));
            let _ = child.kill();
            let _ = child.wait();
            let rate = rate?;
            println!("round {}: {name:<13}: {rate:.0} req/s", round + 1);
            results[i].push(rate);
        }
    }
    let [off, ours, theirs] = results.map(|mut r| median(&mut r));
    // The active file and its rotations (`bench.log.1`, ...).
    let written = |dir: &tempfile::TempDir, file: &str| -> usize {
        std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(file))
            .map(|entry| count_lines(&entry.path()))
            .sum()
    };
    println!(
        "GET / throughput (median of {rounds} rounds of {seconds}s, {connections} connections, 1 server worker thread):"
    );
    println!("  logging off   : {off:.0} req/s");
    println!(
        "  didban logger : {ours:.0} req/s ({:.1}% of off; {} lines written)",
        100.0 * ours / off,
        written(&dirs[1], "bench.log")
    );
    println!(
        "  tracing json  : {theirs:.0} req/s ({:.1}% of off; {} lines written)",
        100.0 * theirs / off,
        written(&dirs[2], "bench-tracing.log")
    );
    Ok(Throughput {
        didban: ours,
        tracing: theirs,
    })
}
