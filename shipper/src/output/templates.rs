//! The Elasticsearch resources compiled into the shipper, and their installation.
//!
//! `build.rs` embeds every JSON file under `elastic-templates/elasticsearch/` (ILM policies,
//! component templates, index templates). At start they are `PUT` in dependency order before
//! any document is sent, so the first document of a data stream already gets our mappings and
//! lifecycle. A `PUT` of the same body is harmless, which makes the installation idempotent.
//! Transient failures (unreachable, 429, 5xx) are retried; a 4xx stops the shipper with the
//! resource's name and Elasticsearch's reason, because a template that does not apply would
//! silently give every document the wrong mappings. Two exceptions: the index template
//! waits for Elasticsearch's built-in component templates it composes, and a 403 (a user
//! without the cluster-wide manage privileges, as in the compose stack, whose setup step
//! installs everything with the superuser) is fine when the resource already exists.

use bytes::Bytes;
use reqwest::Method;
use tokio_util::sync::CancellationToken;

use super::client::{EsClient, RequestBody, TransportError, MAX_ANSWER_BYTES};
use super::health::{retry_delay, StartupError};
use super::response::error_summary;
use super::retry::Backoff;
use super::telemetry::Telemetry;

/// The kind of an embedded resource, in installation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TemplateKind {
    IlmPolicy,
    ComponentTemplate,
    IndexTemplate,
}

impl TemplateKind {
    /// The API path of a resource of this kind.
    pub(crate) fn path(self, name: &str) -> String {
        match self {
            TemplateKind::IlmPolicy => format!("/_ilm/policy/{name}"),
            TemplateKind::ComponentTemplate => format!("/_component_template/{name}"),
            TemplateKind::IndexTemplate => format!("/_index_template/{name}"),
        }
    }

    /// What the resource is called in messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            TemplateKind::IlmPolicy => "ILM policy",
            TemplateKind::ComponentTemplate => "component template",
            TemplateKind::IndexTemplate => "index template",
        }
    }
}

/// One resource file compiled into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EmbeddedTemplate {
    pub(crate) kind: TemplateKind,
    /// The file name without `.json`, which is the resource name.
    pub(crate) name: &'static str,
    pub(crate) body: &'static str,
}

/// Every embedded resource, ordered by kind (installation order), then by name.
pub(crate) static TEMPLATES: &[EmbeddedTemplate] =
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// Installs `templates` in order, retrying transient failures until done or cancelled.
///
/// Where the cluster refuses the shipper's user the right to install them (no
/// `manage_ilm`/`manage_index_templates`: the stack's setup step installs them with the
/// superuser instead), a resource that exists is used as it is; only a missing one stops
/// the start.
pub(crate) async fn install_templates(
    client: &EsClient,
    templates: &[EmbeddedTemplate],
    backoff: Backoff,
    telemetry: &Telemetry,
    shutdown: &CancellationToken,
) -> Result<(), StartupError> {
    for template in templates {
        if template.kind == TemplateKind::IndexTemplate {
            for name in builtin_components(template, templates) {
                wait_for_component(client, template, &name, backoff, shutdown).await?;
            }
        }
        let outcome = install_one(client, template, backoff, telemetry, shutdown).await?;
        let kind = template.kind.describe();
        match outcome {
            Installed::Put => {
                tracing::info!(
                    kind,
                    name = template.name,
                    "installed {kind} {}",
                    template.name
                )
            }
            Installed::AlreadyThere => tracing::info!(
                kind,
                name = template.name,
                "{kind} {} is in place; this user may not install it, so it is used as it is",
                template.name
            ),
        }
    }
    Ok(())
}

/// How a resource came to be in place.
enum Installed {
    Put,
    /// The PUT was refused (403) but the resource exists: installed by someone allowed to.
    AlreadyThere,
}

