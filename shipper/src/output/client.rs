//! The HTTP client that talks to Elasticsearch.
//!
//! reqwest with rustls: keep-alive connections, the CA of the cluster when one is given, the
//! credentials in a header marked sensitive (so no debug output of reqwest or hyper prints
//! them), gzip responses accepted and decoded. Each call picks a node from the [`NodePool`],
//! reads the response body up to a bound, and turns failures into a [`TransportError`] that
//! says which node and what went wrong, which the retry rules and the log lines use as is.
//!
//! The bound is on the *decoded* size: reqwest decodes gzip as a stream (tower-http's
//! decompression body hands out a few KiB at a time), so reading chunk by chunk and stopping
//! at the bound also stops the decompression. A hostile node or proxy answering with an
//! endless body or a gzip bomb costs at most the bound in memory, never the whole answer.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::Method;

use super::config::{Auth, OutputConfig};
use super::nodes::{NodePool, NodeRef};
use super::retry::{Backoff, RetryReason};

/// The largest decoded answer read from any request but `_bulk`: a start-up check, a template,
/// a replay look-up of [`super::replay::IDS_PER_SEARCH`] ids (a few hundred KiB at most).
pub(crate) const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// What one `_bulk` item may take in its answer, filtered to id, status and error: the error's
/// reason quotes a field's value, so room for a long one.
const BULK_ANSWER_BYTES_PER_DOCUMENT: usize = 4 * 1024;

/// The largest decoded `_bulk` answer read for a request of `documents` documents (12 MiB for
/// the default 2000). Larger is not an answer Elasticsearch gives to this request: it is not
/// read, and the request counts as one whose answer was lost.
pub(crate) fn bulk_answer_limit(documents: usize) -> usize {
    MAX_ANSWER_BYTES.saturating_add(documents.saturating_mul(BULK_ANSWER_BYTES_PER_DOCUMENT))
}

/// A request body and how it is encoded.
#[derive(Debug, Clone)]
pub(crate) struct RequestBody {
    pub(crate) bytes: Bytes,
    pub(crate) content_type: &'static str,
    /// The bytes are gzip-compressed (`Content-Encoding: gzip`).
    pub(crate) gzip: bool,
}

/// A complete HTTP answer from one node.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) node: NodeRef,
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// A request that got no complete HTTP answer.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    #[error("cannot connect to {node}: {message}")]
    Connect { node: String, message: String },
    /// TLS failed: unknown CA, wrong host name, or a node that does not speak TLS. Retrying
    /// does not fix it, so startup stops on it.
    #[error("TLS handshake with {node} failed: {message}")]
    Tls { node: String, message: String },
    #[error("{node} did not answer within {timeout:?}")]
    Timeout { node: String, timeout: Duration },
    #[error("request to {node} failed: {message}")]
    Other { node: String, message: String },
    /// The answer is larger than any this request can get: a proxy or a node that is not
    /// Elasticsearch speaking normally. Not read further.
    #[error(
        "{node} sent an answer larger than {limit} bytes (decoded): not read further, not trusted"
    )]
    TooLarge { node: String, limit: usize },
    #[error("no Elasticsearch node is configured")]
    NoNodes,
}

impl TransportError {
    /// The whole-request retry reason for this failure.
    pub(crate) fn retry_reason(&self) -> RetryReason {
        match self {
            TransportError::Connect { .. }
            | TransportError::Tls { .. }
            | TransportError::NoNodes => RetryReason::Connect,
            TransportError::Timeout { .. } => RetryReason::Timeout,
            TransportError::Other { .. } => RetryReason::Transport,
            TransportError::TooLarge { .. } => RetryReason::BadResponse,
        }
    }
}

/// Building the client failed: a configuration problem, reported at start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
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

/// The Elasticsearch HTTP client shared by startup checks, template installation and bulk.
#[derive(Debug)]
pub(crate) struct EsClient {
    http: reqwest::Client,
    nodes: NodePool,
    timeout: Duration,
}

