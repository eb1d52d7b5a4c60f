//! Model tests of the tailer: random sequences of writes, rename rotations, copytruncates,
//! deletions, compression of rotated files (logrotate's `compress`), acknowledgements, lost
//! responses and restarts, run against the real reader on
//! real files, and checked against the simplest model there is: every line written ends up in
//! the index exactly once, under one id.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

use super::acknowledgements::AckTable;
use super::checkpoint::Checkpointer;
use super::file_server::{FileServer, FileServerConfig, InputStats};
use super::read_budget::ReadBudget;
use crate::batch::{Acknowledge, Batch, BatchLimits};
use crate::encode::{EncodeConfig, Encoder};

#[derive(Debug, Clone)]
enum Op {
    /// Lines appended to one of two services' active files.
    Write(usize, usize),
    RotateRename(usize),
    CopyTruncate(usize),
    /// copytruncate with the writer and the reader going on between the copy and the
    /// truncation: lines written after the copy are read from the original, then the copy
    /// (ending before the read position) appears next to the truncated original.
    CopyReadTruncate(usize, usize),
    Step,
    AckAll,
    /// Elasticsearch stored the held batches but the responses were lost.
    IndexWithoutAck,
    Restart,
    DeleteShippedRotated,
    /// logrotate's `compress`: the oldest rotated plain file becomes `<name>.gz` and goes.
    CompressRotated,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..25, 0usize..2).prop_map(|(n, f)| Op::Write(n, f)),
        1 => (0usize..2).prop_map(Op::RotateRename),
        1 => (0usize..2).prop_map(Op::CopyTruncate),
        1 => (1usize..6, 0usize..2).prop_map(|(n, f)| Op::CopyReadTruncate(n, f)),
        3 => Just(Op::Step),
        2 => Just(Op::AckAll),
        1 => Just(Op::IndexWithoutAck),
        1 => Just(Op::Restart),
        1 => Just(Op::DeleteShippedRotated),
        1 => Just(Op::CompressRotated),
    ]
}

/// A stand-in for Elasticsearch: `create` by id, first write wins (later ones are 409s).
#[derive(Default)]
struct Index {
    docs: HashMap<String, String>,
    conflicts: Vec<String>,
    /// Ids sent again after being stored without the flag that makes the output look them
    /// up first: after a rollover, each would be stored twice.
    unflagged_resends: Vec<String>,
}

impl Index {
    fn store(&mut self, batch: &Batch) {
        for item in &batch.items {
            let action: serde_json::Value =
                serde_json::from_slice(item.action(&batch.body)).expect("action JSON");
            let source: serde_json::Value =
                serde_json::from_slice(item.source(&batch.body)).expect("source JSON");
            let id = action["create"]["_id"].as_str().expect("id").to_string();
            let msg = source["message"].as_str().expect("message").to_string();
            match self.docs.get(&id) {
                Some(existing) if *existing != msg => self
                    .conflicts
                    .push(format!("id {id} holds {existing:?} and {msg:?}")),
                Some(_) if !item.may_be_stored => self.unflagged_resends.push(id),
                Some(_) => {}
                None => {
                    self.docs.insert(id, msg);
                }
            }
        }
    }
}

struct Harness {
    dir: PathBuf,
    data: PathBuf,
    server: Option<FileServer>,
    table: Arc<AckTable>,
    rx: tokio::sync::mpsc::Receiver<Batch>,
    held: Vec<Batch>,
    index: Index,
    written: Vec<String>,
    /// Every new file starts with the same header line (a banner), which makes first
    /// lines, and so fingerprints, collide across files.
    header: bool,
    headers_written: usize,
    next_line: usize,
    next_rotation: usize,
}

impl Harness {
    fn new(root: &Path) -> Harness {
        let dir = root.join("logs");
        let data = root.join("data");
        fs::create_dir_all(&dir).unwrap();
        let (server, table, rx) = start(&dir, &data);
        Harness {
            dir,
            data,
            server: Some(server),
            table,
            rx,
            held: Vec::new(),
            index: Index::default(),
            written: Vec::new(),
            header: false,
            headers_written: 0,
            next_line: 0,
            next_rotation: 0,
        }
    }

    fn active(&self, file: usize) -> PathBuf {
        self.dir.join(format!("app{file}.log"))
    }

    fn rotated_name(&mut self, file: usize) -> PathBuf {
        let to = self
            .dir
            .join(format!("app{file}.log.{:04}", self.next_rotation));
        self.next_rotation += 1;
        to
    }

