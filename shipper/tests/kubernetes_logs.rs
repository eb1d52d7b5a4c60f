//! The shipper as a Kubernetes node agent, through the real binary: a directory laid out as
//! kubelet lays out `/var/log` (`pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`, and
//! `containers/<pod>_<namespace>_<container>-<id>.log` links to them), containers writing
//! CRI records (long lines cut into `P` parts, stderr, lines that are not JSON, a line that
//! is no record at all) and Docker json-file records (parts without their newline),
//! kubelet's rotation (`0.log` -> `0.log.<YYYYMMDD-hhmmss>`, the older one gzipped through a
//! `.tmp` file, the oldest deleted), a container restart (`1.log`), a `kill -9` (one of them
//! between the parts of a line) and an Elasticsearch outage. Every line must be stored
//! exactly once, whole, with its pod's and container's fields, in its data stream.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(90);
const TIME: &str = "2026-12-02T15:30:00.123456789Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Cri,
    Docker,
}

/// What one line must become.
#[derive(Debug, Clone)]
struct Expected {
    namespace: &'static str,
    pod: &'static str,
    uid: &'static str,
    container: &'static str,
    data_stream: String,
    stream: &'static str,
    /// The document's `message` (text lines), or its `pad` field (JSON lines).
    message: Option<String>,
    pad: Option<String>,
    malformed: bool,
}

/// One container of one pod, as kubelet and its runtime keep its log.
struct ContainerLog {
    root: PathBuf,
    namespace: &'static str,
    pod: &'static str,
    uid: &'static str,
    name: &'static str,
    format: Format,
    restart: u32,
    /// Rotated files of the current restart, oldest first.
    rotated: Vec<PathBuf>,
}

impl ContainerLog {
    fn new(
        root: &Path,
        (namespace, pod, uid): (&'static str, &'static str, &'static str),
        name: &'static str,
        format: Format,
    ) -> ContainerLog {
        let c = ContainerLog {
            root: root.to_path_buf(),
            namespace,
            pod,
            uid,
            name,
            format,
            restart: 0,
            rotated: Vec::new(),
        };
        fs::create_dir_all(c.dir()).unwrap();
        fs::write(c.path(), b"").unwrap();
        c.link();
        c
    }

    fn dir(&self) -> PathBuf {
        self.root
            .join("pods")
            .join(format!("{}_{}_{}", self.namespace, self.pod, self.uid))
            .join(self.name)
    }

    fn path(&self) -> PathBuf {
        self.dir().join(format!("{}.log", self.restart))
    }

    fn id(&self) -> String {
        format!(
            "{:0>64x}",
            (self.restart as u64 + 1) * 0x1234_5678_9abc + self.name.len() as u64
        )
    }

    /// kubelet's link in `containers/` for the current container.
    fn link(&self) {
        let links = self.root.join("containers");
        fs::create_dir_all(&links).unwrap();
        let link = links.join(format!(
            "{}_{}_{}-{}.log",
            self.pod,
            self.namespace,
            self.name,
            self.id()
        ));
        std::os::unix::fs::symlink(self.path(), link).unwrap();
    }

    /// Appends the records of one line, cut into `parts` parts, as the runtime writes it.
    fn write(&self, stream: &str, text: &str, parts: usize) {
        let mut records = String::new();
        let step = text.len().div_ceil(parts.max(1)).max(1);
        let pieces: Vec<&str> = text
            .as_bytes()
            .chunks(step)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        for (i, piece) in pieces.iter().enumerate() {
            let last = i + 1 == pieces.len();
            match self.format {
                Format::Cri => {
                    let tag = if last { "F" } else { "P" };
                    records.push_str(&format!("{TIME} {stream} {tag} {piece}\n"));
                }
                Format::Docker => {
                    let log = if last {
                        format!("{piece}\n")
                    } else {
                        piece.to_string()
                    };
                    let record = serde_json::json!({"log": log, "stream": stream, "time": TIME});
                    records.push_str(&format!("{record}\n"));
                }
            }
        }
        self.append(records.as_bytes());
    }

    fn append(&self, bytes: &[u8]) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(self.path())
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    /// kubelet's rotation: the live file renamed with a time stamp (the runtime then
    /// reopens its log), the previous rotation gzipped through a `.tmp` file.
    fn rotate(&mut self, stamp: &str) {
        let rotated = self.dir().join(format!("{}.log.{stamp}", self.restart));
        fs::rename(self.path(), &rotated).unwrap();
        fs::write(self.path(), b"").unwrap();
        if let Some(previous) = self.rotated.last().cloned() {
            if previous.extension().is_none_or(|e| e != "gz") {
                let tmp = PathBuf::from(format!("{}.tmp", previous.display()));
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&fs::read(&previous).unwrap()).unwrap();
                // Half written for a moment, as kubelet's compression is.
                let bytes = gz.finish().unwrap();
                fs::write(&tmp, &bytes[..bytes.len() / 2]).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                fs::write(&tmp, &bytes).unwrap();
                let done = PathBuf::from(format!("{}.gz", previous.display()));
                fs::rename(&tmp, &done).unwrap();
                fs::remove_file(&previous).unwrap();
                let n = self.rotated.len();
                self.rotated[n - 1] = done;
            }
        }
        self.rotated.push(rotated);
    }