impl EsClient {
    pub(crate) fn new(config: &OutputConfig) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(value) = authorization(&config.auth)? {
            headers.insert(header::AUTHORIZATION, value);
            for node in config.nodes.iter().filter(|n| n.scheme() == "http") {
                tracing::warn!(
                    node = %super::config::redacted_url(node),
                    "credentials go to this node in clear text over http://; use https:// (and ELASTICSEARCH_CA_CERT)"
                );
            }
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(format!(
                "{}/{}",
                schema::agent::TYPE,
                env!("CARGO_PKG_VERSION")
            ))
            .default_headers(headers)
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_keepalive(Duration::from_secs(60))
            .tcp_nodelay(true)
            // Elasticsearch never redirects; following one could send credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_cert {
            let pem = std::fs::read(path).map_err(|source| ClientError::ReadCa {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                ClientError::ParseCa {
                    path: path.clone(),
                    source,
                }
            })?;
            // The cluster's CA alone: with the public web roots still trusted, any
            // certificate a public CA issued for the node's name would be accepted.
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(ClientError::Build)?;
        Ok(EsClient {
            http,
            nodes: NodePool::new(
                &config.nodes,
                Backoff::new(
                    config.retry_initial.max(Duration::from_secs(1)),
                    config.retry_max,
                ),
            ),
            timeout: config.request_timeout,
        })
    }

    /// The nodes requests go to.
    pub(crate) fn nodes(&self) -> &NodePool {
        &self.nodes
    }

    /// Sends one request to the next node and reads its answer, of at most `limit` decoded
    /// bytes.
    ///
    /// A refused connection moves on to the next node that is not in its backoff period at
    /// once: the request never reached Elasticsearch, so sending it elsewhere is safe, and a
    /// dead node in the list then costs no delay. Other failures are returned to the caller,
    /// whose retry rules decide.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<RequestBody>,
        limit: usize,
    ) -> Result<Reply, TransportError> {
        let mut last = TransportError::NoNodes;
        for attempt in 0..self.nodes.len() {
            let Some(node) = self.nodes.pick() else {
                break;
            };
            if attempt > 0 && !self.nodes.dead_for(&node).is_zero() {
                // Every other node is known to be down: let the caller back off.
                break;
            }
            match self
                .send_to(&node, method.clone(), path, body.clone(), limit)
                .await
            {
                Err(err @ TransportError::Connect { .. }) => last = err,
                other => return other,
            }
        }
        Err(last)
    }

    /// Sends one request to a given node and reads its answer, of at most `limit` bytes.
    pub(crate) async fn send_to(
        &self,
        node: &NodeRef,
        method: Method,
        path: &str,
        body: Option<RequestBody>,
        limit: usize,
    ) -> Result<Reply, TransportError> {
        let url = endpoint(&node.url, path);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.header(header::CONTENT_TYPE, body.content_type);
            if body.gzip {
                request = request.header(header::CONTENT_ENCODING, "gzip");
            }
            request = request.body(body.bytes);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(err) => return Err(self.failed(node, &err)),
        };
        // Any HTTP answer, even an error status, proves the node is reachable.
        self.nodes.mark_alive(node);
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        // The whole body or nothing: a truncated bulk answer would misattribute results.
        let body = match read_bounded(response, limit).await {
            Ok(body) => body,
            Err(BodyError::Read(err)) => return Err(self.failed(node, &err)),
            Err(BodyError::TooLarge) => {
                return Err(TransportError::TooLarge {
                    node: node.shown.clone(),
                    limit,
                })
            }
        };
        Ok(Reply {
            node: node.clone(),
            status,
            headers,
            body,
        })
    }

    fn failed(&self, node: &NodeRef, err: &reqwest::Error) -> TransportError {
        let shown = node.shown.clone();
        let message = error_chain(err);
        if err.is_timeout() {
            return TransportError::Timeout {
                node: shown,
                timeout: self.timeout,
            };
        }
        if err.is_connect() {
            self.nodes.mark_dead(node);
            if is_tls_failure(err) {
                return TransportError::Tls {
                    node: shown,
                    message,
                };
            }
            return TransportError::Connect {
                node: shown,
                message,
            };
        }
        TransportError::Other {
            node: shown,
            message,
        }
    }
}

/// Why an answer's body was not read.
enum BodyError {
    Read(reqwest::Error),
    /// More than the limit, decoded.
    TooLarge,
}

