//! Component and composable index templates: parsing with Elasticsearch's
//! field rules, the checks `PUT _index_template` makes against the rest of the
//! cluster, and how a template composes the settings, mappings and data
//! stream options of a new index.
//!
//! Sources: reference "Create or update an index template" /
//! "Create or update a component template" and the specification
//! (`specification/indices/put_index_template/`,
//! `specification/cluster/put_component_template/`). Parser names in error
//! messages (`[index_template]`, `[component_template]`, `[template]`) are the
//! ones Elasticsearch's ObjectParsers use.

use serde_json::{json, Map, Value};

use crate::error::EsError;
use crate::mapping::Mappings;
use crate::wildcard;

/// A stored component template.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentTemplate {
    pub name: String,
    /// The body as stored (what GET returns under `component_template`).
    pub body: Value,
}

/// A stored composable index template.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexTemplate {
    pub name: String,
    pub index_patterns: Vec<String>,
    pub composed_of: Vec<String>,
    pub ignore_missing_component_templates: Vec<String>,
    pub priority: i64,
    pub data_stream: Option<Value>,
    pub body: Value,
}

fn unknown_field(parser: &str, field: &str) -> EsError {
    EsError::parse(format!("[{parser}] unknown field [{field}]"))
}

fn required(field: &str) -> EsError {
    EsError::parse(format!("Required [{field}]"))
}

/// Validates a template name like Elasticsearch's MetadataIndexTemplateService.
pub fn validate_template_name(kind: &str, name: &str) -> Result<(), EsError> {
    let bad = name.contains(' ')
        || name.contains(',')
        || name.contains('#')
        || name.starts_with('_')
        || name.to_lowercase() != name
        || name.is_empty();
    if bad {
        return Err(EsError::new(
            400,
            "invalid_index_template_exception",
            format!("{kind} [{name}] invalid, cause [name must not contain a space, comma, '#', start with '_' or contain uppercase characters]"),
        ));
    }
    Ok(())
}

/// Checks the inner `template` object (shared by both kinds of template).
fn parse_inner_template(v: &Value) -> Result<(), EsError> {
    let obj = v.as_object().ok_or_else(|| {
        EsError::parse("[template] template doesn't support values of type: VALUE_STRING")
    })?;
    for (k, val) in obj {
        match k.as_str() {
            "settings" => {
                if !val.is_object() && !val.is_null() {
                    return Err(EsError::parse(
                        "[template] failed to parse field [settings]",
                    ));
                }
            }
            "mappings" => {
                // Validate the mappings parse on their own.
                Mappings::from_json(val).map_err(|e| {
                    EsError::new(
                        400,
                        "mapper_parsing_exception",
                        format!("Failed to parse mapping: {}", e.reason),
                    )
                    .caused_by(e)
                })?;
            }
            "aliases" | "lifecycle" => {}
            "data_stream_options" => parse_data_stream_options(val)?,
            other => return Err(unknown_field("template", other)),
        }
    }
    Ok(())
}

fn parse_data_stream_options(v: &Value) -> Result<(), EsError> {
    let Some(obj) = v.as_object() else {
        return if v.is_null() {
            Ok(())
        } else {
            Err(EsError::parse("[data_stream_options] must be an object"))
        };
    };
    for (k, val) in obj {
        match k.as_str() {
            "failure_store" => {
                let Some(fs) = val.as_object() else {
                    if val.is_null() {
                        continue;
                    }
                    return Err(EsError::parse("[failure_store] must be an object"));
                };
                for (fk, fv) in fs {
                    match fk.as_str() {
                        "enabled" => {
                            if !fv.is_boolean() && !fv.is_null() {
                                return Err(EsError::parse(format!(
                                    "[failure_store] failed to parse field [enabled]: expected a boolean, got [{fv}]"
                                )));
                            }
                        }
                        "lifecycle" => {}
                        other => return Err(unknown_field("failure_store", other)),
                    }
                }
            }
            other => return Err(unknown_field("data_stream_options", other)),
        }
    }
    Ok(())
}

fn string_list(parser: &str, field: &str, v: &Value) -> Result<Vec<String>, EsError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str().map(String::from).ok_or_else(|| {
                    EsError::parse(format!("[{parser}] failed to parse field [{field}]"))
                })
            })
            .collect(),
        _ => Err(EsError::parse(format!(
            "[{parser}] failed to parse field [{field}]"
        ))),
    }
}

