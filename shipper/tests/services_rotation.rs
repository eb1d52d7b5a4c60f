//! The real `reservation` service rotating its log by rename every few kilobytes under
//! concurrent load, while the shipper is killed with `kill -9` and restarted: every request's
//! access line is indexed exactly once.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{es, wait_until, Setup};

/// A service binary, built next to this test by `cargo test --workspace`.
fn service_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let binary = dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: build the services first (cargo test --workspace builds them)",
        binary.display()
    );
    binary
}

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
    wait_until("every access line", Duration::from_secs(60), || {
        access_lines().len() >= wanted
    });
    std::thread::sleep(Duration::from_millis(500));
    let seen = access_lines();
    let missing: Vec<&String> = transactions
        .iter()
        .filter(|t| !seen.contains_key(*t))
        .collect();
    if !missing.is_empty() {
        let on_disk: usize = std::fs::read_dir(setup.logs())
            .expect("the log dir")
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .map(|text| missing.iter().filter(|t| text.contains(t.as_str())).count())
            .sum();
        let extra: Vec<&String> = seen
            .keys()
            .filter(|k| !transactions.contains(k))
            .take(3)
            .collect();
        panic!(
            "{} of {wanted} missing ({on_disk} of them are in the files), {} indexed, extra e.g. {extra:?}, first missing {:?}\nshipper log:\n{}",
            missing.len(),
            seen.len(),
            missing.first(),
            shipper.own_log()
        );
    }
    for tx in &transactions {
        assert_eq!(seen.get(tx), Some(&1), "transaction {tx}");
    }
    assert_eq!(seen.len(), wanted);
    drop(service);
}
