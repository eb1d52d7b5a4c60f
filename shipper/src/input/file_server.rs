//! The reading loop: finds files, tells them apart, reads new lines and hands them on.
//!
//! One thread reads every file (reading is cheap next to encoding and sending, and one
//! thread keeps the order of lines per file trivially right). Per file it follows the
//! inode it opened, not the name: after a rename rotation it reads the old file to its end
//! while the new one is picked up under the name; after a copytruncate it sees the file
//! shrink, gives up that identity, and continues the same identity in the copy, if the globs
//! see the copy, exactly where it stopped. Which file is which is not decided here but in
//! [`super::identity`]: this loop gathers the facts and carries the verdicts out. Each line is
//! recorded in the acknowledgement table (so that only acknowledged lines move the
//! checkpoint) and handed to the [`LineSink`] the pipeline gave it, which may block while the
//! output is behind: that is how reading pauses.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::acknowledgements::AckTable;
use super::checkpoint::{CheckpointError, Checkpointer, FileCheckpoint};
use super::checkpoint_writer::{CheckpointWriter, Persister};
use super::identity::decide::{self, Identified, OpenCheck};
use super::identity::evidence::{FileProbe, OpenFileProbe, OpenTwin};
use super::identity::{fingerprint, salted_key, FileKey, Fingerprint, LineMark, TailMark};
use super::line_reader::LineReader;
use super::line_sink::{LineOrigin, LineSink, Stop, Taken};
use super::open::{OpenError, OpenPolicy, Refused};
use super::paths::{watch, PathWatch, PathsProvider, Wakeups, Woken};
use super::sent_horizon::{self, SentHorizon};
use crate::batch::{Acknowledge, Origin};

mod complaints;
mod compressed_files;
mod unterminated;

use complaints::Complaints;

#[derive(Debug, Clone)]
pub(crate) struct FileServerConfig {
    pub(crate) include: Vec<String>,
    pub(crate) exclude: Vec<String>,
    pub(crate) max_line_bytes: usize,
    /// Longest sleep between looks at the open files when no event arrives.
    pub(crate) poll_interval: Duration,
    /// How often the globs are evaluated again even without filesystem events.
    pub(crate) scan_interval: Duration,
    /// How long a file renamed out of the globs or deleted stays open after its last byte
    /// was read, for a writer that has not switched to the new file yet.
    pub(crate) rotate_wait: Duration,
    /// A file under the globs with nothing new for this long is closed; the next scan that
    /// sees it grow opens it again and resumes its identity.
    pub(crate) close_inactive: Duration,
    pub(crate) checkpoint_interval: Duration,
    /// Checkpoints of files not seen for this long are forgotten.
    pub(crate) forget_after: Duration,
    /// Bytes read from one file before giving the next file its turn.
    pub(crate) bytes_per_turn: usize,
    /// Symbolic links under the globs are followed when their target lies inside one of
    /// the watched directories (otherwise they are not read).
    pub(crate) follow_symlinks: bool,
    /// How lines are framed: plain, a container runtime's records, or told per file.
    pub(crate) format: super::container_log::InputFormat,
}

/// Counters the summary line and `/metrics` read.
#[derive(Debug)]
pub(crate) struct InputStats {
    pub(crate) lines_read: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) files_open: AtomicU64,
    pub(crate) bytes_behind: AtomicU64,
    pub(crate) deleted_files_open: AtomicU64,
    /// Age of the oldest line read but not yet acknowledged, over all files.
    pub(crate) lag_ms: AtomicU64,
    pub(crate) paused: AtomicBool,
    /// When the reading loop last made a turn, in milliseconds after `epoch`: what tells a
    /// reader stuck in a system call (a hung network filesystem) from one with nothing to
    /// do, for `/health`.
    reader_turn_ms: AtomicU64,
    epoch: Instant,
    /// Per open file: bytes behind and lag.
    pub(crate) files: crate::observe::file_gauges::FileGauges,
}

impl Default for InputStats {
    fn default() -> InputStats {
        InputStats {
            lines_read: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            files_open: AtomicU64::new(0),
            bytes_behind: AtomicU64::new(0),
            deleted_files_open: AtomicU64::new(0),
            lag_ms: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            reader_turn_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            files: Default::default(),
        }
    }
}

impl InputStats {
    /// The reading loop is alive: it made a turn (or a file's turn) just now.
    pub(crate) fn reader_turned(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.reader_turn_ms.store(ms, Ordering::Relaxed);
    }

