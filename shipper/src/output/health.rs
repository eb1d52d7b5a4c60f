//! Startup checks: is the other end Elasticsearch, is it up, will it let us in.
//!
//! [`wait_until_ready`] asks `GET /` until a node answers. While the cluster is unreachable or
//! answers 5xx/429 (still starting, recovering), it waits with capped exponential backoff and
//! says so in one log line per attempt. Problems that waiting cannot fix stop the shipper at
//! once with a message saying what to change: rejected credentials (401/403), a TLS failure,
//! something that is not Elasticsearch 8.x or 9.x. Like the official clients, the product
//! check requires the `X-Elastic-Product: Elasticsearch` header, so a proxy error page or
//! another product is never mistaken for a cluster.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::client::{EsClient, Reply, TransportError, MAX_ANSWER_BYTES};
use super::response::error_summary;
use super::retry::Backoff;
use super::telemetry::Telemetry;

/// What the cluster said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The node that answered (URL without credentials).
    pub(crate) node: String,
    pub(crate) cluster_name: String,
    pub(crate) version: String,
}

/// A reason not to start shipping.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "Elasticsearch at {node} refused the credentials (HTTP {status}: {reason}); check \
         ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD or ELASTICSEARCH_API_KEY and the role's privileges"
    )]
    Unauthorized {
        node: String,
        status: u16,
        reason: String,
    },
    #[error(
        "{0}; check the node URL's scheme (https needs TLS on the node) and ELASTICSEARCH_CA_CERT"
    )]
    Tls(TransportError),
    #[error("{node} is not Elasticsearch: {detail}")]
    NotElasticsearch { node: String, detail: String },
    #[error("{node} runs Elasticsearch {version}; the shipper needs 8.x or 9.x")]
    UnsupportedVersion { node: String, version: String },
    #[error("Elasticsearch refused {what} `{name}` (HTTP {status}): {reason}")]
    Template {
        what: &'static str,
        name: String,
        status: u16,
        reason: String,
    },
    #[error("shutdown requested before Elasticsearch was ready")]
    Cancelled,
}

/// The verdict on one `GET /` answer.
#[derive(Debug)]
pub(crate) enum RootCheck {
    Ready(ClusterInfo),
    /// Not ready yet; the text says why.
    NotYet(String),
    Fatal(StartupError),
}

/// Judges one answer to `GET /` (a pure function, tested on its own).
pub(crate) fn check_root(reply: &Reply) -> RootCheck {
    let node = reply.node.shown.clone();
    match reply.status {
        200..=299 => {}
        401 | 403 => {
            return RootCheck::Fatal(StartupError::Unauthorized {
                node,
                status: reply.status,
                reason: error_summary(&reply.body),
            })
        }
        429 | 500..=599 => {
            return RootCheck::NotYet(format!(
                "HTTP {}: {}",
                reply.status,
                error_summary(&reply.body)
            ))
        }
        status => {
            return RootCheck::Fatal(StartupError::NotElasticsearch {
                node,
                detail: format!(
                    "GET / answered HTTP {status}: {}",
                    error_summary(&reply.body)
                ),
            })
        }
    }
    let product = reply
        .headers
        .get("x-elastic-product")
        .and_then(|v| v.to_str().ok());
    if product != Some("Elasticsearch") {
        return RootCheck::Fatal(StartupError::NotElasticsearch {
            node,
            detail: "the answer to GET / has no `X-Elastic-Product: Elasticsearch` header".into(),
        });
    }
    #[derive(Deserialize)]
    struct Root {
        #[serde(default)]
        cluster_name: String,
        version: Version,
    }
    #[derive(Deserialize)]
    struct Version {
        number: String,
    }
    let root: Root = match serde_json::from_slice(&reply.body) {
        Ok(r) => r,
        Err(e) => {
            return RootCheck::Fatal(StartupError::NotElasticsearch {
                node,
                detail: format!("the answer to GET / has no version.number: {e}"),
            })
        }
    };
    let major = root
        .version
        .number
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if !matches!(major, Some(8 | 9)) {
        return RootCheck::Fatal(StartupError::UnsupportedVersion {
            node,
            version: root.version.number,
        });
    }
    RootCheck::Ready(ClusterInfo {
        node,
        cluster_name: root.cluster_name,
        version: root.version.number,
    })
}

