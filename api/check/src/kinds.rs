//! Which documents are ours: dispatch on `apiVersion` and `kind`.
//!
//! A document is checked when its kind is one of ours, whatever its apiVersion:
//! a kind written under an apiVersion that does not serve it (an article's
//! `v1alpha1`, a missing apiVersion) is exactly the mistake to explain.

use super::hints::{GATEWAY_GROUP, LLMD_GROUP, POOL_API, POOL_GROUP, X_API, X_GROUP, closest};
use switchyard_api::rollout::{ROLLOUT_GROUP, ROLLOUT_KIND, ROLLOUT_VERSION};

/// The kinds the checker validates, each in the shape of one served version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// InferencePool, `inference.networking.k8s.io/v1`.
    Pool,
    /// InferencePool, legacy `inference.networking.x-k8s.io/v1alpha2`.
    LegacyPool,
    /// InferenceModel, legacy `inference.networking.x-k8s.io/v1alpha2`.
    LegacyModel,
    /// InferenceObjective, `inference.networking.x-k8s.io/v1alpha2` or `llm-d.ai/v1alpha2`.
    Objective,
    /// InferenceModelRewrite, same groups as InferenceObjective.
    Rewrite,
    /// HTTPRoute, `gateway.networking.k8s.io/v1` (or `v1beta1`).
    HttpRoute,
    /// InferenceRollout, `rollout.switchyard.dev/v1alpha1`.
    Rollout,
}

/// What to do with a document.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// One of our kinds at a served apiVersion.
    Served(Kind),
    /// One of our kinds at an apiVersion that does not serve it: report `message`
    /// at `apiVersion`, then check the document against `kind`'s shape so each
    /// field gets its own fix.
    Unserved { kind: Kind, message: String },
    /// Our API group but no kind of ours (often a misspelt kind).
    UnknownKind { message: String },
    /// Someone else's kind: skipped, but counted.
    Other,
}

/// Kinds in our groups that this checker does not validate (not CRD manifests a
/// user applies, or status-only).
const OTHER_KINDS_OF_OURS: [&str; 2] = ["EndpointPickerConfig", "InferencePoolImport"];

const OUR_KINDS: [&str; 6] = [
    "InferencePool",
    "InferenceModel",
    "InferenceObjective",
    "InferenceModelRewrite",
    "HTTPRoute",
    ROLLOUT_KIND,
];

/// Classifies a document by its `apiVersion` and `kind` (either may be missing).
pub(crate) fn classify(api_version: Option<&str>, kind: Option<&str>) -> Class {
    let (group, version) = match api_version {
        Some(av) => match av.rsplit_once('/') {
            Some((group, version)) => (Some(group), Some(version)),
            // A bare version (`v1`) is the core group.
            None => (Some(""), Some(av)),
        },
        None => (None, None),
    };
    let ours = group.is_some_and(|g| [POOL_GROUP, X_GROUP, LLMD_GROUP, ROLLOUT_GROUP].contains(&g));
    let Some(kind) = kind else {
        return if ours {
            Class::UnknownKind {
                message: format!(
                    "kind is missing; {} serves {}",
                    group.unwrap_or_default(),
                    kinds_of(group)
                ),
            }
        } else {
            Class::Other
        };
    };
    let served = |kind| Class::Served(kind);
    let unserved = |kind, message: String| Class::Unserved { kind, message };
    let written = api_version.map_or_else(
        || "no apiVersion".to_owned(),
        |av| format!("apiVersion {av}"),
    );
    match (kind, group, version) {
        ("InferencePool", Some(POOL_GROUP), Some("v1")) => served(Kind::Pool),
        ("InferencePool", Some(X_GROUP), Some("v1alpha2")) => served(Kind::LegacyPool),
        ("InferencePool", Some(X_GROUP), Some("v1alpha1")) => unserved(
            Kind::Pool,
            format!(
                "{X_GROUP}/v1alpha1 never shipped InferencePool; write apiVersion: {POOL_API} (the GA version; each field below says what it becomes)"
            ),
        ),
        ("InferencePool", ..) => unserved(
            Kind::Pool,
            format!("InferencePool is not served at {written}; write apiVersion: {POOL_API}"),
        ),
        ("InferenceModel", Some(X_GROUP), Some("v1alpha2")) => served(Kind::LegacyModel),
        ("InferenceModel", ..) => unserved(
            Kind::LegacyModel,
            format!(
                "InferenceModel is not served at {written}; it existed only as {X_API} and is replaced by InferenceObjective: write apiVersion: {X_API} and kind: InferenceObjective (each field below says what it becomes)"
            ),
        ),
        (
            "InferenceObjective" | "InferenceModelRewrite",
            Some(X_GROUP | LLMD_GROUP),
            Some("v1alpha2"),
        ) => served(if kind == "InferenceObjective" {
            Kind::Objective
        } else {
            Kind::Rewrite
        }),
        ("InferenceObjective" | "InferenceModelRewrite", ..) => unserved(
            if kind == "InferenceObjective" {
                Kind::Objective
            } else {
                Kind::Rewrite
            },
            format!(
                "{kind} is not served at {written}; write apiVersion: {X_API} (llm-d.ai/v1alpha2 is read too){}",
                if group == Some(POOL_GROUP) {
                    "; only InferencePool moved to inference.networking.k8s.io"
                } else {
                    ""
                }
            ),
        ),
        ("HTTPRoute", Some(GATEWAY_GROUP), Some("v1" | "v1beta1")) => served(Kind::HttpRoute),
        ("HTTPRoute", Some(GATEWAY_GROUP) | None, _) => unserved(
            Kind::HttpRoute,
            format!("HTTPRoute is not served at {written}; write apiVersion: {GATEWAY_GROUP}/v1"),
        ),
        (ROLLOUT_KIND, Some(ROLLOUT_GROUP), Some(ROLLOUT_VERSION)) => served(Kind::Rollout),
        (ROLLOUT_KIND, ..) => unserved(
            Kind::Rollout,
            format!(
                "InferenceRollout is not served at {written}; write apiVersion: {ROLLOUT_GROUP}/{ROLLOUT_VERSION}"
            ),
        ),
        _ if OUR_KINDS.contains(&kind) => Class::Other,
        _ => classify_unknown(kind, group, ours),
    }
}

