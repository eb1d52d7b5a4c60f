//! Aggregations (reference "Aggregations"): bucket `terms`, `date_histogram`
//! (`fixed_interval`, `calendar_interval` up to a day), `filter`; metric
//! `avg`, `min`, `max`, `sum`, `value_count`, `cardinality`, `percentiles`,
//! `top_hits`; sub-aggregations nest under any bucket.
//!
//! Percentiles are exact (linear interpolation between the closest ranks),
//! where Elasticsearch's TDigest is approximate: on small samples both agree.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::query::{field_values, is_date_field, matches, DocRef};
use super::{hit_json, sort_docs, SourceFilter};
use crate::dates;
use crate::error::EsError;

fn parsing(reason: impl Into<String>) -> EsError {
    EsError::new(400, "parsing_exception", reason)
}

/// Runs every aggregation in `defs` over `docs`.
pub fn run(
    defs: &Value,
    docs: &[DocRef<'_>],
    indices: &[&str],
    now: DateTime<Utc>,
) -> Result<Value, EsError> {
    let defs = defs
        .as_object()
        .ok_or_else(|| parsing("Expected [START_OBJECT] under [aggregations]"))?;
    let mut out = Map::new();
    for (name, def) in defs {
        out.insert(name.clone(), run_one(name, def, docs, indices, now)?);
    }
    Ok(Value::Object(out))
}

fn sub_aggs(def: &Map<String, Value>) -> Option<&Value> {
    def.get("aggs").or_else(|| def.get("aggregations"))
}

fn run_one(
    name: &str,
    def: &Value,
    docs: &[DocRef<'_>],
    indices: &[&str],
    now: DateTime<Utc>,
) -> Result<Value, EsError> {
    let def = def
        .as_object()
        .ok_or_else(|| parsing(format!("Expected [START_OBJECT] under [{name}]")))?;
    let kinds: Vec<(&String, &Value)> = def
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "aggs" | "aggregations" | "meta"))
        .collect();
    let [(kind, body)] = kinds.as_slice() else {
        return Err(parsing(format!(
            "Expected exactly one aggregation type for [{name}]"
        )));
    };
    let subs = sub_aggs(def);
    let bucket = |bucket_docs: &[DocRef<'_>], base: Map<String, Value>| -> Result<Value, EsError> {
        let mut b = base;
        if let Some(s) = subs {
            if let Value::Object(m) = run(s, bucket_docs, indices, now)? {
                b.extend(m);
            }
        }
        Ok(Value::Object(b))
    };
    let field_of = |body: &Value| -> Result<String, EsError> {
        body.get("field")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| {
                EsError::illegal_argument(format!(
                    "Required one of fields [field, script], but none were specified. in [{name}]"
                ))
            })
    };
    match kind.as_str() {
        "terms" => {
            let field = field_of(body)?;
            if let Some(d) = docs.first() {
                if matches!(
                    d.mappings.field_type(&field),
                    Some("text") | Some("match_only_text")
                ) {
                    return Err(EsError::illegal_argument(format!(
                        "Fielddata is disabled on [{field}] in [{}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [{field}] in order to load field data by uninverting the inverted index. Note that this can use significant memory.",
                        indices.first().copied().unwrap_or("")
                    )));
                }
            }
            let size = body.get("size").and_then(Value::as_u64).unwrap_or(10) as usize;
            let min_doc_count = body
                .get("min_doc_count")
                .and_then(Value::as_u64)
                .unwrap_or(1) as usize;
            let mut groups: BTreeMap<String, (Value, Vec<usize>)> = BTreeMap::new();
            for (i, d) in docs.iter().enumerate() {
                let mut seen = HashSet::new();
                for v in field_values(d, &field) {
                    let (key, key_json) = match v {
                        Value::String(s) => (s.clone(), Value::String(s.clone())),
                        Value::Number(n) => {
                            (format!("{:020.6}", n.as_f64().unwrap_or(0.0)), v.clone())
                        }
                        Value::Bool(b) => (b.to_string(), json!(if *b { 1 } else { 0 })),
                        _ => continue,
                    };
                    if seen.insert(key.clone()) {
                        groups
                            .entry(key)
                            .or_insert_with(|| (key_json, Vec::new()))
                            .1
                            .push(i);
                    }
                }
            }
            let mut list: Vec<(Value, Vec<usize>)> = groups
                .into_values()
                .filter(|(_, d)| d.len() >= min_doc_count)
                .collect();
            // Default order: doc_count desc, then key asc.
            list.sort_by_key(|b| std::cmp::Reverse(b.1.len()));
            let total_in_buckets: usize = list.iter().map(|(_, d)| d.len()).sum();
            let shown: Vec<(Value, Vec<usize>)> = list.into_iter().take(size).collect();
            let shown_count: usize = shown.iter().map(|(_, d)| d.len()).sum();
            let mut buckets = Vec::new();
            for (key, idxs) in shown {
                let bdocs: Vec<DocRef<'_>> = idxs.iter().map(|&i| docs[i]).collect();
                let mut base = Map::new();
                base.insert("key".into(), key.clone());
                if matches!(
                    docs.first().and_then(|d| d.mappings.field_type(&field)),
                    Some("boolean")
                ) {
                    base.insert(
                        "key_as_string".into(),
                        json!(if key == json!(1) { "true" } else { "false" }),
                    );
                }
                base.insert("doc_count".into(), json!(bdocs.len()));
                buckets.push(bucket(&bdocs, base)?);
            }
            Ok(json!({
                "doc_count_error_upper_bound": 0,
                "sum_other_doc_count": total_in_buckets - shown_count,
                "buckets": buckets
            }))
        }
        "date_histogram" => {
            let field = field_of(body)?;
            let interval = if let Some(f) = body.get("fixed_interval").and_then(Value::as_str) {
                dates::parse_fixed_interval(f).ok_or_else(|| {
                    EsError::illegal_argument(format!("failed to parse setting [date_histogram.fixedInterval] with value [{f}] as a time value: unit is missing or unrecognized"))
                })?
            } else if let Some(c) = body.get("calendar_interval").and_then(Value::as_str) {
                match c {
                    "1m" | "minute" => 60_000,
                    "1h" | "hour" => 3_600_000,
                    "1d" | "day" => 86_400_000,
                    other => return Err(EsError::illegal_argument(format!("The supplied interval [{other}] could not be parsed as a calendar interval by this test server."))),
                }
            } else {
                return Err(EsError::illegal_argument(
                    "Invalid interval specified, must be non-null and non-empty",
                ));
            };
            let min_doc_count = body
                .get("min_doc_count")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for (i, d) in docs.iter().enumerate() {
                let mut seen = HashSet::new();
                for v in field_values(d, &field) {
                    if let Some(t) = dates::parse_date_value(v) {
                        let ms = t.timestamp_millis();
                        let key = ms.div_euclid(interval) * interval;
                        if seen.insert(key) {
                            groups.entry(key).or_default().push(i);
                        }
                    }
                }
            }
            let mut buckets = Vec::new();
            if let (Some(&first), Some(&last)) = (groups.keys().next(), groups.keys().next_back()) {
                let mut k = first;
                while k <= last {
                    let idxs = groups.get(&k).cloned().unwrap_or_default();
                    if idxs.len() >= min_doc_count {
                        let bdocs: Vec<DocRef<'_>> = idxs.iter().map(|&i| docs[i]).collect();
                        let mut base = Map::new();
                        base.insert("key_as_string".into(), json!(dates::format_millis(k)));
                        base.insert("key".into(), json!(k));
                        base.insert("doc_count".into(), json!(bdocs.len()));
                        buckets.push(bucket(&bdocs, base)?);
                    }
                    k += interval;
                }
            }
            Ok(json!({ "buckets": buckets }))
        }
        "filter" => {
            let mut kept = Vec::new();
            for d in docs {
                if matches(body, d, now)? {
                    kept.push(*d);
                }
            }
            let mut base = Map::new();
            base.insert("doc_count".into(), json!(kept.len()));
            bucket(&kept, base)
        }
        "avg" | "min" | "max" | "sum" | "value_count" | "cardinality" | "percentiles" => {
            let field = field_of(body)?;
            let date = docs
                .first()
                .is_some_and(|d| is_date_field(d.mappings, &field));
            let mut nums: Vec<f64> = Vec::new();
            let mut distinct: HashSet<String> = HashSet::new();
            let mut count = 0u64;
            for d in docs {
                for v in field_values(d, &field) {
                    count += 1;
                    distinct.insert(v.to_string());
                    let n = if date {
                        dates::parse_date_value(v).map(|t| t.timestamp_millis() as f64)
                    } else {
                        match v {
                            Value::Number(n) => n.as_f64(),
                            Value::String(s) => s.parse().ok(),
                            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
                            _ => None,
                        }
                    };
                    if let Some(n) = n {
                        nums.push(n);
                    }
                }
            }
            let with_string = |v: Option<f64>| {
                let mut m = Map::new();
                m.insert("value".into(), v.map_or(Value::Null, |x| json!(x)));
                if let (true, Some(x)) = (date, v) {
                    m.insert(
                        "value_as_string".into(),
                        json!(dates::format_millis(x as i64)),
                    );
                }
                Value::Object(m)
            };
            Ok(match kind.as_str() {
                "avg" => with_string(
                    (!nums.is_empty()).then(|| nums.iter().sum::<f64>() / nums.len() as f64),
                ),
                "min" => with_string(nums.iter().copied().reduce(f64::min)),
                "max" => with_string(nums.iter().copied().reduce(f64::max)),
                "sum" => json!({"value": nums.iter().sum::<f64>()}),
                "value_count" => json!({"value": count}),
                "cardinality" => json!({"value": distinct.len()}),
                _ => {
                    let percents: Vec<f64> = match body.get("percents") {
                        Some(Value::Array(a)) => a.iter().filter_map(Value::as_f64).collect(),
                        None => vec![1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0],
                        Some(_) => return Err(parsing("[percents] must be an array")),
                    };
                    nums.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
                    let mut values = Map::new();
                    for p in percents {
                        if !(0.0..=100.0).contains(&p) {
                            return Err(EsError::illegal_argument(format!(
                                "percent must be in [0,100], got [{p}]: [{name}]"
                            )));
                        }
                        values.insert(
                            format!("{p:?}"),
                            percentile(&nums, p).map_or(Value::Null, |x| json!(x)),
                        );
                    }
                    json!({ "values": values })
                }
            })
        }
        "top_hits" => {
            let size = body.get("size").and_then(Value::as_u64).unwrap_or(3) as usize;
            let from = body.get("from").and_then(Value::as_u64).unwrap_or(0) as usize;
            let mut order: Vec<usize> = (0..docs.len()).collect();
            let sort_spec = body.get("sort");
            let sort_values = sort_docs(sort_spec, docs, &mut order)?;
            let filter = SourceFilter::parse(body.get("_source"))?;
            let hits: Vec<Value> = order
                .iter()
                .skip(from)
                .take(size)
                .map(|&i| {
                    hit_json(
                        &docs[i],
                        &filter,
                        sort_values.as_ref().map(|s| s[i].clone()),
                    )
                })
                .collect();
            Ok(json!({
                "hits": {
                    "total": {"value": docs.len(), "relation": "eq"},
                    "max_score": if sort_spec.is_some() { Value::Null } else { json!(1.0) },
                    "hits": hits
                }
            }))
        }
        other => Err(parsing(format!(
            "Unknown aggregation type [{other}] did you mean [terms]?"
        ))),
    }
}

/// Linear interpolation between closest ranks.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates() {
        let v = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(percentile(&v, 50.0), Some(25.0));
        assert_eq!(percentile(&v, 100.0), Some(40.0));
        assert_eq!(percentile(&v, 0.0), Some(10.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
