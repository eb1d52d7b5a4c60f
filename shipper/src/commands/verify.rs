//! `shipper verify`: proves delivery, line by line.
//!
//! A document's `_id` is the identity of its file and the offset of its line
//! ([`crate::encode::doc_id`]), so the `_id` of every line a checkpoint says is delivered can
//! be rebuilt from the file itself. For each file the checkpoints know and that is still on
//! disk (the same file: same device and inode), the lines before the checkpoint are read
//! and encoded by the shipper's own [`Enricher`] (so the index and `_id` are exactly the ones
//! shipped), and looked up in bounded batches with the replay window's look-up
//! ([`crate::output::replay::already_stored`]: an `ids` query over the data streams, which
//! searches every backing index, then the failure stores). Lines found nowhere are reported
//! as ranges; `--repair` ships exactly those again as `create`s with their original `_id`s.
//! A line whose document is in the dead-letter file (and not replayed) was delivered there:
//! it is counted apart, not as missing (`shipper dead-letters replay` is for those).
//!
//! Nothing in the data directory is written: a running shipper keeps owning it.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use reqwest::Method;

use super::resend::{self, Outcome, Resend};
use super::{EXIT_ELASTICSEARCH, EXIT_SETTINGS};
use crate::config::{Cli, Settings};
use crate::encode::{Encoded, Enricher, SourceFile};
use crate::input::checkpoint::{self, FileCheckpoint};
use crate::input::compressed::{is_compressed, GzStream};
use crate::input::line_reader::{Line, LineReader, Source};
use crate::output::client::{EsClient, MAX_ANSWER_BYTES};
use crate::output::dead_letter::action_target;
use crate::output::health::{check_root, RootCheck};
use crate::output::replay::{already_stored, supports_failure_store, Candidate, IDS_PER_SEARCH};

/// Exit status when lines are missing (and were not all repaired).
const EXIT_MISSING: u8 = 1;

/// Options of `shipper verify`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 every checked line is in Elasticsearch (or was \
    repaired); 1 lines are missing; 2 a setting is wrong or the data directory holds no \
    readable checkpoints; 3 Elasticsearch could not answer.\nSettings are read as by the \
    shipper itself; point SHIPPER_DATA_DIR at the running shipper's data directory."
)]
pub struct VerifyArgs {
    /// Ship the missing lines again (as `create` with their original `_id`s: a line that is
    /// there after all is answered 409 and never stored twice).
    #[arg(long)]
    repair: bool,
}

/// A run of consecutive missing lines of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MissingRange {
    first_line: u64,
    last_line: u64,
    /// Byte offsets: the first line's start, the last line's end.
    start: u64,
    end: u64,
}

/// What was found for one file.
#[derive(Debug, Default)]
struct FileReport {
    lines: u64,
    documents: u64,
    missing: Vec<MissingRange>,
    missing_count: u64,
    /// Not in Elasticsearch but in the dead-letter file: delivered there, not missing.
    dead_lettered: u64,
    created: u64,
    already_there: u64,
    refused: Vec<String>,
}

/// One line's document, as the shipper sent it.
struct Entry {
    line: u64,
    offset: u64,
    end: u64,
    index: String,
    id: String,
    source: Vec<u8>,
}

/// Runs `shipper verify`.
pub fn run(cli: &Cli, args: &VerifyArgs) -> ExitCode {
    let settings = match Settings::load_read_only(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shipper verify: {e}");
            return ExitCode::from(EXIT_SETTINGS);
        }
    };
    if !settings.data_dir.is_dir() {
        eprintln!(
            "shipper verify: the data directory {} does not exist (SHIPPER_DATA_DIR): no checkpoint to verify",
            settings.data_dir.display()
        );
        return ExitCode::from(EXIT_SETTINGS);
    }
    let checkpoints = match checkpoint::peek(&settings.data_dir.join("checkpoints")) {
        Ok(Some(files)) => files,
        Ok(None) => {
            println!(
                "no checkpoint in {}: nothing was delivered yet, nothing to verify",
                settings.data_dir.display()
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("shipper verify: {e}");
            return ExitCode::from(EXIT_SETTINGS);
        }
    };
    let result = super::runtime()
        .and_then(|rt| rt.block_on(verify_all(&settings, &checkpoints, args.repair)));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_MISSING),
        Err(e) => {
            eprintln!("shipper verify: {e:#}");
            ExitCode::from(EXIT_ELASTICSEARCH)
        }
    }
}

