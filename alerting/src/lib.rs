//! Alerting: error bursts on the log stream and Heartbeat monitors down or slow, sent to
//! Telegram, Slack, e-mail and a JSON webhook.
//!
//! Kibana's Slack, e-mail and webhook connectors need a paid licence and it has no Telegram
//! connector at all, so the shipper alerts by itself. Three kinds of task, joined by bounded
//! queues so that none can slow the reading of log files:
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
//! # async fn example(settings: shipper::config::Settings) -> anyhow::Result<()> {
//! use shipper::alerting::AlertEngine;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! if let Some(alerts) = settings.alerts.clone() {
//!     let mut engine = AlertEngine::start(alerts, &settings.output, shutdown.clone())?;
//!     let tap = engine.take_tap(); // for FileServer::set_tap
//!     # drop(tap);
//!     // ... run until shutdown is cancelled, then:
//!     engine.shutdown(std::time::Duration::from_secs(5)).await;
//! }
//! # Ok(()) }
//! ```

pub mod channels;
pub mod config;
pub mod log_rules;
pub mod message;
pub mod notify;
pub mod tap;
pub mod telemetry;
pub mod uptime;
pub mod window;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{AlertArgs, AlertSettings, AlertsSection};

use crate::output::client::EsClient;
use crate::output::OutputConfig;
use crate::transform::DocumentTap;
use log_rules::LogRuleEvaluator;
use notify::{Dispatcher, RetryPolicy};
use tap::{AlertTap, LogEvent};
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
pub struct MessageContext {
    pub kibana_url: url::Url,
    pub timezone: chrono_tz::Tz,
    pub reminder_interval: Option<Duration>,
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
    /// uses the output's Elasticsearch settings (nodes, credentials, CA) with its own client.
    pub fn start(
        settings: AlertSettings,
        es: &OutputConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<AlertEngine> {
        Self::start_with(settings, es, shutdown, RetryPolicy::default())
    }

    /// [`AlertEngine::start`] with a given retry policy.
    pub fn start_with(
        settings: AlertSettings,
        es: &OutputConfig,
        shutdown: CancellationToken,
        retry: RetryPolicy,
    ) -> anyhow::Result<AlertEngine> {
        telemetry::describe();
        let (dispatcher, workers) =
            Dispatcher::start(&settings.targets, settings.rate_limit_per_minute, retry)
                .map_err(anyhow::Error::msg)
                .context("starting the alert channels")?;
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
                let mut cfg = es.clone();
                cfg.request_timeout = POLL_TIMEOUT.min(cfg.request_timeout);
                let client =
                    EsClient::new(&cfg).context("the uptime rules' Elasticsearch client")?;
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

    /// The tap for the file server; `None` when there are no log rules.
    pub fn take_tap(&mut self) -> Option<Box<dyn DocumentTap>> {
        self.tap.take().map(|t| Box::new(t) as Box<dyn DocumentTap>)
    }

    /// Stops the engine once reading has stopped: the log events still queued are
    /// evaluated, the poller ends (the shutdown token is cancelled), and the channel workers
    /// get until `deadline` to send what is pending; what is left then is abandoned.
    pub async fn shutdown(mut self, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        // The tap's sender went with the file server; if it was never installed, drop it so
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
    client: EsClient,
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
