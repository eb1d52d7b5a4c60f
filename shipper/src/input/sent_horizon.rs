//! How far each identity's lines may have been sent, recorded before they are read.
//!
//! After a restart, the lines a previous run may already have stored are looked up before
//! they are sent again (a `create` is refused with 409 only inside a data stream's current
//! write index, so a blind re-send after a rollover stores them twice). The checkpoint
//! records how far reading went, but it is saved once a second: the lines read in the last
//! second before a `kill -9` (or all of them, while saves fail) would be re-sent blindly.
//!
//! So reading reserves ahead: before a line past an identity's reservation is read, a
//! record "this identity may be sent up to here" (the line's end plus [`RESERVE`]) is
//! noted, and the notes are appended to `sent-horizon.log` beside the checkpoints before
//! any batch leaves the process ([`SentHorizon::write_pending`], which the encode stage
//! calls through [`crate::input::line_sink::BeforeSend`]): one small `write(2)` per batch
//! at most, not one per file (a first read of 10,000 files made 10,000 of them), which the
//! page cache keeps through the death of the process
//! (not through a power cut: the checkpoints, `fsync`ed, cover that to within their
//! interval). At start the records are folded into the checkpoints' replay windows.
//!
//! The log is cut at each checkpoint save without losing a record the save does not hold:
//! it is renamed aside *before* the snapshot is taken (a reservation is entered into the
//! table before it is appended, so one appended to the old log is in the snapshot, and one
//! appended after the rename is in the new log), and the old part is removed once the save
//! is durable. Reading it back takes the largest offset per identity and skips what does
//! not parse (a record torn by the crash).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::identity::FileKey;

/// Bytes reserved beyond the line that needed a reservation: the most a restart may look
/// up that was never sent, per identity.
pub(crate) const RESERVE: u64 = 1024 * 1024;

const LOG: &str = "sent-horizon.log";
const OLD: &str = "sent-horizon.log.old";

#[derive(Debug)]
pub(crate) struct SentHorizon {
    dir: PathBuf,
    log: Mutex<Log>,
}

/// The open log and the records noted since it was last written to.
#[derive(Debug)]
struct Log {
    file: File,
    pending: Vec<u8>,
}

impl Log {
    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // Cleared even when the write fails: the caller complains, and an outage of the
        // disk must not make the notes grow (the reservations are in the table, and the
        // next checkpoint covers them).
        let written = self.file.write_all(&self.pending);
        self.pending.clear();
        written
    }
}

