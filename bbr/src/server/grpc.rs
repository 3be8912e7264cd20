//! The tonic ext_proc service: one [`RequestStream`] per gRPC stream, driven by the driver
//! the EPP shares ([`switchyard_runtime::extproc`]): each inbound message is handed to the
//! state machine and its answers are yielded in order; the end-of-request summary feeds the
//! metrics.
//!
//! Errors end the stream with an error status, never with a clean close: a clean close makes
//! Envoy continue without BBR and forward the request unmodified, even fail-closed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use switchyard_runtime::extproc::{self, Answers, Next, NoWait, Processor};
use tonic::{Request, Response, Status, Streaming};

use crate::config::RouterConfig;
use crate::server::mappings::MappingStore;
use crate::server::metrics::Metrics;
use crate::stream::RequestStream;

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

/// One stream: the state machine and the metrics its summary feeds.
struct BbrProcessor {
    machine: RequestStream,
    /// The machine's answers to one message, reused across messages.
    scratch: Vec<ProcessingResponse>,
    metrics: Arc<Metrics>,
}

impl Processor for BbrProcessor {
    type Wait = NoWait;

    fn on_message(
        &mut self,
        message: ProcessingRequest,
        out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<NoWait>, Status> {
        if let Err(err) = self.machine.on_message(message, &mut self.scratch) {
            self.metrics.stream_error(err.kind());
            tracing::warn!(%err, "ending ext_proc stream with an error");
            return Err(err.into());
        }
        out.extend(self.scratch.drain(..));
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
        // BBR answers every message Envoy sends, including response-path ones after the
        // request is routed, so it reads until Envoy closes the stream.
        Ok(Next::Read)
    }

    fn on_resolved(
        &mut self,
        outcome: Infallible,
        _out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<NoWait>, Status> {
        match outcome {}
    }

    fn on_transport_error(&mut self, status: &Status) {
        // Typically a message over the decode limit, or a reset by Envoy.
        self.metrics.stream_error("transport");
        tracing::warn!(code = ?status.code(), message = status.message(), "ext_proc stream failed");
    }

    fn on_message_too_large(&mut self, status: &Status) -> Option<ProcessingResponse> {
        tracing::debug!(
            message = status.message(),
            "message over the decode limit; answering 413"
        );
        let answer = self.machine.on_message_too_large();
        if let Some(summary) = self.machine.take_summary() {
            self.metrics.record(&summary);
        }
        Some(answer)
    }

    fn on_close(&mut self) {
        // Envoy closed its side: the request is over, and its summary was already taken.
    }
}

#[tonic::async_trait]
impl ExternalProcessor for BbrService {
    type ProcessStream = Answers;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let processor = BbrProcessor {
            machine: RequestStream::new(self.config.clone(), self.mappings.snapshot()),
            scratch: Vec::new(),
            metrics: self.metrics.clone(),
        };
        Ok(Response::new(extproc::serve(
            request.into_inner(),
            processor,
        )))
    }
}
