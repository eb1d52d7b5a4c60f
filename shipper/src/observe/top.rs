//! `shipper top`: a live view of a running shipper, read from its `/metrics`.
//!
//! What an operator asks first, on one screen: is Elasticsearch up, is reading flowing or
//! paused, how many lines per second go in and documents come out, what is retried or
//! rejected, how long bulk requests take, and which file is behind by how much. Rates are
//! the difference of two scrapes; nothing is kept in the shipper for this view.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use prometheus_parse::{Scrape, Value};

/// One scrape of `/metrics`, reduced to what the view shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Unlabelled counters and gauges, and labelled ones summed over their labels.
    pub(crate) totals: BTreeMap<String, f64>,
    /// Per file: (bytes behind, seconds since the oldest unacknowledged line was read).
    pub(crate) files: BTreeMap<String, (f64, f64)>,
    /// `shipper_bulk_duration_seconds` buckets: (upper bound, cumulative count).
    pub(crate) bulk_buckets: Vec<(f64, f64)>,
}

impl Snapshot {
    /// Parses Prometheus text exposition (what `/metrics` serves).
    pub(crate) fn parse(text: &str) -> anyhow::Result<Snapshot> {
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .context("the /metrics answer is not Prometheus text")?;
        let mut snap = Snapshot::default();
        for sample in scrape.samples {
            match sample.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
                    if let Some(path) = sample.labels.get("path") {
                        let entry = snap.files.entry(path.to_string()).or_default();
                        match sample.metric.as_str() {
                            "shipper_file_bytes_behind" => entry.0 = v,
                            "shipper_file_lag_seconds" => entry.1 = v,
                            _ => {}
                        }
                    }
                    *snap.totals.entry(sample.metric).or_default() += v;
                }
                Value::Histogram(buckets) if sample.metric == "shipper_bulk_duration_seconds" => {
                    for b in buckets {
                        match snap
                            .bulk_buckets
                            .iter_mut()
                            .find(|(le, _)| *le == b.less_than)
                        {
                            Some(slot) => slot.1 += b.count,
                            None => snap.bulk_buckets.push((b.less_than, b.count)),
                        }
                    }
                    snap.bulk_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                }
                _ => {}
            }
        }
        Ok(snap)
    }

    fn get(&self, name: &str) -> f64 {
        self.totals.get(name).copied().unwrap_or(0.0)
    }
}

/// Upper bound of the bucket holding quantile `q` of the requests between two scrapes.
fn quantile(prev: &[(f64, f64)], cur: &[(f64, f64)], q: f64) -> Option<f64> {
    let count = |buckets: &[(f64, f64)], le: f64| {
        buckets
            .iter()
            .find(|(b, _)| *b == le)
            .map_or(0.0, |(_, c)| *c)
    };
    let deltas: Vec<(f64, f64)> = cur
        .iter()
        .map(|(le, c)| (*le, c - count(prev, *le)))
        .collect();
    let total = deltas.last().map(|(_, c)| *c)?;
    if total <= 0.0 {
        return None;
    }
    deltas
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map(|(le, _)| *le)
}

fn bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn latency(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() => format!("<= {:.0} ms", s * 1000.0),
        Some(_) => "> 30 s".to_string(),
        None => "-".to_string(),
    }
}

/// The screen for the interval between `prev` and `cur`, `secs` apart.
pub(crate) fn render(source: &str, prev: &Snapshot, cur: &Snapshot, secs: f64) -> String {
    let secs = secs.max(0.001);
    let rate = |name: &str| ((cur.get(name) - prev.get(name)) / secs).max(0.0);
    let mut out = String::new();
    let es = if cur.get("shipper_elasticsearch_up") >= 1.0 {
        "up"
    } else {
        "DOWN"
    };
    let reading = if cur.get("shipper_reading_paused") >= 1.0 {
        "PAUSED (waiting for Elasticsearch)"
    } else {
        "flowing"
    };
    let _ = writeln!(
        out,
        "didban shipper  {source}   elasticsearch: {es}   reading: {reading}"
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<24}{:>14}{:>16}", "", "per second", "total");
    let rows = [
        ("lines read", "shipper_lines_read_total"),
        ("bytes read", "shipper_bytes_read_total"),
        ("documents indexed", "shipper_documents_indexed_total"),
        ("duplicates (409)", "shipper_documents_duplicate_total"),
        ("failure store", "shipper_documents_failure_store_total"),
        ("dead letters", "shipper_documents_dead_lettered_total"),
        ("item retries", "shipper_item_retries_total"),
        ("request retries", "shipper_bulk_request_retries_total"),
        ("bulk requests", "shipper_bulk_requests_total"),
    ];
    for (label, name) in rows {
        let _ = writeln!(
            out,
            "{label:<24}{:>14.1}{:>16.0}",
            rate(name),
            cur.get(name)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "bulk latency p50 {}  p99 {}   in flight {:.0}   memory budget in use {}",
        latency(quantile(&prev.bulk_buckets, &cur.bulk_buckets, 0.5)),
        latency(quantile(&prev.bulk_buckets, &cur.bulk_buckets, 0.99)),
        cur.get("shipper_bulk_in_flight"),
        bytes(cur.get("shipper_read_budget_used_bytes")),
    );
    let deleted = cur.get("shipper_deleted_files_open");
    if deleted > 0.0 {
        let _ = writeln!(
            out,
            "deleted files still open (unshipped lines hold their disk space): {deleted:.0}"
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<56}{:>14}{:>18}",
        "file", "bytes behind", "oldest unacked"
    );
    let mut files: Vec<(&String, &(f64, f64))> = cur
        .files
        .iter()
        .filter(|(_, (behind, lag))| *behind > 0.0 || *lag > 0.0)
        .collect();
    files.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    if files.is_empty() {
        let _ = writeln!(out, "(every open file is fully shipped)");
    }
    for (path, (behind, lag)) in files.into_iter().take(20) {
        let _ = writeln!(out, "{path:<56}{:>14}{:>16.1} s", bytes(*behind), lag);
    }
    out
}

async fn scrape(client: &reqwest::Client, url: &str) -> anyhow::Result<Snapshot> {
    let text = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("cannot read {url}"))?
        .text()
        .await
        .with_context(|| format!("cannot read {url}"))?;
    Snapshot::parse(&text)
}

