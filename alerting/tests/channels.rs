//! Each alert channel against a real local peer: the requests Telegram's Bot API and Slack's
//! incoming webhooks define, the generic webhook's schema, an e-mail received by a real
//! SMTP server with authentication, retries, and secrets kept out of errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod peers;

use std::time::Duration;

use alerting::channels::{self, ChannelTarget};
use alerting::message::{AlertSource, AlertStatus, LastError, Notification};
use alerting::notify::{deliver, Backoff, Dispatcher, RetryPolicy, Sender};
use chrono::TimeZone;
use peers::{wait_for, HttpReceiver, SmtpPeer};

fn notification(status: AlertStatus) -> Notification {
    let since = chrono::Utc
        .with_ymd_and_hms(2026, 11, 26, 6, 30, 0)
        .unwrap();
    Notification {
        status,
        reminder: false,
        rule: "SystemError burst".into(),
        source: AlertSource::Logs,
        group_field: "service",
        group: "payment".into(),
        condition: "≥ 5 documents (log.category SystemError) within 1m".into(),
        since,
        resolved_at: (status == AlertStatus::Resolved)
            .then(|| since + chrono::Duration::seconds(90)),
        count: 6,
        total: 8,
        value: None,
        last_error: Some(LastError {
            message: Some("bank gateway <core> timed out & gave up".into()),
            error_type: Some("GatewayTimeout".into()),
            transaction_id: Some("0199a1b2-tx".into()),
            timestamp: Some("2026-11-26T10:00:00.000+03:30".into()),
        }),
        url: None,
        kibana_link: "http://localhost:5601/app/discover#/?_a=(x)&_g=(y)".into(),
        channels: None,
        timezone: chrono_tz::Asia::Tehran,
        suppressed_before: 0,
        test: false,
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sender(target: &ChannelTarget) -> Sender {
    Sender::new(target, &alerting::notify::http_client().unwrap()).unwrap()
}

fn telegram_target(rx: &HttpReceiver, chats: &str) -> Vec<ChannelTarget> {
    let api = channels::parse_telegram_api(&rx.url("/")).unwrap();
    channels::parse_telegram(
        &format!("telegram://123456:SECRETtoken@telegram?chats={chats}"),
        &api,
    )
    .unwrap()
}

#[test]
fn telegram_gets_a_send_message_request_as_the_bot_api_defines_it() {
    let rx = HttpReceiver::start();
    let targets = telegram_target(&rx, "42,@ops_room");
    let rt = runtime();
    for t in &targets {
        rt.block_on(deliver(
            &sender(t),
            &notification(AlertStatus::Firing),
            fast_retry(),
            "telegram",
        ))
        .unwrap();
    }
    let got = rx.received("/");
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r.path, "/bot123456:SECRETtoken/sendMessage");
        assert!(
            r.content_type.starts_with("application/json"),
            "{}",
            r.content_type
        );
        assert_eq!(r.body["parse_mode"], "HTML");
        assert_eq!(r.body["link_preview_options"]["is_disabled"], true);
        let text = r.body["text"].as_str().unwrap();
        assert!(
            text.contains("<b>[FIRING] SystemError burst: service payment</b>"),
            "{text}"
        );
        assert!(
            text.contains("bank gateway &lt;core&gt; timed out &amp; gave up"),
            "{text}"
        );
        assert!(text.contains("<code>0199a1b2-tx</code>"));
        assert!(
            text.contains("2026-11-26 10:00:00 +03:30 (Asia/Tehran)"),
            "{text}"
        );
        assert!(text.chars().count() <= 4096);
    }
    assert_eq!(
        got[0].body["chat_id"], 42,
        "numeric chat ids are sent as integers"
    );
    assert_eq!(got[1].body["chat_id"], "@ops_room");
}

#[test]
fn slack_gets_text_and_blocks_as_incoming_webhooks_define_them() {
    let rx = HttpReceiver::start();
    let target = ChannelTarget::Slack(
        channels::parse_webhook(&rx.url("/services/T000/B000/SECRETpath")).unwrap(),
    );
    runtime()
        .block_on(deliver(
            &sender(&target),
            &notification(AlertStatus::Resolved),
            fast_retry(),
            "slack",
        ))
        .unwrap();
    let got = rx.received("/services/");
    assert_eq!(got.len(), 1);
    let body = &got[0].body;
    assert!(got[0].content_type.starts_with("application/json"));
    assert_eq!(
        body["text"],
        "[RESOLVED] SystemError burst: service payment"
    );
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(blocks[1]["type"], "section");
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
    let facts = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(facts.contains("*Lasted:* 1m 30s"), "{facts}");
    assert!(facts.contains("&lt;core&gt;"), "{facts}");
    assert_eq!(blocks[2]["elements"][0]["type"], "button");
    assert_eq!(
        blocks[2]["elements"][0]["url"],
        "http://localhost:5601/app/discover#/?_a=(x)&_g=(y)"
    );
}

