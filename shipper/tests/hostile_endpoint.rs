//! A real shipper process behind a hostile `_bulk` endpoint (the test server playing a proxy
//! that executes each request and then lies about it): a 300 MiB answer, a gzip bomb that
//! expands to 300 MiB, reordered, short and long item lists, huge error reasons. Its memory
//! stays bounded, every line is indexed exactly once, and its own log stays small and one
//! event a line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::time::Duration;

use es_test_server::HostileAnswer;
use support::*;

const WAIT: Duration = Duration::from_secs(120);
const BIG: u64 = 300 * 1024 * 1024;
/// The compose file gives the shipper 256 MiB; half of it is plenty.
const PEAK_LIMIT_KIB: u64 = 128 * 1024;

/// Waits for `cond`; on a timeout the failure shows the end of the shipper's log.
fn wait_for(shipper: &Shipper, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = shipper.own_log();
    let tail: String = log
        .chars()
        .rev()
        .take(4000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    panic!("timed out after {WAIT:?} waiting for {what}; the shipper's log ends with:\n{tail}");
}

/// The peak resident memory of a process (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

#[test]
fn a_hostile_bulk_endpoint_neither_exhausts_memory_nor_loses_or_doubles_a_line() {
    let es = es();
    // Made before the shipper starts: compressing 300 MiB takes a moment.
    let bomb = es_test_server::hostile::gzip_bomb(BIG);
    assert!(bomb.len() < 2 * 1024 * 1024, "{} bytes", bomb.len());
    es.faults().hostile_next_answers(&[
        HostileAnswer::HugeBody { bytes: BIG },
        HostileAnswer::GzipBomb { bytes: BIG },
        HostileAnswer::ReorderedItems,
        HostileAnswer::ShortItems,
        HostileAnswer::LongItems,
    ]);
    let setup = Setup::new(&es.url());
    let shipper = setup.start();
    // A round of lines at a time, each its own `_bulk` request, until every hostile answer
    // has been given.
    let mut written = 0;
    while es.faults().hostile_answers_left() > 0 {
        assert!(
            written < 10_000,
            "the hostile answers are not being consumed"
        );
        write_lines(&setup.logs().join("payment.log"), "payment", written, 500);
        written += 500;
        wait_for(&shipper, "the round indexed", || {
            es.count("logs-*") >= written
        });
    }
    wait_for(&shipper, "every line acknowledged", || {
        shipper.metric("shipper_bytes_behind") == Some(0.0)
    });
    assert_exactly_once(&es, "logs-*", written);

    let peak = peak_rss_kib(shipper.child.id());
    assert!(
        peak < PEAK_LIMIT_KIB,
        "peak RSS {peak} KiB, limit {PEAK_LIMIT_KIB} KiB"
    );
    eprintln!("peak RSS of the shipper: {peak} KiB");
    let log = shipper.own_log();
    assert!(log.contains("larger than"), "{log}");
    // Each untrusted answer counts as a retry (the warnings about them are held back); the
    // reordered one was matched by id and needed none.
    let retries = shipper.metric("shipper_bulk_request_retries_total");
    assert_eq!(retries, Some(4.0));
}

#[test]
fn a_429_storm_with_huge_reasons_does_not_flood_the_shippers_log() {
    let es = es();
    // Eight 429 answers whose reasons are 2 MiB each: 16 MiB if written as they came.
    es.faults().hostile_next_answers(
        &[HostileAnswer::HugeError {
            status: 429,
            reason_bytes: 2 * 1024 * 1024,
        }; 8],
    );
    let setup = Setup::new(&es.url()).env("SHIPPER_BATCH_MAX_DOCS", "50");
    write_lines(&setup.logs().join("payment.log"), "payment", 0, 200);
    let shipper = setup.start();
    wait_for(
        &shipper,
        "every hostile answer sent and every line indexed",
        || es.faults().hostile_answers_left() == 0 && es.count("logs-*") >= 200,
    );
    assert_exactly_once(&es, "logs-*", 200);

    let log = shipper.own_log();
    assert!(log.len() < 256 * 1024, "{} bytes of log", log.len());
    let warnings = log.lines().filter(|l| l.contains("HTTP 429")).count();
    assert!(
        (1..=2).contains(&warnings),
        "{warnings} warnings about the same 429s:\n{log}"
    );
    assert!(log.contains("[cut: "), "the reason is cut, and says so");
}

#[test]
fn a_newline_in_a_file_name_does_not_forge_a_line_in_the_shippers_log() {
    let es = es();
    let setup = Setup::new(&es.url());
    let forged = "2026-12-02T00:00:00.000000Z ERROR shipper: Elasticsearch is down";
    let name = format!("payment\n{forged}.log");
    write_lines(&setup.logs().join(&name), "payment", 0, 10);
    let shipper = setup.start();
    wait_for(&shipper, "the lines indexed", || es.count("logs-*") >= 10);

    let log = shipper.own_log();
    assert!(
        !log.lines().any(|l| l.starts_with(forged)),
        "a forged line:\n{log}"
    );
    assert!(log.contains(&format!("payment\\n{forged}")), "{log}");
}
