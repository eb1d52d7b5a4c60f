//! The encode stage: turns each line the reading loop hands on into a `_bulk` item of the
//! batch in progress, and hands full or due batches to the output.
//!
//! Per line: pay for it from the read budget (waiting, with reading paused, while the output
//! is behind), decode and enrich it straight into the batch body ([`Enricher`]), and commit
//! it to the batch with its origin, so its acknowledgement finds the way back.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{DocumentTap, Encoded, Enricher, SourceFile};
use crate::batch::{Batch, BatchLimits, Batcher, Origin};
use crate::input::file_server::InputStats;
use crate::input::identity::FileKey;
use crate::input::line_reader::Line;
use crate::input::line_sink::{BeforeSend, LineOrigin, LineSink, Stop, Taken};
use crate::input::read_budget::ReadBudget;
use crate::output::log_throttle::LogThrottle;

/// Bytes of enrichment assumed per line when charging the read budget, so the budget bounds
/// the encoded documents held in memory, not only the raw lines.
const ENRICHMENT_ALLOWANCE: usize = 320;

/// Free budget below which no more lines are taken (reading pauses): room for a long line
/// (an eighth of the budget, at most 64 KiB), so a line taken almost never has to wait.
const MAX_HEADROOM: usize = 64 * 1024;

/// What the encode stage adds to every document, and how documents are batched.
#[derive(Debug, Clone)]
pub(crate) struct EncodeConfig {
    pub(crate) host_name: String,
    pub(crate) agent_name: String,
    pub(crate) namespace: String,
    pub(crate) batch: BatchLimits,
}

/// The shipper's [`LineSink`]: encodes, batches and hands batches to the output.
pub(crate) struct Encoder {
    enricher: Enricher,
    batcher: Batcher,
    budget: Arc<ReadBudget>,
    tx: tokio::sync::mpsc::Sender<Batch>,
    shutdown: CancellationToken,
    stats: Arc<InputStats>,
    /// What is known of each file slot's current file, indexed by slot.
    sources: Vec<Option<SourceFile>>,
    /// The read time of the current round, as RFC 3339.
    ingested: String,
    lines: u64,
    bytes: u64,
    /// A full batch waiting for a request slot (every one busy).
    ready: Option<Batch>,
    /// Free budget needed to take another line.
    headroom: usize,
    paused: bool,
    /// Done before each batch leaves (see [`BeforeSend`]).
    before_send: Option<Arc<dyn BeforeSend>>,
    /// Failures of `before_send`, logged at most once per interval.
    warnings: LogThrottle,
}

impl Encoder {
    /// An encoder that sends its batches to `tx`. `tap`, if any, sees every document.
    pub(crate) fn new(
        cfg: &EncodeConfig,
        budget: Arc<ReadBudget>,
        tx: tokio::sync::mpsc::Sender<Batch>,
        shutdown: CancellationToken,
        stats: Arc<InputStats>,
        tap: Option<Box<dyn DocumentTap>>,
    ) -> Encoder {
        let mut enricher = Enricher::new(&cfg.host_name, &cfg.agent_name, &cfg.namespace);
        if let Some(tap) = tap {
            enricher = enricher.with_tap(tap);
        }
        Encoder {
            enricher,
            batcher: Batcher::new(cfg.batch),
            budget,
            tx,
            shutdown,
            stats,
            sources: Vec::new(),
            ingested: now_rfc3339(),
            lines: 0,
            bytes: 0,
            ready: None,
            headroom: 0,
            paused: false,
            before_send: None,
            warnings: LogThrottle::default(),
        }
        .with_headroom()
    }

    fn with_headroom(mut self) -> Encoder {
        self.headroom = (self.budget.capacity() / 8).clamp(1, MAX_HEADROOM);
        self
    }

    /// Offers the waiting batch to the output, without waiting.
    fn offer(&mut self) -> Result<(), Stop> {
        let Some(batch) = self.ready.take() else {
            return Ok(());
        };
        match self.tx.try_send(batch) {
            Ok(()) => Ok(()),
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => Err(Stop::OutputGone),
            Err(tokio::sync::mpsc::error::TrySendError::Full(batch)) => {
                self.ready = Some(batch);
                Ok(())
            }
        }
    }

