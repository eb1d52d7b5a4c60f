//! `_security/user/_has_privileges` and `_index_template/_simulate`, over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use es_test_server::{EsTestServer, ServerConfig};
use serde_json::{json, Value};

async fn post(url: &str, auth: Option<(&str, &str)>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(&body);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn has_privileges_answers_per_privilege_and_names_the_user() {
    let server = EsTestServer::start(
        ServerConfig::default()
            .with_basic_auth("shipper", "pw")
            .without_privilege("manage_ilm"),
    )
    .await
    .unwrap();
    let url = format!("{}/_security/user/_has_privileges", server.url());
    let body = json!({"cluster": ["monitor", "manage_ilm"],
                      "index": [{"names": ["logs-a-*"], "privileges": ["read", "create_doc"]}]});
    let (status, answer) = post(&url, Some(("shipper", "pw")), body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["username"], "shipper");
    assert_eq!(answer["has_all_requested"], false);
    assert_eq!(
        answer["cluster"],
        json!({"monitor": true, "manage_ilm": false})
    );
    assert_eq!(
        answer["index"]["logs-a-*"],
        json!({"read": true, "create_doc": true})
    );
    let (status, _) = post(&url, Some(("shipper", "wrong")), body).await;
    assert_eq!(status, 401);
    server.shutdown().await;

    let open = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let url = format!("{}/_security/user/_has_privileges", open.url());
    let (status, answer) = post(&url, None, json!({"cluster": ["monitor"]})).await;
    assert_eq!(
        status, 400,
        "with security off there is no such API: {answer}"
    );
    open.shutdown().await;
}

#[tokio::test]
async fn simulate_composes_without_storing_and_refuses_missing_components() {
    let server = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let url = format!("{}/_index_template/_simulate", server.url());
    let template = json!({
        "index_patterns": ["logs-sim-*"], "data_stream": {}, "priority": 300,
        "composed_of": ["logs@mappings"],
        "template": {"settings": {"index": {"lifecycle": {"name": "p"}}},
                     "mappings": {"properties": {"n": {"type": "long"}}}},
    });
    let (status, answer) = post(&url, None, template).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["template"]["settings"]["index"]["lifecycle"]["name"],
        "p"
    );
    assert_eq!(
        answer["template"]["mappings"]["properties"]["n"]["type"],
        "long"
    );
    assert!(server.index_templates().iter().all(|t| !t.contains("sim")));
    let (status, answer) = post(
        &url,
        None,
        json!({"index_patterns": ["x-*"], "composed_of": ["nope"]}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["type"], "invalid_index_template_exception");
    server.shutdown().await;
}
