//! Gzip-compressed rotations (`x.log.2.gz`), read as the lines they hold.
//!
//! logrotate's `compress` + `delaycompress` (Debian's default) turns `x.log.1` into
//! `x.log.2.gz`: lines written just before a rotation while the shipper was down, or while
//! reading was paused, may exist only there. A compressed file is treated as the file it was
//! made from: its identity is the fingerprint of its *decompressed* first line and its offsets
//! are offsets in the decompressed stream, so `x.log.2.gz` continues the identity `x.log.1`
//! had, with the same document ids, and nothing is sent twice.
//!
//! What the loop needs, and nothing more:
//! - [`head`]: the first decompressed bytes (the first line, or more to compare with a file
//!   being read), at the cost of decompressing only those;
//! - [`trailer_size`]: the size the gzip trailer records, which tells a fully shipped
//!   identity without decompressing the rest;
//! - [`holds`]: whether the decompressed stream holds a tail mark before an offset (resuming
//!   an identity inside a compressed file);
//! - [`GzStream`]: the decompressed bytes read sequentially, for the line reader.
//!
//! A truncated or corrupt file yields what decompresses before the damage, with one warning
//! naming the file and `shipper_compressed_files_corrupt_total` counted; it never panics and
//! never loops: the stream ends there.

use std::borrow::Borrow;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::identity::decide::Holds;
use super::identity::TailMark;

/// Bytes decompressed per read while discarding up to an offset.
const SKIP_CHUNK: usize = 64 * 1024;

