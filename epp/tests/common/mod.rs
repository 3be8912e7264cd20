//! Helpers shared by the EPP's integration tests: an EPP in-process on port 0 with a
//! standalone endpoints file, and ext_proc message builders.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpBody, HttpHeaders, HttpTrailers, ProcessingRequest,
};
use switchyard_epp::scheduling::{Scheduler, SchedulerConfig};
use switchyard_epp::scrape::ScrapeConfig;
use switchyard_epp::server::tls::CertSource;
use switchyard_epp::server::{self, DEFAULT_MAX_BODY_BYTES, Options, Running};
use switchyard_epp::source::standalone::StandaloneSource;
use tempfile::NamedTempFile;

pub fn any_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// An endpoints file listing `backends` (named `sim-<i>`), plus `extra` YAML.
pub fn endpoints_file(pool: &str, backends: &[SocketAddr], extra: &str) -> NamedTempFile {
    let mut text = format!("poolName: {pool}\nendpoints:\n");
    for (i, addr) in backends.iter().enumerate() {
        text.push_str(&format!("- {{name: {pool}-{i}, address: '{addr}'}}\n"));
    }
    if backends.is_empty() {
        text = format!("poolName: {pool}\nendpoints: []\n");
    }
    text.push_str(extra);
    let mut file = NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.flush().unwrap();
    file
}

/// How a test EPP is set up.
pub struct EppSetup {
    pub file: PathBuf,
    pub config: SchedulerConfig,
    pub tls: Option<CertSource>,
    pub max_body_bytes: usize,
    pub flow_control: switchyard_epp::flow::FlowControlConfig,
    pub buffers: switchyard_epp::server::grpc::BufferLimits,
    /// Whose steering headers are believed (standalone's default: everybody's).
    pub header_trust: switchyard_epp::flow::HeaderTrust,
}

impl EppSetup {
    pub fn new(file: PathBuf) -> Self {
        Self {
            file,
            config: SchedulerConfig::default(),
            tls: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            flow_control: switchyard_epp::flow::FlowControlConfig::default(),
            buffers: Default::default(),
            header_trust: switchyard_epp::flow::HeaderTrust::Always,
        }
    }

    pub async fn start(self) -> Running {
        let source = StandaloneSource::open(self.file, "pool", Duration::from_millis(50)).unwrap();
        server::start(
            Options {
                scheduler: Scheduler::new(self.config),
                grpc_addr: any_port(),
                health_addr: any_port(),
                metrics_addr: any_port(),
                tls: self.tls,
                disable_subset_filter: false,
                max_body_bytes: self.max_body_bytes,
                leader_election: false,
                drain_timeout: Duration::from_secs(5),
                max_concurrent_streams: 1000,
                scrape: ScrapeConfig::default(),
                flow_control: self.flow_control,
                header_trust: self.header_trust,
                rewrite_session_header: None,
                buffers: self.buffers,
            },
            source,
        )
        .await
        .unwrap()
    }
}

fn header_map(list: &[(&str, &str)]) -> HeaderMap {
    HeaderMap {
        headers: list
            .iter()
            .map(|(k, v)| HeaderValue {
                key: (*k).to_owned(),
                raw_value: v.as_bytes().to_vec(),
                ..HeaderValue::default()
            })
            .collect(),
    }
}

pub fn request_headers(path: &str, eos: bool, extra: &[(&str, &str)]) -> ProcessingRequest {
    let mut list = vec![(":method", "POST"), (":path", path)];
    list.extend_from_slice(extra);
    ProcessingRequest {
        request: Some(Request::RequestHeaders(HttpHeaders {
            headers: Some(header_map(&list)),
            end_of_stream: eos,
            ..HttpHeaders::default()
        })),
        ..ProcessingRequest::default()
    }
}

pub fn request_body(bytes: &[u8], eos: bool) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::RequestBody(HttpBody {
            body: bytes.to_vec(),
            end_of_stream: eos,
            ..HttpBody::default()
        })),
        ..ProcessingRequest::default()
    }
}

pub fn response_headers(status: &str, content_type: &str, eos: bool) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::ResponseHeaders(HttpHeaders {
            headers: Some(header_map(&[
                (":status", status),
                ("content-type", content_type),
            ])),
            end_of_stream: eos,
            ..HttpHeaders::default()
        })),
        ..ProcessingRequest::default()
    }
}

pub fn response_body(bytes: &[u8], eos: bool) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::ResponseBody(HttpBody {
            body: bytes.to_vec(),
            end_of_stream: eos,
            ..HttpBody::default()
        })),
        ..ProcessingRequest::default()
    }
}

pub fn response_trailers() -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::ResponseTrailers(HttpTrailers::default())),
        ..ProcessingRequest::default()
    }
}

/// Polls the gRPC health service at `health` until `readiness` answers SERVING, panicking
/// with `what` once `deadline` has passed.
pub async fn wait_until_serving(health: SocketAddr, deadline: std::time::Instant, what: &str) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let channel = tonic::transport::Channel::from_shared(format!("http://{health}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    loop {
        let status = client
            .check(HealthCheckRequest {
                service: "readiness".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        if status == ServingStatus::Serving as i32 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
