//! Which file is which: the decisions that make "exactly once" hold across renames,
//! copytruncate, restarts and files that share a first line.
//!
//! Everything the shipper concludes about a file's identity is decided here, and nowhere
//! else; the reading loop only gathers the facts (a stat, a fingerprint, what the
//! acknowledgement table remembers) and carries the verdict out.
//!
//! - [`fingerprint`]: the hashes the decisions rest on: the first line of a file
//!   ([`Fingerprint`]), the key used in document ids ([`FileKey`]) and the mark of the bytes
//!   before an offset ([`TailMark`]).
//! - [`decide`]: pure decisions. Given what the checkpoints say and what a file holds (asked
//!   through the [`decide::Probe`] trait, so the decisions are tested with a table of cases
//!   and no file), which identity a newly seen file has and where reading resumes, and
//!   whether an open file still is the identity it was opened as.
//! - [`evidence`]: the real probe: reads the few bytes the decisions ask about.

pub(crate) mod decide;
pub(crate) mod evidence;
mod fingerprint;

pub(crate) use fingerprint::{fingerprint, fingerprint_bytes, salted_key};
pub(crate) use fingerprint::{FileKey, Fingerprint, LineMark};
pub use fingerprint::{HeadMark, TailMark};
pub(crate) use fingerprint::{FINGERPRINT_WINDOW, HEAD_MARK_LEN, TAIL_MARK_LEN};
