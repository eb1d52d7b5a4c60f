//! Alerting for didban: error bursts on the log stream, Heartbeat monitors down or slow, and
//! the shipper's own troubles (Elasticsearch unreachable, shipping stalled, dead letters,
//! Heartbeat silent), sent to Telegram, Slack, e-mail and a JSON webhook.
//!
//! Kibana's Slack, e-mail and webhook connectors need a paid licence and it has no Telegram
//! connector at all, so the stack alerts by itself, inside the log shipper. The engine has
//! three inputs and one kind of output:
//!
//! - **documents**: every log document the shipper reads, seen through the narrow [`feed`]
//!   contract ([`feed::TappedDocument`], [`feed::DocumentTap`]) on the reading thread;
//! - **Heartbeat's checks**: `_search` queries over `heartbeat-*`, made every few seconds by
//!   the engine's own small Elasticsearch client ([`QueryClientConfig`]);
//! - **the shipper's vitals**: its last answer from Elasticsearch, the age of its oldest
//!   unacknowledged line, its dead letters, through the narrow [`vitals`] contract;
//! - **channels**: Telegram, Slack, SMTP e-mail and a generic webhook, each with its own
//!   queue, rate limit and retries ([`notify`]).
//!
//! Four kinds of task, joined by bounded queues so that none can slow the reading of log
//! files; none needs Elasticsearch to start, so alerting starts with the process:
//!
//! ```text
//! reading thread ── AlertTap (try_send) ──> log rule evaluator ──┐
//! Elasticsearch <── uptime poller (every few seconds) ───────────┼─> Outbox ──> one worker
//! Vitals, GET / probe ──> rules on the shipper (every 0.5 s) ────┘   │  (try_send) per channel
//!                                                                    └─> state.json
//! ```
//!
//! Every message also updates the alert state saved in the data directory, so a restart
//! neither announces a firing alert again nor loses its resolution (see `state.rs`).
//!
//! ```no_run
//! # async fn example(settings: alerting::AlertSettings) -> Result<(), alerting::StartError> {
//! use alerting::{AlertEngine, Embedding, QueryClientConfig};
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let es = QueryClientConfig::new(vec!["http://127.0.0.1:9200".parse().unwrap()]);
//! let embedding = Embedding {
//!     vitals: None, // the embedding program's `Arc<dyn alerting::vitals::Vitals>`
//!     state_dir: Some("/var/lib/didban-shipper/alerts".into()),
//!     name: "host-1".into(),
//! };
//! let mut engine = AlertEngine::start(settings, es, embedding, shutdown.clone())?;
//! let tap = engine.take_tap(); // for the reader of documents
//! # drop(tap);
//! // ... run until shutdown is cancelled, then:
//! engine.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! Settings are declared once in [`Alerts`]: each field is both an `ALERT_*` variable (the
//! struct is flattened into the embedding program's command line) and a key of the
//! `[alerts]` file section, layered by `settings-kit` and resolved by
//! [`AlertSettings::resolve`]; the README
//! next to this crate explains the rules, the channels and the webhook's schema.

pub mod channels;
mod config;
pub mod feed;
mod log_rules;
pub mod message;
pub mod notify;
mod query_client;
mod sections;
mod self_rules;
pub mod silences;
mod state;
mod tap;
mod telemetry;
mod uptime;
pub mod vitals;
mod window;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{AlertSettings, LogRule, RuleFilter, SelfMonitoringSettings, UptimeSettings};
pub use query_client::{QueryAuth, QueryClientConfig, QueryClientError};
pub use sections::{sections, Alerts, Channels, SelfMonitoring, Uptime};
pub use settings_kit::SettingError;
pub use tap::AlertTap;
pub use uptime::HEARTBEAT_FIELDS_USED;

use log_rules::LogRuleEvaluator;
use message::{AlertSource, Notification};
use notify::{Dispatcher, RetryPolicy};
use query_client::QueryClient;
use self_rules::{HeartbeatPoll, HeartbeatSilence, Reading, SelfEvaluator};
use state::AlertStore;
use tap::LogEvent;
use uptime::{PollError, UptimeEvaluator};
use vitals::Vitals;

