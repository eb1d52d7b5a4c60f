//! The replay window of the Elasticsearch output, against the test server: documents flagged
//! as possibly stored are looked up over every backing index (and the failure store) before
//! being sent, a failed look-up is retried and never skipped, and documents outside the
//! window cost no look-up at all.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod output_support;

use std::collections::HashSet;

use es_test_server::{EsTestServer, ServerConfig};
use output_support::*;
use shipper::batch::Batch;

async fn server() -> EsTestServer {
    EsTestServer::start(ServerConfig::default()).await.unwrap()
}

fn flagged(mut b: Batch) -> Batch {
    for item in &mut b.items {
        item.may_be_stored = true;
    }
    b
}

fn searches(es: &EsTestServer) -> Vec<(String, u16)> {
    es.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/_search"))
        .map(|r| (r.path, r.status))
        .collect()
}

fn stored_once(es: &EsTestServer, expr: &str, n: u64) {
    let docs = es.documents(expr);
    let ids: HashSet<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(docs.len() as u64, n, "documents stored");
    assert_eq!(ids.len() as u64, n, "each id once");
}

#[tokio::test]
async fn documents_stored_before_a_rollover_are_found_and_not_sent_again() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    out.batches.send(batch(STREAM, 0..60)).await.unwrap();
    out.acks
        .wait_for(60, std::time::Duration::from_secs(20))
        .await;
    es.rollover(STREAM).unwrap();
    es.reset_observations();

    // 0..60 are in the old backing index, 60..100 nowhere.
    out.batches
        .send(flagged(batch(STREAM, 0..100)))
        .await
        .unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    assert_eq!(acks.count(), 160);
    stored_once(&es, STREAM, 100);
    let bulk = es.bulk_stats();
    assert_eq!(bulk.created, 40, "only the documents not found were sent");
    assert_eq!(bulk.conflicts, 0);
    assert_eq!(
        stats.snapshot().duplicates,
        60,
        "found documents count as duplicates"
    );
    assert!(searches(&es).iter().all(|(_, s)| *s == 200));
}

#[tokio::test]
async fn a_failed_look_up_is_retried_and_nothing_is_sent_blind() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    out.batches.send(batch(STREAM, 0..30)).await.unwrap();
    out.acks
        .wait_for(30, std::time::Duration::from_secs(20))
        .await;
    es.rollover(STREAM).unwrap();
    es.reset_observations();

    es.faults().fail_next_requests_all(3, 503);
    out.batches
        .send(flagged(batch(STREAM, 0..50)))
        .await
        .unwrap();
    let acks = out.finish().await;

    assert_eq!(acks.count(), 80);
    stored_once(&es, STREAM, 50);
    let requests = es.requests();
    let first_ok_search = requests
        .iter()
        .position(|r| r.path.ends_with("/_search") && r.status == 200)
        .expect("a look-up that succeeded");
    let first_bulk = requests
        .iter()
        .position(|r| r.path.ends_with("_bulk"))
        .expect("the documents not found were sent");
    assert!(
        first_ok_search < first_bulk,
        "nothing was sent before the look-up succeeded: {requests:?}"
    );
    assert_eq!(
        requests.iter().filter(|r| r.status == 503).count(),
        3,
        "the three failed look-ups were retried"
    );
}

#[tokio::test]
async fn documents_outside_the_replay_window_cost_no_look_up() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    out.batches.send(batch(STREAM, 0..500)).await.unwrap();
    out.batches.send(batch(STREAM, 500..1000)).await.unwrap();
    let acks = out.finish().await;
    assert_eq!(acks.count(), 1000);
    assert!(searches(&es).is_empty(), "{:?}", searches(&es));
}

#[tokio::test]
async fn a_large_replay_window_is_looked_up_in_chunks() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    out.batches.send(batch(STREAM, 0..2500)).await.unwrap();
    out.acks
        .wait_for(2500, std::time::Duration::from_secs(20))
        .await;
    es.rollover(STREAM).unwrap();
    es.reset_observations();

    out.batches
        .send(flagged(batch(STREAM, 0..2500)))
        .await
        .unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;
    assert_eq!(acks.count(), 5000);
    stored_once(&es, STREAM, 2500);
    assert_eq!(es.bulk_stats().bulk_requests, 0, "everything was found");
    let data_searches = searches(&es)
        .into_iter()
        .filter(|(p, _)| !p.contains("::failures"))
        .count();
    assert!(data_searches >= 3, "{data_searches} searches for 2500 ids");
    assert_eq!(stats.snapshot().duplicates, 2500);
}

#[tokio::test]
async fn a_replayed_failure_store_document_is_found_by_its_original_id() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults().fail_mapping_next_items(5);
    out.batches.send(batch(STREAM, 0..20)).await.unwrap();
    out.acks
        .wait_for(20, std::time::Duration::from_secs(20))
        .await;
    let failures = format!("{STREAM}::failures");
    assert_eq!(es.count(&failures), 5);
    // The next failures would go to the failure store again: a replay must not send them.
    es.faults().fail_mapping_next_items(20);
    out.batches
        .send(flagged(batch(STREAM, 0..20)))
        .await
        .unwrap();
    let acks = out.finish().await;
    assert_eq!(acks.count(), 40);
    assert_eq!(es.count(&failures), 5, "no failure document stored twice");
    stored_once(&es, STREAM, 15);
    assert!(searches(&es).iter().any(|(p, _)| p.contains("::failures")));
}
