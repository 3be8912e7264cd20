//! A `grpc.health.v1.Health/Check` client: what Envoy's and the kubelet's probes ask BBR and
//! the picker. The two messages are declared here with prost (one field each) rather than
//! pulling in a crate for them.

use std::net::SocketAddr;
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::client::Grpc;
use tonic::transport::Endpoint;
use tonic_prost::ProstCodec;

use crate::error::{Error, Result};

/// How long one check may take, connection included.
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// A health status (`ServingStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `UNKNOWN`.
    Unknown,
    /// `SERVING`.
    Serving,
    /// `NOT_SERVING`.
    NotServing,
    /// `SERVICE_UNKNOWN`, or a number this client does not know.
    ServiceUnknown,
}

/// Asks the health service at `addr` (cleartext HTTP/2) about `service`.
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
        let mut client = Grpc::new(channel);
        client.ready().await.map_err(|e| fail(e.to_string()))?;
        let request = tonic::Request::new(HealthCheckRequest {
            service: service.to_owned(),
        });
        let codec: ProstCodec<HealthCheckRequest, HealthCheckResponse> = ProstCodec::default();
        let response = client
            .unary(request, PathAndQuery::from_static(CHECK_PATH), codec)
            .await
            .map_err(|status| fail(format!("{}: {}", status.code(), status.message())))?;
        Ok(match response.into_inner().status {
            0 => Status::Unknown,
            1 => Status::Serving,
            2 => Status::NotServing,
            _ => Status::ServiceUnknown,
        })
    };
    tokio::time::timeout(CHECK_TIMEOUT, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {CHECK_TIMEOUT:?}")))?
}
