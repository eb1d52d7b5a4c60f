//! Settings: command line over environment over an optional TOML file over defaults.
//!
//! Every setting has one name in the environment (what `docker compose` passes) and one key
//! in the file. A wrong value stops the shipper at start with a message that names both and
//! says why, rather than failing later or silently using a default.
//!
//! Each setting is declared once, in [`sections`]: a typed field of a struct that is both a
//! clap argument (its flag, environment variable and help) and a serde field (its TOML key,
//! the field's name in the struct of its section). clap was chosen for the environment over
//! figment's `Env` provider because the variables do not follow the keys
//! (`SHIPPER_BATCH_MAX_DOCS` is `[batch.max_docs]`), so clap's `env` is the one place that
//! names each of them, and `--help` shows it. figment then layers what clap read over the
//! file ([`settings_kit::layer`]), so no merge is written by hand; defaults and checks are applied
//! once, here, when the merged values are resolved into [`Settings`].

mod sections;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, CommandFactory, Parser};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::batch::BatchLimits;
use crate::encode::{route, EncodeConfig};
use crate::input::file_server::FileServerConfig;
use crate::output::{Auth, OutputConfig};

pub use sections::LogFormat;
pub(crate) use sections::{Batch, Elasticsearch, Input, Shipper};
pub use settings_kit::SettingError;
pub(crate) use settings_kit::Size;

/// Files not read unless `exclude` says otherwise: compressed formats the shipper cannot
/// decompress (their bytes would be shipped as garbage). `.gz` rotations are read. `*.tmp`:
/// kubelet gzips a rotated log into `<name>.tmp` before renaming it to `<name>.gz`, and a
/// glob of rotated names (`*.log*`) would match the half-written gzip as a plain file.
const DEFAULT_EXCLUDE: [&str; 6] = ["*.bz2", "*.xz", "*.zst", "*.lz4", "*.zip", "*.tmp"];

/// didban's log shipper: tails JSON log files into Elasticsearch data streams, every line
/// exactly once.
///
/// Every option can also be set by the environment variable shown, or in the TOML file given
/// by --config (keys in brackets); the command line wins over the environment, which wins
/// over the file. An empty environment variable counts as not set.
#[derive(Debug, Parser, Default)]
#[command(name = "shipper", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML configuration file.
    #[arg(long, env = "SHIPPER_CONFIG")]
    pub(crate) config: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) elasticsearch: Elasticsearch,
    #[command(flatten)]
    pub(crate) input: Input,
    #[command(flatten)]
    pub(crate) batch: Batch,
    #[command(flatten)]
    pub(crate) shipper: Shipper,

    /// Alerting: channels (one line each), Kibana links, uptime rules [alerts].
    #[command(flatten)]
    pub(crate) alerts: alerting::Alerts,
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
    /// Checks the settings and Elasticsearch before a deploy; writes nothing.
    ///
    /// Everything the shipper would refuse at start, then (unless --offline)
    /// Elasticsearch: reachable, version, credentials, privileges, templates. Exit status:
    /// 0 every check passed, 2 a setting is wrong, 3 Elasticsearch is unreachable or
    /// refuses something the shipper needs.
    Validate(crate::commands::validate::ValidateArgs),
    /// Proves delivery: looks up every line before the checkpoints; --repair ships the missing.
    ///
    /// Rebuilds the `_id` of every line before each checkpoint (of the files still on disk)
    /// and looks them up in Elasticsearch; reports the missing line ranges per file.
    /// --repair ships exactly those lines again. Exit status: 0 nothing missing (or
    /// everything repaired), 1 lines are missing, 2 a setting is wrong, 3 Elasticsearch
    /// could not answer.
    Verify(crate::commands::verify::VerifyArgs),
    /// Lists, shows and replays the documents Elasticsearch refused for good.
    ///
    /// List them by index, status and reason, show them, replay them (with their original
    /// `_id`s, so never twice) once the cause is fixed.
    DeadLetters(crate::commands::dead_letters::DeadLettersArgs),
    /// Sends a test message through the alert channels; silences alerts for a while.
    Alert(crate::commands::alert::AlertArgs),
}

impl Cli {
    /// Reads the command line and the environment; an empty environment variable is unset.
    /// A value that does not parse is returned as the setting it is; help, version and usage
    /// errors are printed by clap, which then exits.
    pub fn from_command_line() -> Result<Cli, SettingError> {
        settings_kit::unset_empty_env(&Cli::command());
        Cli::from_args(std::env::args_os())
    }