#[test]
fn the_webhook_gets_the_documented_json_document() {
    let rx = HttpReceiver::start();
    let target = ChannelTarget::Webhook(channels::parse_webhook(&rx.url("/hook")).unwrap());
    runtime()
        .block_on(deliver(
            &sender(&target),
            &notification(AlertStatus::Firing),
            fast_retry(),
            "webhook",
        ))
        .unwrap();
    let got = rx.received("/hook");
    assert_eq!(got.len(), 1);
    let b = &got[0].body;
    assert_eq!(b["version"], "1");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["rule"]["name"], "SystemError burst");
    assert_eq!(b["rule"]["source"], "logs");
    assert_eq!(b["group"]["field"], "service");
    assert_eq!(b["group"]["value"], "payment");
    assert_eq!(b["starts_at"], "2026-11-26T06:30:00.000Z");
    assert_eq!(b["ends_at"], serde_json::Value::Null);
    assert_eq!(b["count"], 6);
    assert_eq!(b["last_error"]["transaction_id"], "0199a1b2-tx");
    assert_eq!(b["last_error"]["type"], "GatewayTimeout");
    assert!(b["kibana_url"]
        .as_str()
        .unwrap()
        .starts_with("http://localhost:5601/"));
}

#[test]
fn failures_that_may_pass_are_retried_and_the_message_arrives_once() {
    let rx = HttpReceiver::start();
    rx.fail_next(&[503, 500]);
    let target = ChannelTarget::Webhook(channels::parse_webhook(&rx.url("/hook")).unwrap());
    runtime()
        .block_on(deliver(
            &sender(&target),
            &notification(AlertStatus::Firing),
            fast_retry(),
            "webhook",
        ))
        .unwrap();
    assert_eq!(
        rx.received("/hook").len(),
        3,
        "two failures, then the success"
    );
}

#[test]
fn telegram_retry_after_is_honoured_and_refusals_are_not_retried_nor_leak_the_token() {
    let rx = HttpReceiver::start();
    let target = &telegram_target(&rx, "42")[0];
    let rt = runtime();
    rx.fail_next(&[429]);
    let started = std::time::Instant::now();
    rt.block_on(deliver(
        &sender(target),
        &notification(AlertStatus::Firing),
        fast_retry(),
        "telegram",
    ))
    .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited retry_after"
    );
    assert_eq!(rx.received("/").len(), 2);

    rx.fail_next(&[400]);
    let err = rt
        .block_on(deliver(
            &sender(target),
            &notification(AlertStatus::Firing),
            fast_retry(),
            "telegram",
        ))
        .unwrap_err();
    assert_eq!(rx.received("/").len(), 3, "a 400 is not retried");
    assert!(!err.retryable);
    assert!(err.message.contains("injected failure"), "{}", err.message);
    assert!(!err.message.contains("SECRET"), "{}", err.message);
}

#[test]
fn an_unreachable_channel_gives_up_after_the_attempts_without_leaking_the_url() {
    let port = peers::free_port();
    let target = ChannelTarget::Slack(
        channels::parse_webhook(&format!("http://127.0.0.1:{port}/services/T/B/SECRETpath"))
            .unwrap(),
    );
    let err = runtime()
        .block_on(deliver(
            &sender(&target),
            &notification(AlertStatus::Firing),
            fast_retry(),
            "slack",
        ))
        .unwrap_err();
    assert!(err.retryable);
    assert!(!err.message.contains("SECRET"), "{}", err.message);
}

#[test]
fn the_dispatcher_rate_limits_each_channel_on_its_own() {
    let rx = HttpReceiver::start();
    let targets = vec![
        ChannelTarget::Webhook(channels::parse_webhook(&rx.url("/hook")).unwrap()),
        ChannelTarget::Slack(channels::parse_webhook(&rx.url("/services/x")).unwrap()),
    ];
    let rt = runtime();
    rt.block_on(async {
        let (dispatcher, workers) = Dispatcher::start(&targets, 3, fast_retry()).unwrap();
        for _ in 0..10 {
            dispatcher.dispatch(&notification(AlertStatus::Firing));
        }
        drop(dispatcher);
        for w in workers {
            w.await.unwrap();
        }
    });
    assert_eq!(rx.received("/hook").len(), 3, "three per minute");
    assert_eq!(rx.received("/services/").len(), 3);
}

