//! The end-to-end harness around a real Envoy, shared by every conformance suite.
//!
//! - [`envoy`]: find the Envoy binary, render a bootstrap ([`envoy::bootstrap`]), run it as a
//!   child process, wait until it is ready and stop it on drop (printing its log tail when a
//!   test panics).
//! - [`extproc`]: a test ext_proc server that sets the routing header and clears the route
//!   cache, over real gRPC.
//! - [`backend`]: loopback HTTP backends that answer with their own name.
//! - [`vllm`]: real `vllm serve` processes on free ports (set up by `cargo xtask vllm setup`).
//! - [`client`], [`process`], [`ports`]: the HTTP client, supervised child processes and
//!   loopback ports of `switchyard-local`, re-exported for the suites.
//!
//! The manifest → Envoy translator and the local stack (`cargo xtask up`) live in
//! `switchyard-local`, which the suites use directly; this crate is only the test harness, so
//! nothing that ships links it.
//!
//! End-to-end suites are the integration tests `tests/e2e_*.rs`; `cargo xtask test` runs them
//! in their own step after installing Envoy. Without Envoy they fail and say to run
//! `cargo xtask tools`.
//!
//! ```no_run
//! use switchyard_conformance::backend::TestBackend;
//! use switchyard_conformance::envoy::Envoy;
//! use switchyard_conformance::envoy::bootstrap::{Bootstrap, ExtProc, MODEL_HEADER, Route};
//! use switchyard_conformance::extproc::{Rule, TestExtProc};
//!
//! # async fn example() -> switchyard_conformance::Result<()> {
//! let backend = TestBackend::start("a").await?;
//! let ext_proc = TestExtProc::start(Rule::copy_header("x-route-to")).await?;
//! let bootstrap = Bootstrap::new()
//!     .ext_proc(ExtProc::new("test", ext_proc.addr()))
//!     .route(Route::on_header("a", MODEL_HEADER, "a", &[backend.addr()]));
//! let envoy = Envoy::start(&bootstrap).await?;
//! println!("send requests to {}", envoy.url("/"));
//! # Ok(())
//! # }
//! ```

pub mod backend;
pub mod envoy;
pub mod extproc;
pub mod kube;
pub mod vllm;

// One error type for the harness and the stack it starts: a failed suite prints either the
// same way.
pub use switchyard_local::error::{self, Error, Result};
pub use switchyard_local::{client, ports, process};
