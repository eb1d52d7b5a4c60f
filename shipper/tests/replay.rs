//! End-to-end: documents that may already be stored are looked up before they are sent
//! again, so a replay that straddles a data stream rollover stores nothing twice.
//!
//! Elasticsearch answers a `create` of an existing `_id` with 409 only inside the current
//! write index; the test server does the same, so in each test below a shipper that re-sent
//! blindly would store the replayed lines a second time in the new backing index (or, for
//! failure-store documents, a second time in the failure store, rollover or not).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::collections::HashMap;
use std::time::Duration;

use es_test_server::{EsTestServer, FaultState, Scope};
use support::*;

const WAIT: Duration = Duration::from_secs(60);
const STREAM: &str = "logs-payment-default";

/// The next `_bulk` is executed and its answer lost; every request waits `delay_ms` before
/// it is executed, so whatever the shipper does next (look-up or re-send) reaches the
/// server only after the test has rolled the data stream over.
fn lose_the_next_answer(es: &EsTestServer, delay_ms: u64) {
    es.faults().set(FaultState {
        lose_responses: 1,
        lose_scope: Scope::Bulk,
        delay_ms: Some(delay_ms),
        delay_scope: Scope::All,
        ..FaultState::default()
    });
}

/// Documents the shipper has settled (created, already there, failure store).
fn settled(shipper: &Shipper) -> f64 {
    [
        "shipper_documents_indexed_total",
        "shipper_documents_duplicate_total",
        "shipper_documents_failure_store_total",
    ]
    .iter()
    .map(|m| shipper.metric(m).unwrap_or(0.0))
    .sum()
}

fn backing_indices(es: &EsTestServer) -> usize {
    let docs = es.documents(STREAM);
    let mut indices: Vec<&str> = docs.iter().map(|d| d.index.as_str()).collect();
    indices.sort_unstable();
    indices.dedup();
    indices.len()
}

#[test]
fn a_lost_answer_then_a_rollover_before_the_retry_stores_every_line_once() {
    let es = es();
    let setup = Setup::new(&es.url());
    let log = setup.logs().join("payment.log");
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 10);
    wait_until("warm up", WAIT, || es.count(STREAM) >= 10);

    lose_the_next_answer(&es, 2000);
    write_lines(&log, "payment", 10, 500);
    wait_until("the batch whose answer is lost to be stored", WAIT, || {
        es.count(STREAM) >= 510 && es.dropped_connections() >= 1
    });
    es.rollover(STREAM).expect("rollover");
    es.faults().clear();

    write_lines(&log, "payment", 510, 10);
    wait_until("every line settled", WAIT, || settled(&shipper) >= 520.0);
    std::thread::sleep(Duration::from_millis(300));
    assert_exactly_once(&es, STREAM, 520);
    assert!(
        backing_indices(&es) >= 2,
        "the lines after the rollover went to the new write index"
    );
    assert_eq!(
        shipper.metric("shipper_replay_already_stored_total"),
        Some(500.0),
        "the lines of the lost answer were found, not re-sent"
    );
    assert!(
        shipper
            .metric("shipper_replay_lookups_total")
            .unwrap_or(0.0)
            >= 1.0
    );
}

