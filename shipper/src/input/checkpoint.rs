//! Where each file is: saved to disk so a restart resumes where delivery stopped.
//!
//! A checkpoint holds, per file identity, the offset up to which every line is safe in
//! Elasticsearch (or in the dead-letter file), never merely read. It is written as a whole to
//! a temp file, `fsync`ed, renamed over the stable file and the directory `fsync`ed, so a crash
//! at any instant leaves either the old or the new state, never a torn one. Loading prefers a
//! readable temp file: it can only exist if a newer write was interrupted after completing.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::collections::VecDeque;

use super::identity::{FileKey, Fingerprint, HeadMark, LineMark, TailMark};

const STABLE: &str = "checkpoints.json";
const TEMP: &str = "checkpoints.json.tmp";

/// The saved position of one file identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileCheckpoint {
    /// Identity used in document ids.
    pub(crate) key: FileKey,
    /// Hash of the file's first line.
    pub(crate) fingerprint: Fingerprint,
    /// Device and inode the file had when last seen.
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Path the file had when last seen (for people; identity does not depend on it).
    pub(crate) path: PathBuf,
    /// Every line before this offset is safe.
    pub(crate) offset: u64,
    /// Mark of the bytes just before `offset`.
    pub(crate) tail: TailMark,
    /// End of the last line read (and so possibly sent): the identity's document ids are
    /// in use up to here. A file that claims this identity must hold the same bytes before
    /// it (checked with `sent_tail`), or a new line could take an id an old one already has.
    #[serde(default)]
    pub(crate) sent_offset: u64,
    #[serde(default)]
    pub(crate) sent_tail: TailMark,
    /// Lines ending at or before this offset may have been sent by an earlier run, which
    /// reserved them ahead of reading (see [`super::sent_horizon`]): they are looked up
    /// before they are sent again. Zero when nothing past `offset` was reserved.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) replay_until: u64,
    /// The ends of the last lines read, newest last, while the
    /// identity is being written to: what tells a copy made before the reader read past its
    /// end (see [`super::identity::decide::identify`]). Empty once the file is idle.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub(crate) recent: VecDeque<LineMark>,
    /// The identity was found to live on in a copy that ends here, every line of which was
    /// already read (copytruncate): a file of exactly this length holding this mark is it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) copy_end: Option<LineMark>,
    /// Mark of the identity's first bytes, taken when its file was read to its end (a
    /// compressed copy is then recognised from its head, see [`HeadMark`]).
    #[serde(default)]
    pub(crate) head: HeadMark,
    /// When this identity was last seen on disk (Unix seconds), to forget old files.
    pub(crate) seen_unix: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The file format, versioned so a later release can read what this one wrote.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
