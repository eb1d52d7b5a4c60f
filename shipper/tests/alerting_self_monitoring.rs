//! The rules on the shipper itself, end to end: the real `shipper` binary, the
//! Elasticsearch-compatible test server with faults, and a webhook and a Slack receiver.
//!
//! - Elasticsearch down from the start: "Elasticsearch unreachable" fires (alerting starts
//!   with the process, not once Elasticsearch answers) and resolves when it is back.
//! - Every `_bulk` answered 429: "Shipping stalled" fires, and resolves once lines go through.
//! - A document refused for good: "Dead letters written" says how many and where.
//! - Heartbeat's newest check too old: "Heartbeat silent" fires; a fresh check resolves it.
//! - Across a restart: a firing alert is not announced again, and its resolution (after the
//!   restart, or while the shipper was down) is sent once.
//!
//! Every threshold is a setting, set to a second or two here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

#[path = "../../alerting/tests/peers/mod.rs"]
mod peers;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use peers::{wait_for, HttpReceiver};
use serde_json::{json, Value};
use support::{es, install_heartbeat_template, write_lines, Setup};

/// A webhook and a Slack receiver, and the shipper configured with only the rules asked for.
struct Receiver(HttpReceiver);

impl Receiver {
    fn start() -> Receiver {
        Receiver(HttpReceiver::start())
    }

    /// `setup` with both channels and no default rule: each test turns on its own.
    fn configure(&self, setup: Setup) -> Setup {
        setup
            .env("ALERT_WEBHOOK", &self.0.url("/hook"))
            .env("ALERT_SLACK", &self.0.url("/services/T1/B2/SECRETslack"))
            .env("ALERT_DEFAULT_RULES", "false")
    }

    fn hooks(&self) -> Vec<Value> {
        self.0
            .received("/hook")
            .into_iter()
            .map(|r| r.body)
            .collect()
    }

