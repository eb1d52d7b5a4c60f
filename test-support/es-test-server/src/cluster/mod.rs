//! The in-memory cluster state: templates, lifecycle policies, indices and
//! data streams, and the write path every bulk item goes through.

pub mod data_stream;
pub mod ilm;
pub mod index;
pub mod templates;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::error::EsError;
use crate::mapping::Mappings;
use crate::wildcard;
use data_stream::{generation_index_name, DataStream};
use ilm::IlmPolicy;
use index::{random_id, Index, StoredDoc};
use templates::{ComponentTemplate, IndexTemplate};

/// Bulk operation types (reference "Bulk API": index, create, update, delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpType {
    Index,
    Create,
    Update,
    Delete,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Index => "index",
            OpType::Create => "create",
            OpType::Update => "update",
            OpType::Delete => "delete",
        }
    }
}

/// One write, as the bulk parser hands it over.
#[derive(Debug, Clone)]
pub struct WriteRequest<'a> {
    pub op: OpType,
    pub index: &'a str,
    pub id: Option<&'a str>,
    pub source: &'a [u8],
    pub require_alias: bool,
    pub require_data_stream: bool,
    pub pipeline: Option<&'a str>,
    pub if_seq_no: Option<u64>,
    pub if_primary_term: Option<u64>,
    pub version: Option<u64>,
    pub version_type_external: bool,
}

/// Fault-injection inputs the write path honours.
#[derive(Debug, Default, Clone)]
pub struct WriteFaults {
    pub forced_types: HashMap<String, String>,
    /// Treat this item as failing mapping (so it goes to the failure store
    /// when enabled, else answers 400).
    pub force_mapping_failure: bool,
}

/// A successful write.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub version: u64,
    pub result: &'static str,
    pub seq_no: u64,
    pub status: u16,
    pub failure_store_used: bool,
    pub shards_total: u64,
    pub shards_successful: u64,
}

/// The outcome of one bulk item.
#[derive(Debug, Clone)]
pub struct ItemOutcome {
    pub op: OpType,
    pub index: String,
    pub id: Option<String>,
    pub result: Result<Written, EsError>,
}

/// A document as tests observe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The concrete index (`.ds-...` for data streams).
    pub index: String,
    /// The data stream, if the index backs one.
    pub data_stream: Option<String>,
    pub id: String,
    pub version: u64,
    pub source: Arc<Value>,
}

/// Where a name points for a write.
enum Target {
    DataStream(String),
    Index(String),
}

/// The whole cluster state.
#[derive(Debug)]
pub struct Cluster {
    pub component_templates: BTreeMap<String, ComponentTemplate>,
    pub index_templates: BTreeMap<String, IndexTemplate>,
    pub ilm_policies: BTreeMap<String, IlmPolicy>,
    pub indices: BTreeMap<String, Index>,
    pub data_streams: BTreeMap<String, DataStream>,
    /// Cluster setting `data_streams.failure_store.enabled`.
    pub failure_store_patterns: Vec<String>,
}

/// Validates an index or data stream name (MetadataCreateIndexService#validateIndexOrAliasName).
pub fn validate_index_name(name: &str) -> Result<(), EsError> {
    let invalid = |why: &str| {
        Err(EsError::new(
            400,
            "invalid_index_name_exception",
            format!("Invalid index name [{name}], {why}"),
        )
        .with("index_uuid", "_na_")
        .with("index", name))
    };
    if name.is_empty() {
        return invalid("must not be empty");
    }
    if name.to_lowercase() != name {
        return invalid("must be lowercase");
    }
    if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':']) {
        return invalid(
            "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?, #, :]",
        );
    }
    if name.starts_with(['_', '-', '+']) {
        return invalid("must not start with '_', '-', or '+'");
    }
    if name == "." || name == ".." {
        return invalid("must not be '.' or '..'");
    }
    if name.len() > 255 {
        return invalid("index name is too long");
    }
    Ok(())
}

fn now_millis(now: DateTime<Utc>) -> i64 {
    now.timestamp_millis()
}

