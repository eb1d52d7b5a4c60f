//! `/ready` with the real binary: 200 while delivering, 503 with the reason once a line has
//! waited longer than SHIPPER_READY_FAILING_AFTER for an Elasticsearch that went away, 200
//! again once it is back and the backlog delivered; `/health` stays 200 throughout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::time::Duration;

use support::{assert_exactly_once, es, wait_until, write_lines, Setup};

const STREAM: &str = "logs-payment-default";

#[test]
fn ready_goes_503_while_delivery_stalls_and_back_to_200() {
    let server = es();
    let setup = Setup::new(&server.url()).env("SHIPPER_READY_FAILING_AFTER", "1s");
    let log = setup.logs().join("payment.log");
    let shipper = setup.start();
    write_lines(&log, "payment", 0, 20);
    wait_until("20 documents", Duration::from_secs(30), || {
        server.count(STREAM) >= 20
    });
    wait_until("ready", Duration::from_secs(10), || {
        shipper.get("/ready").is_some_and(|(s, _)| s == 200)
    });

    server.stop_listening();
    write_lines(&log, "payment", 20, 20);
    wait_until("/ready 503", Duration::from_secs(30), || {
        shipper.get("/ready").is_some_and(|(s, _)| s == 503)
    });
    let (_, body) = shipper.get("/ready").unwrap();
    assert!(
        body.contains("waited") && body.contains("SHIPPER_READY_FAILING_AFTER"),
        "{body}"
    );
    assert_eq!(
        shipper.get("/health").map(|(s, _)| s),
        Some(200),
        "still alive"
    );

    server.resume_listening().expect("listen again");
    wait_until("/ready 200 again", Duration::from_secs(90), || {
        shipper.get("/ready").is_some_and(|(s, _)| s == 200)
    });
    wait_until("40 documents", Duration::from_secs(30), || {
        server.count(STREAM) >= 40
    });
    assert_exactly_once(&server, STREAM, 40);
}

#[test]
fn a_zero_threshold_is_refused_by_name() {
    let setup = Setup::new("http://127.0.0.1:9").env("SHIPPER_READY_FAILING_AFTER", "0s");
    let mut shipper = setup.start();
    let status = shipper.child.wait().expect("exits");
    assert_eq!(status.code(), Some(2));
    assert!(
        shipper.own_log().contains("SHIPPER_READY_FAILING_AFTER"),
        "{}",
        shipper.own_log()
    );
}
