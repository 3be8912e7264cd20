//! One ext_proc stream (one HTTP request) as a state machine in plain Rust, so the protocol
//! is tested without tonic or Envoy.
//!
//! The shell feeds each `ProcessingRequest` in as an [`Event`] and acts on the returned
//! [`Step`]: it sends [`Step::Replies`] in order, or, for [`Step::Admit`], awaits flow-control
//! admission and feeds the outcome back as [`Event::Admission`]. The request body is buffered
//! to its end (answered 413 past [`Env::max_body_bytes`]), parsed once, then scheduled; the
//! routing answer is one headers reply (destination header, `Content-Length`,
//! `clear_route_cache`, the same destination under `envoy.lb` metadata) followed by the body
//! in chunks of at most [`MAX_CHUNK_BYTES`]. The [`Pick`]'s in-flight reservation lives in
//! the stream, so it is released when the response ends or the stream is dropped.
//!
//! The machine owns all of one request's state (priority, body size, first-token time,
//! models) and reports what to record through [`RequestStream::take_progress`]; it reads the
//! clock and randomness only from its [`Env`], so it is a pure function of its inputs.

pub mod body;
pub mod entropy;
pub mod reply;
pub mod report;
mod request;
mod response;
pub mod rewrite;
mod schedule;
pub mod usage;

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_runtime::budget::{BudgetLease, ByteBudget};

use switchyard_api::protocol::{
    DESTINATION_ENDPOINT_HEADER, DESTINATION_ENDPOINT_SERVED_KEY, DESTINATION_ENDPOINT_SUBSET_KEY,
    REQUEST_ID_HEADER,
};

use crate::datastore::PoolSnapshot;
use crate::error::{Error, Result};
use crate::flow::{Admission, FlowHeaders, FlowRequest, HeaderTrust, Rejection};
use crate::refusal::{ErrorCode, Refusal};
use crate::scheduling::{Pick, Scheduler};

pub use body::{Api, PromptSpan, RequestBody};
pub use entropy::{Entropy, ThreadEntropy};
pub use reply::{HeadersReply, Reply};
pub use report::{Ending, Progress, RequestLabels, Routed, Summary};
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

/// One message from Envoy, reduced to what the EPP reads, or the outcome of the admission
/// the machine asked for.
#[derive(Debug)]
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
        /// The chunk's bytes.
        chunk: &'a [u8],
        /// Set on the last chunk.
        end_of_stream: bool,
    },
    /// Request trailers.
    RequestTrailers,
    /// The outcome of the flow-control admission a [`Step::Admit`] asked for.
    Admission(std::result::Result<Admission, Rejection>),
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
        /// The chunk's bytes.
        chunk: &'a [u8],
        /// Set on the last chunk.
        end_of_stream: bool,
    },
    /// Response trailers: the completion signal for gRPC/h2.
    ResponseTrailers,
}

/// What the shell does after an event.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Send these replies, in order (possibly none: the machine waits for more input).
    Replies(Vec<Reply>),
    /// Await flow-control admission of this request, then feed the outcome back as
    /// [`Event::Admission`]. Envoy sends nothing more until the request is answered.
    Admit(FlowRequest),
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
    /// `--max-body-bytes`: a larger request body is answered 413.
    pub max_body_bytes: usize,
    /// `--max-buffered-bytes`: the process-wide budget every buffered request and response
    /// body draws from; a request that cannot get its share is refused 503.
    pub budget: &'a ByteBudget,
    /// `--max-response-buffer-bytes`: a non-streamed response body is buffered (to restore
    /// the model name and read the usage) up to this size; past it the response passes
    /// through unmodified.
    pub max_response_buffer_bytes: usize,
    /// Where the random endpoint of a body-less request and generated request ids come from.
    pub entropy: &'a dyn Entropy,
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

/// What scheduling needs from the request body, kept from its one parse.
#[derive(Debug)]
struct ParsedBody {
    client_model: Arc<str>,
    /// The model after a forced or configured rewrite.
    target_model: Arc<str>,
    cache_salt: Option<String>,
    stream: bool,
    prompt: PromptSpan,
    /// Where the body's `model` value lies, for a rewrite to splice at.
    model_span: std::ops::Range<usize>,
}

