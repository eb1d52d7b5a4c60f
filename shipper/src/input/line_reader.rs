//! Reading one file line by line, from a given byte offset.
//!
//! Lines are split on `\n` with `memchr` in a reusable buffer and handed out as slices, so a
//! line is not copied before it is encoded. A partial last line stays in the buffer until its
//! newline arrives. A line longer than the limit keeps its first `max_line_bytes` and is
//! flagged as truncated; the rest of it is skipped without being held in memory, so memory
//! per file stays bounded whatever the file holds.
//!
//! Container runtimes' log files ([`super::container_log`]) are framed here too: each record's
//! message is handed out as the line (a slice of the record as read, for a CRI record that is
//! whole), and the parts of a long line (CRI `P` records, Docker records without a final
//! newline) are joined into one line that carries the offset of its first part and the end
//! of its last. The reading loop records only that end, so a checkpoint never falls between
//! the parts: a crash between them reads the whole line again, under the same `_id`.
//!
//! The read buffer is lent by the caller for one turn ([`LineReader::lend`] ...
//! [`LineReader::give_back`]): one buffer serves every file, and between turns a reader keeps
//! only its partial last line. Thousands of open files then cost their descriptors and a few
//! words each, not 64 KiB each.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::compressed::GzStream;
use super::container_log::{self, Container, Framing, InputFormat, Stream};
use super::identity::TailMark;

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 64 * 1024;

/// One line, with where it sits in the file.
#[derive(Debug)]
pub struct Line<'a> {
    /// Offset of the line's first byte.
    pub offset: u64,
    /// Offset just past the line's `\n` (or past its last byte when unterminated): where a
    /// checkpoint goes once this line is safe.
    pub end: u64,
    /// The line without its `\n` (its first `max_line_bytes` when truncated).
    pub bytes: &'a [u8],
    /// The line was longer than the limit and was cut.
    pub truncated: bool,
    /// The line never got its `\n`: the file was finished without one.
    pub unterminated: bool,
    /// Mark of the bytes just before `end`, to validate a checkpoint at `end` later.
    pub tail: TailMark,
    /// What the container runtime's record said, for a line of a container log file
    /// (`None` for a plain file): `bytes` is then the record's message.
    pub container: Option<Container<'a>>,
}

/// Where a reader's bytes come from: a plain file, or the decompressed stream of a
/// compressed one (offsets are then offsets in the decompressed bytes).
pub(crate) enum Source {
    Plain(File),
    /// Boxed: the decoder's state is large, and a plain file's reader should not pay for it.
    Compressed(Box<GzStream>),
}

impl From<File> for Source {
    fn from(file: File) -> Source {
        Source::Plain(file)
    }
}

impl Source {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self {
            Source::Plain(f) => f.read_at(buf, offset),
            Source::Compressed(s) => s.read_at(buf, offset),
        }
    }
}

/// Reads the lines of one open file.
pub(crate) struct LineReader {
    source: Source,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    buf: Vec<u8>,
    /// `buf[start..filled]` holds bytes read but not yet handed out as lines.
    start: usize,
    filled: usize,
    max_line_bytes: usize,
    /// While skipping the rest of an over-long line: its kept head and where it began.
    long_line: Option<(Vec<u8>, u64)>,
    /// The head of the last over-long line handed out (the line borrows it).
    last_long: Vec<u8>,
    /// Set when the last `next_line` call ended at the end of the file.
    at_eof: bool,
    /// Mark of the bytes just before `read_offset()`, as they were read.
    read_tail: Option<TailMark>,
    /// The file's size when its turn began, if it is still being written: reading stops
    /// there rather than asking the file for more and being told "nothing" (a `pread`
    /// per file per turn). What was written since comes with its own event.
    known_end: Option<u64>,
    /// A read found the bytes before it changed: the file was truncated (and perhaps written
    /// again) between the turn's check and the read. Nothing of that read was handed out.
    rewritten: bool,
    /// How the file's lines are framed (plain, or a container runtime's records).
    framing: Framing,
    /// The message of the container line being joined, or of a Docker record (unescaped).
    joined: Vec<u8>,
    /// The runtime's time of the container line handed out, or being joined.
    time: Vec<u8>,
    /// The parts of a container line read so far, waiting for its last part.
    group: Option<Group>,
    /// An over-long record that ended a group of another stream: handed out next (its
    /// head is in `last_long`).
    redo: Option<Redo>,
}

/// The parts of one container line read so far (their message is in `joined`).
#[derive(Debug, Clone, Copy)]
struct Group {
    /// Offset of the first part: the line's offset and its `_id`.
    offset: u64,
    /// End of the last part read, and the mark of the bytes before it.
    end: u64,
    tail: TailMark,
    stream: Stream,
    /// The joined message was cut to the limit.
    truncated: bool,
}

/// A record to frame again (see [`LineReader::redo`]).
#[derive(Debug, Clone, Copy)]
struct Redo {
    offset: u64,
    end: u64,
    tail: TailMark,
}

/// Where the bytes of a raw line are.
#[derive(Debug, Clone, Copy)]
enum Raw {
    /// `buf[begin..stop]`.
    Buf(usize, usize),
    /// `last_long` (the kept head of an over-long line).
    Long,
}

/// Where the message of a framed line is.
#[derive(Debug, Clone, Copy)]
enum Msg {
    Buf(usize, usize),
    Long(usize, usize),
    Joined,
}

