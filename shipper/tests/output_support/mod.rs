//! Shared pieces of the Elasticsearch output tests: batches shaped like the batcher's, an
//! acknowledgement recorder, and an output wired to an `es-test-server`.

#![allow(dead_code)] // each test file uses a different part

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shipper::batch::{Acknowledge, Batch, BatchItem, Origin};
use shipper::output::{ElasticsearchOutput, OutputConfig};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The data stream the test documents go to (matched by the embedded index template).
pub const STREAM: &str = "logs-payment-default";

/// The `_id` of test document `n`.
pub fn doc_id(n: u64) -> String {
    format!("00000000feedbeef-{n:x}")
}

/// A document source with what a data stream needs (`@timestamp`).
pub fn source(n: u64) -> String {
    format!(
        r#"{{"@timestamp":"2025-11-03T10:00:00.000Z","message":"payment {n} accepted","log.level":"info","service":{{"name":"payment"}},"log":{{"offset":{n}}}}}"#
    )
}

/// A batch of documents `range` into `index`, built like the batcher builds it.
pub fn batch(index: &str, range: std::ops::Range<u64>) -> Batch {
    let docs: Vec<(String, String, String)> = range
        .map(|n| (index.to_string(), doc_id(n), source(n)))
        .collect();
    batch_of(&docs)
}

/// A batch of `(index, id, source)` documents; the origin's `seq` is parsed from the id.
pub fn batch_of(docs: &[(String, String, String)]) -> Batch {
    let mut b = Batch::default();
    for (index, id, source) in docs {
        let action_start = b.body.len();
        b.body.extend_from_slice(
            format!(r#"{{"create":{{"_index":"{index}","_id":"{id}"}}}}"#).as_bytes(),
        );
        b.body.push(b'\n');
        let source_start = b.body.len();
        b.body.extend_from_slice(source.as_bytes());
        b.body.push(b'\n');
        let seq = id
            .rsplit('-')
            .next()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .unwrap_or(u64::MAX);
        b.items.push(BatchItem {
            action_start,
            source_start,
            end: b.body.len(),
            id_hash: shipper::batch::id_hash(id.as_bytes()),
            origin: Origin {
                file: 1,
                seq,
                budget_bytes: source.len() as u32,
            },
            may_be_stored: false,
        });
    }
    b
}

/// Records every acknowledgement.
#[derive(Default)]
pub struct Acks {
    seen: Mutex<Vec<Origin>>,
}

impl Acknowledge for Acks {
    fn acknowledge(&self, origins: &[Origin]) {
        self.seen.lock().unwrap().extend_from_slice(origins);
    }
}

impl Acks {
    pub fn seqs(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.seen.lock().unwrap().iter().map(|o| o.seq).collect();
        v.sort_unstable();
        v
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Waits until `n` acknowledgements arrived (panics after `limit`).
    pub async fn wait_for(&self, n: usize, limit: Duration) {
        let started = tokio::time::Instant::now();
        while self.count() < n {
            assert!(
                started.elapsed() < limit,
                "only {} of {n} documents acknowledged after {limit:?}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Output settings for tests: fast retries, dead letters in `dir`.
pub fn config(url: &str, dir: &Path) -> OutputConfig {
    let mut c = OutputConfig::new(vec![url.parse().unwrap()], dir.join("dead-letters"));
    c.retry_initial = Duration::from_millis(10);
    c.retry_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(10);
    c.shutdown_deadline = Duration::from_secs(5);
    c
}

/// A prepared output running in the background.
pub struct Running {
    pub batches: mpsc::Sender<Batch>,
    pub acks: Arc<Acks>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
    pub stats: Arc<shipper::output::OutputStats>,
}

impl Running {
    /// Closes the channel and waits for `run` to deliver everything and return.
    pub async fn finish(self) -> Arc<Acks> {
        drop(self.batches);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("run did not return")
            .expect("run panicked")
            .expect("run failed");
        self.acks
    }
}

/// Prepares (waits, installs templates) and starts an output with `config`.
pub async fn start(config: OutputConfig) -> Running {
    let output = ElasticsearchOutput::new(config).expect("output");
    let shutdown = CancellationToken::new();
    tokio::time::timeout(Duration::from_secs(30), output.prepare(&shutdown))
        .await
        .expect("prepare timed out")
        .expect("prepare failed");
    let stats = output.stats();
    let (tx, rx) = mpsc::channel(4);
    let acks = Arc::new(Acks::default());
    let task = tokio::spawn(output.run(rx, acks.clone() as Arc<dyn Acknowledge>, shutdown.clone()));
    Running {
        batches: tx,
        acks,
        shutdown,
        task,
        stats,
    }
}

/// The dead-letter records written under `dir` (all segments).
pub fn dead_letters(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("dead-letters")) else {
        return out;
    };
    let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths {
        for line in std::fs::read_to_string(p).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}