/// Documents waiting for the log evaluator. Matching documents are errors, a small share of
/// the stream; 4096 absorb a burst of several seconds at full reading speed.
const EVENT_QUEUE: usize = 4096;
/// How often firing log alerts are checked for resolution and reminders.
const TICK: Duration = Duration::from_millis(200);
/// How often the rules on the shipper read its vitals: cheap (a few atomics and one short
/// lock), and fine enough for thresholds of a second and more.
const SELF_TICK: Duration = Duration::from_millis(500);
/// Timeout of one query of Heartbeat's data: a poll must not outlive its interval by much.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// What every message needs besides the alert itself.
#[derive(Debug, Clone)]
pub(crate) struct MessageContext {
    pub(crate) kibana_url: url::Url,
    pub(crate) timezone: chrono_tz::Tz,
    pub(crate) reminder_interval: Option<Duration>,
}

/// The engine cannot start: a configuration problem, reported at start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("starting the alert channels: {0}")]
    Channels(String),
    #[error("the uptime rules' Elasticsearch client: {0}")]
    QueryClient(#[from] QueryClientError),
}

/// What the embedding program gives the engine besides its settings.
#[derive(Clone, Default)]
pub struct Embedding {
    /// How its delivery is doing, for the rules on the shipper (shipping stalled, dead
    /// letters; its answers from Elasticsearch count for "Elasticsearch unreachable").
    /// `None`: only the engine's own queries tell whether Elasticsearch answers.
    pub vitals: Option<Arc<dyn Vitals>>,
    /// Where the alert state is kept across restarts (`state.json`); `None`: not kept.
    pub state_dir: Option<PathBuf>,
    /// What the rules on the shipper call this instance in their messages (its host name).
    pub name: String,
}

/// Every message goes out through here: to the channels, and into the saved state.
struct Outbox {
    dispatcher: Arc<Dispatcher>,
    store: Arc<AlertStore>,
    /// `None` without a state directory (nowhere to read silences from).
    silencer: Option<silences::Silencer>,
}

impl Outbox {
    fn send(&self, n: &Notification) {
        self.store.record(n);
        if self.silencer.as_ref().is_some_and(|s| s.hold(n)) {
            return;
        }
        self.dispatcher.dispatch(n);
    }

    /// Sends what silences that ended were holding.
    fn release_silenced(&self) {
        if let Some(silencer) = &self.silencer {
            for n in silencer.release() {
                tracing::info!(rule = %n.rule, group = %n.group, "silence over: the alert is announced");
                self.dispatcher.dispatch(&n);
            }
        }
    }
}

/// How often ended silences are looked for.
const SILENCE_CHECK: Duration = Duration::from_secs(1);

async fn release_silenced(outbox: Arc<Outbox>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SILENCE_CHECK) => outbox.release_silenced(),
        }
    }
}

