//! Splitting and parsing a `_bulk` body (reference "Bulk API" and
//! Elasticsearch's BulkRequestParser): NDJSON, an action/metadata line per
//! operation, then a source line for `index`, `create` and `update`. The body
//! must end with a newline. Action lines are parsed strictly; source lines
//! are only sliced here (Elasticsearch parses them on the shard, so a bad
//! source fails its item, not the request).

use memchr::memchr_iter;
use serde::Deserialize;
use serde_json::Value;

use crate::cluster::OpType;
use crate::error::EsError;

/// Request-wide defaults from the URL (`/<index>/_bulk?require_alias=...`).
#[derive(Debug, Clone, Default)]
pub struct BulkParams {
    pub index: Option<String>,
    pub require_alias: bool,
    pub require_data_stream: bool,
    pub pipeline: Option<String>,
}

/// One parsed operation.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOp<'a> {
    pub op: OpType,
    pub index: Option<String>,
    pub id: Option<String>,
    pub require_alias: bool,
    pub require_data_stream: bool,
    pub pipeline: Option<String>,
    pub if_seq_no: Option<u64>,
    pub if_primary_term: Option<u64>,
    pub version: Option<u64>,
    pub version_type_external: bool,
    /// The source line (empty for delete).
    pub source: &'a [u8],
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue {
    Str(String),
    Num(serde_json::Number),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Meta {
    _index: Option<String>,
    _id: Option<IdValue>,
    routing: Option<String>,
    if_seq_no: Option<u64>,
    if_primary_term: Option<u64>,
    version: Option<u64>,
    version_type: Option<String>,
    pipeline: Option<String>,
    require_alias: Option<bool>,
    require_data_stream: Option<bool>,
    list_executed_pipelines: Option<bool>,
    dynamic_templates: Option<serde_json::Map<String, Value>>,
    retry_on_conflict: Option<u32>,
    _source: Option<Value>,
    op_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionLine {
    index: Option<Meta>,
    create: Option<Meta>,
    update: Option<Meta>,
    delete: Option<Meta>,
}

fn malformed(line: usize, detail: &str) -> EsError {
    EsError::illegal_argument(format!("Malformed action/metadata line [{line}], {detail}"))
}

/// Turns serde's message for an action line into Elasticsearch's.
fn action_error(line: usize, raw: &[u8], e: &serde_json::Error) -> EsError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => EsError::parse(format!(
            "[{line}:{}] Unexpected character or end-of-input in action/metadata line: {e}",
            e.column()
        )),
        Category::Data => {
            let msg = e.to_string();
            let unknown = msg
                .split_once("unknown field `")
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(name, _)| name.to_string());
            match unknown {
                Some(name) if msg.contains("`create`") => malformed(
                    line,
                    &format!(
                        "expected field [create], [delete], [index] or [update] but found [{name}]"
                    ),
                ),
                Some(name) => EsError::illegal_argument(format!(
                    "Action/metadata line [{line}] contains an unknown parameter [{name}]"
                )),
                None => {
                    let token = match serde_json::from_slice::<Value>(raw) {
                        Ok(Value::Array(_)) => "START_ARRAY",
                        Ok(Value::String(_)) => "VALUE_STRING",
                        Ok(Value::Number(_)) => "VALUE_NUMBER",
                        Ok(Value::Bool(_)) => "VALUE_BOOLEAN",
                        Ok(Value::Null) => "VALUE_NULL",
                        Ok(Value::Object(_)) => {
                            return EsError::illegal_argument(format!(
                                "Action/metadata line [{line}] contains an invalid value: {e}"
                            ))
                        }
                        Err(_) => "UNKNOWN",
                    };
                    malformed(
                        line,
                        &format!("expected START_OBJECT or END_OBJECT but found [{token}]"),
                    )
                }
            }
        }
    }
}

fn trim_line(mut l: &[u8]) -> &[u8] {
    if l.last() == Some(&b'\r') {
        l = &l[..l.len() - 1];
    }
    l
}

fn is_blank(l: &[u8]) -> bool {
    l.iter().all(|b| b.is_ascii_whitespace())
}

