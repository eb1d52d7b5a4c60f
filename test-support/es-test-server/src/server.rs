//! Listening, connections and the handle tests hold.
//!
//! The accept loop is hand-written on hyper (rather than `axum::serve`)
//! because two faults need control below HTTP: dropping a connection without
//! answering (the service returns an error, hyper closes the socket), and
//! refusing connections (the listener is closed, open connections are cut,
//! and later a new listener binds the same port).
//!
//! A server may be a cluster of several nodes: one listener each, all sharing
//! one cluster state (documents, templates, data streams), as the HTTP layers
//! of the nodes of one Elasticsearch cluster do. Each node can be killed on
//! its own (it stops accepting and its connections are cut, as when its
//! process dies) and brought back on the same address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::bulk::blackhole::Blackhole;
use crate::cluster::{Cluster, Document};
use crate::config::ServerConfig;
use crate::faults::Faults;
use crate::observe::{BulkStats, Observer, RequestRecord};

/// Errors starting or controlling the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the server runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the server thread did not report its address")]
    ThreadStart,
    #[error("the server has no node {0}")]
    NoSuchNode(usize),
}

/// Per-request record filled by the middleware and the body reader.
#[derive(Clone, Debug)]
pub struct RecordSlot(pub Arc<Mutex<RequestRecord>>);

impl RecordSlot {
    pub fn set_body(&self, wire: u64, decoded: u64, gzip: bool) {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        r.body_bytes = wire;
        r.decoded_bytes = decoded;
        r.gzip = gzip;
    }
}

/// State shared by every request.
#[derive(Debug)]
pub struct Shared {
    pub config: ServerConfig,
    cluster: Mutex<Cluster>,
    pub faults: Faults,
    pub observer: Observer,
    pub blackhole: Option<Blackhole>,
    pub cluster_uuid: String,
    /// The nodes: one listener each. Never empty.
    pub(crate) nodes: Vec<NodeControl>,
}

impl Shared {
    pub fn lock_cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The effective `http.max_content_length`.
    pub fn max_content_length(&self) -> u64 {
        self.faults
            .max_content_length()
            .unwrap_or(self.config.max_content_length)
    }
}

/// One node: its identity, its accept task and the signal that cuts its open
/// connections.
#[derive(Debug)]
pub(crate) struct NodeControl {
    /// The node id (`nodes.<id>` in `_nodes`): 22 URL-safe characters, as
    /// Elasticsearch generates them.
    pub(crate) id: String,
    /// `node.name`.
    pub(crate) name: String,
    addr: Mutex<Option<SocketAddr>>,
    accept_task: Mutex<Option<JoinHandle<()>>>,
    /// Bumped to close every open connection of this node.
    cut: watch::Sender<u64>,
    /// The next `_bulk` this node executes kills it before it answers.
    die_after_bulk: AtomicBool,
}

impl NodeControl {
    fn new(name: String) -> Self {
        let (cut, _) = watch::channel(0);
        NodeControl {
            id: crate::cluster::index::random_id(22),
            name,
            addr: Mutex::new(None),
            accept_task: Mutex::new(None),
            cut,
            die_after_bulk: AtomicBool::new(false),
        }
    }

