//! The Heartbeat 9.2 fields the Uptime dashboard queries, with their types.
//!
//! Heartbeat installs its own index template for `heartbeat-*`; these are the fields of that
//! template the dashboards rely on. Source: elastic/beats, `heartbeat/_meta/fields.common.yml`
//! (`monitor.*`, `summary.*`, rendered as `docs/reference/heartbeat/exported-fields-common.md`
//! and `exported-fields-summary.md`), `heartbeat/monitors/active/http/_meta/fields.yml`
//! (`http.*`), and the ECS fields Heartbeat includes (`url.full`, `error.message`,
//! `@timestamp`; `docs/reference/heartbeat/exported-fields-ecs.md`).

/// `(field, type)` for every Heartbeat field a saved object of ours uses.
pub const HEARTBEAT_FIELDS: &[(&str, &str)] = &[
    ("@timestamp", "date"),
    ("monitor.id", "keyword"),
    ("monitor.name", "keyword"),
    ("monitor.type", "keyword"),
    ("monitor.status", "keyword"),
    ("monitor.check_group", "keyword"),
    ("monitor.duration.us", "long"),
    ("summary.up", "integer"),
    ("summary.down", "integer"),
    ("summary.status", "keyword"),
    ("summary.final_attempt", "boolean"),
    ("url.full", "wildcard"),
    ("http.response.status_code", "long"),
    ("http.rtt.total.us", "long"),
    ("error.message", "match_only_text"),
    ("service.name", "keyword"),
];

/// The type of a Heartbeat field, if it is one we know.
pub fn heartbeat_field_type(field: &str) -> Option<&'static str> {
    HEARTBEAT_FIELDS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, kind)| *kind)
}
