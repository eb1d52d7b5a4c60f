//! Reloading the settings on SIGHUP, what operators send to reload a daemon.
//!
//! SIGHUP re-reads the `--config` file (the environment of a running process cannot
//! change, so the variables keep the values they had at start, and still win over the
//! file). Settings that do not pass every check of a start are refused: the shipper logs
//! which one and why, and keeps running on the ones it has. Valid settings are applied by
//! an in-process restart of the pipeline: reading stops, the requests in flight finish,
//! the checkpoints are saved, and the pipeline starts again with the new settings from the
//! checkpoints, exactly as after a restart of the process, so no line is lost or sent
//! twice. Every setting applies at once except the format of the shipper's own log.
//! If the new pipeline cannot start (its metrics address is taken, say), the previous
//! settings are put back.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Cli, Settings};

/// Runs the pipeline with `settings` until `stop` is cancelled, restarting it with new
/// settings at each SIGHUP that brings valid ones.
pub async fn run_reloading(
    cli: Cli,
    mut settings: Settings,
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // Registered before the first pipeline starts: from here on SIGHUP never kills.
    let hangups = signal(SignalKind::hangup())
        .map_err(|e| anyhow::anyhow!("cannot listen for SIGHUP: {e}"))?;
    let (tx, mut reloads) = mpsc::channel::<Settings>(1);
    tokio::spawn(read_on_hangup(cli, hangups, tx, stop.clone()));
    let mut previous: Option<Settings> = None;
    loop {
        let pipeline_stop = stop.child_token();
        let mut pipeline = Box::pin(crate::pipeline::run(
            settings.clone(),
            prometheus.clone(),
            pipeline_stop.clone(),
        ));
        let next = tokio::select! {
            result = &mut pipeline => match (result, previous.take()) {
                // The new settings could not start: back to the ones that ran.
                (Err(e), Some(old)) if !stop.is_cancelled() => {
                    tracing::error!("the reloaded settings cannot run ({e:#}); going back to the previous ones");
                    settings = old;
                    continue;
                }
                (result, _) => return result,
            },
            next = reloads.recv() => next,
        };
        let Some(next) = next else {
            return pipeline.await;
        };
        tracing::info!(
            "applying the reloaded settings: stopping the pipeline behind the checkpoints"
        );
        pipeline_stop.cancel();
        pipeline.await?;
        if stop.is_cancelled() {
            return Ok(());
        }
        previous = Some(std::mem::replace(&mut settings, next));
        tracing::info!("reloaded: the pipeline starts again with the new settings");
    }
}

/// At each SIGHUP, re-reads and checks the settings; sends the valid ones.
async fn read_on_hangup(
    cli: Cli,
    mut hangups: tokio::signal::unix::Signal,
    tx: mpsc::Sender<Settings>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            got = hangups.recv() => if got.is_none() { return },
        }
        let Some(file) = Settings::config_file(&cli) else {
            tracing::warn!("SIGHUP: no settings file (--config, SHIPPER_CONFIG) to re-read; the environment of a running process cannot change, so nothing is reloaded");
            continue;
        };
        tracing::info!(file = %file.display(), "SIGHUP: re-reading the settings");
        match Settings::load(&cli) {
            Ok(settings) => {
                if tx.send(settings).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::error!(
                "SIGHUP: the new settings are refused, keeping the current ones: {e}"
            ),
        }
    }
}
