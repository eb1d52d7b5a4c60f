//! Delivery into a real Elasticsearch: runs when `ELASTICSEARCH_URL` is set (the compose
//! stack gives one: see the README), and is skipped with a message otherwise.
//!
//! Uses `ELASTICSEARCH_USERNAME`/`ELASTICSEARCH_PASSWORD` or `ELASTICSEARCH_API_KEY` and
//! `ELASTICSEARCH_CA_CERT` like the shipper. Writes into a namespace of its own and deletes
//! its data streams at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, write_lines};

struct Real {
    url: String,
    client: reqwest::blocking::Client,
    auth: Vec<(String, String)>,
}

fn real() -> Option<Real> {
    let Ok(url) = std::env::var("ELASTICSEARCH_URL") else {
        // Written to the stderr handle, not with eprintln!, so the test harness shows it.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED real-Elasticsearch test: set ELASTICSEARCH_URL (and ELASTICSEARCH_USERNAME/PASSWORD or API_KEY, ELASTICSEARCH_CA_CERT) to run it"
        );
        return None;
    };
    let url = url
        .split(',')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30));
    if let Ok(ca) = std::env::var("ELASTICSEARCH_CA_CERT") {
        let pem = std::fs::read(&ca).expect("read ELASTICSEARCH_CA_CERT");
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"));
    }
    let mut auth = Vec::new();
    for key in [
        "ELASTICSEARCH_USERNAME",
        "ELASTICSEARCH_PASSWORD",
        "ELASTICSEARCH_API_KEY",
        "ELASTICSEARCH_CA_CERT",
    ] {
        if let Ok(v) = std::env::var(key) {
            auth.push((key.to_string(), v));
        }
    }
    Some(Real {
        url,
        client: builder.build().expect("HTTP client"),
        auth,
    })
}

impl Real {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        let get = |k: &str| {
            self.auth
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        if let Some(key) = get("ELASTICSEARCH_API_KEY") {
            req = req.header("Authorization", format!("ApiKey {key}"));
        } else if let Some(user) = get("ELASTICSEARCH_USERNAME") {
            req = req.basic_auth(user, get("ELASTICSEARCH_PASSWORD"));
        }
        req
    }

    fn count(&self, expr: &str) -> u64 {
        let _ = self
            .request(reqwest::Method::POST, &format!("/{expr}/_refresh"))
            .send();
        self.request(reqwest::Method::GET, &format!("/{expr}/_count"))
            .send()
            .ok()
            .and_then(|r| r.json::<serde_json::Value>().ok())
            .and_then(|v| v["count"].as_u64())
            .unwrap_or(0)
    }

    fn distinct_messages(&self, expr: &str) -> u64 {
        let body = serde_json::json!({
            "size": 0,
            "aggs": { "m": { "cardinality": { "field": "log.offset", "precision_threshold": 40000 } } }
        });
        self.request(reqwest::Method::POST, &format!("/{expr}/_search"))
            .json(&body)
            .send()
            .ok()
            .and_then(|r| r.json::<serde_json::Value>().ok())
            .and_then(|v| v["aggregations"]["m"]["value"].as_u64())
            .unwrap_or(0)
    }
}

fn start_shipper(real: &Real, dir: &std::path::Path, namespace: &str) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
    cmd.env_clear()
        .env("ELASTICSEARCH_URL", &real.url)
        .env("SHIPPER_PATHS", format!("{}/logs/*.log*", dir.display()))
        .env("SHIPPER_DATA_DIR", dir.join("data"))
        .env("SHIPPER_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("SHIPPER_NAMESPACE", namespace)
        .env("SHIPPER_BATCH_MAX_WAIT", "50ms")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in &real.auth {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start the shipper")
}

#[test]
fn lines_reach_a_real_elasticsearch_exactly_once_across_a_kill_9() {
    let Some(real) = real() else {
        return;
    };
    let namespace = format!("t{}", std::process::id());
    let expr = format!("logs-*-{namespace}");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
    let log = dir.path().join("logs/payment.log");
    write_lines(&log, "payment", 0, 3000);
    let mut shipper = start_shipper(&real, dir.path(), &namespace);
    std::thread::sleep(Duration::from_millis(700));
    let _ = shipper.kill();
    let _ = shipper.wait();
    write_lines(&log, "payment", 3000, 2000);
    let mut shipper = start_shipper(&real, dir.path(), &namespace);
    let deadline = Instant::now() + Duration::from_secs(120);
    while real.count(&expr) < 5000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(2));
    let count = real.count(&expr);
    let distinct = real.distinct_messages(&expr);
    let _ = shipper.kill();
    let _ = shipper.wait();
    let _ = real
        .request(reqwest::Method::DELETE, &format!("/_data_stream/{expr}"))
        .send();
    assert_eq!(count, 5000, "every line once");
    assert_eq!(distinct, 5000, "one document per line offset");
}
