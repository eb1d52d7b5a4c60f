//! The output's Prometheus metrics, rendered the way `/metrics` renders them.
//!
//! One test in its own binary: it installs the global metrics recorder.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod output_support;

use es_test_server::{EsTestServer, ServerConfig};
use metrics_exporter_prometheus::PrometheusBuilder;
use output_support::*;

#[tokio::test]
async fn deliveries_show_up_in_the_prometheus_metrics_with_help_text() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    shipper::output::describe_metrics();

    let es = EsTestServer::start(ServerConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = start(config(&es.url(), dir.path())).await;
    es.faults().fail_next_items(2, 429);
    out.batches.send(batch(STREAM, 0..10)).await.unwrap();
    out.acks
        .wait_for(10, std::time::Duration::from_secs(20))
        .await;
    out.batches.send(batch(STREAM, 0..3)).await.unwrap();
    out.finish().await;

    let text = handle.render();
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    };
    assert_eq!(value("shipper_documents_indexed_total"), 10.0);
    assert_eq!(value("shipper_documents_duplicate_total"), 3.0);
    assert_eq!(
        value(r#"shipper_item_retries_total{reason="rejected"}"#),
        2.0
    );
    assert_eq!(value(r#"shipper_bulk_requests_total{outcome="ok"}"#), 2.0);
    assert_eq!(
        value(r#"shipper_bulk_requests_total{outcome="item_errors"}"#),
        1.0
    );
    assert_eq!(value("shipper_elasticsearch_up"), 1.0);
    assert_eq!(value("shipper_bulk_in_flight"), 0.0);
    assert!(value("shipper_last_successful_bulk_timestamp_seconds") > 1.7e9);
    assert!(value("shipper_bulk_sent_bytes_total") > 0.0);
    assert!(text.contains("shipper_bulk_duration_seconds"), "{text}");
    for name in [
        "shipper_documents_indexed_total",
        "shipper_documents_duplicate_total",
        "shipper_item_retries_total",
        "shipper_bulk_requests_total",
        "shipper_elasticsearch_up",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}:\n{text}"
        );
    }
}
