//! The Elasticsearch output against an Elasticsearch-compatible test server: every document
//! ends up stored once (or dead-lettered with its reason), and is acknowledged exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod output_support;

use std::collections::HashSet;
use std::time::Duration;

use es_test_server::{EsTestServer, ServerConfig};
use output_support::*;

const WAIT: Duration = Duration::from_secs(20);

async fn server() -> EsTestServer {
    EsTestServer::start(ServerConfig::default()).await.unwrap()
}

fn stored_ids(server: &EsTestServer, expr: &str) -> Vec<String> {
    let mut ids: Vec<String> = server.documents(expr).into_iter().map(|d| d.id).collect();
    ids.sort();
    ids
}

fn expected_ids(range: std::ops::Range<u64>) -> Vec<String> {
    let mut ids: Vec<String> = range.map(doc_id).collect();
    ids.sort();
    ids
}

fn assert_acked_once(acks: &Acks, range: std::ops::Range<u64>) {
    let seqs = acks.seqs();
    let unique: HashSet<u64> = seqs.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seqs.len(),
        "a document was acknowledged twice"
    );
    assert_eq!(seqs, range.collect::<Vec<u64>>());
}

#[tokio::test]
async fn every_document_is_created_and_acknowledged_once() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    out.batches.send(batch(STREAM, 0..100)).await.unwrap();
    out.batches.send(batch(STREAM, 100..250)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    assert_acked_once(&acks, 0..250);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..250));
    let s = stats.snapshot();
    assert_eq!(s.documents_indexed, 250);
    assert_eq!(s.duplicates, 0);
    assert!(s.last_success_unix > 0);
    assert!(s.elasticsearch_up);
}

#[tokio::test]
async fn a_resent_batch_is_answered_409_and_counts_as_delivered() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    out.batches.send(batch(STREAM, 0..50)).await.unwrap();
    out.acks.wait_for(50, WAIT).await;
    // The same documents again, as after a crash before the checkpoint was written.
    out.batches.send(batch(STREAM, 0..50)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    assert_eq!(acks.count(), 100);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..50));
    assert_eq!(es.bulk_stats().conflicts, 50);
    let s = stats.snapshot();
    assert_eq!(s.documents_indexed, 50);
    assert_eq!(s.duplicates, 50);
}

#[tokio::test]
async fn items_rejected_with_429_are_retried_until_stored() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults().fail_next_items(30, 429);
    out.batches.send(batch(STREAM, 0..20)).await.unwrap();
    out.batches.send(batch(STREAM, 20..40)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    assert_acked_once(&acks, 0..40);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..40));
    assert_eq!(es.bulk_stats().items_by_status.get(&429), Some(&30));
    assert_eq!(stats.snapshot().item_retries, 30);
    assert!(dead_letters(dir.path()).is_empty());
}

#[tokio::test]
async fn items_failing_with_503_are_retried_until_stored() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults().fail_next_items(5, 503);
    out.batches.send(batch(STREAM, 0..10)).await.unwrap();
    let acks = out.finish().await;

    assert_acked_once(&acks, 0..10);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..10));
}

#[tokio::test]
async fn a_mapping_error_is_dead_lettered_while_the_rest_is_stored() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    // A plain index has no failure store, so a mapping error is a 400 for the item.
    es.faults()
        .force_field_type("http.response.status_code", "long");
    let out = start(config(&es.url(), dir.path())).await;
    let mut docs: Vec<(String, String, String)> = (0..10)
        .map(|n| ("didban-plain".to_string(), doc_id(n), source(n)))
        .collect();
    docs[4].2 = r#"{"@timestamp":"2025-11-03T10:00:00.000Z","message":"bad","http":{"response":{"status_code":"abc"}}}"#.to_string();
    out.batches.send(batch_of(&docs)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    // Dead-lettered documents are acknowledged too: nothing blocks behind them.
    assert_acked_once(&acks, 0..10);
    let mut stored = stored_ids(&es, "didban-plain");
    stored.sort();
    let mut expected: Vec<String> = (0..10).filter(|n| *n != 4).map(doc_id).collect();
    expected.sort();
    assert_eq!(stored, expected);

    let letters = dead_letters(dir.path());
    assert_eq!(letters.len(), 1, "{letters:?}");
    let l = &letters[0];
    assert_eq!(l["id"], doc_id(4));
    assert_eq!(l["index"], "didban-plain");
    assert_eq!(l["status"], 400);
    assert!(
        l["error"]["type"]
            .as_str()
            .unwrap()
            .contains("parsing_exception"),
        "{l}"
    );
    assert!(!l["error"]["reason"].as_str().unwrap().is_empty());
    assert_eq!(l["document"]["http"]["response"]["status_code"], "abc");
    let s = stats.snapshot();
    assert_eq!(s.dead_letters, 1);
    assert_eq!(s.documents_indexed, 9);
}

#[tokio::test]
async fn a_failure_store_answer_counts_as_delivered() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults().fail_mapping_next_items(3);
    out.batches.send(batch(STREAM, 0..10)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    assert_acked_once(&acks, 0..10);
    assert_eq!(es.bulk_stats().failure_store_used, 3);
    let s = stats.snapshot();
    assert_eq!(s.failure_store, 3);
    assert_eq!(s.documents_indexed, 7);
    assert!(dead_letters(dir.path()).is_empty());
}

