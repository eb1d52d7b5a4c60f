//! Helpers for end-to-end tests: start a service binary on a free port with its own log
//! directory, and read back the JSON lines it wrote.
//!
//! Tests run the real binaries rather than an in-process router, because the logger is
//! process-global and because what matters is what the deployed program writes to disk.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::schema;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// A service process started for a test; stopped (SIGTERM, then kill) when dropped.
#[derive(Debug)]
pub struct RunningService {
    child: Option<Child>,
    name: String,
    log_dir: PathBuf,
    base_url: String,
}

/// Starts `binary` (a path from `env!("CARGO_BIN_EXE_<name>")`) writing its log as
/// `<log_dir>/<name>.log`, listening on a free port of 127.0.0.1, with `envs` added.
pub fn start_service(
    binary: &str,
    name: &str,
    log_dir: &Path,
    envs: &[(&str, &str)],
) -> Result<RunningService, String> {
    let mut command = Command::new(binary);
    command
        .env("PORT", "0")
        .env("BIND_ADDR", "127.0.0.1")
        .env("LOG_DIR", log_dir)
        .env_remove("LOG_TIMEZONE")
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_STDOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (key, value) in envs {
        command.env(key, value);
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let mut service = RunningService {
        child: Some(child),
        name: name.to_owned(),
        log_dir: log_dir.to_owned(),
        base_url: String::new(),
    };
    let started = service
        .wait_for_line(START_TIMEOUT, |v| v.get(schema::SERVER_PORT).is_some())
        .ok_or_else(|| format!("{name} did not log its listening port"))?;
    let port = started[schema::SERVER_PORT]
        .as_u64()
        .ok_or_else(|| format!("{name} logged a non-numeric port"))?;
    service.base_url = format!("http://127.0.0.1:{port}");
    Ok(service)
}

impl RunningService {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The active log file.
    pub fn log_file(&self) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.name))
    }

    /// The raw text of the active log file.
    pub fn raw_log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Every line of the active log file, parsed. Panics (failing the test) on a line that
    /// is not a whole JSON object.
    pub fn log_lines(&self) -> Vec<Value> {
        parse_lines(&self.raw_log())
    }

    /// Waits until a line matching `predicate` is written; returns it.
    pub fn wait_for_line(
        &self,
        timeout: Duration,
        predicate: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log_lines().into_iter().find(|v| predicate(v)) {
                return Some(line);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the access line of the request with transaction id `tx` and `path`.
    pub fn access_line(&self, tx: &str, path: &str) -> Value {
        self.wait_for_line(LINE_TIMEOUT, |v| {
            v[schema::TRANSACTION_ID] == tx && v[schema::URL_PATH] == path
        })
        .unwrap_or_else(|| {
            panic!(
                "no access line for {path} with transaction id {tx} in {}:\n{}",
                self.log_file().display(),
                self.raw_log()
            )
        })
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let Ok(pid) = i32::try_from(child.id()) else {
            let _ = child.kill();
            return false;
        };
        // SAFETY: `kill` has no memory-safety preconditions; pid is our own child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Parses JSON lines; panics naming the first line that is not a whole JSON object.
pub fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(v) if v.is_object() => v,
            _ => panic!("log line is not a whole JSON object: {line:?}"),
        })
        .collect()
}

/// Checks the fields every line must carry, whatever its category.
pub fn assert_common_fields(line: &Value, service: &str) {
    let ts = line[schema::TIMESTAMP]
        .as_str()
        .unwrap_or_else(|| panic!("no @timestamp: {line}"));
    assert!(ts.ends_with("+03:30"), "timestamp not in Tehran time: {ts}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
        "timestamp is not RFC 3339: {ts}"
    );
    assert_eq!(
        line[schema::ECS_VERSION_FIELD],
        schema::ECS_VERSION,
        "{line}"
    );
    assert_eq!(line[schema::SERVICE_NAME], service, "{line}");
    for field in [
        schema::SERVICE_VERSION,
        schema::SERVICE_ENVIRONMENT,
        schema::HOST_NAME,
    ] {
        assert!(line[field].is_string(), "{field} missing: {line}");
    }
    let category = line[schema::LOG_CATEGORY]
        .as_str()
        .unwrap_or_else(|| panic!("no log.category: {line}"));
    assert!(category.parse::<schema::Category>().is_ok(), "{category}");
}

