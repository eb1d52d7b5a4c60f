//! End-to-end: the `payment` binary on a free port, alone and with the two services it
//! calls, its log file read back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use service_kit::schema;
use service_kit::testing::{
    check_endpoint, standard_endpoints, start_service, test_transaction_id, RunningService,
};

const NAME: &str = "payment";
const PAN: &str = "4111 1111 1111 1111";
const PAN_DIGITS: &str = "4111111111111111";

fn start_payment(dir: &Path, envs: &[(&str, &str)]) -> RunningService {
    start_service(env!("CARGO_BIN_EXE_payment"), NAME, dir, envs).unwrap_or_else(|e| panic!("{e}"))
}

/// The sibling binaries are built into the same directory as this crate's binary.
fn sibling_binary(name: &str) -> String {
    let payment = Path::new(env!("CARGO_BIN_EXE_payment"));
    payment.with_file_name(name).to_string_lossy().into_owned()
}

fn sibling(name: &str, dir: &Path) -> Option<RunningService> {
    let binary = sibling_binary(name);
    if !Path::new(&binary).exists() {
        return None;
    }
    Some(start_service(&binary, name, dir, &[]).unwrap_or_else(|e| panic!("{e}")))
}

#[tokio::test]
async fn the_four_standard_endpoints_log_their_category_level_and_stack_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start_payment(dir.path(), &[]);
    let mut lines = Vec::new();
    for expectation in standard_endpoints(422) {
        lines.push(check_endpoint(&service, NAME, expectation).await);
    }
    assert!(
        lines[1][schema::ERROR_MESSAGE]
            .as_str()
            .is_some_and(|m| m.contains("accounts.rs") && m.contains("index out of bounds")),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2][schema::ERROR_TYPE], "InsufficientBalance");
    assert!(lines[3][schema::ERROR_MESSAGE]
        .as_str()
        .is_some_and(|m| m.starts_with("calling card processor: ")));
}

#[tokio::test]
async fn no_card_number_reaches_the_log_even_at_debug_level() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start_payment(dir.path(), &[("LOG_LEVEL", "debug")]);
    let client = reqwest::Client::new();
    let tx = test_transaction_id("pan");
    let response = client
        .post(service.url("/payments"))
        .header(schema::TRANSACTION_ID_HEADER, &tx)
        .json(&json!({ "account_id": "a-1001", "amount": 250_000, "card_number": PAN }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["payment"]["card"], "************1111");
    // A card number in the URL ends up in url.path and the message: masked too.
    let tx_path = test_transaction_id("pan-path");
    let path = format!("/accounts/{PAN_DIGITS}");
    let response = client
        .get(service.url(&path))
        .header(schema::TRANSACTION_ID_HEADER, &tx_path)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    service.access_line(&tx, "/payments");
    service.access_line(&tx_path, "/accounts/************1111");
    let debug_line = service
        .wait_for_line(Duration::from_secs(5), |v| {
            v[schema::MESSAGE] == "payment requested" && v[schema::TRANSACTION_ID] == tx.as_str()
        })
        .expect("the debug line with the request is written");
    assert!(debug_line["request"]
        .as_str()
        .is_some_and(|r| r.contains("CardNumber(************1111)")));
    let raw = service.raw_log();
    assert!(
        !raw.contains(PAN) && !raw.contains(PAN_DIGITS),
        "a PAN leaked:\n{raw}"
    );
}

#[tokio::test]
async fn one_transaction_id_follows_a_payment_through_three_services() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (Some(loans), Some(reservations)) = (
        sibling("loan-resource", dir.path()),
        sibling("reservation", dir.path()),
    ) else {
        panic!(
            "build the sibling services first (cargo test --workspace builds them): {}",
            sibling_binary("loan-resource")
        );
    };
    let payment = start_payment(
        dir.path(),
        &[
            ("LOAN_RESOURCE_URL", loans.base_url()),
            ("RESERVATION_URL", reservations.base_url()),
        ],
    );
    let client = reqwest::Client::new();
    let tx = test_transaction_id("cross");
    let response = client
        .post(payment.url("/payments"))
        .header(schema::TRANSACTION_ID_HEADER, &tx)
        .json(&json!({
            "account_id": "a-1001",
            "amount": 1_000_000,
            "card_number": PAN,
            "loan_id": 2,
            "slot_id": "2025-12-01T10:30",
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["payment"]["reservation_id"].as_u64().is_some(),
        "{body}"
    );

    let pay_line = payment.access_line(&tx, "/payments");
    let loan_line = loans.access_line(&tx, "/loans/2");
    let reservation_line = reservations.access_line(&tx, "/reservations");
    assert_eq!(pay_line[schema::SERVICE_NAME], "payment");
    assert_eq!(loan_line[schema::SERVICE_NAME], "loan-resource");
    assert_eq!(reservation_line[schema::SERVICE_NAME], "reservation");
    assert!(reservations
        .wait_for_line(Duration::from_secs(5), |v| {
            v[schema::TRANSACTION_ID] == tx.as_str() && v["reservation.slot"] == "2025-12-01T10:30"
        })
        .is_some());

    // The same slot again: reservation says 409, payment answers 409 as a BusinessError.
    let tx2 = test_transaction_id("taken");
    let response = client
        .post(payment.url("/payments"))
        .header(schema::TRANSACTION_ID_HEADER, &tx2)
        .json(&json!({
            "account_id": "a-1001", "amount": 1_000, "card_number": PAN, "slot_id": "2025-12-01T10:30",
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 409);
    assert_eq!(
        payment.access_line(&tx2, "/payments")[schema::LOG_CATEGORY],
        "BusinessError"
    );
    assert_eq!(
        reservations.access_line(&tx2, "/reservations")[schema::LOG_CATEGORY],
        "BusinessError"
    );
}

#[tokio::test]
async fn an_unreachable_peer_service_is_a_system_error_with_its_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let payment = start_payment(dir.path(), &[("LOAN_RESOURCE_URL", "http://127.0.0.1:9")]);
    let tx = test_transaction_id("peer-down");
    let response = reqwest::Client::new()
        .post(payment.url("/payments"))
        .header(schema::TRANSACTION_ID_HEADER, &tx)
        .json(&json!({ "account_id": "a-1001", "amount": 1_000, "card_number": PAN, "loan_id": 1 }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 503);
    let line = payment.access_line(&tx, "/payments");
    assert_eq!(line[schema::LOG_CATEGORY], "SystemError");
    assert_eq!(line[schema::ERROR_TYPE], "DependencyUnavailable");
    assert!(line[schema::ERROR_STACK_TRACE]
        .as_str()
        .is_some_and(|t| t.contains("peers.rs")));
}
