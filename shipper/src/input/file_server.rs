//! The reading loop: finds files, tells them apart, reads new lines and hands them on.
//!
//! One thread reads every file (reading is cheap next to encoding and sending, and one
//! thread keeps the order of lines per file trivially right). Per file it follows the
//! inode it opened, not the name: after a rename rotation it reads the old file to its end
//! while the new one is picked up under the name; after a copytruncate it sees the file
//! shrink, gives up that identity, and continues the same identity in the copy, if the globs
//! see the copy, exactly where it stopped. Lines go through the read budget (which pauses
//! this loop while the output is behind), are encoded into the current batch, and recorded
//! in the acknowledgement table so that only acknowledged lines move the checkpoint.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::acknowledgements::AckTable;
use super::checkpoint::{CheckpointError, Checkpointer, FileCheckpoint};
use super::checkpoint_writer::{CheckpointWriter, Persister};
use super::fingerprint::{fingerprint, salted_key, FileKey, Fingerprint};
use super::line_reader::{Line, LineReader};
use super::paths::{watch, PathWatch, PathsProvider, Wake};
use super::read_budget::ReadBudget;
use crate::batch::{Batch, BatchLimits, Batcher, Origin};
use crate::transform::{Encoded, Enricher, SourceFile};

/// Bytes of enrichment assumed per line when charging the read budget, so the budget bounds
/// the encoded documents held in memory, not only the raw lines.
const ENRICHMENT_ALLOWANCE: usize = 320;

#[derive(Debug, Clone)]
pub struct FileServerConfig {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub max_line_bytes: usize,
    /// Longest sleep between looks at the open files when no event arrives.
    pub poll_interval: Duration,
    /// How often the globs are evaluated again even without filesystem events.
    pub scan_interval: Duration,
    /// How long a file renamed out of the globs or deleted stays open after its last byte
    /// was read, for a writer that has not switched to the new file yet.
    pub rotate_wait: Duration,
    pub checkpoint_interval: Duration,
    /// Checkpoints of files not seen for this long are forgotten.
    pub forget_after: Duration,
    /// Bytes read from one file before giving the next file its turn.
    pub bytes_per_turn: usize,
    pub host_name: String,
    pub agent_name: String,
    pub namespace: String,
    pub batch: BatchLimits,
}

/// Counters the summary line and `/metrics` read.
#[derive(Debug, Default)]
pub struct InputStats {
    pub lines_read: AtomicU64,
    pub bytes_read: AtomicU64,
    pub files_open: AtomicU64,
    pub bytes_behind: AtomicU64,
    pub deleted_files_open: AtomicU64,
    /// Age of the oldest line read but not yet acknowledged, over all files.
    pub lag_ms: AtomicU64,
    pub paused: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum FileServerError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("invalid paths: {0}")]
    Paths(#[from] super::paths::PathsError),
}

/// Why reading stops.
enum Stop {
    Shutdown,
    OutputGone,
}

struct Watcher {
    slot: u32,
    key: FileKey,
    fingerprint: Fingerprint,
    dev: u64,
    ino: u64,
    path: PathBuf,
    source: SourceFile,
    reader: LineReader,
    /// Size and modification time when the head was last verified.
    checked: (u64, i64, i64),
    size: u64,
    last_data: Instant,
    /// Renamed out of the globs or deleted.
    gone: bool,
    deleted: bool,
}

enum Verdict {
    Keep,
    /// The file shrank or was rewritten from the start: this identity no longer lives here.
    Truncated,
    /// Renamed away or deleted, read to its end, and idle: closed.
    Finished,
}

/// What the loop needs besides the watchers (kept apart so a line borrowed from a watcher's
/// reader can be handed to it).
struct Sink {
    table: Arc<AckTable>,
    budget: Arc<ReadBudget>,
    persister: Option<Persister>,
    enricher: Enricher,
    batcher: Batcher,
    tx: tokio::sync::mpsc::Sender<Batch>,
    shutdown: CancellationToken,
    stats: Arc<InputStats>,
    ingested: String,
    last_lag: Instant,
    checkpoint_interval: Duration,
    lines: u64,
    bytes: u64,
}

