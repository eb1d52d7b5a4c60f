//! The real probes of [`super::decide`]: the few reads of file contents its decisions ask for.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::decide::{CompressedProbe, Heads, Holds, OpenProbe, Probe, Twin};
use super::{fingerprint, Fingerprint, HeadMark, TailMark};
use crate::input::compressed;
use crate::input::open::OpenPolicy;

/// Bytes compared to tell a copy from another file that merely starts with the same line.
const HEAD_COMPARE: usize = 16 * 1024;

/// An open file with the fingerprint of the seen one, and where its reading stopped.
pub(crate) struct OpenTwin<'a> {
    pub(crate) file: &'a File,
    pub(crate) read_position: Option<(u64, TailMark)>,
}

/// Answers [`Probe`]'s questions from the seen file, the open twins and the files the
/// current scan found.
pub(crate) struct FileProbe<'a> {
    pub(crate) seen: &'a File,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) twins: Vec<OpenTwin<'a>>,
    /// Device and inode of every file the current scan found.
    pub(crate) present: &'a HashMap<(u64, u64), PathBuf>,
    /// How those files are opened.
    pub(crate) policy: &'a OpenPolicy,
}

impl Probe for FileProbe<'_> {
    fn twin_intact(&mut self, twin: Twin) -> io::Result<(bool, u64)> {
        let t = &self.twins[twin.index];
        let len = t.file.metadata()?.len();
        let Some((pos, tail)) = t.read_position else {
            return Ok((true, len));
        };
        let intact = len >= pos
            && tail.matches(t.file, pos)?
            && fingerprint(t.file, false)? == Some(self.fingerprint);
        Ok((intact, len))
    }

    fn heads(&mut self, twin: Twin) -> io::Result<Heads> {
        compare_heads(self.seen, self.twins[twin.index].file)
    }

    fn seen_holds(&mut self, offset: u64, tail: &TailMark) -> io::Result<bool> {
        tail.matches(self.seen, offset)
    }

    fn elsewhere_holds(
        &mut self,
        dev: u64,
        ino: u64,
        fingerprint: Fingerprint,
        offset: u64,
        tail: &TailMark,
    ) -> bool {
        self.present
            .get(&(dev, ino))
            .is_some_and(|path| holds(self.policy, path, fingerprint, offset, tail))
    }
}

/// Answers [`OpenProbe`]'s questions about an open file.
pub(crate) struct OpenFileProbe<'a> {
    pub(crate) file: &'a File,
    pub(crate) read_position: Option<(u64, TailMark)>,
}

impl OpenProbe for OpenFileProbe<'_> {
    fn fingerprint_now(&mut self) -> Option<Fingerprint> {
        fingerprint(self.file, false).ok().flatten()
    }

    fn read_position(&mut self) -> Option<(u64, TailMark)> {
        self.read_position
    }

    fn holds(&mut self, offset: u64, tail: &TailMark) -> bool {
        tail.matches(self.file, offset).unwrap_or(true)
    }
}

/// Compares the first bytes both files have (up to [`HEAD_COMPARE`]). A copy made by
/// copytruncate holds the same bytes as its original; two files that only share a first
/// line (a header, a banner) differ right after it. Equal bytes that end within the first
/// line prove nothing yet.
fn compare_heads(a: &File, b: &File) -> io::Result<Heads> {
    Ok(compare_head_bytes(&read_head(a)?, &read_head(b)?))
}

/// The first [`HEAD_COMPARE`] bytes of a file (fewer if it is shorter).
fn read_head(f: &File) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; HEAD_COMPARE];
    let mut filled = 0;
    while filled < buf.len() {
        let n = f.read_at(&mut buf[filled..], filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

/// [`compare_heads`] on heads already read.
pub(crate) fn compare_head_bytes(a: &[u8], b: &[u8]) -> Heads {
    let n = a.len().min(b.len());
    if a[..n] != b[..n] {
        return Heads::Differ;
    }
    let first_line = memchr::memchr(b'\n', &a[..n]).map_or(n, |i| i + 1);
    if n <= first_line {
        Heads::TooShort
    } else {
        Heads::Same
    }
}

/// An open file with the fingerprint of a compressed file being identified.
pub(crate) struct OpenTwinOf<'a> {
    pub(crate) file: &'a File,
    /// The open file is itself compressed (its head must be decompressed to compare).
    pub(crate) compressed: bool,
}

/// Answers [`CompressedProbe`]'s questions from the compressed file and its open twins.
pub(crate) struct CompressedFileProbe<'a> {
    pub(crate) seen: &'a File,
    pub(crate) twins: Vec<OpenTwinOf<'a>>,
    /// The seen file's decompressed head, once asked for.
    head: Option<Vec<u8>>,
}

