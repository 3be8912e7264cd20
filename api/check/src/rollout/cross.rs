//! The rules an InferenceRollout can break against other objects: the route rule
//! and its backendRefs, the pools, the rewrite rule, and another rollout that
//! already weighs the same rule. The checker fills [`Objects`] from the files it
//! was given; an admission webhook fills it from the API server.

use super::Problem;
use crate::hints::closest;
use crate::objects::{Object, Objects, PoolObject};
use switchyard_api::httproute::HttpRouteRule;
use switchyard_api::rollout::{BackendTarget, InferenceRolloutSpec, SplitMode};
use switchyard_api::{HttpRouteSpec, InferenceModelRewriteSpec};

/// Every rule the rollout `name` in `namespace` breaks against `objects`.
pub fn reference_problems(
    namespace: &str,
    name: &str,
    spec: &InferenceRolloutSpec,
    objects: &Objects,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let target = &spec.target;
    match target.mode {
        SplitMode::PoolSplit => {
            if let (Some(route), Some(routes)) = (&target.route, &objects.routes) {
                let backends = [("stable", &target.stable), ("canary", &target.canary)];
                route_rule(
                    &mut problems,
                    namespace,
                    route,
                    &backends,
                    routes,
                    objects.among(),
                );
            }
            if let Some(pools) = &objects.pools {
                for (field, backend) in [("stable", &target.stable), ("canary", &target.canary)] {
                    if let Some(backend) = backend {
                        pool(
                            &mut problems,
                            namespace,
                            field,
                            backend,
                            pools,
                            objects.among(),
                        );
                    }
                }
            }
        }
        SplitMode::ModelSplit => {
            if let (Some(split), Some(rewrites)) = (&target.model_split, &objects.rewrites) {
                rewrite_rule(&mut problems, namespace, split, rewrites, objects.among());
            }
        }
    }
    same_target(&mut problems, namespace, name, spec, &objects.rollouts);
    problems
}

fn route_rule(
    problems: &mut Vec<Problem>,
    namespace: &str,
    route: &switchyard_api::rollout::RouteTarget,
    backends: &[(&str, &Option<BackendTarget>)],
    routes: &[Object<HttpRouteSpec>],
    among: &str,
) {
    let Some(found) = routes
        .iter()
        .find(|r| r.namespace == namespace && r.name == route.name)
    else {
        let here: Vec<&str> = names_in(routes, namespace);
        problems.push(Problem::missing(
            "spec.target.route.name",
            missing("HTTPRoute", &route.name, namespace, &here, among),
        ));
        return;
    };
    let rules: &[HttpRouteRule] = found.spec.rules.as_deref().unwrap_or_default();
    let Some(rule) = rules
        .iter()
        .find(|r| r.name.as_deref() == Some(route.rule_name.as_str()))
    else {
        let named: Vec<&str> = rules.iter().filter_map(|r| r.name.as_deref()).collect();
        let fix = match closest(&route.rule_name, &named) {
            Some(fix) => format!("did you mean ruleName: {fix}?"),
            None if named.is_empty() => format!(
                "none of its rules has a name: add name: {} to the rule whose backendRefs are the stable and canary pools",
                route.rule_name
            ),
            None => format!("its named rules are {}", named.join(", ")),
        };
        problems.push(Problem::missing(
            "spec.target.route.ruleName",
            format!(
                "HTTPRoute {} has no rule named {:?}; {fix}",
                route.name, route.rule_name
            ),
        ));
        return;
    };
    let refs = rule.backend_refs.as_deref().unwrap_or_default();
    for (field, backend) in backends {
        let Some(backend) = backend else { continue };
        if refs.iter().any(|b| backend.matches(b)) {
            continue;
        }
        problems.push(Problem::missing(
            format!("spec.target.{field}"),
            format!(
                "rule {} of HTTPRoute {} has no backendRef to {} {}; the controller only changes weights, it never adds backends: add {{group: {}, kind: {}, name: {}}} to that rule's backendRefs",
                route.rule_name,
                route.name,
                backend.kind,
                backend.name,
                backend.group,
                backend.kind,
                backend.name
            ),
        ));
    }
}

fn pool(
    problems: &mut Vec<Problem>,
    namespace: &str,
    field: &str,
    backend: &BackendTarget,
    pools: &[PoolObject],
    among: &str,
) {
    if backend.kind != switchyard_api::reference::INFERENCE_POOL_KIND {
        return; // A Service or other backend: not ours to resolve.
    }
    let Some(found) = pools
        .iter()
        .find(|p| p.namespace == namespace && p.name == backend.name)
    else {
        let here: Vec<&str> = pools
            .iter()
            .filter(|p| p.namespace == namespace)
            .map(|p| p.name.as_str())
            .collect();
        problems.push(Problem::missing(
            format!("spec.target.{field}.name"),
            missing("InferencePool", &backend.name, namespace, &here, among),
        ));
        return;
    };
    if found.group != backend.group {
        problems.push(Problem::new(
            format!("spec.target.{field}.group"),
            format!(
                "InferencePool {} is in group {}, but the rollout says group {}: write group: {}",
                found.name, found.group, backend.group, found.group
            ),
        ));
    }
}

