//! A small model of Elasticsearch's mappings: explicit mappings from templates,
//! dynamic mapping (dynamic templates, then the defaults of the reference page
//! "Dynamic field mapping": long / float / boolean / object / date-detected
//! strings / text with a `keyword` sub-field), and the per-type checks that
//! turn a bad value into a `document_parsing_exception`.
//!
//! Fields are kept in a flat map keyed by their full dotted path, which is how
//! Elasticsearch resolves them too (`{"a.b":1}` and `{"a":{"b":1}}` are the
//! same field).
//!
//! Not modelled: analysis (text is matched as tokens split on non-alphanumerics),
//! `copy_to`, runtime fields, multi-fields other than recording their type,
//! the `[line:column]` prefix Elasticsearch puts before parse errors.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use crate::dates;
use crate::error::EsError;
use crate::wildcard;

/// The `dynamic` setting of the root object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dynamic {
    True,
    False,
    Strict,
    Runtime,
}

/// One mapped field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// `keyword`, `long`, `object`, ...
    pub ty: String,
    /// The mapping parameters as given (`ignore_above`, `value`, `fields`, ...).
    pub params: Map<String, Value>,
}

impl Field {
    pub fn of_type(ty: &str) -> Self {
        Field {
            ty: ty.to_string(),
            params: Map::new(),
        }
    }

    fn from_mapping(ty: &str, mut params: Map<String, Value>) -> Self {
        params.remove("type");
        params.remove("properties");
        Field {
            ty: ty.to_string(),
            params,
        }
    }

    fn is_object(&self) -> bool {
        matches!(self.ty.as_str(), "object" | "nested")
    }

    /// Types whose values may be any JSON (objects included).
    fn accepts_anything(&self) -> bool {
        matches!(
            self.ty.as_str(),
            "flattened"
                | "geo_point"
                | "geo_shape"
                | "shape"
                | "point"
                | "passthrough"
                | "dense_vector"
                | "sparse_vector"
                | "rank_features"
                | "histogram"
                | "aggregate_metric_double"
                | "percolator"
                | "join"
                | "completion"
                | "semantic_text"
                | "alias"
                | "binary"
        )
    }

    /// Types that honour `ignore_malformed` (reference: "ignore_malformed"
    /// mapping parameter: numeric, date, date_nanos, geo_point, geo_shape, ip).
    fn supports_ignore_malformed(&self) -> bool {
        is_numeric(&self.ty) || matches!(self.ty.as_str(), "date" | "date_nanos" | "ip")
    }
}

/// A dynamic template (reference: "Dynamic templates").
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicTemplate {
    pub name: String,
    match_mapping_type: Vec<String>,
    unmatch_mapping_type: Vec<String>,
    match_: Vec<String>,
    unmatch: Vec<String>,
    path_match: Vec<String>,
    path_unmatch: Vec<String>,
    mapping: Map<String, Value>,
    /// The template as given, for rendering.
    pub raw: Value,
}

fn string_or_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