/// The component templates an index template composes that neither we install nor it
/// lists as optional: Elasticsearch's built-ins (`logs@mappings`, ...), which a node
/// installs shortly after it starts.
fn builtin_components(template: &EmbeddedTemplate, templates: &[EmbeddedTemplate]) -> Vec<String> {
    let Ok(body) = serde_json::from_str::<serde_json::Value>(template.body) else {
        return Vec::new(); // the PUT will say what is wrong with it
    };
    let names = |key: &str| -> Vec<String> {
        body[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let optional = names("ignore_missing_component_templates");
    names("composed_of")
        .into_iter()
        .filter(|name| !optional.contains(name))
        .filter(|name| {
            !templates
                .iter()
                .any(|t| t.kind == TemplateKind::ComponentTemplate && t.name == name)
        })
        .collect()
}

/// Waits until component template `name` exists: on a slow first boot the node answers
/// before it has installed its built-in templates, and an index template composing a
/// missing one is refused with a 400. An answer that cannot tell (no `monitor` privilege)
/// ends the wait: the PUT will say.
async fn wait_for_component(
    client: &EsClient,
    template: &EmbeddedTemplate,
    name: &str,
    backoff: Backoff,
    shutdown: &CancellationToken,
) -> Result<(), StartupError> {
    let path = TemplateKind::ComponentTemplate.path(name);
    let mut attempt: u32 = 0;
    loop {
        let why = match client
            .send(Method::GET, &path, None, MAX_ANSWER_BYTES)
            .await
        {
            Ok(reply) if reply.status == 404 => "it does not exist yet".to_string(),
            Ok(reply) if reply.status == 429 || reply.status >= 500 => {
                format!("HTTP {}: {}", reply.status, error_summary(&reply.body))
            }
            Ok(_) => return Ok(()),
            Err(err @ TransportError::Tls { .. }) => return Err(StartupError::Tls(err)),
            Err(err) => err.to_string(),
        };
        let delay = retry_delay(backoff, attempt);
        tracing::info!(
            "waiting for Elasticsearch's built-in component template {name}, which index \
             template {} composes ({why}); next look in {:.1} s",
            template.name,
            delay.as_secs_f64()
        );
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = shutdown.cancelled() => return Err(StartupError::Cancelled),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn install_one(
    client: &EsClient,
    template: &EmbeddedTemplate,
    backoff: Backoff,
    telemetry: &Telemetry,
    shutdown: &CancellationToken,
) -> Result<Installed, StartupError> {
    let path = template.kind.path(template.name);
    let mut attempt: u32 = 0;
    loop {
        let body = RequestBody {
            bytes: Bytes::from_static(template.body.as_bytes()),
            content_type: "application/json",
            gzip: false,
        };
        let problem = match client
            .send(Method::PUT, &path, Some(body), MAX_ANSWER_BYTES)
            .await
        {
            Ok(reply) if (200..300).contains(&reply.status) => return Ok(Installed::Put),
            Ok(reply) if reply.status == 403 => {
                match check_exists(client, template, &path, &reply).await? {
                    Some(installed) => return Ok(installed),
                    None => format!("HTTP 403, then no answer to GET {path}"),
                }
            }
            Ok(reply) if reply.status == 429 || reply.status >= 500 => {
                format!("HTTP {}: {}", reply.status, error_summary(&reply.body))
            }
            Ok(reply) => {
                return Err(StartupError::Template {
                    what: template.kind.describe(),
                    name: template.name.to_string(),
                    status: reply.status,
                    reason: error_summary(&reply.body),
                })
            }
            Err(err @ TransportError::Tls { .. }) => return Err(StartupError::Tls(err)),
            Err(err) => err.to_string(),
        };
        let delay = retry_delay(backoff, attempt);
        tracing::warn!(
            "cannot install {} {} yet ({problem}); next try in {:.1} s",
            template.kind.describe(),
            template.name,
            delay.as_secs_f64()
        );
        telemetry.error(problem);
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = shutdown.cancelled() => return Err(StartupError::Cancelled),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// After a 403 on the PUT: is the resource there anyway? `None` when the GET got no
/// usable answer (try again).
async fn check_exists(
    client: &EsClient,
    template: &EmbeddedTemplate,
    path: &str,
    refused: &super::client::Reply,
) -> Result<Option<Installed>, StartupError> {
    let missing = |reason: String| StartupError::Template {
        what: template.kind.describe(),
        name: template.name.to_string(),
        status: refused.status,
        reason,
    };
    let refusal = error_summary(&refused.body);
    match client.send(Method::GET, path, None, MAX_ANSWER_BYTES).await {
        Ok(reply) if reply.status == 200 => Ok(Some(Installed::AlreadyThere)),
        Ok(reply) if reply.status == 404 => Err(missing(format!(
            "{refusal}; it does not exist and this user may not install it: let the stack's \
             setup step install it, or grant the cluster privileges manage_ilm and \
             manage_index_templates"
        ))),
        Ok(reply) if reply.status == 429 || reply.status >= 500 => Ok(None),
        Ok(reply) => Err(missing(format!(
            "{refusal}; and GET {path} answered HTTP {}: {}",
            reply.status,
            error_summary(&reply.body)
        ))),
        Err(err @ TransportError::Tls { .. }) => Err(StartupError::Tls(err)),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_are_embedded() {
        assert!(
            !TEMPLATES.is_empty(),
            "no file under elastic-templates/elasticsearch/ was embedded"
        );
        for kind in [
            TemplateKind::IlmPolicy,
            TemplateKind::ComponentTemplate,
            TemplateKind::IndexTemplate,
        ] {
            assert!(
                TEMPLATES.iter().any(|t| t.kind == kind),
                "no {} embedded",
                kind.describe()
            );
        }
    }

    #[test]
    fn embedded_templates_are_json_objects_with_usable_names() {
        for t in TEMPLATES {
            let v: serde_json::Value = serde_json::from_str(t.body)
                .unwrap_or_else(|e| panic!("{} {} is not JSON: {e}", t.kind.describe(), t.name));
            assert!(v.is_object(), "{}", t.name);
            assert!(!t.name.is_empty());
            assert!(
                !t.name.contains(['/', ' ', '?', '#', '%']),
                "{} cannot be used in a URL path",
                t.name
            );
        }
    }

    #[test]
    fn policies_come_before_component_templates_before_index_templates() {
        let kinds: Vec<TemplateKind> = TEMPLATES.iter().map(|t| t.kind).collect();
        let mut sorted = kinds.clone();
        sorted.sort();
        assert_eq!(kinds, sorted);
    }

    #[test]
    fn the_index_template_only_uses_templates_that_exist_or_are_optional() {
        // Built-in component templates of Elasticsearch that ours may compose.
        let builtin = ["logs@mappings", "logs@settings", "ecs@mappings"];
        for t in TEMPLATES
            .iter()
            .filter(|t| t.kind == TemplateKind::IndexTemplate)
        {
            let v: serde_json::Value = serde_json::from_str(t.body).unwrap();
            let optional: Vec<&str> = v["ignore_missing_component_templates"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            for c in v["composed_of"].as_array().into_iter().flatten() {
                let c = c.as_str().unwrap_or_default();
                let ours = TEMPLATES
                    .iter()
                    .any(|x| x.kind == TemplateKind::ComponentTemplate && x.name == c);
                assert!(
                    ours || builtin.contains(&c) || optional.contains(&c),
                    "index template {} uses unknown component template {c}",
                    t.name
                );
            }
        }
    }

    #[test]
    fn paths_follow_the_elasticsearch_apis() {
        assert_eq!(
            TemplateKind::IlmPolicy.path("didban-logs"),
            "/_ilm/policy/didban-logs"
        );
        assert_eq!(
            TemplateKind::ComponentTemplate.path("didban-logs-mappings"),
            "/_component_template/didban-logs-mappings"
        );
        assert_eq!(
            TemplateKind::IndexTemplate.path("didban-logs"),
            "/_index_template/didban-logs"
        );
    }

    #[test]
    fn the_index_template_waits_only_for_builtins_it_requires() {
        let index = TEMPLATES
            .iter()
            .find(|t| t.kind == TemplateKind::IndexTemplate)
            .unwrap();
        let waited = builtin_components(index, TEMPLATES);
        assert_eq!(waited, ["logs@mappings", "logs@settings", "ecs@mappings"]);
    }
}
