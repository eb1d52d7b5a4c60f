//! Files that never got a complete first line.
//!
//! A file is identified by its first line, so one holding a single line without its newline
//! waits for the newline. If it is renamed out of the globs or deleted instead, the newline
//! will never come: the file is held open from the moment it is seen, and once it is gone
//! and has not changed for `rotate_wait`, it is identified by the bytes it has
//! (`fingerprint`'s `force`) and read like any finished file, its line shipped once, flagged
//! unterminated.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{FileServer, Stamp};

/// A file without a complete first line, held open.
pub(crate) struct Held {
    file: File,
    path: PathBuf,
    /// Size and modification time when last looked at, and since when they are so.
    stamp: Stamp,
    since: Instant,
}

fn stamp_of(file: &File) -> Option<Stamp> {
    let m = file.metadata().ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec()))
}

impl FileServer {
    /// Holds `file` (seen at `path`, `size` bytes, no complete first line) open, unless it is
    /// empty: an empty file has nothing to ship.
    pub(super) fn hold(&mut self, file: File, path: &Path, dev: u64, ino: u64, size: u64) {
        if size == 0 {
            self.held.remove(&(dev, ino));
            return;
        }
        if let Some(h) = self.held.get_mut(&(dev, ino)) {
            h.path = path.to_path_buf();
            return;
        }
        let Some(stamp) = stamp_of(&file) else {
            return;
        };
        let since = Instant::now();
        let path = path.to_path_buf();
        self.held.insert(
            (dev, ino),
            Held {
                file,
                path,
                stamp,
                since,
            },
        );
    }

    /// Forgets a held file: it got its first line and an identity.
    pub(super) fn release(&mut self, dev: u64, ino: u64) {
        if !self.held.is_empty() {
            self.held.remove(&(dev, ino));
        }
    }

    /// After a scan: held files that left the globs (renamed away or deleted) and have not
    /// changed for `rotate_wait` are identified by the bytes they have and read to their end.
    pub(super) fn finish_departed(&mut self, now_unix: u64) {
        if self.held.is_empty() {
            return;
        }
        let departed: Vec<(u64, u64)> = self
            .held
            .keys()
            .filter(|key| !self.present.contains_key(key))
            .copied()
            .collect();
        for key in departed {
            let Some(h) = self.held.get_mut(&key) else {
                continue;
            };
            match stamp_of(&h.file) {
                Some((0, _, _)) | None => {
                    self.held.remove(&key);
                    continue;
                }
                Some(stamp) if stamp != h.stamp => {
                    // Still written to under its new name: wait until it settles.
                    h.stamp = stamp;
                    h.since = Instant::now();
                    self.unidentified = true;
                    continue;
                }
                Some(_) if h.since.elapsed() < self.cfg.rotate_wait => {
                    self.unidentified = true; // look again soon
                    continue;
                }
                Some(_) => {}
            }
            let Some(h) = self.held.remove(&key) else {
                continue;
            };
            tracing::info!(path = %h.path.display(), "a file without a complete line left the globs or was deleted; shipping what it holds");
            let since = h.since;
            let opened = h.file.metadata().and_then(|meta| {
                self.open_file(h.file, &meta, &h.path, key.0, key.1, now_unix, true)
            });
            match opened {
                Ok(Some(_)) => {
                    if let Some(w) = self.watchers.last_mut() {
                        w.gone = true;
                        w.last_data = since;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %h.path.display(), error = %e, "cannot read a file that left the globs");
                }
            }
        }
    }
}
