//! Who may call the admin API: a bearer token checked by the apiserver
//! (TokenReview, then SubjectAccessReview on `inferencerollouts/status`), or
//! in local mode a token file.

use http::HeaderMap;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};
use switchyard_api::rollout::ROLLOUT_GROUP;

use super::AdminError;

/// How callers are authenticated.
#[derive(Debug)]
pub enum Authenticator {
    /// TokenReview and SubjectAccessReview through the apiserver.
    Kubernetes,
    /// Tokens from a file (local mode); every listed user may do everything.
    TokenFile(TokenFile),
}

/// `token user` pairs, one per line; `#` starts a comment.
#[derive(Debug, Default)]
pub struct TokenFile {
    entries: Vec<(String, String)>,
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
                    entries.push((token.to_owned(), user.to_owned()));
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
        Ok(Self { entries })
    }

    /// The user of `token`, comparing every entry in constant time.
    fn user(&self, token: &str) -> Option<&str> {
        let mut found = None;
        for (candidate, user) in &self.entries {
            if constant_time_eq(candidate.as_bytes(), token.as_bytes()) {
                found = Some(user.as_str());
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
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
        let Some(client) = client.filter(|_| matches!(self, Self::Kubernetes)) else {
            return self.user_from_file(token);
        };
        let (user, groups) = token_review(client, token).await?;
        subject_access_review(client, &user, groups, access).await?;
        Ok(user)
    }

    fn user_from_file(&self, token: &str) -> Result<String, AdminError> {
        match self {
            Self::TokenFile(file) => file.user(token).map(str::to_owned).ok_or_else(|| {
                AdminError::Unauthenticated("the token is not in the token file".into())
            }),
            Self::Kubernetes => Err(AdminError::Unauthenticated(
                "this admin API runs without Kubernetes, so it cannot review tokens; start it with --admin-token-file".into(),
            )),
        }
    }
}

async fn token_review(client: &Client, token: &str) -> Result<(String, Vec<String>), AdminError> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_owned()),
            audiences: None,
        },
        ..TokenReview::default()
    };
    let api: Api<TokenReview> = Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|err| AdminError::from_kube("TokenReview", err))?;
    let status = answer.status.unwrap_or_default();
    let user = status.user.unwrap_or_default();
    match (status.authenticated, user.username) {
        (Some(true), Some(name)) => Ok((name, user.groups.unwrap_or_default())),
        _ => Err(AdminError::Unauthenticated(format!(
            "the token was not accepted by the apiserver{}",
            status.error.map(|e| format!(": {e}")).unwrap_or_default()
        ))),
    }
}

async fn subject_access_review(
    client: &Client,
    user: &str,
    groups: Vec<String>,
    access: Access<'_>,
) -> Result<(), AdminError> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            groups: Some(groups),
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
        return Ok(());
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
        "user {user:?} may not {what} in namespace {:?}; grant it with RBAC",
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
        assert_eq!(file.user("0123456789abcdef"), Some("alice"));
        assert_eq!(file.user("fedcba9876543210"), Some("bob"));
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
}