impl SentHorizon {
    /// Opens the log in `dir` and returns it with what earlier runs reserved, per identity.
    pub(crate) fn open(dir: &Path) -> io::Result<(SentHorizon, HashMap<FileKey, u64>)> {
        let mut reserved = HashMap::new();
        for name in [OLD, LOG] {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(text) => parse_into(&text, &mut reserved),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let log = append(&dir.join(LOG))?;
        let horizon = SentHorizon {
            dir: dir.to_path_buf(),
            log: Mutex::new(Log {
                file: log,
                pending: Vec::new(),
            }),
        };
        Ok((horizon, reserved))
    }

    /// Notes that lines of `key` up to offset `upto` may be sent. Call after entering
    /// the reservation into the table (see the module's doc for why), and
    /// [`SentHorizon::write_pending`] before any of those lines leaves the process.
    pub(crate) fn reserve(&self, key: FileKey, upto: u64) {
        // Writing into a vector cannot fail.
        let _ = writeln!(self.lock().pending, "{key:016x} {upto}");
    }

    /// Appends the noted reservations to the log.
    pub(crate) fn write_pending(&self) -> io::Result<()> {
        self.lock().write_pending()
    }

    /// Starts a new log before a checkpoint snapshot is taken; the old part stays until
    /// [`SentHorizon::saved`]. If an old part is still there (the last save failed), the
    /// current log goes on: it holds everything since, which is more than needed.
    pub(crate) fn cut(&self) -> io::Result<()> {
        let mut log = self.lock();
        // Noted reservations are in the table, so in the snapshot to come: either part of
        // the log may hold them.
        log.write_pending()?;
        let (current, old) = (self.dir.join(LOG), self.dir.join(OLD));
        if old.exists() {
            return Ok(());
        }
        std::fs::rename(&current, &old)?;
        log.file = append(&current)?;
        Ok(())
    }

    /// The checkpoint taken after the last [`SentHorizon::cut`] is durable: the old part
    /// of the log is no longer needed.
    pub(crate) fn saved(&self) -> io::Result<()> {
        match std::fs::remove_file(self.dir.join(OLD)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for SentHorizon {
    /// Reading has stopped: what it noted goes to the log (a batch may still leave).
    fn drop(&mut self) {
        let _ = self.lock().write_pending();
    }
}

impl super::line_sink::BeforeSend for SentHorizon {
    fn before_send(&self) -> io::Result<()> {
        self.write_pending()
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Folds the records of `text` into `reserved`, keeping the largest offset per identity.
fn parse_into(text: &str, reserved: &mut HashMap<FileKey, u64>) {
    for line in text.lines() {
        let mut parts = line.split(' ');
        let (Some(key), Some(upto), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(key), Ok(upto)) = (u64::from_str_radix(key, 16), upto.parse::<u64>()) else {
            continue;
        };
        let entry = reserved.entry(key).or_insert(0);
        *entry = (*entry).max(upto);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: u64) -> FileKey {
        k
    }

    #[test]
    fn reservations_survive_a_reopen_and_a_cut_without_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let (h, before) = SentHorizon::open(dir.path()).unwrap();
        assert!(before.is_empty());
        let (a, b) = (key(0xabc), key(0xdef));
        h.reserve(a, 100);
        h.reserve(a, 300);
        h.cut().unwrap();
        h.reserve(b, 50);
        // The save after the cut failed: the next cut keeps the old part.
        h.cut().unwrap();
        h.reserve(a, 200);
        drop(h);
        let (_, got) = SentHorizon::open(dir.path()).unwrap();
        assert_eq!(got.get(&a), Some(&300));
        assert_eq!(got.get(&b), Some(&50));
    }

    #[test]
    fn noted_reservations_reach_the_log_when_written_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _) = SentHorizon::open(dir.path()).unwrap();
        h.reserve(key(7), 100);
        h.reserve(key(8), 200);
        let on_disk = || std::fs::read_to_string(dir.path().join(LOG)).unwrap();
        assert_eq!(on_disk(), "", "noted, not written yet");
        h.write_pending().unwrap();
        assert_eq!(on_disk(), "0000000000000007 100\n0000000000000008 200\n");
        h.write_pending().unwrap();
        assert_eq!(on_disk().lines().count(), 2, "written once");
        // What reading notes last is written when it stops, as a batch may still leave.
        h.reserve(key(9), 300);
        drop(h);
        let (_, got) = SentHorizon::open(dir.path()).unwrap();
        assert_eq!(got.get(&key(9)), Some(&300));
    }

    #[test]
    fn a_save_after_a_cut_drops_only_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _) = SentHorizon::open(dir.path()).unwrap();
        let (a, b) = (key(1), key(2));
        h.reserve(a, 100);
        h.cut().unwrap();
        h.reserve(b, 70);
        h.saved().unwrap();
        drop(h);
        let (_, got) = SentHorizon::open(dir.path()).unwrap();
        assert_eq!(
            got.get(&a),
            None,
            "held by the checkpoint saved after the cut"
        );
        assert_eq!(got.get(&b), Some(&70));
    }

    #[test]
    fn a_torn_or_foreign_record_is_skipped() {
        let mut got = HashMap::new();
        parse_into(
            "00000000000000ff 10\nzz 5\n00000000000000ff\n00000000000000ff 9\n0000000000000001 4",
            &mut got,
        );
        assert_eq!(got.get(&key(0xff)), Some(&10));
        assert_eq!(got.get(&key(1)), Some(&4));
        assert_eq!(got.len(), 2);
    }
}
