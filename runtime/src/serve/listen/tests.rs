//! M14: the plaintext listeners close clients that send nothing, and hold no more than their
//! cap of connections open; a client past the cap waits in the backlog and is served once a
//! place frees.

use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

fn limits(max_connections: usize, header_read_timeout: Duration) -> ListenLimits {
    ListenLimits {
        max_connections,
        header_read_timeout,
        max_connection_age: Duration::from_secs(60),
    }
}

async fn metrics_server(limits: ListenLimits) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/metrics", axum::routing::get(|| async { "up 1\n" }));
    let cancel = CancellationToken::new();
    tokio::spawn(serve_http1(listener, router, limits, cancel.clone()));
    (addr, cancel)
}

/// Sends one keep-alive `GET /metrics` on `stream` and reads until the body's end.
async fn scrape(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"up 1\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(answer).unwrap()
}

/// Whether the server closed `stream` within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {} // a 408 or similar before the close
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn m14_a_metrics_client_that_sends_nothing_is_disconnected() {
    let (addr, _cancel) = metrics_server(limits(16, Duration::from_millis(300))).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "a slowloris client must not hold its connection"
    );
}

#[tokio::test]
async fn m14_an_idle_keep_alive_metrics_connection_is_closed() {
    let (addr, _cancel) = metrics_server(limits(16, Duration::from_millis(300))).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    assert!(scrape(&mut client).await.starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut client, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn m14_the_metrics_listener_holds_at_most_its_cap_of_connections() {
    let (addr, _cancel) = metrics_server(limits(2, Duration::from_secs(30))).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(scrape(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(scrape(&mut second).await.starts_with("HTTP/1.1 200"));
    // The third connects (the kernel's backlog) but is not served while two are open.
    let mut third = TcpStream::connect(addr).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(300), scrape(&mut third)).await;
    assert!(waiting.is_err(), "served past the cap");
    drop(first);
    let served = tokio::time::timeout(Duration::from_secs(5), scrape(&mut third)).await;
    assert!(served.unwrap().starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn m14_capped_yields_no_connection_past_the_cap_until_one_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let mut incoming = capped(listener, 1, cancel.clone());
    let _client_a = TcpStream::connect(addr).await.unwrap();
    let _client_b = TcpStream::connect(addr).await.unwrap();
    let a = incoming.next().await.unwrap().unwrap();
    assert!(a.peer().ip().is_loopback());
    let past_cap = tokio::time::timeout(Duration::from_millis(200), incoming.next()).await;
    assert!(past_cap.is_err(), "a second connection past a cap of one");
    drop(a);
    let b = tokio::time::timeout(Duration::from_secs(5), incoming.next()).await;
    assert!(matches!(b, Ok(Some(Ok(_)))));
    cancel.cancel();
    assert!(incoming.next().await.is_none(), "ends when cancelled");
}