/// The state of one request.
#[derive(Debug)]
pub struct RequestStream {
    phase: Phase,
    /// When the request headers arrived.
    started: Option<Instant>,
    request_id: Option<String>,
    generated_request_id: bool,
    path: String,
    objective: Option<String>,
    /// The objective's priority, computed once from the request headers.
    priority: i64,
    fairness_id: String,
    flow_ttl: Option<Duration>,
    forced_model: Option<String>,
    rewrite_session: Option<String>,
    test_selection: Option<String>,
    subset: Option<Vec<String>>,
    body: Vec<u8>,
    /// Request-body bytes received so far, counted against `Env::max_body_bytes`.
    body_bytes: usize,
    /// This stream's share of [`Env::budget`]: the request body's buffer until the response
    /// starts, then the buffered response body; returned when the stream ends.
    lease: Option<BudgetLease>,
    /// The request body ended with trailers: the routed body is sent without end-of-stream
    /// and the trailers are answered after it.
    request_trailers: bool,
    parsed: Option<ParsedBody>,
    labels: RequestLabels,
    pick: Option<Pick>,
    streaming: bool,
    response_status: Option<u16>,
    /// When the response chunk holding the first token passed.
    first_token: Option<Instant>,
    response_body: Vec<u8>,
    /// The response outgrew `Env::max_response_buffer_bytes` or the budget: it is forwarded
    /// as it arrives, without model restoration or usage.
    response_passthrough: bool,
    /// Puts the client's model name back, when a rewrite changed it.
    restorer: Option<rewrite::ModelRestorer>,
    sse_usage: usage::SseUsage,
    usage: Option<usage::Usage>,
    progress: Progress,
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
            started: None,
            request_id: None,
            generated_request_id: false,
            path: String::new(),
            objective: None,
            priority: 0,
            fairness_id: String::new(),
            flow_ttl: None,
            forced_model: None,
            rewrite_session: None,
            test_selection: None,
            subset: None,
            body: Vec::new(),
            body_bytes: 0,
            lease: None,
            request_trailers: false,
            parsed: None,
            labels: RequestLabels::default(),
            pick: None,
            streaming: false,
            response_status: None,
            first_token: None,
            response_body: Vec::new(),
            response_passthrough: false,
            restorer: None,
            sse_usage: usage::SseUsage::default(),
            usage: None,
            progress: Progress::default(),
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

    /// The model the client asked for and the one it is served as, once routed.
    pub fn models(&self) -> (Option<&str>, Option<&str>) {
        (
            self.labels.client_model.as_deref(),
            self.labels.target_model.as_deref(),
        )
    }

    /// The upstream status, once the response headers arrived.
    pub fn response_status(&self) -> Option<u16> {
        self.response_status
    }

    /// Whether the response is flowing (headers or body expected next).
    pub fn is_responding(&self) -> bool {
        matches!(self.phase, Phase::ResponseHeaders | Phase::ResponseBody)
    }

    /// Whether the request is complete (a reply ended it, or the response did).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// What happened since the last call, for the shell to record (taken once).
    pub fn take_progress(&mut self) -> Progress {
        std::mem::take(&mut self.progress)
    }

    /// Handles one event. `Err` is a protocol violation by the proxy (or an admission
    /// outcome nobody asked for), which the shell turns into a gRPC stream error.
    pub fn on_event(&mut self, event: Event<'_>, env: &Env<'_>) -> Result<Step> {
        let replies = match (self.phase, event) {
            (
                Phase::RequestHeaders,
                Event::RequestHeaders {
                    headers,
                    end_of_stream,
                    subset,
                },
            ) => return Ok(self.on_request_headers(headers, end_of_stream, subset, env)),
            (
                Phase::RequestBody,
                Event::RequestBody {
                    chunk,
                    end_of_stream,
                },
            ) => return Ok(self.on_request_body(chunk, end_of_stream, env)),
            // Trailers end a body that never said end-of-stream (review finding M7).
            (Phase::RequestBody, Event::RequestTrailers) => {
                self.request_trailers = true;
                return Ok(self.schedule(env));
            }
            (Phase::Admitting, Event::Admission(outcome)) => match outcome {
                // Body-less requests are admitted too (nothing was parsed).
                Ok(admission) if self.parsed.is_none() => self.route_bodiless(env, Some(admission)),
                Ok(admission) => self.route(env, Some(admission)),
                Err(rejection) => self.refuse(rejection.refusal(), env),
            },
            (Phase::ResponseHeaders, Event::RequestTrailers) => {
                vec![Reply::Trailers { response: false }]
            }
            (
                Phase::ResponseHeaders,
                Event::ResponseHeaders {
                    headers,
                    end_of_stream,
                    served,
                },
            ) => self.on_response_headers(headers, end_of_stream, served, env),
            (
                Phase::ResponseBody,
                Event::ResponseBody {
                    chunk,
                    end_of_stream,
                },
            ) => self.on_response_body(chunk, end_of_stream, env),
            (Phase::ResponseBody | Phase::ResponseHeaders, Event::ResponseTrailers) => {
                self.on_response_trailers(env)
            }
            (phase, event) => {
                return Err(Error::Protocol(format!(
                    "{} arrived while the stream expected {}; check the ext_proc processing_mode \
                     (request and response headers SEND, bodies FULL_DUPLEX_STREAMED, trailers SEND)",
                    event_name(&event),
                    phase_name(phase)
                )));
            }
        };
        Ok(Step::Replies(replies))
    }

