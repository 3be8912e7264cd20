//! Local mode's files, against a copy of the real quickstart directory.

use std::path::{Path, PathBuf};

use switchyard_api::InferenceRolloutStatus;
use switchyard_api::rollout::{BackendTarget, RouteTarget, Weights};

use super::route_file::rewrite;
use super::{StatusFile, load_rollouts, read_route, route_path, write_weights};
use crate::error::Error;

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/examples/quickstart")
}

/// A temporary copy of the quickstart manifests.
fn quickstart_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(quickstart()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn qwen() -> (RouteTarget, BackendTarget, BackendTarget) {
    (
        RouteTarget {
            name: "llm-route".into(),
            rule_name: "qwen".into(),
            drift_policy: Default::default(),
        },
        BackendTarget::pool("vllm-qwen3-32b"),
        BackendTarget::pool("vllm-qwen3-32b-canary"),
    )
}

#[test]
fn loads_the_quickstart_rollout_and_finds_its_route_file() {
    let rollouts = load_rollouts(&quickstart()).unwrap();
    assert_eq!(rollouts.len(), 1);
    let rollout = &rollouts[0].rollout;
    assert_eq!(rollout.metadata.name.as_deref(), Some("qwen-canary"));
    let route = rollout.spec.target.route.as_ref().unwrap();
    assert_eq!(route.rule_name, "qwen");
    let path = route_path(&quickstart(), &route.name).unwrap();
    assert_eq!(path.file_name().unwrap(), "httproute.yaml");
}

#[test]
fn rewrites_only_the_two_weights_of_the_quickstart_route() {
    let dir = quickstart_copy();
    let path = dir.path().join("httproute.yaml");
    let before = std::fs::read_to_string(&path).unwrap();
    let (rule, stable, canary) = qwen();
    let view = read_route(&path, &rule, &stable, &canary).unwrap();
    assert_eq!(
        (view.stable_weight, view.canary_weight),
        (Some(100), Some(0))
    );

    let step = Weights {
        stable: 9_000,
        canary: 1_000,
    };
    write_weights(&path, &rule, &stable, &canary, &view, step).unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(old, new)| old != new)
        .collect();
    assert_eq!(
        changed,
        [
            ("      weight: 100", "      weight: 9000"),
            ("      weight: 0", "      weight: 1000"),
        ]
    );
    assert_eq!(before.lines().count(), after.lines().count());
    let moved = read_route(&path, &rule, &stable, &canary).unwrap();
    assert_eq!(
        (moved.stable_weight, moved.canary_weight),
        (Some(9_000), Some(1_000))
    );
    // No temporary file is left beside the route.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            name.ends_with(".tmp").then_some(name)
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_concurrent_edit_of_the_weights_is_a_conflict_and_the_file_is_untouched() {
    let dir = quickstart_copy();
    let path = dir.path().join("httproute.yaml");
    let (rule, stable, canary) = qwen();
    let view = read_route(&path, &rule, &stable, &canary).unwrap();
    // Someone sets 50/50 by hand between our read and our write.
    let hand_edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("weight: 100", "weight: 50")
        .replace("weight: 0", "weight: 50");
    std::fs::write(&path, &hand_edited).unwrap();
    let err = write_weights(
        &path,
        &rule,
        &stable,
        &canary,
        &view,
        Weights {
            stable: 9_900,
            canary: 100,
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), hand_edited);
}

const UNSET_WEIGHTS: &str = "\
# comment kept
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: llm-route
spec:
  rules:
  - name: qwen
    backendRefs:
    - kind: InferencePool
      group: inference.networking.k8s.io
      name: vllm-qwen3-32b   # stable
    - group: inference.networking.k8s.io
      kind: InferencePool
      name: vllm-qwen3-32b-canary
---
kind: ConfigMap
metadata:
  name: untouched
";

#[test]
fn an_unset_weight_gets_a_line_of_its_own() {
    let (rule, stable, canary) = qwen();
    let found = super::route_file::find("mem", UNSET_WEIGHTS, &rule, &stable, &canary).unwrap();
    let edited = rewrite(
        "mem",
        UNSET_WEIGHTS,
        &rule,
        &stable,
        &canary,
        &found.view,
        Weights {
            stable: 9_900,
            canary: 100,
        },
    )
    .unwrap();
    let expected = UNSET_WEIGHTS
        .replace(
            "      name: vllm-qwen3-32b   # stable\n",
            "      name: vllm-qwen3-32b   # stable\n      weight: 9900\n",
        )
        .replace(
            "      name: vllm-qwen3-32b-canary\n",
            "      name: vllm-qwen3-32b-canary\n      weight: 100\n",
        );
    assert_eq!(edited, expected);
}

#[test]
fn flow_style_backends_are_refused_with_what_to_write() {
    let text = "\
kind: HTTPRoute
metadata: {name: llm-route}
spec:
  rules:
  - name: qwen
    backendRefs:
    - {group: inference.networking.k8s.io, kind: InferencePool, name: vllm-qwen3-32b, weight: 100}
    - {group: inference.networking.k8s.io, kind: InferencePool, name: vllm-qwen3-32b-canary, weight: 0}
";
    let (rule, stable, canary) = qwen();
    let found = super::route_file::find("mem", text, &rule, &stable, &canary).unwrap();
    let err = rewrite(
        "mem",
        text,
        &rule,
        &stable,
        &canary,
        &found.view,
        Weights {
            stable: 5_000,
            canary: 5_000,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("block"), "{err}");
}

#[test]
fn bad_route_files_are_clear_errors() {
    let (rule, stable, canary) = qwen();
    for (text, wanted) in [
        ("kind: [unclosed", "invalid YAML"),
        ("kind: Service\nmetadata: {name: x}\n", "no HTTPRoute named"),
        (
            "kind: HTTPRoute\nmetadata: {name: llm-route}\nspec:\n  rules:\n  - name: other\n",
            "no rule named",
        ),
    ] {
        let err = super::route_file::find("mem", text, &rule, &stable, &canary)
            .unwrap_err()
            .to_string();
        assert!(err.contains(wanted), "{text:?}: {err}");
    }
}

#[test]
fn status_survives_a_restart_and_a_corrupt_file_is_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let file = StatusFile::new(&dir.path().join("state"), "default", "qwen-canary");
    assert_eq!(file.load().unwrap(), InferenceRolloutStatus::default());
    let status = InferenceRolloutStatus {
        current_step: Some(2),
        ..Default::default()
    };
    file.save(&status).unwrap();
    // A new handle, as after a restart.
    let again = StatusFile::new(&dir.path().join("state"), "default", "qwen-canary");
    assert_eq!(again.load().unwrap(), status);

    std::fs::write(again.path(), "{not json").unwrap();
    let err = again.load().unwrap_err().to_string();
    assert!(err.contains("delete it to start the rollout over"), "{err}");
    assert_eq!(std::fs::read_to_string(again.path()).unwrap(), "{not json");
}

#[test]
fn l4_same_named_rollouts_in_two_namespaces_keep_separate_status() {
    let dir = tempfile::tempdir().unwrap();
    let team_a = StatusFile::new(dir.path(), "team-a", "canary");
    let team_b = StatusFile::new(dir.path(), "team-b", "canary");
    assert_ne!(team_a.path(), team_b.path());
    let status = InferenceRolloutStatus {
        current_step: Some(1),
        ..Default::default()
    };
    team_a.save(&status).unwrap();
    assert_eq!(team_b.load().unwrap(), InferenceRolloutStatus::default());
    assert_eq!(team_a.load().unwrap(), status);
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let err = load_rollouts(Path::new("/nonexistent/switchyard")).unwrap_err();
    assert!(
        err.to_string().contains("reading the manifest directory"),
        "{err}"
    );
}

/// The quickstart's rollout, judged on time and verified weights alone (no
/// metrics: the local stack is not running here), driven by a clock that
/// moves 10 s per reconcile. Every pass reloads the status from its file, as
/// a restarted controller would.
#[tokio::test]
async fn the_quickstart_rollout_walks_the_route_file_through_every_step() {
    let dir = quickstart_copy();
    let state = tempfile::tempdir().unwrap();
    let mut rollout = load_rollouts(dir.path()).unwrap().remove(0).rollout;
    rollout.spec.analysis.metrics.clear();
    let path = dir.path().join("httproute.yaml");
    let before = std::fs::read_to_string(&path).unwrap();
    let (rule, stable, canary) = qwen();
    let start = k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let mut seen = vec![(100, 0)];
    let mut analysis = super::analysis::LocalAnalysis::new(Default::default());
    for pass in 0..200 {
        let now = start + k8s_openapi::jiff::SignedDuration::from_secs(10 * pass);
        super::reconcile::reconcile_once(dir.path(), state.path(), &rollout, now, &mut analysis)
            .await
            .unwrap();
        let view = read_route(&path, &rule, &stable, &canary).unwrap();
        let weights = (
            view.stable_weight.unwrap_or(1),
            view.canary_weight.unwrap_or(1),
        );
        if seen.last() != Some(&weights) {
            seen.push(weights);
        }
    }
    assert_eq!(
        seen,
        [(100, 0), (9_000, 1_000), (5_000, 5_000), (0, 10_000)]
    );
    let status = StatusFile::new(state.path(), "default", "qwen-canary")
        .load()
        .unwrap();
    let applied = status.weights.unwrap().applied.unwrap();
    assert_eq!((applied.stable, applied.canary), (0, 10_000));
    // Only the two weight lines of rule `qwen` ever changed.
    let after = std::fs::read_to_string(&path).unwrap();
    let changed = before
        .lines()
        .zip(after.lines())
        .filter(|(old, new)| old != new)
        .count();
    assert_eq!(changed, 2);
}

/// After a weight write, the translated routes in the Envoy directory carry
/// the new split.
#[tokio::test]
async fn a_pass_applies_the_new_weights_to_envoys_routes() {
    let dir = quickstart_copy();
    let state = tempfile::tempdir().unwrap();
    let envoy = tempfile::tempdir().unwrap();
    let plan = switchyard_local::plan::PlanOptions::default();
    super::serve::apply_routes(dir.path(), envoy.path(), &plan).unwrap();
    let routes_before = routes_text(envoy.path());
    let options = super::serve::LocalOptions {
        manifest_dir: dir.path().to_path_buf(),
        state_dir: state.path().to_path_buf(),
        interval: std::time::Duration::from_secs(1),
        plan,
        envoy_dir: Some(envoy.path().to_path_buf()),
        status_lock: Default::default(),
    };
    let mut analysis = super::serve::local_analysis(&options);
    let now = k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let mut changed = false;
    for pass in 0..5 {
        let at = now + k8s_openapi::jiff::SignedDuration::from_secs(pass);
        changed |= super::serve::pass(&options, &mut analysis, at)
            .await
            .unwrap();
    }
    assert!(changed, "the first step's weights were never written");
    let (rule, stable, canary) = qwen();
    let view = read_route(&dir.path().join("httproute.yaml"), &rule, &stable, &canary).unwrap();
    assert_eq!(
        (view.stable_weight, view.canary_weight),
        (Some(9_000), Some(1_000))
    );
    let routes_after = routes_text(envoy.path());
    assert_ne!(routes_before, routes_after);
    assert!(routes_after.contains("9000"), "{routes_after}");
}

fn routes_text(envoy_dir: &Path) -> String {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(envoy_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().contains("rds") {
            texts.push(std::fs::read_to_string(path).unwrap());
        }
    }
    assert!(!texts.is_empty(), "no route file written");
    texts.concat()
}

/// The admin API's view of local mode: rollouts with their saved status, a
/// resourceVersion that moves with the status file, intents recorded there.
#[tokio::test]
async fn the_local_store_reads_rollouts_with_status_and_records_intents() {
    use switchyard_api::rollout::{Intent, IntentAction};

    let dir = quickstart_copy();
    let state = tempfile::tempdir().unwrap();
    let store = super::store::LocalStore::new(
        dir.path().to_path_buf(),
        state.path().to_path_buf(),
        Default::default(),
    );
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        store.get("llm", "qwen-canary").unwrap(),
        None,
        "other namespace"
    );
    assert_eq!(store.get("default", "nope").unwrap(), None);
    let rollout = store.get("default", "qwen-canary").unwrap().unwrap();
    assert_eq!(rollout.status, Some(InferenceRolloutStatus::default()));
    let before = rollout.metadata.resource_version.clone().unwrap();

    let intent = Intent {
        action: IntentAction::Pause,
        nonce: "n-1".into(),
        by: "alice".into(),
        at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        ),
        mode: None,
        canary_weight: None,
        reason: "dashboard".into(),
    };
    let saved = store.record_intent(rollout, intent.clone()).unwrap();
    let after = saved.metadata.resource_version.clone().unwrap();
    assert_ne!(before, after, "the status changed, so does the version");
    let on_disk = StatusFile::new(state.path(), "default", "qwen-canary")
        .load()
        .unwrap();
    assert_eq!(on_disk.intent, Some(intent));
    let again = store.get("default", "qwen-canary").unwrap().unwrap();
    assert_eq!(again.metadata.resource_version, Some(after));

    // A corrupt status file is an error, never an empty status.
    std::fs::write(
        state.path().join("default").join("qwen-canary.status.json"),
        "{not json",
    )
    .unwrap();
    let err = store.get("default", "qwen-canary").unwrap_err();
    assert!(err.to_string().contains("not a rollout status"), "{err}");
}