/// A line framed from one or more records, by position (see [`LineReader::framed`]).
#[derive(Debug, Clone, Copy)]
struct Framed {
    offset: u64,
    end: u64,
    tail: TailMark,
    msg: Msg,
    truncated: bool,
    unterminated: bool,
    /// `None`: a plain line; `Some(None)`: a malformed record; `Some(Some(s))`: a record of
    /// stream `s` (its time in `time`).
    record: Option<Option<Stream>>,
}

impl LineReader {
    /// A reader positioned at `offset`, which must be the start of a line.
    pub(crate) fn new(source: impl Into<Source>, offset: u64, max_line_bytes: usize) -> LineReader {
        LineReader {
            source: source.into(),
            buf_offset: offset,
            buf: Vec::new(),
            start: 0,
            filled: 0,
            max_line_bytes: max_line_bytes.max(1),
            long_line: None,
            last_long: Vec::new(),
            at_eof: false,
            read_tail: None,
            known_end: None,
            rewritten: false,
            framing: Framing::Plain,
            joined: Vec::new(),
            time: Vec::new(),
            group: None,
            redo: None,
        }
    }

    /// Frames the file's lines as `format` says (plain lines until this is called).
    pub(crate) fn with_format(mut self, format: InputFormat) -> LineReader {
        self.framing = format.framing();
        self
    }

    /// How this file's lines are framed, as far as known.
    pub(crate) fn framing(&self) -> Framing {
        self.framing
    }

    /// True when a read found the file rewritten under it (see [`LineReader::next_line`]):
    /// this identity no longer lives in the file.
    pub(crate) fn rewritten(&self) -> bool {
        self.rewritten
    }

    /// The file read (for a compressed one, the compressed file itself).
    pub(crate) fn file(&self) -> &File {
        match &self.source {
            Source::Plain(f) => f,
            Source::Compressed(s) => s.file(),
        }
    }

    /// Reads a compressed file's decompressed bytes: it never changes and never grows.
    pub(crate) fn is_compressed(&self) -> bool {
        matches!(self.source, Source::Compressed(_))
    }

    /// Offset of the first byte not yet handed out in a line (the first part of a container
    /// line being joined).
    pub(crate) fn line_offset(&self) -> u64 {
        if let Some(g) = &self.group {
            return g.offset;
        }
        if let Some(r) = &self.redo {
            return r.offset;
        }
        match &self.long_line {
            Some((_, begin)) => *begin,
            None => self.buf_offset + self.start as u64,
        }
    }

    /// Offset of the next byte to read from the file.
    pub(crate) fn read_offset(&self) -> u64 {
        self.buf_offset + self.filled as u64
    }

    /// Until changed, no read is issued at or past `end` (the size a `stat` just gave); with
    /// `None`, reading goes on until a read finds the end of the file.
    pub(crate) fn stop_at(&mut self, end: Option<u64>) {
        self.known_end = end;
    }

    /// True when the last call to [`LineReader::next_line`] found no more data.
    pub(crate) fn at_eof(&self) -> bool {
        self.at_eof
    }