fn classify_unknown(kind: &str, group: Option<&str>, ours: bool) -> Class {
    if OTHER_KINDS_OF_OURS.contains(&kind) {
        return Class::Other;
    }
    // Only a near miss of one of our kinds is worth a finding: llm-d.ai also holds
    // kinds of its own that we do not know.
    match closest(kind, &OUR_KINDS) {
        Some(fix) if ours || group.is_none() => Class::UnknownKind {
            message: format!("there is no kind {kind:?}; did you mean kind: {fix}?"),
        },
        _ => Class::Other,
    }
}

fn kinds_of(group: Option<&str>) -> &'static str {
    match group {
        Some(POOL_GROUP) => "InferencePool (v1)",
        Some(ROLLOUT_GROUP) => "InferenceRollout (v1alpha1)",
        Some(X_GROUP) => {
            "InferenceObjective and InferenceModelRewrite (v1alpha2), and the legacy InferencePool and InferenceModel (v1alpha2)"
        }
        _ => "InferenceObjective and InferenceModelRewrite (v1alpha2)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_versions() {
        assert_eq!(
            classify(Some(POOL_API), Some("InferencePool")),
            Class::Served(Kind::Pool)
        );
        assert_eq!(
            classify(Some(X_API), Some("InferencePool")),
            Class::Served(Kind::LegacyPool)
        );
        assert_eq!(
            classify(Some("llm-d.ai/v1alpha2"), Some("InferenceObjective")),
            Class::Served(Kind::Objective)
        );
        assert_eq!(
            classify(Some(X_API), Some("InferenceModelRewrite")),
            Class::Served(Kind::Rewrite)
        );
        assert_eq!(
            classify(Some("gateway.networking.k8s.io/v1beta1"), Some("HTTPRoute")),
            Class::Served(Kind::HttpRoute)
        );
        assert_eq!(
            classify(
                Some("rollout.switchyard.dev/v1alpha1"),
                Some("InferenceRollout")
            ),
            Class::Served(Kind::Rollout)
        );
    }

    #[test]
    fn rollout_at_another_version() {
        assert_eq!(
            classify(Some("rollout.switchyard.dev/v1"), Some("InferenceRollout")),
            Class::Unserved {
                kind: Kind::Rollout,
                message: "InferenceRollout is not served at apiVersion rollout.switchyard.dev/v1; write apiVersion: rollout.switchyard.dev/v1alpha1".to_owned()
            }
        );
    }

    #[test]
    fn other_kinds() {
        assert_eq!(classify(Some("apps/v1"), Some("Deployment")), Class::Other);
        assert_eq!(classify(Some("v1"), Some("Service")), Class::Other);
        assert_eq!(classify(None, None), Class::Other);
        assert_eq!(
            classify(
                Some("inference.networking.x-k8s.io/v1alpha1"),
                Some("EndpointPickerConfig")
            ),
            Class::Other
        );
        assert_eq!(
            classify(Some("llm-d.ai/v1alpha1"), Some("ModelService")),
            Class::Other
        );
    }

    #[test]
    fn misspelt_kind_in_our_group() {
        let Class::UnknownKind { message } = classify(Some(POOL_API), Some("InferencePools"))
        else {
            panic!("not flagged");
        };
        assert_eq!(
            message,
            "there is no kind \"InferencePools\"; did you mean kind: InferencePool?"
        );
    }
}