    /// (rule, status) of every webhook message, in order.
    fn states(&self) -> Vec<(String, String)> {
        self.hooks()
            .iter()
            .map(|h| {
                (
                    h["rule"]["name"].as_str().unwrap_or("").to_string(),
                    h["status"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    fn slack_titles(&self) -> Vec<String> {
        self.0
            .received("/services/")
            .iter()
            .map(|r| r.body["text"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn wait_for_states(&self, what: &str, timeout: Duration, expected: &[(&str, &str)]) {
        wait_for(what, timeout, || {
            let states = self.states();
            states.len() >= expected.len()
        });
        let states = self.states();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(r, s)| (r.to_string(), s.to_string()))
            .collect();
        assert_eq!(states, expected, "{what}");
    }
}

fn pair(rule: &'static str, status: &'static str) -> (&'static str, &'static str) {
    (rule, status)
}

#[test]
fn elasticsearch_down_from_the_start_fires_and_resolves_when_it_answers() {
    let server = es();
    server.stop_listening();
    let receiver = Receiver::start();
    let setup = receiver
        .configure(Setup::new(&server.url()))
        .env("ALERT_ELASTICSEARCH_UNREACHABLE", "2s")
        // The uptime poll runs too: while Elasticsearch is away it must stay quiet.
        .env("ALERT_UPTIME_INTERVAL", "200ms");
    let mut shipper = setup.start();
    let log = setup.logs().join("payment.log");
    write_lines(&log, "payment", 0, 20);

    receiver.wait_for_states(
        "the unreachable alert",
        Duration::from_secs(20),
        &[pair("Elasticsearch unreachable", "firing")],
    );
    let hook = &receiver.hooks()[0];
    assert_eq!(hook["rule"]["source"], "shipper");
    assert_eq!(hook["group"]["field"], "shipper");
    assert_eq!(hook["group"]["value"], "test-host");
    assert!(
        hook["text"]
            .as_str()
            .unwrap()
            .contains("no answer from Elasticsearch for 2s"),
        "{hook}"
    );
    assert_eq!(
        receiver.slack_titles(),
        ["[FIRING] Elasticsearch unreachable: shipper test-host"]
    );
    assert_eq!(server.count("logs-*"), 0);

    server.resume_listening().expect("resume");
    receiver.wait_for_states(
        "its resolution",
        Duration::from_secs(20),
        &[
            pair("Elasticsearch unreachable", "firing"),
            pair("Elasticsearch unreachable", "resolved"),
        ],
    );
    wait_for("every line indexed", Duration::from_secs(60), || {
        server.count("logs-*") == 20
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(receiver.states().len(), 2, "{:?}", receiver.states());

    let status = shipper.terminate(Duration::from_secs(15));
    assert!(matches!(status, Some(s) if s.success()), "{status:?}");
    let own_log = shipper.own_log();
    assert!(
        !own_log.contains("cannot read Heartbeat's data"),
        "the uptime poll was noisy while Elasticsearch was away:\n{own_log}"
    );
    assert!(!own_log.contains("SECRET"), "{own_log}");
}

#[test]
fn bulk_requests_refused_with_429_stall_shipping_and_it_resolves_when_lines_go_through() {
    let server = es();
    server.faults().fail_next_requests(1_000_000, 429);
    let receiver = Receiver::start();
    let setup = receiver
        .configure(Setup::new(&server.url()))
        .env("ALERT_SHIPPING_STALLED", "2s")
        .env("ALERT_ELASTICSEARCH_UNREACHABLE", "2s");
    let shipper = setup.start();
    write_lines(&setup.logs().join("payment.log"), "payment", 0, 10);

    receiver.wait_for_states(
        "the stalled alert",
        Duration::from_secs(20),
        &[pair("Shipping stalled", "firing")],
    );
    let text = receiver.hooks()[0]["text"].as_str().unwrap().to_string();
    assert!(text.contains("oldest unacknowledged line waited"), "{text}");
    assert!(text.contains("429"), "the last error is shown: {text}");

    server.faults().clear();
    wait_for("every line indexed", Duration::from_secs(60), || {
        server.count("logs-*") == 10
    });
    receiver.wait_for_states(
        "its resolution",
        Duration::from_secs(10),
        &[
            pair("Shipping stalled", "firing"),
            pair("Shipping stalled", "resolved"),
        ],
    );
    // Elasticsearch answered all along (429 is an answer): never "unreachable".
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(receiver.states().len(), 2, "{:?}", receiver.states());
    drop(shipper);
}

#[test]
fn a_dead_letter_fires_with_how_many_and_where_and_resolves_after_the_quiet_period() {
    let server = es();
    server.faults().fail_next_items(2, 400);
    let receiver = Receiver::start();
    let setup = receiver
        .configure(Setup::new(&server.url()))
        .env("ALERT_DEAD_LETTERS_RESOLVE_AFTER", "2s");
    let shipper = setup.start();
    write_lines(&setup.logs().join("payment.log"), "payment", 0, 5);

    receiver.wait_for_states(
        "the dead-letter alert",
        Duration::from_secs(20),
        &[pair("Dead letters written", "firing")],
    );
    let hook = &receiver.hooks()[0];
    let dir = setup.data().join("dead-letters");
    assert_eq!(
        hook["value"],
        format!(
            "2 document(s) written to the dead-letter file in {}",
            dir.display()
        ),
        "{hook}"
    );
    assert_eq!(hook["count"], 2);
    receiver.wait_for_states(
        "its resolution after 2 s without any",
        Duration::from_secs(10),
        &[
            pair("Dead letters written", "firing"),
            pair("Dead letters written", "resolved"),
        ],
    );
    assert_eq!(receiver.hooks()[1]["total"], 2);
    wait_for("the other lines indexed", Duration::from_secs(10), || {
        server.count("logs-*") == 3
    });
    drop(shipper);
}

/// One final Heartbeat 9.2 check event of an up HTTP monitor, at `at`.
fn heartbeat_check(es_url: &str, at: DateTime<Utc>) {
    let ts = at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let event = json!({
        "@timestamp": ts,
        "agent": {"type": "heartbeat", "version": "9.2.1"},
        "monitor": {"id": "payment-health", "name": "payment", "type": "http", "status": "up",
                    "duration": {"us": 2315}},
        "summary": {"up": 1, "down": 0, "status": "up", "attempt": 1, "max_attempts": 2,
                    "final_attempt": true},
        "url": {"full": "http://payment:8002/health"}
    });
    let body = format!("{{\"create\":{{}}}}\n{event}\n");
    let resp: Value = reqwest::blocking::Client::new()
        .post(format!("{es_url}/heartbeat-9.2.1/_bulk?refresh=true"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(resp["errors"], false, "{resp}");
}

#[test]
fn heartbeat_silent_fires_on_stale_checks_and_resolves_on_a_fresh_one() {
    let server = es();
    let url = server.url();
    install_heartbeat_template(&url);
    // Heartbeat wrote, then stopped five minutes ago.
    heartbeat_check(&url, Utc::now() - chrono::Duration::minutes(5));
    let receiver = Receiver::start();
    let setup = receiver
        .configure(Setup::new(&url))
        .env("ALERT_UPTIME_INTERVAL", "200ms")
        .env("ALERT_HEARTBEAT_SILENT", "2s");
    let shipper = setup.start();

    receiver.wait_for_states(
        "the Heartbeat silent alert",
        Duration::from_secs(20),
        &[pair("Heartbeat silent", "firing")],
    );
    let hook = &receiver.hooks()[0];
    assert_eq!(hook["rule"]["source"], "shipper");
    assert!(
        hook["value"]
            .as_str()
            .unwrap()
            .starts_with("newest check 5m"),
        "{hook}"
    );
    assert!(hook["kibana_url"]
        .as_str()
        .unwrap()
        .ends_with("/app/dashboards#/view/didban-uptime"));

    heartbeat_check(&url, Utc::now());
    receiver.wait_for_states(
        "its resolution",
        Duration::from_secs(10),
        &[
            pair("Heartbeat silent", "firing"),
            pair("Heartbeat silent", "resolved"),
        ],
    );
    drop(shipper);
}

/// The state file of a setup, parsed.
fn saved_state(setup: &Setup) -> Value {
    let text = std::fs::read_to_string(setup.data().join("alerts/state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_firing_alert_is_not_announced_again_after_a_restart_and_its_resolution_is_sent_once() {
    let server = es();
    server.stop_listening();
    let receiver = Receiver::start();
    let setup = receiver
        .configure(Setup::new(&server.url()))
        .env("ALERT_ELASTICSEARCH_UNREACHABLE", "1s");
    let mut first = setup.start();
    receiver.wait_for_states(
        "the unreachable alert",
        Duration::from_secs(20),
        &[pair("Elasticsearch unreachable", "firing")],
    );
    let status = first.terminate(Duration::from_secs(15));
    assert!(matches!(status, Some(s) if s.success()), "{status:?}");
    let state = saved_state(&setup);
    assert_eq!(state["version"], "1");
    assert_eq!(state["alerts"][0]["rule"], "Elasticsearch unreachable");

    // Still down after the restart: it goes on firing, silently.
    let second = setup.start();
    wait_for("alerting started again", Duration::from_secs(20), || {
        second.own_log().contains("alerting on")
    });
    // Twice the threshold, and more: a new engine would have announced it by now.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        receiver.states(),
        [(
            "Elasticsearch unreachable".to_string(),
            "firing".to_string()
        )],
        "announced again after the restart"
    );
    assert!(second.own_log().contains("taken back"));

    server.resume_listening().expect("resume");
    receiver.wait_for_states(
        "its resolution after the restart",
        Duration::from_secs(20),
        &[
            pair("Elasticsearch unreachable", "firing"),
            pair("Elasticsearch unreachable", "resolved"),
        ],
    );
    let hooks = receiver.hooks();
    assert_eq!(
        hooks[1]["starts_at"], hooks[0]["starts_at"],
        "the same alert, resolved"
    );
    wait_for("the state saved without it", Duration::from_secs(5), || {
        saved_state(&setup)["alerts"] == json!([])
    });
    drop(second);

    // A restart after that: nothing to say.
    let third = setup.start();
    wait_for("the third start", Duration::from_secs(20), || {
        third.own_log().contains("alerting on")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.states().len(), 2, "{:?}", receiver.states());
}

#[test]
fn an_alert_that_resolved_while_the_shipper_was_down_gets_its_resolution_at_the_next_start() {
    let server = es();
    server.stop_listening();
    let receiver = Receiver::start();
    let setup = receiver
        .configure(Setup::new(&server.url()))
        .env("ALERT_ELASTICSEARCH_UNREACHABLE", "1s");
    let mut first = setup.start();
    receiver.wait_for_states(
        "the unreachable alert",
        Duration::from_secs(20),
        &[pair("Elasticsearch unreachable", "firing")],
    );
    // kill -9: the state was saved when the alert fired, not only at shutdown.
    first.kill9();

    server.resume_listening().expect("resume");
    let second = setup.start();
    receiver.wait_for_states(
        "the resolution at the next start",
        Duration::from_secs(20),
        &[
            pair("Elasticsearch unreachable", "firing"),
            pair("Elasticsearch unreachable", "resolved"),
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        receiver.states().len(),
        2,
        "sent once: {:?}",
        receiver.states()
    );
    drop(second);
}
