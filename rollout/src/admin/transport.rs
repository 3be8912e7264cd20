//! How the admin API is reached: HTTPS (a mounted certificate directory, or a
//! generated self-signed certificate) or, on loopback only, plain HTTP.
//!
//! Callers send apiserver bearer tokens, so plain HTTP off loopback would put
//! replayable credentials on the pod network: `--admin-allow-remote` without
//! TLS is refused at startup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use switchyard_runtime::tls::{Alpn, CertSource, Certificates};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use crate::https::{self, HttpsLimits};

/// How often a mounted certificate directory is checked for a rotation.
const CERT_POLL: Duration = Duration::from_secs(30);

/// Refuses a non-loopback admin address without `--admin-allow-remote`, and
/// a remote one without TLS.
pub fn check_address(args: &ServeArgs) -> Result<()> {
    if args.admin_address.ip().is_loopback() {
        return Ok(());
    }
    if !args.admin_allow_remote {
        return Err(Error::Admin(format!(
            "--admin-address {} is not a loopback address; pass --admin-allow-remote (with --admin-tls-cert-dir or --admin-tls-self-signed) to expose the admin API",
            args.admin_address
        )));
    }
    if args.admin_tls_cert_dir.is_none() && !args.admin_tls_self_signed {
        return Err(Error::Admin(format!(
            "--admin-address {} is remote but the admin API would serve plain HTTP, sending bearer tokens in cleartext; pass --admin-tls-cert-dir <dir> or --admin-tls-self-signed",
            args.admin_address
        )));
    }
    Ok(())
}

/// The admin API's serving certificate.
pub struct AdminTls {
    certificates: Arc<Certificates>,
    /// The mounted directory to re-read on rotation, if any.
    dir: Option<PathBuf>,
}

/// The admin API's certificate, when it serves HTTPS; errors name the flag.
/// Loaded (and so checked) before anything else starts.
pub fn certificates(args: &ServeArgs) -> Result<Option<AdminTls>> {
    let source = match (&args.admin_tls_cert_dir, args.admin_tls_self_signed) {
        (Some(dir), _) => CertSource::Dir {
            path: dir.clone(),
            poll: Some(CERT_POLL),
        },
        (None, true) => CertSource::SelfSigned,
        (None, false) => return Ok(None),
    };
    let certificates = Certificates::load(&source, Alpn::Http1)
        .map_err(|err| Error::Admin(format!("admin API certificate (--admin-tls-*): {err}")))?;
    Ok(Some(AdminTls {
        certificates,
        dir: args.admin_tls_cert_dir.clone(),
    }))
}

/// Serves `router` on `listener` until `shutdown`: HTTPS within
/// [`HttpsLimits::default`] when `tls` is set (re-reading a mounted
/// certificate directory), plain HTTP otherwise.
pub fn spawn(
    listener: TcpListener,
    tls: Option<AdminTls>,
    router: Router,
    address: SocketAddr,
    shutdown: CancellationToken,
) -> JoinHandle<std::io::Result<()>> {
    match tls {
        Some(AdminTls { certificates, dir }) => {
            if let Some(dir) = dir {
                tokio::spawn(Arc::clone(&certificates).watch(dir, CERT_POLL, shutdown.clone()));
            }
            tracing::info!(%address, "admin API listening (HTTPS)");
            tokio::spawn(async move {
                https::serve(
                    listener,
                    certificates,
                    router,
                    HttpsLimits::default(),
                    shutdown,
                )
                .await;
                Ok(())
            })
        }
        None => {
            tracing::info!(%address, "admin API listening (plain HTTP, loopback)");
            let server =
                axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned());
            tokio::spawn(async move { server.await })
        }
    }
}

#[cfg(test)]
mod tests;
