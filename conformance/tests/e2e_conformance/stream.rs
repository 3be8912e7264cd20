//! A streaming POST that records when each body chunk arrives, to tell a stream forwarded
//! token by token from one buffered and sent at the end.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
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
