//! Calls to other services that carry the current transaction id.

use std::time::Duration;

use axum::http::Method;
use reqwest::{IntoUrl, RequestBuilder};

use crate::schema;
use crate::transaction;

/// An HTTP client for calls to other services: forwards `X-Transaction-ID` and bounds how
/// long a dependency may take, so a hung dependency becomes a SystemError, not a hung request.
#[derive(Debug, Clone)]
pub struct DependencyClient {
    http: reqwest::Client,
}

impl DependencyClient {
    /// A client giving up after `timeout` (connecting included) that reuses a kept-alive
    /// connection only while it has been idle less than `pool_idle`: less than the time
    /// after which the other services close it, or a request could be sent on a connection
    /// being closed and fail for nothing.
    pub fn new(timeout: Duration, pool_idle: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(pool_idle)
            .user_agent(concat!("didban-service-kit/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }

    /// A request with the current transaction id (if any) in its headers.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match transaction::current() {
            Some(tx) => builder.header(schema::TRANSACTION_ID_HEADER, tx.header_value()),
            None => builder,
        }
    }

    /// `GET url`.
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// `POST url`.
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::POST, url)
    }
}