    /// The container restarts: its runtime writes `<restart + 1>.log`, with a new link.
    fn restart(&mut self) {
        self.restart += 1;
        self.rotated.clear();
        fs::write(self.path(), b"").unwrap();
        self.link();
    }
}

/// The lines written, by token (`line-<n>`), and what each must become.
struct Lines {
    next: usize,
    expected: HashMap<String, Expected>,
}

impl Lines {
    fn token(&mut self) -> String {
        self.next += 1;
        format!("line-{:08}", self.next)
    }

    fn base(&self, c: &ContainerLog, stream: &'static str, data_stream: String) -> Expected {
        Expected {
            namespace: c.namespace,
            pod: c.pod,
            uid: c.uid,
            container: c.name,
            data_stream,
            stream,
            message: None,
            pad: None,
            malformed: false,
        }
    }

    /// A service's JSON line on stdout, `pad` long, in `parts` records.
    fn json(&mut self, c: &ContainerLog, service: &str, pad: usize, parts: usize) -> String {
        let token = self.token();
        let pad: String = (0..pad)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let line = format!(
            "{{\"@timestamp\":\"2026-12-02T19:00:00.000+03:30\",\"service.name\":\"{service}\",\"log.level\":\"INFO\",\"message\":\"{token}\",\"pad\":\"{pad}\"}}"
        );
        c.write("stdout", &line, parts);
        let mut e = self.base(
            c,
            "stdout",
            format!("logs-{}-default", service.replace('-', "_")),
        );
        e.pad = Some(pad);
        self.expected.insert(token.clone(), e);
        token
    }

    /// A line of text on stderr, in `parts` records.
    fn text(&mut self, c: &ContainerLog, parts: usize) -> String {
        let token = self.token();
        let line = format!("panic: something broke {token} {}", "x".repeat(40 * parts));
        c.write("stderr", &line, parts);
        let mut e = self.base(
            c,
            "stderr",
            format!("logs-{}-default", c.name.replace('-', "_")),
        );
        e.message = Some(line);
        self.expected.insert(token.clone(), e);
        token
    }

    /// A line that is no record of the runtime's format.
    fn garbage(&mut self, c: &ContainerLog) -> String {
        let token = self.token();
        let line = format!("not a record {token}");
        c.append(format!("{line}\n").as_bytes());
        let mut e = self.base(c, "", format!("logs-{}-default", c.name.replace('-', "_")));
        e.message = Some(line);
        e.malformed = true;
        self.expected.insert(token.clone(), e);
        token
    }

    /// A round of every kind of line into each container.
    fn round(&mut self, containers: &[&ContainerLog], n: usize) {
        for i in 0..n {
            for c in containers {
                let service = if c.format == Format::Docker {
                    "loan-resource"
                } else {
                    "payment"
                };
                match i % 7 {
                    0 => self.json(c, service, 3000, 4),
                    1 | 3 | 5 => self.json(c, service, 20, 1),
                    2 => self.text(c, 1),
                    4 => self.text(c, 3),
                    _ => self.json(c, service, 200, 2),
                };
            }
        }
    }
}

fn token_of(doc: &Value) -> Option<String> {
    let message = doc.get("message")?.as_str()?;
    let at = message.find("line-")?;
    message.get(at..at + 13).map(str::to_string)
}

/// The documents stored, by token.
fn stored(es: &es_test_server::ThreadedServer) -> HashMap<String, Vec<es_test_server::Document>> {
    let mut by_token: HashMap<String, Vec<_>> = HashMap::new();
    for d in es.documents("logs-*") {
        let token = token_of(&d.source).unwrap_or_else(|| format!("no token: {}", d.source));
        by_token.entry(token).or_default().push(d);
    }
    by_token
}

