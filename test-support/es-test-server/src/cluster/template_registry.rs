//! Storing and removing component and index templates in the cluster state,
//! with the cross-checks Elasticsearch makes (composition, priorities, use by
//! data streams). Parsing and composition live in `templates`.

use serde_json::Value;

use super::templates;
use super::Cluster;
use crate::error::EsError;
use crate::mapping::Mappings;
use crate::wildcard;

impl Cluster {
    pub fn put_component_template(
        &mut self,
        name: &str,
        body: &Value,
        create: bool,
    ) -> Result<(), EsError> {
        let t = templates::parse_component_template(name, body)?;
        if create && self.component_templates.contains_key(name) {
            return Err(EsError::illegal_argument(format!(
                "component template [{name}] already exists"
            )));
        }
        self.component_templates.insert(name.to_string(), t);
        Ok(())
    }

    pub fn delete_component_template(&mut self, name: &str) -> Result<(), EsError> {
        let matched: Vec<String> = self
            .component_templates
            .keys()
            .filter(|k| wildcard::matches(name, k))
            .cloned()
            .collect();
        if matched.is_empty() {
            return Err(EsError::resource_not_found(format!(
                "component template matching [{name}] not found"
            )));
        }
        for m in &matched {
            let users: Vec<&str> = self
                .index_templates
                .values()
                .filter(|t| t.composed_of.contains(m))
                .map(|t| t.name.as_str())
                .collect();
            if !users.is_empty() {
                return Err(EsError::illegal_argument(format!(
                    "component templates [{m}] cannot be removed as they are still in use by index templates [{}]",
                    users.join(", ")
                )));
            }
        }
        for m in matched {
            self.component_templates.remove(&m);
        }
        Ok(())
    }

    pub fn put_index_template(
        &mut self,
        name: &str,
        body: &Value,
        create: bool,
    ) -> Result<(), EsError> {
        let t = templates::parse_index_template(name, body)?;
        if create && self.index_templates.contains_key(name) {
            return Err(EsError::illegal_argument(format!(
                "index template [{name}] already exists"
            )));
        }
        let comps = &self.component_templates;
        let lookup = |n: &str| comps.get(n);
        templates::validate_against_cluster(&t, &lookup, &mut self.index_templates.values())?;
        // The composed result must itself be valid mappings.
        let resolved = templates::resolve(&t, &lookup);
        Mappings::from_json(&resolved.mappings).map_err(|e| {
            EsError::illegal_argument(format!(
                "composable template [{name}] template after composition is invalid"
            ))
            .caused_by(e)
        })?;
        self.index_templates.insert(name.to_string(), t);
        Ok(())
    }

    /// `POST /_index_template/_simulate` with a template in the body: the
    /// checks of a PUT (component templates exist, the composition is valid
    /// mappings), nothing stored; the settings and mappings an index would
    /// get, and the existing templates whose patterns overlap (reported, not
    /// refused, as Elasticsearch does).
    pub fn simulate_index_template(&self, body: &Value) -> Result<Value, EsError> {
        let name = "simulate_template";
        let t = templates::parse_index_template(name, body)?;
        let comps = &self.component_templates;
        let lookup = |n: &str| comps.get(n);
        templates::validate_against_cluster(&t, &lookup, &mut std::iter::empty())?;
        let resolved = templates::resolve(&t, &lookup);
        Mappings::from_json(&resolved.mappings).map_err(|e| {
            EsError::illegal_argument(format!(
                "composable template [{name}] template after composition is invalid"
            ))
            .caused_by(e)
        })?;
        let overlapping: Vec<Value> = self
            .index_templates
            .values()
            .filter(|other| {
                t.index_patterns.iter().any(|a| {
                    other
                        .index_patterns
                        .iter()
                        .any(|b| crate::wildcard::patterns_intersect(a, b))
                })
            })
            .map(|o| serde_json::json!({"name": o.name, "index_patterns": o.index_patterns}))
            .collect();
        let mut settings = Value::Object(serde_json::Map::new());
        for (key, value) in &resolved.settings {
            let mut at = &mut settings;
            let parts: Vec<&str> = key.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                if i + 1 == parts.len() {
                    at[*part] = value.clone();
                } else {
                    if !at[*part].is_object() {
                        at[*part] = Value::Object(serde_json::Map::new());
                    }
                    at = &mut at[*part];
                }
            }
        }
        Ok(serde_json::json!({
            "template": {
                "settings": settings,
                "mappings": resolved.mappings,
                "aliases": {},
            },
            "overlapping": overlapping,
        }))
    }

    pub fn delete_index_template(&mut self, name: &str) -> Result<(), EsError> {
        let matched: Vec<String> = self
            .index_templates
            .keys()
            .filter(|k| wildcard::matches(name, k))
            .cloned()
            .collect();
        if matched.is_empty() {
            return Err(EsError::resource_not_found(format!(
                "index_template [{name}] missing"
            )));
        }
        for m in &matched {
            let users: Vec<&str> = self
                .data_streams
                .values()
                .filter(|d| &d.template == m)
                .map(|d| d.name.as_str())
                .collect();
            if !users.is_empty() {
                return Err(EsError::illegal_argument(format!(
                    "unable to remove composable templates [{m}] as they are in use by a data streams [{}]",
                    users.join(", ")
                )));
            }
        }
        for m in matched {
            self.index_templates.remove(&m);
        }
        Ok(())
    }
}
