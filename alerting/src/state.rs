//! The alert state that outlives the process: which alerts are firing, since when, and
//! when they were last announced.
//!
//! Without it a restart forgets every firing alert: one still firing is announced again as
//! new, and one that resolved while the process was down (or resolves after the restart)
//! never gets its resolution, leaving the receivers with an alert that never ends. So every
//! message that changes the state (a firing, a reminder, a resolution) updates
//! `<dir>/state.json`, and at start the evaluators take the saved alerts back: a rule still
//! true continues the alert silently (its reminders on schedule), a rule no longer true sends
//! the resolution once.
//!
//! The file is written like the shipper's checkpoints: a temp file, `fsync`, renamed over
//! the stable file, the directory `fsync`ed, so a crash leaves the old state or the new one,
//! never half of one. Writes happen off the async threads, each writing the latest state, so
//! the last write always holds the last change. The format is versioned; a file that cannot
//! be read is moved aside with a warning and the engine starts empty.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::message::{AlertSource, AlertStatus, LastError, Notification};

const STABLE: &str = "state.json";
const TEMP: &str = "state.json.tmp";

/// One firing alert as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedAlert {
    pub(crate) rule: String,
    /// [`AlertSource::label`].
    pub(crate) source: String,
    /// The service, monitor or shipper the alert is about, as its messages name it.
    pub(crate) group: String,
    pub(crate) since: DateTime<Utc>,
    /// When it was last announced (its firing, or its last reminder).
    pub(crate) last_notified: DateTime<Utc>,
    /// Everything counted since it started.
    #[serde(default)]
    pub(crate) total: u64,
    #[serde(default)]
    pub(crate) last_error: Option<SavedError>,
}

/// [`LastError`], as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub(crate) struct SavedError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    transaction_id: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

impl From<&LastError> for SavedError {
    fn from(e: &LastError) -> Self {
        SavedError {
            message: e.message.clone(),
            error_type: e.error_type.clone(),
            transaction_id: e.transaction_id.clone(),
            timestamp: e.timestamp.clone(),
        }
    }
}

impl From<&SavedError> for LastError {
    fn from(e: &SavedError) -> Self {
        LastError {
            message: e.message.clone(),
            error_type: e.error_type.clone(),
            transaction_id: e.transaction_id.clone(),
            timestamp: e.timestamp.clone(),
        }
    }
}

impl SavedAlert {
    pub(crate) fn source(&self) -> Option<AlertSource> {
        AlertSource::from_label(&self.source)
    }

    pub(crate) fn last_error(&self) -> Option<LastError> {
        self.last_error.as_ref().map(LastError::from)
    }

    /// The monotonic instant of the last announcement, for the reminder schedule: as long
    /// ago as the saved wall time says (now, if the clock went back or the machine booted
    /// more recently than that).
    pub(crate) fn last_notified_instant(&self, now: std::time::Instant) -> std::time::Instant {
        let ago = (Utc::now() - self.last_notified)
            .to_std()
            .unwrap_or_default();
        now.checked_sub(ago).unwrap_or(now)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "version")]
enum StateFile {
    #[serde(rename = "1")]
    V1 { alerts: Vec<SavedAlert> },
}

type Key = (String, String);

/// The firing alerts, kept in step with the messages sent and saved on every change.
pub(crate) struct AlertStore {
    /// `None`: nothing is saved (no data directory given).
    dir: Option<PathBuf>,
    alerts: Mutex<BTreeMap<Key, SavedAlert>>,
    /// One write at a time; each writes the state as it is when it runs.
    writing: Mutex<()>,
}

impl AlertStore {
    /// The store of `dir` and the alerts saved there. A file that cannot be read is moved
    /// aside (`state.json.unreadable-<time>`) with a warning; the engine then starts empty.
    pub(crate) fn open(dir: Option<PathBuf>) -> (Arc<AlertStore>, Vec<SavedAlert>) {
        let saved = match &dir {
            Some(dir) => load(dir),
            None => Vec::new(),
        };
        let alerts = saved
            .iter()
            .map(|a| ((a.rule.clone(), a.group.clone()), a.clone()))
            .collect();
        let store = AlertStore {
            dir,
            alerts: Mutex::new(alerts),
            writing: Mutex::new(()),
        };
        (Arc::new(store), saved)
    }

    /// Takes one message into the state: a firing adds the alert, a reminder moves its last
    /// announcement, a resolution removes it. Saves in the background when it changed.
    pub(crate) fn record(self: &Arc<Self>, n: &Notification) {
        let key = (n.rule.clone(), n.group.clone());
        {
            let mut alerts = self.lock();
            match n.status {
                AlertStatus::Firing => {
                    let entry = alerts.entry(key).or_insert_with(|| SavedAlert {
                        rule: n.rule.clone(),
                        source: n.source.label().to_string(),
                        group: n.group.clone(),
                        since: n.since,
                        last_notified: Utc::now(),
                        total: n.total,
                        last_error: None,
                    });
                    entry.since = n.since;
                    entry.last_notified = Utc::now();
                    entry.total = n.total;
                    entry.last_error = n.last_error.as_ref().map(SavedError::from);
                }
                AlertStatus::Resolved => {
                    if alerts.remove(&key).is_none() {
                        return;
                    }
                }
            }
        }
        self.save_in_background();
    }

    /// Drops a saved alert no evaluator took back (its rule is gone from the configuration).
    pub(crate) fn forget(self: &Arc<Self>, rule: &str, group: &str) {
        let removed = self
            .lock()
            .remove(&(rule.to_string(), group.to_string()))
            .is_some();
        if removed {
            self.save_in_background();
        }
    }

