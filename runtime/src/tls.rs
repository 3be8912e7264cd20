//! Serving TLS: one certificate loader with reload, and one accept loop.
//!
//! Every TLS listener of the workspace goes through here: the BBR's and the EPP's ext_proc
//! gRPC servers (`--secure-serving`, ALPN `h2`) and the rollout controller's validating
//! webhook (ALPN `http/1.1`, which the apiserver speaks).
//!
//! - [`Certificates`] holds the current rustls configuration in an `ArcSwap`: each handshake
//!   takes the configuration of the moment, so a reload affects new connections only and never
//!   blocks one in flight. With a certificate directory (`tls.crt` and `tls.key`, the layout of
//!   a mounted Kubernetes TLS Secret), [`Certificates::watch`] re-reads the pair on every tick
//!   and swaps in a new one when its *content* changed; a broken or half-written pair keeps the
//!   last good one and is tried again on the next tick.
//! - [`incoming`] accepts TCP connections, runs each handshake in its own task under a
//!   deadline (a silent client cannot stall the loop) and under a cap on open connections, and
//!   yields finished [`TlsConnection`]s through a bounded channel, ready for tonic
//!   (`serve_with_incoming_shutdown`) or for hyper, one connection at a time.
//! - [`self_signed`] and [`generate_ca_signed`] make certificates when none is mounted.

mod accept;
mod generate;
pub(crate) mod held;
mod pem;
mod reload;

use std::path::PathBuf;
use std::time::Duration;

pub use accept::{AcceptLimits, TlsConnection, incoming};
pub use generate::{CertificatePair, generate_ca_signed, self_signed};
pub use held::Held;
pub use pem::{load_dir, server_config, server_config_from_pem};
pub use reload::Certificates;

/// The certificate chain inside a certificate directory (and a TLS Secret).
pub const CERT_FILE: &str = "tls.crt";
/// The private key inside a certificate directory (and a TLS Secret).
pub const KEY_FILE: &str = "tls.key";
/// The CA certificate in a TLS Secret written by cert-manager (or by the rollout webhook).
pub const CA_FILE: &str = "ca.crt";

/// Which application protocols a listener offers in ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    /// `h2` only: gRPC (ext_proc, health).
    H2,
    /// `http/1.1` only: the Kubernetes apiserver calling a webhook.
    Http1,
    /// `h2`, then `http/1.1`.
    H2AndHttp1,
}

impl Alpn {
    /// The protocol identifiers, in order of preference.
    pub fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Alpn::H2 => vec![b"h2".to_vec()],
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
            Alpn::H2AndHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

/// Where a serving certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// Generated at start for `localhost` (see [`self_signed`]); clients skip verification, as
    /// upstream's Envoy configurations do for BBR and the EPP.
    SelfSigned,
    /// `tls.crt` and `tls.key` in `path`.
    Dir {
        /// The directory (a mounted TLS Secret).
        path: PathBuf,
        /// How often the pair is re-read; `None`: loaded once, never reloaded.
        poll: Option<Duration>,
    },
}

#[cfg(test)]
mod tests;
