//! End-to-end: the `loan-resource` binary on a free port, its log file read back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use serde_json::{json, Value};
use service_kit::schema;
use service_kit::testing::{
    check_endpoint, parse_lines, standard_endpoints, start_service, test_transaction_id,
    RunningService,
};

const NAME: &str = "loan-resource";

fn start(dir: &std::path::Path, envs: &[(&str, &str)]) -> RunningService {
    start_service(env!("CARGO_BIN_EXE_loan-resource"), NAME, dir, envs)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn the_four_standard_endpoints_log_their_category_level_and_stack_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(dir.path(), &[]);
    let mut lines = Vec::new();
    for expectation in standard_endpoints(422) {
        lines.push(check_endpoint(&service, NAME, expectation).await);
    }
    let app_error = &lines[1];
    assert!(
        app_error[schema::ERROR_MESSAGE]
            .as_str()
            .is_some_and(|m| m.contains("ledger.rs") && m.contains("divide by zero")),
        "panic message names the panic site: {app_error}"
    );
    assert!(
        app_error[schema::ERROR_STACK_TRACE]
            .as_str()
            .is_some_and(|t| t.contains("installment")),
        "trace names the panicking function: {app_error}"
    );
    let system_error = &lines[3];
    assert!(
        system_error[schema::ERROR_MESSAGE]
            .as_str()
            .is_some_and(|m| m.starts_with("calling credit bureau: ") && m.contains("onnect")),
        "cause chain down to the refused connection: {system_error}"
    );
}

#[tokio::test]
async fn loans_are_opened_within_the_credit_limit_and_refused_above_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let open = |amount: u64| {
        client
            .post(service.url("/loans"))
            .json(&json!({ "customer_id": "c-1003", "amount": amount, "term_months": 12 }))
            .send()
    };
    let ok = open(4_000_000).await.expect("request");
    assert_eq!(ok.status(), 201);
    let loan: Value = ok.json().await.expect("json");
    let id = loan["loan"]["id"].as_u64().expect("loan id");
    let refused = open(7_000_000).await.expect("request");
    assert_eq!(refused.status(), 422, "10M limit, 4M used");
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["type"], "CreditLimitExceeded");
    let installment: Value = client
        .get(service.url(&format!("/loans/{id}/installment")))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(installment["monthly_installment"], 333_334);
    let opened = service
        .wait_for_line(std::time::Duration::from_secs(5), |v| v["loan.id"] == id)
        .expect("domain line for the new loan");
    assert_eq!(opened[schema::LOG_CATEGORY], "ApplicationInfo");
    assert!(opened[schema::TRANSACTION_ID].is_string(), "{opened}");
}

#[tokio::test]
async fn health_answers_without_writing_a_line_and_authorization_is_never_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let health: Value = client
        .get(service.url("/health"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(health["service"], NAME);
    assert_eq!(health["status"], "up");
    let tx = test_transaction_id("auth");
    let response = client
        .get(service.url("/customers/c-1001"))
        .header("authorization", "Bearer very-secret-token-123")
        .header("cookie", "session=cookie-secret-456")
        .header(schema::TRANSACTION_ID_HEADER, &tx)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    service.access_line(&tx, "/customers/c-1001");
    let raw = service.raw_log();
    assert!(!raw.contains("very-secret-token-123") && !raw.contains("cookie-secret-456"));
    assert!(
        !raw.contains("/health"),
        "health checks are not logged by default"
    );
}

#[tokio::test]
async fn an_unsafe_transaction_id_is_replaced_by_a_uuid_v7() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(dir.path(), &[]);
    let response = reqwest::Client::new()
        .get(service.url("/"))
        .header(schema::TRANSACTION_ID_HEADER, "x\",\"injected\":\"1")
        .send()
        .await
        .expect("request");
    let tx = response
        .headers()
        .get(schema::TRANSACTION_ID_HEADER)
        .and_then(|h| h.to_str().ok())
        .expect("header")
        .to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&tx).map(|u| u.get_version_num()).ok(),
        Some(7)
    );
    let line = service.access_line(&tx, "/");
    assert!(line.get("injected").is_none());
}

#[tokio::test]
async fn hundreds_of_parallel_requests_leave_only_whole_lines_one_per_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let paths = ["/", "/business-error", "/loans/2", "/customers/c-1002"];
    let requests = 400;
    let mut tasks = Vec::new();
    for i in 0..requests {
        let client = client.clone();
        let url = service.url(paths[i % paths.len()]);
        let tx = format!("parallel-{i}");
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .header(schema::TRANSACTION_ID_HEADER, &tx)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for task in tasks {
        let status = task.await.expect("task").expect("response");
        assert!(status == 200 || status == 422, "{status}");
    }
    // The last request's line is written once the writer has caught up with all of them.
    let lines_written = || {
        parse_lines(&service.raw_log())
            .into_iter()
            .filter(|v| {
                v[schema::TRANSACTION_ID]
                    .as_str()
                    .is_some_and(|t| t.starts_with("parallel-"))
            })
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lines_written() < requests && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let lines = parse_lines(&service.raw_log());
    let mut ids: Vec<&str> = lines
        .iter()
        .filter_map(|v| v[schema::TRANSACTION_ID].as_str())
        .filter(|t| t.starts_with("parallel-"))
        .collect();
    ids.sort_unstable();
    let total = ids.len();
    ids.dedup();
    assert_eq!(total, requests, "one access line per request");
    assert_eq!(ids.len(), requests, "no id repeated");
}

#[tokio::test]
async fn small_rotation_size_rotates_by_rename_without_splitting_or_losing_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(
        dir.path(),
        &[("LOG_MAX_BYTES", "16384"), ("LOG_MAX_FILES", "20")],
    );
    let client = reqwest::Client::new();
    let requests = 150;
    for i in 0..requests {
        client
            .get(service.url("/"))
            .header(schema::TRANSACTION_ID_HEADER, format!("rotate-{i}"))
            .send()
            .await
            .expect("request");
    }
    service.access_line(&format!("rotate-{}", requests - 1), "/");
    assert!(
        dir.path().join("loan-resource.log.1").exists(),
        "rotated file exists"
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(dir.path()).expect("read dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends mid-line",
            path.display()
        );
        assert!(
            text.len() <= 16384 || text.lines().count() == 1,
            "{} over size",
            path.display()
        );
        seen += parse_lines(&text)
            .iter()
            .filter(|v| {
                v[schema::TRANSACTION_ID]
                    .as_str()
                    .is_some_and(|t| t.starts_with("rotate-"))
            })
            .count();
    }
    assert_eq!(
        seen, requests,
        "every request's line is in exactly one file"
    );
}

#[tokio::test]
async fn sigterm_stops_the_service_cleanly_after_flushing_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut service = start(dir.path(), &[]);
    assert!(service.stop(), "exit status 0 after SIGTERM");
    let lines =
        parse_lines(&std::fs::read_to_string(dir.path().join("loan-resource.log")).expect("log"));
    assert!(
        lines
            .iter()
            .any(|v| v[schema::MESSAGE] == "loan-resource stopped"),
        "last line written before exit"
    );
}
