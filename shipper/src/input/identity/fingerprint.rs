//! Which file is which, independent of its name.
//!
//! A file's *fingerprint* is a hash of its first line (or of its first
//! [`FINGERPRINT_WINDOW`] bytes when the first line is longer). The services' first line holds
//! a timestamp with microseconds and a transaction id, so it is unique per file in practice,
//! and it travels with the content: a file renamed by rotation, or copied by copytruncate,
//! keeps it; a new file on a reused inode does not. Unlike a fixed 1 KiB window, a file of a
//! single short line already has a fingerprint, so small files ship.
//!
//! Two layers guard the cases a first line cannot decide (two files that begin with the same
//! line, e.g. a header): the device/inode pair, and a hash of the bytes just before a saved
//! offset ([`TailMark`]), checked before resuming a file at that offset.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Bytes of the file head used when the first line is longer than this.
pub(crate) const FINGERPRINT_WINDOW: usize = 4096;

/// Longest tail (bytes before an offset) hashed to validate a saved offset.
pub(crate) const TAIL_MARK_LEN: usize = 64;

/// A hash of the head of a file.
pub(crate) type Fingerprint = u64;

/// The identity used in document ids: the fingerprint, or a salted variant when another file
/// with the same fingerprint is already known.
pub(crate) type FileKey = u64;

/// Fingerprint of an open file, or `None` while the file holds neither a complete first line
/// nor [`FINGERPRINT_WINDOW`] bytes (a file being written: wait for more).
///
/// `force` takes whatever bytes exist (at least one): used when a file is finished (renamed
/// away or deleted) and its only line will never get its newline.
pub(crate) fn fingerprint(file: &File, force: bool) -> io::Result<Option<Fingerprint>> {
    let mut buf = [0u8; FINGERPRINT_WINDOW];
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read_at(&mut buf[filled..], filled as u64)?;
        if n == 0 {
            break;
        }
        if let Some(pos) = memchr::memchr(b'\n', &buf[filled..filled + n]) {
            return Ok(Some(xxh3_64(&buf[..filled + pos + 1])));
        }
        filled += n;
    }
    Ok(fingerprint_bytes(&buf[..filled], force))
}

/// Fingerprint of a file whose first bytes are `head` (all of them, or at least
/// [`FINGERPRINT_WINDOW`]): the same hash [`fingerprint`] gives the file. Used for compressed
/// files, whose head is what their first bytes decompress to.
pub(crate) fn fingerprint_bytes(head: &[u8], force: bool) -> Option<Fingerprint> {
    let window = &head[..head.len().min(FINGERPRINT_WINDOW)];
    if let Some(pos) = memchr::memchr(b'\n', window) {
        return Some(xxh3_64(&window[..pos + 1]));
    }
    if window.len() == FINGERPRINT_WINDOW || (force && !window.is_empty()) {
        Some(xxh3_64(window))
    } else {
        None
    }
}

/// A key distinct from `fingerprint`, for a second file that starts with the same bytes.
/// Mixed from the file's device, inode and the time it was first seen, so it is unique.
pub(crate) fn salted_key(
    fingerprint: Fingerprint,
    dev: u64,
    ino: u64,
    seen_nanos: u128,
) -> FileKey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&dev.to_le_bytes());
    bytes[8..16].copy_from_slice(&ino.to_le_bytes());
    bytes[16..].copy_from_slice(&seen_nanos.to_le_bytes());
    xxh3_64_with_seed(&bytes, fingerprint)
}

/// Bytes of a file's head that [`HeadMark`] covers at most.
pub(crate) const HEAD_MARK_LEN: usize = 4096;

/// A hash of the first bytes of an identity (up to [`HEAD_MARK_LEN`]), taken when its file
/// was read to its end: with the first line and the length, what tells that a compressed
/// file holds the same bytes without decompressing it all. Files that share a first line (a
/// header) differ right after it, so the first line alone cannot tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeadMark {
    /// How many bytes from the start were hashed (0: not known).
    pub(crate) len: u32,
    pub(crate) hash: u64,
}

impl HeadMark {
    /// The mark of a head (only its first [`HEAD_MARK_LEN`] bytes are used).
    pub(crate) fn of(head: &[u8]) -> HeadMark {
        let head = &head[..head.len().min(HEAD_MARK_LEN)];
        HeadMark {
            len: head.len() as u32,
            hash: xxh3_64(head),
        }
    }

    /// The mark of a plain file's head.
    pub(crate) fn read(file: &File) -> io::Result<HeadMark> {
        let mut buf = [0u8; HEAD_MARK_LEN];
        let mut filled = 0;
        while filled < buf.len() {
            let n = file.read_at(&mut buf[filled..], filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        Ok(HeadMark::of(&buf[..filled]))
    }
}

/// A hash of the last bytes before an offset: proof that a file still holds, at that offset,
/// the content a checkpoint was taken on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TailMark {
    /// How many bytes before the offset were hashed (0 at offset 0).
    pub(crate) len: u32,
    pub(crate) hash: u64,
}

/// A point in an identity's bytes: an offset and the mark of the bytes before it. The recent
/// line ends of an identity are kept as marks, so a copy of it that ends before the read
/// position (copytruncate's copy, made before the reader read past its end) can be
/// recognised by the bytes it holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LineMark {
    pub(crate) offset: u64,
    pub(crate) tail: TailMark,
}

