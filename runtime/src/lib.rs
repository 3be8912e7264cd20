//! `switchyard-runtime`: the one copy of the shell that `switchyard-bbr`, `switchyard-epp`,
//! `switchyard-rollout` and the simulator share, in the manner of kubert's runtime.
//!
//! Pure modules (no feature, no dependency) can be used from anywhere, including the types
//! crate; the I/O modules sit behind features so a crate compiles only what it serves.

// Pure: no feature, no dependency.
pub mod budget;
pub mod duration;
pub mod promtext;
// Leader election by Lease (feature `lease`).
#[cfg(feature = "lease")]
pub mod lease;

// The serving shell (features `tls`, `grpc`, `shutdown`, `log`, `metrics`, `args`).
#[cfg(feature = "args")]
pub mod args;
#[cfg(any(feature = "tls", feature = "args"))]
pub mod error;
#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "shutdown")]
pub mod shutdown;
#[cfg(feature = "tls")]
pub mod tls;

// The one ext_proc stream driver bbr and the EPP share (feature `extproc`).
#[cfg(feature = "extproc")]
pub mod extproc;

#[cfg(any(feature = "tls", feature = "args"))]
pub use error::{Error, Result};
