//! What the number of files costs: memory, idle CPU and throughput with 10, 1,000 and
//! 10,000 files, the 10-file run being the baseline of the same run.
//!
//! `cargo bench -p shipper --bench many_files [-- --lines N --idle-secs S --files 10,1000,10000]`
//!
//! For each file count: N lines in total (default 200,000) spread evenly over the files,
//! shipped from their start into the test server (blackhole mode) by the `shipper` binary at
//! default settings; then, with every line delivered and every file still open or closed by
//! the shipper's own rules, S seconds (default 20) of idling. Printed per run: lines/s,
//! RSS after shipping and after the idle period, CPU share of one core while idle, and the
//! ratios against the 10-file run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use support::{cpu_seconds, line, received, rss_mib, shipper_command, start_server, wait_for};

struct Args {
    lines: usize,
    idle_secs: u64,
    files: Vec<usize>,
}

fn args() -> Args {
    let mut a = Args {
        lines: 200_000,
        idle_secs: 20,
        files: vec![10, 1_000, 10_000],
    };
    let argv: Vec<String> = std::env::args().collect();
    for pair in argv.windows(2) {
        match pair[0].as_str() {
            "--lines" => a.lines = pair[1].parse().unwrap_or(a.lines),
            "--idle-secs" => a.idle_secs = pair[1].parse().unwrap_or(a.idle_secs),
            "--files" => {
                let files: Vec<usize> = pair[1].split(',').filter_map(|v| v.parse().ok()).collect();
                if !files.is_empty() {
                    a.files = files;
                }
            }
            _ => {}
        }
    }
    a
}

struct Figures {
    files: usize,
    lines_per_sec: f64,
    rss_shipped: f64,
    rss_idle: f64,
    idle_cpu_share: f64,
}

fn write_files(dir: &Path, files: usize, lines: usize) {
    let per_file = (lines / files).max(1);
    let mut buf = String::with_capacity(4096);
    let mut n = 0;
    for f in 0..files {
        let path = dir.join(format!("svc-{f:05}.log"));
        let mut w = BufWriter::new(File::create(&path).expect("create a log file"));
        for _ in 0..per_file {
            buf.clear();
            line(n, &mut buf);
            n += 1;
            w.write_all(buf.as_bytes()).expect("write");
        }
        w.flush().expect("flush");
    }
}

fn run(files: usize, lines: usize, idle: Duration) -> Option<Figures> {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("logs dir");
    write_files(&logs, files, lines);
    let total = (lines / files).max(1) * files;
    let server = start_server();
    let started = Instant::now();
    let mut child = shipper_command(
        &server.url(),
        &format!("{}/*.log", logs.display()),
        &dir.path().join("data"),
    )
    .spawn()
    .expect("start the shipper");
    let done = wait_for(&server, total, &mut child, Duration::from_secs(600));
    let secs = started.elapsed().as_secs_f64();
    let figures = done.then(|| {
        let rss_shipped = rss_mib(child.id());
        // Let the last acknowledgements and checkpoint saves settle before measuring idling.
        std::thread::sleep(Duration::from_secs(2));
        let cpu_before = cpu_seconds(child.id());
        std::thread::sleep(idle);
        let cpu_idle = cpu_seconds(child.id()) - cpu_before;
        Figures {
            files,
            lines_per_sec: total as f64 / secs,
            rss_shipped,
            rss_idle: rss_mib(child.id()),
            idle_cpu_share: cpu_idle / idle.as_secs_f64(),
        }
    });
    if !done {
        eprintln!(
            "{files} files: only {} of {total} lines arrived",
            received(&server)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    figures
}

fn main() {
    let a = args();
    // The file descriptor limit must hold every file plus the shipper's own.
    let wanted = a.files.iter().max().copied().unwrap_or(0) as u64 + 256;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    let idle = Duration::from_secs(a.idle_secs);
    let mut results = Vec::new();
    for &files in &a.files {
        eprintln!("{files} files, {} lines ...", a.lines);
        match run(files, a.lines, idle) {
            Some(f) => results.push(f),
            None => eprintln!("{files} files: the run did not finish"),
        }
    }
    let Some(base) = results.first() else {
        eprintln!("no run finished");
        std::process::exit(1);
    };
    println!();
    println!(
        "{:>7} | {:>10} | {:>8} | {:>12} | {:>10} | {:>9} | {:>9}",
        "files", "lines/s", "vs first", "RSS shipped", "RSS idle", "idle CPU", "RSS/first"
    );
    for f in &results {
        println!(
            "{:>7} | {:>10.0} | {:>7.0}% | {:>8.1} MiB | {:>6.1} MiB | {:>8.2}% | {:>8.2}x",
            f.files,
            f.lines_per_sec,
            100.0 * f.lines_per_sec / base.lines_per_sec,
            f.rss_shipped,
            f.rss_idle,
            100.0 * f.idle_cpu_share,
            f.rss_idle / base.rss_idle.max(0.1),
        );
    }
}
