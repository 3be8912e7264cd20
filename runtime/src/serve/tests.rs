use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Status;
use tonic_health::pb::health_client::HealthClient;

use super::*;

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// `GET /metrics` over plain HTTP/1.1, the whole answer as text.
async fn get_metrics(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn the_three_servers_answer_and_all_stop_on_the_token() {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    // Any gRPC service stands in for ext_proc: a second health service, reporting NOT_SERVING
    // so the test can tell which port answered.
    let (stand_in_reporter, stand_in) = tonic_health::server::health_reporter();
    stand_in_reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let (grpc, health_listener, metrics) = (loopback().await, loopback().await, loopback().await);
    let grpc_addr = grpc.local_addr().unwrap();
    let health_addr = health_listener.local_addr().unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let router = axum::Router::new().route("/metrics", axum::routing::get(|| async { "up 1\n" }));

    let mut tasks: Tasks<String> = Tasks::new();
    Servers {
        grpc: Listening {
            service: tonic::transport::Server::builder().add_service(stand_in),
            listener: grpc,
        },
        tls: None,
        health: Listening {
            service: Routes::new(health),
            listener: health_listener,
        },
        metrics: Listening {
            service: router,
            listener: metrics,
        },
        limits: ServeLimits::default(),
    }
    .spawn(&mut tasks, |f| {
        format!("{} on {}: {}", f.what, f.addr, f.source)
    });

    let check = |addr: SocketAddr| async move {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::new(channel);
        let request = HealthCheckRequest {
            service: String::new(),
        };
        client.check(request).await.unwrap().into_inner().status
    };
    assert_eq!(check(health_addr).await, Status::Serving as i32);
    assert_eq!(check(grpc_addr).await, Status::NotServing as i32);
    let answer = get_metrics(metrics_addr).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("up 1\n"), "{answer}");

    tasks.token().cancel();
    let stopped = tokio::time::timeout(
        Duration::from_secs(5),
        tasks.wait_for_failure(|join| join.to_string()),
    )
    .await;
    assert_eq!(
        stopped,
        Ok(Ok(())),
        "every server ends cleanly on the token"
    );
    assert!(tokio::net::TcpStream::connect(metrics_addr).await.is_err());
}
