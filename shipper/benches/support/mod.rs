//! What the benchmarks share: realistic lines, the test server, the shipper's command line,
//! and the figures of a process read from /proc.
#![allow(dead_code)] // each benchmark uses a part

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use es_test_server::{EsTestServer, ServerConfig, ThreadedServer};

/// A line in the services' format; every 20th carries a stack trace.
pub fn line(n: usize, out: &mut String) {
    use std::fmt::Write as _;
    let services = ["payment", "loan-resource", "reservation"];
    let service = services[n % 3];
    let (level, category, extra) = if n % 20 == 7 {
        let mut trace = String::new();
        for frame in 0..6 {
            let _ = write!(
                trace,
                "{frame}: {service}::handlers::process_request::h{:x}\\n             at services/{service}/src/handlers.rs:{}:{}\\n",
                n.wrapping_mul(2654435761) % 0xffff_ffff,
                40 + frame,
                9
            );
        }
        (
            "ERROR",
            "SystemError",
            format!(",\"error.type\":\"UpstreamUnavailable\",\"error.message\":\"connection refused (os error 111)\",\"error.stack_trace\":\"{trace}\""),
        )
    } else {
        ("INFO", "ApplicationInfo", String::new())
    };
    let _ = writeln!(
        out,
        "{{\"@timestamp\":\"2026-11-26T13:{:02}:{:02}.{:06}+03:30\",\"log.level\":\"{level}\",\"message\":\"GET /loans/{} 200 in {} us\",\"ecs.version\":\"9.2.0\",\"service.name\":\"{service}\",\"service.version\":\"0.1.0\",\"host.name\":\"{service}-7d9f\",\"transaction.id\":\"0193{:028x}\",\"url.path\":\"/loans/{}\",\"http.response.status_code\":200,\"event.duration\":{},\"event.outcome\":\"success\",\"log.category\":\"{category}\"{extra}}}",
        (n / 60_000) % 60,
        (n / 1000) % 60,
        n % 1_000_000,
        n % 9973,
        (n * 37) % 100_000,
        n,
        n % 100_000,
        1_000_000 + n % 50_000_000
    );
}

pub fn write_file(path: &Path, lines: usize) -> u64 {
    let mut w =
        BufWriter::with_capacity(1 << 20, File::create(path).expect("create the input file"));
    let mut buf = String::with_capacity(4096);
    let mut bytes = 0u64;
    for n in 0..lines {
        buf.clear();
        line(n, &mut buf);
        bytes += buf.len() as u64;
        w.write_all(buf.as_bytes()).expect("write");
    }
    w.flush().expect("flush");
    bytes
}

pub fn start_server() -> ThreadedServer {
    EsTestServer::start_in_thread(ServerConfig::default().blackhole(false))
        .expect("start the test server")
}

pub fn received(server: &EsTestServer) -> usize {
    server
        .blackhole_counts()
        .values()
        .map(|v| *v as usize)
        .sum()
}

/// CPU-seconds (user + system) of a process, from /proc.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; here offset by the two before ')'.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

/// Peak resident memory of a process in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Resident memory of a process now, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub fn wait_for(
    server: &EsTestServer,
    target: usize,
    child: &mut Child,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if received(server) >= target {
            return true;
        }
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("process exited early: {status}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Waits until `server` accepted `target` documents, `child` exited, `timeout` passed or
/// no document arrived for `stall`; returns how many documents arrived.
pub fn wait_for_delivery(
    server: &EsTestServer,
    target: usize,
    child: &mut Child,
    timeout: Duration,
    stall: Duration,
) -> usize {
    let deadline = Instant::now() + timeout;
    let (mut last, mut last_change) = (0, Instant::now());
    loop {
        let now = received(server);
        if now >= target {
            return now;
        }
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("process exited early: {status}");
            return now;
        }
        if Instant::now() >= deadline || last_change.elapsed() >= stall {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn shipper_command(url: &str, glob: &str, data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
    cmd.env_clear()
        .env("ELASTICSEARCH_URL", url)
        .env("SHIPPER_PATHS", glob)
        .env("SHIPPER_DATA_DIR", data)
        .env("SHIPPER_METRICS_ADDR", "127.0.0.1:0")
        .env("SHIPPER_SUMMARY_INTERVAL", "0s")
        .env("SHIPPER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // Settings to compare (batch sizes, in-flight requests, budget) pass through.
    for (key, value) in std::env::vars() {
        if key.starts_with("SHIPPER_") {
            cmd.env(key, value);
        }
    }
    cmd
}
