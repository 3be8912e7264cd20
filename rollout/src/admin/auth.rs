//! Who may call the admin API: a bearer token checked by the apiserver
//! (TokenReview for the admin API's own audience, then SubjectAccessReview on
//! `inferencerollouts/status` with everything the TokenReview said about the
//! user: name, uid, groups and extra), or in local mode a token file.
//!
//! The audience matters: a token minted for the apiserver (or any other
//! service) would otherwise be accepted here, and a token minted for us could
//! be replayed elsewhere. `extra` and `uid` matter to authorizers that scope
//! a token (OpenShift scopes, credential ids): without them the review would
//! judge the unscoped user.

use http::HeaderMap;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};
use switchyard_api::rollout::ROLLOUT_GROUP;
use tokio_rustls::rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;

use super::AdminError;

/// How callers are authenticated.
#[derive(Debug)]
pub enum Authenticator {
    /// TokenReview and SubjectAccessReview through the apiserver.
    Kubernetes {
        /// The audiences a token must be bound to (`--admin-token-audience`);
        /// empty: the apiserver's own, so any token it accepts.
        audiences: Vec<String>,
    },
    /// Tokens from a file (local mode); every listed user may do everything.
    TokenFile(TokenFile),
}

/// `token user` pairs, one per line; `#` starts a comment. Only each token's
/// SHA-256 digest is kept, so every comparison is over 32 bytes whatever the
/// token's length: the time a check takes says nothing about the tokens.
///
/// The entries can be swapped while serving ([`watch_token_file`]), so a
/// revoked or rotated token takes effect without a restart.
#[derive(Debug, Default)]
pub struct TokenFile {
    entries: std::sync::RwLock<Vec<([u8; 32], String)>>,
}

/// What a request wants to do, for the SubjectAccessReview.
#[derive(Clone, Copy, Debug)]
pub struct Access<'a> {
    /// `get`, `list` or `patch`.
    pub verb: &'a str,
    /// The rollout's namespace; `None` for all namespaces.
    pub namespace: Option<&'a str>,
    /// The rollout's name.
    pub name: Option<&'a str>,
    /// `status` for actions (they write `status.intent`).
    pub subresource: Option<&'a str>,
}

// === impl TokenFile ===

impl TokenFile {
    /// Parses the file's text; an error names the bad line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(token), Some(user), None) if token.len() >= 16 => {
                    entries.push((digest(token.as_bytes()), user.to_owned()));
                }
                (Some(_), Some(_), None) => {
                    return Err(format!(
                        "line {}: tokens must be at least 16 characters",
                        number + 1
                    ));
                }
                _ => return Err(format!("line {}: expected `<token> <user>`", number + 1)),
            }
        }
        if entries.is_empty() {
            return Err("no tokens in the file; add lines like `<token> <user>`".into());
        }
        Ok(Self {
            entries: std::sync::RwLock::new(entries),
        })
    }

    /// Takes `other`'s entries in place of these.
    pub fn replace(&self, other: TokenFile) {
        let new = other
            .entries
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new;
    }

    /// The user of `token`, comparing its digest with every entry's in
    /// constant time.
    fn user(&self, token: &str) -> Option<String> {
        let presented = digest(token.as_bytes());
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut found = None;
        for (candidate, user) in entries.iter() {
            if constant_time_eq(candidate, &presented) {
                found = Some(user.clone());
            }
        }
        found
    }
}

/// Re-reads the token file at `path` every `poll` until `cancel`, swapping in
/// its tokens when the content changed and parses; a broken file keeps the
/// tokens in force (and says why in the log) rather than locking everyone out.
pub async fn watch_token_file(
    auth: std::sync::Arc<Authenticator>,
    path: std::path::PathBuf,
    poll: std::time::Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    let Authenticator::TokenFile(file) = auth.as_ref() else {
        return;
    };
    // Nothing remembered: the first look re-applies the file, so an edit made
    // between startup's read and this task's start is not missed.
    let mut last: Option<Vec<u8>> = None;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "cannot re-read the admin token file; keeping its tokens");
                continue;
            }
        };
        if last.as_ref() == Some(&bytes) {
            continue;
        }
        match TokenFile::parse(&String::from_utf8_lossy(&bytes)) {
            Ok(fresh) => {
                file.replace(fresh);
                tracing::info!(path = %path.display(), "admin token file reloaded");
                last = Some(bytes);
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "the admin token file does not parse; keeping its tokens");
            }
        }
    }
}