    /// Like [`Cli::from_command_line`] for the given arguments (the first is the program).
    pub(crate) fn from_args<I, T>(args: I) -> Result<Cli, SettingError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map_err(|e| match settings_kit::from_clap(&sections(), &e) {
            Some(setting) => setting,
            None => e.exit(),
        })
    }
}

/// Each file section with the arguments that are its settings, to name them in errors.
fn sections() -> Vec<(&'static str, clap::Command)> {
    let section = |name: &'static str, augment: fn(clap::Command) -> clap::Command| {
        (name, augment(clap::Command::new(name)))
    };
    let mut all = vec![
        section("elasticsearch", Elasticsearch::augment_args),
        section("input", Input::augment_args),
        section("batch", Batch::augment_args),
        section("shipper", Shipper::augment_args),
    ];
    all.extend(alerting::sections());
    all
}

/// `ENV [section.key]` of the setting whose field is `id`.
fn label(id: &str) -> String {
    settings_kit::label(&sections(), id)
}

fn invalid(id: &str, reason: impl Into<String>) -> SettingError {
    SettingError::new(label(id), reason)
}

/// What clap read, in the shape of the file, for the layering.
#[derive(Serialize)]
struct Given<'a> {
    elasticsearch: &'a Elasticsearch,
    input: &'a Input,
    batch: &'a Batch,
    shipper: &'a Shipper,
    alerts: &'a alerting::Alerts,
}

/// The layers merged: the file's sections with what clap read over them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layered {
    #[serde(default)]
    elasticsearch: Elasticsearch,
    #[serde(default)]
    input: Input,
    #[serde(default)]
    batch: Batch,
    #[serde(default)]
    shipper: Shipper,
    #[serde(default)]
    alerts: alerting::Alerts,
}

/// Everything the shipper runs with, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub(crate) output: OutputConfig,
    pub(crate) input: FileServerConfig,
    pub(crate) encode: EncodeConfig,
    pub(crate) data_dir: PathBuf,
    pub(crate) metrics_addr: SocketAddr,
    pub(crate) memory_budget: usize,
    pub(crate) summary_interval: Duration,
    /// How long a line may wait for delivery before /ready answers 503.
    pub(crate) ready_failing_after: Duration,
    /// How long the reading loop may go without turning before /health answers 503.
    pub(crate) health_stuck_after: Duration,
    pub log_format: LogFormat,
    /// `None` when no alert channel is configured.
    pub(crate) alerts: Option<alerting::AlertSettings>,
}

impl Settings {
    /// The longest the output may take to finish its requests at shutdown.
    pub fn shutdown_deadline(&self) -> Duration {
        self.output.shutdown_deadline
    }

    /// Reads the file named by `cli.config` (if any) and layers `cli` over it.
    pub fn load(cli: &Cli) -> Result<Settings, SettingError> {
        match &cli.config {
            Some(path) => {
                let text = read_file(path)?;
                Settings::from_sources(cli, Some((&path.display().to_string(), &text)))
            }
            None => Settings::from_sources(cli, None),
        }
    }

    /// The settings file given with `--config` (`SHIPPER_CONFIG`), if any: what a reload
    /// re-reads (the environment of a running process does not change).
    pub fn config_file(cli: &Cli) -> Option<&Path> {
        cli.config.as_deref()
    }

    /// Like [`Settings::load`], but writes nothing: the data directory is checked (it, or
    /// the directory that would hold it, is a writable directory) without being created.
    /// For the commands that only look.
    pub(crate) fn load_read_only(cli: &Cli) -> Result<Settings, SettingError> {
        let text = match &cli.config {
            Some(path) => Some((path.display().to_string(), read_file(path)?)),
            None => None,
        };
        let file = text.as_ref().map(|(n, t)| (n.as_str(), t.as_str()));
        Settings::from_sources_with(cli, file, DataDir::CheckOnly)
    }

    /// `cli` over the TOML `file` (`(name, text)`) over the defaults, checked.
    fn from_sources(cli: &Cli, file: Option<(&str, &str)>) -> Result<Settings, SettingError> {
        Settings::from_sources_with(cli, file, DataDir::Create)
    }

