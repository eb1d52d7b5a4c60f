//! The non-blocking path from request threads to disk.
//!
//! Request threads format a line and hand it to a bounded channel ([`LogSink::send`]); one
//! writer thread drains the channel into the rotating file (and stdout when asked). A request
//! never waits for the disk: when the channel is full the line is dropped and counted, and the
//! writer thread writes a line reporting the count as soon as it catches up. The total is also
//! available from [`LogSink::dropped_lines`] (the services put it in `/health`).

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::line::LineFormatter;
use crate::rotation::RotatingFile;

enum Message {
    Line(Vec<u8>),
    Flush(mpsc::Sender<()>),
}

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
    /// Channel capacity in lines.
    pub buffer_lines: usize,
}

/// The sending half, cheap to clone; held by the tracing layer.
#[derive(Debug, Clone)]
pub struct LogSink {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl LogSink {
    /// Queues one complete line without blocking; a full buffer drops and counts it.
    pub fn send(&self, line: Vec<u8>) {
        match self.tx.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines lost since start-up (buffer full or write failure).
    pub fn dropped_lines(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (up to `timeout`) until every line queued before this call is written and
    /// flushed. Returns whether it was.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack_tx, ack_rx) = mpsc::channel();
        if self.tx.send(Message::Flush(ack_tx)).is_err() {
            return false;
        }
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
    let (tx, rx) = mpsc::sync_channel(config.buffer_lines.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    let worker = Worker {
        rx,
        file,
        stdout: config.stdout,
        formatter,
        dropped: Arc::clone(&dropped),
        reported: 0,
        write_error_reported: false,
    };
    let handle = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || worker.run())?;
    Ok((LogSink { tx, dropped }, handle))
}

struct Worker {
    rx: Receiver<Message>,
    file: Option<RotatingFile>,
    stdout: bool,
    formatter: LineFormatter,
    dropped: Arc<AtomicU64>,
    reported: u64,
    write_error_reported: bool,
}

impl Worker {
    fn run(mut self) {
        let mut pending_acks = Vec::new();
        // Ends when every sender is gone (the process is shutting down).
        while let Ok(first) = self.rx.recv() {
            let mut stdout_batch = Vec::new();
            self.handle(first, &mut stdout_batch, &mut pending_acks);
            // Drain what is already queued before flushing: one flush per burst, not per line.
            while let Ok(next) = self.rx.try_recv() {
                self.handle(next, &mut stdout_batch, &mut pending_acks);
            }
            self.report_drops(&mut stdout_batch);
            self.flush(&stdout_batch);
            for ack in pending_acks.drain(..) {
                // The flusher may have given up waiting; nothing to do then.
                let _ = ack.send(());
            }
        }
    }

    fn handle(
        &mut self,
        message: Message,
        stdout_batch: &mut Vec<u8>,
        acks: &mut Vec<mpsc::Sender<()>>,
    ) {
        match message {
            Message::Line(line) => self.write(&line, stdout_batch),
            Message::Flush(ack) => acks.push(ack),
        }
    }

    fn write(&mut self, line: &[u8], stdout_batch: &mut Vec<u8>) {
        if self.stdout {
            stdout_batch.extend_from_slice(line);
        }
        if let Some(file) = &mut self.file {
            if let Err(err) = file.write_line(line) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.write_error_reported {
                    // The log file is the one place we cannot report this to.
                    eprintln!("cannot write log file {}: {err}", file.path().display());
                    self.write_error_reported = true;
                }
            }
        }
    }

    fn report_drops(&mut self, stdout_batch: &mut Vec<u8>) {
        let total = self.dropped.load(Ordering::Relaxed);
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
            sink.send(format!("{{\"i\":{i}}}\n").into_bytes());
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
            sink.send(format!("{{\"i\":{i}}}\n").into_bytes());
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