/// Waits until a node answers `GET /` as Elasticsearch 8.x/9.x, or fails on what waiting
/// cannot fix, or returns [`StartupError::Cancelled`] when `shutdown` is cancelled.
pub(crate) async fn wait_until_ready(
    client: &EsClient,
    backoff: Backoff,
    telemetry: &Telemetry,
    shutdown: &CancellationToken,
) -> Result<ClusterInfo, StartupError> {
    let mut attempt: u32 = 0;
    loop {
        let (node, problem) = match client.send(Method::GET, "/", None, MAX_ANSWER_BYTES).await {
            Ok(reply) => {
                let node = reply.node.shown.clone();
                telemetry.elasticsearch_up(reply.status < 500);
                match check_root(&reply) {
                    RootCheck::Ready(info) => return Ok(info),
                    RootCheck::NotYet(why) => (node, why),
                    RootCheck::Fatal(e) => return Err(e),
                }
            }
            Err(err @ TransportError::Tls { .. }) => {
                telemetry.elasticsearch_up(false);
                return Err(StartupError::Tls(err));
            }
            Err(err) => {
                telemetry.elasticsearch_up(false);
                (node_of(&err), err.to_string())
            }
        };
        let delay = retry_delay(backoff, attempt);
        tracing::warn!(
            node = %node,
            error = %problem,
            next_try_in_s = delay.as_secs_f64(),
            "Elasticsearch at {node} is not ready ({problem}); next try in {:.1} s",
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

/// Startup waits use the ceiling, not a random delay: the log line promises a time and keeps it.
pub(crate) fn retry_delay(backoff: Backoff, attempt: u32) -> Duration {
    backoff.ceiling(attempt)
}

fn node_of(err: &TransportError) -> String {
    match err {
        TransportError::Connect { node, .. }
        | TransportError::Tls { node, .. }
        | TransportError::Timeout { node, .. }
        | TransportError::Other { node, .. }
        | TransportError::TooLarge { node, .. } => node.clone(),
        TransportError::NoNodes => "(no node)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::nodes::NodeRef;
    use bytes::Bytes;
    use reqwest::header::{HeaderMap, HeaderValue};

    const ROOT_9_2: &str = r#"{
      "name": "es01", "cluster_name": "docker-cluster", "cluster_uuid": "f2Jc5ut5TnKmz5kqG1nVRw",
      "version": {"number": "9.2.1", "build_flavor": "default", "build_type": "docker",
        "lucene_version": "10.3.1", "minimum_wire_compatibility_version": "8.19.0",
        "minimum_index_compatibility_version": "8.0.0"},
      "tagline": "You Know, for Search"
    }"#;

    fn reply(status: u16, product: Option<&str>, body: &str) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(p) = product {
            headers.insert("x-elastic-product", HeaderValue::from_str(p).unwrap());
        }
        Reply {
            node: NodeRef::detached(url::Url::parse("http://es01:9200").unwrap()),
            status,
            headers,
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn elasticsearch_9_with_the_product_header_is_ready() {
        match check_root(&reply(200, Some("Elasticsearch"), ROOT_9_2)) {
            RootCheck::Ready(info) => {
                assert_eq!(info.version, "9.2.1");
                assert_eq!(info.cluster_name, "docker-cluster");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn elasticsearch_8_is_accepted() {
        let body = ROOT_9_2.replace("9.2.1", "8.19.3");
        assert!(matches!(
            check_root(&reply(200, Some("Elasticsearch"), &body)),
            RootCheck::Ready(_)
        ));
    }

    #[test]
    fn a_missing_product_header_is_refused() {
        assert!(matches!(
            check_root(&reply(200, None, ROOT_9_2)),
            RootCheck::Fatal(StartupError::NotElasticsearch { .. })
        ));
        assert!(matches!(
            check_root(&reply(200, Some("OpenSearch"), ROOT_9_2)),
            RootCheck::Fatal(StartupError::NotElasticsearch { .. })
        ));
    }

    #[test]
    fn old_versions_are_refused() {
        let body = ROOT_9_2.replace("9.2.1", "7.17.0");
        match check_root(&reply(200, Some("Elasticsearch"), &body)) {
            RootCheck::Fatal(e @ StartupError::UnsupportedVersion { .. }) => {
                assert!(e.to_string().contains("7.17.0"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_credentials_fail_fast_with_the_reason() {
        let body = r#"{"error":{"type":"security_exception","reason":"unable to authenticate user [elastic]"},"status":401}"#;
        match check_root(&reply(401, Some("Elasticsearch"), body)) {
            RootCheck::Fatal(e @ StartupError::Unauthorized { .. }) => {
                let text = e.to_string();
                assert!(text.contains("unable to authenticate user"), "{text}");
                assert!(text.contains("ELASTICSEARCH_PASSWORD"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unavailable_and_overloaded_clusters_are_waited_for() {
        let body =
            r#"{"error":{"type":"master_not_discovered_exception","reason":null},"status":503}"#;
        assert!(matches!(
            check_root(&reply(503, Some("Elasticsearch"), body)),
            RootCheck::NotYet(_)
        ));
        assert!(matches!(
            check_root(&reply(429, None, "")),
            RootCheck::NotYet(_)
        ));
    }

    #[test]
    fn startup_delays_grow_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        assert_eq!(retry_delay(b, 0), Duration::from_millis(200));
        assert_eq!(retry_delay(b, 3), Duration::from_millis(1600));
        assert_eq!(retry_delay(b, 20), Duration::from_secs(30));
    }
}
