//! The real `shipper` binary against a three-node cluster of the test server (one cluster
//! state behind three listeners): a node that dies mid-stream, right after executing a bulk
//! it never answers, is skipped; what it had in flight is looked up and sent to the other
//! nodes; it is used again once it is back; every line is stored exactly once. And node
//! discovery: configured with one node, the shipper learns the two others from
//! `_nodes/http`, and keeps shipping when the configured node dies.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use es_test_server::{EsTestServer, ServerConfig, ThreadedServer};
use support::*;

const SERVICE: &str = "cluster";
const STREAM: &str = "logs-cluster-default";

fn cluster(nodes: usize) -> ThreadedServer {
    EsTestServer::start_in_thread(ServerConfig::default().with_nodes(nodes))
        .expect("start a test cluster")
}

/// Answered `_bulk` requests per node, from request number `from` on.
fn bulks_per_node(server: &EsTestServer, from: usize) -> BTreeMap<String, usize> {
    let mut per_node = BTreeMap::new();
    for r in server.requests().iter().skip(from) {
        if r.path.ends_with("/_bulk") && r.status == 200 {
            *per_node.entry(r.node.clone()).or_default() += 1;
        }
    }
    per_node
}

/// Writes `count` lines from `from` in slices, with a pause between them, so the shipper
/// sends many small batches over a while instead of one burst.
fn write_slowly(path: &std::path::Path, from: usize, count: usize) {
    let slice = 250;
    let mut n = from;
    while n < from + count {
        let k = slice.min(from + count - n);
        write_lines(path, SERVICE, n, k);
        n += k;
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_node_dying_mid_stream_is_skipped_its_batches_go_elsewhere_once_and_it_is_used_again() {
    let server = cluster(3);
    let urls = server.urls();
    let names = server.node_names();
    let setup = Setup::new(&urls.join(","))
        .env("SHIPPER_BATCH_MAX_DOCS", "100")
        .env("SHIPPER_BATCH_MAX_WAIT", "20ms");
    let log = setup.logs().join("cluster.log");
    let mut shipper = setup.start();

    // Lines flow to all three nodes.
    write_slowly(&log, 0, 3000);
    wait_until("the first lines stored", Duration::from_secs(60), || {
        server.count(STREAM) >= 3000
    });
    let spread = bulks_per_node(&server, 0);
    assert_eq!(spread.len(), 3, "every node used in turn: {spread:?}");

    // Node 2 executes its next bulk, then dies before answering; its other connections
    // are cut too. Lines keep coming while it is down.
    server.kill_node_after_next_bulk(1).unwrap();
    let mut written = 3000;
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.dropped_connections() == 0 {
        assert!(Instant::now() < deadline, "node 2 never took a bulk");
        write_slowly(&log, written, 250);
        written += 250;
    }
    write_slowly(&log, written, 3000);
    written += 3000;
    wait_until(
        "the lines written while node 2 is down",
        Duration::from_secs(60),
        || server.count(STREAM) >= written,
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/_search")),
        "the batch whose answer was lost was looked up before it was sent again"
    );

    // Back on its address: after its backoff the shipper uses it again.
    server.revive_node(1).unwrap();
    written = write_until_used(&server, &names[1], &log, written, &shipper);
    assert_exactly_once(&server, STREAM, written);
    assert_eq!(
        server.bulk_stats().conflicts,
        0,
        "nothing was sent twice: what the dead node stored was found by the look-up"
    );
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/_nodes")),
        "node discovery is off by default"
    );
    assert_eq!(
        shipper
            .terminate(Duration::from_secs(20))
            .map(|s| s.success()),
        Some(true)
    );
}

#[test]
fn discovery_learns_the_other_nodes_and_outlives_the_configured_one() {
    let server = cluster(3);
    let urls = server.urls();
    let names = server.node_names();
    // Only the first node is configured.
    let setup = Setup::new(&urls[0])
        .env("SHIPPER_ELASTICSEARCH_DISCOVER_NODES", "true")
        .env("SHIPPER_ELASTICSEARCH_DISCOVER_INTERVAL", "1s")
        .env("SHIPPER_BATCH_MAX_DOCS", "100")
        .env("SHIPPER_BATCH_MAX_WAIT", "20ms");
    let log = setup.logs().join("cluster.log");
    let mut shipper = setup.start();

    write_slowly(&log, 0, 3000);
    wait_until("the first lines stored", Duration::from_secs(60), || {
        server.count(STREAM) >= 3000
    });
    let spread = bulks_per_node(&server, 0);
    assert_eq!(
        spread.len(),
        3,
        "the two nodes not configured were discovered and used: {spread:?}\n{}",
        shipper.own_log()
    );
    assert!(server
        .requests()
        .iter()
        .any(|r| r.path == "/_nodes/http" && r.node == names[0]));

    // The one configured node dies: the discovered ones carry on.
    server.kill_node(0);
    // A request it was executing when it died is still recorded when it finishes (its
    // answer never leaves); nothing new can reach it after that.
    std::thread::sleep(Duration::from_millis(300));
    let killed_at = server.requests().len();
    write_slowly(&log, 3000, 3000);
    wait_until(
        "the lines written after the configured node died",
        Duration::from_secs(60),
        || server.count(STREAM) >= 6000,
    );
    let after = bulks_per_node(&server, killed_at);
    assert!(!after.contains_key(&names[0]), "{after:?}");
    // A later discovery no longer lists it (it left the cluster): the list shrinks.
    wait_until(
        "a rediscovery without the dead node",
        Duration::from_secs(30),
        || {
            shipper
                .own_log()
                .contains("node discovery: sending to 2 node(s)")
        },
    );

    // It comes back: a later discovery lists it again, and it is used again.
    server.revive_node(0).unwrap();
    let written = write_until_used(&server, &names[0], &log, 6000, &shipper);
    assert_exactly_once(&server, STREAM, written);
    assert_eq!(
        shipper
            .own_log()
            .matches("node discovery: sending to 3 node(s)")
            .count(),
        2,
        "three nodes at start, and again once the dead one was back: {}",
        shipper.own_log()
    );
    assert_eq!(
        shipper
            .terminate(Duration::from_secs(20))
            .map(|s| s.success()),
        Some(true)
    );
}

/// Writes lines 250 at a time from line `from` until `node` takes a `_bulk` again (after it
/// came back), then waits until every line written is stored; returns how many were written.
fn write_until_used(
    server: &ThreadedServer,
    node: &str,
    log: &std::path::Path,
    from: usize,
    shipper: &Shipper,
) -> usize {
    let since = server.requests().len();
    let mut written = from;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !bulks_per_node(server, since).contains_key(node) {
        assert!(
            Instant::now() < deadline,
            "{node} was never used again after it came back: {:?}\n{}",
            bulks_per_node(server, since),
            shipper.own_log()
        );
        write_slowly(log, written, 250);
        written += 250;
    }
    wait_until("every line stored", Duration::from_secs(60), || {
        server.count(STREAM) >= written
    });
    std::thread::sleep(Duration::from_millis(500));
    written
}