impl DynamicTemplate {
    fn parse(name: &str, body: &Value) -> Result<Self, EsError> {
        let obj = body.as_object().ok_or_else(|| {
            EsError::new(
                400,
                "mapper_parsing_exception",
                format!("dynamic template [{name}] must be an object"),
            )
        })?;
        let mapping = obj
            .get("mapping")
            .or_else(|| obj.get("runtime"))
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| {
                EsError::new(
                    400,
                    "mapper_parsing_exception",
                    format!("template [{name}] must have either mapping or runtime set"),
                )
            })?;
        Ok(DynamicTemplate {
            name: name.to_string(),
            match_mapping_type: string_or_list(obj.get("match_mapping_type")),
            unmatch_mapping_type: string_or_list(obj.get("unmatch_mapping_type")),
            match_: string_or_list(obj.get("match")),
            unmatch: string_or_list(obj.get("unmatch")),
            path_match: string_or_list(obj.get("path_match")),
            path_unmatch: string_or_list(obj.get("path_unmatch")),
            mapping,
            raw: json!({ name: body }),
        })
    }

    fn applies(&self, path: &str, leaf: &str, json_type: &str) -> bool {
        let type_ok = self.match_mapping_type.is_empty()
            || self
                .match_mapping_type
                .iter()
                .any(|t| t == "*" || t == json_type);
        let type_excluded = self.unmatch_mapping_type.iter().any(|t| t == json_type);
        let name_ok =
            self.match_.is_empty() || self.match_.iter().any(|p| wildcard::matches(p, leaf));
        let name_excluded = self.unmatch.iter().any(|p| wildcard::matches(p, leaf));
        let path_ok = self.path_match.is_empty()
            || self.path_match.iter().any(|p| wildcard::matches(p, path));
        let path_excluded = self.path_unmatch.iter().any(|p| wildcard::matches(p, path));
        type_ok && !type_excluded && name_ok && !name_excluded && path_ok && !path_excluded
    }

    fn field_for(&self, json_type: &str, default_ty: &str) -> Field {
        let ty = match self.mapping.get("type").and_then(Value::as_str) {
            Some(t) => t
                .replace("{dynamic_type}", json_type)
                .replace("{name}", json_type),
            None => default_ty.to_string(),
        };
        Field::from_mapping(&ty, self.mapping.clone())
    }
}

/// The mappings of one index.
#[derive(Debug, Clone, PartialEq)]
pub struct Mappings {
    pub dynamic: Dynamic,
    pub date_detection: bool,
    pub numeric_detection: bool,
    pub dynamic_templates: Vec<DynamicTemplate>,
    pub fields: BTreeMap<String, Field>,
    /// `index.mapping.ignore_malformed` from the index settings.
    pub ignore_malformed: bool,
}

impl Default for Mappings {
    fn default() -> Self {
        Mappings {
            dynamic: Dynamic::True,
            date_detection: true,
            numeric_detection: false,
            dynamic_templates: Vec::new(),
            fields: BTreeMap::new(),
            ignore_malformed: false,
        }
    }
}

/// What indexing one document would change or skip.
#[derive(Debug, Default, Clone)]
pub struct DocOutcome {
    /// Mapping updates to apply if the document is accepted.
    pub new_fields: Vec<(String, Field)>,
    /// Fields dropped by `ignore_malformed` (Elasticsearch's `_ignored`).
    pub ignored: Vec<String>,
}

/// Where a value failed to parse.
struct Conflict {
    cause: Option<EsError>,
}

pub fn is_numeric(ty: &str) -> bool {
    matches!(
        ty,
        "long"
            | "integer"
            | "short"
            | "byte"
            | "unsigned_long"
            | "double"
            | "float"
            | "half_float"
            | "scaled_float"
    )
}

fn is_stringy(ty: &str) -> bool {
    matches!(
        ty,
        "keyword"
            | "constant_keyword"
            | "wildcard"
            | "text"
            | "match_only_text"
            | "search_as_you_type"
            | "version"
            | "token_count"
            | "annotated_text"
            | "counted_keyword"
    )
}

/// A short preview of a value, as Elasticsearch prints it in parse errors
/// (objects look like Java maps: `{a=b}`).
fn preview(v: &Value) -> String {
    match v {
        Value::String(s) => s.chars().take(100).collect(),
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", preview(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(preview).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn json_type_of(v: &Value, date_detection: bool) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "double",
        Value::Number(_) => "long",
        Value::String(s) if date_detection && dates::looks_like_date(s) => "date",
        Value::String(_) => "string",
        Value::Object(_) => "object",
        Value::Array(_) | Value::Null => "string",
    }
}

impl Mappings {
    /// Builds mappings from a (merged) `mappings` object of a template.
    pub fn from_json(mappings: &Value) -> Result<Self, EsError> {
        let mut m = Mappings::default();
        m.merge_json(mappings)?;
        Ok(m)
    }

