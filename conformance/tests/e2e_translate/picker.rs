//! A FULL_DUPLEX_STREAMED endpoint picker stand-in: it answers the way the EPP protocol
//! requires (headers held until the request body ends, then the routing header with a route
//! cache clear, then the body echoed as streamed chunks; responses echoed chunk by chunk) and
//! picks the endpoint named in one request header, so a test decides the pick.
//!
//! The harness's `extproc::TestExtProc` answers body messages the BUFFERED way, which Envoy
//! rejects on a FULL_DUPLEX_STREAMED filter ("spurious message").

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::ext_proc::v3::body_mutation::Mutation;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Phase;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Answer;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyMutation, BodyResponse, CommonResponse, HeaderMutation, HeadersResponse, HttpHeaders,
    ProcessingRequest, ProcessingResponse, StreamedBodyResponse, TrailersResponse,
};
use futures::{Stream, StreamExt};
use switchyard_api::protocol::DESTINATION_ENDPOINT_HEADER;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// Largest body chunk sent back (the EPP's limit).
const MAX_CHUNK: usize = 62_000;

/// A running picker stand-in; stops when dropped or killed.
///
/// It runs on its own runtime so that [`TestPicker::kill`] ends every connection at once, as a
/// crashed picker would: aborting only the accept loop would leave Envoy's open HTTP/2
/// connection served.
pub struct TestPicker {
    addr: SocketAddr,
    streams: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestPicker {
    /// Picks the endpoint named in request header `pick_header`.
    pub async fn start(pick_header: String) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let streams = Arc::new(AtomicU64::new(0));
        let service = Service {
            pick_header: Arc::new(pick_header),
            streams: Arc::clone(&streams),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            // Without TCP_NODELAY the body answer, written right after the headers answer,
            // waits for Envoy's delayed ACK: 40 ms per request.
            let incoming = TcpListenerStream::new(listener).map(|stream| {
                stream.inspect(|s| {
                    let _ = s.set_nodelay(true);
                })
            });
            let _ = tonic::transport::Server::builder()
                .add_service(ExternalProcessorServer::new(service))
                .serve_with_incoming(incoming)
                .await;
        });
        Self {
            addr,
            streams,
            runtime: Some(runtime),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests it was asked about.
    pub fn streams(&self) -> u64 {
        self.streams.load(Ordering::SeqCst)
    }

    /// Stops serving and closes every connection, like a crash.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for TestPicker {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Service {
    pick_header: Arc<String>,
    streams: Arc<AtomicU64>,
}

/// One request's state.
struct Exchange {
    pick_header: Arc<String>,
    pick: Option<String>,
    body: Vec<u8>,
}

impl Exchange {
    fn answers(&mut self, phase: Phase) -> Vec<Answer> {
        match phase {
            Phase::RequestHeaders(headers) => {
                self.pick = header(&headers, &self.pick_header);
                if headers.end_of_stream {
                    vec![self.routing_headers()]
                } else {
                    Vec::new()
                }
            }
            Phase::RequestBody(chunk) => {
                self.body.extend_from_slice(&chunk.body);
                if !chunk.end_of_stream {
                    return Vec::new();
                }
                let mut answers = vec![self.routing_headers()];
                let body = std::mem::take(&mut self.body);
                answers.extend(streamed(&body, true).into_iter().map(Answer::RequestBody));
                answers
            }
            Phase::RequestTrailers(_) => vec![Answer::RequestTrailers(TrailersResponse::default())],
            Phase::ResponseHeaders(_) => vec![Answer::ResponseHeaders(HeadersResponse::default())],
            Phase::ResponseBody(chunk) => streamed(&chunk.body, chunk.end_of_stream)
                .into_iter()
                .map(Answer::ResponseBody)
                .collect(),
            Phase::ResponseTrailers(_) => {
                vec![Answer::ResponseTrailers(TrailersResponse::default())]
            }
        }
    }

    fn routing_headers(&self) -> Answer {
        let set_headers = self
            .pick
            .iter()
            .map(|pick| HeaderValueOption {
                header: Some(HeaderValue {
                    key: DESTINATION_ENDPOINT_HEADER.to_owned(),
                    raw_value: pick.clone().into_bytes(),
                    ..Default::default()
                }),
                append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                ..Default::default()
            })
            .collect();
        Answer::RequestHeaders(HeadersResponse {
            response: Some(CommonResponse {
                header_mutation: Some(HeaderMutation {
                    set_headers,
                    ..Default::default()
                }),
                clear_route_cache: true,
                ..Default::default()
            }),
        })
    }
}

/// `body` as streamed body responses of at most [`MAX_CHUNK`] bytes (one, possibly empty, at
/// least).
fn streamed(body: &[u8], end_of_stream: bool) -> Vec<BodyResponse> {
    let chunks: Vec<&[u8]> = if body.is_empty() {
        vec![body]
    } else {
        body.chunks(MAX_CHUNK).collect()
    };
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| BodyResponse {
            response: Some(CommonResponse {
                body_mutation: Some(BodyMutation {
                    mutation: Some(Mutation::StreamedResponse(StreamedBodyResponse {
                        body: chunk.to_vec(),
                        end_of_stream: end_of_stream && i == last,
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            }),
        })
        .collect()
}

fn header(headers: &HttpHeaders, name: &str) -> Option<String> {
    let header = headers
        .headers
        .as_ref()?
        .headers
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case(name))?;
    Some(String::from_utf8_lossy(&header.raw_value).into_owned())
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
        let mut exchange = Exchange {
            pick_header: Arc::clone(&self.pick_header),
            pick: None,
            body: Vec::new(),
        };
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok(Some(message)) = inbound.message().await {
                let Some(phase) = message.request else {
                    continue;
                };
                for answer in exchange.answers(phase) {
                    let response = ProcessingResponse {
                        response: Some(answer),
                        ..Default::default()
                    };
                    if tx.send(Ok(response)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
