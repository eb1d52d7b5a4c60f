//! End-to-end delivery: a real shipper process reads real files into the
//! Elasticsearch-compatible test server, through rotations, crashes and outages, and every
//! line is indexed exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::fs;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn every_line_is_shipped_exactly_once_into_its_data_stream() {
    let es = es();
    let setup = Setup::new(&es.url());
    write_lines(&setup.logs().join("payment.log"), "payment", 0, 3000);
    write_lines(
        &setup.logs().join("loan-resource.log"),
        "loan-resource",
        3000,
        2000,
    );
    let shipper = setup.start();
    wait_until("5000 documents", WAIT, || es.count("logs-*") >= 5000);
    assert_exactly_once(&es, "logs-*", 5000);
    assert_eq!(es.count("logs-payment-default"), 3000);
    assert_eq!(es.count("logs-loan_resource-default"), 2000);

    let doc = &es.documents("logs-payment-default")[0];
    assert_eq!(doc.source["host.name"], "test-host");
    assert_eq!(doc.source["data_stream.dataset"], "payment");
    assert_eq!(doc.source["event.dataset"], "payment");
    assert_eq!(doc.source["agent.type"], "didban-shipper");
    assert!(doc.source["log.file.path"]
        .as_str()
        .unwrap_or("")
        .ends_with("payment.log"));
    assert!(doc.source["log.offset"].is_u64());
    assert!(doc.source["event.ingested"].is_string());
    assert_eq!(
        doc.source["log.category"], "ApplicationInfo",
        "the line's own fields are kept"
    );

    // The templates were installed before the first document.
    let requests = es.requests();
    let first_bulk = requests
        .iter()
        .position(|r| r.path.ends_with("_bulk"))
        .expect("a bulk request");
    let template = requests
        .iter()
        .position(|r| r.path.starts_with("/_index_template/"))
        .expect("an index template request");
    assert!(
        template < first_bulk,
        "index template installed before the first _bulk"
    );

    wait_until("metrics to count them", WAIT, || {
        shipper
            .metric("shipper_documents_indexed_total")
            .unwrap_or(0.0)
            >= 5000.0
    });
    assert_eq!(shipper.get("/ready").map(|r| r.0), Some(200));
    assert_eq!(shipper.get("/health").map(|r| r.0), Some(200));
}

#[test]
fn rename_rotation_and_copytruncate_under_write_load_lose_and_duplicate_nothing() {
    let es = es();
    let setup = Setup::new(&es.url());
    let _shipper = setup.start();
    let log = setup.logs().join("payment.log");
    let mut n = 0;
    for round in 0..12 {
        for _ in 0..10 {
            write_lines(&log, "payment", n, 100);
            n += 100;
            std::thread::sleep(Duration::from_millis(5));
        }
        let rotated = setup.logs().join(format!("payment.log.{round}"));
        if round % 2 == 0 {
            fs::rename(&log, &rotated).expect("rename rotation");
        } else {
            fs::copy(&log, &rotated).expect("copy");
            fs::OpenOptions::new()
                .write(true)
                .open(&log)
                .and_then(|f| f.set_len(0))
                .expect("truncate");
        }
    }
    write_lines(&log, "payment", n, 500);
    n += 500;
    wait_until("all lines", WAIT, || es.count("logs-*") >= n);
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&es, "logs-*", n);
}

/// copytruncate's worst interleaving: the copy is made, the writer goes on and the shipper
/// reads those lines from the original, and only then is the original truncated and the copy
/// seen. The copy ends before the read position; it must continue the identity, not be
/// shipped again as a new file.
#[test]
fn a_copy_that_ends_before_the_read_position_is_not_shipped_again() {
    let es = es();
    let setup = Setup::new(&es.url());
    let _shipper = setup.start();
    let log = setup.logs().join("payment.log");
    let mut n = 0;
    for round in 0..3 {
        write_lines(&log, "payment", n, 200);
        n += 200;
        wait_until("read before the copy", WAIT, || es.count("logs-*") >= n);
        // The copy, out of the globs while it is made (as if no scan came by).
        let copying = setup.logs().with_file_name(format!("copying-{round}"));
        fs::copy(&log, &copying).expect("copy");
        write_lines(&log, "payment", n, 3);
        n += 3;
        wait_until("read after the copy", WAIT, || es.count("logs-*") >= n);
        fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
        fs::rename(&copying, setup.logs().join(format!("payment.log.{round}")))
            .expect("copy in place");
        std::thread::sleep(Duration::from_millis(400));
    }
    write_lines(&log, "payment", n, 50);
    n += 50;
    wait_until("all lines", WAIT, || es.count("logs-*") >= n);
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&es, "logs-*", n);
}

