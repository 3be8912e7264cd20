//! One ext_proc stream (one HTTP request) as a state machine in plain Rust
//! (epp.md §1), so the protocol is tested without tonic or Envoy.
//!
//! The shell feeds each `ProcessingRequest` in as an [`Event`] and sends the
//! returned [`Reply`]s in order. The request body is buffered to its end,
//! then scheduled; the routing answer is one headers reply (destination
//! header, `Content-Length`, `clear_route_cache`, the same destination under
//! `envoy.lb` metadata) followed by the body in chunks of at most
//! [`MAX_CHUNK_BYTES`]. The [`Pick`]'s in-flight reservation lives in the
//! stream, so it is released when the response ends or the stream is dropped.
//!
//! With flow control on ([`Env::flow_control`]), a request with a body stops
//! in an admitting phase once its body is parsed: the shell takes the
//! [`FlowRequest`] ([`RequestStream::take_flow_request`]), awaits
//! [`FlowController::admit`](crate::flow::FlowController::admit) and hands
//! the outcome to [`RequestStream::on_admission`].

pub mod body;
pub mod reply;
mod response;
pub mod rewrite;
mod schedule;
pub mod usage;

use std::time::{Duration, Instant};

use rand::RngExt;
use switchyard_api::protocol::{
    DESTINATION_ENDPOINT_HEADER, DESTINATION_ENDPOINT_SERVED_KEY, DESTINATION_ENDPOINT_SUBSET_KEY,
    MODEL_NAME_REWRITE_HEADER, REQUEST_ID_HEADER,
};

use crate::datastore::PoolSnapshot;
use crate::error::{Error, Result};
use crate::flow::{Admission, FlowHeaders, FlowRequest, HeaderTrust, Rejection};
use crate::scheduling::plugins::address_matches;
use crate::scheduling::{NoCapacity, Pick, RequestView, Scheduler};

pub use body::{Api, RequestBody};
pub use reply::{ErrorCode, HeadersReply, Reply};
pub use response::ServedEndpoint;

/// Body chunks sent back to Envoy are at most this long (upstream's limit,
/// under Envoy's per-message buffer).
pub const MAX_CHUNK_BYTES: usize = 62_000;

/// The conformance header that pins endpoints (`ip[:port],…`).
pub const TEST_ENDPOINT_SELECTION_HEADER: &str = "test-epp-endpoint-selection";

/// The debug header upstream adds to every response.
pub const RESPONSE_HEADERS_MARKER: &str = "x-went-into-resp-headers";

/// The conformance header `destination-endpoint-served-verifier` answers
/// with: the endpoint the proxy reported as having served the request.
pub const SERVED_ENDPOINT_TEST_HEADER: &str = "x-conformance-test-served-endpoint";

/// One message from Envoy, reduced to what the EPP reads.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// Request headers, with the subset hint from the request metadata.
    RequestHeaders {
        /// Lowercase names and raw values.
        headers: &'a [(&'a str, &'a [u8])],
        /// Set when the request has no body.
        end_of_stream: bool,
        /// `envoy.lb.subset_hint` entries, when the key is present.
        subset: Option<&'a [String]>,
    },
    /// A request-body chunk.
    RequestBody {
        /// The bytes.
        chunk: &'a [u8],
        /// Set on the last chunk.
        end_of_stream: bool,
    },
    /// Request trailers.
    RequestTrailers,
    /// Response headers.
    ResponseHeaders {
        /// Lowercase names and raw values.
        headers: &'a [(&'a str, &'a [u8])],
        /// Set when the response has no body.
        end_of_stream: bool,
        /// The served endpoint from the response metadata.
        served: ServedEndpoint<'a>,
    },
    /// A response-body chunk.
    ResponseBody {
        /// The bytes.
        chunk: &'a [u8],
        /// Set on the last chunk.
        end_of_stream: bool,
    },
    /// Response trailers: the completion signal for gRPC/h2.
    ResponseTrailers,
}

/// What a stream consults while handling an event.
#[derive(Clone, Copy, Debug)]
pub struct Env<'a> {
    /// The pool, loaded once for this event.
    pub snapshot: &'a PoolSnapshot,
    /// The scheduler.
    pub scheduler: &'a Scheduler,
    /// The current time.
    pub now: Instant,
    /// `--disable-endpoint-subset-filter`: ignore the subset hint.
    pub disable_subset_filter: bool,
    /// Whose objective, fairness and TTL headers are believed.
    pub header_trust: &'a HeaderTrust,
    /// Whether requests with a body pass through flow control before the
    /// pick (otherwise the legacy sheddable check applies).
    pub flow_control: bool,
    /// `--model-rewrite-session-header`: the header whose value makes a
    /// rewrite's weighted choice sticky per session instead of per request.
    pub rewrite_session_header: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    RequestHeaders,
    RequestBody,
    /// The body is parsed; the shell is awaiting flow-control admission.
    Admitting,
    ResponseHeaders,
    ResponseBody,
    Done,
}

