//! End-to-end: a three-node server, driven over HTTP with reqwest: one cluster state behind
//! every node, nodes killed and revived alone, `_nodes/http` as discovery reads it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::time::Duration;

use es_test_server::{EsTestServer, ServerConfig};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        // A fresh connection per request: a cut connection must not be reused by accident.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn bulk_one(c: &reqwest::Client, url: &str, id: &str) -> Result<u16, reqwest::Error> {
    let body = format!(
        "{}\n{}\n",
        json!({"create": {"_index": "logs-app-default", "_id": id}}),
        json!({"@timestamp": "2026-11-26T10:00:00Z", "message": id})
    );
    c.post(format!("{url}/_bulk"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
}

async fn get_json(c: &reqwest::Client, url: &str) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn every_node_serves_one_cluster_state_and_names_itself() {
    let server = EsTestServer::start(ServerConfig::default().with_nodes(3))
        .await
        .unwrap();
    let urls = server.urls();
    assert_eq!(urls.len(), 3);
    let c = client();
    for (i, url) in urls.iter().enumerate() {
        assert_eq!(bulk_one(&c, url, &format!("d{i}")).await.unwrap(), 200);
        let root = get_json(&c, url).await;
        assert_eq!(root["name"], format!("es-test-node-{}", i + 1));
    }
    // A create of an id another node stored is a conflict: one state.
    let body: Value = c
        .post(format!("{}/_bulk", urls[2]))
        .header("content-type", "application/x-ndjson")
        .body(format!(
            "{}\n{}\n",
            json!({"create": {"_index": "logs-app-default", "_id": "d0"}}),
            json!({"@timestamp": "2026-11-26T10:00:00Z"})
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["items"][0]["create"]["status"], 409);
    let count = get_json(&c, &format!("{}/logs-app-default/_count", urls[1])).await;
    assert_eq!(count["count"], 3);
    let nodes: Vec<String> = server.requests().iter().map(|r| r.node.clone()).collect();
    assert!(nodes.contains(&"es-test-node-3".to_string()), "{nodes:?}");
}

#[tokio::test]
async fn a_killed_node_refuses_connections_leaves_nodes_info_and_comes_back() {
    let server = EsTestServer::start(ServerConfig::default().with_nodes(3))
        .await
        .unwrap();
    let urls = server.urls();
    let c = client();
    let info = get_json(&c, &format!("{}/_nodes/http", urls[0])).await;
    assert_eq!(info["_nodes"]["total"], 3);
    let mut published: Vec<String> = info["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| {
            assert!(n["roles"].as_array().unwrap().contains(&json!("data")));
            format!("http://{}", n["http"]["publish_address"].as_str().unwrap())
        })
        .collect();
    published.sort();
    let mut expected = urls.clone();
    expected.sort();
    assert_eq!(published, expected);

    server.kill_node(1).await;
    let err = bulk_one(&c, &urls[1], "x").await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert_eq!(bulk_one(&c, &urls[0], "y").await.unwrap(), 200);
    let info = get_json(&c, &format!("{}/_nodes/_all/http", urls[2])).await;
    assert_eq!(info["_nodes"]["total"], 2);
    assert!(!info.to_string().contains(&urls[1][7..]), "{info}");
    let health = get_json(&c, &format!("{}/_cluster/health", urls[0])).await;
    assert_eq!(health["number_of_nodes"], 2);

    server.revive_node(1).await.unwrap();
    assert_eq!(bulk_one(&c, &urls[1], "z").await.unwrap(), 200);
    let local = get_json(&c, &format!("{}/_nodes/_local/http", urls[1])).await;
    let only: Vec<&Value> = local["nodes"].as_object().unwrap().values().collect();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["name"], "es-test-node-2");
}

#[tokio::test]
async fn a_node_dying_after_a_bulk_stores_it_and_never_answers() {
    let server = EsTestServer::start(ServerConfig::default().with_nodes(2))
        .await
        .unwrap();
    let urls = server.urls();
    let c = client();
    server.kill_node_after_next_bulk(0).unwrap();
    let err = bulk_one(&c, &urls[0], "lost-answer").await.unwrap_err();
    assert!(
        !err.is_connect(),
        "the request was sent, its answer lost: {err}"
    );
    assert_eq!(server.count("logs-app-default"), 1, "the bulk was executed");
    assert!(bulk_one(&c, &urls[0], "again")
        .await
        .unwrap_err()
        .is_connect());
    assert_eq!(bulk_one(&c, &urls[1], "other").await.unwrap(), 200);
}

#[tokio::test]
async fn nodes_are_killed_and_revived_through_the_control_endpoints() {
    let config = ServerConfig {
        publish_host: Some("localhost".into()),
        ..ServerConfig::default().with_nodes(2)
    };
    let server = EsTestServer::start(config).await.unwrap();
    let urls = server.urls();
    let c = client();
    let info = get_json(&c, &format!("{}/_nodes/http", urls[0])).await;
    let first = info["nodes"].as_object().unwrap().values().next().unwrap();
    assert!(first["http"]["publish_address"]
        .as_str()
        .unwrap()
        .starts_with("localhost/127.0.0.1:"));

    let r = c
        .post(format!("{}/_test/nodes/es-test-node-2/kill", urls[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "answered before it dies");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(bulk_one(&c, &urls[1], "a").await.unwrap_err().is_connect());
    let listed = get_json(&c, &format!("{}/_test/nodes", urls[0])).await;
    assert_eq!(listed["nodes"][1]["up"], false);
    let r = c
        .post(format!("{}/_test/nodes/es-test-node-2/revive", urls[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(bulk_one(&c, &urls[1], "b").await.unwrap(), 200);
    let r = c
        .post(format!("{}/_test/nodes/nope/kill", urls[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
