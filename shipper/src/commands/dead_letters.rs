//! `shipper dead-letters list | show | replay`: the documents Elasticsearch refused for
//! good, read from the dead-letter files ([`crate::output::dead_letter`]), and sent again
//! once the cause (a mapping, a pipeline, a limit) is fixed.
//!
//! A replay sends each record's document as a `create` with the `_id` it was first sent
//! with, to the index it was meant for: a document that is stored after all is answered
//! 409, so a replay never duplicates. The segment files are never rewritten (the running
//! shipper appends to them); a record sent successfully is marked in a replay log beside
//! them, `dead-letter-replays.ndjson` in the data directory, one JSON line per record
//! (`at`, `index`, `id`, `outcome`), and later replays skip it.

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::resend::{self, Outcome, Resend};
use super::{EXIT_ELASTICSEARCH, EXIT_SETTINGS};
use crate::config::{Cli, Settings};
use crate::output::client::{EsClient, MAX_ANSWER_BYTES};
use crate::output::dead_letter::{segment_files, ReadRecord};
use crate::output::health::{check_root, RootCheck};

/// The replay log, in the data directory.
const REPLAY_LOG: &str = "dead-letter-replays.ndjson";
/// Records sent per `_bulk` request by a replay.
const REPLAY_BATCH: usize = 500;
/// Exit status when a record could not be read or a replayed one was refused again.
const EXIT_PARTLY: u8 = 1;

/// `shipper dead-letters`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 done; 1 a record could not be read, or a replayed \
    document was refused again (each is named); 2 a setting is wrong or there is no data \
    directory; 3 Elasticsearch could not answer (replay)."
)]
pub struct DeadLettersArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum Action {
    /// Counts per index, status and error type, with an example reason.
    List(Filters),
    /// Prints the matching records, one JSON object a line (with `file`, `line` and
    /// `replayed` added).
    Show {
        #[command(flatten)]
        filters: Filters,
        /// Print at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Sends the matching records not replayed yet, with their original `_id`s, and
    /// marks those Elasticsearch now holds.
    Replay(Filters),
}

/// Which records a command is about.
#[derive(Debug, Clone, Default, clap::Args)]
struct Filters {
    /// Only records for this index or data stream (`*` wildcards allowed).
    #[arg(long)]
    index: Option<String>,
    /// Only records refused with this HTTP status.
    #[arg(long)]
    status: Option<u16>,
    /// Only records whose error type or reason contains this text.
    #[arg(long)]
    reason: Option<String>,
    /// Include records already replayed (list and show; a replay always skips them).
    #[arg(long)]
    all: bool,
}

impl Filters {
    fn matches(&self, r: &ReadRecord) -> bool {
        self.index
            .as_deref()
            .is_none_or(|p| glob::Pattern::new(p).map_or(p == r.index, |g| g.matches(&r.index)))
            && self.status.is_none_or(|s| s == r.status)
            && self
                .reason
                .as_deref()
                .is_none_or(|t| r.error.kind.contains(t) || r.error.reason.contains(t))
    }
}

/// One record with where it was found.
struct Found {
    file: PathBuf,
    line: usize,
    record: ReadRecord,
}

/// Everything in the dead-letter files, and what could not be read.
struct Letters {
    found: Vec<Found>,
    unreadable: usize,
    files: usize,
}

/// Runs `shipper dead-letters ...`.
pub fn run(cli: &Cli, args: &DeadLettersArgs) -> ExitCode {
    let settings = match Settings::load_read_only(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shipper dead-letters: {e}");
            return ExitCode::from(EXIT_SETTINGS);
        }
    };
    if !settings.data_dir.is_dir() {
        eprintln!(
            "shipper dead-letters: the data directory {} does not exist (SHIPPER_DATA_DIR)",
            settings.data_dir.display()
        );
        return ExitCode::from(EXIT_SETTINGS);
    }
    let letters = match read_all(&settings.output.dead_letter_dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("shipper dead-letters: {e}");
            return ExitCode::from(EXIT_SETTINGS);
        }
    };
    let log = settings.data_dir.join(REPLAY_LOG);
    let replayed = match read_replayed(&log) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shipper dead-letters: {e}");
            return ExitCode::from(EXIT_SETTINGS);
        }
    };
    let mut code = if letters.unreadable > 0 {
        EXIT_PARTLY
    } else {
        0
    };
    match &args.action {
        Action::List(filters) => list(&letters, &replayed, filters),
        Action::Show { filters, limit } => show(&letters, &replayed, filters, *limit),
        Action::Replay(filters) => {
            let result = super::runtime()
                .and_then(|rt| rt.block_on(replay(&settings, &letters, &replayed, filters, &log)));
            match result {
                Ok(true) => {}
                Ok(false) => code = EXIT_PARTLY,
                Err(e) => {
                    eprintln!("shipper dead-letters replay: {e:#}");
                    return ExitCode::from(EXIT_ELASTICSEARCH);
                }
            }
        }
    }
    ExitCode::from(code)
}

