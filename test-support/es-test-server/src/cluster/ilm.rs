//! ILM policies (`PUT _ilm/policy/<name>`): the body is
//! `{"policy": {"phases": {...}, "_meta": ...}}`; `phases` is required, phase
//! names are the timeseries ones and each phase allows a fixed set of actions
//! (reference "Index lifecycle actions"; TimeseriesLifecycleType in the
//! Elasticsearch source lists the per-phase actions).

use serde_json::{json, Value};

use crate::error::EsError;

/// A stored policy with its version.
#[derive(Debug, Clone, PartialEq)]
pub struct IlmPolicy {
    pub name: String,
    pub version: u64,
    pub modified_millis: i64,
    pub policy: Value,
}

fn allowed_actions(phase: &str) -> Option<&'static [&'static str]> {
    Some(match phase {
        "hot" => &[
            "set_priority",
            "unfollow",
            "rollover",
            "readonly",
            "downsample",
            "shrink",
            "forcemerge",
            "searchable_snapshot",
        ],
        "warm" => &[
            "set_priority",
            "unfollow",
            "readonly",
            "downsample",
            "allocate",
            "migrate",
            "shrink",
            "forcemerge",
        ],
        "cold" => &[
            "set_priority",
            "unfollow",
            "readonly",
            "downsample",
            "searchable_snapshot",
            "allocate",
            "migrate",
            "freeze",
        ],
        "frozen" => &["unfollow", "searchable_snapshot"],
        "delete" => &["wait_for_snapshot", "delete"],
        _ => return None,
    })
}

const ALL_ACTIONS: &[&str] = &[
    "set_priority",
    "unfollow",
    "rollover",
    "readonly",
    "downsample",
    "shrink",
    "forcemerge",
    "searchable_snapshot",
    "allocate",
    "migrate",
    "freeze",
    "wait_for_snapshot",
    "delete",
];

/// Validates a `PUT _ilm/policy` body and returns the inner policy object.
pub fn parse_put_policy(name: &str, body: &Value) -> Result<Value, EsError> {
    let obj = body
        .as_object()
        .ok_or_else(|| EsError::parse("request body is required"))?;
    for k in obj.keys() {
        if k != "policy" {
            return Err(EsError::parse(format!(
                "[put_lifecycle_request] unknown field [{k}]"
            )));
        }
    }
    let policy = obj
        .get("policy")
        .ok_or_else(|| EsError::validation(&["policy is missing"]))?;
    let pobj = policy
        .as_object()
        .ok_or_else(|| EsError::parse("[put_lifecycle_request] failed to parse field [policy]"))?;
    for k in pobj.keys() {
        if !matches!(k.as_str(), "phases" | "_meta" | "deprecated") {
            return Err(
                EsError::parse("[put_lifecycle_request] failed to parse field [policy]").caused_by(
                    EsError::parse(format!("[lifecycle_policy] unknown field [{k}]")),
                ),
            );
        }
    }
    let phases = pobj.get("phases").ok_or_else(|| {
        EsError::parse("[put_lifecycle_request] failed to parse field [policy]")
            .caused_by(EsError::illegal_argument("Required [phases]"))
    })?;
    let phases = phases
        .as_object()
        .ok_or_else(|| EsError::parse("[lifecycle_policy] failed to parse field [phases]"))?;
    for (phase, def) in phases {
        let Some(allowed) = allowed_actions(phase) else {
            return Err(EsError::illegal_argument(format!(
                "Timeseries lifecycle does not support phase [{phase}]"
            )));
        };
        let def = def
            .as_object()
            .ok_or_else(|| EsError::parse(format!("[phase] failed to parse phase [{phase}]")))?;
        for (k, v) in def {
            match k.as_str() {
                "min_age" => {
                    if let Some(s) = v.as_str() {
                        if crate::dates::parse_fixed_interval(s).is_none() && s != "0" && s != "0ms"
                        {
                            return Err(EsError::parse("[phase] failed to parse field [min_age]").caused_by(
                                EsError::new(400, "parse_exception", format!("failed to parse setting [min_age] with value [{s}] as a time value: unit is missing or unrecognized")),
                            ));
                        }
                    }
                }
                "actions" => {
                    let actions = v
                        .as_object()
                        .ok_or_else(|| EsError::parse("[phase] failed to parse field [actions]"))?;
                    for action in actions.keys() {
                        if !ALL_ACTIONS.contains(&action.as_str()) {
                            return Err(EsError::parse("[phase] failed to parse field [actions]")
                                .caused_by(EsError::new(
                                    400,
                                    "named_object_not_found_exception",
                                    format!("unknown field [{action}]"),
                                )));
                        }
                        if !allowed.contains(&action.as_str()) {
                            return Err(EsError::illegal_argument(format!(
                                "invalid action [{action}] defined in phase [{phase}]"
                            )));
                        }
                    }
                }
                other => {
                    return Err(EsError::parse(format!("[phase] unknown field [{other}]")));
                }
            }
        }
    }
    let _ = name;
    Ok(policy.clone())
}

/// The built-in `logs@lifecycle` policy that `logs@settings` points at.
pub fn builtin_policies() -> Vec<(&'static str, Value)> {
    vec![(
        "logs@lifecycle",
        json!({
            "phases": {"hot": {"min_age": "0ms", "actions": {"rollover": {"max_age": "30d", "max_primary_shard_size": "50gb"}}}},
            "_meta": {"description": "default policy for the logs index template installed by x-pack", "managed": true}
        }),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_required() {
        let e = parse_put_policy("p", &json!({"policy": {"_meta": {}}})).unwrap_err();
        assert_eq!(e.kind, "x_content_parse_exception");
        assert_eq!(e.caused_by.unwrap().reason, "Required [phases]");
    }

    #[test]
    fn unknown_top_level_key_is_refused() {
        let e = parse_put_policy("p", &json!({"phases": {}})).unwrap_err();
        assert_eq!(e.reason, "[put_lifecycle_request] unknown field [phases]");
    }

    #[test]
    fn actions_must_belong_to_their_phase() {
        let e = parse_put_policy(
            "p",
            &json!({"policy": {"phases": {"delete": {"actions": {"rollover": {}}}}}}),
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            "invalid action [rollover] defined in phase [delete]"
        );
        let e =
            parse_put_policy("p", &json!({"policy": {"phases": {"lukewarm": {}}}})).unwrap_err();
        assert!(e.reason.contains("does not support phase [lukewarm]"));
        parse_put_policy("p", &json!({"policy": {"phases": {"hot": {"actions": {"rollover": {"max_age": "1d"}}}, "delete": {"min_age": "30d", "actions": {"delete": {}}}}}})).unwrap();
    }
}
