//! The pure merge: caches under watcher events, pod views, and [`pool_state`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use super::objects::*;
use super::*;
use crate::datastore::PodView;

pub(crate) fn pool_json(name: &str, port: i64, app: &str) -> Value {
    json!({
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": name, "namespace": "inference", "resourceVersion": "1"},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "targetPorts": [{"number": port}],
            "endpointPickerRef": {"name": "epp", "port": {"number": 9002}},
        },
    })
}

pub(crate) fn legacy_pool_json(name: &str, port: i64, app: &str) -> Value {
    json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferencePool",
        "metadata": {"name": name, "namespace": "inference", "resourceVersion": "1"},
        "spec": {
            "selector": {"app": app},
            "targetPortNumber": port,
            "extensionRef": {"name": "epp"},
        },
    })
}

pub(crate) fn pod_json(name: &str, ip: &str, app: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "inference",
            "resourceVersion": "1",
            "labels": {"app": app},
        },
        "status": {
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        },
    })
}

pub(crate) fn objective_json(api_version: &str, name: &str, pool: &str, priority: i64) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": "InferenceObjective",
        "metadata": {"name": name, "namespace": "inference", "resourceVersion": "1"},
        "spec": {"priority": priority, "poolRef": {"name": pool}},
    })
}

pub(crate) fn rewrite_json(api_version: &str, name: &str, created: &str, target: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": "InferenceModelRewrite",
        "metadata": {
            "name": name,
            "namespace": "inference",
            "resourceVersion": "1",
            "creationTimestamp": created,
        },
        "spec": {
            "poolRef": {"name": "llama"},
            "rules": [{"targets": [{"modelRewrite": target}]}],
        },
    })
}

pub(crate) fn legacy_model_json(name: &str, created: &str, criticality: &str) -> Value {
    json!({
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceModel",
        "metadata": {
            "name": name,
            "namespace": "inference",
            "resourceVersion": "1",
            "creationTimestamp": created,
        },
        "spec": {
            "modelName": name,
            "criticality": criticality,
            "poolRef": {"name": "llama"},
            "targetModels": [{"name": format!("{name}-v2"), "weight": 1}],
        },
    })
}

fn typed<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// Every cache listed (empty unless filled by the test).
fn synced() -> ClusterObjects {
    let mut objects = ClusterObjects::default();
    objects.pool.mark_synced();
    objects.legacy_pool.mark_synced();
    objects.pods.mark_synced();
    objects
        .objectives
        .iter_mut()
        .for_each(ObjectCache::mark_synced);
    objects
        .rewrites
        .iter_mut()
        .for_each(ObjectCache::mark_synced);
    objects.legacy_models.mark_synced();
    objects
}

fn add<K: kube::ResourceExt, T>(
    cache: &mut ObjectCache<T>,
    object: K,
    convert: impl Fn(&K) -> Option<T>,
) {
    assert!(cache.handle(Event::Apply(object), convert));
}

fn keep<K: Clone>(object: &K) -> Option<K> {
    Some(object.clone())
}

#[test]
fn a_relist_replaces_the_objects_only_when_complete() {
    let mut cache: ObjectCache<PodView> = ObjectCache::default();
    let pod = |name| typed::<Pod>(pod_json(name, "10.0.0.1", "llama", true));
    assert!(!cache.is_synced());
    assert!(!cache.handle(Event::Init, |p: &Pod| Some(pod_view(p))));
    assert!(!cache.handle(Event::InitApply(pod("a")), |p| Some(pod_view(p))));
    assert!(
        cache.objects().is_empty(),
        "nothing visible before InitDone"
    );
    assert!(cache.handle(Event::<Pod>::InitDone, |p| Some(pod_view(p))));
    assert!(cache.is_synced());
    add(&mut cache, pod("b"), |p| Some(pod_view(p)));
    assert_eq!(cache.objects().keys().collect::<Vec<_>>(), ["a", "b"]);

    // A relist after a watch restart: `a` vanished meanwhile.
    cache.handle(Event::Init, |p: &Pod| Some(pod_view(p)));
    cache.handle(Event::InitApply(pod("b")), |p| Some(pod_view(p)));
    assert_eq!(
        cache.objects().len(),
        2,
        "the old list stays until InitDone"
    );
    cache.handle(Event::<Pod>::InitDone, |p| Some(pod_view(p)));
    assert_eq!(cache.objects().keys().collect::<Vec<_>>(), ["b"]);

    // An update that no longer converts drops the earlier version.
    assert!(cache.handle(Event::Apply(pod("b")), |_| None));
    assert!(cache.objects().is_empty());
    add(&mut cache, pod("c"), |p| Some(pod_view(p)));
    assert!(cache.handle(Event::Delete(pod("c")), |p| Some(pod_view(p))));
    assert!(cache.objects().is_empty());
    cache.reset();
    assert!(!cache.is_synced());
}

