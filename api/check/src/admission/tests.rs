//! One test per webhook rule, through [`admit`], asserting the whole verdict.

use serde_json::{Value, json};

use super::*;
use crate::objects::{Object, PoolObject, Scope};
use switchyard_api::rollout::InferenceRolloutSpec;

fn pool(name: &str) -> Value {
    json!({
        "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
        "metadata": {"name": name, "namespace": "llm"},
        "spec": {"selector": {"matchLabels": {"app": name}}, "targetPorts": [{"number": 8000}],
                 "endpointPickerRef": {"name": format!("{name}-epp"), "port": {"number": 9002}}}
    })
}

fn objective(pool: &str) -> Value {
    json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceObjective",
        "metadata": {"name": "chat", "namespace": "llm"},
        "spec": {"priority": 1, "poolRef": {"name": pool}}
    })
}

fn rewrite(pool: &str, targets: &[&str]) -> Value {
    let targets: Vec<Value> = targets
        .iter()
        .map(|t| json!({"modelRewrite": t, "weight": 50}))
        .collect();
    json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceModelRewrite",
        "metadata": {"name": "rw", "namespace": "llm"},
        "spec": {"poolRef": {"name": pool},
                 "rules": [{"matches": [{"model": {"value": "llama"}}], "targets": targets}]}
    })
}

/// The route `r` with rule `chat` over pools v1 (stable) and v2 (canary).
fn route(v1: i32, v2: i32) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "llm"},
        "spec": {"rules": [
            {"name": "chat", "backendRefs": [
                {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "v1", "weight": v1},
                {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "v2", "weight": v2}]},
            {"name": "other", "backendRefs": [
                {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "v1"}]}
        ]}
    })
}

fn rollout_spec(rule: &str) -> Value {
    json!({
        "target": {"mode": "PoolSplit", "route": {"name": "r", "ruleName": rule},
                   "stable": {"name": "v1"}, "canary": {"name": "v2"}},
        "strategy": {"steps": [{"weight": 500}, {"weight": 5000}]}
    })
}

fn rollout(name: &str, rule: &str) -> Value {
    json!({
        "apiVersion": "rollout.switchyard.dev/v1alpha1", "kind": "InferenceRollout",
        "metadata": {"name": name, "namespace": "llm"},
        "spec": rollout_spec(rule)
    })
}

/// The cluster: pools v1 and v2 (v2 declares its models), route r, rewrite-free,
/// the pickers' Services, and the active rollout `ro` on rule chat.
fn cluster() -> Objects {
    let typed = |spec: Value| serde_json::from_value::<InferenceRolloutSpec>(spec).unwrap();
    let mut v2 = PoolObject::from_document("inference.networking.k8s.io", "llm", "v2", &pool("v2"));
    v2.served_models = Some(vec!["llama-v1".to_owned(), "llama-v2".to_owned()]);
    Objects {
        scope: Scope::Cluster,
        rollouts: vec![Object::new("llm", "ro", typed(rollout_spec("chat")))],
        routes: Some(vec![Object::new(
            "llm",
            "r",
            serde_json::from_value(route(100, 0)["spec"].clone()).unwrap(),
        )]),
        pools: Some(vec![
            PoolObject::from_document("inference.networking.k8s.io", "llm", "v1", &pool("v1")),
            v2,
        ]),
        rewrites: Some(Vec::new()),
        services: Some(vec![
            Object::new("llm", "v1-epp", ()),
            Object::new("llm", "v2-epp", ()),
        ]),
        rollouts_unsynced: false,
    }
}

mod guard;

fn create(object: &Value) -> Verdict {
    create_with(object, &Config::default())
}

fn create_with(object: &Value, config: &Config) -> Verdict {
    let request = Request {
        object: Some(object),
        old_object: None,
        operation: Operation::Create,
        namespace: Some("llm"),
        username: "alice",
    };
    admit(&request, &cluster(), config)
}

fn update_by(user: &str, old: &Value, new: &Value, config: &Config) -> Verdict {
    let request = Request {
        object: Some(new),
        old_object: Some(old),
        operation: Operation::Update,
        namespace: Some("llm"),
        username: user,
    };
    admit(&request, &cluster(), config)
}