    /// Merges another `mappings` object on top (later wins), as composing
    /// component templates does.
    pub fn merge_json(&mut self, mappings: &Value) -> Result<(), EsError> {
        let Some(obj) = mappings.as_object() else {
            if mappings.is_null() {
                return Ok(());
            }
            return Err(EsError::new(
                400,
                "mapper_parsing_exception",
                "mappings must be an object",
            ));
        };
        for (k, v) in obj {
            match k.as_str() {
                "dynamic" => {
                    self.dynamic = match v {
                        Value::Bool(true) => Dynamic::True,
                        Value::Bool(false) => Dynamic::False,
                        Value::String(s) if s == "true" => Dynamic::True,
                        Value::String(s) if s == "false" => Dynamic::False,
                        Value::String(s) if s == "strict" => Dynamic::Strict,
                        Value::String(s) if s == "runtime" => Dynamic::Runtime,
                        other => {
                            return Err(EsError::new(
                                400,
                                "mapper_parsing_exception",
                                format!("Could not convert [dynamic] to boolean or strict/runtime, got [{other}]"),
                            ))
                        }
                    }
                }
                "date_detection" => self.date_detection = v.as_bool().unwrap_or(true),
                "numeric_detection" => self.numeric_detection = v.as_bool().unwrap_or(false),
                "dynamic_templates" => {
                    let list = v.as_array().ok_or_else(|| {
                        EsError::new(400, "mapper_parsing_exception", "Dynamic template syntax error. An array of named objects is expected.")
                    })?;
                    for entry in list {
                        let Some((name, body)) = entry.as_object().and_then(|o| o.iter().next()) else {
                            return Err(EsError::new(
                                400,
                                "mapper_parsing_exception",
                                "Dynamic template syntax error. An array of named objects is expected.",
                            ));
                        };
                        let t = DynamicTemplate::parse(name, body)?;
                        // Same-named templates from later sources replace earlier ones.
                        if let Some(pos) = self.dynamic_templates.iter().position(|d| d.name == t.name) {
                            self.dynamic_templates[pos] = t;
                        } else {
                            self.dynamic_templates.push(t);
                        }
                    }
                }
                "properties" => self.merge_properties("", v)?,
                // Metadata fields and settings we accept without modelling them.
                "_source" | "_meta" | "_routing" | "runtime" | "dynamic_date_formats" | "subobjects" | "_data_stream_timestamp" | "enabled" => {}
                other => {
                    return Err(EsError::new(
                        400,
                        "mapper_parsing_exception",
                        format!("Root mapping definition has unsupported parameters:  [{other} : {v}]"),
                    ))
                }
            }
        }
        Ok(())
    }

    fn merge_properties(&mut self, prefix: &str, props: &Value) -> Result<(), EsError> {
        let Some(props) = props.as_object() else {
            return Err(EsError::new(
                400,
                "mapper_parsing_exception",
                "[properties] must be an object",
            ));
        };
        for (name, def) in props {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            let Some(def_obj) = def.as_object() else {
                return Err(EsError::new(
                    400,
                    "mapper_parsing_exception",
                    format!("Expected map for property [fields] on field [{name}] but got a class java.lang.String"),
                ));
            };
            // Dotted names create the intermediate objects.
            let mut acc = String::new();
            for part in path.split('.').take(path.split('.').count() - 1) {
                if !acc.is_empty() {
                    acc.push('.');
                }
                acc.push_str(part);
                self.fields
                    .entry(acc.clone())
                    .or_insert_with(|| Field::of_type("object"));
            }
            // A property without `type` is an object (with or without `properties`).
            let ty = def_obj
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("object");
            self.fields
                .insert(path.clone(), Field::from_mapping(ty, def_obj.clone()));
            if let Some(sub) = def_obj.get("properties") {
                self.merge_properties(&path, sub)?;
            }
        }
        Ok(())
    }

    /// The type of a field, following `.keyword`-style multi-fields.
    pub fn field_type(&self, path: &str) -> Option<&str> {
        if let Some(f) = self.fields.get(path) {
            return Some(f.ty.as_str());
        }
        let (parent, sub) = path.rsplit_once('.')?;
        let f = self.fields.get(parent)?;
        f.params
            .get("fields")
            .and_then(|fs| fs.get(sub))
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
    }

