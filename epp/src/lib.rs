//! Endpoint Picker (EPP): a per-InferencePool ext_proc server that picks the best model server.
//!
//! Layers, from pure to I/O:
//! - [`datastore`]: the pool as one immutable snapshot behind an `ArcSwap` (endpoints and their
//!   [`datastore::EndpointMetrics`]), and in-flight accounting.
//! - [`prefix`]: chained block hashes and the per-endpoint lock-free prefix table.
//! - [`scheduling`]: filters → weighted scorers → picker, configured by an `EndpointPickerConfig`.
//! - [`flow`]: flow control — priority bands, fairness, saturation, shedding, TTLs — as a pure
//!   core and a single-owner actor the request path awaits.
//! - [`source`]: the [`source::PoolSource`] trait and its two implementations:
//!   [`source::k8s`] (InferencePool, Pods, objectives, rewrites) and [`source::standalone`]
//!   (an endpoints file).
//! - [`leader`]: active-passive leader election by Lease.
//! - [`scrape`]: one scraper task per endpoint and the datastore's single writer;
//!   [`scrape::engine`] holds the per-engine metric names and the extraction of
//!   [`datastore::EndpointMetrics`].
//! - [`stream`]: one ext_proc stream as a state machine in plain Rust (no tonic).
//! - [`kvevents`]: vLLM's KV-cache events (ZMQ frames, msgpack) decoded without I/O.
//!
//! - [`server`], [`cli`], [`metrics`]: the I/O shell (tonic ext_proc, health, TLS, flags,
//!   Prometheus) run by the `switchyard-epp` binary.
//!
//! [`trust`] is the trust boundary: which request headers may steer a request, and their
//! bounds.
//!
//! [`error`] holds the crate's one error type; [`refusal`] the one type of every client error
//! reply (status, dropped reason, OpenAI-style body).

pub mod cli;
pub mod datastore;
pub mod error;
pub mod flow;
pub mod kvevents;
pub mod leader;
pub mod metrics;
pub mod parameters;
pub mod prefix;
pub mod refusal;
pub mod scheduling;
pub mod scrape;
pub mod server;
pub mod source;
pub mod stream;
pub mod trust;

pub use error::{Error, Result};