#[test]
fn a_deleted_and_recreated_file_is_read_again_from_its_start() {
    let es = es();
    let setup = Setup::new(&es.url());
    let _shipper = setup.start();
    let log = setup.logs().join("reservation.log");
    write_lines(&log, "reservation", 0, 300);
    wait_until("first file", WAIT, || es.count("logs-*") >= 300);
    fs::remove_file(&log).expect("delete");
    std::thread::sleep(Duration::from_millis(400));
    write_lines(&log, "reservation", 300, 200);
    wait_until("recreated file", WAIT, || es.count("logs-*") >= 500);
    std::thread::sleep(Duration::from_millis(300));
    assert_exactly_once(&es, "logs-*", 500);
}

#[test]
fn kill_9_mid_stream_again_and_again_indexes_every_line_once() {
    let es = es();
    let setup = Setup::new(&es.url());
    let log = setup.logs().join("payment.log");
    let mut shipper = setup.start();
    let mut n = 0;
    for round in 0..6 {
        write_lines(&log, "payment", n, 2500);
        n += 2500;
        std::thread::sleep(Duration::from_millis(150 + 70 * round as u64));
        shipper.kill9();
        if round == 3 {
            fs::rename(&log, setup.logs().join("payment.log.1")).expect("rotate while down");
        }
        shipper = setup.start();
    }
    wait_until("every line", WAIT, || es.count("logs-*") >= n);
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&es, "logs-*", n);
    let conflicts = es.bulk_stats().conflicts;
    eprintln!("{conflicts} re-sent documents were answered 409 and counted as delivered");
}

#[test]
fn an_elasticsearch_outage_loses_nothing() {
    let es = es();
    let setup = Setup::new(&es.url());
    let log = setup.logs().join("payment.log");
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 500);
    wait_until("before the outage", WAIT, || es.count("logs-*") >= 500);
    es.stop_listening();
    write_lines(&log, "payment", 500, 3000);
    wait_until("the shipper to notice", WAIT, || {
        shipper.metric("shipper_elasticsearch_up") == Some(0.0)
            || shipper
                .metric("shipper_bulk_request_retries_total")
                .unwrap_or(0.0)
                > 0.0
    });
    es.resume_listening().expect("resume");
    wait_until("after the outage", WAIT, || es.count("logs-*") >= 3500);
    std::thread::sleep(Duration::from_millis(300));
    assert_exactly_once(&es, "logs-*", 3500);
}

#[test]
fn items_answered_429_are_retried_until_stored() {
    let es = es();
    es.faults().fail_next_items(300, 429);
    let setup = Setup::new(&es.url());
    let shipper = setup.start();
    write_lines(&setup.logs().join("payment.log"), "payment", 0, 1000);
    wait_until("all lines", WAIT, || es.count("logs-*") >= 1000);
    assert_exactly_once(&es, "logs-*", 1000);
    assert!(
        es.bulk_stats()
            .items_by_status
            .get(&429)
            .copied()
            .unwrap_or(0)
            >= 300
    );
    wait_until("retries in the metrics", WAIT, || {
        shipper.metric("shipper_item_retries_total").unwrap_or(0.0) >= 300.0
    });
}

