//! A `grpc.health.v1.Health/Check` client: what Envoy's and the kubelet's probes ask BBR and
//! the picker. The messages and the client stub are `tonic-health`'s, the same crate the
//! servers answer with, so both sides read one definition of the protocol.

use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::error::{Error, Result};

/// A health status, as the protocol names it.
pub use tonic_health::pb::health_check_response::ServingStatus as Status;

/// How long one check may take, connection included.
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// Asks the health service at `addr` (cleartext HTTP/2) about `service`. A status number this
/// client does not know reads as [`Status::ServiceUnknown`].
pub async fn check(addr: SocketAddr, service: &str) -> Result<Status> {
    let fail = |reason: String| Error::Http {
        method: "gRPC".to_owned(),
        uri: format!("http://{addr}{CHECK_PATH}"),
        reason,
    };
    let exchange = async {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| fail(e.to_string()))?
            .connect_timeout(CHECK_TIMEOUT)
            .connect()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|status| fail(format!("{}: {}", status.code(), status.message())))?;
        Ok(Status::try_from(response.into_inner().status).unwrap_or(Status::ServiceUnknown))
    };
    tokio::time::timeout(CHECK_TIMEOUT, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {CHECK_TIMEOUT:?}")))?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tonic_health::server::health_reporter;

    use super::*;

    /// Serves tonic-health's own server on a loopback port, as BBR and the picker do.
    async fn serve() -> (SocketAddr, tonic_health::server::HealthReporter) {
        let (reporter, service) = health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        (addr, reporter)
    }

    #[tokio::test]
    async fn reads_serving_and_not_serving_from_a_real_health_server() {
        let (addr, reporter) = serve().await;
        reporter
            .set_service_status("picker", tonic_health::ServingStatus::Serving)
            .await;
        assert_eq!(check(addr, "picker").await.unwrap(), Status::Serving);
        reporter
            .set_service_status("picker", tonic_health::ServingStatus::NotServing)
            .await;
        assert_eq!(check(addr, "picker").await.unwrap(), Status::NotServing);
        // A service the server was never told about is a gRPC NOT_FOUND, reported as an error.
        let err = check(addr, "other").await.unwrap_err().to_string();
        assert!(err.contains("/grpc.health.v1.Health/Check"), "{err}");
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_naming_the_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = check(addr, "").await.unwrap_err().to_string();
        assert!(err.contains(&addr.to_string()), "{err}");
    }
}
