//! The API server's audit log, read back: which requests a user made and which were refused.
//!
//! RBAC refusals are 403s in the log with the verb and the resource, so a suite can name the
//! exact rule a chart's Role is missing rather than grep a component's own log for "forbidden".

use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::error::{Error, Result};

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who made it.
    pub user: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`…
    pub verb: String,
    /// The API group (empty for the core group).
    pub group: String,
    /// The resource, with `/subresource` when there is one.
    pub resource: String,
    /// The namespace, empty for cluster-scoped requests.
    pub namespace: String,
    /// The HTTP status answered.
    pub code: u16,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(
            f,
            "{} {} ({group}) in namespace {:?} -> {}",
            self.verb, self.resource, self.namespace, self.code
        )
    }
}

/// Every resource request in the audit log made by `user` (non-resource URLs such as
/// `/readyz` have no resource and are left out).
pub fn requests_by(log: &Path, user: &str) -> Result<Vec<Request>> {
    let text = match std::fs::read_to_string(log) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io(format!("reading {}", log.display()))(err)),
    };
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event.pointer("/user/username").and_then(Value::as_str) == Some(user))
        .filter_map(|event| {
            let field = |pointer: &str| {
                event
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let resource = field("/objectRef/resource");
            if resource.is_empty() {
                return None;
            }
            let subresource = field("/objectRef/subresource");
            Some(Request {
                user: user.to_owned(),
                verb: field("/verb"),
                group: field("/objectRef/apiGroup"),
                resource: if subresource.is_empty() {
                    resource
                } else {
                    format!("{resource}/{subresource}")
                },
                namespace: field("/objectRef/namespace"),
                code: event
                    .pointer("/responseStatus/code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(0),
            })
        })
        .collect())
}

/// The requests by `user` that RBAC refused (403).
pub fn forbidden(log: &Path, user: &str) -> Result<Vec<Request>> {
    Ok(requests_by(log, user)?
        .into_iter()
        .filter(|r| r.code == 403)
        .collect())
}
