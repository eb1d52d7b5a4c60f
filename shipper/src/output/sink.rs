//! The Elasticsearch output as a whole: startup, the delivery loop, shutdown.
//!
//! ```text
//! batches (mpsc) ──> run ──spawns up to max_in_flight──> deliver(batch)
//!                                                          │ loop: BulkService::send
//!                                                          │   Done / RetryAll / Unreachable /
//!                                                          │   RetryItems / Split
//!                                                          └─> Acknowledge (per safe document)
//! ```
//!
//! Each delivery owns one batch until every document in it is safe, and has at most one
//! request in flight, so `max_in_flight` deliveries are `max_in_flight` concurrent requests.
//! While a delivery retries, it holds its slot, so no new batch is taken: combined with the
//! reader's memory budget, an outage stops reading instead of filling memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::EsClient;
use super::config::OutputConfig;
use super::dead_letter::DeadLetterWriter;
use super::health::{self, ClusterInfo, StartupError};
use super::log_throttle::LogThrottle;
use super::retry::Backoff;
use super::service::{BulkService, Next};
use super::telemetry::{OutputStats, Telemetry};
use super::templates::{self, TEMPLATES};
use crate::batch::{Acknowledge, Batch};

/// The Elasticsearch output: build it, [`prepare`](Self::prepare) it, then [`run`](Self::run) it.
pub struct ElasticsearchOutput {
    config: OutputConfig,
    client: EsClient,
    dead_letters: DeadLetterWriter,
    telemetry: Telemetry,
    /// The cluster has searchable failure stores (learnt by [`Self::prepare`]).
    failure_store: AtomicBool,
}

impl ElasticsearchOutput {
    /// Checks the configuration, builds the HTTP client (reading the CA file) and opens the
    /// dead-letter directory. Every error names the setting or path at fault.
    pub fn new(config: OutputConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let client = EsClient::new(&config)?;
        let dead_letters =
            DeadLetterWriter::open(&config.dead_letter_dir, config.dead_letter_max_bytes)
                .with_context(|| {
                    format!(
                        "cannot open the dead-letter directory {}",
                        config.dead_letter_dir.display()
                    )
                })?;
        Ok(ElasticsearchOutput {
            config,
            client,
            dead_letters,
            telemetry: Telemetry::default(),
            failure_store: AtomicBool::new(false),
        })
    }

    /// Counters for the periodic summary line; keep a clone before calling `run`.
    pub fn stats(&self) -> Arc<OutputStats> {
        Arc::clone(self.telemetry.stats())
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.config.retry_initial, self.config.retry_max)
    }

    /// Waits for Elasticsearch (see [`health::wait_until_ready`]), then installs the embedded
    /// templates. Must succeed before [`run`](Self::run): no document may reach a data stream
    /// before its template exists.
    pub async fn prepare(&self, shutdown: &CancellationToken) -> Result<ClusterInfo, StartupError> {
        let info =
            health::wait_until_ready(&self.client, self.backoff(), &self.telemetry, shutdown)
                .await?;
        tracing::info!(
            node = %info.node,
            cluster = %info.cluster_name,
            version = %info.version,
            "connected to Elasticsearch {} (cluster {}) at {}",
            info.version,
            info.cluster_name,
            info.node
        );
        self.failure_store.store(
            super::replay::supports_failure_store(&info.version),
            Ordering::Relaxed,
        );
        if self.config.discover_nodes {
            discover_and_log(&self.client).await;
        }
        templates::install_templates(
            &self.client,
            TEMPLATES,
            self.backoff(),
            &self.telemetry,
            shutdown,
        )
        .await?;
        Ok(info)
    }

    /// Delivers batches until the channel is closed and every batch is delivered, or until
    /// `shutdown_deadline` after `shutdown` is cancelled.
    ///
    /// Every document that becomes safe is passed to `acks`. At the deadline, deliveries still
    /// running are abandoned: their remaining documents are not acknowledged, so they are read
    /// and sent again after a restart, where they are looked up first (the replay window).
    /// Returns an error only if a delivery panicked (its documents would otherwise never be
    /// acknowledged; restarting is the safe answer).
    pub async fn run(
        self,
        mut batches: Receiver<Batch>,
        acks: Arc<dyn Acknowledge>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let backoff = self.backoff();
        let max_in_flight = self.config.max_in_flight;
        let shutdown_deadline = self.config.shutdown_deadline;
        let service = Arc::new(BulkService {
            client: self.client,
            gzip: self.config.compression,
            telemetry: self.telemetry,
            dead_letters: Arc::new(Mutex::new(self.dead_letters)),
            acks,
            failure_store: self.failure_store.load(Ordering::Relaxed),
            warnings: LogThrottle::default(),
            answered: tokio::sync::watch::Sender::new(0),
        });
        // Dropped (aborted) when `run` returns, however it returns.
        let _discovery = self.config.discover_nodes.then(|| {
            AbortOnDrop(tokio::spawn(rediscover(
                Arc::clone(&service),
                self.config.discover_interval,
            )))
        });
        let mut deliveries: JoinSet<()> = JoinSet::new();
        let mut channel_open = true;
        let mut deadline: Option<Instant> = None;

        loop {
            if !channel_open && deliveries.is_empty() {
                return Ok(());
            }
            tokio::select! {
                biased;
                Some(joined) = deliveries.join_next(), if !deliveries.is_empty() => {
                    if let Err(err) = joined {
                        if err.is_panic() {
                            deliveries.abort_all();
                            anyhow::bail!("a bulk delivery panicked: {err}");
                        }
                    }
                }
                _ = shutdown.cancelled(), if deadline.is_none() => {
                    deadline = Some(Instant::now() + shutdown_deadline);
                    tracing::info!(
                        in_flight = deliveries.len(),
                        "shutting down: giving in-flight bulk requests {:?} to finish",
                        shutdown_deadline
                    );
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    if !deliveries.is_empty() {
                        tracing::warn!(
                            abandoned = deliveries.len(),
                            "shutdown deadline reached: abandoning {} bulk delivery(ies); their \
                             documents are not acknowledged and will be sent again after restart",
                            deliveries.len()
                        );
                    }
                    deliveries.abort_all();
                    while deliveries.join_next().await.is_some() {}
                    return Ok(());
                }
                batch = batches.recv(), if channel_open && deliveries.len() < max_in_flight => {
                    match batch {
                        Some(batch) if !batch.is_empty() => {
                            deliveries.spawn(deliver(Arc::clone(&service), batch, backoff));
                        }
                        Some(_) => {}
                        None => channel_open = false,
                    }
                }
            }
        }
    }
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Asks the cluster for its nodes again every `interval` (see [`super::discovery`]).
async fn rediscover(service: Arc<BulkService>, interval: std::time::Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate, and `prepare` has just asked.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        discover_and_log(&service.client).await;
    }
}