impl Cluster {
    /// A fresh cluster with the built-in templates and policies of 9.2.
    pub fn new(failure_store_patterns: Vec<String>) -> Self {
        let mut c = Cluster {
            component_templates: BTreeMap::new(),
            index_templates: BTreeMap::new(),
            ilm_policies: BTreeMap::new(),
            indices: BTreeMap::new(),
            data_streams: BTreeMap::new(),
            failure_store_patterns,
        };
        for (name, body) in templates::builtin_component_templates() {
            c.component_templates.insert(
                name.to_string(),
                ComponentTemplate {
                    name: name.to_string(),
                    body,
                },
            );
        }
        if let Ok(t) = templates::parse_index_template("logs", &templates::builtin_logs_template())
        {
            c.index_templates.insert("logs".into(), t);
        }
        for (name, policy) in ilm::builtin_policies() {
            c.ilm_policies.insert(
                name.to_string(),
                IlmPolicy {
                    name: name.to_string(),
                    version: 1,
                    modified_millis: 0,
                    policy,
                },
            );
        }
        c
    }

    // ----- templates -------------------------------------------------------

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

    // ----- name resolution -------------------------------------------------

    fn failure_store_for(&self, name: &str, option: Option<bool>) -> bool {
        option.unwrap_or_else(|| {
            self.failure_store_patterns
                .iter()
                .any(|p| wildcard::matches(p, name))
        })
    }

