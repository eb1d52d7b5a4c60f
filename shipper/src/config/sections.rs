//! Every setting of the shipper, declared once: its flag, environment variable, help text
//! (which names its TOML key in brackets), type and key in the file. Each struct is one
//! section of the TOML file and is read by clap (command line over environment) and by serde
//! (the file); a field that clap did not see is `None` and leaves the file's value in place.
//! Defaults and checks live in the module above, where the settings are resolved.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use settings_kit::{self as layers, Size};

/// `[elasticsearch]`: where documents go and how.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Elasticsearch {
    /// Elasticsearch node URLs, comma-separated [elasticsearch.urls].
    #[arg(long = "elasticsearch-url", env = "ELASTICSEARCH_URL", value_name = "ELASTICSEARCH_URL",
          value_delimiter = ',', value_parser = layers::item)]
    pub(crate) urls: Option<Vec<String>>,
    /// User for basic authentication [elasticsearch.username].
    #[arg(
        long = "elasticsearch-username",
        env = "ELASTICSEARCH_USERNAME",
        value_name = "ELASTICSEARCH_USERNAME"
    )]
    pub(crate) username: Option<String>,
    /// Password for basic authentication [elasticsearch.password].
    #[arg(long = "elasticsearch-password", env = "ELASTICSEARCH_PASSWORD", hide_env_values = true,
          value_name = "ELASTICSEARCH_PASSWORD", value_parser = layers::secret)]
    #[serde(serialize_with = "layers::expose")]
    pub(crate) password: Option<SecretString>,
    /// Encoded API key, sent as `Authorization: ApiKey <key>` [elasticsearch.api_key].
    #[arg(long = "elasticsearch-api-key", env = "ELASTICSEARCH_API_KEY", hide_env_values = true,
          value_name = "ELASTICSEARCH_API_KEY", value_parser = layers::secret)]
    #[serde(serialize_with = "layers::expose")]
    pub(crate) api_key: Option<SecretString>,
    /// PEM file of the CA that signed the nodes' certificates [elasticsearch.ca_cert].
    #[arg(
        long = "elasticsearch-ca-cert",
        env = "ELASTICSEARCH_CA_CERT",
        value_name = "ELASTICSEARCH_CA_CERT"
    )]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Gzip `_bulk` bodies: true or false (default false) [elasticsearch.compression].
    #[arg(long, env = "SHIPPER_COMPRESSION", action = ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) compression: Option<bool>,
    /// Concurrent `_bulk` requests (default 2) [elasticsearch.max_in_flight].
    #[arg(long, env = "SHIPPER_MAX_IN_FLIGHT", value_parser = layers::count::<usize>)]
    pub(crate) max_in_flight: Option<usize>,
    /// Timeout of one `_bulk` request, e.g. 30s (default 60s) [elasticsearch.request_timeout].
    #[arg(long, env = "SHIPPER_REQUEST_TIMEOUT", value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) request_timeout: Option<Duration>,
    /// Ask the cluster for its nodes (`GET _nodes/http`) at start and every discover
    /// interval, and send to their publish addresses: true or false (default false; leave
    /// it off behind a load balancer or when the certificates do not name the publish
    /// addresses) [elasticsearch.discover_nodes].
    #[arg(long = "elasticsearch-discover-nodes", env = "SHIPPER_ELASTICSEARCH_DISCOVER_NODES",
          value_name = "ELASTICSEARCH_DISCOVER_NODES", action = ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) discover_nodes: Option<bool>,
    /// How often the nodes are asked for again with discovery on, e.g. 1m (default 5m)
    /// [elasticsearch.discover_interval].
    #[arg(long = "elasticsearch-discover-interval", env = "SHIPPER_ELASTICSEARCH_DISCOVER_INTERVAL",
          value_name = "ELASTICSEARCH_DISCOVER_INTERVAL", value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) discover_interval: Option<Duration>,
}

/// `[input]`: which files are read and how.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Input {
    /// Log files to read: comma-separated absolute globs [input.paths].
    #[arg(long, env = "SHIPPER_PATHS", value_delimiter = ',', value_parser = layers::item)]
    pub(crate) paths: Option<Vec<String>>,
    /// Globs of files never to read, matched on the path or the file name; default the
    /// compressed formats the shipper cannot decompress: `*.bz2,*.xz,*.zst,*.lz4,*.zip`
    /// (`.gz` rotations are read) [input.exclude].
    #[arg(long, env = "SHIPPER_EXCLUDE", value_delimiter = ',', value_parser = layers::item)]
    pub(crate) exclude: Option<Vec<String>>,
    /// Longest line kept whole; longer lines are cut and tagged `_truncated` (default 1MiB)
    /// [input.max_line_bytes].
    #[arg(long, env = "SHIPPER_MAX_LINE_BYTES")]
    pub(crate) max_line_bytes: Option<Size>,
    /// How often the globs are evaluated again besides filesystem events (default 5s)
    /// [input.scan_interval].
    #[arg(long, env = "SHIPPER_SCAN_INTERVAL", value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) scan_interval: Option<Duration>,
    /// How long a rotated-away or deleted file stays open after its last line (default 5s)
    /// [input.rotate_wait].
    #[arg(long, env = "SHIPPER_ROTATE_WAIT", value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) rotate_wait: Option<Duration>,
    /// A file with nothing new for this long is closed, and opened again by its identity when
    /// it grows (default 5m) [input.close_inactive].
    #[arg(long, env = "SHIPPER_CLOSE_INACTIVE", value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) close_inactive: Option<Duration>,
    /// Follow symbolic links under the globs whose target lies inside one of the watched
    /// directories (the paths' directories before the first glob character), e.g.
    /// kubelet's `/var/log/containers` links into `/var/log/pods`; other links, FIFOs and
    /// devices are never read (default false) [input.follow_symlinks].
    #[arg(long, env = "SHIPPER_FOLLOW_SYMLINKS", action = ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) follow_symlinks: Option<bool>,
    /// How lines are framed: `auto` (told per file from its first line read), `json` (plain
    /// lines), `cri` (containerd, CRI-O: kubelet's `/var/log/pods`) or `docker` (json-file);
    /// a container line's message is then handled as a plain line (default auto)
    /// [input.format].
    #[arg(
        long = "input-format",
        env = "SHIPPER_INPUT_FORMAT",
        value_name = "FORMAT"
    )]
    pub(crate) format: Option<crate::input::container_log::InputFormat>,
}

