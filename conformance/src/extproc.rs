//! A small test ext_proc server: it copies a request header (or a JSON body field) into the
//! routing header and asks Envoy to clear its route cache, which is the part of BBR's contract
//! the harness must prove works end to end before BBR itself exists.
//!
//! The protocol logic is [`Exchange`], a plain state machine per gRPC stream that is tested
//! without tonic; [`TestExtProc`] serves it over real gRPC on loopback.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Phase;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Answer;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyResponse, CommonResponse, HeaderMutation, HeadersResponse, HttpHeaders, ProcessingRequest,
    ProcessingResponse, TrailersResponse,
};
use futures::Stream;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::envoy::bootstrap::MODEL_HEADER;
use crate::error::{Error, Result};

/// Largest gRPC message accepted: a BUFFERED body up to the listener's 4 MiB limit plus
/// headers. tonic's 4 MiB default would reject the biggest bodies Envoy lets through.
const MAX_MESSAGE_BYTES: usize = 5 * 1024 * 1024;

/// What the server sets, and from where.
#[derive(Debug, Clone)]
pub struct Rule {
    from_header: Option<String>,
    from_body_field: Option<String>,
    set_header: String,
}

// === impl Rule ===

impl Rule {
    /// Copies request header `from` into `x-gateway-inference-model` at the headers phase.
    pub fn copy_header(from: impl Into<String>) -> Self {
        Self {
            from_header: Some(from.into()),
            from_body_field: None,
            set_header: MODEL_HEADER.to_owned(),
        }
    }

    /// Copies the string field `field` of a JSON body into `x-gateway-inference-model` at the
    /// body phase (the filter must send the body, BUFFERED).
    pub fn body_field(field: impl Into<String>) -> Self {
        Self {
            from_header: None,
            from_body_field: Some(field.into()),
            set_header: MODEL_HEADER.to_owned(),
        }
    }

    /// Also looks at a JSON body field when the header rule found nothing.
    #[must_use]
    pub fn or_body_field(mut self, field: impl Into<String>) -> Self {
        self.from_body_field = Some(field.into());
        self
    }

    /// Sets `name` instead of `x-gateway-inference-model`.
    #[must_use]
    pub fn set_header(mut self, name: impl Into<String>) -> Self {
        self.set_header = name.into();
        self
    }
}

/// The state of one ext_proc stream (one HTTP request).
#[derive(Debug)]
pub struct Exchange {
    rule: Arc<Rule>,
    routed: bool,
    body: Vec<u8>,
}

// === impl Exchange ===

impl Exchange {
    /// A new stream under `rule`.
    pub fn new(rule: Arc<Rule>) -> Self {
        Self {
            rule,
            routed: false,
            body: Vec::new(),
        }
    }

    /// The answer to one message from Envoy. Every phase gets exactly one answer (the
    /// non-streaming modes require it); only the phase that finds a value mutates headers and
    /// clears the route cache.
    pub fn on_request(&mut self, request: ProcessingRequest) -> Option<ProcessingResponse> {
        let answer = match request.request? {
            Phase::RequestHeaders(headers) => {
                let value = self
                    .rule
                    .from_header
                    .as_deref()
                    .and_then(|name| header_value(&headers, name));
                Answer::RequestHeaders(HeadersResponse {
                    response: Some(self.route_to(value)),
                })
            }
            Phase::RequestBody(chunk) => {
                self.body.extend_from_slice(&chunk.body);
                let value = match (&self.rule.from_body_field, self.routed) {
                    (Some(field), false) if chunk.end_of_stream => {
                        json_string_field(&self.body, field)
                    }
                    _ => None,
                };
                Answer::RequestBody(BodyResponse {
                    response: Some(self.route_to(value)),
                })
            }
            Phase::RequestTrailers(_) => Answer::RequestTrailers(TrailersResponse::default()),
            Phase::ResponseHeaders(_) => Answer::ResponseHeaders(HeadersResponse::default()),
            Phase::ResponseBody(_) => Answer::ResponseBody(BodyResponse::default()),
            Phase::ResponseTrailers(_) => Answer::ResponseTrailers(TrailersResponse::default()),
        };
        Some(ProcessingResponse {
            response: Some(answer),
            ..Default::default()
        })
    }

