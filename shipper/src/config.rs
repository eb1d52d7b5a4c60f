//! Settings: command line and environment over an optional TOML file over defaults.
//!
//! Every setting has one name in the environment (what `docker compose` passes) and one key
//! in the file. A wrong value stops the shipper at start with a message that names both and
//! says why, rather than failing later or silently using a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;
use url::Url;

use crate::batch::BatchLimits;
use crate::encode::route;
use crate::encode::EncodeConfig;
use crate::input::file_server::FileServerConfig;
use crate::output::{Auth, OutputConfig};

/// didban's log shipper: tails JSON log files into Elasticsearch data streams, every line
/// exactly once.
///
/// Every option can also be set by the environment variable shown, or in the TOML file given
/// by --config (keys in brackets); the command line wins over the environment, which wins
/// over the file.
#[derive(Debug, Parser, Default)]
#[command(name = "shipper", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML configuration file.
    #[arg(long, env = "SHIPPER_CONFIG")]
    pub config: Option<PathBuf>,

    /// Elasticsearch node URLs, comma-separated [elasticsearch.urls].
    #[arg(long, env = "ELASTICSEARCH_URL")]
    pub elasticsearch_url: Option<String>,
    /// User for basic authentication [elasticsearch.username].
    #[arg(long, env = "ELASTICSEARCH_USERNAME")]
    pub elasticsearch_username: Option<String>,
    /// Password for basic authentication [elasticsearch.password].
    #[arg(long, env = "ELASTICSEARCH_PASSWORD", hide_env_values = true)]
    pub elasticsearch_password: Option<Secret>,
    /// Encoded API key, sent as `Authorization: ApiKey <key>` [elasticsearch.api_key].
    #[arg(long, env = "ELASTICSEARCH_API_KEY", hide_env_values = true)]
    pub elasticsearch_api_key: Option<Secret>,
    /// PEM file of the CA that signed the nodes' certificates [elasticsearch.ca_cert].
    #[arg(long, env = "ELASTICSEARCH_CA_CERT")]
    pub elasticsearch_ca_cert: Option<PathBuf>,
    /// Gzip `_bulk` bodies: true or false (default false) [elasticsearch.compression].
    #[arg(long, env = "SHIPPER_COMPRESSION")]
    pub compression: Option<String>,
    /// Concurrent `_bulk` requests (default 2) [elasticsearch.max_in_flight].
    #[arg(long, env = "SHIPPER_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<String>,
    /// Timeout of one `_bulk` request, e.g. 30s [elasticsearch.request_timeout].
    #[arg(long, env = "SHIPPER_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,

    /// Log files to read: comma-separated absolute globs [input.paths].
    #[arg(long, env = "SHIPPER_PATHS")]
    pub paths: Option<String>,
    /// Globs of files never to read, matched on the path or the file name; default `*.gz`
    /// [input.exclude].
    #[arg(long, env = "SHIPPER_EXCLUDE")]
    pub exclude: Option<String>,
    /// Longest line kept whole; longer lines are cut and tagged `_truncated` (default 1MiB)
    /// [input.max_line_bytes].
    #[arg(long, env = "SHIPPER_MAX_LINE_BYTES")]
    pub max_line_bytes: Option<String>,
    /// How often the globs are evaluated again besides filesystem events (default 5s)
    /// [input.scan_interval].
    #[arg(long, env = "SHIPPER_SCAN_INTERVAL")]
    pub scan_interval: Option<String>,
    /// How long a rotated-away or deleted file stays open after its last line (default 5s)
    /// [input.rotate_wait].
    #[arg(long, env = "SHIPPER_ROTATE_WAIT")]
    pub rotate_wait: Option<String>,

    /// Documents per `_bulk` request at most (default 2000) [batch.max_docs].
    #[arg(long, env = "SHIPPER_BATCH_MAX_DOCS")]
    pub batch_max_docs: Option<String>,
    /// Bytes per `_bulk` request at most, e.g. 2MiB [batch.max_bytes].
    #[arg(long, env = "SHIPPER_BATCH_MAX_BYTES")]
    pub batch_max_bytes: Option<String>,
    /// Longest wait of a document for its batch to fill, e.g. 250ms [batch.max_wait].
    #[arg(long, env = "SHIPPER_BATCH_MAX_WAIT")]
    pub batch_max_wait: Option<String>,

    /// Directory of checkpoints and dead letters [shipper.data_dir].
    #[arg(long, env = "SHIPPER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Data stream namespace: logs-<dataset>-<namespace> (default `default`)
    /// [shipper.namespace].
    #[arg(long, env = "SHIPPER_NAMESPACE")]
    pub namespace: Option<String>,
    /// Address of /metrics, /health and /ready (default 0.0.0.0:9600) [shipper.metrics_addr].
    #[arg(long, env = "SHIPPER_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Bytes of lines held in memory before reading pauses, e.g. 8MiB [shipper.memory_budget].
    #[arg(long, env = "SHIPPER_MEMORY_BUDGET")]
    pub memory_budget: Option<String>,
    /// Interval of the progress summary line; 0s turns it off (default 10s)
    /// [shipper.summary_interval].
    #[arg(long, env = "SHIPPER_SUMMARY_INTERVAL")]
    pub summary_interval: Option<String>,
    /// `host.name` added to lines that have none (default: this machine's host name)
    /// [shipper.host_name].
    #[arg(long, env = "SHIPPER_HOST_NAME")]
    pub host_name: Option<String>,
    /// Time given to in-flight requests at shutdown (default 10s) [shipper.shutdown_timeout].
    #[arg(long, env = "SHIPPER_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<String>,
    /// Bound of the dead-letter files together, e.g. 256MiB [shipper.dead_letter_max_bytes].
    #[arg(long, env = "SHIPPER_DEAD_LETTER_MAX_BYTES")]
    pub dead_letter_max_bytes: Option<String>,
    /// Checkpoints of files not seen for this long are forgotten (default 7d)
    /// [shipper.forget_after].
    #[arg(long, env = "SHIPPER_FORGET_AFTER")]
    pub forget_after: Option<String>,
    /// Format of the shipper's own log: text or json (default text) [shipper.log_format].
    #[arg(long, env = "SHIPPER_LOG_FORMAT")]
    pub log_format: Option<String>,

    /// Alerting: channels (one line each), Kibana links, uptime rules [alerts].
    #[command(flatten)]
    pub alerts: crate::alerting::AlertArgs,
}

