//! The tonic ext_proc service: one [`RequestStream`] per gRPC stream, driven by the shared
//! driver ([`switchyard_runtime::extproc`]) as bbr's is. Each inbound message loads the pool
//! snapshot once, goes through the state machine, and its replies are sent in order.
//!
//! The machine owns the request's state; this shell only converts messages, awaits
//! flow-control admission when the machine returns [`Step::Admit`] (the driver awaits it in a
//! `select!` with the inbound stream, so if Envoy ends the stream first the admit future is
//! dropped and the request leaves the queue), and records the machine's [`Progress`] in the
//! metrics.
//!
//! A protocol violation ends the stream with an error status, never with a clean close: a
//! clean close lets Envoy continue without the EPP and forward the request to whatever
//! destination the client supplied, even with a fail-closed filter.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Inbound;
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use switchyard_runtime::budget::ByteBudget;
use switchyard_runtime::extproc::{self, Answers, Next, Processor};
use tonic::{Request, Response, Status, Streaming};

use crate::datastore::{Datastore, PoolSnapshot};
use crate::error::Error;
use crate::flow::{Admission, FlowController, HeaderTrust, Outcome, Rejection};
use crate::metrics::{Metrics, ModelHandles, ModelLabels};
use crate::refusal::{ErrorCode, Refusal};
use crate::scheduling::Scheduler;
use crate::server::convert;
use crate::stream::{
    Ending, Env, Event, Progress, Reply, RequestLabels, RequestStream, Step, Summary, ThreadEntropy,
};

/// Room for the protobuf envelope (headers, metadata, attributes) around a body chunk.
const MESSAGE_OVERHEAD_BYTES: usize = 1024 * 1024;

/// Default `--max-buffered-bytes`: a quarter of the chart's 4 Gi EPP memory limit, leaving
/// room for the copies sent back, the prefix tables and the runtime.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 1 << 30;

/// Default `--max-response-buffer-bytes`: enough for any chat or completion JSON; larger
/// responses (big embedding batches) pass through unmodified.
pub const DEFAULT_MAX_RESPONSE_BUFFER_BYTES: usize = 8 << 20;

/// The memory bounds of buffered bodies.
#[derive(Clone, Debug)]
pub struct BufferLimits {
    /// The process-wide budget every stream's buffered bodies draw from
    /// (`--max-buffered-bytes`).
    pub budget: ByteBudget,
    /// The largest non-streamed response body buffered (`--max-response-buffer-bytes`).
    pub max_response_buffer_bytes: usize,
}

impl BufferLimits {
    /// Limits of `max_buffered_bytes` in all and `max_response_buffer_bytes` per response.
    pub fn new(max_buffered_bytes: usize, max_response_buffer_bytes: usize) -> Self {
        Self {
            budget: ByteBudget::new(max_buffered_bytes),
            max_response_buffer_bytes,
        }
    }
}

impl Default for BufferLimits {
    fn default() -> Self {
        Self::new(
            DEFAULT_MAX_BUFFERED_BYTES,
            DEFAULT_MAX_RESPONSE_BUFFER_BYTES,
        )
    }
}

/// What every stream shares.
pub struct Shared {
    /// The pool.
    pub datastore: Arc<Datastore>,
    /// The configured scheduler.
    pub scheduler: Scheduler,
    /// `--disable-endpoint-subset-filter`.
    pub disable_subset_filter: bool,
    /// Largest request body buffered; larger ones are answered 413.
    pub max_body_bytes: usize,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Flow control, when the `flowControl` feature gate is on.
    pub flow: Option<FlowController>,
    /// Whose flow headers (objective, fairness id, TTL) are believed.
    pub header_trust: HeaderTrust,
    /// `--model-rewrite-session-header`.
    pub rewrite_session_header: Option<String>,
    /// `--max-buffered-bytes` and `--max-response-buffer-bytes`.
    pub buffers: BufferLimits,
}

impl Shared {
    /// What the state machine consults for one event.
    fn env<'a>(&'a self, snapshot: &'a PoolSnapshot) -> Env<'a> {
        Env {
            snapshot,
            scheduler: &self.scheduler,
            now: Instant::now(),
            disable_subset_filter: self.disable_subset_filter,
            header_trust: &self.header_trust,
            flow_control: self.flow.is_some(),
            rewrite_session_header: self.rewrite_session_header.as_deref(),
            max_body_bytes: self.max_body_bytes,
            budget: &self.buffers.budget,
            max_response_buffer_bytes: self.buffers.max_response_buffer_bytes,
            entropy: &ThreadEntropy,
        }
    }
}

