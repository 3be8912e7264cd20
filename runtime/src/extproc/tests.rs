//! The shared driver, run over in-memory message streams with a scripted processor.

use std::sync::{Arc, Mutex};

use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Inbound;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Outbound;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyResponse, HttpBody, HttpHeaders, HttpTrailers,
};
use futures::channel::{mpsc, oneshot};

use super::*;

fn headers() -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Inbound::RequestHeaders(HttpHeaders::default())),
        ..ProcessingRequest::default()
    }
}

fn body() -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Inbound::RequestBody(HttpBody::default())),
        ..ProcessingRequest::default()
    }
}

fn trailers() -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Inbound::RequestTrailers(HttpTrailers::default())),
        ..ProcessingRequest::default()
    }
}

fn answer() -> ProcessingResponse {
    ProcessingResponse {
        response: Some(Outbound::RequestBody(BodyResponse::default())),
        ..ProcessingResponse::default()
    }
}

/// What the scripted processor saw, in order.
type Log = Arc<Mutex<Vec<&'static str>>>;

/// Answers headers with one response, waits on a body for the oneshot the test holds, and
/// fails on trailers.
struct Scripted {
    log: Log,
    gate: Option<oneshot::Receiver<u8>>,
}

impl Processor for Scripted {
    type Wait = oneshot::Receiver<u8>;