/// The running alert engine.
pub struct AlertEngine {
    tap: Option<AlertTap>,
    outbox: Option<Arc<Outbox>>,
    store: Arc<AlertStore>,
    tasks: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl AlertEngine {
    /// Starts the channel workers, the log rule evaluator, the uptime poller and the rules
    /// on the shipper, with the alerts saved in `embedding.state_dir` taken back. The poller
    /// and the "Elasticsearch unreachable" probe query Elasticsearch as `es` says (nodes,
    /// credentials, CA), with a client of their own whose timeout is at most 10 s; they
    /// need nothing of Elasticsearch to start, so the engine can start with the process.
    /// Must be called within a Tokio runtime.
    pub fn start(
        settings: AlertSettings,
        es: QueryClientConfig,
        embedding: Embedding,
        shutdown: CancellationToken,
    ) -> Result<AlertEngine, StartError> {
        Self::start_with(settings, es, embedding, shutdown, RetryPolicy::default())
    }

    /// [`AlertEngine::start`] with a given retry policy.
    pub fn start_with(
        settings: AlertSettings,
        mut es: QueryClientConfig,
        embedding: Embedding,
        shutdown: CancellationToken,
        retry: RetryPolicy,
    ) -> Result<AlertEngine, StartError> {
        telemetry::describe();
        let now = Instant::now();
        let self_rules = settings.self_monitoring.clone();
        let client = if settings.uptime.is_some() || self_rules.elasticsearch_unreachable.is_some()
        {
            es.timeout = POLL_TIMEOUT.min(es.timeout);
            Some(Arc::new(QueryClient::new(&es)?))
        } else {
            None
        };
        let (dispatcher, workers) =
            Dispatcher::start(&settings.targets, settings.rate_limit_per_minute, retry)
                .map_err(StartError::Channels)?;
        let (store, saved) = AlertStore::open(embedding.state_dir.clone());
        let outbox = Arc::new(Outbox {
            dispatcher,
            store: Arc::clone(&store),
            silencer: embedding.state_dir.clone().map(silences::Silencer::new),
        });
        let ctx = MessageContext {
            kibana_url: settings.kibana_url.clone(),
            timezone: settings.timezone,
            reminder_interval: settings.reminder_interval,
        };

        let mut log_rules = (!settings.rules.is_empty())
            .then(|| LogRuleEvaluator::new(settings.rules.clone(), ctx.clone()));
        let mut uptime = settings
            .uptime
            .clone()
            .map(|u| UptimeEvaluator::new(u, ctx.clone()));
        let mut heartbeat = match (&settings.uptime, self_rules.heartbeat_silent) {
            (Some(u), Some(threshold)) => Some(HeartbeatSilence::new(
                threshold,
                u.index.clone(),
                ctx.clone(),
                embedding.name.clone(),
                now,
            )),
            _ => None,
        };
        let mut own = (self_rules.elasticsearch_unreachable.is_some()
            || self_rules.shipping_stalled.is_some()
            || self_rules.dead_letters_resolve_after.is_some())
        .then(|| SelfEvaluator::new(self_rules.clone(), ctx.clone(), embedding.name.clone(), now));

        // The alerts firing when the process stopped: each evaluator takes back its own; a
        // rule still true continues silently, one no longer true sends its resolution.
        let mut restored = 0usize;
        for a in &saved {
            let taken = match a.source() {
                Some(AlertSource::Logs) => log_rules.as_mut().is_some_and(|e| e.restore(a, now)),
                Some(AlertSource::Uptime | AlertSource::Latency) => {
                    uptime.as_mut().is_some_and(|e| e.restore(a))
                }
                Some(AlertSource::Shipper) => {
                    own.as_mut().is_some_and(|e| e.restore(a, now))
                        || heartbeat.as_mut().is_some_and(|e| e.restore(a, now))
                }
                None => false,
            };
            if taken {
                restored += 1;
            } else {
                tracing::info!(rule = %a.rule, group = %a.group, "a saved firing alert is dropped: its rule is not configured any more");
                store.forget(&a.rule, &a.group);
            }
        }
        if restored > 0 {
            tracing::info!(
                alerts = restored,
                "alerts firing before the restart taken back; they are not announced again"
            );
        }

        let mut tasks = Vec::new();
        if outbox.silencer.is_some() {
            tasks.push(tokio::spawn(release_silenced(
                Arc::clone(&outbox),
                shutdown.clone(),
            )));
        }
        let tap = match log_rules {
            Some(evaluator) => {
                let (tx, rx) = mpsc::channel(EVENT_QUEUE);
                tasks.push(tokio::spawn(run_log_rules(
                    evaluator,
                    rx,
                    Arc::clone(&outbox),
                )));
                Some(AlertTap::new(&settings.rules, tx))
            }
            None => None,
        };
        if let (Some(evaluator), Some(uptime_settings), Some(client)) =
            (uptime, settings.uptime.clone(), client.clone())
        {
            tasks.push(tokio::spawn(run_uptime(
                client,
                uptime_settings,
                evaluator,
                heartbeat,
                Arc::clone(&outbox),
                shutdown.clone(),
            )));
        }
        if let Some(evaluator) = own {
            // Probe when nothing answered for a quarter of the threshold, so an idle output
            // (no lines to ship) is not taken for an unreachable cluster.
            let probe_every = self_rules
                .elasticsearch_unreachable
                .map(|t| (t / 4).clamp(Duration::from_millis(250), Duration::from_secs(15)));
            tasks.push(tokio::spawn(run_self_monitoring(
                evaluator,
                embedding.vitals.clone(),
                client.zip(probe_every),
                Arc::clone(&outbox),
                shutdown,
            )));
        }
        let channels: Vec<String> = settings.targets.iter().map(|t| t.shown()).collect();
        tracing::info!(
            channels = ?channels,
            log_rules = settings.rules.len(),
            uptime_rules = settings.uptime.is_some(),
            self_monitoring = ?self_rules,
            "alerting on"
        );
        Ok(AlertEngine {
            tap,
            outbox: Some(outbox),
            store,
            tasks,
            workers,
        })
    }

    /// The tap for the reader of documents, to be moved to its thread; `None` when there
    /// are no log rules.
    pub fn take_tap(&mut self) -> Option<AlertTap> {
        self.tap.take()
    }

    /// Stops the engine once reading has stopped: the log events still queued are
    /// evaluated, the poller and the rules on the shipper end (the shutdown token is
    /// cancelled), the channel workers get until `deadline` to send what is pending (what
    /// is left then is abandoned), and the alert state is saved.
    pub async fn shutdown(mut self, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        // The tap's sender went with the reader; if it was never installed, drop it so
        // the evaluator sees the end of its queue.
        self.tap = None;
        for task in self.tasks.drain(..) {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(until, task).await.is_err() {
                abort.abort();
            }
        }
        self.outbox = None;
        let mut abandoned = 0;
        for worker in self.workers.drain(..) {
            let abort = worker.abort_handle();
            if tokio::time::timeout_at(until, worker).await.is_err() {
                abort.abort();
                abandoned += 1;
            }
        }
        let store = Arc::clone(&self.store);
        let _ = tokio::task::spawn_blocking(move || store.save()).await;
        if abandoned > 0 {
            metrics::counter!(telemetry::NOTIFICATIONS, "channel" => "all", "outcome" => "abandoned")
                .increment(abandoned);
            tracing::warn!(
                channels = abandoned,
                "alert notifications still pending at the shutdown deadline were abandoned"
            );
        } else {
            tracing::info!("alerting stopped; pending notifications sent");
        }
    }
}

async fn run_log_rules(
    mut evaluator: LogRuleEvaluator,
    mut rx: mpsc::Receiver<LogEvent>,
    outbox: Arc<Outbox>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let sent = tokio::select! {
            event = rx.recv() => match event {
                Some(event) => evaluator.observe(event, Instant::now(), chrono::Utc::now()),
                // Reading has stopped and every queued event was evaluated.
                None => break,
            },
            _ = tick.tick() => evaluator.tick(Instant::now(), chrono::Utc::now()),
        };
        for n in &sent {
            outbox.send(n);
        }
    }
}

