//! The shipper's settings as `docker compose` passes them: by environment variables, some of
//! them empty, some wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::process::Command;

const EVERY_VARIABLE: &[&str] = &[
    "SHIPPER_CONFIG",
    "ELASTICSEARCH_URL",
    "ELASTICSEARCH_USERNAME",
    "ELASTICSEARCH_PASSWORD",
    "ELASTICSEARCH_API_KEY",
    "ELASTICSEARCH_CA_CERT",
    "SHIPPER_COMPRESSION",
    "SHIPPER_MAX_IN_FLIGHT",
    "SHIPPER_REQUEST_TIMEOUT",
    "SHIPPER_PATHS",
    "SHIPPER_EXCLUDE",
    "SHIPPER_MAX_LINE_BYTES",
    "SHIPPER_SCAN_INTERVAL",
    "SHIPPER_ROTATE_WAIT",
    "SHIPPER_INPUT_FORMAT",
    "SHIPPER_BATCH_MAX_DOCS",
    "SHIPPER_BATCH_MAX_BYTES",
    "SHIPPER_BATCH_MAX_WAIT",
    "SHIPPER_DATA_DIR",
    "SHIPPER_NAMESPACE",
    "SHIPPER_METRICS_ADDR",
    "SHIPPER_MEMORY_BUDGET",
    "SHIPPER_SUMMARY_INTERVAL",
    "SHIPPER_HOST_NAME",
    "SHIPPER_SHUTDOWN_TIMEOUT",
    "SHIPPER_DEAD_LETTER_MAX_BYTES",
    "SHIPPER_FORGET_AFTER",
    "SHIPPER_LOG_FORMAT",
    "ALERT_DEFAULT_RULES",
    "ALERT_RATE_LIMIT_PER_MINUTE",
    "ALERT_UPTIME_DOWN_CHECKS",
];

fn shipper(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
    for name in EVERY_VARIABLE {
        cmd.env(name, "");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the shipper binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn empty_variables_are_unset_so_only_the_required_one_is_reported() {
    let (code, err) = shipper(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("shipper: invalid setting ELASTICSEARCH_URL [elasticsearch.urls]"),
        "{err}"
    );
}

#[test]
fn a_wrong_variable_is_named_with_its_file_key_and_exits_2() {
    let (code, err) = shipper(&[
        ("ELASTICSEARCH_URL", "http://127.0.0.1:9"),
        ("SHIPPER_PATHS", "/tmp/none/*.log"),
        ("SHIPPER_MAX_IN_FLIGHT", "three"),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(
            "shipper: invalid setting SHIPPER_MAX_IN_FLIGHT [elasticsearch.max_in_flight]"
        ),
        "{err}"
    );
}
