//! What another writer of the log directory can put under a watched name (a FIFO, a link to
//! a secret or to `/proc`) must neither stop shipping nor be read, and must not flood the
//! shipper's own log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::ffi::CString;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(60);

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o666) },
        0,
        "mkfifo {path:?}"
    );
}

#[test]
fn a_fifo_under_a_watched_name_neither_hangs_the_reader_nor_floods_the_log() {
    let es = es();
    let setup = Setup::new(&es.url());
    let payment = setup.logs().join("payment.log");
    write_lines(&payment, "payment", 0, 100);
    let mut shipper = setup.start();
    wait_until("the first 100 lines", WAIT, || es.count("logs-*") >= 100);

    // The name of a file being read is swapped for a FIFO nobody writes (a blocking open of
    // it never returns), and another FIFO appears beside it.
    std::fs::rename(&payment, setup.logs().join("payment.log.1")).unwrap();
    mkfifo(&payment);
    mkfifo(&setup.logs().join("evil.log"));
    // Many directory events, each of which makes the shipper look at the names again.
    for n in 0..200 {
        let p = setup.logs().join(format!("tmp-{n}.tmp"));
        std::fs::write(&p, b"x").unwrap();
        std::fs::remove_file(&p).unwrap();
    }
    write_lines(
        &setup.logs().join("reservation.log"),
        "reservation",
        100,
        200,
    );
    wait_until("the other file's lines", WAIT, || es.count("logs-*") >= 300);
    assert_exactly_once(&es, "logs-*", 300);
    assert_eq!(shipper.get("/health").map(|r| r.0), Some(200));

    let log = shipper.own_log();
    let fifo_warnings = log.lines().filter(|l| l.contains("FIFO")).count();
    assert!(
        (1..=2).contains(&fifo_warnings),
        "one warning per FIFO, not one per look: {fifo_warnings}\n{log}"
    );
    let status = shipper.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM stops the shipper: {status:?}"
    );
}

/// A directory `logs/` whose `*.log` names include links: to a secret outside it, to
/// `/proc/self/status` (different on every read), and to a file in `logs/pods/` (inside the
/// watched directory, like kubelet's `/var/log/containers` links).
fn links(setup: &Setup) -> tempfile::TempDir {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.json");
    std::fs::write(
        &secret,
        "{\"message\":\"the database password is hunter2\"}\n",
    )
    .unwrap();
    symlink(&secret, setup.logs().join("secret.log")).unwrap();
    symlink("/proc/self/status", setup.logs().join("status.log")).unwrap();
    let pods = setup.logs().join("pods");
    std::fs::create_dir(&pods).unwrap();
    write_lines(&pods.join("0.log"), "loan-resource", 50, 40);
    symlink(pods.join("0.log"), setup.logs().join("loan-resource.log")).unwrap();
    outside
}

#[test]
fn links_are_not_followed_by_default() {
    let es = es();
    let setup = Setup::new(&es.url());
    let _outside = links(&setup);
    write_lines(&setup.logs().join("payment.log"), "payment", 0, 50);
    let shipper = setup.start();
    wait_until("the regular file's lines", WAIT, || {
        es.count("logs-*") >= 50
    });
    // Long enough for several scans (200 ms apart) to have looked at the links.
    std::thread::sleep(Duration::from_secs(2));
    assert_exactly_once(&es, "logs-*", 50);
    let docs = es.documents("logs-*");
    assert!(docs
        .iter()
        .all(|d| !d.source.to_string().contains("hunter2")));
    let log = shipper.own_log();
    assert!(log.contains("not followed"), "{log}");
}

#[test]
fn links_inside_the_watched_directory_are_followed_when_allowed_and_no_others() {
    let es = es();
    let setup = Setup::new(&es.url()).env("SHIPPER_FOLLOW_SYMLINKS", "true");
    let _outside = links(&setup);
    write_lines(&setup.logs().join("payment.log"), "payment", 0, 50);
    let _shipper = setup.start();
    wait_until("the regular file and the link inside", WAIT, || {
        es.count("logs-*") >= 90
    });
    std::thread::sleep(Duration::from_secs(2));
    // Exactly once: the link's target is not also read as a file of its own, the secret and
    // /proc/self/status not at all (a /proc file read again on every scan would add lines).
    assert_exactly_once(&es, "logs-*", 90);
    assert_eq!(es.count("logs-loan_resource-default"), 40);
    let docs = es.documents("logs-*");
    assert!(docs
        .iter()
        .all(|d| !d.source.to_string().contains("hunter2")));
}