    fn rotated(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(&self.dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().ends_with(".log"))
            })
            .collect();
        v.sort();
        v
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Write(n, file) => {
                let mut f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.active(*file))
                    .unwrap();
                let mut buf = String::new();
                if self.header && f.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
                    buf.push_str(HEADER);
                    buf.push('\n');
                    self.headers_written += 1;
                }
                for _ in 0..*n {
                    let line = format!("line-{:06}", self.next_line);
                    self.next_line += 1;
                    buf.push_str(&format!(
                        "{{\"service.name\":\"app{file}\",\"message\":\"{line}\"}}\n"
                    ));
                    self.written.push(line);
                }
                f.write_all(buf.as_bytes()).unwrap();
            }
            Op::RotateRename(file) => {
                if self.active(*file).exists() {
                    let to = self.rotated_name(*file);
                    fs::rename(self.active(*file), to).unwrap();
                }
            }
            Op::CopyTruncate(file) => {
                if self.active(*file).exists() {
                    let to = self.rotated_name(*file);
                    fs::copy(self.active(*file), &to).unwrap();
                    OpenOptions::new()
                        .write(true)
                        .open(self.active(*file))
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
            }
            Op::CopyReadTruncate(n, file) => {
                if self.active(*file).exists() {
                    let to = self.rotated_name(*file);
                    fs::copy(self.active(*file), &to).unwrap();
                    // Hidden from the globs until the truncation, as if the scan had not come
                    // by yet: the read below happens with the original alone.
                    let hidden = self.dir.with_file_name("copy-in-progress");
                    fs::rename(&to, &hidden).unwrap();
                    self.apply(&Op::Write(*n, *file));
                    self.step();
                    // The lines written after the copy live only in the original until the
                    // truncation: if the process died with them in flight they would be lost
                    // with any shipper. They are delivered, so a later restart tests what
                    // the checkpoint remembers, not that impossibility.
                    self.ack_all();
                    OpenOptions::new()
                        .write(true)
                        .open(self.active(*file))
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                    fs::rename(&hidden, &to).unwrap();
                }
            }
            Op::Step => self.step(),
            Op::AckAll => self.ack_all(),
            Op::IndexWithoutAck => {
                self.collect();
                for b in self.held.drain(..) {
                    self.index.store(&b);
                }
            }
            Op::Restart => self.restart(),
            Op::CompressRotated => {
                let plain = self
                    .rotated()
                    .into_iter()
                    .find(|p| !super::compressed::is_compressed(p));
                if let Some(plain) = plain {
                    let mut gz = plain.clone().into_os_string();
                    gz.push(".gz");
                    fs::write(&gz, gzip(&fs::read(&plain).unwrap())).unwrap();
                    fs::remove_file(&plain).unwrap();
                }
            }
            Op::DeleteShippedRotated => {
                self.settle();
                if let Some(oldest) = self.rotated().first() {
                    fs::remove_file(oldest).unwrap();
                }
                self.step();
            }
        }
    }

    fn step(&mut self) {
        if let Some(s) = self.server.as_mut() {
            assert!(s.step(), "reading stopped");
        }
        self.collect();
    }

    fn collect(&mut self) {
        while let Ok(b) = self.rx.try_recv() {
            self.held.push(b);
        }
    }

    fn ack_all(&mut self) {
        self.collect();
        for b in std::mem::take(&mut self.held) {
            self.index.store(&b);
            let origins: Vec<_> = b.items.iter().map(|i| i.origin).collect();
            self.table.acknowledge(&origins);
        }
    }

    /// Reads and acknowledges until nothing moves.
    fn settle(&mut self) {
        for _ in 0..6 {
            self.step();
            self.ack_all();
        }
    }

    /// The process dies: batches in flight are lost (not acknowledged), the checkpoint on disk
    /// is the last one saved.
    fn restart(&mut self) {
        self.collect();
        self.held.clear();
        self.server = None;
        let (server, table, rx) = start(&self.dir, &self.data);
        self.server = Some(server);
        self.table = table;
        self.rx = rx;
    }
}

