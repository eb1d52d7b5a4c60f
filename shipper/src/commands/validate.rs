//! `shipper validate`: everything the shipper would refuse at start, then whether
//! Elasticsearch will take what the shipper sends, without writing anything anywhere.
//!
//! The settings are resolved exactly as at start ([`Settings::load_read_only`]: the same
//! checks, but the data directory is looked at, not created). Then, unless `--offline`,
//! one request per question, never retried (a deploy check must answer now):
//!
//! - `GET /`: reachable, really Elasticsearch, a supported version, credentials accepted;
//! - `_security/user/_has_privileges`: the cluster privileges to install templates and
//!   lifecycle policies, and on the data streams of every embedded index template the
//!   privileges to create documents, create the data stream, and look documents up (for
//!   the replay window and `shipper verify`). A cluster without security grants everything;
//! - `_index_template/_simulate`: each embedded index template, with the embedded
//!   component templates it uses inlined (they may not be installed yet, and installing
//!   them would be a write), is accepted by this cluster's version and built-in templates.

use std::collections::BTreeMap;
use std::process::ExitCode;

use bytes::Bytes;
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use super::{EXIT_ELASTICSEARCH, EXIT_SETTINGS};
use crate::config::{Cli, Settings};
use crate::output::client::{EsClient, RequestBody, MAX_ANSWER_BYTES};
use crate::output::health::{check_root, RootCheck, StartupError};
use crate::output::replay::supports_failure_store;
use crate::output::response::error_summary;
use crate::output::templates::{TemplateKind, TEMPLATES};
use crate::output::Auth;

/// The cluster privileges the shipper uses: `GET /` and health (`monitor`), the
/// templates and the lifecycle policy it installs at start.
const CLUSTER_PRIVILEGES: [&str; 3] = ["monitor", "manage_index_templates", "manage_ilm"];
/// The index privileges on its data streams: create documents (and the data stream on
/// first write), read mappings, look documents up.
const INDEX_PRIVILEGES: [&str; 4] = [
    "create_doc",
    "auto_configure",
    "view_index_metadata",
    "read",
];
/// Looking up documents that went to a failure store, where the cluster has them.
const FAILURE_STORE_PRIVILEGE: &str = "read_failure_store";

/// Options of `shipper validate`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 every check passed; 2 a setting is wrong (the setting \
    is named); 3 Elasticsearch is unreachable, not supported, refuses the credentials, lacks a \
    privilege or refuses a template.\nSettings are read as by the shipper itself: environment, \
    --config file, and the setting flags given before `validate`."
)]
pub struct ValidateArgs {
    /// Check only the settings, files and certificates; do not contact Elasticsearch.
    #[arg(long)]
    offline: bool,
    /// `text`: one line per check; `json`: one JSON object, for scripts.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

/// The outcome of one check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
struct Check {
    check: &'static str,
    ok: bool,
    detail: String,
}

impl Check {
    fn pass(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            ok: true,
            detail: detail.into(),
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            ok: false,
            detail: detail.into(),
        }
    }
}

/// Runs `shipper validate` and prints its report.
pub fn run(cli: &Cli, args: &ValidateArgs) -> ExitCode {
    let mut checks = Vec::new();
    let code = match Settings::load_read_only(cli) {
        Err(e) => {
            checks.push(Check::fail("settings", e.to_string()));
            ExitCode::from(EXIT_SETTINGS)
        }
        Ok(settings) => {
            checks.extend(local_checks(&settings));
            if args.offline {
                ExitCode::SUCCESS
            } else {
                let online = match super::runtime() {
                    Ok(rt) => rt.block_on(elasticsearch_checks(&settings)),
                    Err(e) => vec![Check::fail("elasticsearch", e.to_string())],
                };
                let failed = online.iter().any(|c| !c.ok);
                checks.extend(online);
                if failed {
                    ExitCode::from(EXIT_ELASTICSEARCH)
                } else {
                    ExitCode::SUCCESS
                }
            }
        }
    };
    print(&checks, args.format);
    code
}

fn print(checks: &[Check], format: Format) {
    match format {
        Format::Text => {
            for c in checks {
                let mark = if c.ok { "ok  " } else { "FAIL" };
                println!("{mark}  {:<13} {}", c.check, c.detail);
            }
        }
        Format::Json => {
            let all = json!({"ok": checks.iter().all(|c| c.ok), "checks": checks});
            println!("{all}");
        }
    }
}

