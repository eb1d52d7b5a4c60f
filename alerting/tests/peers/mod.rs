//! Real local peers for the alerting tests, on 127.0.0.1: an HTTP receiver (axum) standing
//! in for the Telegram Bot API, Slack and a webhook endpoint, and a real SMTP server
//! (Python's `aiosmtpd`, run as a subprocess). Shared by this crate's channel tests and the
//! shipper's end-to-end alerting test (which includes it with `#[path]`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One request the HTTP receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub body: Value,
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Statuses to answer, in order, before answering success again.
    fail_with: Vec<u16>,
}

/// An HTTP server that records every request and answers as Telegram (`/bot.../sendMessage`:
/// `{"ok":true}`) or Slack and webhooks (`ok`) do.
pub struct HttpReceiver {
    pub port: u16,
    state: Arc<Mutex<ReceiverState>>,
    _runtime: tokio::runtime::Runtime,
}

impl HttpReceiver {
    pub fn start() -> HttpReceiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::clone(&state);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let app =
                axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
                    let shared = Arc::clone(&shared);
                    async move { record(shared, uri, headers, body) }
                });
            let _ = axum::serve(listener, app).await;
        });
        HttpReceiver {
            port,
            state,
            _runtime: runtime,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn fail_next(&self, statuses: &[u16]) {
        self.state.lock().unwrap().fail_with = statuses.to_vec();
    }

    /// Every request received so far whose path starts with `prefix`.
    pub fn received(&self, prefix: &str) -> Vec<Received> {
        self.state
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

fn record(state: Arc<Mutex<ReceiverState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let received = Received {
        path: path.clone(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let mut s = state.lock().unwrap();
    s.received.push(received);
    if !s.fail_with.is_empty() {
        let status = s.fail_with.remove(0);
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if path.ends_with("/sendMessage") {
            let body = serde_json::json!({"ok": false, "error_code": status, "description": "Bad Request: injected failure", "parameters": {"retry_after": 1}});
            return (code, axum::Json(body)).into_response();
        }
        return (code, "injected failure").into_response();
    }
    if path.ends_with("/sendMessage") {
        let body = serde_json::json!({"ok": true, "result": {"message_id": s.received.len(), "date": 0, "chat": {"id": 42, "type": "private"}}});
        return axum::Json(body).into_response();
    }
    (StatusCode::OK, "ok").into_response()
}

/// A mail the SMTP server accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Headers, decoded.
    pub subject: String,
    pub from: String,
    pub to: String,
    /// The text body, decoded from its transfer encoding.
    pub body: String,
    /// The user it authenticated as, if it did.
    pub login: Option<String>,
}

/// `aiosmtpd` (https://aiosmtpd.aio-libs.org) requiring AUTH, storing each mail as a file.
pub struct SmtpPeer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

const SMTP_SERVER: &str = r#"
import email, email.policy, json, logging, os, sys, time, uuid, warnings
# The test server runs AUTH without TLS on purpose (127.0.0.1 only); its warnings are noise.
warnings.simplefilter("ignore")
logging.disable(logging.WARNING)
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

out, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

class Store:
    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        record = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                  "subject": str(message["subject"]), "to": str(message["to"]),
                  "from": str(message["from"]), "body": message.get_body().get_content(),
                  "login": login}
        tmp = os.path.join(out, uuid.uuid4().hex + ".tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, tmp[:-4] + ".json")
        return "250 Message accepted for delivery"

def authenticate(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
    return AuthResult(success=ok, auth_data=data if ok else None, handled=False)

controller = Controller(Store(), hostname="127.0.0.1", port=port, authenticator=authenticate,
                        auth_required=True, auth_require_tls=False)
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

impl SmtpPeer {
    /// Starts the server, or `None` (with the reason printed) when `aiosmtpd` is missing.
    pub fn start(user: &str, password: &str) -> Option<SmtpPeer> {
        let probe = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(probe, Ok(s) if s.success()) {
            eprintln!(
                "SKIPPED: the SMTP peer needs Python's aiosmtpd: pip install aiosmtpd==1.4.6"
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("mail dir");
        let port = free_port();
        let mut child = Command::new("python3")
            .args(["-c", SMTP_SERVER])
            .arg(dir.path())
            .arg(port.to_string())
            .args([user, password])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aiosmtpd");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("aiosmtpd output");
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Some(SmtpPeer { port, dir, child })
    }

    pub fn mails(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        let mut mails: Vec<(std::time::SystemTime, Mail)> = files
            .iter()
            .filter_map(|p| {
                let text = std::fs::read_to_string(p).ok()?;
                let v: Value = serde_json::from_str(&text).ok()?;
                let modified = std::fs::metadata(p).ok()?.modified().ok()?;
                Some((
                    modified,
                    Mail {
                        mail_from: v["mail_from"].as_str()?.to_string(),
                        rcpt_tos: v["rcpt_tos"]
                            .as_array()?
                            .iter()
                            .filter_map(|r| r.as_str().map(String::from))
                            .collect(),
                        subject: v["subject"].as_str()?.to_string(),
                        from: v["from"].as_str()?.to_string(),
                        to: v["to"].as_str()?.to_string(),
                        body: v["body"].as_str()?.to_string(),
                        login: v["login"].as_str().map(String::from),
                    },
                ))
            })
            .collect();
        mails.sort_by_key(|(t, _)| *t);
        mails.into_iter().map(|(_, m)| m).collect()
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}