fn wait_for_all(es: &es_test_server::ThreadedServer, lines: &Lines) {
    wait_until("every line written so far", WAIT, || {
        let got = stored(es);
        lines.expected.keys().all(|t| got.contains_key(t))
    });
}

fn check(es: &es_test_server::ThreadedServer, lines: &Lines) {
    std::thread::sleep(Duration::from_millis(500));
    let got = stored(es);
    let unexpected: Vec<&String> = got
        .keys()
        .filter(|t| !lines.expected.contains_key(*t))
        .collect();
    assert!(
        unexpected.is_empty(),
        "documents that are no line written: {unexpected:?}"
    );
    for (token, e) in &lines.expected {
        let docs = got.get(token).unwrap_or_else(|| panic!("{token} missing"));
        assert_eq!(docs.len(), 1, "{token} stored {} times", docs.len());
        let d = &docs[0];
        let s = &d.source;
        assert_eq!(
            d.data_stream.as_deref(),
            Some(e.data_stream.as_str()),
            "{token}: {s}"
        );
        assert_eq!(s["kubernetes.namespace"], e.namespace, "{token}");
        assert_eq!(s["kubernetes.pod.name"], e.pod, "{token}");
        assert_eq!(s["kubernetes.pod.uid"], e.uid, "{token}");
        assert_eq!(s["kubernetes.container.name"], e.container, "{token}");
        if let Some(id) = s.get("container.id") {
            assert_eq!(id.as_str().map(str::len), Some(64), "{token}: {id}");
        }
        if e.malformed {
            assert_eq!(
                s["tags"],
                serde_json::json!(["_containerparsefailure"]),
                "{token}"
            );
            assert!(s.get("stream").is_none(), "{token}");
        } else {
            assert_eq!(s["stream"], e.stream, "{token}");
        }
        if let Some(message) = &e.message {
            assert_eq!(
                s["message"].as_str(),
                Some(message.as_str()),
                "{token}: whole"
            );
        }
        if let Some(pad) = &e.pad {
            assert_eq!(
                s["pad"].as_str(),
                Some(pad.as_str()),
                "{token}: joined whole"
            );
            assert_eq!(s["@timestamp"], "2026-12-02T19:00:00.000+03:30", "{token}");
        } else if e.malformed {
            assert_ne!(
                s["@timestamp"], TIME,
                "{token}: no record, no runtime's time"
            );
        } else {
            assert_eq!(s["@timestamp"], TIME, "{token}: the runtime's time");
        }
    }
}

