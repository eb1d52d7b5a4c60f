//! Saves the checkpoints on a thread of its own.
//!
//! A checkpoint write ends in two `fsync`s, and on a busy disk one `fsync` can take seconds.
//! Done on the reading thread, that would stall reading (and so delivery) for as long; here
//! the reader never waits for the disk, and the checkpoint still follows acknowledgements
//! within about one interval.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::acknowledgements::AckTable;
use super::checkpoint::{CheckpointError, Checkpointer};
use super::sent_horizon::SentHorizon;

/// Writes the table's checkpoints when they changed since the last write.
pub(crate) struct Persister {
    table: Arc<AckTable>,
    checkpointer: Arc<Checkpointer>,
    forget_after: Duration,
    /// Cut before each snapshot, its old part dropped once the snapshot is saved.
    horizon: Option<Arc<SentHorizon>>,
    /// The table's generation last saved (see [`AckTable::generation`]); no copy of what
    /// was saved is kept, which with thousands of files would be megabytes.
    saved_generation: Option<u64>,
}

impl Persister {
    pub(crate) fn new(
        table: Arc<AckTable>,
        checkpointer: Arc<Checkpointer>,
        forget_after: Duration,
    ) -> Persister {
        Persister {
            table,
            checkpointer,
            forget_after,
            horizon: None,
            saved_generation: None,
        }
    }

    /// Keeps `horizon` in step with the saves (see [`super::sent_horizon`]).
    pub(crate) fn with_horizon(mut self, horizon: Arc<SentHorizon>) -> Persister {
        self.horizon = Some(horizon);
        self
    }

    /// Saves now if anything changed; identities not seen for `forget_after` are dropped.
    pub(crate) fn save_if_changed(&mut self) -> Result<bool, CheckpointError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let cutoff = now.saturating_sub(self.forget_after.as_secs());
        let forgotten = self.table.forget_seen_before(cutoff);
        if forgotten > 0 {
            tracing::info!(
                forgotten,
                "forgot the checkpoints of files not seen for SHIPPER_FORGET_AFTER"
            );
        }
        // Read before the copy: a change made while it is taken makes the next save happen.
        let generation = self.table.generation();
        if self.saved_generation == Some(generation) {
            return Ok(false);
        }
        if let Some(h) = &self.horizon {
            // Before the snapshot: every reservation in the part cut off is in it.
            if let Err(e) = h.cut() {
                tracing::warn!(error = %e, "cannot cut the sent-horizon log; it keeps growing until a cut succeeds");
            }
        }
        let mut snapshot = self.table.snapshot();
        snapshot.retain(|c| c.seen_unix >= cutoff);
        match self.checkpointer.save(&snapshot) {
            Ok(()) => {
                if let Some(h) = &self.horizon {
                    if let Err(e) = h.saved() {
                        tracing::warn!(error = %e, "cannot remove the old part of the sent-horizon log");
                    }
                }
                metrics::counter!("shipper_checkpoint_writes_total").increment(1);
                self.saved_generation = Some(generation);
                Ok(true)
            }
            Err(e) => {
                metrics::counter!("shipper_checkpoint_errors_total").increment(1);
                Err(e)
            }
        }
    }
}

/// The running writer thread; [`CheckpointWriter::stop`] makes a last write and joins it.
pub(crate) struct CheckpointWriter {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<Persister>>,
}

impl CheckpointWriter {
    pub(crate) fn spawn(
        mut persister: Persister,
        every: Duration,
    ) -> std::io::Result<CheckpointWriter> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("checkpoints".into())
            .spawn(move || loop {
                let finish = !matches!(stopped.recv_timeout(every), Err(RecvTimeoutError::Timeout));
                if let Err(e) = persister.save_if_changed() {
                    tracing::error!(error = %e, "cannot save checkpoints; will retry");
                }
                if finish {
                    return persister;
                }
            })?;
        Ok(CheckpointWriter {
            stop,
            thread: Some(thread),
        })
    }

    /// Writes once more and stops; returns the persister for a final write by the caller.
    pub(crate) fn stop(mut self) -> Option<Persister> {
        let _ = self.stop.send(());
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::checkpoint::FileCheckpoint;
    use crate::input::identity::TailMark;
    use crate::input::read_budget::ReadBudget;

    #[test]
    fn nothing_is_copied_or_written_when_nothing_changed() {
        let dir = tempfile::tempdir().unwrap();
        let checkpointer = Arc::new(Checkpointer::new(dir.path()).unwrap());
        let table = Arc::new(AckTable::new(Arc::new(ReadBudget::new(1 << 20))));
        let slot = table.insert(FileCheckpoint {
            seen_unix: u64::MAX / 2,
            ..FileCheckpoint::default()
        });
        let mut p = Persister::new(Arc::clone(&table), checkpointer, Duration::from_secs(3600));
        assert!(p.save_if_changed().unwrap(), "the first save writes");
        assert!(!p.save_if_changed().unwrap(), "nothing changed: no write");
        table.touch(slot, u64::MAX / 2, 600);
        assert!(
            !p.save_if_changed().unwrap(),
            "a touch within the precision changes nothing"
        );
        table.record_read(slot, 42, TailMark::default(), true);
        assert!(
            p.save_if_changed().unwrap(),
            "a line read and safe: written"
        );
        assert!(!p.save_if_changed().unwrap());
    }

    #[test]
    fn the_writer_saves_changes_and_a_last_time_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let table = Arc::new(AckTable::new(Arc::new(ReadBudget::new(100))));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let slot = table.insert(FileCheckpoint {
            key: 1,
            fingerprint: 1,
            dev: 0,
            ino: 0,
            path: "a.log".into(),
            offset: 0,
            tail: TailMark::default(),
            seen_unix: now,
            ..FileCheckpoint::default()
        });
        let checkpointer = Arc::new(Checkpointer::new(dir.path()).unwrap());
        let writer = CheckpointWriter::spawn(
            Persister::new(
                Arc::clone(&table),
                Arc::clone(&checkpointer),
                Duration::from_secs(3600),
            ),
            Duration::from_secs(3600),
        )
        .unwrap();
        table.record_read(slot, 42, TailMark::default(), true);
        let mut persister = writer.stop().expect("joined");
        assert_eq!(checkpointer.load().unwrap().files[0].offset, 42);
        assert!(
            !persister.save_if_changed().unwrap(),
            "nothing changed since"
        );
    }
}