    /// How long ago the reading loop last made a turn (since start, if it never did).
    pub(crate) fn reader_still_for(&self) -> Duration {
        let last = Duration::from_millis(self.reader_turn_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FileServerError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("invalid paths: {0}")]
    Paths(#[from] super::paths::PathsError),
    #[error("cannot open the sent-horizon log in {path}: {source}")]
    Horizon {
        path: PathBuf,
        source: std::io::Error,
    },
}

struct Watcher {
    slot: u32,
    key: FileKey,
    fingerprint: Fingerprint,
    dev: u64,
    ino: u64,
    path: PathBuf,
    reader: LineReader,
    /// Size and modification time when the head was last verified.
    checked: Stamp,
    /// `checked` and `size` were taken when the file was identified, moments before its
    /// first turn: that turn needs no `stat` and no look at the head again.
    stat_fresh: bool,
    size: u64,
    last_data: Instant,
    /// Renamed out of the globs or deleted.
    gone: bool,
    deleted: bool,
    /// Read something, or stopped before its end, on its last turn: gets the next one too.
    busy: bool,
    /// When it is looked at even without an event (the fallback for lost events).
    next_check: Instant,
    /// Bytes behind and lag (ms) last published for this file.
    published: (u64, u64),
    /// The table holds recent line ends of this file (see [`FileCheckpoint::recent`]).
    recent_marks: bool,
    /// Lines ending at or before this offset were read by a previous run (the restored
    /// checkpoint's `sent_offset`) and may already be stored: they are flagged for a
    /// look-up before sending. Zero for a new identity; equal to where reading resumes for
    /// one resumed within this run, so only a restart opens this window.
    replay_until: u64,
    /// Lines of this file up to here may be sent: reserved in the sent-horizon log.
    reserved: u64,
    /// Lines ending at or before this offset were shown to the alert tap when read ahead
    /// while shipping was paused: the tap does not see them twice.
    tapped_to: u64,
    /// Its last turn stopped because the sink had no room: it gets the next turn too.
    held: bool,
}

/// How long a file must be idle at its end before its recent line ends are dropped: far
/// longer than copytruncate takes between its copy and its truncation.
const RECENT_MARKS_IDLE: Duration = Duration::from_secs(10);

/// How often at most an idle moment of the reading loop gives freed heap memory back to the
/// system, once something was read since the last time (see [`trim_heap`]): soon after a
/// burst, and never while nothing happens (nothing was freed then).
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Gives the heap's free pages back to the system. glibc's `free` returns memory only from
/// the top of the heap, so after a burst (the first read of thousands of files, their
/// queues of unacknowledged lines, a scan's maps) the freed pages between live blocks stay
/// in the RSS for good; `malloc_trim` releases them (with `MADV_DONTNEED`, a few hundred
/// microseconds for a heap of tens of MiB). Through `libc`: one call, not worth a crate.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Longest wait of a paused reader between two looks at its files.
const PAUSED_POLL: Duration = Duration::from_millis(50);

/// How long reading must have been paused before new lines are read ahead for the alert
/// rules: long enough that a moment's back-pressure at full speed (every request slot busy
/// for a few milliseconds) does not make every file be read twice.
const READ_AHEAD_AFTER: Duration = Duration::from_millis(250);

/// New files in one scan from which room for them is made at once (see [`FileServer::scan`]).
const RESERVE_EXACT_FROM: usize = 256;

/// A file closed for inactivity, as it was when closed: it is opened again when it changes.
#[derive(Debug, Clone)]
struct Closed {
    slot: u32,
    path: PathBuf,
    stamp: Stamp,
}

/// Size and modification time (seconds, nanoseconds) of a file: what tells that it changed.
type Stamp = (u64, i64, i64);

enum Verdict {
    Keep,
    /// The file shrank or was rewritten from the start: this identity no longer lives here.
    Truncated,
    /// Renamed away or deleted, read to its end, and idle: closed.
    Finished,
}

pub(crate) struct FileServer {
    cfg: FileServerConfig,
    paths: PathsProvider,
    watchers: Vec<Watcher>,
    /// Where every line goes.
    sink: Box<dyn LineSink>,
    table: Arc<AckTable>,
    persister: Option<Persister>,
    shutdown: CancellationToken,
    stats: Arc<InputStats>,
    last_lag: Instant,
    /// When freed heap memory was last given back to the system (see [`trim_heap`]).
    last_trim: Instant,
    /// Lines were read since the heap was last trimmed.
    read_since_trim: bool,
    wakeups: Arc<Wakeups>,
    _watch: Option<PathWatch>,
    last_scan: Option<Instant>,
    scan_needed: bool,
    /// Some matching file has no complete first line yet, so it could not be identified:
    /// look again on every wake-up, not only at the next periodic scan.
    unidentified: bool,
    /// Device and inode of every file the current scan found.
    present: HashMap<(u64, u64), PathBuf>,
    /// Paths written to since the last read round (from filesystem events).
    dirty: HashSet<PathBuf>,
    /// Every file may have been written to (no events, or too many to tell).
    all_dirty: bool,
    /// Files closed for inactivity, by device and inode.
    closed: HashMap<(u64, u64), Closed>,
    /// Changes whenever the set of watchers may have changed (a file watched or closed, a
    /// scan): what [`FileServer::quiet_until`] was computed for.
    watchers_changed: u64,
    /// No open file wants a turn before this time unless an event names it: the last read
    /// round found every file idle at its end, with its next fallback check then. Read
    /// rounds before it skip the pass over thousands of idle watchers.
    quiet_until: Option<(u64, Instant)>,
    /// The read buffer, lent to one file's reader at a time.
    read_buffer: Vec<u8>,
    /// The last read round stopped some file because the sink had no room: shipping is
    /// paused, and new lines are read ahead for the alert tap only.
    paused: bool,
    paused_since: Option<Instant>,
    /// Compressed files with nothing to read (empty, not gzip), as they were when looked at.
    ignored_compressed: HashMap<(u64, u64), Stamp>,
    /// Files without a complete first line yet, held open in case they are renamed away or
    /// deleted before one arrives (their only line is then shipped).
    held: HashMap<(u64, u64), unterminated::Held>,
    /// How names under the globs are opened (see [`super::open`]).
    policy: OpenPolicy,
    /// Where reading reserves the sending of lines ahead (see [`super::sent_horizon`]).
    horizon: Arc<SentHorizon>,
    /// Reservations of the previous run for identities it never saved, by key: a new
    /// identity with one of these keys looks up those lines before sending them.
    unsaved_reservations: HashMap<FileKey, u64>,
    /// How many watchers have each fingerprint: a new file whose fingerprint no open file
    /// has (nearly every one) is not compared with each open file, which with thousands of
    /// files open made opening them cost the square of their number.
    open_fingerprints: HashMap<Fingerprint, u32>,
    /// Warnings about a file, rate-limited.
    complaints: Complaints,
}

impl FileServer {
    /// Loads the checkpoints into `table` and prepares the loop, which hands every line to
    /// `sink`; no file is opened yet.
    pub(crate) fn new(
        cfg: FileServerConfig,
        table: Arc<AckTable>,
        checkpointer: Arc<Checkpointer>,
        mut sink: Box<dyn LineSink>,
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
        let (horizon, mut reserved) =
            SentHorizon::open(checkpointer.dir()).map_err(|source| FileServerError::Horizon {
                path: checkpointer.dir().to_path_buf(),
                source,
            })?;
        for mut cp in loaded.files.iter().cloned() {
            if let Some(upto) = reserved.remove(&cp.key) {
                cp.replay_until = cp.replay_until.max(upto);
            }
            table.insert(cp);
        }
        // Identities the previous run reserved but never saved (new in its last second).
        let unsaved_reservations = reserved;
        let horizon = Arc::new(horizon);
        sink.set_before_send(Arc::clone(&horizon) as Arc<dyn super::line_sink::BeforeSend>);
        let wakeups = Arc::new(Wakeups::default());
        let watch = match watch(&paths, Arc::clone(&wakeups)) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "filesystem events unavailable; relying on the periodic rescan");
                None
            }
        };
        let policy = if cfg.follow_symlinks {
            OpenPolicy::links_within(&paths.watch_roots())
        } else {
            OpenPolicy::no_links()
        };
        let persister = Some(
            Persister::new(Arc::clone(&table), checkpointer, cfg.forget_after)
                .with_horizon(Arc::clone(&horizon)),
        );
        Ok(FileServer {
            cfg,
            paths,
            watchers: Vec::new(),
            sink,
            table,
            persister,
            shutdown,
            stats,
            last_lag: Instant::now(),
            last_trim: Instant::now(),
            read_since_trim: false,
            wakeups,
            _watch: watch,
            last_scan: None,
            scan_needed: true,
            unidentified: false,
            present: Default::default(),
            watchers_changed: 0,
            quiet_until: None,
            dirty: HashSet::new(),
            all_dirty: true,
            closed: HashMap::new(),
            read_buffer: Vec::new(),
            paused: false,
            paused_since: None,
            ignored_compressed: HashMap::new(),
            held: HashMap::new(),
            policy,
            horizon,
            unsaved_reservations,
            open_fingerprints: HashMap::new(),
            complaints: Complaints::default(),
        })
    }

    /// Runs until shutdown (or until the output stops taking batches), then sends the batch
    /// in progress and saves the checkpoints. Blocking: run it on its own thread.
    pub(crate) fn run(mut self) {
        let writer = self.persister.take().and_then(|p| {
            match CheckpointWriter::spawn(p, self.cfg.checkpoint_interval) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the checkpoint thread; checkpoints are saved at shutdown only");
                    None
                }
            }
        });
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            self.stats.reader_turned();
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
            self.sink.begin_round();
            match self.read_round() {
                Ok(true) => {
                    self.read_since_trim = true;
                    continue;
                }
                Ok(false) => {}
                Err(Stop::Shutdown) => break,
                Err(Stop::OutputGone) => {
                    tracing::warn!("the output stopped taking batches; reading stops");
                    break;
                }
            }
            // Nothing more to read now: send what waited long enough, save, sleep.
            let due = self.sink.deadline().is_some_and(|d| d <= Instant::now());
            if (due || self.paused) && self.sink.flush().is_err() {
                break;
            }
            let paused_for = match (self.paused, self.paused_since) {
                (false, _) => {
                    self.paused_since = None;
                    Duration::ZERO
                }
                (true, None) => {
                    self.paused_since = Some(Instant::now());
                    Duration::ZERO
                }
                (true, Some(since)) => since.elapsed(),
            };
            if paused_for >= READ_AHEAD_AFTER && self.sink.wants_peek() {
                // Shipping is paused (not a moment's back-pressure): the files are still
                // found and told apart (the scans above go on), and what is written is shown
                // to the alert rules now.
                self.read_ahead();
            }
            if self.last_lag.elapsed() >= self.cfg.checkpoint_interval {
                self.publish_lag();
            }
            if self.read_since_trim && !self.paused && self.last_trim.elapsed() >= TRIM_EVERY {
                self.last_trim = Instant::now();
                self.read_since_trim = false;
                trim_heap();
            }
            self.sink.publish();
            let mut sleep = self.cfg.poll_interval;
            if let Some(deadline) = self.sink.deadline() {
                sleep = sleep.min(deadline.saturating_duration_since(Instant::now()));
            }
            if self.paused {
                // Room comes back with acknowledgements: wait for one (or a short while, for
                // the scans and the read-ahead), not for a filesystem event.
                self.table.budget().wait_released(sleep.min(PAUSED_POLL));
                if let Some(woken) = self.wakeups.wait(Duration::ZERO) {
                    self.woken(woken);
                }
                continue;
            }
            match self.wakeups.wait(sleep) {
                Some(woken) => self.woken(woken),
                None if self._watch.is_none() => self.all_dirty = true,
                None => {}
            }
        }
        let _ = self.sink.finish();
        self.sink.publish();
        if let Some(w) = writer {
            self.persister = w.stop();
        }
        self.save_now();
        tracing::info!("reading stopped");
    }

    /// One deterministic pass, for tests and tools: evaluate the globs, read everything that
    /// can be read now, send the batch in progress and save the checkpoints. Returns false
    /// when reading stopped (shutdown, or the output is gone).
    #[cfg(test)]
    pub(crate) fn step(&mut self) -> bool {
        for _ in 0..4 {
            self.all_dirty = true;
            self.scan();
            self.sink.begin_round();
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
        self.sink.publish();
        self.save_now();
        true
    }

    /// How stale a file's recorded "last seen" time may get: a tenth of the retention, at most
    /// ten minutes.
    fn seen_precision(&self) -> u64 {
        (self.cfg.forget_after.as_secs() / 10).min(600)
    }

    /// Takes in what filesystem events say: a rescan, and which files were written to.
    fn woken(&mut self, woken: Woken) {
        self.scan_needed |= woken.rescan || self.unidentified;
        // A rotation moves names: look at every file once.
        self.all_dirty |= woken.all_dirty || woken.rescan;
        if !self.all_dirty {
            // A file closed for inactivity that is written to again is opened by a scan.
            let closed_written = self.closed.values().any(|c| woken.dirty.contains(&c.path));
            self.scan_needed |= closed_written;
            self.dirty.extend(woken.dirty);
        }
    }

    /// Gives each open file that may have something new one turn; true if anything was read.
    ///
    /// A file gets a turn when an event says it was written to, when its last turn read
    /// something or stopped before its end, when it is renamed away or deleted (it must be
    /// finished), or at its fallback check, spread over `scan_interval`. Idle files cost
    /// nothing between those, so idle CPU does not grow with the number of files.
    fn read_round(&mut self) -> Result<bool, Stop> {
        let mut progressed = false;
        let mut index = 0;
        let now = Instant::now();
        let everything = std::mem::take(&mut self.all_dirty);
        // Paused while the sink has no room, whether or not a file has something to read: a
        // batch waiting for a request slot is offered again on every pass of the loop.
        self.paused = !self.sink.has_room()?;
        let dirty = std::mem::take(&mut self.dirty);
        let quiet = !everything
            && dirty.is_empty()
            && self
                .quiet_until
                .is_some_and(|(changed, until)| changed == self.watchers_changed && now < until);
        if quiet {
            index = self.watchers.len();
        }
        // For the next round: the earliest fallback check, unless some file wants a turn.
        let mut next_due: Option<Instant> = None;
        let mut wanted = false;
        while index < self.watchers.len() {
            let w = &mut self.watchers[index];
            let check_due = now >= w.next_check;
            if !(everything || w.busy || w.gone || check_due || dirty.contains(&w.path)) {
                next_due = Some(next_due.map_or(w.next_check, |t| t.min(w.next_check)));
                index += 1;
                continue;
            }
            if check_due {
                w.next_check = now + self.cfg.scan_interval;
            }
            self.stats.reader_turned();
            let before = w.reader.line_offset();
            let verdict = poll(
                w,
                self.sink.as_mut(),
                &self.table,
                &self.cfg,
                &mut self.read_buffer,
                &mut self.complaints,
                &self.horizon,
            )?;
            let w = &mut self.watchers[index];
            let moved = w.reader.line_offset() != before;
            w.busy = moved || !w.reader.at_eof() || w.held;
            wanted |= w.busy || w.gone;
            next_due = Some(next_due.map_or(w.next_check, |t| t.min(w.next_check)));
            self.paused |= w.held;
            progressed |= moved;
            w.recent_marks |= moved;
            if w.recent_marks && !w.busy && w.last_data.elapsed() >= RECENT_MARKS_IDLE {
                // Idle at its end: a copy now would hold all that was read.
                self.table.forget_recent_marks(w.slot);
                w.recent_marks = false;
            }
            match verdict {
                Verdict::Keep
                    if !w.gone
                        && !w.busy
                        && w.reader.pending_bytes() == 0
                        && w.last_data.elapsed() >= self.cfg.close_inactive =>
                {
                    tracing::debug!(path = %w.path.display(), "closing a file with nothing new");
                    self.remember_head(index);
                    let w = &self.watchers[index];
                    let (slot, path, stamp) = (w.slot, w.path.clone(), w.checked);
                    self.closed
                        .insert((w.dev, w.ino), Closed { slot, path, stamp });
                    self.close(index);
                }
                Verdict::Keep => index += 1,
                Verdict::Truncated => {
                    self.table.give_up(w.slot);
                    tracing::info!(path = %w.path.display(), offset = before, "file truncated or rewritten; its lines will be read again from the start under a new identity");
                    self.close(index);
                    self.scan_needed = true;
                }
                Verdict::Finished => {
                    tracing::info!(path = %w.path.display(), "finished a rotated or deleted file");
                    self.remember_head(index);
                    let w = &self.watchers[index];
                    if w.reader.is_compressed() {
                        // Read to its end: it never grows, so it stays closed until it changes.
                        let (slot, path, stamp) = (w.slot, w.path.clone(), w.checked);
                        self.closed
                            .insert((w.dev, w.ino), Closed { slot, path, stamp });
                    }
                    self.close(index);
                }
            }
        }
        if !quiet {
            self.quiet_until = match (wanted, next_due) {
                (false, Some(until)) => Some((self.watchers_changed, until)),
                _ => None,
            };
        }
        if self.sink.is_full() {
            self.sink.flush()?;
        }
        Ok(progressed)
    }

    fn close(&mut self, index: usize) {
        self.watchers_changed += 1;
        let w = self.watchers.swap_remove(index);
        self.stats.files.remove(w.slot);
        if let Some(n) = self.open_fingerprints.get_mut(&w.fingerprint) {
            *n -= 1;
            if *n == 0 {
                self.open_fingerprints.remove(&w.fingerprint);
            }
        }
    }

    /// Evaluates the globs: follows renames, opens new files, notices vanished ones.
    fn scan(&mut self) {
        // A scan may mark files gone or renamed: the next read round looks at every one.
        self.watchers_changed += 1;
        self.last_scan = Some(Instant::now());
        self.scan_needed = false;
        self.unidentified = false;
        let now_unix = unix_now();
        let mut seen: HashSet<u32> = HashSet::new();
        let names = self.paths.discover_listed();
        // Open files by device and inode: a lookup per file found, not a search.
        let mut open: HashMap<(u64, u64), usize> = self
            .watchers
            .iter()
            .enumerate()
            .map(|(i, w)| ((w.dev, w.ino), i))
            .collect();
        // `discover_listed` returns the names sorted by their bytes.
        self.complaints.retain(|p| {
            names
                .binary_search_by(|n| n.path.as_os_str().cmp(p.as_os_str()))
                .is_ok()
        });
        // A name the listing says is a file open already needs no look: only new names, and
        // names of closed files (whose size and time say whether they grew), cost a `stat`.
        // The names move into what was found (no copy of thousands of paths per scan).
        let found: Vec<(PathBuf, u64, u64, Option<Stamp>)> = names
            .into_iter()
            .filter_map(|listed| {
                if let Some((dev, ino)) = listed.listed.filter(|k| open.contains_key(k)) {
                    return Some((listed.path, dev, ino, None));
                }
                match self.policy.look(&listed.path) {
                    Ok(meta) => {
                        let stamp = (meta.len(), meta.mtime(), meta.mtime_nsec());
                        Some((listed.path, meta.dev(), meta.ino(), Some(stamp)))
                    }
                    Err(e) => {
                        complain_open(&mut self.complaints, &listed.path, &e);
                        None
                    }
                }
            })
            .collect();
        // Refilled in place: its table is reused rather than a second one allocated beside
        // it at every scan (which fragments the heap of a shipper of thousands of files).
        self.present.clear();
        self.present.extend(
            found
                .iter()
                .map(|(path, dev, ino, _)| ((*dev, *ino), path.clone())),
        );
        self.closed.retain(|key, _| self.present.contains_key(key));
        let unknown = found
            .iter()
            .filter(|(_, dev, ino, _)| {
                !open.contains_key(&(*dev, *ino)) && !self.closed.contains_key(&(*dev, *ino))
            })
            .count();
        if unknown >= RESERVE_EXACT_FROM {
            // Room for what this scan may open, exactly: grown by doubling, the vectors of
            // thousands of files are up to half empty for good.
            self.watchers.reserve_exact(unknown);
            self.table.reserve(unknown);
        }
        for (path, dev, ino, stamp) in found {
            if let Some(w) = open.get(&(dev, ino)).map(|&i| &mut self.watchers[i]) {
                seen.insert(w.slot);
                let policy = &self.policy;
                let points_to = |p: &Path| {
                    policy
                        .look(p)
                        .is_ok_and(|m| (m.dev(), m.ino()) == (dev, ino))
                };
                if w.path != path && !points_to(&w.path) && points_to(&path) {
                    tracing::info!(from = %w.path.display(), to = %path.display(), "file renamed");
                    w.path = path.clone();
                    self.stats.files.rename(w.slot, &path);
                    self.sink.describe(w.slot, w.key, &path);
                    self.table.relocate(w.slot, dev, ino, path, now_unix);
                }
                w.gone = false;
                continue;
            }
            if let Some(c) = self.closed.get_mut(&(dev, ino)) {
                if Some(c.stamp) == stamp {
                    // Closed for inactivity and unchanged: keep its identity alive, closed.
                    if c.path != path {
                        c.path = path.clone();
                        self.table.relocate(c.slot, dev, ino, path, now_unix);
                    } else {
                        self.table.touch(c.slot, now_unix, self.seen_precision());
                    }
                    continue;
                }
                self.closed.remove(&(dev, ino));
            }
            match self.open(&path, dev, ino, now_unix) {
                Ok(Some(slot)) => {
                    self.complaints.resolved(&path);
                    seen.insert(slot);
                    open.insert((dev, ino), self.watchers.len() - 1);
                }
                Ok(None) => self.complaints.resolved(&path),
                Err(e) => complain_open(&mut self.complaints, &path, &e),
            }
        }
        let precision = self.seen_precision();
        for w in &mut self.watchers {
            if seen.contains(&w.slot) {
                self.table.touch(w.slot, now_unix, precision);
            } else if !w.gone {
                tracing::debug!(path = %w.path.display(), "file left the globs; reading it to its end");
                w.gone = true;
            }
        }
        self.stats
            .files_open
            .store(self.watchers.len() as u64, Ordering::Relaxed);
        metrics::gauge!("shipper_files_open").set(self.watchers.len() as f64);
        metrics::gauge!("shipper_files_closed_inactive").set(self.closed.len() as f64);
        self.after_scan(now_unix);
    }

    /// Opens a newly seen file, has [`decide::identify`] say which identity it is, and
    /// watches it; returns its slot, or `None` when the file cannot be told apart yet or is a
    /// copy of a file being read. A compressed file goes to [`FileServer::open_compressed`].
    fn open(
        &mut self,
        path: &Path,
        dev: u64,
        ino: u64,
        now_unix: u64,
    ) -> Result<Option<u32>, OpenError> {
        let (file, meta) = self.policy.open(path)?;
        if (meta.dev(), meta.ino()) != (dev, ino) {
            // Renamed between the look at the directory and the open (a rotation cascade
            // shifting names): what was opened is another file. Decide at the next scan, from
            // the file itself; a watcher must never pair one file's descriptor with another
            // file's inode.
            self.scan_needed = true;
            return Ok(None);
        }
        if super::compressed::is_compressed(path) {
            return Ok(self.open_compressed(file, &meta, path, now_unix)?);
        }
        Ok(self.open_file(file, &meta, path, dev, ino, now_unix, false)?)
    }

    /// Identifies the open `file` and watches it (see [`FileServer::open`]). `force`: the
    /// file will not be written any more, so a first line without its newline identifies it.
    /// `meta`: the stat of `file`, taken when it was opened.
    #[allow(clippy::too_many_arguments)]
    fn open_file(
        &mut self,
        file: File,
        meta: &std::fs::Metadata,
        path: &Path,
        dev: u64,
        ino: u64,
        now_unix: u64,
        force: bool,
    ) -> std::io::Result<Option<u32>> {
        let size = meta.len();
        let Some(fp) = fingerprint(&file, force)? else {
            self.unidentified = true; // no complete first line yet
            self.hold(file, path, dev, ino, size);
            return Ok(None);
        };
        self.release(dev, ino);
        if self.copy_of_open_compressed(&file, fp) {
            return Ok(None);
        }
        let open_twins: Vec<OpenTwin<'_>> = self
            .watchers_with(fp)
            .filter(|w| !w.reader.is_compressed())
            .filter_map(|w| {
                let read_position = self.table.read_position(w.slot)?;
                Some(OpenTwin {
                    file: w.reader.file(),
                    read_position: Some(read_position),
                })
            })
            .collect();
        let twins: Vec<decide::Twin> = (0..open_twins.len())
            .map(|index| decide::Twin { index })
            .collect();
        let (known, key_taken) = self.known_with(fp);
        let seen = decide::Seen {
            fingerprint: fp,
            dev,
            ino,
            size,
        };
        let mut probe = FileProbe {
            seen: &file,
            fingerprint: fp,
            twins: open_twins,
            present: &self.present,
            policy: &self.policy,
        };
        let verdict = decide::identify(seen, &twins, &known, key_taken, &mut probe)?;
        drop(probe);
        match verdict {
            Identified::AfterTwinsTurn | Identified::CopyOfOpen => Ok(None),
            Identified::NeedMoreBytes => {
                self.unidentified = true;
                Ok(None)
            }
            Identified::Resume { slot, key, offset } => {
                let was = self.table.get(slot).map(|c| c.path).unwrap_or_default();
                tracing::info!(path = %path.display(), offset, was = %was.display(), "resuming a known file");
                self.table
                    .relocate(slot, dev, ino, path.to_path_buf(), now_unix);
                self.watch(slot, key, fp, dev, ino, path, file, offset, size);
                Ok(Some(slot))
            }
            Identified::PrefixCopy { slot, key, offset } => {
                let was = self.table.get(slot).map(|c| c.path).unwrap_or_default();
                let tail = TailMark::read(&file, size)?;
                self.table
                    .set_copy_end(slot, LineMark { offset: size, tail });
                self.table
                    .relocate(slot, dev, ino, path.to_path_buf(), now_unix);
                if offset < size {
                    // Lines of it are not safe yet (a restart lost them in flight): read
                    // them again from the copy, under their ids.
                    tracing::info!(path = %path.display(), offset, was = %was.display(), "a copytruncate copy; resuming its identity");
                    self.watch(slot, key, fp, dev, ino, path, file, offset, size);
                    return Ok(Some(slot));
                }
                tracing::info!(path = %path.display(), size, was = %was.display(), "a copytruncate copy of lines already read; nothing new in it");
                // Kept closed, as an idle file: looked at again only if it changes.
                let stamp = (size, meta.mtime(), meta.mtime_nsec());
                let path = path.to_path_buf();
                self.closed.insert((dev, ino), Closed { slot, path, stamp });
                Ok(None)
            }
            Identified::New { salted } => {
                let (slot, key) = self.new_identity(fp, salted, dev, ino, path, now_unix);
                tracing::info!(path = %path.display(), size, "new file; reading from the start");
                self.watch(slot, key, fp, dev, ino, path, file, 0, size);
                if let Some(w) = self.watchers.last_mut() {
                    // Read from its start: the head just fingerprinted is all there is to
                    // check, and the stat above is its state.
                    w.checked = (size, meta.mtime(), meta.mtime_nsec());
                    w.stat_fresh = true;
                }
                Ok(Some(slot))
            }
        }
    }

    /// The watchers of the files with fingerprint `fp`.
    fn watchers_with(&self, fp: Fingerprint) -> impl Iterator<Item = &Watcher> {
        // Nearly every new file has a fingerprint no open file has: then none is looked at.
        let open = if self.open_fingerprints.contains_key(&fp) {
            &self.watchers[..]
        } else {
            &[]
        };
        open.iter().filter(move |w| w.fingerprint == fp)
    }

    /// The identities with fingerprint `fp` no open file holds, and whether `fp` is already
    /// some identity's key.
    pub(super) fn known_with(&self, fp: Fingerprint) -> (Vec<decide::Known>, bool) {
        let (same_fingerprint, key_taken) = self.table.with_fingerprint(fp);
        let known = same_fingerprint
            .into_iter()
            // Candidates are few (usually none): look for an open watcher only for them.
            .filter(|(slot, _)| !self.watchers.iter().any(|w| w.slot == *slot))
            .filter_map(|(slot, cp)| {
                let (read_offset, _) = self.table.read_position(slot)?;
                let (used, used_tail) = self.table.evidence(slot)?;
                Some(decide::Known {
                    slot,
                    key: cp.key,
                    dev: cp.dev,
                    ino: cp.ino,
                    read_offset,
                    used,
                    used_tail,
                    head: cp.head,
                    recent: cp.recent.into_iter().collect(),
                    copy_end: cp.copy_end,
                })
            })
            .collect();
        (known, key_taken)
    }

    /// Records a new identity for the file `dev`/`ino` with fingerprint `fp`, read from its
    /// start; returns its slot and key. `salted`: the fingerprint is already some identity's
    /// key, so this one's is made unique.
    pub(super) fn new_identity(
        &mut self,
        fp: Fingerprint,
        salted: bool,
        dev: u64,
        ino: u64,
        path: &Path,
        now_unix: u64,
    ) -> (u32, FileKey) {
        let key = if salted {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            salted_key(fp, dev, ino, nanos)
        } else {
            fp
        };
        let replay_until = if salted {
            0
        } else {
            self.unsaved_reservations.remove(&key).unwrap_or(0)
        };
        let slot = self.table.insert(FileCheckpoint {
            key,
            fingerprint: fp,
            dev,
            ino,
            path: path.to_path_buf(),
            seen_unix: now_unix,
            replay_until,
            ..FileCheckpoint::default()
        });
        (slot, key)
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
        file: impl Into<super::line_reader::Source>,
        offset: u64,
        size: u64,
    ) {
        self.sink.describe(slot, key, path);
        *self.open_fingerprints.entry(fp).or_default() += 1;
        let replay_until = self.table.replay_until(slot);
        self.watchers_changed += 1;
        self.watchers.push(Watcher {
            slot,
            key,
            fingerprint: fp,
            dev,
            ino,
            path: path.to_path_buf(),
            reader: LineReader::new(file, offset, self.cfg.max_line_bytes)
                .with_format(self.cfg.format),
            checked: (0, 0, 0),
            stat_fresh: false,
            size,
            last_data: Instant::now(),
            gone: false,
            deleted: false,
            busy: true,
            published: (u64::MAX, u64::MAX),
            recent_marks: true,
            replay_until,
            reserved: 0,
            tapped_to: 0,
            held: false,
            // Fallback checks spread over the interval, not all files at the same instant.
            next_check: Instant::now()
                + self.cfg.scan_interval.mul_f64(f64::from(slot % 64) / 64.0),
        });
    }

    /// Shows the lines written past what was shipped to the alert tap, while shipping is
    /// paused: they are read (up to `bytes_per_turn` per file per round, into the shared
    /// buffer, which no reader holds between turns) and forgotten; shipping reads them again
    /// later, and the tap does not see them twice.
    fn read_ahead(&mut self) {
        let mut buf = std::mem::take(&mut self.read_buffer);
        for w in &mut self.watchers {
            // A compressed file holds old lines (rotated): shipping shows them to the tap.
            let from = w.tapped_to.max(w.reader.line_offset());
            if from < w.size && !w.reader.is_compressed() {
                peek_lines(w, from, &mut buf, self.sink.as_mut(), &self.cfg);
            }
        }
        buf.clear();
        self.read_buffer = buf;
    }

    /// Publishes how far behind each file is (no I/O).
    fn publish_lag(&mut self) {
        self.last_lag = Instant::now();
        let mut behind_total = 0;
        let mut deleted = 0;
        let mut lag_max = Duration::ZERO;
        for w in &mut self.watchers {
            if let Some((offset, lag)) = self.table.delivery(w.slot) {
                let behind = w.size.saturating_sub(offset);
                behind_total += behind;
                lag_max = lag_max.max(lag);
                // Per-file gauges only when they change: with thousands of idle files, most
                // figures stay at zero.
                let lag_ms = lag.as_millis() as u64;
                if w.published != (behind, lag_ms) {
                    w.published = (behind, lag_ms);
                    self.stats.files.set(w.slot, &w.path, behind, lag_ms);
                }
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
    fn save_now(&mut self) {
        self.publish_lag();
        if let Some(p) = self.persister.as_mut() {
            if let Err(e) = p.save_if_changed() {
                tracing::error!(error = %e, "cannot save checkpoints; will retry");
            }
        }
    }
}

/// One turn of one file: checks it is still its identity, then reads and hands on up to
/// `bytes_per_turn` of lines.
fn poll(
    w: &mut Watcher,
    sink: &mut dyn LineSink,
    table: &AckTable,
    cfg: &FileServerConfig,
    shared: &mut Vec<u8>,
    complaints: &mut Complaints,
    horizon: &SentHorizon,
) -> Result<Verdict, Stop> {
    if w.reader.is_compressed() {
        // Never written again: nothing to verify, read it to its end.
        w.reader.lend(shared);
        let verdict = read_lines(w, sink, table, cfg, complaints, horizon);
        w.reader.give_back(shared);
        return verdict;
    }
    if std::mem::take(&mut w.stat_fresh) {
        // Identified in this scan, from a stat and a look at its head taken moments ago.
        w.reader.stop_at((!w.gone).then_some(w.size));
    } else {
        let meta = match w.reader.file().metadata() {
            Ok(m) => m,
            Err(e) => {
                if let Some(held_back) = complaints.allow(&w.path, "stat") {
                    tracing::warn!(path = %w.path.display(), error = %e, held_back, "cannot stat an open file");
                }
                return Ok(Verdict::Keep);
            }
        };
        let size = meta.len();
        w.size = size;
        w.deleted = meta.nlink() == 0;
        if w.deleted {
            w.gone = true;
        }
        let stamp = (size, meta.mtime(), meta.mtime_nsec());
        let turn = decide::Turn {
            size,
            read_offset: w.reader.read_offset(),
            changed: stamp != w.checked,
        };
        let mut probe = OpenFileProbe {
            file: w.reader.file(),
            // Asked only when the file changed: an unchanged file costs no look into the table.
            read_position: if turn.changed {
                table.read_position(w.slot)
            } else {
                None
            },
        };
        if decide::check_open(turn, w.fingerprint, &mut probe) == OpenCheck::Truncated {
            return Ok(Verdict::Truncated);
        }
        if !turn.changed && !w.gone && w.reader.at_eof() && size == turn.read_offset {
            // Unchanged since the last turn, which read it to its end: the stat said it all
            // (the fallback check of thousands of idle files costs one call each, not three).
            return Ok(Verdict::Keep);
        }
        w.checked = stamp;
        // A file renamed away or deleted is read to the end its reads find: it is finished
        // after this, and what its writer added since the stat must not be left behind.
        w.reader.stop_at((!w.gone).then_some(size));
    }
    w.reader.lend(shared);
    let verdict = read_lines(w, sink, table, cfg, complaints, horizon);
    w.reader.give_back(shared);
    verdict
}

/// Reads and hands on the lines of one turn, with the shared buffer lent to the reader.
fn read_lines(
    w: &mut Watcher,
    sink: &mut dyn LineSink,
    table: &AckTable,
    cfg: &FileServerConfig,
    complaints: &mut Complaints,
    horizon: &SentHorizon,
) -> Result<Verdict, Stop> {
    let mut budget_for_turn = cfg.bytes_per_turn as u64;
    w.held = false;
    loop {
        if !sink.has_room()? {
            w.held = true;
            return Ok(Verdict::Keep);
        }
        let line = match w.reader.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                if let Some(held_back) = complaints.allow(&w.path, "read") {
                    tracing::warn!(path = %w.path.display(), error = %e, held_back, "read error; will retry");
                }
                break;
            }
        };
        w.last_data = Instant::now();
        let len = line.end - line.offset;
        reserve_sending((&mut w.reserved, w.slot, w.key), line.end, (table, horizon));
        let flags = (line.end <= w.replay_until, line.end <= w.tapped_to);
        hand_on(sink, table, w.slot, &line, flags)?;
        budget_for_turn = budget_for_turn.saturating_sub(len);
        if budget_for_turn == 0 {
            return Ok(Verdict::Keep);
        }
    }
    if w.reader.rewritten() {
        return Ok(Verdict::Truncated);
    }
    let finished = w.reader.is_compressed() || (w.gone && w.last_data.elapsed() >= cfg.rotate_wait);
    if finished && w.reader.at_eof() {
        // The writer has moved on (or a compressed file is complete): its last line will
        // never get a newline.
        if !sink.has_room()? {
            w.held = true;
            return Ok(Verdict::Keep);
        }
        if let Some(line) = w.reader.take_unterminated() {
            reserve_sending((&mut w.reserved, w.slot, w.key), line.end, (table, horizon));
            let flags = (line.end <= w.replay_until, line.end <= w.tapped_to);
            hand_on(sink, table, w.slot, &line, flags)?;
        }
        return Ok(Verdict::Finished);
    }
    Ok(Verdict::Keep)
}

/// Before a line of `w` ending at `end` goes out: if it is past the file's reservation,
/// reserves ahead, in the table first and then in the log (see [`super::sent_horizon`]).
fn reserve_sending(
    (reserved, slot, key): (&mut u64, u32, FileKey),
    end: u64,
    (table, horizon): (&AckTable, &SentHorizon),
) {
    if end <= *reserved {
        return;
    }
    let upto = end + sent_horizon::RESERVE;
    table.reserve_sending(slot, upto);
    // Noted; written to the log before the batch holding this line leaves.
    horizon.reserve(key, upto);
    *reserved = upto;
}

/// Reads the complete lines of `w` from `from` into `buf` and shows them to the sink's tap.
/// A line longer than the buffer is left for shipping to show.
fn peek_lines(
    w: &mut Watcher,
    from: u64,
    buf: &mut Vec<u8>,
    sink: &mut dyn LineSink,
    cfg: &FileServerConfig,
) {
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 64 * 1024;
    let mut at = from;
    let mut left = cfg.bytes_per_turn.max(CHUNK);
    let framing = w.reader.framing();
    let mut scratch = Vec::new();
    buf.resize(CHUNK, 0);
    while left > 0 {
        let n = match w.reader.file().read_at(&mut buf[..CHUNK], at) {
            Ok(n) => n,
            Err(_) => return, // shipping reads it, and says why
        };
        let data = &buf[..n];
        let mut start = 0;
        while let Some(pos) = memchr::memchr(b'\n', &data[start..]) {
            // The parts of a container's long line are shown one by one.
            let raw = &data[start..start + pos];
            let bytes = super::container_log::message_of(framing, raw, &mut scratch);
            let truncated = bytes.len() > cfg.max_line_bytes;
            let line = super::line_reader::Line {
                offset: at + start as u64,
                end: at + (start + pos + 1) as u64,
                bytes: &bytes[..bytes.len().min(cfg.max_line_bytes)],
                truncated,
                unterminated: false,
                tail: TailMark::default(),
                container: None,
            };
            sink.peek(&line, w.slot);
            w.tapped_to = line.end;
            start += pos + 1;
        }
        if start == 0 {
            return; // no complete line (yet), or one longer than the buffer
        }
        at += start as u64;
        left = left.saturating_sub(start);
    }
}

/// Records `line` as read from `slot` and hands it to the sink; a line that yields nothing
/// to deliver is safe at once. `may_be_stored`: a previous run may have stored it;
/// `tapped`: the alert tap saw it already.
fn hand_on(
    sink: &mut dyn LineSink,
    table: &AckTable,
    slot: u32,
    line: &super::line_reader::Line<'_>,
    (may_be_stored, tapped): (bool, bool),
) -> Result<(), Stop> {
    let seq = table.record_read(slot, line.end, line.tail, false);
    let origin = LineOrigin {
        slot,
        seq,
        may_be_stored,
        tapped,
    };
    if sink.take(line, origin)? == Taken::Nothing {
        table.acknowledge(&[Origin {
            file: slot,
            seq,
            budget_bytes: 0,
        }]);
    }
    Ok(())
}

/// Logs why the name `path` under the globs is not read, at most once per interval.
fn complain_open(complaints: &mut Complaints, path: &Path, e: &OpenError) {
    match e {
        // A name that vanished between the listing and the look: a rotation, not trouble.
        OpenError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {}
        // A directory matching a glob is nothing to warn about.
        OpenError::Refused(Refused::NotRegular("directory")) => {}
        OpenError::Refused(r) => {
            if let Some(held_back) = complaints.allow(path, &r.to_string()) {
                tracing::warn!(path = %path.display(), held_back, "{r}");
            }
        }
        OpenError::Io(io) => {
            if let Some(held_back) = complaints.allow(path, &io.to_string()) {
                tracing::warn!(path = %path.display(), error = %io, held_back, "cannot open the file; will try again");
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Saves the checkpoints as the table has them now (used at shutdown, after the output
/// finished, so the last acknowledgements are in).
pub(crate) fn save_checkpoints(
    table: &AckTable,
    checkpointer: &Checkpointer,
    forget_after: Duration,
) -> Result<(), CheckpointError> {
    let cutoff = unix_now().saturating_sub(forget_after.as_secs());
    let mut snapshot = table.snapshot();
    snapshot.retain(|c| c.seen_unix >= cutoff);
    checkpointer.save(&snapshot)
}
