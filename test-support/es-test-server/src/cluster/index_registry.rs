//! Creating and deleting plain indices (a data stream's backing indices are
//! created by `data_stream_registry` and `rollover`, and only deleted here
//! when they are not the write index).

use chrono::{DateTime, Utc};
use serde_json::Map;

use super::index::Index;
use super::templates::{self, IndexTemplate};
use super::{now_millis, Cluster};
use crate::error::EsError;
use crate::mapping::Mappings;
use crate::wildcard;

impl Cluster {
    pub(super) fn create_index(
        &mut self,
        name: &str,
        template: Option<&IndexTemplate>,
        now: DateTime<Utc>,
    ) -> Result<(), EsError> {
        let (settings, mappings) = match template {
            Some(t) => {
                let comps = &self.component_templates;
                let r = templates::resolve(t, &|n: &str| comps.get(n));
                (r.settings, Mappings::from_json(&r.mappings)?)
            }
            None => (Map::new(), Mappings::default()),
        };
        self.indices.insert(
            name.to_string(),
            Index::new(name, settings, mappings, now_millis(now)),
        );
        Ok(())
    }

    pub fn delete_index(&mut self, expr: &str) -> Result<(), EsError> {
        let mut removed = false;
        for part in expr.split(',') {
            if part.contains('*') {
                let names: Vec<String> = self
                    .indices
                    .iter()
                    .filter(|(n, i)| wildcard::matches(part, n) && i.data_stream.is_none())
                    .map(|(n, _)| n.clone())
                    .collect();
                for n in names {
                    self.indices.remove(&n);
                    removed = true;
                }
            } else if self.data_streams.contains_key(part) {
                return Err(EsError::illegal_argument(format!(
                    "The provided expression [{part}] matches a data stream, specify the corresponding concrete indices instead."
                )));
            } else if let Some(i) = self.indices.get(part) {
                if let Some(ds) = &i.data_stream {
                    if self.data_streams.get(ds).and_then(|d| d.write_index()) == Some(part) {
                        return Err(EsError::illegal_argument(format!(
                            "index [{part}] is the write index for data stream [{ds}] and cannot be deleted"
                        )));
                    }
                }
                self.indices.remove(part);
                removed = true;
            } else {
                return Err(EsError::index_not_found(part));
            }
        }
        let _ = removed;
        Ok(())
    }
}
