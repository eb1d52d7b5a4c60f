//! `GET /_nodes[/<node_id>][/<metric>]`: the nodes info API, as far as a client's node
//! discovery ("sniffing") reads it: every node's identity, roles and `http` section.
//!
//! Shape as the nodes info API reference (9.2) and `NodesInfoResponse` in the REST
//! specification give it: `_nodes` (total, successful, failed), `cluster_name`, and `nodes`
//! keyed by node id, each with `name`, `transport_address`, `host`, `ip`, `version`,
//! `build_flavor`, `build_type`, `build_hash`, `roles`, `attributes`, and, when the `http`
//! metric is asked for (or no metric at all), `http.bound_address`, `http.publish_address`
//! and `http.max_content_length_in_bytes`. `publish_address` is `ip:port`, or
//! `host/ip:port` when the node's `http.publish_host` is a host name
//! ([`crate::ServerConfig::publish_host`]), as Elasticsearch writes it.
//!
//! A killed node ([`crate::EsTestServer::kill_node`]) models a node whose process died: it
//! has left the cluster, so it is not listed (Elasticsearch removes a node that fails its
//! follower checks from the cluster state). The path's first segment is read as metrics
//! when every part of it is a metric name, and as a node filter otherwise, as
//! `RestNodesInfoAction` does; the filter takes `_all`, `_local`, node ids and node names.

use super::*;
use crate::server::ServingNode;

/// The metrics of the nodes info API.
const METRICS: &[&str] = &[
    "_all",
    "_none",
    "aggregations",
    "http",
    "indices",
    "ingest",
    "jvm",
    "os",
    "plugins",
    "process",
    "remote_cluster_server",
    "settings",
    "thread_pool",
    "transport",
];

/// Every role of a default node (no `node.roles` set), as `GET _nodes` lists them.
const DEFAULT_ROLES: &[&str] = &[
    "data",
    "data_cold",
    "data_content",
    "data_frozen",
    "data_hot",
    "data_warm",
    "ingest",
    "master",
    "ml",
    "remote_cluster_client",
    "transform",
];

fn is_metrics(segment: &str) -> bool {
    segment.split(',').all(|m| METRICS.contains(&m.trim()))
}

pub(super) async fn nodes_info_all(
    State(shared): State<Arc<Shared>>,
    serving: Option<axum::Extension<ServingNode>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    nodes_info(&shared, serving.map(|e| e.0), "_all", "_all", &q)
}

pub(super) async fn nodes_info_one(
    State(shared): State<Arc<Shared>>,
    serving: Option<axum::Extension<ServingNode>>,
    Path(segment): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (filter, metrics) = if is_metrics(&segment) {
        ("_all", segment.as_str())
    } else {
        (segment.as_str(), "_all")
    };
    nodes_info(&shared, serving.map(|e| e.0), filter, metrics, &q)
}

pub(super) async fn nodes_info_two(
    State(shared): State<Arc<Shared>>,
    serving: Option<axum::Extension<ServingNode>>,
    Path((filter, metrics)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !is_metrics(&metrics) {
        return EsError::illegal_argument(format!(
            "request [/_nodes/{filter}/{metrics}] contains unrecognized metric: [{metrics}]"
        ))
        .into_response();
    }
    nodes_info(&shared, serving.map(|e| e.0), &filter, &metrics, &q)
}

fn nodes_info(
    shared: &Shared,
    serving: Option<ServingNode>,
    filter: &str,
    metrics: &str,
    query: &HashMap<String, String>,
) -> Response {
    let wanted: Vec<&str> = filter.split(',').map(str::trim).collect();
    let with_http = metrics
        .split(',')
        .any(|m| matches!(m.trim(), "_all" | "http"));
    let mut nodes = serde_json::Map::new();
    for (index, node) in shared.nodes.iter().enumerate() {
        let Some(addr) = node.addr().filter(|_| node.is_up()) else {
            continue;
        };
        let selected = wanted.iter().any(|w| match *w {
            "_all" | "*" => true,
            "_local" => serving.is_some_and(|s| s.0 == index),
            other => other == node.id || other == node.name,
        });
        if !selected {
            continue;
        }
        let ip = addr.ip().to_string();
        let host = shared
            .config
            .publish_host
            .clone()
            .unwrap_or_else(|| ip.clone());
        let publish = match &shared.config.publish_host {
            Some(name) => format!("{name}/{addr}"),
            None => addr.to_string(),
        };
        let mut info = json!({
            "name": node.name,
            // No transport layer is modelled: the port the transport would have next to HTTP.
            "transport_address": std::net::SocketAddr::new(addr.ip(), addr.port().wrapping_add(100)).to_string(),
            "host": host,
            "ip": ip,
            "version": VERSION,
            "build_flavor": "default",
            "build_type": "docker",
            "build_hash": "es-test-server",
            "roles": DEFAULT_ROLES,
            "attributes": {},
        });
        if with_http {
            info["http"] = json!({
                "bound_address": [addr.to_string()],
                "publish_address": publish,
                "max_content_length_in_bytes": shared.max_content_length(),
            });
        }
        nodes.insert(node.id.clone(), info);
    }
    let total = nodes.len();
    let body = json!({
        "_nodes": {"total": total, "successful": total, "failed": 0},
        "cluster_name": shared.config.cluster_name,
        "nodes": nodes,
    });
    let body = match query.get("filter_path") {
        Some(spec) => crate::filter_path::apply(&body, spec),
        None => body,
    };
    json_response(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_of_metric_names_is_metrics_and_anything_else_a_node_filter() {
        assert!(is_metrics("http"));
        assert!(is_metrics("http,ingest"));
        assert!(is_metrics("_all"));
        assert!(!is_metrics("_local"));
        assert!(!is_metrics("es-test-node-1"));
        assert!(!is_metrics("http,es-test-node-1"));
    }
}