/// The state of one request.
#[derive(Debug)]
pub struct RequestStream {
    phase: Phase,
    request_id: Option<String>,
    generated_request_id: bool,
    path: String,
    objective: Option<String>,
    fairness_id: String,
    flow_ttl: Option<Duration>,
    flow_request: Option<FlowRequest>,
    forced_model: Option<String>,
    rewrite_session: Option<String>,
    test_selection: Option<String>,
    subset: Option<Vec<String>>,
    body: Vec<u8>,
    client_model: Option<String>,
    target_model: Option<String>,
    pick: Option<Pick>,
    streaming: bool,
    response_status: Option<u16>,
    response_body: Vec<u8>,
    sse_usage: usage::SseUsage,
    usage: Option<usage::Usage>,
}

impl Default for RequestStream {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestStream {
    /// A stream awaiting request headers.
    pub fn new() -> Self {
        Self {
            phase: Phase::RequestHeaders,
            request_id: None,
            generated_request_id: false,
            path: String::new(),
            objective: None,
            fairness_id: String::new(),
            flow_ttl: None,
            flow_request: None,
            forced_model: None,
            rewrite_session: None,
            test_selection: None,
            subset: None,
            body: Vec::new(),
            client_model: None,
            target_model: None,
            pick: None,
            streaming: false,
            response_status: None,
            response_body: Vec::new(),
            sse_usage: usage::SseUsage::default(),
            usage: None,
        }
    }

    /// The request id (from `x-request-id`, or generated).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The InferenceObjective named by a trusted caller, once the headers arrived.
    pub fn objective(&self) -> Option<&str> {
        self.objective.as_deref()
    }

    /// The endpoints picked, once scheduled.
    pub fn pick(&self) -> Option<&Pick> {
        self.pick.as_ref()
    }

    /// The model the client asked for and the one it is served as.
    pub fn models(&self) -> (Option<&str>, Option<&str>) {
        (self.client_model.as_deref(), self.target_model.as_deref())
    }

    /// The upstream status, once the response headers arrived.
    pub fn response_status(&self) -> Option<u16> {
        self.response_status
    }

    /// The admission request, once the stream awaits admission (taken once).
    /// The shell awaits it and reports with [`RequestStream::on_admission`].
    pub fn take_flow_request(&mut self) -> Option<FlowRequest> {
        self.flow_request.take()
    }

    /// Whether the stream awaits the outcome of flow-control admission.
    pub fn is_admitting(&self) -> bool {
        self.phase == Phase::Admitting
    }

    /// Resumes an admitting stream: `Ok` schedules the request (the
    /// [`Admission`] is dropped right after the pick, whose reservation
    /// takes over the load); `Err` ends it with the rejection's status, body
    /// and reason header. `Err` from this function is a shell bug (no
    /// admission was pending).
    pub fn on_admission(
        &mut self,
        outcome: std::result::Result<Admission, Rejection>,
        env: &Env<'_>,
    ) -> Result<Vec<Reply>> {
        if self.phase != Phase::Admitting {
            return Err(Error::Protocol(format!(
                "an admission outcome arrived while the stream expected {}",
                phase_name(self.phase)
            )));
        }
        match outcome {
            Ok(admission) => Ok(self.schedule(env, Some(admission))),
            Err(rejection) => {
                self.finish();
                self.body = Vec::new();
                let (name, value) = rejection.dropped_reason_header();
                Ok(vec![Reply::Immediate {
                    status: rejection.status(),
                    body: rejection.body(),
                    headers: vec![(name.to_owned(), value.to_owned())],
                }])
            }
        }
    }

    /// Whether the request completed (response ended or an immediate reply).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Handles one event. `Err` is a protocol violation by the proxy, which
    /// the shell turns into a gRPC stream error.
    pub fn on_event(&mut self, event: Event<'_>, env: &Env<'_>) -> Result<Vec<Reply>> {
        match (self.phase, event) {
            (
                Phase::RequestHeaders,
                Event::RequestHeaders {
                    headers,
                    end_of_stream,
                    subset,
                },
            ) => Ok(self.on_request_headers(headers, end_of_stream, subset, env)),
            (
                Phase::RequestBody,
                Event::RequestBody {
                    chunk,
                    end_of_stream,
                },
            ) => {
                self.body.extend_from_slice(chunk);
                if end_of_stream {
                    Ok(self.schedule(env, None))
                } else {
                    Ok(Vec::new())
                }
            }
            (Phase::ResponseHeaders, Event::RequestTrailers) => {
                Ok(vec![Reply::Trailers { response: false }])
            }
            (
                Phase::ResponseHeaders,
                Event::ResponseHeaders {
                    headers,
                    end_of_stream,
                    served,
                },
            ) => Ok(self.on_response_headers(headers, end_of_stream, served, env)),
            (
                Phase::ResponseBody,
                Event::ResponseBody {
                    chunk,
                    end_of_stream,
                },
            ) => Ok(self.on_response_body(chunk, end_of_stream)),
            (Phase::ResponseBody | Phase::ResponseHeaders, Event::ResponseTrailers) => {
                self.finish();
                Ok(vec![Reply::Trailers { response: true }])
            }
            (phase, event) => Err(Error::Protocol(format!(
                "{} arrived while the stream expected {}; check the ext_proc processing_mode \
                 (request and response headers SEND, bodies FULL_DUPLEX_STREAMED, trailers SEND)",
                event_name(&event),
                phase_name(phase)
            ))),
        }
    }