    fn on_message(
        &mut self,
        message: ProcessingRequest,
        out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<Self::Wait>, Status> {
        match message.request {
            Some(Inbound::RequestHeaders(_)) => {
                self.log.lock().unwrap().push("headers");
                out.push_back(answer());
                Ok(Next::Read)
            }
            Some(Inbound::RequestBody(_)) => {
                self.log.lock().unwrap().push("body");
                Ok(self.gate.take().map_or(Next::End, Next::Wait))
            }
            _ => {
                self.log.lock().unwrap().push("error");
                out.push_back(answer());
                Err(Status::invalid_argument("unexpected message"))
            }
        }
    }

    fn on_resolved(
        &mut self,
        outcome: Result<u8, oneshot::Canceled>,
        out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<Self::Wait>, Status> {
        self.log.lock().unwrap().push("resolved");
        if outcome.is_ok() {
            out.push_back(answer());
            out.push_back(answer());
        }
        Ok(Next::End)
    }

    fn on_transport_error(&mut self, _status: &Status) {
        self.log.lock().unwrap().push("transport");
    }

    fn on_close(&mut self) {
        self.log.lock().unwrap().push("close");
    }
}

fn scripted(gate: Option<oneshot::Receiver<u8>>) -> (Scripted, Log) {
    let log = Log::default();
    let processor = Scripted {
        log: Arc::clone(&log),
        gate,
    };
    (processor, log)
}

#[tokio::test]
async fn answers_in_order_and_ends_when_the_processor_says_so() {
    let (processor, log) = scripted(None);
    let inbound = futures::stream::iter([Ok(headers()), Ok(body()), Ok(headers())]);
    let answers: Vec<_> = serve(inbound, processor).collect().await;
    assert_eq!(answers.len(), 1);
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(
        *log.lock().unwrap(),
        ["headers", "body"],
        "nothing is read after End, and End is not a close"
    );
}

#[tokio::test]
async fn envoy_closing_its_side_ends_the_request_cleanly() {
    let (processor, log) = scripted(None);
    let inbound = futures::stream::iter([Ok(headers())]);
    let answers: Vec<_> = serve(inbound, processor).collect().await;
    assert_eq!(answers.len(), 1);
    assert_eq!(*log.lock().unwrap(), ["headers", "close"]);
}

#[tokio::test]
async fn a_processor_error_is_an_error_status_never_a_clean_end() {
    let (processor, log) = scripted(None);
    let inbound = futures::stream::iter([Ok(headers()), Ok(trailers()), Ok(headers())]);
    let answers: Vec<_> = serve(inbound, processor).collect().await;
    assert_eq!(answers.len(), 2, "the headers' answer, then the error");
    assert!(answers[0].is_ok());
    let status = answers[1].as_ref().unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(*log.lock().unwrap(), ["headers", "error"]);
}

#[tokio::test]
async fn a_transport_error_is_reported_and_passed_on() {
    let (processor, log) = scripted(None);
    let inbound = futures::stream::iter([Err(Status::cancelled("reset"))]);
    let answers: Vec<_> = serve(inbound, processor).collect().await;
    assert_eq!(answers.len(), 1);
    assert_eq!(
        answers[0].as_ref().unwrap_err().code(),
        tonic::Code::Cancelled
    );
    assert_eq!(*log.lock().unwrap(), ["transport"]);
}

#[tokio::test]
async fn a_wait_resolves_into_more_answers() {
    let (gate_tx, gate_rx) = oneshot::channel();
    let (processor, log) = scripted(Some(gate_rx));
    let (inbound_tx, inbound_rx) = mpsc::unbounded();
    inbound_tx.unbounded_send(Ok(headers())).unwrap();
    inbound_tx.unbounded_send(Ok(body())).unwrap();
    let mut answers = serve(inbound_rx, processor);
    assert!(answers.next().await.unwrap().is_ok());
    gate_tx.send(7).unwrap();
    assert!(answers.next().await.unwrap().is_ok());
    assert!(answers.next().await.unwrap().is_ok());
    assert!(answers.next().await.is_none());
    assert_eq!(*log.lock().unwrap(), ["headers", "body", "resolved"]);
    drop(inbound_tx);
}

#[tokio::test]
async fn envoy_going_away_while_waiting_drops_the_wait() {
    let (gate_tx, gate_rx) = oneshot::channel::<u8>();
    let (processor, log) = scripted(Some(gate_rx));
    let (inbound_tx, inbound_rx) = mpsc::unbounded();
    inbound_tx.unbounded_send(Ok(headers())).unwrap();
    inbound_tx.unbounded_send(Ok(body())).unwrap();
    let mut answers = serve(inbound_rx, processor);
    assert!(answers.next().await.unwrap().is_ok());
    drop(inbound_tx);
    assert!(answers.next().await.is_none());
    assert!(
        gate_tx.is_canceled(),
        "the wait was dropped, as an admission must be"
    );
    assert_eq!(*log.lock().unwrap(), ["headers", "body", "close"]);
}

#[tokio::test]
async fn l10_a_message_while_waiting_is_an_error_status_never_a_clean_end() {
    let (_gate_tx, gate_rx) = oneshot::channel::<u8>();
    let (processor, log) = scripted(Some(gate_rx));
    let (inbound_tx, inbound_rx) = mpsc::unbounded();
    inbound_tx.unbounded_send(Ok(headers())).unwrap();
    inbound_tx.unbounded_send(Ok(body())).unwrap();
    let mut answers = serve(inbound_rx, processor);
    assert!(answers.next().await.unwrap().is_ok());
    // The proxy sends more while the body's answer is pending.
    inbound_tx.unbounded_send(Ok(trailers())).unwrap();
    let status = answers.next().await.unwrap().unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(answers.next().await.is_none());
    assert_eq!(*log.lock().unwrap(), ["headers", "body", "close"]);
}

/// Answers an over-limit message with one response of its own.
struct AnswersOversized(Log);

impl Processor for AnswersOversized {
    type Wait = NoWait;

    fn on_message(
        &mut self,
        _message: ProcessingRequest,
        out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<NoWait>, Status> {
        out.push_back(answer());
        Ok(Next::Read)
    }

    fn on_resolved(
        &mut self,
        outcome: Infallible,
        _out: &mut VecDeque<ProcessingResponse>,
    ) -> Result<Next<NoWait>, Status> {
        match outcome {}
    }

    fn on_transport_error(&mut self, _status: &Status) {
        self.0.lock().unwrap().push("transport");
    }

    fn on_close(&mut self) {}

    fn on_message_too_large(&mut self, _status: &Status) -> Option<ProcessingResponse> {
        self.0.lock().unwrap().push("too large");
        Some(answer())
    }
}

fn over_decode_limit() -> Status {
    Status::out_of_range(
        "Error, decoded message length too large: found 9000000 bytes, the limit is: 4194304 bytes",
    )
}

/// H5: a message over the decode limit is answered by the processor (BBR's 413) and the
/// stream then ends cleanly, instead of failing (which Envoy turns into a 500).
#[tokio::test]
async fn h5_a_message_over_the_decode_limit_gets_the_processors_answer() {
    let log = Log::default();
    let inbound = futures::stream::iter([Ok(headers()), Err(over_decode_limit())]);
    let answers: Vec<_> = serve(inbound, AnswersOversized(Arc::clone(&log)))
        .collect()
        .await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(
        answers.iter().all(Result::is_ok),
        "no error status: {answers:?}"
    );
    assert_eq!(*log.lock().unwrap(), ["too large"]);
}

/// A processor without an answer for it (the default) still fails the stream, and other
/// transport errors are never taken for an oversized message.
#[tokio::test]
async fn an_oversized_message_without_an_answer_still_fails_the_stream() {
    let (processor, log) = scripted(None);
    let inbound = futures::stream::iter([Err(over_decode_limit())]);
    let answers: Vec<_> = serve(inbound, processor).collect().await;
    assert_eq!(
        answers[0].as_ref().unwrap_err().code(),
        tonic::Code::OutOfRange
    );
    assert_eq!(*log.lock().unwrap(), ["transport"]);

    let log = Log::default();
    let inbound = futures::stream::iter([Err(Status::cancelled("reset"))]);
    let answers: Vec<_> = serve(inbound, AnswersOversized(Arc::clone(&log)))
        .collect()
        .await;
    assert!(answers[0].is_err());
    assert_eq!(*log.lock().unwrap(), ["transport"]);
}