#[test]
fn a_kubelet_s_logs_are_shipped_once_each_through_rotation_restart_kill_and_outage() {
    let es = es();
    let setup = Setup::new(&es.url());
    let root = setup.dir.path().join("var-log");
    let pods = format!("{}/pods/*/*/*.log*", root.display());
    let links = format!("{}/containers/*.log", root.display());
    let setup = setup
        .env("SHIPPER_PATHS", &format!("{pods},{links}"))
        .env("SHIPPER_FOLLOW_SYMLINKS", "true")
        .env("SHIPPER_MAX_LINE_BYTES", "64KiB");
    let shop = (
        "shop",
        "payment-7d9f8-x2k4q",
        "0f1e2d3c-aaaa-bbbb-cccc-123456789abc",
    );
    let legacy = ("legacy", "loan-0", "9a8b7c6d-1111-2222-3333-444455556666");
    let mut api = ContainerLog::new(&root, shop, "payment-api", Format::Cri);
    let mut sidecar = ContainerLog::new(&root, shop, "sidecar", Format::Cri);
    let mut loan = ContainerLog::new(&root, legacy, "loan", Format::Docker);
    let mut lines = Lines {
        next: 0,
        expected: HashMap::new(),
    };

    let mut shipper = setup.start();
    lines.round(&[&api, &sidecar, &loan], 60);
    lines.garbage(&api);
    lines.garbage(&loan);
    wait_for_all(&es, &lines);

    // kubelet rotates under load; the runtime writes on into the new file.
    lines.round(&[&api, &loan], 30);
    api.rotate("20261202-153000");
    loan.rotate("20261202-153000");
    lines.round(&[&api, &loan], 30);
    api.rotate("20261202-153100");
    lines.round(&[&api, &sidecar], 30);
    wait_for_all(&es, &lines);

    // kill -9 while shipping, then rotations and compression while down.
    lines.round(&[&api, &sidecar, &loan], 80);
    std::thread::sleep(Duration::from_millis(150));
    shipper.kill9();
    lines.round(&[&api, &loan], 20);
    api.rotate("20261202-153200");
    loan.rotate("20261202-153200");
    lines.round(&[&api, &loan], 20);
    api.rotate("20261202-153300");
    lines.round(&[&api], 10);
    shipper = setup.start();
    wait_for_all(&es, &lines);

    // kill -9 between the parts of a line: it is read again whole, never shipped in half.
    let token = lines.text(&sidecar, 1);
    wait_for_all(&es, &lines);
    let half = lines.token();
    let first_part_at = fs::metadata(sidecar.path()).unwrap().len();
    let text = format!("half written {half} {}", "y".repeat(300));
    sidecar.append(format!("{TIME} stderr P {}\n", &text[..100]).as_bytes());
    sidecar.append(format!("{TIME} stderr P {}\n", &text[100..200]).as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !stored(&es).contains_key(&half),
        "a line shipped before its last part (after {token})"
    );
    shipper.kill9();
    sidecar.append(format!("{TIME} stderr F {}\n", &text[200..]).as_bytes());
    let mut e = lines.base(&sidecar, "stderr", "logs-sidecar-default".into());
    e.message = Some(text);
    lines.expected.insert(half.clone(), e);
    shipper = setup.start();
    wait_for_all(&es, &lines);
    let docs = stored(&es);
    let doc = &docs[&half][0];
    assert_eq!(
        doc.source["log.offset"], first_part_at,
        "the offset of the first part"
    );
    assert!(
        doc.id.ends_with(&format!("{first_part_at:x}")),
        "{}",
        doc.id
    );

    // An outage, a rotation during it, and a container restart.
    es.stop_listening();
    lines.round(&[&api, &sidecar, &loan], 40);
    wait_until("the shipper to notice the outage", WAIT, || {
        shipper
            .metric("shipper_bulk_request_retries_total")
            .unwrap_or(0.0)
            > 0.0
            || shipper.metric("shipper_elasticsearch_up") == Some(0.0)
    });
    api.rotate("20261202-153400");
    sidecar.restart();
    lines.round(&[&api, &sidecar], 20);
    es.resume_listening().expect("resume");
    wait_for_all(&es, &lines);

    // kubelet keeps containerLogMaxFiles: the oldest rotation goes, read long ago.
    let oldest = api.rotated.remove(0);
    assert!(
        oldest.extension().is_some_and(|e| e == "gz"),
        "{}",
        oldest.display()
    );
    fs::remove_file(oldest).unwrap();
    lines.round(&[&api], 5);
    wait_for_all(&es, &lines);

    check(&es, &lines);
    assert!(
        shipper
            .metric("shipper_compressed_files_total")
            .unwrap_or(0.0)
            >= 1.0,
        "the gzipped rotations were looked at"
    );
    let log = shipper.own_log();
    assert!(!log.contains("panicked"), "{log}");
}

/// A pod scheduled while the shipper runs: its directory appears, then its container's
/// directory and log file inside it. With the globs evaluated only once an hour, only the
/// recursive watch of `pods/` can make the shipper find the file.
#[test]
fn a_pod_started_later_is_found_by_the_watch_of_the_pods_directory() {
    let es = es();
    let setup = Setup::new(&es.url());
    let root = setup.dir.path().join("var-log");
    fs::create_dir_all(root.join("pods")).unwrap();
    let setup = setup
        .env(
            "SHIPPER_PATHS",
            &format!("{}/pods/*/*/*.log*", root.display()),
        )
        .env("SHIPPER_SCAN_INTERVAL", "1h");
    let _shipper = setup.start();
    let pod = root.join("pods/shop_late-pod_1234-5678");
    fs::create_dir(&pod).unwrap();
    // The shipper looks at the new directory (nothing to read in it yet).
    std::thread::sleep(Duration::from_millis(1500));
    let c = ContainerLog::new(&root, ("shop", "late-pod", "1234-5678"), "app", Format::Cri);
    let mut lines = Lines {
        next: 0,
        expected: HashMap::new(),
    };
    lines.round(&[&c], 14);
    wait_for_all(&es, &lines);
    check(&es, &lines);
}
