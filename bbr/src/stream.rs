//! One ext_proc stream (one HTTP request) as a state machine in plain Rust: envoy-types
//! messages in, envoy-types messages out, no tonic, no I/O, so every protocol path is tested
//! without a server or an Envoy.
//!
//! # Request path
//!
//! - **Headers.** Every client-supplied copy of a header BBR owns (the model header, upstream's
//!   `x-gateway-model-name`, the base-model header) is removed, whatever the body says.
//!   A request without a body (`end_of_stream` on the headers) is answered at once with only
//!   that removal.
//! - **BUFFERED** (chosen from `protocol_config`, which Envoy sends on the first message): the
//!   headers are answered at once; the single body message is answered with the routing
//!   header(s) and `clear_route_cache`.
//! - **FULL_DUPLEX_STREAMED**: nothing is answered until the body ends — by a body message with
//!   `end_of_stream`, or by trailers, since a request that ends in trailers never sends body
//!   EOS. Then the headers answer (routing headers, `content-length`, `clear_route_cache`),
//!   then the body unchanged in chunks of at most [`MAX_CHUNK_BYTES`], the last one with
//!   `end_of_stream` (or followed by the trailers answer).
//! - **Limits.** A body past `max_body_bytes` is answered 413 as soon as it passes the limit,
//!   without buffering further; a `content-length` past it is answered 413 at the headers,
//!   before Envoy buffers or sends anything, and so is a message past the gRPC decode limit
//!   ([`RequestStream::on_message_too_large`]). Every buffered byte is held against the
//!   process-wide budget ([`RouterConfig::budget`]), reserved up front from `content-length`
//!   when the client declares one; a request that would overdraw it is answered 503.
//! - **Verdicts** ([`crate::policy`]): bad bodies get an `ImmediateResponse` with an
//!   OpenAI-style JSON error.
//!
//! # Response path
//!
//! BBR does not process responses; if Envoy is configured to send them anyway, each is passed
//! through unchanged (and echoed in FULL_DUPLEX_STREAMED, which requires it).

mod headers;
mod reply;

use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::BodySendMode;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpHeaders, ProcessingRequest, ProcessingResponse,
};
use switchyard_runtime::budget::BudgetLease;

use crate::adapters::BaseModelIndex;
use crate::config::{BodyMode, RouterConfig};
use crate::error::{Error, Result};
use crate::policy::{self, Reason, Rejection, Verdict};
use headers::{body_mode, declared_length, spoofed_mask};

/// Body chunks sent back to Envoy are at most this long: upstream's size, under the 64 KiB
/// Envoy accepts per streamed message (GIE #2056/#2058).
pub const MAX_CHUNK_BYTES: usize = 62_000;

/// How a request ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The routing header was set from the body.
    Routed,
    /// No body: passed with only the spoofed-header removal.
    NoBody,
    /// A JSON body without `model`, forwarded because `--allow-missing-model` is set.
    PassedWithoutModel,
    /// Answered with an error.
    Rejected(Reason),
}

impl Outcome {
    /// The `outcome` metric label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Routed => "routed",
            Outcome::NoBody => "no_body",
            Outcome::PassedWithoutModel => "passed_without_model",
            Outcome::Rejected(Reason::InvalidJson) => "rejected_invalid_json",
            Outcome::Rejected(Reason::DuplicateModel) => "rejected_duplicate_model",
            Outcome::Rejected(Reason::MissingModel) => "rejected_missing_model",
            Outcome::Rejected(Reason::EmptyModel) => "rejected_empty_model",
            Outcome::Rejected(Reason::ModelNotString) => "rejected_model_not_string",
            Outcome::Rejected(Reason::InvalidModelName) => "rejected_invalid_model_name",
            Outcome::Rejected(Reason::BodyTooLarge) => "rejected_request_too_large",
            Outcome::Rejected(Reason::Overloaded) => "rejected_overloaded",
        }
    }
}

