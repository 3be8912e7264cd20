//! The tonic ext_proc service: one [`crate::stream::Stream`] per gRPC stream, driven inline
//! (no task, no channel): each inbound message is handed to the state machine and its answers
//! are yielded in order.
//!
//! Errors end the stream with an error status, never with a clean close: a clean close makes
//! Envoy continue without BBR and forward the request unmodified, even fail-closed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use futures::Stream as FuturesStream;
use tonic::{Request, Response, Status, Streaming};

use crate::config::RouterConfig;
use crate::server::mappings::MappingStore;
use crate::server::metrics::Metrics;
use crate::stream::Stream;

/// Room for the protobuf envelope (headers, metadata, attributes) around a maximal body.
const MESSAGE_OVERHEAD_BYTES: usize = 1024 * 1024;

/// The ext_proc service.
#[derive(Clone)]
pub struct BbrService {
    config: Arc<RouterConfig>,
    mappings: Arc<MappingStore>,
    metrics: Arc<Metrics>,
}

impl BbrService {
    /// A service over shared configuration, mappings and metrics.
    pub fn new(
        config: Arc<RouterConfig>,
        mappings: Arc<MappingStore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        BbrService {
            config,
            mappings,
            metrics,
        }
    }

    /// The tonic server, with the decode limit raised to fit `max_body_bytes`: tonic's 4 MiB
    /// default would fail larger BUFFERED bodies with a transport error instead of a 413.
    pub fn into_server(self) -> ExternalProcessorServer<Self> {
        let limit = self
            .config
            .max_body_bytes
            .saturating_add(MESSAGE_OVERHEAD_BYTES);
        ExternalProcessorServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    }
}

/// The answers of one stream.
type Answers = Pin<Box<dyn FuturesStream<Item = Result<ProcessingResponse, Status>> + Send>>;

/// Per-stream driver state.
struct Driver {
    inbound: Streaming<ProcessingRequest>,
    machine: Stream,
    pending: VecDeque<ProcessingResponse>,
    scratch: Vec<ProcessingResponse>,
    metrics: Arc<Metrics>,
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
            let message = match self.inbound.message().await {
                Ok(Some(message)) => message,
                // Envoy closed its side: the request is over.
                Ok(None) => return None,
                Err(status) => {
                    // Typically a message over the decode limit, or a reset by Envoy.
                    self.done = true;
                    self.metrics.stream_error("transport");
                    tracing::warn!(code = ?status.code(), message = status.message(), "ext_proc stream failed");
                    return Some(Err(status));
                }
            };
            match self.machine.on_message(message, &mut self.scratch) {
                Ok(()) => {
                    self.pending.extend(self.scratch.drain(..));
                    if let Some(summary) = self.machine.take_summary() {
                        self.metrics.record(&summary);
                        tracing::debug!(
                            outcome = summary.outcome.label(),
                            model = summary.model.as_deref().unwrap_or(""),
                            body_bytes = summary.body_bytes,
                            spoofed_removed = summary.spoofed_removed,
                            mode = summary.mode.as_str(),
                            extraction_us = summary.extraction.map(|d| d.as_micros() as u64),
                            "request processed",
                        );
                    }
                }
                Err(err) => {
                    self.done = true;
                    self.metrics.stream_error(err.kind());
                    tracing::warn!(%err, "ending ext_proc stream with an error");
                    return Some(Err(err.into()));
                }
            }
        }
    }
}

#[tonic::async_trait]
impl ExternalProcessor for BbrService {
    type ProcessStream = Answers;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let driver = Driver {
            inbound: request.into_inner(),
            machine: Stream::new(self.config.clone(), self.mappings.snapshot()),
            pending: VecDeque::new(),
            scratch: Vec::new(),
            metrics: self.metrics.clone(),
            done: false,
        };
        let answers = futures::stream::unfold(driver, |mut driver| async move {
            driver.next().await.map(|answer| (answer, driver))
        });
        Ok(Response::new(Box::pin(answers)))
    }
}
