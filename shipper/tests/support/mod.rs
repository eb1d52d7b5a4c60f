//! Helpers for end-to-end tests: a real `shipper` process, real files, and the
//! Elasticsearch-compatible test server.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use es_test_server::{EsTestServer, ServerConfig, ThreadedServer};

pub fn es() -> ThreadedServer {
    EsTestServer::start_in_thread(ServerConfig::default()).expect("start the test server")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running shipper process.
pub struct Shipper {
    pub child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

/// Files and settings of one test.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub es_url: String,
    pub extra_env: Vec<(String, String)>,
}

impl Setup {
    pub fn new(es_url: &str) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        Setup {
            dir,
            es_url: es_url.to_string(),
            extra_env: Vec::new(),
        }
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn env(mut self, key: &str, value: &str) -> Setup {
        self.extra_env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn start(&self) -> Shipper {
        let metrics_port = free_port();
        let log = self.dir.path().join(format!("shipper-{metrics_port}.log"));
        let stderr = std::fs::File::create(&log).expect("shipper log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
        cmd.env_clear()
            .env("ELASTICSEARCH_URL", &self.es_url)
            .env("SHIPPER_PATHS", format!("{}/*.log*", self.logs().display()))
            .env("SHIPPER_DATA_DIR", self.data())
            .env("SHIPPER_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("SHIPPER_BATCH_MAX_WAIT", "50ms")
            .env("SHIPPER_SCAN_INTERVAL", "200ms")
            .env("SHIPPER_ROTATE_WAIT", "300ms")
            .env("SHIPPER_SUMMARY_INTERVAL", "1s")
            .env("SHIPPER_HOST_NAME", "test-host")
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start the shipper");
        Shipper {
            child,
            metrics_port,
            log,
        }
    }
}

impl Shipper {
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// SIGTERM, then the exit status (SIGKILL after `within`).
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        None
    }

    pub fn own_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.metrics_port);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()?;
        let resp = client.get(url).send().ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().unwrap_or_default()))
    }

    /// The value of a metric on `/metrics`, summed over its labels.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        let values: Vec<f64> = body
            .lines()
            .filter(|l| {
                l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{'))
            })
            .filter_map(|l| l.rsplit(' ').next())
            .filter_map(|v| v.parse().ok())
            .collect();
        if values.is_empty() {
            None
        } else {
            Some(values.iter().sum())
        }
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Appends numbered JSON lines, as the services write them.
pub fn write_lines(path: &Path, service: &str, from: usize, count: usize) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    let mut buf = String::with_capacity(count * 160);
    for n in from..from + count {
        buf.push_str(&format!(
            "{{\"@timestamp\":\"2026-11-26T10:00:00.000+03:30\",\"log.level\":\"INFO\",\"service.name\":\"{service}\",\"message\":\"line-{n:08}\",\"log.category\":\"ApplicationInfo\"}}\n"
        ));
    }
    f.write_all(buf.as_bytes()).expect("append");
}

pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Per message, how many distinct documents hold it; and the ids seen.
pub fn census(server: &EsTestServer, expr: &str) -> (HashMap<String, usize>, usize) {
    let docs = server.documents(expr);
    let ids: HashSet<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    let mut per_message: HashMap<String, usize> = HashMap::new();
    for d in &docs {
        let msg = d
            .source
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .to_string();
        *per_message.entry(msg).or_default() += 1;
    }
    (per_message, ids.len())
}

/// Asserts that lines `line-00000000` .. `line-{n-1}` are each indexed exactly once.
pub fn assert_exactly_once(server: &EsTestServer, expr: &str, n: usize) {
    let (per_message, distinct_ids) = census(server, expr);
    let missing: Vec<usize> = (0..n)
        .filter(|i| !per_message.contains_key(&format!("line-{i:08}")))
        .collect();
    let twice: Vec<(&String, &usize)> = per_message.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        missing.is_empty(),
        "{} lines missing, first {:?}",
        missing.len(),
        missing.first()
    );
    assert!(
        twice.is_empty(),
        "{} lines indexed twice, e.g. {:?}",
        twice.len(),
        twice.first()
    );
    assert_eq!(distinct_ids, n, "one id per line");
    assert_eq!(per_message.len(), n, "no unexpected documents");
}

/// A service binary (`payment`, `reservation`, ...), built next to the test binaries by
/// `cargo test --workspace`.
pub fn service_binary(name: &str) -> PathBuf {
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

/// Heartbeat installs its index template (a data stream, keywords for `monitor.*`) before
/// it writes; so does this test.
pub fn install_heartbeat_template(es_url: &str) {
    let template = serde_json::json!({
        "index_patterns": ["heartbeat-9.2.1*"],
        "data_stream": {},
        "priority": 150,
        "template": {"mappings": {"properties": {
            "@timestamp": {"type": "date"},
            "monitor": {"properties": {
                "id": {"type": "keyword"}, "name": {"type": "keyword"}, "type": {"type": "keyword"},
                "status": {"type": "keyword"}, "check_group": {"type": "keyword"},
                "duration": {"properties": {"us": {"type": "long"}}}
            }},
            "summary": {"properties": {
                "up": {"type": "integer"}, "down": {"type": "integer"}, "status": {"type": "keyword"},
                "attempt": {"type": "short"}, "max_attempts": {"type": "short"},
                "final_attempt": {"type": "boolean"}, "retry_group": {"type": "keyword"}
            }},
            "url": {"properties": {"full": {"type": "keyword"}}},
            "service": {"properties": {"name": {"type": "keyword"}}}
        }}}
    });
    let resp = reqwest::blocking::Client::new()
        .put(format!("{es_url}/_index_template/heartbeat-9.2.1"))
        .json(&template)
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text());
}