async fn run_uptime(
    client: Arc<QueryClient>,
    settings: config::UptimeSettings,
    mut evaluator: UptimeEvaluator,
    mut heartbeat: Option<HeartbeatSilence>,
    outbox: Arc<Outbox>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut missing_reported = false;
    let mut ever_read = false;
    let mut failing_since: Option<Instant> = None;
    let mut last_failure_log: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let polled = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = uptime::poll(&client, &settings) => r,
        };
        let freshness = match &polled {
            Ok(views) => HeartbeatPoll::Answered(
                views
                    .iter()
                    .flat_map(|v| v.checks.iter().filter_map(|c| c.at))
                    .max(),
            ),
            Err(PollError::NoIndex(_)) => HeartbeatPoll::Answered(None),
            Err(PollError::Failed(_)) => HeartbeatPoll::Failed,
        };
        match polled {
            Ok(views) => {
                metrics::counter!(telemetry::UPTIME_QUERIES, "outcome" => "ok").increment(1);
                ever_read = true;
                last_failure_log = None;
                if let Some(since) = failing_since.take() {
                    tracing::info!(after = ?since.elapsed(), "Heartbeat data readable again; uptime rules resume");
                }
                if views.is_empty() && !missing_reported {
                    missing_reported = true;
                    tracing::info!(index = %settings.index, "no Heartbeat checks yet; uptime rules wait for them");
                }
                for n in evaluator.evaluate(&views, Instant::now(), chrono::Utc::now()) {
                    outbox.send(&n);
                }
            }
            Err(PollError::NoIndex(index)) => {
                metrics::counter!(telemetry::UPTIME_QUERIES, "outcome" => "no_data").increment(1);
                ever_read = true;
                if !missing_reported {
                    missing_reported = true;
                    tracing::info!(%index, "no Heartbeat index yet; uptime rules wait for it");
                }
            }
            Err(PollError::Failed(reason)) => {
                metrics::counter!(telemetry::UPTIME_QUERIES, "outcome" => "error").increment(1);
                let now = Instant::now();
                failing_since.get_or_insert(now);
                if !ever_read {
                    // Elasticsearch is not there yet (the process starts before it, or it is
                    // down): the output says so already, and "Elasticsearch unreachable"
                    // alerts on it; the poll just tries again.
                    tracing::debug!(error = %reason, "cannot read Heartbeat's data yet");
                } else if last_failure_log
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(300))
                {
                    // First failure, then at most one line every five minutes while it lasts.
                    last_failure_log = Some(now);
                    tracing::warn!(error = %reason, "cannot read Heartbeat's data; uptime rules are paused until it works");
                }
            }
        }
        if let Some(h) = heartbeat.as_mut() {
            for n in h.evaluate(freshness, Instant::now(), chrono::Utc::now()) {
                outbox.send(&n);
            }
        }
    }
}

