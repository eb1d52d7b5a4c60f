//! Every line on disk is shipped, compressed or not: real logrotate with `compress` +
//! `delaycompress` while the shipper is down and while reading is paused, a `.gz` of a file
//! never seen, a damaged `.gz`, and files whose only line never got its newline. Each time,
//! the stored documents' messages are compared with the lines written: every line exactly
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(90);
const LOGROTATE: &str = "/usr/sbin/logrotate";

/// A logrotate configuration for `log` as Debian ships most services': `compress` +
/// `delaycompress`, so `x.log.1` stays plain and becomes `x.log.2.gz` at the next rotation.
struct Logrotate {
    conf: PathBuf,
    state: PathBuf,
}

impl Logrotate {
    fn new(setup: &Setup, log: &Path) -> Logrotate {
        let conf = setup.dir.path().join("logrotate.conf");
        let state = setup.dir.path().join("logrotate.state");
        fs::write(
            &conf,
            format!(
                "{} {{\n    rotate 100\n    compress\n    delaycompress\n    missingok\n    notifempty\n}}\n",
                log.display()
            ),
        )
        .expect("logrotate config");
        Logrotate { conf, state }
    }

    /// One forced rotation, as the daily run does it.
    fn rotate(&self) {
        let out = Command::new(LOGROTATE)
            .arg("-f")
            .arg("-s")
            .arg(&self.state)
            .arg(&self.conf)
            .output()
            .expect("run logrotate (apt-get install logrotate)");
        assert!(
            out.status.success(),
            "logrotate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn compressed_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "gz"))
        .collect();
    v.sort();
    v
}

fn gzip(content: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(content).unwrap();
    e.finish().unwrap()
}

/// The lines `write_lines` would append, as bytes.
fn lines(service: &str, from: usize, count: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    write_lines(&path, service, from, count);
    fs::read(path).unwrap()
}

/// Lines in files that are only ever compressed when the shipper looks: the test fails
/// without reading them.
fn lines_only_in_compressed_files(dir: &Path, n: usize) -> usize {
    let mut plain = std::collections::HashSet::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "gz") {
            continue;
        }
        let text = fs::read_to_string(e.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some(at) = line.find("line-") {
                plain.insert(line[at..at + 13].to_string());
            }
        }
    }
    (0..n)
        .filter(|i| !plain.contains(&format!("line-{i:08}")))
        .count()
}