fn start(
    dir: &Path,
    data: &Path,
) -> (
    FileServer,
    Arc<AckTable>,
    tokio::sync::mpsc::Receiver<Batch>,
) {
    let table = Arc::new(AckTable::new(Arc::new(ReadBudget::new(1 << 30))));
    let checkpointer = Arc::new(Checkpointer::new(data).unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(100_000);
    let cfg = FileServerConfig {
        include: vec![format!("{}/app*.log*", dir.display())],
        exclude: vec![],
        max_line_bytes: 1024,
        poll_interval: Duration::from_millis(10),
        scan_interval: Duration::from_millis(10),
        rotate_wait: Duration::ZERO,
        // Every file idle at its end is closed at once, so every sequence also tests
        // closing and opening again by identity.
        close_inactive: Duration::ZERO,
        checkpoint_interval: Duration::ZERO,
        forget_after: Duration::from_secs(3600),
        bytes_per_turn: 4096,
        follow_symlinks: false,
        format: Default::default(),
    };
    let encode = EncodeConfig {
        host_name: "test".into(),
        agent_name: schema::agent::NAME.into(),
        namespace: "default".into(),
        batch: BatchLimits {
            max_docs: 7,
            max_bytes: 1 << 20,
            max_wait: Duration::from_secs(3600),
        },
    };
    let stats = Arc::new(InputStats::default());
    let shutdown = CancellationToken::new();
    let encoder = Encoder::new(
        &encode,
        Arc::clone(table.budget()),
        tx,
        shutdown.clone(),
        Arc::clone(&stats),
        None,
    );
    let server = FileServer::new(
        cfg,
        Arc::clone(&table),
        checkpointer,
        Box::new(encoder),
        shutdown,
        stats,
    )
    .unwrap();
    (server, table, rx)
}

const HEADER: &str = "# app log, format 1";

fn gzip(content: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(content).unwrap();
    e.finish().unwrap()
}

fn check(ops: &[Op]) -> Result<(), TestCaseError> {
    check_with(ops, false)
}

fn check_with(ops: &[Op], header: bool) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path());
    h.header = header;
    for op in ops {
        h.apply(op);
    }
    h.settle();
    h.restart();
    h.settle();
    prop_assert!(
        h.index.conflicts.is_empty(),
        "id conflicts: {:?}",
        h.index.conflicts
    );
    prop_assert!(
        h.index.unflagged_resends.is_empty(),
        "{} stored documents sent again without the replay flag, first {:?}",
        h.index.unflagged_resends.len(),
        h.index.unflagged_resends.first()
    );
    let mut per_line: HashMap<&str, usize> = HashMap::new();
    let mut headers = 0;
    for msg in h.index.docs.values() {
        if msg == HEADER {
            headers += 1;
            continue;
        }
        *per_line.entry(msg.as_str()).or_default() += 1;
    }
    prop_assert_eq!(headers, h.headers_written, "one header document per file");
    let missing: Vec<&String> = h
        .written
        .iter()
        .filter(|l| !per_line.contains_key(l.as_str()))
        .collect();
    prop_assert!(
        missing.is_empty(),
        "lost {} lines, first {:?}",
        missing.len(),
        missing.first()
    );
    let twice: Vec<(&&str, &usize)> = per_line.iter().filter(|(_, n)| **n > 1).collect();
    prop_assert!(
        twice.is_empty(),
        "indexed twice under different ids: {:?}",
        twice.first()
    );
    prop_assert_eq!(h.index.docs.len(), h.written.len() + h.headers_written);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_line_is_indexed_exactly_once(
        header in proptest::bool::ANY,
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        check_with(&ops, header)?;
    }
}

#[test]
fn files_that_share_their_first_line_are_still_told_apart() {
    check_with(
        &[
            Op::Write(3, 0),
            Op::Step,
            Op::RotateRename(0),
            Op::Write(2, 0),
            Op::Step,
            Op::Write(4, 1),
            Op::CopyTruncate(1),
            Op::Write(1, 1),
            Op::Restart,
            Op::Write(2, 0),
        ],
        true,
    )
    .unwrap();
}

#[test]
fn copytruncate_with_lines_read_between_the_copy_and_the_truncation() {
    check(&[
        Op::Write(5, 0),
        Op::Step,
        Op::CopyReadTruncate(3, 0),
        Op::Step,
        Op::Write(2, 0),
    ])
    .unwrap();
}

#[test]
fn copytruncate_with_reads_in_between_then_restart_before_seeing_the_copy() {
    check(&[
        Op::Write(5, 0),
        Op::Step,
        Op::CopyReadTruncate(4, 0),
        Op::Restart,
        Op::Write(2, 0),
    ])
    .unwrap();
}

#[test]
fn copytruncate_then_restart_before_reading_the_copy() {
    check(&[
        Op::Write(5, 0),
        Op::Step,
        Op::Write(3, 0),
        Op::CopyTruncate(0),
        Op::Restart,
        Op::Write(2, 0),
    ])
    .unwrap();
}

#[test]
fn rename_rotation_while_responses_are_lost() {
    check(&[
        Op::Write(10, 0),
        Op::Write(7, 1),
        Op::Step,
        Op::IndexWithoutAck,
        Op::RotateRename(0),
        Op::Write(4, 0),
        Op::Restart,
        Op::CopyTruncate(1),
        Op::Step,
        Op::DeleteShippedRotated,
        Op::Write(3, 1),
    ])
    .unwrap();
}

