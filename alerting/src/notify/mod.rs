//! Delivery: one worker task per destination, each with its own queue, rate limit and
//! retries, so a slow or failing channel delays only itself.
//!
//! The evaluators hand a [`Notification`] to the [`Dispatcher`], which never waits: it
//! `try_send`s a copy into the queue of every destination the rule notifies (a full queue
//! drops the copy, counted). A worker sends its messages in order (a resolution never
//! overtakes its firing), takes a rate-limit token first (a message without one is counted
//! as suppressed and the next message says how many were held back), and retries failures
//! that may pass (connection errors, timeouts, 429, 5xx) with capped exponential backoff and
//! full jitter, a bounded number of times; then it gives up with an error log and a metric.

mod backoff;
mod email;
mod rate_limit;
mod slack;
mod telegram;
mod webhook;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::channels::{ChannelKind, ChannelTarget};
use super::message::Notification;
use super::telemetry as m;
pub use backoff::Backoff;
use rate_limit::RateLimiter;

/// Messages waiting per destination; more than this in flight means the channel is down
/// and the oldest news is already late.
const QUEUE: usize = 256;

/// How often and how patiently a delivery is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    /// Five attempts over up to about a minute (1, 2, 4, 8 s ceilings, full jitter): long
    /// enough to ride out a restart of a webhook receiver or a brief network loss, short
    /// enough that the next state change is not held up behind a dead channel for long.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
        }
    }
}

/// Why a delivery failed; `message` never holds a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub message: String,
    /// Trying again may succeed.
    pub retryable: bool,
    /// The receiver asked us to wait this long (429 `Retry-After`, Telegram `retry_after`).
    pub retry_after: Option<Duration>,
}

impl DeliveryError {
    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }

    pub(crate) fn transient(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }

    /// The verdict for an HTTP status that is not a success.
    pub(crate) fn from_status(
        status: u16,
        retry_after: Option<Duration>,
        message: impl Into<String>,
    ) -> Self {
        DeliveryError {
            message: message.into(),
            retryable: status == 408 || status == 429 || status >= 500,
            retry_after,
        }
    }

    /// A reqwest failure, with the URL (which holds the secret) removed.
    pub(crate) fn from_reqwest(what: &str, err: reqwest::Error) -> Self {
        let err = err.without_url();
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            let part = s.to_string();
            if !text.contains(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            source = s.source();
        }
        DeliveryError::transient(format!("{what}: {text}"))
    }
}

/// The `Retry-After` header in seconds, as Slack and most webhooks send it.
pub(crate) fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// One destination's sender.
pub struct Sender(SenderKind);

enum SenderKind {
    Telegram(telegram::TelegramSender),
    Slack(slack::SlackSender),
    Email(email::EmailSender),
    Webhook(webhook::WebhookSender),
}

impl Sender {
    /// The sender of `target`; the HTTP channels share `http` (see [`http_client`]).
    pub fn new(target: &ChannelTarget, http: &reqwest::Client) -> Result<Sender, String> {
        Ok(Sender(match target {
            ChannelTarget::Telegram(t) => {
                SenderKind::Telegram(telegram::TelegramSender::new(t.clone(), http.clone()))
            }
            ChannelTarget::Slack(u) => {
                SenderKind::Slack(slack::SlackSender::new(u.clone(), http.clone()))
            }
            ChannelTarget::Email(e) => SenderKind::Email(email::EmailSender::new(e)?),
            ChannelTarget::Webhook(u) => {
                SenderKind::Webhook(webhook::WebhookSender::new(u.clone(), http.clone()))
            }
        }))
    }

    /// One attempt, without queue, rate limit or retry (what `shipper alert test` needs).
    pub async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        match &self.0 {
            SenderKind::Telegram(s) => s.send(n).await,
            SenderKind::Slack(s) => s.send(n).await,
            SenderKind::Email(s) => s.send(n).await,
            SenderKind::Webhook(s) => s.send(n).await,
        }
    }
}

