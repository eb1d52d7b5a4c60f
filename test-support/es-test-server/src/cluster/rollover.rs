//! Rolling a data stream over (reference "Rollover API"): a new backing index
//! (or, with `::failures`, a new failure index) of the next generation becomes
//! the write index; older ones keep their documents and stay searchable.
//! Conditions are not evaluated: a request with conditions is refused rather
//! than answered as if they were met.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::data_stream::generation_index_name;
use super::index::Index;
use super::templates;
use super::{now_millis, Cluster};
use crate::error::EsError;
use crate::mapping::Mappings;

impl Cluster {
    /// `POST /<data-stream>[::failures]/_rollover`: answers Elasticsearch's
    /// rollover response body.
    pub fn rollover(
        &mut self,
        target: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Value, EsError> {
        let (name, failures) = match target.split_once("::") {
            Some((n, "failures")) => (n, true),
            Some((n, "data")) => (n, false),
            Some((_, sel)) => {
                return Err(EsError::illegal_argument(format!(
                    "invalid usage of :: separator, [{sel}] is not a recognized selector"
                )))
            }
            None => (target, false),
        };
        let Some(ds) = self.data_streams.get(name) else {
            if self.indices.contains_key(name) {
                return Err(EsError::illegal_argument(
                    "rollover target is a [concrete index] but one of [alias,data stream] was expected",
                ));
            }
            return Err(EsError::illegal_argument(format!(
                "rollover target [{name}] does not exist"
            )));
        };
        let generation = ds.generation + 1;
        let prefix = if failures { ".fs" } else { ".ds" };
        let new_index = generation_index_name(prefix, name, now, generation);
        let old_index = if failures {
            ds.failure_indices.last().cloned()
        } else {
            ds.backing.last().cloned()
        };
        let body = json!({
            "acknowledged": !dry_run,
            "shards_acknowledged": !dry_run,
            "old_index": old_index,
            "new_index": new_index,
            "rolled_over": !dry_run,
            "dry_run": dry_run,
            "lazy": false,
            "conditions": {}
        });
        if dry_run {
            return Ok(body);
        }
        let idx = if failures {
            let mut i = Index::new(
                &new_index,
                Map::new(),
                super::write::failure_store::failure_store_mappings(),
                now_millis(now),
            );
            i.failure_index = true;
            i
        } else {
            // The new write index takes its settings and mappings from the
            // template as it is now, as Elasticsearch does.
            let template = self.index_templates.get(&ds.template).ok_or_else(|| {
                EsError::illegal_argument(format!(
                    "no matching index template found for data stream [{name}]"
                ))
            })?;
            let comps = &self.component_templates;
            let resolved = templates::resolve(template, &|n: &str| comps.get(n));
            let mut mappings = Mappings::from_json(&resolved.mappings)?;
            mappings
                .fields
                .entry("@timestamp".into())
                .or_insert_with(|| crate::mapping::Field::of_type("date"));
            Index::new(&new_index, resolved.settings, mappings, now_millis(now))
        };
        let mut idx = idx;
        idx.data_stream = Some(name.to_string());
        self.indices.insert(new_index.clone(), idx);
        if let Some(ds) = self.data_streams.get_mut(name) {
            ds.generation = generation;
            if failures {
                ds.failure_indices.push(new_index);
            } else {
                ds.backing.push(new_index);
            }
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{OpType, WriteFaults, WriteRequest};

    fn create(c: &mut Cluster, id: &str) -> u16 {
        let req = WriteRequest {
            op: OpType::Create,
            index: "logs-app-default",
            id: Some(id),
            source: br#"{"@timestamp":"2026-11-26T10:00:00Z","message":"m"}"#,
            require_alias: false,
            require_data_stream: false,
            pipeline: None,
            if_seq_no: None,
            if_primary_term: None,
            version: None,
            version_type_external: false,
        };
        match c.write(&req, &WriteFaults::default(), Utc::now()).result {
            Ok(w) => w.status,
            Err(e) => e.status,
        }
    }

    #[test]
    fn rollover_makes_the_next_generation_the_write_index() {
        let mut c = Cluster::new(Vec::new());
        assert_eq!(create(&mut c, "a"), 201);
        let out = c.rollover("logs-app-default", false, Utc::now()).unwrap();
        assert_eq!(out["rolled_over"], true);
        let ds = &c.data_streams["logs-app-default"];
        assert_eq!(ds.generation, 2);
        assert_eq!(ds.backing.len(), 2);
        assert!(ds.backing[1].ends_with("-000002"));
        assert_eq!(out["new_index"], ds.backing[1]);
        assert_eq!(out["old_index"], ds.backing[0]);
    }

    #[test]
    fn same_id_conflicts_only_in_the_write_index() {
        let mut c = Cluster::new(Vec::new());
        assert_eq!(create(&mut c, "a"), 201);
        assert_eq!(create(&mut c, "a"), 409);
        c.rollover("logs-app-default", false, Utc::now()).unwrap();
        assert_eq!(create(&mut c, "a"), 201);
        assert_eq!(create(&mut c, "a"), 409);
        assert_eq!(c.documents("logs-app-default").len(), 2);
    }

    #[test]
    fn dry_run_changes_nothing_and_unknown_targets_are_refused() {
        let mut c = Cluster::new(Vec::new());
        assert_eq!(create(&mut c, "a"), 201);
        let out = c.rollover("logs-app-default", true, Utc::now()).unwrap();
        assert_eq!(out["rolled_over"], false);
        assert_eq!(c.data_streams["logs-app-default"].generation, 1);
        let err = c.rollover("nope", false, Utc::now()).unwrap_err();
        assert_eq!(err.reason, "rollover target [nope] does not exist");
    }
}
