//! `shipper`: didban's log shipper. See `shipper --help` for every setting.

use metrics_exporter_prometheus::PrometheusBuilder;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use shipper::config::{Cli, Command, LogFormat, Settings};

fn main() -> std::process::ExitCode {
    let cli = match Cli::from_command_line() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("shipper: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match &cli.command {
        Some(Command::Top {
            addr,
            interval,
            once,
        }) => return top(addr, *interval, *once),
        Some(Command::Validate(args)) => return shipper::commands::validate::run(&cli, args),
        Some(Command::Verify(args)) => return shipper::commands::verify::run(&cli, args),
        Some(Command::DeadLetters(args)) => {
            return shipper::commands::dead_letters::run(&cli, args)
        }
        Some(Command::Alert(args)) => return shipper::commands::alert::run(&cli, args),
        None => {}
    }
    let settings = match Settings::load(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shipper: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(settings.log_format);
    fix_mmap_threshold();
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("shipper-io")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shipper: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli, settings));
    // A blocking task stuck in a system call (the reading thread's join, see the pipeline)
    // must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("shipper: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `shipper top`: see [`shipper::observe::top`].
fn top(addr: &str, interval: std::time::Duration, once: bool) -> std::process::ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(shipper::observe::top::run(addr, interval, once)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shipper top: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ],
        )?
        .install_recorder()?;
    let shutdown = CancellationToken::new();
    // Every stage has its own deadline at shutdown (the output's is the longest); this is
    // the last resort, so that SIGTERM always ends the process.
    let hard_deadline = settings.shutdown_deadline() + std::time::Duration::from_secs(15);
    tokio::spawn(stop_on_signal(shutdown.clone(), hard_deadline));
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "shipper starting");
    shipper::reload::run_reloading(cli, settings, prometheus, shutdown).await
}

/// Cancels `shutdown` at the first SIGTERM or SIGINT, and exits the process if it has not
/// stopped `hard_deadline` later.
async fn stop_on_signal(shutdown: CancellationToken, hard_deadline: std::time::Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals; stop with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(
        signal = name,
        "stopping: reading stops, in-flight requests finish, checkpoints are saved"
    );
    shutdown.cancel();
    let guard = std::thread::Builder::new()
        .name("shutdown-guard".into())
        .spawn(move || {
            std::thread::sleep(hard_deadline);
            tracing::error!(
                after_s = hard_deadline.as_secs(),
                "still not stopped; exiting now (lines not acknowledged are sent again at the next start)"
            );
            std::process::exit(1);
        });
    if let Err(e) = guard {
        tracing::warn!(error = %e, "cannot start the shutdown guard");
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("SHIPPER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(false)
            .fmt_fields(shipper::observe::text_log::EscapingFields::default())
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Keeps glibc's malloc from raising its mmap threshold. By default each large block freed
/// raises the threshold to its size (up to 32 MiB), so after the first large blocks (a
/// checkpoint snapshot of thousands of files, the first request bodies) every later one
/// comes from the heap, between the small per-file allocations, and the heap's high-water
/// mark stays in the RSS for good. A fixed threshold keeps large blocks in mappings of their
/// own, given back to the system when freed (request bodies are reused, see `batch`, so
/// this costs no fresh pages per batch). Measured 10 s after shipping 10,000 files: 44 MiB
/// of RSS without this and the body pool, 38 MiB with both. Through `libc`: one call, not worth a crate.
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const THRESHOLD: libc::c_int = 256 * 1024;
        // SAFETY: mallopt only sets a parameter of the allocator; called before other threads.
        if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD) } != 1 {
            tracing::debug!("cannot set the allocator's mmap threshold");
        }
    }
}

/// Raises the soft limit of open files to the hard one. The shipper keeps a descriptor per
/// file it follows (until the file is idle for `SHIPPER_CLOSE_INACTIVE`), and the usual soft
/// limit of 1024 (a container's default) would make it fail to open files on a host with
/// thousands of them, while the hard limit is usually far higher. Written with `libc`
/// directly: two calls, not worth a crate.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    let (before, after) = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        let before = limit.rlim_cur;
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                limit.rlim_cur = before;
            }
        }
        (before, limit.rlim_cur)
    };
    if after != before {
        tracing::info!(from = before, to = after, "raised the limit of open files");
    } else if after < 4096 {
        tracing::warn!(limit = after, "the limit of open files is low; files beyond it cannot be followed until others are closed");
    }
}
