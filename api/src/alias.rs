//! Reading a kind that is served under more than one API group.
//!
//! llm-d moved `InferenceObjective` and `InferenceModelRewrite` from
//! `inference.networking.x-k8s.io` to `llm-d.ai` (same version, same schema), and
//! clusters may hold either. We deserialize both into the one Rust type:
//! [`parse`] checks a document's `apiVersion`/`kind` against every group the type
//! accepts, and [`api_resources`] gives one [`ApiResource`] per group, so a
//! component can run a `DynamicObject` watcher on each and decode with
//! [`from_dynamic`].
//!
//! The Rust types serialise with their canonical `apiVersion`; write back to an
//! alias group through a `DynamicObject` with that group's [`ApiResource`].

use kube::core::{ApiResource, DynamicObject, GroupVersionKind, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::{InferenceModelRewrite, InferenceObjective};

/// llm-d's API group.
pub const LLM_D_GROUP: &str = "llm-d.ai";

/// Another group/version under which a kind is served with the same schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ApiGroupAlias {
    /// The API group, e.g. `llm-d.ai`.
    pub group: &'static str,
    /// The version within that group, e.g. `v1alpha2`.
    pub version: &'static str,
}

/// `llm-d.ai/v1alpha2`.
pub const LLM_D_V1ALPHA2: ApiGroupAlias = ApiGroupAlias {
    group: LLM_D_GROUP,
    version: "v1alpha2",
};

/// A kind readable from its own group and from the groups in [`Self::ALIASES`].
pub trait GroupAliased: Resource<DynamicType = ()> + DeserializeOwned {
    /// The other groups serving this kind, with the same schema.
    const ALIASES: &'static [ApiGroupAlias];
}

impl GroupAliased for InferenceObjective {
    const ALIASES: &'static [ApiGroupAlias] = &[LLM_D_V1ALPHA2];
}

impl GroupAliased for InferenceModelRewrite {
    const ALIASES: &'static [ApiGroupAlias] = &[LLM_D_V1ALPHA2];
}

// === impl ApiGroupAlias ===

impl ApiGroupAlias {
    /// `group/version`, as in a document's `apiVersion`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// The [`ApiResource`] of kind `K` served under this group.
    pub fn api_resource<K: Resource<DynamicType = ()>>(&self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group, self.version, &K::kind(&()));
        ApiResource::from_gvk_with_plural(&gvk, &K::plural(&()))
    }
}

/// Every `apiVersion` a `K` document may carry: the canonical one first.
pub fn accepted_api_versions<K: GroupAliased>() -> Vec<String> {
    std::iter::once(K::api_version(&()).into_owned())
        .chain(K::ALIASES.iter().map(ApiGroupAlias::api_version))
        .collect()
}

/// One [`ApiResource`] per group serving `K`: the canonical one first.
pub fn api_resources<K: GroupAliased>() -> Vec<ApiResource> {
    std::iter::once(ApiResource::erase::<K>(&()))
        .chain(K::ALIASES.iter().map(ApiGroupAlias::api_resource::<K>))
        .collect()
}

/// Decodes a `K` document whose `apiVersion` is the canonical one or an alias.
///
/// Fails with [`Error::UnexpectedType`] for any other `apiVersion` or `kind`, and
/// with [`Error::Decode`] when the body does not fit the schema.
pub fn parse<K: GroupAliased>(document: Value) -> Result<K> {
    let field = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let accepted = accepted_api_versions::<K>();
    if kind != K::kind(&()) || !accepted.contains(&api_version) {
        return Err(Error::UnexpectedType {
            expected_kind: kind_name::<K>(),
            accepted: accepted.join(", "),
            found_api_version: api_version,
            found_kind: kind,
        });
    }
    let name = document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    serde_json::from_value(document).map_err(|source| Error::Decode {
        kind: kind_name::<K>(),
        name,
        source,
    })
}

/// Decodes a `K` from a [`DynamicObject`] read from any group serving `K`.
/// The object must carry its `apiVersion`/`kind` (watchers set them).
pub fn from_dynamic<K: GroupAliased>(object: &DynamicObject) -> Result<K> {
    let document = serde_json::to_value(object).map_err(|source| Error::Serialize {
        what: "DynamicObject",
        source,
    })?;
    parse(document)
}

/// Decodes an `InferenceObjective` from `inference.networking.x-k8s.io/v1alpha2`
/// or `llm-d.ai/v1alpha2`.
pub fn parse_objective(document: Value) -> Result<InferenceObjective> {
    parse(document)
}

/// Decodes an `InferenceModelRewrite` from `inference.networking.x-k8s.io/v1alpha2`
/// or `llm-d.ai/v1alpha2`.
pub fn parse_model_rewrite(document: Value) -> Result<InferenceModelRewrite> {
    parse(document)
}

