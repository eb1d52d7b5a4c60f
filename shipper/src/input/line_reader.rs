//! Reading one file line by line, from a given byte offset.
//!
//! Lines are split on `\n` with `memchr` in a reusable buffer and handed out as slices, so a
//! line is not copied before it is encoded. A partial last line stays in the buffer until its
//! newline arrives. A line longer than the limit keeps its first `max_line_bytes` and is
//! flagged as truncated; the rest of it is skipped without being held in memory, so memory
//! per file stays bounded whatever the file holds.
//!
//! The read buffer is lent by the caller for one turn ([`LineReader::lend`] ...
//! [`LineReader::give_back`]): one buffer serves every file, and between turns a reader keeps
//! only its partial last line. Thousands of open files then cost their descriptors and a few
//! words each, not 64 KiB each.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::compressed::GzStream;
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
    /// A read found the bytes before it changed: the file was truncated (and perhaps written
    /// again) between the turn's check and the read. Nothing of that read was handed out.
    rewritten: bool,
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
            rewritten: false,
        }
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

    /// Offset of the first byte not yet handed out in a line.
    pub(crate) fn line_offset(&self) -> u64 {
        match &self.long_line {
            Some((_, begin)) => *begin,
            None => self.buf_offset + self.start as u64,
        }
    }

    /// Offset of the next byte to read from the file.
    pub(crate) fn read_offset(&self) -> u64 {
        self.buf_offset + self.filled as u64
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
                    return Ok(Some(Line {
                        offset,
                        end,
                        bytes: &self.last_long,
                        truncated: true,
                        unterminated: false,
                        tail,
                    }));
                }
                return Ok(Some(self.line(begin, nl, end, tail, false)));
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
    pub(crate) fn take_unterminated(&mut self) -> Option<Line<'_>> {
        if self.pending_bytes() == 0 {
            return None;
        }
        let end = self.read_offset();
        let tail = TailMark::of(&self.buf[..self.filled]);
        let begin = self.start;
        self.start = self.filled;
        if let Some((head, offset)) = self.long_line.take() {
            self.last_long = head;
            return Some(Line {
                offset,
                end,
                bytes: &self.last_long,
                truncated: true,
                unterminated: true,
                tail,
            });
        }
        Some(self.line(begin, self.filled, end, tail, true))
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
        self.last_long = Vec::new();
    }

    /// Bytes of memory this reader holds for its buffers.
    #[cfg(test)]
    fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
            + self.last_long.capacity()
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
}
