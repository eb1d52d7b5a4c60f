//! Node discovery: the cluster names its nodes, and the output spreads its requests over
//! them (`SHIPPER_ELASTICSEARCH_DISCOVER_NODES`, off by default).
//!
//! `GET /_nodes/http` lists every node in the cluster with its HTTP `publish_address`
//! (`ip:port`, or `host/ip:port` when the node publishes a host name; the host name is
//! used then, so TLS verifies the name the certificate carries). The scheme, and any
//! credentials written into the URL, are those of the configured nodes: the answer says
//! nothing about TLS. Dedicated master nodes (master, and neither a data nor the ingest
//! role) are left out, as Elastic's own clients do, so that indexing never loads the nodes
//! that keep the cluster state; coordinating-only nodes (no role) are kept, they are made
//! for this.
//!
//! It runs once the cluster answered at start, then every `SHIPPER_ELASTICSEARCH_DISCOVER_INTERVAL`.
//! The question goes to the nodes in use; if none answers, to the configured ones. An
//! answer that names no usable node, or no answer at all, leaves the list as it is: a
//! failed discovery never takes nodes away.

use url::Url;

use super::client::{EsClient, MAX_ANSWER_BYTES};
use super::nodes::NodeRef;
use super::response::error_summary;

/// Only the fields read, so the answer stays small on a large cluster.
pub(crate) const NODES_HTTP_PATH: &str =
    "/_nodes/http?filter_path=nodes.*.roles,nodes.*.http.publish_address";

/// Why a discovery round learnt nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DiscoveryError {
    #[error("no node answered GET _nodes/http: {0}")]
    Unreachable(String),
    #[error("{node} answered GET _nodes/http with HTTP {status}: {reason}")]
    Refused {
        node: String,
        status: u16,
        reason: String,
    },
    #[error("the answer to GET _nodes/http cannot be read: {0}")]
    BadAnswer(String),
    #[error("GET _nodes/http names no node that takes requests over HTTP")]
    NoUsableNode,
}

/// Asks the cluster for its nodes and uses them from now on. Returns the nodes in use
/// afterwards and whether they changed.
pub(crate) async fn discover(client: &EsClient) -> Result<(Vec<Url>, bool), DiscoveryError> {
    let seeds = client.nodes().seeds().to_vec();
    let reply = match client
        .send(
            reqwest::Method::GET,
            NODES_HTTP_PATH,
            None,
            MAX_ANSWER_BYTES,
        )
        .await
    {
        Ok(reply) => reply,
        Err(first) => {
            // Every node in use failed: maybe all the discovered ones are gone. Ask the
            // configured ones, which is how the list was found in the first place.
            let mut answered = None;
            for seed in &seeds {
                if let Ok(reply) = client
                    .send_to(
                        &NodeRef::detached(seed.clone()),
                        reqwest::Method::GET,
                        NODES_HTTP_PATH,
                        None,
                        MAX_ANSWER_BYTES,
                    )
                    .await
                {
                    answered = Some(reply);
                    break;
                }
            }
            answered.ok_or_else(|| DiscoveryError::Unreachable(first.to_string()))?
        }
    };
    if !(200..300).contains(&reply.status) {
        return Err(DiscoveryError::Refused {
            node: reply.node.shown.clone(),
            status: reply.status,
            reason: error_summary(&reply.body),
        });
    }
    let template = seeds.first().unwrap_or(&reply.node.url);
    let urls = node_urls(&reply.body, template)?;
    if urls.is_empty() {
        return Err(DiscoveryError::NoUsableNode);
    }
    let changed = client.nodes().replace(&urls);
    Ok((client.nodes().urls(), changed))
}

/// The URLs of the nodes an answer to `GET _nodes/http` names, in the scheme (and with the
/// credentials) of `template`, sorted so that every shipper walks them in the same order.
pub(crate) fn node_urls(body: &[u8], template: &Url) -> Result<Vec<Url>, DiscoveryError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        nodes: std::collections::BTreeMap<String, NodeInfo>,
    }
    #[derive(serde::Deserialize)]
    struct NodeInfo {
        #[serde(default)]
        roles: Option<Vec<String>>,
        #[serde(default)]
        http: Option<Http>,
    }
    #[derive(serde::Deserialize)]
    struct Http {
        publish_address: Option<String>,
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| DiscoveryError::BadAnswer(e.to_string()))?;
    let mut urls = Vec::new();
    for info in answer.nodes.values() {
        if info.roles.as_deref().is_some_and(is_dedicated_master) {
            continue;
        }
        let Some(address) = info
            .http
            .as_ref()
            .and_then(|h| h.publish_address.as_deref())
        else {
            continue;
        };
        if let Some(url) = publish_url(address, template) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    urls.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(urls)
}