/// Parses a component template body (`template` required).
pub fn parse_component_template(name: &str, body: &Value) -> Result<ComponentTemplate, EsError> {
    validate_template_name("component_template", name)?;
    let obj = body
        .as_object()
        .ok_or_else(|| EsError::parse("request body is required"))?;
    for (k, v) in obj {
        match k.as_str() {
            "template" => parse_inner_template(v)?,
            "version" => {
                if !v.is_i64() && !v.is_u64() && !v.is_null() {
                    return Err(EsError::parse(
                        "[component_template] failed to parse field [version]",
                    ));
                }
            }
            "_meta" | "deprecated" => {}
            other => return Err(unknown_field("component_template", other)),
        }
    }
    if !obj.contains_key("template") {
        return Err(required("template"));
    }
    let mut body = body.clone();
    if let Some(settings) = body
        .get_mut("template")
        .and_then(|t| t.get_mut("settings"))
        .filter(|s| s.is_object())
    {
        *settings = normalise_settings(settings);
    }
    Ok(ComponentTemplate {
        name: name.to_string(),
        body,
    })
}

/// A template's `settings` as Elasticsearch keeps and returns them: the put action
/// normalises them into a `Settings` object (`normalizePrefix("index.")`), which renders
/// nested under `index` with every value a string (`{"number_of_replicas": 0}` reads
/// back as `{"index": {"number_of_replicas": "0"}}`; lists as lists of strings).
pub fn normalise_settings(v: &Value) -> Value {
    let mut flat = Map::new();
    flatten_settings("", v, &mut flat);
    let mut out = Map::new();
    for (key, val) in flat {
        let val = match val {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(_) | Value::Null => item,
                        other => Value::String(other.to_string()),
                    })
                    .collect(),
            ),
            other => other,
        };
        insert_nested(&mut out, &key, val);
    }
    Value::Object(out)
}

/// Puts `val` at the dotted `key`, one object per segment; a segment already holding a
/// value keeps the rest of the key flat, as `Settings` does for such a clash.
fn insert_nested(out: &mut Map<String, Value>, key: &str, val: Value) {
    let Some((head, rest)) = key.split_once('.') else {
        out.insert(key.to_string(), val);
        return;
    };
    if !matches!(out.get(head), None | Some(Value::Object(_))) {
        out.insert(key.to_string(), val);
        return;
    }
    if let Value::Object(inner) = out
        .entry(head.to_string())
        .or_insert_with(|| Value::Object(Map::new()))
    {
        insert_nested(inner, rest, val);
    }
}

/// Parses a composable index template body (`index_patterns` required).
pub fn parse_index_template(name: &str, body: &Value) -> Result<IndexTemplate, EsError> {
    validate_template_name("index_template", name)?;
    let obj = body
        .as_object()
        .ok_or_else(|| EsError::parse("request body is required"))?;
    let mut t = IndexTemplate {
        name: name.to_string(),
        index_patterns: Vec::new(),
        composed_of: Vec::new(),
        ignore_missing_component_templates: Vec::new(),
        priority: 0,
        data_stream: None,
        body: body.clone(),
    };
    for (k, v) in obj {
        match k.as_str() {
            "index_patterns" => t.index_patterns = string_list("index_template", k, v)?,
            "composed_of" => t.composed_of = string_list("index_template", k, v)?,
            "ignore_missing_component_templates" => {
                t.ignore_missing_component_templates = string_list("index_template", k, v)?
            }
            "priority" => {
                t.priority = match v {
                    Value::Null => 0,
                    Value::Number(n) if n.as_i64().is_some() => n.as_i64().unwrap_or(0),
                    _ => {
                        return Err(EsError::parse(
                            "[index_template] failed to parse field [priority]",
                        ))
                    }
                };
            }
            "template" => parse_inner_template(v)?,
            "data_stream" => {
                let Some(ds) = v.as_object() else {
                    return Err(EsError::parse(
                        "[index_template] failed to parse field [data_stream]",
                    ));
                };
                for dk in ds.keys() {
                    if !matches!(dk.as_str(), "hidden" | "allow_custom_routing") {
                        return Err(unknown_field("data_stream_template", dk));
                    }
                }
                t.data_stream = Some(v.clone());
            }
            "version" | "_meta" | "allow_auto_create" | "deprecated" => {}
            other => return Err(unknown_field("index_template", other)),
        }
    }
    if !obj.contains_key("index_patterns") {
        return Err(required("index_patterns"));
    }
    if t.index_patterns.is_empty() {
        return Err(EsError::validation(&["index patterns are missing"]));
    }
    if t.priority < 0 {
        return Err(EsError::validation(&[
            "index template priority must be >= 0",
        ]));
    }
    for p in &t.index_patterns {
        if p.contains(' ') || p.contains(',') || p.starts_with('_') || p.contains('#') {
            return Err(EsError::new(
                400,
                "invalid_index_template_exception",
                format!("index_template [{name}] invalid, cause [index_pattern [{p}] must not contain a space, a comma, a '#' or start with '_']"),
            ));
        }
    }
    Ok(t)
}

