//! Server configuration, fixed at start (runtime behaviour changes go through
//! [`crate::Faults`]).

use std::net::SocketAddr;

use base64::Engine;

/// Elasticsearch's default `http.max_content_length` (100mb).
pub const DEFAULT_MAX_CONTENT_LENGTH: u64 = 100 * 1024 * 1024;

/// An API key as Elasticsearch issues it: the client sends
/// `Authorization: ApiKey base64(id:api_key)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub api_key: String,
}

impl ApiKey {
    /// The value clients put after `ApiKey ` (Elasticsearch's `encoded` field).
    pub fn encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.id, self.api_key))
    }
}

/// Blackhole mode: answer `_bulk` like Elasticsearch but keep no sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlackholeConfig {
    /// Keep the `_id`s seen per target so `create` of a known id answers 409
    /// (costs memory; off gives pure counting).
    pub keep_ids: bool,
}

/// How the server starts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Further nodes of the same cluster, one address each: every node serves
    /// the whole API over one shared cluster state (see [`crate::EsTestServer::kill_node`]).
    pub more_nodes: Vec<SocketAddr>,
    /// Basic authentication user, required on every API call when set.
    pub basic_auth: Option<(String, String)>,
    /// API keys accepted (`Authorization: ApiKey ...`).
    pub api_keys: Vec<ApiKey>,
    /// Blackhole mode for benchmarks.
    pub blackhole: Option<BlackholeConfig>,
    /// `http.max_content_length`, applied to the decoded body like Elasticsearch.
    pub max_content_length: u64,
    /// `cluster.name` reported by `GET /`.
    pub cluster_name: String,
    /// `node.name` reported by `GET /` (with several nodes, `<node_name>-<n>`).
    pub node_name: String,
    /// `http.publish_host` as a host name: `_nodes` then gives each node's
    /// `http.publish_address` as `<host>/<ip>:<port>`; `None` gives `<ip>:<port>`.
    pub publish_host: Option<String>,
    /// Cluster setting `data_streams.failure_store.enabled`: data stream name
    /// patterns whose failure store is on unless the data stream's own options
    /// say otherwise. Elasticsearch's default is empty; the built-in
    /// `logs@settings` component template enables it for `logs-*-*` instead.
    pub failure_store_patterns: Vec<String>,
    /// How many request records the observation log keeps (oldest dropped).
    pub max_recorded_requests: usize,
    /// Privileges the authenticated user lacks (cluster privileges such as
    /// `manage_ilm`, or index privileges such as `create_doc`, on every
    /// index); every other one is held. Only `_security/user/_has_privileges`
    /// reads it: requests themselves are not refused.
    pub missing_privileges: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            more_nodes: Vec::new(),
            basic_auth: None,
            api_keys: Vec::new(),
            blackhole: None,
            max_content_length: DEFAULT_MAX_CONTENT_LENGTH,
            cluster_name: "es-test-server".to_string(),
            node_name: "es-test-node".to_string(),
            publish_host: None,
            failure_store_patterns: Vec::new(),
            max_recorded_requests: 10_000,
            missing_privileges: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// Requires `Authorization: Basic` with these credentials.
    pub fn with_basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }

    /// Accepts this API key.
    pub fn with_api_key(mut self, id: impl Into<String>, api_key: impl Into<String>) -> Self {
        self.api_keys.push(ApiKey {
            id: id.into(),
            api_key: api_key.into(),
        });
        self
    }

    /// Turns blackhole mode on.
    pub fn blackhole(mut self, keep_ids: bool) -> Self {
        self.blackhole = Some(BlackholeConfig { keep_ids });
        self
    }

    /// The user lacks this privilege (see [`ServerConfig::missing_privileges`]).
    pub fn without_privilege(mut self, privilege: impl Into<String>) -> Self {
        self.missing_privileges.push(privilege.into());
        self
    }

    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// A cluster of `n` nodes (at least one), the others on free ports of 127.0.0.1.
    pub fn with_nodes(mut self, n: usize) -> Self {
        self.more_nodes = vec![SocketAddr::from(([127, 0, 0, 1], 0)); n.saturating_sub(1)];
        self
    }

    pub fn security_enabled(&self) -> bool {
        self.basic_auth.is_some() || !self.api_keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_encoding_is_base64_of_id_colon_key() {
        let k = ApiKey {
            id: "VuaCfGcBCdbkQm-e5aOx".into(),
            api_key: "ui2lp2axTNmsyakw9tvNnw".into(),
        };
        assert_eq!(
            k.encoded(),
            "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
        );
    }
}