impl<'a> CompressedFileProbe<'a> {
    pub(crate) fn new(seen: &'a File, twins: Vec<OpenTwinOf<'a>>) -> CompressedFileProbe<'a> {
        CompressedFileProbe {
            seen,
            twins,
            head: None,
        }
    }
}

impl CompressedProbe for CompressedFileProbe<'_> {
    fn heads(&mut self, twin: Twin) -> io::Result<Heads> {
        let seen = self.seen;
        let head = self
            .head
            .get_or_insert_with(|| compressed::head(seen, HEAD_COMPARE, false).bytes);
        let t = &self.twins[twin.index];
        let other = if t.compressed {
            compressed::head(t.file, HEAD_COMPARE, false).bytes
        } else {
            read_head(t.file)?
        };
        Ok(compare_head_bytes(head, &other))
    }

    fn head_is(&mut self, head: &HeadMark) -> bool {
        let bytes = compressed::head(self.seen, head.len as usize, false).bytes;
        HeadMark::of(&bytes) == *head
    }

    fn holds(&mut self, offset: u64, tail: &TailMark) -> Holds {
        compressed::holds(self.seen, offset, tail)
    }
}

/// Does the plain file `plain` start with the bytes the compressed file `gz` decompresses
/// to (or cannot it be told yet)? Then it may be the same content as a compressed file
/// being read, and must wait for it to be finished.
pub(crate) fn plain_may_copy_compressed(plain: &File, gz: &File) -> io::Result<bool> {
    let theirs = compressed::head(gz, HEAD_COMPARE, false).bytes;
    Ok(compare_head_bytes(&read_head(plain)?, &theirs) != Heads::Differ)
}

/// Does the file at `path` start with the first line `fp` and hold, before `offset`, the
/// bytes `tail` was made from?
fn holds(policy: &OpenPolicy, path: &Path, fp: Fingerprint, offset: u64, tail: &TailMark) -> bool {
    let Ok((file, meta)) = policy.open(path) else {
        return false;
    };
    let size = meta.len();
    size >= offset
        && matches!(fingerprint(&file, false), Ok(Some(f)) if f == fp)
        && tail.matches(&file, offset).unwrap_or(false)
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
    fn heads_tell_a_copy_from_a_file_with_the_same_header() {
        let (_a, a) = file_with(b"# header\nline one\nline two\n");
        let (_b, b) = file_with(b"# header\nline one\n");
        let (_c, c) = file_with(b"# header\nother\n");
        let (_d, d) = file_with(b"# header\n");
        assert_eq!(compare_heads(&a, &b).unwrap(), Heads::Same);
        assert_eq!(compare_heads(&a, &c).unwrap(), Heads::Differ);
        assert_eq!(compare_heads(&a, &d).unwrap(), Heads::TooShort);
    }

    fn gzip(content: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(content).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_compressed_file_is_compared_by_its_decompressed_head() {
        let content = b"# header\nline one\nline two\n";
        let (_g, gz) = file_with(&gzip(content));
        let (_p, plain) = file_with(content);
        let (_o, other) = file_with(b"# header\nsomething else\n");
        let twins = |f| {
            vec![
                OpenTwinOf {
                    file: f,
                    compressed: false,
                },
                OpenTwinOf {
                    file: &gz,
                    compressed: true,
                },
            ]
        };
        let mut probe = CompressedFileProbe::new(&gz, twins(&plain));
        assert_eq!(probe.heads(Twin { index: 0 }).unwrap(), Heads::Same);
        assert_eq!(probe.heads(Twin { index: 1 }).unwrap(), Heads::Same);
        let mut probe = CompressedFileProbe::new(&gz, twins(&other));
        assert_eq!(probe.heads(Twin { index: 0 }).unwrap(), Heads::Differ);
        assert!(plain_may_copy_compressed(&plain, &gz).unwrap());
        assert!(!plain_may_copy_compressed(&other, &gz).unwrap());
    }

    #[test]
    fn a_path_holds_an_identity_only_with_its_first_line_and_tail() {
        let content = b"first\nsecond\n";
        let (tmp, f) = file_with(content);
        let fp = fingerprint(&f, false).unwrap().unwrap();
        let tail = TailMark::of(content);
        assert!(holds(
            &OpenPolicy::no_links(),
            tmp.path(),
            fp,
            content.len() as u64,
            &tail
        ));
        assert!(!holds(
            &OpenPolicy::no_links(),
            tmp.path(),
            fp + 1,
            content.len() as u64,
            &tail
        ));
        assert!(!holds(
            &OpenPolicy::no_links(),
            tmp.path(),
            fp,
            content.len() as u64 + 1,
            &tail
        ));
        assert!(!holds(
            &OpenPolicy::no_links(),
            Path::new("/nonexistent/file"),
            fp,
            0,
            &TailMark::default()
        ));
    }
}