/// The checks against other templates that `PUT _index_template` makes.
pub fn validate_against_cluster<'a>(
    t: &IndexTemplate,
    components: &dyn Fn(&str) -> Option<&'a ComponentTemplate>,
    others: &mut dyn Iterator<Item = &'a IndexTemplate>,
) -> Result<(), EsError> {
    let missing: Vec<&String> = t
        .composed_of
        .iter()
        .filter(|c| components(c).is_none() && !t.ignore_missing_component_templates.contains(c))
        .collect();
    if !missing.is_empty() {
        let list = missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(EsError::new(
            400,
            "invalid_index_template_exception",
            format!(
                "index_template [{}] invalid, cause [index template [{}] specifies component templates [{list}] that do not exist]",
                t.name, t.name
            ),
        ));
    }
    let mut conflicts: Vec<(&str, &[String])> = Vec::new();
    for other in others {
        if other.name == t.name || other.priority != t.priority {
            continue;
        }
        let overlap = t.index_patterns.iter().any(|a| {
            other
                .index_patterns
                .iter()
                .any(|b| wildcard::patterns_intersect(a, b))
        });
        if overlap {
            conflicts.push((other.name.as_str(), other.index_patterns.as_slice()));
        }
    }
    if !conflicts.is_empty() {
        let names = conflicts
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(",");
        let detail = conflicts
            .iter()
            .map(|(n, p)| format!("{n} => [{}]", p.join(", ")))
            .collect::<Vec<_>>()
            .join(",");
        return Err(EsError::illegal_argument(format!(
            "index template [{}] has index patterns [{}] matching patterns from existing templates [{names}] with patterns ({detail}) that have the same priority [{}], multiple index templates may not match during index creation, please use a different priority",
            t.name,
            t.index_patterns.join(", "),
            t.priority
        )));
    }
    Ok(())
}

/// What a template resolves to for a new index: settings (flattened, keys
/// normalised to `index.`), merged mappings, data stream options.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub settings: Map<String, Value>,
    pub mappings: Value,
    pub data_stream_options: Value,
}

/// Flattens nested settings and prefixes `index.` like Elasticsearch's
/// Settings normalisation.
pub fn flatten_settings(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if val.is_object() {
                flatten_settings(&key, val, out);
            } else {
                let key = if key.starts_with("index.") {
                    key
                } else {
                    format!("index.{key}")
                };
                let val = match val {
                    Value::String(_) | Value::Array(_) | Value::Null => val.clone(),
                    other => Value::String(other.to_string()),
                };
                out.insert(key, val);
            }
        }
    }
}

/// Deep merge for mappings (`properties` merged by key) and option objects.
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if k == "dynamic_templates" {
                    // Merged by name in Mappings::merge_json; keep the list concatenated here.
                    let entry = b.entry(k.clone()).or_insert_with(|| json!([]));
                    if let (Value::Array(existing), Value::Array(new)) = (entry, v) {
                        for item in new {
                            let name = item.as_object().and_then(|m| m.keys().next().cloned());
                            existing.retain(|e| {
                                e.as_object().and_then(|m| m.keys().next().cloned()) != name
                            });
                            existing.push(item.clone());
                        }
                    }
                    continue;
                }
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        deep_merge(existing, v)
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Composes a template: component templates in `composed_of` order, then the
/// index template's own `template` (reference "Index templates": "multiple
/// component templates ... the last one takes precedence").
pub fn resolve<'a>(
    t: &IndexTemplate,
    components: &dyn Fn(&str) -> Option<&'a ComponentTemplate>,
) -> Resolved {
    let mut settings = Map::new();
    let mut mappings = json!({});
    let mut dso = json!({});
    let mut apply = |inner: &Value| {
        if let Some(s) = inner.get("settings") {
            flatten_settings("", s, &mut settings);
        }
        if let Some(m) = inner.get("mappings") {
            deep_merge(&mut mappings, m);
        }
        if let Some(o) = inner.get("data_stream_options") {
            deep_merge(&mut dso, o);
        }
    };
    for c in &t.composed_of {
        if let Some(ct) = components(c) {
            if let Some(inner) = ct.body.get("template") {
                apply(inner);
            }
        }
    }
    if let Some(inner) = t.body.get("template") {
        apply(inner);
    }
    Resolved {
        settings,
        mappings,
        data_stream_options: dso,
    }
}