/// The decoded body of `response`, refused as soon as it exceeds `limit` bytes. Dropping the
/// response then closes its connection, so the rest is neither downloaded nor decompressed.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    // Without decoding, the announced length already tells (with gzip it is not known).
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    // Most answers come in one chunk: keep it as it is and copy only when a second arrives.
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if joined.is_empty() => first = Some(chunk),
            None => joined.extend_from_slice(&chunk),
            Some(head) => {
                joined.reserve(head.len() + chunk.len());
                joined.extend_from_slice(&head);
                joined.extend_from_slice(&chunk);
            }
        }
    }
    Ok(match first {
        Some(only) => only,
        None => Bytes::from(joined),
    })
}

/// The `Authorization` header for the configured credentials, marked sensitive.
fn authorization(auth: &Auth) -> Result<Option<HeaderValue>, ClientError> {
    use base64::Engine as _;
    let text = match auth {
        Auth::None => return Ok(None),
        Auth::Basic { username, password } => {
            let raw = format!("{username}:{password}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        }
        Auth::ApiKey(key) => format!("ApiKey {}", key.trim()),
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| ClientError::InvalidCredentials)?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// `path` appended to a node URL, keeping a path prefix the node URL may have (a proxy).
fn endpoint(node: &url::Url, path: &str) -> String {
    format!(
        "{}/{}",
        node.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
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

/// rustls failures reach us as `io::Error`s of kind `InvalidData` (tokio-rustls wraps every
/// TLS error that way), possibly inside another `io::Error`; a refused or reset TCP
/// connection has another kind. `io::Error::source` skips the error it wraps, so wrapped
/// `io::Error`s are opened with `get_ref`.
fn is_tls_failure(err: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::InvalidData {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_a_path_prefix() {
        let u = url::Url::parse("https://proxy.example/es/").unwrap();
        assert_eq!(endpoint(&u, "/_bulk"), "https://proxy.example/es/_bulk");
        let u = url::Url::parse("http://127.0.0.1:9200").unwrap();
        assert_eq!(endpoint(&u, "/"), "http://127.0.0.1:9200/");
        assert_eq!(
            endpoint(&u, "/_index_template/x"),
            "http://127.0.0.1:9200/_index_template/x"
        );
    }

    #[test]
    fn basic_credentials_are_base64_encoded_and_sensitive() {
        let v = authorization(&Auth::Basic {
            username: "elastic".into(),
            password: "changeme".into(),
        })
        .unwrap()
        .unwrap();
        assert_eq!(v.to_str().unwrap(), "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==");
        assert!(v.is_sensitive());
    }

    #[test]
    fn api_keys_are_sent_as_given() {
        let v = authorization(&Auth::ApiKey("abc123==".into()))
            .unwrap()
            .unwrap();
        assert_eq!(v.to_str().unwrap(), "ApiKey abc123==");
        assert!(v.is_sensitive());
        assert!(authorization(&Auth::None).unwrap().is_none());
    }

    #[test]
    fn credentials_with_control_characters_are_refused() {
        assert!(matches!(
            authorization(&Auth::ApiKey("a\nb".into())),
            Err(ClientError::InvalidCredentials)
        ));
    }

    #[test]
    fn tls_failures_are_recognised_in_the_error_chain() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let tls = Outer(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        ));
        assert!(is_tls_failure(&tls));
        assert_eq!(
            error_chain(&tls),
            "client error (Connect): invalid peer certificate: UnknownIssuer"
        );
        // As hyper-util reports it: an `Other` io::Error around the `InvalidData` one.
        let nested = Outer(std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "received corrupt message of type InvalidContentType",
        )));
        assert!(is_tls_failure(&nested));
        let refused = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!is_tls_failure(&refused));
    }

    #[test]
    fn a_missing_ca_file_is_a_clear_error() {
        let mut c = OutputConfig::new(
            vec![url::Url::parse("https://127.0.0.1:9200").unwrap()],
            PathBuf::from("/tmp"),
        );
        c.ca_cert = Some(PathBuf::from("/nonexistent/ca.pem"));
        let err = EsClient::new(&c).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