fn denied(message: &str) -> Verdict {
    Verdict {
        allowed: false,
        message: Some(message.to_owned()),
        warnings: Vec::new(),
    }
}

fn warned(warnings: &[&str]) -> Verdict {
    Verdict {
        allowed: true,
        message: None,
        warnings: warnings.iter().map(|w| (*w).to_owned()).collect(),
    }
}

const WARN_MISSING: Config = Config {
    missing_references: Enforcement::Warn,
    manual_weight_edits: Enforcement::Deny,
    trusted_users: Vec::new(),
};

#[test]
fn valid_objects_of_every_kind_are_allowed() {
    for object in [
        pool("v1"),
        objective("v1"),
        rewrite("v2", &["llama-v1", "llama-v2"]),
        route(100, 0),
        rollout("ro", "chat"),
    ] {
        assert_eq!(create(&object), Verdict::allow(), "{object}");
    }
}

#[test]
fn a_pool_breaking_its_own_rules_is_denied_with_the_fix() {
    let mut bad = pool("v1");
    bad["spec"]["targetPorts"] = json!([{"number": 8000}, {"number": 8000}]);
    assert_eq!(
        create(&bad),
        denied(
            "InferencePool v1: 1 problem (Switchyard): spec.targetPorts[1].number: port 8000 is listed twice; target port numbers must be unique"
        )
    );
}

#[test]
fn a_pool_whose_picker_service_is_missing_is_warned_about() {
    let mut lonely = pool("v3");
    lonely["spec"]["endpointPickerRef"]["name"] = json!("v3-picker");
    assert_eq!(
        create(&lonely),
        warned(&[
            "spec.endpointPickerRef.name: no Service \"v3-picker\" in namespace llm in the cluster: the gateway sends every request of this pool to its endpoint picker through that Service, and fails them until it exists; deploy the picker (e.g. the upstream inferencepool Helm chart) or point endpointPickerRef at its Service"
        ])
    );
}

#[test]
fn an_objective_must_name_an_existing_pool() {
    let message = "spec.poolRef: no InferencePool \"gpu\" in namespace llm in the cluster; the pools there are v1, v2";
    assert_eq!(
        create(&objective("gpu")),
        denied(&format!(
            "InferenceObjective chat: 1 problem (Switchyard): {message}"
        ))
    );
    assert_eq!(
        create_with(&objective("gpu"), &WARN_MISSING),
        warned(&[message])
    );
    assert_eq!(
        create(&objective("v")),
        denied(
            "InferenceObjective chat: 1 problem (Switchyard): spec.poolRef: no InferencePool \"v\" in namespace llm in the cluster; did you mean v1?"
        )
    );
}

#[test]
fn a_rewrite_must_name_an_existing_pool() {
    assert_eq!(
        create(&rewrite("gpu", &["llama-v1"])),
        denied(
            "InferenceModelRewrite rw: 1 problem (Switchyard): spec.poolRef: no InferencePool \"gpu\" in namespace llm in the cluster; the pools there are v1, v2"
        )
    );
}

#[test]
fn rewrite_targets_the_pool_does_not_serve_are_warned_about() {
    assert_eq!(
        create(&rewrite("v2", &["llama-v1", "llama-v3"])),
        warned(&[
            "spec.rules[0].targets[1].modelRewrite: InferencePool v2 does not list model \"llama-v3\" among the models it serves (llama-v1, llama-v2, from its annotation inference.switchyard.dev/served-models); requests rewritten to it fail unless a server loads it: check the name, or add it to that annotation once the servers serve it"
        ])
    );
    // A pool that declares nothing is not judged.
    assert_eq!(create(&rewrite("v1", &["anything"])), Verdict::allow());
}

#[test]
fn served_models_are_read_from_the_pool_annotation() {
    let mut annotated = pool("v1");
    annotated["metadata"]["annotations"] =
        json!({"inference.switchyard.dev/served-models": " llama , llama-lora-a,,"});
    let read = PoolObject::from_document("inference.networking.k8s.io", "llm", "v1", &annotated);
    assert_eq!(
        read.served_models,
        Some(vec!["llama".to_owned(), "llama-lora-a".to_owned()])
    );
    assert_eq!(read.epp_service.as_deref(), Some("v1-epp"));
}

