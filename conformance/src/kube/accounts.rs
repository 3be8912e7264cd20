//! Acting as a ServiceAccount: a token from the TokenRequest API, a kubeconfig holding it,
//! and a client built from that kubeconfig.
//!
//! This is how the suites run a Switchyard binary "as its chart's ServiceAccount" out of
//! cluster: the binary gets the kubeconfig, and RBAC judges every request it makes exactly as
//! it would judge the Pod's projected token.

use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::json;

use super::error::{Error, Result};
use super::plane::{client_from, kubeconfig_json, write_json};

/// How long a requested token lives; an hour outlasts any suite.
const TOKEN_SECONDS: i64 = 3600;

/// Credentials of one ServiceAccount.
#[derive(Clone)]
pub struct AccountAccess {
    /// `system:serviceaccount:<namespace>:<name>`.
    pub user: String,
    /// A kubeconfig holding the token.
    pub kubeconfig: PathBuf,
    /// A client that authenticates with the token.
    pub client: Client,
}

/// Creates `namespace` when it does not exist yet.
pub async fn ensure_namespace(admin: &Client, namespace: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(admin.clone());
    let object = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(err) => Err(Error::api(format!("creating namespace {namespace}"))(err)),
    }
}

/// A token for ServiceAccount `namespace/name` (created when missing, as is its namespace)
/// and a kubeconfig for it written into `dir`.
pub async fn service_account(
    admin: &Client,
    url: &str,
    ca: &Path,
    dir: &Path,
    namespace: &str,
    name: &str,
) -> Result<AccountAccess> {
    ensure_namespace(admin, namespace).await?;
    let api: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match api.create(&PostParams::default(), &account).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => {
            return Err(Error::api(format!(
                "creating ServiceAccount {namespace}/{name}"
            ))(err));
        }
    }
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(TOKEN_SECONDS),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let issued = api
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .map_err(Error::api(format!(
            "requesting a token for ServiceAccount {namespace}/{name}"
        )))?;
    let token = issued
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Timeout(format!(
                "the TokenRequest for {namespace}/{name} came back without a token"
            ))
        })?;
    let user = format!("system:serviceaccount:{namespace}:{name}");
    let kubeconfig = dir.join(format!("sa-{namespace}-{name}.kubeconfig"));
    write_json(
        &kubeconfig,
        &kubeconfig_json(url, ca, &user, json!({ "token": token })),
    )?;
    let client = client_from(&kubeconfig).await?;
    Ok(AccountAccess {
        user,
        kubeconfig,
        client,
    })
}
