//! Warnings about one file, at most one per file per interval.
//!
//! The loop looks at a file on every scan and every filesystem event: a file it cannot
//! open, or a FIFO someone put under a watched name, would otherwise give a warning each
//! time (hundreds a second in a busy directory), drowning the rest of the log. A warning
//! about a file is logged when the trouble is new or has changed, and then once per
//! interval with how many were held back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the same trouble with the same file is told again.
const AGAIN_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub(super) struct Complaints {
    last: HashMap<PathBuf, Complaint>,
}

#[derive(Debug)]
struct Complaint {
    at: Instant,
    what: String,
    held_back: u64,
}

impl Complaints {
    /// Should the trouble `what` with `path` be logged now? `Some(n)`: yes, and `n` like it
    /// were held back since the last one.
    pub(super) fn allow(&mut self, path: &Path, what: &str) -> Option<u64> {
        self.allow_at(path, what, Instant::now())
    }

    fn allow_at(&mut self, path: &Path, what: &str, now: Instant) -> Option<u64> {
        if let Some(c) = self.last.get_mut(path) {
            if c.what == what && now.duration_since(c.at) < AGAIN_AFTER {
                c.held_back += 1;
                return None;
            }
            let held_back = if c.what == what { c.held_back } else { 0 };
            *c = Complaint {
                at: now,
                what: what.to_string(),
                held_back: 0,
            };
            return Some(held_back);
        }
        self.last.insert(
            path.to_path_buf(),
            Complaint {
                at: now,
                what: what.to_string(),
                held_back: 0,
            },
        );
        Some(0)
    }

    /// The file's trouble is over (it opened, or it was read): the next one is told at once.
    pub(super) fn resolved(&mut self, path: &Path) {
        if !self.last.is_empty() {
            self.last.remove(path);
        }
    }

    /// Forgets the files no longer under the globs, so the map holds at most one entry per
    /// name the last scan found.
    pub(super) fn retain(&mut self, mut present: impl FnMut(&Path) -> bool) {
        self.last.retain(|path, _| present(path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_trouble_is_told_once_per_interval_with_what_was_held_back() {
        let mut c = Complaints::default();
        let t0 = Instant::now();
        let a = Path::new("/logs/a.log");
        assert_eq!(c.allow_at(a, "FIFO", t0), Some(0));
        for n in 1..=245 {
            assert_eq!(
                c.allow_at(a, "FIFO", t0 + Duration::from_millis(n * 20)),
                None
            );
        }
        assert_eq!(
            c.allow_at(Path::new("/logs/b.log"), "FIFO", t0),
            Some(0),
            "another file is told at once"
        );
        assert_eq!(
            c.allow_at(a, "permission denied", t0 + Duration::from_secs(6)),
            Some(0),
            "a new trouble is told at once"
        );
        assert_eq!(
            c.allow_at(a, "permission denied", t0 + Duration::from_secs(7)),
            None
        );
        assert_eq!(
            c.allow_at(
                a,
                "permission denied",
                t0 + AGAIN_AFTER + Duration::from_secs(7)
            ),
            Some(1)
        );
        c.resolved(a);
        assert_eq!(
            c.allow_at(
                a,
                "permission denied",
                t0 + AGAIN_AFTER + Duration::from_secs(8)
            ),
            Some(0)
        );
        c.retain(|p| p != a);
        assert_eq!(c.last.len(), 1);
    }
}
