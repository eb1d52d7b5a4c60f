//! A log file rotated by size, by renaming: `x.log` -> `x.log.1` -> ... -> `x.log.N`.
//!
//! Rename (not copy-and-truncate) is what a tailer can follow without losing or repeating
//! lines: the old file keeps its identity under its new name and is never rewritten.
//! Rotation happens only between lines, so a line is never split across two files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// An append-only file that rotates itself before a line would take it past `max_bytes`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    out: BufWriter<File>,
    size: u64,
}

impl RotatingFile {
    /// Opens (or creates) `path` for appending. `max_bytes == 0` disables rotation;
    /// `max_files` rotated files are kept.
    pub fn open(path: impl Into<PathBuf>, max_bytes: u64, max_files: usize) -> io::Result<Self> {
        let path = path.into();
        let (out, size) = open_append(&path)?;
        Ok(Self {
            path,
            max_bytes,
            max_files: max_files.max(1),
            out,
            size,
        })
    }

    /// The active file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one complete line (including its `\n`), rotating first if needed.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        if self.max_bytes > 0 && self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.out.write_all(line)?;
        self.size += len;
        Ok(())
    }

    /// Hands buffered lines to the operating system.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        // Oldest first, so each rename lands on a free (or expired) name.
        for n in (1..self.max_files).rev() {
            let from = self.rotated(n);
            if from.exists() {
                fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        fs::rename(&self.path, self.rotated(1))?;
        let (out, size) = open_append(&self.path)?;
        self.out = out;
        self.size = size;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<(BufWriter<File>, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((BufWriter::with_capacity(64 * 1024, file), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> Vec<u8> {
        format!("{{\"n\":{i:04}}}\n").into_bytes()
    }

    fn read_lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    #[test]
    fn rotation_renames_files_keeps_n_and_never_splits_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.log");
        // Each line is 11 bytes; 40 bytes hold 3 lines.
        let mut f = RotatingFile::open(&path, 40, 2).expect("open");
        for i in 0..10 {
            f.write_line(&line(i)).expect("write");
        }
        f.flush().expect("flush");
        let current = read_lines(&path);
        let one = read_lines(&dir.path().join("svc.log.1"));
        let two = read_lines(&dir.path().join("svc.log.2"));
        assert!(
            !dir.path().join("svc.log.3").exists(),
            "only two rotated files are kept"
        );
        assert_eq!(current, vec!["{\"n\":0009}"]);
        assert_eq!(one, vec!["{\"n\":0006}", "{\"n\":0007}", "{\"n\":0008}"]);
        assert_eq!(two, vec!["{\"n\":0003}", "{\"n\":0004}", "{\"n\":0005}"]);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_written_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.log");
        let mut f = RotatingFile::open(&path, 5, 1).expect("open");
        f.write_line(&line(1)).expect("write");
        f.write_line(&line(2)).expect("write");
        f.flush().expect("flush");
        assert_eq!(read_lines(&path), vec!["{\"n\":0002}"]);
        assert_eq!(
            read_lines(&dir.path().join("svc.log.1")),
            vec!["{\"n\":0001}"]
        );
    }

    #[test]
    fn reopening_appends_and_counts_the_existing_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.log");
        {
            let mut f = RotatingFile::open(&path, 25, 3).expect("open");
            f.write_line(&line(1)).expect("write");
            f.flush().expect("flush");
        }
        let mut f = RotatingFile::open(&path, 25, 3).expect("reopen");
        f.write_line(&line(2)).expect("write");
        f.write_line(&line(3)).expect("write");
        f.flush().expect("flush");
        assert_eq!(read_lines(&path), vec!["{\"n\":0003}"]);
        assert_eq!(
            read_lines(&dir.path().join("svc.log.1")),
            vec!["{\"n\":0001}", "{\"n\":0002}"]
        );
    }

    #[test]
    fn zero_max_bytes_never_rotates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.log");
        let mut f = RotatingFile::open(&path, 0, 1).expect("open");
        for i in 0..100 {
            f.write_line(&line(i)).expect("write");
        }
        f.flush().expect("flush");
        assert_eq!(read_lines(&path).len(), 100);
        assert!(!dir.path().join("svc.log.1").exists());
    }
}