/// Verifies every file; true when nothing is missing any more.
async fn verify_all(
    settings: &Settings,
    checkpoints: &[FileCheckpoint],
    repair: bool,
) -> anyhow::Result<bool> {
    let client = EsClient::new(&settings.output)?;
    let reply = client
        .send(Method::GET, "/", None, MAX_ANSWER_BYTES)
        .await?;
    let version = match check_root(&reply) {
        RootCheck::Ready(info) => info.version,
        RootCheck::NotYet(why) => anyhow::bail!("{} is not ready: {why}", reply.node.shown),
        RootCheck::Fatal(e) => return Err(e.into()),
    };
    let failure_store = supports_failure_store(&version);
    let dead_letters = super::dead_letters::unreplayed_ids(settings)
        .map_err(|e| anyhow::anyhow!("reading the dead-letter files: {e}"))?;
    let mut all_there = true;
    let (mut files, mut lines, mut missing) = (0u64, 0u64, 0u64);
    for cp in checkpoints {
        if cp.offset == 0 {
            continue;
        }
        if let Some(why) = not_checkable(cp) {
            println!("{}: skipped: {why}", cp.path.display());
            continue;
        }
        let report =
            verify_file(settings, &client, cp, failure_store, &dead_letters, repair).await?;
        files += 1;
        lines += report.lines;
        missing += report.missing_count;
        print_report(&cp.path, &report, repair);
        let repaired = report.created + report.already_there;
        if report.missing_count > 0 && (!repair || repaired < report.missing_count) {
            all_there = false;
        }
    }
    println!(
        "verified {files} file(s), {lines} line(s) before their checkpoints: {}",
        match (missing, repair) {
            (0, _) => "nothing missing".to_string(),
            (n, false) => format!("{n} missing (run with --repair to ship them again)"),
            (n, true) => format!("{n} missing, shipped again"),
        }
    );
    Ok(all_there)
}

/// Why a checkpoint's file cannot be read back, if it cannot.
fn not_checkable(cp: &FileCheckpoint) -> Option<String> {
    match std::fs::metadata(&cp.path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no longer on disk".into()),
        Err(e) => Some(format!("cannot read it: {e}")),
        Ok(meta) if meta.dev() != cp.dev || meta.ino() != cp.ino => {
            Some("the path now holds another file (rotated since the checkpoint was saved)".into())
        }
        Ok(_) => None,
    }
}

fn print_report(path: &Path, r: &FileReport, repair: bool) {
    let mut line = format!(
        "{}: {} line(s), {} document(s) checked, ",
        path.display(),
        r.lines,
        r.documents
    );
    if r.missing.is_empty() {
        line.push_str("none missing");
    } else {
        let ranges: Vec<String> = r
            .missing
            .iter()
            .map(|m| {
                let lines = if m.first_line == m.last_line {
                    format!("line {}", m.first_line)
                } else {
                    format!("lines {}-{}", m.first_line, m.last_line)
                };
                format!("{lines} (bytes {}-{})", m.start, m.end)
            })
            .collect();
        line.push_str(&format!(
            "{} missing: {}",
            r.missing_count,
            ranges.join(", ")
        ));
    }
    if r.dead_lettered > 0 {
        line.push_str(&format!(
            "; {} in the dead-letter file (see `shipper dead-letters`)",
            r.dead_lettered
        ));
    }
    println!("{line}");
    if repair && r.missing_count > 0 {
        println!(
            "  repaired: {} stored again, {} already there, {} refused",
            r.created,
            r.already_there,
            r.refused.len()
        );
        for why in &r.refused {
            println!("  refused: {why}");
        }
    }
}