/// How lines will be framed, and what a container's file will add to them.
fn format_detail(settings: &Settings) -> String {
    use crate::input::container_log::InputFormat;
    let format = settings.input.format;
    let how = match format {
        InputFormat::Auto => "each file's format (json, cri, docker) told from its first line",
        InputFormat::Json => "plain lines, JSON objects keep their fields",
        InputFormat::Cri => "CRI records (containerd, CRI-O), P parts joined",
        InputFormat::Docker => "Docker json-file records, parts joined",
    };
    format!(
        "{} ({how}); files in kubelet's layout (/var/log/pods/<namespace>_<pod>_<uid>/<container>/) get kubernetes.* fields",
        format.as_str()
    )
}

/// What the settings resolved to, one line per thing an operator wants confirmed.
fn local_checks(settings: &Settings) -> Vec<Check> {
    let mut out = vec![Check::pass(
        "settings",
        "every setting is valid (see `shipper --help` for each)",
    )];
    let matching =
        crate::input::paths::PathsProvider::new(&settings.input.include, &settings.input.exclude)
            .map(|p| p.discover().len())
            .unwrap_or(0);
    out.push(Check::pass(
        "paths",
        format!(
            "{} (excluding {}): {matching} file(s) match now",
            settings.input.include.join(", "),
            if settings.input.exclude.is_empty() {
                "nothing".to_string()
            } else {
                settings.input.exclude.join(", ")
            }
        ),
    ));
    out.push(Check::pass("format", format_detail(settings)));
    let data_dir = &settings.data_dir;
    out.push(Check::pass(
        "data_dir",
        if data_dir.exists() {
            format!("{} is writable", data_dir.display())
        } else {
            format!("{} will be created at start", data_dir.display())
        },
    ));
    out.push(Check::pass(
        "tls",
        match &settings.output.ca_cert {
            Some(ca) => format!("CA certificate {} is a PEM certificate", ca.display()),
            None => "no CA certificate given: https uses the system's roots".to_string(),
        },
    ));
    out.push(Check::pass(
        "alerts",
        match &settings.alerts {
            None => "off (no channel configured)".to_string(),
            Some(a) => {
                let channels: Vec<&str> = a.targets.iter().map(channel_name).collect();
                format!(
                    "{} channel(s) ({}), {} log rule(s), uptime rules {}",
                    channels.len(),
                    channels.join(", "),
                    a.rules.len(),
                    if a.uptime.is_some() { "on" } else { "off" }
                )
            }
        },
    ));
    out
}

pub(crate) fn channel_name(target: &alerting::channels::ChannelTarget) -> &'static str {
    match target {
        alerting::channels::ChannelTarget::Telegram(_) => "telegram",
        alerting::channels::ChannelTarget::Slack(_) => "slack",
        alerting::channels::ChannelTarget::Email(_) => "email",
        alerting::channels::ChannelTarget::Webhook(_) => "webhook",
    }
}

/// The checks that ask Elasticsearch; they stop at the first that makes the next pointless.
async fn elasticsearch_checks(settings: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    let client = match EsClient::new(&settings.output) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail("elasticsearch", e.to_string()));
            return out;
        }
    };
    let reply = match client.send(Method::GET, "/", None, MAX_ANSWER_BYTES).await {
        Ok(r) => r,
        Err(e) => {
            out.push(Check::fail("elasticsearch", format!("unreachable: {e}")));
            return out;
        }
    };
    let info = match check_root(&reply) {
        RootCheck::Ready(info) => info,
        RootCheck::NotYet(why) => {
            out.push(Check::fail(
                "elasticsearch",
                format!("{} is not ready: {why}", reply.node.shown),
            ));
            return out;
        }
        RootCheck::Fatal(e @ StartupError::Unauthorized { .. }) => {
            out.push(Check::pass(
                "elasticsearch",
                format!("{} answers", reply.node.shown),
            ));
            out.push(Check::fail("credentials", e.to_string()));
            return out;
        }
        RootCheck::Fatal(e @ StartupError::UnsupportedVersion { .. }) => {
            out.push(Check::fail("version", e.to_string()));
            return out;
        }
        RootCheck::Fatal(e) => {
            out.push(Check::fail("elasticsearch", e.to_string()));
            return out;
        }
    };
    out.push(Check::pass(
        "elasticsearch",
        format!("{} answers, cluster {:?}", info.node, info.cluster_name),
    ));
    out.push(Check::pass(
        "version",
        format!("Elasticsearch {} is supported (8.x, 9.x)", info.version),
    ));
    let index_patterns = template_index_patterns();
    let mut index_privileges: Vec<&str> = INDEX_PRIVILEGES.to_vec();
    if supports_failure_store(&info.version) {
        index_privileges.push(FAILURE_STORE_PRIVILEGE);
    }
    out.extend(
        privilege_checks(
            &client,
            &settings.output.auth,
            &index_patterns,
            &index_privileges,
        )
        .await,
    );
    out.extend(template_checks(&client).await);
    out
}

