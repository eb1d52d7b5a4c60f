//! Alerting for didban: error bursts on the log stream and Heartbeat monitors down or slow,
//! sent to Telegram, Slack, e-mail and a JSON webhook.
//!
//! Kibana's Slack, e-mail and webhook connectors need a paid licence and it has no Telegram
//! connector at all, so the stack alerts by itself, inside the log shipper. The engine has
//! two inputs and one kind of output:
//!
//! - **documents**: every log document the shipper reads, seen through the narrow [`feed`]
//!   contract ([`feed::TappedDocument`], [`feed::DocumentTap`]) on the reading thread;
//! - **Heartbeat's checks**: `_search` queries over `heartbeat-*`, made every few seconds by
//!   the engine's own small Elasticsearch client ([`QueryClientConfig`]);
//! - **channels**: Telegram, Slack, SMTP e-mail and a generic webhook, each with its own
//!   queue, rate limit and retries ([`notify`]).
//!
//! Three kinds of task, joined by bounded queues so that none can slow the reading of log
//! files:
//!
//! ```text
//! reading thread ── AlertTap (try_send) ──> log rule evaluator ──┐
//!                                                                ├─> Dispatcher ──> one worker
//! Elasticsearch <── uptime poller (every few seconds) ───────────┘    (try_send)     per channel
//!                                                                                  (rate limit,
//!                                                                                   retries)
//! ```
//!
//! ```no_run
//! # async fn example(settings: alerting::AlertSettings) -> Result<(), alerting::StartError> {
//! use alerting::{AlertEngine, QueryClientConfig};
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let es = QueryClientConfig::new(vec!["http://127.0.0.1:9200".parse().unwrap()]);
//! let mut engine = AlertEngine::start(settings, es, shutdown.clone())?;
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
mod tap;
mod telemetry;
mod uptime;
mod window;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{AlertSettings, LogRule, RuleFilter, UptimeSettings};
pub use query_client::{QueryAuth, QueryClientConfig, QueryClientError};
pub use sections::{sections, Alerts, Channels, Uptime};
pub use settings_kit::SettingError;
pub use tap::AlertTap;
pub use uptime::HEARTBEAT_FIELDS_USED;

use log_rules::LogRuleEvaluator;
use notify::{Dispatcher, RetryPolicy};
use query_client::QueryClient;
use tap::LogEvent;
use uptime::{PollError, UptimeEvaluator};

/// Documents waiting for the log evaluator. Matching documents are errors, a small share of
/// the stream; 4096 absorb a burst of several seconds at full reading speed.
const EVENT_QUEUE: usize = 4096;
/// How often firing log alerts are checked for resolution and reminders.
const TICK: Duration = Duration::from_millis(200);
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

