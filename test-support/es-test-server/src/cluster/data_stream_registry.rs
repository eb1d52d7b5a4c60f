//! Creating and deleting data streams: the first backing index, the
//! mappings and settings from the matching template, and the failure-store
//! switch (template option, else the cluster setting).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::data_stream::{generation_index_name, DataStream};
use super::index::Index;
use super::templates::{self, IndexTemplate};
use super::{now_millis, validate_index_name, Cluster};
use crate::error::EsError;
use crate::mapping::Mappings;
use crate::wildcard;

impl Cluster {
    pub(super) fn failure_store_for(&self, name: &str, option: Option<bool>) -> bool {
        option.unwrap_or_else(|| {
            self.failure_store_patterns
                .iter()
                .any(|p| wildcard::matches(p, name))
        })
    }

    pub(super) fn create_data_stream(
        &mut self,
        name: &str,
        template: &IndexTemplate,
        now: DateTime<Utc>,
    ) -> Result<(), EsError> {
        if name.starts_with(".ds-") || name.starts_with(".fs-") {
            return Err(EsError::illegal_argument(format!(
                "data_stream [{name}] must not start with '.ds-'"
            )));
        }
        let comps = &self.component_templates;
        let resolved = templates::resolve(template, &|n: &str| comps.get(n));
        let mut mappings = Mappings::from_json(&resolved.mappings)?;
        // Data streams always map @timestamp as a date (DataStreamTimestampFieldMapper).
        mappings
            .fields
            .entry("@timestamp".into())
            .or_insert_with(|| crate::mapping::Field::of_type("date"));
        let option = resolved
            .data_stream_options
            .get("failure_store")
            .and_then(|f| f.get("enabled"))
            .and_then(Value::as_bool);
        let backing = generation_index_name(".ds", name, now, 1);
        let mut idx = Index::new(
            &backing,
            resolved.settings.clone(),
            mappings,
            now_millis(now),
        );
        idx.data_stream = Some(name.to_string());
        let ilm_policy = resolved
            .settings
            .get("index.lifecycle.name")
            .and_then(Value::as_str)
            .map(String::from);
        let hidden = template
            .data_stream
            .as_ref()
            .and_then(|d| d.get("hidden"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        self.indices.insert(backing.clone(), idx);
        let ds = DataStream {
            name: name.to_string(),
            template: template.name.clone(),
            generation: 1,
            backing: vec![backing],
            failure_indices: Vec::new(),
            failure_store_option: option,
            failure_store_enabled: self.failure_store_for(name, option),
            ilm_policy,
            hidden,
            created: now,
        };
        self.data_streams.insert(name.to_string(), ds);
        Ok(())
    }

    /// `PUT _data_stream/<name>`.
    pub fn put_data_stream(&mut self, name: &str, now: DateTime<Utc>) -> Result<(), EsError> {
        validate_index_name(name)?;
        if self.data_streams.contains_key(name) || self.indices.contains_key(name) {
            return Err(EsError::new(
                400,
                "resource_already_exists_exception",
                format!("data_stream [{name}] already exists"),
            ));
        }
        let template = templates::find_matching(self.index_templates.values(), name).cloned();
        match template {
            Some(t) if t.data_stream.is_some() => self.create_data_stream(name, &t, now),
            _ => Err(EsError::illegal_argument(format!(
                "no matching index template found for data stream [{name}]"
            ))),
        }
    }

    pub fn delete_data_stream(&mut self, name: &str) -> Result<(), EsError> {
        let matched: Vec<String> = self
            .data_streams
            .keys()
            .filter(|k| wildcard::matches(name, k))
            .cloned()
            .collect();
        if matched.is_empty() {
            return Err(EsError::resource_not_found(format!(
                "data_stream matching [{name}] not found"
            )));
        }
        for m in matched {
            if let Some(ds) = self.data_streams.remove(&m) {
                for i in ds.backing.iter().chain(ds.failure_indices.iter()) {
                    self.indices.remove(i);
                }
            }
        }
        Ok(())
    }
}
