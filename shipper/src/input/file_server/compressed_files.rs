//! How the loop takes in a compressed rotation (`x.log.2.gz`, see [`crate::input::compressed`]).
//!
//! A compressed file is identified by its decompressed first line and decided by
//! [`decide::identify_compressed`]: it waits while the file it was made from is still being
//! read, costs one first-line read when its identity was read to its end, resumes its
//! identity where reading stopped, or is read whole as an identity never seen. It is then
//! read to its end and closed; it stays closed (no cost per scan) until it changes.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Closed, FileServer};
use crate::input::compressed::{self, GzStream};
use crate::input::identity::decide::{self, CompressedVerdict, SeenCompressed};
use crate::input::identity::evidence::{self, CompressedFileProbe, OpenTwinOf};
use crate::input::identity::{
    fingerprint_bytes, Fingerprint, HeadMark, FINGERPRINT_WINDOW, HEAD_MARK_LEN,
};
use crate::input::line_reader::Source;

impl FileServer {
    /// Identifies the compressed file `file` (opened from `path`) and, if it has lines not
    /// yet read, watches it; returns its slot when watched.
    pub(super) fn open_compressed(
        &mut self,
        file: File,
        meta: &Metadata,
        path: &Path,
        now_unix: u64,
    ) -> io::Result<Option<u32>> {
        let (dev, ino) = (meta.dev(), meta.ino());
        let stamp = (meta.len(), meta.mtime(), meta.mtime_nsec());
        if self.ignored_compressed.get(&(dev, ino)) == Some(&stamp) {
            return Ok(None);
        }
        if changed_within(meta, self.cfg.rotate_wait) {
            // Possibly still being written by the compressor: a partial stream would look
            // truncated. Look again at a later scan.
            return Ok(None);
        }
        let head = compressed::head(&file, FINGERPRINT_WINDOW, true);
        let Some(fp) = fingerprint_bytes(&head.bytes, true) else {
            match &head.damage {
                Some(e) => compressed::report_damage(path, 0, e),
                None => tracing::debug!(path = %path.display(), "empty compressed file"),
            }
            self.ignored_compressed.insert((dev, ino), stamp);
            return Ok(None);
        };
        let open_twins: Vec<OpenTwinOf<'_>> = self
            .watchers_with(fp)
            .map(|w| OpenTwinOf {
                file: w.reader.file(),
                compressed: w.reader.is_compressed(),
            })
            .collect();
        let twins: Vec<decide::Twin> = (0..open_twins.len())
            .map(|index| decide::Twin { index })
            .collect();
        let (known, key_taken) = self.known_with(fp);
        let trailer_size = compressed::trailer_size(&file);
        let seen = SeenCompressed { trailer_size };
        let mut probe = CompressedFileProbe::new(&file, open_twins);
        let verdict = decide::identify_compressed(seen, &twins, &known, key_taken, &mut probe)?;
        drop(probe);
        let size_hint = trailer_size.map_or(0, u64::from);
        match verdict {
            CompressedVerdict::Wait => Ok(None),
            CompressedVerdict::Shipped { slot } => {
                tracing::info!(path = %path.display(), "compressed file holds only lines already read");
                metrics::counter!("shipper_compressed_files_total", "verdict" => "already_read")
                    .increment(1);
                self.table
                    .relocate(slot, dev, ino, path.to_path_buf(), now_unix);
                let path = path.to_path_buf();
                self.closed.insert((dev, ino), Closed { slot, path, stamp });
                Ok(None)
            }
            CompressedVerdict::Resume { slot, key, offset } => {
                let was = self.table.get(slot).map(|c| c.path).unwrap_or_default();
                tracing::info!(path = %path.display(), offset, was = %was.display(), "resuming a known file in its compressed rotation");
                metrics::counter!("shipper_compressed_files_total", "verdict" => "resumed")
                    .increment(1);
                self.table
                    .relocate(slot, dev, ino, path.to_path_buf(), now_unix);
                let source = Source::Compressed(Box::new(GzStream::new(file, path)));
                self.watch(slot, key, fp, dev, ino, path, source, offset, size_hint);
                self.stamp_last(stamp);
                Ok(Some(slot))
            }
            CompressedVerdict::New { salted } => {
                let (slot, key) = self.new_identity(fp, salted, dev, ino, path, now_unix);
                tracing::info!(path = %path.display(), "new compressed file; reading it whole");
                metrics::counter!("shipper_compressed_files_total", "verdict" => "new")
                    .increment(1);
                let source = Source::Compressed(Box::new(GzStream::new(file, path)));
                self.watch(slot, key, fp, dev, ino, path, source, 0, size_hint);
                self.stamp_last(stamp);
                Ok(Some(slot))
            }
        }
    }

    /// What follows a scan for the files this loop holds apart from the watchers:
    /// compressed files with nothing to read are forgotten once gone, and files without a
    /// complete line that left the globs are finished ([`FileServer::finish_departed`]).
    pub(super) fn after_scan(&mut self, now_unix: u64) {
        if !self.ignored_compressed.is_empty() {
            let present = &self.present;
            self.ignored_compressed
                .retain(|key, _| present.contains_key(key));
        }
        self.finish_departed(now_unix);
    }

    /// Is the plain file `file` (fingerprint `fp`) possibly the content of a compressed file
    /// being read? Then it waits until that one is finished, so that one identity is never
    /// read from two files at once.
    pub(super) fn copy_of_open_compressed(&self, file: &File, fp: Fingerprint) -> bool {
        self.watchers_with(fp)
            .filter(|w| w.reader.is_compressed())
            .any(|w| evidence::plain_may_copy_compressed(file, w.reader.file()).unwrap_or(true))
    }

    /// Records the mark of the head of the file of watcher `index`, read to its end: a
    /// compressed copy of it is then recognised from its head (see [`HeadMark`]).
    pub(super) fn remember_head(&self, index: usize) {
        let Some(w) = self.watchers.get(index) else {
            return;
        };
        let head = if w.reader.is_compressed() {
            let head = compressed::head(w.reader.file(), HEAD_MARK_LEN, false);
            Some(HeadMark::of(&head.bytes))
        } else {
            HeadMark::read(w.reader.file()).ok()
        };
        if let Some(head) = head {
            self.table.set_head(w.slot, head);
        }
    }

    /// Records, on the watcher just added, the state its file had: what tells later that a
    /// compressed file read to its end changed.
    fn stamp_last(&mut self, stamp: super::Stamp) {
        if let Some(w) = self.watchers.last_mut() {
            w.checked = stamp;
        }
    }
}

/// Did the file's status change less than `within` ago? (A compressor writing it, or
/// setting its times at the end, changes it.) A change time in the future (a clock set back)
/// does not count, so a file is never put off forever.
fn changed_within(meta: &Metadata, within: std::time::Duration) -> bool {
    let changed = UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(meta.ctime()).unwrap_or(0),
            u32::try_from(meta.ctime_nsec()).unwrap_or(0),
        );
    SystemTime::now()
        .duration_since(changed)
        .is_ok_and(|age| age < within)
}
