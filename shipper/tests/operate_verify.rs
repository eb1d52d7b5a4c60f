//! `shipper verify` with the real binary: nothing missing after a clean run, the exact
//! ranges after documents were deleted behind the shipper's back, `--repair` restores them
//! with no duplicate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod operate_support;
mod support;

use std::time::Duration;

use operate_support::run;
use support::{assert_exactly_once, es, wait_until, write_lines, Setup};

const STREAM: &str = "logs-payment-default";

#[test]
fn verify_finds_exactly_the_deleted_lines_and_repair_restores_them_once() {
    let server = es();
    let setup = Setup::new(&server.url());
    let log = setup.logs().join("payment.log");
    write_lines(&log, "payment", 0, 300);
    let mut shipper = setup.start();
    wait_until("300 documents", Duration::from_secs(30), || {
        server.count(STREAM) >= 300
    });
    shipper
        .terminate(Duration::from_secs(15))
        .expect("the shipper stops");
    assert_exactly_once(&server, STREAM, 300);

    let verify = |args: &[&str]| run(&setup.es_url, &setup.logs(), &setup.data(), &[], args);
    let clean = verify(&["verify"]);
    assert_eq!(clean.code, Some(0), "{}", clean.all());
    assert!(
        clean
            .stdout
            .contains("300 document(s) checked, none missing"),
        "{}",
        clean.stdout
    );

    // Lose lines 101..=120 and line 251 (1-based), as a lost snapshot or a bad delete would.
    let ids_of = |numbers: &[usize]| -> Vec<String> {
        server
            .documents(STREAM)
            .into_iter()
            .filter(|d| {
                let m = d.source["message"].as_str().unwrap_or("");
                numbers.iter().any(|n| m == format!("line-{n:08}"))
            })
            .map(|d| d.id)
            .collect()
    };
    let mut lost: Vec<usize> = (100..120).collect();
    lost.push(250);
    let ids = ids_of(&lost);
    assert_eq!(ids.len(), 21);
    assert_eq!(server.delete_documents(STREAM, &ids), 21);

    let found = verify(&["verify"]);
    assert_eq!(found.code, Some(1), "{}", found.all());
    assert!(
        found.stdout.contains("21 missing: lines 101-120 (bytes "),
        "{}",
        found.stdout
    );
    assert!(
        found.stdout.contains(", line 251 (bytes "),
        "{}",
        found.stdout
    );
    assert_eq!(server.count(STREAM), 279, "verify alone writes nothing");

    let repaired = verify(&["verify", "--repair"]);
    assert_eq!(repaired.code, Some(0), "{}", repaired.all());
    assert!(
        repaired
            .stdout
            .contains("repaired: 21 stored again, 0 already there, 0 refused"),
        "{}",
        repaired.stdout
    );
    assert_exactly_once(&server, STREAM, 300);
    let restored = ids_of(&lost);
    let mut want = ids.clone();
    want.sort();
    let mut got = restored;
    got.sort();
    assert_eq!(got, want, "the lines come back under their original ids");

    let again = verify(&["verify", "--repair"]);
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert!(again.stdout.contains("none missing"), "{}", again.stdout);
    assert_exactly_once(&server, STREAM, 300);
}

#[test]
fn lines_past_the_checkpoint_are_not_checked() {
    let server = es();
    let setup = Setup::new(&server.url());
    let log = setup.logs().join("payment.log");
    write_lines(&log, "payment", 0, 10);
    let mut shipper = setup.start();
    wait_until("10 documents", Duration::from_secs(30), || {
        server.count(STREAM) >= 10
    });
    shipper.terminate(Duration::from_secs(15)).expect("stops");
    // Written while no shipper runs: not delivered, and not "missing" either.
    write_lines(&log, "payment", 10, 5);
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[],
        &["verify"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(
        ran.stdout
            .contains("10 line(s), 10 document(s) checked, none missing"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_missing_data_directory_or_cluster_is_a_clear_error() {
    let server = es();
    let setup = Setup::new(&server.url());
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[],
        &["verify"],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.all());
    assert!(ran.stderr.contains("does not exist"), "{}", ran.stderr);
    assert!(!setup.data().exists());

    std::fs::create_dir_all(setup.data().join("checkpoints")).unwrap();
    std::fs::write(setup.data().join("checkpoints/checkpoints.json"), "{torn").unwrap();
    let ran = run(
        &setup.es_url,
        &setup.logs(),
        &setup.data(),
        &[],
        &["verify"],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.all());
    assert!(ran.stderr.contains("checkpoints.json"), "{}", ran.stderr);
    assert!(
        setup.data().join("checkpoints/checkpoints.json").exists(),
        "verify must not move a checkpoint file aside"
    );
}
