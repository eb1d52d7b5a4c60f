//! The way back from the output to the checkpoints.
//!
//! Every line read gets a sequence number in its file's slot. Documents come back
//! acknowledged in any order (one item of a batch may be retried while later batches
//! succeed), so each slot keeps the lines read but not yet safe, in read order, and the
//! file's safe offset only advances over the unbroken run of acknowledged lines at the front.
//! That offset, never the read position, is what the checkpoint saves.
//!
//! The table also remembers every file identity seen (loaded from the checkpoint at start),
//! so a file that reappears under another name or after a restart resumes where it was.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::checkpoint::FileCheckpoint;
use super::identity::{LineMark, TailMark};
use super::read_budget::ReadBudget;
use crate::batch::{Acknowledge, Origin};

/// Line ends kept per identity while it is written to. A copy that ends before the read
/// position can only have been made in the moment between the copy and the truncation
/// (copytruncate: microseconds to a few milliseconds), a few lines at most; 16 cover that at
/// any realistic write rate, for 400 bytes per active file.
const RECENT_MARKS: usize = 16;

/// Of those, saved with the checkpoint while the file is live: the copy can only end a line
/// or two before the read position, and with thousands of active files the marks must stay
/// a small part of the checkpoint.
const RECENT_MARKS_SAVED: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Pending {
    end: u64,
    tail: TailMark,
    acked: bool,
    /// When the line was read, in milliseconds since the table was made.
    read_ms: u32,
}

/// A file identity and its delivery state.
#[derive(Debug)]
struct Slot {
    checkpoint: FileCheckpoint,
    /// Sequence number of `pending[0]`.
    base_seq: u64,
    pending: VecDeque<Pending>,
    /// Not seen for longer than the retention: left out of checkpoints, and its place is
    /// reused by the next new identity.
    forgotten: bool,
    /// The ends of its last lines read (see [`FileCheckpoint::recent`]).
    recent: VecDeque<LineMark>,
    /// Its file was truncated under it: all its recent line ends are saved with the
    /// checkpoint, so a restart still recognises the copy (of a live file, only the last few).
    given_up: bool,
    /// How far this run reserved the sending of its lines (see [`super::sent_horizon`]).
    reserved: u64,
}

impl Slot {
    fn advance(&mut self) {
        while let Some(front) = self.pending.front() {
            if !front.acked {
                break;
            }
            self.checkpoint.offset = front.end;
            self.checkpoint.tail = front.tail;
            self.pending.pop_front();
            self.base_seq += 1;
        }
        if self.pending.is_empty() && self.pending.capacity() > IDLE_PENDING_CAPACITY {
            // A queue keeps the room of its longest burst: with thousands of files each
            // read in a burst once, that is most of what they cost. An idle file needs none.
            self.pending = VecDeque::new();
        }
    }
}

/// Room kept in a file's queue of unacknowledged lines once they are all acknowledged.
const IDLE_PENDING_CAPACITY: usize = 4;

/// Lookups into the slots (see [`AckTable::with_fingerprint`]).
#[derive(Debug, Default)]
struct Index {
    by_fingerprint: HashMap<u64, Vec<u32>>,
    /// How many identities use each key.
    keys: HashMap<u64, u32>,
    /// Slots of forgotten identities, reused first.
    free: Vec<u32>,
}

impl Index {
    fn remove(&mut self, slot: u32, fingerprint: u64, key: u64) {
        if let Some(v) = self.by_fingerprint.get_mut(&fingerprint) {
            v.retain(|&s| s != slot);
            if v.is_empty() {
                self.by_fingerprint.remove(&fingerprint);
            }
        }
        if let Some(n) = self.keys.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.keys.remove(&key);
            }
        }
        self.free.push(slot);
    }
}

