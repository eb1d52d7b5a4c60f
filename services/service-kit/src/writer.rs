//! The non-blocking path from request threads to disk.
//!
//! Request threads append their formatted line to a shared in-memory batch
//! ([`LogSink::send`]): a short lock and a copy, no allocation, no system call. One writer
//! thread takes the whole batch every few milliseconds (or at once when it fills up) and
//! writes it to the rotating file (and stdout when asked). Waking the writer for every line
//! would cost a futex call per line on the request path; batching by time keeps the cost of
//! a line to a copy while lines still reach the file within milliseconds.
//!
//! A request never waits for the disk: when the batch already holds `buffer_lines` lines the
//! line is dropped and counted, and the writer thread writes a line reporting the count as
//! soon as it catches up. The total is also available from [`LogSink::dropped_lines`] (the
//! services put it in `/health`).

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::line::LineFormatter;
use crate::rotation::RotatingFile;

/// How long the writer lets lines gather before writing them while lines flow.
const WRITE_INTERVAL: Duration = Duration::from_millis(5);
/// How long it sleeps when the last look found nothing (a line then waits at most this).
const IDLE_INTERVAL: Duration = Duration::from_millis(50);

/// Where the writer thread puts lines.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The active log file; `None` writes no file (stdout only).
    pub file: Option<PathBuf>,
    /// Rotation size, `0` disables rotation.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub max_files: usize,
    /// Also write to stdout.
    pub stdout: bool,
    /// Lines the in-memory batch holds at most before new lines are dropped (and counted).
    pub buffer_lines: usize,
}

#[derive(Debug, Default)]
struct Pending {
    /// Whole lines, each ending in `\n`.
    bytes: Vec<u8>,
    lines: usize,
    flush_waiters: Vec<mpsc::Sender<()>>,
    /// Every sink is gone: write what is left and stop.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    dropped: AtomicU64,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // The batch stays consistent even if a holder panicked (appends are single calls).
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Closes the batch when the last sink is dropped, so the writer thread ends.
#[derive(Debug)]
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.wake.notify_one();
    }
}

/// The sending half, cheap to clone; held by the tracing layer.
#[derive(Debug, Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
}

impl LogSink {
    /// Queues one complete line (ending in `\n`) without blocking; a full batch drops and
    /// counts it.
    pub fn send(&self, line: &[u8]) {
        let mut pending = self.shared.lock();
        if pending.lines >= self.shared.capacity {
            drop(pending);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.bytes.extend_from_slice(line);
        pending.lines += 1;
        let half_full = pending.lines == self.shared.capacity / 2 + 1;
        drop(pending);
        if half_full {
            // Do not wait for the timer when the batch is filling up fast.
            self.shared.wake.notify_one();
        }
    }

    /// Lines lost since start-up (buffer full or write failure).
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits (up to `timeout`) until every line queued before this call is written and
    /// flushed. Returns whether it was.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack_tx, ack_rx) = mpsc::channel();
        self.shared.lock().flush_waiters.push(ack_tx);
        self.shared.wake.notify_one();
        ack_rx.recv_timeout(timeout).is_ok()
    }
}

/// Opens the outputs and starts the writer thread.
pub fn spawn(
    config: &WriterConfig,
    formatter: LineFormatter,
) -> io::Result<(LogSink, JoinHandle<()>)> {
    let file = match &config.file {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            Some(RotatingFile::open(
                path.clone(),
                config.max_bytes,
                config.max_files,
            )?)
        }
        None => None,
    };
    let capacity = config.buffer_lines.max(1);
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending {
            bytes: Vec::with_capacity(64 * 1024),
            ..Pending::default()
        }),
        wake: Condvar::new(),
        dropped: AtomicU64::new(0),
        capacity,
    });
    let worker = Worker {
        shared: Arc::clone(&shared),
        file,
        stdout: config.stdout,
        formatter,
        reported: 0,
        write_error_reported: false,
    };
    let handle = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || worker.run())?;
    let closer = Arc::new(Closer(Arc::clone(&shared)));
    Ok((
        LogSink {
            shared,
            _closer: closer,
        },
        handle,
    ))
}

struct Worker {
    shared: Arc<Shared>,
    file: Option<RotatingFile>,
    stdout: bool,
    formatter: LineFormatter,
    reported: u64,
    write_error_reported: bool,
}