/// The [`ApiResource`] of `InferenceObjective` in `llm-d.ai/v1alpha2`.
pub fn llm_d_objective_resource() -> ApiResource {
    LLM_D_V1ALPHA2.api_resource::<InferenceObjective>()
}

/// The [`ApiResource`] of `InferenceModelRewrite` in `llm-d.ai/v1alpha2`.
pub fn llm_d_model_rewrite_resource() -> ApiResource {
    LLM_D_V1ALPHA2.api_resource::<InferenceModelRewrite>()
}

/// `K`'s kind as a `&'static str`, for error values.
fn kind_name<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()) {
        std::borrow::Cow::Borrowed(kind) => kind,
        // Derived resources always return a literal; a computed kind is unexpected.
        std::borrow::Cow::Owned(_) => "custom resource",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn objective_document(api_version: &str) -> Value {
        json!({
            "apiVersion": api_version,
            "kind": "InferenceObjective",
            "metadata": {"name": "chat", "namespace": "team-a"},
            "spec": {"priority": 10, "poolRef": {"name": "llama"}},
        })
    }

    #[test]
    fn both_groups_decode_to_the_same_objective() {
        let canonical =
            parse_objective(objective_document("inference.networking.x-k8s.io/v1alpha2")).unwrap();
        let llm_d = parse_objective(objective_document("llm-d.ai/v1alpha2")).unwrap();
        assert_eq!(canonical, llm_d);
        assert_eq!(llm_d.spec.priority, Some(10));
        assert_eq!(llm_d.spec.pool_ref.name, "llama");
        assert_eq!(llm_d.spec.pool_ref.group, "inference.networking.k8s.io");
    }

    #[test]
    fn other_groups_and_kinds_are_rejected() {
        let err = parse_objective(objective_document("example.com/v1alpha2")).unwrap_err();
        assert!(
            matches!(&err, Error::UnexpectedType { found_api_version, .. } if found_api_version == "example.com/v1alpha2"),
            "{err:?}"
        );
        assert!(err.to_string().contains("llm-d.ai/v1alpha2"), "{err}");

        let mut rewrite = objective_document("llm-d.ai/v1alpha2");
        rewrite["kind"] = json!("InferenceModelRewrite");
        let err = parse_objective(rewrite).unwrap_err();
        assert_eq!(err.kind(), "unexpected_type");
    }

    #[test]
    fn a_body_that_breaks_the_schema_names_the_object() {
        let mut document = objective_document("llm-d.ai/v1alpha2");
        document["spec"]["priority"] = json!("high");
        let err = parse_objective(document).unwrap_err();
        assert!(
            matches!(&err, Error::Decode { kind: "InferenceObjective", name, .. } if name == "chat"),
            "{err:?}"
        );
    }

    #[test]
    fn rewrites_parse_from_the_llm_d_group() {
        let rewrite = parse_model_rewrite(json!({
            "apiVersion": "llm-d.ai/v1alpha2",
            "kind": "InferenceModelRewrite",
            "metadata": {"name": "canary"},
            "spec": {
                "poolRef": {"name": "llama"},
                "rules": [{"targets": [{"modelRewrite": "llama-v2", "weight": 5}]}],
            },
        }))
        .unwrap();
        assert_eq!(rewrite.spec.rules[0].targets[0].model_rewrite, "llama-v2");
        assert!(rewrite.spec.rules[0].matches_model("anything"));
    }

    #[test]
    fn api_resources_cover_both_groups() {
        let resources = api_resources::<InferenceObjective>();
        let api_versions: Vec<&str> = resources.iter().map(|r| r.api_version.as_str()).collect();
        assert_eq!(
            api_versions,
            [
                "inference.networking.x-k8s.io/v1alpha2",
                "llm-d.ai/v1alpha2"
            ]
        );
        let llm_d = llm_d_model_rewrite_resource();
        assert_eq!(llm_d.group, "llm-d.ai");
        assert_eq!(llm_d.version, "v1alpha2");
        assert_eq!(llm_d.kind, "InferenceModelRewrite");
        assert_eq!(llm_d.plural, "inferencemodelrewrites");
        assert_eq!(llm_d_objective_resource().plural, "inferenceobjectives");
    }

    #[test]
    fn dynamic_objects_from_a_watcher_decode() {
        let object: DynamicObject =
            serde_json::from_value(objective_document("llm-d.ai/v1alpha2")).unwrap();
        let objective: InferenceObjective = from_dynamic(&object).unwrap();
        assert_eq!(objective.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(objective.spec.effective_priority(), 10);

        let untyped = DynamicObject {
            types: None,
            ..object
        };
        assert!(from_dynamic::<InferenceObjective>(&untyped).is_err());
    }
}
