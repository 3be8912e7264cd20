//! `--secure-serving`: TLS (ALPN `h2`) on the ext_proc listener, with a certificate from
//! `--cert-path` (`tls.crt` and `tls.key`, reloaded when their content changes unless
//! `--enable-cert-reload=false`) or, without it, a self-signed one generated at start
//! (upstream does the same).
//!
//! The loader, its reload and the accept loop are the workspace's one copy in
//! [`switchyard_runtime::tls`]; this module names what the EPP's flags and tests use.

pub use switchyard_runtime::tls::{CERT_FILE, CertSource, KEY_FILE};

/// The EPP's ext_proc listener speaks gRPC only.
pub const ALPN: switchyard_runtime::tls::Alpn = switchyard_runtime::tls::Alpn::H2;