    /// Moves the batch in progress to the output's door (if the door is free) and offers it.
    fn hand_over(&mut self) -> Result<(), Stop> {
        self.offer()?;
        if self.ready.is_none() {
            self.ready = self.take_batch();
            self.offer()?;
        }
        Ok(())
    }

    /// The batch in progress, closed for sending, once what must precede its sending is done.
    fn take_batch(&mut self) -> Option<Batch> {
        let batch = self.batcher.take()?;
        if let Some(hook) = &self.before_send {
            if let Err(e) = hook.before_send() {
                // Shipping goes on: only a crash before the next checkpoint could then
                // re-send these lines without looking them up.
                if let Some(held_back) = self.warnings.admit("before_send", "write") {
                    tracing::warn!(error = %e, held_back, "cannot record how far lines may be sent");
                }
            }
        }
        Some(batch)
    }

    /// Sends everything held, waiting for the output to take it.
    fn send_all(&mut self) -> Result<(), Stop> {
        if let Some(batch) = self.ready.take() {
            self.send_waiting(batch)?;
        }
        if let Some(batch) = self.take_batch() {
            self.send_waiting(batch)?;
        }
        Ok(())
    }

    /// Sends `batch`, waiting as long as the output's door is full. The wait is polled, not
    /// a `blocking_send`, so the loop keeps telling /health it turns while the output is
    /// down for hours. It ends when the output takes the batch or goes away (at shutdown).
    fn send_waiting(&mut self, mut batch: Batch) -> Result<(), Stop> {
        let mut first = true;
        loop {
            match self.tx.try_send(batch) {
                Ok(()) => {
                    if !first {
                        self.set_paused(false);
                    }
                    return Ok(());
                }
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                    return Err(Stop::OutputGone)
                }
                Err(tokio::sync::mpsc::error::TrySendError::Full(back)) => batch = back,
            }
            if first {
                self.set_paused(true);
                first = false;
            }
            self.stats.reader_turned();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn set_paused(&mut self, paused: bool) {
        if self.paused == paused {
            return;
        }
        self.paused = paused;
        if paused {
            // The counters must be current while reading waits, however long that is.
            self.publish();
        }
        self.stats.paused.store(paused, Ordering::Relaxed);
        metrics::gauge!("shipper_reading_paused").set(if paused { 1.0 } else { 0.0 });
    }

    /// Takes `cost` from the read budget, waiting (reading paused) while the output is behind.
    fn pay(&mut self, cost: usize) -> Result<(), Stop> {
        if self.budget.try_take(cost) {
            return Ok(());
        }
        // A line larger than the headroom: let the output work off what is batched, and
        // wait for acknowledgements.
        self.hand_over()?;
        self.set_paused(true);
        while !self.budget.take_within(cost, Duration::from_millis(100)) {
            if self.shutdown.is_cancelled() {
                return Err(Stop::Shutdown);
            }
            // Waiting for the output is a turn of a loop that works: /health must not call
            // a long Elasticsearch outage a stuck reader (the liveness probe would restart it).
            self.stats.reader_turned();
            self.offer()?;
        }
        self.set_paused(false);
        Ok(())
    }
}

impl LineSink for Encoder {
    fn set_before_send(&mut self, hook: Arc<dyn BeforeSend>) {
        self.before_send = Some(hook);
    }

    fn describe(&mut self, slot: u32, key: FileKey, path: &Path) {
        let index = slot as usize;
        if self.sources.len() <= index {
            self.sources.resize_with(index + 1, || None);
        }
        self.sources[index] = Some(SourceFile::new(key, path));
    }

    fn begin_round(&mut self) {
        self.ingested = now_rfc3339();
    }

    fn has_room(&mut self) -> Result<bool, Stop> {
        self.offer()?;
        let room = self.ready.is_none() && self.budget.available() >= self.headroom;
        if !room {
            // Let the output work off what is batched while reading waits.
            self.hand_over()?;
        }
        self.set_paused(!room);
        Ok(room)
    }

    fn wants_peek(&self) -> bool {
        self.enricher.has_tap()
    }

    fn peek(&mut self, line: &Line<'_>, slot: u32) {
        if let Some(Some(source)) = self.sources.get(slot as usize) {
            self.enricher.observe(line, source);
        }
    }