/// Reads the lines of `cp`'s file before its checkpoint and looks their documents up.
async fn verify_file(
    settings: &Settings,
    client: &EsClient,
    cp: &FileCheckpoint,
    failure_store: bool,
    dead_letters: &HashSet<String>,
    repair: bool,
) -> anyhow::Result<FileReport> {
    let path: PathBuf = cp.path.clone();
    let file =
        File::open(&path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let source = if is_compressed(&path) {
        Source::Compressed(Box::new(GzStream::new(file, &path)))
    } else {
        Source::from(file)
    };
    let mut reader = LineReader::new(source, 0, settings.input.max_line_bytes)
        .with_format(settings.input.format);
    let encode = &settings.encode;
    let mut lines = Collector {
        described: SourceFile::new(cp.key, &path),
        enricher: Enricher::new(&encode.host_name, &encode.agent_name, &encode.namespace),
        ingested: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        checkpoint: cp.offset,
        lines: 0,
        chunk: Vec::new(),
        body: Vec::new(),
    };
    let mut report = FileReport::default();
    let mut open: Option<MissingRange> = None;
    let mut done = false;
    while !done {
        let read = reader
            .next_line()
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        match read {
            Some(line) => done = !lines.take(&line),
            None => {
                done = true;
                // A finished file's last line, shipped without its newline.
                if let Some(line) = reader.take_unterminated() {
                    lines.take(&line);
                }
            }
        }
        if lines.chunk.len() >= IDS_PER_SEARCH || (done && !lines.chunk.is_empty()) {
            let entries = std::mem::take(&mut lines.chunk);
            let lookup = Lookup {
                failure_store,
                dead_letters,
            };
            check_chunk(client, entries, &lookup, repair, &mut report, &mut open).await?;
        }
    }
    report.lines = lines.lines;
    if let Some(range) = open.take() {
        report.missing.push(range);
    }
    Ok(report)
}

/// Turns the lines before a checkpoint into the documents the shipper made of them.
struct Collector {
    described: SourceFile,
    enricher: Enricher,
    ingested: String,
    checkpoint: u64,
    lines: u64,
    chunk: Vec<Entry>,
    body: Vec<u8>,
}

impl Collector {
    /// Takes one line; false when it lies past the checkpoint (not delivered yet: stop).
    fn take(&mut self, line: &Line<'_>) -> bool {
        if line.end > self.checkpoint {
            return false;
        }
        self.lines += 1;
        self.body.clear();
        if let Encoded::Document { source_start, .. } =
            self.enricher
                .encode(line, &self.described, &self.ingested, &mut self.body)
        {
            let (index, id) = action_target(&self.body[..source_start]);
            self.chunk.push(Entry {
                line: self.lines,
                offset: line.offset,
                end: line.end,
                index,
                id,
                source: self.body[source_start..].to_vec(),
            });
        }
        true
    }
}

/// Where a document counts as delivered besides the data streams.
struct Lookup<'a> {
    /// Search the failure stores too.
    failure_store: bool,
    /// The `_id`s in the dead-letter files.
    dead_letters: &'a HashSet<String>,
}

/// Looks one bounded batch up; extends the missing ranges; repairs if asked.
async fn check_chunk(
    client: &EsClient,
    entries: Vec<Entry>,
    lookup: &Lookup<'_>,
    repair: bool,
    report: &mut FileReport,
    open: &mut Option<MissingRange>,
) -> anyhow::Result<()> {
    let candidates: Vec<Candidate> = entries
        .iter()
        .map(|e| Candidate {
            stream: e.index.clone(),
            id: e.id.clone(),
        })
        .collect();
    let found = already_stored(client, &candidates, lookup.failure_store)
        .await
        .map_err(|e| anyhow::anyhow!("looking the documents up: {e}"))?;
    report.documents += entries.len() as u64;
    let mut lost = Vec::new();
    for entry in entries {
        let dead_lettered = !found.contains(&entry.id) && lookup.dead_letters.contains(&entry.id);
        if dead_lettered {
            report.dead_lettered += 1;
        }
        if found.contains(&entry.id) || dead_lettered {
            if let Some(range) = open.take() {
                report.missing.push(range);
            }
            continue;
        }
        report.missing_count += 1;
        match open {
            Some(range) => {
                range.last_line = entry.line;
                range.end = entry.end;
            }
            None => {
                *open = Some(MissingRange {
                    first_line: entry.line,
                    last_line: entry.line,
                    start: entry.offset,
                    end: entry.end,
                })
            }
        }
        lost.push(Resend {
            index: entry.index,
            id: entry.id,
            source: entry.source,
        });
    }
    if repair && !lost.is_empty() {
        for (doc, outcome) in lost.iter().zip(resend::send(client, &lost).await?) {
            match outcome {
                Outcome::Created => report.created += 1,
                Outcome::AlreadyThere => report.already_there += 1,
                Outcome::Refused { status, reason } => report.refused.push(format!(
                    "{} in {}: HTTP {status} {reason}",
                    doc.id, doc.index
                )),
            }
        }
    }
    Ok(())
}