/// The highest-priority template whose patterns match `name`.
pub fn find_matching<'a>(
    templates: impl Iterator<Item = &'a IndexTemplate>,
    name: &str,
) -> Option<&'a IndexTemplate> {
    templates
        .filter(|t| t.index_patterns.iter().any(|p| wildcard::matches(p, name)))
        .max_by_key(|t| t.priority)
}

/// Built-in templates a 9.2 cluster installs (x-pack `template-resources`),
/// reduced to what the logs template and ours compose with. Shapes follow the
/// originals; only a subset of `ecs@mappings`' dynamic templates is kept.
pub fn builtin_component_templates() -> Vec<(&'static str, Value)> {
    let meta = |d: &str| json!({"description": d, "managed": true});
    vec![
        (
            "logs@mappings",
            json!({
                "template": {"mappings": {
                    "date_detection": false,
                    "properties": {
                        "@timestamp": {"type": "date_nanos"},
                        "data_stream.type": {"type": "constant_keyword", "value": "logs"},
                        "data_stream.dataset": {"type": "constant_keyword"},
                        "data_stream.namespace": {"type": "constant_keyword"}
                    }
                }},
                "_meta": meta("default mappings for the logs index template installed by x-pack"),
                "version": 16
            }),
        ),
        (
            "logs@settings",
            json!({
                "template": {
                    "settings": {"index": {
                        "lifecycle": {"name": "logs@lifecycle"},
                        "codec": "best_compression",
                        "mapping": {"ignore_malformed": true, "total_fields": {"ignore_dynamic_beyond_limit": true}},
                        "default_pipeline": "logs@default-pipeline"
                    }},
                    "data_stream_options": {"failure_store": {"enabled": true}}
                },
                "_meta": meta("default settings for the logs index template installed by x-pack"),
                "version": 16
            }),
        ),
        (
            "ecs@mappings",
            json!({
                "template": {"mappings": {"dynamic_templates": [
                    {"ecs_timestamp": {"match": "@timestamp", "mapping": {"type": "date", "ignore_malformed": false}}},
                    {"ecs_message_match_only_text": {"path_match": ["message", "*.message"], "mapping": {"type": "match_only_text"}}},
                    {"ecs_ip": {"path_match": ["ip", "*.ip", "*_ip"], "match_mapping_type": "string", "mapping": {"type": "ip"}}},
                    {"ecs_match_wildcard_and_match_only_text": {"match": ["*command_line", "*stack_trace"], "mapping": {"type": "wildcard", "fields": {"text": {"type": "match_only_text"}}}}},
                    {"ecs_path_match_keyword_and_match_only_text": {"path_match": ["*.title", "*.name", "*file.path"], "mapping": {"type": "keyword", "fields": {"text": {"type": "match_only_text"}}}}},
                    {"ecs_date": {"path_match": ["*.timestamp", "*_timestamp", "created", "*.created", "ingested", "*.ingested", "*.start", "*.end"], "mapping": {"type": "date"}}},
                    {"all_strings_to_keywords": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}
                ]}},
                "_meta": meta("dynamic mappings based on ECS, installed by x-pack"),
                "version": 16
            }),
        ),
    ]
}