    fn on_request_headers(
        &mut self,
        headers: &[(&str, &[u8])],
        end_of_stream: bool,
        subset: Option<&[String]>,
        env: &Env<'_>,
    ) -> Vec<Reply> {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
                .map(str::to_owned)
        };
        self.request_id = get(REQUEST_ID_HEADER).filter(|id| !id.is_empty());
        if self.request_id.is_none() {
            self.request_id = Some(random_uuid());
            self.generated_request_id = true;
        }
        self.path = get(":path")
            .or_else(|| get("x-original-path"))
            .or_else(|| get("x-forwarded-path"))
            .unwrap_or_else(|| "/v1/completions".into());
        let flow = FlowHeaders::read(headers, env.header_trust);
        self.objective = flow.objective.map(str::to_owned);
        if env.flow_control {
            flow.fairness_id.clone_into(&mut self.fairness_id);
            self.flow_ttl = flow.ttl;
        }
        self.forced_model = get(MODEL_NAME_REWRITE_HEADER).filter(|m| !m.is_empty());
        self.rewrite_session = env
            .rewrite_session_header
            .and_then(get)
            .filter(|session| !session.is_empty());
        self.test_selection = get(TEST_ENDPOINT_SELECTION_HEADER);
        self.subset = if env.disable_subset_filter {
            None
        } else {
            subset.map(<[String]>::to_vec)
        };
        if !end_of_stream {
            self.phase = Phase::RequestBody;
            return Vec::new();
        }
        // No body: no model to schedule on, so upstream routes to a random
        // endpoint with no scheduling or admission.
        match self.random_endpoint(env) {
            Some(pick) => {
                let reply = self.routing_headers(&pick, None, env);
                self.pick = Some(pick);
                self.phase = Phase::ResponseHeaders;
                vec![Reply::RequestHeaders(reply)]
            }
            None => self.fail(ErrorCode::Internal, "the pool has no ready endpoint"),
        }
    }

    fn random_endpoint(&self, env: &Env<'_>) -> Option<Pick> {
        let eligible: Vec<_> = env
            .snapshot
            .endpoints
            .iter()
            .filter(|e| e.ready)
            .filter(|e| {
                self.subset
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|entry| address_matches(entry, e.address)))
            })
            .collect();
        if eligible.is_empty() {
            return None;
        }
        let chosen = eligible[rand::rng().random_range(0..eligible.len())];
        Some(Pick {
            endpoints: vec![chosen.address],
            reservation: chosen.load.reserve(0),
        })
    }

    fn fail(&mut self, code: ErrorCode, message: &str) -> Vec<Reply> {
        self.finish();
        vec![code.reply(message)]
    }

    /// Ends the request: releases the reservation.
    fn finish(&mut self) {
        self.phase = Phase::Done;
        self.pick = None;
    }
}

/// Splits `body` into chunks of at most [`MAX_CHUNK_BYTES`], end-of-stream on
/// the last; an empty body is one empty chunk.
fn push_chunks(body: &[u8], mut push: impl FnMut(Vec<u8>, bool)) {
    if body.is_empty() {
        push(Vec::new(), true);
        return;
    }
    let count = body.len().div_ceil(MAX_CHUNK_BYTES);
    for (i, chunk) in body.chunks(MAX_CHUNK_BYTES).enumerate() {
        push(chunk.to_vec(), i + 1 == count);
    }
}

/// A random version-4 UUID.
fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn event_name(event: &Event<'_>) -> &'static str {
    match event {
        Event::RequestHeaders { .. } => "request headers",
        Event::RequestBody { .. } => "a request body chunk",
        Event::RequestTrailers => "request trailers",
        Event::ResponseHeaders { .. } => "response headers",
        Event::ResponseBody { .. } => "a response body chunk",
        Event::ResponseTrailers => "response trailers",
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::RequestHeaders => "request headers",
        Phase::RequestBody => "request body chunks",
        Phase::Admitting => "the flow-control admission outcome",
        Phase::ResponseHeaders => "response headers",
        Phase::ResponseBody => "response body chunks or trailers",
        Phase::Done => "nothing (the request is complete)",
    }
}

#[cfg(test)]
mod tests;
