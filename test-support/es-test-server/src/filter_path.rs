//! The `filter_path` response filter (reference "API conventions > Response
//! filtering"): comma-separated dotted paths, `*` within a name, `**` for any
//! depth, a leading `-` to exclude. Arrays are transparent.

use serde_json::{Map, Value};

use crate::wildcard;

fn include(v: &Value, patterns: &[Vec<&str>]) -> Option<Value> {
    if patterns.iter().any(|p| p.is_empty()) {
        return Some(v.clone());
    }
    match v {
        Value::Array(items) => {
            let kept: Vec<Value> = items.iter().filter_map(|i| include(i, patterns)).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                let mut next: Vec<Vec<&str>> = Vec::new();
                for p in patterns {
                    if p[0] == "**" {
                        next.push(p.clone());
                        if p.len() > 1 && wildcard::matches(p[1], k) {
                            next.push(p[2..].to_vec());
                        }
                    } else if wildcard::matches(p[0], k) {
                        next.push(p[1..].to_vec());
                    }
                }
                if next.is_empty() {
                    continue;
                }
                if let Some(sub) = include(val, &next) {
                    out.insert(k.clone(), sub);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ => None,
    }
}

fn exclude(v: &mut Value, p: &[&str]) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| exclude(i, p)),
        Value::Object(m) => {
            if p.len() == 1 {
                m.retain(|k, _| !wildcard::matches(p[0], k));
            } else if let Some((head, rest)) = p.split_first() {
                for (k, val) in m.iter_mut() {
                    if wildcard::matches(head, k) {
                        exclude(val, rest);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Filters a response body.
pub fn apply(v: &Value, spec: &str) -> Value {
    let mut includes: Vec<Vec<&str>> = Vec::new();
    let mut excludes: Vec<Vec<&str>> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match part.strip_prefix('-') {
            Some(ex) => excludes.push(ex.split('.').collect()),
            None => includes.push(part.split('.').collect()),
        }
    }
    let mut out = if includes.is_empty() {
        v.clone()
    } else {
        include(v, &includes).unwrap_or_else(|| Value::Object(Map::new()))
    };
    for e in &excludes {
        exclude(&mut out, e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_only_matching_paths_through_arrays() {
        let v = json!({"errors": true, "took": 3, "items": [{"create": {"_id": "a", "status": 201}}, {"create": {"_id": "b", "status": 409, "error": {"type": "x"}}}]});
        assert_eq!(
            apply(&v, "errors,items.*.error"),
            json!({"errors": true, "items": [{"create": {"error": {"type": "x"}}}]})
        );
        assert_eq!(apply(&v, "-took,-items"), json!({"errors": true}));
        assert_eq!(
            apply(&v, "**.status"),
            json!({"items": [{"create": {"status": 201}}, {"create": {"status": 409}}]})
        );
    }
}
