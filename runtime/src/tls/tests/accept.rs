//! The accept loop on loopback sockets: ALPN as asked, a silent client dropped at the
//! handshake deadline, and the connection cap holding new clients back until one closes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::*;

struct Listening {
    addr: SocketAddr,
    connections: ReceiverStream<std::io::Result<TlsConnection>>,
    ca_pem: String,
    cancel: CancellationToken,
}

async fn listen(alpn: Alpn, limits: AcceptLimits) -> Listening {
    let pair = pair("accept");
    let config = server_config_from_pem(&pair.cert_pem, &pair.key_pem, alpn).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let connections = incoming(listener, Certificates::new(config), limits, cancel.clone());
    Listening {
        addr,
        connections,
        ca_pem: pair.ca_pem,
        cancel,
    }
}

#[tokio::test]
async fn connections_arrive_with_the_agreed_protocol() {
    let mut server = listen(Alpn::H2AndHttp1, AcceptLimits::default()).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let client = handshake(tcp, &server.ca_pem, Alpn::Http1);
    let (agreed, accepted) = tokio::join!(client, server.connections.next());
    assert_eq!(agreed.unwrap().as_deref(), Some(&b"http/1.1"[..]));
    let accepted = accepted.unwrap().unwrap();
    assert_eq!(accepted.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(accepted.peer().ip().is_loopback());
    server.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_dropped_at_the_handshake_deadline() {
    let limits = AcceptLimits {
        handshake_timeout: Duration::from_secs(10),
        max_connections: 8,
        max_handshakes: 8,
    };
    let server = listen(Alpn::H2, limits).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 16];
    // The server sends nothing before the ClientHello, and closes at the deadline.
    let read = silent.read(&mut buf).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= limits.handshake_timeout,
        "closed after {waited:?}"
    );
    assert!(
        waited < limits.handshake_timeout * 2,
        "closed after {waited:?}"
    );
    server.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_connection_cap_holds_new_clients_until_one_closes() {
    let limits = AcceptLimits {
        handshake_timeout: Duration::from_secs(10),
        max_connections: 1,
        max_handshakes: 1,
    };
    let mut server = listen(Alpn::H2, limits).await;
    let first = TcpStream::connect(server.addr).await.unwrap();
    let (first, held) = tokio::join!(
        handshake(first, &server.ca_pem, Alpn::H2),
        server.connections.next()
    );
    first.unwrap();
    let held = held.unwrap().unwrap();

    // At the cap the second client's handshake is not even started.
    let second = TcpStream::connect(server.addr).await.unwrap();
    let mut second = std::pin::pin!(handshake(second, &server.ca_pem, Alpn::H2));
    let waited = tokio::time::timeout(Duration::from_secs(5), &mut second).await;
    assert!(waited.is_err(), "handshake finished above the cap");

    // The first connection closes: its place goes to the second client.
    drop(held);
    let (second, accepted) = tokio::join!(second, server.connections.next());
    assert_eq!(second.unwrap().as_deref(), Some(&b"h2"[..]));
    assert!(accepted.unwrap().is_ok());
    server.cancel.cancel();
}

#[tokio::test]
async fn a_cancelled_loop_stops_yielding() {
    let mut server = listen(Alpn::H2, AcceptLimits::default()).await;
    server.cancel.cancel();
    let next = tokio::time::timeout(Duration::from_secs(5), server.connections.next()).await;
    assert!(matches!(next, Ok(None)), "the stream ends once cancelled");
}

/// H5: handshakes in progress are capped apart from connections: silent clients that never
/// send a ClientHello hold the handshake places, so a further client waits (in the backlog)
/// until one of them times out, even with connection places to spare.
#[tokio::test(start_paused = true)]
async fn h5_concurrent_tls_handshakes_are_capped() {
    let limits = AcceptLimits {
        handshake_timeout: Duration::from_secs(10),
        max_connections: 64,
        max_handshakes: 2,
    };
    let mut server = listen(Alpn::H2, limits).await;
    let _silent_a = TcpStream::connect(server.addr).await.unwrap();
    let _silent_b = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    let third = TcpStream::connect(server.addr).await.unwrap();
    let (third, accepted) = tokio::join!(
        handshake(third, &server.ca_pem, Alpn::H2),
        server.connections.next()
    );
    assert_eq!(third.unwrap().as_deref(), Some(&b"h2"[..]));
    assert!(accepted.unwrap().is_ok());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9),
        "the third handshake started before a place freed ({waited:?})"
    );
    server.cancel.cancel();
}
