//! The fields the shipper adds to every document, each paired with what it holds.
//!
//! A line keeps every field it was written with; the shipper adds only those of these it
//! does not already carry (Elasticsearch rejects a document with the same key twice).

use crate::field;

/// One field the shipper adds, named for what it holds. The encoder matches on this enum to
/// pick each value, so a new field cannot be declared without saying what it is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Enriched {
    /// `@timestamp`: the time the line was read, when the line has none (a data stream
    /// needs one).
    Timestamp,
    /// `host.name`: the shipper's host.
    HostName,
    /// `agent.type`: [`agent::TYPE`](crate::agent::TYPE).
    AgentType,
    /// `agent.name`: [`agent::NAME`](crate::agent::NAME).
    AgentName,
    /// `agent.version`: the shipper's version.
    AgentVersion,
    /// `log.file.path`: the file the line was read from.
    LogFilePath,
    /// `log.offset`: the line's byte offset in that file.
    LogOffset,
    /// `event.ingested`: the time the line was read.
    EventIngested,
    /// `data_stream.type`: always `logs`.
    DataStreamType,
    /// `data_stream.dataset`: the dataset the line is routed to.
    DataStreamDataset,
    /// `data_stream.namespace`: the configured namespace.
    DataStreamNamespace,
    /// `event.dataset`: the dataset again, where ECS looks for it.
    EventDataset,
}

impl Enriched {
    /// Every enrichment field, in the order the shipper writes them.
    pub const ALL: [Enriched; 12] = [
        Enriched::Timestamp,
        Enriched::HostName,
        Enriched::AgentType,
        Enriched::AgentName,
        Enriched::AgentVersion,
        Enriched::LogFilePath,
        Enriched::LogOffset,
        Enriched::EventIngested,
        Enriched::DataStreamType,
        Enriched::DataStreamDataset,
        Enriched::DataStreamNamespace,
        Enriched::EventDataset,
    ];

    /// The field name, as written in the document.
    pub const fn name(self) -> &'static str {
        match self {
            Enriched::Timestamp => field::TIMESTAMP,
            Enriched::HostName => field::HOST_NAME,
            Enriched::AgentType => field::AGENT_TYPE,
            Enriched::AgentName => field::AGENT_NAME,
            Enriched::AgentVersion => field::AGENT_VERSION,
            Enriched::LogFilePath => field::LOG_FILE_PATH,
            Enriched::LogOffset => field::LOG_OFFSET,
            Enriched::EventIngested => field::EVENT_INGESTED,
            Enriched::DataStreamType => field::DATA_STREAM_TYPE,
            Enriched::DataStreamDataset => field::DATA_STREAM_DATASET,
            Enriched::DataStreamNamespace => field::DATA_STREAM_NAMESPACE,
            Enriched::EventDataset => field::EVENT_DATASET,
        }
    }

    /// The field called `name`, if the shipper adds one by that name.
    pub fn from_name(name: &str) -> Option<Enriched> {
        Enriched::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Position in [`Enriched::ALL`], below 16: a bit number for sets of these fields.
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_field_once_at_its_own_index() {
        for (i, e) in Enriched::ALL.into_iter().enumerate() {
            assert_eq!(e.index(), i, "{e:?}");
            assert_eq!(Enriched::from_name(e.name()), Some(e));
        }
        let mut names: Vec<&str> = Enriched::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Enriched::ALL.len());
        assert!(Enriched::ALL.len() <= 16, "a set of them fits in a u16");
    }

    #[test]
    fn names_that_are_not_added_are_not_found() {
        assert_eq!(Enriched::from_name(field::LOG_CATEGORY), None);
        assert_eq!(Enriched::from_name("log.offset.extra"), None);
        assert_eq!(
            Enriched::from_name(field::LOG_OFFSET),
            Some(Enriched::LogOffset)
        );
    }
}