pub struct FileServer {
    cfg: FileServerConfig,
    paths: PathsProvider,
    watchers: Vec<Watcher>,
    sink: Sink,
    wake_rx: mpsc::Receiver<Wake>,
    _watch: Option<PathWatch>,
    last_scan: Option<Instant>,
    scan_needed: bool,
    /// Some matching file has no complete first line yet, so it could not be identified:
    /// look again on every wake-up, not only at the next periodic scan.
    unidentified: bool,
    /// Device and inode of every file the current scan found.
    present: std::collections::HashMap<(u64, u64), PathBuf>,
}

impl FileServer {
    /// Loads the checkpoints into `table` and prepares the loop; no file is opened yet.
    pub fn new(
        cfg: FileServerConfig,
        table: Arc<AckTable>,
        checkpointer: Arc<Checkpointer>,
        tx: tokio::sync::mpsc::Sender<Batch>,
        shutdown: CancellationToken,
        stats: Arc<InputStats>,
    ) -> Result<FileServer, FileServerError> {
        let paths = PathsProvider::new(&cfg.include, &cfg.exclude)?;
        let loaded = checkpointer.load()?;
        if let Some(aside) = &loaded.moved_aside {
            tracing::warn!(
                moved_to = %aside.display(),
                "the checkpoint file could not be read; starting over (documents already indexed will be answered 409 and not duplicated)"
            );
        }
        tracing::info!(files = loaded.files.len(), path = %checkpointer.path().display(), "checkpoints loaded");
        for cp in loaded.files.iter().cloned() {
            table.insert(cp);
        }
        let (wake_tx, wake_rx) = mpsc::channel();
        let watch = match watch(&paths, wake_tx) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "filesystem events unavailable; relying on the periodic rescan");
                None
            }
        };
        let budget = Arc::clone(table.budget());
        let sink = Sink {
            budget,
            persister: Some(Persister::new(
                Arc::clone(&table),
                checkpointer,
                cfg.forget_after,
            )),
            enricher: Enricher::new(&cfg.host_name, &cfg.agent_name, &cfg.namespace),
            batcher: Batcher::new(cfg.batch),
            tx,
            shutdown,
            stats,
            ingested: now_rfc3339(),
            last_lag: Instant::now(),
            checkpoint_interval: cfg.checkpoint_interval,
            table,
            lines: 0,
            bytes: 0,
        };
        Ok(FileServer {
            cfg,
            paths,
            watchers: Vec::new(),
            sink,
            wake_rx,
            _watch: watch,
            last_scan: None,
            scan_needed: true,
            unidentified: false,
            present: Default::default(),
        })
    }

    /// Runs until shutdown (or until the output stops taking batches), then sends the batch
    /// in progress and saves the checkpoints. Blocking: run it on its own thread.
    pub fn run(mut self) {
        let writer = self.sink.persister.take().and_then(|p| {
            match CheckpointWriter::spawn(p, self.cfg.checkpoint_interval) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the checkpoint thread; checkpoints are saved at shutdown only");
                    None
                }
            }
        });
        loop {
            if self.sink.shutdown.is_cancelled() {
                break;
            }
            let now = Instant::now();
            let scan_due = self
                .last_scan
                .is_none_or(|t| now.duration_since(t) >= self.cfg.scan_interval);
            let retry_unidentified = self.unidentified
                && self.last_scan.is_none_or(|t| {
                    now.duration_since(t) >= self.cfg.poll_interval.min(Duration::from_millis(100))
                });
            if self.scan_needed || scan_due || retry_unidentified {
                self.scan();
            }
            self.sink.ingested = now_rfc3339();
            match self.read_round() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(Stop::Shutdown) => break,
                Err(Stop::OutputGone) => {
                    tracing::warn!("the output stopped taking batches; reading stops");
                    break;
                }
            }
            // Nothing more to read now: send what waited long enough, save, sleep.
            if self.sink.batcher.is_due(Instant::now()) && self.sink.flush().is_err() {
                break;
            }
            self.sink.maybe_publish_lag(&self.watchers);
            self.sink.publish_round();
            let mut sleep = self.cfg.poll_interval;
            if let Some(deadline) = self.sink.batcher.deadline() {
                sleep = sleep.min(deadline.saturating_duration_since(Instant::now()));
            }
            match self.wake_rx.recv_timeout(sleep) {
                Ok(wake) => {
                    self.scan_needed |= wake == Wake::Rescan || self.unidentified;
                    while let Ok(more) = self.wake_rx.try_recv() {
                        self.scan_needed |= more == Wake::Rescan;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(sleep),
            }
        }
        let _ = self.sink.flush();
        self.sink.publish_round();
        if let Some(w) = writer {
            self.sink.persister = w.stop();
        }
        self.sink.save_now(&self.watchers);
        tracing::info!("reading stopped");
    }

    /// Shows every document read to `tap` (alert rules), on this thread.
    pub fn set_tap(&mut self, tap: Box<dyn crate::transform::DocumentTap>) {
        let cfg = &self.cfg;
        let enricher = Enricher::new(&cfg.host_name, &cfg.agent_name, &cfg.namespace).with_tap(tap);
        self.sink.enricher = enricher;
    }

    /// One deterministic pass, for tests and tools: evaluate the globs, read everything that
    /// can be read now, send the batch in progress and save the checkpoints. Returns false
    /// when reading stopped (shutdown, or the output is gone).
    pub fn step(&mut self) -> bool {
        for _ in 0..4 {
            self.scan();
            self.sink.ingested = now_rfc3339();
            loop {
                match self.read_round() {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(_) => return false,
                }
            }
            if !self.scan_needed {
                break;
            }
        }
        if self.sink.flush().is_err() {
            return false;
        }
        self.sink.publish_round();
        self.sink.save_now(&self.watchers);
        true
    }

    /// Gives each open file one turn; true if anything was read.
    fn read_round(&mut self) -> Result<bool, Stop> {
        let mut progressed = false;
        let mut index = 0;
        while index < self.watchers.len() {
            let before = self.watchers[index].reader.line_offset();
            let verdict = poll(&mut self.watchers[index], &mut self.sink, &self.cfg)?;
            let w = &self.watchers[index];
            progressed |= w.reader.line_offset() != before;
            match verdict {
                Verdict::Keep => index += 1,
                Verdict::Truncated => {
                    tracing::info!(path = %w.path.display(), offset = before, "file truncated or rewritten; its lines will be read again from the start under a new identity");
                    self.close(index);
                    self.scan_needed = true;
                }
                Verdict::Finished => {
                    tracing::info!(path = %w.path.display(), "finished a rotated or deleted file");
                    self.close(index);
                }
            }
        }
        if self.sink.batcher.is_full() {
            self.sink.flush()?;
        }
        Ok(progressed)
    }

    fn close(&mut self, index: usize) {
        let w = self.watchers.swap_remove(index);
        metrics::gauge!("shipper_file_bytes_behind", "path" => w.path.display().to_string())
            .set(0.0);
    }

    /// Evaluates the globs: follows renames, opens new files, notices vanished ones.
    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        self.scan_needed = false;
        self.unidentified = false;
        let now_unix = unix_now();
        let mut seen: HashSet<u32> = HashSet::new();
        let found: Vec<(PathBuf, u64, u64)> = self
            .paths
            .discover()
            .into_iter()
            .filter_map(|path| {
                let meta = std::fs::metadata(&path).ok()?;
                Some((path, meta.dev(), meta.ino()))
            })
            .collect();
        self.present = found
            .iter()
            .map(|(path, dev, ino)| ((*dev, *ino), path.clone()))
            .collect();
        for (path, dev, ino) in found {
            if let Some(w) = self
                .watchers
                .iter_mut()
                .find(|w| w.dev == dev && w.ino == ino)
            {
                seen.insert(w.slot);
                if w.path != path && !points_to(&w.path, dev, ino) && points_to(&path, dev, ino) {
                    tracing::info!(from = %w.path.display(), to = %path.display(), "file renamed");
                    w.path = path.clone();
                    w.source = SourceFile::new(w.key, &path);
                    self.sink.table.relocate(w.slot, dev, ino, path, now_unix);
                }
                w.gone = false;
                continue;
            }
            match self.open(&path, dev, ino, now_unix) {
                Ok(Some(slot)) => {
                    seen.insert(slot);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot open the file; will try again");
                }
            }
        }
        for w in &mut self.watchers {
            if seen.contains(&w.slot) {
                self.sink.table.touch(w.slot, now_unix);
            } else if !w.gone {
                tracing::debug!(path = %w.path.display(), "file left the globs; reading it to its end");
                w.gone = true;
            }
        }
        self.sink
            .stats
            .files_open
            .store(self.watchers.len() as u64, Ordering::Relaxed);
        metrics::gauge!("shipper_files_open").set(self.watchers.len() as f64);
    }

    /// Decides which identity a newly seen file has and opens a watcher on it; returns its
    /// slot, or `None` when the file cannot be told apart yet or is a copy of a file being read.
    fn open(
        &mut self,
        path: &Path,
        dev: u64,
        ino: u64,
        now_unix: u64,
    ) -> std::io::Result<Option<u32>> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != (dev, ino) {
            // Renamed between the look at the directory and the open (a rotation cascade
            // shifting names): what was opened is another file. Decide at the next scan, from
            // the file itself; a watcher must never pair one file's descriptor with another
            // file's inode.
            self.scan_needed = true;
            return Ok(None);
        }
        let size = meta.len();
        let Some(fp) = fingerprint(&file, false)? else {
            self.unidentified = true; // no complete first line yet
            return Ok(None);
        };
        for w in self.watchers.iter().filter(|w| w.fingerprint == fp) {
            // Is the file being read still what was read of it? If it was truncated or
            // rewritten since its last turn (this is likely its copy), decide after that turn
            // has given its identity up.
            let Some((pos, tail)) = self.sink.table.read_position(w.slot) else {
                continue;
            };
            let active_len = w.reader.file().metadata()?.len();
            let intact = active_len >= pos
                && tail.matches(w.reader.file(), pos)?
                && fingerprint(w.reader.file(), false)? == Some(fp);
            if !intact {
                return Ok(None);
            }
            match compare_heads(&file, w.reader.file())? {
                // A copy (copytruncate) holds its original's bytes and is never longer than
                // an original that was not truncated: the original is read, this one is
                // looked at again when the original goes away.
                Heads::Same if size <= active_len => return Ok(None),
                Heads::TooShort if size <= active_len => {
                    // Nothing but the shared first line yet: wait for the bytes that tell.
                    self.unidentified = true;
                    return Ok(None);
                }
                // Only the first line (a header, a banner) is shared, or this one holds more
                // than the original ever did: another file, with an identity of its own.
                _ => {}
            }
        }
        let active: HashSet<u32> = self.watchers.iter().map(|w| w.slot).collect();
        let mut candidates = self
            .sink
            .table
            .find(|c| c.fingerprint == fp)
            .into_iter()
            .filter(|(slot, _)| !active.contains(slot))
            .collect::<Vec<_>>();
        // The same inode first: the most likely to be the same file.
        candidates.sort_by_key(|(_, c)| !(c.dev == dev && c.ino == ino));
        for (slot, cp) in candidates {
            let (Some((offset, _)), Some((used, used_tail))) = (
                self.sink.table.read_position(slot),
                self.sink.table.evidence(slot),
            ) else {
                continue;
            };
            if (cp.dev, cp.ino) != (dev, ino) {
                // The file this identity was last seen as is still here and still holds what
                // was read of it: the identity is that file's, not this one's (which only
                // starts with the same line).
                if let Some(other) = self.present.get(&(cp.dev, cp.ino)) {
                    if holds(other, fp, used, &used_tail) {
                        continue;
                    }
                }
            }
            // This file must hold what was read of the identity, up to the last line whose
            // id may have been used; reading resumes after the last line known to be safe.
            if size >= used && used_tail.matches(&file, used)? {
                tracing::info!(path = %path.display(), offset, was = %cp.path.display(), "resuming a known file");
                self.sink
                    .table
                    .relocate(slot, dev, ino, path.to_path_buf(), now_unix);
                self.watch(slot, cp.key, fp, dev, ino, path, file, offset, size);
                return Ok(Some(slot));
            }
        }
        let key = if self.sink.table.find(|c| c.key == fp).is_empty() {
            fp
        } else {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            salted_key(fp, dev, ino, nanos)
        };
        let slot = self.sink.table.insert(FileCheckpoint {
            key,
            fingerprint: fp,
            dev,
            ino,
            path: path.to_path_buf(),
            offset: 0,
            tail: Default::default(),
            seen_unix: now_unix,
            ..FileCheckpoint::default()
        });
        tracing::info!(path = %path.display(), size, "new file; reading from the start");
        self.watch(slot, key, fp, dev, ino, path, file, 0, size);
        Ok(Some(slot))
    }

    #[allow(clippy::too_many_arguments)]
    fn watch(
        &mut self,
        slot: u32,
        key: FileKey,
        fp: Fingerprint,
        dev: u64,
        ino: u64,
        path: &Path,
        file: File,
        offset: u64,
        size: u64,
    ) {
        self.watchers.push(Watcher {
            slot,
            key,
            fingerprint: fp,
            dev,
            ino,
            path: path.to_path_buf(),
            source: SourceFile::new(key, path),
            reader: LineReader::new(file, offset, self.cfg.max_line_bytes),
            checked: (0, 0, 0),
            size,
            last_data: Instant::now(),
            gone: false,
            deleted: false,
        });
    }
}