    /// The address it listens on (kept while it is down).
    pub(crate) fn addr(&self) -> Option<SocketAddr> {
        *self.addr.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether it accepts connections now.
    pub(crate) fn is_up(&self) -> bool {
        self.accept_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Stops accepting and cuts every open connection: clients see
    /// "connection refused", and requests in flight get no answer.
    fn stop(&self) {
        if let Some(t) = self
            .accept_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
        self.cut.send_modify(|v| *v += 1);
    }
}

/// The node a request arrived at (a request extension set by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct ServingNode(pub usize);

fn bind_reusable(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let err = |source| ServerError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    // Rebinding the same port after stop_listening must not wait for TIME_WAIT.
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

fn is_bulk_path(path: &str) -> bool {
    path == "/_bulk" || path.ends_with("/_bulk")
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, router: Router, node: usize) {
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let router = router.clone();
        let Some(mut cut) = shared.nodes.get(node).map(|n| n.cut.subscribe()) else {
            return;
        };
        tokio::spawn(async move {
            let svc_shared = shared.clone();
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let router = router.clone();
                let shared = svc_shared.clone();
                req.extensions_mut().insert(ServingNode(node));
                async move {
                    let path = req.uri().path().to_string();
                    if !path.starts_with("/_test") && shared.faults.take_drop(is_bulk_path(&path)) {
                        shared
                            .observer
                            .dropped_connections
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        shared.observer.record(RequestRecord {
                            method: req.method().to_string(),
                            path,
                            query: req.uri().query().map(String::from),
                            headers: Default::default(),
                            body_bytes: 0,
                            decoded_bytes: 0,
                            gzip: false,
                            status: 0,
                            node: shared.node_name(node),
                        });
                        // An error from the service makes hyper close the
                        // connection without writing a response.
                        return Err::<axum::response::Response, DropConnection>(DropConnection);
                    }
                    let mut resp = match router.oneshot(req.map(axum::body::Body::new)).await {
                        Ok(r) => r,
                        Err(e) => match e {},
                    };
                    if !path.starts_with("/_test") {
                        if let Some(answer) = shared.faults.take_hostile_answer(is_bulk_path(&path))
                        {
                            resp = crate::hostile::rewrite(resp, answer).await;
                        }
                    }
                    if is_bulk_path(&path) && shared.take_die_after_bulk(node) {
                        // The bulk was executed; the node dies before its answer leaves.
                        shared
                            .observer
                            .dropped_connections
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::info!(node = %shared.node_name(node), "node killed after executing a bulk");
                        shared.stop_node(node);
                        return Err(DropConnection);
                    }
                    if !path.starts_with("/_test")
                        && shared.faults.take_lost_response(is_bulk_path(&path))
                    {
                        // Executed, and the answer never leaves: the connection is closed.
                        shared
                            .observer
                            .dropped_connections
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return Err(DropConnection);
                    }
                    Ok(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = cut.changed() => {}
            }
        });
    }
}

/// The error that makes hyper drop a connection.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

impl Shared {
    /// Binds `addr` for node `node` and starts accepting.
    pub(crate) async fn start_listening(
        self: &Arc<Self>,
        node: usize,
        addr: SocketAddr,
    ) -> Result<SocketAddr, ServerError> {
        let control = self.nodes.get(node).ok_or(ServerError::NoSuchNode(node))?;
        let listener = bind_reusable(addr)?;
        let bound = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let router = crate::api::router(self.clone());
        let task = tokio::spawn(accept_loop(listener, self.clone(), router, node));
        *control.addr.lock().unwrap_or_else(|p| p.into_inner()) = Some(bound);
        if let Some(old) = control
            .accept_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(task)
        {
            old.abort();
        }
        Ok(bound)
    }

    /// Every node stops listening and cuts its connections: the whole cluster
    /// is unreachable.
    pub(crate) fn stop_listening(&self) {
        for node in &self.nodes {
            node.stop();
        }
    }

    /// Kills one node (see [`NodeControl::stop`]); the others go on serving.
    pub(crate) fn stop_node(&self, node: usize) {
        if let Some(n) = self.nodes.get(node) {
            n.stop();
        }
    }

    /// Nodes accepting connections now.
    pub(crate) fn nodes_up(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_up()).count()
    }

    /// The index of the node with this name or id.
    pub(crate) fn find_node(&self, name_or_id: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name_or_id || n.id == name_or_id)
    }

    /// `node.name` of node `node`.
    pub(crate) fn node_name(&self, node: usize) -> String {
        self.nodes
            .get(node)
            .map(|n| n.name.clone())
            .unwrap_or_default()
    }

    /// Arms (or disarms) the death of node `node` after its next `_bulk`.
    pub(crate) fn set_die_after_bulk(&self, node: usize, on: bool) -> Result<(), ServerError> {
        let n = self.nodes.get(node).ok_or(ServerError::NoSuchNode(node))?;
        n.die_after_bulk.store(on, Ordering::SeqCst);
        Ok(())
    }

    fn take_die_after_bulk(&self, node: usize) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|n| n.die_after_bulk.swap(false, Ordering::SeqCst))
    }

    /// Every node that is down listens again on its address.
    pub(crate) async fn resume_listening(self: &Arc<Self>) -> Result<SocketAddr, ServerError> {
        let mut first = None;
        for node in 0..self.nodes.len() {
            let addr = self.resume_node(node).await?;
            first.get_or_insert(addr);
        }
        first.ok_or(ServerError::ThreadStart)
    }

    /// Node `node` listens again on the address it had (a no-op if it is up).
    pub(crate) async fn resume_node(
        self: &Arc<Self>,
        node: usize,
    ) -> Result<SocketAddr, ServerError> {
        let control = self.nodes.get(node).ok_or(ServerError::NoSuchNode(node))?;
        let addr = control.addr().ok_or(ServerError::ThreadStart)?;
        if control.is_up() {
            return Ok(addr);
        }
        // The aborted accept task releases the port asynchronously; retry briefly.
        let mut last = None;
        for _ in 0..50 {
            match self.start_listening(node, addr).await {
                Ok(a) => return Ok(a),
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
        Err(last.unwrap_or(ServerError::ThreadStart))
    }
}

/// A running test server.
///
/// ```no_run
/// # async fn demo() -> Result<(), es_test_server::ServerError> {
/// use es_test_server::{EsTestServer, ServerConfig};
/// let server = EsTestServer::start(ServerConfig::default()).await?;
/// let url = server.url(); // http://127.0.0.1:<port>
/// server.faults().fail_next_items(2, 429);
/// // ... run the code under test against `url` ...
/// assert_eq!(server.documents("logs-*").len(), 0);
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EsTestServer {
    shared: Arc<Shared>,
    /// One per node; never empty.
    addrs: Vec<SocketAddr>,
}

impl EsTestServer {
    /// Binds `config.listen` (127.0.0.1:0 by default) and serves in the
    /// current tokio runtime (which should be multi-threaded for benchmarks).
    pub async fn start(config: ServerConfig) -> Result<Self, ServerError> {
        let listen: Vec<SocketAddr> = std::iter::once(config.listen)
            .chain(config.more_nodes.iter().copied())
            .collect();
        let names: Vec<String> = if listen.len() == 1 {
            vec![config.node_name.clone()]
        } else {
            (1..=listen.len())
                .map(|i| format!("{}-{i}", config.node_name))
                .collect()
        };
        let shared = Arc::new(Shared {
            cluster: Mutex::new(Cluster::new(config.failure_store_patterns.clone())),
            faults: Faults::default(),
            observer: Observer::new(config.max_recorded_requests),
            blackhole: config
                .blackhole
                .as_ref()
                .map(|b| Blackhole::new(b.keep_ids)),
            cluster_uuid: crate::cluster::index::random_id(22),
            nodes: names.into_iter().map(NodeControl::new).collect(),
            config,
        });
        let mut addrs = Vec::with_capacity(listen.len());
        for (node, addr) in listen.into_iter().enumerate() {
            let bound = shared.start_listening(node, addr).await?;
            tracing::info!(addr = %bound, node = %shared.node_name(node), "es-test-server listening");
            addrs.push(bound);
        }
        Ok(EsTestServer { shared, addrs })
    }

    /// Starts the server on its own thread with its own multi-threaded
    /// runtime, for tests that are not async. Dropping the returned
    /// [`ThreadedServer`] shuts it down.
    pub fn start_in_thread(config: ServerConfig) -> Result<ThreadedServer, ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("es-test-server")
            .build()
            .map_err(ServerError::Runtime)?;
        let server = runtime.block_on(EsTestServer::start(config))?;
        Ok(ThreadedServer {
            server: Some(server),
            runtime: Some(runtime),
        })
    }

    /// The first node's address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// `http://127.0.0.1:<port>` of the first node.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The URL of every node, in order.
    pub fn urls(&self) -> Vec<String> {
        self.addrs.iter().map(|a| format!("http://{a}")).collect()
    }

    /// The `node.name` of every node, in order.
    pub fn node_names(&self) -> Vec<String> {
        self.shared.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Kills node `node`: it stops accepting and its open connections are
    /// cut (requests in flight there get no answer); the other nodes and the
    /// cluster state are unaffected. `_nodes` no longer lists it.
    pub async fn kill_node(&self, node: usize) {
        self.shared.stop_node(node);
        tokio::task::yield_now().await;
    }

    /// Node `node` listens again on its address (and is listed by `_nodes`).
    pub async fn revive_node(&self, node: usize) -> Result<(), ServerError> {
        self.shared.resume_node(node).await.map(|_| ())
    }

    /// The next `_bulk` node `node` receives is executed (its documents are
    /// stored), then the node dies before it answers, as if its process
    /// crashed right after the work: the client sees its connection closed.
    pub fn kill_node_after_next_bulk(&self, node: usize) -> Result<(), ServerError> {
        self.shared.set_die_after_bulk(node, true)
    }

    /// Fault injection controls.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Documents of the indices / data streams an expression names
    /// (`logs-*`, `a,b`, `logs-x-y::failures`), in index then insertion order.
    pub fn documents(&self, expr: &str) -> Vec<Document> {
        self.shared.lock_cluster().documents(expr)
    }

    /// Rolls a data stream (or `name::failures`) over, as
    /// `POST /<target>/_rollover` does; returns the new write index.
    pub fn rollover(&self, target: &str) -> Result<String, crate::EsError> {
        let out = self
            .shared
            .lock_cluster()
            .rollover(target, false, chrono::Utc::now())?;
        Ok(out["new_index"].as_str().unwrap_or_default().to_string())
    }

    /// Deletes documents by `_id` from the indices an expression names, as
    /// `DELETE /<backing-index>/_doc/<id>` does for each; returns how many
    /// were deleted. Lets a test lose documents behind a client's back.
    pub fn delete_documents(&self, expr: &str, ids: &[String]) -> usize {
        let mut cluster = self.shared.lock_cluster();
        let names = cluster.resolve_read(expr, true).unwrap_or_default();
        let mut deleted = 0;
        for name in names {
            if let Some(index) = cluster.indices.get_mut(&name) {
                deleted += ids.iter().filter(|id| index.remove(id).is_some()).count();
            }
        }
        deleted
    }

    /// Number of documents an expression covers.
    pub fn count(&self, expr: &str) -> usize {
        self.documents(expr).len()
    }

    /// Names of the data streams.
    pub fn data_streams(&self) -> Vec<String> {
        self.shared
            .lock_cluster()
            .data_streams
            .keys()
            .cloned()
            .collect()
    }

    /// Names of all concrete indices (backing and failure indices included).
    pub fn indices(&self) -> Vec<String> {
        self.shared.lock_cluster().indices.keys().cloned().collect()
    }

    /// Names of installed index templates / component templates / ILM policies.
    pub fn index_templates(&self) -> Vec<String> {
        self.shared
            .lock_cluster()
            .index_templates
            .keys()
            .cloned()
            .collect()
    }

    pub fn component_templates(&self) -> Vec<String> {
        self.shared
            .lock_cluster()
            .component_templates
            .keys()
            .cloned()
            .collect()
    }

    pub fn ilm_policies(&self) -> Vec<String> {
        self.shared
            .lock_cluster()
            .ilm_policies
            .keys()
            .cloned()
            .collect()
    }

    /// The stored body of an index template, if any.
    pub fn index_template(&self, name: &str) -> Option<serde_json::Value> {
        self.shared
            .lock_cluster()
            .index_templates
            .get(name)
            .map(|t| t.body.clone())
    }

    /// The requests seen, oldest first (bounded by `max_recorded_requests`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.observer.requests()
    }

    /// Bulk counters (requests, items per status, 409s, failure-store uses).
    pub fn bulk_stats(&self) -> BulkStats {
        self.shared.observer.stats()
    }

    /// Connections closed by the drop fault.
    pub fn dropped_connections(&self) -> u64 {
        self.shared.observer.dropped_connections()
    }

    /// Blackhole counters per target (empty when not in blackhole mode).
    pub fn blackhole_counts(&self) -> std::collections::HashMap<String, u64> {
        self.shared
            .blackhole
            .as_ref()
            .map(|b| b.counts())
            .unwrap_or_default()
    }

    /// Clears request records and counters (not documents).
    pub fn reset_observations(&self) {
        self.shared.observer.reset();
    }

    /// Stops accepting and cuts open connections: clients see "connection refused".
    pub async fn stop_listening(&self) {
        self.shared.stop_listening();
        // Let the aborted accept task drop its socket.
        tokio::task::yield_now().await;
    }

    /// Listens again on the same port.
    pub async fn resume_listening(&self) -> Result<(), ServerError> {
        self.shared.resume_listening().await.map(|_| ())
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.shared.stop_listening();
        tokio::task::yield_now().await;
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// A server running on its own thread ([`EsTestServer::start_in_thread`]).
#[derive(Debug)]
pub struct ThreadedServer {
    server: Option<EsTestServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ThreadedServer {
    fn server(&self) -> &EsTestServer {
        match &self.server {
            Some(s) => s,
            None => unreachable!("the server lives until drop"),
        }
    }

    /// Runs a future on the server's runtime (e.g. `stop_listening`).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.runtime {
            Some(rt) => rt.block_on(f),
            None => unreachable!("the runtime lives until drop"),
        }
    }

    pub fn stop_listening(&self) {
        self.server().shared().stop_listening();
    }

    pub fn resume_listening(&self) -> Result<(), ServerError> {
        let shared = self.server().shared().clone();
        self.block_on(async move { shared.resume_listening().await.map(|_| ()) })
    }

    /// Blocking [`EsTestServer::kill_node`].
    pub fn kill_node(&self, node: usize) {
        self.server().shared().stop_node(node);
    }

    /// Blocking [`EsTestServer::revive_node`].
    pub fn revive_node(&self, node: usize) -> Result<(), ServerError> {
        let shared = self.server().shared().clone();
        self.block_on(async move { shared.resume_node(node).await.map(|_| ()) })
    }
}

impl std::ops::Deref for ThreadedServer {
    type Target = EsTestServer;
    fn deref(&self) -> &EsTestServer {
        self.server()
    }
}

impl Drop for ThreadedServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shared.stop_listening();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