/// What a finished request looked like; taken once by the shell for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// How it ended.
    pub outcome: Outcome,
    /// Body bytes received.
    pub body_bytes: usize,
    /// Client-supplied copies of BBR's headers that were removed (distinct names).
    pub spoofed_removed: usize,
    /// Time spent validating the body and extracting the model.
    pub extraction: Option<Duration>,
    /// The model routed on.
    pub model: Option<String>,
    /// The request body mode in use.
    pub mode: BodyMode,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the request headers.
    Start,
    /// BUFFERED: headers answered, waiting for the one body message.
    AwaitBody,
    /// FULL_DUPLEX_STREAMED: holding headers and body until the body ends.
    Collecting { chunks: Vec<Vec<u8>>, total: usize },
    /// The request side is answered; only trailers and response events may follow.
    Finished,
    /// Answered with an `ImmediateResponse`: Envoy is ending the request, later messages are
    /// ignored rather than answered out of turn.
    Rejected,
}

/// The state of one ext_proc stream.
pub struct RequestStream {
    config: Arc<RouterConfig>,
    index: Arc<BaseModelIndex>,
    phase: Phase,
    mode: BodyMode,
    /// Set when Envoy announced a request body mode BBR cannot route with (its proto name);
    /// only an error once a request actually has a body.
    unusable_mode: Option<&'static str>,
    response_full_duplex: bool,
    /// Bit `i` set: `config.owned_headers()[i]` came from the client.
    spoofed: u32,
    body_bytes: usize,
    summary: Option<Summary>,
    /// The body bytes this stream holds against the process-wide budget.
    lease: BudgetLease,
}

impl RequestStream {
    /// A new stream with the configuration and the base-model snapshot of this request.
    pub fn new(config: Arc<RouterConfig>, index: Arc<BaseModelIndex>) -> Self {
        let mode = config.default_body_mode;
        let lease = config.budget.lease();
        RequestStream {
            config,
            index,
            phase: Phase::Start,
            mode,
            unusable_mode: None,
            response_full_duplex: false,
            spoofed: 0,
            body_bytes: 0,
            summary: None,
            lease,
        }
    }

    /// The summary of the finished request, once.
    pub fn take_summary(&mut self) -> Option<Summary> {
        self.summary.take()
    }

    /// Handles one message from Envoy, appending the answers (zero or more) to `out`.
    ///
    /// An `Err` must end the stream with an error status (see [`crate::error`]).
    pub fn on_message(
        &mut self,
        message: ProcessingRequest,
        out: &mut Vec<ProcessingResponse>,
    ) -> Result<()> {
        if let Some(protocol) = message.protocol_config {
            match body_mode(protocol.request_body_mode) {
                Ok(mode) => self.mode = mode,
                Err(name) => self.unusable_mode = Some(name),
            }
            self.response_full_duplex =
                protocol.response_body_mode == BodySendMode::FullDuplexStreamed as i32;
        }
        match message.request {
            Some(Request::RequestHeaders(headers)) => self.on_request_headers(&headers, out),
            Some(Request::RequestBody(body)) => {
                self.on_request_body(body.body, body.end_of_stream, out)
            }
            Some(Request::RequestTrailers(_)) => self.on_request_trailers(out),
            Some(Request::ResponseHeaders(_)) => {
                out.push(reply::response_headers());
                Ok(())
            }
            Some(Request::ResponseBody(body)) => {
                out.push(reply::response_body(
                    self.response_full_duplex,
                    body.body,
                    body.end_of_stream,
                ));
                Ok(())
            }
            Some(Request::ResponseTrailers(_)) => {
                out.push(reply::response_trailers());
                Ok(())
            }
            // Flow-control window updates and other messages without a phase need no answer.
            None => Ok(()),
        }
    }

    fn on_request_headers(
        &mut self,
        headers: &HttpHeaders,
        out: &mut Vec<ProcessingResponse>,
    ) -> Result<()> {
        if !matches!(self.phase, Phase::Start) {
            return Err(Error::Protocol("request headers received twice"));
        }
        self.spoofed = spoofed_mask(&self.config.owned_headers(), headers);
        if headers.end_of_stream {
            out.push(reply::request_headers(self.removal()));
            self.finish(Outcome::NoBody, None, None);
            return Ok(());
        }
        if let Some(mode) = self.unusable_mode {
            return Err(Error::UnsupportedBodyMode { mode });
        }
        if let Some(declared) = declared_length(headers) {
            // Refuse before Envoy buffers or sends the body.
            if declared > self.config.max_body_bytes {
                self.reject(Rejection::too_large(self.config.max_body_bytes), out);
                return Ok(());
            }
            if let Err(refused) = self.lease.grow_to(declared) {
                self.reject(Rejection::overloaded(&refused), out);
                return Ok(());
            }
        }
        match self.mode {
            BodyMode::Buffered => {
                out.push(reply::request_headers(self.removal()));
                self.phase = Phase::AwaitBody;
            }
            BodyMode::FullDuplexStreamed => {
                self.phase = Phase::Collecting {
                    chunks: Vec::new(),
                    total: 0,
                };
            }
        }
        Ok(())
    }

