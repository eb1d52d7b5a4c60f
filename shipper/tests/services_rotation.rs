//! The real `reservation` service rotating its log by rename every few kilobytes under
//! concurrent load, while the shipper is killed with `kill -9` and restarted: every request's
//! access line is indexed exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::{es, service_binary, Setup};

#[test]
fn a_rotating_service_log_is_shipped_exactly_once_across_shipper_crashes() {
    let server = es();
    let setup = Setup::new(&server.url());
    let service = service_kit::testing::start_service(
        &service_binary("reservation").to_string_lossy(),
        "reservation",
        &setup.logs(),
        &[("LOG_MAX_BYTES", "16384"), ("LOG_MAX_FILES", "1000")],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut shipper = setup.start();

    let client = reqwest::blocking::Client::new();
    let mut transactions = Vec::new();
    for round in 0..4 {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let client = client.clone();
                let url = service.url("/");
                std::thread::spawn(move || {
                    (0..150)
                        .map(|_| {
                            let r = client.get(&url).send().expect("the service answers");
                            r.headers()
                                .get("x-transaction-id")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string)
                                .expect("a transaction id")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        if round > 0 {
            std::thread::sleep(Duration::from_millis(100));
            shipper.kill9();
            shipper = setup.start();
        }
        for h in handles {
            transactions.extend(h.join().expect("a load thread"));
        }
    }
    let rotated = std::fs::read_dir(setup.logs())
        .expect("the log dir")
        .filter(|e| {
            e.as_ref().is_ok_and(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("reservation.log.")
            })
        })
        .count();
    assert!(
        rotated >= 5,
        "the service rotated its log ({rotated} rotated files)"
    );

    let wanted = transactions.len();
    let access_lines = || -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        for d in server.documents("logs-reservation-default") {
            if d.source["url.path"] == "/" {
                if let Some(tx) = d.source["transaction.id"].as_str() {
                    *seen.entry(tx.to_string()).or_insert(0) += 1;
                }
            }
        }
        seen
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while access_lines().len() < wanted && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let seen = access_lines();
    let missing: Vec<&String> = transactions
        .iter()
        .filter(|t| !seen.contains_key(*t))
        .collect();
    if !missing.is_empty() {
        let mut where_missing = Vec::new();
        for entry in std::fs::read_dir(setup.logs())
            .expect("the log dir")
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let mut offset = 0;
            for line in text.split_inclusive('\n') {
                if missing.iter().any(|t| line.contains(t.as_str())) {
                    where_missing.push(format!("{}@{offset}", entry.file_name().to_string_lossy()));
                }
                offset += line.len();
            }
        }
        let mut history = String::new();
        for entry in std::fs::read_dir(setup.dir.path())
            .expect("the test dir")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("shipper-") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                history.push_str(&format!("--- {name}\n"));
                for l in text.lines().filter(|l| {
                    l.contains("resuming")
                        || l.contains("new file")
                        || l.contains("truncated")
                        || l.contains("renamed")
                        || l.contains("finished")
                }) {
                    history.push_str(l);
                    history.push('\n');
                }
            }
        }
        panic!(
            "{} of {wanted} missing, {} indexed, at {where_missing:?}\n{history}",
            missing.len(),
            seen.len(),
        );
    }
    for tx in &transactions {
        assert_eq!(seen.get(tx), Some(&1), "transaction {tx}");
    }
    assert_eq!(seen.len(), wanted);
    drop(service);
}
