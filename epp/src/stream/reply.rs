//! What the state machine asks the ext_proc shell to send, in plain Rust;
//! the shell maps these one-to-one onto `ProcessingResponse` messages.

use crate::refusal::Refusal;

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
    /// Ends the request with a local reply (status, dropped-reason header, OpenAI-style body).
    Refuse(Refusal),
}