/// Runs the view against the shipper whose metrics are at `addr` (`host:port` or a URL):
/// refreshes every `interval` until interrupted, or prints one screen when `once`.
pub async fn run(addr: &str, interval: Duration, once: bool) -> anyhow::Result<()> {
    let base = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{addr}")
    };
    let url = format!("{base}/metrics");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut prev = scrape(&client, &url).await?;
    let mut prev_at = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let cur = scrape(&client, &url).await?;
        let screen = render(&base, &prev, &cur, prev_at.elapsed().as_secs_f64());
        if once {
            print!("{screen}");
            return Ok(());
        }
        // Clear the terminal and draw from the top left.
        print!("\x1b[2J\x1b[H{screen}");
        prev = cur;
        prev_at = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = r#"# TYPE shipper_lines_read_total counter
shipper_lines_read_total 1000
# TYPE shipper_documents_indexed_total counter
shipper_documents_indexed_total 900
# TYPE shipper_item_retries_total counter
shipper_item_retries_total{reason="429"} 2
shipper_item_retries_total{reason="503"} 1
# TYPE shipper_elasticsearch_up gauge
shipper_elasticsearch_up 1
# TYPE shipper_file_bytes_behind gauge
shipper_file_bytes_behind{path="/l/payment.log"} 2048
shipper_file_bytes_behind{path="/l/loan-resource.log"} 0
# TYPE shipper_file_lag_seconds gauge
shipper_file_lag_seconds{path="/l/payment.log"} 0.5
# TYPE shipper_bulk_duration_seconds histogram
shipper_bulk_duration_seconds_bucket{le="0.01"} 5
shipper_bulk_duration_seconds_bucket{le="0.1"} 9
shipper_bulk_duration_seconds_bucket{le="+Inf"} 10
shipper_bulk_duration_seconds_sum 0.5
shipper_bulk_duration_seconds_count 10
"#;

    fn second() -> String {
        FIRST
            .replace(
                "shipper_lines_read_total 1000",
                "shipper_lines_read_total 3000",
            )
            .replace(
                "shipper_documents_indexed_total 900",
                "shipper_documents_indexed_total 2900",
            )
            .replace("{le=\"0.1\"} 9", "{le=\"0.1\"} 19")
            .replace("{le=\"+Inf\"} 10", "{le=\"+Inf\"} 20")
    }

    #[test]
    fn labelled_series_are_summed_and_files_kept_apart() {
        let s = Snapshot::parse(FIRST).unwrap();
        assert_eq!(s.get("shipper_item_retries_total"), 3.0);
        assert_eq!(s.files["/l/payment.log"], (2048.0, 0.5));
        assert_eq!(s.bulk_buckets.len(), 3);
    }

    #[test]
    fn the_screen_shows_rates_latency_and_files_behind() {
        let a = Snapshot::parse(FIRST).unwrap();
        let b = Snapshot::parse(&second()).unwrap();
        let screen = render("http://x:9600", &a, &b, 2.0);
        assert!(screen.contains("elasticsearch: up"), "{screen}");
        assert!(screen.contains("reading: flowing"));
        let lines_row = screen
            .lines()
            .find(|l| l.starts_with("lines read"))
            .unwrap();
        assert!(
            lines_row.contains("1000.0") && lines_row.contains("3000"),
            "{lines_row}"
        );
        // The ten requests of the interval all fell between 10 and 100 ms.
        assert!(screen.contains("p50 <= 100 ms"), "{screen}");
        assert!(screen.contains("/l/payment.log"));
        assert!(screen.contains("2.0 KiB"));
        assert!(
            !screen.contains("/l/loan-resource.log"),
            "a file fully shipped is not listed"
        );
    }

    #[test]
    fn an_outage_shows_plainly() {
        let text = FIRST.replace("shipper_elasticsearch_up 1", "shipper_elasticsearch_up 0");
        let text = format!("{text}# TYPE shipper_reading_paused gauge\nshipper_reading_paused 1\n");
        let s = Snapshot::parse(&text).unwrap();
        let screen = render("x", &s, &s, 1.0);
        assert!(screen.contains("elasticsearch: DOWN"));
        assert!(screen.contains("PAUSED"));
    }
}