#[test]
fn kill_9_after_sending_before_checkpointing_then_a_rollover_stores_every_line_once() {
    let es = es();
    let setup = Setup::new(&es.url());
    let log = setup.logs().join("payment.log");
    let mut shipper = setup.start();
    write_lines(&log, "payment", 0, 10);
    wait_until("warm up", WAIT, || es.count(STREAM) >= 10);

    // Stored, never acknowledged: the shipper dies while its look-up still waits.
    lose_the_next_answer(&es, 3000);
    write_lines(&log, "payment", 10, 1000);
    wait_until("the lines to be stored", WAIT, || {
        es.count(STREAM) >= 1010 && es.dropped_connections() >= 1
    });
    // The checkpoint thread saves every second: by now it recorded how far reading went.
    std::thread::sleep(Duration::from_millis(1200));
    shipper.kill9();
    es.faults().clear();
    es.rollover(STREAM).expect("rollover");

    write_lines(&log, "payment", 1010, 10);
    let shipper = setup.start();
    wait_until("every line settled after the restart", WAIT, || {
        settled(&shipper) >= 1010.0
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_exactly_once(&es, STREAM, 1020);
    assert!(
        shipper
            .metric("shipper_replay_already_stored_total")
            .unwrap_or(0.0)
            >= 1000.0,
        "the lines the first run sent were found, not re-sent"
    );
}

#[test]
fn lines_sent_after_the_last_checkpoint_are_looked_up_after_a_kill_9_and_a_rollover() {
    sent_while_checkpoints_fail_then_kill_9_and_rollover(false);
}

#[test]
fn a_file_first_read_after_the_last_checkpoint_is_looked_up_after_a_kill_9_and_a_rollover() {
    sent_while_checkpoints_fail_then_kill_9_and_rollover(true);
}

/// 10,000 lines are stored while no checkpoint can be saved, their answer lost, then the
/// shipper is killed and the data stream rolled over: after the restart every line must be
/// stored once. `new_file`: the lines are in a file the last checkpoint does not know at all
/// (first read after it), not in one it knows 10 lines of.
fn sent_while_checkpoints_fail_then_kill_9_and_rollover(new_file: bool) {
    let es = es();
    let setup = Setup::new(&es.url());
    let log = setup.logs().join("payment.log");
    let warm_up = if new_file {
        setup.logs().join("reservation.log")
    } else {
        log.clone()
    };
    let mut shipper = setup.start();
    let warm_up_service = if new_file { "reservation" } else { "payment" };
    write_lines(&warm_up, warm_up_service, 0, 10);
    wait_until("warm up", WAIT, || es.count("logs-*") >= 10);
    std::thread::sleep(Duration::from_millis(1200));

    // From now on no checkpoint can be saved (a directory where the checkpoint's temporary
    // file goes): the last one says 10 lines were read, whatever is sent after it.
    let temp = setup.data().join("checkpoints/checkpoints.json.tmp");
    std::fs::create_dir(&temp).unwrap();
    // More than the checkpoint's own reservation (1 MiB past the last line it saw read).
    lose_the_next_answer(&es, 0);
    let first = if new_file { 0 } else { 10 };
    write_lines(&log, "payment", first, 10_000);
    let total = first + 10_000;
    wait_until("the lines to be stored", WAIT, || {
        es.count(STREAM) >= total && es.dropped_connections() >= 1
    });
    // A save was tried since, and failed: the checkpoint on disk predates the 10,000 lines.
    wait_until("a failed checkpoint save", WAIT, || {
        shipper.own_log().contains("cannot save checkpoints")
    });
    shipper.kill9();
    std::fs::remove_dir(&temp).unwrap();
    es.faults().clear();
    es.rollover(STREAM).expect("rollover");

    write_lines(&log, "payment", total, 10);
    let shipper = setup.start();
    wait_until("every line settled after the restart", WAIT, || {
        settled(&shipper) >= total as f64
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_exactly_once(&es, STREAM, total + 10);
}

#[test]
fn replayed_failure_store_documents_are_not_stored_twice() {
    let es = es();
    // Every line fails its mapping (a string where an object is mapped, which
    // `ignore_malformed` does not cover) and is kept in the failure store, which never answers
    // 409: each failure document has an `_id` of its own.
    es.faults().force_field_type("message", "object");
    let setup = Setup::new(&es.url());
    let log = setup.logs().join("payment.log");
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 10);
    let failures = format!("{STREAM}::failures");
    wait_until("warm up", WAIT, || es.count(&failures) >= 10);

    let mut state = es.faults().snapshot();
    state.lose_responses = 1;
    state.delay_ms = Some(1000);
    state.delay_scope = Scope::All;
    es.faults().set(state);
    write_lines(&log, "payment", 10, 300);
    wait_until("the batch whose answer is lost to be stored", WAIT, || {
        es.count(&failures) >= 310 && es.dropped_connections() >= 1
    });
    es.faults().set_delay(None);

    write_lines(&log, "payment", 310, 10);
    wait_until("every line settled", WAIT, || settled(&shipper) >= 320.0);
    std::thread::sleep(Duration::from_millis(300));
    // Every line once, counting the data stream and its failure store together.
    let mut per_message: HashMap<String, usize> = HashMap::new();
    for d in es.documents(STREAM) {
        *per_message
            .entry(d.source["message"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    for d in es.documents(&failures) {
        let msg = d.source["document"]["source"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        *per_message.entry(msg).or_default() += 1;
    }
    let twice = per_message.values().filter(|n| **n > 1).count();
    assert_eq!(twice, 0, "lines stored twice: {twice}");
    assert_eq!(per_message.len(), 320, "every line is stored");
    assert_eq!(es.count(&failures), 320);
    assert_eq!(
        shipper.metric("shipper_replay_already_stored_total"),
        Some(300.0)
    );
}