/// Delivery state of every known file identity; shared by the reader and the output.
pub(crate) struct AckTable {
    slots: Mutex<Vec<Slot>>,
    /// Which slots have which fingerprint and key, and which are free: opening one file
    /// among thousands looks its candidates up instead of scanning every identity. Locked
    /// after `slots`, never before.
    index: Mutex<Index>,
    /// See [`AckTable::generation`].
    generation: std::sync::atomic::AtomicU64,
    budget: Arc<ReadBudget>,
    born: std::time::Instant,
}

impl AckTable {
    pub(crate) fn new(budget: Arc<ReadBudget>) -> AckTable {
        AckTable {
            slots: Mutex::new(Vec::new()),
            index: Mutex::new(Index::default()),
            generation: Default::default(),
            budget,
            born: std::time::Instant::now(),
        }
    }

    pub(crate) fn budget(&self) -> &Arc<ReadBudget> {
        &self.budget
    }

    /// Makes room for `more` identities beyond the free slots, exactly (see
    /// [`super::file_server`]'s scan: doubling leaves a table of thousands half empty).
    pub(crate) fn reserve(&self, more: usize) {
        let free = self.lock_index().free.len();
        if more > free {
            self.lock_mut().reserve_exact(more - free);
        }
    }

    /// Adds a known identity whose lines before `checkpoint.offset` are safe; returns its slot.
    pub(crate) fn insert(&self, mut checkpoint: FileCheckpoint) -> u32 {
        let mut slots = self.lock_mut();
        let mut index = self.lock_index();
        let (fingerprint, key) = (checkpoint.fingerprint, checkpoint.key);
        let recent = std::mem::take(&mut checkpoint.recent);
        let slot = Slot {
            checkpoint,
            base_seq: 0,
            pending: VecDeque::new(),
            forgotten: false,
            given_up: !recent.is_empty(),
            reserved: 0,
            recent,
        };
        let at = match index.free.pop() {
            Some(i) => {
                slots[i as usize] = slot;
                i
            }
            None => {
                slots.push(slot);
                (slots.len() - 1) as u32
            }
        };
        index
            .by_fingerprint
            .entry(fingerprint)
            .or_default()
            .push(at);
        *index.keys.entry(key).or_default() += 1;
        at
    }

    /// The identities whose first line has fingerprint `fp`, with their saved state, and
    /// whether `fp` is already some identity's key (a new identity must then be salted).
    pub(crate) fn with_fingerprint(&self, fp: u64) -> (Vec<(u32, FileCheckpoint)>, bool) {
        let slots = self.lock();
        let index = self.lock_index();
        let found = index
            .by_fingerprint
            .get(&fp)
            .into_iter()
            .flatten()
            .filter_map(|&i| {
                let s = slots.get(i as usize)?;
                (!s.forgotten && s.checkpoint.fingerprint == fp).then(|| {
                    let mut c = s.checkpoint.clone();
                    c.recent = s.recent.clone();
                    (i, c)
                })
            })
            .collect();
        (found, index.keys.contains_key(&fp))
    }

    /// Records a line read from `slot`, ending at `end`, and returns its sequence number.
    /// A line that yields no document (an empty line) is `safe_now`.
    pub(crate) fn record_read(&self, slot: u32, end: u64, tail: TailMark, safe_now: bool) -> u64 {
        // Wraps after 49 days; ages are taken with wrapping_sub, so they stay right.
        let read_ms = self.born.elapsed().as_millis() as u32;
        let mut slots = self.lock_mut();
        let Some(s) = slots.get_mut(slot as usize) else {
            return 0;
        };
        let seq = s.base_seq + s.pending.len() as u64;
        let recent = &mut s.recent;
        if recent.len() == RECENT_MARKS {
            recent.pop_front();
        }
        recent.push_back(LineMark { offset: end, tail });
        if end > s.checkpoint.sent_offset {
            s.checkpoint.sent_offset = end;
            s.checkpoint.sent_tail = tail;
        }
        s.pending.push_back(Pending {
            end,
            tail,
            acked: safe_now,
            read_ms,
        });
        if safe_now {
            s.advance();
        }
        seq
    }

