//! Shipper throughput, CPU and memory, with rsyslog and syslog-ng as references, in one run.
//!
//! `cargo bench -p shipper --bench throughput [-- --lines N --rate R --latency-secs S
//! --skip-rsyslog --skip-syslog-ng]`
//!
//! 1. Writes N realistic service lines (~460 B on average, 5% with a stack trace).
//! 2. Ships them from the start of the file into the Elasticsearch-compatible test server in
//!    blackhole mode, with the `shipper` binary at default settings: wall time, CPU-seconds
//!    of the shipper process (from /proc), peak RSS (VmHWM).
//! 3. Does the same with Debian's rsyslog (imfile -> omelasticsearch, bulk mode) on the same
//!    file, if `rsyslogd` and its omelasticsearch module are installed.
//! 4. Does the same with Debian's syslog-ng (file() -> elasticsearch-http()), unpacked by
//!    `benches/peers/install-syslog-ng` into `target/peers/syslog-ng` (or `SYSLOG_NG_ROOT`):
//!    Debian's syslog-ng conflicts with its rsyslog, so it is not installed system-wide.
//! 5. Writes at a steady R lines/s for S seconds and reports line-written-to-acknowledged
//!    latency (p50/p99), observed as the moment the test server holds the line.
//!
//! 6. Ships the same lines as a container runtime writes them (CRI: `<time> stdout F <line>`,
//!    kubelet's `/var/log/pods` format) and compares it with the JSON file's row.
//!
//! Figures are printed as a table, with the shipper's ratios against each peer measured in
//! the same run. A peer is only timed on delivering every line: the test server counts the
//! documents it accepted, and a peer that stops short (or stalls for a minute) gets a row
//! saying how many lines it delivered instead of figures.
//! `SHIPPER_*` variables in the bench's environment are passed to the shipper, to compare
//! settings (e.g. `SHIPPER_BATCH_MAX_DOCS=500`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use support::{
    cpu_seconds, line, peak_rss_mib, received, shipper_command, start_server, wait_for_delivery,
    write_file,
};

struct Args {
    lines: usize,
    rate: usize,
    latency_secs: u64,
    skip_rsyslog: bool,
    skip_syslog_ng: bool,
}

