//! Kibana saved objects (the exported NDJSON shape) and the fields they query.
//!
//! Several attributes are JSON documents stored as strings (`panelsJSON`,
//! `searchSourceJSON`, `fieldFormatMap`); they are decoded here so tests can see inside.

use std::collections::BTreeSet;

use serde_json::Value;

/// One saved object of an NDJSON export.
#[derive(Debug, Clone)]
pub struct SavedObject {
    /// `index-pattern`, `lens`, `search`, `dashboard`, ...
    pub kind: String,
    /// Its id.
    pub id: String,
    /// The whole object.
    pub raw: Value,
}

/// A reference from a saved object to another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// Name of the reference inside the referring object.
    pub name: String,
    /// Type of the referenced object.
    pub kind: String,
    /// Id of the referenced object.
    pub id: String,
}

/// What is wrong with a saved object.
#[derive(Debug, thiserror::Error)]
pub enum SavedObjectError {
    /// A mandatory member is missing or of the wrong JSON type.
    #[error("saved object {id:?}: {what}")]
    Shape {
        /// Id (or position) of the object.
        id: String,
        /// What is missing.
        what: String,
    },
    /// A string attribute that must hold JSON does not.
    #[error("saved object {id:?}: attribute {attribute} is not JSON: {source}")]
    EmbeddedJson {
        /// Id of the object.
        id: String,
        /// Name of the attribute.
        attribute: String,
        /// Why.
        source: serde_json::Error,
    },
}

impl SavedObject {
    /// Reads the `type`/`id` of an exported object.
    pub fn from_value(raw: Value) -> Result<Self, SavedObjectError> {
        let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_owned);
        let id = text("id").ok_or_else(|| SavedObjectError::Shape {
            id: "?".into(),
            what: "no string `id`".into(),
        })?;
        let kind = text("type").ok_or_else(|| SavedObjectError::Shape {
            id: id.clone(),
            what: "no string `type`".into(),
        })?;
        Ok(Self { kind, id, raw })
    }

    /// `attributes.title`.
    pub fn title(&self) -> Option<&str> {
        self.raw
            .pointer("/attributes/title")
            .and_then(Value::as_str)
    }

    /// The object's `references`.
    pub fn references(&self) -> Result<Vec<Reference>, SavedObjectError> {
        let list = self
            .raw
            .get("references")
            .and_then(Value::as_array)
            .ok_or_else(|| self.shape("no `references` array"))?;
        list.iter()
            .map(|r| {
                let get = |key: &str| r.get(key).and_then(Value::as_str).map(str::to_owned);
                match (get("name"), get("type"), get("id")) {
                    (Some(name), Some(kind), Some(id)) => Ok(Reference { name, kind, id }),
                    _ => Err(self.shape("a reference without name, type and id")),
                }
            })
            .collect()
    }

    /// Decodes the string attribute at `pointer` (e.g. `/attributes/panelsJSON`).
    pub fn embedded_json(&self, pointer: &str) -> Result<Option<Value>, SavedObjectError> {
        match self.raw.pointer(pointer).and_then(Value::as_str) {
            None => Ok(None),
            Some(text) => serde_json::from_str(text).map(Some).map_err(|source| {
                SavedObjectError::EmbeddedJson {
                    id: self.id.clone(),
                    attribute: pointer.to_owned(),
                    source,
                }
            }),
        }
    }

    /// Ids of the data views this object reads from (its `index-pattern` references).
    pub fn data_view_ids(&self) -> Result<BTreeSet<String>, SavedObjectError> {
        Ok(self
            .references()?
            .into_iter()
            .filter(|r| r.kind == "index-pattern")
            .map(|r| r.id)
            .collect())
    }

    /// Every document field this object queries: Lens columns (source and sort fields,
    /// column filters), the KQL queries, saved-search columns and sort, and the field
    /// formats of a data view.
    pub fn queried_fields(&self) -> Result<BTreeSet<String>, SavedObjectError> {
        let mut fields = BTreeSet::new();
        match self.kind.as_str() {
            "lens" => {
                let state = self
                    .raw
                    .pointer("/attributes/state")
                    .ok_or_else(|| self.shape("lens without attributes.state"))?;
                if let Some(query) = state.pointer("/query/query").and_then(Value::as_str) {
                    fields.extend(kql_fields(query));
                }
                let layers = state
                    .pointer("/datasourceStates/formBased/layers")
                    .and_then(Value::as_object)
                    .ok_or_else(|| self.shape("lens without formBased layers"))?;
                for layer in layers.values() {
                    let columns = layer
                        .get("columns")
                        .and_then(Value::as_object)
                        .ok_or_else(|| self.shape("lens layer without columns"))?;
                    for column in columns.values() {
                        if let Some(field) = column.get("sourceField").and_then(Value::as_str) {
                            if field != "___records___" {
                                fields.insert(field.to_owned());
                            }
                        }
                        if let Some(field) =
                            column.pointer("/params/sortField").and_then(Value::as_str)
                        {
                            fields.insert(field.to_owned());
                        }
                        if let Some(query) = column.pointer("/filter/query").and_then(Value::as_str)
                        {
                            fields.extend(kql_fields(query));
                        }
                    }
                }
            }
            "search" => {
                for pointer in ["/attributes/columns"] {
                    if let Some(columns) = self.raw.pointer(pointer).and_then(Value::as_array) {
                        fields.extend(columns.iter().filter_map(Value::as_str).map(str::to_owned));
                    }
                }
                if let Some(sort) = self
                    .raw
                    .pointer("/attributes/sort")
                    .and_then(Value::as_array)
                {
                    for entry in sort {
                        if let Some(field) = entry.get(0).and_then(Value::as_str) {
                            fields.insert(field.to_owned());
                        }
                    }
                }
                if let Some(source) =
                    self.embedded_json("/attributes/kibanaSavedObjectMeta/searchSourceJSON")?
                {
                    if let Some(query) = source.pointer("/query/query").and_then(Value::as_str) {
                        fields.extend(kql_fields(query));
                    }
                }
            }
            "index-pattern" => {
                if let Some(time) = self
                    .raw
                    .pointer("/attributes/timeFieldName")
                    .and_then(Value::as_str)
                {
                    fields.insert(time.to_owned());
                }
                if let Some(formats) = self.embedded_json("/attributes/fieldFormatMap")? {
                    if let Some(map) = formats.as_object() {
                        fields.extend(map.keys().cloned());
                    }
                }
            }
            _ => {}
        }
        Ok(fields)
    }

    fn shape(&self, what: &str) -> SavedObjectError {
        SavedObjectError::Shape {
            id: self.id.clone(),
            what: what.to_owned(),
        }
    }
}

/// Field names a KQL query tests (`field: value`, `field < 3`, `field: *`).
///
/// Written by hand because no Rust crate parses KQL; the dashboards only use the
/// `field: value` / `field: (a or b)` / comparison forms, which this recognises.
pub fn kql_fields(query: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r#"(?:^|[\s(])(@?[A-Za-z_][A-Za-z0-9_.@]*)\s*(?::|<=|>=|<|>)"#);
    let Ok(re) = re else {
        return BTreeSet::new();
    };
    re.captures_iter(query)
        .filter_map(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
        .filter(|f| !matches!(f.as_str(), "and" | "or" | "not"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kql_fields_finds_every_tested_field() {
        let found = kql_fields("log.category: (ApplicationError or SystemError) and event.duration >= 10 and not summary.up: *");
        let expected: BTreeSet<String> = ["log.category", "event.duration", "summary.up"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn kql_fields_of_an_empty_query_is_empty() {
        assert!(kql_fields("").is_empty());
    }
}