    /// The saved state of every identity, as the checkpoint should record it now.
    pub(crate) fn snapshot(&self) -> Vec<FileCheckpoint> {
        self.lock()
            .iter()
            .filter(|s| !s.forgotten)
            .map(|s| {
                let mut c = s.checkpoint.clone();
                // All of them for a file truncated under the reader; the last few for a live
                // file, in case the process dies before it sees the truncation.
                let keep = if s.given_up {
                    RECENT_MARKS
                } else {
                    RECENT_MARKS_SAVED
                };
                c.recent = s.recent.iter().rev().take(keep).rev().copied().collect();
                // What a restart must look up: what this run or an earlier one may have
                // sent, past what is acknowledged.
                c.replay_until = c.replay_until.max(s.reserved);
                if c.replay_until <= c.offset {
                    c.replay_until = 0;
                }
                c
            })
            .collect()
    }

    /// This run may send the lines of `slot` up to `upto` (recorded in the sent-horizon
    /// log right after, see [`super::sent_horizon`]).
    pub(crate) fn reserve_sending(&self, slot: u32, upto: u64) {
        if let Some(s) = self.lock_mut().get_mut(slot as usize) {
            s.reserved = s.reserved.max(upto);
        }
    }

    /// Lines of `slot` ending at or before this offset may have been sent by an earlier
    /// run (or, for an identity resumed within this run, by this one): they are looked up
    /// before they are sent.
    pub(crate) fn replay_until(&self, slot: u32) -> u64 {
        self.lock().get(slot as usize).map_or(0, |s| {
            let c = &s.checkpoint;
            c.replay_until.max(c.sent_offset).max(c.offset)
        })
    }

    /// The saved state of one slot.
    pub(crate) fn get(&self, slot: u32) -> Option<FileCheckpoint> {
        self.lock().get(slot as usize).map(|s| s.checkpoint.clone())
    }

    /// Where reading of `slot` stopped: the end of the last line read (safe or not), and the
    /// mark of the bytes before it. A file that reappears resumes reading there.
    pub(crate) fn read_position(&self, slot: u32) -> Option<(u64, TailMark)> {
        self.lock()
            .get(slot as usize)
            .map(|s| match s.pending.back() {
                Some(p) => (p.end, p.tail),
                None => (s.checkpoint.offset, s.checkpoint.tail),
            })
    }

    /// The safe offset of `slot` and how long its oldest line not yet safe has waited, in one
    /// look (what the lag figures need, without copying the checkpoint).
    pub(crate) fn delivery(&self, slot: u32) -> Option<(u64, std::time::Duration)> {
        let now_ms = self.born.elapsed().as_millis() as u32;
        self.lock().get(slot as usize).map(|s| {
            let age = s
                .pending
                .iter()
                .find(|p| !p.acked)
                .map(|p| {
                    std::time::Duration::from_millis(u64::from(now_ms.wrapping_sub(p.read_ms)))
                })
                .unwrap_or_default();
            (s.checkpoint.offset, age)
        })
    }

    /// The furthest offset this identity's ids were used to, and the mark of the bytes
    /// before it: what a file must hold to be this identity (see
    /// [`FileCheckpoint::sent_offset`]).
    pub(crate) fn evidence(&self, slot: u32) -> Option<(u64, TailMark)> {
        self.lock().get(slot as usize).map(|s| {
            let c = &s.checkpoint;
            if c.sent_offset > c.offset {
                (c.sent_offset, c.sent_tail)
            } else {
                (c.offset, c.tail)
            }
        })
    }

    #[cfg(test)]
    /// Lines read from `slot` whose documents are not yet safe.
    pub(crate) fn unacknowledged(&self, slot: u32) -> usize {
        self.lock()
            .get(slot as usize)
            .map(|s| s.pending.iter().filter(|p| !p.acked).count())
            .unwrap_or(0)
    }

