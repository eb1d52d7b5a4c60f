//! The services' settings, read from the environment: logging ([`LogConfig`]) and serving
//! ([`ServerConfig`]). Each variable is declared here and nowhere else.
//!
//! Every knob has a default that suits `cargo run` on a laptop; Docker Compose overrides
//! `LOG_DIR` to point at the shared volume the shipper tails.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;

/// Directory of the log files (`<dir>/<service>.log`).
pub const ENV_LOG_DIR: &str = "LOG_DIR";
/// `1`/`true` also writes every line to stdout (besides the file).
pub const ENV_LOG_STDOUT: &str = "LOG_STDOUT";
/// Where lines go: `file` (`<LOG_DIR>/<service>.log`, the default) or `stdout` (no file).
pub const ENV_LOG_OUTPUT: &str = "LOG_OUTPUT";
/// IANA zone of `@timestamp`.
pub const ENV_LOG_TIMEZONE: &str = "LOG_TIMEZONE";
/// Size in bytes at which the file is rotated; `0` disables rotation.
pub const ENV_LOG_MAX_BYTES: &str = "LOG_MAX_BYTES";
/// Number of rotated files kept (`<service>.log.1` .. `<service>.log.N`).
pub const ENV_LOG_MAX_FILES: &str = "LOG_MAX_FILES";
/// Lines the in-memory buffer holds before new lines are dropped (and counted).
pub const ENV_LOG_BUFFER_LINES: &str = "LOG_BUFFER_LINES";
/// Level filter in `tracing-subscriber` `EnvFilter` syntax (`info`, `warn`, `off`, ...).
pub const ENV_LOG_LEVEL: &str = "LOG_LEVEL";
/// Value of `service.environment`.
pub const ENV_SERVICE_ENVIRONMENT: &str = "SERVICE_ENVIRONMENT";
/// Largest log line in bytes; a longer one is written clipped and flagged.
pub const ENV_LOG_MAX_LINE_BYTES: &str = "LOG_MAX_LINE_BYTES";

/// Listening port; overrides the service's default.
pub const ENV_PORT: &str = "PORT";
/// Listening address (default `0.0.0.0`, all interfaces, as a container needs).
pub const ENV_BIND_ADDR: &str = "BIND_ADDR";
/// Time limit for calls to other services, in milliseconds.
pub const ENV_DEPENDENCY_TIMEOUT_MS: &str = "DEPENDENCY_TIMEOUT_MS";
/// Time a client has to send a request's head, in milliseconds.
pub const ENV_HEADER_READ_TIMEOUT_MS: &str = "HEADER_READ_TIMEOUT_MS";
/// Time a connection may go without a byte either way, in milliseconds.
pub const ENV_IDLE_TIMEOUT_MS: &str = "IDLE_TIMEOUT_MS";
/// Time a request may take from its head to its answer, in milliseconds.
pub const ENV_REQUEST_TIMEOUT_MS: &str = "REQUEST_TIMEOUT_MS";
/// Connections served at once; more wait to be accepted.
pub const ENV_MAX_CONNECTIONS: &str = "MAX_CONNECTIONS";
/// Largest request body in bytes.
pub const ENV_MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
/// `1`/`0`: serve the demonstration endpoints (`/app-error`, `/business-error`,
/// `/system-error`). Default: on, except where `SERVICE_ENVIRONMENT` is `production`.
pub const ENV_DEMO_ENDPOINTS: &str = "DEMO_ENDPOINTS";

/// The environment in which the demonstration endpoints are off unless asked for.
pub const PRODUCTION: &str = "production";