/// The index patterns of the embedded index templates: the data streams the shipper writes.
fn template_index_patterns() -> Vec<String> {
    let mut patterns = Vec::new();
    for t in TEMPLATES
        .iter()
        .filter(|t| t.kind == TemplateKind::IndexTemplate)
    {
        if let Ok(body) = serde_json::from_str::<Value>(t.body) {
            for p in body["index_patterns"].as_array().into_iter().flatten() {
                if let Some(p) = p.as_str() {
                    patterns.push(p.to_string());
                }
            }
        }
    }
    patterns
}

async fn privilege_checks(
    client: &EsClient,
    auth: &Auth,
    index_patterns: &[String],
    index_privileges: &[&str],
) -> Vec<Check> {
    let body = json!({
        "cluster": CLUSTER_PRIVILEGES,
        "index": [{"names": index_patterns, "privileges": index_privileges}],
    });
    let reply = match client
        .send(
            Method::POST,
            "/_security/user/_has_privileges",
            Some(json_body(&body)),
            MAX_ANSWER_BYTES,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return vec![Check::fail("privileges", e.to_string())],
    };
    let summary = error_summary(&reply.body);
    if !(200..300).contains(&reply.status) {
        if security_disabled(reply.status, &summary) {
            let credentials = match auth {
                Auth::None => "none needed: security is off on this cluster",
                _ => "not checked: security is off on this cluster",
            };
            return vec![
                Check::pass("credentials", credentials),
                Check::pass(
                    "privileges",
                    "security is off on this cluster: every request is allowed",
                ),
            ];
        }
        if matches!(reply.status, 401 | 403) {
            return vec![Check::fail(
                "credentials",
                format!("refused (HTTP {}): {summary}", reply.status),
            )];
        }
        return vec![Check::fail(
            "privileges",
            format!(
                "cannot check them: HTTP {} to _security/user/_has_privileges: {summary}",
                reply.status
            ),
        )];
    }
    let answer: Value = match serde_json::from_slice(&reply.body) {
        Ok(v) => v,
        Err(e) => {
            return vec![Check::fail(
                "privileges",
                format!("unusable answer to _has_privileges: {e}"),
            )]
        }
    };
    let user = answer["username"].as_str().unwrap_or("?");
    let mut checks = vec![Check::pass(
        "credentials",
        format!("accepted, user {user:?}"),
    )];
    let missing = missing_privileges(&answer);
    if missing.is_empty() {
        checks.push(Check::pass(
            "privileges",
            format!(
                "cluster {}; on {}: {}",
                CLUSTER_PRIVILEGES.join(", "),
                index_patterns.join(", "),
                index_privileges.join(", ")
            ),
        ));
    } else {
        checks.push(Check::fail(
            "privileges",
            format!("missing: {}", missing.join("; ")),
        ));
    }
    checks
}

/// A cluster without security has no `_security` API: Elasticsearch answers 500 "Security
/// must be explicitly enabled", or 400 "does not support having a body" to a request with
/// one (elastic/elasticsearch#50288).
fn security_disabled(status: u16, summary: &str) -> bool {
    (status == 500 && summary.contains("Security must be explicitly enabled"))
        || (status == 400 && summary.contains("does not support having a body"))
}

/// Every privilege `_has_privileges` said false to, named with where it is missing.
fn missing_privileges(answer: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    let cluster: Vec<&str> = answer["cluster"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, held)| held.as_bool() != Some(true))
        .map(|(p, _)| p.as_str())
        .collect();
    if !cluster.is_empty() {
        missing.push(format!("cluster {}", cluster.join(", ")));
    }
    let mut per_index: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (index, privileges) in answer["index"].as_object().into_iter().flatten() {
        for (p, held) in privileges.as_object().into_iter().flatten() {
            if held.as_bool() != Some(true) {
                per_index
                    .entry(index.as_str())
                    .or_default()
                    .push(p.as_str());
            }
        }
    }
    for (index, privileges) in per_index {
        missing.push(format!("on {index}: {}", privileges.join(", ")));
    }
    missing
}