async fn run_self_monitoring(
    mut evaluator: SelfEvaluator,
    vitals: Option<Arc<dyn Vitals>>,
    probe: Option<(Arc<QueryClient>, Duration)>,
    outbox: Arc<Outbox>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(SELF_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probing: Option<JoinHandle<()>> = None;
    let mut last_probe: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let mut r = Reading::default();
        if let Some(v) = &vitals {
            r.last_answer = v.last_elasticsearch_answer();
            r.oldest_unacknowledged = v.oldest_unacknowledged();
            r.documents_settled = v.documents_settled();
            r.dead_letters = v.dead_letters_written();
            r.dead_letter_dir = v.dead_letter_dir();
            r.last_error = v.last_output_error();
        }
        if let Some((client, every)) = &probe {
            r.last_answer = r.last_answer.max(client.last_answer());
            let quiet = r
                .last_answer
                .is_none_or(|t| now.saturating_duration_since(t) >= *every);
            let due = last_probe.is_none_or(|t| now.saturating_duration_since(t) >= *every);
            let idle = probing.as_ref().is_none_or(JoinHandle::is_finished);
            if quiet && due && idle {
                last_probe = Some(now);
                let client = Arc::clone(client);
                probing = Some(tokio::spawn(async move {
                    // The answer, if any, is recorded by the client; a failure is what the
                    // rule is about and needs no log line of its own.
                    if let Err(e) = client.probe().await {
                        tracing::debug!(error = %e, "Elasticsearch did not answer the probe");
                    }
                }));
            }
        }
        for n in evaluator.evaluate(&r, now, chrono::Utc::now()) {
            outbox.send(&n);
        }
    }
    if let Some(p) = probing {
        p.abort();
    }
}