/// Splits the body into lines; errors as Elasticsearch does for an empty body
/// or a body not terminated by `\n`.
pub fn check_framing(body: &[u8]) -> Result<(), EsError> {
    if body.is_empty() || is_blank(body) {
        return Err(EsError::validation(&["no requests added"]));
    }
    if body.last() != Some(&b'\n') {
        return Err(EsError::illegal_argument(
            "The bulk request must be terminated by a newline [\\n]",
        ));
    }
    Ok(())
}

/// Parses the whole body into operations.
pub fn parse_bulk<'a>(body: &'a [u8], params: &BulkParams) -> Result<Vec<BulkOp<'a>>, EsError> {
    check_framing(body)?;
    let mut lines = Vec::with_capacity(body.len() / 256 + 1);
    let mut start = 0;
    for nl in memchr_iter(b'\n', body) {
        lines.push(trim_line(&body[start..nl]));
        start = nl + 1;
    }
    let mut ops = Vec::with_capacity(lines.len() / 2 + 1);
    let mut problems: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let raw = lines[i];
        i += 1;
        if is_blank(raw) {
            continue;
        }
        let action: ActionLine =
            serde_json::from_slice(raw).map_err(|e| action_error(line_no, raw, &e))?;
        let mut found: Vec<(OpType, Meta)> = Vec::with_capacity(1);
        if let Some(m) = action.index {
            found.push((OpType::Index, m));
        }
        if let Some(m) = action.create {
            found.push((OpType::Create, m));
        }
        if let Some(m) = action.update {
            found.push((OpType::Update, m));
        }
        if let Some(m) = action.delete {
            found.push((OpType::Delete, m));
        }
        if found.len() > 1 {
            return Err(malformed(
                line_no,
                "expected END_OBJECT but found [FIELD_NAME]",
            ));
        }
        let Some((mut op, meta)) = found.pop() else {
            return Err(malformed(
                line_no,
                "expected FIELD_NAME but found [END_OBJECT]",
            ));
        };
        if let Some(t) = &meta.op_type {
            match (op, t.as_str()) {
                (OpType::Index, "create") => op = OpType::Create,
                (OpType::Index, "index") | (OpType::Create, "create") => {}
                _ => {
                    return Err(EsError::illegal_argument(format!(
                        "Action/metadata line [{line_no}] contains an unknown parameter [op_type]"
                    )))
                }
            }
        }
        let _ = (
            &meta.routing,
            &meta.list_executed_pipelines,
            &meta.dynamic_templates,
            &meta.retry_on_conflict,
            &meta._source,
        );
        let id = meta._id.map(|v| match v {
            IdValue::Str(s) => s,
            IdValue::Num(n) => n.to_string(),
        });
        let index = meta._index.or_else(|| params.index.clone());
        if index.is_none() {
            problems.push("index is missing".into());
        }
        if let Some(id) = &id {
            if id.len() > 512 {
                problems.push(format!(
                    "id [{id}] is too long, must be no longer than 512 bytes but was: {}",
                    id.len()
                ));
            } else if id.is_empty() && op != OpType::Index && op != OpType::Create {
                problems.push("id is missing".into());
            }
        }
        if matches!(op, OpType::Update | OpType::Delete) && id.is_none() {
            problems.push("id is missing".into());
        }
        let external = match meta.version_type.as_deref() {
            None | Some("internal") => false,
            Some("external") | Some("external_gte") => true,
            Some(other) => {
                return Err(EsError::illegal_argument(format!(
                    "No version type match [{other}]"
                )));
            }
        };
        if meta.version.is_some() && !external && op != OpType::Delete {
            problems.push(
                "internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead".into(),
            );
        }
        if external && meta.version.is_none() {
            problems.push("an external version is required".into());
        }
        if meta.if_seq_no.is_some() != meta.if_primary_term.is_some() {
            problems.push("ifSeqNo is set, but primary term is [0]".into());
        }
        let source: &'a [u8] = if op == OpType::Delete {
            &[]
        } else {
            if i >= lines.len() {
                problems.push("source is missing".into());
                problems.push("content type is missing".into());
                &[]
            } else {
                let s = lines[i];
                i += 1;
                s
            }
        };
        ops.push(BulkOp {
            op,
            index,
            id,
            require_alias: meta.require_alias.unwrap_or(params.require_alias),
            require_data_stream: meta
                .require_data_stream
                .unwrap_or(params.require_data_stream),
            pipeline: meta.pipeline.or_else(|| params.pipeline.clone()),
            if_seq_no: meta.if_seq_no,
            if_primary_term: meta.if_primary_term,
            version: meta.version,
            version_type_external: external,
            source,
        });
    }
    if !problems.is_empty() {
        let refs: Vec<&str> = problems.iter().map(String::as_str).collect();
        return Err(EsError::validation(&refs));
    }
    if ops.is_empty() {
        return Err(EsError::validation(&["no requests added"]));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> BulkParams {
        BulkParams::default()
    }

    #[test]
    fn body_must_end_with_a_newline() {
        let e = parse_bulk(b"{\"index\":{\"_index\":\"a\"}}\n{}", &p()).unwrap_err();
        assert_eq!(
            e.reason,
            "The bulk request must be terminated by a newline [\\n]"
        );
        assert_eq!(e.status, 400);
    }

    #[test]
    fn empty_body_is_no_requests_added() {
        let e = parse_bulk(b"", &p()).unwrap_err();
        assert_eq!(e.reason, "Validation Failed: 1: no requests added;");
    }

    #[test]
    fn parses_all_four_actions_and_sources() {
        let body = b"{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n{\"create\":{\"_index\":\"a\"}}\r\n{\"y\":2}\n{\"update\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"doc\":{}}\n{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n";
        let ops = parse_bulk(body, &p()).unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].op, OpType::Index);
        assert_eq!(ops[0].source, b"{\"x\":1}");
        assert_eq!(ops[1].op, OpType::Create);
        assert_eq!(ops[1].source, b"{\"y\":2}");
        assert_eq!(ops[3].op, OpType::Delete);
        assert!(ops[3].source.is_empty());
    }

    #[test]
    fn unknown_action_and_unknown_parameter_fail_the_whole_request() {
        let e = parse_bulk(b"{\"upsert\":{\"_index\":\"a\"}}\n{}\n", &p()).unwrap_err();
        assert_eq!(
            e.reason,
            "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]"
        );
        let e = parse_bulk(
            b"{\"index\":{\"_index\":\"a\",\"_type\":\"doc\"}}\n{}\n",
            &p(),
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            "Action/metadata line [1] contains an unknown parameter [_type]"
        );
    }

    #[test]
    fn malformed_action_json_fails_the_whole_request() {
        let e = parse_bulk(b"{\"index\":\n{}\n", &p()).unwrap_err();
        assert_eq!(e.kind, "x_content_parse_exception");
        let e = parse_bulk(b"\"index\"\n{}\n", &p()).unwrap_err();
        assert!(e
            .reason
            .contains("expected START_OBJECT or END_OBJECT but found [VALUE_STRING]"));
    }

    #[test]
    fn missing_index_is_a_validation_error_unless_the_path_gives_one() {
        let e = parse_bulk(b"{\"create\":{}}\n{}\n", &p()).unwrap_err();
        assert_eq!(e.kind, "action_request_validation_exception");
        assert!(e.reason.contains("index is missing"));
        let params = BulkParams {
            index: Some("logs-a-b".into()),
            ..p()
        };
        let ops = parse_bulk(b"{\"create\":{}}\n{}\n", &params).unwrap();
        assert_eq!(ops[0].index.as_deref(), Some("logs-a-b"));
    }

    #[test]
    fn malformed_source_is_left_to_the_item() {
        let ops = parse_bulk(b"{\"create\":{\"_index\":\"a\"}}\n{not json\n", &p()).unwrap();
        assert_eq!(ops[0].source, b"{not json");
    }

    #[test]
    fn index_with_op_type_create_becomes_create() {
        let ops = parse_bulk(
            b"{\"index\":{\"_index\":\"a\",\"op_type\":\"create\"}}\n{}\n",
            &p(),
        )
        .unwrap();
        assert_eq!(ops[0].op, OpType::Create);
    }
}
