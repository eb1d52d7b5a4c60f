//! End-to-end: a real server on 127.0.0.1, driven over HTTP with reqwest.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::io::Write;
use std::time::{Duration, Instant};

use es_test_server::{EsTestServer, ServerConfig};
use serde_json::{json, Value};

const NDJSON: &str = "application/x-ndjson";

async fn start(config: ServerConfig) -> (EsTestServer, reqwest::Client) {
    let server = EsTestServer::start(config).await.expect("server starts");
    (server, reqwest::Client::new())
}

async fn bulk(c: &reqwest::Client, url: &str, body: &str) -> (u16, Value) {
    let r = c
        .post(format!("{url}/_bulk"))
        .header("content-type", NDJSON)
        .body(body.to_string())
        .send()
        .await
        .expect("bulk sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn create(index: &str, id: &str, doc: Value) -> String {
    format!(
        "{}\n{}\n",
        json!({"create": {"_index": index, "_id": id}}),
        doc
    )
}

#[tokio::test]
async fn root_answers_like_elasticsearch_with_the_product_header() {
    let (server, c) = start(ServerConfig::default()).await;
    let r = c.get(server.url()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-elastic-product"], "Elasticsearch");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"]["number"], "9.2.1");
    assert_eq!(v["version"]["build_flavor"], "default");
    assert_eq!(v["tagline"], "You Know, for Search");
    let r = c.head(server.url()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Errors carry the header too.
    let r = c
        .get(format!("{}/_nothing_here/_search", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-elastic-product"], "Elasticsearch");
    server.shutdown().await;
}

#[tokio::test]
async fn data_stream_bulk_creates_then_conflicts_and_refuses_index_ops() {
    let (server, c) = start(ServerConfig::default()).await;
    let ts = json!({"@timestamp": "2026-11-26T10:00:00Z", "message": "hello"});
    let mut body = create("logs-payment-default", "a", ts.clone());
    body += &create("logs-payment-default", "a", ts.clone());
    body += &format!(
        "{}\n{}\n",
        json!({"index": {"_index": "logs-payment-default"}}),
        ts
    );
    let (status, v) = bulk(&c, &server.url(), &body).await;
    assert_eq!(status, 200);
    assert_eq!(v["errors"], true);
    let first = &v["items"][0]["create"];
    assert_eq!(first["status"], 201);
    assert_eq!(first["result"], "created");
    assert!(first["_index"]
        .as_str()
        .unwrap()
        .starts_with(".ds-logs-payment-default-"));
    assert!(first["_index"].as_str().unwrap().ends_with("-000001"));
    assert_eq!(v["items"][1]["create"]["status"], 409);
    assert_eq!(
        v["items"][1]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(v["items"][2]["index"]["status"], 400);
    assert_eq!(
        v["items"][2]["index"]["error"]["reason"],
        "only write ops with an op_type of create are allowed in data streams"
    );
    assert_eq!(server.documents("logs-payment-default").len(), 1);
    assert_eq!(
        server.data_streams(),
        vec!["logs-payment-default".to_string()]
    );
    let stats = server.bulk_stats();
    assert_eq!(stats.conflicts, 1);
    assert_eq!(stats.items_by_status.get(&201), Some(&1));
    server.shutdown().await;
}

#[tokio::test]
async fn bulk_framing_errors_fail_the_whole_request() {
    let (server, c) = start(ServerConfig::default()).await;
    let (status, v) = bulk(&c, &server.url(), "{\"create\":{\"_index\":\"a\"}}\n{}").await;
    assert_eq!(status, 400);
    assert_eq!(
        v["error"]["reason"],
        "The bulk request must be terminated by a newline [\\n]"
    );
    let (status, v) = bulk(&c, &server.url(), "{\"explode\":{\"_index\":\"a\"}}\n{}\n").await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["type"], "illegal_argument_exception");
    let r = c
        .post(format!("{}/_bulk", server.url()))
        .header("content-type", "text/plain")
        .body("{\"create\":{\"_index\":\"a\"}}\n{}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    server.shutdown().await;
}

#[tokio::test]
async fn gzip_bodies_and_vendor_media_types_are_accepted_and_recorded() {
    let (server, c) = start(ServerConfig::default()).await;
    let body = create("plain-index", "1", json!({"x": 1}));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let r = c
        .post(format!("{}/_bulk", server.url()))
        .header(
            "content-type",
            "application/vnd.elasticsearch+x-ndjson;compatible-with=9",
        )
        .header("content-encoding", "gzip")
        .body(gz.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"], false);
    assert_eq!(server.documents("plain-index")[0].source["x"], 1);
    let rec = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/_bulk")
        .unwrap();
    assert!(rec.gzip);
    assert_eq!(rec.body_bytes, gz.len() as u64);
    assert_eq!(rec.decoded_bytes, body.len() as u64);
    server.shutdown().await;
}

#[tokio::test]
async fn mapping_conflict_is_400_without_failure_store_and_201_used_with_it() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    // A template without failure store, mapping `code` as long.
    let r = c
        .put(format!("{url}/_index_template/strict-ds"))
        .json(&json!({"index_patterns": ["strict-*"], "priority": 10, "data_stream": {}, "template": {"mappings": {"properties": {"code": {"type": "long"}}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) = bulk(
        &c,
        &url,
        &create(
            "strict-a",
            "1",
            json!({"@timestamp": "2026-11-26T10:00:00Z", "code": "abc"}),
        ),
    )
    .await;
    let item = &v["items"][0]["create"];
    assert_eq!(item["status"], 400);
    assert_eq!(item["error"]["type"], "document_parsing_exception");
    // Next to `status` and `error`, as BulkItemResponse writes it; not inside `error`.
    assert_eq!(item["failure_store"], "not_enabled");
    assert!(item["error"].get("failure_store").is_none(), "{item}");
    assert_eq!(v["errors"], true);
    // A document without @timestamp in the same stream: refused the same way.
    let (_, v) = bulk(&c, &url, &create("strict-a", "2", json!({"code": 1}))).await;
    let item = &v["items"][0]["create"];
    assert_eq!(item["status"], 400, "{item}");
    assert_eq!(item["error"]["type"], "document_parsing_exception");
    assert_eq!(item["failure_store"], "not_enabled", "{item}");
    // The built-in logs template turns the failure store on (logs@settings).
    let (_, v) = bulk(
        &c,
        &url,
        &create(
            "logs-app-default",
            "1",
            json!({"@timestamp": "2026-11-26T10:00:00Z", "log": {"level": {"x": 1}}}),
        ),
    )
    .await;
    let (_, v2) = bulk(
        &c,
        &url,
        &create(
            "logs-app-default",
            "2",
            json!({"@timestamp": "2026-11-26T10:00:00Z", "log": {"level": {"nested": "obj"}}}),
        ),
    )
    .await;
    assert_eq!(v["errors"], false);
    // First doc maps log.level as object; a string then conflicts.
    let (_, v3) = bulk(
        &c,
        &url,
        &create(
            "logs-app-default",
            "3",
            json!({"@timestamp": "2026-11-26T10:00:00Z", "log": {"level": "error"}}),
        ),
    )
    .await;
    let item = &v3["items"][0]["create"];
    assert_eq!(item["status"], 201);
    assert_eq!(item["failure_store"], "used");
    assert!(item["_index"]
        .as_str()
        .unwrap()
        .starts_with(".fs-logs-app-default-"));
    assert_eq!(v3["errors"], false);
    assert_eq!(v2["items"][0]["create"]["status"], 201);
    let failures = server.documents("logs-app-default::failures");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].source["document"]["id"], "3");
    assert_eq!(server.bulk_stats().failure_store_used, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn template_validation_matches_elasticsearch() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    let put = |path: &str, body: Value| {
        let c = c.clone();
        let u = format!("{url}{path}");
        async move {
            let r = c.put(u).json(&body).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = put("/_index_template/t1", json!({"template": {}})).await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (400, Some("x_content_parse_exception"))
    );
    let (s, v) = put(
        "/_index_template/t1",
        json!({"index_patterns": ["x-*"], "composed_of": ["missing@custom"]}),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["type"], "invalid_index_template_exception");
    let (s, _) = put(
        "/_index_template/t1",
        json!({"index_patterns": ["logs-didban*-*"], "priority": 100, "data_stream": {}}),
    )
    .await;
    assert_eq!(s, 400, "same priority as the built-in logs template");
    let (s, v) = put(
        "/_component_template/c1",
        json!({"template": {"mappings": {"properties": {"log.category": {"type": "keyword"}}}}}),
    )
    .await;
    assert_eq!((s, v["acknowledged"].as_bool()), (200, Some(true)));
    let body = json!({"index_patterns": ["logs-didban*-*"], "priority": 300, "data_stream": {}, "composed_of": ["logs@mappings", "logs@settings", "ecs@mappings", "c1"]});
    assert_eq!(put("/_index_template/t1", body.clone()).await.0, 200);
    assert_eq!(put("/_index_template/t1", body).await.0, 200, "idempotent");
    assert_eq!(
        c.head(format!("{url}/_index_template/t1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.head(format!("{url}/_index_template/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let (s, v) = put(
        "/_ilm/policy/p",
        json!({"policy": {"phases": {"delete": {"actions": {"rollover": {}}}}}}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (400, Some("illegal_argument_exception"))
    );
    let (s, _) = put("/_ilm/policy/p", json!({"policy": {"phases": {"hot": {"actions": {"rollover": {"max_age": "7d"}}}, "delete": {"min_age": "30d", "actions": {"delete": {}}}}}})).await;
    assert_eq!(s, 200);
    let v: Value = c
        .get(format!("{url}/_ilm/policy/p"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["p"]["version"], 1);
    let r = c
        .delete(format!("{url}/_component_template/c1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "in use by t1");
    server.shutdown().await;
}

#[tokio::test]
async fn security_requires_credentials_when_configured() {
    let (server, c) = start(
        ServerConfig::default()
            .with_basic_auth("elastic", "s3cret")
            .with_api_key("id1", "key1"),
    )
    .await;
    let r = c.get(server.url()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .any(|h| h.to_str().unwrap().starts_with("Basic")));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "security_exception");
    assert_eq!(
        v["error"]["reason"],
        "missing authentication credentials for REST request [/]"
    );
    let r = c
        .get(server.url())
        .basic_auth("elastic", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(server.url())
        .basic_auth("elastic", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let key = es_test_server::ApiKey {
        id: "id1".into(),
        api_key: "key1".into(),
    }
    .encoded();
    let r = c
        .get(server.url())
        .header("authorization", format!("ApiKey {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn item_and_request_faults_are_answered_then_consumed() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    server.faults().fail_next_items(1, 429);
    let body = create(
        "logs-a-default",
        "1",
        json!({"@timestamp": "2026-11-26T10:00:00Z"}),
    ) + &create(
        "logs-a-default",
        "2",
        json!({"@timestamp": "2026-11-26T10:00:00Z"}),
    );
    let (_, v) = bulk(&c, &url, &body).await;
    assert_eq!(v["items"][0]["create"]["status"], 429);
    assert_eq!(
        v["items"][0]["create"]["error"]["type"],
        "es_rejected_execution_exception"
    );
    assert_eq!(v["items"][1]["create"]["status"], 201);
    server.faults().fail_next_requests(1, 503);
    let (s, _) = bulk(&c, &url, &body).await;
    assert_eq!(s, 503);
    let (s, v) = bulk(&c, &url, &body).await;
    assert_eq!(s, 200);
    assert_eq!(v["items"][0]["create"]["status"], 201);
    assert_eq!(v["items"][1]["create"]["status"], 409);
    // 413 above a size, over HTTP control.
    let r = c
        .put(format!("{url}/_test/faults"))
        .json(&json!({"max_content_length": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, v) = bulk(&c, &url, &body).await;
    assert_eq!(s, 413);
    assert_eq!(v["error"]["type"], "content_too_long_exception");
    c.delete(format!("{url}/_test/faults"))
        .send()
        .await
        .unwrap();
    // Delay.
    server.faults().set_delay(Some(Duration::from_millis(300)));
    let t = Instant::now();
    bulk(
        &c,
        &url,
        &create(
            "logs-a-default",
            "9",
            json!({"@timestamp": "2026-11-26T10:00:00Z"}),
        ),
    )
    .await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    server.faults().clear();
    // Forced mapping type.
    server.faults().force_field_type("message", "long");
    let (_, v) = bulk(&c, &url, &create("plain", "m", json!({"message": "text"}))).await;
    assert_eq!(
        v["items"][0]["create"]["error"]["type"],
        "document_parsing_exception"
    );
    server.faults().clear();
    // Injected mapping failure on a failure-store stream answers "used".
    server.faults().fail_mapping_next_items(1);
    let (_, v) = bulk(
        &c,
        &url,
        &create(
            "logs-a-default",
            "fs",
            json!({"@timestamp": "2026-11-26T10:00:00Z"}),
        ),
    )
    .await;
    assert_eq!(v["items"][0]["create"]["failure_store"], "used");
    server.shutdown().await;
}

#[tokio::test]
async fn dropped_and_refused_connections_then_recovery() {
    let (server, _) = start(ServerConfig::default()).await;
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = server.url();
    let body = create(
        "logs-b-default",
        "1",
        json!({"@timestamp": "2026-11-26T10:00:00Z"}),
    );
    server.faults().drop_next_requests(1);
    let r = c
        .post(format!("{url}/_bulk"))
        .header("content-type", NDJSON)
        .body(body.clone())
        .send()
        .await;
    assert!(r.is_err(), "connection closed without a response");
    assert_eq!(server.dropped_connections(), 1);
    assert_eq!(server.count("logs-b-default"), 0);
    server.stop_listening().await;
    let r = c.get(&url).send().await;
    assert!(r.unwrap_err().is_connect());
    server.resume_listening().await.unwrap();
    let r = c
        .post(format!("{url}/_bulk"))
        .header("content-type", NDJSON)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(server.count("logs-b-default"), 1);
    // Over HTTP: refuse for a while, then answer again.
    let r = c
        .post(format!("{url}/_test/refuse_connections?for_ms=400"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(c.get(&url).send().await.is_err());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    server.shutdown().await;
}

fn heartbeat_doc(monitor: &str, status: &str, secs_ago: i64, us: u64) -> Value {
    let ts = (chrono::Utc::now() - chrono::Duration::seconds(secs_ago))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (up, down) = if status == "up" { (1, 0) } else { (0, 1) };
    json!({
        "@timestamp": ts,
        "monitor": {"id": monitor, "name": monitor, "type": "http", "status": status, "duration": {"us": us}, "check_group": format!("{monitor}-{secs_ago}")},
        "summary": {"up": up, "down": down, "status": status},
        "url": {"full": format!("http://{monitor}:8000/health")}
    })
}

#[tokio::test]
async fn heartbeat_queries_and_aggregations() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    // Heartbeat's own template maps these as keyword; a test seeds it the same way.
    c.put(format!("{url}/_index_template/heartbeat"))
        .json(&json!({"index_patterns": ["heartbeat-*"], "priority": 150, "data_stream": {}, "template": {"mappings": {"dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}]}}}))
        .send()
        .await
        .unwrap();
    let mut body = String::new();
    for (i, (m, s, us)) in [
        ("payment", "down", 900),
        ("payment", "down", 800),
        ("payment", "up", 100),
        ("loan", "up", 200),
        ("loan", "up", 400),
    ]
    .iter()
    .enumerate()
    {
        body += &format!(
            "{}\n{}\n",
            json!({"create": {"_index": "heartbeat-9.2.1"}}),
            heartbeat_doc(m, s, (i as i64) * 10 + 1, *us)
        );
    }
    let (_, v) = bulk(&c, &url, &body).await;
    assert_eq!(v["errors"], false, "{v}");
    c.post(format!("{url}/heartbeat-*/_refresh"))
        .send()
        .await
        .unwrap();
    let q = json!({
        "size": 0,
        "query": {"bool": {"filter": [{"range": {"@timestamp": {"gte": "now-5m"}}}, {"exists": {"field": "summary"}}]}},
        "aggs": {
            "by_monitor": {
                "terms": {"field": "monitor.id", "size": 10},
                "aggs": {
                    "latest": {"top_hits": {"size": 2, "sort": [{"@timestamp": {"order": "desc"}}], "_source": ["monitor.status", "@timestamp"]}},
                    "p95": {"percentiles": {"field": "monitor.duration.us", "percents": [95]}},
                    "avg_us": {"avg": {"field": "monitor.duration.us"}},
                    "over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"}}
                }
            }
        }
    });
    let v: Value = c
        .post(format!("{url}/heartbeat-*/_search"))
        .json(&q)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["hits"]["total"]["value"], 5, "{v}");
    let buckets = v["aggregations"]["by_monitor"]["buckets"]
        .as_array()
        .unwrap();
    assert_eq!(buckets[0]["key"], "payment");
    assert_eq!(buckets[0]["doc_count"], 3);
    let latest = buckets[0]["latest"]["hits"]["hits"].as_array().unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[0]["_source"]["monitor"]["status"], "down");
    assert!(latest[0]["_source"].get("url").is_none());
    assert_eq!(buckets[1]["avg_us"]["value"], 300.0);
    assert!(buckets[0]["p95"]["values"]["95.0"].as_f64().unwrap() > 800.0);
    let count: Value = c
        .post(format!("{url}/heartbeat-9.2.1/_count"))
        .json(&json!({"query": {"term": {"monitor.status": "down"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 2);
    let v: Value = c
        .post(format!("{url}/heartbeat-*/_search"))
        .json(&json!({"size": 1, "sort": [{"monitor.duration.us": "desc"}], "query": {"match_all": {}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["hits"]["hits"][0]["_source"]["monitor"]["duration"]["us"],
        900
    );
    server.shutdown().await;
}

#[tokio::test]
async fn blackhole_answers_without_storing_and_dedups_ids() {
    let (server, c) = start(ServerConfig::default().blackhole(true)).await;
    let body = create(
        "logs-x-default",
        "1",
        json!({"@timestamp": "2026-11-26T10:00:00Z"}),
    ) + &create("logs-x-default", "2", json!({"not": "checked"}));
    let (_, v) = bulk(&c, &server.url(), &body).await;
    assert_eq!(v["errors"], false);
    assert!(v["items"][0]["create"]["_index"]
        .as_str()
        .unwrap()
        .starts_with(".ds-logs-x-default-"));
    let (_, v) = bulk(&c, &server.url(), &body).await;
    assert_eq!(v["errors"], true);
    assert_eq!(v["items"][1]["create"]["status"], 409);
    assert_eq!(server.count("logs-x-default"), 0);
    assert_eq!(server.blackhole_counts()["logs-x-default"], 2);
    server.shutdown().await;
}

#[test]
fn threaded_start_serves_blocking_clients() {
    let server = EsTestServer::start_in_thread(ServerConfig::default()).unwrap();
    let url = server.url();
    let out = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { reqwest::get(url).await.map(|r| r.status().as_u16()) })
    })
    .join()
    .unwrap()
    .unwrap();
    assert_eq!(out, 200);
}

#[tokio::test]
async fn templates_read_back_by_name_and_pattern_and_missing_names_are_404() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    let put = |path: &str, body: Value| {
        let req = c.put(format!("{url}{path}")).json(&body);
        async move { req.send().await.expect("answer").status().as_u16() }
    };
    let comp = json!({"template": {"mappings": {"properties": {"a": {"type": "keyword"}}}}});
    assert_eq!(
        put("/_component_template/didban-a", comp.clone()).await,
        200
    );
    let index = json!({"index_patterns": ["logs-a-*"], "priority": 250, "data_stream": {}, "composed_of": ["didban-a"]});
    assert_eq!(put("/_index_template/didban-a", index).await, 200);
    let get = |path: String| {
        let req = c.get(format!("{url}{path}"));
        async move {
            let r = req.send().await.expect("answer");
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    for (kind, item) in [
        ("_component_template", "component_template"),
        ("_index_template", "index_template"),
    ] {
        let list = format!("{kind}s").trim_start_matches('_').to_string();
        let (s, v) = get(format!("/{kind}/didban-a")).await;
        assert_eq!(s, 200, "{kind}");
        assert_eq!(v[&list][0]["name"], "didban-a", "{v}");
        assert!(v[&list][0][item].is_object(), "{v}");
        let (s, v) = get(format!("/{kind}/nomatch-*")).await;
        assert_eq!(
            (s, v[&list].as_array().map(Vec::len)),
            (200, Some(0)),
            "{kind}: a pattern matching nothing"
        );
        let (s, v) = get(format!("/{kind}/missing")).await;
        assert_eq!(s, 404, "{kind}");
        assert_eq!(v["error"]["type"], "resource_not_found_exception");
        let head = |name: &str| c.head(format!("{url}/{kind}/{name}")).send();
        assert_eq!(head("didban-a").await.expect("answer").status(), 200);
        assert_eq!(head("missing").await.expect("answer").status(), 404);
    }
    assert_eq!(
        comp,
        get("/_component_template/didban-a".into()).await.1["component_templates"][0]
            ["component_template"]
    );
}

#[tokio::test]
async fn rollover_adds_a_generation_and_ids_repeat_only_across_backing_indices() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    let ds = "logs-roll-default";
    let doc = json!({"@timestamp": "2026-11-26T10:00:00Z", "message": "m"});
    let (_, r) = bulk(&c, &url, &create(ds, "same", doc.clone())).await;
    assert_eq!(r["items"][0]["create"]["status"], 201);
    // Before a rollover the id is in the write index: 409.
    let (_, r) = bulk(&c, &url, &create(ds, "same", doc.clone())).await;
    assert_eq!(r["items"][0]["create"]["status"], 409);
    assert_eq!(
        r["items"][0]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );

    let r = c
        .post(format!("{url}/{ds}/_rollover"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["acknowledged"], true);
    assert_eq!(body["rolled_over"], true);
    assert_eq!(body["dry_run"], false);
    let new_index = body["new_index"].as_str().unwrap().to_string();
    assert!(new_index.starts_with(".ds-logs-roll-default-") && new_index.ends_with("-000002"));

    let got: Value = c
        .get(format!("{url}/_data_stream/{ds}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &got["data_streams"][0];
    assert_eq!(entry["generation"], 2);
    assert_eq!(entry["indices"].as_array().unwrap().len(), 2);
    assert_eq!(entry["indices"][1]["index_name"], new_index.as_str());

    // After the rollover the same id is stored a second time.
    let (_, r) = bulk(&c, &url, &create(ds, "same", doc.clone())).await;
    assert_eq!(r["items"][0]["create"]["status"], 201);
    assert_eq!(r["items"][0]["create"]["_index"], new_index.as_str());
    let count: Value = c
        .get(format!("{url}/{ds}/_count"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 2);
    let hits: Value = c
        .post(format!("{url}/{ds}/_search"))
        .json(&json!({"query": {"ids": {"values": ["same"]}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut indices: Vec<&str> = hits["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_index"].as_str().unwrap())
        .collect();
    indices.sort_unstable();
    assert_eq!(indices.len(), 2);
    assert_ne!(indices[0], indices[1]);
    assert!(indices.contains(&new_index.as_str()));

    // The library control surface rolls over too.
    assert!(server.rollover(ds).unwrap().ends_with("-000003"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_same_failing_document_twice_makes_two_failure_documents() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    server.faults().fail_mapping_next_items(2);
    let doc = json!({"@timestamp": "2026-11-26T10:00:00Z", "message": "m"});
    let body = format!(
        "{}{}",
        create("logs-fs-default", "dup", doc.clone()),
        create("logs-fs-default", "dup", doc)
    );
    let (_, r) = bulk(&c, &url, &body).await;
    assert_eq!(r["items"][0]["create"]["failure_store"], "used");
    assert_eq!(r["items"][1]["create"]["failure_store"], "used");
    assert_eq!(server.count("logs-fs-default::failures"), 2);
    server.shutdown().await;
}

async fn search(c: &reqwest::Client, url: &str, target: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(format!("{url}/{target}/_search?ignore_unavailable=true"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_ids_search_over_a_data_stream_sees_every_backing_index_without_sources() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    let ds = "logs-look-default";
    let doc = json!({"@timestamp": "2026-11-26T10:00:00Z", "message": "m"});
    bulk(&c, &url, &create(ds, "a", doc.clone())).await;
    server.rollover(ds).unwrap();
    bulk(&c, &url, &create(ds, "b", doc.clone())).await;
    let (status, r) = search(
        &c,
        &url,
        ds,
        json!({"query": {"ids": {"values": ["a", "b", "c"]}}, "_source": false, "size": 3, "track_total_hits": false}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let hits = r["hits"]["hits"].as_array().unwrap();
    let mut ids: Vec<&str> = hits.iter().map(|h| h["_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a", "b"], "both generations are searched");
    assert!(hits.iter().all(|h| h.get("_source").is_none()), "{r}");
    assert_eq!(r["_shards"]["failed"], 0);
    assert_eq!(r["timed_out"], false);
    assert!(r["hits"].get("total").is_none(), "track_total_hits: false");
    // A data stream that does not exist yet holds nothing.
    let (status, r) = search(
        &c,
        &url,
        "logs-never-default",
        json!({"query": {"ids": {"values": ["a"]}}}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["hits"]["hits"].as_array().unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_failures_selector_search_finds_failure_documents_by_their_original_id() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    let ds = "logs-fsl-default";
    let doc = json!({"@timestamp": "2026-11-26T10:00:00Z", "message": "m"});
    server.faults().fail_mapping_next_items(1);
    let (_, r) = bulk(&c, &url, &create(ds, "orig-1", doc.clone())).await;
    assert_eq!(r["items"][0]["create"]["failure_store"], "used");
    bulk(&c, &url, &create(ds, "ok-2", doc.clone())).await;
    // Not in the backing indices, under either id.
    let (_, r) = search(
        &c,
        &url,
        ds,
        json!({"query": {"ids": {"values": ["orig-1"]}}}),
    )
    .await;
    assert!(r["hits"]["hits"].as_array().unwrap().is_empty(), "{r}");
    let (status, r) = search(
        &c,
        &url,
        &format!("{ds}::failures"),
        json!({"query": {"terms": {"document.id": ["orig-1", "ok-2"]}}, "_source": ["document.id"], "size": 2}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let hits = r["hits"]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{r}");
    assert_ne!(
        hits[0]["_id"], "orig-1",
        "a failure document has an id of its own"
    );
    assert_eq!(hits[0]["_source"], json!({"document": {"id": "orig-1"}}));
    assert!(hits[0]["_index"]
        .as_str()
        .unwrap()
        .starts_with(".fs-logs-fsl-default-"));
    // The failure store's fixed mapping: the original id is a keyword.
    let mapping: Value = c
        .get(format!("{url}/{}", hits[0]["_index"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let index = mapping.as_object().unwrap().values().next().unwrap();
    assert_eq!(
        index["mappings"]["properties"]["document"]["properties"]["id"]["type"], "keyword",
        "{mapping}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_lost_response_is_executed_but_never_answered() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    let ds = "logs-lost-default";
    let doc = json!({"@timestamp": "2026-11-26T10:00:00Z", "message": "m"});
    server.faults().lose_next_responses(1);
    let r = c
        .post(format!("{url}/_bulk"))
        .header("content-type", NDJSON)
        .body(create(ds, "x", doc.clone()))
        .send()
        .await;
    assert!(r.is_err(), "no answer: {r:?}");
    assert_eq!(server.count(ds), 1, "the request was executed");
    assert_eq!(server.dropped_connections(), 1);
    let (_, r) = bulk(&c, &url, &create(ds, "x", doc)).await;
    assert_eq!(
        r["items"][0]["create"]["status"], 409,
        "the next one is answered"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_search_over_no_index_answers_without_aggregations() {
    // Elasticsearch's empty response: a pattern that matches nothing (allow_no_indices,
    // the default) searches no shard and renders no `aggregations`, even when asked.
    let (server, c) = start(ServerConfig::default()).await;
    let r = c
        .post(format!(
            "{}/heartbeat-*/_search?allow_no_indices=true&ignore_unavailable=true",
            server.url()
        ))
        .json(&json!({"size": 0, "aggs": {"monitors": {"terms": {"field": "monitor.id"}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v.get("aggregations").is_none(), "{v}");
    assert_eq!(v["hits"]["total"]["value"], 0);
    assert_eq!(v["hits"]["hits"], json!([]));
    assert_eq!(v["_shards"]["total"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_component_template_reads_back_with_normalised_settings() {
    let (server, c) = start(ServerConfig::default()).await;
    let url = server.url();
    let r = c
        .put(format!("{url}/_component_template/replicas"))
        .json(&json!({"template": {"settings": {"number_of_replicas": 0, "index": {"lifecycle": {"name": "p"}}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = c
        .get(format!("{url}/_component_template/replicas"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["component_templates"][0]["component_template"]["template"]["settings"],
        json!({"index": {"number_of_replicas": "0", "lifecycle": {"name": "p"}}})
    );
    server.shutdown().await;
}