fn args() -> Args {
    let mut a = Args {
        lines: 1_000_000,
        rate: 20_000,
        latency_secs: 15,
        skip_rsyslog: false,
        skip_syslog_ng: false,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).and_then(|v| v.parse::<usize>().ok());
        match (argv[i].as_str(), next) {
            ("--lines", Some(v)) => a.lines = v,
            ("--rate", Some(v)) => a.rate = v,
            ("--latency-secs", Some(v)) => a.latency_secs = v as u64,
            ("--skip-rsyslog", _) => {
                a.skip_rsyslog = true;
                i += 1;
                continue;
            }
            ("--skip-syslog-ng", _) => {
                a.skip_syslog_ng = true;
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

struct Run {
    name: &'static str,
    /// The name in the ratios line.
    short: &'static str,
    secs: f64,
    cpu: f64,
    rss: f64,
    lines: usize,
    /// Documents the test server accepted.
    delivered: usize,
}

impl Run {
    fn complete(&self) -> bool {
        self.delivered >= self.lines
    }
    fn lines_per_sec(&self) -> f64 {
        self.lines as f64 / self.secs
    }
    fn cpu_per_million(&self) -> f64 {
        self.cpu * 1_000_000.0 / self.lines as f64
    }
}

/// A peer that stops delivering for this long is stopped and reported as incomplete.
const STALL: Duration = Duration::from_secs(60);

/// Waits for `child` to deliver `lines` documents into `server`, then reads its figures
/// (before stopping it, while /proc still has them).
fn measure(
    (name, short): (&'static str, &'static str),
    server: &es_test_server::EsTestServer,
    child: &mut std::process::Child,
    started: Instant,
    lines: usize,
    timeout: Duration,
) -> Run {
    let delivered = wait_for_delivery(server, lines, child, timeout, STALL);
    let run = Run {
        name,
        short,
        secs: started.elapsed().as_secs_f64(),
        cpu: cpu_seconds(child.id()),
        rss: peak_rss_mib(child.id()),
        lines,
        delivered,
    };
    let _ = child.kill();
    let _ = child.wait();
    run
}

fn run_shipper(dir: &Path, input: &Path, lines: usize) -> Run {
    let server = start_server();
    let started = Instant::now();
    let mut child = shipper_command(
        &server.url(),
        &input.display().to_string(),
        &dir.join("shipper-data"),
    )
    .spawn()
    .expect("start the shipper");
    measure(
        ("didban shipper", "shipper"),
        &server,
        &mut child,
        started,
        lines,
        Duration::from_secs(600),
    )
}

/// The lines of `json` as containerd writes them, into `cri`: each one record, whole (the
/// lines are shorter than the runtime's 16 KiB buffer).
fn write_cri_file(json: &Path, cri: &Path) {
    use std::io::BufRead;
    let input = std::io::BufReader::new(File::open(json).expect("the JSON input"));
    let mut out = std::io::BufWriter::new(File::create(cri).expect("the CRI input"));
    for line in input.split(b'\n') {
        let line = line.expect("read");
        out.write_all(b"2026-12-02T15:30:00.123456789Z stdout F ")
            .and_then(|()| out.write_all(&line))
            .and_then(|()| out.write_all(b"\n"))
            .expect("write");
    }
    out.flush().expect("write");
}

/// The CRI row: the same lines, framed as kubelet's files hold them.
fn run_cri(dir: &Path, json: &Path, lines: usize) -> Option<Run> {
    let cri_dir = dir.join("cri");
    std::fs::create_dir_all(&cri_dir).ok()?;
    let cri = cri_dir.join("bench.log");
    write_cri_file(json, &cri);
    let mut run = run_shipper(&cri_dir, &cri, lines);
    let _ = std::fs::remove_file(&cri);
    run.name = "didban shipper, CRI input";
    run.short = "CRI input";
    Some(run)
}

fn rsyslog_available() -> Option<PathBuf> {
    let rsyslogd = PathBuf::from("/usr/sbin/rsyslogd");
    let module = Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so");
    (rsyslogd.exists() && module.exists()).then_some(rsyslogd)
}

fn run_rsyslog(rsyslogd: &Path, dir: &Path, input: &Path, lines: usize) -> Option<Run> {
    let server = start_server();
    let work = dir.join("rsyslog-work");
    std::fs::create_dir_all(&work).ok()?;
    let port = server.addr().port();
    let conf = dir.join("rsyslog.conf");
    let text = format!(
        r#"global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile")
module(load="omelasticsearch")
template(name="doc" type="list" option.json="on") {{
  constant(value="{{\"message\":\"") property(name="msg") constant(value="\"}}")
}}
ruleset(name="ship" queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="2000") {{
  action(type="omelasticsearch" server="127.0.0.1" serverport="{port}" searchIndex="rsyslog-bench"
         template="doc" bulkmode="on" maxbytes="10m" esVersion.major="8"
         action.resumeRetryCount="-1")
}}
input(type="imfile" File="{input}" Tag="bench" ruleset="ship" freshStartTail="off")
"#,
        work = work.display(),
        input = input.display()
    );
    std::fs::write(&conf, text).ok()?;
    let started = Instant::now();
    let mut child = Command::new(rsyslogd)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslog.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    Some(measure(
        ("rsyslog (imfile -> omelasticsearch)", "rsyslog"),
        &server,
        &mut child,
        started,
        lines,
        Duration::from_secs(900),
    ))
}

/// syslog-ng unpacked from Debian's packages by `benches/peers/install-syslog-ng`.
struct SyslogNg {
    root: PathBuf,
    modules: PathBuf,
}

impl SyslogNg {
    /// `SYSLOG_NG_ROOT`, else `<target dir>/peers/syslog-ng`, where the script unpacks it;
    /// the reason it cannot be used otherwise.
    fn find() -> Result<Self, String> {
        let root = match std::env::var_os("SYSLOG_NG_ROOT") {
            Some(root) => PathBuf::from(root),
            None => target_dir().join("peers").join("syslog-ng"),
        };
        let binary = root.join("usr/sbin/syslog-ng");
        if !binary.exists() {
            return Err(format!("no {}", binary.display()));
        }
        // The module directory is named after the version (3.38 in Debian 12).
        let modules = std::fs::read_dir(root.join("usr/lib/syslog-ng"))
            .map_err(|e| format!("{}: {e}", root.join("usr/lib/syslog-ng").display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.join("libhttp.so").exists())
            .ok_or_else(|| format!("no http module (libhttp.so) under {}", root.display()))?;
        Ok(Self { root, modules })
    }

    fn command(&self) -> Command {
        let libs = [
            "usr/lib/syslog-ng",
            "usr/lib/x86_64-linux-gnu",
            "lib/x86_64-linux-gnu",
        ]
        .map(|dir| self.root.join(dir).display().to_string())
        .join(":");
        let mut cmd = Command::new(self.root.join("usr/sbin/syslog-ng"));
        cmd.env("LD_LIBRARY_PATH", libs)
            .arg(format!("--module-path={}", self.modules.display()));
        cmd
    }
}

/// The cargo target directory this bench runs from (`<target>/release/deps/throughput-*`).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// syslog-ng reading the file raw (`flags(no-parse)`: the line is the message) and sending
/// each line as it is, as the document (`template("${MESSAGE}")`: the lines are JSON objects),
/// through its `elasticsearch-http()` destination: the cheapest work syslog-ng can do per line,
/// so the fastest peer is measured at its fastest. (Wrapping each line in
/// `$(format-json message=...)`, as rsyslog's row does, doubled its CPU per line here.) Batching as its guide recommends for throughput:
/// batches as large as the other two send (2000 lines, at most 10 MiB like rsyslog's, a
/// partial one after 250 ms like the shipper's), more workers (the guide's way to scale the
/// destination; 4, the driver's default, beat 1 and 2 in a sweep on 2 cores), a source
/// window above batch-lines x workers (the guide's condition for batches to fill) and a
/// destination queue above the window, with flow control, so a full queue holds reading
/// back instead of dropping lines. `SYSLOG_NG_SOURCE_OPTIONS` and
/// `SYSLOG_NG_DESTINATION_OPTIONS` replace these option lists, to compare settings.
fn run_syslog_ng(peer: &SyslogNg, dir: &Path, input: &Path, lines: usize) -> Option<Run> {
    let server = start_server();
    let work = dir.join("syslog-ng-work");
    std::fs::create_dir_all(&work).ok()?;
    let port = server.addr().port();
    // To compare settings, the bench's environment may replace either list of options.
    let source_options = std::env::var("SYSLOG_NG_SOURCE_OPTIONS")
        .unwrap_or_else(|_| "follow-freq(1) log-iw-size(20000) log-fetch-limit(1000)".into());
    let destination_options = std::env::var("SYSLOG_NG_DESTINATION_OPTIONS").unwrap_or_else(|_| {
        "batch-lines(2000) batch-bytes(10485760) batch-timeout(250) workers(4) log-fifo-size(40000)"
            .into()
    });
    let conf = work.join("syslog-ng.conf");
    let text = format!(
        r#"@version: 3.38
@define include-path "{include}"
@include "scl/elasticsearch/elastic-http.conf"
source s_bench {{
  file("{input}" flags(no-parse) {source_options});
}};
destination d_bench {{
  elasticsearch-http(
    url("http://127.0.0.1:{port}/_bulk") index("syslog-ng-bench") type("")
    template("${{MESSAGE}}")
    {destination_options}
  );
}};
log {{ source(s_bench); destination(d_bench); flags(flow-control); }};
"#,
        include = peer.root.join("usr/share/syslog-ng/include").display(),
        input = input.display(),
    );
    std::fs::write(&conf, text).ok()?;
    let stderr = File::create(work.join("stderr.log")).ok()?;
    let started = Instant::now();
    let mut child = peer
        .command()
        .args(["-F", "--no-caps", "--stderr"])
        .arg(format!("--cfgfile={}", conf.display()))
        .arg(format!(
            "--persist-file={}",
            work.join("syslog-ng.persist").display()
        ))
        .arg(format!(
            "--pidfile={}",
            work.join("syslog-ng.pid").display()
        ))
        .arg(format!(
            "--control={}",
            work.join("syslog-ng.ctl").display()
        ))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| eprintln!("syslog-ng: cannot start: {e}"))
        .ok()?;
    let run = measure(
        ("syslog-ng (file -> elasticsearch-http)", "syslog-ng"),
        &server,
        &mut child,
        started,
        lines,
        Duration::from_secs(900),
    );
    if !run.complete() {
        let log = std::fs::read_to_string(work.join("stderr.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        eprintln!("syslog-ng's last messages:");
        for line in tail.iter().rev() {
            eprintln!("  {line}");
        }
    }
    Some(run)
}

/// Writes `rate` lines/s for `secs` and returns (p50, p99, max) write-to-stored latency in ms.
fn latency(dir: &Path, rate: usize, secs: u64) -> Option<(f64, f64, f64)> {
    let server = start_server();
    let logs = dir.join("latency");
    std::fs::create_dir_all(&logs).ok()?;
    let path = logs.join("payment.log");
    File::create(&path).ok()?;
    let mut child = shipper_command(
        &server.url(),
        &format!("{}/*.log", logs.display()),
        &dir.join("latency-data"),
    )
    .spawn()
    .ok()?;
    std::thread::sleep(Duration::from_millis(500));
    let total = rate * secs as usize;
    let written_at: Arc<Vec<std::sync::atomic::AtomicU64>> = Arc::new(
        (0..total)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect(),
    );
    let base = Instant::now();
    let written = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let written_at = Arc::clone(&written_at);
        let written = Arc::clone(&written);
        let path = path.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open");
            let per_tick = (rate / 1000).max(1);
            let mut n = 0;
            let mut buf = String::new();
            while n < total {
                let due = base + Duration::from_micros((n as u64 * 1_000_000) / rate as u64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                buf.clear();
                let upto = (n + per_tick).min(total);
                for i in n..upto {
                    line(i, &mut buf);
                }
                f.write_all(buf.as_bytes()).expect("write");
                let t = base.elapsed().as_micros() as u64;
                for slot in written_at.iter().take(upto).skip(n) {
                    slot.store(t, Ordering::Relaxed);
                }
                n = upto;
                written.store(n, Ordering::Release);
            }
        })
    };
    // Lines of one file arrive in order, so "the server holds k lines" dates lines 0..k.
    let mut stored_at = vec![0u64; total];
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(secs + 60);
    while seen < total && Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let now = received(&server).min(total);
        let t = base.elapsed().as_micros() as u64;
        for slot in stored_at.iter_mut().take(now).skip(seen) {
            *slot = t;
        }
        seen = seen.max(now);
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = writer.join();
    let _ = child.kill();
    let _ = child.wait();
    if seen < total {
        eprintln!("latency run: {seen} of {total} lines arrived");
        return None;
    }
    let mut lat: Vec<f64> = (0..total)
        .map(|i| {
            (stored_at[i].saturating_sub(written_at[i].load(Ordering::Relaxed))) as f64 / 1000.0
        })
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Some((pct(0.50), pct(0.99), lat[lat.len() - 1]))
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("bench.log");
    let bytes = write_file(&input, a.lines);
    println!(
        "input: {} lines, {:.1} MiB, {:.0} B/line on average, 5% with stack traces",
        a.lines,
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / a.lines as f64
    );
    let mut runs = vec![run_shipper(dir.path(), &input, a.lines)];
    if a.skip_rsyslog {
        println!("rsyslog: skipped (--skip-rsyslog)");
    } else if let Some(rsyslogd) = rsyslog_available() {
        runs.extend(run_rsyslog(&rsyslogd, dir.path(), &input, a.lines));
    } else {
        println!("rsyslog: not installed (apt-get install rsyslog rsyslog-elasticsearch) - no reference run");
    }
    if a.skip_syslog_ng {
        println!("syslog-ng: skipped (--skip-syslog-ng)");
    } else {
        match SyslogNg::find() {
            Ok(peer) => runs.extend(run_syslog_ng(&peer, dir.path(), &input, a.lines)),
            Err(why) => println!(
                "syslog-ng: not found ({why}; shipper/benches/peers/install-syslog-ng unpacks it) - no reference run"
            ),
        }
    }
    println!();
    println!(
        "{:<40} {:>12} {:>16} {:>14}",
        "", "lines/s", "CPU-s per 1M", "peak RSS MiB"
    );
    for r in &runs {
        if r.complete() {
            println!(
                "{:<40} {:>12.0} {:>16.2} {:>14.1}",
                r.name,
                r.lines_per_sec(),
                r.cpu_per_million(),
                r.rss
            );
        } else {
            println!(
                "{:<40} did not deliver every line: {} of {} in {:.0} s, no figures",
                r.name, r.delivered, r.lines, r.secs
            );
        }
    }
    let cri = run_cri(dir.path(), &input, a.lines);
    match (
        cri.filter(Run::complete),
        runs.first().filter(|r| r.complete()),
    ) {
        (Some(c), Some(json)) => {
            println!(
                "{:<40} {:>12.0} {:>16.2} {:>14.1}",
                c.name,
                c.lines_per_sec(),
                c.cpu_per_million(),
                c.rss
            );
            println!(
                "CRI input vs the JSON file: {:.2}x lines/s, {:.2}x CPU-seconds per line",
                c.lines_per_sec() / json.lines_per_sec(),
                c.cpu_per_million() / json.cpu_per_million()
            );
        }
        _ => eprintln!("the shipper did not deliver every line of the CRI input"),
    }
    if let [ours, references @ ..] = runs.as_slice() {
        if ours.complete() && !references.is_empty() {
            println!();
        }
        for reference in references
            .iter()
            .filter(|r| ours.complete() && r.complete())
        {
            println!(
                "ratios vs {}: {:.1}x lines/s, {:.3}x CPU-seconds per line ({:.1}x less), {:.2}x peak RSS",
                reference.short,
                ours.lines_per_sec() / reference.lines_per_sec(),
                ours.cpu_per_million() / reference.cpu_per_million(),
                reference.cpu_per_million() / ours.cpu_per_million(),
                ours.rss / reference.rss
            );
        }
    }
    if a.latency_secs > 0 {
        match latency(dir.path(), a.rate, a.latency_secs) {
            Some((p50, p99, max)) => println!(
                "\nlatency at a steady {} lines/s for {} s, line written -> stored: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                a.rate, a.latency_secs, p50, p99, max
            ),
            None => println!("\nlatency run failed"),
        }
    }
}
