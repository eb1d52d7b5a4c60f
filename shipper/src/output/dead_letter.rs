//! The dead-letter files: documents Elasticsearch will never accept as they are.
//!
//! A document rejected for good (a mapping conflict, a parse error, a document larger than
//! the cluster accepts) is written here with Elasticsearch's answer, then acknowledged, so it
//! neither blocks the file behind it nor disappears. One NDJSON record per document:
//!
//! ```json
//! {"@timestamp":"2025-11-03T10:00:00.000Z","index":"logs-payment-default","id":"9f3c-1a2b",
//!  "status":400,"error":{"type":"document_parsing_exception","reason":"..."},
//!  "document":{...the source, as it was sent...}}
//! ```
//!
//! The files are bounded: records go to numbered segments (`dead-letters-000001.ndjson`,
//! ...), a new segment starts when the current one reaches a quarter of the bound, and the
//! oldest segments are deleted when all together exceed it. Deleted records are counted in a
//! metric and logged, never silently lost. Every append is `fsync`ed before the documents are
//! acknowledged: the checkpoint moves past them only once they are safe here.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::value::RawValue;

const PREFIX: &str = "dead-letters-";
const SUFFIX: &str = ".ndjson";

/// One document to dead-letter and why.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeadLetter<'a> {
    pub(crate) index: &'a str,
    pub(crate) id: &'a str,
    /// HTTP status of the item (or 413 for a document too large on its own).
    pub(crate) status: u16,
    pub(crate) error_type: &'a str,
    pub(crate) reason: &'a str,
    /// The document source as sent (normally JSON).
    pub(crate) source: &'a [u8],
}

#[derive(Serialize)]
struct Record<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    index: &'a str,
    id: &'a str,
    status: u16,
    error: RecordError<'a>,
    document: Document<'a>,
}

#[derive(Serialize)]
struct RecordError<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Document<'a> {
    /// The source, embedded as the JSON it is.
    Json(&'a RawValue),
    /// A source that is not valid JSON (should not happen: the shipper encodes every line as
    /// JSON), kept as text so the record itself stays valid JSON.
    Text(String),
}

/// Appends one NDJSON record for `letter` to `out`.
pub(crate) fn encode(letter: &DeadLetter<'_>, out: &mut Vec<u8>) {
    let document = match std::str::from_utf8(letter.source)
        .ok()
        .and_then(|s| serde_json::from_str::<&RawValue>(s).ok())
    {
        Some(raw) => Document::Json(raw),
        None => Document::Text(String::from_utf8_lossy(letter.source).into_owned()),
    };
    let record = Record {
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        index: letter.index,
        id: letter.id,
        status: letter.status,
        error: RecordError {
            kind: letter.error_type,
            reason: letter.reason,
        },
        document,
    };
    // Serialising borrowed strings and a validated RawValue into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, &record).is_ok() {
        out.push(b'\n');
    }
}

/// The index and `_id` of an action line (`{"create":{"_index":..,"_id":..}}`).
pub(crate) fn action_target(action: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Target {
        #[serde(rename = "_index", default)]
        index: String,
        #[serde(rename = "_id", default)]
        id: String,
    }
    #[derive(serde::Deserialize)]
    struct Action {
        #[serde(alias = "index")]
        create: Target,
    }
    serde_json::from_slice::<Action>(action)
        .map(|a| (a.create.index, a.create.id))
        .unwrap_or_default()
}

/// What an append did besides writing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Appended {
    /// Records deleted with the segments evicted to stay under the bound.
    pub(crate) evicted_records: u64,
    /// The evicted files, for the log line.
    pub(crate) evicted_files: Vec<PathBuf>,
}

/// Writes dead-letter records into bounded, rotated segment files.
#[derive(Debug)]
pub(crate) struct DeadLetterWriter {
    dir: PathBuf,
    max_bytes: u64,
    segment_max: u64,
    /// Every segment on disk, oldest first: (number, size in bytes).
    segments: VecDeque<(u64, u64)>,
    /// The segment being appended to, opened lazily.
    current: Option<File>,
}

impl DeadLetterWriter {
    /// Opens the directory (creating it) and continues after the segments already there.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(number) = name.to_str().and_then(segment_number) else {
                continue;
            };
            segments.push((number, entry.metadata()?.len()));
        }
        segments.sort_unstable();
        Ok(DeadLetterWriter {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_max: (max_bytes / 4).max(16 * 1024),
            segments: segments.into(),
            current: None,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total size of the segments on disk.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|(_, size)| size).sum()
    }

    /// Appends already encoded records (see [`encode`]), makes them durable, then evicts the
    /// oldest segments if the bound is exceeded. The newest segment is never evicted, so what
    /// was just written stays even when a single record is larger than the bound.
    pub(crate) fn append(&mut self, records: &[u8]) -> io::Result<Appended> {
        if records.is_empty() {
            return Ok(Appended::default());
        }
        let current_size = self.segments.back().map(|(_, s)| *s);
        let rotate = match current_size {
            None => true,
            Some(size) => size > 0 && size + records.len() as u64 > self.segment_max,
        };
        if rotate {
            let number = self.segments.back().map(|(n, _)| n + 1).unwrap_or(1);
            self.segments.push_back((number, 0));
            self.current = None;
        }
        let (number, size) = self
            .segments
            .back_mut()
            .ok_or_else(|| io::Error::other("dead-letter segment list is empty after rotation"))?;
        if self.current.is_none() {
            let path = segment_path(&self.dir, *number);
            self.current = Some(OpenOptions::new().create(true).append(true).open(&path)?);
        }
        if let Some(file) = self.current.as_mut() {
            file.write_all(records)?;
            file.sync_data()?;
            *size += records.len() as u64;
        }
        self.evict()
    }

    fn evict(&mut self) -> io::Result<Appended> {
        let mut appended = Appended::default();
        while self.total_bytes() > self.max_bytes && self.segments.len() > 1 {
            let Some((number, _)) = self.segments.pop_front() else {
                break;
            };
            let path = segment_path(&self.dir, number);
            let records = match fs::read(&path) {
                Ok(data) => memchr::memchr_iter(b'\n', &data).count() as u64,
                Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                Err(e) => return Err(e),
            };
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            appended.evicted_records += records;
            appended.evicted_files.push(path);
        }
        Ok(appended)
    }
}