    fn from_sources_with(
        cli: &Cli,
        file: Option<(&str, &str)>,
        data_dir: DataDir,
    ) -> Result<Settings, SettingError> {
        let given = Given {
            elasticsearch: &cli.elasticsearch,
            input: &cli.input,
            batch: &cli.batch,
            shipper: &cli.shipper,
            alerts: &cli.alerts,
        };
        let layered: Layered = settings_kit::layer(&sections(), given, file)?;
        Settings::resolve(layered, data_dir)
    }

    /// Applies the defaults and checks every value once, then the checks across settings.
    fn resolve(layered: Layered, data_dir_mode: DataDir) -> Result<Settings, SettingError> {
        let es = layered.elasticsearch;
        let urls: Vec<String> = es
            .urls
            .unwrap_or_default()
            .into_iter()
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            return Err(invalid(
                "urls",
                "at least one Elasticsearch URL is required, e.g. https://elasticsearch:9200",
            ));
        }
        let nodes = urls
            .iter()
            .map(|u| {
                let url = Url::parse(u).map_err(|e| invalid("urls", format!("{u:?} is not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(invalid("urls", format!("{u:?} must start with http:// or https://")));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(invalid(
                        "urls",
                        "put credentials in ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD, not in the URL",
                    ));
                }
                Ok(url)
            })
            .collect::<Result<Vec<_>, _>>()?;

