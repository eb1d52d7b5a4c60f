//! Query DSL evaluation over stored documents (reference "Query DSL"):
//! `match_all`, `match_none`, `term`, `terms`, `range` (dates with date math,
//! numbers, strings), `exists`, `bool`, `match`, `match_phrase`, `prefix`,
//! `wildcard`, `ids`. Scores are constant (1.0): ranking is not modelled.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::dates;
use crate::error::EsError;
use crate::mapping::Mappings;
use crate::wildcard;

/// A document being matched, with the mappings of its index.
#[derive(Clone, Copy)]
pub struct DocRef<'a> {
    pub index: &'a str,
    pub id: &'a str,
    pub source: &'a Value,
    pub mappings: &'a Mappings,
}

fn parsing(reason: impl Into<String>) -> EsError {
    EsError::new(400, "parsing_exception", reason)
}

/// All values at a dotted path, through objects, dotted keys and arrays.
pub fn values_at<'a>(v: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => {
            for i in items {
                values_at(i, path, out);
            }
        }
        Value::Object(m) => {
            if let Some(x) = m.get(path) {
                push_leaf(x, out);
            }
            for (i, _) in path.match_indices('.') {
                if let Some(x) = m.get(&path[..i]) {
                    values_at(x, &path[i + 1..], out);
                }
            }
        }
        _ => {}
    }
}

fn push_leaf<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| push_leaf(i, out)),
        Value::Null => {}
        other => out.push(other),
    }
}

/// Values of a field for queries: `x.keyword` multi-fields read their parent.
pub fn field_values<'a>(doc: &DocRef<'a>, field: &str) -> Vec<&'a Value> {
    let path = doc.mappings.multi_field_parent(field).unwrap_or(field);
    let mut out = Vec::new();
    values_at(doc.source, path, &mut out);
    out
}

pub fn is_date_field(m: &Mappings, field: &str) -> bool {
    matches!(m.field_type(field), Some("date") | Some("date_nanos"))
}

fn is_text(m: &Mappings, field: &str) -> bool {
    matches!(m.field_type(field), Some("text") | Some("match_only_text"))
}

fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Equality as a `term` query sees it (numbers by value, keywords exactly,
/// text fields by token).
fn term_eq(doc_v: &Value, q: &Value, text: bool) -> bool {
    match (doc_v, q) {
        (Value::String(a), Value::String(b)) if text => tokens(a).iter().any(|t| t == b),
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(a), Value::String(b)) | (Value::String(b), Value::Number(a)) => {
            b.parse::<f64>().ok() == a.as_f64()
        }
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Bool(a), Value::String(b)) | (Value::String(b), Value::Bool(a)) => {
            b == if *a { "true" } else { "false" }
        }
        _ => false,
    }
}

fn single_field<'a>(kind: &str, body: &'a Value) -> Result<(&'a str, &'a Value), EsError> {
    let obj = body.as_object().ok_or_else(|| {
        parsing(format!(
            "[{kind}] query malformed, no start_object after query name"
        ))
    })?;
    let mut fields = obj
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "boost" | "_name"));
    let (f, v) = fields.next().ok_or_else(|| {
        parsing(format!(
            "[{kind}] query doesn't support multiple fields, found none"
        ))
    })?;
    if fields.next().is_some() {
        return Err(parsing(format!(
            "[{kind}] query doesn't support multiple fields"
        )));
    }
    Ok((f.as_str(), v))
}

fn unwrap_value<'a>(v: &'a Value, key: &str) -> &'a Value {
    match v {
        Value::Object(m) => m.get(key).unwrap_or(&Value::Null),
        other => other,
    }
}