/// One turn of one file.
fn poll(w: &mut Watcher, sink: &mut Sink, cfg: &FileServerConfig) -> Result<Verdict, Stop> {
    let meta = match w.reader.file().metadata() {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(path = %w.path.display(), error = %e, "cannot stat an open file");
            return Ok(Verdict::Keep);
        }
    };
    let size = meta.len();
    w.size = size;
    w.deleted = meta.nlink() == 0;
    if w.deleted {
        w.gone = true;
    }
    if size < w.reader.read_offset() {
        return Ok(Verdict::Truncated);
    }
    let stamp = (size, meta.mtime(), meta.mtime_nsec());
    if stamp != w.checked {
        // Truncated and written again between two looks, the file may be as long as before or
        // longer: only its head tells. Checked whenever the file changed, not on every turn.
        if let Ok(Some(fp)) = fingerprint(w.reader.file(), false) {
            if fp != w.fingerprint {
                return Ok(Verdict::Truncated);
            }
        }
        // A rewrite that starts with the same line (a header) keeps the fingerprint: the
        // bytes before the read position tell.
        if let Some((pos, tail)) = sink.table.read_position(w.slot) {
            if pos <= size && !tail.matches(w.reader.file(), pos).unwrap_or(true) {
                return Ok(Verdict::Truncated);
            }
        }
        w.checked = stamp;
    }
    let mut budget_for_turn = cfg.bytes_per_turn as u64;
    loop {
        let line = match w.reader.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(path = %w.path.display(), error = %e, "read error; will retry");
                break;
            }
        };
        w.last_data = Instant::now();
        let len = line.end - line.offset;
        sink.take(&line, w.slot, &w.source)?;
        budget_for_turn = budget_for_turn.saturating_sub(len);
        if budget_for_turn == 0 {
            return Ok(Verdict::Keep);
        }
    }
    if w.gone && w.reader.at_eof() && w.last_data.elapsed() >= cfg.rotate_wait {
        // The writer has moved on: its last line will never get a newline.
        if let Some(line) = w.reader.take_unterminated() {
            sink.take(&line, w.slot, &w.source)?;
        }
        return Ok(Verdict::Finished);
    }
    Ok(Verdict::Keep)
}

