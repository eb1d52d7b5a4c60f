//! Storing and removing lifecycle policies in the cluster state; parsing
//! and the built-in policies live in `ilm`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::ilm::{self, IlmPolicy};
use super::{now_millis, Cluster};
use crate::error::EsError;

impl Cluster {
    pub fn put_ilm_policy(
        &mut self,
        name: &str,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<(), EsError> {
        let policy = ilm::parse_put_policy(name, body)?;
        let version = self
            .ilm_policies
            .get(name)
            .map(|p| p.version + 1)
            .unwrap_or(1);
        self.ilm_policies.insert(
            name.to_string(),
            IlmPolicy {
                name: name.to_string(),
                version,
                modified_millis: now_millis(now),
                policy,
            },
        );
        Ok(())
    }

    pub fn delete_ilm_policy(&mut self, name: &str) -> Result<(), EsError> {
        if self.ilm_policies.remove(name).is_none() {
            return Err(EsError::resource_not_found(format!(
                "Lifecycle policy not found: {name}"
            )));
        }
        Ok(())
    }
}
