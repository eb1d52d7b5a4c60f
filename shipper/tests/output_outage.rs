//! Elasticsearch going away in the middle of a stream: the output keeps every batch, retries
//! until the cluster is back, and in the end every document is stored exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod output_support;

use std::collections::HashSet;
use std::time::Duration;

use es_test_server::{EsTestServer, ServerConfig};
use output_support::*;

#[tokio::test]
async fn elasticsearch_down_then_up_loses_nothing_and_stores_nothing_twice() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;

    out.batches.send(batch(STREAM, 0..100)).await.unwrap();
    out.acks.wait_for(100, Duration::from_secs(20)).await;

    es.stop_listening().await;
    for i in 1..6u64 {
        out.batches
            .send(batch(STREAM, i * 100..i * 100 + 100))
            .await
            .unwrap();
    }
    // While the cluster is away nothing new is acknowledged, and the output says it is down.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(out.acks.count(), 100);
    let down = out.stats.snapshot();
    assert!(!down.elasticsearch_up);
    assert!(down.request_retries > 0);
    assert!(down.last_error.is_some());

    es.resume_listening().await.unwrap();
    let stats = out.stats.clone();
    let acks = out.finish().await;

    let seqs = acks.seqs();
    assert_eq!(seqs.len(), 600);
    assert_eq!(seqs.iter().copied().collect::<HashSet<u64>>().len(), 600);
    let docs = es.documents(STREAM);
    let ids: HashSet<String> = docs.iter().map(|d| d.id.clone()).collect();
    assert_eq!(docs.len(), 600);
    assert_eq!(ids.len(), 600);
    assert!(stats.snapshot().elasticsearch_up);
}

#[tokio::test]
async fn a_timed_out_request_is_resent_and_its_duplicates_absorbed() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&es.url(), dir.path());
    c.request_timeout = Duration::from_millis(300);
    let out = start(c).await;
    // The server stores the documents but answers too late: the output times out and resends.
    es.faults().set_delay(Some(Duration::from_millis(600)));
    out.batches.send(batch(STREAM, 0..20)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    es.faults().set_delay(None);
    let stats = out.stats.clone();
    let acks = out.finish().await;

    assert_eq!(acks.seqs(), (0..20).collect::<Vec<u64>>());
    assert_eq!(es.count(STREAM), 20);
    let s = stats.snapshot();
    assert!(s.request_retries >= 1);
    assert_eq!(s.documents_indexed + s.duplicates, 20);
}

#[tokio::test]
async fn a_dead_node_is_skipped_and_the_live_one_carries_the_load() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    // A port nobody listens on: connections are refused.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&es.url(), dir.path());
    c.nodes = vec![dead.parse().unwrap(), es.url().parse().unwrap()];
    c.retry_initial = std::time::Duration::from_secs(5);
    c.retry_max = std::time::Duration::from_secs(30);
    let out = start(c).await;
    for i in 0..10u64 {
        out.batches
            .send(batch(STREAM, i * 10..i * 10 + 10))
            .await
            .unwrap();
    }
    let stats = out.stats.clone();
    let acks = out.finish().await;

    assert_eq!(acks.seqs(), (0..100).collect::<Vec<u64>>());
    assert_eq!(es.count(STREAM), 100);
    // A refused connection moves on to the live node at once: no request waits for a retry,
    // and the dead node is skipped during its backoff period.
    assert_eq!(
        stats.snapshot().request_retries,
        0,
        "{:?}",
        stats.snapshot()
    );
    let bulk = es.requests().iter().filter(|r| r.path == "/_bulk").count();
    assert_eq!(bulk, 10);
}

/// After an outage, the first request that gets through wakes the deliveries still waiting
/// out their backoff: they do not sleep out delays of up to `retry_max` while the cluster is
/// back. Here a waiting batch's backoff is up to an hour; without the wake-up it would be
/// stored after a uniformly random delay in that hour.
#[tokio::test]
async fn the_first_success_after_an_outage_resumes_waiting_deliveries() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&es.url(), dir.path());
    c.retry_initial = Duration::from_secs(3600);
    c.retry_max = Duration::from_secs(3600);
    let out = start(c).await;

    es.stop_listening().await;
    out.batches.send(batch(STREAM, 0..100)).await.unwrap();
    let started = std::time::Instant::now();
    while out.stats.snapshot().request_retries == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the first request did not fail"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    es.resume_listening().await.unwrap();
    // A new batch goes at once (no failure of its own yet) and its success is the signal.
    out.batches.send(batch(STREAM, 100..200)).await.unwrap();
    out.acks.wait_for(200, Duration::from_secs(20)).await;
    let acks = out.finish().await;
    assert_eq!(acks.seqs().len(), 200);
    assert_eq!(es.documents(STREAM).len(), 200);
}
