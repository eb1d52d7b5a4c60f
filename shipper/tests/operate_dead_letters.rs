//! `shipper dead-letters` with the real binary: refused documents are listed and shown,
//! replayed once the cause is gone with their original ids (stored once), marked, and a
//! second replay sends nothing; a corrupt file is named, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod operate_support;
mod support;

use std::time::Duration;

use operate_support::run;
use support::{assert_exactly_once, es, wait_until, write_lines, Setup};

const STREAM: &str = "logs-payment-default";
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn refused_documents_are_listed_replayed_once_and_marked() {
    let server = es();
    let setup = Setup::new(&server.url());
    let log = setup.logs().join("payment.log");
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 10);
    wait_until("warm up", WAIT, || server.count(STREAM) >= 10);
    // Elasticsearch refuses the next three documents for good (a mapping conflict).
    server.faults().fail_next_items(3, 400);
    write_lines(&log, "payment", 10, 90);
    wait_until("the rest", WAIT, || server.count(STREAM) >= 97);
    wait_until("three dead letters", WAIT, || {
        shipper
            .metric("shipper_documents_dead_lettered_total")
            .unwrap_or(0.0)
            >= 3.0
    });
    assert_eq!(server.count(STREAM), 97);
    let dl = |args: &[&str]| run(&setup.es_url, &setup.logs(), &setup.data(), &[], args);

    let list = dl(&["dead-letters", "list"]);
    assert_eq!(list.code, Some(0), "{}", list.all());
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(STREAM))
        .unwrap_or_else(|| panic!("no row for {STREAM}:\n{}", list.stdout));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "400", "{row}");
    assert_eq!(cols[3], "3", "three records: {row}");
    assert_eq!(cols[4], "0", "none replayed: {row}");
    assert!(
        list.stdout.contains("3 record(s) in 1 file(s), 0 replayed"),
        "{}",
        list.stdout
    );

    let filtered = dl(&["dead-letters", "list", "--status", "413"]);
    assert!(
        filtered.stdout.contains("0 record(s)"),
        "{}",
        filtered.stdout
    );

    let show = dl(&["dead-letters", "show", "--index", "logs-payment-*"]);
    assert_eq!(show.code, Some(0), "{}", show.all());
    let shown: Vec<serde_json::Value> = show
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record per line"))
        .collect();
    assert_eq!(shown.len(), 3);
    assert!(shown
        .iter()
        .all(|r| r["replayed"] == false && r["status"] == 400));
    let mut ids: Vec<String> = shown
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();

    // Delivered to the dead-letter file is not missing: verify tells them apart.
    wait_until("verify sees the dead letters", WAIT, || {
        let v = dl(&["verify"]);
        v.code == Some(0) && v.stdout.contains("none missing; 3 in the dead-letter file")
    });

    // The cause is fixed: the replay stores them, under the ids they were first sent with.
    let replay = dl(&["dead-letters", "replay"]);
    assert_eq!(replay.code, Some(0), "{}", replay.all());
    assert!(
        replay
            .stdout
            .contains("replayed 3 record(s): 3 stored, 0 already there, 0 refused again"),
        "{}",
        replay.stdout
    );
    assert_exactly_once(&server, STREAM, 100);
    let mut stored: Vec<String> = server
        .documents(STREAM)
        .into_iter()
        .map(|d| d.id)
        .filter(|id| ids.contains(id))
        .collect();
    stored.sort();
    assert_eq!(stored, ids);

    let verified = dl(&["verify"]);
    assert_eq!(verified.code, Some(0), "{}", verified.all());
    assert!(
        !verified.stdout.contains("dead-letter file"),
        "{}",
        verified.stdout
    );

    let again = dl(&["dead-letters", "replay"]);
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert!(
        again.stdout.contains("nothing to replay"),
        "{}",
        again.stdout
    );
    assert_exactly_once(&server, STREAM, 100);

    // Marked, not lost: hidden by default, shown with --all.
    let list = dl(&["dead-letters", "list"]);
    assert!(
        list.stdout.contains("0 record(s) in 1 file(s)"),
        "{}",
        list.stdout
    );
    let list = dl(&["dead-letters", "list", "--all"]);
    assert!(
        list.stdout.contains("3 record(s) in 1 file(s), 3 replayed"),
        "{}",
        list.stdout
    );
    let show = dl(&["dead-letters", "show", "--all"]);
    assert_eq!(show.stdout.lines().count(), 3);
    assert!(show.stdout.contains("\"replayed\":true"), "{}", show.stdout);
}

#[test]
fn a_corrupt_file_is_named_and_the_rest_still_read() {
    let setup = Setup::new("http://127.0.0.1:9");
    let dir = setup.data().join("dead-letters");
    std::fs::create_dir_all(&dir).unwrap();
    let good = r#"{"@timestamp":"2026-12-02T10:00:00.000Z","index":"logs-payment-default","id":"00000000000000aa0","status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse"},"document":{"message":"m"}}"#;
    std::fs::write(
        dir.join("dead-letters-000001.ndjson"),
        format!("{good}\n\u{1}garbage\n{{\"torn\":"),
    )
    .unwrap();
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[],
        &["dead-letters", "list"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(
        ran.stderr.contains("dead-letters-000001.ndjson line 2"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("line 3"), "{}", ran.stderr);
    assert!(
        ran.stdout.contains("1 record(s) in 1 file(s)"),
        "{}",
        ran.stdout
    );
    // Elasticsearch unreachable: a replay says so and exits 3.
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[],
        &["dead-letters", "replay"],
    );
    assert_eq!(ran.code, Some(3), "{}", ran.all());
    assert!(ran.stderr.contains("cannot connect"), "{}", ran.stderr);

    let missing = Setup::new("http://127.0.0.1:9");
    let ran = run(
        &missing.es_url,
        &missing.logs(),
        &missing.data(),
        &[],
        &["dead-letters", "list"],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.all());
    assert!(ran.stderr.contains("does not exist"), "{}", ran.stderr);
    let ran = run(
        &missing.es_url,
        &missing.logs(),
        &missing.data(),
        &[],
        &["dead-letters"],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.all());
}
