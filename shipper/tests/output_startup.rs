//! Startup of the Elasticsearch output: it waits for the cluster, refuses what waiting cannot
//! fix, sends credentials, and installs the templates before any document.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod output_support;

use std::time::Duration;

use es_test_server::{EsTestServer, ServerConfig};
use output_support::*;
use shipper::output::{Auth, ElasticsearchOutput, StartupError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

async fn prepare(config: shipper::output::OutputConfig) -> Result<(), StartupError> {
    let output = ElasticsearchOutput::new(config).unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        output.prepare(&CancellationToken::new()),
    )
    .await
    .expect("prepare neither succeeded nor failed")
    .map(|_| ())
}

#[tokio::test]
async fn templates_are_installed_in_order_before_the_first_document() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    out.batches.send(batch(STREAM, 0..5)).await.unwrap();
    out.finish().await;

    assert!(es.ilm_policies().contains(&"didban-logs".to_string()));
    assert!(es
        .component_templates()
        .contains(&"didban-logs-mappings".to_string()));
    assert!(es.index_templates().contains(&"didban-logs".to_string()));

    let paths: Vec<String> = es.requests().into_iter().map(|r| r.path).collect();
    let position = |prefix: &str| paths.iter().position(|p| p.starts_with(prefix));
    let policy = position("/_ilm/policy/").expect("policy installed");
    let component = position("/_component_template/").expect("component template installed");
    let index = position("/_index_template/").expect("index template installed");
    let bulk = position("/_bulk").expect("documents sent");
    assert!(
        policy < component && component < index && index < bulk,
        "{paths:?}"
    );
    // The data stream was created by our template.
    assert!(es.data_streams().contains(&STREAM.to_string()));
}

#[tokio::test]
async fn installing_templates_twice_is_harmless() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    prepare(config(&es.url(), dir.path())).await.unwrap();
    prepare(config(&es.url(), dir.path())).await.unwrap();
}

