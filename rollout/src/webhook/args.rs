//! The `serve` flags of the validating webhook (a flattened group).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use switchyard_check::admission::{Config, Enforcement};

/// Deny a request, or accept it with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnforcementArg {
    /// Refuse it with a message that says what to change.
    Deny,
    /// Accept it; `kubectl` prints the message as a warning.
    Warn,
}

impl From<EnforcementArg> for Enforcement {
    fn from(arg: EnforcementArg) -> Self {
        match arg {
            EnforcementArg::Deny => Self::Deny,
            EnforcementArg::Warn => Self::Warn,
        }
    }
}

/// Flags of the validating admission webhook.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Serve the validating admission webhook (HTTPS) on this address, e.g.
    /// `0.0.0.0:9444`. Unset: no webhook.
    #[arg(long, env = "ROLLOUT_WEBHOOK_ADDRESS")]
    pub webhook_address: Option<SocketAddr>,

    /// Directory with `tls.crt` and `tls.key` (a cert-manager Secret mounted as
    /// a volume), reloaded when they change. Unset: the webhook generates a pair,
    /// keeps it in --webhook-secret and writes its CA into the caBundle of
    /// --webhook-configuration.
    #[arg(long, env = "ROLLOUT_WEBHOOK_CERT_DIR")]
    pub webhook_cert_dir: Option<PathBuf>,

    /// The namespace of --webhook-secret and --webhook-service (the pod's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub webhook_namespace: String,

    /// The Secret that keeps a generated certificate, shared by every replica.
    #[arg(long, default_value = "switchyard-rollout-webhook-tls")]
    pub webhook_secret: String,

    /// The Service the apiserver calls; the generated certificate is for its DNS names.
    #[arg(long, default_value = "switchyard-rollout-webhook")]
    pub webhook_service: String,

    /// The ValidatingWebhookConfiguration whose caBundle gets the generated CA
    /// (empty: leave caBundles alone). Unused with --webhook-cert-dir, whose
    /// issuer (cert-manager) fills the caBundle.
    #[arg(long, default_value = "switchyard-rollout")]
    pub webhook_configuration: String,

    /// References to objects that do not exist (pool, route, rule): deny, or
    /// warn when manifests are applied in no particular order.
    #[arg(long, value_enum, default_value = "deny")]
    pub webhook_missing_references: EnforcementArg,

    /// A hand edit of the weights of a route rule an active rollout owns.
    #[arg(long, value_enum, default_value = "deny")]
    pub webhook_manual_weight_edits: EnforcementArg,

    /// Users allowed to change owned weights: the controller's own service
    /// account, `system:serviceaccount:<namespace>:<name>` (comma-separated).
    #[arg(long, env = "ROLLOUT_WEBHOOK_TRUSTED_USERS", value_delimiter = ',')]
    pub webhook_trusted_users: Vec<String>,
}

impl WebhookArgs {
    /// The verdict's configuration.
    pub fn config(&self) -> Config {
        Config {
            missing_references: self.webhook_missing_references.into(),
            manual_weight_edits: self.webhook_manual_weight_edits.into(),
            trusted_users: self
                .webhook_trusted_users
                .iter()
                .map(|user| user.trim().to_owned())
                .filter(|user| !user.is_empty())
                .collect(),
        }
    }

    /// The DNS names the apiserver may use for the Service.
    pub fn dns_names(&self) -> Vec<String> {
        let (service, namespace) = (&self.webhook_service, &self.webhook_namespace);
        vec![
            format!("{service}.{namespace}.svc"),
            format!("{service}.{namespace}.svc.cluster.local"),
            format!("{service}.{namespace}"),
            service.clone(),
        ]
    }
}