    /// If `path` names a multi-field (`message.keyword`), the parent field path.
    pub fn multi_field_parent<'a>(&self, path: &'a str) -> Option<&'a str> {
        if self.fields.contains_key(path) {
            return None;
        }
        let (parent, sub) = path.rsplit_once('.')?;
        let f = self.fields.get(parent)?;
        f.params
            .get("fields")
            .and_then(|fs| fs.get(sub))
            .map(|_| parent)
    }

    /// Applies the mapping updates of an accepted document.
    pub fn apply(&mut self, outcome: &DocOutcome) {
        for (path, field) in &outcome.new_fields {
            self.fields.insert(path.clone(), field.clone());
        }
    }

    /// Checks a document against the mappings; `forced` overrides field types
    /// (fault injection). Returns the mapping updates, or the
    /// `document_parsing_exception` Elasticsearch would answer.
    pub fn check_document(
        &self,
        source: &Map<String, Value>,
        doc_id: &str,
        forced: &HashMap<String, String>,
    ) -> Result<DocOutcome, EsError> {
        let mut out = DocOutcome::default();
        self.walk_object(source, "", doc_id, forced, &mut out)?;
        Ok(out)
    }

    fn lookup<'a>(
        &'a self,
        path: &str,
        out: &'a DocOutcome,
        forced: &HashMap<String, String>,
    ) -> Option<Field> {
        if let Some(t) = forced.get(path) {
            return Some(Field::of_type(t));
        }
        if let Some((_, f)) = out.new_fields.iter().rev().find(|(p, _)| p == path) {
            return Some(f.clone());
        }
        self.fields.get(path).cloned()
    }

    fn walk_object(
        &self,
        obj: &Map<String, Value>,
        prefix: &str,
        doc_id: &str,
        forced: &HashMap<String, String>,
        out: &mut DocOutcome,
    ) -> Result<(), EsError> {
        for (key, value) in obj {
            if key.is_empty() || key.trim().is_empty() {
                return Err(doc_parsing(
                    "field name cannot be an empty string".to_string(),
                ));
            }
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if prefix.is_empty() && key.starts_with('_') && is_metadata_field(key) {
                return Err(doc_parsing(format!(
                    "Field [{key}] is a metadata field and cannot be added inside a document. Use the index API request parameters."
                )));
            }
            self.walk_value(value, &path, doc_id, forced, out)?;
        }
        Ok(())
    }

    fn walk_value(
        &self,
        value: &Value,
        path: &str,
        doc_id: &str,
        forced: &HashMap<String, String>,
        out: &mut DocOutcome,
    ) -> Result<(), EsError> {
        match value {
            Value::Null => Ok(()),
            Value::Array(items) => {
                for item in items {
                    self.walk_value(item, path, doc_id, forced, out)?;
                }
                Ok(())
            }
            _ => {
                let field = match self.lookup(path, out, forced) {
                    Some(f) => f,
                    None => match self.dynamic_field(value, path)? {
                        Some(f) => {
                            // Intermediate objects of a dotted path are mapped too.
                            let mut acc = String::new();
                            let parts: Vec<&str> = path.split('.').collect();
                            for part in &parts[..parts.len() - 1] {
                                if !acc.is_empty() {
                                    acc.push('.');
                                }
                                acc.push_str(part);
                                if self.lookup(&acc, out, forced).is_none() {
                                    out.new_fields.push((acc.clone(), Field::of_type("object")));
                                }
                            }
                            out.new_fields.push((path.to_string(), f.clone()));
                            f
                        }
                        // dynamic: false / runtime: kept in _source, not indexed.
                        None => return Ok(()),
                    },
                };
                self.check_value(&field, value, path, doc_id, forced, out)
            }
        }
    }

    /// Decides the mapping of a new field, or `None` when `dynamic` says to
    /// leave it unmapped. `strict` is an error.
    fn dynamic_field(&self, value: &Value, path: &str) -> Result<Option<Field>, EsError> {
        match self.dynamic {
            Dynamic::Strict => {
                let (parent, leaf) = path.rsplit_once('.').unwrap_or(("_doc", path));
                return Err(EsError::new(
                    400,
                    "strict_dynamic_mapping_exception",
                    format!("mapping set to strict, dynamic introduction of [{leaf}] within [{parent}] is not allowed"),
                ));
            }
            Dynamic::False | Dynamic::Runtime => return Ok(None),
            Dynamic::True => {}
        }
        let json_type = json_type_of(value, self.date_detection);
        let default_ty = match json_type {
            "boolean" => "boolean",
            "double" => "float",
            "long" => "long",
            "date" => "date",
            "object" => "object",
            _ => "text",
        };
        let leaf = path.rsplit('.').next().unwrap_or(path);
        if let Some(t) = self
            .dynamic_templates
            .iter()
            .find(|t| t.applies(path, leaf, json_type))
        {
            return Ok(Some(t.field_for(json_type, default_ty)));
        }
        let field = if default_ty == "text" {
            // Reference "Dynamic field mapping": strings become `text` with a
            // `keyword` sub-field (ignore_above 256).
            let mut params = Map::new();
            params.insert(
                "fields".into(),
                json!({"keyword": {"type": "keyword", "ignore_above": 256}}),
            );
            Field {
                ty: "text".into(),
                params,
            }
        } else {
            Field::of_type(default_ty)
        };
        Ok(Some(field))
    }

    fn check_value(
        &self,
        field: &Field,
        value: &Value,
        path: &str,
        doc_id: &str,
        forced: &HashMap<String, String>,
        out: &mut DocOutcome,
    ) -> Result<(), EsError> {
        if field.is_object() {
            return match value {
                Value::Object(inner) => {
                    if field.params.get("enabled") == Some(&Value::Bool(false)) {
                        return Ok(());
                    }
                    self.walk_object(inner, path, doc_id, forced, out)
                }
                _ => Err(doc_parsing(format!(
                    "object mapping for [{path}] tried to parse field [{}] as object, but found a concrete value",
                    path.rsplit('.').next().unwrap_or(path)
                ))),
            };
        }
        if field.accepts_anything() {
            return Ok(());
        }
        let result = check_scalar(field, value, path);
        match result {
            Ok(Some(constant)) => {
                // First value of an unset constant_keyword fixes it.
                let mut f = field.clone();
                f.params.insert("value".into(), Value::String(constant));
                out.new_fields.push((path.to_string(), f));
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(conflict) => {
                let ignore = field
                    .params
                    .get("ignore_malformed")
                    .and_then(Value::as_bool)
                    .unwrap_or(self.ignore_malformed);
                if ignore && field.supports_ignore_malformed() && !value.is_object() {
                    out.ignored.push(path.to_string());
                    return Ok(());
                }
                if field.ty == "constant_keyword" {
                    if let Some(cause) = conflict.cause {
                        return Err(cause);
                    }
                }
                let mut err = doc_parsing(format!(
                    "failed to parse field [{path}] of type [{}] in document with id '{doc_id}'. Preview of field's value: '{}'",
                    field.ty,
                    preview(value)
                ));
                if let Some(c) = conflict.cause {
                    err = err.caused_by(c);
                }
                Err(err)
            }
        }
    }
}

