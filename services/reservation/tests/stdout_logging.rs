//! End-to-end: with `LOG_OUTPUT=stdout` the `reservation` binary writes its JSON lines to
//! standard output and no file, as it runs under Kubernetes (the container runtime keeps
//! stdout in the node's `/var/log/pods/...` files, which the shipper's DaemonSet reads).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use service_kit::schema;
use service_kit::testing::assert_common_fields;

const NAME: &str = "reservation";

/// Kills the service if the test fails before stopping it, so no process outlives the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn log_output_stdout_writes_whole_json_lines_to_stdout_and_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = Command::new(env!("CARGO_BIN_EXE_reservation"))
        .env("PORT", "0")
        .env("BIND_ADDR", "127.0.0.1")
        .env("LOG_OUTPUT", "stdout")
        .env("LOG_DIR", dir.path())
        .env_remove("LOG_STDOUT")
        .env_remove("LOG_TIMEZONE")
        .env_remove("LOG_LEVEL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start reservation");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut lines: Vec<Value> = Vec::new();
    let next_line = |lines: &mut Vec<Value>, deadline: Instant| -> Option<Value> {
        let left = deadline.checked_duration_since(Instant::now())?;
        let raw = rx.recv_timeout(left).ok()?;
        let v: Value = serde_json::from_str(&raw)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {raw:?}"));
        assert!(v.is_object(), "not an object: {raw}");
        lines.push(v.clone());
        Some(v)
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        let v = next_line(&mut lines, deadline).expect("the start-up line on stdout");
        if let Some(port) = v[schema::SERVER_PORT].as_u64() {
            break port;
        }
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    for path in ["/", "/business-error"] {
        let resp = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .header(
                "X-Transaction-ID",
                format!("stdout-test{}", path.replace('/', "-")),
            )
            .send()
            .expect("request");
        assert!(resp.status().as_u16() < 500, "{path}: {}", resp.status());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let v = next_line(&mut lines, deadline).expect("both access lines on stdout");
        if v[schema::URL_PATH].is_string() {
            seen.push(v);
        }
    }
    assert_eq!(seen[0][schema::TRANSACTION_ID], "stdout-test-");
    assert_eq!(seen[0][schema::LOG_CATEGORY], "ApplicationInfo");
    assert_eq!(
        seen[1][schema::TRANSACTION_ID],
        "stdout-test-business-error"
    );
    assert_eq!(seen[1][schema::LOG_CATEGORY], "BusinessError");
    for line in &lines {
        assert_common_fields(line, NAME);
    }

    // SAFETY: `kill` has no memory-safety preconditions; the pid is our own child.
    unsafe {
        libc::kill(child.0.id() as i32, libc::SIGTERM);
    }
    let status = child.0.wait().expect("wait");
    assert!(status.success(), "graceful stop: {status}");
    reader.join().expect("reader thread");

    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read LOG_DIR")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        files.is_empty(),
        "no log file with LOG_OUTPUT=stdout: {files:?}"
    );
}