/// SHA-256, from the TLS stack's own hash (no separate digest crate).
fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Some(suite) = TLS13_AES_128_GCM_SHA256.tls13() {
        let hash = suite.common.hash_provider.hash(bytes);
        for (slot, byte) in out.iter_mut().zip(hash.as_ref()) {
            *slot = *byte;
        }
    }
    out
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Result<&str, AdminError> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
        AdminError::Unauthenticated("missing Authorization: Bearer <token> header".into())
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            AdminError::Unauthenticated("the Authorization header must be `Bearer <token>`".into())
        })
}

// === impl Authenticator ===

impl Authenticator {
    /// Authenticates and authorizes a request; returns the user's name.
    pub async fn authorize(
        &self,
        client: Option<&Client>,
        headers: &HeaderMap,
        access: Access<'_>,
    ) -> Result<String, AdminError> {
        let token = bearer(headers)?;
        let (Self::Kubernetes { audiences }, Some(client)) = (self, client) else {
            return self.user_from_file(token);
        };
        let user = token_review(client, token, audiences).await?;
        let name = subject_access_review(client, user, access).await?;
        Ok(name)
    }

    fn user_from_file(&self, token: &str) -> Result<String, AdminError> {
        match self {
            Self::TokenFile(file) => file.user(token).ok_or_else(|| {
                AdminError::Unauthenticated("the token is not in the token file".into())
            }),
            Self::Kubernetes { .. } => Err(AdminError::Unauthenticated(
                "this admin API runs without Kubernetes, so it cannot review tokens; start it with --admin-token-file".into(),
            )),
        }
    }
}

/// The user a token belongs to, as the apiserver saw it, for `audiences`.
pub(super) async fn token_review(
    client: &Client,
    token: &str,
    audiences: &[String],
) -> Result<UserInfo, AdminError> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_owned()),
            audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
        },
        ..TokenReview::default()
    };
    let api: Api<TokenReview> = Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|err| AdminError::from_kube("TokenReview", err))?;
    let status = answer.status.unwrap_or_default();
    // The apiserver answers with the audiences the token is valid for among
    // those asked; an authenticator that ignored the request would answer
    // none, and must not let a token for someone else through.
    let audience_ok = audiences.is_empty()
        || status
            .audiences
            .as_ref()
            .is_some_and(|got| got.iter().any(|a| audiences.contains(a)));
    match (status.authenticated, status.user) {
        (Some(true), Some(user)) if user.username.is_some() && audience_ok => Ok(user),
        (Some(true), Some(_)) if !audience_ok => Err(AdminError::Unauthenticated(format!(
            "the token is not bound to the admin API's audience {audiences:?}; create one with `kubectl create token <serviceaccount> --audience {}`",
            audiences.first().map_or("", String::as_str)
        ))),
        _ => Err(AdminError::Unauthenticated(format!(
            "the token was not accepted by the apiserver{}",
            status.error.map(|e| format!(": {e}")).unwrap_or_default()
        ))),
    }
}