fn is_metadata_field(key: &str) -> bool {
    matches!(
        key,
        "_id"
            | "_index"
            | "_source"
            | "_routing"
            | "_seq_no"
            | "_version"
            | "_primary_term"
            | "_ignored"
            | "_data_stream_timestamp"
            | "_field_names"
            | "_tier"
            | "_doc_count"
            | "_nested_path"
            | "_feature"
            | "_tsid"
    )
}

fn doc_parsing(reason: String) -> EsError {
    EsError::new(400, "document_parsing_exception", reason)
}

/// Checks one scalar (or an object where a scalar is expected). `Ok(Some(v))`
/// asks to fix an unset `constant_keyword` to `v`.
fn check_scalar(field: &Field, value: &Value, path: &str) -> Result<Option<String>, Conflict> {
    let ty = field.ty.as_str();
    if let Value::Object(_) = value {
        return Err(Conflict {
            cause: Some(EsError::new(
                500,
                "illegal_state_exception",
                "Can't get text on a START_OBJECT",
            )),
        });
    }
    if ty == "constant_keyword" {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return match field.params.get("value").and_then(Value::as_str) {
            None => Ok(Some(text)),
            Some(v) if v == text => Ok(None),
            Some(v) => Err(Conflict {
                cause: Some(doc_parsing(format!(
                    "[constant_keyword] field [{path}] only accepts values that are equal to the value defined in the mappings [{v}], but got [{text}]"
                ))),
            }),
        };
    }
    if is_stringy(ty) {
        return Ok(None);
    }
    if is_numeric(ty) {
        return check_number(ty, value).map(|_| None);
    }
    match ty {
        "date" | "date_nanos" => {
            if dates::parse_date_value(value).is_some() && !value.is_boolean() {
                Ok(None)
            } else {
                Err(Conflict {
                    cause: Some(EsError::illegal_argument(format!(
                        "failed to parse date field [{}] with format [strict_date_optional_time||epoch_millis]",
                        preview(value)
                    ))),
                })
            }
        }
        "boolean" => match value {
            Value::Bool(_) => Ok(None),
            Value::String(s) if s == "true" || s == "false" || s.is_empty() => Ok(None),
            other => Err(Conflict {
                cause: Some(EsError::illegal_argument(format!(
                    "Failed to parse value [{}] as only [true] or [false] are allowed.",
                    preview(other)
                ))),
            }),
        },
        "ip" => match value {
            Value::String(s) if s.parse::<std::net::IpAddr>().is_ok() => Ok(None),
            other => Err(Conflict {
                cause: Some(EsError::illegal_argument(format!(
                    "'{}' is not an IP string literal.",
                    preview(other)
                ))),
            }),
        },
        // Types we do not model accept any scalar.
        _ => Ok(None),
    }
}