#[test]
fn a_rejected_document_goes_to_the_dead_letter_file_while_the_rest_flows() {
    let es = es();
    let setup = Setup::new(&es.url());
    let log = setup.logs().join("payment.log");
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 10);
    wait_until("warm up", WAIT, || es.count("logs-*") >= 10);
    es.faults().fail_next_items(1, 400);
    write_lines(&log, "payment", 10, 500);
    wait_until("the rest", WAIT, || es.count("logs-*") >= 509);
    wait_until("the dead letter", WAIT, || {
        shipper
            .metric("shipper_documents_dead_lettered_total")
            .unwrap_or(0.0)
            >= 1.0
    });
    let dlq_dir = setup.data().join("dead-letters");
    let letters: String = fs::read_dir(&dlq_dir)
        .expect("dead-letter dir")
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .collect();
    let letter: serde_json::Value =
        serde_json::from_str(letters.lines().next().expect("one dead letter"))
            .expect("dead letter is JSON");
    let text = letter.to_string();
    assert!(text.contains("line-000000"), "the document is kept: {text}");
    assert!(text.contains("400"), "the status is kept: {text}");
    // The checkpoint moved past it: after a restart nothing is re-sent as new.
    assert_eq!(es.count("logs-*"), 509);
}

#[test]
fn a_413_splits_the_batch_until_it_fits() {
    let es = es();
    es.faults().set_max_content_length(Some(40 * 1024));
    let setup = Setup::new(&es.url()).env("SHIPPER_BATCH_MAX_BYTES", "1MiB");
    let _shipper = setup.start();
    write_lines(&setup.logs().join("payment.log"), "payment", 0, 3000);
    wait_until("all lines", WAIT, || es.count("logs-*") >= 3000);
    assert_exactly_once(&es, "logs-*", 3000);
    assert!(es.bulk_stats().rejected_requests > 0 || es.requests().iter().any(|r| r.status == 413));
}

#[test]
fn sigterm_saves_the_checkpoints_and_exits_zero() {
    let es = es();
    let setup = Setup::new(&es.url());
    let log = setup.logs().join("payment.log");
    let mut shipper = setup.start();
    write_lines(&log, "payment", 0, 1000);
    wait_until("all lines", WAIT, || es.count("logs-*") >= 1000);
    let status = shipper
        .terminate(Duration::from_secs(20))
        .expect("exits after SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        shipper.own_log()
    );
    let before = es.bulk_stats();
    let again = setup.start();
    write_lines(&log, "payment", 1000, 10);
    wait_until("new lines", WAIT, || es.count("logs-*") >= 1010);
    std::thread::sleep(Duration::from_millis(500));
    let after = es.bulk_stats();
    assert_eq!(
        after.conflicts, before.conflicts,
        "nothing re-sent after a clean stop"
    );
    assert_exactly_once(&es, "logs-*", 1010);
    drop(again);
}