/// A record read back (by `shipper dead-letters`): the fields [`encode`] writes.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct ReadRecord {
    #[serde(rename = "@timestamp", default)]
    pub(crate) timestamp: String,
    pub(crate) index: String,
    pub(crate) id: String,
    pub(crate) status: u16,
    pub(crate) error: ReadError,
    pub(crate) document: Box<RawValue>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct ReadError {
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) reason: String,
}

/// The segment files in `dir`, oldest first; none when the directory does not exist.
pub(crate) fn segment_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(number) = entry.file_name().to_str().and_then(segment_number) {
            segments.push((number, entry.path()));
        }
    }
    segments.sort_unstable();
    Ok(segments.into_iter().map(|(_, p)| p).collect())
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{number:06}{SUFFIX}"))
}

fn segment_number(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter<'a>(id: &'a str, source: &'a [u8]) -> DeadLetter<'a> {
        DeadLetter {
            index: "logs-payment-default",
            id,
            status: 400,
            error_type: "document_parsing_exception",
            reason: "failed to parse field [http.response.status_code] of type [long]",
            source,
        }
    }

    #[test]
    fn a_record_holds_the_answer_and_the_document_as_json() {
        let mut out = Vec::new();
        encode(&letter("abc-1", br#"{"message":"hi","n":1}"#), &mut out);
        assert!(out.ends_with(b"\n"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["index"], "logs-payment-default");
        assert_eq!(v["id"], "abc-1");
        assert_eq!(v["status"], 400);
        assert_eq!(v["error"]["type"], "document_parsing_exception");
        assert!(v["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("status_code"));
        assert_eq!(v["document"]["message"], "hi");
        assert!(v["@timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_source_that_is_not_json_is_kept_as_text() {
        let mut out = Vec::new();
        encode(&letter("x", b"{not json \xff"), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["document"], "{not json \u{fffd}");
    }

    #[test]
    fn action_lines_give_index_and_id() {
        assert_eq!(
            action_target(br#"{"create":{"_index":"logs-payment-default","_id":"9f3c-1a2b"}}"#),
            ("logs-payment-default".to_string(), "9f3c-1a2b".to_string())
        );
        assert_eq!(action_target(b"garbage"), (String::new(), String::new()));
    }

    fn record(id: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let source = format!(r#"{{"message":"{}"}}"#, "x".repeat(1000));
        encode(&letter(&id.to_string(), source.as_bytes()), &mut out);
        out
    }

    #[test]
    fn appends_are_readable_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = DeadLetterWriter::open(dir.path(), 1024 * 1024).unwrap();
        w.append(&record(1)).unwrap();
        drop(w);
        let mut w = DeadLetterWriter::open(dir.path(), 1024 * 1024).unwrap();
        w.append(&record(2)).unwrap();
        let text = fs::read_to_string(dir.path().join("dead-letters-000001.ndjson")).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect();
        assert_eq!(ids, ["\"1\"", "\"2\""]);
    }

    #[test]
    fn files_rotate_and_the_oldest_are_evicted_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let max = 64 * 1024;
        let mut w = DeadLetterWriter::open(dir.path(), max).unwrap();
        let mut evicted = 0;
        let mut written = 0u64;
        for i in 0..300 {
            let a = w.append(&record(i)).unwrap();
            evicted += a.evicted_records;
            written += 1;
        }
        assert!(w.total_bytes() <= max, "{} > {max}", w.total_bytes());
        let segments: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(segments.len() > 1);
        // Every record is either still on disk or counted as evicted.
        let mut on_disk = 0u64;
        for entry in fs::read_dir(dir.path()).unwrap() {
            let data = fs::read(entry.unwrap().path()).unwrap();
            on_disk += memchr::memchr_iter(b'\n', &data).count() as u64;
        }
        assert!(evicted > 0);
        assert_eq!(on_disk + evicted, written);
        // The newest record is kept.
        let newest = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .max()
            .unwrap();
        assert!(fs::read_to_string(newest)
            .unwrap()
            .contains("\"id\":\"299\""));
    }

    #[test]
    fn a_record_larger_than_the_bound_is_still_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = DeadLetterWriter::open(dir.path(), 64 * 1024).unwrap();
        let mut out = Vec::new();
        let big = format!(r#"{{"message":"{}"}}"#, "y".repeat(100 * 1024));
        encode(&letter("big", big.as_bytes()), &mut out);
        w.append(&record(1)).unwrap();
        let a = w.append(&out).unwrap();
        assert_eq!(a.evicted_records, 1);
        assert!(w.total_bytes() > 100 * 1024);
    }

    #[test]
    fn unrelated_files_in_the_directory_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "keep me").unwrap();
        let mut w = DeadLetterWriter::open(dir.path(), 64 * 1024).unwrap();
        for i in 0..200 {
            w.append(&record(i)).unwrap();
        }
        assert!(dir.path().join("notes.txt").exists());
    }
}
