//! The engine's own Elasticsearch client: JSON `_search` requests for the uptime rules and a
//! `GET /` probe for the "Elasticsearch unreachable" rule, nothing else.
//!
//! The uptime rules read Heartbeat's documents back from the cluster the shipper writes to,
//! but they need none of the bulk machinery (compression, per-item verdicts, dead letters), so
//! the engine keeps a small client of its own and is configured by a plain
//! [`QueryClientConfig`] that the embedding program fills from its own settings.
//!
//! A search only reads, so any request that got no HTTP answer (refused, reset, timed out)
//! is tried on the next node at once; the node that answered last is tried first the next
//! time. The credentials go in a header marked sensitive, and neither `Debug` nor an error
//! message ever shows a password or an API key.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::Method;
use url::Url;

/// The default of [`QueryClientConfig::timeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default of [`QueryClientConfig::connect_timeout`].
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest decoded answer read: the rules' searches ask for aggregations over a few
/// monitors and a handful of hits (kilobytes). A larger answer (a proxy gone wrong, a gzip
/// bomb) is not read further: reqwest decodes gzip as a stream, so stopping the read stops
/// the decompression too.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// How the query client proves who it is to Elasticsearch.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum QueryAuth {
    /// No `Authorization` header (a cluster without security, or a test server).
    #[default]
    None,
    /// HTTP basic authentication.
    Basic { username: String, password: String },
    /// The encoded API key (base64 of `id:key`), sent as `Authorization: ApiKey <key>`.
    ApiKey(String),
}

impl fmt::Debug for QueryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryAuth::None => f.write_str("None"),
            QueryAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            QueryAuth::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// Where and how the uptime rules query Elasticsearch. `Debug` never shows a secret.