/// ModelSplit is not written locally: the rollout reports why, and no file of
/// the directory changes.
#[tokio::test]
async fn a_model_split_rollout_says_local_mode_does_not_write_rewrites() {
    let dir = quickstart_copy();
    let state = tempfile::tempdir().unwrap();
    let mut rollout = load_rollouts(dir.path()).unwrap().remove(0).rollout;
    rollout.spec.analysis.metrics.clear();
    rollout.spec.target = switchyard_api::rollout::RolloutTarget {
        mode: switchyard_api::rollout::SplitMode::ModelSplit,
        route: None,
        stable: None,
        canary: None,
        model_split: Some(switchyard_api::rollout::ModelSplitTarget {
            rewrite_ref: "rw".into(),
            model: "chat".into(),
            stable: "v1".into(),
            canary: "v2".into(),
        }),
    };
    let files = |dir: &Path| -> Vec<(PathBuf, String)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = files(dir.path());
    let now = k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let mut analysis = super::analysis::LocalAnalysis::new(Default::default());
    let decision =
        super::reconcile::reconcile_once(dir.path(), state.path(), &rollout, now, &mut analysis)
            .await
            .unwrap();
    assert_eq!(decision.write, None);
    let ready = decision
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready
            .message
            .contains("local mode does not write InferenceModelRewrite weights yet"),
        "{ready:?}"
    );
    assert_eq!(files(dir.path()), before);
}