    /// The proxy closed the stream (or went away) at `now`: a request still in flight ends
    /// here, so its summary is recorded and its reservation released.
    pub fn on_close(&mut self, now: Instant) {
        if self.phase != Phase::Done {
            self.finish(Ending::Closed, now);
        }
    }

    /// Ends the request with a local reply.
    fn refuse(&mut self, refusal: Refusal, env: &Env<'_>) -> Vec<Reply> {
        self.body = Vec::new();
        self.finish(Ending::Refused(refusal.clone()), env.now);
        vec![Reply::Refuse(refusal)]
    }

    /// Ends the request: releases the reservation and writes its summary.
    fn finish(&mut self, ending: Ending, now: Instant) {
        self.phase = Phase::Done;
        self.pick = None;
        self.lease = None;
        let started = self.started.unwrap_or(now);
        let (time_to_first_token, time_per_output_token) = self.stream_latency(started, now);
        self.progress.finished = Some(Summary {
            labels: self.labels.clone(),
            ending,
            duration: now.saturating_duration_since(started),
            usage: self.usage(),
            time_to_first_token,
            time_per_output_token,
        });
    }

    /// TTFT and time per output token, for a successful streamed response that saw a token.
    fn stream_latency(
        &self,
        started: Instant,
        now: Instant,
    ) -> (Option<Duration>, Option<Duration>) {
        let ok = self
            .response_status
            .is_some_and(|s| (200..300).contains(&s));
        let Some(first) = self.first_token else {
            return (None, None);
        };
        if !ok || !self.is_streaming_response() {
            return (None, None);
        }
        let tokens = self.streamed_tokens();
        let per_token = (tokens >= 2).then(|| {
            let after_first = now.saturating_duration_since(first);
            after_first.div_f64((tokens - 1) as f64)
        });
        (Some(first.saturating_duration_since(started)), per_token)
    }
}

/// Sends the concatenation of `parts` as chunks of at most [`MAX_CHUNK_BYTES`], the last
/// one marked `end_of_stream` when `end` is set; an empty body is one empty chunk. Each
/// byte is copied once, straight into its chunk: the parts are never joined first.
fn push_chunks(parts: &[&[u8]], end: bool, mut push: impl FnMut(Vec<u8>, bool)) {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total == 0 {
        push(Vec::new(), end);
        return;
    }
    let mut left = total;
    let mut chunk = Vec::with_capacity(left.min(MAX_CHUNK_BYTES));
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() {
            let room = MAX_CHUNK_BYTES - chunk.len();
            let (now, later) = rest.split_at(rest.len().min(room));
            chunk.extend_from_slice(now);
            left -= now.len();
            rest = later;
            if chunk.len() == MAX_CHUNK_BYTES && left > 0 {
                let next = Vec::with_capacity(left.min(MAX_CHUNK_BYTES));
                push(std::mem::replace(&mut chunk, next), false);
            }
        }
    }
    push(chunk, end);
}

fn event_name(event: &Event<'_>) -> &'static str {
    match event {
        Event::RequestHeaders { .. } => "request headers",
        Event::RequestBody { .. } => "a request body chunk",
        Event::RequestTrailers => "request trailers",
        Event::Admission(_) => "a flow-control admission outcome",
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
