//! One progress line every interval: what a person following the logs wants to know.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::input::file_server::InputStats;
use crate::output::OutputStats;

/// Logs a summary every `every` until `shutdown`.
pub(crate) async fn run(
    every: Duration,
    input: Arc<InputStats>,
    output: Arc<OutputStats>,
    shutdown: CancellationToken,
) {
    if every.is_zero() {
        return;
    }
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    let mut last = Totals::read(&input, &output);
    let mut last_at = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = Totals::read(&input, &output);
        let secs = last_at.elapsed().as_secs_f64().max(0.001);
        last_at = Instant::now();
        let shipped = (now.indexed + now.duplicates + now.failure_store)
            - (last.indexed + last.duplicates + last.failure_store);
        tracing::info!(
            docs_per_sec = format_args!("{:.0}", shipped as f64 / secs),
            lines_per_sec = format_args!("{:.0}", (now.lines - last.lines) as f64 / secs),
            indexed = now.indexed,
            duplicates = now.duplicates,
            failure_store = now.failure_store,
            dead_letters = now.dead_letters,
            retries = now.retries,
            lag_bytes = input.bytes_behind.load(Ordering::Relaxed),
            lag_ms = input.lag_ms.load(Ordering::Relaxed),
            files = input.files_open.load(Ordering::Relaxed),
            paused = input.paused.load(Ordering::Relaxed),
            elasticsearch_up = output.elasticsearch_up.load(Ordering::Relaxed),
            "progress: {:.0} docs/s, {} bytes behind, oldest unacknowledged line {} ms, {} dead letters, {} retries",
            shipped as f64 / secs,
            input.bytes_behind.load(Ordering::Relaxed),
            input.lag_ms.load(Ordering::Relaxed),
            now.dead_letters,
            now.retries,
        );
        last = now;
    }
}

struct Totals {
    lines: u64,
    indexed: u64,
    duplicates: u64,
    failure_store: u64,
    dead_letters: u64,
    retries: u64,
}

impl Totals {
    fn read(input: &InputStats, output: &OutputStats) -> Totals {
        Totals {
            lines: input.lines_read.load(Ordering::Relaxed),
            indexed: output.documents_indexed.load(Ordering::Relaxed),
            duplicates: output.duplicates.load(Ordering::Relaxed),
            failure_store: output.failure_store.load(Ordering::Relaxed),
            dead_letters: output.dead_letters.load(Ordering::Relaxed),
            retries: output.item_retries.load(Ordering::Relaxed)
                + output.request_retries.load(Ordering::Relaxed),
        }
    }
}
