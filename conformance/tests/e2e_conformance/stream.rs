//! A streaming POST that records when each body chunk arrives, to tell a stream forwarded
//! token by token from one buffered and sent at the end; and one left running in the
//! background, to keep a request in flight while a test sends others.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// One received chunk and when it arrived, from the start of the request.
pub struct Chunk {
    pub at: Duration,
    pub data: Bytes,
}

/// `POST url` with a JSON body; the status and every chunk as it arrived.
pub async fn post_streaming(url: &str, body: String) -> (StatusCode, Vec<Chunk>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let started = Instant::now();
    let exchange = async {
        let response = client.request(request).await.unwrap();
        let status = response.status();
        let mut body = response.into_body();
        let mut chunks = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                chunks.push(Chunk {
                    at: started.elapsed(),
                    data,
                });
            }
        }
        (status, chunks)
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap()
}

/// A streaming request still running: its status and headers have arrived, its body is being
/// drained in the background. Dropping it aborts the request.
pub struct InFlight {
    pub status: StatusCode,
    pub headers: HeaderMap,
    drain: tokio::task::JoinHandle<()>,
}

impl InFlight {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the body has ended.
    pub fn is_finished(&self) -> bool {
        self.drain.is_finished()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

/// `POST url` with a JSON body and `headers`; returns once the response headers arrive and
/// keeps reading the body in the background.
pub async fn start_streaming(url: &str, headers: &[(&str, &str)], body: String) -> InFlight {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::post(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .unwrap()
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = body.frame().await {} });
    InFlight {
        status,
        headers,
        drain,
    }
}
