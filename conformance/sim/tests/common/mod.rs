//! Shared helpers of the HTTP tests: in-process replicas on 127.0.0.1:0 and a hyper-util
//! client.
#![allow(clippy::unwrap_used, dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::net::SocketAddr;
use switchyard_sim::http::{ReplicaHandle, ReplicaOptions, spawn_replica};
use tokio::net::TcpListener;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn pod(&self) -> &str {
        self.headers
            .get("x-inference-pod")
            .unwrap()
            .to_str()
            .unwrap()
    }
}

pub async fn start(opts: ReplicaOptions) -> ReplicaHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_replica(listener, opts).unwrap()
}

/// A replica that answers almost at once (1% of calibrated step costs).
pub fn fast(name: &str) -> ReplicaOptions {
    let mut o = ReplicaOptions::new(name, "m");
    o.time_scale = 0.01;
    o
}

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn send(
    c: &HttpClient,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Resp {
    try_send(c, addr, method, path, body).await.unwrap()
}

/// Like [`send`] but reports body errors (a stream that died) instead of panicking.
pub async fn try_send(
    c: &HttpClient,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Resp, String> {
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(bytes))
        .unwrap();
    let resp = c.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body error: {e}"))?
        .to_bytes();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(str::to_owned)
        .collect()
}