    /// Bytes waiting for a newline (a partial last line).
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.read_offset() - self.line_offset()
    }

    /// The next complete line, or `None` at the end of the data written so far, or when
    /// the file turned out to be rewritten under the reader ([`LineReader::rewritten`]).
    ///
    /// Every read that returns bytes is followed by a check that the bytes just before it are
    /// still the ones read before: a copytruncate can truncate the file and its writer fill
    /// it again between the turn's identity check and the read, and the read would then hand
    /// out the new file's lines under the old identity (shipped twice: once here, once when
    /// the new file is read from its start). The check costs one small read per read.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        if self.rewritten {
            return Ok(None);
        }
        if let Some(r) = self.redo.take() {
            if let Some(f) = self.frame(Raw::Long, r.offset, r.end, r.tail, false) {
                return Ok(Some(self.framed(f)));
            }
        }
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.start..self.filled]) {
                let nl = self.start + pos;
                let begin = self.start;
                self.start = nl + 1;
                self.at_eof = false;
                let end = self.buf_offset + self.start as u64;
                let tail = TailMark::of(&self.buf[..self.start]);
                if let Some((head, offset)) = self.long_line.take() {
                    self.last_long = head;
                    if self.framing == Framing::Plain {
                        return Ok(Some(Line {
                            offset,
                            end,
                            bytes: &self.last_long,
                            truncated: true,
                            unterminated: false,
                            tail,
                            container: None,
                        }));
                    }
                    match self.frame(Raw::Long, offset, end, tail, false) {
                        Some(f) => return Ok(Some(self.framed(f))),
                        None => continue,
                    }
                }
                // Plain lines (the services' JSON) cost one comparison more than before
                // framing existed, nothing else.
                if self.framing == Framing::Plain {
                    return Ok(Some(self.line(begin, nl, end, tail, false)));
                }
                let offset = self.buf_offset + begin as u64;
                match self.frame(Raw::Buf(begin, nl), offset, end, tail, false) {
                    Some(f) => return Ok(Some(self.framed(f))),
                    None => continue,
                }
            }
            self.cut_long_line();
            if !self.fill()? {
                self.at_eof = true;
                return Ok(None);
            }
        }
    }

    /// Hands out the unterminated last line, if any: for a file that is finished (renamed
    /// away or deleted and idle), whose last line will never get its newline.
    ///
    /// A container line whose last part never came is handed out too, as far as it goes.
    pub(crate) fn take_unterminated(&mut self) -> Option<Line<'_>> {
        let raw_pending = self.filled > self.start || self.long_line.is_some();
        if !raw_pending {
            let g = self.group.take()?;
            return Some(Line {
                offset: g.offset,
                end: g.end,
                bytes: &self.joined,
                truncated: g.truncated,
                unterminated: true,
                tail: g.tail,
                container: Some(Container::Record {
                    stream: g.stream,
                    time: &self.time,
                }),
            });
        }
        let end = self.read_offset();
        let tail = TailMark::of(&self.buf[..self.filled]);
        let begin = self.start;
        self.start = self.filled;
        let (raw, offset) = match self.long_line.take() {
            Some((head, offset)) => {
                self.last_long = head;
                (Raw::Long, offset)
            }
            None => (Raw::Buf(begin, self.filled), self.buf_offset + begin as u64),
        };
        if self.framing == Framing::Plain {
            return Some(match raw {
                Raw::Long => Line {
                    offset,
                    end,
                    bytes: &self.last_long,
                    truncated: true,
                    unterminated: true,
                    tail,
                    container: None,
                },
                Raw::Buf(begin, stop) => self.line(begin, stop, end, tail, true),
            });
        }
        let f = self.frame(raw, offset, end, tail, true)?;
        Some(self.framed(f))
    }

    /// Frames the raw line `raw` (from `offset` to `end`) of a file that is not known to
    /// hold plain lines: `None` when it is a part of a longer line (kept, to be joined).
    /// `at_end`: the file is finished, nothing follows; a part is handed out as it is.
    fn frame(
        &mut self,
        raw: Raw,
        offset: u64,
        end: u64,
        tail: TailMark,
        at_end: bool,
    ) -> Option<Framed> {
        let max = self.max_line_bytes;
        let (raw, mut cut) = match raw {
            Raw::Buf(begin, stop) if stop - begin > max => (Raw::Buf(begin, begin + max), true),
            Raw::Buf(begin, stop) => (Raw::Buf(begin, stop), false),
            Raw::Long => (Raw::Long, true),
        };
        let bytes: &[u8] = match raw {
            Raw::Buf(begin, stop) => &self.buf[begin..stop],
            Raw::Long => &self.last_long,
        };
        if self.framing == Framing::Undecided {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                // Nothing to tell the format by: a plain (empty) line, decided later.
                return Some(whole(raw, offset, end, tail, cut, at_end, None));
            }
            self.framing = Framing::detect(bytes);
        }
        // What the record is: its stream, whether it is a part, and where its message is.
        let joined_before = self.joined.len();
        let parsed: Option<(Stream, bool, Msg, (usize, usize))> = match self.framing {
            Framing::Cri => container_log::parse_cri(bytes).map(|r| {
                let msg = match raw {
                    Raw::Buf(begin, stop) => Msg::Buf(begin + r.message, stop),
                    Raw::Long => Msg::Long(r.message, bytes.len()),
                };
                (r.stream, r.partial, msg, r.time)
            }),
            Framing::Docker => {
                if self.group.is_none() {
                    self.joined.clear();
                }
                container_log::parse_docker(bytes, &mut self.joined)
                    .map(|r| (r.stream, r.partial, Msg::Joined, r.time))
            }
            Framing::Plain | Framing::Undecided => {
                return Some(whole(raw, offset, end, tail, cut, at_end, None));
            }
        };
        let Some((stream, partial, msg, time)) = parsed else {
            // Not a record of the file's format.
            if let Some(g) = self.group.take() {
                if at_end {
                    self.append_joined(bytes.len(), raw);
                    return Some(self.end_group(g, end, tail, cut, true));
                }
                // The line being joined is ended here, as far as it went; this record is
                // framed again next.
                self.group = Some(g);
                return Some(self.interrupt(raw, offset, end, tail));
            }
            return Some(whole(raw, offset, end, tail, cut, at_end, Some(None)));
        };
        if let Some(g) = self.group {
            if g.stream != stream && !at_end {
                // The other stream wrote a record between the parts of a line: the line is
                // handed out as far as it went (flagged unterminated) and this record framed
                // again next. Nothing is lost and the checkpoint stays behind what is not
                // handed out yet.
                self.joined.truncate(joined_before);
                return Some(self.interrupt(raw, offset, end, tail));
            }
        }
        if self.group.is_none() {
            self.time.clear();
            self.time.extend_from_slice(&bytes[time.0..time.1]);
            if !partial || at_end {
                // A whole line in one record: its message is a slice of what was read.
                let mut f = whole(raw, offset, end, tail, cut, at_end, Some(Some(stream)));
                f.msg = msg;
                if let Msg::Joined = msg {
                    cut |= self.bound_joined();
                    f.truncated = cut;
                }
                return Some(f);
            }
            self.group = Some(Group {
                offset,
                end,
                tail,
                stream,
                truncated: false,
            });
            if !matches!(msg, Msg::Joined) {
                self.joined.clear();
            }
        }
        match msg {
            Msg::Buf(a, b) => self.append_joined_range(a, b, false),
            Msg::Long(a, b) => self.append_joined_range(a, b, true),
            Msg::Joined => {}
        }
        cut |= self.bound_joined();
        let g = self.group.as_mut()?;
        g.end = end;
        g.tail = tail;
        g.truncated |= cut;
        if partial && !at_end {
            return None;
        }
        let g = *g;
        self.group = None;
        Some(Framed {
            offset: g.offset,
            end,
            tail,
            msg: Msg::Joined,
            truncated: g.truncated,
            unterminated: at_end,
            record: Some(Some(g.stream)),
        })
    }

    /// Appends `buf[a..b]` (or `last_long[a..b]`) to the joined message.
    fn append_joined_range(&mut self, a: usize, b: usize, long: bool) {
        let src = if long {
            &self.last_long[a..b]
        } else {
            &self.buf[a..b]
        };
        let room = self.max_line_bytes.saturating_sub(self.joined.len());
        let take = src.len().min(room + 1);
        self.joined.extend_from_slice(&src[..take]);
    }

    /// Appends the whole raw line (`len` bytes at `raw`) to the joined message.
    fn append_joined(&mut self, len: usize, raw: Raw) {
        match raw {
            Raw::Buf(begin, stop) => self.append_joined_range(begin, stop, false),
            Raw::Long => self.append_joined_range(0, len, true),
        }
    }

    /// Cuts the joined message to the limit; true if it was longer.
    fn bound_joined(&mut self) -> bool {
        if self.joined.len() > self.max_line_bytes {
            self.joined.truncate(self.max_line_bytes);
            true
        } else {
            false
        }
    }

    /// Ends the group `g` with the record ending at `end`.
    fn end_group(&mut self, g: Group, end: u64, tail: TailMark, cut: bool, at_end: bool) -> Framed {
        let cut = cut | self.bound_joined();
        Framed {
            offset: g.offset,
            end,
            tail,
            msg: Msg::Joined,
            truncated: g.truncated || cut,
            unterminated: at_end,
            record: Some(Some(g.stream)),
        }
    }

    /// Hands out the group in progress as it is (unterminated: its last part never came)
    /// and puts the record at `raw` back to be framed next.
    fn interrupt(&mut self, raw: Raw, offset: u64, end: u64, tail: TailMark) -> Framed {
        let g = self.group.take().unwrap_or(Group {
            offset,
            end,
            tail,
            stream: Stream::Stdout,
            truncated: false,
        });
        match raw {
            Raw::Buf(begin, _) => {
                // Still in the buffer: read again by the next call.
                self.start = begin;
            }
            Raw::Long => self.redo = Some(Redo { offset, end, tail }),
        }
        Framed {
            offset: g.offset,
            end: g.end,
            tail: g.tail,
            msg: Msg::Joined,
            truncated: g.truncated,
            unterminated: true,
            record: Some(Some(g.stream)),
        }
    }

    /// The line a [`Framed`] describes, borrowed from the reader's buffers.
    fn framed(&self, f: Framed) -> Line<'_> {
        let bytes: &[u8] = match f.msg {
            Msg::Buf(a, b) => &self.buf[a..b],
            Msg::Long(a, b) => {
                &self.last_long[a.min(self.last_long.len())..b.min(self.last_long.len())]
            }
            Msg::Joined => &self.joined,
        };
        let container = f.record.map(|r| match r {
            Some(stream) => Container::Record {
                stream,
                time: &self.time,
            },
            None => Container::Malformed,
        });
        Line {
            offset: f.offset,
            end: f.end,
            bytes,
            truncated: f.truncated,
            unterminated: f.unterminated,
            tail: f.tail,
            container,
        }
    }

    fn line(
        &self,
        begin: usize,
        stop: usize,
        end: u64,
        tail: TailMark,
        unterminated: bool,
    ) -> Line<'_> {
        let mut bytes = &self.buf[begin..stop];
        let truncated = bytes.len() > self.max_line_bytes;
        if truncated {
            bytes = &bytes[..self.max_line_bytes];
        }
        Line {
            offset: self.buf_offset + begin as u64,
            end,
            bytes,
            truncated,
            unterminated,
            tail,
            container: None,
        }
    }

    /// Starts a turn with the shared buffer `shared`: the reader's partial last line moves
    /// into it, and lines read until [`LineReader::give_back`] borrow from it.
    pub(crate) fn lend(&mut self, shared: &mut Vec<u8>) {
        let mut big = std::mem::take(shared);
        big.clear();
        big.extend_from_slice(&self.buf[self.start..self.filled]);
        self.buf_offset += self.start as u64;
        self.filled -= self.start;
        self.start = 0;
        self.buf = big;
    }

    /// Ends a turn: keeps only the partial last line (if any) and returns the shared buffer
    /// to `shared`.
    pub(crate) fn give_back(&mut self, shared: &mut Vec<u8>) {
        let carry = self.buf[self.start..self.filled].to_vec();
        self.buf_offset += self.start as u64;
        self.filled = carry.len();
        self.start = 0;
        *shared = std::mem::replace(&mut self.buf, carry);
        if self.redo.is_none() {
            self.last_long = Vec::new();
        }
        if self.group.is_none() && self.joined.capacity() > READ_CHUNK {
            // A long joined line's room is not kept by an idle file.
            self.joined = Vec::new();
        }
    }

    /// Bytes of memory this reader holds for its buffers.
    #[cfg(test)]
    fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
            + self.last_long.capacity()
            + self.joined.capacity()
            + self
                .long_line
                .as_ref()
                .map_or(0, |(head, _)| head.capacity())
    }

    /// When the bytes waiting for a newline exceed the limit, keep the head and drop the rest,
    /// so an endless line costs `max_line_bytes` of memory, not its length.
    fn cut_long_line(&mut self) {
        if self.long_line.is_some() {
            self.start = self.filled;
            return;
        }
        if self.filled - self.start > self.max_line_bytes {
            let head = self.buf[self.start..self.start + self.max_line_bytes].to_vec();
            let begin = self.buf_offset + self.start as u64;
            self.long_line = Some((head, begin));
            self.start = self.filled;
        }
    }

    /// Reads more bytes; false at the end of the file.
    fn fill(&mut self) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.filled, 0);
            self.buf_offset += self.start as u64;
            self.filled -= self.start;
            self.start = 0;
        }
        if self.buf.capacity() > 4 * READ_CHUNK && self.filled < READ_CHUNK {
            self.buf.truncate(self.filled);
            self.buf.shrink_to(2 * READ_CHUNK);
        }
        if self.buf.len() < self.filled + READ_CHUNK {
            self.buf.resize(self.filled + READ_CHUNK, 0);
        }
        loop {
            let at = self.buf_offset + self.filled as u64;
            if self.known_end.is_some_and(|end| at >= end) {
                return Ok(false);
            }
            match self.source.read_at(&mut self.buf[self.filled..], at) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    // A compressed file never changes under its reader.
                    if let (Some(tail), Source::Plain(file)) = (self.read_tail, &self.source) {
                        if !tail.matches(file, at)? {
                            self.rewritten = true;
                            return Ok(false);
                        }
                    }
                    self.filled += n;
                    self.read_tail = Some(TailMark::of(&self.buf[..self.filled]));
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A line that is one raw line: its message is all of it (`record` says what it is).
fn whole(
    raw: Raw,
    offset: u64,
    end: u64,
    tail: TailMark,
    cut: bool,
    at_end: bool,
    record: Option<Option<Stream>>,
) -> Framed {
    let msg = match raw {
        Raw::Buf(a, b) => Msg::Buf(a, b),
        Raw::Long => Msg::Long(0, usize::MAX),
    };
    Framed {
        offset,
        end,
        tail,
        msg,
        truncated: cut,
        unterminated: at_end,
        record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_rewritten_between_two_reads_hands_out_nothing_of_the_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"old one\nold two\n").unwrap();
        let mut r = LineReader::new(File::open(&path).unwrap(), 0, 1024);
        assert_eq!(r.next_line().unwrap().unwrap().bytes, b"old one");
        assert_eq!(r.next_line().unwrap().unwrap().bytes, b"old two");
        assert!(r.next_line().unwrap().is_none());
        // Truncated and written again, longer than before, behind the reader's back.
        std::fs::write(&path, b"new one\nnew two\nnew three\n").unwrap();
        assert!(r.next_line().unwrap().is_none());
        assert!(r.rewritten());
        assert!(r.next_line().unwrap().is_none(), "stays rewritten");
    }

    #[test]
    fn a_turn_stops_at_the_size_it_was_given_and_the_next_reads_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\n").unwrap();
        let mut append = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut r = LineReader::new(File::open(&path).unwrap(), 0, 1024);
        r.stop_at(Some(4));
        assert_eq!(r.next_line().unwrap().unwrap().bytes, b"one");
        // Written after the stat that said 4 bytes: this turn does not ask for it.
        append.write_all(b"two\n").unwrap();
        assert!(r.next_line().unwrap().is_none());
        assert!(r.at_eof());
        r.stop_at(Some(8));
        assert_eq!(r.next_line().unwrap().unwrap().bytes, b"two");
        assert!(r.next_line().unwrap().is_none());
        // Without a size, reading goes to what the file holds.
        append.write_all(b"three\n").unwrap();
        r.stop_at(None);
        assert_eq!(r.next_line().unwrap().unwrap().bytes, b"three");
        assert!(r.next_line().unwrap().is_none());
    }

    #[test]
    fn a_file_that_only_grows_is_never_taken_for_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\n").unwrap();
        let mut r = LineReader::new(File::open(&path).unwrap(), 0, 1024);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut got = Vec::new();
        for i in 0..50 {
            while let Some(line) = r.next_line().unwrap() {
                got.push(String::from_utf8(line.bytes.to_vec()).unwrap());
            }
            std::io::Write::write_all(&mut f, format!("line {i}\n").as_bytes()).unwrap();
        }
        while let Some(line) = r.next_line().unwrap() {
            got.push(String::from_utf8(line.bytes.to_vec()).unwrap());
        }
        assert!(!r.rewritten());
        assert_eq!(got.len(), 51);
    }
    use std::io::Write;

    struct Fixture {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("a.log");
            std::fs::write(&path, b"").expect("create");
            Fixture { _dir: dir, path }
        }
        fn append(&self, bytes: &[u8]) {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&self.path)
                .expect("open");
            f.write_all(bytes).expect("append");
        }
        fn reader(&self, offset: u64, max: usize) -> LineReader {
            LineReader::new(File::open(&self.path).expect("open"), offset, max)
        }
    }

    #[test]
    fn a_reader_at_the_end_of_its_file_holds_only_the_partial_line() {
        let f = Fixture::new();
        let mut big = String::new();
        for n in 0..5000 {
            big.push_str(&format!("line {n} with some padding to make it longer\n"));
        }
        f.append(big.as_bytes());
        let mut r = f.reader(0, 1024);
        let mut shared = Vec::new();
        r.lend(&mut shared);
        assert_eq!(drain(&mut r).len(), 5000);
        r.give_back(&mut shared);
        assert!(
            shared.capacity() >= READ_CHUNK,
            "the buffer goes back to the caller"
        );
        assert_eq!(r.buffered_capacity(), 0, "nothing pending: no buffer held");
        f.append(b"partial");
        r.lend(&mut shared);
        assert!(drain(&mut r).is_empty());
        r.give_back(&mut shared);
        assert!(r.buffered_capacity() <= 16, "{}", r.buffered_capacity());
        f.append(b" line\nnext\n");
        r.lend(&mut shared);
        let lines = drain(&mut r);
        r.give_back(&mut shared);
        assert_eq!(
            lines.iter().map(|l| l.2.as_str()).collect::<Vec<_>>(),
            vec!["partial line", "next"]
        );
        assert_eq!(lines[0].0, big.len() as u64, "offsets survive the release");
        assert_eq!(lines[1].1, big.len() as u64 + 18);
    }

    fn drain(r: &mut LineReader) -> Vec<(u64, u64, String, bool)> {
        let mut out = Vec::new();
        while let Some(l) = r.next_line().expect("read") {
            out.push((
                l.offset,
                l.end,
                String::from_utf8_lossy(l.bytes).into_owned(),
                l.truncated,
            ));
        }
        out
    }

    #[test]
    fn lines_come_with_their_offsets() {
        let f = Fixture::new();
        f.append(b"one\ntwo\n\nthree\n");
        let mut r = f.reader(0, 100);
        assert_eq!(
            drain(&mut r),
            vec![
                (0, 4, "one".into(), false),
                (4, 8, "two".into(), false),
                (8, 9, "".into(), false),
                (9, 15, "three".into(), false)
            ]
        );
        assert!(r.at_eof());
    }

    #[test]
    fn a_partial_line_waits_for_its_newline() {
        let f = Fixture::new();
        f.append(b"one\ntw");
        let mut r = f.reader(0, 100);
        assert_eq!(drain(&mut r).len(), 1);
        assert_eq!(r.pending_bytes(), 2);
        f.append(b"o\n");
        assert_eq!(drain(&mut r), vec![(4, 8, "two".into(), false)]);
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn reading_resumes_from_an_offset() {
        let f = Fixture::new();
        f.append(b"one\ntwo\n");
        let mut r = f.reader(4, 100);
        assert_eq!(drain(&mut r), vec![(4, 8, "two".into(), false)]);
    }

    #[test]
    fn a_long_line_is_cut_flagged_and_followed_by_the_next() {
        let f = Fixture::new();
        let long = vec![b'x'; 300_000];
        f.append(&long);
        f.append(b"\nafter\n");
        let mut r = f.reader(0, 1000);
        let lines = drain(&mut r);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, 0);
        assert_eq!(lines[0].1, 300_001);
        assert_eq!(lines[0].2.len(), 1000);
        assert!(lines[0].3);
        assert_eq!(lines[1], (300_001, 300_007, "after".into(), false));
    }

    #[test]
    fn a_long_line_written_in_pieces_is_cut_once() {
        let f = Fixture::new();
        let mut r = f.reader(0, 10);
        f.append(b"0123456789abcdef");
        assert!(drain(&mut r).is_empty());
        f.append(b"ghij");
        assert!(drain(&mut r).is_empty());
        f.append(b"\nok\n");
        let lines = drain(&mut r);
        assert_eq!(
            lines,
            vec![
                (0, 21, "0123456789".into(), true),
                (21, 24, "ok".into(), false)
            ]
        );
    }

    #[test]
    fn the_unterminated_last_line_can_be_taken() {
        let f = Fixture::new();
        f.append(b"one\nlast");
        let mut r = f.reader(0, 100);
        drain(&mut r);
        let l = r.take_unterminated().expect("a line");
        assert_eq!(
            (l.offset, l.end, l.bytes, l.unterminated),
            (4, 8, &b"last"[..], true)
        );
        assert!(r.take_unterminated().is_none());
    }

    #[test]
    fn tail_marks_validate_the_line_end() {
        let f = Fixture::new();
        f.append(b"one\ntwo\n");
        let mut r = f.reader(0, 100);
        let first_tail = r.next_line().expect("read").expect("line").tail;
        let file = File::open(&f.path).expect("open");
        assert!(first_tail.matches(&file, 4).expect("read"));
        assert!(!first_tail.matches(&file, 8).expect("read"));
    }
    /// (offset, end, message, truncated, unterminated, stream or "malformed"/"plain").
    type Framed = (u64, u64, String, bool, bool, &'static str);

    fn framed_of(l: &Line<'_>) -> Framed {
        let kind = match l.container {
            None => "plain",
            Some(Container::Malformed) => "malformed",
            Some(Container::Record { stream, .. }) => stream.as_str(),
        };
        (
            l.offset,
            l.end,
            String::from_utf8_lossy(l.bytes).into_owned(),
            l.truncated,
            l.unterminated,
            kind,
        )
    }

    fn drain_framed(r: &mut LineReader) -> Vec<Framed> {
        let mut out = Vec::new();
        while let Some(l) = r.next_line().expect("read") {
            out.push(framed_of(&l));
        }
        out
    }

    const T: &str = "2026-12-02T15:30:00.123456789Z";

    #[test]
    fn cri_parts_are_joined_with_the_offset_of_the_first_and_the_end_of_the_last() {
        let f = Fixture::new();
        let a = format!("{T} stdout P {{\"service.name\":\n");
        let b = format!("{T} stdout P \"payment\",\n");
        let c = format!("{T} stdout F \"m\":1}}\n");
        let d = format!("{T} stderr F plain error\n");
        f.append(a.as_bytes());
        let mut r = f.reader(0, 1024).with_format(InputFormat::Cri);
        assert!(drain_framed(&mut r).is_empty(), "a part waits for the rest");
        assert_eq!(r.line_offset(), 0, "nothing of it is handed out");
        f.append(b.as_bytes());
        f.append(c.as_bytes());
        f.append(d.as_bytes());
        let end = (a.len() + b.len() + c.len()) as u64;
        assert_eq!(
            drain_framed(&mut r),
            vec![
                (
                    0,
                    end,
                    r#"{"service.name":"payment","m":1}"#.into(),
                    false,
                    false,
                    "stdout"
                ),
                (
                    end,
                    end + d.len() as u64,
                    "plain error".into(),
                    false,
                    false,
                    "stderr"
                ),
            ]
        );
        let l = f.reader(0, 1024).with_format(InputFormat::Cri);
        let mut l = l;
        let line = l.next_line().unwrap().unwrap();
        assert_eq!(
            line.container,
            Some(Container::Record {
                stream: Stream::Stdout,
                time: T.as_bytes()
            })
        );
    }

    #[test]
    fn a_whole_cri_record_is_handed_out_as_a_slice_of_what_was_read() {
        let f = Fixture::new();
        f.append(format!("{T} stdout F hello\n").as_bytes());
        let mut r = f.reader(0, 1024).with_format(InputFormat::Cri);
        let (at, len) = {
            let line = r.next_line().unwrap().unwrap();
            assert_eq!(line.bytes, b"hello");
            (line.bytes.as_ptr() as usize, line.bytes.len())
        };
        let buf = r.buf.as_ptr() as usize;
        assert!(
            at >= buf && at + len <= buf + r.filled,
            "in the read buffer"
        );
        assert!(r.joined.is_empty(), "nothing copied");
    }

    #[test]
    fn a_joined_line_is_cut_at_the_limit_and_flagged() {
        let f = Fixture::new();
        let mut text = String::new();
        for _ in 0..10 {
            text.push_str(&format!("{T} stdout P {}\n", "x".repeat(100)));
        }
        text.push_str(&format!("{T} stdout F end\n"));
        text.push_str(&format!("{T} stdout F next\n"));
        f.append(text.as_bytes());
        let mut r = f.reader(0, 256).with_format(InputFormat::Cri);
        let lines = drain_framed(&mut r);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].2.len(), 256);
        assert!(lines[0].3, "truncated");
        assert_eq!(lines[1].2, "next");
        assert!(!lines[1].3);
    }

    #[test]
    fn docker_records_are_unescaped_and_joined() {
        let f = Fixture::new();
        let a =
            "{\"log\":\"{\\\"a\\\":\",\"stream\":\"stdout\",\"time\":\"2026-12-02T15:30:00.5Z\"}\n";
        let b = "{\"log\":\"1}\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-02T15:30:00.6Z\"}\n";
        let c = "not a docker record\n";
        f.append(format!("{a}{b}{c}").as_bytes());
        let mut r = f.reader(0, 1024).with_format(InputFormat::Docker);
        let ab = (a.len() + b.len()) as u64;
        assert_eq!(
            drain_framed(&mut r),
            vec![
                (0, ab, r#"{"a":1}"#.into(), false, false, "stdout"),
                (
                    ab,
                    ab + c.len() as u64,
                    "not a docker record".into(),
                    false,
                    false,
                    "malformed"
                ),
            ]
        );
        let mut r = f.reader(0, 1024).with_format(InputFormat::Docker);
        let first = r.next_line().unwrap().unwrap();
        assert_eq!(
            first.container,
            Some(Container::Record {
                stream: Stream::Stdout,
                time: b"2026-12-02T15:30:00.5Z"
            }),
            "the time of the first part"
        );
    }

    #[test]
    fn another_stream_between_the_parts_ends_the_line_so_far_and_nothing_is_lost() {
        let f = Fixture::new();
        let a = format!("{T} stdout P first half \n");
        let b = format!("{T} stderr F an error\n");
        let c = format!("{T} stdout F second half\n");
        let m = "garbage line\n";
        let d = format!("{T} stdout P dangling\n");
        f.append(format!("{a}{b}{c}{d}{m}").as_bytes());
        let mut r = f.reader(0, 1024).with_format(InputFormat::Cri);
        let (a, b, c, d, m) = (
            a.len() as u64,
            b.len() as u64,
            c.len() as u64,
            d.len() as u64,
            m.len() as u64,
        );
        assert_eq!(
            drain_framed(&mut r),
            vec![
                (0, a, "first half ".into(), false, true, "stdout"),
                (a, a + b, "an error".into(), false, false, "stderr"),
                (
                    a + b,
                    a + b + c,
                    "second half".into(),
                    false,
                    false,
                    "stdout"
                ),
                (
                    a + b + c,
                    a + b + c + d,
                    "dangling".into(),
                    false,
                    true,
                    "stdout"
                ),
                (
                    a + b + c + d,
                    a + b + c + d + m,
                    "garbage line".into(),
                    false,
                    false,
                    "malformed"
                ),
            ]
        );
    }

    #[test]
    fn a_part_whose_rest_never_comes_is_handed_out_when_the_file_is_finished() {
        let f = Fixture::new();
        let a = format!("{T} stdout P begins\n");
        let b = format!("{T} stdout P and no");
        f.append(format!("{a}{b}").as_bytes());
        let mut r = f.reader(0, 1024).with_format(InputFormat::Cri);
        assert!(drain_framed(&mut r).is_empty());
        assert_eq!(r.pending_bytes(), (a.len() + b.len()) as u64);
        let l = r.take_unterminated().unwrap();
        assert_eq!(
            framed_of(&l),
            (
                0,
                (a.len() + b.len()) as u64,
                "beginsand no".into(),
                false,
                true,
                "stdout"
            )
        );
        assert!(r.take_unterminated().is_none());
        // Only complete parts: the same, ending where the last part ended.
        let f = Fixture::new();
        f.append(a.as_bytes());
        let mut r = f.reader(0, 1024).with_format(InputFormat::Cri);
        assert!(drain_framed(&mut r).is_empty());
        let l = r.take_unterminated().unwrap();
        assert_eq!(
            framed_of(&l),
            (0, a.len() as u64, "begins".into(), false, true, "stdout")
        );
    }

    #[test]
    fn auto_tells_each_file_s_format_from_its_first_line() {
        let f = Fixture::new();
        f.append(format!("\n{T} stdout F cri line\n").as_bytes());
        let mut r = f.reader(0, 1024).with_format(InputFormat::Auto);
        let lines = drain_framed(&mut r);
        assert_eq!(lines[1].2, "cri line");
        assert_eq!(lines[1].5, "stdout");
        let f = Fixture::new();
        f.append(b"{\"service.name\":\"payment\"}\nplain\n");
        let mut r = f.reader(0, 1024).with_format(InputFormat::Auto);
        let lines = drain_framed(&mut r);
        assert_eq!(lines[0].2, "{\"service.name\":\"payment\"}");
        assert_eq!(lines[1].5, "plain");
        assert_eq!(r.framing(), Framing::Plain);
    }

    #[test]
    fn an_over_long_cri_record_keeps_its_head_and_framing() {
        let f = Fixture::new();
        let long = format!("{T} stdout F {}\n", "y".repeat(5000));
        f.append(long.as_bytes());
        f.append(format!("{T} stderr F after\n").as_bytes());
        let mut r = f.reader(0, 500).with_format(InputFormat::Cri);
        let lines = drain_framed(&mut r);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].3);
        assert!(lines[0].2.starts_with("yyy") && lines[0].2.len() < 500);
        assert_eq!(lines[0].1, long.len() as u64);
        assert_eq!(lines[1].2, "after");
    }

    /// One logical line of the model: its stream, message, and how it is cut into parts.
    #[derive(Debug, Clone)]
    struct Written {
        stderr: bool,
        message: String,
        cuts: Vec<usize>,
    }

    fn written() -> impl proptest::strategy::Strategy<Value = Written> {
        use proptest::prelude::*;
        (
            any::<bool>(),
            "[a-z {}\":,]{0,60}",
            proptest::collection::vec(0usize..60, 0..4),
        )
            .prop_map(|(stderr, message, cuts)| Written {
                stderr,
                message,
                cuts,
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Lines cut into CRI parts (never interleaved with the other stream, as one writer
        /// per stream does), appended in arbitrary pieces with reads in between, come out
        /// whole, once each, with the offset of their first part and the end of the last,
        /// cut at the limit; plain files read through `auto` are not changed.
        #[test]
        fn joined_cri_lines_match_the_model(
            lines in proptest::collection::vec(written(), 1..12),
            pieces in proptest::collection::vec(1usize..90, 1..40),
            max in 48usize..120,
        ) {
            let mut file = Vec::new();
            let mut expected = Vec::new();
            for w in &lines {
                let stream = if w.stderr { "stderr" } else { "stdout" };
                let offset = file.len() as u64;
                let mut cuts: Vec<usize> = w.cuts.iter().map(|c| c.min(&w.message.len()).to_owned()).collect();
                cuts.sort_unstable();
                cuts.dedup();
                let mut from = 0;
                for cut in cuts.iter().copied().filter(|c| *c > 0 && *c < w.message.len()) {
                    file.extend_from_slice(format!("{T} {stream} P {}\n", &w.message[from..cut]).as_bytes());
                    from = cut;
                }
                file.extend_from_slice(format!("{T} {stream} F {}\n", &w.message[from..]).as_bytes());
                let truncated = w.message.len() > max;
                let kept = &w.message[..w.message.len().min(max)];
                expected.push((offset, file.len() as u64, kept.to_string(), truncated, false, stream));
            }
            // Records in the model are shorter than the limit only when the limit allows:
            // a record cut by the raw limit is cut, flagged, and its message shorter.
            let raw_cut = file.split(|b| *b == b'\n').any(|l| l.len() > max);
            let f = Fixture::new();
            let mut r = f.reader(0, max).with_format(InputFormat::Cri);
            let mut got = Vec::new();
            let mut at = 0;
            let mut shared = Vec::new();
            for piece in pieces.iter().cycle() {
                if at >= file.len() {
                    break;
                }
                let to = (at + piece).min(file.len());
                f.append(&file[at..to]);
                at = to;
                r.lend(&mut shared);
                got.extend(drain_framed(&mut r));
                r.give_back(&mut shared);
            }
            r.lend(&mut shared);
            got.extend(drain_framed(&mut r));
            if raw_cut {
                // Every line still once, at its place; only the messages may be shorter.
                proptest::prop_assert_eq!(got.len(), expected.len());
                for (g, e) in got.iter().zip(&expected) {
                    proptest::prop_assert_eq!((g.0, g.1, g.5), (e.0, e.1, e.5));
                    proptest::prop_assert!(e.2.starts_with(&g.2) || g.3);
                }
            } else {
                proptest::prop_assert_eq!(got, expected);
            }
        }
    }
}