        let username = es.username.filter(|s| !s.is_empty());
        let password = es
            .password
            .map(|s| s.expose_secret().to_string())
            .filter(|s| !s.is_empty());
        let api_key = es
            .api_key
            .map(|s| s.expose_secret().to_string())
            .filter(|s| !s.is_empty());
        let auth = match (username, password, api_key) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(invalid(
                    "api_key",
                    "give either an API key or a username and password, not both",
                ))
            }
            (None, None, Some(key)) => Auth::ApiKey(key),
            (Some(username), Some(password), None) => Auth::Basic { username, password },
            (Some(_), None, None) => {
                return Err(invalid("password", "a username is set but no password"))
            }
            (None, Some(_), None) => {
                return Err(invalid("username", "a password is set but no username"))
            }
            (None, None, None) => Auth::None,
        };
        let ca_cert = es.ca_cert.filter(|p| !p.as_os_str().is_empty());
        if let Some(ca) = &ca_cert {
            let pem = std::fs::read(ca)
                .map_err(|e| invalid("ca_cert", format!("cannot read {}: {e}", ca.display())))?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(invalid(
                    "ca_cert",
                    format!("{} holds no PEM certificate", ca.display()),
                ));
            }
        }
        let compression = es.compression.unwrap_or(false);
        let max_in_flight = es
            .max_in_flight
            .unwrap_or(crate::output::config::DEFAULT_MAX_IN_FLIGHT);
        if max_in_flight == 0 || max_in_flight > 64 {
            return Err(invalid("max_in_flight", "must be between 1 and 64"));
        }
        let request_timeout = es
            .request_timeout
            .unwrap_or(crate::output::config::DEFAULT_REQUEST_TIMEOUT);
        let discover_nodes = es.discover_nodes.unwrap_or(false);
        let discover_interval = es
            .discover_interval
            .unwrap_or(crate::output::config::DEFAULT_DISCOVER_INTERVAL);
        if discover_interval < Duration::from_secs(1) {
            return Err(invalid("discover_interval", "must be at least 1s"));
        }

        let input = layered.input;
        let include: Vec<String> = input
            .paths
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        if include.is_empty() {
            return Err(invalid(
                "paths",
                "at least one glob of log files is required, e.g. /var/log/didban/*.log*",
            ));
        }
        let exclude: Vec<String> = match input.exclude {
            Some(list) => list.into_iter().filter(|p| !p.is_empty()).collect(),
            None => DEFAULT_EXCLUDE.iter().map(|p| p.to_string()).collect(),
        };
        crate::input::paths::PathsProvider::new(&include, &exclude)
            .map_err(|e| invalid("paths", e.to_string()))?;
        let max_line_bytes = input.max_line_bytes.map_or(1024 * 1024, Size::bytes);
        if !(256..=64 * 1024 * 1024).contains(&max_line_bytes) {
            return Err(invalid("max_line_bytes", "must be between 256B and 64MiB"));
        }
        let scan_interval = input.scan_interval.unwrap_or(Duration::from_secs(5));
        if scan_interval.is_zero() {
            return Err(invalid("scan_interval", "must be more than 0s"));
        }
        let rotate_wait = input.rotate_wait.unwrap_or(Duration::from_secs(5));
        let close_inactive = input.close_inactive.unwrap_or(Duration::from_secs(300));

        let batch = layered.batch;
        let max_docs = batch.max_docs.unwrap_or(BatchLimits::default().max_docs);
        if max_docs == 0 || max_docs > 100_000 {
            return Err(invalid("max_docs", "must be between 1 and 100000"));
        }
        let max_bytes = batch
            .max_bytes
            .map_or(BatchLimits::default().max_bytes, Size::bytes);
        // Elasticsearch refuses bodies above http.max_content_length (100mb by default).
        if !(1024..=90 * 1024 * 1024).contains(&max_bytes) {
            return Err(invalid("max_bytes", "must be between 1KiB and 90MiB"));
        }
        let max_wait = batch.max_wait.unwrap_or(BatchLimits::default().max_wait);

        let sh = layered.shipper;
        let data_dir = sh
            .data_dir
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("/var/lib/didban-shipper"));
        match data_dir_mode {
            DataDir::Create => check_writable_dir("data_dir", &data_dir)?,
            DataDir::CheckOnly => check_dir_could_be_written("data_dir", &data_dir)?,
        }
        let namespace = sh.namespace.unwrap_or_else(|| "default".to_string());
        route::check_namespace(&namespace).map_err(|r| invalid("namespace", r))?;
        let metrics_addr = sh
            .metrics_addr
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 9600)));
        let memory_budget = sh.memory_budget.map_or(8 * 1024 * 1024, Size::bytes);
        if memory_budget < 2 * max_bytes {
            return Err(invalid(
                "memory_budget",
                format!("must be at least twice SHIPPER_BATCH_MAX_BYTES ({max_bytes} bytes), so one batch can fill while another is in flight"),
            ));
        }
        let summary_interval = sh.summary_interval.unwrap_or(Duration::from_secs(10));
        let host_name = sh
            .host_name
            .filter(|h| !h.is_empty())
            .unwrap_or_else(this_host_name);
        let shutdown_deadline = sh
            .shutdown_timeout
            .unwrap_or(crate::output::config::DEFAULT_SHUTDOWN_DEADLINE);
        let dead_letter_max_bytes = sh
            .dead_letter_max_bytes
            .map_or(crate::output::config::DEFAULT_DEAD_LETTER_MAX_BYTES, |s| {
                s.0
            });
        let forget_after = sh
            .forget_after
            .unwrap_or(Duration::from_secs(7 * 24 * 3600));
        let log_format = sh.log_format.unwrap_or(LogFormat::Text);
        let ready_failing_after = sh.ready_failing_after.unwrap_or(Duration::from_secs(30));
        if ready_failing_after.is_zero() {
            return Err(invalid("ready_failing_after", "must be more than 0s"));
        }
        let health_stuck_after = sh.health_stuck_after.unwrap_or(Duration::from_secs(60));
        if health_stuck_after < Duration::from_secs(1) {
            // The idle loop turns every poll interval (250 ms): less would fail a healthy one.
            return Err(invalid("health_stuck_after", "must be at least 1s"));
        }

        let alerts = alerting::AlertSettings::resolve(layered.alerts)?;

        let mut output = OutputConfig::new(nodes, data_dir.join("dead-letters"));
        output.auth = auth;
        output.ca_cert = ca_cert;
        output.compression = compression;
        output.max_in_flight = max_in_flight;
        output.request_timeout = request_timeout;
        output.discover_nodes = discover_nodes;
        output.discover_interval = discover_interval;
        output.shutdown_deadline = shutdown_deadline;
        output.dead_letter_max_bytes = dead_letter_max_bytes;
        output
            .validate()
            .map_err(|e| SettingError::new(format!("[elasticsearch] {}", e.setting), e.reason))?;

        Ok(Settings {
            output,
            input: FileServerConfig {
                include,
                exclude,
                max_line_bytes,
                poll_interval: Duration::from_millis(250),
                scan_interval,
                rotate_wait,
                close_inactive,
                checkpoint_interval: Duration::from_secs(1),
                forget_after,
                bytes_per_turn: 4 * 1024 * 1024,
                follow_symlinks: input.follow_symlinks.unwrap_or(false),
                format: input.format.unwrap_or_default(),
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
            ready_failing_after,
            health_stuck_after,
            log_format,
            alerts,
        })
    }
}

