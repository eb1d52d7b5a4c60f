//! Wires the stages together and runs them until a signal says stop.
//!
//! Order matters: reading and alerting start at once, so the alert rules see every line
//! whatever the state of Elasticsearch (and an Elasticsearch down from the start is itself
//! alerted on); batches wait in the output's channel (and reading
//! pauses, see the read budget) until the output has reached Elasticsearch and installed
//! the templates, so no document reaches a data stream before its template.
//! At shutdown reading stops first, the output finishes (or abandons, at its deadline) the
//! requests in flight, and the checkpoints are saved last, with every acknowledgement in.

use std::sync::Arc;

use alerting::{AlertEngine, Embedding, QueryAuth, QueryClientConfig};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::encode::Encoder;
use crate::input::acknowledgements::AckTable;
use crate::input::checkpoint::Checkpointer;
use crate::input::file_server::{save_checkpoints, FileServer, InputStats};
use crate::input::read_budget::ReadBudget;
use crate::output::{Auth, ElasticsearchOutput, OutputConfig, StartupError};

/// Time given at shutdown to the notifications still pending.
const ALERT_FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the shipper until `shutdown` is cancelled. `prometheus` renders `/metrics`.
pub async fn run(
    settings: Settings,
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    crate::output::describe_metrics();
    crate::observe::describe_input_metrics();
    let ready = Arc::new(crate::observe::readiness::Readiness::new(
        settings.ready_failing_after,
    ));
    let input_stats = Arc::new(InputStats::default());
    let server_stop = CancellationToken::new();
    let server = crate::observe::http::serve(
        settings.metrics_addr,
        prometheus,
        Arc::clone(&ready),
        Arc::clone(&input_stats),
        settings.health_stuck_after,
        server_stop.clone(),
    )
    .await?;
    tracing::info!(addr = %settings.metrics_addr, "serving /metrics, /health and /ready");

    let checkpointer = Arc::new(
        Checkpointer::new(&settings.data_dir.join("checkpoints")).context("SHIPPER_DATA_DIR")?,
    );
    let output = ElasticsearchOutput::new(settings.output.clone())?;
    let output_stats = output.stats();

    // Acknowledgements flow back from the output into this table, which moves the
    // checkpoints and gives the read budget back.
    let budget = Arc::new(ReadBudget::new(settings.memory_budget));
    let table = Arc::new(AckTable::new(Arc::clone(&budget)));
    ready.watch(Arc::clone(&table), Arc::clone(&output_stats));

    // Alerting starts with the process, before Elasticsearch answers: its channels need
    // nothing of Elasticsearch, its queries retry on their own, and "Elasticsearch
    // unreachable" is about exactly that wait. Its tap sees every document the encode stage
    // makes; the shipper's vitals feed the rules on the shipper itself.
    let (alerts, tap) = match settings.alerts.clone() {
        Some(alert_settings) => {
            let vitals = crate::observe::vitals::ShipperVitals {
                output: Arc::clone(&output_stats),
                table: Arc::clone(&table),
                dead_letter_dir: settings.output.dead_letter_dir.clone(),
            };
            let embedding = Embedding {
                vitals: Some(Arc::new(vitals)),
                state_dir: Some(settings.data_dir.join("alerts")),
                name: settings.encode.host_name.clone(),
            };
            let mut engine = AlertEngine::start(
                alert_settings,
                query_client_config(&settings.output),
                embedding,
                shutdown.clone(),
            )?;
            let tap = engine
                .take_tap()
                .map(|t| Box::new(t) as Box<dyn crate::encode::DocumentTap>);
            (Some(engine), tap)
        }
        None => (None, None),
    };

    let (tx, rx) = tokio::sync::mpsc::channel(settings.output.max_in_flight.max(1));

    // input -> encode -> batch: one thread reads every file and hands each line, without a
    // copy, to the encode stage, which sends full batches to the output's channel.
    let encoder = Encoder::new(
        &settings.encode,
        budget,
        tx,
        shutdown.clone(),
        Arc::clone(&input_stats),
        tap,
    );
    let file_server = FileServer::new(
        settings.input.clone(),
        Arc::clone(&table),
        Arc::clone(&checkpointer),
        Box::new(encoder),
        shutdown.clone(),
        Arc::clone(&input_stats),
    )?;
    let reader = std::thread::Builder::new()
        .name("file-server".into())
        .spawn(move || file_server.run())
        .context("cannot start the reading thread")?;
    // Batches wait in the channel until the output is ready: no document reaches a data
    // stream before its template, but the alert rules see lines from the first second.
    match output.prepare(&shutdown).await {
        Ok(_) => {}
        Err(StartupError::Cancelled) => {
            tracing::info!("stopped before Elasticsearch was ready");
            // Nobody will take the batches: the reader must not wait to hand them over.
            drop(rx);
            join_reader(reader, settings.output.shutdown_deadline).await;
            if let Some(engine) = alerts {
                engine.shutdown(ALERT_FLUSH_DEADLINE).await;
            }
            server_stop.cancel();
            let _ = server.await;
            return Ok(());
        }
        Err(e) => {
            shutdown.cancel();
            drop(rx);
            join_reader(reader, settings.output.shutdown_deadline).await;
            if let Some(engine) = alerts {
                engine.shutdown(ALERT_FLUSH_DEADLINE).await;
            }
            return Err(e.into());
        }
    }
    ready.set_prepared();
    let summary = tokio::spawn(crate::observe::summary::run(
        settings.summary_interval,
        Arc::clone(&input_stats),
        output_stats,
        shutdown.clone(),
    ));

    let delivered = output.run(rx, table.clone(), shutdown.clone()).await;
    // If the output ended on its own (a panic in a delivery), stop reading too.
    shutdown.cancel();
    join_reader(reader, settings.output.shutdown_deadline).await;
    save_checkpoints(&table, &checkpointer, settings.input.forget_after)
        .context("saving checkpoints at shutdown")?;
    tracing::info!(
        unacknowledged_lines = table.total_unacknowledged(),
        "checkpoints saved; lines not acknowledged will be sent again at the next start"
    );
    // Last: alerts raised by the final lines are evaluated and sent, within a short deadline.
    if let Some(engine) = alerts {
        engine.shutdown(ALERT_FLUSH_DEADLINE).await;
    }
    let _ = summary.await;
    server_stop.cancel();
    let _ = server.await;
    delivered
}

