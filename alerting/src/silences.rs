//! Silences: a rule (or every rule), optionally for one group, whose notifications are held
//! for a while (a deploy, a maintenance window).
//!
//! `shipper alert silence add|list|remove` edits `<state dir>/silences.json`; the running
//! engine reads it again whenever it changed (its modification time), so a silence takes
//! effect without a restart and survives one. A silenced alert is still evaluated, saved
//! and counted (`shipper_alert_notifications_silenced_total{rule}`); only its messages are held. When
//! the silence ends (it expires or is removed), an alert that is still firing is announced,
//! and one whose firing the receivers saw before the silence gets its resolution; an alert
//! that fired and resolved entirely within the silence is never announced.
//!
//! The file is written like the alert state: a temp file, `fsync`, renamed over the stable
//! one, so a reader sees the old list or the new one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::message::{AlertStatus, Notification};

const FILE: &str = "silences.json";
const TEMP: &str = "silences.json.tmp";
/// The rule name that silences every rule.
pub const ALL_RULES: &str = "*";

/// One silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Short id, for `remove`.
    pub id: String,
    /// The rule's name, or [`ALL_RULES`].
    pub rule: String,
    /// The service, monitor or shipper; `None`: every group.
    #[serde(default)]
    pub group: Option<String>,
    pub created: DateTime<Utc>,
    pub until: DateTime<Utc>,
    #[serde(default)]
    pub reason: String,
}

impl Silence {
    /// Does it hold messages of `rule` about `group` at `now`?
    pub fn covers(&self, rule: &str, group: &str, now: DateTime<Utc>) -> bool {
        now < self.until
            && (self.rule == ALL_RULES || self.rule == rule)
            && self.group.as_deref().is_none_or(|g| g == group)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
enum SilenceFile {
    #[serde(rename = "1")]
    V1 { silences: Vec<Silence> },
}

/// Why the silences file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a silences file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// The silences saved in `dir` (expired ones included); none when there is no file.
pub fn load(dir: &Path) -> Result<Vec<Silence>, SilenceError> {
    let path = dir.join(FILE);
    match fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(SilenceFile::V1 { silences }) => Ok(silences),
            Err(source) => Err(SilenceError::Parse { path, source }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(SilenceError::Read { path, source }),
    }
}

/// Replaces the saved silences with `silences` (creating `dir`).
pub fn save(dir: &Path, silences: &[Silence]) -> Result<(), SilenceError> {
    let write = |path: &Path| -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let body = serde_json::to_vec_pretty(&SilenceFile::V1 {
            silences: silences.to_vec(),
        })
        .map_err(io::Error::other)?;
        let temp = dir.join(TEMP);
        let mut f = File::create(&temp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    };
    let path = dir.join(FILE);
    write(&path).map_err(|source| SilenceError::Write { path, source })
}

/// A new id: time-based, short, unique enough for a handful of silences.
pub fn new_id(now: DateTime<Utc>, taken: &[Silence]) -> String {
    let mut n = (now.timestamp_millis() as u64) & 0xff_ffff;
    loop {
        let id = format!("{n:06x}");
        if !taken.iter().any(|s| s.id == id) {
            return id;
        }
        n = n.wrapping_add(1) & 0xff_ffff;
    }
}

/// What is held for one alert while it is silenced.
#[derive(Debug)]
struct Held {
    latest: Notification,
    /// The first held message was the alert's firing: the receivers never saw it.
    unseen: bool,
}

/// The engine's side: reads the file when it changes, holds and releases messages.
#[derive(Debug)]
pub(crate) struct Silencer {
    dir: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<Silence>)>,
    held: Mutex<BTreeMap<(String, String), Held>>,
}

impl Silencer {
    pub(crate) fn new(dir: PathBuf) -> Silencer {
        Silencer {
            dir,
            cache: Mutex::new((None, Vec::new())),
            held: Mutex::new(BTreeMap::new()),
        }
    }

    /// The silences, read again if the file changed. A file that cannot be read keeps
    /// the last good list (and says why).
    fn current(&self) -> Vec<Silence> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let modified = fs::metadata(self.dir.join(FILE))
            .and_then(|m| m.modified())
            .ok();
        if modified != cache.0 {
            match load(&self.dir) {
                Ok(silences) => *cache = (modified, silences),
                Err(e) => {
                    tracing::warn!("{e}; keeping the silences read before");
                    cache.0 = modified;
                }
            }
        }
        cache.1.clone()
    }