/// What to do instead of shipping.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// A live view of a running shipper, read from its /metrics: rates, retries, dead
    /// letters, bulk latency, and the files that are behind.
    Top {
        /// Where the shipper serves /metrics (its SHIPPER_METRICS_ADDR), or a URL.
        #[arg(long, default_value = "127.0.0.1:9600")]
        addr: String,
        /// Time between two refreshes, e.g. 1s.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// Print one screen (after one interval) and exit.
        #[arg(long)]
        once: bool,
    },
}

/// A password or key given on the command line or in the environment: printed as
/// `<redacted>` by `Debug`, so logging the settings can never leak it.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    elasticsearch: EsSection,
    #[serde(default)]
    input: InputSection,
    #[serde(default)]
    batch: BatchSection,
    #[serde(default)]
    shipper: ShipperSection,
    #[serde(default)]
    alerts: crate::alerting::AlertsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EsSection {
    urls: Option<Vec<String>>,
    username: Option<String>,
    password: Option<String>,
    api_key: Option<String>,
    ca_cert: Option<PathBuf>,
    compression: Option<bool>,
    max_in_flight: Option<usize>,
    request_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSection {
    paths: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    max_line_bytes: Option<String>,
    scan_interval: Option<String>,
    rotate_wait: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchSection {
    max_docs: Option<usize>,
    max_bytes: Option<String>,
    max_wait: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShipperSection {
    data_dir: Option<PathBuf>,
    namespace: Option<String>,
    metrics_addr: Option<String>,
    memory_budget: Option<String>,
    summary_interval: Option<String>,
    host_name: Option<String>,
    shutdown_timeout: Option<String>,
    dead_letter_max_bytes: Option<String>,
    forget_after: Option<String>,
    log_format: Option<String>,
}

/// A setting that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

fn invalid(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_string(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything the shipper runs with, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub output: OutputConfig,
    pub input: FileServerConfig,
    pub encode: EncodeConfig,
    pub data_dir: PathBuf,
    pub metrics_addr: SocketAddr,
    pub memory_budget: usize,
    pub summary_interval: Duration,
    pub log_format: LogFormat,
    /// `None` when no alert channel is configured.
    pub alerts: Option<crate::alerting::AlertSettings>,
}

impl Settings {
    /// Reads the file named by `cli.config` (if any) and merges it under `cli`.
    pub fn load(cli: &Cli) -> Result<Settings, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Settings::merge(cli, file)
    }

    fn merge(cli: &Cli, file: FileConfig) -> Result<Settings, ConfigError> {
        let es = file.elasticsearch;
        let urls: Vec<String> = match &cli.elasticsearch_url {
            Some(list) => split_list(list),
            None => es.urls.unwrap_or_default(),
        };
        const URL: &str = "ELASTICSEARCH_URL [elasticsearch.urls]";
        if urls.is_empty() {
            return Err(invalid(
                URL,
                "at least one Elasticsearch URL is required, e.g. https://elasticsearch:9200",
            ));
        }
        let nodes = urls
            .iter()
            .map(|u| {
                let url = Url::parse(u).map_err(|e| invalid(URL, format!("{u:?} is not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(invalid(URL, format!("{u:?} must start with http:// or https://")));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(invalid(
                        URL,
                        "put credentials in ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD, not in the URL",
                    ));
                }
                Ok(url)
            })
            .collect::<Result<Vec<_>, _>>()?;

        let username = cli
            .elasticsearch_username
            .clone()
            .or(es.username)
            .filter(|s| !s.is_empty());
        let password = cli
            .elasticsearch_password
            .clone()
            .map(|s| s.0)
            .or(es.password)
            .filter(|s| !s.is_empty());
        let api_key = cli
            .elasticsearch_api_key
            .clone()
            .map(|s| s.0)
            .or(es.api_key)
            .filter(|s| !s.is_empty());
        let auth = match (username, password, api_key) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(invalid(
                    "ELASTICSEARCH_API_KEY [elasticsearch.api_key]",
                    "give either an API key or a username and password, not both",
                ))
            }
            (None, None, Some(key)) => Auth::ApiKey(key),
            (Some(username), Some(password), None) => Auth::Basic { username, password },
            (Some(_), None, None) => {
                return Err(invalid(
                    "ELASTICSEARCH_PASSWORD [elasticsearch.password]",
                    "a username is set but no password",
                ))
            }
            (None, Some(_), None) => {
                return Err(invalid(
                    "ELASTICSEARCH_USERNAME [elasticsearch.username]",
                    "a password is set but no username",
                ))
            }
            (None, None, None) => Auth::None,
        };
        let ca_cert = cli
            .elasticsearch_ca_cert
            .clone()
            .or(es.ca_cert)
            .filter(|p| !p.as_os_str().is_empty());
        if let Some(ca) = &ca_cert {
            let pem = std::fs::read(ca).map_err(|e| {
                invalid(
                    "ELASTICSEARCH_CA_CERT [elasticsearch.ca_cert]",
                    format!("cannot read {}: {e}", ca.display()),
                )
            })?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(invalid(
                    "ELASTICSEARCH_CA_CERT [elasticsearch.ca_cert]",
                    format!("{} holds no PEM certificate", ca.display()),
                ));
            }
        }
        let compression = match &cli.compression {
            Some(v) => parse_bool("SHIPPER_COMPRESSION [elasticsearch.compression]", v)?,
            None => es.compression.unwrap_or(false),
        };
        let max_in_flight = match &cli.max_in_flight {
            Some(v) => parse_count("SHIPPER_MAX_IN_FLIGHT [elasticsearch.max_in_flight]", v)?,
            None => es
                .max_in_flight
                .unwrap_or(crate::output::config::DEFAULT_MAX_IN_FLIGHT),
        };
        if max_in_flight == 0 || max_in_flight > 64 {
            return Err(invalid(
                "SHIPPER_MAX_IN_FLIGHT [elasticsearch.max_in_flight]",
                "must be between 1 and 64",
            ));
        }

        let input = file.input;
        const PATHS: &str = "SHIPPER_PATHS [input.paths]";
        let include = match &cli.paths {
            Some(list) => split_list(list),
            None => input.paths.unwrap_or_default(),
        };
        if include.is_empty() {
            return Err(invalid(
                PATHS,
                "at least one glob of log files is required, e.g. /var/log/didban/*.log*",
            ));
        }
        let exclude = match &cli.exclude {
            Some(list) => split_list(list),
            None => input.exclude.unwrap_or_else(|| vec!["*.gz".to_string()]),
        };
        crate::input::paths::PathsProvider::new(&include, &exclude)
            .map_err(|e| invalid(PATHS, e.to_string()))?;
        let max_line_bytes = size(
            "SHIPPER_MAX_LINE_BYTES [input.max_line_bytes]",
            cli.max_line_bytes
                .as_deref()
                .or(input.max_line_bytes.as_deref()),
            1024 * 1024,
        )?;
        if !(256..=64 * 1024 * 1024).contains(&max_line_bytes) {
            return Err(invalid(
                "SHIPPER_MAX_LINE_BYTES [input.max_line_bytes]",
                "must be between 256B and 64MiB",
            ));
        }
        let scan_interval = duration(
            "SHIPPER_SCAN_INTERVAL [input.scan_interval]",
            cli.scan_interval
                .as_deref()
                .or(input.scan_interval.as_deref()),
            Duration::from_secs(5),
        )?;
        if scan_interval.is_zero() {
            return Err(invalid(
                "SHIPPER_SCAN_INTERVAL [input.scan_interval]",
                "must be more than 0s",
            ));
        }
        let rotate_wait = duration(
            "SHIPPER_ROTATE_WAIT [input.rotate_wait]",
            cli.rotate_wait.as_deref().or(input.rotate_wait.as_deref()),
            Duration::from_secs(5),
        )?;

        let batch_file = file.batch;
        let max_docs = match &cli.batch_max_docs {
            Some(v) => parse_count("SHIPPER_BATCH_MAX_DOCS [batch.max_docs]", v)?,
            None => batch_file
                .max_docs
                .unwrap_or(BatchLimits::default().max_docs),
        };
        if max_docs == 0 || max_docs > 100_000 {
            return Err(invalid(
                "SHIPPER_BATCH_MAX_DOCS [batch.max_docs]",
                "must be between 1 and 100000",
            ));
        }
        let max_bytes = size(
            "SHIPPER_BATCH_MAX_BYTES [batch.max_bytes]",
            cli.batch_max_bytes
                .as_deref()
                .or(batch_file.max_bytes.as_deref()),
            BatchLimits::default().max_bytes,
        )?;
        // Elasticsearch refuses bodies above http.max_content_length (100mb by default).
        if !(1024..=90 * 1024 * 1024).contains(&max_bytes) {
            return Err(invalid(
                "SHIPPER_BATCH_MAX_BYTES [batch.max_bytes]",
                "must be between 1KiB and 90MiB",
            ));
        }
        let max_wait = duration(
            "SHIPPER_BATCH_MAX_WAIT [batch.max_wait]",
            cli.batch_max_wait
                .as_deref()
                .or(batch_file.max_wait.as_deref()),
            BatchLimits::default().max_wait,
        )?;

        let sh = file.shipper;
        let data_dir = cli
            .data_dir
            .clone()
            .or(sh.data_dir)
            .unwrap_or_else(|| PathBuf::from("/var/lib/didban-shipper"));
        check_writable_dir("SHIPPER_DATA_DIR [shipper.data_dir]", &data_dir)?;
        let namespace = cli
            .namespace
            .clone()
            .or(sh.namespace)
            .unwrap_or_else(|| "default".to_string());
        route::check_namespace(&namespace)
            .map_err(|r| invalid("SHIPPER_NAMESPACE [shipper.namespace]", r))?;
        let metrics_addr_text = cli
            .metrics_addr
            .clone()
            .or(sh.metrics_addr)
            .unwrap_or_else(|| "0.0.0.0:9600".to_string());
        let metrics_addr: SocketAddr = metrics_addr_text.parse().map_err(|e| {
            invalid(
                "SHIPPER_METRICS_ADDR [shipper.metrics_addr]",
                format!("{metrics_addr_text:?} is not an address like 0.0.0.0:9600: {e}"),
            )
        })?;
        let memory_budget = size(
            "SHIPPER_MEMORY_BUDGET [shipper.memory_budget]",
            cli.memory_budget.as_deref().or(sh.memory_budget.as_deref()),
            8 * 1024 * 1024,
        )?;
        if memory_budget < 2 * max_bytes {
            return Err(invalid(
                "SHIPPER_MEMORY_BUDGET [shipper.memory_budget]",
                format!("must be at least twice SHIPPER_BATCH_MAX_BYTES ({max_bytes} bytes), so one batch can fill while another is in flight"),
            ));
        }
        let summary_interval = duration(
            "SHIPPER_SUMMARY_INTERVAL [shipper.summary_interval]",
            cli.summary_interval
                .as_deref()
                .or(sh.summary_interval.as_deref()),
            Duration::from_secs(10),
        )?;
        let host_name = cli
            .host_name
            .clone()
            .or(sh.host_name)
            .filter(|h| !h.is_empty())
            .unwrap_or_else(this_host_name);
        let shutdown_deadline = duration(
            "SHIPPER_SHUTDOWN_TIMEOUT [shipper.shutdown_timeout]",
            cli.shutdown_timeout
                .as_deref()
                .or(sh.shutdown_timeout.as_deref()),
            crate::output::config::DEFAULT_SHUTDOWN_DEADLINE,
        )?;
        let dead_letter_max_bytes = size(
            "SHIPPER_DEAD_LETTER_MAX_BYTES [shipper.dead_letter_max_bytes]",
            cli.dead_letter_max_bytes
                .as_deref()
                .or(sh.dead_letter_max_bytes.as_deref()),
            crate::output::config::DEFAULT_DEAD_LETTER_MAX_BYTES as usize,
        )?;
        let forget_after = duration(
            "SHIPPER_FORGET_AFTER [shipper.forget_after]",
            cli.forget_after.as_deref().or(sh.forget_after.as_deref()),
            Duration::from_secs(7 * 24 * 3600),
        )?;
        let log_format = match cli
            .log_format
            .as_deref()
            .or(sh.log_format.as_deref())
            .unwrap_or("text")
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "SHIPPER_LOG_FORMAT [shipper.log_format]",
                    format!("{other:?} is neither text nor json"),
                ))
            }
        };
        let request_timeout = duration(
            "SHIPPER_REQUEST_TIMEOUT [elasticsearch.request_timeout]",
            cli.request_timeout
                .as_deref()
                .or(es.request_timeout.as_deref()),
            crate::output::config::DEFAULT_REQUEST_TIMEOUT,
        )?;

        let alerts = crate::alerting::AlertSettings::from_sources(&cli.alerts, file.alerts)
            .map_err(|e| invalid(&e.setting, e.reason))?;

        let mut output = OutputConfig::new(nodes, data_dir.join("dead-letters"));
        output.auth = auth;
        output.ca_cert = ca_cert;
        output.compression = compression;
        output.max_in_flight = max_in_flight;
        output.request_timeout = request_timeout;
        output.shutdown_deadline = shutdown_deadline;
        output.dead_letter_max_bytes = dead_letter_max_bytes as u64;
        output
            .validate()
            .map_err(|e| invalid(&format!("[elasticsearch] {}", e.setting), e.reason))?;

        Ok(Settings {
            output,
            input: FileServerConfig {
                include,
                exclude,
                max_line_bytes,
                poll_interval: Duration::from_millis(250),
                scan_interval,
                rotate_wait,
                checkpoint_interval: Duration::from_secs(1),
                forget_after,
                bytes_per_turn: 4 * 1024 * 1024,
            },
            encode: EncodeConfig {
                host_name,
                agent_name: schema::agent::NAME.to_string(),
                namespace,
                batch: BatchLimits {
                    max_docs,
                    max_bytes,
                    max_wait,
                },
            },
            data_dir,
            metrics_addr,
            memory_budget,
            summary_interval,
            log_format,
            alerts,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        invalid(
            "SHIPPER_CONFIG (--config)",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    toml::from_str(&text).map_err(|e| {
        invalid(
            "SHIPPER_CONFIG (--config)",
            format!("{}: {e}", path.display()),
        )
    })
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn parse_bool(setting: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(setting, format!("{v:?} is neither true nor false"))),
    }
}

fn parse_count(setting: &str, v: &str) -> Result<usize, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| invalid(setting, format!("{v:?} is not a whole number")))
}

