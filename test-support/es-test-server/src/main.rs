//! `es-test-server`: the Elasticsearch-compatible test server as a process,
//! so a person or a compose smoke test can point a shipper at it.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use es_test_server::{EsTestServer, ServerConfig};

/// An in-memory, Elasticsearch 9.2-compatible server with fault injection.
#[derive(Debug, Parser)]
#[command(name = "es-test-server", version)]
struct Args {
    /// Address to listen on. Given several times (or comma-separated), each address is a
    /// node of one cluster: all share the documents, templates and data streams, and each
    /// can be killed and revived alone (`/_test/nodes/<name>/kill`, `/revive`).
    #[arg(
        long,
        env = "ES_TEST_LISTEN",
        default_value = "127.0.0.1:9200",
        value_delimiter = ','
    )]
    listen: Vec<SocketAddr>,
    /// `http.publish_host` as a host name: `_nodes` gives publish addresses as `<host>/<ip>:<port>`.
    #[arg(long)]
    publish_host: Option<String>,
    /// Require Basic authentication with this user (needs --password).
    #[arg(long, env = "ES_TEST_USERNAME", requires = "password")]
    username: Option<String>,
    /// Password for --username.
    #[arg(long, env = "ES_TEST_PASSWORD", requires = "username")]
    password: Option<String>,
    /// Accept this API key, given as `id:api_key` (clients send base64 of it).
    #[arg(long, env = "ES_TEST_API_KEY")]
    api_key: Option<String>,
    /// Answer _bulk without storing documents (benchmarks).
    #[arg(long)]
    blackhole: bool,
    /// In blackhole mode, remember ids so a repeated `create` answers 409.
    #[arg(long, requires = "blackhole")]
    keep_ids: bool,
    /// http.max_content_length in bytes.
    #[arg(long, default_value_t = es_test_server::DEFAULT_MAX_CONTENT_LENGTH)]
    max_content_length: u64,
    /// Cluster setting data_streams.failure_store.enabled (comma-separated patterns).
    #[arg(long, value_delimiter = ',')]
    failure_store_patterns: Vec<String>,
    /// cluster.name reported by GET /.
    #[arg(long, default_value = "es-test-server")]
    cluster_name: String,
    /// Worker threads of the runtime (default: number of CPUs).
    #[arg(long)]
    worker_threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let Some((first, more)) = args.listen.split_first() else {
        anyhow::bail!("--listen needs at least one address");
    };
    let mut config = ServerConfig::default().with_listen(*first);
    config.more_nodes = more.to_vec();
    config.publish_host = args.publish_host;
    if let (Some(u), Some(p)) = (args.username, args.password) {
        config = config.with_basic_auth(u, p);
    }
    if let Some(k) = args.api_key {
        let (id, key) = k
            .split_once(':')
            .context("--api-key must be `id:api_key`")?;
        config = config.with_api_key(id, key);
    }
    if args.blackhole {
        config = config.blackhole(args.keep_ids);
    }
    config.max_content_length = args.max_content_length;
    config.failure_store_patterns = args.failure_store_patterns;
    config.cluster_name = args.cluster_name;

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.worker_threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.build().context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let server = EsTestServer::start(config)
            .await
            .with_context(|| format!("cannot listen on {:?}", args.listen))?;
        tracing::info!(urls = ?server.urls(), nodes = ?server.node_names(), "ready");
        wait_for_shutdown_signal().await?;
        tracing::info!("shutting down");
        server.shutdown().await;
        Ok(())
    })
}

/// SIGINT or SIGTERM (`docker compose stop` sends SIGTERM).
async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for ctrl-c")
    }
}
