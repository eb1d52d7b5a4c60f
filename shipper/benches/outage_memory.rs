//! Memory through a long outage: the shipper's RSS while Elasticsearch is down and three
//! services write 5,000 lines/s in all, one `write(2)` per line (what most apps do).
//!
//! `cargo bench -p shipper --bench outage_memory [-- --minutes M --rate R]`
//!
//! The shipper reads three files at default settings into the test server; once the first
//! lines are delivered the server stops listening, and a writer appends R lines/s (default
//! 5,000), one write per line, round-robin over the three files, for M minutes (default 10).
//! Printed every minute: RSS, lines written, whether reading is paused and the pending
//! filesystem wake-ups (the queue that used to grow). At the end: the growth from minute 1
//! to the last minute (the figure that must stay under 1 MiB), and how long catching up
//! takes once the server listens again: until the first document is stored (the retry
//! backoff, random) and then for the backlog (the shipper's speed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{line, received, rss_mib, shipper_command, start_server, wait_for};

fn arg(name: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.windows(2)
        .find(|p| p[0] == name)
        .and_then(|p| p[1].parse().ok())
        .unwrap_or(default)
}

/// One gauge from the shipper's `/metrics`, read with a bare HTTP/1.0 request.
fn metric(port: u16, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn main() {
    let minutes = arg("--minutes", 10).max(1);
    let rate = arg("--rate", 5_000).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("logs dir");
    let paths: Vec<_> = ["payment", "reservation", "loan_resource"]
        .iter()
        .map(|s| logs.join(format!("{s}.log")))
        .collect();
    let mut files: Vec<_> = paths
        .iter()
        .map(|p| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .expect("open a log file")
        })
        .collect();
    let mut buf = String::with_capacity(512);
    let mut n = 0usize;
    let mut write_one = |files: &mut Vec<std::fs::File>, n: &mut usize| {
        buf.clear();
        line(*n, &mut buf);
        // One write(2) per line, as an application logging line by line does.
        files[*n % 3]
            .write_all(buf.as_bytes())
            .expect("write a line");
        *n += 1;
    };
    for _ in 0..30 {
        write_one(&mut files, &mut n);
    }

    let server = start_server();
    let port = free_port();
    let mut child = shipper_command(
        &server.url(),
        &format!("{}/*.log", logs.display()),
        &dir.path().join("data"),
    )
    .env("SHIPPER_METRICS_ADDR", format!("127.0.0.1:{port}"))
    .spawn()
    .expect("start the shipper");
    assert!(
        wait_for(&server, n, &mut child, Duration::from_secs(60)),
        "the first lines did not arrive"
    );
    server.stop_listening();
    eprintln!("outage started: {rate} lines/s, one write per line, {minutes} min");

    let started = Instant::now();
    let tick = Duration::from_millis(10);
    let per_tick = (rate as f64 * tick.as_secs_f64()).max(1.0);
    let mut owed = 0.0;
    let mut next = started;
    let mut samples: Vec<(u64, f64)> = Vec::new();
    println!("| minute | RSS MiB | lines written | reading paused | pending wake-ups |");
    println!("|---:|---:|---:|---:|---:|");
    for minute in 1..=minutes {
        let until = started + Duration::from_secs(60 * minute);
        while Instant::now() < until {
            owed += per_tick;
            while owed >= 1.0 {
                write_one(&mut files, &mut n);
                owed -= 1.0;
            }
            next += tick;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let rss = rss_mib(child.id());
        samples.push((minute, rss));
        println!(
            "| {minute} | {rss:.1} | {n} | {} | {} |",
            metric(port, "shipper_reading_paused").unwrap_or(f64::NAN),
            metric(port, "shipper_pending_wakeups").unwrap_or(f64::NAN),
        );
    }

    let before = received(&server);
    server.resume_listening().expect("listen again");
    let back = Instant::now();
    // The first document stored after the outage: how long the shipper took to notice that
    // Elasticsearch is back (its retry backoff), apart from how long the backlog then takes.
    let mut first_stored = None;
    while back.elapsed() < Duration::from_secs(600) {
        if received(&server) > before {
            first_stored = Some(back.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let caught_up = wait_for(&server, n, &mut child, Duration::from_secs(1800));
    let catch_up = back.elapsed().as_secs_f64();
    let first = samples.first().map_or(0.0, |s| s.1);
    let last = samples.last().map_or(0.0, |s| s.1);
    println!();
    println!(
        "RSS growth from minute 1 to minute {minutes}: {:+.2} MiB ({:.3}x of minute 1)",
        last - first,
        last / first.max(f64::MIN_POSITIVE)
    );
    match first_stored {
        Some(s) => println!(
            "first document stored {s:.2} s after the outage ended (the retry backoff: a \
             uniformly random wait of up to retry_max, 30 s by default)"
        ),
        None => println!("no document stored within 600 s of the outage's end"),
    }
    if caught_up {
        println!(
            "every one of {n} lines delivered {catch_up:.1} s after the outage ended ({:.0} lines/s)",
            n as f64 / catch_up.max(f64::MIN_POSITIVE)
        );
        if let Some(s) = first_stored {
            let backlog = n - before;
            let took = (catch_up - s).max(f64::MIN_POSITIVE);
            println!(
                "the backlog of {backlog} lines took {took:.1} s from the first stored ({:.0} lines/s)",
                backlog as f64 / took
            );
        }
    } else {
        println!(
            "only {} of {n} lines delivered after {catch_up:.0} s",
            received(&server)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
