//! The validating admission webhook: `switchyard-check`'s rules at the API
//! server, for InferencePool, InferenceObjective, InferenceModelRewrite,
//! InferenceRollout and the HTTPRoutes that send traffic to InferencePools.
//!
//! Layers, pure first:
//! - the verdict is [`switchyard_check::admission::admit`], shared with the
//!   offline checker;
//! - [`review`]: AdmissionReview JSON in, AdmissionReview JSON out;
//! - [`deputy`]: a rollout's creator must be allowed to patch what it
//!   targets (a SubjectAccessReview), since the controller will;
//! - [`watch`]: reflectors that give the rules the cluster's objects;
//! - [`server`]: HTTPS (rustls) and axum around `POST /validate`;
//! - [`tls`] and [`certs`]: the serving certificate, from a mounted directory
//!   (cert-manager) or generated, shared through a Secret, and patched into the
//!   configuration's caBundle.
//!
//! Every replica serves the webhook (the apiserver calls any of them through
//! the Service); only the controller is leader-elected.

pub mod args;
pub mod certs;
pub mod deputy;
pub mod review;
pub mod server;
pub mod tls;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use switchyard_check::Objects;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use args::WebhookArgs;

use crate::error::{Error, Result};

/// How often a mounted certificate directory is checked for a rotation.
const CERT_POLL: Duration = Duration::from_secs(30);
/// How often the caBundle is re-checked (a `helm upgrade` may reset it).
const CA_BUNDLE_RECHECK: Duration = Duration::from_secs(60);

/// Where the rules read other objects from, once per review.
pub trait ObjectsView: Send + Sync {
    /// A snapshot of the objects the rules consult.
    fn objects(&self) -> Objects;
}

/// A fixed set of objects (the offline checker's, or a test's).
impl ObjectsView for Objects {
    fn objects(&self) -> Objects {
        self.clone()
    }
}

/// Binds the webhook, sets up its certificate and starts serving in the
/// background until `cancel`. Errors here (address in use, unreadable
/// certificate, no right to the Secret) stop startup.
pub async fn start(args: &WebhookArgs, client: Client, cancel: CancellationToken) -> Result<()> {
    let Some(address) = args.webhook_address else {
        return Ok(());
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| Error::Tls(format!("binding the webhook to {address}: {e}")))?;
    let certificates = match &args.webhook_cert_dir {
        Some(dir) => {
            let certificates = tls::load_certificates(dir)?;
            tokio::spawn(
                certificates
                    .clone()
                    .watch(dir.clone(), CERT_POLL, cancel.clone()),
            );
            certificates
        }
        None => {
            let pair = certs::ensure_pair(
                &client,
                &args.webhook_namespace,
                &args.webhook_secret,
                &args.dns_names(),
            )
            .await?;
            if !args.webhook_configuration.is_empty() {
                tokio::spawn(certs::keep_ca_bundle(
                    client.clone(),
                    args.webhook_configuration.clone(),
                    pair.ca_pem.clone(),
                    CA_BUNDLE_RECHECK,
                    cancel.clone(),
                ));
            }
            tls::Certificates::new(tls::server_config(&pair.cert_pem, &pair.key_pem)?)
        }
    };
    let state = server::WebhookState {
        view: Arc::new(watch::ClusterView::start(&client, &cancel)),
        config: Arc::new(args.config()),
        access: Some(Arc::new(deputy::ApiserverReviewer(client.clone()))),
    };
    tracing::info!(%address, "validating webhook listening (HTTPS)");
    tokio::spawn(server::serve(
        listener,
        certificates,
        server::router(state),
        cancel,
    ));
    Ok(())
}

#[cfg(test)]
mod tests;