/// `[batch]`: how documents are grouped into `_bulk` requests.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Batch {
    /// Documents per `_bulk` request at most (default 2000) [batch.max_docs].
    #[arg(long = "batch-max-docs", env = "SHIPPER_BATCH_MAX_DOCS", value_name = "BATCH_MAX_DOCS",
          value_parser = layers::count::<usize>)]
    pub(crate) max_docs: Option<usize>,
    /// Bytes per `_bulk` request at most, e.g. 2MiB [batch.max_bytes].
    #[arg(
        long = "batch-max-bytes",
        env = "SHIPPER_BATCH_MAX_BYTES",
        value_name = "BATCH_MAX_BYTES"
    )]
    pub(crate) max_bytes: Option<Size>,
    /// Longest wait of a document for its batch to fill, e.g. 250ms [batch.max_wait].
    #[arg(long = "batch-max-wait", env = "SHIPPER_BATCH_MAX_WAIT", value_name = "BATCH_MAX_WAIT",
          value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) max_wait: Option<Duration>,
}

/// `[shipper]`: the shipper itself.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Shipper {
    /// Directory of checkpoints and dead letters (default /var/lib/didban-shipper)
    /// [shipper.data_dir].
    #[arg(long, env = "SHIPPER_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Data stream namespace: logs-<dataset>-<namespace> (default `default`)
    /// [shipper.namespace].
    #[arg(long, env = "SHIPPER_NAMESPACE")]
    pub(crate) namespace: Option<String>,
    /// Address of /metrics, /health and /ready (default 0.0.0.0:9600) [shipper.metrics_addr].
    #[arg(long, env = "SHIPPER_METRICS_ADDR", value_parser = address)]
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// Bytes of lines held in memory before reading pauses, e.g. 8MiB [shipper.memory_budget].
    #[arg(long, env = "SHIPPER_MEMORY_BUDGET")]
    pub(crate) memory_budget: Option<Size>,
    /// Interval of the progress summary line; 0s turns it off (default 10s)
    /// [shipper.summary_interval].
    #[arg(long, env = "SHIPPER_SUMMARY_INTERVAL", value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) summary_interval: Option<Duration>,
    /// `host.name` added to lines that have none (default: this machine's host name)
    /// [shipper.host_name].
    #[arg(long, env = "SHIPPER_HOST_NAME")]
    pub(crate) host_name: Option<String>,
    /// Time given to in-flight requests at shutdown (default 10s) [shipper.shutdown_timeout].
    #[arg(long, env = "SHIPPER_SHUTDOWN_TIMEOUT", value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) shutdown_timeout: Option<Duration>,
    /// Bound of the dead-letter files together, e.g. 256MiB [shipper.dead_letter_max_bytes].
    #[arg(long, env = "SHIPPER_DEAD_LETTER_MAX_BYTES")]
    pub(crate) dead_letter_max_bytes: Option<Size>,
    /// Checkpoints of files not seen for this long are forgotten (default 7d)
    /// [shipper.forget_after].
    #[arg(long, env = "SHIPPER_FORGET_AFTER", value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) forget_after: Option<Duration>,
    /// Format of the shipper's own log: text or json (default text) [shipper.log_format].
    #[arg(long, env = "SHIPPER_LOG_FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
    /// /ready answers 503 once a line read has waited this long for Elasticsearch to take it
    /// (default 30s) [shipper.ready_failing_after].
    #[arg(long, env = "SHIPPER_READY_FAILING_AFTER", value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) ready_failing_after: Option<Duration>,
    /// /health answers 503 once the reading loop has not turned for this long (default 60s)
    /// [shipper.health_stuck_after].
    #[arg(long, env = "SHIPPER_HEALTH_STUCK_AFTER", value_parser = layers::duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) health_stuck_after: Option<Duration>,
}

/// The format of the shipper's own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

fn address(v: &str) -> Result<SocketAddr, String> {
    v.trim()
        .parse()
        .map_err(|e| format!("{v:?} is not an address like 0.0.0.0:9600: {e}"))
}
