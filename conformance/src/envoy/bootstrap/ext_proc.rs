//! One ext_proc HTTP filter and the gRPC cluster of its server.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::{duration, static_cluster};

/// How much of a body an ext_proc filter sends to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// Headers only.
    None,
    /// The whole body in one message, after Envoy buffered it.
    Buffered,
    /// Chunks as they arrive, answered with streamed body mutations (what the EPP uses).
    FullDuplexStreamed,
}

impl BodyMode {
    fn as_envoy(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Buffered => "BUFFERED",
            Self::FullDuplexStreamed => "FULL_DUPLEX_STREAMED",
        }
    }
}

/// One ext_proc HTTP filter and the gRPC server it talks to.
#[derive(Debug, Clone)]
pub struct ExtProc {
    name: String,
    server: SocketAddr,
    failure_mode_allow: bool,
    body: BodyMode,
    response: Option<BodyMode>,
    trailers: bool,
    message_timeout: Duration,
    receiving_namespaces: Vec<String>,
    forwarding_namespaces: Vec<String>,
    tls: bool,
}

// === impl ExtProc ===

impl ExtProc {
    /// A filter named `envoy.filters.http.ext_proc.<name>` calling `server`: fail closed,
    /// request headers and BUFFERED request body, no response processing, 5 s per message
    /// (Envoy's 200 ms default is too tight for a loaded 2-core CI machine).
    pub fn new(name: impl Into<String>, server: SocketAddr) -> Self {
        Self {
            name: name.into(),
            server,
            failure_mode_allow: false,
            body: BodyMode::Buffered,
            response: None,
            trailers: false,
            message_timeout: Duration::from_secs(5),
            receiving_namespaces: Vec::new(),
            forwarding_namespaces: Vec::new(),
            tls: false,
        }
    }

    /// An Endpoint Picker filter as GIE's reference Envoy config sets it up: headers SEND,
    /// bodies FULL_DUPLEX_STREAMED and trailers SEND both ways; the `envoy.lb` metadata the
    /// EPP returns is accepted (the ORIGINAL_DST cluster and the access log read it) and the
    /// `envoy.lb.subset_hint` metadata is forwarded to the EPP.
    pub fn endpoint_picker(name: impl Into<String>, server: SocketAddr) -> Self {
        Self::new(name, server)
            .body_mode(BodyMode::FullDuplexStreamed)
            .response_mode(BodyMode::FullDuplexStreamed)
            .trailers(true)
            .receive_metadata("envoy.lb")
            .forward_metadata("envoy.lb.subset_hint")
    }

    /// Whether Envoy continues without the server when it fails (`true`) or answers 5xx.
    #[must_use]
    pub fn failure_mode_allow(mut self, allow: bool) -> Self {
        self.failure_mode_allow = allow;
        self
    }

    /// How the request body is sent.
    #[must_use]
    pub fn body_mode(mut self, body: BodyMode) -> Self {
        self.body = body;
        self
    }

    /// Sends the response headers, and the response body in `body` mode, to the server.
    #[must_use]
    pub fn response_mode(mut self, body: BodyMode) -> Self {
        self.response = Some(body);
        self
    }

    /// Sends request and response trailers to the server.
    #[must_use]
    pub fn trailers(mut self, send: bool) -> Self {
        self.trailers = send;
        self
    }

    /// Accepts dynamic metadata the server returns under `namespace`.
    #[must_use]
    pub fn receive_metadata(mut self, namespace: impl Into<String>) -> Self {
        self.receiving_namespaces.push(namespace.into());
        self
    }

    /// Forwards the request's dynamic metadata under `namespace` to the server.
    #[must_use]
    pub fn forward_metadata(mut self, namespace: impl Into<String>) -> Self {
        self.forwarding_namespaces.push(namespace.into());
        self
    }

    /// Talks TLS (ALPN h2, no certificate verification) to the server.
    #[must_use]
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// How long Envoy waits for each answer.
    #[must_use]
    pub fn message_timeout(mut self, timeout: Duration) -> Self {
        self.message_timeout = timeout;
        self
    }

    /// The HTTP filter's name.
    pub fn filter_name(&self) -> String {
        format!("envoy.filters.http.ext_proc.{}", self.name)
    }

    /// The gRPC cluster's name.
    pub fn cluster_name(&self) -> String {
        format!("ext_proc_{}", self.name)
    }

    pub(super) fn filter(&self) -> Value {
        let send = |yes: bool| if yes { "SEND" } else { "SKIP" };
        let mut config = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
            "stat_prefix": self.name,
            "grpc_service": {
                "envoy_grpc": { "cluster_name": self.cluster_name() },
                "timeout": duration(self.message_timeout),
            },
            "failure_mode_allow": self.failure_mode_allow,
            "processing_mode": {
                "request_header_mode": "SEND",
                "request_body_mode": self.body.as_envoy(),
                "request_trailer_mode": send(self.trailers),
                "response_header_mode": send(self.response.is_some()),
                "response_body_mode": self.response.unwrap_or(BodyMode::None).as_envoy(),
                "response_trailer_mode": send(self.trailers),
            },
            "message_timeout": duration(self.message_timeout),
        });
        if !self.receiving_namespaces.is_empty() || !self.forwarding_namespaces.is_empty() {
            config["metadata_options"] = json!({
                "receiving_namespaces": { "untyped": self.receiving_namespaces },
                "forwarding_namespaces": { "untyped": self.forwarding_namespaces },
            });
        }
        json!({ "name": self.filter_name(), "typed_config": config })
    }

    pub(super) fn cluster(&self) -> Value {
        grpc_cluster(&self.cluster_name(), self.server, self.tls)
    }
}

/// A static cluster for a gRPC server: HTTP/2, optionally over TLS with ALPN h2 (the EPP's
/// `--secure-serving` certificate is self-signed, so it is not verified, as in GIE's
/// reference config).
pub fn grpc_cluster(name: &str, server: SocketAddr, tls: bool) -> Value {
    let mut cluster = static_cluster(name, &[server]);
    cluster["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": { "http2_protocol_options": {} },
        }
    });
    if tls {
        cluster["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": { "alpn_protocols": ["h2"] },
            }
        });
    }
    cluster
}