/// Default zone: the users of the stack read their logs in Tehran time.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::Asia::Tehran;
const DEFAULT_MAX_BYTES: u64 = 50 * 1024 * 1024;
const DEFAULT_MAX_FILES: usize = 5;
const DEFAULT_BUFFER_LINES: usize = 16_384;
const DEFAULT_DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(2);
/// Long enough for a slow mobile client, short enough that a slowloris gets nowhere.
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Above the request timeout, so a handler waiting on a dependency is never taken for idle.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The services take small JSON documents; a payment is a few hundred bytes.
const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// A configuration value that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {var}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    var: &'static str,
    value: String,
    reason: String,
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogOutput {
    /// `<LOG_DIR>/<service>.log`, rotated by the service: the shared volume the shipper
    /// tails under Docker Compose.
    #[default]
    File,
    /// Standard output only, no file. Under Kubernetes the container runtime writes stdout
    /// to the node's `/var/log/pods/...` files, rotates them itself, and the shipper's
    /// DaemonSet reads them there; a file inside the container would be lost with it and
    /// read by nobody.
    Stdout,
}

impl LogOutput {
    fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "file" => Ok(LogOutput::File),
            "stdout" => Ok(LogOutput::Stdout),
            _ => Err(ConfigError {
                var: ENV_LOG_OUTPUT,
                value: value.to_owned(),
                reason: "expected `file` or `stdout`".to_owned(),
            }),
        }
    }
}

/// Where and how log lines are written.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `file` or `stdout`.
    pub output: LogOutput,
    /// Directory of `<service>.log` (unused with [`LogOutput::Stdout`]).
    pub dir: PathBuf,
    /// Also write to stdout (with [`LogOutput::File`]; with `Stdout` every line goes there anyway).
    pub stdout: bool,
    /// Zone of `@timestamp`.
    pub timezone: Tz,
    /// Rotation size; `0` disables rotation.
    pub max_bytes: u64,
    /// Rotated files kept (at least 1).
    pub max_files: usize,
    /// Capacity of the buffer between request threads and the writer thread, in lines.
    pub buffer_lines: usize,
    /// `EnvFilter` directive.
    pub level: String,
    /// `service.environment`.
    pub environment: String,
    /// Cap on a line's size in bytes.
    pub max_line_bytes: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            output: LogOutput::File,
            dir: PathBuf::from("logs"),
            stdout: false,
            timezone: DEFAULT_TIMEZONE,
            max_bytes: DEFAULT_MAX_BYTES,
            max_files: DEFAULT_MAX_FILES,
            buffer_lines: DEFAULT_BUFFER_LINES,
            level: "info".to_owned(),
            environment: "development".to_owned(),
            max_line_bytes: crate::layer::DEFAULT_MAX_LINE_BYTES,
        }
    }
}

impl LogConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let config = Self {
            output: match get(ENV_LOG_OUTPUT) {
                Some(v) => LogOutput::parse(&v)?,
                None => defaults.output,
            },
            dir: get(ENV_LOG_DIR).map(PathBuf::from).unwrap_or(defaults.dir),
            stdout: match get(ENV_LOG_STDOUT) {
                Some(v) => parse_bool(ENV_LOG_STDOUT, &v)?,
                None => defaults.stdout,
            },
            timezone: match get(ENV_LOG_TIMEZONE) {
                Some(v) => Tz::from_str(v.trim()).map_err(|e| ConfigError {
                    var: ENV_LOG_TIMEZONE,
                    value: v.clone(),
                    reason: e.to_string(),
                })?,
                None => defaults.timezone,
            },
            max_bytes: parse_num(ENV_LOG_MAX_BYTES, get(ENV_LOG_MAX_BYTES))?
                .unwrap_or(defaults.max_bytes),
            max_files: parse_num(ENV_LOG_MAX_FILES, get(ENV_LOG_MAX_FILES))?
                .unwrap_or(defaults.max_files),
            buffer_lines: parse_num(ENV_LOG_BUFFER_LINES, get(ENV_LOG_BUFFER_LINES))?
                .unwrap_or(defaults.buffer_lines),
            level: get(ENV_LOG_LEVEL).unwrap_or(defaults.level),
            environment: get(ENV_SERVICE_ENVIRONMENT).unwrap_or(defaults.environment),
            max_line_bytes: parse_num(ENV_LOG_MAX_LINE_BYTES, get(ENV_LOG_MAX_LINE_BYTES))?
                .unwrap_or(defaults.max_line_bytes),
        };
        if config.max_line_bytes < crate::layer::MIN_MAX_LINE_BYTES {
            return Err(ConfigError {
                var: ENV_LOG_MAX_LINE_BYTES,
                value: config.max_line_bytes.to_string(),
                reason: format!(
                    "a line must be allowed at least {} bytes",
                    crate::layer::MIN_MAX_LINE_BYTES
                ),
            });
        }
        if config.max_files == 0 {
            return Err(ConfigError {
                var: ENV_LOG_MAX_FILES,
                value: "0".to_owned(),
                reason: "at least one rotated file must be kept".to_owned(),
            });
        }
        if config.buffer_lines == 0 {
            return Err(ConfigError {
                var: ENV_LOG_BUFFER_LINES,
                value: "0".to_owned(),
                reason: "the buffer must hold at least one line".to_owned(),
            });
        }
        Ok(config)
    }
}