#[test]
fn logrotate_compress_while_the_shipper_is_down_ships_every_line_once() {
    let es = es();
    let setup = Setup::new(&es.url());
    let log = setup.logs().join("payment.log");
    let logrotate = Logrotate::new(&setup, &log);
    let mut shipper = setup.start();
    let mut n = 0;
    for round in 0..4 {
        write_lines(&log, "payment", n, 3000);
        n += 3000;
        // Killed mid-stream: part of the file is read, the rest waits on disk.
        std::thread::sleep(Duration::from_millis(100 + 80 * round as u64));
        shipper.kill9();
        // Three rotations while down: what was read in part is compressed, and what is
        // written in between is rotated and compressed before the shipper ever sees it.
        for _ in 0..3 {
            logrotate.rotate();
            write_lines(&log, "payment", n, 700);
            n += 700;
        }
        shipper = setup.start();
    }
    assert!(compressed_files(&setup.logs()).len() >= 10);
    let only_compressed = lines_only_in_compressed_files(&setup.logs(), n);
    assert!(
        only_compressed > 5000,
        "{only_compressed} lines exist only in .gz files"
    );
    wait_until("every line", WAIT, || es.count("logs-*") >= n);
    std::thread::sleep(Duration::from_millis(800));
    assert_exactly_once(&es, "logs-*", n);

    // Started again, the compressed files cost a first-line read each and send nothing.
    let status = shipper.terminate(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "clean stop");
    let items_before = es.bulk_stats().items;
    let shipper = setup.start();
    wait_until("the files to be looked at", WAIT, || {
        shipper
            .metric("shipper_compressed_files_total")
            .unwrap_or(0.0)
            >= compressed_files(&setup.logs()).len() as f64
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_exactly_once(&es, "logs-*", n);
    assert_eq!(
        es.bulk_stats().items,
        items_before,
        "nothing re-sent after a clean restart"
    );
}

#[test]
fn logrotate_compress_while_reading_is_paused_ships_every_line_once() {
    let es = es();
    let setup = Setup::new(&es.url())
        .env("SHIPPER_MEMORY_BUDGET", "1MiB")
        .env("SHIPPER_BATCH_MAX_BYTES", "256KiB");
    let log = setup.logs().join("payment.log");
    let logrotate = Logrotate::new(&setup, &log);
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 100);
    wait_until("before the outage", WAIT, || es.count("logs-*") >= 100);
    es.stop_listening();
    let mut n = 100;
    // Ten times the budget: reading pauses part way through.
    write_lines(&log, "payment", n, 60_000);
    n += 60_000;
    wait_until("reading to pause", WAIT, || {
        shipper.metric("shipper_reading_paused") == Some(1.0)
    });
    for _ in 0..4 {
        logrotate.rotate();
        write_lines(&log, "payment", n, 5000);
        n += 5000;
    }
    assert!(compressed_files(&setup.logs()).len() >= 3);
    assert!(lines_only_in_compressed_files(&setup.logs(), n) > 10_000);
    std::thread::sleep(Duration::from_secs(1));
    es.resume_listening().expect("resume");
    wait_until(
        "every line after the outage",
        Duration::from_secs(180),
        || es.count("logs-*") >= n,
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_exactly_once(&es, "logs-*", n);
}

#[test]
fn a_compressed_file_never_seen_is_shipped_whole_and_a_damaged_one_in_part() {
    let es = es();
    let setup = Setup::new(&es.url());
    fs::write(
        setup.logs().join("payment.log.4.gz"),
        gzip(&lines("payment", 0, 3000)),
    )
    .unwrap();
    // Cut in the middle, as by a full disk during compression.
    let whole = gzip(&lines("broken", 0, 20_000));
    let damaged = setup.logs().join("broken.log.2.gz");
    fs::write(&damaged, &whole[..whole.len() / 2]).unwrap();
    // Named .gz but not gzip: nothing decompresses, nothing is shipped.
    fs::write(setup.logs().join("notgzip.log.1.gz"), b"plain text\n").unwrap();
    // Other compression formats are excluded by default.
    fs::write(
        setup.logs().join("payment.log.5.xz"),
        b"\xfd7zXZ\x00garbage\n",
    )
    .unwrap();
    let mut shipper = setup.start();
    wait_until("the compressed file", WAIT, || {
        es.count("logs-payment-default") >= 3000
    });
    wait_until("the damaged file to be counted", WAIT, || {
        shipper
            .metric("shipper_compressed_files_corrupt_total")
            .unwrap_or(0.0)
            >= 2.0
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_exactly_once(&es, "logs-payment-default", 3000);
    let (per_message, _) = census(&es, "logs-broken-default");
    let got = per_message.len();
    assert!(
        got > 1000 && got < 20_000,
        "{got} lines of the damaged file"
    );
    // Every complete line before the damage, once (the last one may be cut, and flagged).
    for i in 0..got - 1 {
        assert_eq!(
            per_message.get(&format!("line-{i:08}")),
            Some(&1),
            "line {i} of the damaged file"
        );
    }
    assert_eq!(
        es.count("logs-*"),
        3000 + es.count("logs-broken-default"),
        "nothing from the file that is not gzip, nor from the .xz"
    );
    let log = shipper.own_log();
    assert!(
        log.contains("broken.log.2.gz") && log.contains("truncated or corrupt"),
        "the warning names the file:\n{log}"
    );

    // After a restart, nothing is sent again and the damaged file is not read again.
    shipper.kill9();
    let stored = es.count("logs-*");
    let shipper = setup.start();
    wait_until("a look at the files", WAIT, || {
        shipper
            .metric("shipper_compressed_files_total")
            .unwrap_or(0.0)
            >= 2.0
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(es.count("logs-*"), stored);
}

#[test]
fn a_lone_unterminated_line_renamed_away_or_deleted_is_shipped_once() {
    let es = es();
    let setup = Setup::new(&es.url());
    let shipper = setup.start();
    // An unterminated line may not be whole, so it is shipped as text, not parsed.
    let line = |msg: &str| msg.to_string();
    let renamed = setup.logs().join("renamed.log");
    let deleted = setup.logs().join("deleted.log");
    fs::write(&renamed, line("renamed-away")).unwrap();
    fs::write(&deleted, line("deleted")).unwrap();
    // Seen, held while a newline may still come.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        es.count("logs-*"),
        0,
        "a partial line waits for its newline"
    );
    fs::rename(&renamed, setup.dir.path().join("renamed-away.txt")).unwrap();
    fs::remove_file(&deleted).unwrap();
    wait_until("both lines", WAIT, || es.count("logs-*") >= 2);
    std::thread::sleep(Duration::from_millis(1500));
    let docs = es.documents("logs-*");
    let mut messages: Vec<&str> = docs
        .iter()
        .map(|d| d.source["message"].as_str().unwrap_or(""))
        .collect();
    messages.sort();
    assert_eq!(messages, vec!["deleted", "renamed-away"], "each once");
    for d in &docs {
        let tags = d.source["tags"].to_string();
        assert!(tags.contains("_unterminated"), "flagged: {tags}");
    }
    drop(shipper);
}