async fn template_checks(client: &EsClient) -> Vec<Check> {
    let mut checks = Vec::new();
    for t in TEMPLATES
        .iter()
        .filter(|t| t.kind == TemplateKind::IndexTemplate)
    {
        let body = match simulation_body(t.body) {
            Ok(b) => b,
            Err(e) => {
                checks.push(Check::fail(
                    "templates",
                    format!("embedded index template {} is not JSON: {e}", t.name),
                ));
                continue;
            }
        };
        let check = match client
            .send(
                Method::POST,
                "/_index_template/_simulate",
                Some(json_body(&body)),
                MAX_ANSWER_BYTES,
            )
            .await
        {
            Ok(r) if (200..300).contains(&r.status) => Check::pass(
                "templates",
                format!(
                    "index template {} and its component templates are accepted",
                    t.name
                ),
            ),
            Ok(r) => Check::fail(
                "templates",
                format!(
                    "index template {} refused (HTTP {}): {}",
                    t.name,
                    r.status,
                    error_summary(&r.body)
                ),
            ),
            Err(e) => Check::fail("templates", e.to_string()),
        };
        checks.push(check);
    }
    checks
}

/// The index template to simulate: the embedded component templates it is composed of are
/// taken out of `composed_of` and their `template` merged, in order, under the index
/// template's own (which wins, as in a composition). The others (`logs@mappings`, ...) are
/// the cluster's built-ins and must exist there.
fn simulation_body(index_template: &str) -> Result<Value, serde_json::Error> {
    let mut body: Value = serde_json::from_str(index_template)?;
    let embedded: BTreeMap<&str, Value> = TEMPLATES
        .iter()
        .filter(|t| t.kind == TemplateKind::ComponentTemplate)
        .filter_map(|t| {
            serde_json::from_str::<Value>(t.body)
                .ok()
                .map(|b| (t.name, b["template"].clone()))
        })
        .collect();
    let composed: Vec<String> = body["composed_of"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(String::from))
        .collect();
    let mut merged = json!({});
    let mut kept = Vec::new();
    for name in composed {
        match embedded.get(name.as_str()) {
            Some(inner) => merge(&mut merged, inner),
            None => kept.push(Value::String(name)),
        }
    }
    merge(&mut merged, &body["template"]);
    body["composed_of"] = Value::Array(kept);
    if merged.as_object().is_some_and(|m| !m.is_empty()) {
        body["template"] = merged;
    }
    Ok(body)
}

/// Merges `over` into `base`, objects key by key (what a composition does to settings and
/// mappings).
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (_, Value::Null) => {}
        (b, o) => *b = o.clone(),
    }
}

fn json_body(value: &Value) -> RequestBody {
    RequestBody {
        bytes: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
        content_type: "application/json",
        gzip: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_privileges_are_named_with_where_they_are_missing() {
        let answer = json!({
            "username": "u", "has_all_requested": false,
            "cluster": {"monitor": true, "manage_ilm": false},
            "index": {"logs-payment-*": {"create_doc": true, "read": false},
                      "logs-reservation-*": {"create_doc": true, "read": true}},
        });
        assert_eq!(
            missing_privileges(&answer),
            vec!["cluster manage_ilm", "on logs-payment-*: read"]
        );
        let all = json!({"cluster": {"monitor": true}, "index": {"x": {"read": true}}});
        assert!(missing_privileges(&all).is_empty());
    }

    #[test]
    fn a_cluster_without_security_is_recognised_by_its_answers() {
        assert!(security_disabled(
            500,
            "exception: Security must be explicitly enabled when using a [basic] license."
        ));
        assert!(security_disabled(
            400,
            "illegal_argument_exception: request [POST /_security/user/_has_privileges] does not support having a body"
        ));
        assert!(!security_disabled(500, "illegal_state_exception: boom"));
    }

    #[test]
    fn the_simulated_template_inlines_the_embedded_components_only() {
        let t = TEMPLATES
            .iter()
            .find(|t| t.kind == TemplateKind::IndexTemplate)
            .unwrap();
        let body = simulation_body(t.body).unwrap();
        let composed: Vec<&str> = body["composed_of"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(composed.contains(&"logs@mappings"), "{composed:?}");
        assert!(
            !composed.iter().any(|c| c.starts_with("didban-logs@s")),
            "{composed:?}"
        );
        assert_eq!(
            body["template"]["settings"]["index"]["lifecycle"]["name"],
            "didban-logs"
        );
        assert!(body["template"]["mappings"].is_object());
    }

    #[test]
    fn the_patterns_asked_about_are_the_templates() {
        let p = template_index_patterns();
        assert!(p.contains(&"logs-payment-*".to_string()), "{p:?}");
    }
}