/// A bound of a range query as a comparable number (epoch millis for dates).
fn range_bound(
    v: &Value,
    date: bool,
    now: DateTime<Utc>,
    round_up: bool,
) -> Result<Option<f64>, EsError> {
    if v.is_null() {
        return Ok(None);
    }
    if date {
        let t = match v {
            Value::String(s) => dates::eval_date_math(s, now, round_up),
            other => dates::parse_date_value(other),
        };
        return t
            .map(|t| Some(t.timestamp_millis() as f64))
            .ok_or_else(|| EsError::new(400, "parse_exception", format!("failed to parse date field [{v}] with format [strict_date_optional_time||epoch_millis]")));
    }
    match v {
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => s.parse::<f64>().map(Some).map_err(|_| {
            EsError::new(
                400,
                "number_format_exception",
                format!("For input string: \"{s}\""),
            )
        }),
        _ => Ok(None),
    }
}

fn doc_number(v: &Value, date: bool) -> Option<f64> {
    if date {
        return dates::parse_date_value(v).map(|t| t.timestamp_millis() as f64);
    }
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn clauses(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
    }
}

/// Does `doc` match `query`?
pub fn matches(query: &Value, doc: &DocRef<'_>, now: DateTime<Utc>) -> Result<bool, EsError> {
    let obj = query
        .as_object()
        .ok_or_else(|| parsing("query malformed, must start with start_object"))?;
    if obj.len() != 1 {
        return Err(parsing(format!(
            "[{}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]",
            obj.keys().next().map(String::as_str).unwrap_or("query")
        )));
    }
    let Some((kind, body)) = obj.iter().next() else {
        return Ok(true);
    };
    match kind.as_str() {
        "match_all" => Ok(true),
        "match_none" => Ok(false),
        "term" => {
            let (field, v) = single_field("term", body)?;
            let q = unwrap_value(v, "value");
            let text = is_text(doc.mappings, field);
            Ok(field_values(doc, field).iter().any(|d| term_eq(d, q, text)))
        }
        "terms" => {
            let obj = body
                .as_object()
                .ok_or_else(|| parsing("[terms] query malformed"))?;
            let (field, list) = obj
                .iter()
                .find(|(k, _)| !matches!(k.as_str(), "boost" | "_name"))
                .ok_or_else(|| parsing("[terms] query requires a field"))?;
            let list = list
                .as_array()
                .ok_or_else(|| parsing(format!("[terms] query does not support [{field}]")))?;
            let text = is_text(doc.mappings, field);
            let vals = field_values(doc, field);
            Ok(vals
                .iter()
                .any(|d| list.iter().any(|q| term_eq(d, q, text))))
        }
        "ids" => {
            let list = body
                .get("values")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Ok(list.iter().any(|v| v.as_str() == Some(doc.id)))
        }
        "exists" => {
            let field = body
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| parsing("[exists] must be provided with a [field]"))?;
            if field == "_id" {
                return Ok(true);
            }
            Ok(!field_values(doc, field).is_empty())
        }
        "range" => {
            let (field, spec) = single_field("range", body)?;
            let spec = spec
                .as_object()
                .ok_or_else(|| parsing("[range] query malformed"))?;
            for k in spec.keys() {
                if !matches!(
                    k.as_str(),
                    "gte"
                        | "gt"
                        | "lte"
                        | "lt"
                        | "format"
                        | "time_zone"
                        | "boost"
                        | "relation"
                        | "_name"
                ) {
                    return Err(parsing(format!("[range] query does not support [{k}]")));
                }
            }
            let vals = field_values(doc, field);
            let date = is_date_field(doc.mappings, field)
                || (doc.mappings.field_type(field).is_none()
                    && vals
                        .first()
                        .is_some_and(|v| v.as_str().is_some_and(dates::looks_like_date)));
            let keyword = !date
                && matches!(
                    doc.mappings.field_type(field),
                    Some("keyword") | Some("constant_keyword") | Some("wildcard")
                );
            if keyword {
                let s = |k: &str| spec.get(k).and_then(Value::as_str);
                return Ok(vals.iter().filter_map(|v| v.as_str()).any(|v| {
                    s("gte").is_none_or(|b| v >= b)
                        && s("gt").is_none_or(|b| v > b)
                        && s("lte").is_none_or(|b| v <= b)
                        && s("lt").is_none_or(|b| v < b)
                }));
            }
            let null = Value::Null;
            let gte = range_bound(spec.get("gte").unwrap_or(&null), date, now, false)?;
            let gt = range_bound(spec.get("gt").unwrap_or(&null), date, now, true)?;
            let lte = range_bound(spec.get("lte").unwrap_or(&null), date, now, true)?;
            let lt = range_bound(spec.get("lt").unwrap_or(&null), date, now, false)?;
            Ok(vals.iter().filter_map(|v| doc_number(v, date)).any(|x| {
                gte.is_none_or(|b| x >= b)
                    && gt.is_none_or(|b| x > b)
                    && lte.is_none_or(|b| x <= b)
                    && lt.is_none_or(|b| x < b)
            }))
        }
        "bool" => {
            let b = body
                .as_object()
                .ok_or_else(|| parsing("[bool] query malformed"))?;
            for k in b.keys() {
                if !matches!(
                    k.as_str(),
                    "must"
                        | "filter"
                        | "should"
                        | "must_not"
                        | "minimum_should_match"
                        | "boost"
                        | "_name"
                ) {
                    return Err(parsing(format!("[bool] query does not support [{k}]")));
                }
            }
            for q in clauses(b.get("must"))
                .into_iter()
                .chain(clauses(b.get("filter")))
            {
                if !matches(q, doc, now)? {
                    return Ok(false);
                }
            }
            for q in clauses(b.get("must_not")) {
                if matches(q, doc, now)? {
                    return Ok(false);
                }
            }
            let should = clauses(b.get("should"));
            if should.is_empty() {
                return Ok(true);
            }
            let has_required =
                !clauses(b.get("must")).is_empty() || !clauses(b.get("filter")).is_empty();
            let min = match b.get("minimum_should_match") {
                Some(Value::Number(n)) => n.as_u64().unwrap_or(1) as usize,
                Some(Value::String(s)) => s
                    .trim_end_matches('%')
                    .parse::<usize>()
                    .map(|p| {
                        if s.ends_with('%') {
                            should.len() * p / 100
                        } else {
                            p
                        }
                    })
                    .unwrap_or(1),
                _ => usize::from(!has_required),
            };
            let mut hits = 0;
            for q in &should {
                if matches(q, doc, now)? {
                    hits += 1;
                }
            }
            Ok(hits >= min)
        }
        "match" | "match_phrase" => {
            let (field, v) = single_field(kind, body)?;
            let q = unwrap_value(v, "query");
            let vals = field_values(doc, field);
            if is_text(doc.mappings, field) || doc.mappings.field_type(field).is_none() {
                let qs = match q {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let qt = tokens(&qs);
                return Ok(vals.iter().filter_map(|v| v.as_str()).any(|text| {
                    let dt = tokens(text);
                    if kind == "match_phrase" {
                        dt.windows(qt.len().max(1)).any(|w| w == qt.as_slice())
                    } else {
                        qt.iter().any(|t| dt.contains(t))
                    }
                }));
            }
            Ok(vals.iter().any(|d| term_eq(d, q, false)))
        }
        "prefix" => {
            let (field, v) = single_field("prefix", body)?;
            let p = unwrap_value(v, "value").as_str().unwrap_or("");
            Ok(field_values(doc, field)
                .iter()
                .filter_map(|v| v.as_str())
                .any(|s| s.starts_with(p)))
        }
        "wildcard" => {
            let (field, v) = single_field("wildcard", body)?;
            let p = match v {
                Value::Object(m) => m
                    .get("value")
                    .or_else(|| m.get("wildcard"))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                Value::String(s) => s.as_str(),
                _ => "",
            };
            if p.contains('?') {
                return Err(EsError::illegal_argument(
                    "[wildcard] '?' is not supported by this test server",
                ));
            }
            Ok(field_values(doc, field)
                .iter()
                .filter_map(|v| v.as_str())
                .any(|s| wildcard::matches(p, s)))
        }
        other => Err(parsing(format!("unknown query [{other}]"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(q: Value, src: Value, m: &Mappings) -> bool {
        let now = dates::parse_strict_date_optional_time("2026-11-26T10:00:00Z").unwrap();
        matches(
            &q,
            &DocRef {
                index: "i",
                id: "1",
                source: &src,
                mappings: m,
            },
            now,
        )
        .unwrap()
    }

    #[test]
    fn term_terms_exists_and_bool_combine() {
        let m = Mappings::from_json(&json!({"properties": {"monitor.id": {"type": "keyword"}, "monitor.status": {"type": "keyword"}}})).unwrap();
        let doc = json!({"monitor": {"id": "payment", "status": "down"}, "summary": {"down": 1}});
        assert!(check(
            json!({"term": {"monitor.id": "payment"}}),
            doc.clone(),
            &m
        ));
        assert!(check(
            json!({"term": {"monitor.id": {"value": "payment"}}}),
            doc.clone(),
            &m
        ));
        assert!(!check(
            json!({"term": {"monitor.id": "pay"}}),
            doc.clone(),
            &m
        ));
        assert!(check(
            json!({"terms": {"monitor.status": ["up", "down"]}}),
            doc.clone(),
            &m
        ));
        assert!(check(
            json!({"exists": {"field": "summary.down"}}),
            doc.clone(),
            &m
        ));
        assert!(!check(
            json!({"exists": {"field": "summary.up"}}),
            doc.clone(),
            &m
        ));
        assert!(check(
            json!({"bool": {"filter": [{"term": {"monitor.id": "payment"}}], "must_not": {"term": {"monitor.status": "up"}}}}),
            doc.clone(),
            &m
        ));
        assert!(!check(
            json!({"bool": {"should": [{"term": {"monitor.status": "up"}}]}}),
            doc.clone(),
            &m
        ));
        assert!(check(json!({"term": {"summary.down": 1}}), doc, &m));
    }

    #[test]
    fn range_understands_date_math_and_numbers() {
        let m = Mappings::from_json(
            &json!({"properties": {"@timestamp": {"type": "date"}, "n": {"type": "long"}}}),
        )
        .unwrap();
        let doc = json!({"@timestamp": "2026-11-26T09:59:50Z", "n": 5});
        assert!(check(
            json!({"range": {"@timestamp": {"gte": "now-30s"}}}),
            doc.clone(),
            &m
        ));
        assert!(!check(
            json!({"range": {"@timestamp": {"gte": "now-5s"}}}),
            doc.clone(),
            &m
        ));
        assert!(check(
            json!({"range": {"@timestamp": {"lt": "now", "gt": "2026-11-26T09:00:00Z"}}}),
            doc.clone(),
            &m
        ));
        assert!(check(
            json!({"range": {"n": {"gt": 4, "lte": 5}}}),
            doc.clone(),
            &m
        ));
        assert!(!check(json!({"range": {"n": {"gt": 5}}}), doc, &m));
    }

    #[test]
    fn keyword_multi_field_reads_the_parent_value() {
        let mut m = Mappings::default();
        let out = m
            .check_document(
                json!({"service": "payment api"}).as_object().unwrap(),
                "1",
                &Default::default(),
            )
            .unwrap();
        m.apply(&out);
        let doc = json!({"service": "payment api"});
        assert!(check(
            json!({"term": {"service.keyword": "payment api"}}),
            doc.clone(),
            &m
        ));
        assert!(check(
            json!({"match": {"service": "payment"}}),
            doc.clone(),
            &m
        ));
        assert!(!check(
            json!({"term": {"service.keyword": "payment"}}),
            doc,
            &m
        ));
    }

    #[test]
    fn unknown_query_is_a_parsing_exception() {
        let now = Utc::now();
        let m = Mappings::default();
        let src = json!({});
        let e = matches(
            &json!({"fuzzy_magic": {}}),
            &DocRef {
                index: "i",
                id: "1",
                source: &src,
                mappings: &m,
            },
            now,
        )
        .unwrap_err();
        assert_eq!(e.kind, "parsing_exception");
        assert_eq!(e.reason, "unknown query [fuzzy_magic]");
    }
}