fn read_file(path: &Path) -> Result<String, SettingError> {
    std::fs::read_to_string(path).map_err(|e| {
        SettingError::new(
            "SHIPPER_CONFIG (--config)",
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

/// What loading the settings may do to the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataDir {
    /// Create it and prove it writable with a probe file (the shipper starting).
    Create,
    /// Only look: it, or its nearest existing parent, must be a directory this process may
    /// write to (the commands that write nothing).
    CheckOnly,
}

/// The read-only twin of [`check_writable_dir`]: `access(2)` instead of a probe file.
fn check_dir_could_be_written(id: &str, dir: &Path) -> Result<(), SettingError> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(meta) if !meta.is_dir() => {
                return Err(invalid(id, format!("{} is not a directory", at.display())))
            }
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match at.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => at = parent,
                _ => break,
            },
            Err(e) => return Err(invalid(id, format!("cannot read {}: {e}", at.display()))),
        }
    }
    let writable = std::ffi::CString::new(at.as_os_str().as_encoded_bytes())
        .map(|c| {
            // SAFETY: `c` is a valid NUL-terminated path; access only reads it.
            unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
        })
        .unwrap_or(false);
    if !writable {
        let what = if at == dir {
            format!("{} is not writable", dir.display())
        } else {
            format!(
                "{} does not exist and {} is not writable",
                dir.display(),
                at.display()
            )
        };
        return Err(invalid(id, what));
    }
    Ok(())
}

fn check_writable_dir(id: &str, dir: &Path) -> Result<(), SettingError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| invalid(id, format!("cannot create {}: {e}", dir.display())))?;
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| invalid(id, format!("{} is not writable: {e}", dir.display())))
}