/// The built-in `logs` index template (x-pack `logs@template.json`).
pub fn builtin_logs_template() -> Value {
    json!({
        "index_patterns": ["logs-*-*"],
        "priority": 100,
        "data_stream": {"hidden": false, "allow_custom_routing": false},
        "composed_of": ["logs@mappings", "logs@settings", "logs@custom", "ecs@mappings"],
        "ignore_missing_component_templates": ["logs@custom"],
        "allow_auto_create": true,
        "_meta": {"description": "default logs template installed by x-pack", "managed": true},
        "version": 16
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_template_requires_index_patterns() {
        let e = parse_index_template("t", &json!({"template": {}})).unwrap_err();
        assert_eq!(e.kind, "x_content_parse_exception");
        assert_eq!(e.reason, "Required [index_patterns]");
    }

    #[test]
    fn unknown_top_level_keys_are_parse_errors() {
        let e = parse_index_template("t", &json!({"index_patterns": ["a-*"], "mapping": {}}))
            .unwrap_err();
        assert_eq!(e.reason, "[index_template] unknown field [mapping]");
        let e = parse_component_template("c", &json!({"template": {}, "priority": 1})).unwrap_err();
        assert_eq!(e.reason, "[component_template] unknown field [priority]");
        let e = parse_component_template("c", &json!({"template": {"mapping": {}}})).unwrap_err();
        assert_eq!(e.reason, "[template] unknown field [mapping]");
        let e = parse_component_template("c", &json!({"version": 1})).unwrap_err();
        assert_eq!(e.reason, "Required [template]");
    }

    #[test]
    fn missing_component_templates_are_refused_unless_ignored() {
        let t = parse_index_template("t", &json!({"index_patterns": ["a-*"], "composed_of": ["x", "y"], "ignore_missing_component_templates": ["y"]})).unwrap();
        let none = |_: &str| -> Option<&ComponentTemplate> { None };
        let e = validate_against_cluster(&t, &none, &mut std::iter::empty()).unwrap_err();
        assert_eq!(e.kind, "invalid_index_template_exception");
        assert!(
            e.reason
                .contains("specifies component templates [x] that do not exist"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn equal_priority_overlapping_patterns_are_refused() {
        let logs = parse_index_template("logs", &builtin_logs_template()).unwrap();
        let mine = parse_index_template(
            "mine",
            &json!({"index_patterns": ["logs-didban*-*"], "priority": 100}),
        )
        .unwrap();
        let none = |_: &str| -> Option<&ComponentTemplate> { None };
        let e = validate_against_cluster(&mine, &none, &mut [&logs].into_iter()).unwrap_err();
        assert_eq!(e.kind, "illegal_argument_exception");
        assert!(e.reason.contains("that have the same priority [100]"));
        let higher = parse_index_template(
            "mine",
            &json!({"index_patterns": ["logs-didban*-*"], "priority": 300}),
        )
        .unwrap();
        validate_against_cluster(&higher, &none, &mut [&logs].into_iter()).unwrap();
    }

    #[test]
    fn composition_applies_components_in_order_then_the_template() {
        let c1 = ComponentTemplate {
            name: "c1".into(),
            body: json!({"template": {"settings": {"number_of_shards": 1}, "mappings": {"properties": {"a": {"type": "keyword"}}}}}),
        };
        let c2 = ComponentTemplate {
            name: "c2".into(),
            body: json!({"template": {"mappings": {"properties": {"a": {"type": "long"}}}, "data_stream_options": {"failure_store": {"enabled": true}}}}),
        };
        let t = parse_index_template("t", &json!({"index_patterns": ["x-*"], "composed_of": ["c1", "c2"], "template": {"settings": {"index": {"lifecycle": {"name": "p"}}}}})).unwrap();
        let lookup = |n: &str| match n {
            "c1" => Some(&c1),
            "c2" => Some(&c2),
            _ => None,
        };
        let r = resolve(&t, &lookup);
        assert_eq!(r.settings["index.number_of_shards"], "1");
        assert_eq!(r.settings["index.lifecycle.name"], "p");
        assert_eq!(r.mappings["properties"]["a"]["type"], "long");
        assert_eq!(r.data_stream_options["failure_store"]["enabled"], true);
    }

    #[test]
    fn component_template_settings_read_back_nested_under_index_as_strings() {
        let t = parse_component_template(
            "c",
            &json!({"template": {"settings": {
                "number_of_replicas": 0,
                "index.lifecycle.name": "p",
                "index": {"hidden": true, "routing_path": ["a", 1]}
            }}}),
        )
        .unwrap();
        assert_eq!(
            t.body["template"]["settings"],
            json!({"index": {
                "number_of_replicas": "0",
                "lifecycle": {"name": "p"},
                "hidden": "true",
                "routing_path": ["a", "1"]
            }})
        );
    }
}