impl Sink {
    /// Encodes one line into the current batch, after paying for it from the read budget.
    fn take(&mut self, line: &Line<'_>, slot: u32, source: &SourceFile) -> Result<(), Stop> {
        self.lines += 1;
        self.bytes += line.end - line.offset;
        let cost = self.budget.cost(line.bytes.len() + ENRICHMENT_ALLOWANCE);
        if !self.budget.try_take(cost) {
            // Let the output work off what is batched, and wait for acknowledgements.
            self.flush()?;
            self.set_paused(true);
            loop {
                if self.shutdown.is_cancelled() {
                    return Err(Stop::Shutdown);
                }
                if self.budget.take_within(cost, Duration::from_millis(100)) {
                    break;
                }
                self.maybe_publish_lag(&[]);
            }
            self.set_paused(false);
        }
        let start = self.batcher.body().len();
        match self
            .enricher
            .encode(line, source, &self.ingested, self.batcher.body())
        {
            Encoded::Document { source_start } => {
                let seq = self.table.record_read(slot, line.end, line.tail, false);
                self.batcher.commit(
                    start,
                    source_start,
                    Origin {
                        file: slot,
                        seq,
                        budget_bytes: cost as u32,
                    },
                );
                if self.batcher.is_full() {
                    self.flush()?;
                }
            }
            Encoded::Empty => {
                self.table.record_read(slot, line.end, line.tail, true);
                self.budget.give_back(cost);
            }
        }
        Ok(())
    }

