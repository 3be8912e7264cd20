//! `--secure-serving`: TLS with ALPN `h2` on the ext_proc listener, as upstream BBR serves by
//! default. The certificate is generated at start (self-signed, like upstream) or read from
//! `--cert-path` (`tls.crt` and `tls.key`, a mounted Kubernetes TLS Secret) and reloaded when
//! its content changes, so cert-manager rotations need no restart.
//!
//! The loader, its reload and the accept loop are the workspace's one copy in
//! [`switchyard_runtime::tls`]; this module names what BBR's flags and tests use.

pub use switchyard_runtime::tls::{CERT_FILE, CertSource, KEY_FILE};

/// BBR's ext_proc listener speaks gRPC only.
pub const ALPN: switchyard_runtime::tls::Alpn = switchyard_runtime::tls::Alpn::H2;
