//! The one mapping from [`Error`] to a gRPC status.

use super::*;

/// One error of every variant, so a new variant cannot skip the mapping test (the match in
/// `From<Error> for Status` is exhaustive, and so is `kind()`).
fn every_error() -> Vec<Error> {
    vec![
        Error::MetricMissing {
            engine: "vllm".into(),
            semantic: "queued requests",
            spec: "vllm:num_requests_waiting".into(),
            field: "queuedRequestsSpec",
        },
        Error::MetricSpec {
            spec: "x{".into(),
            field: "queuedRequestsSpec",
            reason: "unclosed brace",
        },
        Error::ConfigSyntax("bad yaml".into()),
        Error::Config("no profile".into()),
        Error::UnknownPluginType {
            name: "p".into(),
            type_: "nope".into(),
            known: "a, b".into(),
        },
        Error::UnsupportedPluginType {
            name: "p".into(),
            type_: "lora-affinity-scorer".into(),
            known: "a, b".into(),
        },
        Error::PluginParameters {
            name: "p".into(),
            type_: "t".into(),
            reason: "bad".into(),
        },
        Error::Protocol("response body before request headers".into()),
        Error::MalformedMessage("a ProcessingRequest without a request field"),
        Error::FlowControlConfig {
            field: "flowControl.maxBytes".into(),
            reason: "must be positive".into(),
        },
        Error::Serve(switchyard_runtime::serve::ServeFailure {
            what: "gRPC",
            addr: "127.0.0.1:9002".parse().unwrap(),
            source: std::io::Error::other("in use"),
        }),
        Error::Flag {
            flag: "--grpc-port",
            reason: "not a port".into(),
        },
        Error::EndpointsFile {
            path: "/tmp/endpoints.yaml".into(),
            reason: "missing".into(),
        },
        Error::Tls("no key".into()),
        Error::PodMetadata {
            pod: "p".into(),
            reason: "bad port".into(),
        },
        Error::Scrape {
            endpoint: "e".into(),
            address: "10.0.0.1:8000".parse().unwrap(),
            reason: "timeout",
            detail: "took too long".into(),
        },
    ]
}

#[test]
fn no_error_ends_a_stream_cleanly() {
    let errors = every_error();
    assert_eq!(errors.len(), 16, "one per variant");
    for err in errors {
        let text = err.to_string();
        let kind = err.kind();
        let status = tonic::Status::from(err);
        assert_ne!(status.code(), tonic::Code::Ok, "{kind}");
        assert_eq!(
            status.message(),
            text,
            "{kind}: the status carries the message"
        );
    }
}

#[test]
fn protocol_errors_keep_their_status_codes() {
    let status = tonic::Status::from(Error::Protocol("x".into()));
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let status = tonic::Status::from(Error::MalformedMessage("no request field"));
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}