    fn route_to(&mut self, value: Option<String>) -> CommonResponse {
        let Some(value) = value else {
            return CommonResponse::default();
        };
        self.routed = true;
        CommonResponse {
            header_mutation: Some(HeaderMutation {
                set_headers: vec![HeaderValueOption {
                    header: Some(HeaderValue {
                        key: self.rule.set_header.clone(),
                        raw_value: value.into_bytes(),
                        ..Default::default()
                    }),
                    // Explicit overwrite: a client-sent copy of the header must not survive.
                    append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            // Envoy picked a route from the original headers; make it match again.
            clear_route_cache: true,
            ..Default::default()
        }
    }
}

/// A header's value; Envoy sends `raw_value`, older versions `value`.
fn header_value(headers: &HttpHeaders, name: &str) -> Option<String> {
    let header = headers
        .headers
        .as_ref()?
        .headers
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case(name))?;
    if header.raw_value.is_empty() {
        Some(header.value.clone())
    } else {
        Some(String::from_utf8_lossy(&header.raw_value).into_owned())
    }
}

/// A top-level string field of a JSON object body. Test code: a full parse is fine here.
fn json_string_field(body: &[u8], field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(value.get(field)?.as_str()?.to_owned())
}

/// A running test ext_proc server; stops when dropped.
#[derive(Debug)]
pub struct TestExtProc {
    addr: SocketAddr,
    streams: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

// === impl TestExtProc ===

impl TestExtProc {
    /// Serves `rule` on an ephemeral loopback port.
    pub async fn start(rule: Rule) -> Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), rule).await
    }

    /// Serves `rule` on `addr`.
    pub async fn start_on(addr: SocketAddr, rule: Rule) -> Result<Self> {
        let listener = TcpListener::bind(addr).await.map_err(Error::io(format!(
            "binding the test ext_proc server to {addr}"
        )))?;
        let addr = listener
            .local_addr()
            .map_err(Error::io("reading the ext_proc server's address"))?;
        let streams = Arc::new(AtomicU64::new(0));
        let service = Service {
            rule: Arc::new(rule),
            streams: Arc::clone(&streams),
        };
        let server = tonic::transport::Server::builder().add_service(
            ExternalProcessorServer::new(service).max_decoding_message_size(MAX_MESSAGE_BYTES),
        );
        let task = tokio::spawn(async move {
            if let Err(err) = server
                // Without TCP_NODELAY each small gRPC frame waits on Nagle and the peer's
                // delayed ACK: ~40 ms per request.
                .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
                .await
            {
                tracing::error!(%err, "test ext_proc server stopped");
            }
        });
        tracing::debug!(%addr, "test ext_proc server listening");
        Ok(Self {
            addr,
            streams,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many ext_proc streams (one per HTTP request) it has seen.
    pub fn streams(&self) -> u64 {
        self.streams.load(Ordering::SeqCst)
    }
}

impl Drop for TestExtProc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Service {
    rule: Arc<Rule>,
    streams: Arc<AtomicU64>,
}

type ProcessStream = Pin<Box<dyn Stream<Item = Result<ProcessingResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalProcessor for Service {
    type ProcessStream = ProcessStream;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        self.streams.fetch_add(1, Ordering::SeqCst);
        let mut inbound = request.into_inner();
        let mut exchange = Exchange::new(Arc::clone(&self.rule));
        // One answer per message, so a small bound is enough; the task ends when Envoy
        // closes the stream or stops reading.
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(message)) => {
                        let Some(answer) = exchange.on_request(message) else {
                            continue;
                        };
                        if tx.send(Ok(answer)).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(%status, "ext_proc stream ended with an error");
                        break;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests;
