//! What `/ready` answers: whether this shipper is delivering.
//!
//! Ready means: Elasticsearch was reached and the templates are installed, and no line read
//! has waited longer than `SHIPPER_READY_FAILING_AFTER` for Elasticsearch to take it. The
//! second half is measured on the acknowledgement table (the age of the oldest line read
//! and not acknowledged), not on request outcomes: it covers every way delivery can stall
//! (Elasticsearch down, answering 429 or 5xx for ever, a request hanging) and recovers by
//! itself the moment the backlog is delivered. A shipper with nothing to send stays ready.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::input::acknowledgements::AckTable;
use crate::output::OutputStats;

/// Shared by the pipeline (which fills it in) and the HTTP server (which asks it).
pub(crate) struct Readiness {
    prepared: AtomicBool,
    failing_after: Duration,
    watched: OnceLock<(Arc<AckTable>, Arc<OutputStats>)>,
}

impl Readiness {
    pub(crate) fn new(failing_after: Duration) -> Readiness {
        Readiness {
            prepared: AtomicBool::new(false),
            failing_after,
            watched: OnceLock::new(),
        }
    }

    /// Elasticsearch was reached and the templates are installed.
    pub(crate) fn set_prepared(&self) {
        self.prepared.store(true, Ordering::Relaxed);
    }

    /// The table whose oldest unacknowledged line says whether delivery stalls, and the
    /// output's stats for the reason.
    pub(crate) fn watch(&self, table: Arc<AckTable>, output: Arc<OutputStats>) {
        let _ = self.watched.set((table, output));
    }

    /// `Ok` when ready; otherwise why not.
    pub(crate) fn verdict(&self) -> Result<(), String> {
        if !self.prepared.load(Ordering::Relaxed) {
            return Err("waiting for Elasticsearch and the templates".to_string());
        }
        let Some((table, output)) = self.watched.get() else {
            return Ok(());
        };
        judge(
            table.oldest_unacknowledged_age(),
            self.failing_after,
            output.last_error(),
        )
    }
}

/// The verdict on a backlog whose oldest line has waited `oldest`.
fn judge(
    oldest: Option<Duration>,
    failing_after: Duration,
    last_error: Option<String>,
) -> Result<(), String> {
    match oldest {
        Some(age) if age > failing_after => {
            let mut why = format!(
                "a line has waited {}s for Elasticsearch (more than SHIPPER_READY_FAILING_AFTER, {}s)",
                age.as_secs(),
                failing_after.as_secs_f64()
            );
            if let Some(e) = last_error {
                why.push_str("; last error: ");
                why.push_str(&e);
            }
            Err(why)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_older_than_the_threshold_is_not_ready() {
        let t = Duration::from_secs(30);
        assert!(judge(None, t, None).is_ok(), "nothing to send is ready");
        assert!(judge(Some(Duration::from_secs(29)), t, None).is_ok());
        let why = judge(
            Some(Duration::from_secs(31)),
            t,
            Some("cannot connect".into()),
        )
        .unwrap_err();
        assert!(
            why.contains("31s") && why.contains("cannot connect"),
            "{why}"
        );
    }

    #[test]
    fn not_ready_before_the_templates() {
        let r = Readiness::new(Duration::from_secs(30));
        assert!(r.verdict().is_err());
        r.set_prepared();
        assert!(r.verdict().is_ok());
    }
}