/// Waits for the reading thread to stop, at most `deadline`. A thread stuck in a system call
/// (a read on a hung network filesystem) cannot be stopped, and must not keep the process
/// from exiting: the checkpoints are then saved from the table without it (the table has
/// every acknowledgement; what the thread read but did not hand on is read again).
async fn join_reader(reader: std::thread::JoinHandle<()>, deadline: std::time::Duration) {
    let joined = tokio::task::spawn_blocking(move || reader.join());
    match tokio::time::timeout(deadline, joined).await {
        Ok(Ok(Ok(()))) => {}
        Ok(_) => tracing::error!("the reading thread ended abnormally"),
        Err(_) => tracing::error!(
            deadline_s = deadline.as_secs(),
            "the reading thread did not stop in time (stuck in a system call?); stopping without it"
        ),
    }
}

/// The uptime rules query the cluster the output writes to, with the same nodes,
/// credentials, CA and timeouts (the engine shortens the timeout to suit its polls).
fn query_client_config(output: &OutputConfig) -> QueryClientConfig {
    let mut config = QueryClientConfig::new(output.nodes.clone());
    config.auth = match &output.auth {
        Auth::None => QueryAuth::None,
        Auth::Basic { username, password } => QueryAuth::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        Auth::ApiKey(key) => QueryAuth::ApiKey(key.clone()),
    };
    config.ca_cert = output.ca_cert.clone();
    config.timeout = output.request_timeout;
    config.connect_timeout = output.connect_timeout;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_client_gets_the_outputs_nodes_credentials_ca_and_timeouts() {
        let mut output = OutputConfig::new(
            vec![
                "https://es01:9200".parse().unwrap(),
                "https://es02:9200/prefix".parse().unwrap(),
            ],
            "/tmp/dl".into(),
        );
        output.ca_cert = Some("/etc/es/ca.pem".into());
        output.request_timeout = std::time::Duration::from_secs(7);
        output.connect_timeout = std::time::Duration::from_secs(2);
        for (auth, expected) in [
            (Auth::None, QueryAuth::None),
            (
                Auth::Basic {
                    username: "elastic".into(),
                    password: "pw".into(),
                },
                QueryAuth::Basic {
                    username: "elastic".into(),
                    password: "pw".into(),
                },
            ),
            (Auth::ApiKey("k==".into()), QueryAuth::ApiKey("k==".into())),
        ] {
            output.auth = auth;
            let q = query_client_config(&output);
            assert_eq!(q.nodes, output.nodes);
            assert_eq!(q.auth, expected);
            assert_eq!(q.ca_cert, output.ca_cert);
            assert_eq!(q.timeout, std::time::Duration::from_secs(7));
            assert_eq!(q.connect_timeout, std::time::Duration::from_secs(2));
        }
    }
}