    fn save_in_background(self: &Arc<Self>) {
        if self.dir.is_none() {
            return;
        }
        let me = Arc::clone(self);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || me.save());
            }
            Err(_) => me.save(),
        }
    }

    /// Writes the current state now (also called once at shutdown).
    pub(crate) fn save(&self) {
        let Some(dir) = &self.dir else {
            return;
        };
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let alerts: Vec<SavedAlert> = self.lock().values().cloned().collect();
        if let Err(e) = write_atomically(dir, &StateFile::V1 { alerts }) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot save the alert state; a restart may announce firing alerts again");
        }
    }

    #[cfg(test)]
    pub(crate) fn firing(&self) -> Vec<SavedAlert> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Key, SavedAlert>> {
        self.alerts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn load(dir: &Path) -> Vec<SavedAlert> {
    let stable = dir.join(STABLE);
    let bytes = match fs::read(&stable) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(path = %stable.display(), error = %e, "cannot read the alert state; starting without it");
            return Vec::new();
        }
    };
    match serde_json::from_slice::<StateFile>(&bytes) {
        Ok(StateFile::V1 { alerts }) => alerts,
        Err(e) => {
            let aside = dir.join(format!(
                "{STABLE}.unreadable-{}",
                Utc::now().format("%Y%m%dT%H%M%S%.3f")
            ));
            let moved = fs::rename(&stable, &aside).is_ok();
            tracing::warn!(
                path = %stable.display(),
                error = %e,
                moved_to = %if moved { aside.display().to_string() } else { "(not moved)".into() },
                "the alert state cannot be read; starting without it (firing alerts may be announced again)"
            );
            Vec::new()
        }
    }
}

fn write_atomically(dir: &Path, state: &StateFile) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let temp = dir.join(TEMP);
    let body = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    let mut file = File::create(&temp)?;
    file.write_all(&body)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, dir.join(STABLE))?;
    // The rename is only durable once the directory entry is.
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::AlertSource;

    fn notification(status: AlertStatus, reminder: bool) -> Notification {
        Notification {
            status,
            reminder,
            rule: "SystemError burst".into(),
            source: AlertSource::Logs,
            group_field: "service",
            group: "payment".into(),
            condition: "≥ 5".into(),
            since: Utc::now() - chrono::Duration::seconds(30),
            resolved_at: None,
            count: 5,
            total: 7,
            value: None,
            last_error: Some(LastError {
                message: Some("bank down".into()),
                transaction_id: Some("tx-1".into()),
                ..LastError::default()
            }),
            url: None,
            kibana_link: String::new(),
            channels: None,
            timezone: chrono_tz::UTC,
            suppressed_before: 0,
            test: false,
        }
    }

    #[test]
    fn firing_reminders_and_resolutions_are_saved_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (store, saved) = AlertStore::open(Some(dir.path().to_path_buf()));
        assert!(saved.is_empty());
        store.record(&notification(AlertStatus::Firing, false));
        store.save();
        let (_, saved) = AlertStore::open(Some(dir.path().to_path_buf()));
        assert_eq!(saved.len(), 1);
        let a = &saved[0];
        assert_eq!(
            (a.rule.as_str(), a.group.as_str(), a.total),
            ("SystemError burst", "payment", 7)
        );
        assert_eq!(a.source(), Some(AlertSource::Logs));
        assert_eq!(
            a.last_error().unwrap().transaction_id.as_deref(),
            Some("tx-1")
        );
        let first = a.last_notified;

        std::thread::sleep(std::time::Duration::from_millis(5));
        store.record(&notification(AlertStatus::Firing, true));
        store.save();
        let (_, saved) = AlertStore::open(Some(dir.path().to_path_buf()));
        assert!(saved[0].last_notified > first, "a reminder moves it");

        store.record(&notification(AlertStatus::Resolved, false));
        store.save();
        let (_, saved) = AlertStore::open(Some(dir.path().to_path_buf()));
        assert!(saved.is_empty());
        assert!(!dir.path().join(TEMP).exists());
    }

    #[test]
    fn an_unreadable_file_is_moved_aside_and_the_engine_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        for garbage in [
            &b"{not json"[..],
            b"{\"version\":\"99\",\"alerts\":[]}",
            b"",
        ] {
            fs::write(dir.path().join(STABLE), garbage).unwrap();
            let (store, saved) = AlertStore::open(Some(dir.path().to_path_buf()));
            assert!(saved.is_empty());
            assert!(store.firing().is_empty());
            assert!(!dir.path().join(STABLE).exists(), "moved aside");
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        let aside = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("state.json.unreadable-")
            })
            .count();
        assert_eq!(aside, 3);
    }

    #[test]
    fn without_a_directory_nothing_is_written() {
        let (store, saved) = AlertStore::open(None);
        assert!(saved.is_empty());
        store.record(&notification(AlertStatus::Firing, false));
        store.save();
        assert_eq!(store.firing().len(), 1);
    }

    #[test]
    fn the_last_announcement_is_placed_as_long_ago_as_saved() {
        let now = std::time::Instant::now();
        let mut a = SavedAlert {
            rule: "r".into(),
            source: "logs".into(),
            group: "g".into(),
            since: Utc::now(),
            last_notified: Utc::now() - chrono::Duration::seconds(1),
            total: 0,
            last_error: None,
        };
        let at = a.last_notified_instant(now);
        let ago = now.duration_since(at);
        assert!(
            ago >= std::time::Duration::from_millis(900) && ago < std::time::Duration::from_secs(3),
            "{ago:?}"
        );
        a.last_notified = Utc::now() + chrono::Duration::hours(1);
        assert_eq!(a.last_notified_instant(now), now, "a time ahead is now");
    }
}
