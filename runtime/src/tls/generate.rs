//! Certificates made by the process itself: a self-signed one for `--secure-serving` without
//! `--cert-path` (as upstream's BBR and EPP do), and a CA with a serving certificate it signs,
//! for the webhook whose CA goes into the apiserver's `caBundle`.

use std::time::{Duration, SystemTime};

use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;

use super::Alpn;
use super::pem::server_config;
use crate::error::{Error, Result};

/// How long a generated self-signed certificate is valid: upstream's ten years, so a
/// long-running pod never serves an expired one.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn generation_error(e: rcgen::Error) -> Error {
    Error::Tls(format!("generating a certificate: {e}"))
}

/// A fresh self-signed certificate for `localhost` (ECDSA P-256, O=`Inference Ext`, valid ten
/// years, as upstream generates), offering `alpn`.
pub fn self_signed(alpn: Alpn) -> Result<ServerConfig> {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(generation_error)?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Inference Ext");
    let now = SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + SELF_SIGNED_VALIDITY).into();
    let key = rcgen::KeyPair::generate().map_err(generation_error)?;
    let cert = params.self_signed(&key).map_err(generation_error)?;
    let key = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| Error::Tls(format!("generating a certificate: {e}")))?;
    server_config(vec![cert.der().clone()], key, alpn)
}

/// A serving certificate, its key and the CA that signed it, all PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificatePair {
    /// The serving certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
    /// The CA certificate clients trust (a webhook's `caBundle`).
    pub ca_pem: String,
}

/// Generates a CA named `ca_name` and a serving certificate for `dns_names` signed by it.
pub fn generate_ca_signed(ca_name: &str, dns_names: &[String]) -> Result<CertificatePair> {
    let ca_key = rcgen::KeyPair::generate().map_err(generation_error)?;
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(generation_error)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(generation_error)?;
    let key = rcgen::KeyPair::generate().map_err(generation_error)?;
    let mut params = rcgen::CertificateParams::new(dns_names.to_vec()).map_err(generation_error)?;
    if let Some(first) = dns_names.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, first.as_str());
    }
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).map_err(generation_error)?;
    Ok(CertificatePair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem: ca.pem(),
    })
}