#[derive(Clone)]
pub struct QueryClientConfig {
    /// Node base URLs, tried in turn; a path prefix (a proxy) is kept.
    pub nodes: Vec<Url>,
    pub auth: QueryAuth,
    /// PEM file with the CA certificate(s) that signed the nodes' certificates.
    pub ca_cert: Option<PathBuf>,
    /// Whole request, response body included, on one node.
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl QueryClientConfig {
    /// The given nodes, no credentials, no CA, default timeouts (10 s, 5 s to connect).
    pub fn new(nodes: Vec<Url>) -> Self {
        QueryClientConfig {
            nodes,
            auth: QueryAuth::None,
            ca_cert: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl fmt::Debug for QueryClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(redacted_url).collect();
        f.debug_struct("QueryClientConfig")
            .field("nodes", &nodes)
            .field("auth", &self.auth)
            .field("ca_cert", &self.ca_cert)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The query client cannot be built: a configuration problem, reported at start.
#[derive(Debug, thiserror::Error)]
pub enum QueryClientError {
    #[error("no Elasticsearch node is configured")]
    NoNodes,
    #[error("cannot read the CA certificate {path}: {source}")]
    ReadCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA certificate {path} is not a valid PEM certificate: {source}")]
    ParseCa {
        path: PathBuf,
        source: reqwest::Error,
    },
    #[error("the credentials cannot be sent in an HTTP header (they contain control characters)")]
    InvalidCredentials,
    #[error("cannot build the HTTP client: {0}")]
    Build(reqwest::Error),
}

/// A complete HTTP answer from one node.
#[derive(Debug)]
pub(crate) struct QueryReply {
    /// The node that answered, without a password: for messages.
    pub(crate) node: String,
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

struct Node {
    url: Url,
    shown: String,
}

/// A JSON query client over one or more nodes.
pub(crate) struct QueryClient {
    http: reqwest::Client,
    nodes: Vec<Node>,
    /// The node tried first: the one that answered last.
    preferred: AtomicUsize,
    timeout: Duration,
    /// When a node last answered with a status below 500: the engine's own evidence that
    /// Elasticsearch is there, besides the embedding program's.
    last_answer: Mutex<Option<Instant>>,
}

impl QueryClient {
    pub(crate) fn new(config: &QueryClientConfig) -> Result<Self, QueryClientError> {
        if config.nodes.is_empty() {
            return Err(QueryClientError::NoNodes);
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(value) = authorization(&config.auth)? {
            headers.insert(header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(format!(
                "{}/{}",
                schema::agent::TYPE,
                env!("CARGO_PKG_VERSION")
            ))
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            // Elasticsearch never redirects; following one could send credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_cert {
            let pem = std::fs::read(path).map_err(|source| QueryClientError::ReadCa {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                QueryClientError::ParseCa {
                    path: path.clone(),
                    source,
                }
            })?;
            // The cluster's CA alone, not the public web roots as well.
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(QueryClient {
            http: builder.build().map_err(QueryClientError::Build)?,
            nodes: config
                .nodes
                .iter()
                .map(|url| Node {
                    url: url.clone(),
                    shown: redacted_url(url),
                })
                .collect(),
            preferred: AtomicUsize::new(0),
            timeout: config.timeout,
            last_answer: Mutex::new(None),
        })
    }

    /// When a node last answered with a status below 500; `None` before the first answer.
    pub(crate) fn last_answer(&self) -> Option<Instant> {
        *self.last_answer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `GET /` on the first node that answers: the cheapest request that shows the cluster
    /// is there (the output's start-up check makes the same one, so the credentials allow it).
    pub(crate) async fn probe(&self) -> Result<QueryReply, String> {
        self.each_node(|node| self.request(node, Method::GET, "/", None))
            .await
    }

    /// POSTs `body` to `path` and reads the whole answer, from the first node that gives
    /// one. The error says what each node did; it never holds a secret.
    pub(crate) async fn post_json(&self, path: &str, body: Bytes) -> Result<QueryReply, String> {
        self.each_node(|node| self.request(node, Method::POST, path, Some(body.clone())))
            .await
    }

    /// The first answer of `attempt` over the nodes, the last one that answered first.
    async fn each_node<'a, F, Fut>(&'a self, attempt: F) -> Result<QueryReply, String>
    where
        F: Fn(&'a Node) -> Fut,
        Fut: std::future::Future<Output = Result<QueryReply, String>>,
    {
        let first = self.preferred.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for i in 0..self.nodes.len() {
            let index = (first + i) % self.nodes.len();
            let node = &self.nodes[index];
            match attempt(node).await {
                Ok(reply) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(reply);
                }
                Err(failure) => failures.push(failure),
            }
        }
        Err(failures.join("; "))
    }

    async fn request(
        &self,
        node: &Node,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<QueryReply, String> {
        let mut request = self.http.request(method, endpoint(&node.url, path));
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await.map_err(|e| self.failure(node, e))?;
        let status = response.status().as_u16();
        let body = self.read_bounded(node, response).await?;
        if status < 500 {
            *self.last_answer.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
        Ok(QueryReply {
            node: node.shown.clone(),
            status,
            body,
        })
    }

    /// The decoded body, refused as soon as it exceeds [`MAX_ANSWER_BYTES`].
    async fn read_bounded(
        &self,
        node: &Node,
        mut response: reqwest::Response,
    ) -> Result<Bytes, String> {
        let too_large = || {
            format!(
                "{} sent an answer larger than {MAX_ANSWER_BYTES} bytes (decoded): not read further",
                node.shown
            )
        };
        if response
            .content_length()
            .is_some_and(|len| len > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failure(node, e))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    fn failure(&self, node: &Node, err: reqwest::Error) -> String {
        if err.is_timeout() {
            return format!("{} did not answer within {:?}", node.shown, self.timeout);
        }
        let what = if err.is_connect() {
            "cannot connect to"
        } else {
            "request failed on"
        };
        // The URL may hold a password; the node is named by its redacted form instead.
        let err = err.without_url();
        format!("{what} {}: {}", node.shown, error_chain(&err))
    }
}

/// The `Authorization` header for the configured credentials, marked sensitive.
fn authorization(auth: &QueryAuth) -> Result<Option<HeaderValue>, QueryClientError> {
    use base64::Engine as _;
    let text = match auth {
        QueryAuth::None => return Ok(None),
        QueryAuth::Basic { username, password } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        ),
        QueryAuth::ApiKey(key) => format!("ApiKey {}", key.trim()),
    };
    let mut value =
        HeaderValue::from_str(&text).map_err(|_| QueryClientError::InvalidCredentials)?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// `path` appended to a node URL, keeping a path prefix the node URL may have (a proxy).
fn endpoint(node: &Url, path: &str) -> String {
    format!(
        "{}/{}",
        node.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// A node URL fit for logs: a password written into the URL is replaced.
fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    if url.password().is_some() {
        // Only fails for URLs that cannot have credentials, which this one has.
        let _ = shown.set_password(Some("redacted"));
    }
    shown.as_str().trim_end_matches('/').to_string()
}

/// The messages of an error and its sources, joined: reqwest's own message alone ("error
/// sending request") does not say what happened.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn debug_never_shows_secrets() {
        let mut c = QueryClientConfig::new(vec![
            Url::parse("https://u:urlsecret@es01:9200").expect("a URL")
        ]);
        c.auth = QueryAuth::Basic {
            username: "elastic".into(),
            password: "hunter2secret".into(),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("elastic"), "{shown}");
        assert!(shown.contains("es01"), "{shown}");
        assert!(!shown.contains("hunter2secret"), "{shown}");
        assert!(!shown.contains("urlsecret"), "{shown}");

        c.auth = QueryAuth::ApiKey("VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAy".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("VnVhQ2ZH"), "{shown}");
    }

    #[test]
    fn credentials_are_encoded_sensitive_and_checked() {
        let v = authorization(&QueryAuth::Basic {
            username: "elastic".into(),
            password: "changeme".into(),
        })
        .unwrap()
        .unwrap();
        assert_eq!(v.to_str().unwrap(), "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==");
        assert!(v.is_sensitive());
        let v = authorization(&QueryAuth::ApiKey(" abc123== ".into()))
            .unwrap()
            .unwrap();
        assert_eq!(v.to_str().unwrap(), "ApiKey abc123==");
        assert!(v.is_sensitive());
        assert!(authorization(&QueryAuth::None).unwrap().is_none());
        assert!(matches!(
            authorization(&QueryAuth::ApiKey("a\nb".into())),
            Err(QueryClientError::InvalidCredentials)
        ));
    }

    #[test]
    fn endpoints_keep_a_path_prefix() {
        let u = Url::parse("https://proxy.example/es/").unwrap();
        assert_eq!(
            endpoint(&u, "/heartbeat-*/_search"),
            "https://proxy.example/es/heartbeat-*/_search"
        );
        let u = Url::parse("http://127.0.0.1:9200").unwrap();
        assert_eq!(endpoint(&u, "/_search"), "http://127.0.0.1:9200/_search");
    }

    #[test]
    fn no_nodes_and_a_missing_ca_file_are_clear_errors() {
        assert!(matches!(
            QueryClient::new(&QueryClientConfig::new(Vec::new())),
            Err(QueryClientError::NoNodes)
        ));
        let mut c = QueryClientConfig::new(vec![Url::parse("https://127.0.0.1:9200").unwrap()]);
        c.ca_cert = Some(PathBuf::from("/nonexistent/ca.pem"));
        let err = QueryClient::new(&c).err().expect("an error");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    /// A port nothing listens on: bound, then released.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    /// A request as the test node saw it: path, `Authorization`, body.
    type Seen = (String, Option<String>, String);

    #[tokio::test]
    async fn a_dead_node_is_skipped_and_the_answering_one_is_tried_first_next_time() {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = Arc::clone(&seen);
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
                let record = Arc::clone(&record);
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    record
                        .lock()
                        .unwrap()
                        .push((uri.path().to_string(), auth, body));
                    "{\"ok\":true}"
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dead = closed_port();
        let mut c = QueryClientConfig::new(vec![
            Url::parse(&format!("http://127.0.0.1:{dead}")).unwrap(),
            Url::parse(&format!("http://127.0.0.1:{live}/prefix/")).unwrap(),
        ]);
        c.auth = QueryAuth::ApiKey("key==".into());
        let client = QueryClient::new(&c).unwrap();
        let reply = client
            .post_json("/heartbeat-*/_search", Bytes::from_static(b"{\"size\":0}"))
            .await
            .unwrap();
        assert_eq!(
            (reply.status, &reply.body[..]),
            (200, &b"{\"ok\":true}"[..])
        );
        assert!(
            reply.node.ends_with(&format!(":{live}/prefix")),
            "{}",
            reply.node
        );
        assert_eq!(client.preferred.load(Ordering::Relaxed), 1);
        assert!(client.last_answer().is_some(), "an answer is recorded");
        assert_eq!(client.probe().await.unwrap().status, 200);
        client
            .post_json("/x/_search", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                (
                    "/prefix/heartbeat-*/_search".to_string(),
                    Some("ApiKey key==".to_string()),
                    "{\"size\":0}".to_string()
                ),
                (
                    "/prefix/".to_string(),
                    Some("ApiKey key==".to_string()),
                    String::new()
                ),
                (
                    "/prefix/x/_search".to_string(),
                    Some("ApiKey key==".to_string()),
                    "{}".to_string()
                ),
            ]
        );
    }

    /// A node that answers every request with `body`, with `gzip` as its content encoding.
    async fn answering(body: Vec<u8>, gzip: bool) -> Url {
        let body = Bytes::from(body);
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move {
                let mut response = axum::response::Response::new(axum::body::Body::from(body));
                if gzip {
                    response.headers_mut().insert(
                        axum::http::header::CONTENT_ENCODING,
                        HeaderValue::from_static("gzip"),
                    );
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Url::parse(&format!("http://127.0.0.1:{port}")).unwrap()
    }

    #[tokio::test]
    async fn an_answer_too_large_is_refused_before_it_is_all_read_or_decoded() {
        use std::io::Write as _;
        // 64 MiB of spaces, sent as about 64 KiB of gzip.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..64 {
            gz.write_all(&chunk).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 1024 * 1024);
        let client =
            QueryClient::new(&QueryClientConfig::new(vec![answering(bomb, true).await])).unwrap();
        let err = client.probe().await.unwrap_err();
        assert!(err.contains("larger than"), "{err}");

        let plain = vec![b' '; MAX_ANSWER_BYTES + 1];
        let client =
            QueryClient::new(&QueryClientConfig::new(vec![answering(plain, false).await])).unwrap();
        let err = client.probe().await.unwrap_err();
        assert!(err.contains("larger than"), "{err}");

        let fits = b"{\"ok\":true}".to_vec();
        let client =
            QueryClient::new(&QueryClientConfig::new(vec![answering(fits, false).await])).unwrap();
        assert_eq!(client.probe().await.unwrap().status, 200);
    }

    #[tokio::test]
    async fn when_every_node_fails_the_error_names_each_without_its_password() {
        let (a, b) = (closed_port(), closed_port());
        let c = QueryClientConfig::new(vec![
            Url::parse(&format!("http://u:urlsecret@127.0.0.1:{a}")).unwrap(),
            Url::parse(&format!("http://127.0.0.1:{b}")).unwrap(),
        ]);
        let client = QueryClient::new(&c).unwrap();
        let err = client
            .post_json("/_search", Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert!(client.probe().await.is_err());
        assert!(client.last_answer().is_none(), "no answer, none recorded");
        assert!(err.contains(&format!("127.0.0.1:{a}")), "{err}");
        assert!(err.contains(&format!("127.0.0.1:{b}")), "{err}");
        assert!(err.contains("cannot connect"), "{err}");
        assert!(!err.contains("urlsecret"), "{err}");
    }
}
