//! `_search` and `_count` over the stored documents: enough of the search
//! API for tests and for the alerting rules over Heartbeat data (query DSL in
//! `query.rs`, aggregations in `aggs.rs`, `size`/`from`/`sort`/`_source`/
//! `track_total_hits` here). Index expressions resolve like Elasticsearch's
//! (wildcards, comma lists, data streams to their backing indices).

pub mod aggs;
pub mod query;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::api::json_body;
use crate::error::{json_response, EsError};
use crate::mapping::Mappings;
use crate::server::Shared;
use query::{field_values, is_date_field, matches, DocRef};

const MAX_RESULT_WINDOW: usize = 10_000;

/// `_source` filtering (`false`, a pattern, a list, or includes/excludes).
pub struct SourceFilter {
    enabled: bool,
    includes: Vec<String>,
    excludes: Vec<String>,
}

impl SourceFilter {
    pub fn parse(v: Option<&Value>) -> Result<Self, EsError> {
        let list = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            }
        };
        Ok(match v {
            None | Some(Value::Bool(true)) | Some(Value::Null) => SourceFilter {
                enabled: true,
                includes: vec![],
                excludes: vec![],
            },
            Some(Value::Bool(false)) => SourceFilter {
                enabled: false,
                includes: vec![],
                excludes: vec![],
            },
            Some(Value::String(_)) | Some(Value::Array(_)) => SourceFilter {
                enabled: true,
                includes: list(v),
                excludes: vec![],
            },
            Some(Value::Object(m)) => SourceFilter {
                enabled: true,
                includes: list(m.get("includes").or_else(|| m.get("include"))),
                excludes: list(m.get("excludes").or_else(|| m.get("exclude"))),
            },
            Some(_) => {
                return Err(EsError::new(
                    400,
                    "parsing_exception",
                    "[_source] must be a boolean, string, array or object",
                ))
            }
        })
    }

    fn apply(&self, src: &Value) -> Option<Value> {
        if !self.enabled {
            return None;
        }
        if self.includes.is_empty() && self.excludes.is_empty() {
            return Some(src.clone());
        }
        let mut spec: Vec<String> = self
            .includes
            .iter()
            .flat_map(|p| [p.clone(), format!("{p}.**")])
            .collect();
        if spec.is_empty() {
            spec.push("**".into());
        }
        for e in &self.excludes {
            spec.push(format!("-{e}"));
        }
        Some(crate::filter_path::apply(src, &spec.join(",")))
    }
}

/// One hit in a response.
pub fn hit_json(d: &DocRef<'_>, filter: &SourceFilter, sort: Option<Vec<Value>>) -> Value {
    let mut m = Map::new();
    m.insert("_index".into(), json!(d.index));
    m.insert("_id".into(), json!(d.id));
    m.insert(
        "_score".into(),
        if sort.is_some() {
            Value::Null
        } else {
            json!(1.0)
        },
    );
    if let Some(s) = filter.apply(d.source) {
        m.insert("_source".into(), s);
    }
    if let Some(s) = sort {
        m.insert("sort".into(), Value::Array(s));
    }
    Value::Object(m)
}

/// Sort key of one document for one field (dates as epoch millis).
fn sort_key(d: &DocRef<'_>, field: &str, desc: bool) -> Value {
    let date = is_date_field(d.mappings, field);
    let vals = field_values(d, field);
    let nums: Vec<f64> = vals
        .iter()
        .filter_map(|v| {
            if date {
                crate::dates::parse_date_value(v).map(|t| t.timestamp_millis() as f64)
            } else {
                v.as_f64()
            }
        })
        .collect();
    if !nums.is_empty() {
        let pick = if desc {
            nums.iter().copied().fold(f64::MIN, f64::max)
        } else {
            nums.iter().copied().fold(f64::MAX, f64::min)
        };
        return if date || pick.fract() == 0.0 {
            json!(pick as i64)
        } else {
            json!(pick)
        };
    }
    let mut strs: Vec<&str> = vals.iter().filter_map(|v| v.as_str()).collect();
    strs.sort_unstable();
    let pick = if desc { strs.last() } else { strs.first() };
    pick.map_or(Value::Null, |s| json!(s))
}

fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// Sorts `order` (indices into `docs`) by a `sort` spec; returns per-doc sort values.
pub fn sort_docs(
    spec: Option<&Value>,
    docs: &[DocRef<'_>],
    order: &mut [usize],
) -> Result<Option<Vec<Vec<Value>>>, EsError> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let items: Vec<&Value> = match spec {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut keys: Vec<(String, bool)> = Vec::new();
    for it in items {
        match it {
            Value::String(f) => {
                let (f, desc) = match f.split_once(':') {
                    Some((f, o)) => (f.to_string(), o == "desc"),
                    None => (f.clone(), f == "_score"),
                };
                keys.push((f, desc));
            }
            Value::Object(m) => {
                for (f, o) in m {
                    let order = match o {
                        Value::String(s) => s.as_str(),
                        Value::Object(inner) => {
                            inner.get("order").and_then(Value::as_str).unwrap_or("asc")
                        }
                        _ => "asc",
                    };
                    if order != "asc" && order != "desc" {
                        return Err(EsError::illegal_argument(format!(
                            "Unknown SortOrder [{order}]"
                        )));
                    }
                    keys.push((f.clone(), order == "desc"));
                }
            }
            _ => return Err(EsError::new(400, "parsing_exception", "[sort] malformed")),
        }
    }
    for (f, _) in &keys {
        if let Some(d) = docs.first() {
            if matches!(
                d.mappings.field_type(f),
                Some("text") | Some("match_only_text")
            ) {
                return Err(EsError::illegal_argument(format!(
                    "Fielddata is disabled on [{f}] in [{}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead.",
                    d.index
                )));
            }
        }
    }
    let values: Vec<Vec<Value>> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            keys.iter()
                .map(|(f, desc)| match f.as_str() {
                    "_doc" => json!(i),
                    "_score" => json!(1.0),
                    _ => sort_key(d, f, *desc),
                })
                .collect()
        })
        .collect();
    order.sort_by(|&a, &b| {
        for (k, (_, desc)) in keys.iter().enumerate() {
            let (va, vb) = (&values[a][k], &values[b][k]);
            // Missing values sort last in both directions (`missing: _last`).
            let o = match (va.is_null(), vb.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => return Ordering::Greater,
                (false, true) => return Ordering::Less,
                _ => {
                    let o = cmp_values(va, vb);
                    if *desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    Ok(Some(values))
}

/// The `properties` tree of mappings, for `GET /<index>`.
pub fn mapping_properties(m: &Mappings) -> Value {
    let mut root = Map::new();
    for (path, f) in &m.fields {
        let mut cur = &mut root;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let entry = cur.entry(part.to_string()).or_insert_with(|| json!({}));
            let Some(obj) = entry.as_object_mut() else {
                break;
            };
            if i == parts.len() - 1 {
                if f.ty != "object" {
                    obj.insert("type".into(), json!(f.ty));
                }
                for (k, v) in &f.params {
                    obj.insert(k.clone(), v.clone());
                }
                break;
            }
            let props = obj.entry("properties").or_insert_with(|| json!({}));
            let Some(p) = props.as_object_mut() else {
                break;
            };
            cur = p;
        }
    }
    Value::Object(root)
}

const SEARCH_BODY_KEYS: &[&str] = &[
    "query",
    "size",
    "from",
    "sort",
    "_source",
    "aggs",
    "aggregations",
    "track_total_hits",
    "timeout",
    "fields",
    "docvalue_fields",
    "stored_fields",
    "version",
    "seq_no_primary_term",
    "runtime_mappings",
    "post_filter",
];

async fn run_search(
    shared: Arc<Shared>,
    index: &str,
    q: HashMap<String, String>,
    req: Request,
    count_only: bool,
) -> Response {
    let started = Instant::now();
    let body = match json_body(&shared, req, false).await {
        Ok(b) => b.unwrap_or_else(|| json!({})),
        Err(r) => return r,
    };
    match search_body(&shared, index, &q, &body, count_only, started) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

fn search_body(
    shared: &Shared,
    index: &str,
    q: &HashMap<String, String>,
    body: &Value,
    count_only: bool,
    started: Instant,
) -> Result<Value, EsError> {
    let obj = body
        .as_object()
        .ok_or_else(|| EsError::new(400, "parsing_exception", "request body must be an object"))?;
    for k in obj.keys() {
        if count_only && k != "query" {
            return Err(EsError::new(
                400,
                "parsing_exception",
                format!("request does not support [{k}]"),
            ));
        }
        if !SEARCH_BODY_KEYS.contains(&k.as_str()) {
            return Err(EsError::new(
                400,
                "parsing_exception",
                format!("Unknown key for a START_OBJECT in [{k}]."),
            ));
        }
    }
    let ignore_unavailable = matches!(
        q.get("ignore_unavailable").map(String::as_str),
        Some("true") | Some("")
    );
    let now = chrono::Utc::now();
    let cluster = shared.lock_cluster();
    let names = cluster.resolve_read(index, ignore_unavailable)?;
    let mut docs: Vec<DocRef<'_>> = Vec::new();
    for n in &names {
        if let Some(i) = cluster.indices.get(n) {
            for d in i.docs() {
                docs.push(DocRef {
                    index: &i.name,
                    id: &d.id,
                    source: &d.source,
                    mappings: &i.mappings,
                });
            }
        }
    }
    let query = obj
        .get("query")
        .cloned()
        .unwrap_or_else(|| json!({"match_all": {}}));
    let mut matched: Vec<DocRef<'_>> = Vec::new();
    for d in docs {
        if matches(&query, &d, now)? {
            matched.push(d);
        }
    }
    let shards =
        json!({"total": names.len(), "successful": names.len(), "skipped": 0, "failed": 0});
    if count_only {
        return Ok(json!({"count": matched.len(), "_shards": shards}));
    }
    let param_usize = |k: &str| q.get(k).and_then(|s| s.parse::<usize>().ok());
    let size = obj
        .get("size")
        .and_then(Value::as_u64)
        .map(|x| x as usize)
        .or_else(|| param_usize("size"))
        .unwrap_or(10);
    let from = obj
        .get("from")
        .and_then(Value::as_u64)
        .map(|x| x as usize)
        .or_else(|| param_usize("from"))
        .unwrap_or(0);
    if from + size > MAX_RESULT_WINDOW {
        return Err(EsError::illegal_argument(format!(
            "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{}]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.",
            from + size
        )));
    }
    let mut order: Vec<usize> = (0..matched.len()).collect();
    let sort_spec = obj
        .get("sort")
        .cloned()
        .or_else(|| q.get("sort").map(|s| Value::String(s.clone())));
    let sort_values = sort_docs(sort_spec.as_ref(), &matched, &mut order)?;
    let filter = SourceFilter::parse(obj.get("_source"))?;
    let hits: Vec<Value> = order
        .iter()
        .skip(from)
        .take(size)
        .map(|&i| {
            hit_json(
                &matched[i],
                &filter,
                sort_values.as_ref().map(|s| s[i].clone()),
            )
        })
        .collect();
    let total = match obj.get("track_total_hits") {
        Some(Value::Bool(true)) => json!({"value": matched.len(), "relation": "eq"}),
        Some(Value::Bool(false)) => Value::Null,
        Some(Value::Number(n)) => {
            let cap = n.as_u64().unwrap_or(10_000) as usize;
            if matched.len() > cap {
                json!({"value": cap, "relation": "gte"})
            } else {
                json!({"value": matched.len(), "relation": "eq"})
            }
        }
        _ if matched.len() > MAX_RESULT_WINDOW => {
            json!({"value": MAX_RESULT_WINDOW, "relation": "gte"})
        }
        _ => json!({"value": matched.len(), "relation": "eq"}),
    };
    let mut hits_obj = Map::new();
    if !total.is_null() {
        hits_obj.insert("total".into(), total);
    }
    let max_score = if sort_values.is_some() || matched.is_empty() {
        Value::Null
    } else {
        json!(1.0)
    };
    hits_obj.insert("max_score".into(), max_score);
    hits_obj.insert("hits".into(), Value::Array(hits));
    let mut out = Map::new();
    out.insert("took".into(), json!(started.elapsed().as_millis() as u64));
    out.insert("timed_out".into(), json!(false));
    out.insert("_shards".into(), shards);
    out.insert("hits".into(), Value::Object(hits_obj));
    // A search that resolves to no index at all (a pattern matching nothing, with
    // `allow_no_indices`) never reaches a shard: Elasticsearch answers with its empty
    // response (`SearchResponse.empty`, `InternalAggregations.EMPTY`), which renders no
    // `aggregations` key, even when the request asked for aggregations.
    if let Some(a) = obj
        .get("aggs")
        .or_else(|| obj.get("aggregations"))
        .filter(|_| !names.is_empty())
    {
        let idx: Vec<&str> = names.iter().map(String::as_str).collect();
        out.insert("aggregations".into(), aggs::run(a, &matched, &idx, now)?);
    }
    Ok(Value::Object(out))
}

pub async fn search(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    run_search(shared, &index, q, req, false).await
}

pub async fn search_all(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    run_search(shared, "*", q, req, false).await
}

pub async fn count(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    run_search(shared, &index, q, req, true).await
}

pub async fn count_all(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    run_search(shared, "*", q, req, true).await
}
