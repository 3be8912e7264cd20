//! Body-Based Router (BBR): an Envoy ext_proc server that routes by the model named in the body.
//!
//! Layers, from pure to I/O:
//! - [`extract`]: finds the top-level `model` of a JSON body in one validating pass;
//! - [`policy`]: what to do with a complete body (route, pass, or an OpenAI-style error);
//! - [`adapters`]: LoRA adapter → base model mappings and their lookup index;
//! - [`stream`]: one ext_proc stream as a state machine over envoy-types messages;
//! - [`server`]: the tonic service, health, metrics, mapping sources and CLI (I/O).

pub mod extract;

#[cfg(feature = "extproc")]
pub mod adapters;
#[cfg(feature = "extproc")]
pub mod config;
#[cfg(feature = "extproc")]
pub mod error;
#[cfg(feature = "extproc")]
pub mod policy;
#[cfg(feature = "extproc")]
pub mod server;
#[cfg(feature = "extproc")]
pub mod stream;

#[cfg(feature = "extproc")]
pub use error::{Error, Result};
