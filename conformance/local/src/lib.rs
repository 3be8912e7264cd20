//! A whole inference gateway on one machine: Gateway API and inference manifests translated
//! into an Envoy configuration, simulator replicas standing in for pods, and every process
//! started, health-checked and supervised.
//!
//! This is what runs in production-like use (`cargo xtask up`, the rollout controller's local
//! mode); the end-to-end harness (`switchyard-conformance`) builds on it, but nothing here is
//! test-only.
//!
//! - [`translate`]: manifests → the Envoy configuration of a gateway on one machine.
//! - [`endpoints`]: the local endpoints file (which simulator replicas back each pool).
//! - [`plan`]: the processes to start and their ports, from the manifests and that file.
//! - [`stack`]: one call from a manifest directory to every file the processes read.
//! - [`gateway`]: Envoy on the translated configuration.
//! - [`running`]: that stack running — every process started and health-checked, then Envoy.
//! - [`envoy`]: finding the Envoy binary and waiting until an Envoy is serving.
//! - [`vllm`]: a real `vllm serve` (CPU) set up by `cargo xtask vllm setup`, and its command.
//! - [`process`]: supervised child processes; [`ports`]: loopback ports; [`client`]: a small
//!   HTTP client for readiness checks and smoke requests.

pub mod client;
pub mod endpoints;
pub mod envoy;
pub mod error;
pub mod gateway;
pub mod plan;
pub mod ports;
pub mod process;
pub mod running;
pub mod stack;
pub mod translate;
pub mod vllm;

pub use endpoints::{FILE_NAME, LocalEndpoints};
pub use error::{Error, Result};