/// The `_id`s of the documents in the dead-letter files that were not replayed: delivered
/// to the dead-letter file rather than to Elasticsearch, so not missing (`shipper verify`).
pub(super) fn unreplayed_ids(settings: &Settings) -> io::Result<HashSet<String>> {
    let letters = read_all(&settings.output.dead_letter_dir)?;
    let replayed = read_replayed(&settings.data_dir.join(REPLAY_LOG))?;
    Ok(letters
        .found
        .into_iter()
        .filter(|f| !is_replayed(&replayed, &f.record))
        .map(|f| f.record.id)
        .collect())
}

/// Reads every segment; a line that is not a record is named on stderr and counted.
fn read_all(dir: &Path) -> io::Result<Letters> {
    let files = segment_files(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot list {}: {e}", dir.display())))?;
    let mut letters = Letters {
        found: Vec::new(),
        unreadable: 0,
        files: files.len(),
    };
    for file in files {
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            // Evicted by the running shipper between the listing and the read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot read {}: {e}", file.display()),
                ))
            }
        };
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<ReadRecord>(line) {
                Ok(record) => letters.found.push(Found {
                    file: file.clone(),
                    line: i + 1,
                    record,
                }),
                Err(e) => {
                    letters.unreadable += 1;
                    eprintln!(
                        "{} line {}: not a dead-letter record ({e}); left as it is",
                        file.display(),
                        i + 1
                    );
                }
            }
        }
    }
    Ok(letters)
}

/// The `(index, id)` of every record the replay log says is stored now.
fn read_replayed(log: &Path) -> io::Result<HashSet<(String, String)>> {
    #[derive(Deserialize)]
    struct Entry {
        index: String,
        id: String,
    }
    let text = match std::fs::read_to_string(log) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", log.display()),
            ))
        }
    };
    // A torn last line (a replay killed mid-write) marks nothing: that record is sent
    // again next time, which a create makes harmless.
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
        .map(|e| (e.index, e.id))
        .collect())
}

fn is_replayed(replayed: &HashSet<(String, String)>, r: &ReadRecord) -> bool {
    replayed.contains(&(r.index.clone(), r.id.clone()))
}

fn list(letters: &Letters, replayed: &HashSet<(String, String)>, filters: &Filters) {
    #[derive(Default)]
    struct Group {
        records: usize,
        replayed: usize,
        example: String,
    }
    let mut groups: BTreeMap<(&str, u16, &str), Group> = BTreeMap::new();
    let (mut total, mut total_replayed) = (0, 0);
    for f in &letters.found {
        let r = &f.record;
        let done = is_replayed(replayed, r);
        if !filters.matches(r) || (done && !filters.all) {
            continue;
        }
        let g = groups
            .entry((r.index.as_str(), r.status, r.error.kind.as_str()))
            .or_default();
        g.records += 1;
        total += 1;
        if done {
            g.replayed += 1;
            total_replayed += 1;
        }
        if g.example.is_empty() {
            g.example = r.error.reason.chars().take(100).collect();
        }
    }
    println!(
        "{:<32} {:>6} {:<32} {:>8} {:>8}  EXAMPLE REASON",
        "INDEX", "STATUS", "ERROR TYPE", "RECORDS", "REPLAYED"
    );
    for ((index, status, kind), g) in &groups {
        println!(
            "{index:<32} {status:>6} {kind:<32} {:>8} {:>8}  {}",
            g.records, g.replayed, g.example
        );
    }
    println!(
        "{total} record(s) in {} file(s), {total_replayed} replayed{}",
        letters.files,
        if filters.all {
            ""
        } else {
            " (--all shows the replayed ones too)"
        }
    );
}

fn show(letters: &Letters, replayed: &HashSet<(String, String)>, filters: &Filters, limit: usize) {
    let mut shown = 0;
    for f in &letters.found {
        let r = &f.record;
        let done = is_replayed(replayed, r);
        if !filters.matches(r) || (done && !filters.all) {
            continue;
        }
        if shown == limit {
            eprintln!("(more records match: raise --limit)");
            break;
        }
        shown += 1;
        let out = json!({
            "file": f.file.display().to_string(),
            "line": f.line,
            "replayed": done,
            "@timestamp": r.timestamp,
            "index": r.index,
            "id": r.id,
            "status": r.status,
            "error": {"type": r.error.kind, "reason": r.error.reason},
            "document": r.document,
        });
        println!("{out}");
    }
}

