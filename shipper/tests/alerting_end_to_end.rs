//! Alerting end to end: the real `shipper` binary, real log files, the Elasticsearch-compatible
//! test server, and every channel configured to a real local peer.
//!
//! - A burst of SystemErrors in a service's log gives each channel exactly one firing
//!   message, then exactly one resolved message once the window has passed.
//! - Heartbeat documents (as Heartbeat 9.2 writes them, retried attempts included) in the
//!   test server: a monitor down for K checks fires once; up again resolves once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

#[path = "../../alerting/tests/peers/mod.rs"]
mod peers;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use peers::{wait_for, HttpReceiver, Mail, SmtpPeer};
use serde_json::{json, Value};
use support::{es, install_heartbeat_template, Setup};

const TOKEN: &str = "987654:SECRETbotToken";

fn tehran_now() -> String {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Tehran)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// Appends lines in the services' format.
fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn service_line(service: &str, category: &str, tx: &str, error: Option<&str>) -> String {
    let level = if category == "ApplicationInfo" {
        "INFO"
    } else {
        "ERROR"
    };
    let mut v = json!({
        "@timestamp": tehran_now(),
        "log.level": level,
        "log.category": category,
        "service.name": service,
        "message": format!("GET /system-error -> {category}"),
        "transaction.id": tx,
    });
    if let Some(e) = error {
        v["error.message"] = json!(e);
        v["error.type"] = json!("DependencyUnavailable");
    }
    v.to_string()
}

/// What each channel has received, as (status word, full text) pairs in order.
struct Channels {
    http: HttpReceiver,
    smtp: Option<SmtpPeer>,
}

impl Channels {
    fn start() -> Channels {
        let smtp = SmtpPeer::start("didban", "mail-SECRET");
        if smtp.is_none() {
            eprintln!("the e-mail channel is left out of this run");
        }
        Channels {
            http: HttpReceiver::start(),
            smtp,
        }
    }

    fn configure(&self, setup: Setup) -> Setup {
        let mut setup = setup
            .env(
                "ALERT_TELEGRAM",
                &format!("telegram://{TOKEN}@telegram?chats=-100200300"),
            )
            .env("ALERT_TELEGRAM_API_URL", &self.http.url(""))
            .env("ALERT_SLACK", &self.http.url("/services/T1/B2/SECRETslack"))
            .env("ALERT_WEBHOOK", &self.http.url("/hook"))
            .env("KIBANA_URL", "http://kibana.test:5601")
            .env("LOG_TIMEZONE", "Asia/Tehran");
        if let Some(smtp) = &self.smtp {
            setup = setup.env(
                "ALERT_EMAIL",
                &format!(
                    "smtp://didban:mail-SECRET@127.0.0.1:{}/?from=didban@example.com&to=ops@example.com,dev@example.com&starttls=off",
                    smtp.port
                ),
            );
        }
        setup
    }