    /// Hands the current batch to the output.
    fn flush(&mut self) -> Result<(), Stop> {
        let Some(batch) = self.batcher.take() else {
            return Ok(());
        };
        match self.tx.try_send(batch) {
            Ok(()) => Ok(()),
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => Err(Stop::OutputGone),
            Err(tokio::sync::mpsc::error::TrySendError::Full(batch)) => {
                // Every request slot is busy (Elasticsearch slow or down): reading waits here.
                self.set_paused(true);
                let sent = self.tx.blocking_send(batch).map_err(|_| Stop::OutputGone);
                self.set_paused(false);
                sent
            }
        }
    }

    fn set_paused(&mut self, paused: bool) {
        if paused {
            // The counters must be current while reading waits, however long that is.
            self.publish_round();
        }
        self.stats.paused.store(paused, Ordering::Relaxed);
        metrics::gauge!("shipper_reading_paused").set(if paused { 1.0 } else { 0.0 });
    }

    fn publish_round(&mut self) {
        if self.lines > 0 {
            metrics::counter!("shipper_lines_read_total").increment(self.lines);
            metrics::counter!("shipper_bytes_read_total").increment(self.bytes);
            self.stats
                .lines_read
                .fetch_add(self.lines, Ordering::Relaxed);
            self.stats
                .bytes_read
                .fetch_add(self.bytes, Ordering::Relaxed);
            self.lines = 0;
            self.bytes = 0;
        }
        metrics::gauge!("shipper_read_budget_used_bytes").set(self.budget.used() as f64);
    }

