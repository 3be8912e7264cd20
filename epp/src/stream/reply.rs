//! What the state machine asks the ext_proc shell to send, in plain Rust;
//! the shell maps these one-to-one onto `ProcessingResponse` messages.

use switchyard_api::protocol::epp_metrics;

/// A header mutation plus routing metadata, for a headers response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadersReply {
    /// Headers to set (overwriting).
    pub set_headers: Vec<(String, String)>,
    /// Headers to remove.
    pub remove_headers: Vec<String>,
    /// Whether Envoy must recompute the route (true on the request path).
    pub clear_route_cache: bool,
    /// The `envoy.lb` dynamic-metadata value of `x-gateway-destination-endpoint`.
    pub destination_metadata: Option<String>,
}

/// One message to send on the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The request headers response.
    RequestHeaders(HeadersReply),
    /// A streamed request-body chunk (≤ [`crate::stream::MAX_CHUNK_BYTES`]).
    RequestBody {
        /// The bytes.
        chunk: Vec<u8>,
        /// Whether this is the last chunk.
        end_of_stream: bool,
    },
    /// The response headers response.
    ResponseHeaders(HeadersReply),
    /// A streamed response-body chunk.
    ResponseBody {
        /// The bytes.
        chunk: Vec<u8>,
        /// Whether this is the last chunk.
        end_of_stream: bool,
    },
    /// An empty trailers response (request or response side).
    Trailers {
        /// Whether this answers the response trailers.
        response: bool,
    },
    /// Ends the request with a local reply.
    Immediate {
        /// The HTTP status.
        status: u16,
        /// `inference error: <Code> - <message>`.
        body: String,
        /// Headers to set on the reply beyond the shell's defaults (a
        /// flow-control refusal names its reason here); they replace
        /// defaults of the same name.
        headers: Vec<(String, String)>,
    },
}

/// Upstream's error codes, which fix the HTTP status of an immediate reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400.
    BadRequest,
    /// 429.
    ResourceExhausted,
    /// 503.
    ServiceUnavailable,
    /// 500.
    Internal,
}

impl ErrorCode {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::ResourceExhausted => 429,
            Self::ServiceUnavailable => 503,
            Self::Internal => 500,
        }
    }

    /// Upstream's spelling in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => epp_metrics::BAD_REQUEST,
            Self::ResourceExhausted => epp_metrics::RESOURCE_EXHAUSTED,
            Self::ServiceUnavailable => epp_metrics::SERVICE_UNAVAILABLE,
            Self::Internal => epp_metrics::INTERNAL,
        }
    }

    /// The immediate reply for this code.
    pub fn reply(self, message: &str) -> Reply {
        Reply::Immediate {
            status: self.status(),
            body: format!("inference error: {} - {message}", self.as_str()),
            headers: Vec::new(),
        }
    }
}
