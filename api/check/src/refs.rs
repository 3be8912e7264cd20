//! References to InferencePools (HTTPRoute backendRefs, objective and rewrite
//! poolRefs), resolved against the pools in the same set of documents.
//!
//! When the set holds no pool at all the user is checking references on their
//! own (the pools live elsewhere), so only the reference's shape is checked.

use super::Reporter;
use super::hints::{POOL_API, POOL_GROUP, X_API, X_GROUP, closest};
use super::objects::{Objects, PoolObject, Scope};

/// Every InferencePool the references can name.
#[derive(Debug)]
pub(crate) struct PoolIndex<'a> {
    pools: &'a [PoolObject],
    scope: Scope,
}

/// A reference to an InferencePool, as written.
pub(crate) struct PoolRef<'v> {
    /// `group`, if written.
    pub group: Option<&'v str>,
    /// `name`.
    pub name: &'v str,
    /// `namespace`, if written (HTTPRoute backendRefs only).
    pub namespace: Option<&'v str>,
    /// Whether this kind of reference can name another namespace at all.
    pub cross_namespace: bool,
}

impl<'a> PoolIndex<'a> {
    /// The pools of `objects` (none when they are not known).
    pub(crate) fn build(objects: &'a Objects) -> Self {
        Self {
            pools: objects.pools.as_deref().unwrap_or_default(),
            scope: objects.scope,
        }
    }

    /// Checks that `reference` (at `path`, from a document in `from_namespace`)
    /// names a pool of the set, in the right group; `default_group` is what an
    /// omitted `group` means for this kind of reference.
    pub(crate) fn check(
        &self,
        rep: &mut Reporter<'_>,
        path: &str,
        reference: &PoolRef<'_>,
        default_group: &str,
    ) {
        let group = reference.group.unwrap_or(default_group);
        let group_at = if reference.group.is_some() {
            format!("{path}.group")
        } else {
            path.to_owned()
        };
        if self.pools.is_empty() {
            if group != POOL_GROUP && group != X_GROUP {
                rep.report(
                    &group_at,
                    format!(
                        "InferencePool is in group {POOL_GROUP} ({POOL_API}): write group: {POOL_GROUP}"
                    ),
                );
            }
            return;
        }
        let name = reference.name;
        let namespace = reference
            .namespace
            .unwrap_or_else(|| rep.namespace())
            .to_owned();
        let here = self
            .pools
            .iter()
            .find(|p| p.name == name && p.namespace == namespace);
        let pool = match here {
            Some(pool) => pool,
            None => {
                // Reported as missing, but a same-named pool elsewhere still tells
                // whether the group is right, so both fixes come at once.
                let elsewhere = self.pools.iter().find(|p| p.name == name);
                self.report_missing(rep, path, reference, &namespace);
                match elsewhere {
                    Some(pool) => pool,
                    None => return,
                }
            }
        };
        if pool.group == group {
            return;
        }
        let pool_is_ga = pool.group == POOL_GROUP;
        let message = if pool_is_ga {
            format!(
                "InferencePool {name} is {POOL_API}, in group {POOL_GROUP}, but the reference says group {group:?}: write group: {POOL_GROUP}"
            )
        } else {
            format!(
                "InferencePool {name} is the legacy {X_API}, but the reference says group {group:?}: write group: {X_GROUP}, or move the pool to apiVersion: {POOL_API}"
            )
        };
        rep.report(&group_at, message);
    }

    fn report_missing(
        &self,
        rep: &mut Reporter<'_>,
        path: &str,
        reference: &PoolRef<'_>,
        namespace: &str,
    ) {
        let name = reference.name;
        let elsewhere: Vec<&str> = self
            .pools
            .iter()
            .filter(|p| p.name == name)
            .map(|p| p.namespace.as_str())
            .collect();
        if let Some(other) = elsewhere.first() {
            let fix = if reference.cross_namespace {
                format!(
                    "move this object to namespace {other} (metadata.namespace: {other}), or write namespace: {other} on the reference and allow it with a ReferenceGrant in {other}"
                )
            } else {
                format!(
                    "the pool must be in the same namespace: set metadata.namespace: {other} here"
                )
            };
            rep.missing(
                path,
                format!("InferencePool {name} is in namespace {other}, not {namespace}: {fix}"),
            );
            return;
        }
        let here: Vec<&str> = self
            .pools
            .iter()
            .filter(|p| p.namespace == namespace)
            .map(|p| p.name.as_str())
            .collect();
        let among = match self.scope {
            Scope::Files => "among the checked files",
            Scope::Cluster => "in the cluster",
        };
        let mut message = format!("no InferencePool {name:?} in namespace {namespace} {among}");
        match closest(name, &here) {
            Some(fix) => message.push_str(&format!("; did you mean {fix}?")),
            None if !here.is_empty() => {
                message.push_str(&format!("; the pools there are {}", here.join(", ")));
            }
            None => {}
        }
        rep.missing(path, message);
    }
}
