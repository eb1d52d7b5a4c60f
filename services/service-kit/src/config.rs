//! Logging configuration, read from the environment.
//!
//! Every knob has a default that suits `cargo run` on a laptop; Docker Compose overrides
//! `LOG_DIR` to point at the shared volume the shipper tails.

use std::path::PathBuf;
use std::str::FromStr;

use chrono_tz::Tz;

/// Directory of the log files (`<dir>/<service>.log`).
pub const ENV_LOG_DIR: &str = "LOG_DIR";
/// `1`/`true` also writes every line to stdout.
pub const ENV_LOG_STDOUT: &str = "LOG_STDOUT";
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

/// Default zone: the users of the stack read their logs in Tehran time.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::Asia::Tehran;
const DEFAULT_MAX_BYTES: u64 = 50 * 1024 * 1024;
const DEFAULT_MAX_FILES: usize = 5;
const DEFAULT_BUFFER_LINES: usize = 16_384;

/// A configuration value that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {var}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    var: &'static str,
    value: String,
    reason: String,
}

/// Where and how log lines are written.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Directory of `<service>.log`.
    pub dir: PathBuf,
    /// Also write to stdout.
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
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("logs"),
            stdout: false,
            timezone: DEFAULT_TIMEZONE,
            max_bytes: DEFAULT_MAX_BYTES,
            max_files: DEFAULT_MAX_FILES,
            buffer_lines: DEFAULT_BUFFER_LINES,
            level: "info".to_owned(),
            environment: "development".to_owned(),
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
        };
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
        assert_eq!(c.level, "info");
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
    fn non_numeric_size_and_zero_file_count_are_rejected() {
        assert!(LogConfig::from_lookup(lookup(&[(ENV_LOG_MAX_BYTES, "10MB")])).is_err());
        assert!(LogConfig::from_lookup(lookup(&[(ENV_LOG_MAX_FILES, "0")])).is_err());
        assert!(LogConfig::from_lookup(lookup(&[(ENV_LOG_STDOUT, "maybe")])).is_err());
    }
}