/// The ext_proc service.
#[derive(Clone)]
pub struct EppService {
    shared: Arc<Shared>,
}

impl EppService {
    /// A service over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The tonic server with the message limits raised to fit `max_body_bytes` (in
    /// FULL_DUPLEX_STREAMED mode Envoy sends chunks, but a client may send one large chunk,
    /// and tonic's 4 MiB default would fail it with a transport error instead of a 413).
    pub fn into_server(self) -> ExternalProcessorServer<Self> {
        let limit = self
            .shared
            .max_body_bytes
            .saturating_add(MESSAGE_OVERHEAD_BYTES);
        ExternalProcessorServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    }
}

/// What a stream waits for: flow-control admission. Boxed because `FlowController::admit`
/// returns an unnameable future; this is one allocation per flow-controlled request, beside
/// the oneshot channel admission already allocates.
type AdmissionWait = Pin<Box<dyn Future<Output = Result<Admission, Rejection>> + Send>>;

/// Decrements the running-requests gauge when the request ends, however it ends (the driver
/// may be dropped mid-request when Envoy resets the stream).
struct Running(Arc<ModelHandles>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.dec();
    }
}

/// One stream: the state machine, plus the metric handles of its running request.
struct EppProcessor {
    machine: RequestStream,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl EppProcessor {
    /// Feeds one event to the machine under a fresh snapshot and acts on its step.
    fn step(
        &mut self,
        event: Event<'_>,
        out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<AdmissionWait>, Error> {
        let snapshot = self.shared.datastore.load();
        let env = self.shared.env(&snapshot);
        let event_start = env.now;
        let step = self.machine.on_event(event, &env);
        self.record(event_start);
        match step? {
            Step::Replies(replies) => {
                out.extend(replies.into_iter().map(convert::to_response));
                Ok(if self.machine.is_done() {
                    Next::End
                } else {
                    Next::Read
                })
            }
            Step::Admit(request) => {
                if let Some(flow) = &self.shared.flow {
                    let wait: AdmissionWait = Box::pin(flow.admit(request));
                    return Ok(Next::Wait(wait));
                }
                // The machine asks only when `Env::flow_control` is set, which is
                // `flow.is_some()`; answer as a controller that is gone would.
                let gone = Rejection::new(Outcome::RejectedOther, request.priority, Duration::ZERO);
                self.step(Event::Admission(Err(gone)), out)
            }
        }
    }

    /// Records what the machine reported; `event_start` times the scheduling decision.
    fn record(&mut self, event_start: Instant) {
        let Progress {
            routed,
            decided,
            responded,
            finished,
        } = self.machine.take_progress();
        if decided {
            self.shared
                .metrics
                .observe_scheduling(event_start.elapsed().as_secs_f64());
        }
        if let Some(routed) = routed {
            let handles = self.handles(&routed.labels);
            handles.requests.inc();
            handles.request_sizes.observe(routed.body_bytes as f64);
            handles.running.inc();
            self.running = Some(Running(handles));
        }
        if let (Some(status), Some(running)) = (responded, &self.running) {
            running.0.response(status);
        }
        if let Some(summary) = finished {
            self.finished(summary);
        }
    }

    fn handles(&self, labels: &RequestLabels) -> Arc<ModelHandles> {
        let client = labels.client_model.as_deref();
        self.shared.metrics.model(ModelLabels {
            model_name: client.unwrap_or_default(),
            target_model_name: labels
                .target_model
                .as_deref()
                .or(client)
                .unwrap_or_default(),
            priority: labels.priority,
        })
    }

    /// The request is over: count a refusal, or record the duration, token usage and
    /// streaming latency of a routed request and release its running slot.
    fn finished(&mut self, summary: Summary) {
        if let Ending::Refused(refusal) = &summary.ending {
            if refusal.code == ErrorCode::BodyTooLarge {
                self.shared.metrics.stream_error("body_too_large");
            }
            self.handles(&summary.labels).error(refusal.status());
            tracing::debug!(status = refusal.status(), reason = %refusal, "request answered by the EPP");
        }
        let Some(running) = self.running.take() else {
            return;
        };
        let handles = &running.0;
        handles.duration.observe(summary.duration.as_secs_f64());
        if let Some(usage) = summary.usage {
            handles.input_tokens.observe(usage.prompt_tokens as f64);
            handles
                .output_tokens
                .observe(usage.completion_tokens as f64);
            if let Some(cached) = usage.cached_tokens {
                handles.prompt_cached_tokens.observe(cached as f64);
            }
        }
        if let Some(ttft) = summary.time_to_first_token {
            handles.ttft.observe(ttft.as_secs_f64());
        }
        if let Some(tpot) = summary.time_per_output_token {
            handles.tpot.observe(tpot.as_secs_f64());
        }
    }

    /// Counts and logs an error that ends the stream, and turns it into its status.
    fn fail(&self, err: Error, message: &ProcessingRequest) -> Status {
        self.shared.metrics.stream_error(err.kind());
        tracing::warn!(%err, phase = convert::phase(message), "ending ext_proc stream with an error");
        err.into()
    }
}

impl Processor for EppProcessor {
    type Wait = AdmissionWait;

    fn on_message(
        &mut self,
        message: ProcessingRequest,
        out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<AdmissionWait>, Status> {
        let subset = convert::subset_hint(&message);
        let headers;
        let event = match &message.request {
            Some(Inbound::RequestHeaders(h)) => {
                headers = convert::header_pairs(h.headers.as_ref());
                Event::RequestHeaders {
                    headers: &headers,
                    end_of_stream: h.end_of_stream,
                    subset: subset.as_deref(),
                }
            }
            Some(Inbound::RequestBody(b)) => Event::RequestBody {
                chunk: &b.body,
                end_of_stream: b.end_of_stream,
            },
            Some(Inbound::RequestTrailers(_)) => Event::RequestTrailers,
            Some(Inbound::ResponseHeaders(h)) => {
                headers = convert::header_pairs(h.headers.as_ref());
                Event::ResponseHeaders {
                    headers: &headers,
                    end_of_stream: h.end_of_stream,
                    served: convert::served_endpoint(&message),
                }
            }
            Some(Inbound::ResponseBody(b)) => Event::ResponseBody {
                chunk: &b.body,
                end_of_stream: b.end_of_stream,
            },
            Some(Inbound::ResponseTrailers(_)) => Event::ResponseTrailers,
            None => {
                let err = Error::MalformedMessage("a ProcessingRequest without a request field");
                return Err(self.fail(err, &message));
            }
        };
        match self.step(event, out) {
            Ok(next) => Ok(next),
            Err(err) => Err(self.fail(err, &message)),
        }
    }

    fn on_resolved(
        &mut self,
        outcome: Result<Admission, Rejection>,
        out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<AdmissionWait>, Status> {
        self.step(Event::Admission(outcome), out).map_err(|err| {
            self.shared.metrics.stream_error(err.kind());
            tracing::warn!(%err, "ending ext_proc stream with an error");
            Status::from(err)
        })
    }

    /// In BUFFERED mode Envoy sends a body in one message, as large as Envoy's own buffer
    /// limit allows; past `--max-body-bytes` + 1 MiB tonic refuses to decode it (before
    /// reading it, so it costs no memory). Failing the stream would be a 500 (fail-closed) or
    /// an unrouted request (fail-open); answered here, the client gets the same 413 and JSON
    /// error body as a body over the limit in FULL_DUPLEX_STREAMED mode. A response body over
    /// the limit (a BUFFERED response) cannot be passed on either: a 500 that says why.
    fn on_message_too_large(&mut self, _status: &Status) -> Option<ProcessingResponse> {
        self.shared.metrics.stream_error("body_too_large");
        let max_body_bytes = self.shared.max_body_bytes;
        let refusal = if self.machine.is_responding() {
            Refusal::new(
                ErrorCode::Internal,
                format!(
                    "the model server's response arrived in one ext_proc message over the \
                     EPP's limit of {max_body_bytes} bytes + 1 MiB; process response bodies \
                     FULL_DUPLEX_STREAMED"
                ),
            )
            .with_reason("response-too-large")
        } else {
            Refusal::body_too_large(max_body_bytes)
        };
        Some(convert::to_response(Reply::Refuse(refusal)))
    }

    fn on_transport_error(&mut self, status: &Status) {
        self.shared.metrics.stream_error("transport");
        tracing::debug!(code = ?status.code(), message = status.message(), "ext_proc stream ended by the proxy");
    }

    fn on_close(&mut self) {
        // Envoy closed its side; the request ends here and its reservation is released.
        self.machine.on_close(Instant::now());
        self.record(Instant::now());
    }
}

#[tonic::async_trait]
impl ExternalProcessor for EppService {
    type ProcessStream = Answers;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let processor = EppProcessor {
            machine: RequestStream::new(),
            shared: Arc::clone(&self.shared),
            running: None,
        };
        Ok(Response::new(extproc::serve(
            request.into_inner(),
            processor,
        )))
    }
}