impl Worker {
    fn run(mut self) {
        let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut interval = WRITE_INTERVAL;
        loop {
            let (waiters, closed) = {
                let pending = self.shared.lock();
                let (mut pending, _) = self
                    .shared
                    .wake
                    .wait_timeout_while(pending, interval, |p| {
                        !p.closed
                            && p.flush_waiters.is_empty()
                            && p.lines <= self.shared.capacity / 2
                    })
                    .unwrap_or_else(|p| p.into_inner());
                batch.clear();
                // Swap buffers: request threads go on appending to an empty one at once.
                std::mem::swap(&mut batch, &mut pending.bytes);
                pending.lines = 0;
                (std::mem::take(&mut pending.flush_waiters), pending.closed)
            };
            interval = if batch.is_empty() {
                IDLE_INTERVAL
            } else {
                WRITE_INTERVAL
            };
            let mut stdout_batch = Vec::new();
            for line in batch.split_inclusive(|b| *b == b'\n') {
                self.write(line, &mut stdout_batch);
            }
            self.report_drops(&mut stdout_batch);
            if !batch.is_empty() || !stdout_batch.is_empty() || !waiters.is_empty() {
                self.flush(&stdout_batch);
            }
            for ack in waiters {
                // The flusher may have given up waiting; nothing to do then.
                let _ = ack.send(());
            }
            if batch.capacity() > 4 * 1024 * 1024 {
                batch = Vec::with_capacity(64 * 1024);
            }
            if closed {
                return;
            }
        }
    }

    fn write(&mut self, line: &[u8], stdout_batch: &mut Vec<u8>) {
        if self.stdout {
            stdout_batch.extend_from_slice(line);
        }
        if let Some(file) = &mut self.file {
            if let Err(err) = file.write_line(line) {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.write_error_reported {
                    // The log file is the one place we cannot report this to.
                    eprintln!("cannot write log file {}: {err}", file.path().display());
                    self.write_error_reported = true;
                }
            }
        }
    }

    fn report_drops(&mut self, stdout_batch: &mut Vec<u8>) {
        let total = self.shared.dropped.load(Ordering::Relaxed);
        if total > self.reported {
            let report = self.formatter.dropped_lines_report(total - self.reported);
            self.reported = total;
            self.write(&report, stdout_batch);
        }
    }

    fn flush(&mut self, stdout_batch: &[u8]) {
        if let Some(file) = &mut self.file {
            if let Err(err) = file.flush() {
                if !self.write_error_reported {
                    eprintln!("cannot flush log file {}: {err}", file.path().display());
                    self.write_error_reported = true;
                }
            }
        }
        if !stdout_batch.is_empty() {
            let mut out = io::stdout().lock();
            // A closed stdout must not stop the file output.
            let _ = out.write_all(stdout_batch).and_then(|()| out.flush());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::ServiceIdentity;

    fn formatter() -> LineFormatter {
        LineFormatter::new(
            &ServiceIdentity {
                name: "svc".into(),
                version: "0".into(),
                environment: "test".into(),
                host: "h".into(),
            },
            chrono_tz::Asia::Tehran,
        )
    }

    fn config(path: PathBuf, buffer_lines: usize) -> WriterConfig {
        WriterConfig {
            file: Some(path),
            max_bytes: 0,
            max_files: 1,
            stdout: false,
            buffer_lines,
        }
    }

    #[test]
    fn queued_lines_are_in_the_file_after_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/svc.log");
        let (sink, _thread) = spawn(&config(path.clone(), 1024), formatter()).expect("spawn");
        for i in 0..100 {
            sink.send(format!("{{\"i\":{i}}}\n").as_bytes());
        }
        assert!(sink.flush(Duration::from_secs(5)));
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 100);
        assert_eq!(sink.dropped_lines(), 0);
    }

    #[test]
    fn overflowing_the_buffer_counts_drops_and_reports_them_in_a_later_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.log");
        // A channel of one line, filled far faster than a thread can drain it.
        let (sink, _thread) = spawn(&config(path.clone(), 1), formatter()).expect("spawn");
        let sent = 20_000u64;
        for i in 0..sent {
            sink.send(format!("{{\"i\":{i}}}\n").as_bytes());
        }
        assert!(sink.flush(Duration::from_secs(5)));
        let dropped = sink.dropped_lines();
        assert!(dropped > 0, "a one-line buffer must overflow");
        let text = std::fs::read_to_string(&path).expect("read");
        let mut written = 0u64;
        let mut reported = 0u64;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("whole JSON line");
            match v.get(crate::schema::LOG_DROPPED).and_then(|d| d.as_u64()) {
                Some(n) => reported += n,
                None => written += 1,
            }
        }
        assert_eq!(reported, dropped, "every dropped line is reported");
        assert_eq!(written + dropped, sent, "nothing lost silently");
    }
}