/// This machine's host name (the container id under Docker).
pub(crate) fn this_host_name() -> String {
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
    use crate::input::container_log::InputFormat;
    use secrecy::SecretString;

    fn cli(dir: &Path) -> Cli {
        let mut c = Cli::default();
        c.elasticsearch.urls = Some(vec!["http://127.0.0.1:9200".into()]);
        c.input.paths = Some(vec!["/var/log/didban/*.log*".into()]);
        c.shipper.data_dir = Some(dir.to_path_buf());
        c
    }

    /// The command line of `cli(dir)` followed by `more`.
    fn args(dir: &Path, more: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = [
            "shipper",
            "--elasticsearch-url",
            "http://127.0.0.1:9200",
            "--paths",
            "/var/log/didban/*.log*",
            "--data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.push(dir.display().to_string());
        all.extend(more.iter().map(|s| s.to_string()));
        all
    }

    fn err(c: &Cli) -> String {
        Settings::from_sources(c, None).unwrap_err().to_string()
    }

    /// The error of the command line `cli(dir)` + `more`, whether clap or a check finds it.
    fn arg_err(dir: &Path, more: &[&str]) -> String {
        match Cli::from_args(args(dir, more)) {
            Err(e) => e.to_string(),
            Ok(c) => err(&c),
        }
    }

    fn with_file(c: &Cli, text: &str) -> Result<Settings, SettingError> {
        Settings::from_sources(c, Some(("shipper.toml", text)))
    }

    #[test]
    fn defaults_are_complete_and_sane() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::from_sources(&cli(dir.path()), None).unwrap();
        assert_eq!(s.metrics_addr.to_string(), "0.0.0.0:9600");
        assert_eq!(s.encode.namespace, "default");
        assert_eq!(s.input.close_inactive, Duration::from_secs(300));
        assert_eq!(s.input.exclude, DEFAULT_EXCLUDE);
        assert!(
            !s.input.exclude.iter().any(|p| p.contains("gz")),
            ".gz rotations are read by default"
        );
        assert!(s.memory_budget >= 2 * s.encode.batch.max_bytes);
        assert_eq!(s.output.auth, Auth::None);
        assert_eq!(s.memory_budget, 8 * 1024 * 1024);
        assert_eq!(s.input.max_line_bytes, 1024 * 1024);
        assert_eq!(s.summary_interval, Duration::from_secs(10));
        assert_eq!(s.input.forget_after, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(!s.output.compression);
        assert_eq!(s.input.format, InputFormat::Auto);
    }

    #[test]
    fn the_input_format_is_one_of_four_and_named_when_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cli::from_args(args(dir.path(), &["--input-format", "cri"])).unwrap();
        let s = Settings::from_sources(&c, None).unwrap();
        assert_eq!(s.input.format, InputFormat::Cri);
        let s = with_file(&cli(dir.path()), "[input]\nformat = \"docker\"\n").unwrap();
        assert_eq!(s.input.format, InputFormat::Docker);
        let e = arg_err(dir.path(), &["--input-format", "syslog"]);
        assert!(e.contains("SHIPPER_INPUT_FORMAT [input.format]"), "{e}");
        let e = with_file(&cli(dir.path()), "[input]\nformat = \"xml\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("SHIPPER_INPUT_FORMAT [input.format]"), "{e}");
    }

    #[test]
    fn each_wrong_setting_is_named_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let e = arg_err(d, &["--elasticsearch-url", "ftp://x"]);
        assert!(e.contains("ELASTICSEARCH_URL [elasticsearch.urls]"), "{e}");
        assert!(arg_err(d, &["--paths", "relative/*.log"]).contains("SHIPPER_PATHS"));
        assert!(
            arg_err(d, &["--elasticsearch-username", "elastic"]).contains("ELASTICSEARCH_PASSWORD")
        );
        assert!(arg_err(d, &["--namespace", "Bad-Name"]).contains("SHIPPER_NAMESPACE"));
        let e = arg_err(d, &["--batch-max-wait", "soon"]);
        assert!(
            e.contains("SHIPPER_BATCH_MAX_WAIT [batch.max_wait]") && e.contains("not a duration"),
            "{e}"
        );
        let e = arg_err(d, &["--memory-budget", "1KiB"]);
        assert!(e.contains("SHIPPER_MEMORY_BUDGET"), "{e}");
        let e = arg_err(d, &["--metrics-addr", "localhost"]);
        assert!(
            e.contains("SHIPPER_METRICS_ADDR [shipper.metrics_addr]") && e.contains("localhost"),
            "{e}"
        );
        let missing = d.join("missing.pem").display().to_string();
        let e = arg_err(d, &["--elasticsearch-ca-cert", &missing]);
        assert!(e.contains("ELASTICSEARCH_CA_CERT"), "{e}");
        let e = arg_err(d, &["--max-in-flight", "three"]);
        assert!(
            e.contains("SHIPPER_MAX_IN_FLIGHT [elasticsearch.max_in_flight]")
                && e.contains("whole number"),
            "{e}"
        );
        let e = arg_err(d, &["--batch-max-bytes", "lots"]);
        assert!(
            e.contains("SHIPPER_BATCH_MAX_BYTES") && e.contains("size"),
            "{e}"
        );
        let e = arg_err(d, &["--compression", "maybe"]);
        assert!(e.contains("SHIPPER_COMPRESSION"), "{e}");
        let e = arg_err(d, &["--log-format", "xml"]);
        assert!(e.contains("SHIPPER_LOG_FORMAT [shipper.log_format]"), "{e}");
    }

    #[test]
    fn a_wrong_value_in_the_file_is_named_by_its_key_and_variable() {
        let dir = tempfile::tempdir().unwrap();
        let c = cli(dir.path());
        let e = with_file(&c, "[batch]\nmax_wait = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("SHIPPER_BATCH_MAX_WAIT [batch.max_wait]"), "{e}");
        let e = with_file(&c, "[elasticsearch]\nmax_in_flight = \"two\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("SHIPPER_MAX_IN_FLIGHT"), "{e}");
        let e = with_file(&c, "[shipper]\nmemory_budget = \"1KiB\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("SHIPPER_MEMORY_BUDGET"), "{e}");
    }

    #[test]
    fn the_file_takes_typed_values_and_sizes_in_its_own_syntax() {
        let dir = tempfile::tempdir().unwrap();
        let s = with_file(
            &cli(dir.path()),
            r#"
            [elasticsearch]
            compression = true
            max_in_flight = 4
            request_timeout = "30s"
            [input]
            max_line_bytes = "512KiB"
            close_inactive = "10m"
            [batch]
            max_docs = 500
            max_bytes = 1500000
            [shipper]
            memory_budget = "16MiB"
            log_format = "json"
            metrics_addr = "127.0.0.1:9601"
            "#,
        )
        .unwrap();
        assert!(s.output.compression);
        assert_eq!(s.output.max_in_flight, 4);
        assert_eq!(s.output.request_timeout, Duration::from_secs(30));
        assert_eq!(s.input.max_line_bytes, 512 * 1024);
        assert_eq!(s.input.close_inactive, Duration::from_secs(600));
        assert_eq!(s.encode.batch.max_docs, 500);
        assert_eq!(s.encode.batch.max_bytes, 1_500_000);
        assert_eq!(s.memory_budget, 16 * 1024 * 1024);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.metrics_addr.to_string(), "127.0.0.1:9601");
    }

    #[test]
    fn the_command_line_wins_over_the_file_for_every_kind_of_value() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cli::from_args(args(
            dir.path(),
            &[
                "--batch-max-bytes",
                "1500000",
                "--batch-max-wait",
                "1s 500ms",
                "--compression",
                "yes",
                "--exclude",
                "*.gz, *.old",
            ],
        ))
        .unwrap();
        let s = with_file(
            &c,
            "[batch]\nmax_bytes = \"2MiB\"\nmax_wait = \"5s\"\n[elasticsearch]\ncompression = false\n",
        )
        .unwrap();
        assert_eq!(s.encode.batch.max_bytes, 1_500_000, "exact, not rounded");
        assert_eq!(s.encode.batch.max_wait, Duration::from_millis(1500));
        assert!(s.output.compression);
        assert_eq!(s.input.exclude, vec!["*.gz", "*.old"]);
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = r#"
            [elasticsearch]
            urls = ["http://file:9200"]
            username = "elastic"
            password = "from-file"
            [input]
            paths = ["/file/*.log"]
            [shipper]
            namespace = "prod"
            "#;
        let s = with_file(&cli(dir.path()), file).unwrap();
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
        let s = Settings::from_sources(&cli(dir.path()), None).unwrap();
        assert!(s.alerts.is_none());
        let mut c = cli(dir.path());
        c.alerts.channels.slack =
            Some(SecretString::from("https://hooks.slack.com/services/T/B/X"));
        let s = Settings::from_sources(&c, None).unwrap();
        let alerts = s.alerts.unwrap();
        assert_eq!(alerts.targets.len(), 1);
        assert_eq!(alerts.rules.len(), 2, "the default rules");
    }

    #[test]
    fn alert_settings_merge_the_environment_over_the_file_and_name_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = r#"
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
            "#;
        let mut c = cli(dir.path());
        c.alerts.kibana_url = Some("https://kibana.example.com".into());
        let alerts = with_file(&c, file).unwrap().alerts.unwrap();
        assert_eq!(alerts.kibana_url.as_str(), "https://kibana.example.com/");
        assert_eq!(alerts.rules.len(), 3);
        assert_eq!(alerts.rules[2].name, "Payment errors");

        let mut c = cli(dir.path());
        c.alerts.channels.telegram = Some(SecretString::from("telegram://token@telegram"));
        let e = err(&c);
        assert!(e.contains("ALERT_TELEGRAM") && e.contains("chats"), "{e}");
        let e = arg_err(
            dir.path(),
            &[
                "--alert-webhook",
                "http://127.0.0.1:9/hook",
                "--alert-uptime-down-checks",
                "three",
            ],
        );
        assert!(
            e.contains("ALERT_UPTIME_DOWN_CHECKS [alerts.uptime.down_checks]")
                && e.contains("whole number"),
            "{e}"
        );
        let e = with_file(
            &cli(dir.path()),
            "[alerts.channels]\nwebhook = \"http://127.0.0.1:9/hook\"\n[alerts.uptime]\ninterval = \"soon\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ALERT_UPTIME_INTERVAL [alerts.uptime.interval]"),
            "{e}"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut c = Cli::default();
        c.elasticsearch.password = Some(SecretString::from("hunter2-password"));
        c.elasticsearch.api_key = Some(SecretString::from("c2VjcmV0LWFwaS1rZXk="));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
        let c = Cli::from_args([
            "shipper",
            "--elasticsearch-password",
            "hunter2-password",
            "--alert-slack",
            "https://hooks.slack.com/services/T/B/hunter2-token",
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
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
        std::fs::write(dir.path().join("shipper.toml"), "[inputs]\n").unwrap();
        let e = Settings::load(&c).unwrap_err().to_string();
        assert!(e.contains("unknown field") && e.contains("inputs"), "{e}");
    }

    #[test]
    fn every_setting_documents_its_variable_and_its_file_key() {
        for (section, cmd) in sections() {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(
                    help.contains(&format!("[{section}.{id}]")),
                    "--{:?}: {help}",
                    arg.get_long()
                );
                assert!(arg.get_env().is_some(), "{id} has no environment variable");
            }
        }
    }

    #[test]
    fn the_documented_names_are_the_declared_ones() {
        let cmd = Cli::command();
        let envs: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
        for (env, long) in [
            ("SHIPPER_CONFIG", "config"),
            ("ELASTICSEARCH_URL", "elasticsearch-url"),
            ("ELASTICSEARCH_USERNAME", "elasticsearch-username"),
            ("ELASTICSEARCH_PASSWORD", "elasticsearch-password"),
            ("ELASTICSEARCH_API_KEY", "elasticsearch-api-key"),
            ("ELASTICSEARCH_CA_CERT", "elasticsearch-ca-cert"),
            ("SHIPPER_COMPRESSION", "compression"),
            ("SHIPPER_MAX_IN_FLIGHT", "max-in-flight"),
            ("SHIPPER_REQUEST_TIMEOUT", "request-timeout"),
            (
                "SHIPPER_ELASTICSEARCH_DISCOVER_NODES",
                "elasticsearch-discover-nodes",
            ),
            (
                "SHIPPER_ELASTICSEARCH_DISCOVER_INTERVAL",
                "elasticsearch-discover-interval",
            ),
            ("SHIPPER_PATHS", "paths"),
            ("SHIPPER_EXCLUDE", "exclude"),
            ("SHIPPER_MAX_LINE_BYTES", "max-line-bytes"),
            ("SHIPPER_SCAN_INTERVAL", "scan-interval"),
            ("SHIPPER_ROTATE_WAIT", "rotate-wait"),
            ("SHIPPER_CLOSE_INACTIVE", "close-inactive"),
            ("SHIPPER_INPUT_FORMAT", "input-format"),
            ("SHIPPER_BATCH_MAX_DOCS", "batch-max-docs"),
            ("SHIPPER_BATCH_MAX_BYTES", "batch-max-bytes"),
            ("SHIPPER_BATCH_MAX_WAIT", "batch-max-wait"),
            ("SHIPPER_DATA_DIR", "data-dir"),
            ("SHIPPER_NAMESPACE", "namespace"),
            ("SHIPPER_METRICS_ADDR", "metrics-addr"),
            ("SHIPPER_MEMORY_BUDGET", "memory-budget"),
            ("SHIPPER_SUMMARY_INTERVAL", "summary-interval"),
            ("SHIPPER_HOST_NAME", "host-name"),
            ("SHIPPER_SHUTDOWN_TIMEOUT", "shutdown-timeout"),
            ("SHIPPER_DEAD_LETTER_MAX_BYTES", "dead-letter-max-bytes"),
            ("SHIPPER_FORGET_AFTER", "forget-after"),
            ("SHIPPER_LOG_FORMAT", "log-format"),
            ("SHIPPER_READY_FAILING_AFTER", "ready-failing-after"),
            ("SHIPPER_HEALTH_STUCK_AFTER", "health-stuck-after"),
            ("ALERT_TELEGRAM", "alert-telegram"),
            ("ALERT_TELEGRAM_API_URL", "alert-telegram-api-url"),
            ("ALERT_SLACK", "alert-slack"),
            ("ALERT_EMAIL", "alert-email"),
            ("ALERT_WEBHOOK", "alert-webhook"),
            ("KIBANA_URL", "kibana-url"),
            ("LOG_TIMEZONE", "log-timezone"),
            ("ALERT_DEFAULT_RULES", "alert-default-rules"),
            ("ALERT_REMINDER_INTERVAL", "alert-reminder-interval"),
            ("ALERT_RATE_LIMIT_PER_MINUTE", "alert-rate-limit-per-minute"),
            ("ALERT_UPTIME_INTERVAL", "alert-uptime-interval"),
            ("ALERT_UPTIME_DOWN_CHECKS", "alert-uptime-down-checks"),
            ("ALERT_LATENCY_THRESHOLD", "alert-latency-threshold"),
            ("ALERT_LATENCY_WINDOW", "alert-latency-window"),
        ] {
            assert!(envs.iter().any(|e| e == env), "{env}");
            assert!(longs.contains(&long), "--{long}");
        }
    }

    #[test]
    fn the_top_subcommand_still_parses() {
        let c = Cli::from_args(["shipper", "top", "--interval", "2s", "--once"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Top { once: true, interval, .. }) if interval == Duration::from_secs(2)
        ));
    }
}