/// Master, and neither a data role nor ingest: such a node only keeps the cluster state.
fn is_dedicated_master(roles: &[String]) -> bool {
    roles.iter().any(|r| r == "master")
        && !roles.iter().any(|r| r.starts_with("data") || r == "ingest")
}

/// `ip:port`, `host/ip:port` or `[v6]:port` as a URL in `template`'s scheme; `None` for an
/// address that is none of these.
fn publish_url(address: &str, template: &Url) -> Option<Url> {
    let address = address.trim();
    let host_port = match address.split_once('/') {
        // `host/ip:port`: the host name, with the port of the address.
        Some((host, ip_port)) if !host.is_empty() => {
            let (_, port) = ip_port.rsplit_once(':')?;
            format!("{host}:{port}")
        }
        Some((_, ip_port)) => ip_port.to_string(),
        None => address.to_string(),
    };
    let (_, port) = host_port.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let mut url = Url::parse(&format!("{}://{host_port}/", template.scheme())).ok()?;
    url.host_str()?;
    if !template.username().is_empty() {
        url.set_username(template.username()).ok()?;
        url.set_password(template.password()).ok()?;
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Url {
        Url::parse("https://es.example:9200").unwrap()
    }

    #[test]
    fn publish_addresses_become_urls_in_the_configured_scheme() {
        let t = template();
        let u = |a: &str| publish_url(a, &t).map(|u| u.to_string());
        assert_eq!(
            u("10.0.0.5:9200").as_deref(),
            Some("https://10.0.0.5:9200/")
        );
        assert_eq!(
            u("es02.example/10.0.0.6:9201").as_deref(),
            Some("https://es02.example:9201/")
        );
        assert_eq!(u("[::1]:9200").as_deref(), Some("https://[::1]:9200/"));
        assert_eq!(
            u("/10.0.0.7:9200").as_deref(),
            Some("https://10.0.0.7:9200/")
        );
        assert_eq!(u("no-port"), None);
        assert_eq!(u("host:notaport"), None);
        assert_eq!(u(""), None);
    }

    #[test]
    fn credentials_of_the_configured_url_are_kept() {
        let t = Url::parse("http://user:pw@es01:9200").unwrap();
        let url = publish_url("127.0.0.1:9201", &t).unwrap();
        assert_eq!((url.username(), url.password()), ("user", Some("pw")));
    }

    #[test]
    fn dedicated_masters_and_nodes_without_http_are_left_out() {
        let body = br#"{"_nodes":{"total":4,"successful":4,"failed":0},"cluster_name":"c","nodes":{
          "b":{"name":"data-2","roles":["data_hot","ingest"],"http":{"publish_address":"10.0.0.2:9200"}},
          "a":{"name":"data-1","roles":["data","master"],"http":{"publish_address":"es01/10.0.0.1:9200"}},
          "m":{"name":"master","roles":["master"],"http":{"publish_address":"10.0.0.3:9200"}},
          "c":{"name":"coord","roles":[],"http":{"publish_address":"10.0.0.4:9200"}},
          "x":{"name":"no-http","roles":["data"]}
        }}"#;
        let urls: Vec<String> = node_urls(body, &template())
            .unwrap()
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            urls,
            [
                "https://10.0.0.2:9200/",
                "https://10.0.0.4:9200/",
                "https://es01:9200/"
            ]
        );
    }

    #[test]
    fn an_answer_that_is_not_the_nodes_info_is_an_error() {
        assert!(matches!(
            node_urls(b"<html>", &template()),
            Err(DiscoveryError::BadAnswer(_))
        ));
        assert!(node_urls(b"{}", &template()).unwrap().is_empty());
    }
}