impl TailMark {
    /// The mark of the bytes of `file` just before `offset` (fewer when the file is shorter).
    pub(crate) fn read(file: &File, offset: u64) -> io::Result<TailMark> {
        let len = (TAIL_MARK_LEN as u64).min(offset) as usize;
        let mut buf = [0u8; TAIL_MARK_LEN];
        let buf = &mut buf[..len];
        let mut filled = 0;
        while filled < len {
            let n = file.read_at(&mut buf[filled..], offset - len as u64 + filled as u64)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than the offset of its mark",
                ));
            }
            filled += n;
        }
        Ok(TailMark::of(buf))
    }

    /// The mark of the bytes `tail` (the last bytes before some offset; only the last
    /// [`TAIL_MARK_LEN`] are used).
    pub(crate) fn of(tail: &[u8]) -> TailMark {
        let tail = &tail[tail.len().saturating_sub(TAIL_MARK_LEN)..];
        TailMark {
            len: tail.len() as u32,
            hash: xxh3_64(tail),
        }
    }

    /// Does `file` hold, just before `offset`, the bytes this mark was made from?
    pub(crate) fn matches(&self, file: &File, offset: u64) -> io::Result<bool> {
        let len = self.len as u64;
        if len > offset {
            return Ok(false);
        }
        if len == 0 {
            return Ok(true);
        }
        let mut buf = [0u8; TAIL_MARK_LEN];
        let buf = &mut buf[..self.len as usize];
        let mut filled = 0;
        while filled < buf.len() {
            let n = file.read_at(&mut buf[filled..], offset - len + filled as u64)?;
            if n == 0 {
                return Ok(false);
            }
            filled += n;
        }
        Ok(xxh3_64(buf) == self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(content: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().expect("temp file");
        tmp.write_all(content).expect("write");
        let f = tmp.reopen().expect("reopen");
        (tmp, f)
    }

    #[test]
    fn a_single_short_line_has_a_fingerprint() {
        let (_t, f) = file_with(b"hi\n");
        assert!(fingerprint(&f, false).unwrap().is_some());
    }

    #[test]
    fn a_file_without_a_complete_line_waits_unless_forced() {
        let (_t, f) = file_with(b"partial");
        assert_eq!(fingerprint(&f, false).unwrap(), None);
        assert!(fingerprint(&f, true).unwrap().is_some());
        let (_t, empty) = file_with(b"");
        assert_eq!(fingerprint(&empty, true).unwrap(), None);
    }

    #[test]
    fn the_fingerprint_depends_on_the_first_line_only() {
        let (_a, a) = file_with(b"first\nsecond\n");
        let (_b, b) = file_with(b"first\nother and longer\n");
        let (_c, c) = file_with(b"First\nsecond\n");
        let fa = fingerprint(&a, false).unwrap();
        assert_eq!(fa, fingerprint(&b, false).unwrap());
        assert_ne!(fa, fingerprint(&c, false).unwrap());
    }

    #[test]
    fn a_long_first_line_uses_the_window() {
        let long = vec![b'x'; FINGERPRINT_WINDOW + 10];
        let (_a, a) = file_with(&long);
        assert!(fingerprint(&a, false).unwrap().is_some());
    }

    #[test]
    fn the_fingerprint_of_bytes_is_the_fingerprint_of_a_file_holding_them() {
        let long = vec![b'y'; FINGERPRINT_WINDOW + 10];
        let contents: [&[u8]; 4] = [b"first\nsecond\n", b"partial", &long, b""];
        for content in contents {
            let (_t, f) = file_with(content);
            for force in [false, true] {
                assert_eq!(
                    fingerprint(&f, force).unwrap(),
                    fingerprint_bytes(content, force)
                );
            }
        }
    }

    #[test]
    fn salted_keys_differ_by_inode() {
        assert_ne!(salted_key(7, 1, 2, 3), salted_key(7, 1, 3, 3));
        assert_ne!(salted_key(7, 1, 2, 3), 7);
    }

    #[test]
    fn tail_marks_check_the_bytes_before_an_offset() {
        let content = b"line one\nline two\nline three\n";
        let (_a, a) = file_with(content);
        let mark = TailMark::of(&content[..18]);
        assert!(mark.matches(&a, 18).unwrap());
        assert!(!mark.matches(&a, 9).unwrap());
        let (_b, b) = file_with(b"line one\nLINE TWO\n");
        assert!(!mark.matches(&b, 18).unwrap());
        let (_c, c) = file_with(b"short");
        assert!(!mark.matches(&c, 18).unwrap());
        assert!(TailMark::default().matches(&c, 0).unwrap());
    }
}