/// Does the name say gzip? (What logrotate's default `compressext` is.)
pub(crate) fn is_compressed(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Counts a compressed file that decompressed only in part (or not at all), and says which.
pub(crate) fn report_damage(path: &Path, at: u64, error: &io::Error) {
    tracing::warn!(
        path = %path.display(),
        decompressed_bytes = at,
        error = %error,
        "compressed file is truncated or corrupt: what decompresses before the damage is shipped, the rest cannot be read"
    );
    metrics::counter!("shipper_compressed_files_corrupt_total").increment(1);
}

#[cfg(test)]
thread_local! {
    /// Decompressed bytes produced on this thread: what tests measure a decision's cost by.
    pub(crate) static DECOMPRESSED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts `n` decompressed bytes (tests only).
fn produced(n: usize) {
    #[cfg(test)]
    DECOMPRESSED.with(|c| c.set(c.get() + n as u64));
    let _ = n;
}

/// Reads a file from a position with `read_at`, never moving the descriptor's own offset.
struct FileAt<F> {
    file: F,
    pos: u64,
}

impl<F: Borrow<File>> Read for FileAt<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.borrow().read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn decoder<F: Borrow<File>>(file: F) -> MultiGzDecoder<FileAt<F>> {
    MultiGzDecoder::new(FileAt { file, pos: 0 })
}

/// Fills `buf` as far as the stream goes; returns the bytes read and the error that ended
/// the stream early, if any.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

/// The first decompressed bytes of a compressed file.
#[derive(Debug)]
pub(crate) struct Head {
    /// Up to the limit asked for (less if the stream is shorter or damaged).
    pub(crate) bytes: Vec<u8>,
    /// The error that ended decompression before the limit, if any.
    pub(crate) damage: Option<io::Error>,
}

/// Decompresses the first `limit` bytes of `file`, or only up to the end of the first line
/// when `first_line` (a fully shipped identity costs that much, not the whole file).
pub(crate) fn head(file: &File, limit: usize, first_line: bool) -> Head {
    let mut d = decoder(file);
    let mut bytes = Vec::with_capacity(limit.min(4096));
    let mut chunk = [0u8; 1024];
    while bytes.len() < limit {
        let want = chunk.len().min(limit - bytes.len());
        match d.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => {
                produced(n);
                bytes.extend_from_slice(&chunk[..n]);
                if first_line && memchr::memchr(b'\n', &chunk[..n]).is_some() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Head {
                    bytes,
                    damage: Some(e),
                }
            }
        }
    }
    Head {
        bytes,
        damage: None,
    }
}

/// The decompressed size the gzip trailer records (modulo 2^32, of the last member), read
/// from the file's last four bytes: with the first line, what tells that a compressed file
/// holds exactly what was already read of an identity, without decompressing it.
pub(crate) fn trailer_size(file: &File) -> Option<u32> {
    let len = file.metadata().ok()?.len();
    // A gzip member is at least 18 bytes (10 header, 8 trailer) plus the deflate stream.
    if len < 20 {
        return None;
    }
    let mut buf = [0u8; 4];
    let n = file.read_at(&mut buf, len - 4).ok()?;
    (n == 4).then(|| u32::from_le_bytes(buf))
}

/// Decompresses `file` up to `offset` (discarding) and says whether the bytes before it are
/// those `tail` was made from, as a plain file is checked before resuming at an offset.
pub(crate) fn holds(file: &File, offset: u64, tail: &TailMark) -> Holds {
    let mut d = decoder(file);
    let mut chunk = vec![0u8; SKIP_CHUNK];
    let mut window: Vec<u8> = Vec::with_capacity(2 * super::identity::TAIL_MARK_LEN);
    let mut pos = 0u64;
    while pos < offset {
        let want = chunk.len().min((offset - pos) as usize);
        let (n, damage) = read_full(&mut d, &mut chunk[..want]);
        produced(n);
        keep_tail(&mut window, &chunk[..n]);
        pos += n as u64;
        if damage.is_some() && pos < offset {
            return Holds::Damaged;
        }
        if n < want {
            return Holds::Shorter;
        }
    }
    // A mark covers up to TAIL_MARK_LEN bytes, fewer when it was taken near the start of a
    // read: compare as many bytes as it covers, as `TailMark::matches` does.
    let len = tail.len as usize;
    if len > window.len() || (len > 0 && TailMark::of(&window[window.len() - len..]) != *tail) {
        return Holds::Differs;
    }
    let mut one = [0u8; 1];
    let ends_there = matches!(read_full(&mut d, &mut one), (0, _));
    Holds::Match { ends_there }
}

/// Keeps the last [`super::identity::TAIL_MARK_LEN`] bytes seen in `window`.
fn keep_tail(window: &mut Vec<u8>, more: &[u8]) {
    let keep = super::identity::TAIL_MARK_LEN;
    if more.len() >= keep {
        window.clear();
        window.extend_from_slice(&more[more.len() - keep..]);
    } else {
        window.extend_from_slice(more);
        let excess = window.len().saturating_sub(keep);
        window.drain(..excess);
    }
}

/// The decompressed bytes of a compressed file, read front to back.
///
/// Reads ask for an offset, as of a plain file; a compressed stream cannot seek, so an
/// offset ahead of the stream is reached by decompressing and discarding (resuming inside a
/// compressed file), and one behind it is an error (the reader never asks for one).
pub(crate) struct GzStream {
    decoder: MultiGzDecoder<FileAt<File>>,
    path: PathBuf,
    /// Offset in the decompressed stream of the next byte the decoder yields.
    pos: u64,
    /// Decompression failed (reported once): the stream ends here.
    damaged: bool,
}

impl GzStream {
    pub(crate) fn new(file: File, path: &Path) -> GzStream {
        GzStream {
            decoder: decoder(file),
            path: path.to_path_buf(),
            pos: 0,
            damaged: false,
        }
    }

    /// The compressed file itself.
    pub(crate) fn file(&self) -> &File {
        &self.decoder.get_ref().file
    }

    /// Reads decompressed bytes at `offset` into `buf`; 0 at the end of the stream, and at a
    /// damage (after reporting it once).
    pub(crate) fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset < self.pos {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "compressed stream at {} cannot go back to {offset}",
                    self.pos
                ),
            ));
        }
        if self.damaged || buf.is_empty() {
            return Ok(0);
        }
        if offset > self.pos {
            let mut skip = vec![0u8; SKIP_CHUNK];
            while self.pos < offset {
                let want = skip.len().min((offset - self.pos) as usize);
                match self.step(&mut skip[..want]) {
                    0 => return Ok(0),
                    n => self.pos += n as u64,
                }
            }
        }
        let n = self.step(buf);
        self.pos += n as u64;
        Ok(n)
    }

    /// One decoder read; a failure ends the stream for good (it would fail again).
    fn step(&mut self, buf: &mut [u8]) -> usize {
        loop {
            match self.decoder.read(buf) {
                Ok(n) => {
                    produced(n);
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.damaged = true;
                    report_damage(&self.path, self.pos, &e);
                    return 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn gzip(content: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(content).unwrap();
        e.finish().unwrap()
    }

    fn file_with(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let f = tmp.reopen().unwrap();
        (tmp, f)
    }

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("line number {i:06} with some words\n").into_bytes())
            .collect()
    }

    fn read_all(s: &mut GzStream, from: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1000];
        let mut at = from;
        loop {
            let n = s.read_at(&mut buf, at).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
            at += n as u64;
        }
    }

    #[test]
    fn only_gz_names_are_compressed() {
        assert!(is_compressed(Path::new("/l/x.log.2.gz")));
        assert!(!is_compressed(Path::new("/l/x.log.2")));
        assert!(!is_compressed(Path::new("/l/x.gzip.log")));
    }

    #[test]
    fn the_head_stops_after_the_first_line() {
        let content = lines(10_000);
        let (_t, f) = file_with(&gzip(&content));
        let first = head(&f, 4096, true);
        assert!(first.damage.is_none());
        assert!(first
            .bytes
            .starts_with(b"line number 000000 with some words\n"));
        assert!(first.bytes.len() <= 1024, "{}", first.bytes.len());
        let more = head(&f, 16 * 1024, false);
        assert_eq!(more.bytes, content[..16 * 1024]);
    }

    #[test]
    fn the_trailer_gives_the_decompressed_size() {
        let content = lines(1000);
        let (_t, f) = file_with(&gzip(&content));
        assert_eq!(trailer_size(&f), Some(content.len() as u32));
        let (_t, tiny) = file_with(b"x");
        assert_eq!(trailer_size(&tiny), None);
    }

    #[test]
    fn the_stream_resumes_inside_by_discarding_up_to_the_offset() {
        let content = lines(20_000);
        let (tmp, f) = file_with(&gzip(&content));
        let mut s = GzStream::new(f, tmp.path());
        let at = 300_000;
        assert_eq!(read_all(&mut s, at), content[at as usize..]);
        assert!(s.read_at(&mut [0u8; 4], 10).is_err(), "no going back");
    }

    #[test]
    fn concatenated_members_read_as_one_stream() {
        let mut bytes = gzip(b"one\ntwo\n");
        bytes.extend(gzip(b"three\n"));
        let (tmp, f) = file_with(&bytes);
        let mut s = GzStream::new(f, tmp.path());
        assert_eq!(read_all(&mut s, 0), b"one\ntwo\nthree\n");
    }

    #[test]
    fn tail_marks_are_checked_in_the_decompressed_bytes() {
        let content = lines(5000);
        let (_t, f) = file_with(&gzip(&content));
        let at = 64_000usize;
        let mark = TailMark::of(&content[..at]);
        assert_eq!(
            holds(&f, at as u64, &mark),
            Holds::Match { ends_there: false }
        );
        assert_eq!(
            holds(&f, content.len() as u64, &TailMark::of(&content)),
            Holds::Match { ends_there: true }
        );
        assert_eq!(holds(&f, at as u64 + 1, &mark), Holds::Differs);
        let short = TailMark::of(&content[at - 20..at]);
        assert_eq!(
            holds(&f, at as u64, &short),
            Holds::Match { ends_there: false },
            "a mark of fewer bytes than the most"
        );
        assert_eq!(holds(&f, content.len() as u64 + 10, &mark), Holds::Shorter);
        assert_eq!(
            holds(&f, 0, &TailMark::default()),
            Holds::Match { ends_there: false }
        );
    }

    #[test]
    fn a_truncated_file_yields_what_decompresses_then_ends() {
        let content = lines(50_000);
        let whole = gzip(&content);
        let (tmp, f) = file_with(&whole[..whole.len() / 2]);
        let mut s = GzStream::new(f, tmp.path());
        let got = read_all(&mut s, 0);
        assert!(!got.is_empty() && got.len() < content.len());
        assert_eq!(got, content[..got.len()], "what comes out is the content");
        assert_eq!(s.read_at(&mut [0u8; 16], got.len() as u64).unwrap(), 0);
        let mark = TailMark::of(&content);
        assert_eq!(
            holds(&s.decoder.get_ref().file, content.len() as u64, &mark),
            Holds::Damaged
        );
    }

    #[test]
    fn a_corrupt_file_ends_the_stream_without_panicking() {
        let content = lines(50_000);
        let mut bytes = gzip(&content);
        let middle = bytes.len() / 2;
        for b in &mut bytes[middle..middle + 64] {
            *b ^= 0x5a;
        }
        let (tmp, f) = file_with(&bytes);
        let mut s = GzStream::new(f, tmp.path());
        let got = read_all(&mut s, 0);
        // Inflate may turn the damaged block into other bytes before the checksum at the end
        // tells: the stream still ends, reported, and reads stay at the end.
        assert!(s.damaged, "the damage is noticed");
        assert_eq!(got[..1000], content[..1000], "the start is intact");
        assert_eq!(s.read_at(&mut [0u8; 16], got.len() as u64).unwrap(), 0);
        let (_t2, not_gzip) = file_with(b"plain text, not gzip\n");
        let h = head(&not_gzip, 4096, true);
        assert!(h.bytes.is_empty() && h.damage.is_some());
    }
}