#[test]
fn a_rollout_needs_its_route_rule_and_pools() {
    let mut spec = rollout("ro2", "chat");
    spec["spec"]["target"]["route"]["name"] = json!("rr");
    spec["spec"]["target"]["canary"]["name"] = json!("v3");
    assert_eq!(
        create(&spec),
        denied(
            "InferenceRollout ro2: 2 problems (Switchyard): spec.target.route.name: no HTTPRoute \"rr\" in namespace llm in the cluster; did you mean r?; and spec.target.canary.name: no InferencePool \"v3\" in namespace llm in the cluster; did you mean v1?"
        )
    );
    assert_eq!(
        create(&rollout("ro2", "chta")),
        denied(
            "InferenceRollout ro2: 1 problem (Switchyard): spec.target.route.ruleName: HTTPRoute r has no rule named \"chta\"; did you mean ruleName: chat?"
        )
    );
}

#[test]
fn two_active_rollouts_cannot_claim_one_rule() {
    assert_eq!(
        create(&rollout("ro2", "chat")),
        denied(
            "InferenceRollout ro2: 1 problem (Switchyard): spec.target.route: InferenceRollout ro also weighs rule chat of HTTPRoute r; two rollouts would overwrite each other's weights: keep one rollout per rule (delete or retarget one)"
        )
    );
    // Updating the rollout that holds the rule is no clash with itself.
    let mut changed = rollout("ro", "chat");
    changed["spec"]["paused"] = json!(true);
    assert_eq!(
        update_by(
            "alice",
            &rollout("ro", "chat"),
            &changed,
            &Config::default()
        ),
        Verdict::allow()
    );
}

#[test]
fn finished_rollouts_no_longer_count_as_active() {
    assert!(rollout_is_active(None));
    for phase in [
        Phase::Pending,
        Phase::Progressing,
        Phase::Paused,
        Phase::RollingBack,
    ] {
        assert!(rollout_is_active(Some(phase)), "{phase:?}");
    }
    for phase in [Phase::Succeeded, Phase::Aborted, Phase::Failed] {
        assert!(!rollout_is_active(Some(phase)), "{phase:?}");
    }
}

const EDIT: &str = "spec.rules[0].backendRefs: rule chat is weighted by InferenceRollout llm/ro while it runs, and this edit changes its weights (InferencePool/v1 100 → 50, InferencePool/v2 0 → 50); the controller would treat it as drift (driftPolicy Pause). Leave the weights as they were and use the admin API: `switchyard-rollout set-weight llm/ro --canary <basis points>` (or pause, promote, abort); to take the rule back, finish or delete the rollout first";

#[test]
fn a_manual_weight_edit_on_an_owned_rule_is_denied_or_warned() {
    let (old, new) = (route(100, 0), route(50, 50));
    assert_eq!(
        update_by("alice", &old, &new, &Config::default()),
        denied(&format!("HTTPRoute r: 1 problem (Switchyard): {EDIT}"))
    );
    let warn = Config {
        manual_weight_edits: Enforcement::Warn,
        ..Config::default()
    };
    assert_eq!(update_by("alice", &old, &new, &warn), warned(&[EDIT]));
}

#[test]
fn the_controller_and_other_rules_may_change_weights() {
    let controller = Config {
        trusted_users: vec!["system:serviceaccount:rollout:switchyard-rollout".to_owned()],
        ..Config::default()
    };
    let (old, new) = (route(100, 0), route(50, 50));
    assert_eq!(
        update_by(
            "system:serviceaccount:rollout:switchyard-rollout",
            &old,
            &new,
            &controller
        ),
        Verdict::allow()
    );
    // The rule no rollout weighs is anyone's to edit.
    let mut other = route(100, 0);
    other["spec"]["rules"][1]["backendRefs"][0]["weight"] = json!(7);
    assert_eq!(
        update_by("alice", &old, &other, &Config::default()),
        Verdict::allow()
    );
}

