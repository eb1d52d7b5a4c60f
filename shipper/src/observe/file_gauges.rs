//! The per-file series of `/metrics`: `shipper_file_bytes_behind` and
//! `shipper_file_lag_seconds`, one row per open file, gone when the file is closed.
//!
//! Kept apart from the `metrics` registry on purpose: a labelled series there lives as long
//! as the process (the registry cannot remove one), so every file ever read would stay in
//! every scrape, and each series costs a registry entry (a few hundred bytes, 2 per file:
//! megabytes at 10,000 files). Here a row is the file's path and two numbers, removed
//! with the file, and rendered in Prometheus' text format next to the registry's output.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(crate) struct FileGauges {
    rows: Mutex<HashMap<u32, Row>>,
}

#[derive(Debug)]
struct Row {
    path: String,
    behind: u64,
    lag_ms: u64,
}

impl FileGauges {
    /// The figures of the file in `slot`, now at `path`.
    pub(crate) fn set(&self, slot: u32, path: &Path, behind: u64, lag_ms: u64) {
        let mut rows = self.lock();
        match rows.get_mut(&slot) {
            Some(row) => {
                row.behind = behind;
                row.lag_ms = lag_ms;
                if row.path.as_bytes() != path.as_os_str().as_encoded_bytes() {
                    row.path = path.to_string_lossy().into_owned();
                }
            }
            None => {
                let path = path.to_string_lossy().into_owned();
                rows.insert(
                    slot,
                    Row {
                        path,
                        behind,
                        lag_ms,
                    },
                );
            }
        }
    }

    /// The file in `slot` was renamed to `path`.
    pub(crate) fn rename(&self, slot: u32, path: &Path) {
        if let Some(row) = self.lock().get_mut(&slot) {
            row.path = path.to_string_lossy().into_owned();
        }
    }

    /// The file in `slot` is closed: its series leave `/metrics`.
    pub(crate) fn remove(&self, slot: u32) {
        self.lock().remove(&slot);
    }

    /// Appends the series, sorted by path, in Prometheus' text exposition format.
    pub(crate) fn render(&self, out: &mut String) {
        let rows = self.lock();
        let mut sorted: Vec<&Row> = rows.values().collect();
        sorted.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        out.push_str("# HELP shipper_file_bytes_behind Per open file: bytes written but not yet acknowledged by Elasticsearch.\n");
        out.push_str("# TYPE shipper_file_bytes_behind gauge\n");
        for row in &sorted {
            out.push_str("shipper_file_bytes_behind{path=\"");
            escape_label(&row.path, out);
            let _ = writeln!(out, "\"}} {}", row.behind);
        }
        out.push_str("# HELP shipper_file_lag_seconds Per open file: age of its oldest line read but not yet acknowledged.\n");
        out.push_str("# TYPE shipper_file_lag_seconds gauge\n");
        for row in &sorted {
            out.push_str("shipper_file_lag_seconds{path=\"");
            escape_label(&row.path, out);
            let _ = writeln!(out, "\"}} {}", row.lag_ms as f64 / 1000.0);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Row>> {
        self.rows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A label value as the text format wants it: backslash, double quote and newline escaped
/// (a file name may hold any of them).
fn escape_label(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_and_go_with_the_files_and_parse_as_prometheus_text() {
        let g = FileGauges::default();
        g.set(1, Path::new("/logs/b.log"), 2048, 1500);
        g.set(2, Path::new("/logs/a \"quoted\"\nname.log"), 0, 0);
        g.set(1, Path::new("/logs/b.log"), 4096, 250);
        let mut out = String::new();
        g.render(&mut out);
        let lines: Vec<String> = out.lines().map(str::to_owned).collect();
        let scrape = prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).unwrap();
        let value = |name: &str, path: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && s.labels.get("path") == Some(path))
                .map(|s| match s.value {
                    prometheus_parse::Value::Gauge(v) => v,
                    _ => f64::NAN,
                })
        };
        assert_eq!(
            value("shipper_file_bytes_behind", "/logs/b.log"),
            Some(4096.0)
        );
        assert_eq!(value("shipper_file_lag_seconds", "/logs/b.log"), Some(0.25));
        assert_eq!(scrape.samples.len(), 4);
        g.remove(1);
        g.rename(2, Path::new("/logs/a.log.1"));
        let mut out = String::new();
        g.render(&mut out);
        assert!(!out.contains("b.log"), "{out}");
        assert!(
            out.contains("shipper_file_bytes_behind{path=\"/logs/a.log.1\"} 0"),
            "{out}"
        );
    }
}
