//! Data streams: a name, the template that created it, generations of
//! backing indices (`.ds-<name>-<yyyy.MM.dd>-<generation>`) and, lazily, of
//! failure-store indices (`.fs-...`). Reference "Data streams" and
//! "Failure store".

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// One data stream.
#[derive(Debug, Clone, PartialEq)]
pub struct DataStream {
    pub name: String,
    pub template: String,
    pub generation: u64,
    pub backing: Vec<String>,
    pub failure_indices: Vec<String>,
    /// `data_stream_options.failure_store.enabled` fixed at creation from the
    /// template; `None` when the template says nothing (cluster setting decides).
    pub failure_store_option: Option<bool>,
    /// The effective failure-store switch (option, else cluster setting).
    pub failure_store_enabled: bool,
    pub ilm_policy: Option<String>,
    pub hidden: bool,
    pub created: DateTime<Utc>,
}

/// Backing or failure index name for a generation.
pub fn generation_index_name(
    prefix: &str,
    stream: &str,
    when: DateTime<Utc>,
    generation: u64,
) -> String {
    format!(
        "{prefix}-{stream}-{}-{generation:06}",
        when.format("%Y.%m.%d")
    )
}

impl DataStream {
    pub fn write_index(&self) -> Option<&str> {
        self.backing.last().map(String::as_str)
    }

    /// The `GET _data_stream` entry (reference "Get data stream API").
    pub fn to_json(&self, uuids: &dyn Fn(&str) -> String) -> Value {
        let idx = |names: &[String]| -> Vec<Value> {
            names
                .iter()
                .map(|n| {
                    json!({
                        "index_name": n,
                        "index_uuid": uuids(n),
                        "prefer_ilm": true,
                        "ilm_policy": self.ilm_policy,
                        "managed_by": if self.ilm_policy.is_some() { "Index Lifecycle Management" } else { "Unmanaged" }
                    })
                })
                .collect()
        };
        json!({
            "name": self.name,
            "timestamp_field": {"name": "@timestamp"},
            "indices": idx(&self.backing),
            "generation": self.generation,
            "status": "GREEN",
            "template": self.template,
            "ilm_policy": self.ilm_policy,
            "next_generation_managed_by": if self.ilm_policy.is_some() { "Index Lifecycle Management" } else { "Unmanaged" },
            "prefer_ilm": true,
            "hidden": self.hidden,
            "system": false,
            "allow_custom_routing": false,
            "replicated": false,
            "rollover_on_write": false,
            "failure_store": {
                "enabled": self.failure_store_enabled,
                "rollover_on_write": self.failure_indices.is_empty(),
                "indices": idx(&self.failure_indices)
            }
        })
    }
}
