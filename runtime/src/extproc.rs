//! The one ext_proc stream driver bbr and the EPP share.
//!
//! Each binary keeps its protocol in a plain-Rust state machine and wraps it in a
//! [`Processor`]: the processor turns one inbound `ProcessingRequest` into the responses to
//! send and says what the driver does next ([`Next`]). The driver owns the loop around it:
//! it reads the inbound stream, yields the queued responses in order, and, when a processor
//! asks to wait (the EPP awaiting flow-control admission), awaits that future in a `select!`
//! with the inbound stream, so if Envoy ends the stream first the future is dropped (which
//! withdraws the request from its queue).
//!
//! The stream is driven inline by `futures::stream::unfold`: no task and no channel per
//! request. A processor error ends the stream with that status, never with a clean close: a
//! clean close lets Envoy continue without the processor and forward the request unmodified,
//! even with a fail-closed filter.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use futures::{Stream, StreamExt};
use tonic::Status;

/// The answers of one stream, as a tonic `ExternalProcessor::process` returns them.
pub type Answers = Pin<Box<dyn Stream<Item = Result<ProcessingResponse, Status>> + Send>>;

/// What the driver does after a processor handled an input.
#[derive(Debug)]
pub enum Next<W> {
    /// Read the next inbound message.
    Read,
    /// Await `W` and hand its output to [`Processor::on_resolved`]. Envoy sends nothing more
    /// until the request is answered, so a message (or the end of the stream) arriving
    /// meanwhile ends the stream and drops `W`.
    Wait(W),
    /// The request is over: send what is queued, then end the stream.
    End,
}

/// One stream's protocol, as the driver sees it.
pub trait Processor: Send + 'static {
    /// What the processor may wait for between messages; [`NoWait`] when it never waits.
    type Wait: Future + Send + 'static;

    /// Handles one inbound message, queueing the responses to send in `out`. `Err` ends the
    /// stream with that status.
    fn on_message(
        &mut self,
        message: ProcessingRequest,
        out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<Self::Wait>, Status>;

    /// Handles the output of a [`Next::Wait`] future, like [`Processor::on_message`].
    fn on_resolved(
        &mut self,
        outcome: <Self::Wait as Future>::Output,
        out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<Self::Wait>, Status>;

    /// The inbound stream failed (a message over the decode limit, a reset by Envoy); the
    /// driver ends the stream with `status` after this call.
    fn on_transport_error(&mut self, status: &Status);

    /// An inbound message was over the decode limit (tonic's `OUT_OF_RANGE`, raised from the
    /// length prefix before the message is buffered). Returns the answer that ends the
    /// request instead (BBR's 413 with its JSON error), or `None` to fail the stream, which
    /// Envoy turns into a 500. [`Processor::on_transport_error`] is not called when an
    /// answer is returned.
    fn on_message_too_large(&mut self, _status: &Status) -> Option<ProcessingResponse> {
        None
    }

    /// Envoy closed its side (or sent something while the processor waited) before the
    /// processor said [`Next::End`]: the request is over.
    fn on_close(&mut self);
}

/// A [`Processor::Wait`] for processors that never wait: it has no values, so it can never
/// be constructed, and its output is [`Infallible`].
#[derive(Debug)]
pub enum NoWait {}

impl Future for NoWait {
    type Output = Infallible;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Infallible> {
        match *self {}
    }
}

/// Drives `processor` over `inbound` (a tonic `Streaming<ProcessingRequest>`, or any stream of
/// messages in tests) and returns the answers to hand back to tonic.
pub fn serve<S, P>(inbound: S, processor: P) -> Answers
where
    S: Stream<Item = Result<ProcessingRequest, Status>> + Unpin + Send + 'static,
    P: Processor,
{
    let driver = Driver {
        inbound,
        processor,
        pending: VecDeque::new(),
        waiting: None,
        done: false,
    };
    Box::pin(futures::stream::unfold(driver, |mut driver| async move {
        driver.next().await.map(|answer| (answer, driver))
    }))
}

/// Per-stream driver state.
struct Driver<S, P: Processor> {
    inbound: S,
    processor: P,
    pending: VecDeque<ProcessingResponse>,
    /// The future the processor waits for before reading again.
    waiting: Option<P::Wait>,
    done: bool,
}

impl<S, P> Driver<S, P>
where
    S: Stream<Item = Result<ProcessingRequest, Status>> + Unpin + Send,
    P: Processor,
{
    async fn next(&mut self) -> Option<Result<ProcessingResponse, Status>> {
        loop {
            if let Some(answer) = self.pending.pop_front() {
                return Some(Ok(answer));
            }
            if self.done {
                return None;
            }
            if let Some(wait) = self.waiting.take() {
                let next = tokio::select! {
                    outcome = wait => self.processor.on_resolved(outcome, &mut self.pending),
                    // Anything inbound while waiting is the end of the stream; leaving the
                    // select drops `wait`. A message means the proxy is still there: it gets
                    // an error status, never a clean end it would read as "continue unanswered".
                    inbound = self.inbound.next() => {
                        self.processor.on_close();
                        self.done = true;
                        return matches!(inbound, Some(Ok(_))).then(|| {
                            Err(Status::failed_precondition(
                                "a message arrived before the previous one was answered",
                            ))
                        });
                    }
                };
                if let Err(status) = self.advance(next) {
                    return Some(Err(status));
                }
                continue;
            }
            let next = match self.inbound.next().await {
                Some(Ok(message)) => self.processor.on_message(message, &mut self.pending),
                None => {
                    self.processor.on_close();
                    self.done = true;
                    return None;
                }
                Some(Err(status)) => {
                    if status.code() == tonic::Code::OutOfRange
                        && let Some(answer) = self.processor.on_message_too_large(&status)
                    {
                        self.done = true;
                        return Some(Ok(answer));
                    }
                    self.processor.on_transport_error(&status);
                    self.done = true;
                    return Some(Err(status));
                }
            };
            if let Err(status) = self.advance(next) {
                return Some(Err(status));
            }
        }
    }

    /// Applies a processor's answer; an error ends the stream after what is already queued
    /// is dropped, since the stream fails as a whole.
    fn advance(&mut self, next: Result<Next<P::Wait>, Status>) -> Result<(), Status> {
        match next {
            Ok(Next::Read) => Ok(()),
            Ok(Next::Wait(wait)) => {
                self.waiting = Some(wait);
                Ok(())
            }
            Ok(Next::End) => {
                self.done = true;
                Ok(())
            }
            Err(status) => {
                self.pending.clear();
                self.done = true;
                Err(status)
            }
        }
    }
}

#[cfg(test)]
mod tests;