/// One discovery round; the outcome goes to the log, never stops shipping.
async fn discover_and_log(client: &EsClient) {
    match super::discovery::discover(client).await {
        Ok((nodes, true)) => {
            let shown: Vec<String> = nodes.iter().map(super::config::redacted_url).collect();
            tracing::info!(
                nodes = nodes.len(),
                "node discovery: sending to {} node(s): {}",
                nodes.len(),
                shown.join(", ")
            );
        }
        Ok((_, false)) => tracing::debug!("node discovery: the nodes are unchanged"),
        Err(err) => tracing::warn!("node discovery failed, the nodes in use are kept: {err}"),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Drives one batch until every document in it is safe. Retries wait with jittered backoff
/// that grows with each consecutive failure of this delivery; split halves go at once.
///
/// A batch the cluster could not take because it was unreachable waits for its backoff or
/// for another delivery's success, whichever comes first: after an outage the first request
/// that gets through proves the cluster is back, and the others follow at once rather than
/// sleeping out delays of up to `retry_max`. Only once per batch, so a batch that keeps
/// failing while others succeed (a 5xx of its own) backs off normally after that.
async fn deliver(service: Arc<BulkService>, batch: Batch, backoff: Backoff) {
    let mut work: VecDeque<(Batch, u32)> = VecDeque::from([(batch, 0)]);
    let mut woken_early = false;
    let mut wake: Option<tokio::sync::watch::Receiver<u64>> = None;
    while let Some((mut batch, failures)) = work.pop_front() {
        if failures > 0 {
            let delay = tokio::time::sleep(backoff.delay(failures - 1));
            match wake.take() {
                Some(mut answered) if !woken_early => {
                    tokio::select! {
                        _ = delay => {}
                        changed = answered.changed() => {
                            woken_early = changed.is_ok();
                        }
                    }
                }
                _ => delay.await,
            }
        }
        // Subscribed before sending: a success while this request is failing counts.
        let answered = service.answered.subscribe();
        match service.send(&mut batch).await {
            Next::Done => {}
            Next::RetryAll => work.push_front((batch, failures.saturating_add(1))),
            Next::Unreachable => {
                wake = Some(answered);
                work.push_front((batch, failures.saturating_add(1)));
            }
            Next::RetryItems(rest) => work.push_front((rest, failures.saturating_add(1))),
            Next::Split(left, right) => {
                work.push_front((right, failures));
                work.push_front((left, failures));
            }
        }
    }
}