    fn maybe_publish_lag(&mut self, watchers: &[Watcher]) {
        if self.last_lag.elapsed() >= self.checkpoint_interval {
            self.publish_lag(watchers);
        }
    }

    /// Publishes how far behind each file is (no I/O).
    fn publish_lag(&mut self, watchers: &[Watcher]) {
        self.last_lag = Instant::now();
        if watchers.is_empty() && self.stats.files_open.load(Ordering::Relaxed) > 0 {
            return; // called while waiting for the budget: keep the last figures
        }
        let mut behind_total = 0;
        let mut deleted = 0;
        let mut lag_max = Duration::ZERO;
        for w in watchers {
            if let Some(cp) = self.table.get(w.slot) {
                let behind = w.size.saturating_sub(cp.offset);
                behind_total += behind;
                let path = w.path.display().to_string();
                let lag = self.table.oldest_unacknowledged_age(w.slot);
                lag_max = lag_max.max(lag);
                metrics::gauge!("shipper_file_bytes_behind", "path" => path.clone())
                    .set(behind as f64);
                metrics::gauge!("shipper_file_lag_seconds", "path" => path).set(lag.as_secs_f64());
            }
            deleted += u64::from(w.deleted);
        }
        self.stats
            .lag_ms
            .store(lag_max.as_millis() as u64, Ordering::Relaxed);
        self.stats
            .bytes_behind
            .store(behind_total, Ordering::Relaxed);
        self.stats
            .deleted_files_open
            .store(deleted, Ordering::Relaxed);
        metrics::gauge!("shipper_bytes_behind").set(behind_total as f64);
        metrics::gauge!("shipper_deleted_files_open").set(deleted as f64);
    }

