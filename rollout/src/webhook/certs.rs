//! Certificates without cert-manager: a generated pair shared by every replica
//! through one TLS Secret, and its CA written into the ValidatingWebhookConfiguration's
//! `caBundle` so the apiserver trusts it.
//!
//! The first replica to start creates the Secret; the others find it (or lose
//! the create race with 409 and read it), so all replicas serve one certificate
//! and the caBundle never flips between them. The caBundle is re-checked
//! periodically, because `helm upgrade` may rewrite the configuration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingWebhook, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::ServerCertVerifier;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_util::sync::CancellationToken;

use super::tls::{CA_FILE, CERT_FILE, CertificatePair, KEY_FILE, generate};
use crate::error::{Error, Result};

/// The field manager of our caBundle patches.
pub const FIELD_MANAGER: &str = "switchyard-rollout-webhook";

fn kube_error(action: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { action, source }
}

/// The pair in `secret` (in `namespace`), created with a fresh pair for
/// `dns_names` when it does not exist yet.
pub async fn ensure_pair(
    client: &Client,
    namespace: &str,
    secret: &str,
    dns_names: &[String],
) -> Result<CertificatePair> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let action = |verb: &str| format!("{verb} Secret {namespace}/{secret}");
    let existing = api
        .get_opt(secret)
        .await
        .map_err(kube_error(action("get")))?;
    if let Some(found) = &existing {
        let pair = pair_of(found).ok_or_else(|| {
            Error::Tls(format!(
                "Secret {namespace}/{secret} lacks {CERT_FILE}, {KEY_FILE} or {CA_FILE}; delete it and the webhook creates a new pair"
            ))
        })?;
        let soon = UnixTime::since_unix_epoch(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                + RENEW_BEFORE,
        );
        if pair_fits(&pair, dns_names, soon) {
            return Ok(pair);
        }
        // A renamed Service, or a certificate about to expire: the apiserver
        // would refuse it (and with failurePolicy Fail, every write).
        tracing::warn!(%namespace, %secret, "webhook: the stored certificate does not cover the Service's names or expires soon; replacing it");
        let pair = generate(dns_names)?;
        let mut fresh = secret_of(namespace, secret, &pair);
        fresh.metadata.resource_version = found.metadata.resource_version.clone();
        return match api.replace(secret, &PostParams::default(), &fresh).await {
            Ok(_) => Ok(pair),
            // Another replica replaced it first: use theirs.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let found = api.get(secret).await.map_err(kube_error(action("get")))?;
                pair_of(&found)
                    .ok_or_else(|| Error::Tls(format!("Secret {namespace}/{secret} is incomplete")))
            }
            Err(source) => Err(Error::Kube {
                action: action("replace"),
                source,
            }),
        };
    }
    let pair = generate(dns_names)?;
    match api
        .create(&PostParams::default(), &secret_of(namespace, secret, &pair))
        .await
    {
        Ok(_) => {
            tracing::info!(%namespace, %secret, "webhook: generated a certificate and stored it");
            Ok(pair)
        }
        // Another replica created it first: use theirs.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let found = api.get(secret).await.map_err(kube_error(action("get")))?;
            pair_of(&found)
                .ok_or_else(|| Error::Tls(format!("Secret {namespace}/{secret} is incomplete")))
        }
        Err(source) => Err(Error::Kube {
            action: action("create"),
            source,
        }),
    }
}

/// How long before its expiry a stored certificate is replaced.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Whether `pair`'s certificate chains to its CA and is valid for every one
/// of `dns_names` at `at`, as the apiserver will check it.
pub fn pair_fits(pair: &CertificatePair, dns_names: &[String], at: UnixTime) -> bool {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(pair.ca_pem.as_bytes()) {
        let Ok(ca) = ca else { return false };
        if roots.add(ca).is_err() {
            return false;
        }
    }
    let chain: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
        .filter_map(std::result::Result::ok)
        .collect();
    let Some((leaf, intermediates)) = chain.split_first() else {
        return false;
    };
    let provider = Arc::new(ring::default_provider());
    let Ok(verifier) =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()
    else {
        return false;
    };
    dns_names.iter().all(|name| {
        ServerName::try_from(name.clone()).is_ok_and(|server_name| {
            verifier
                .verify_server_cert(leaf, intermediates, &server_name, &[], at)
                .is_ok()
        })
    })
}

/// The TLS Secret holding `pair`.
pub fn secret_of(namespace: &str, name: &str, pair: &CertificatePair) -> Secret {
    let bytes = |text: &str| ByteString(text.as_bytes().to_vec());
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                FIELD_MANAGER.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            (CERT_FILE.to_owned(), bytes(&pair.cert_pem)),
            (KEY_FILE.to_owned(), bytes(&pair.key_pem)),
            (CA_FILE.to_owned(), bytes(&pair.ca_pem)),
        ])),
        ..Secret::default()
    }
}

fn pair_of(secret: &Secret) -> Option<CertificatePair> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| {
        data.get(key)
            .and_then(|value| String::from_utf8(value.0.clone()).ok())
    };
    Some(CertificatePair {
        cert_pem: text(CERT_FILE)?,
        key_pem: text(KEY_FILE)?,
        ca_pem: text(CA_FILE)?,
    })
}

/// The JSON Patch that sets every webhook's `caBundle` to `ca_pem`, each guarded
/// by a `test` of the webhook's name (the list may have changed since the read);
/// `None` when every caBundle already holds it.
pub fn ca_bundle_patch(webhooks: &[ValidatingWebhook], ca_pem: &str) -> Option<Value> {
    let encoded = serde_json::to_value(ByteString(ca_pem.as_bytes().to_vec())).ok()?;
    let operations: Vec<Value> = webhooks
        .iter()
        .enumerate()
        .filter(|(_, webhook)| {
            webhook.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice())
                != Some(ca_pem.as_bytes())
        })
        .flat_map(|(i, webhook)| {
            [
                json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": webhook.name}),
                json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": encoded}),
            ]
        })
        .collect();
    (!operations.is_empty()).then_some(Value::Array(operations))
}

/// Writes `ca_pem` into the configuration's caBundles when they differ;
/// returns whether a patch was sent.
pub async fn patch_ca_bundle(client: &Client, configuration: &str, ca_pem: &str) -> Result<bool> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let action = |verb: &str| format!("{verb} ValidatingWebhookConfiguration {configuration}");
    let current = api
        .get(configuration)
        .await
        .map_err(kube_error(action("get")))?;
    let Some(patch) = ca_bundle_patch(current.webhooks.as_deref().unwrap_or_default(), ca_pem)
    else {
        return Ok(false);
    };
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(|source| Error::Encode {
            what: "caBundle patch",
            source,
        })?;
    api.patch(
        configuration,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::<()>::Json(patch),
    )
    .await
    .map_err(kube_error(action("patch")))?;
    tracing::info!(%configuration, "webhook: caBundle written");
    Ok(true)
}

/// Keeps the caBundle at `ca_pem` every `every` until cancelled (errors are
/// logged and retried: the webhook serves meanwhile, and `failurePolicy`
/// decides what an untrusted webhook means).
pub async fn keep_ca_bundle(
    client: Client,
    configuration: String,
    ca_pem: String,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(err) = patch_ca_bundle(&client, &configuration, &ca_pem).await {
            tracing::warn!(%err, "webhook: cannot write the caBundle; retrying");
        }
    }
}
