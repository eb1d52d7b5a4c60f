//! Process-wide logging set-up: the writer thread, the JSON layer and the level filter.

use std::path::PathBuf;
use std::time::Duration;

use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogOutput};
use crate::layer::JsonLayer;
use crate::line::{LineFormatter, ServiceIdentity};
use crate::writer::{self, LogSink, WriterConfig};

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    /// The log directory or file could not be opened.
    #[error("cannot open log file {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `LOG_LEVEL` is not a valid filter.
    #[error("invalid LOG_LEVEL {level:?}")]
    Filter {
        /// The rejected value.
        level: String,
        /// The cause.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// Another global subscriber was installed first.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled(#[from] tracing::subscriber::SetGlobalDefaultError),
}

/// Access to the running logger: flush at shutdown, dropped-line count for `/health`.
#[derive(Debug, Clone)]
pub struct LogHandle {
    sink: LogSink,
    file: Option<PathBuf>,
}

impl LogHandle {
    /// Lines lost since start-up.
    pub fn dropped_lines(&self) -> u64 {
        self.sink.dropped_lines()
    }

    /// Writes out everything queued so far; waits at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.sink.flush(timeout)
    }

    /// The active log file (`None` when lines go to stdout only).
    pub fn file(&self) -> Option<&PathBuf> {
        self.file.as_ref()
    }
}

/// Path of a service's log file in `config.dir`.
pub fn log_file_path(config: &LogConfig, service: &str) -> PathBuf {
    config.dir.join(format!("{service}.log"))
}

/// Builds the JSON layer and its writer thread without installing anything globally
/// (benchmarks and tests install it with `tracing::subscriber::with_default`).
pub fn build_layer(
    identity: &ServiceIdentity,
    config: &LogConfig,
) -> Result<(JsonLayer, LogHandle), LogInitError> {
    let formatter = LineFormatter::new(identity, config.timezone);
    let file = match config.output {
        LogOutput::File => Some(log_file_path(config, &identity.name)),
        LogOutput::Stdout => None,
    };
    let (sink, _thread) = writer::spawn(
        &WriterConfig {
            file: file.clone(),
            max_bytes: config.max_bytes,
            max_files: config.max_files,
            stdout: config.stdout || config.output == LogOutput::Stdout,
            buffer_lines: config.buffer_lines,
        },
        formatter.clone(),
    )
    .map_err(|source| LogInitError::Open {
        path: file.clone().unwrap_or_default(),
        source,
    })?;
    Ok((
        JsonLayer::new(formatter, sink.clone()).with_max_line_bytes(config.max_line_bytes),
        LogHandle { sink, file },
    ))
}

/// Installs the JSON logger as the process's global subscriber.
pub fn init(identity: &ServiceIdentity, config: &LogConfig) -> Result<LogHandle, LogInitError> {
    let filter = EnvFilter::try_new(&config.level).map_err(|source| LogInitError::Filter {
        level: config.level.clone(),
        source,
    })?;
    let (layer, handle) = build_layer(identity, config)?;
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(filter));
    tracing::subscriber::set_global_default(subscriber)?;
    Ok(handle)
}