/// The running alert engine.
pub struct AlertEngine {
    tap: Option<AlertTap>,
    dispatcher: Option<Arc<Dispatcher>>,
    evaluator: Option<JoinHandle<()>>,
    poller: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl AlertEngine {
    /// Starts the channel workers, the log rule evaluator and the uptime poller. The poller
    /// queries Elasticsearch as `es` says (nodes, credentials, CA), with a client of its own
    /// whose timeout is at most 10 s. Must be called within a Tokio runtime.
    pub fn start(
        settings: AlertSettings,
        es: QueryClientConfig,
        shutdown: CancellationToken,
    ) -> Result<AlertEngine, StartError> {
        Self::start_with(settings, es, shutdown, RetryPolicy::default())
    }

    /// [`AlertEngine::start`] with a given retry policy.
    pub fn start_with(
        settings: AlertSettings,
        mut es: QueryClientConfig,
        shutdown: CancellationToken,
        retry: RetryPolicy,
    ) -> Result<AlertEngine, StartError> {
        telemetry::describe();
        let (dispatcher, workers) =
            Dispatcher::start(&settings.targets, settings.rate_limit_per_minute, retry)
                .map_err(StartError::Channels)?;
        let ctx = MessageContext {
            kibana_url: settings.kibana_url.clone(),
            timezone: settings.timezone,
            reminder_interval: settings.reminder_interval,
        };
        let (tap, evaluator) = if settings.rules.is_empty() {
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel(EVENT_QUEUE);
            let tap = AlertTap::new(&settings.rules, tx);
            let evaluator = LogRuleEvaluator::new(settings.rules.clone(), ctx.clone());
            let task = tokio::spawn(run_log_rules(evaluator, rx, Arc::clone(&dispatcher)));
            (Some(tap), Some(task))
        };
        let poller = match settings.uptime.clone() {
            Some(uptime) => {
                es.timeout = POLL_TIMEOUT.min(es.timeout);
                let client = QueryClient::new(&es)?;
                let evaluator = UptimeEvaluator::new(uptime.clone(), ctx);
                Some(tokio::spawn(run_uptime(
                    client,
                    uptime,
                    evaluator,
                    Arc::clone(&dispatcher),
                    shutdown,
                )))
            }
            None => None,
        };
        let channels: Vec<String> = settings.targets.iter().map(|t| t.shown()).collect();
        tracing::info!(
            channels = ?channels,
            log_rules = settings.rules.len(),
            uptime_rules = settings.uptime.is_some(),
            "alerting on"
        );
        Ok(AlertEngine {
            tap,
            dispatcher: Some(dispatcher),
            evaluator,
            poller,
            workers,
        })
    }

    /// The tap for the reader of documents, to be moved to its thread; `None` when there
    /// are no log rules.
    pub fn take_tap(&mut self) -> Option<AlertTap> {
        self.tap.take()
    }

    /// Stops the engine once reading has stopped: the log events still queued are
    /// evaluated, the poller ends (the shutdown token is cancelled), and the channel workers
    /// get until `deadline` to send what is pending; what is left then is abandoned.
    pub async fn shutdown(mut self, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        // The tap's sender went with the reader; if it was never installed, drop it so
        // the evaluator sees the end of its queue.
        self.tap = None;
        for task in [self.evaluator.take(), self.poller.take()]
            .into_iter()
            .flatten()
        {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(until, task).await.is_err() {
                abort.abort();
            }
        }
        self.dispatcher = None;
        let mut abandoned = 0;
        for worker in self.workers.drain(..) {
            let abort = worker.abort_handle();
            if tokio::time::timeout_at(until, worker).await.is_err() {
                abort.abort();
                abandoned += 1;
            }
        }
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
    dispatcher: Arc<Dispatcher>,
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
            dispatcher.dispatch(n);
        }
    }
}

async fn run_uptime(
    client: QueryClient,
    settings: config::UptimeSettings,
    mut evaluator: UptimeEvaluator,
    dispatcher: Arc<Dispatcher>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut missing_reported = false;
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
        match polled {
            Ok(views) => {
                metrics::counter!(telemetry::UPTIME_QUERIES, "outcome" => "ok").increment(1);
                last_failure_log = None;
                if let Some(since) = failing_since.take() {
                    tracing::info!(after = ?since.elapsed(), "Heartbeat data readable again; uptime rules resume");
                }
                if views.is_empty() && !missing_reported {
                    missing_reported = true;
                    tracing::info!(index = %settings.index, "no Heartbeat checks yet; uptime rules wait for them");
                }
                for n in evaluator.evaluate(&views, Instant::now(), chrono::Utc::now()) {
                    dispatcher.dispatch(&n);
                }
            }
            Err(PollError::NoIndex(index)) => {
                metrics::counter!(telemetry::UPTIME_QUERIES, "outcome" => "no_data").increment(1);
                if !missing_reported {
                    missing_reported = true;
                    tracing::info!(%index, "no Heartbeat index yet; uptime rules wait for it");
                }
            }
            Err(PollError::Failed(reason)) => {
                metrics::counter!(telemetry::UPTIME_QUERIES, "outcome" => "error").increment(1);
                let now = Instant::now();
                failing_since.get_or_insert(now);
                // First failure, then at most one line every five minutes while it lasts.
                if last_failure_log
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(300))
                {
                    last_failure_log = Some(now);
                    tracing::warn!(error = %reason, "cannot read Heartbeat's data; uptime rules are paused until it works");
                }
            }
        }
    }
}