    /// Lines read but not yet safe, over all files.
    pub(crate) fn total_unacknowledged(&self) -> usize {
        self.lock()
            .iter()
            .map(|s| s.pending.iter().filter(|p| !p.acked).count())
            .sum()
    }

    /// Drops the recent line ends of an identity whose file went idle: a copy of an idle file
    /// holds all that was read of it, and the saved position tells it.
    ///
    /// Not a change worth a save: the marks left in the last saved checkpoint are still true.
    pub(crate) fn forget_recent_marks(&self, slot: u32) {
        if let Some(s) = self.lock().get_mut(slot as usize) {
            s.recent = Default::default();
            s.given_up = false;
        }
    }

    /// The identity's file was truncated under it: keep its recent line ends, also across a
    /// restart, for the copy (see [`Slot::given_up`]).
    pub(crate) fn give_up(&self, slot: u32) {
        if let Some(s) = self.lock_mut().get_mut(slot as usize) {
            s.given_up = true;
        }
    }

    /// Records that the identity lives on in a copy of `copy_end.offset` bytes, all of them
    /// read already (see [`FileCheckpoint::copy_end`]).
    pub(crate) fn set_copy_end(&self, slot: u32, copy_end: LineMark) {
        if let Some(s) = self.lock_mut().get_mut(slot as usize) {
            s.checkpoint.copy_end = Some(copy_end);
            s.recent = Default::default();
            s.given_up = false;
        }
    }

    /// How long the oldest line read but not yet safe, over all files, has waited; `None`
    /// when every line read is safe. One look at the front of each file's pending lines
    /// (the run of safe lines at the front is always popped, so the first line not safe is
    /// found at once): what "shipping stalled" is measured by.
    pub(crate) fn oldest_unacknowledged_age(&self) -> Option<std::time::Duration> {
        let now_ms = self.born.elapsed().as_millis() as u32;
        self.lock()
            .iter()
            .filter_map(|s| s.pending.iter().find(|p| !p.acked))
            .map(|p| u64::from(now_ms.wrapping_sub(p.read_ms)))
            .max()
            .map(std::time::Duration::from_millis)
    }

    /// Updates where the identity lives now and when it was seen.
    pub(crate) fn relocate(&self, slot: u32, dev: u64, ino: u64, path: PathBuf, seen_unix: u64) {
        if let Some(s) = self.lock_mut().get_mut(slot as usize) {
            s.checkpoint.dev = dev;
            s.checkpoint.ino = ino;
            s.checkpoint.path = path;
            s.checkpoint.seen_unix = seen_unix;
        }
    }

    /// Records the mark of the identity's first bytes (its file was read to its end).
    pub(crate) fn set_head(&self, slot: u32, head: super::identity::HeadMark) {
        if let Some(s) = self.lock_mut().get_mut(slot as usize) {
            s.checkpoint.head = head;
        }
    }