/// Replays the matching records not replayed yet; true when none was refused again.
async fn replay(
    settings: &Settings,
    letters: &Letters,
    replayed: &HashSet<(String, String)>,
    filters: &Filters,
    log: &Path,
) -> anyhow::Result<bool> {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let todo: Vec<&ReadRecord> = letters
        .found
        .iter()
        .map(|f| &f.record)
        .filter(|r| filters.matches(r) && !is_replayed(replayed, r))
        // The same document dead-lettered twice is sent once.
        .filter(|r| seen.insert((r.index.clone(), r.id.clone())))
        .collect();
    if todo.is_empty() {
        println!("nothing to replay: no matching record that is not replayed yet");
        return Ok(true);
    }
    let client = EsClient::new(&settings.output)?;
    let reply = client
        .send(Method::GET, "/", None, MAX_ANSWER_BYTES)
        .await?;
    match check_root(&reply) {
        RootCheck::Ready(_) => {}
        RootCheck::NotYet(why) => anyhow::bail!("{} is not ready: {why}", reply.node.shown),
        RootCheck::Fatal(e) => return Err(e.into()),
    }
    let mut marks = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| anyhow::anyhow!("cannot open the replay log {}: {e}", log.display()))?;
    let (mut created, mut already, mut refused) = (0usize, 0usize, 0usize);
    for chunk in todo.chunks(REPLAY_BATCH) {
        let docs: Vec<Resend> = chunk
            .iter()
            .map(|r| Resend {
                index: r.index.clone(),
                id: r.id.clone(),
                source: r.document.get().as_bytes().to_vec(),
            })
            .collect();
        let outcomes = resend::send(&client, &docs).await?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut lines = Vec::new();
        for (doc, outcome) in docs.iter().zip(outcomes) {
            let word = match outcome {
                Outcome::Created => {
                    created += 1;
                    "created"
                }
                Outcome::AlreadyThere => {
                    already += 1;
                    "already_there"
                }
                Outcome::Refused { status, reason } => {
                    refused += 1;
                    println!(
                        "refused again: {} in {}: HTTP {status} {reason}",
                        doc.id, doc.index
                    );
                    continue;
                }
            };
            let mark = json!({"at": now, "index": doc.index, "id": doc.id, "outcome": word});
            lines.extend_from_slice(mark.to_string().as_bytes());
            lines.push(b'\n');
        }
        marks
            .write_all(&lines)
            .and_then(|_| marks.sync_data())
            .map_err(|e| anyhow::anyhow!("cannot write the replay log {}: {e}", log.display()))?;
    }
    println!(
        "replayed {} record(s): {created} stored, {already} already there, {refused} refused again",
        todo.len()
    );
    Ok(refused == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(index: &str, status: u16, kind: &str, reason: &str) -> ReadRecord {
        serde_json::from_value(json!({
            "@timestamp": "2026-12-02T10:00:00.000Z", "index": index, "id": "k1", "status": status,
            "error": {"type": kind, "reason": reason}, "document": {"message": "m"},
        }))
        .unwrap()
    }

    #[test]
    fn filters_match_index_globs_status_and_reason_text() {
        let r = record(
            "logs-payment-default",
            400,
            "document_parsing_exception",
            "failed to parse field [http.response.status_code]",
        );
        assert!(Filters::default().matches(&r));
        let f = |index: Option<&str>, status: Option<u16>, reason: Option<&str>| Filters {
            index: index.map(String::from),
            status,
            reason: reason.map(String::from),
            all: false,
        };
        assert!(f(Some("logs-payment-*"), None, None).matches(&r));
        assert!(f(Some("logs-payment-default"), Some(400), Some("status_code")).matches(&r));
        assert!(f(None, None, Some("parsing")).matches(&r));
        assert!(!f(Some("logs-reservation-*"), None, None).matches(&r));
        assert!(!f(None, Some(413), None).matches(&r));
        assert!(!f(None, None, Some("too large")).matches(&r));
    }

    #[test]
    fn a_torn_replay_log_line_marks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(REPLAY_LOG);
        std::fs::write(
            &log,
            "{\"at\":\"t\",\"index\":\"a\",\"id\":\"1\",\"outcome\":\"created\"}\n{\"at\":\"t\",\"ind",
        )
        .unwrap();
        let marked = read_replayed(&log).unwrap();
        assert_eq!(marked.len(), 1);
        assert!(marked.contains(&("a".to_string(), "1".to_string())));
        assert!(read_replayed(&dir.path().join("none")).unwrap().is_empty());
    }
}
