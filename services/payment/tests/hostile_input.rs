//! End-to-end: what a hostile or careless client can send `payment`, and what must not
//! follow from it: a card number in the log in any form, a connection held for good, a
//! buffered oversized body, a request without an access line, or a demo error endpoint
//! in production.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use service_kit::redact::contains_pan;
use service_kit::schema;
use service_kit::testing::{start_service, test_transaction_id, RunningService};

const NAME: &str = "payment";

fn start_payment(dir: &Path, envs: &[(&str, &str)]) -> RunningService {
    start_service(env!("CARGO_BIN_EXE_payment"), NAME, dir, envs).unwrap_or_else(|e| panic!("{e}"))
}

fn addr(service: &RunningService) -> String {
    service.base_url().trim_start_matches("http://").to_owned()
}

/// Sends `request` on a new connection and reads until the server closes it.
fn exchange(service: &RunningService, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr(service)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the server closes `stream` within `within` (a read returns end of file or an
/// error rather than timing out on our side).
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

fn partial_request(service: &RunningService) -> TcpStream {
    let mut stream = TcpStream::connect(addr(service)).expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .expect("send half a head");
    stream
}

#[tokio::test]
async fn half_sent_requests_are_closed_and_do_not_stop_health_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Two connections at most: the held ones take every slot.
    let service = start_payment(
        dir.path(),
        &[("HEADER_READ_TIMEOUT_MS", "1000"), ("MAX_CONNECTIONS", "2")],
    );
    let mut held: Vec<TcpStream> = (0..2).map(|_| partial_request(&service)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let health = reqwest::Client::new()
        .get(service.url("/health"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("/health answers once the held connections are closed");
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(10));
    for stream in &mut held {
        assert!(
            closed_by_server(stream, Duration::from_secs(5)),
            "a half-sent request must be closed after the header timeout"
        );
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_and_an_access_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start_payment(dir.path(), &[]);
    let tx = test_transaction_id("big-body");
    let huge = "9".repeat(100 * 1024);
    let response = reqwest::Client::new()
        .post(service.url("/payments"))
        .header(schema::TRANSACTION_ID_HEADER, &tx)
        .json(&json!({ "account_id": huge, "amount": 1, "card_number": "4111111111111111" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 413);
    let line = service.access_line(&tx, "/payments");
    assert_eq!(line[schema::HTTP_RESPONSE_STATUS_CODE], 413);
    assert_eq!(line[schema::ERROR_TYPE], "PayloadTooLarge");
    assert_eq!(line[schema::LOG_CATEGORY], "BusinessError");
}

#[test]
fn a_declared_oversized_body_is_refused_at_once_on_a_route_that_never_reads_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start_payment(dir.path(), &[]);
    // `GET /` never reads a body: without a limit on the declared length the server would
    // answer it and leave the 100 MiB to the connection.
    let answer = exchange(
        &service,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\nConnection: close\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "answered: {}",
        answer.lines().next().unwrap_or("")
    );
}

#[tokio::test]
async fn a_request_whose_client_went_away_still_gets_an_access_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A loan service that takes the connection and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    let service = start_payment(
        dir.path(),
        &[
            ("LOAN_RESOURCE_URL", &silent_url),
            ("DEPENDENCY_TIMEOUT_MS", "20000"),
        ],
    );
    let tx = test_transaction_id("gone");
    let body =
        r#"{"account_id":"a-1001","amount":1000,"card_number":"4111111111111111","loan_id":1}"#;
    let request = format!(
        "POST /payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Transaction-ID: {tx}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut client = TcpStream::connect(addr(&service)).expect("connect");
    client.write_all(request.as_bytes()).expect("send");
    // The handler is in flight once it calls the loan service.
    let (_downstream, _) = silent.accept().expect("payment calls the loan service");
    drop(client);
    let line = service
        .wait_for_line(Duration::from_secs(10), |v| {
            v[schema::TRANSACTION_ID] == tx.as_str() && v[schema::URL_PATH] == "/payments"
        })
        .unwrap_or_else(|| panic!("no access line:\n{}", service.raw_log()));
    assert_eq!(line[schema::HTTP_RESPONSE_STATUS_CODE], 499, "{line}");
    assert_eq!(line[schema::ERROR_TYPE], "ClientClosedRequest");
    assert_eq!(line[schema::EVENT_OUTCOME], "failure");
}

#[tokio::test]
async fn a_request_past_the_request_timeout_is_answered_408_with_an_access_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    let service = start_payment(
        dir.path(),
        &[
            ("LOAN_RESOURCE_URL", &silent_url),
            ("DEPENDENCY_TIMEOUT_MS", "20000"),
            ("REQUEST_TIMEOUT_MS", "500"),
            ("IDLE_TIMEOUT_MS", "5000"),
        ],
    );
    let tx = test_transaction_id("slow");
    let response = reqwest::Client::new()
        .post(service.url("/payments"))
        .header(schema::TRANSACTION_ID_HEADER, &tx)
        .timeout(Duration::from_secs(10))
        .json(&json!({ "account_id": "a-1001", "amount": 1000, "card_number": "4111111111111111", "loan_id": 1 }))
        .send()
        .await
        .expect("answered before the dependency's own timeout");
    assert_eq!(response.status(), 408);
    let line = service.access_line(&tx, "/payments");
    assert_eq!(line[schema::HTTP_RESPONSE_STATUS_CODE], 408);
    assert_eq!(line[schema::ERROR_TYPE], "RequestTimeout");
    drop(silent);
}

#[tokio::test]
async fn demo_error_endpoints_are_off_in_production_unless_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let production = start_payment(dir.path(), &[("SERVICE_ENVIRONMENT", "production")]);
    let client = reqwest::Client::new();
    for path in ["/app-error", "/business-error", "/system-error"] {
        let status = client
            .get(production.url(path))
            .send()
            .await
            .expect("request")
            .status();
        assert_eq!(status, 404, "{path} in production");
    }
    drop(production);
    let dir = tempfile::tempdir().expect("tempdir");
    let asked = start_payment(
        dir.path(),
        &[
            ("SERVICE_ENVIRONMENT", "production"),
            ("DEMO_ENDPOINTS", "1"),
        ],
    );
    let status = client
        .get(asked.url("/app-error"))
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(status, 500);
    let dir = tempfile::tempdir().expect("tempdir");
    let off = start_payment(dir.path(), &[("DEMO_ENDPOINTS", "0")]);
    let status = client
        .get(off.url("/business-error"))
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(status, 404);
}

// ---- card numbers in every form, through the real service -----------------------------

const ZEROS: [char; 4] = ['0', '\u{6f0}', '\u{660}', '\u{ff10}'];
const SEPARATORS: [char; 6] = [' ', '-', '.', '\u{200c}', '\u{a0}', '_'];

fn luhn_valid_digits() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..10, 12..=18).prop_map(|mut body| {
        let sum: u32 = body
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| {
                let v = u32::from(d);
                match (i % 2 == 0, v * 2) {
                    (true, doubled) if doubled > 9 => doubled - 9,
                    (true, doubled) => doubled,
                    (false, _) => v,
                }
            })
            .sum();
        body.push(((10 - sum % 10) % 10) as u8);
        body
    })
}

