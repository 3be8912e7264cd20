//! The confused-deputy check on InferenceRollouts: whoever creates a rollout,
//! or points one at another target, must themselves be allowed to `patch` the
//! HTTPRoute (PoolSplit) or InferenceModelRewrite (ModelSplit) it names,
//! because the controller will then rewrite that object's weights with its own
//! cluster-wide rights.
//!
//! Deciding what to ask is pure ([`question`]); asking is a SubjectAccessReview
//! for the requesting user (name, uid, groups, extra, as the apiserver sent
//! them in the review), behind the [`AccessReviewer`] trait so tests need no
//! apiserver.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::Value;
use switchyard_api::InferenceRolloutSpec;
use switchyard_api::rollout::SplitMode;

/// The requesting user, as the apiserver describes them in the review.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ReviewUser {
    /// The user's name.
    #[serde(default)]
    pub username: String,
    /// The user's uid.
    #[serde(default)]
    pub uid: Option<String>,
    /// The user's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Authenticator-specific extras (scopes and the like).
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// "May `user` patch `resource` `namespace/name`?"
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// Who asks.
    pub user: ReviewUser,
    /// The API group of the target.
    pub group: &'static str,
    /// The target's resource (plural).
    pub resource: &'static str,
    /// The kind, for messages.
    pub kind: &'static str,
    /// The rollout's namespace (targets are namespaced with it).
    pub namespace: String,
    /// The target's name.
    pub name: String,
}

/// The question an InferenceRollout CREATE or UPDATE raises; `None` when
/// nothing new is targeted (an update that keeps the target) or the object
/// is no rollout (its own findings say so).
pub fn question(
    object: &Value,
    old_object: Option<&Value>,
    namespace: &str,
    user: &ReviewUser,
) -> Option<Question> {
    let (group, resource, kind, name) = target(object)?;
    if old_object.and_then(target) == Some((group, resource, kind, name.clone())) {
        return None;
    }
    Some(Question {
        user: user.clone(),
        group,
        resource,
        kind,
        namespace: namespace.to_owned(),
        name,
    })
}

type Target = (&'static str, &'static str, &'static str, String);

fn target(object: &Value) -> Option<Target> {
    let spec = InferenceRolloutSpec::deserialize(object.get("spec")?).ok()?;
    match spec.target.mode {
        SplitMode::PoolSplit => spec.target.route.map(|route| {
            (
                "gateway.networking.k8s.io",
                "httproutes",
                "HTTPRoute",
                route.name,
            )
        }),
        SplitMode::ModelSplit => spec.target.model_split.map(|split| {
            (
                "inference.networking.x-k8s.io",
                "inferencemodelrewrites",
                "InferenceModelRewrite",
                split.rewrite_ref,
            )
        }),
    }
}

/// The denial when the answer is no.
pub fn refusal(question: &Question) -> String {
    format!(
        "user {:?} may not patch {} {}/{}, and this InferenceRollout would make the controller re-weight it; ask for `patch` on {}.{} in namespace {} (or have its owner create the rollout)",
        question.user.username,
        question.kind,
        question.namespace,
        question.name,
        question.resource,
        question.group,
        question.namespace
    )
}

/// Boxed future of a review.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;

/// Answers [`Question`]s.
pub trait AccessReviewer: Send + Sync {
    /// `Ok(true)` when allowed; `Err` when the review itself failed.
    fn may_patch<'a>(&'a self, question: &'a Question) -> Answer<'a>;
}

/// SubjectAccessReview through the apiserver.
pub struct ApiserverReviewer(pub Client);

impl AccessReviewer for ApiserverReviewer {
    fn may_patch<'a>(&'a self, question: &'a Question) -> Answer<'a> {
        Box::pin(async move {
            let user = &question.user;
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some(user.username.clone()),
                    uid: user.uid.clone(),
                    groups: Some(user.groups.clone()),
                    extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(question.group.to_owned()),
                        resource: Some(question.resource.to_owned()),
                        verb: Some("patch".to_owned()),
                        namespace: Some(question.namespace.clone()),
                        name: Some(question.name.clone()),
                        ..ResourceAttributes::default()
                    }),
                    ..SubjectAccessReviewSpec::default()
                },
                ..SubjectAccessReview::default()
            };
            let api: Api<SubjectAccessReview> = Api::all(self.0.clone());
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|err| err.to_string())?;
            Ok(answer.status.is_some_and(|s| s.allowed))
        })
    }
}

#[cfg(test)]
mod tests;
