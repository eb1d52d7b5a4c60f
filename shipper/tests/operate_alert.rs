//! `shipper alert test` and `shipper alert silence` with the real binary, against the local
//! HTTP and SMTP peers: each channel reports delivered or why not; a silence holds a firing
//! alert's messages while it lasts and the alert is announced when it ends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod operate_support;
mod support;

#[path = "../../alerting/tests/peers/mod.rs"]
mod peers;

use std::io::Write;
use std::time::Duration;

use operate_support::run;
use peers::{HttpReceiver, SmtpPeer};
use support::{free_port, wait_until, Setup};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_test_message_goes_through_each_channel_and_each_says_delivered() {
    let http = HttpReceiver::start();
    let smtp = SmtpPeer::start("didban", "mail-SECRET");
    let setup = Setup::new("http://127.0.0.1:9");
    let hook = http.url("/hook");
    let slack = http.url("/services/T1/B2/SECRETslack");
    let email = smtp.as_ref().map(|s| {
        format!(
            "smtp://didban:mail-SECRET@127.0.0.1:{}/?from=didban@example.com&to=ops@example.com&starttls=off",
            s.port
        )
    });
    let mut env = vec![
        ("ALERT_WEBHOOK", hook.as_str()),
        ("ALERT_SLACK", slack.as_str()),
    ];
    if let Some(e) = &email {
        env.push(("ALERT_EMAIL", e.as_str()));
    }
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &env,
        &["alert", "test"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(
        ran.stdout.contains("delivered      webhook"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("delivered      slack"),
        "{}",
        ran.stdout
    );
    assert!(
        !ran.stdout.contains("SECRET"),
        "secrets are not shown: {}",
        ran.stdout
    );
    let hooks = http.received("/hook");
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].body["test"], true);
    assert!(
        hooks[0].body["title"]
            .as_str()
            .unwrap()
            .starts_with("[TEST]"),
        "{}",
        hooks[0].body
    );
    let slacked = http.received("/services/");
    assert!(slacked[0].body["text"].as_str().unwrap().contains("[TEST]"));
    if let Some(smtp) = &smtp {
        assert!(
            ran.stdout.contains("delivered      email"),
            "{}",
            ran.stdout
        );
        let mails = smtp.mails();
        assert_eq!(mails.len(), 1);
        assert!(
            mails[0].subject.starts_with("[TEST]"),
            "{}",
            mails[0].subject
        );
    }
    assert!(!setup.data().exists(), "a test message writes nothing");

    // One channel only.
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &env,
        &["alert", "test", "webhook"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(http.received("/hook").len(), 2);
    assert_eq!(http.received("/services/").len(), 1);

    // A channel that does not take it says why; one not configured is a usage error.
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[
            ("ALERT_WEBHOOK", dead.as_str()),
            ("ALERT_SLACK", slack.as_str()),
        ],
        &["alert", "test"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(
        ran.stdout.contains("NOT DELIVERED  webhook"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("delivered      slack"),
        "{}",
        ran.stdout
    );
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &env,
        &["alert", "test", "telegram"],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.all());
    assert!(
        ran.stderr.contains("configured: webhook, slack") || ran.stderr.contains("configured:"),
        "{}",
        ran.stderr
    );
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[],
        &["alert", "test"],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.all());
    assert!(ran.stderr.contains("no alert channel"), "{}", ran.stderr);
}

fn error_lines(path: &std::path::Path, n: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for i in 0..n {
        writeln!(
            f,
            "{{\"@timestamp\":\"{now}\",\"log.level\":\"ERROR\",\"log.category\":\"SystemError\",\"service.name\":\"payment\",\"message\":\"boom {i}\",\"transaction.id\":\"tx-{i}\"}}"
        )
        .unwrap();
    }
}

#[test]
fn a_silence_holds_a_firing_alert_and_it_is_announced_when_the_silence_ends() {
    let server = support::es();
    let http = HttpReceiver::start();
    let setup = Setup::new(&server.url());
    let config = setup.dir.path().join("shipper.toml");
    std::fs::write(
        &config,
        "[alerts]\ndefault_rules = false\n\n[[alerts.rules]]\nname = \"SystemError burst\"\ncategory = \"SystemError\"\nthreshold = 5\nwindow = \"30s\"\nresolve_after = \"1m\"\n",
    )
    .unwrap();
    let hook = http.url("/hook");
    let setup = setup
        .env("SHIPPER_CONFIG", config.to_str().unwrap())
        .env("ALERT_WEBHOOK", &hook);
    let shipper = setup.start();
    wait_until("ready", WAIT, || {
        shipper.get("/ready").is_some_and(|(s, _)| s == 200)
    });
    let cmd_env = [
        ("ALERT_WEBHOOK", hook.as_str()),
        ("SHIPPER_CONFIG", config.to_str().unwrap()),
    ];
    let silence = |args: &[&str]| run(&setup.es_url, &setup.logs(), &setup.data(), &cmd_env, args);

    let added = silence(&[
        "alert",
        "silence",
        "add",
        "--rule",
        "SystemError burst",
        "--for",
        "6s",
        "--reason",
        "deploy",
    ]);
    assert_eq!(added.code, Some(0), "{}", added.all());
    assert!(
        added.stdout.contains("rule \"SystemError burst\" until"),
        "{}",
        added.stdout
    );
    let listed = silence(&["alert", "silence", "list"]);
    assert!(
        listed.stdout.contains("reason: deploy"),
        "{}",
        listed.stdout
    );

    error_lines(&setup.logs().join("payment.log"), 6);
    wait_until("the alert held", WAIT, || {
        shipper.own_log().contains("held by a silence")
    });
    assert!(
        http.received("/hook").is_empty(),
        "a silenced alert sent a message: {:?}",
        http.received("/hook")
    );
    wait_until("the announcement after the silence", WAIT, || {
        !http.received("/hook").is_empty()
    });
    let hooks = http.received("/hook");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].body["status"], "firing");
    assert_eq!(hooks[0].body["rule"]["name"], "SystemError burst");
    assert_eq!(
        hooks[0].body["reminder"], false,
        "never announced before: a firing"
    );
    let listed = silence(&["alert", "silence", "list"]);
    assert!(
        listed.stdout.contains("no silence in force"),
        "{}",
        listed.stdout
    );
}

