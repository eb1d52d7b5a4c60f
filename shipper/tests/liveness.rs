//! `/health` is the liveness probe: it must fail when the reading thread is stuck in the
//! kernel (a hung network filesystem: nothing ships, and only a restart helps), and must not
//! fail while reading waits for an Elasticsearch that is down (a restart would not help, and
//! a probe that restarts a waiting shipper turns an outage into a crash loop). SIGTERM must
//! stop the process either way.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::*;

const WAIT: Duration = Duration::from_secs(60);

/// The thread id of the shipper's thread named `name`.
fn thread_id(pid: u32, name: &str) -> Option<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
        })
        .and_then(|task| task.file_name().to_str()?.parse().ok())
}

/// Stops one thread of another process, and only that one, as a system call that never
/// returns would: `PTRACE_SEIZE` + `PTRACE_INTERRUPT` (no signal is sent, so the rest of the
/// process runs on). `None` when this test may not trace (no `CAP_SYS_PTRACE`).
fn stop_thread(tid: i32) -> Option<()> {
    // SAFETY: ptrace on a thread of our own child; no memory of ours is handed over.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0) != 0 {
            return None;
        }
        assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0), 0);
        let mut status = 0;
        assert_eq!(libc::waitpid(tid, &mut status, libc::__WALL), tid);
    }
    Some(())
}

#[test]
fn a_reading_thread_stuck_in_the_kernel_fails_health_and_sigterm_still_stops_the_shipper() {
    let es = es();
    let setup = Setup::new(&es.url())
        .env("SHIPPER_HEALTH_STUCK_AFTER", "2s")
        .env("SHIPPER_SHUTDOWN_TIMEOUT", "2s");
    write_lines(&setup.logs().join("payment.log"), "payment", 0, 100);
    let mut shipper = setup.start();
    wait_until("the first lines", WAIT, || es.count("logs-*") >= 100);
    wait_until("a healthy shipper", WAIT, || {
        shipper.get("/health").is_some_and(|(s, _)| s == 200)
    });

    let pid = shipper.child.id();
    let tid = thread_id(pid, "file-server").expect("the reading thread");
    if stop_thread(tid).is_none() {
        eprintln!("skipped: this process may not ptrace its child (no CAP_SYS_PTRACE)");
        return;
    }
    wait_until("/health to call the reader stuck", WAIT, || {
        shipper
            .get("/health")
            .is_some_and(|(s, body)| s == 503 && body.contains("stuck"))
    });

    shipper.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(45);
    let status = loop {
        // The stopped thread is killed with the process; as its tracer, this test reaps it,
        // or the process could not finish exiting.
        let mut ignored = 0;
        // SAFETY: waiting for a thread we trace.
        unsafe { libc::waitpid(tid, &mut ignored, libc::__WALL | libc::WNOHANG) };
        if let Ok(Some(status)) = shipper.child.try_wait() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.is_some(),
        "SIGTERM stops a shipper whose reading thread is stuck\n{}",
        shipper.own_log()
    );
}

#[test]
fn waiting_for_elasticsearch_is_not_a_stuck_reader() {
    let es = es();
    let setup = Setup::new(&es.url())
        .env("SHIPPER_HEALTH_STUCK_AFTER", "1s")
        .env("SHIPPER_MEMORY_BUDGET", "1MiB")
        .env("SHIPPER_BATCH_MAX_BYTES", "256KiB");
    let log = setup.logs().join("payment.log");
    write_lines(&log, "payment", 0, 10);
    let shipper = setup.start();
    wait_until("before the outage", WAIT, || es.count("logs-*") >= 10);
    es.stop_listening();

    // Ordinary lines take about half the budget; the long line after them passes the
    // headroom check but must wait, in the encode stage, for budget that only
    // acknowledgements give back.
    write_lines(&log, "payment", 10, 1000);
    let long = "x".repeat(900 * 1024);
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for n in 0..3 {
        writeln!(
            file,
            r#"{{"service.name":"payment","message":"long line {n} {long}"}}"#
        )
        .unwrap();
    }
    drop(file);
    wait_until("reading to pause", WAIT, || {
        shipper.metric("shipper_reading_paused") == Some(1.0)
    });
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(6) {
        let (status, body) = shipper.get("/health").expect("/health answers");
        assert_eq!(
            status, 200,
            "a reader waiting for Elasticsearch is alive: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    es.resume_listening().expect("resume");
    wait_until("every line after the outage", WAIT, || {
        es.count("logs-*") >= 1013
    });
    let (per_message, distinct_ids) = census(&es, "logs-*");
    assert_eq!(distinct_ids, 1013, "one document per line");
    assert_eq!(per_message.len(), 1013, "every line once");
}