    fn telegram(&self) -> Vec<String> {
        self.http
            .received("/bot")
            .iter()
            .map(|r| r.body["text"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn slack(&self) -> Vec<String> {
        self.http
            .received("/services/")
            .iter()
            .map(|r| r.body["text"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn webhook(&self) -> Vec<Value> {
        self.http
            .received("/hook")
            .into_iter()
            .map(|r| r.body)
            .collect()
    }

    fn mails(&self) -> Vec<Mail> {
        self.smtp.as_ref().map(SmtpPeer::mails).unwrap_or_default()
    }

    fn counts(&self) -> [usize; 4] {
        let mails = match &self.smtp {
            Some(_) => self.mails().len(),
            None => usize::MAX,
        };
        [
            self.telegram().len(),
            self.slack().len(),
            self.webhook().len(),
            mails,
        ]
    }

    fn all_have(&self, n: usize) -> bool {
        self.counts().iter().all(|&c| c == n || c == usize::MAX)
    }
}

/// A shipper setup with every channel configured and one rule: five SystemErrors within
/// `window` fire, one second below resolves.
fn burst_rule(es_url: &str, channels: &Channels, window: &str) -> Setup {
    let setup = Setup::new(es_url);
    let config = setup.dir.path().join("shipper.toml");
    std::fs::write(
        &config,
        format!(
            "[alerts]\ndefault_rules = false\n\n[[alerts.rules]]\nname = \"SystemError burst\"\ncategory = \"SystemError\"\nthreshold = 5\nwindow = \"{window}\"\nresolve_after = \"1s\"\n"
        ),
    )
    .unwrap();
    channels
        .configure(setup)
        .env("SHIPPER_CONFIG", config.to_str().unwrap())
}

#[test]
fn a_system_error_burst_gives_each_channel_one_firing_then_one_resolved_message() {
    let server = es();
    let channels = Channels::start();
    let setup = burst_rule(&server.url(), &channels, "2s");
    let mut shipper = setup.start();
    let log = setup.logs().join("payment.log");

    let mut lines = vec![service_line("payment", "ApplicationInfo", "tx-info", None)];
    for i in 0..6 {
        lines.push(service_line(
            "payment",
            "SystemError",
            &format!("tx-payment-{i}"),
            Some("bank gateway refused the connection"),
        ));
    }
    // Below the threshold for another service: no alert.
    for i in 0..2 {
        lines.push(service_line(
            "reservation",
            "SystemError",
            &format!("tx-reservation-{i}"),
            Some("cache timeout"),
        ));
    }
    append(&log, &lines);

    wait_for(
        "one firing message per channel",
        Duration::from_secs(30),
        || channels.all_have(1),
    );
    let telegram = channels.telegram();
    assert!(
        telegram[0].contains("[FIRING] SystemError burst: service payment"),
        "{}",
        telegram[0]
    );
    assert!(telegram[0].contains("(Asia/Tehran)"));
    assert!(telegram[0].contains("bank gateway refused the connection"));
    assert!(
        telegram[0].contains("<code>tx-payment-4</code>"),
        "{}",
        telegram[0]
    );
    assert!(telegram[0].contains("http://kibana.test:5601/app/discover#/"));
    assert!(channels.slack()[0].starts_with("[FIRING] SystemError burst: service payment"));
    let hook = &channels.webhook()[0];
    assert_eq!(hook["status"], "firing");
    assert_eq!(hook["group"]["value"], "payment");
    assert_eq!(hook["count"], 5);
    assert_eq!(hook["last_error"]["transaction_id"], "tx-payment-4");
    if let Some(mail) = channels.mails().first() {
        assert_eq!(mail.subject, "[FIRING] SystemError burst: service payment");
        assert_eq!(mail.rcpt_tos, vec!["ops@example.com", "dev@example.com"]);
        assert_eq!(mail.login.as_deref(), Some("didban"));
        assert!(
            mail.body.contains("Transaction: tx-payment-4"),
            "{}",
            mail.body
        );
    }

    wait_for(
        "one resolved message per channel",
        Duration::from_secs(30),
        || channels.all_have(2),
    );
    assert!(channels.telegram()[1].contains("[RESOLVED] SystemError burst: service payment"));
    assert!(channels.slack()[1].starts_with("[RESOLVED] SystemError burst: service payment"));
    let hook = &channels.webhook()[1];
    assert_eq!(hook["status"], "resolved");
    assert_eq!(hook["total"], 6);
    if let Some(mail) = channels.mails().get(1) {
        assert_eq!(
            mail.subject,
            "[RESOLVED] SystemError burst: service payment"
        );
    }
    // Nothing more: no flapping, no alert for the service below the threshold.
    std::thread::sleep(Duration::from_secs(2));
    assert!(channels.all_have(2), "{:?}", channels.counts());
    for r in channels.http.received("/bot") {
        assert_eq!(r.path, format!("/bot{TOKEN}/sendMessage"));
        assert_eq!(r.body["chat_id"], -100200300);
    }

    // Shipping went on as usual.
    wait_for("every line indexed", Duration::from_secs(10), || {
        server.count("logs-*") == lines.len()
    });
    assert_eq!(
        shipper.metric("shipper_alert_notifications_total"),
        Some(if channels.smtp.is_some() { 8.0 } else { 6.0 })
    );
    let status = shipper.terminate(Duration::from_secs(15));
    assert!(matches!(status, Some(s) if s.success()), "{status:?}");
    let own_log = shipper.own_log();
    assert!(
        !own_log.contains("SECRET"),
        "a secret reached the log:\n{own_log}"
    );
}

/// One Heartbeat 9.2 event of an HTTP monitor, as `heartbeat.yml` in this repository
/// configures them (explicit id, name, service.name, tags).
fn heartbeat_event(
    monitor: &str,
    status: &str,
    attempt: u32,
    final_attempt: bool,
    retry_group: &str,
    at: DateTime<Utc>,
) -> Value {
    let up = status == "up";
    let mut v = json!({
        "@timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "agent": {"type": "heartbeat", "version": "9.2.1", "name": "heartbeat", "id": "7b0d7f1e-5b8c-4c56-9d7e-2f1d2a9d1c11", "ephemeral_id": "c3b1c5d6-0f0e-4b8e-9c1a-8f5b2e7a4d22"},
        "ecs": {"version": "8.0.0"},
        "event": {"dataset": "http"},
        "monitor": {
            "id": format!("{monitor}-health"),
            "name": monitor,
            "type": "http",
            "status": status,
            "check_group": format!("{retry_group}-{attempt}"),
            "duration": {"us": if up { 2_315 } else { 5_001_873 }},
            "timespan": {"gte": at.to_rfc3339_opts(SecondsFormat::Millis, true), "lt": (at + chrono::Duration::seconds(10)).to_rfc3339_opts(SecondsFormat::Millis, true)}
        },
        "summary": {
            "up": u32::from(up), "down": u32::from(!up), "status": status,
            "attempt": attempt, "max_attempts": 2, "final_attempt": final_attempt, "retry_group": retry_group
        },
        "url": {"full": format!("http://{monitor}:8002/health"), "scheme": "http", "domain": monitor, "port": 8002, "path": "/health"},
        "service": {"name": monitor},
        "tags": ["didban"],
        "observer": {"hostname": "heartbeat", "name": "heartbeat"}
    });
    if up {
        v["http"] = json!({"response": {"status_code": 200, "mime_type": "application/json"}, "rtt": {"total": {"us": 2_100}}});
    } else {
        v["error"] = json!({"type": "io", "message": format!("Get \"http://{monitor}:8002/health\": dial tcp 172.18.0.7:8002: connect: connection refused")});
    }
    v
}

/// One check: an up check is one event; a down check is retried once (Heartbeat's default
/// `max_attempts: 2`), so it writes two events and only the second is final.
fn check(es_url: &str, monitor: &str, up: bool) {
    let now = Utc::now();
    let group = uuid_like(now);
    let events = if up {
        vec![heartbeat_event(monitor, "up", 1, true, &group, now)]
    } else {
        vec![
            heartbeat_event(
                monitor,
                "down",
                1,
                false,
                &group,
                now - chrono::Duration::milliseconds(20),
            ),
            heartbeat_event(monitor, "down", 2, true, &group, now),
        ]
    };
    let mut body = String::new();
    for e in events {
        body.push_str("{\"create\":{}}\n");
        body.push_str(&e.to_string());
        body.push('\n');
    }
    let client = reqwest::blocking::Client::new();
    let resp: Value = client
        .post(format!("{es_url}/heartbeat-9.2.1/_bulk?refresh=true"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(resp["errors"], false, "{resp}");
}

fn uuid_like(t: DateTime<Utc>) -> String {
    format!("{:x}", t.timestamp_nanos_opt().unwrap_or_default())
}

#[test]
fn a_monitor_down_for_three_checks_fires_once_and_resolves_once_when_up() {
    let server = es();
    let url = server.url();
    let channels = Channels::start();
    let setup = channels
        .configure(Setup::new(&url))
        .env("ALERT_UPTIME_INTERVAL", "200ms")
        .env("ALERT_UPTIME_DOWN_CHECKS", "3")
        .env("ALERT_LATENCY_THRESHOLD", "0s");
    // No Heartbeat index yet: the shipper waits quietly.
    let mut shipper = setup.start();
    wait_for(
        "a poll without Heartbeat data",
        Duration::from_secs(20),
        || {
            shipper
                .metric("shipper_alert_uptime_queries_total")
                .is_some_and(|v| v >= 2.0)
        },
    );

    install_heartbeat_template(&url);
    check(&url, "payment", true);
    check(&url, "reservation", true);
    check(&url, "payment", false);
    check(&url, "payment", false);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        channels.all_have(0),
        "two down checks (four events with the retries) are not three: {:?}",
        channels.counts()
    );

    check(&url, "payment", false);
    wait_for(
        "one firing message per channel",
        Duration::from_secs(20),
        || channels.all_have(1),
    );
    let hook = &channels.webhook()[0];
    assert_eq!(hook["status"], "firing");
    assert_eq!(hook["rule"]["name"], "Monitor down");
    assert_eq!(hook["rule"]["source"], "uptime");
    assert_eq!(hook["group"]["value"], "payment (payment-health)");
    assert_eq!(hook["count"], 3);
    assert_eq!(hook["url"], "http://payment:8002/health");
    assert!(hook["last_error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("connection refused"));
    assert!(hook["kibana_url"]
        .as_str()
        .unwrap_or("")
        .ends_with("/app/dashboards#/view/didban-uptime"));
    assert!(
        channels.telegram()[0].contains("[FIRING] Monitor down: monitor payment (payment-health)")
    );
    if let Some(mail) = channels.mails().first() {
        assert_eq!(
            mail.subject,
            "[FIRING] Monitor down: monitor payment (payment-health)"
        );
    }

    check(&url, "payment", false);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        channels.all_have(1),
        "still down: no new message {:?}",
        channels.counts()
    );

    check(&url, "payment", true);
    wait_for(
        "one resolved message per channel",
        Duration::from_secs(20),
        || channels.all_have(2),
    );
    let hook = &channels.webhook()[1];
    assert_eq!(hook["status"], "resolved");
    assert_eq!(hook["total"], 4);
    assert!(channels.slack()[1].starts_with("[RESOLVED] Monitor down: monitor payment"));
    std::thread::sleep(Duration::from_millis(1000));
    assert!(channels.all_have(2), "{:?}", channels.counts());

    let status = shipper.terminate(Duration::from_secs(15));
    assert!(matches!(status, Some(s) if s.success()), "{status:?}");
    let own_log = shipper.own_log();
    assert!(
        !own_log.contains("SECRET"),
        "a secret reached the log:\n{own_log}"
    );
    assert!(
        own_log.matches("no Heartbeat").count() <= 1,
        "a missing index is reported once:\n{own_log}"
    );
}

/// The whole path for real: the `payment` service fails to reach its card processor six
/// times, writes SystemError lines, the shipper reads them, and every channel gets exactly
/// one firing message naming the transaction id of the request that crossed the threshold,
/// then one resolved message.
#[test]
fn the_payment_service_s_system_errors_reach_every_channel_once() {
    let server = es();
    let channels = Channels::start();
    let setup = burst_rule(&server.url(), &channels, "3s");
    let shipper = setup.start();
    let payment = service_kit::testing::start_service(
        &support::service_binary("payment").to_string_lossy(),
        "payment",
        &setup.logs(),
        // Nothing listens there: every card payment is a real connection refusal.
        &[("PAYMENT_GATEWAY_URL", "http://127.0.0.1:9")],
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let client = reqwest::blocking::Client::new();
    let mut transactions = Vec::new();
    for _ in 0..6 {
        let response = client
            .get(payment.url("/system-error"))
            .send()
            .expect("payment answers");
        assert!(response.status().is_server_error(), "{}", response.status());
        transactions.push(
            response
                .headers()
                .get("x-transaction-id")
                .and_then(|v| v.to_str().ok())
                .expect("a transaction id header")
                .to_string(),
        );
    }
    // The alert fires on the fifth error (the threshold): its last error is that request's.
    let firing_tx = &transactions[4];

    wait_for(
        "one firing message per channel",
        Duration::from_secs(30),
        || channels.all_have(1),
    );
    let hook = &channels.webhook()[0];
    assert_eq!(hook["status"], "firing");
    assert_eq!(hook["group"]["value"], "payment");
    assert_eq!(hook["last_error"]["transaction_id"], firing_tx.as_str());
    assert!(channels.telegram()[0].contains(firing_tx.as_str()));
    assert!(channels.slack()[0].starts_with("[FIRING] SystemError burst: service payment"));
    if let Some(mail) = channels.mails().first() {
        assert_eq!(mail.subject, "[FIRING] SystemError burst: service payment");
    }
    wait_for(
        "one resolved message per channel",
        Duration::from_secs(30),
        || channels.all_have(2),
    );
    assert_eq!(channels.webhook()[1]["status"], "resolved");
    std::thread::sleep(Duration::from_secs(2));
    assert!(channels.all_have(2), "{:?}", channels.counts());
    // The service's lines were shipped too, into its data stream.
    wait_for(
        "the SystemError lines indexed",
        Duration::from_secs(10),
        || {
            server
                .documents("logs-payment-default")
                .iter()
                .filter(|d| d.source["log.category"] == "SystemError")
                .count()
                >= 6
        },
    );
    drop(payment);
    drop(shipper);
}

/// The alert rules see each line when it is written, whatever the state of Elasticsearch:
/// with the output down and reading paused by the memory budget (far more lines written
/// than it holds), a burst written after the backlog still fires and resolves on every
/// channel, and once Elasticsearch is back every line is indexed once.
#[test]
fn a_burst_during_an_outage_with_reading_paused_fires_and_resolves() {
    let server = es();
    let channels = Channels::start();
    let setup = burst_rule(&server.url(), &channels, "3s")
        .env("SHIPPER_MEMORY_BUDGET", "256KiB")
        .env("SHIPPER_BATCH_MAX_BYTES", "64KiB");
    let shipper = setup.start();
    let log = setup.logs().join("payment.log");
    append(
        &log,
        &[service_line("payment", "ApplicationInfo", "tx-0", None)],
    );
    wait_for("the first line indexed", Duration::from_secs(30), || {
        server.count("logs-*") == 1
    });

    server.stop_listening();
    // A backlog of about 4 MiB: sixteen times the budget.
    let backlog: Vec<String> = (0..12_000)
        .map(|i| service_line("payment", "ApplicationInfo", &format!("tx-info-{i}"), None))
        .collect();
    append(&log, &backlog);
    wait_for("reading to pause", Duration::from_secs(30), || {
        shipper.metric("shipper_reading_paused") == Some(1.0)
    });
    let burst: Vec<String> = (0..6)
        .map(|i| {
            service_line(
                "payment",
                "SystemError",
                &format!("tx-outage-{i}"),
                Some("ledger unreachable"),
            )
        })
        .collect();
    append(&log, &burst);
    wait_for(
        "one firing message per channel while Elasticsearch is down",
        Duration::from_secs(20),
        || channels.all_have(1),
    );
    assert_eq!(shipper.metric("shipper_reading_paused"), Some(1.0));
    assert!(channels.slack()[0].starts_with("[FIRING] SystemError burst: service payment"));
    assert_eq!(
        channels.webhook()[0]["last_error"]["transaction_id"],
        "tx-outage-4"
    );
    wait_for(
        "one resolved message per channel while Elasticsearch is down",
        Duration::from_secs(20),
        || channels.all_have(2),
    );
    assert_eq!(channels.webhook()[1]["status"], "resolved");

    server.resume_listening().expect("listen again");
    let total = 1 + backlog.len() + burst.len();
    wait_for("every line indexed", Duration::from_secs(60), || {
        server.count("logs-*") >= total
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.count("logs-*"), total);
    // Shipping the lines the rules saw ahead did not show them to the rules again.
    std::thread::sleep(Duration::from_secs(2));
    assert!(channels.all_have(2), "{:?}", channels.counts());
}
