//! The seam between reading and encoding.
//!
//! The reading loop hands every line it reads to a [`LineSink`], on its own thread and
//! without copying it: the line is borrowed from the reader's buffer for the length of the
//! call. What happens next (decoding, enrichment, batching, sending) is the sink's business;
//! `pipeline.rs` chooses the sink ([`crate::encode::Encoder`] in the shipper, a recording
//! one in tests).
//!
//! The loop records each line in the acknowledgement table *before* handing it on, so a line
//! arrives with its origin (file slot and sequence number) and the sink needs to know nothing
//! of checkpoints.

use std::path::Path;
use std::time::Instant;

use super::identity::FileKey;
use super::line_reader::Line;

/// Why reading stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Shutdown was asked for while the sink waited.
    Shutdown,
    /// Nobody takes what the sink produces any more.
    OutputGone,
}

/// Where a line was read: its file's slot in the acknowledgement table and its position
/// among the lines read from that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineOrigin {
    pub(crate) slot: u32,
    pub(crate) seq: u64,
    /// Read again after a restart, at or below the end the previous run had read to (the
    /// restored checkpoint's `sent_offset`): its document may already be stored.
    pub(crate) may_be_stored: bool,
    /// The alert tap saw this line already, when it was read ahead while shipping was
    /// paused ([`LineSink::peek`]).
    pub(crate) tapped: bool,
}

/// What the sink made of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// It will be acknowledged once delivered.
    Pending,
    /// Nothing to deliver (an empty line): safe already.
    Nothing,
}

/// What must be done before lines the sink took leave the process: reading's notes of how
/// far each file may be sent are written to the sent-horizon log (see
/// [`super::sent_horizon`]), so a restart looks up every line a batch may have stored.
pub(crate) trait BeforeSend: Send + Sync {
    fn before_send(&self) -> std::io::Result<()>;
}

/// Receives the lines the reading loop reads.
pub(crate) trait LineSink: Send {
    /// Calls `hook` before each batch it hands on. The reading loop sets it once, before
    /// the first line.
    fn set_before_send(&mut self, hook: std::sync::Arc<dyn BeforeSend>);

    /// The file in `slot` is `path`, with identity `key` (a file opened, or renamed): every
    /// line of `slot` from now on comes from it.
    fn describe(&mut self, slot: u32, key: FileKey, path: &Path);

    /// A read round starts: the lines that follow were read now.
    fn begin_round(&mut self);

    /// Whether one more line can be taken now without waiting. `false` while the output is
    /// behind (budget spent, every request slot busy): that is how reading pauses, and the
    /// loop goes on finding files and showing new lines to [`LineSink::peek`] meanwhile.
    fn has_room(&mut self) -> Result<bool, Stop>;

    /// One line, read from the file described for `origin.slot`. Asked only after
    /// [`LineSink::has_room`] said yes; may still wait for a line larger than the room said
    /// to be there. `Err` means reading must stop.
    fn take(&mut self, line: &Line<'_>, origin: LineOrigin) -> Result<Taken, Stop>;

    /// A line read ahead while shipping is paused, for the alert rules only: it is taken
    /// (and shipped) later, with [`LineOrigin::tapped`] set.
    fn peek(&mut self, line: &Line<'_>, slot: u32);

    /// Whether [`LineSink::peek`] does anything (an alert tap is installed).
    fn wants_peek(&self) -> bool;

    /// Hands on whatever is held, because it is full or due, without waiting.
    fn flush(&mut self) -> Result<(), Stop>;

    /// Hands on whatever is held, waiting for room if need be: reading ends.
    fn finish(&mut self) -> Result<(), Stop>;

    /// The sink holds as much as it should before [`LineSink::flush`].
    fn is_full(&self) -> bool;

    /// When what the sink holds must be handed on at the latest, if it holds anything.
    fn deadline(&self) -> Option<Instant>;

    /// Publishes the sink's counters (the loop calls this when a round ends).
    fn publish(&mut self);
}