    fn on_request_body(
        &mut self,
        chunk: Vec<u8>,
        end_of_stream: bool,
        out: &mut Vec<ProcessingResponse>,
    ) -> Result<()> {
        match &mut self.phase {
            // With `request_header_mode: SKIP` the headers go on to the router before the body
            // is read, so a body-derived route can never apply.
            Phase::Start => Err(Error::Protocol(
                "request body received before its headers: set request_header_mode to SEND on \
                 the BBR filter (with SKIP, Envoy routes before BBR sees the body)",
            )),
            Phase::AwaitBody => {
                // BUFFERED: this one message is the whole body (trailers may still follow).
                self.body_bytes = chunk.len();
                if chunk.len() > self.config.max_body_bytes {
                    self.reject(Rejection::too_large(self.config.max_body_bytes), out);
                    return Ok(());
                }
                // Already in memory (Envoy sent it whole), but held while it is scanned: it
                // counts, and a spent budget refuses it rather than taking more.
                if let Err(refused) = self.lease.grow_to(chunk.len()) {
                    self.reject(Rejection::overloaded(&refused), out);
                    return Ok(());
                }
                if chunk.is_empty() {
                    out.push(reply::request_body_buffered(None));
                    self.finish(Outcome::NoBody, None, None);
                    return Ok(());
                }
                self.decide_buffered(&chunk, out);
                Ok(())
            }
            Phase::Collecting { chunks, total } => {
                let new_total = total.saturating_add(chunk.len());
                self.body_bytes = new_total;
                if new_total > self.config.max_body_bytes {
                    // Answer now: nothing more is buffered for this request.
                    self.reject(Rejection::too_large(self.config.max_body_bytes), out);
                    return Ok(());
                }
                if let Err(refused) = self.lease.grow_to(new_total) {
                    // The chunks held so far are dropped with the phase.
                    self.reject(Rejection::overloaded(&refused), out);
                    return Ok(());
                }
                *total = new_total;
                if !chunk.is_empty() {
                    chunks.push(chunk);
                }
                if end_of_stream {
                    self.release(true, out);
                }
                Ok(())
            }
            Phase::Finished => Err(Error::Protocol(
                "request body received after the request was answered (BUFFERED sends one body \
                 message)",
            )),
            Phase::Rejected => Ok(()),
        }
    }

    fn on_request_trailers(&mut self, out: &mut Vec<ProcessingResponse>) -> Result<()> {
        match self.phase {
            Phase::Start => Err(Error::Protocol("request trailers received before headers")),
            Phase::Collecting { .. } => {
                // The body ended without EOS: trailers are the only end signal.
                self.release(false, out);
                if !matches!(self.phase, Phase::Rejected) {
                    out.push(reply::request_trailers());
                }
                Ok(())
            }
            Phase::AwaitBody => {
                // BUFFERED, and the body was empty: headers are already answered.
                out.push(reply::request_trailers());
                self.finish(Outcome::NoBody, None, None);
                Ok(())
            }
            Phase::Finished => {
                out.push(reply::request_trailers());
                Ok(())
            }
            Phase::Rejected => Ok(()),
        }
    }

    // === decisions ===

