//! Body-Based Router (BBR): an Envoy ext_proc server that routes by the model named in the body.
//!
//! Layers, from pure to I/O:
//! - [`extract`]: finds the top-level `model` of a JSON body in one validating pass.

pub mod extract;