    fn create_data_stream(
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

    fn create_index(
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

    /// Resolves a search/count expression (comma list, `*` wildcards, data
    /// stream names, `::failures` / `::data` selectors, `_all`) to concrete
    /// index names. Wildcards skip hidden (dot) names unless the pattern starts
    /// with a dot; a missing concrete name is `index_not_found_exception`
    /// unless `ignore_unavailable`.
    pub fn resolve_read(
        &self,
        expr: &str,
        ignore_unavailable: bool,
    ) -> Result<Vec<String>, EsError> {
        let mut out: Vec<String> = Vec::new();
        let expr = if expr.is_empty() || expr == "_all" {
            "*"
        } else {
            expr
        };
        for raw in expr.split(',') {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            if let Some(excl) = raw.strip_prefix('-') {
                if !out.is_empty() {
                    let excluded = self.resolve_read(excl, true)?;
                    out.retain(|n| !excluded.contains(n));
                    continue;
                }
            }
            let (name, failures) = match raw.split_once("::") {
                Some((n, "failures")) => (n, true),
                Some((n, "data")) => (n, false),
                Some((_, sel)) => {
                    return Err(EsError::illegal_argument(format!(
                        "invalid usage of :: separator, [{sel}] is not a recognized selector"
                    )))
                }
                None => (raw, false),
            };
            let ds_indices = |ds: &DataStream| -> Vec<String> {
                if failures {
                    ds.failure_indices.clone()
                } else {
                    ds.backing.clone()
                }
            };
            if name.contains('*') {
                let show_hidden = name.starts_with('.');
                for ds in self.data_streams.values() {
                    if wildcard::matches(name, &ds.name) && (show_hidden || !ds.hidden) {
                        out.extend(ds_indices(ds));
                    }
                }
                if !failures {
                    for (n, i) in &self.indices {
                        let hidden = n.starts_with('.');
                        if i.data_stream.is_none()
                            && wildcard::matches(name, n)
                            && (show_hidden || !hidden)
                        {
                            out.push(n.clone());
                        }
                        // Backing indices matched by an explicit dot pattern.
                        if i.data_stream.is_some() && show_hidden && wildcard::matches(name, n) {
                            out.push(n.clone());
                        }
                    }
                }
            } else if let Some(ds) = self.data_streams.get(name) {
                out.extend(ds_indices(ds));
            } else if self.indices.contains_key(name) {
                out.push(name.to_string());
            } else if !ignore_unavailable {
                return Err(EsError::index_not_found(name));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    // ----- observation -----------------------------------------------------

    /// Documents in the indices an expression resolves to (missing names are skipped).
    pub fn documents(&self, expr: &str) -> Vec<Document> {
        let names = self.resolve_read(expr, true).unwrap_or_default();
        let mut out = Vec::new();
        for n in names {
            if let Some(i) = self.indices.get(&n) {
                for d in i.docs() {
                    out.push(Document {
                        index: n.clone(),
                        data_stream: i.data_stream.clone(),
                        id: d.id.clone(),
                        version: d.version,
                        source: d.source.clone(),
                    });
                }
            }
        }
        out
    }

    // ----- writes ----------------------------------------------------------

    fn resolve_write(
        &mut self,
        req: &WriteRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Target, EsError> {
        let name = req.index;
        if req.require_alias {
            // No aliases exist in this server.
            return Err(EsError::index_not_found(name).with_reason(format!(
                "no such index [{name}] and [require_alias] request flag is [true] and [{name}] is not an alias"
            )));
        }
        if self.data_streams.contains_key(name) {
            return Ok(Target::DataStream(name.to_string()));
        }
        if self.indices.contains_key(name) {
            if req.require_data_stream {
                return Err(EsError::illegal_argument(format!(
                    "index [{name}] is not a data stream, but [require_data_stream] request flag is [true]"
                )));
            }
            return Ok(Target::Index(name.to_string()));
        }
        validate_index_name(name)?;
        if req.op == OpType::Delete {
            return Err(EsError::index_not_found(name));
        }
        let template = templates::find_matching(self.index_templates.values(), name).cloned();
        match template {
            Some(t) if t.data_stream.is_some() => {
                self.create_data_stream(name, &t, now)?;
                Ok(Target::DataStream(name.to_string()))
            }
            t => {
                if req.require_data_stream {
                    return Err(EsError::illegal_argument(format!(
                        "cannot create index [{name}] with [require_data_stream] request flag set to [true] since no matching data stream template exists"
                    )));
                }
                self.create_index(name, t.as_ref(), now)?;
                Ok(Target::Index(name.to_string()))
            }
        }
    }

    /// Applies one bulk item.
    pub fn write(
        &mut self,
        req: &WriteRequest<'_>,
        faults: &WriteFaults,
        now: DateTime<Utc>,
    ) -> ItemOutcome {
        let mut outcome = ItemOutcome {
            op: req.op,
            index: req.index.to_string(),
            id: req.id.map(String::from),
            result: Err(EsError::illegal_argument("unreachable")),
        };
        if let Some(p) = req.pipeline {
            if p != "_none" && p != "logs@default-pipeline" {
                outcome.result = Err(EsError::illegal_argument(format!(
                    "pipeline with id [{p}] does not exist"
                )));
                return outcome;
            }
        }
        let target = match self.resolve_write(req, now) {
            Ok(t) => t,
            Err(e) => {
                outcome.result = Err(e);
                return outcome;
            }
        };
        match target {
            Target::DataStream(ds) => self.write_data_stream(req, &ds, faults, now, outcome),
            Target::Index(name) => {
                if req.op == OpType::Create {
                    if let Some(ds) = self.indices.get(&name).and_then(|i| i.data_stream.clone()) {
                        outcome.result = Err(EsError::illegal_argument(format!(
                            "index request with op_type=create targeting backing indices is disallowed, target corresponding data stream [{ds}] instead"
                        )));
                        return outcome;
                    }
                }
                self.write_index(req, &name, faults, now, outcome)
            }
        }
    }

    fn write_data_stream(
        &mut self,
        req: &WriteRequest<'_>,
        ds_name: &str,
        faults: &WriteFaults,
        now: DateTime<Utc>,
        mut outcome: ItemOutcome,
    ) -> ItemOutcome {
        // Reference "Use a data stream": only create is allowed.
        if req.op != OpType::Create {
            outcome.result = Err(EsError::illegal_argument(
                "only write ops with an op_type of create are allowed in data streams",
            ));
            return outcome;
        }
        let Some(ds) = self.data_streams.get(ds_name) else {
            outcome.result = Err(EsError::index_not_found(ds_name));
            return outcome;
        };
        let fs_enabled = ds.failure_store_enabled;
        let Some(write_index) = ds.write_index().map(String::from) else {
            outcome.result = Err(EsError::index_not_found(ds_name));
            return outcome;
        };
        let id = req.id.map(String::from).unwrap_or_else(|| random_id(20));
        outcome.id = Some(id.clone());
        outcome.index = write_index.clone();

        let parsed = parse_source(req.source);
        let checked = parsed.and_then(|doc| {
            let ts = doc.get("@timestamp");
            match ts {
                None | Some(Value::Null) => {
                    return Err(EsError::new(400, "document_parsing_exception", "failed to parse: data stream timestamp field [@timestamp] is missing")
                        .caused_by(EsError::illegal_argument("data stream timestamp field [@timestamp] is missing")))
                }
                Some(Value::Array(a)) if a.len() > 1 => {
                    return Err(EsError::new(400, "document_parsing_exception", "failed to parse: data stream timestamp field [@timestamp] encountered multiple values")
                        .caused_by(EsError::illegal_argument("data stream timestamp field [@timestamp] encountered multiple values")))
                }
                _ => {}
            }
            if faults.force_mapping_failure {
                return Err(EsError::new(400, "document_parsing_exception", format!(
                    "failed to parse field [@timestamp] of type [date] in document with id '{id}'. Preview of field's value: 'injected'"
                )));
            }
            let idx = self.indices.get(&write_index).ok_or_else(|| EsError::index_not_found(&write_index))?;
            let out = idx.mappings.check_document(&doc, &id, &faults.forced_types)?;
            Ok((doc, out))
        });
        match checked {
            Ok((doc, mapping_out)) => {
                let Some(idx) = self.indices.get_mut(&write_index) else {
                    outcome.result = Err(EsError::index_not_found(&write_index));
                    return outcome;
                };
                if let Some(existing) = idx.get(&id) {
                    outcome.result = Err(version_conflict_exists(&id, existing.version, idx));
                    return outcome;
                }
                idx.mappings.apply(&mapping_out);
                let seq_no = idx.take_seq_no();
                let shards = idx.shard_copies();
                idx.put(StoredDoc {
                    id: id.clone(),
                    source: Arc::new(Value::Object(doc)),
                    version: 1,
                    seq_no,
                    ignored: mapping_out.ignored,
                });
                outcome.result = Ok(Written {
                    version: 1,
                    result: "created",
                    seq_no,
                    status: 201,
                    failure_store_used: false,
                    shards_total: shards,
                    shards_successful: 1,
                });
            }
            Err(err)
                if err.kind == "document_parsing_exception"
                    || err.kind == "strict_dynamic_mapping_exception" =>
            {
                if fs_enabled {
                    let (written, fs_id) = self.store_failure(ds_name, &id, req, &err, now);
                    // The item reports the failure document's own id (reference
                    // "Failure store", bulk example).
                    outcome.id = Some(fs_id);
                    outcome.result = Ok(written);
                    if let Some(ds) = self.data_streams.get(ds_name) {
                        outcome.index = ds.failure_indices.last().cloned().unwrap_or_default();
                    }
                } else {
                    outcome.result = Err(err.with("failure_store", "not_enabled"));
                }
            }
            Err(err) => outcome.result = Err(err),
        }
        outcome
    }

    /// Stores a failed document in the data stream's failure store, creating
    /// the failure index lazily (reference "Failure store": document shape
    /// `@timestamp`, `document.{id,index,routing,source}`, `error.{type,message,stack_trace}`).
    fn store_failure(
        &mut self,
        ds_name: &str,
        id: &str,
        req: &WriteRequest<'_>,
        err: &EsError,
        now: DateTime<Utc>,
    ) -> (Written, String) {
        let fs_id = random_id(20);
        let fs_index = {
            let Some(ds) = self.data_streams.get_mut(ds_name) else {
                return (
                    Written {
                        version: 1,
                        result: "created",
                        seq_no: 0,
                        status: 201,
                        failure_store_used: true,
                        shards_total: 2,
                        shards_successful: 1,
                    },
                    fs_id,
                );
            };
            if ds.failure_indices.is_empty() {
                ds.generation += 1;
                let name = generation_index_name(".fs", ds_name, now, ds.generation);
                ds.failure_indices.push(name);
            }
            ds.failure_indices.last().cloned().unwrap_or_default()
        };
        let created = now_millis(now);
        let idx = self.indices.entry(fs_index.clone()).or_insert_with(|| {
            let mut i = Index::new(
                &fs_index,
                Map::new(),
                Mappings {
                    dynamic: crate::mapping::Dynamic::False,
                    ..Mappings::default()
                },
                created,
            );
            i.data_stream = Some(ds_name.to_string());
            i.failure_index = true;
            i
        });
        let original: Value = serde_json::from_slice(req.source)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(req.source).into_owned()));
        let fs_doc = json!({
            "@timestamp": crate::dates::format_millis(created),
            "document": {"id": id, "index": ds_name, "routing": null, "source": original},
            "error": {"type": err.kind, "message": err.reason, "stack_trace": format!("{}: {}", err.kind, err.reason)}
        });
        let seq_no = idx.take_seq_no();
        let shards = idx.shard_copies();
        idx.put(StoredDoc {
            id: fs_id.clone(),
            source: Arc::new(fs_doc),
            version: 1,
            seq_no,
            ignored: Vec::new(),
        });
        (
            Written {
                version: 1,
                result: "created",
                seq_no,
                status: 201,
                failure_store_used: true,
                shards_total: shards,
                shards_successful: 1,
            },
            fs_id,
        )
    }

    fn write_index(
        &mut self,
        req: &WriteRequest<'_>,
        name: &str,
        faults: &WriteFaults,
        _now: DateTime<Utc>,
        mut outcome: ItemOutcome,
    ) -> ItemOutcome {
        let Some(idx) = self.indices.get_mut(name) else {
            outcome.result = Err(EsError::index_not_found(name));
            return outcome;
        };
        outcome.index = name.to_string();
        let id = match (req.op, req.id) {
            (_, Some(id)) => id.to_string(),
            (OpType::Index | OpType::Create, None) => random_id(20),
            (_, None) => {
                outcome.result = Err(EsError::validation(&["id is missing"]));
                return outcome;
            }
        };
        outcome.id = Some(id.clone());
        let existing = idx.get(&id).cloned();
        // Optimistic concurrency (reference "Optimistic concurrency control").
        if let (Some(seq), Some(term)) = (req.if_seq_no, req.if_primary_term) {
            let ok = matches!(&existing, Some(d) if d.seq_no == seq && term == 1);
            if !ok {
                let current = match &existing {
                    Some(d) => format!(
                        "current document has seqNo [{}] and primary term [1]",
                        d.seq_no
                    ),
                    None => "but no document was found".to_string(),
                };
                outcome.result = Err(version_conflict(
                    &format!("[{id}]: version conflict, required seqNo [{seq}], primary term [{term}]. {current}"),
                    idx,
                ));
                return outcome;
            }
        }
        match req.op {
            OpType::Index | OpType::Create => {
                if req.op == OpType::Create {
                    if let Some(d) = &existing {
                        outcome.result = Err(version_conflict_exists(&id, d.version, idx));
                        return outcome;
                    }
                }
                let doc = match parse_source(req.source) {
                    Ok(d) => d,
                    Err(e) => {
                        outcome.result = Err(e);
                        return outcome;
                    }
                };
                let mut version = existing.as_ref().map(|d| d.version + 1).unwrap_or(1);
                if req.version_type_external {
                    let v = req.version.unwrap_or(0);
                    if let Some(d) = &existing {
                        if d.version >= v {
                            outcome.result = Err(version_conflict(
                                &format!("[{id}]: version conflict, current version [{}] is higher or equal to the one provided [{v}]", d.version),
                                idx,
                            ));
                            return outcome;
                        }
                    }
                    version = v;
                }
                if faults.force_mapping_failure {
                    outcome.result = Err(EsError::new(400, "document_parsing_exception", format!(
                        "failed to parse field [message] of type [long] in document with id '{id}'. Preview of field's value: 'injected'"
                    )));
                    return outcome;
                }
                let out = match idx.mappings.check_document(&doc, &id, &faults.forced_types) {
                    Ok(o) => o,
                    Err(e) => {
                        outcome.result = Err(e);
                        return outcome;
                    }
                };
                idx.mappings.apply(&out);
                let seq_no = idx.take_seq_no();
                let shards = idx.shard_copies();
                let created = existing.is_none();
                idx.put(StoredDoc {
                    id,
                    source: Arc::new(Value::Object(doc)),
                    version,
                    seq_no,
                    ignored: out.ignored,
                });
                outcome.result = Ok(Written {
                    version,
                    result: if created { "created" } else { "updated" },
                    seq_no,
                    status: if created { 201 } else { 200 },
                    failure_store_used: false,
                    shards_total: shards,
                    shards_successful: 1,
                });
            }
            OpType::Delete => {
                let seq_no = idx.take_seq_no();
                let shards = idx.shard_copies();
                let (result, status, version) = match idx.remove(&id) {
                    Some(d) => ("deleted", 200, d.version + 1),
                    None => ("not_found", 404, 1),
                };
                outcome.result = Ok(Written {
                    version,
                    result,
                    seq_no,
                    status,
                    failure_store_used: false,
                    shards_total: shards,
                    shards_successful: 1,
                });
            }
            OpType::Update => {
                outcome.result = update_doc(idx, &id, existing, req.source, faults);
            }
        }
        outcome
    }
}

impl EsError {
    fn with_reason(mut self, reason: String) -> Self {
        self.reason = reason;
        self
    }
}

fn version_conflict(reason: &str, idx: &Index) -> EsError {
    EsError::new(409, "version_conflict_engine_exception", reason)
        .with("index_uuid", idx.uuid.clone())
        .with("shard", "0")
        .with("index", idx.name.clone())
}

fn version_conflict_exists(id: &str, version: u64, idx: &Index) -> EsError {
    version_conflict(
        &format!("[{id}]: version conflict, document already exists (current version [{version}])"),
        idx,
    )
}

/// Parses a document source; malformed JSON is a per-item
/// `document_parsing_exception`, as Elasticsearch parses sources on the shard.
fn parse_source(source: &[u8]) -> Result<Map<String, Value>, EsError> {
    match serde_json::from_slice::<Value>(source) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(EsError::new(
            400,
            "document_parsing_exception",
            "failed to parse, document is empty or not an object",
        )),
        Err(e) => Err(EsError::new(
            400,
            "document_parsing_exception",
            format!("[{}:{}] failed to parse: {e}", e.line(), e.column()),
        )
        .caused_by(EsError::new(400, "json_parse_exception", e.to_string()))),
    }
}

fn merge_doc(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(p)) => merge_doc(b, p),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Partial update (`doc`, `upsert`, `doc_as_upsert`, `detect_noop`); scripts
/// are not supported.
fn update_doc(
    idx: &mut Index,
    id: &str,
    existing: Option<StoredDoc>,
    body: &[u8],
    faults: &WriteFaults,
) -> Result<Written, EsError> {
    let body: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(EsError::parse(
                "[UpdateRequest] failed to parse update body",
            ))
        }
    };
    for k in body.keys() {
        if !matches!(
            k.as_str(),
            "doc"
                | "upsert"
                | "doc_as_upsert"
                | "detect_noop"
                | "_source"
                | "script"
                | "scripted_upsert"
        ) {
            return Err(EsError::parse(format!(
                "[UpdateRequest] unknown field [{k}]"
            )));
        }
    }
    if body.contains_key("script") {
        return Err(EsError::illegal_argument(
            "scripted updates are not supported by this test server",
        ));
    }
    let doc = body.get("doc").and_then(Value::as_object).cloned();
    let detect_noop = body
        .get("detect_noop")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let (new_source, version) = match existing {
        Some(d) => {
            let Some(patch) = doc else {
                return Err(EsError::validation(&["script or doc is missing"]));
            };
            let mut merged = d.source.as_object().cloned().unwrap_or_default();
            merge_doc(&mut merged, &patch);
            if detect_noop && Value::Object(merged.clone()) == *d.source {
                return Ok(Written {
                    version: d.version,
                    result: "noop",
                    seq_no: d.seq_no,
                    status: 200,
                    failure_store_used: false,
                    shards_total: 0,
                    shards_successful: 0,
                });
            }
            (merged, d.version + 1)
        }
        None => {
            let as_upsert = body
                .get("doc_as_upsert")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match (body.get("upsert").and_then(Value::as_object), doc) {
                (Some(u), _) => (u.clone(), 1),
                (None, Some(d)) if as_upsert => (d, 1),
                _ => {
                    return Err(EsError::new(
                        404,
                        "document_missing_exception",
                        format!("[{id}]: document missing"),
                    )
                    .with("index_uuid", idx.uuid.clone())
                    .with("shard", "0")
                    .with("index", idx.name.clone()))
                }
            }
        }
    };
    let out = idx
        .mappings
        .check_document(&new_source, id, &faults.forced_types)?;
    idx.mappings.apply(&out);
    let seq_no = idx.take_seq_no();
    let shards = idx.shard_copies();
    let created = version == 1;
    idx.put(StoredDoc {
        id: id.to_string(),
        source: Arc::new(Value::Object(new_source)),
        version,
        seq_no,
        ignored: out.ignored,
    });
    Ok(Written {
        version,
        result: if created { "created" } else { "updated" },
        seq_no,
        status: if created { 201 } else { 200 },
        failure_store_used: false,
        shards_total: shards,
        shards_successful: 1,
    })
}