#[test]
fn pod_views_read_readiness_deletion_and_addresses() {
    let ready = pod_view(&typed(pod_json("a", "10.0.0.7", "llama", true)));
    assert_eq!(ready.name, "a");
    assert!(ready.ready && !ready.deleting);
    assert_eq!(ready.ip, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))));
    assert_eq!(ready.labels.get("app").map(String::as_str), Some("llama"));

    let v6 = pod_view(&typed(pod_json("b", "fd00::1", "llama", false)));
    assert!(!v6.ready);
    assert_eq!(
        v6.ip,
        Some(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)))
    );

    let mut terminating = pod_json("c", "not-an-ip", "llama", true);
    terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    terminating["metadata"]["annotations"] =
        json!({"inference.networking.k8s.io/active-ports": "8000"});
    let view = pod_view(&typed(terminating));
    assert!(view.deleting);
    assert_eq!(view.ip, None, "an unparsable IP is no address");
    assert_eq!(view.annotations.len(), 1);

    // A pod without status (just created) is neither ready nor addressed.
    let bare = pod_view(&typed(json!({"metadata": {"name": "d"}})));
    assert!(!bare.ready && bare.ip.is_none());
}

#[test]
fn a_missing_pool_yields_an_empty_state() {
    let mut objects = synced();
    add(
        &mut objects.pods,
        typed::<Pod>(pod_json("a", "10.0.0.1", "llama", true)),
        |p| Some(pod_view(p)),
    );
    add(
        &mut objects.pool,
        typed::<InferencePool>(pool_json("other", 8000, "llama")),
        keep,
    );
    let merged = pool_state(&objects, "llama");
    assert_eq!(merged.origin, None);
    assert_eq!(merged.selector, None);
    assert_eq!(
        merged.state,
        PoolState {
            pool_name: "llama".into(),
            ..PoolState::default()
        }
    );
}

#[test]
fn the_v1_pool_wins_and_the_legacy_one_is_converted_otherwise() {
    let mut objects = synced();
    add(
        &mut objects.legacy_pool,
        typed::<legacy::InferencePool>(legacy_pool_json("llama", 9000, "old")),
        keep,
    );
    for (name, app) in [("old-0", "old"), ("new-0", "new")] {
        add(
            &mut objects.pods,
            typed::<Pod>(pod_json(name, "10.0.0.1", app, true)),
            |p| Some(pod_view(p)),
        );
    }
    let merged = pool_state(&objects, "llama");
    assert_eq!(merged.origin, Some(PoolOrigin::Legacy));
    assert_eq!(merged.state.target_ports, [9000]);
    let names: Vec<&str> = merged.state.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["old-0"], "only pods the selector matches");

    add(
        &mut objects.pool,
        typed::<InferencePool>(pool_json("llama", 8000, "new")),
        keep,
    );
    let merged = pool_state(&objects, "llama");
    assert_eq!(merged.origin, Some(PoolOrigin::V1));
    assert_eq!(merged.state.target_ports, [8000]);
    assert_eq!(
        merged
            .selector
            .as_ref()
            .and_then(|s| s.get("app"))
            .map(String::as_str),
        Some("new")
    );
    assert_eq!(merged.state.pods[0].name, "new-0");
}

#[test]
fn an_unconvertible_legacy_pool_is_reported() {
    let mut objects = synced();
    add(
        &mut objects.legacy_pool,
        typed::<legacy::InferencePool>(legacy_pool_json("llama", 70000, "old")),
        keep,
    );
    let merged = pool_state(&objects, "llama");
    assert_eq!(merged.origin, None);
    assert!(
        merged.problems[0].contains("targetPortNumber"),
        "{:?}",
        merged.problems
    );
}