    /// Records that the identity was seen at `seen_unix`, if that is `precision_secs` or more
    /// after the time recorded: retention is counted in days, and a checkpoint rewritten on
    /// every scan for a new "seen" second would be a write every few seconds with thousands
    /// of idle files.
    pub(crate) fn touch(&self, slot: u32, seen_unix: u64, precision_secs: u64) {
        if let Some(s) = self.lock().get_mut(slot as usize) {
            if seen_unix.saturating_sub(s.checkpoint.seen_unix) >= precision_secs {
                s.checkpoint.seen_unix = seen_unix;
                self.generation
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
        }
    }

    /// Forgets identities last seen before `cutoff` (Unix seconds) that have nothing in
    /// flight, so a shipper running for months does not carry every file it ever read.
    /// Returns how many were forgotten.
    pub(crate) fn forget_seen_before(&self, cutoff: u64) -> usize {
        let mut forgotten = 0;
        let mut slots = self.lock();
        let mut index = self.lock_index();
        for (i, s) in slots.iter_mut().enumerate() {
            if !s.forgotten && s.pending.is_empty() && s.checkpoint.seen_unix < cutoff {
                s.forgotten = true;
                s.checkpoint.path = PathBuf::new();
                index.remove(i as u32, s.checkpoint.fingerprint, s.checkpoint.key);
                forgotten += 1;
            }
        }
        if forgotten > 0 {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        forgotten
    }

    /// Counts every change, so the checkpoint writer skips a save (and the copy of every
    /// identity it takes) when nothing changed: with thousands of idle files that copy was
    /// most of the idle cost.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The slots, for a change: counted in [`AckTable::generation`].
    fn lock_mut(&self) -> MutexGuard<'_, Vec<Slot>> {
        let guard = self.lock();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        guard
    }

    fn lock_index(&self) -> MutexGuard<'_, Index> {
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Acknowledge for AckTable {
    fn acknowledge(&self, origins: &[Origin]) {
        let mut freed = 0usize;
        {
            let mut slots = self.lock_mut();
            let mut touched: Vec<u32> = Vec::new();
            for origin in origins {
                let Some(s) = slots.get_mut(origin.file as usize) else {
                    continue;
                };
                let Some(index) = origin.seq.checked_sub(s.base_seq) else {
                    continue; // already safe: a late duplicate acknowledgement
                };
                if let Some(p) = s.pending.get_mut(index as usize) {
                    if !p.acked {
                        p.acked = true;
                        freed += origin.budget_bytes as usize;
                    }
                }
                if touched.last() != Some(&origin.file) {
                    touched.push(origin.file);
                }
            }
            touched.sort_unstable();
            touched.dedup();
            for slot in touched {
                if let Some(s) = slots.get_mut(slot as usize) {
                    s.advance();
                }
            }
        }
        self.budget.give_back(freed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> AckTable {
        AckTable::new(Arc::new(ReadBudget::new(1000)))
    }

    fn checkpoint(offset: u64) -> FileCheckpoint {
        FileCheckpoint {
            key: 1,
            fingerprint: 1,
            dev: 0,
            ino: 0,
            path: "a.log".into(),
            offset,
            tail: TailMark::default(),
            seen_unix: 0,
            ..FileCheckpoint::default()
        }
    }

    fn origin(file: u32, seq: u64) -> Origin {
        Origin {
            file,
            seq,
            budget_bytes: 10,
        }
    }

    #[test]
    fn the_offset_moves_only_over_an_unbroken_run_of_acknowledged_lines() {
        let t = table();
        let slot = t.insert(checkpoint(0));
        for end in [10, 20, 30] {
            t.record_read(slot, end, TailMark::default(), false);
        }
        t.acknowledge(&[origin(slot, 1), origin(slot, 2)]);
        assert_eq!(t.get(slot).unwrap().offset, 0, "line 0 is not safe yet");
        t.acknowledge(&[origin(slot, 0)]);
        assert_eq!(t.get(slot).unwrap().offset, 30);
        assert_eq!(t.unacknowledged(slot), 0);
    }

    #[test]
    fn lines_without_documents_are_safe_at_once() {
        let t = table();
        let slot = t.insert(checkpoint(5));
        t.record_read(slot, 6, TailMark::default(), true);
        assert_eq!(t.get(slot).unwrap().offset, 6);
        let seq = t.record_read(slot, 20, TailMark::default(), false);
        assert_eq!(seq, 1);
        t.record_read(slot, 21, TailMark::default(), true);
        assert_eq!(t.get(slot).unwrap().offset, 6);
        t.acknowledge(&[origin(slot, 1)]);
        assert_eq!(t.get(slot).unwrap().offset, 21);
    }

    #[test]
    fn acknowledgements_give_the_budget_back_once() {
        let t = table();
        let slot = t.insert(checkpoint(0));
        assert!(t.budget().try_take(10));
        t.record_read(slot, 10, TailMark::default(), false);
        t.acknowledge(&[origin(slot, 0)]);
        t.acknowledge(&[origin(slot, 0)]);
        assert_eq!(t.budget().used(), 0);
    }

    #[test]
    fn identities_are_looked_up_by_fingerprint_and_key() {
        let t = table();
        let a = t.insert(FileCheckpoint {
            key: 7,
            fingerprint: 7,
            ..FileCheckpoint::default()
        });
        let b = t.insert(FileCheckpoint {
            key: 99,
            fingerprint: 7,
            ..FileCheckpoint::default()
        });
        t.insert(FileCheckpoint {
            key: 8,
            fingerprint: 8,
            seen_unix: u64::MAX,
            ..FileCheckpoint::default()
        });
        let (found, key_taken) = t.with_fingerprint(7);
        let mut slots: Vec<u32> = found.iter().map(|(s, _)| *s).collect();
        slots.sort();
        assert_eq!((slots, key_taken), (vec![a, b], true));
        assert!(t.with_fingerprint(99).1, "a key, not a fingerprint");
        assert!(t.with_fingerprint(99).0.is_empty());
        t.forget_seen_before(1);
        assert_eq!(t.with_fingerprint(7), (vec![], false));
        assert_eq!(t.with_fingerprint(8).0.len(), 1);
    }

    #[test]
    fn old_identities_are_forgotten_and_their_place_reused() {
        let t = table();
        let mut old = checkpoint(10);
        old.seen_unix = 100;
        let old_slot = t.insert(old);
        let mut busy = checkpoint(0);
        busy.seen_unix = 100;
        let busy_slot = t.insert(busy);
        t.record_read(busy_slot, 5, TailMark::default(), false);
        assert_eq!(
            t.forget_seen_before(200),
            1,
            "a slot with lines in flight is kept"
        );
        assert_eq!(t.snapshot().len(), 1);
        let fp = checkpoint(10).fingerprint;
        assert!(t
            .with_fingerprint(fp)
            .0
            .iter()
            .all(|(slot, _)| *slot != old_slot));
        assert_eq!(t.insert(checkpoint(0)), old_slot, "the place is reused");
        assert!(t
            .with_fingerprint(fp)
            .0
            .iter()
            .any(|(slot, _)| *slot == old_slot));
        assert_eq!(t.snapshot().len(), 2);
    }

    #[test]
    fn the_oldest_line_not_yet_safe_is_found_over_all_files() {
        let t = table();
        assert_eq!(t.oldest_unacknowledged_age(), None);
        let a = t.insert(checkpoint(0));
        let b = t.insert(checkpoint(0));
        t.record_read(a, 10, TailMark::default(), false);
        std::thread::sleep(std::time::Duration::from_millis(30));
        t.record_read(b, 10, TailMark::default(), false);
        t.record_read(a, 20, TailMark::default(), false);
        let oldest = t.oldest_unacknowledged_age().unwrap();
        assert!(oldest >= std::time::Duration::from_millis(30), "{oldest:?}");
        t.acknowledge(&[origin(a, 0)]);
        let after = t.oldest_unacknowledged_age().unwrap();
        assert!(
            after < oldest,
            "{after:?} after the oldest line was acknowledged"
        );
        t.acknowledge(&[origin(a, 1), origin(b, 0)]);
        assert_eq!(t.oldest_unacknowledged_age(), None);
    }

    #[test]
    fn files_are_acknowledged_independently() {
        let t = table();
        let a = t.insert(checkpoint(0));
        let b = t.insert(checkpoint(0));
        t.record_read(a, 10, TailMark::default(), false);
        t.record_read(b, 7, TailMark::default(), false);
        t.acknowledge(&[origin(b, 0)]);
        assert_eq!(t.get(a).unwrap().offset, 0);
        assert_eq!(t.get(b).unwrap().offset, 7);
    }
}
