//! SIGHUP with the real binary: valid new settings apply (every line once), invalid ones
//! are refused by name and the shipper keeps running on the old ones; it never dies of it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::time::Duration;

use support::{assert_exactly_once, es, wait_until, write_lines, Setup};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn sighup_applies_new_settings_without_losing_or_duplicating_a_line() {
    let server = es();
    let setup = Setup::new(&server.url());
    let config = setup.dir.path().join("shipper.toml");
    std::fs::write(&config, "[shipper]\nnamespace = \"alpha\"\n").unwrap();
    let setup = setup.env("SHIPPER_CONFIG", config.to_str().unwrap());
    let log = setup.logs().join("payment.log");
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 200);
    wait_until("200 documents in alpha", WAIT, || {
        server.count("logs-payment-alpha") >= 200
    });

    std::fs::write(&config, "[shipper]\nnamespace = \"beta\"\n").unwrap();
    // Lines keep coming while the pipeline restarts.
    write_lines(&log, "payment", 200, 100);
    shipper.signal(libc::SIGHUP);
    write_lines(&log, "payment", 300, 100);
    wait_until("the reload", WAIT, || {
        shipper.own_log().contains("reloaded")
    });
    write_lines(&log, "payment", 400, 100);
    wait_until("500 documents", WAIT, || {
        server.count("logs-payment-*") >= 500
    });
    // Every line once across both namespaces, and the new one in use.
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&server, "logs-payment-*", 500);
    let beta = server.documents("logs-payment-beta");
    assert!(
        beta.iter().any(|d| d.source["message"] == "line-00000499"),
        "the lines after the reload go to the new namespace"
    );
    assert_eq!(shipper.get("/health").map(|(s, _)| s), Some(200));
}

#[test]
fn invalid_settings_on_sighup_are_refused_and_the_shipper_keeps_running() {
    let server = es();
    let setup = Setup::new(&server.url());
    let config = setup.dir.path().join("shipper.toml");
    std::fs::write(&config, "[shipper]\nnamespace = \"alpha\"\n").unwrap();
    let setup = setup.env("SHIPPER_CONFIG", config.to_str().unwrap());
    let log = setup.logs().join("payment.log");
    let mut shipper = setup.start();
    write_lines(&log, "payment", 0, 50);
    wait_until("50 documents", WAIT, || {
        server.count("logs-payment-alpha") >= 50
    });

    std::fs::write(&config, "[shipper]\nnamespace = \"Bad-Name\"\n").unwrap();
    shipper.signal(libc::SIGHUP);
    wait_until("the refusal", WAIT, || {
        let log = shipper.own_log();
        log.contains("refused") && log.contains("SHIPPER_NAMESPACE")
    });
    std::fs::write(&config, "[batch]\nmax_docs = \"many\"\n").unwrap();
    shipper.signal(libc::SIGHUP);
    wait_until("the second refusal", WAIT, || {
        shipper.own_log().contains("SHIPPER_BATCH_MAX_DOCS")
    });
    assert!(
        shipper.child.try_wait().unwrap().is_none(),
        "SIGHUP killed the shipper"
    );
    write_lines(&log, "payment", 50, 50);
    wait_until("100 documents on the old settings", WAIT, || {
        server.count("logs-payment-alpha") >= 100
    });
    assert_exactly_once(&server, "logs-payment-*", 100);
    let status = shipper
        .terminate(Duration::from_secs(15))
        .expect("stops on SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn sighup_without_a_settings_file_changes_nothing_and_kills_nothing() {
    let server = es();
    let setup = Setup::new(&server.url());
    let log = setup.logs().join("payment.log");
    let mut shipper = setup.start();
    write_lines(&log, "payment", 0, 10);
    wait_until("10 documents", WAIT, || {
        server.count("logs-payment-default") >= 10
    });
    shipper.signal(libc::SIGHUP);
    wait_until("the warning", WAIT, || {
        shipper.own_log().contains("nothing is reloaded")
    });
    write_lines(&log, "payment", 10, 10);
    wait_until("20 documents", WAIT, || {
        server.count("logs-payment-default") >= 20
    });
    assert_exactly_once(&server, "logs-payment-default", 20);
    assert!(shipper
        .terminate(Duration::from_secs(15))
        .unwrap()
        .success());
}