#[test]
fn a_file_closed_for_inactivity_is_opened_again_when_it_grows_and_nothing_is_sent_twice() {
    let es = es();
    let setup = Setup::new(&es.url()).env("SHIPPER_CLOSE_INACTIVE", "500ms");
    let a = setup.logs().join("payment.log");
    let b = setup.logs().join("reservation.log");
    write_lines(&a, "payment", 0, 100);
    write_lines(&b, "reservation", 100, 100);
    let shipper = setup.start();
    wait_until("the first lines", WAIT, || es.count("logs-*") >= 200);
    wait_until("both idle files closed", WAIT, || {
        shipper.metric("shipper_files_closed_inactive") == Some(2.0)
            && shipper.metric("shipper_files_open") == Some(0.0)
    });
    // Written to while closed: found again by its identity, read on from where it stopped.
    write_lines(&a, "payment", 200, 100);
    wait_until("the lines written while closed", WAIT, || {
        es.count("logs-*") >= 300
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&es, "logs-*", 300);
}

#[test]
fn a_file_empty_at_start_is_read_as_soon_as_its_first_line_arrives() {
    let es = es();
    // With the periodic rescan out of the way, only the reaction to writes can find the line.
    let setup = Setup::new(&es.url()).env("SHIPPER_SCAN_INTERVAL", "1h");
    let log = setup.logs().join("payment.log");
    fs::write(&log, b"").expect("an empty file");
    let shipper = setup.start();
    wait_until("ready", WAIT, || {
        shipper.get("/ready").is_some_and(|r| r.0 == 200)
    });
    std::thread::sleep(Duration::from_millis(300));
    write_lines(&log, "payment", 0, 100);
    wait_until("the lines of the once-empty file", WAIT, || {
        es.count("logs-*") >= 100
    });
    assert_exactly_once(&es, "logs-*", 100);
}

/// Peak resident memory of a process, in MiB (VmHWM).
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[test]
fn during_an_outage_reading_pauses_and_memory_stays_within_the_budget() {
    let es = es();
    let setup = Setup::new(&es.url())
        .env("SHIPPER_MEMORY_BUDGET", "4MiB")
        .env("SHIPPER_BATCH_MAX_BYTES", "1MiB");
    let log = setup.logs().join("payment.log");
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 100);
    wait_until("before the outage", WAIT, || es.count("logs-*") >= 100);
    es.stop_listening();
    // About 60 MiB of lines: fifteen times the budget.
    let total = 400_000;
    for chunk in 0..40 {
        write_lines(&log, "payment", 100 + chunk * 10_000, 10_000);
    }
    wait_until("reading to pause", WAIT, || {
        shipper.metric("shipper_reading_paused") == Some(1.0)
    });
    std::thread::sleep(Duration::from_secs(2));
    let used = shipper
        .metric("shipper_read_budget_used_bytes")
        .unwrap_or(f64::MAX);
    assert!(used <= 4.0 * 1024.0 * 1024.0, "budget in use: {used}");
    let read = shipper.metric("shipper_bytes_read_total").unwrap_or(0.0);
    let written = fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as f64;
    assert!(
        read < written / 4.0,
        "the files are the buffer: {read} of {written} bytes read"
    );
    let rss = peak_rss_mib(shipper.child.id());
    eprintln!("during the outage: {used} budget bytes in use, {read} of {written} bytes read, peak RSS {rss:.1} MiB");
    assert!(rss < 64.0, "peak RSS {rss:.1} MiB during the outage");

    es.resume_listening().expect("resume");
    wait_until(
        "every line after the outage",
        Duration::from_secs(120),
        || es.count("logs-*") >= total + 100,
    );
    assert_exactly_once(&es, "logs-*", total + 100);
}

#[test]
fn during_an_outage_one_write_per_line_leaves_no_backlog_of_wake_ups() {
    let es = es();
    let setup = Setup::new(&es.url())
        .env("SHIPPER_MEMORY_BUDGET", "1MiB")
        .env("SHIPPER_BATCH_MAX_BYTES", "256KiB");
    let log = setup.logs().join("payment.log");
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 10);
    wait_until("before the outage", WAIT, || es.count("logs-*") >= 10);
    es.stop_listening();
    // One write(2) per line, as most applications log: each one is a filesystem event.
    let total = 30_000;
    for n in 0..total {
        write_lines(&log, "payment", 10 + n, 1);
        if n == 20_000 {
            wait_until("reading to pause", WAIT, || {
                shipper.metric("shipper_reading_paused") == Some(1.0)
            });
        }
    }
    let pending = shipper
        .metric("shipper_pending_wakeups")
        .unwrap_or(f64::MAX);
    // A read flag, a rescan flag and the one path written to: not one per write.
    assert!(
        pending <= 3.0,
        "wake-ups waiting while reading is paused: {pending}"
    );
    es.resume_listening().expect("resume");
    wait_until(
        "every line after the outage",
        Duration::from_secs(120),
        || es.count("logs-*") >= total + 10,
    );
    assert_exactly_once(&es, "logs-*", total + 10);
}