#[test]
fn silences_are_listed_and_removed_by_id_and_bad_input_is_refused() {
    let setup = Setup::new("http://127.0.0.1:9");
    let cmd = |args: &[&str]| run(&setup.es_url, &setup.logs(), &setup.data(), &[], args);
    let added = cmd(&[
        "alert", "silence", "add", "--rule", "all", "--group", "payment", "--for", "2h",
    ]);
    assert_eq!(added.code, Some(0), "{}", added.all());
    assert!(
        added.stdout.contains("every rule, group \"payment\""),
        "{}",
        added.stdout
    );
    let id = added.stdout.split_whitespace().nth(1).unwrap().to_string();
    let listed = cmd(&["alert", "silence", "list"]);
    assert!(listed.stdout.starts_with(&id), "{}", listed.stdout);
    assert!(listed.stdout.contains("left"), "{}", listed.stdout);
    let removed = cmd(&["alert", "silence", "remove", &id]);
    assert_eq!(removed.code, Some(0), "{}", removed.all());
    assert!(cmd(&["alert", "silence", "list"])
        .stdout
        .contains("no silence in force"));
    let again = cmd(&["alert", "silence", "remove", &id]);
    assert_eq!(again.code, Some(1), "{}", again.all());
    let bad = cmd(&["alert", "silence", "add", "--rule", "x", "--for", "soon"]);
    assert_eq!(bad.code, Some(2), "{}", bad.all());
    let bad = cmd(&["alert", "silence", "add", "--for", "1h"]);
    assert_eq!(bad.code, Some(2), "{}", bad.all());
    std::fs::write(setup.data().join("alerts/silences.json"), "{torn").unwrap();
    let torn = cmd(&["alert", "silence", "list"]);
    assert_eq!(torn.code, Some(2), "{}", torn.all());
    assert!(torn.stderr.contains("silences.json"), "{}", torn.stderr);
}