    /// Publishes the lag and saves the checkpoints now, on this thread.
    fn save_now(&mut self, watchers: &[Watcher]) {
        self.publish_lag(watchers);
        if let Some(p) = self.persister.as_mut() {
            if let Err(e) = p.save_if_changed() {
                tracing::error!(error = %e, "cannot save checkpoints; will retry");
            }
        }
    }
}

/// How the beginnings of two files with the same fingerprint compare.
#[derive(Debug, PartialEq, Eq)]
enum Heads {
    Same,
    Differ,
    TooShort,
}

/// Bytes compared to tell a copy from another file that merely starts with the same line.
const HEAD_COMPARE: usize = 16 * 1024;

/// Compares the first bytes both files have (up to [`HEAD_COMPARE`]). A copy made by
/// copytruncate holds the same bytes as its original; two files that only share a first
/// line (a header, a banner) differ right after it. Equal bytes that end within the first
/// line prove nothing yet.
fn compare_heads(a: &File, b: &File) -> std::io::Result<Heads> {
    use std::os::unix::fs::FileExt;
    let read = |f: &File| -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; HEAD_COMPARE];
        let mut filled = 0;
        while filled < buf.len() {
            let n = f.read_at(&mut buf[filled..], filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    };
    let (a, b) = (read(a)?, read(b)?);
    let n = a.len().min(b.len());
    if a[..n] != b[..n] {
        return Ok(Heads::Differ);
    }
    let first_line = memchr::memchr(b'\n', &a[..n]).map_or(n, |i| i + 1);
    if n <= first_line {
        Ok(Heads::TooShort)
    } else {
        Ok(Heads::Same)
    }
}

/// Does the file at `path` start with the first line `fp` and hold, before `offset`, the
/// bytes `tail` was made from?
fn holds(path: &Path, fp: Fingerprint, offset: u64, tail: &super::fingerprint::TailMark) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    size >= offset
        && matches!(fingerprint(&file, false), Ok(Some(f)) if f == fp)
        && tail.matches(&file, offset).unwrap_or(false)
}

/// Does `path` still name the file `dev`/`ino`?
fn points_to(path: &Path, dev: u64, ino: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Saves the checkpoints as the table has them now (used at shutdown, after the output
/// finished, so the last acknowledgements are in).
pub fn save_checkpoints(
    table: &AckTable,
    checkpointer: &Checkpointer,
    forget_after: Duration,
) -> Result<(), CheckpointError> {
    let cutoff = unix_now().saturating_sub(forget_after.as_secs());
    let mut snapshot = table.snapshot();
    snapshot.retain(|c| c.seen_unix >= cutoff);
    checkpointer.save(&snapshot)
}