/// How the service listens and what it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Listening address.
    pub bind: IpAddr,
    /// Listening port; `None`: the service's own default.
    pub port: Option<u16>,
    /// Time limit of calls to other services.
    pub dependency_timeout: Duration,
    /// Time a client has to send a request's head, counted from when the connection is
    /// ready for it: a kept-alive connection waiting for its next request counts too.
    pub header_read_timeout: Duration,
    /// Time a connection may go without a byte either way, while reading a body or writing
    /// an answer.
    pub idle_timeout: Duration,
    /// Time from a request's head to its answer; later, the request is answered 408.
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Largest request body; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// Serve the demonstration endpoints.
    pub demo_endpoints: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: None,
            dependency_timeout: DEFAULT_DEPENDENCY_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            demo_endpoints: true,
        }
    }
}

impl ServerConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let millis = |var: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match parse_num::<u64>(var, get(var))? {
                Some(0) => Err(ConfigError {
                    var,
                    value: "0".to_owned(),
                    reason: "must be at least 1 millisecond".to_owned(),
                }),
                Some(ms) => Ok(Duration::from_millis(ms)),
                None => Ok(default),
            }
        };
        let at_least_one = |var: &'static str, default: usize| -> Result<usize, ConfigError> {
            match parse_num::<usize>(var, get(var))? {
                Some(0) => Err(ConfigError {
                    var,
                    value: "0".to_owned(),
                    reason: "must be at least 1".to_owned(),
                }),
                Some(n) => Ok(n),
                None => Ok(default),
            }
        };
        let production =
            get(ENV_SERVICE_ENVIRONMENT).is_some_and(|e| e.trim().eq_ignore_ascii_case(PRODUCTION));
        let config = Self {
            bind: parse_num(ENV_BIND_ADDR, get(ENV_BIND_ADDR))?.unwrap_or(defaults.bind),
            port: parse_num(ENV_PORT, get(ENV_PORT))?,
            dependency_timeout: millis(ENV_DEPENDENCY_TIMEOUT_MS, defaults.dependency_timeout)?,
            header_read_timeout: millis(ENV_HEADER_READ_TIMEOUT_MS, defaults.header_read_timeout)?,
            idle_timeout: millis(ENV_IDLE_TIMEOUT_MS, defaults.idle_timeout)?,
            request_timeout: millis(ENV_REQUEST_TIMEOUT_MS, defaults.request_timeout)?,
            max_connections: at_least_one(ENV_MAX_CONNECTIONS, defaults.max_connections)?,
            max_body_bytes: at_least_one(ENV_MAX_BODY_BYTES, defaults.max_body_bytes)?,
            demo_endpoints: match get(ENV_DEMO_ENDPOINTS) {
                Some(v) => parse_bool(ENV_DEMO_ENDPOINTS, &v)?,
                None => !production,
            },
        };
        if config.idle_timeout <= config.request_timeout {
            return Err(ConfigError {
                var: ENV_IDLE_TIMEOUT_MS,
                value: config.idle_timeout.as_millis().to_string(),
                reason: format!(
                    "must be longer than {ENV_REQUEST_TIMEOUT_MS} ({} ms): a request waiting \
                     for its answer sends nothing and would be cut as idle",
                    config.request_timeout.as_millis()
                ),
            });
        }
        Ok(config)
    }
}

