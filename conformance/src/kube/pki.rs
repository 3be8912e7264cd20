//! The control plane's certificates and keys, generated fresh for every start.
//!
//! Three independent trust roots, as envtest has them: a serving CA whose certificate the
//! clients trust (it signs the API server's certificate for `127.0.0.1` and `localhost`), a
//! client CA the API server trusts (it signs the admin's certificate, group
//! `system:masters`), and the service-account signing key that TokenRequest tokens are
//! signed with. All keys are ECDSA P-256, which the API server reads as PKCS#8 PEM.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

use super::error::{Error, Result};

/// The admin user's name in its client certificate.
pub const ADMIN_USER: &str = "switchyard-admin";
/// The group that RBAC's bootstrap policy binds to `cluster-admin`.
pub const ADMIN_GROUP: &str = "system:masters";

/// Where the files of one control plane's PKI are.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The serving CA (clients' `certificate-authority`).
    pub serving_ca: PathBuf,
    /// The API server's certificate and key.
    pub serving_cert: PathBuf,
    /// The API server's private key.
    pub serving_key: PathBuf,
    /// The CA the API server trusts for client certificates.
    pub client_ca: PathBuf,
    /// The admin's client certificate.
    pub admin_cert: PathBuf,
    /// The admin's private key.
    pub admin_key: PathBuf,
    /// The service-account signing key (private, PKCS#8).
    pub sa_key: PathBuf,
    /// Its public half, which the API server verifies tokens with.
    pub sa_pub: PathBuf,
}

impl Pki {
    /// Generates every certificate and key into `dir` (created if missing).
    pub fn generate(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let pki = Self {
            serving_ca: dir.join("serving-ca.crt"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            client_ca: dir.join("client-ca.crt"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            sa_key: dir.join("sa-signer.key"),
            sa_pub: dir.join("sa-signer.pub"),
        };

        let serving_ca = certificate_authority("switchyard-test-serving-ca")?;
        let serving_key = key("the API server key")?;
        let mut serving = leaf_params("kube-apiserver")?;
        serving.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into().map_err(|source| Error::Pki {
                what: "the API server SAN",
                source,
            })?),
        ];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving = serving
            .signed_by(&serving_key, &serving_ca)
            .map_err(|source| Error::Pki {
                what: "the API server certificate",
                source,
            })?;

        let client_ca = certificate_authority("switchyard-test-client-ca")?;
        let admin_key = key("the admin key")?;
        let mut admin = leaf_params(ADMIN_USER)?;
        admin
            .distinguished_name
            .push(DnType::OrganizationName, ADMIN_GROUP);
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin = admin
            .signed_by(&admin_key, &client_ca)
            .map_err(|source| Error::Pki {
                what: "the admin certificate",
                source,
            })?;

        let sa = key("the service-account signing key")?;

        write(&pki.serving_ca, &serving_ca.pem())?;
        write(&pki.serving_cert, &serving.pem())?;
        write(&pki.serving_key, &serving_key.serialize_pem())?;
        write(&pki.client_ca, &client_ca.pem())?;
        write(&pki.admin_cert, &admin.pem())?;
        write(&pki.admin_key, &admin_key.serialize_pem())?;
        write(&pki.sa_key, &sa.serialize_pem())?;
        write(&pki.sa_pub, &sa.public_key_pem())?;
        Ok(pki)
    }
}

fn key(what: &'static str) -> Result<KeyPair> {
    KeyPair::generate().map_err(|source| Error::Pki { what, source })
}

/// Parameters of an end-entity certificate with `common_name`.
fn leaf_params(common_name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|source| Error::Pki {
        what: "certificate parameters",
        source,
    })?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    Ok(params)
}

/// A self-signed CA that can sign the leaves above.
fn certificate_authority(common_name: &str) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = leaf_params(common_name)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let signing_key = key("a CA key")?;
    CertifiedIssuer::self_signed(params, signing_key).map_err(|source| Error::Pki {
        what: "a CA certificate",
        source,
    })
}

fn write(path: &Path, pem: &str) -> Result<()> {
    fs::write(path, pem).map_err(Error::io(format!("writing {}", path.display())))
}
