//! `shipper validate` with the real binary: passes on a good setup, names the wrong
//! setting, the missing privilege, the refused credentials and the unreachable cluster,
//! and never writes the data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod operate_support;
mod support;

use es_test_server::{EsTestServer, ServerConfig};
use operate_support::run;
use support::{es, free_port, Setup};

#[test]
fn a_good_setup_passes_every_check_and_writes_nothing() {
    let server = es();
    let setup = Setup::new(&server.url());
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[],
        &["validate"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    for check in [
        "settings",
        "paths",
        "format",
        "data_dir",
        "alerts",
        "elasticsearch",
        "version",
        "credentials",
        "privileges",
        "templates",
    ] {
        assert!(
            ran.stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "no passed {check} line in:\n{}",
            ran.stdout
        );
    }
    assert!(!ran.stdout.contains("FAIL"), "{}", ran.stdout);
    assert!(ran.stdout.contains("9.2.1"), "{}", ran.stdout);
    assert!(
        !setup.data().exists(),
        "validate created the data directory"
    );
    assert!(
        server.index_templates().iter().all(|t| t != "didban-logs"),
        "validate installed a template"
    );
    assert!(server.data_streams().is_empty(), "validate wrote documents");

    let json = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[],
        &["validate", "--format", "json"],
    );
    assert_eq!(json.code, Some(0), "{}", json.all());
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).expect("one JSON object");
    assert_eq!(v["ok"], true);
    let checks = v["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "templates" && c["ok"] == true),
        "{v}"
    );
    assert!(!setup.data().exists());
}

#[test]
fn a_wrong_setting_is_named_and_exits_2_without_writing() {
    let server = es();
    let setup = Setup::new(&server.url());
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[("SHIPPER_NAMESPACE", "Bad-Name")],
        &["validate"],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.all());
    assert!(
        ran.stdout.contains("FAIL") && ran.stdout.contains("SHIPPER_NAMESPACE"),
        "{}",
        ran.stdout
    );
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[("SHIPPER_NAMESPACE", "Bad-Name")],
        &["validate", "--format", "json"],
    );
    assert_eq!(ran.code, Some(2));
    let v: serde_json::Value = serde_json::from_str(ran.stdout.trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert!(!setup.data().exists());
    assert!(
        server.requests().is_empty(),
        "a settings error must not reach Elasticsearch"
    );
}

#[test]
fn a_missing_privilege_is_named_and_exits_3() {
    let server = EsTestServer::start_in_thread(
        ServerConfig::default()
            .with_basic_auth("didban_shipper", "s3cret")
            .without_privilege("manage_ilm")
            .without_privilege("read"),
    )
    .unwrap();
    let setup = Setup::new(&server.url());
    let env = [
        ("ELASTICSEARCH_USERNAME", "didban_shipper"),
        ("ELASTICSEARCH_PASSWORD", "s3cret"),
    ];
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &env,
        &["validate"],
    );
    assert_eq!(ran.code, Some(3), "{}", ran.all());
    let line = ran
        .stdout
        .lines()
        .find(|l| l.contains("privileges"))
        .unwrap_or_default();
    assert!(line.starts_with("FAIL"), "{}", ran.stdout);
    assert!(line.contains("cluster manage_ilm"), "{line}");
    assert!(line.contains("logs-payment-*: read"), "{line}");
    assert!(!line.contains("create_doc"), "{line}");
    assert!(
        ran.stdout.contains("accepted, user \"didban_shipper\""),
        "{}",
        ran.stdout
    );
    assert!(!setup.data().exists());
}

#[test]
fn refused_credentials_exit_3() {
    let server = EsTestServer::start_in_thread(
        ServerConfig::default().with_basic_auth("didban_shipper", "s3cret"),
    )
    .unwrap();
    let setup = Setup::new(&server.url());
    let env = [
        ("ELASTICSEARCH_USERNAME", "didban_shipper"),
        ("ELASTICSEARCH_PASSWORD", "wrong"),
    ];
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &env,
        &["validate"],
    );
    assert_eq!(ran.code, Some(3), "{}", ran.all());
    assert!(
        ran.stdout
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("credentials")),
        "{}",
        ran.stdout
    );
}

#[test]
fn an_unreachable_cluster_exits_3_and_offline_skips_it() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let setup = Setup::new(&url);
    let ran = run(&url, &setup.logs(), &setup.data(), &[], &["validate"]);
    assert_eq!(ran.code, Some(3), "{}", ran.all());
    assert!(ran.stdout.contains("unreachable"), "{}", ran.stdout);
    let ran = run(
        &url,
        &setup.logs(),
        &setup.data(),
        &[],
        &["validate", "--offline"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(!ran.stdout.contains("elasticsearch"), "{}", ran.stdout);
    assert!(!setup.data().exists());
}

#[test]
fn unknown_flags_and_subcommands_are_refused_with_usage() {
    let setup = Setup::new("http://127.0.0.1:9");
    for args in [&["validate", "--bogus"][..], &["validat"][..]] {
        let ran = run(&setup.es_url, &setup.logs(), &setup.data(), &[], args);
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.all());
        assert!(ran.stderr.contains("Usage"), "{}", ran.stderr);
    }
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[],
        &["validate", "--help"],
    );
    assert_eq!(ran.code, Some(0));
    assert!(ran.stdout.contains("Exit status"), "{}", ran.stdout);
}
