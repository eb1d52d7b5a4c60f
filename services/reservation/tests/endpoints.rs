//! End-to-end: the `reservation` binary on a free port, its log file read back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use serde_json::{json, Value};
use service_kit::schema;
use service_kit::testing::{check_endpoint, standard_endpoints, start_service, RunningService};

const NAME: &str = "reservation";

fn start(dir: &std::path::Path) -> RunningService {
    start_service(env!("CARGO_BIN_EXE_reservation"), NAME, dir, &[])
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn the_four_standard_endpoints_log_their_category_level_and_stack_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(dir.path());
    let mut lines = Vec::new();
    for expectation in standard_endpoints(409) {
        lines.push(check_endpoint(&service, NAME, expectation).await);
    }
    assert!(
        lines[1][schema::ERROR_STACK_TRACE]
            .as_str()
            .is_some_and(|t| t.contains("utilisation")),
        "trace names the panicking function: {}",
        lines[1]
    );
    assert_eq!(lines[2][schema::ERROR_TYPE], "SlotAlreadyTaken");
    assert!(lines[3][schema::ERROR_MESSAGE]
        .as_str()
        .is_some_and(|m| m.starts_with("calling calendar service: ")));
}

#[tokio::test]
async fn a_free_slot_is_reserved_once_and_then_refused_with_409() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(dir.path());
    let client = reqwest::Client::new();
    let reserve = || {
        client
            .post(service.url("/reservations"))
            .json(&json!({ "slot_id": "2025-12-01T11:30", "customer_id": "c-1001" }))
            .send()
    };
    assert_eq!(reserve().await.expect("request").status(), 201);
    let second = reserve().await.expect("request");
    assert_eq!(second.status(), 409);
    let body: Value = second.json().await.expect("json");
    assert_eq!(body["error"]["category"], "BusinessError");
    let slots: Value = client
        .get(service.url("/slots"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let free = slots["slots"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|s| s["free"] == true)
        .count();
    assert_eq!(free, 6, "8 slots, one seeded as taken, one just reserved");
}
