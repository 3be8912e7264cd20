//! A small HTTP/1.1 client for talking to Envoy and its admin API in tests, on the hyper-util
//! legacy client the workspace already carries.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::{Error, Result};

/// Upper bound on one whole exchange, so a wedged proxy fails a test instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A pooled HTTP/1.1 client with a per-request timeout.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

/// A fully read response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

// === impl HttpResponse ===

impl HttpResponse {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|source| Error::Json {
            context: format!("parsing response body as JSON: {:?}", self.text()),
            source,
        })
    }

    /// A response header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

// === impl HttpClient ===

impl HttpClient {
    /// A new client with its own connection pool.
    pub fn new() -> Self {
        Self {
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `GET url` with extra headers.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse> {
        self.request(Method::GET, url, headers, Bytes::new()).await
    }

    /// `POST url` with extra headers and a body.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<HttpResponse> {
        self.request(Method::POST, url, headers, body.into()).await
    }

    /// Any request; the body is read completely.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<HttpResponse> {
        let fail = |reason: String| Error::Http {
            method: method.to_string(),
            uri: url.to_owned(),
            reason,
        };
        let mut builder = Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| fail(format!("invalid request: {e}")))?;
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| fail(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| fail(format!("reading the body: {}", error_chain(&e))))?
                .to_bytes();
            Ok(HttpResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| fail(format!("no complete response within {REQUEST_TIMEOUT:?}")))?
    }
}

/// hyper's errors say little at the top level ("client error (Connect)"); the cause is below.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
