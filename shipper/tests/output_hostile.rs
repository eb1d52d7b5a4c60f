//! The Elasticsearch output behind a hostile proxy (the test server's `hostile_answers`):
//! items answered out of order, too few or too many, an answer too large to read, a gzip
//! bomb. Nothing is lost, nothing rejected is acknowledged as stored, nothing is stored twice.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod output_support;

use std::collections::HashSet;
use std::time::Duration;

use es_test_server::{EsTestServer, HostileAnswer, ServerConfig};
use output_support::*;

async fn server() -> EsTestServer {
    EsTestServer::start(ServerConfig::default()).await.unwrap()
}

/// The `_id`s stored in `expr`, checking each is stored once.
fn stored_once(es: &EsTestServer, expr: &str) -> HashSet<String> {
    let docs = es.documents(expr);
    let ids: HashSet<String> = docs.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids.len(), docs.len(), "an id stored twice");
    ids
}

fn ids(range: std::ops::Range<u64>) -> HashSet<String> {
    range.map(doc_id).collect()
}

fn acked_once(acks: &Acks, range: std::ops::Range<u64>) {
    assert_eq!(
        acks.seqs(),
        range.collect::<Vec<_>>(),
        "each acknowledged once"
    );
}

#[tokio::test]
async fn a_reordered_answer_gives_each_document_its_own_verdict() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    // Documents 0, 1 and 2 are rejected for good; the proxy reverses the items, so by
    // position the rejections would land on 7, 8 and 9.
    es.faults().fail_next_items(3, 400);
    es.faults()
        .hostile_next_answers(&[HostileAnswer::ReorderedItems]);
    out.batches.send(batch(STREAM, 0..10)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    acked_once(&acks, 0..10);
    let letters: HashSet<String> = dead_letters(dir.path())
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        letters,
        ids(0..3),
        "the rejected documents are dead-lettered"
    );
    assert_eq!(stored_once(&es, STREAM), ids(3..10));
    let s = stats.snapshot();
    assert_eq!((s.documents_indexed, s.dead_letters), (7, 3));
}

#[tokio::test]
async fn a_reordered_answer_with_failure_store_items_is_matched_too() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    // The failure store answers with the ids of its own documents, not those sent.
    es.faults().fail_mapping_next_items(2);
    es.faults()
        .hostile_next_answers(&[HostileAnswer::ReorderedItems]);
    out.batches.send(batch(STREAM, 0..6)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    acked_once(&acks, 0..6);
    assert_eq!(es.bulk_stats().failure_store_used, 2);
    let s = stats.snapshot();
    assert_eq!((s.documents_indexed, s.failure_store), (4, 2));
    assert!(dead_letters(dir.path()).is_empty());
}

#[tokio::test]
async fn short_and_long_answers_are_retried_after_a_look_up_and_nothing_is_stored_twice() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults()
        .hostile_next_answers(&[HostileAnswer::ShortItems, HostileAnswer::LongItems]);
    out.batches.send(batch(STREAM, 0..20)).await.unwrap();
    out.acks.wait_for(20, Duration::from_secs(20)).await;
    out.batches.send(batch(STREAM, 20..40)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    acked_once(&acks, 0..40);
    assert_eq!(es.faults().hostile_answers_left(), 0);
    assert_eq!(stored_once(&es, STREAM), ids(0..40));
    let searches = es
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/_search"))
        .count();
    assert!(
        searches >= 2,
        "each untrusted answer was followed by a look-up"
    );
    let s = stats.snapshot();
    assert_eq!(
        s.duplicates, 40,
        "the stored documents were found, not sent again"
    );
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("items for"),
        "{:?}",
        s.last_error
    );
}

#[tokio::test]
async fn a_huge_answer_and_a_gzip_bomb_are_not_read_and_their_documents_are_looked_up() {
    let es = server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults().hostile_next_answers(&[
        HostileAnswer::HugeBody {
            bytes: 64 * 1024 * 1024,
        },
        HostileAnswer::GzipBomb {
            bytes: 64 * 1024 * 1024,
        },
    ]);
    out.batches.send(batch(STREAM, 0..20)).await.unwrap();
    out.acks.wait_for(20, Duration::from_secs(20)).await;
    out.batches.send(batch(STREAM, 20..40)).await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    acked_once(&acks, 0..40);
    assert_eq!(es.faults().hostile_answers_left(), 0);
    assert_eq!(stored_once(&es, STREAM), ids(0..40));
    let s = stats.snapshot();
    assert_eq!(s.duplicates, 40, "found by the look-up, not sent again");
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or("")
            .contains("larger than"),
        "{:?}",
        s.last_error
    );
}