enum State {
    #[serde(rename = "1")]
    V1 { files: Vec<FileCheckpoint> },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckpointError {
    #[error("cannot create the checkpoint directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot write the checkpoint file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read the checkpoint file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

/// Loads and saves the checkpoints of one data directory.
pub(crate) struct Checkpointer {
    dir: PathBuf,
}

/// What [`Checkpointer::load`] found.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) files: Vec<FileCheckpoint>,
    /// A checkpoint file that could not be parsed and was moved aside to this path.
    /// Starting over is safe (documents re-sent are answered 409), but worth a warning.
    pub(crate) moved_aside: Option<PathBuf>,
}

impl Checkpointer {
    pub(crate) fn new(dir: &Path) -> Result<Checkpointer, CheckpointError> {
        fs::create_dir_all(dir).map_err(|source| CheckpointError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Checkpointer {
            dir: dir.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(STABLE)
    }

    /// The directory of the checkpoints (and of the sent-horizon log beside them).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn load(&self) -> Result<Loaded, CheckpointError> {
        let temp = self.dir.join(TEMP);
        if let Some(Ok(State::V1 { files })) = read_state(&temp)? {
            return Ok(Loaded {
                files,
                moved_aside: None,
            });
        }
        let stable = self.dir.join(STABLE);
        match read_state(&stable)? {
            None => Ok(Loaded::default()),
            Some(Ok(State::V1 { files })) => Ok(Loaded {
                files,
                moved_aside: None,
            }),
            Some(Err(_)) => {
                let aside = self.dir.join(format!(
                    "{STABLE}.unreadable-{}",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S")
                ));
                fs::rename(&stable, &aside).map_err(|source| CheckpointError::Write {
                    path: aside.clone(),
                    source,
                })?;
                Ok(Loaded {
                    files: Vec::new(),
                    moved_aside: Some(aside),
                })
            }
        }
    }

    pub(crate) fn save(&self, files: &[FileCheckpoint]) -> Result<(), CheckpointError> {
        let temp = self.dir.join(TEMP);
        let stable = self.dir.join(STABLE);
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Write { path, source }
        };
        let file = File::create(&temp).map_err(write_err(&temp))?;
        // Streamed to the file, not built in memory first: with thousands of files the
        // document is megabytes, and the buffer's peak stayed in the process's RSS.
        let mut out = io::BufWriter::with_capacity(64 * 1024, file);
        serde_json::to_writer(&mut out, &StateRef::V1 { files }).map_err(|e| {
            CheckpointError::Write {
                path: temp.clone(),
                source: io::Error::other(e),
            }
        })?;
        let file = out.into_inner().map_err(|e| CheckpointError::Write {
            path: temp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(write_err(&temp))?;
        drop(file);
        fs::rename(&temp, &stable).map_err(write_err(&stable))?;
        // The rename is only durable once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(write_err(&self.dir))?;
        Ok(())
    }
}

/// Serialises like [`State`] without cloning the files.
#[derive(Serialize)]
#[serde(tag = "version")]
enum StateRef<'a> {
    #[serde(rename = "1")]
    V1 { files: &'a [FileCheckpoint] },
}

/// The checkpoints saved in `dir`, read without creating, repairing or moving anything (for
/// the commands that look at a running shipper's data directory): the same preference for a
/// complete temp file as [`Checkpointer::load`]. `Ok(None)` when nothing was saved yet.
pub(crate) fn peek(dir: &Path) -> Result<Option<Vec<FileCheckpoint>>, CheckpointError> {
    if let Some(Ok(State::V1 { files })) = read_state(&dir.join(TEMP))? {
        return Ok(Some(files));
    }
    let stable = dir.join(STABLE);
    match read_state(&stable)? {
        None => Ok(None),
        Some(Ok(State::V1 { files })) => Ok(Some(files)),
        Some(Err(e)) => Err(CheckpointError::Read {
            path: stable,
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        }),
    }
}

/// `None` when the file does not exist; `Some(Err)` when it exists but does not parse.
fn read_state(path: &Path) -> Result<Option<Result<State, serde_json::Error>>, CheckpointError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(offset: u64) -> FileCheckpoint {
        FileCheckpoint {
            key: u64::MAX - 3,
            fingerprint: 42,
            dev: 1,
            ino: 2,
            path: "/var/log/didban/payment.log".into(),
            offset,
            tail: TailMark { len: 3, hash: 9 },
            seen_unix: 1_700_000_000,
            ..FileCheckpoint::default()
        }
    }

    #[test]
    fn saved_checkpoints_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpointer::new(dir.path()).unwrap();
        assert!(cp.load().unwrap().files.is_empty());
        cp.save(&[sample(10)]).unwrap();
        cp.save(&[sample(20)]).unwrap();
        assert_eq!(cp.load().unwrap().files, vec![sample(20)]);
        assert!(!dir.path().join(TEMP).exists());
    }

    #[test]
    fn checkpoints_of_the_previous_format_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpointer::new(dir.path()).unwrap();
        fs::write(
            dir.path().join(STABLE),
            br#"{"version":"1","files":[{"key":1,"fingerprint":2,"dev":3,"ino":4,"path":"a.log","offset":5,"tail":{"len":0,"hash":0},"seen_unix":6}]}"#,
        )
        .unwrap();
        let files = cp.load().unwrap().files;
        assert_eq!((files[0].offset, files[0].sent_offset), (5, 0));
    }

    #[test]
    fn a_complete_temp_file_wins_over_the_stable_one() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpointer::new(dir.path()).unwrap();
        cp.save(&[sample(10)]).unwrap();
        let newer = serde_json::to_vec(&StateRef::V1 {
            files: &[sample(30)],
        })
        .unwrap();
        fs::write(dir.path().join(TEMP), newer).unwrap();
        assert_eq!(cp.load().unwrap().files, vec![sample(30)]);
    }

    #[test]
    fn a_torn_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpointer::new(dir.path()).unwrap();
        cp.save(&[sample(10)]).unwrap();
        fs::write(dir.path().join(TEMP), b"{\"version\":\"1\",\"fi").unwrap();
        assert_eq!(cp.load().unwrap().files, vec![sample(10)]);
    }

    #[test]
    fn an_unreadable_checkpoint_is_moved_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpointer::new(dir.path()).unwrap();
        fs::write(dir.path().join(STABLE), b"garbage").unwrap();
        let loaded = cp.load().unwrap();
        assert!(loaded.files.is_empty());
        let aside = loaded.moved_aside.expect("moved aside");
        assert_eq!(fs::read(aside).unwrap(), b"garbage");
        assert!(!dir.path().join(STABLE).exists());
    }
}
