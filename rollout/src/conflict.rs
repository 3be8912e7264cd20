//! Two rollouts on one route rule would fight over its weights. The oldest
//! (by creation time, then name) owns the rule; the others wait.

use switchyard_api::InferenceRollout;
use switchyard_api::rollout::SplitMode;

/// The rule a rollout writes: (namespace, route name, rule name) for
/// PoolSplit, (namespace, `InferenceModelRewrite/<name>`, model) for
/// ModelSplit; the `/` keeps the two apart, as no route name holds one.
pub fn rule_key(rollout: &InferenceRollout) -> Option<(String, String, String)> {
    let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
    let target = &rollout.spec.target;
    if target.mode == SplitMode::ModelSplit {
        let split = target.model_split.as_ref()?;
        return Some((
            namespace,
            format!("InferenceModelRewrite/{}", split.rewrite_ref),
            split.model.clone(),
        ));
    }
    let route = target.route.as_ref()?;
    Some((namespace, route.name.clone(), route.rule_name.clone()))
}

/// The name of the rollout that owns `me`'s route rule, when it is not `me`.
/// Rollouts being deleted do not own anything.
pub fn conflict_with<'a>(
    me: &InferenceRollout,
    all: impl IntoIterator<Item = &'a InferenceRollout>,
) -> Option<String> {
    let key = rule_key(me)?;
    let order = |r: &InferenceRollout| {
        (
            r.metadata.creation_timestamp.as_ref().map(|t| t.0),
            r.metadata.name.clone().unwrap_or_default(),
        )
    };
    let owner = all
        .into_iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .filter(|r| rule_key(r).as_ref() == Some(&key))
        .min_by_key(|r| order(r))?;
    let owner_name = owner.metadata.name.clone().unwrap_or_default();
    (owner_name != me.metadata.name.clone().unwrap_or_default()).then_some(owner_name)
}

#[cfg(test)]
mod tests;