/// Asks whether `user` may do `access`; returns the user's name.
async fn subject_access_review(
    client: &Client,
    user: UserInfo,
    access: Access<'_>,
) -> Result<String, AdminError> {
    let name = user.username.unwrap_or_default();
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(name.clone()),
            uid: user.uid,
            groups: user.groups,
            extra: user.extra,
            resource_attributes: Some(ResourceAttributes {
                group: Some(ROLLOUT_GROUP.to_owned()),
                resource: Some("inferencerollouts".into()),
                subresource: access.subresource.map(str::to_owned),
                verb: Some(access.verb.to_owned()),
                namespace: access.namespace.map(str::to_owned),
                name: access.name.map(str::to_owned),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|err| AdminError::from_kube("SubjectAccessReview", err))?;
    if answer.status.is_some_and(|s| s.allowed) {
        return Ok(name);
    }
    let what = format!(
        "{} inferencerollouts{}",
        access.verb,
        access
            .subresource
            .map(|s| format!("/{s}"))
            .unwrap_or_default()
    );
    Err(AdminError::Forbidden(format!(
        "user {name:?} may not {what} in namespace {:?}; grant it with RBAC",
        access.namespace.unwrap_or("(all)")
    )))
}

#[cfg(test)]
mod tests {
    use super::TokenFile;

    #[test]
    fn token_file_parses_and_rejects_with_line_numbers() {
        let file =
            TokenFile::parse("# admins\n0123456789abcdef alice\n\nfedcba9876543210 bob # ops\n")
                .unwrap();
        assert_eq!(file.user("0123456789abcdef").as_deref(), Some("alice"));
        assert_eq!(file.user("fedcba9876543210").as_deref(), Some("bob"));
        assert_eq!(file.user("0123456789abcdeX"), None);
        assert_eq!(file.user(""), None);
        assert_eq!(
            TokenFile::parse("short alice").unwrap_err(),
            "line 1: tokens must be at least 16 characters"
        );
        assert_eq!(
            TokenFile::parse("\nonlytoken0123456789").unwrap_err(),
            "line 2: expected `<token> <user>`"
        );
        assert!(
            TokenFile::parse("# nothing\n")
                .unwrap_err()
                .contains("no tokens")
        );
    }

    #[test]
    fn l1_tokens_are_compared_as_fixed_length_digests() {
        let file = TokenFile::parse("0123456789abcdef alice\n").unwrap();
        // Stored as a 32-byte digest, not the token: no length to leak.
        let entries = file.entries.read().unwrap();
        assert!(entries.iter().all(|(d, _)| d.len() == 32));
        assert_ne!(&entries[0].0[..16], b"0123456789abcdef");
        drop(entries);
        assert_eq!(
            super::digest(b"abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256"
        );
        for other in ["0", "0123456789abcdef0", "0123456789abcdeg", ""] {
            assert_eq!(file.user(other), None, "{other}");
        }
        assert_eq!(file.user("0123456789abcdef").as_deref(), Some("alice"));
    }
}

#[cfg(test)]
mod reload_tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::{Authenticator, TokenFile, watch_token_file};

    fn user(auth: &Authenticator, token: &str) -> Option<String> {
        match auth {
            Authenticator::TokenFile(file) => file.user(token),
            Authenticator::Kubernetes { .. } => None,
        }
    }

    #[tokio::test]
    async fn m15_a_rotated_token_file_takes_effect_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "old-token-0123456789 alice\n").unwrap();
        let auth = Arc::new(Authenticator::TokenFile(
            TokenFile::parse(&std::fs::read_to_string(&path).unwrap()).unwrap(),
        ));
        let cancel = CancellationToken::new();
        let poll = Duration::from_millis(20);
        tokio::spawn(watch_token_file(
            auth.clone(),
            path.clone(),
            poll,
            cancel.clone(),
        ));
        std::fs::write(&path, "new-token-0123456789 alice\n").unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while user(&auth, "new-token-0123456789").is_none() {
            assert!(tokio::time::Instant::now() < deadline, "never reloaded");
            tokio::time::sleep(poll).await;
        }
        assert_eq!(user(&auth, "old-token-0123456789"), None, "revoked");
        // A broken edit keeps the tokens in force.
        std::fs::write(&path, "short alice\n").unwrap();
        tokio::time::sleep(poll * 5).await;
        assert_eq!(
            user(&auth, "new-token-0123456789").as_deref(),
            Some("alice")
        );
        cancel.cancel();
    }
}