    fn take(&mut self, line: &Line<'_>, origin: LineOrigin) -> Result<Taken, Stop> {
        self.lines += 1;
        self.bytes += line.end - line.offset;
        let cost = self.budget.cost(line.bytes.len() + ENRICHMENT_ALLOWANCE);
        self.pay(cost)?;
        let Some(Some(source)) = self.sources.get(origin.slot as usize) else {
            // The loop describes every file before its first line; a slot without a file is
            // a bug, and the line is dropped loudly rather than shipped with a wrong id.
            tracing::error!(slot = origin.slot, "a line from an undescribed file");
            self.budget.give_back(cost);
            return Ok(Taken::Nothing);
        };
        let start = self.batcher.body().len();
        self.enricher.mute_tap(origin.tapped);
        match self
            .enricher
            .encode(line, source, &self.ingested, self.batcher.body())
        {
            Encoded::Document {
                source_start,
                id_hash,
            } => {
                self.batcher.commit(
                    start,
                    source_start,
                    id_hash,
                    Origin {
                        file: origin.slot,
                        seq: origin.seq,
                        budget_bytes: cost as u32,
                    },
                    origin.may_be_stored,
                );
                if self.batcher.is_full() {
                    self.hand_over()?;
                    if self.ready.is_some() && self.batcher.is_full() {
                        // Only when a line came without room (see `has_room`).
                        self.send_all()?;
                    }
                }
                Ok(Taken::Pending)
            }
            Encoded::Empty => {
                self.budget.give_back(cost);
                Ok(Taken::Nothing)
            }
        }
    }

    fn flush(&mut self) -> Result<(), Stop> {
        self.hand_over()
    }

    fn finish(&mut self) -> Result<(), Stop> {
        self.send_all()
    }

    fn is_full(&self) -> bool {
        self.batcher.is_full()
    }

    fn deadline(&self) -> Option<Instant> {
        self.batcher.deadline()
    }

    fn publish(&mut self) {
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
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::input::identity::TailMark;

    /// Records, at each call, how many batches the output's channel held.
    struct Recorder {
        tx: tokio::sync::mpsc::Sender<Batch>,
        queued_at_call: Mutex<Vec<usize>>,
    }

    impl BeforeSend for Recorder {
        fn before_send(&self) -> std::io::Result<()> {
            let queued = self.tx.max_capacity() - self.tx.capacity();
            self.queued_at_call.lock().unwrap().push(queued);
            Ok(())
        }
    }

    #[test]
    fn what_must_precede_a_batch_is_done_before_each_batch_leaves() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let cfg = EncodeConfig {
            host_name: "test".into(),
            agent_name: schema::agent::NAME.into(),
            namespace: "default".into(),
            batch: BatchLimits {
                max_docs: 3,
                max_bytes: 1 << 20,
                max_wait: Duration::from_secs(3600),
            },
        };
        let budget = Arc::new(ReadBudget::new(1 << 20));
        let stats = Arc::new(InputStats::default());
        let mut encoder = Encoder::new(
            &cfg,
            budget,
            tx.clone(),
            CancellationToken::new(),
            stats,
            None,
        );
        let recorder = Arc::new(Recorder {
            tx,
            queued_at_call: Mutex::new(Vec::new()),
        });
        encoder.set_before_send(Arc::clone(&recorder) as Arc<dyn BeforeSend>);
        encoder.describe(0, 0xabc, Path::new("/var/log/app/payment.log"));
        encoder.begin_round();
        let mut offset = 0;
        for seq in 0..8u64 {
            let bytes = format!(r#"{{"message":"line {seq}"}}"#);
            let line = Line {
                offset,
                end: offset + bytes.len() as u64 + 1,
                bytes: bytes.as_bytes(),
                truncated: false,
                unterminated: false,
                tail: TailMark::default(),
                container: None,
            };
            offset = line.end;
            let origin = LineOrigin {
                slot: 0,
                seq,
                may_be_stored: false,
                tapped: false,
            };
            assert!(encoder.has_room().unwrap());
            encoder.take(&line, origin).unwrap();
        }
        encoder.finish().unwrap();
        let mut batches = 0;
        while rx.try_recv().is_ok() {
            batches += 1;
        }
        assert_eq!(batches, 3, "8 lines in batches of 3");
        // Called once per batch, each time before that batch was in the channel.
        assert_eq!(*recorder.queued_at_call.lock().unwrap(), vec![0, 1, 2]);
    }
}