/// The HTTP client of the HTTP channels: rustls, bounded time, and no redirects (a webhook
/// URL is a credential; following a redirect could hand the payload to someone else).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(format!(
            "{}/{}",
            schema::agent::TYPE,
            env!("CARGO_PKG_VERSION")
        ))
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Hands notifications to the destinations' queues without waiting.
pub struct Dispatcher {
    queues: Vec<(ChannelKind, String, mpsc::Sender<Notification>)>,
}

impl Dispatcher {
    /// Starts one worker per target; returns the dispatcher and the workers to await at
    /// shutdown (they end once every dispatcher clone is dropped and their queue is empty).
    pub fn start(
        targets: &[ChannelTarget],
        rate_per_minute: u32,
        retry: RetryPolicy,
    ) -> Result<(Arc<Dispatcher>, Vec<JoinHandle<()>>), String> {
        let http = http_client().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for target in targets {
            let sender = Sender::new(target, &http)?;
            let (tx, rx) = mpsc::channel(QUEUE);
            let limiter = RateLimiter::per_minute(rate_per_minute, Instant::now());
            workers.push(tokio::spawn(run_worker(
                target.kind(),
                target.shown(),
                sender,
                rx,
                limiter,
                retry,
            )));
            queues.push((target.kind(), target.shown(), tx));
        }
        Ok((Arc::new(Dispatcher { queues }), workers))
    }

    pub fn dispatch(&self, n: &Notification) {
        tracing::info!(
            rule = %n.rule,
            group = %n.group,
            status = n.status.label(),
            reminder = n.reminder,
            "alert {}",
            n.status.label()
        );
        for (kind, shown, tx) in &self.queues {
            if !n.goes_to(*kind) {
                continue;
            }
            if tx.try_send(n.clone()).is_err() {
                metrics::counter!(m::NOTIFICATIONS, "channel" => kind.label(), "outcome" => "dropped")
                    .increment(1);
                tracing::warn!(channel = %shown, rule = %n.rule, "notification queue full; message dropped");
            }
        }
    }
}

async fn run_worker(
    kind: ChannelKind,
    shown: String,
    sender: Sender,
    mut rx: mpsc::Receiver<Notification>,
    mut limiter: RateLimiter,
    retry: RetryPolicy,
) {
    let channel = kind.label();
    let mut suppressed = 0u64;
    while let Some(mut n) = rx.recv().await {
        if !limiter.try_take(Instant::now()) {
            suppressed += 1;
            metrics::counter!(m::NOTIFICATIONS, "channel" => channel, "outcome" => "suppressed")
                .increment(1);
            if suppressed == 1 {
                tracing::warn!(channel = %shown, "alert rate limit reached; messages are held back and counted until it refills");
            }
            continue;
        }
        n.suppressed_before = suppressed;
        suppressed = 0;
        let started = Instant::now();
        let outcome = deliver(&sender, &n, retry, channel).await;
        metrics::histogram!(m::DELIVERY_SECONDS, "channel" => channel)
            .record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(()) => {
                metrics::counter!(m::NOTIFICATIONS, "channel" => channel, "outcome" => "sent")
                    .increment(1);
                tracing::debug!(channel = %shown, rule = %n.rule, group = %n.group, "notification sent");
            }
            Err(e) => {
                metrics::counter!(m::NOTIFICATIONS, "channel" => channel, "outcome" => "failed")
                    .increment(1);
                tracing::error!(channel = %shown, rule = %n.rule, group = %n.group, status = n.status.label(), error = %e, "notification not delivered");
            }
        }
    }
}

/// Sends `n`, retrying what may pass; the last error when it gives up.
pub async fn deliver(
    sender: &Sender,
    n: &Notification,
    retry: RetryPolicy,
    channel: &'static str,
) -> Result<(), DeliveryError> {
    let mut attempt = 0u32;
    loop {
        let err = match sender.send(n).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        attempt += 1;
        if !err.retryable || attempt >= retry.attempts {
            return Err(err);
        }
        let wait = err
            .retry_after
            .map(|d| d.min(Duration::from_secs(60)))
            .unwrap_or_else(|| retry.backoff.delay(attempt - 1));
        metrics::counter!(m::RETRIES, "channel" => channel).increment(1);
        tracing::warn!(channel, attempt, error = %err, retry_in = ?wait, "notification failed; retrying");
        tokio::time::sleep(wait).await;
    }
}