#[test]
fn shipper_top_shows_a_running_shipper() {
    let es = es();
    let setup = Setup::new(&es.url());
    let log = setup.logs().join("payment.log");
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 500);
    wait_until("the lines", WAIT, || es.count("logs-*") >= 500);
    wait_until("the metrics", WAIT, || {
        shipper
            .metric("shipper_documents_indexed_total")
            .unwrap_or(0.0)
            >= 500.0
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shipper"))
        .args(["top", "--once", "--interval", "200ms", "--addr"])
        .arg(format!("127.0.0.1:{}", shipper.metrics_port))
        .output()
        .expect("run shipper top");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{screen}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(screen.contains("elasticsearch: up"), "{screen}");
    let indexed = screen
        .lines()
        .find(|l| l.starts_with("documents indexed"))
        .unwrap_or_default();
    assert!(indexed.trim_end().ends_with("500"), "{screen}");
}

/// Finding and telling files apart costs no budget: while reading is paused by an outage,
/// a new file is still opened and identified, and everything is shipped once afterwards.
#[test]
fn files_are_found_and_identified_while_reading_is_paused() {
    let es = es();
    let setup = Setup::new(&es.url())
        .env("SHIPPER_MEMORY_BUDGET", "256KiB")
        .env("SHIPPER_BATCH_MAX_BYTES", "64KiB");
    let shipper = setup.start();
    let a = setup.logs().join("payment.log");
    write_lines(&a, "payment", 0, 10);
    wait_until("the first lines", WAIT, || es.count("logs-*") >= 10);
    es.stop_listening();
    write_lines(&a, "payment", 10, 20_000);
    wait_until("reading to pause", WAIT, || {
        shipper.metric("shipper_reading_paused") == Some(1.0)
    });
    let b = setup.logs().join("reservation.log");
    write_lines(&b, "reservation", 20_010, 100);
    wait_until("the new file opened while paused", WAIT, || {
        shipper.metric("shipper_files_open") == Some(2.0)
    });
    assert_eq!(shipper.metric("shipper_reading_paused"), Some(1.0));
    es.resume_listening().expect("listen again");
    let n = 20_110;
    wait_until("every line", WAIT, || es.count("logs-*") >= n);
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&es, "logs-*", n);
}

/// Ten thousand files: every one found, read once, closed when idle and opened again by its
/// identity when it grows; the shipper's descriptors follow what is open, not what exists.
/// (Memory and idle CPU with many files are figures of `benches/many_files.rs`.)
#[test]
fn ten_thousand_files_are_each_read_once_closed_when_idle_and_found_again() {
    const FILES: usize = 10_000;
    let es = es();
    let setup = Setup::new(&es.url()).env("SHIPPER_CLOSE_INACTIVE", "2s");
    for f in 0..FILES {
        write_lines(
            &setup.logs().join(format!("svc-{f:05}.log")),
            "payment",
            f * 2,
            2,
        );
    }
    let shipper = setup.start();
    wait_until("every line of every file", Duration::from_secs(180), || {
        es.count("logs-*") >= 2 * FILES
    });
    wait_until("every idle file closed", Duration::from_secs(60), || {
        shipper.metric("shipper_files_open") == Some(0.0)
    });
    assert_eq!(
        shipper.metric("shipper_files_closed_inactive"),
        Some(FILES as f64)
    );
    // A few grow again: found by their identity, read on where they stopped.
    for f in (0..FILES).step_by(1000) {
        write_lines(
            &setup.logs().join(format!("svc-{f:05}.log")),
            "payment",
            2 * FILES + f / 1000,
            1,
        );
    }
    let n = 2 * FILES + FILES / 1000;
    wait_until("the lines written to closed files", WAIT, || {
        es.count("logs-*") >= n
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&es, "logs-*", n);
}

#[test]
fn a_files_series_leave_metrics_when_the_file_is_done_with() {
    let es = es();
    let setup = Setup::new(&es.url());
    let gone = setup.logs().join("reservation.log");
    write_lines(&gone, "reservation", 0, 10);
    write_lines(&setup.logs().join("payment.log"), "payment", 10, 10);
    let shipper = setup.start();
    let series = |path: &std::path::Path| {
        let (_, body) = shipper.get("/metrics").unwrap_or_default();
        let label = format!("shipper_file_bytes_behind{{path=\"{}\"}}", path.display());
        body.lines().any(|l| l.starts_with(&label))
    };
    wait_until("both files' series", WAIT, || {
        series(&gone) && series(&setup.logs().join("payment.log"))
    });
    assert_exactly_once(&es, "logs-*", 20);
    fs::remove_file(&gone).unwrap();
    wait_until("the deleted file's series to go", WAIT, || !series(&gone));
    assert!(series(&setup.logs().join("payment.log")));
}