#[tokio::test]
async fn basic_credentials_are_sent_on_every_request() {
    let es = EsTestServer::start(ServerConfig::default().with_basic_auth("shipper", "s3cret-pw"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&es.url(), dir.path());
    c.auth = Auth::Basic {
        username: "shipper".into(),
        password: "s3cret-pw".into(),
    };
    let out = start(c).await;
    out.batches.send(batch(STREAM, 0..5)).await.unwrap();
    let acks = out.finish().await;
    assert_eq!(acks.count(), 5);
    let requests = es.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some("Basic <redacted>"),
            "{r:?}"
        );
        assert_eq!(
            r.headers.get("accept").map(String::as_str),
            Some("application/json"),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn api_keys_are_accepted() {
    let server_config =
        ServerConfig::default().with_api_key("VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw");
    let encoded = server_config.api_keys[0].encoded();
    let es = EsTestServer::start(server_config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&es.url(), dir.path());
    c.auth = Auth::ApiKey(encoded);
    let out = start(c).await;
    out.batches.send(batch(STREAM, 0..5)).await.unwrap();
    let acks = out.finish().await;
    assert_eq!(acks.count(), 5);
    assert!(es
        .requests()
        .iter()
        .all(|r| r.headers.get("authorization").map(String::as_str) == Some("ApiKey <redacted>")));
}

#[tokio::test]
async fn wrong_credentials_stop_startup_with_a_clear_error() {
    let es = EsTestServer::start(ServerConfig::default().with_basic_auth("shipper", "right"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&es.url(), dir.path());
    c.auth = Auth::Basic {
        username: "shipper".into(),
        password: "wrong-password-value".into(),
    };
    let err = prepare(c).await.unwrap_err();
    assert!(
        matches!(err, StartupError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("ELASTICSEARCH_PASSWORD"), "{text}");
    assert!(!text.contains("wrong-password-value"), "{text}");
}

#[tokio::test]
async fn https_to_a_node_without_tls_fails_fast() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = es.url().replace("http://", "https://");
    let err = prepare(config(&url, dir.path())).await.unwrap_err();
    assert!(matches!(err, StartupError::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("TLS"), "{err}");
}

/// Answers every request with a 200 that lacks `X-Elastic-Product`, like a proxy's page.
async fn not_elasticsearch() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let body = r#"{"version":{"number":"9.2.1"},"tagline":"not really"}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_server_without_the_elasticsearch_product_header_is_refused() {
    let url = not_elasticsearch().await;
    let dir = tempfile::tempdir().unwrap();
    let err = prepare(config(&url, dir.path())).await.unwrap_err();
    assert!(
        matches!(err, StartupError::NotElasticsearch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn startup_waits_while_elasticsearch_is_unreachable() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    es.stop_listening().await;
    let dir = tempfile::tempdir().unwrap();
    let output = ElasticsearchOutput::new(config(&es.url(), dir.path())).unwrap();
    let stats = output.stats();
    let shutdown = CancellationToken::new();
    let preparing = tokio::spawn(async move { output.prepare(&shutdown).await.map(|_| ()) });
    // Wait until at least one attempt failed, then bring the server back.
    for _ in 0..500 {
        if stats.snapshot().last_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!stats.snapshot().elasticsearch_up);
    assert!(!preparing.is_finished());
    es.resume_listening().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), preparing)
        .await
        .expect("prepare did not finish after the server came back")
        .unwrap()
        .unwrap();
    assert!(stats.snapshot().elasticsearch_up);
    assert!(es.index_templates().contains(&"didban-logs".to_string()));
}

#[tokio::test]
async fn startup_waits_while_elasticsearch_answers_503() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    es.faults().fail_next_requests_all(3, 503);
    let dir = tempfile::tempdir().unwrap();
    prepare(config(&es.url(), dir.path())).await.unwrap();
    assert!(es.index_templates().contains(&"didban-logs".to_string()));
}

#[tokio::test]
async fn shutdown_during_the_wait_ends_startup() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    es.stop_listening().await;
    let dir = tempfile::tempdir().unwrap();
    let output = ElasticsearchOutput::new(config(&es.url(), dir.path())).unwrap();
    let shutdown = CancellationToken::new();
    let cancel = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let err = tokio::time::timeout(Duration::from_secs(10), output.prepare(&shutdown))
        .await
        .expect("prepare ignored shutdown")
        .unwrap_err();
    assert!(matches!(err, StartupError::Cancelled), "{err:?}");
}

#[tokio::test]
async fn templates_installed_by_someone_else_are_used_when_the_user_may_not_install_them() {
    // The compose stack: the setup step installs everything with the superuser, the
    // shipper's role has no manage_index_templates / manage_ilm.
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    prepare(config(&es.url(), dir.path())).await.unwrap();
    es.faults().refuse_template_writes(true);
    es.reset_observations();
    prepare(config(&es.url(), dir.path())).await.unwrap();
    let requests = es.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PUT" && r.path == "/_index_template/didban-logs"),
        "the shipper still tries to install where it is allowed: {requests:?}"
    );
    assert!(requests
        .iter()
        .any(|r| r.method == "GET" && r.path == "/_index_template/didban-logs"));
}

#[tokio::test]
async fn a_missing_template_the_user_may_not_install_stops_startup_naming_it() {
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    es.faults().refuse_template_writes(true);
    let dir = tempfile::tempdir().unwrap();
    let err = prepare(config(&es.url(), dir.path())).await.unwrap_err();
    assert!(
        matches!(err, StartupError::Template { status: 403, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("didban-logs"), "{text}");
    assert!(text.contains("setup"), "{text}");
}

#[tokio::test]
async fn the_index_template_waits_for_the_built_in_component_templates() {
    // A slow first boot: the node answers before it has installed logs@mappings & co.
    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let c = reqwest::Client::new();
    let builtins = ["logs@mappings", "logs@settings", "ecs@mappings"];
    let mut bodies = Vec::new();
    for name in builtins {
        let v: serde_json::Value = c
            .get(format!("{}/_component_template/{name}", es.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        bodies.push(v["component_templates"][0]["component_template"].clone());
    }
    let r = c
        .delete(format!("{}/_index_template/logs", es.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for name in builtins {
        let r = c
            .delete(format!("{}/_component_template/{name}", es.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
    }
    let dir = tempfile::tempdir().unwrap();
    let url = es.url();
    let started = tokio::spawn(async move {
        let c = config(&url, dir.path());
        let result = prepare(c).await;
        drop(dir);
        result
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!started.is_finished(), "prepare did not wait");
    assert!(es.index_templates().iter().all(|t| t != "didban-logs"));
    for (name, body) in builtins.iter().zip(&bodies) {
        let r = c
            .put(format!("{}/_component_template/{name}", es.url()))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
    }
    started.await.unwrap().unwrap();
    assert!(es.index_templates().contains(&"didban-logs".to_string()));
}
