//! The Elasticsearch resources compiled into the shipper, and their installation.
//!
//! `build.rs` embeds every JSON file under `elastic-templates/elasticsearch/` (ILM policies,
//! component templates, index templates). At start they are `PUT` in dependency order before
//! any document is sent, so the first document of a data stream already gets our mappings and
//! lifecycle. A `PUT` of the same body is harmless, which makes the installation idempotent.
//! Transient failures (unreachable, 429, 5xx) are retried; a 4xx stops the shipper with the
//! resource's name and Elasticsearch's reason, because a template that does not apply would
//! silently give every document the wrong mappings.

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
pub(crate) async fn install_templates(
    client: &EsClient,
    templates: &[EmbeddedTemplate],
    backoff: Backoff,
    telemetry: &Telemetry,
    shutdown: &CancellationToken,
) -> Result<(), StartupError> {
    for template in templates {
        install_one(client, template, backoff, telemetry, shutdown).await?;
        tracing::info!(
            kind = template.kind.describe(),
            name = template.name,
            "installed {} {}",
            template.kind.describe(),
            template.name
        );
    }
    Ok(())
}

async fn install_one(
    client: &EsClient,
    template: &EmbeddedTemplate,
    backoff: Backoff,
    telemetry: &Telemetry,
    shutdown: &CancellationToken,
) -> Result<(), StartupError> {
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
            Ok(reply) if (200..300).contains(&reply.status) => return Ok(()),
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
            TemplateKind::ComponentTemplate.path("didban-logs@mappings"),
            "/_component_template/didban-logs@mappings"
        );
        assert_eq!(
            TemplateKind::IndexTemplate.path("didban-logs"),
            "/_index_template/didban-logs"
        );
    }
}