/// A transaction id unique to one test request, one the services accept: built on a
/// generated id, which never holds a run of 13 digits (a plain hex UUID may, and would be
/// replaced).
pub fn test_transaction_id(label: &str) -> String {
    format!("test-{label}-{}", crate::TransactionId::generate())
}

/// What one of the four standard endpoints must produce.
#[derive(Debug, Clone, Copy)]
pub struct Expectation {
    /// The endpoint.
    pub path: &'static str,
    /// Status of the response.
    pub status: u16,
    /// `log.category` of the access line.
    pub category: schema::Category,
    /// `log.level` of the access line.
    pub level: &'static str,
}

/// The four endpoints every service answers; `business_status` is 422 or 409 depending on
/// the service's rule.
pub fn standard_endpoints(business_status: u16) -> [Expectation; 4] {
    use schema::Category::*;
    [
        Expectation {
            path: "/",
            status: 200,
            category: ApplicationInfo,
            level: "INFO",
        },
        Expectation {
            path: "/app-error",
            status: 500,
            category: ApplicationError,
            level: "ERROR",
        },
        Expectation {
            path: "/business-error",
            status: business_status,
            category: BusinessError,
            level: "WARN",
        },
        Expectation {
            path: "/system-error",
            status: 503,
            category: SystemError,
            level: "ERROR",
        },
    ]
}

/// Calls `GET expectation.path` with a fresh transaction id and checks the response and
/// its access line: status, echoed id, category, level, Tehran offset, stack trace present
/// exactly for ApplicationError and SystemError. Returns the access line.
pub async fn check_endpoint(
    service: &RunningService,
    service_name: &str,
    expectation: Expectation,
) -> Value {
    let tx = test_transaction_id("endpoint");
    let response = reqwest::Client::new()
        .get(service.url(expectation.path))
        .header(schema::TRANSACTION_ID_HEADER, &tx)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {} failed: {e}", expectation.path));
    assert_eq!(
        response.status().as_u16(),
        expectation.status,
        "{}",
        expectation.path
    );
    let echoed = response
        .headers()
        .get(schema::TRANSACTION_ID_HEADER)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        echoed.as_deref(),
        Some(tx.as_str()),
        "transaction id header echoed"
    );
    let line = service.access_line(&tx, expectation.path);
    assert_common_fields(&line, service_name);
    assert_eq!(
        line[schema::LOG_CATEGORY],
        expectation.category.as_str(),
        "{line}"
    );
    assert_eq!(line[schema::LOG_LEVEL], expectation.level, "{line}");
    assert_eq!(line[schema::HTTP_REQUEST_METHOD], "GET");
    assert_eq!(line[schema::HTTP_RESPONSE_STATUS_CODE], expectation.status);
    assert!(
        line[schema::EVENT_DURATION].as_u64().is_some_and(|d| d > 0),
        "{line}"
    );
    let outcome = if expectation.status < 400 {
        "success"
    } else {
        "failure"
    };
    assert_eq!(line[schema::EVENT_OUTCOME], outcome);
    let trace = line[schema::ERROR_STACK_TRACE].as_str();
    if expectation.category.captures_stack_trace() {
        let trace = trace.unwrap_or_else(|| panic!("no stack trace: {line}"));
        assert!(
            trace.contains(".rs:"),
            "stack trace names files and lines: {trace}"
        );
        assert!(line[schema::ERROR_TYPE].is_string() && line[schema::ERROR_MESSAGE].is_string());
    } else {
        assert!(trace.is_none(), "unexpected stack trace: {line}");
    }
    line
}
