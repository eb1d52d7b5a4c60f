//! Settings of the Elasticsearch output.
//!
//! A plain struct: the shipper's configuration module reads files, environment and flags and
//! fills it; this module only knows the defaults and which combinations make no sense. Secrets
//! (passwords, API keys) never reach a log line: `Debug` is written by hand to redact them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// Concurrent `_bulk` requests. Two keep the connection busy while one response is being
/// processed, without letting one shipper monopolise the cluster's write thread pool.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 2;
/// Long enough for a large bulk on a busy cluster; a timed-out request is re-sent, and the
/// deterministic `_id`s turn whatever the first attempt stored into 409s.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Failing fast on connect lets us move on to the next node.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// First retry delay (before jitter).
pub(crate) const DEFAULT_RETRY_INITIAL: Duration = Duration::from_millis(200);
/// Cap of the retry delay: an outage is noticed within this time after it ends.
pub(crate) const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);
/// Dead letters are evidence to inspect, not a second buffer: 256 MiB holds hundreds of
/// thousands of rejected documents and cannot fill a disk.
pub(crate) const DEFAULT_DEAD_LETTER_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// With discovery on: often enough to follow a cluster that grows or moves, rare enough to
/// cost nothing (one small `GET _nodes/http`).
pub(crate) const DEFAULT_DISCOVER_INTERVAL: Duration = Duration::from_secs(300);
/// Time given to in-flight requests at shutdown; whatever is abandoned is re-sent after restart.
pub(crate) const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// How the shipper proves who it is to Elasticsearch.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// No `Authorization` header (a cluster without security, or a test server).
    #[default]
    None,
    /// HTTP basic authentication.
    Basic { username: String, password: String },
    /// The encoded API key (base64 of `id:key`, as `POST /_security/api_key` returns it in
    /// `encoded`), sent as `Authorization: ApiKey <key>`.
    ApiKey(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Auth::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// Everything the Elasticsearch output needs to run.
#[derive(Clone)]
pub struct OutputConfig {
    /// Nodes, used in turn; a node that refuses connections is skipped for a while.
    pub nodes: Vec<Url>,
    pub auth: Auth,
    /// PEM file with the CA certificate(s) that signed the nodes' certificates.
    pub(crate) ca_cert: Option<PathBuf>,
    /// Gzip request bodies (`Content-Encoding: gzip`). Responses are always accepted gzipped.
    pub compression: bool,
    /// Concurrent `_bulk` requests.
    pub max_in_flight: usize,
    /// Whole request, response body included.
    pub request_timeout: Duration,
    /// Learn the cluster's nodes from `GET _nodes/http` (see [`super::discovery`]).
    pub discover_nodes: bool,
    /// How often discovery asks again.
    pub discover_interval: Duration,
    pub(crate) connect_timeout: Duration,
    /// First delay of the capped exponential backoff (full jitter).
    pub retry_initial: Duration,
    /// Largest delay of the backoff.
    pub retry_max: Duration,
    /// Directory of the dead-letter files.
    pub(crate) dead_letter_dir: PathBuf,
    /// Bound of all dead-letter files together; the oldest file is evicted beyond it.
    pub(crate) dead_letter_max_bytes: u64,
    /// Time given to in-flight requests once shutdown starts.
    pub shutdown_deadline: Duration,
}

impl OutputConfig {
    /// A configuration with every default, for the given nodes and dead-letter directory.
    pub fn new(nodes: Vec<Url>, dead_letter_dir: PathBuf) -> Self {
        OutputConfig {
            nodes,
            auth: Auth::None,
            ca_cert: None,
            compression: false,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            discover_nodes: false,
            discover_interval: DEFAULT_DISCOVER_INTERVAL,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
            dead_letter_dir,
            dead_letter_max_bytes: DEFAULT_DEAD_LETTER_MAX_BYTES,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
        }
    }

    /// Checks what the type system cannot; the error names the setting and the reason, so the
    /// configuration module can stop the shipper with it at start.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes.is_empty() {
            return Err(ConfigError::new(
                "nodes",
                "at least one node URL is required",
            ));
        }
        for node in &self.nodes {
            if !matches!(node.scheme(), "http" | "https") {
                return Err(ConfigError::new(
                    "nodes",
                    format!("{}: the scheme must be http or https", redacted_url(node)),
                ));
            }
            if node.host_str().is_none() {
                return Err(ConfigError::new(
                    "nodes",
                    format!("{}: a host is required", redacted_url(node)),
                ));
            }
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::new("max_in_flight", "must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::new(
                "request_timeout",
                "must be greater than 0",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::new(
                "connect_timeout",
                "must be greater than 0",
            ));
        }
        if self.retry_initial.is_zero() {
            return Err(ConfigError::new("retry_initial", "must be greater than 0"));
        }
        if self.retry_max < self.retry_initial {
            return Err(ConfigError::new(
                "retry_max",
                "must be at least retry_initial",
            ));
        }
        if self.dead_letter_max_bytes < MIN_DEAD_LETTER_BYTES {
            return Err(ConfigError::new(
                "dead_letter_max_bytes",
                format!("must be at least {MIN_DEAD_LETTER_BYTES} bytes"),
            ));
        }
        match &self.auth {
            Auth::Basic { username, .. } if username.is_empty() => {
                return Err(ConfigError::new("username", "must not be empty"));
            }
            Auth::ApiKey(key) if key.trim().is_empty() => {
                return Err(ConfigError::new("api_key", "must not be empty"));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Below this, rotation would evict almost every record it writes.
const MIN_DEAD_LETTER_BYTES: u64 = 64 * 1024;

impl fmt::Debug for OutputConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(redacted_url).collect();
        f.debug_struct("OutputConfig")
            .field("nodes", &nodes)
            .field("auth", &self.auth)
            .field("ca_cert", &self.ca_cert)
            .field("compression", &self.compression)
            .field("max_in_flight", &self.max_in_flight)
            .field("request_timeout", &self.request_timeout)
            .field("discover_nodes", &self.discover_nodes)
            .field("discover_interval", &self.discover_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry_initial", &self.retry_initial)
            .field("retry_max", &self.retry_max)
            .field("dead_letter_dir", &self.dead_letter_dir)
            .field("dead_letter_max_bytes", &self.dead_letter_max_bytes)
            .field("shutdown_deadline", &self.shutdown_deadline)
            .finish()
    }
}

/// A node URL fit for logs: a password written into the URL is replaced.
pub(crate) fn redacted_url(url: &Url) -> String {
    if url.password().is_none() {
        return url.as_str().trim_end_matches('/').to_string();
    }
    let mut shown = url.clone();
    // Only fails for URLs that cannot have credentials, which this one has.
    let _ = shown.set_password(Some("redacted"));
    shown.as_str().trim_end_matches('/').to_string()
}

/// A setting with a value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Elasticsearch output setting `{setting}`: {reason}")]
pub(crate) struct ConfigError {
    pub(crate) setting: &'static str,
    pub(crate) reason: String,
}

impl ConfigError {
    fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            setting,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OutputConfig {
        OutputConfig::new(
            vec![Url::parse("http://127.0.0.1:9200").unwrap()],
            PathBuf::from("/tmp/dl"),
        )
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(config().validate(), Ok(()));
        assert_eq!(config().max_in_flight, 2);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let mut c = config();
        c.auth = Auth::Basic {
            username: "elastic".into(),
            password: "hunter2secret".into(),
        };
        c.nodes = vec![Url::parse("https://u:urlsecret@es01:9200").unwrap()];
        let shown = format!("{c:?}");
        assert!(shown.contains("elastic"));
        assert!(!shown.contains("hunter2secret"), "{shown}");
        assert!(!shown.contains("urlsecret"), "{shown}");

        c.auth =
            Auth::ApiKey("VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("VnVhQ2ZH"), "{shown}");
    }

    #[test]
    fn invalid_settings_are_named() {
        let mut c = config();
        c.nodes.clear();
        assert_eq!(c.validate().unwrap_err().setting, "nodes");

        let mut c = config();
        c.nodes = vec![Url::parse("ftp://es01").unwrap()];
        assert_eq!(c.validate().unwrap_err().setting, "nodes");

        let mut c = config();
        c.max_in_flight = 0;
        assert_eq!(c.validate().unwrap_err().setting, "max_in_flight");

        let mut c = config();
        c.retry_max = Duration::from_millis(10);
        assert_eq!(c.validate().unwrap_err().setting, "retry_max");

        let mut c = config();
        c.auth = Auth::ApiKey("  ".into());
        assert_eq!(c.validate().unwrap_err().setting, "api_key");
    }
}