#[test]
fn objectives_of_other_pools_are_ignored_and_the_newest_api_wins() {
    let mut objects = synced();
    add(
        &mut objects.pool,
        typed::<InferencePool>(pool_json("llama", 8000, "llama")),
        keep,
    );
    let x_k8s = "inference.networking.x-k8s.io/v1alpha2";
    let llm_d = "llm-d.ai/v1alpha2";
    let [current, llm] = &mut objects.objectives;
    add(
        current,
        typed::<InferenceObjective>(objective_json(x_k8s, "chat", "llama", 5)),
        keep,
    );
    add(
        current,
        typed::<InferenceObjective>(objective_json(x_k8s, "batch", "llama", -1)),
        keep,
    );
    add(
        current,
        typed::<InferenceObjective>(objective_json(x_k8s, "elsewhere", "mistral", 9)),
        keep,
    );
    add(
        llm,
        typed::<InferenceObjective>(objective_json(llm_d, "chat", "llama", 7)),
        keep,
    );
    let model = typed::<legacy::InferenceModel>(legacy_model_json(
        "batch",
        "2026-01-01T00:00:00Z",
        "Critical",
    ));
    add(&mut objects.legacy_models, model, |m| stored_model(m).ok());
    let model = typed::<legacy::InferenceModel>(legacy_model_json(
        "legacy-only",
        "2026-01-01T00:00:00Z",
        "Sheddable",
    ));
    add(&mut objects.legacy_models, model, |m| stored_model(m).ok());

    let objectives = pool_state(&objects, "llama").state.objectives;
    let expected = HashMap::from([
        ("chat".to_owned(), 7),
        ("batch".to_owned(), -1),
        ("legacy-only".to_owned(), -1),
    ]);
    assert_eq!(objectives, expected);
}

#[test]
fn rewrites_are_ordered_oldest_first_across_groups_and_legacy_models() {
    let mut objects = synced();
    add(
        &mut objects.pool,
        typed::<InferencePool>(pool_json("llama", 8000, "llama")),
        keep,
    );
    let store = |r: &InferenceModelRewrite| Some(stored_rewrite(r));
    let [current, llm] = &mut objects.rewrites;
    let x_k8s = "inference.networking.x-k8s.io/v1alpha2";
    add(
        current,
        typed::<InferenceModelRewrite>(rewrite_json(x_k8s, "newest", "2026-03-01T00:00:00Z", "c")),
        store,
    );
    add(
        llm,
        typed::<InferenceModelRewrite>(rewrite_json(
            "llm-d.ai/v1alpha2",
            "oldest",
            "2026-01-01T00:00:00Z",
            "a",
        )),
        store,
    );
    let mut elsewhere = rewrite_json(x_k8s, "elsewhere", "2025-01-01T00:00:00Z", "x");
    elsewhere["spec"]["poolRef"]["name"] = json!("mistral");
    add(current, typed::<InferenceModelRewrite>(elsewhere), store);
    let model = typed::<legacy::InferenceModel>(legacy_model_json(
        "middle",
        "2026-02-01T00:00:00Z",
        "Standard",
    ));
    add(&mut objects.legacy_models, model, |m| stored_model(m).ok());

    let targets: Vec<String> = pool_state(&objects, "llama")
        .state
        .rewrites
        .iter()
        .map(|r| r.rules[0].targets[0].model_rewrite.clone())
        .collect();
    assert_eq!(targets, ["a", "middle-v2", "c"]);
}

#[test]
fn label_selectors_join_match_labels() {
    let labels = BTreeMap::from([
        ("app".to_owned(), "llama".to_owned()),
        ("tier".to_owned(), "gpu".to_owned()),
    ]);
    assert_eq!(label_selector(&labels), "app=llama,tier=gpu");
}

#[test]
fn the_cluster_is_synced_only_when_every_cache_is() {
    let mut objects = ClusterObjects::default();
    assert!(!objects.is_synced());
    objects = synced();
    assert!(objects.is_synced());
    objects.pods.reset();
    assert!(!objects.is_synced());
}

#[test]
fn target_ports_out_of_range_are_skipped_and_reported() {
    let mut objects = synced();
    let mut pool = pool_json("llama", 8000, "llama");
    pool["spec"]["targetPorts"] = json!([{"number": 8000}, {"number": 70000}, {"number": 0}]);
    add(&mut objects.pool, typed::<InferencePool>(pool), keep);
    let merged = pool_state(&objects, "llama");
    assert_eq!(merged.state.target_ports, [8000]);
    assert_eq!(merged.problems.len(), 2, "{:?}", merged.problems);
    assert!(
        merged.problems[0].contains("70000"),
        "{:?}",
        merged.problems
    );
}

#[test]
fn a_pool_without_endpoint_picker_ref_is_served() {
    // GIE v1.6 made endpointPickerRef optional; the EPP serving such a pool needs none.
    let mut pool = pool_json("llama", 8000, "new");
    pool["spec"]
        .as_object_mut()
        .unwrap()
        .remove("endpointPickerRef");
    let mut objects = synced();
    add(&mut objects.pool, typed::<InferencePool>(pool), keep);
    add(
        &mut objects.pods,
        typed::<Pod>(pod_json("new-0", "10.0.0.1", "new", true)),
        |p| Some(pod_view(p)),
    );
    let merged = pool_state(&objects, "llama");
    assert_eq!(merged.origin, Some(PoolOrigin::V1));
    assert_eq!(merged.state.target_ports, [8000]);
    assert_eq!(merged.state.pods[0].name, "new-0");
}