fn rewrite_rule(
    problems: &mut Vec<Problem>,
    namespace: &str,
    split: &switchyard_api::rollout::ModelSplitTarget,
    rewrites: &[Object<InferenceModelRewriteSpec>],
    among: &str,
) {
    let Some(found) = rewrites
        .iter()
        .find(|r| r.namespace == namespace && r.name == split.rewrite_ref)
    else {
        problems.push(Problem::missing(
            "spec.target.modelSplit.rewriteRef",
            missing(
                "InferenceModelRewrite",
                &split.rewrite_ref,
                namespace,
                &names_in(rewrites, namespace),
                among,
            ),
        ));
        return;
    };
    let matches_model = |rule: &&switchyard_api::rewrite::InferenceModelRewriteRule| {
        rule.matches.iter().any(|m| m.model.value == split.model)
    };
    let mut rules = found.spec.rules.iter().filter(matches_model);
    let Some(rule) = rules.next() else {
        let models: Vec<&str> = found
            .spec
            .rules
            .iter()
            .flat_map(|r| r.matches.iter().map(|m| m.model.value.as_str()))
            .collect();
        let fix = match closest(&split.model, &models) {
            Some(fix) => format!("did you mean model: {fix}?"),
            None if models.is_empty() => "it matches no model".to_owned(),
            None => format!("its rules match {}", models.join(", ")),
        };
        problems.push(Problem::new(
            "spec.target.modelSplit.model",
            format!(
                "InferenceModelRewrite {} has no rule matching model {:?}; {fix}",
                found.name, split.model
            ),
        ));
        return;
    };
    if rules.next().is_some() {
        problems.push(Problem::new(
            "spec.target.modelSplit.model",
            format!(
                "InferenceModelRewrite {} has two rules matching model {:?}; the controller weighs exactly one: merge them",
                found.name, split.model
            ),
        ));
        return;
    }
    // The controller removes a target at weight 0 and adds it back above 0
    // (the CRD's minimum weight is 1), so either arm may be absent, not both;
    // any other target would take a share it cannot see.
    let ours = |model: &str| model == split.stable || model == split.canary;
    for other in rule.targets.iter().filter(|t| !ours(&t.model_rewrite)) {
        problems.push(Problem::new(
            "spec.target.modelSplit",
            format!(
                "the rule for model {} of InferenceModelRewrite {} also targets {}; a ModelSplit rule may only target the stable {} and the canary {}: move {} to its own rule",
                split.model, found.name, other.model_rewrite, split.stable, split.canary, other.model_rewrite
            ),
        ));
    }
    for (field, model) in [("stable", &split.stable), ("canary", &split.canary)] {
        if rule
            .targets
            .iter()
            .filter(|t| &t.model_rewrite == model)
            .count()
            > 1
        {
            problems.push(Problem::new(
                format!("spec.target.modelSplit.{field}"),
                format!(
                    "the rule for model {} of InferenceModelRewrite {} lists the target {model} twice; list it once",
                    split.model, found.name
                ),
            ));
        }
    }
    if !rule.targets.iter().any(|t| ours(&t.model_rewrite)) {
        problems.push(Problem::new(
            "spec.target.modelSplit.stable",
            format!(
                "the rule for model {} of InferenceModelRewrite {} targets neither {} nor {}; add {{modelRewrite: {}}} to its targets",
                split.model, found.name, split.stable, split.canary, split.stable
            ),
        ));
    }
}

/// Two rollouts weighing one rule would overwrite each other's weights.
fn same_target(
    problems: &mut Vec<Problem>,
    namespace: &str,
    name: &str,
    spec: &InferenceRolloutSpec,
    rollouts: &[Object<InferenceRolloutSpec>],
) {
    let others = rollouts
        .iter()
        .filter(|r| r.namespace == namespace && r.name != name);
    let target = &spec.target;
    for other in others {
        let theirs = &other.spec.target;
        if theirs.mode != target.mode {
            continue;
        }
        let clash = match (target.mode, &target.route, &theirs.route) {
            (SplitMode::PoolSplit, Some(ours), Some(theirs)) => {
                (ours.name == theirs.name && ours.rule_name == theirs.rule_name).then(|| {
                    (
                        "spec.target.route",
                        format!("rule {} of HTTPRoute {}", ours.rule_name, ours.name),
                    )
                })
            }
            _ => None,
        };
        let clash = clash.or_else(|| match (&target.model_split, &theirs.model_split) {
            (Some(ours), Some(theirs))
                if target.mode == SplitMode::ModelSplit
                    && ours.rewrite_ref == theirs.rewrite_ref
                    && ours.model == theirs.model =>
            {
                Some((
                    "spec.target.modelSplit",
                    format!(
                        "the rule for model {} of InferenceModelRewrite {}",
                        ours.model, ours.rewrite_ref
                    ),
                ))
            }
            _ => None,
        });
        if let Some((path, what)) = clash {
            problems.push(Problem::new(
                path,
                format!(
                    "InferenceRollout {} also weighs {what}; two rollouts would overwrite each other's weights: keep one rollout per rule (delete or retarget one)",
                    other.name
                ),
            ));
        }
    }
}

fn names_in<'a, T>(objects: &'a [Object<T>], namespace: &str) -> Vec<&'a str> {
    objects
        .iter()
        .filter(|o| o.namespace == namespace)
        .map(|o| o.name.as_str())
        .collect()
}

/// "no Kind "name" in namespace ns among the checked objects" (or "in the
/// cluster"), with the nearest name or the list of names there.
fn missing(kind: &str, name: &str, namespace: &str, here: &[&str], among: &str) -> String {
    let mut message = format!("no {kind} {name:?} in namespace {namespace} {among}");
    match closest(name, here) {
        Some(fix) => message.push_str(&format!("; did you mean {fix}?")),
        None if !here.is_empty() => message.push_str(&format!("; there are {}", here.join(", "))),
        None => {}
    }
    message
}