    /// BUFFERED: answer the body message with the routing headers.
    fn decide_buffered(&mut self, body: &[u8], out: &mut Vec<ProcessingResponse>) {
        let started = Instant::now();
        let verdict = policy::decide(&self.config, body);
        let took = started.elapsed();
        match verdict {
            Verdict::Route(model) => {
                // Spoofed copies were removed with the headers answer.
                let mutation = reply::routing(&self.config, &self.index, &model, 0, None);
                out.push(reply::request_body_buffered(Some(mutation)));
                self.finish(Outcome::Routed, Some(took), Some(model.into_owned()));
            }
            Verdict::PassWithoutModel => {
                out.push(reply::request_body_buffered(None));
                self.finish(Outcome::PassedWithoutModel, Some(took), None);
            }
            Verdict::Reject(rejection) => {
                self.reject(rejection, out);
                if let Some(summary) = &mut self.summary {
                    summary.extraction = Some(took);
                }
            }
        }
    }

    /// FULL_DUPLEX_STREAMED: the body has ended (by EOS, or by trailers when `by_eos` is
    /// false); answer the held headers, then echo the body.
    fn release(&mut self, by_eos: bool, out: &mut Vec<ProcessingResponse>) {
        let Phase::Collecting { chunks, total } =
            std::mem::replace(&mut self.phase, Phase::Finished)
        else {
            return;
        };
        if total == 0 {
            out.push(reply::request_headers(self.removal()));
            if by_eos {
                out.push(reply::streamed_chunk(Vec::new(), true));
            }
            self.finish(Outcome::NoBody, None, None);
            return;
        }
        let started = Instant::now();
        // One contiguous copy only when Envoy split the body.
        let joined;
        let body: &[u8] = match chunks.as_slice() {
            [single] => single,
            _ => {
                joined = chunks.concat();
                &joined
            }
        };
        let verdict = policy::decide(&self.config, body);
        let took = started.elapsed();
        // With trailers the upstream request stays chunked: no content-length then.
        let length = by_eos.then_some(total);
        let (outcome, model) = match verdict {
            Verdict::Route(model) => {
                let mutation =
                    reply::routing(&self.config, &self.index, &model, self.spoofed, length);
                out.push(reply::request_headers_routed(mutation));
                (Outcome::Routed, Some(model.into_owned()))
            }
            Verdict::PassWithoutModel => {
                out.push(reply::request_headers_passed(
                    &self.config.owned_headers(),
                    self.spoofed,
                    length,
                ));
                (Outcome::PassedWithoutModel, None)
            }
            Verdict::Reject(rejection) => {
                self.reject(rejection, out);
                if let Some(summary) = &mut self.summary {
                    summary.extraction = Some(took);
                }
                return;
            }
        };
        reply::echo_body(chunks, by_eos, out);
        self.finish(outcome, Some(took), model);
    }

    /// Envoy sent a message past the gRPC decode limit (a BUFFERED body far past
    /// `max_body_bytes`, refused by tonic from its length prefix): the request gets the same
    /// 413 as any body past the limit, rather than a failed stream and Envoy's 500.
    pub fn on_message_too_large(&mut self) -> ProcessingResponse {
        let rejection = Rejection::too_large(self.config.max_body_bytes);
        let answer = reply::immediate(&rejection);
        self.rejected(rejection);
        answer
    }

    fn reject(&mut self, rejection: Rejection, out: &mut Vec<ProcessingResponse>) {
        out.push(reply::immediate(&rejection));
        self.rejected(rejection);
    }

    /// Records a rejection already answered.
    fn rejected(&mut self, rejection: Rejection) {
        self.lease.release();
        self.phase = Phase::Rejected;
        self.summary = Some(Summary {
            outcome: Outcome::Rejected(rejection.reason),
            body_bytes: self.body_bytes,
            spoofed_removed: 0,
            extraction: None,
            model: None,
            mode: self.mode,
        });
    }

    fn finish(&mut self, outcome: Outcome, extraction: Option<Duration>, model: Option<String>) {
        self.lease.release();
        if !matches!(self.phase, Phase::Rejected) {
            self.phase = Phase::Finished;
        }
        self.summary = Some(Summary {
            outcome,
            body_bytes: self.body_bytes,
            spoofed_removed: self.spoofed.count_ones() as usize,
            extraction,
            model,
            mode: self.mode,
        });
    }

    /// The removal of spoofed headers alone, if there is anything to remove.
    fn removal(&self) -> Option<reply::Mutation> {
        reply::removal(&self.config.owned_headers(), self.spoofed)
    }
}

#[cfg(test)]
mod tests;
