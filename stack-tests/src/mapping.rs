//! Elasticsearch mappings as a flat table: field path -> field type.

use std::collections::BTreeMap;

use serde_json::Value;

/// Flattens a `mappings` object (`{"properties": {...}}`) into `path -> type`, objects
/// expanded with dots, multi-fields included as `path.<name>` (e.g. `error.stack_trace.text`).
/// Object fields without a `type` are not listed themselves, only their leaves.
pub fn flatten(mappings: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(properties) = mappings.get("properties").and_then(Value::as_object) {
        walk("", properties, &mut out);
    }
    out
}

fn walk(
    prefix: &str,
    properties: &serde_json::Map<String, Value>,
    out: &mut BTreeMap<String, String>,
) {
    for (name, definition) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if let Some(kind) = definition.get("type").and_then(Value::as_str) {
            out.insert(path.clone(), kind.to_owned());
        }
        if let Some(children) = definition.get("properties").and_then(Value::as_object) {
            walk(&path, children, out);
        }
        if let Some(multi) = definition.get("fields").and_then(Value::as_object) {
            for (sub, sub_definition) in multi {
                if let Some(kind) = sub_definition.get("type").and_then(Value::as_str) {
                    out.insert(format!("{path}.{sub}"), kind.to_owned());
                }
            }
        }
    }
}

/// Field types that hold whole-number values without loss.
const INTEGER_TYPES: &[&str] = &["long", "unsigned_long"];
/// Field types that accept any JSON string.
const STRING_TYPES: &[&str] = &[
    "keyword",
    "constant_keyword",
    "wildcard",
    "text",
    "match_only_text",
];
/// Field types that accept an RFC 3339 string.
const DATE_TYPES: &[&str] = &["date", "date_nanos"];

/// Whether Elasticsearch indexes `value` into a field of type `kind` without a mapping
/// error and without losing what the value says (a nanosecond duration in an `integer`
/// would overflow; a number in a `keyword` field would lose range queries).
pub fn accepts(kind: &str, value: &Value) -> bool {
    match value {
        Value::Number(n) if n.is_u64() || n.is_i64() => INTEGER_TYPES.contains(&kind),
        Value::Number(_) => matches!(kind, "double" | "float" | "scaled_float"),
        Value::String(s) if DATE_TYPES.contains(&kind) => looks_like_rfc3339(s),
        Value::String(_) => STRING_TYPES.contains(&kind),
        Value::Bool(_) => kind == "boolean",
        Value::Array(items) => items.iter().all(|item| accepts(kind, item)),
        Value::Null => true,
        Value::Object(_) => false,
    }
}

fn looks_like_rfc3339(s: &str) -> bool {
    // `YYYY-MM-DDTHH:MM:SS` followed by an optional fraction and `Z` or `±HH:MM`: the
    // shape Elasticsearch's default `strict_date_optional_time` accepts with an offset.
    let re =
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$");
    re.map(|re| re.is_match(s)).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatten_expands_objects_and_multi_fields() {
        let m = json!({"properties": {
            "error": {"properties": {"stack_trace": {"type": "wildcard", "fields": {"text": {"type": "match_only_text"}}}}},
            "@timestamp": {"type": "date"}
        }});
        let flat = flatten(&m);
        assert_eq!(
            flat.get("error.stack_trace").map(String::as_str),
            Some("wildcard")
        );
        assert_eq!(
            flat.get("error.stack_trace.text").map(String::as_str),
            Some("match_only_text")
        );
        assert_eq!(flat.get("@timestamp").map(String::as_str), Some("date"));
        assert!(!flat.contains_key("error"));
    }

    #[test]
    fn accepts_matches_json_values_to_field_types() {
        assert!(accepts("long", &json!(1_500_000_000_u64)));
        assert!(!accepts("keyword", &json!(200)));
        assert!(!accepts("long", &json!("200")));
        assert!(accepts("date", &json!("2025-11-26T10:15:00.123456+03:30")));
        assert!(!accepts("date", &json!("yesterday")));
        assert!(accepts("wildcard", &json!("at main.rs:10")));
        assert!(!accepts("keyword", &json!({"a": 1})));
    }
}