#[test]
fn a_rule_routed_to_one_channel_reaches_only_that_channel() {
    let rx = HttpReceiver::start();
    let targets = vec![
        ChannelTarget::Webhook(channels::parse_webhook(&rx.url("/hook")).unwrap()),
        ChannelTarget::Slack(channels::parse_webhook(&rx.url("/services/x")).unwrap()),
    ];
    runtime().block_on(async {
        let (dispatcher, workers) = Dispatcher::start(&targets, 20, fast_retry()).unwrap();
        let mut n = notification(AlertStatus::Firing);
        n.channels = Some(vec![channels::ChannelKind::Slack]);
        dispatcher.dispatch(&n);
        drop(dispatcher);
        for w in workers {
            w.await.unwrap();
        }
    });
    assert_eq!(rx.received("/hook").len(), 0);
    assert_eq!(rx.received("/services/").len(), 1);
}

#[test]
fn an_email_reaches_a_real_smtp_server_with_authentication() {
    let Some(smtp) = SmtpPeer::start("alerts", "p@ss word") else {
        return;
    };
    let line = format!(
        "smtp://alerts:p%40ss%20word@127.0.0.1:{}/?from=didban@example.com&to=ops@example.com,oncall@example.com&starttls=off",
        smtp.port
    );
    let target = ChannelTarget::Email(channels::parse_email(&line).unwrap());
    let rt = runtime();
    rt.block_on(deliver(
        &sender(&target),
        &notification(AlertStatus::Firing),
        fast_retry(),
        "email",
    ))
    .unwrap();
    wait_for("the mail", Duration::from_secs(5), || {
        smtp.mails().len() == 1
    });
    let mail = &smtp.mails()[0];
    assert_eq!(mail.login.as_deref(), Some("alerts"), "authenticated");
    assert_eq!(mail.mail_from, "didban@example.com");
    assert_eq!(mail.rcpt_tos, vec!["ops@example.com", "oncall@example.com"]);
    assert_eq!(mail.subject, "[FIRING] SystemError burst: service payment");
    assert!(mail.to.contains("ops@example.com") && mail.to.contains("oncall@example.com"));
    assert!(
        mail.body
            .contains("Since: 2026-11-26 10:00:00 +03:30 (Asia/Tehran)"),
        "{}",
        mail.body
    );
    assert!(mail
        .body
        .contains("Last error: GatewayTimeout: bank gateway <core> timed out & gave up"));
    assert!(mail.body.contains("Transaction: 0199a1b2-tx"));
    assert!(
        mail.body.contains("≥ 5 documents"),
        "non-ASCII survives the transfer encoding"
    );

    let wrong = format!(
        "smtp://alerts:wrong@127.0.0.1:{}/?from=didban@example.com&to=ops@example.com&starttls=off",
        smtp.port
    );
    let target = ChannelTarget::Email(channels::parse_email(&wrong).unwrap());
    let err = rt
        .block_on(deliver(
            &sender(&target),
            &notification(AlertStatus::Firing),
            fast_retry(),
            "email",
        ))
        .unwrap_err();
    assert!(!err.message.contains("wrong"), "{}", err.message);
    assert_eq!(smtp.mails().len(), 1);
}

#[test]
fn starttls_is_required_unless_turned_off_by_name() {
    // The same plain-text server, without starttls=off: the client must refuse to go on
    // rather than send the password in clear.
    let Some(smtp) = SmtpPeer::start("alerts", "secret") else {
        return;
    };
    let line = format!(
        "smtp://alerts:secret@127.0.0.1:{}/?from=didban@example.com&to=ops@example.com",
        smtp.port
    );
    let target = ChannelTarget::Email(channels::parse_email(&line).unwrap());
    let err = runtime()
        .block_on(deliver(
            &sender(&target),
            &notification(AlertStatus::Firing),
            fast_retry(),
            "email",
        ))
        .unwrap_err();
    assert!(!err.message.contains("secret"), "{}", err.message);
    std::thread::sleep(Duration::from_millis(200));
    assert!(smtp.mails().is_empty());
}