#[test]
fn routes_without_inference_pools_are_not_judged() {
    let service_route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "llm"},
        "spec": {"rules": [{"backendRefs": [{"name": "web", "weight": "not a number"}]}]}
    });
    assert_eq!(create(&service_route), Verdict::allow());
}

#[test]
fn an_inference_route_to_a_missing_pool_is_denied() {
    let mut to_nowhere = route(100, 0);
    to_nowhere["spec"]["rules"][0]["backendRefs"][1]["name"] = json!("gpu");
    assert_eq!(
        create(&to_nowhere),
        denied(
            "HTTPRoute r: 1 problem (Switchyard): spec.rules[0].backendRefs[1]: no InferencePool \"gpu\" in namespace llm in the cluster; the pools there are v1, v2"
        )
    );
}

#[test]
fn deletes_and_metadata_only_updates_are_always_allowed() {
    let mut broken = pool("v1");
    broken["spec"]["targetPorts"] = json!([]);
    let delete = Request {
        object: None,
        old_object: Some(&broken),
        operation: Operation::Delete,
        namespace: Some("llm"),
        username: "alice",
    };
    assert_eq!(
        admit(&delete, &cluster(), &Config::default()),
        Verdict::allow()
    );
    let mut relabelled = broken.clone();
    relabelled["metadata"]["labels"] = json!({"team": "a"});
    assert_eq!(
        update_by("alice", &broken, &relabelled, &Config::default()),
        Verdict::allow()
    );
}

#[test]
fn the_request_namespace_fills_in_a_missing_one() {
    let mut bare = objective("v9");
    bare["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let verdict = create(&bare);
    assert!(
        verdict
            .message
            .unwrap()
            .contains("in namespace llm in the cluster")
    );
}

#[test]
fn operations_parse_from_the_wire() {
    assert_eq!(Operation::parse("CREATE"), Some(Operation::Create));
    assert_eq!(Operation::parse("UPDATE"), Some(Operation::Update));
    assert_eq!(Operation::parse("DELETE"), Some(Operation::Delete));
    assert_eq!(Operation::parse("CONNECT"), Some(Operation::Connect));
    assert_eq!(Operation::parse("create"), None);
}

#[test]
fn offline_the_picker_service_is_a_warning_that_does_not_fail() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: llm}\n---\n"
        .to_owned()
        + "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: p, namespace: llm}\nspec:\n  selector: {matchLabels: {app: p}}\n  targetPorts: [{number: 8000}]\n  endpointPickerRef: {name: p-epp, port: {number: 9002}}\n";
    let findings = crate::check_documents(&crate::parse_documents("m.yaml", &text).unwrap());
    assert_eq!(findings.len(), 1);
    assert!(!findings[0].fails());
    assert_eq!(
        findings[0].to_string(),
        "m.yaml:2: InferencePool/p: warning: spec.endpointPickerRef.name: no Service \"p-epp\" in namespace llm among the checked objects: the gateway sends every request of this pool to its endpoint picker through that Service, and fails them until it exists; deploy the picker (e.g. the upstream inferencepool Helm chart) or point endpointPickerRef at its Service"
    );
}

#[test]
fn a_legacy_pool_names_its_picker_service_through_extension_ref() {
    let legacy = json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferencePool",
        "metadata": {"name": "old", "namespace": "llm"},
        "spec": {"selector": {"app": "old"}, "targetPortNumber": 8000,
                 "extensionRef": {"name": "old-epp"}}
    });
    let read = PoolObject::from_document("inference.networking.x-k8s.io", "llm", "old", &legacy);
    assert_eq!(read.epp_service.as_deref(), Some("old-epp"));
    let mut custom = legacy.clone();
    custom["spec"]["extensionRef"]["kind"] = json!("Picker");
    custom["spec"]["extensionRef"]["group"] = json!("example.com");
    let read = PoolObject::from_document("inference.networking.x-k8s.io", "llm", "old", &custom);
    assert_eq!(read.epp_service, None, "not a Service: not resolved");
}