fn check_number(ty: &str, value: &Value) -> Result<(), Conflict> {
    let as_f64 =
        match value {
            Value::Number(n) => n.as_f64(),
            // `coerce` (on by default) accepts numeric strings.
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) => Some(f),
                Err(_) => {
                    return Err(Conflict {
                        cause: Some(EsError::illegal_argument(format!(
                            "For input string: \"{s}\""
                        ))),
                    })
                }
            },
            Value::Bool(_) => return Err(Conflict {
                cause: Some(EsError::illegal_argument(
                    "Current token (VALUE_TRUE) not numeric, can not use numeric value accessors",
                )),
            }),
            _ => None,
        };
    let Some(f) = as_f64 else {
        return Err(Conflict { cause: None });
    };
    let (lo, hi, name) = match ty {
        "integer" => (i32::MIN as f64, i32::MAX as f64, "integer"),
        "short" => (i16::MIN as f64, i16::MAX as f64, "short"),
        "byte" => (i8::MIN as f64, i8::MAX as f64, "byte"),
        "long" => (i64::MIN as f64, i64::MAX as f64, "long"),
        "unsigned_long" => (0.0, u64::MAX as f64, "unsigned_long"),
        _ => (f64::MIN, f64::MAX, ty),
    };
    if !f.is_finite() || f < lo || f > hi {
        return Err(Conflict {
            cause: Some(EsError::illegal_argument(format!(
                "Value [{}] is out of range for {} {name}",
                preview(value),
                if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                }
            ))),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn index(m: &mut Mappings, v: Value) -> Result<DocOutcome, EsError> {
        let out = m.check_document(&doc(v), "1", &HashMap::new())?;
        m.apply(&out);
        Ok(out)
    }

    #[test]
    fn first_value_fixes_the_dynamic_type() {
        let mut m = Mappings::default();
        index(&mut m, json!({"n": 5, "f": 1.5, "b": true, "s": "x", "d": "2026-11-26T10:00:00Z", "o": {"k": "v"}})).unwrap();
        assert_eq!(m.field_type("n"), Some("long"));
        assert_eq!(m.field_type("f"), Some("float"));
        assert_eq!(m.field_type("b"), Some("boolean"));
        assert_eq!(m.field_type("s"), Some("text"));
        assert_eq!(m.field_type("s.keyword"), Some("keyword"));
        assert_eq!(m.field_type("d"), Some("date"));
        assert_eq!(m.field_type("o"), Some("object"));
        assert_eq!(m.field_type("o.k"), Some("text"));
    }

    #[test]
    fn non_numeric_string_into_long_is_a_document_parsing_exception() {
        let mut m = Mappings::default();
        index(&mut m, json!({"n": 5})).unwrap();
        let err = index(&mut m, json!({"n": "abc"})).unwrap_err();
        assert_eq!(err.kind, "document_parsing_exception");
        assert_eq!(err.status, 400);
        assert!(
            err.reason
                .contains("failed to parse field [n] of type [long]"),
            "{}",
            err.reason
        );
        assert_eq!(err.caused_by.unwrap().reason, "For input string: \"abc\"");
        // Numeric strings are coerced.
        index(&mut m, json!({"n": "12"})).unwrap();
    }

    #[test]
    fn object_into_keyword_and_scalar_into_object_are_rejected() {
        let mut m =
            Mappings::from_json(&json!({"properties": {"k": {"type": "keyword"}}})).unwrap();
        let err = index(&mut m, json!({"k": {"a": 1}})).unwrap_err();
        assert!(err.reason.contains("of type [keyword]"));
        assert!(err.reason.contains("'{a=1}'"));
        index(&mut m, json!({"o": {"a": 1}})).unwrap();
        let err = index(&mut m, json!({"o": "flat"})).unwrap_err();
        assert!(
            err.reason.contains("object mapping for [o]"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn ignore_malformed_drops_bad_numbers_but_not_bad_keywords() {
        let mut m = Mappings::from_json(
            &json!({"properties": {"n": {"type": "long"}, "k": {"type": "keyword"}}}),
        )
        .unwrap();
        m.ignore_malformed = true;
        let out = index(&mut m, json!({"n": "abc"})).unwrap();
        assert_eq!(out.ignored, vec!["n".to_string()]);
        assert!(index(&mut m, json!({"k": {"x": 1}})).is_err());
    }

    #[test]
    fn dynamic_templates_win_over_defaults() {
        let mut m = Mappings::from_json(&json!({
            "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}]
        }))
        .unwrap();
        index(&mut m, json!({"service": {"name": "payment"}})).unwrap();
        assert_eq!(m.field_type("service.name"), Some("keyword"));
    }

    #[test]
    fn strict_mapping_refuses_new_fields() {
        let mut m = Mappings::from_json(
            &json!({"dynamic": "strict", "properties": {"a": {"type": "keyword"}}}),
        )
        .unwrap();
        let err = index(&mut m, json!({"b": 1})).unwrap_err();
        assert_eq!(err.kind, "strict_dynamic_mapping_exception");
    }

    #[test]
    fn constant_keyword_takes_first_value_then_rejects_others() {
        let mut m = Mappings::from_json(&json!({"properties": {"data_stream.type": {"type": "constant_keyword", "value": "logs"}, "data_stream.dataset": {"type": "constant_keyword"}}})).unwrap();
        index(
            &mut m,
            json!({"data_stream": {"type": "logs", "dataset": "payment"}}),
        )
        .unwrap();
        assert!(index(&mut m, json!({"data_stream": {"dataset": "other"}})).is_err());
        assert!(index(&mut m, json!({"data_stream.type": "metrics"})).is_err());
    }

    #[test]
    fn forced_type_overrides_the_mapping() {
        let m = Mappings::default();
        let forced = HashMap::from([("message".to_string(), "long".to_string())]);
        let err = m
            .check_document(&doc(json!({"message": "hello"})), "x", &forced)
            .unwrap_err();
        assert_eq!(err.kind, "document_parsing_exception");
    }
}