fn parse_bool(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            var,
            value: value.to_owned(),
            reason: "expected 1/0, true/false, yes/no or on/off".to_owned(),
        }),
    }
}

fn parse_num<T>(var: &'static str, value: Option<String>) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value
        .map(|v| {
            v.trim().parse::<T>().map_err(|e| ConfigError {
                var,
                value: v.clone(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

/// The host name for `host.name`: `HOSTNAME` (set by Docker to the container id), then the
/// kernel's idea of it, then `unknown`.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn empty_environment_gives_tehran_time_and_rotation_defaults() {
        let c = LogConfig::from_lookup(lookup(&[])).expect("defaults are valid");
        assert_eq!(c.timezone, chrono_tz::Asia::Tehran);
        assert_eq!(c.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(c.max_files, DEFAULT_MAX_FILES);
        assert!(!c.stdout);
        assert_eq!(c.output, LogOutput::File);
        assert_eq!(c.level, "info");
    }

    #[test]
    fn log_output_is_file_or_stdout_and_anything_else_is_named() {
        let c = LogConfig::from_lookup(lookup(&[(ENV_LOG_OUTPUT, "stdout")])).expect("valid");
        assert_eq!(c.output, LogOutput::Stdout);
        let c = LogConfig::from_lookup(lookup(&[(ENV_LOG_OUTPUT, " File ")])).expect("valid");
        assert_eq!(c.output, LogOutput::File);
        let err = LogConfig::from_lookup(lookup(&[(ENV_LOG_OUTPUT, "syslog")]))
            .expect_err("not an output");
        assert!(err.to_string().contains(ENV_LOG_OUTPUT), "{err}");
    }

    #[test]
    fn every_variable_overrides_its_default() {
        let c = LogConfig::from_lookup(lookup(&[
            (ENV_LOG_DIR, "/var/log/didban"),
            (ENV_LOG_STDOUT, "1"),
            (ENV_LOG_TIMEZONE, "Europe/Berlin"),
            (ENV_LOG_MAX_BYTES, "1024"),
            (ENV_LOG_MAX_FILES, "3"),
            (ENV_LOG_BUFFER_LINES, "10"),
            (ENV_LOG_LEVEL, "warn"),
            (ENV_SERVICE_ENVIRONMENT, "production"),
        ]))
        .expect("valid values");
        assert_eq!(c.dir, PathBuf::from("/var/log/didban"));
        assert!(c.stdout);
        assert_eq!(c.timezone, chrono_tz::Europe::Berlin);
        assert_eq!((c.max_bytes, c.max_files, c.buffer_lines), (1024, 3, 10));
        assert_eq!(c.level, "warn");
        assert_eq!(c.environment, "production");
    }

    #[test]
    fn unknown_time_zone_is_an_error_naming_the_variable() {
        let err = LogConfig::from_lookup(lookup(&[(ENV_LOG_TIMEZONE, "Mars/Olympus")]))
            .expect_err("not an IANA zone");
        assert!(err.to_string().contains(ENV_LOG_TIMEZONE));
    }

    #[test]
    fn a_line_cap_below_the_minimum_is_an_error_naming_the_variable() {
        let err = LogConfig::from_lookup(lookup(&[(ENV_LOG_MAX_LINE_BYTES, "100")]))
            .expect_err("too small");
        assert!(err.to_string().contains(ENV_LOG_MAX_LINE_BYTES), "{err}");
        let c = LogConfig::from_lookup(lookup(&[(ENV_LOG_MAX_LINE_BYTES, "8192")])).expect("ok");
        assert_eq!(c.max_line_bytes, 8192);
    }

    #[test]
    fn server_defaults_bound_every_stage_of_a_connection() {
        let c = ServerConfig::from_lookup(lookup(&[])).expect("defaults are valid");
        assert_eq!(c, ServerConfig::default());
        assert!(c.idle_timeout > c.request_timeout);
        assert!(c.demo_endpoints);
    }

    #[test]
    fn every_server_variable_overrides_its_default() {
        let c = ServerConfig::from_lookup(lookup(&[
            (ENV_BIND_ADDR, "127.0.0.1"),
            (ENV_PORT, "9000"),
            (ENV_DEPENDENCY_TIMEOUT_MS, "100"),
            (ENV_HEADER_READ_TIMEOUT_MS, "200"),
            (ENV_IDLE_TIMEOUT_MS, "900"),
            (ENV_REQUEST_TIMEOUT_MS, "800"),
            (ENV_MAX_CONNECTIONS, "3"),
            (ENV_MAX_BODY_BYTES, "10"),
            (ENV_DEMO_ENDPOINTS, "0"),
        ]))
        .expect("valid values");
        assert_eq!(c.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.port, Some(9000));
        assert_eq!(c.dependency_timeout, Duration::from_millis(100));
        assert_eq!(c.header_read_timeout, Duration::from_millis(200));
        assert_eq!(c.idle_timeout, Duration::from_millis(900));
        assert_eq!(c.request_timeout, Duration::from_millis(800));
        assert_eq!((c.max_connections, c.max_body_bytes), (3, 10));
        assert!(!c.demo_endpoints);
    }

    #[test]
    fn demo_endpoints_are_off_in_production_unless_asked_for() {
        let off = ServerConfig::from_lookup(lookup(&[(ENV_SERVICE_ENVIRONMENT, "Production")]))
            .expect("valid");
        assert!(!off.demo_endpoints);
        let on = ServerConfig::from_lookup(lookup(&[
            (ENV_SERVICE_ENVIRONMENT, "production"),
            (ENV_DEMO_ENDPOINTS, "1"),
        ]))
        .expect("valid");
        assert!(on.demo_endpoints);
        let staging = ServerConfig::from_lookup(lookup(&[(ENV_SERVICE_ENVIRONMENT, "staging")]))
            .expect("valid");
        assert!(staging.demo_endpoints);
    }

    #[test]
    fn bad_server_values_name_their_variable() {
        for (var, value) in [
            (ENV_PORT, "http"),
            (ENV_BIND_ADDR, "localhost:80"),
            (ENV_HEADER_READ_TIMEOUT_MS, "0"),
            (ENV_MAX_CONNECTIONS, "0"),
            (ENV_MAX_BODY_BYTES, "-1"),
            (ENV_DEMO_ENDPOINTS, "maybe"),
            (ENV_IDLE_TIMEOUT_MS, "1000"),
        ] {
            let err =
                ServerConfig::from_lookup(lookup(&[(var, value)])).expect_err("invalid value");
            assert!(err.to_string().contains(var), "{var}: {err}");
        }
    }

    #[test]
    fn non_numeric_size_and_zero_file_count_are_rejected() {
        assert!(LogConfig::from_lookup(lookup(&[(ENV_LOG_MAX_BYTES, "10MB")])).is_err());
        assert!(LogConfig::from_lookup(lookup(&[(ENV_LOG_MAX_FILES, "0")])).is_err());
        assert!(LogConfig::from_lookup(lookup(&[(ENV_LOG_STDOUT, "maybe")])).is_err());
    }
}