#[test]
fn a_rotation_compressed_while_down_resumes_inside_the_compressed_file() {
    check(&[
        Op::Write(20, 0),
        Op::Step,
        Op::AckAll,
        Op::Write(15, 0),
        Op::Restart,
        Op::RotateRename(0),
        Op::CompressRotated,
        Op::Write(5, 0),
    ])
    .unwrap();
}

#[test]
fn a_rotation_compressed_while_its_original_is_being_read_is_not_read_twice() {
    check(&[
        Op::Write(20, 0),
        Op::Step,
        Op::Write(15, 0),
        Op::RotateRename(0),
        Op::CompressRotated,
        Op::Step,
        Op::AckAll,
        Op::Restart,
        Op::Write(5, 0),
    ])
    .unwrap();
}

#[test]
fn compressed_rotations_of_files_with_a_common_header_are_told_apart() {
    check_with(
        &[
            Op::Write(4, 0),
            Op::Step,
            Op::RotateRename(0),
            Op::Write(3, 0),
            Op::RotateRename(0),
            Op::CompressRotated,
            Op::Restart,
            Op::CompressRotated,
            Op::Write(2, 0),
            Op::Step,
            Op::IndexWithoutAck,
            Op::Restart,
        ],
        true,
    )
    .unwrap();
}

#[test]
fn a_compressed_file_of_a_fully_read_identity_costs_one_first_line_read() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path());
    h.apply(&Op::Write(50, 0));
    h.apply(&Op::RotateRename(0));
    h.settle();
    h.apply(&Op::CompressRotated);
    h.settle();
    let before = h.index.docs.len();
    assert_eq!(h.written.len(), before);
    h.restart();
    let decompressed = super::compressed::DECOMPRESSED.with(|c| c.replace(0));
    assert!(
        decompressed > 0,
        "the compressed file was looked at after the rotation"
    );
    h.settle();
    assert_eq!(h.index.docs.len(), before, "nothing new");
    let decompressed = super::compressed::DECOMPRESSED.with(|c| c.get());
    let first_line = 60;
    assert!(
        decompressed <= 2 * 4096 && decompressed >= first_line,
        "{decompressed} bytes decompressed: the first line and the head only"
    );
}

#[test]
fn a_truncated_compressed_file_ships_what_decompresses_and_ends() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path());
    let lines: String = (0..5000)
        .map(|n| format!("{{\"service.name\":\"app0\",\"message\":\"line-{n:06}\"}}\n"))
        .collect();
    let whole = gzip(lines.as_bytes());
    fs::write(h.dir.join("app0.log.3.gz"), &whole[..whole.len() / 2]).unwrap();
    fs::write(h.dir.join("app0.log.4.gz"), b"not gzip at all\n").unwrap();
    h.settle();
    h.settle();
    let got = h.index.docs.len();
    assert!(got > 100 && got < 5000, "{got} documents");
    assert!(h.index.conflicts.is_empty());
    for n in 0..got - 1 {
        let line = format!("line-{n:06}");
        assert!(
            h.index.docs.values().any(|m| *m == line),
            "{line} is missing: the lines before the damage are shipped"
        );
    }
}

#[test]
fn a_compressed_rotation_with_lines_sent_but_unacknowledged_resumes_after_a_restart() {
    check(&[
        Op::Write(1, 0),
        Op::DeleteShippedRotated,
        Op::Write(1, 0),
        Op::Step,
        Op::RotateRename(0),
        Op::CompressRotated,
        Op::IndexWithoutAck,
    ])
    .unwrap();
}

#[test]
fn a_lone_unterminated_line_is_shipped_once_when_its_file_is_renamed_away_or_deleted() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path());
    let renamed = h.dir.join("app0.log");
    let deleted = h.dir.join("app1.log");
    let stays = h.dir.join("app2.log");
    fs::write(&renamed, "renamed away").unwrap();
    fs::write(&deleted, "deleted").unwrap();
    fs::write(&stays, "still being written").unwrap();
    h.settle();
    assert!(
        h.index.docs.is_empty(),
        "a partial line waits for its newline"
    );
    fs::rename(&renamed, root.path().join("elsewhere.txt")).unwrap();
    fs::remove_file(&deleted).unwrap();
    h.settle();
    h.restart();
    h.settle();
    let mut messages: Vec<&str> = h.index.docs.values().map(String::as_str).collect();
    messages.sort();
    assert_eq!(messages, vec!["deleted", "renamed away"], "each once");
}

#[test]
fn compressed_files_with_a_common_header_and_the_same_length_are_told_apart() {
    check_with(
        &[
            Op::Write(3, 0),
            Op::Write(2, 0),
            Op::Write(10, 0),
            Op::Step,
            Op::Write(15, 1),
            Op::RotateRename(0),
            Op::CompressRotated,
            Op::CopyTruncate(1),
            Op::CompressRotated,
        ],
        true,
    )
    .unwrap();
}