fn duration(
    setting: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => humantime::parse_duration(v.trim()).map_err(|e| {
            invalid(
                setting,
                format!("{v:?} is not a duration like 250ms, 5s or 1h: {e}"),
            )
        }),
    }
}

fn size(setting: &str, value: Option<&str>, default: usize) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => {
            let parsed: bytesize::ByteSize = v.trim().parse().map_err(|e| {
                invalid(
                    setting,
                    format!("{v:?} is not a size like 512KiB or 8MiB: {e}"),
                )
            })?;
            usize::try_from(parsed.as_u64()).map_err(|_| invalid(setting, "too large"))
        }
    }
}

fn check_writable_dir(setting: &str, dir: &Path) -> Result<(), ConfigError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| invalid(setting, format!("cannot create {}: {e}", dir.display())))?;
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| invalid(setting, format!("{} is not writable: {e}", dir.display())))
}

/// This machine's host name (the container id under Docker).
pub fn this_host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..end]).into_owned();
        if !name.is_empty() {
            return name;
        }
    }
    "unknown".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(dir: &Path) -> Cli {
        Cli {
            elasticsearch_url: Some("http://127.0.0.1:9200".into()),
            paths: Some("/var/log/didban/*.log*".into()),
            data_dir: Some(dir.to_path_buf()),
            ..Cli::default()
        }
    }

    fn err(c: &Cli) -> String {
        Settings::merge(c, FileConfig::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_complete_and_sane() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::merge(&cli(dir.path()), FileConfig::default()).unwrap();
        assert_eq!(s.metrics_addr.to_string(), "0.0.0.0:9600");
        assert_eq!(s.encode.namespace, "default");
        assert_eq!(s.input.exclude, vec!["*.gz"]);
        assert!(s.memory_budget >= 2 * s.encode.batch.max_bytes);
        assert_eq!(s.output.auth, Auth::None);
    }

    #[test]
    fn each_wrong_setting_is_named_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cli(dir.path());
        c.elasticsearch_url = Some("ftp://x".into());
        assert!(err(&c).contains("ELASTICSEARCH_URL"), "{}", err(&c));
        let mut c = cli(dir.path());
        c.paths = Some("relative/*.log".into());
        assert!(err(&c).contains("SHIPPER_PATHS"));
        let mut c = cli(dir.path());
        c.elasticsearch_username = Some("elastic".into());
        assert!(err(&c).contains("ELASTICSEARCH_PASSWORD"));
        let mut c = cli(dir.path());
        c.namespace = Some("Bad-Name".into());
        assert!(err(&c).contains("SHIPPER_NAMESPACE"));
        let mut c = cli(dir.path());
        c.batch_max_wait = Some("soon".into());
        assert!(err(&c).contains("SHIPPER_BATCH_MAX_WAIT"));
        let mut c = cli(dir.path());
        c.memory_budget = Some("1KiB".into());
        assert!(err(&c).contains("SHIPPER_MEMORY_BUDGET"));
        let mut c = cli(dir.path());
        c.metrics_addr = Some("localhost".into());
        assert!(err(&c).contains("SHIPPER_METRICS_ADDR"));
        let mut c = cli(dir.path());
        c.elasticsearch_ca_cert = Some(dir.path().join("missing.pem"));
        assert!(err(&c).contains("ELASTICSEARCH_CA_CERT"));
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file: FileConfig = toml::from_str(
            r#"
            [elasticsearch]
            urls = ["http://file:9200"]
            username = "elastic"
            password = "from-file"
            [input]
            paths = ["/file/*.log"]
            [shipper]
            namespace = "prod"
            "#,
        )
        .unwrap();
        let s = Settings::merge(&cli(dir.path()), file).unwrap();
        assert_eq!(s.output.nodes[0].as_str(), "http://127.0.0.1:9200/");
        assert_eq!(s.input.include, vec!["/var/log/didban/*.log*"]);
        assert_eq!(
            s.encode.namespace, "prod",
            "the file fills what the environment leaves out"
        );
        assert!(
            matches!(s.output.auth, Auth::Basic { ref password, .. } if password == "from-file")
        );
    }

    #[test]
    fn alerting_is_off_without_a_channel_and_on_with_one_env_line() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::merge(&cli(dir.path()), FileConfig::default()).unwrap();
        assert!(s.alerts.is_none());
        let mut c = cli(dir.path());
        c.alerts.alert_slack = Some("https://hooks.slack.com/services/T/B/X".into());
        let s = Settings::merge(&c, FileConfig::default()).unwrap();
        let alerts = s.alerts.unwrap();
        assert_eq!(alerts.targets.len(), 1);
        assert_eq!(alerts.rules.len(), 2, "the default rules");
    }

    #[test]
    fn alert_settings_merge_the_environment_over_the_file_and_name_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file: FileConfig = toml::from_str(
            r#"
            [alerts]
            kibana_url = "http://file-kibana:5601"
            [alerts.channels]
            webhook = "http://127.0.0.1:9/hook"
            [[alerts.rules]]
            name = "Payment errors"
            service = "payment"
            level = "ERROR"
            threshold = 3
            window = "30s"
            "#,
        )
        .unwrap();
        let mut c = cli(dir.path());
        c.alerts.kibana_url = Some("https://kibana.example.com".into());
        let alerts = Settings::merge(&c, file).unwrap().alerts.unwrap();
        assert_eq!(alerts.kibana_url.as_str(), "https://kibana.example.com/");
        assert_eq!(alerts.rules.len(), 3);
        assert_eq!(alerts.rules[2].name, "Payment errors");

        let mut c = cli(dir.path());
        c.alerts.alert_telegram = Some("telegram://token@telegram".into());
        let e = err(&c);
        assert!(e.contains("ALERT_TELEGRAM") && e.contains("chats"), "{e}");
        let mut c = cli(dir.path());
        c.alerts.alert_webhook = Some("http://127.0.0.1:9/hook".into());
        c.alerts.alert_uptime_down_checks = Some("three".into());
        assert!(err(&c).contains("ALERT_UPTIME_DOWN_CHECKS"), "{}", err(&c));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = Cli {
            elasticsearch_password: Some(Secret("hunter2-password".into())),
            elasticsearch_api_key: Some(Secret("c2VjcmV0LWFwaS1rZXk=".into())),
            ..Cli::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shipper.toml");
        std::fs::write(&path, "[input]\npath = [\"/x\"]\n").unwrap();
        let mut c = cli(dir.path());
        c.config = Some(path);
        let e = Settings::load(&c).unwrap_err().to_string();
        assert!(e.contains("unknown field") && e.contains("path"), "{e}");
    }
}
