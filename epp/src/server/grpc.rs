//! The tonic ext_proc service: one [`RequestStream`] per gRPC stream, driven inline (no task,
//! no channel). Each inbound message loads the pool snapshot once, goes through the state
//! machine, and its replies are yielded in order.
//!
//! With flow control on, a stream whose body is parsed waits for admission: the driver
//! awaits [`FlowController::admit`] in a `select!` with the inbound stream, so if Envoy
//! ends the stream first the admit future is dropped and the request leaves the queue.
//!
//! A protocol violation ends the stream with an error status, never with a clean close: a
//! clean close lets Envoy continue without the EPP and forward the request to whatever
//! destination the client supplied, even with a fail-closed filter.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Inbound;
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::datastore::Datastore;
use crate::flow::{FlowController, HeaderTrust};
use crate::metrics::{Metrics, ModelHandles, ModelLabels};
use crate::scheduling::Scheduler;
use crate::server::convert;
use crate::stream::{Env, Event, Reply, RequestStream};

/// Room for the protobuf envelope (headers, metadata, attributes) around a body chunk.
const MESSAGE_OVERHEAD_BYTES: usize = 1024 * 1024;

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
}

impl Shared {
    /// What the state machine consults for one event.
    fn env<'a>(&'a self, snapshot: &'a crate::datastore::PoolSnapshot) -> Env<'a> {
        Env {
            snapshot,
            scheduler: &self.scheduler,
            now: Instant::now(),
            disable_subset_filter: self.disable_subset_filter,
            header_trust: &self.header_trust,
            flow_control: self.flow.is_some(),
            rewrite_session_header: self.rewrite_session_header.as_deref(),
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

type Answers = Pin<Box<dyn Stream<Item = Result<ProcessingResponse, Status>> + Send>>;

/// Decrements the running-requests gauge when the stream ends, however it ends.
struct Running(Arc<ModelHandles>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.dec();
    }
}

/// Per-stream state.
struct Driver {
    inbound: Streaming<ProcessingRequest>,
    machine: RequestStream,
    shared: Arc<Shared>,
    pending: VecDeque<ProcessingResponse>,
    started: Instant,
    /// When the body chunk holding the first token passed (TTFT of a stream).
    first_token: Option<Instant>,
    body_bytes: usize,
    priority: i64,
    model: Option<Arc<ModelHandles>>,
    running: Option<Running>,
    done: bool,
}

impl Driver {
    async fn next(&mut self) -> Option<Result<ProcessingResponse, Status>> {
        loop {
            if let Some(answer) = self.pending.pop_front() {
                return Some(Ok(answer));
            }
            if self.done {
                return None;
            }
            let admit = self
                .machine
                .take_flow_request()
                .and_then(|request| Some(self.shared.flow.as_ref()?.admit(request)));
            if let Some(admit) = admit {
                // Envoy sends nothing more on this stream until it is answered, so any
                // inbound event here is the end of the stream; dropping `admit` withdraws
                // the request from its queue (counted as EvictedContextCancelled).
                tokio::select! {
                    outcome = admit => {
                        if let Err(status) = self.admitted(outcome) {
                            self.done = true;
                            return Some(Err(status));
                        }
                        continue;
                    }
                    _ = self.inbound.message() => {
                        self.finish();
                        return None;
                    }
                }
            }
            let message = match self.inbound.message().await {
                Ok(Some(message)) => message,
                // Envoy closed its side; dropping the driver releases the reservation.
                Ok(None) => {
                    self.finish();
                    return None;
                }
                Err(status) => {
                    self.done = true;
                    self.shared.metrics.stream_error("transport");
                    tracing::debug!(code = ?status.code(), message = status.message(), "ext_proc stream ended by the proxy");
                    return Some(Err(status));
                }
            };
            if let Err(status) = self.handle(&message) {
                self.done = true;
                return Some(Err(status));
            }
        }
    }

    fn handle(&mut self, message: &ProcessingRequest) -> Result<(), Status> {
        let shared = Arc::clone(&self.shared);
        let subset = convert::subset_hint(message);
        let headers;
        let mut schedules = false;
        let event = match &message.request {
            Some(Inbound::RequestHeaders(h)) => {
                headers = convert::header_pairs(h.headers.as_ref());
                schedules = h.end_of_stream;
                Event::RequestHeaders {
                    headers: &headers,
                    end_of_stream: h.end_of_stream,
                    subset: subset.as_deref(),
                }
            }
            Some(Inbound::RequestBody(b)) => {
                self.body_bytes = self.body_bytes.saturating_add(b.body.len());
                if self.body_bytes > shared.max_body_bytes {
                    self.reject_too_large();
                    return Ok(());
                }
                schedules = b.end_of_stream;
                Event::RequestBody {
                    chunk: &b.body,
                    end_of_stream: b.end_of_stream,
                }
            }
            Some(Inbound::RequestTrailers(_)) => Event::RequestTrailers,
            Some(Inbound::ResponseHeaders(h)) => {
                headers = convert::header_pairs(h.headers.as_ref());
                Event::ResponseHeaders {
                    headers: &headers,
                    end_of_stream: h.end_of_stream,
                    served: convert::served_endpoint(message),
                }
            }
            Some(Inbound::ResponseBody(b)) => Event::ResponseBody {
                chunk: &b.body,
                end_of_stream: b.end_of_stream,
            },
            Some(Inbound::ResponseTrailers(_)) => Event::ResponseTrailers,
            None => {
                shared.metrics.stream_error("protocol");
                return Err(Status::invalid_argument(
                    "ext_proc ProcessingRequest without a request field",
                ));
            }
        };
        let snapshot = shared.datastore.load();
        let env = shared.env(&snapshot);
        let replies = match self.machine.on_event(event, &env) {
            Ok(replies) => replies,
            Err(err) => {
                shared.metrics.stream_error("protocol");
                tracing::warn!(%err, phase = convert::phase(message), "ending ext_proc stream with an error");
                return Err(Status::failed_precondition(err.to_string()));
            }
        };
        match &message.request {
            Some(Inbound::ResponseHeaders(_)) => {
                if let (Some(running), Some(status)) =
                    (&self.running, self.machine.response_status())
                {
                    running.0.response(status);
                }
            }
            Some(Inbound::ResponseBody(_))
                if self.first_token.is_none() && self.machine.token_events() > 0 =>
            {
                self.first_token = Some(Instant::now());
            }
            _ => {}
        }
        if matches!(message.request, Some(Inbound::RequestHeaders(_))) {
            // The trusted objective only: an untrusted caller's header names no priority.
            self.priority = snapshot.priority(self.machine.objective());
        }
        if schedules && !self.machine.is_admitting() {
            shared
                .metrics
                .observe_scheduling(env.now.elapsed().as_secs_f64());
            self.after_scheduling(&replies);
        }
        self.pending
            .extend(replies.into_iter().map(convert::to_response));
        if self.machine.is_done() {
            self.finish();
        }
        Ok(())
    }

    fn admitted(
        &mut self,
        outcome: Result<crate::flow::Admission, crate::flow::Rejection>,
    ) -> Result<(), Status> {
        let shared = Arc::clone(&self.shared);
        let snapshot = shared.datastore.load();
        let env = shared.env(&snapshot);
        let replies = self.machine.on_admission(outcome, &env).map_err(|err| {
            shared.metrics.stream_error("protocol");
            Status::internal(err.to_string())
        })?;
        self.after_scheduling(&replies);
        self.pending
            .extend(replies.into_iter().map(convert::to_response));
        if self.machine.is_done() {
            self.finish();
        }
        Ok(())
    }

    fn handles(&mut self) -> Arc<ModelHandles> {
        if let Some(handles) = &self.model {
            return Arc::clone(handles);
        }
        let (client, target) = self.machine.models();
        let handles = self.shared.metrics.model(ModelLabels {
            model_name: client.unwrap_or_default(),
            target_model_name: target.or(client).unwrap_or_default(),
            priority: self.priority,
        });
        self.model = Some(Arc::clone(&handles));
        handles
    }

    fn after_scheduling(&mut self, replies: &[Reply]) {
        let handles = self.handles();
        if let Some(Reply::Immediate { status, body, .. }) = replies.first() {
            handles.error(*status);
            tracing::debug!(status, reason = %body, "request answered by the EPP");
            return;
        }
        if let Some(pick) = self.machine.pick() {
            handles.requests.inc();
            handles.request_sizes.observe(self.body_bytes as f64);
            handles.running.inc();
            self.running = Some(Running(Arc::clone(&handles)));
            tracing::debug!(
                destination = ?pick.endpoints,
                request_id = self.machine.request_id().unwrap_or_default(),
                "request scheduled",
            );
        }
    }

    fn reject_too_large(&mut self) {
        self.shared.metrics.stream_error("body_too_large");
        self.handles().error(413);
        let message = format!(
            "inference error: BadRequest - the request body exceeds the EPP's limit of {} bytes \
             (--max-body-bytes)",
            self.shared.max_body_bytes
        );
        self.pending.push_back(convert::immediate(413, &message));
        self.done = true;
        self.running = None;
    }

    /// TTFT and time per output token of a successful streamed response.
    fn observe_stream_latency(&self, handles: &ModelHandles) {
        let ok = self
            .machine
            .response_status()
            .is_some_and(|s| (200..300).contains(&s));
        let Some(first) = self.first_token else {
            return;
        };
        if !ok || !self.machine.is_streaming_response() {
            return;
        }
        handles
            .ttft
            .observe(first.duration_since(self.started).as_secs_f64());
        let tokens = self.machine.streamed_tokens();
        if tokens >= 2 {
            handles
                .tpot
                .observe(first.elapsed().as_secs_f64() / (tokens - 1) as f64);
        }
    }

    /// The request is complete: record its duration and token usage and
    /// release its running slot.
    fn finish(&mut self) {
        if let Some(running) = self.running.take() {
            let handles = &running.0;
            handles
                .duration
                .observe(self.started.elapsed().as_secs_f64());
            if let Some(usage) = self.machine.usage() {
                handles.input_tokens.observe(usage.prompt_tokens as f64);
                handles
                    .output_tokens
                    .observe(usage.completion_tokens as f64);
                if let Some(cached) = usage.cached_tokens {
                    handles.prompt_cached_tokens.observe(cached as f64);
                }
            }
            self.observe_stream_latency(handles);
        }
        self.done = true;
    }
}

#[tonic::async_trait]
impl ExternalProcessor for EppService {
    type ProcessStream = Answers;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let driver = Driver {
            inbound: request.into_inner(),
            machine: RequestStream::new(),
            shared: Arc::clone(&self.shared),
            pending: VecDeque::new(),
            started: Instant::now(),
            first_token: None,
            body_bytes: 0,
            priority: 0,
            model: None,
            running: None,
            done: false,
        };
        let answers = futures::stream::unfold(driver, |mut driver| async move {
            driver.next().await.map(|answer| (answer, driver))
        });
        Ok(Response::new(Box::pin(answers)))
    }
}