/// A card number in random scripts, with random separator runs between digits.
fn card_text() -> impl Strategy<Value = String> {
    luhn_valid_digits().prop_flat_map(|digits| {
        let n = digits.len();
        (
            Just(digits),
            prop::collection::vec(0..ZEROS.len(), n),
            prop::collection::vec(prop::collection::vec(0..SEPARATORS.len(), 0..=2), n),
        )
            .prop_map(|(digits, scripts, separators)| {
                let mut out = String::new();
                for (i, d) in digits.iter().enumerate() {
                    let zero = u32::from(ZEROS[scripts[i]]);
                    out.push(char::from_u32(zero + u32::from(*d)).unwrap());
                    if i + 1 < digits.len() {
                        out.extend(separators[i].iter().map(|s| SEPARATORS[*s]));
                    }
                }
                out
            })
    })
}

/// Every byte that is not an unreserved URL character percent-encoded; ASCII digits too
/// when `digits` is set.
fn percent_encoded(text: &str, digits: bool) -> String {
    text.bytes()
        .map(|b| {
            if (b.is_ascii_alphabetic() || (b.is_ascii_digit() && !digits)) || b == b'-' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Only the ASCII digits of `card`, with dashes and dots kept (what fits a header id).
fn ascii_id(card: &str, touching: bool) -> String {
    let digits: String = card
        .chars()
        .filter_map(|c| match service_kit::redact::decimal_value(c) {
            Some(d) => Some(char::from(b'0' + d)),
            None if c == '-' || c == '.' => Some(c),
            None => None,
        })
        .collect();
    if touching {
        format!("tx{digits}x")
    } else {
        digits
    }
}

#[test]
fn no_card_number_reaches_the_log_in_any_script_spacing_or_encoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start_payment(dir.path(), &[("LOG_LEVEL", "debug")]);
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    runner
        .run(
            &(card_text(), any::<bool>(), any::<bool>()),
            |(card, encode_digits, touching)| {
                let path = format!("/accounts/acct{}", percent_encoded(&card, encode_digits));
                let id = ascii_id(&card, touching);
                let answer = exchange(
                    &service,
                    format!(
                        "GET {path} HTTP/1.1\r\nHost: x\r\nX-Transaction-ID: {id}\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
                prop_assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
                prop_assert!(!contains_pan(&answer), "the answer echoes a card number: {answer}");
                let body = json!({ "account_id": "a-1001", "amount": 1000, "card_number": card })
                    .to_string();
                let answer = exchange(
                    &service,
                    format!(
                        "POST /payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Transaction-ID: {id}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
                prop_assert!(!contains_pan(&answer), "the answer echoes a card number: {answer}");
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    // Every request's lines are written by now (access lines go out before the answer).
    assert!(service
        .wait_for_line(Duration::from_secs(5), |v| v[schema::MESSAGE]
            == "payment requested")
        .is_some());
    std::thread::sleep(Duration::from_millis(300));
    let raw = service.raw_log();
    let mut checked = 0;
    for line in raw.lines() {
        assert!(!contains_pan(line), "a card number reached the log: {line}");
        checked += 1;
    }
    assert!(checked >= 96, "{checked} lines");
}