#[tokio::test]
async fn a_batch_above_the_size_limit_is_split_until_it_fits() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    let b = batch(STREAM, 0..64);
    // About a sixth of the batch: halves must be split again, down to about 10 documents.
    es.faults()
        .set_max_content_length(Some((b.body.len() / 6) as u64));
    out.batches.send(b).await.unwrap();
    let acks = out.finish().await;

    assert_acked_once(&acks, 0..64);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..64));
    let too_large = es.requests().iter().filter(|r| r.status == 413).count();
    assert!(too_large >= 3, "{too_large} requests answered 413");
    assert!(dead_letters(dir.path()).is_empty());
}

#[tokio::test]
async fn a_single_document_too_large_is_dead_lettered_not_dropped_or_looped() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    let mut docs: Vec<(String, String, String)> = (0..4)
        .map(|n| (STREAM.to_string(), doc_id(n), source(n)))
        .collect();
    let big = format!(
        r#"{{"@timestamp":"2025-11-03T10:00:00.000Z","message":"{}"}}"#,
        "x".repeat(4096)
    );
    docs[2].2 = big;
    es.faults().set_max_content_length(Some(2048));
    out.batches.send(batch_of(&docs)).await.unwrap();
    let acks = out.finish().await;

    assert_acked_once(&acks, 0..4);
    assert_eq!(stored_ids(&es, STREAM).len(), 3);
    let letters = dead_letters(dir.path());
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["id"], doc_id(2));
    assert_eq!(letters[0]["status"], 413);
    assert_eq!(
        letters[0]["document"]["message"].as_str().unwrap().len(),
        4096
    );
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&es.url(), dir.path());
    c.compression = true;
    let out = start(c).await;
    out.batches.send(batch(STREAM, 0..200)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    assert_acked_once(&acks, 0..200);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..200));
    let bulk: Vec<_> = es
        .requests()
        .into_iter()
        .filter(|r| r.path == "/_bulk")
        .collect();
    assert!(!bulk.is_empty());
    for r in &bulk {
        assert!(r.gzip, "{r:?}");
        assert!(r.body_bytes * 3 < r.decoded_bytes, "{r:?}");
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("application/x-ndjson")
        );
    }
    let sent: u64 = bulk.iter().map(|r| r.body_bytes).sum();
    assert_eq!(stats.snapshot().bytes_sent, sent);
}

#[tokio::test]
async fn whole_request_errors_are_retried_until_the_batch_is_stored() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults().fail_next_requests(3, 503);
    out.batches.send(batch(STREAM, 0..30)).await.unwrap();
    let acks = out.finish().await;
    assert_acked_once(&acks, 0..30);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..30));

    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults().fail_next_requests(2, 429);
    out.batches.send(batch(STREAM, 30..60)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;
    assert_acked_once(&acks, 30..60);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..60));
    assert_eq!(stats.snapshot().request_retries, 2);
}

#[tokio::test]
async fn dropped_connections_are_retried_and_duplicates_absorbed() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults().drop_next_requests(2);
    out.batches.send(batch(STREAM, 0..40)).await.unwrap();
    let acks = out.finish().await;

    assert_acked_once(&acks, 0..40);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..40));
    assert!(es.dropped_connections() >= 2);
}

#[tokio::test]
async fn shutdown_abandons_a_stuck_request_at_the_deadline_without_acknowledging_it() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&es.url(), dir.path());
    c.shutdown_deadline = Duration::from_millis(300);
    c.request_timeout = Duration::from_secs(60);
    let out = start(c).await;
    es.faults().set_delay(Some(Duration::from_secs(30)));
    out.batches.send(batch(STREAM, 0..10)).await.unwrap();
    // Let the request leave.
    tokio::time::sleep(Duration::from_millis(100)).await;
    out.shutdown.cancel();
    let started = tokio::time::Instant::now();
    let acks = out.finish().await;

    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(acks.count(), 0);
}

#[tokio::test]
async fn several_requests_are_in_flight_at_once() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&es.url(), dir.path());
    c.max_in_flight = 3;
    let out = start(c).await;
    // Each answer waits long enough for all three requests to be seen in flight together.
    es.faults().set_delay(Some(Duration::from_secs(2)));
    for i in 0..3u64 {
        out.batches
            .send(batch(STREAM, i * 10..i * 10 + 10))
            .await
            .unwrap();
    }
    let mut most = 0;
    for _ in 0..150 {
        most = most.max(out.stats.snapshot().in_flight);
        if most == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(most, 3);
    es.faults().set_delay(None);
    let acks = out.finish().await;
    assert_acked_once(&acks, 0..30);
}

#[tokio::test]
async fn items_refused_with_403_are_retried_not_dead_lettered() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults().fail_next_items(4, 403);
    out.batches.send(batch(STREAM, 0..10)).await.unwrap();
    let acks = out.finish().await;

    assert_acked_once(&acks, 0..10);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..10));
    assert!(dead_letters(dir.path()).is_empty());
}

#[tokio::test]
async fn a_whole_request_401_is_retried_not_dead_lettered() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    // As when an API key is revoked and replaced while the shipper runs.
    es.faults().fail_next_requests(3, 401);
    out.batches.send(batch(STREAM, 0..10)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    assert_acked_once(&acks, 0..10);
    assert_eq!(stored_ids(&es, STREAM), expected_ids(0..10));
    assert!(dead_letters(dir.path()).is_empty());
    assert_eq!(stats.snapshot().request_retries, 3);
}
