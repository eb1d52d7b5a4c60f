//! The shipper's side of the alerting crate's [`Vitals`] contract: what the rules on the
//! shipper itself read (Elasticsearch unreachable, shipping stalled, dead letters written).
//!
//! Everything comes from what the shipper keeps anyway: the output's [`OutputStats`]
//! (atomics, and the time of the last answer) and the acknowledgement table (one look at
//! the front of each file's pending lines). The engine reads it twice a second.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alerting::vitals::Vitals;

use crate::input::acknowledgements::AckTable;
use crate::output::OutputStats;

pub(crate) struct ShipperVitals {
    pub(crate) output: Arc<OutputStats>,
    pub(crate) table: Arc<AckTable>,
    pub(crate) dead_letter_dir: PathBuf,
}

impl Vitals for ShipperVitals {
    fn last_elasticsearch_answer(&self) -> Option<Instant> {
        self.output.last_answer()
    }

    fn oldest_unacknowledged(&self) -> Option<Duration> {
        self.table.oldest_unacknowledged_age()
    }

    fn documents_settled(&self) -> u64 {
        self.output.documents_settled()
    }

    fn dead_letters_written(&self) -> u64 {
        self.output.dead_letters.load(Ordering::Relaxed)
    }

    fn dead_letter_dir(&self) -> Option<PathBuf> {
        Some(self.dead_letter_dir.clone())
    }

    fn last_output_error(&self) -> Option<String> {
        self.output.last_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::read_budget::ReadBudget;

    #[test]
    fn the_vitals_are_read_from_the_output_stats_and_the_acknowledgement_table() {
        let output = Arc::new(OutputStats::default());
        let table = Arc::new(AckTable::new(Arc::new(ReadBudget::new(1000))));
        let v = ShipperVitals {
            output: Arc::clone(&output),
            table,
            dead_letter_dir: "/data/dead-letters".into(),
        };
        assert_eq!(v.last_elasticsearch_answer(), None);
        assert_eq!(v.oldest_unacknowledged(), None);
        output.dead_letters.store(4, Ordering::Relaxed);
        output.documents_indexed.store(10, Ordering::Relaxed);
        assert_eq!(v.dead_letters_written(), 4);
        assert_eq!(v.documents_settled(), 14);
        assert_eq!(
            v.dead_letter_dir(),
            Some(PathBuf::from("/data/dead-letters"))
        );
    }
}