    /// Holds `n` if a silence covers it; true when held (not to be sent now).
    pub(crate) fn hold(&self, n: &Notification) -> bool {
        if n.test {
            return false;
        }
        let now = Utc::now();
        let Some(silence) = self
            .current()
            .into_iter()
            .find(|s| s.covers(&n.rule, &n.group, now))
        else {
            return false;
        };
        metrics::counter!(crate::telemetry::SILENCED, "rule" => n.rule.clone()).increment(1);
        tracing::info!(rule = %n.rule, group = %n.group, silence = %silence.id, until = %silence.until, "alert {} held by a silence", n.status.label());
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let key = (n.rule.clone(), n.group.clone());
        match held.get_mut(&key) {
            Some(h) if h.unseen && n.status == AlertStatus::Resolved => {
                // Fired and resolved within the silence: nobody needs to hear of it.
                held.remove(&key);
            }
            Some(h) => h.latest = n.clone(),
            None => {
                held.insert(
                    key,
                    Held {
                        latest: n.clone(),
                        unseen: n.status == AlertStatus::Firing && !n.reminder,
                    },
                );
            }
        }
        true
    }

    /// The messages to send now that no silence covers them any more.
    pub(crate) fn release(&self) -> Vec<Notification> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_empty() {
            return Vec::new();
        }
        let now = Utc::now();
        let silences = self.current();
        let ended: Vec<(String, String)> = held
            .keys()
            .filter(|(rule, group)| !silences.iter().any(|s| s.covers(rule, group, now)))
            .cloned()
            .collect();
        ended
            .into_iter()
            .filter_map(|key| held.remove(&key))
            .map(|h| {
                let mut n = h.latest;
                if n.status == AlertStatus::Firing {
                    // Never announced: a firing; announced before the silence: still firing.
                    n.reminder = !h.unseen;
                }
                n
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(rule: &str, group: Option<&str>, minutes: i64) -> Silence {
        let now = Utc::now();
        Silence {
            id: "abc".into(),
            rule: rule.into(),
            group: group.map(String::from),
            created: now,
            until: now + chrono::Duration::minutes(minutes),
            reason: "deploy".into(),
        }
    }

    fn firing(rule: &str, group: &str) -> Notification {
        let mut n = Notification::test_message(
            group,
            &url::Url::parse("http://kibana:5601").unwrap(),
            chrono_tz::UTC,
        );
        n.test = false;
        n.rule = rule.into();
        n
    }

    #[test]
    fn a_silence_covers_its_rule_and_group_until_it_ends() {
        let now = Utc::now();
        let s = silence("Payment errors", Some("payment"), 10);
        assert!(s.covers("Payment errors", "payment", now));
        assert!(!s.covers("Payment errors", "loan", now));
        assert!(!s.covers("Other", "payment", now));
        assert!(!s.covers(
            "Payment errors",
            "payment",
            now + chrono::Duration::minutes(11)
        ));
        assert!(silence(ALL_RULES, None, 10).covers("anything", "any", now));
    }

    #[test]
    fn saved_silences_load_back_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let s = vec![silence("r", None, 5)];
        save(dir.path(), &s).unwrap();
        assert_eq!(load(dir.path()).unwrap(), s);
        fs::write(dir.path().join(FILE), "{torn").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("silences.json"), "{e}");
    }

    #[test]
    fn held_messages_are_released_when_the_silence_ends() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &[silence("r", None, 10)]).unwrap();
        let silencer = Silencer::new(dir.path().to_path_buf());
        let n = firing("r", "payment");
        assert!(silencer.hold(&n));
        assert!(!silencer.hold(&firing("other", "payment")));
        assert!(silencer.release().is_empty(), "still silenced");
        save(dir.path(), &[]).unwrap();
        // Another modification time is needed for the change to be seen.
        let later = SystemTime::now() + std::time::Duration::from_secs(2);
        File::options()
            .write(true)
            .open(dir.path().join(FILE))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let released = silencer.release();
        assert_eq!(released.len(), 1);
        assert!(!released[0].reminder, "never announced: a firing");
        assert!(silencer.release().is_empty());
    }

    #[test]
    fn an_alert_that_fires_and_resolves_within_the_silence_is_never_announced() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &[silence("r", None, 10)]).unwrap();
        let silencer = Silencer::new(dir.path().to_path_buf());
        let mut n = firing("r", "payment");
        assert!(silencer.hold(&n));
        n.status = AlertStatus::Resolved;
        assert!(silencer.hold(&n));
        assert!(silencer.held.lock().unwrap().is_empty());
    }
}
