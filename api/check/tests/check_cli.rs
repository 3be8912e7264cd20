//! `switchyard-check` end to end: the built binary on the fixture manifests,
//! asserting exit codes and every output line.

use std::path::Path;
use std::process::{Command, Output};

const FIXTURES: &str = "tests/fixtures/manifests";

/// Runs the binary from the crate root, so printed paths are the relative ones given.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard-check"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("switchyard-check runs")
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn fixture(path: &str) -> String {
    format!("{FIXTURES}/{path}")
}

#[test]
fn valid_seed_fixtures_pass() {
    let out = run(&[&fixture("valid")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        lines(&out.stdout),
        ["ok: 10 documents in 5 files (6 checked, 4 other kinds)"]
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn seeds_with_the_fixes_applied_pass() {
    let out = run(&[&fixture("fixed/seed-002")]);
    assert_eq!(
        lines(&out.stdout),
        ["ok: 5 documents in 1 file (5 checked, 0 other kinds)"]
    );
    assert_eq!(out.status.code(), Some(0));
    let out = run(&[
        &fixture("fixed/seed-003"),
        &fixture("valid/seed-003-other-kinds.yml"),
    ]);
    assert_eq!(
        lines(&out.stdout),
        ["ok: 9 documents in 2 files (6 checked, 3 other kinds)"]
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn invalid_seed_fixtures_are_rejected_with_fixes() {
    let out = run(&[&fixture("invalid")]);
    assert_eq!(out.status.code(), Some(1));
    let pool = "tests/fixtures/manifests/invalid/seed-002-inferencepool.yaml:1: InferencePool/vllm-qwen3-32b";
    let router =
        "tests/fixtures/manifests/invalid/seed-002-model-router.yaml:1: HTTPRoute/model-router";
    let seed3 = "tests/fixtures/manifests/invalid/seed-003-inference-extension.yaml";
    let expected = [
        format!(
            "{pool}: spec.extensionRef: extensionRef is endpointPickerRef in inference.networking.k8s.io/v1, with port.number: write endpointPickerRef: {{name: vllm-qwen3-32b-epp, port: {{number: 9002}}, failureMode: FailOpen}}"
        ),
        format!(
            "{pool}: spec.selector: a bare label map is the v1alpha2 selector; in inference.networking.k8s.io/v1 use selector.matchLabels: write selector: {{matchLabels: {{app: vllm-qwen3-32b}}}}"
        ),
        format!(
            "{router}: spec.rules[0].backendRefs[0]: backendRef vllm-pool-v1 has no kind, so it names a Service, and a Service backendRef needs a port; to send traffic to an InferencePool write group: inference.networking.k8s.io, kind: InferencePool (no port needed)"
        ),
        format!(
            "{router}: spec.rules[0].backendRefs[1]: backendRef vllm-pool-v2 has no kind, so it names a Service, and a Service backendRef needs a port; to send traffic to an InferencePool write group: inference.networking.k8s.io, kind: InferencePool (no port needed)"
        ),
        format!(
            "{seed3}:1: InferencePool/llama-3-70b: apiVersion: inference.networking.x-k8s.io/v1alpha1 never shipped InferencePool; write apiVersion: inference.networking.k8s.io/v1 (the GA version; each field below says what it becomes)"
        ),
        format!(
            "{seed3}:1: InferencePool/llama-3-70b: spec.endpointPickerConfig: endpointPickerConfig never shipped; the endpoint picker is endpointPickerRef in inference.networking.k8s.io/v1, with port.number: write endpointPickerRef: {{name: gpu-aware-picker, port: {{number: 9002}}}}"
        ),
        format!(
            "{seed3}:1: InferencePool/llama-3-70b: spec.targetPortNumber: targetPortNumber is the v1alpha2 field; in inference.networking.k8s.io/v1 use targetPorts: [{{number: 8000}}]"
        ),
        format!(
            "{seed3}:2: InferenceModel/llama-3-70b: apiVersion: InferenceModel is not served at apiVersion inference.networking.x-k8s.io/v1alpha1; it existed only as inference.networking.x-k8s.io/v1alpha2 and is replaced by InferenceObjective: write apiVersion: inference.networking.x-k8s.io/v1alpha2 and kind: InferenceObjective (each field below says what it becomes)"
        ),
        format!(
            "{seed3}:2: InferenceModel/llama-3-70b: spec.criticality: criticality is the InferenceModel field; InferenceObjective uses an integer priority: write priority: 1 (Critical → 1, Standard → 0, the default, Sheddable → -1: higher priorities are served first)"
        ),
        format!(
            "{seed3}:2: InferenceModel/llama-3-70b: spec.modelName: InferenceObjective has no modelName: route requests for llama-3-70b with an HTTPRoute rule matching header x-gateway-inference-model: llama-3-70b (the body-based router sets it from the request's model field), serve it under another name with an InferenceModelRewrite, and pick this objective per request with header x-gateway-inference-objective: <this objective's name>"
        ),
        format!(
            "{seed3}:3: InferenceModel/mistral-7b: apiVersion: InferenceModel is not served at apiVersion inference.networking.x-k8s.io/v1alpha1; it existed only as inference.networking.x-k8s.io/v1alpha2 and is replaced by InferenceObjective: write apiVersion: inference.networking.x-k8s.io/v1alpha2 and kind: InferenceObjective (each field below says what it becomes)"
        ),
        format!(
            "{seed3}:3: InferenceModel/mistral-7b: spec.criticality: criticality is the InferenceModel field; InferenceObjective uses an integer priority: write priority: 0 (Critical → 1, Standard → 0, the default, Sheddable → -1: higher priorities are served first)"
        ),
        format!(
            "{seed3}:3: InferenceModel/mistral-7b: spec.modelName: InferenceObjective has no modelName: route requests for mistral-7b-instruct with an HTTPRoute rule matching header x-gateway-inference-model: mistral-7b-instruct (the body-based router sets it from the request's model field), serve it under another name with an InferenceModelRewrite, and pick this objective per request with header x-gateway-inference-objective: <this objective's name>"
        ),
        format!(
            "{seed3}:3: InferenceModel/mistral-7b: spec.poolRef: no InferencePool \"mistral-7b\" in namespace ai-inference among the checked files; the pools there are llama-3-70b"
        ),
        format!(
            "{seed3}:4: HTTPRoute/ai-inference-route: spec.rules[0].backendRefs[0].group: InferencePool llama-3-70b is inference.networking.k8s.io/v1, in group inference.networking.k8s.io, but the reference says group \"inference.networking.x-k8s.io\": write group: inference.networking.k8s.io"
        ),
        format!(
            "{seed3}:5: HTTPRoute/multi-model-route: spec.rules[0].backendRefs[0]: no InferencePool \"mistral-7b\" in namespace default among the checked files; the pools there are vllm-qwen3-32b"
        ),
        format!(
            "{seed3}:5: HTTPRoute/multi-model-route: spec.rules[1].backendRefs[0]: InferencePool llama-3-70b is in namespace ai-inference, not default: move this object to namespace ai-inference (metadata.namespace: ai-inference), or write namespace: ai-inference on the reference and allow it with a ReferenceGrant in ai-inference"
        ),
        format!(
            "{seed3}:5: HTTPRoute/multi-model-route: spec.rules[1].backendRefs[0].group: InferencePool llama-3-70b is inference.networking.k8s.io/v1, in group inference.networking.k8s.io, but the reference says group \"inference.networking.x-k8s.io\": write group: inference.networking.k8s.io"
        ),
        format!(
            "{seed3}:5: HTTPRoute/multi-model-route: spec.rules[2].backendRefs[0]: InferencePool llama-3-70b is in namespace ai-inference, not default: move this object to namespace ai-inference (metadata.namespace: ai-inference), or write namespace: ai-inference on the reference and allow it with a ReferenceGrant in ai-inference"
        ),
        format!(
            "{seed3}:5: HTTPRoute/multi-model-route: spec.rules[2].backendRefs[0].group: InferencePool llama-3-70b is inference.networking.k8s.io/v1, in group inference.networking.k8s.io, but the reference says group \"inference.networking.x-k8s.io\": write group: inference.networking.k8s.io"
        ),
    ];
    assert_eq!(lines(&out.stdout), expected);
    assert_eq!(
        lines(&out.stderr),
        ["20 problems in 7 documents in 3 files (7 checked, 0 other kinds)"]
    );
}

#[test]
fn valid_rollout_fixture_passes_on_its_own() {
    let out = run(&[&fixture("valid/rollout-pool-split.yaml")]);
    assert_eq!(
        lines(&out.stdout),
        ["ok: 2 documents in 1 file (2 checked, 0 other kinds)"]
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn invalid_rollouts_are_rejected_with_fixes() {
    let out = run(&[&fixture("rollout-invalid")]);
    assert_eq!(out.status.code(), Some(1));
    let file = "tests/fixtures/manifests/rollout-invalid/llama-canary.yaml";
    let first = format!("{file}:4: InferenceRollout/llama-canary");
    let second = format!("{file}:5: InferenceRollout/llama-canary-2");
    let third = format!("{file}:6: InferenceRollout/llama-canary-3");
    let no_canary_ref = "spec.target.canary: rule llama of HTTPRoute llama-route has no backendRef to InferencePool llama-v2; the controller only changes weights, it never adds backends: add {group: inference.networking.k8s.io, kind: InferencePool, name: llama-v2} to that rule's backendRefs";
    let clash = |other: &str| {
        format!(
            "spec.target.route: InferenceRollout {other} also weighs rule llama of HTTPRoute llama-route; two rollouts would overwrite each other's weights: keep one rollout per rule (delete or retarget one)"
        )
    };
    let expected = [
        format!(
            "{first}: spec.strategy.steps[1].weight: 500 comes after 1000: steps must be strictly increasing (the controller refuses this spec as InvalidSpec); reorder them"
        ),
        format!(
            "{first}: spec.strategy.steps[2].weight is 5000, above maxWeight 4000: lower the step or raise spec.strategy.maxWeight"
        ),
        format!(
            "{first}: spec.strategy.settleTime: \"2 min\" is not a duration: write 1 to 4 parts of a number and h, m, s or ms, like 90s or 1m30s"
        ),
        format!(
            "{first}: spec.analysis.metrics[0] must set at least one limit: max, min, maxDeltaVsStable, maxRatioVsStable or minRatioVsStable (e.g. maxRatioVsStable: 1.2)"
        ),
        format!("{first}: {no_canary_ref}"),
        format!("{first}: {}", clash("llama-canary-3")),
        format!(
            "{second}: spec.target.route.ruleName: HTTPRoute llama-route has no rule named \"lama\"; did you mean ruleName: llama?"
        ),
        format!(
            "{second}: spec.target.canary.name: no InferencePool \"llama-v3\" in namespace ai among the checked objects; did you mean llama-v1?"
        ),
        format!("{third}: {no_canary_ref}"),
        format!("{third}: {}", clash("llama-canary")),
    ];
    assert_eq!(lines(&out.stdout), expected);
    assert_eq!(
        lines(&out.stderr),
        ["10 problems in 6 documents in 1 file (6 checked, 0 other kinds)"]
    );
}

#[test]
fn malformed_yaml_exits_2_with_file_line_and_column() {
    let out = run(&[&fixture("garbage")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let errors: Vec<String> = lines(&out.stderr)
        .into_iter()
        .filter(|line| line.contains("invalid YAML"))
        .collect();
    assert_eq!(
        errors,
        [
            "tests/fixtures/manifests/garbage/bad-indent.yaml:10:4: invalid YAML: while parsing a block mapping, did not find expected key",
            "tests/fixtures/manifests/garbage/helm-template.yaml:5:10: invalid YAML: expected string scalar: this looks like an unrendered Helm template; check the output of `helm template` instead",
            "tests/fixtures/manifests/garbage/seed-003-flattened.yaml:17:1: invalid YAML: duplicate key \"name\": a key may appear once per mapping (lost indentation often causes this)",
        ]
    );
    // The offending line is shown under each error.
    assert!(
        lines(&out.stderr)
            .iter()
            .any(|l| l.contains("10 |    port: {number: 9002}"))
    );
}

#[test]
fn syntax_errors_win_over_findings_but_findings_are_still_printed() {
    let out = run(&[
        &fixture("invalid/seed-002-inferencepool.yaml"),
        &fixture("garbage/bad-indent.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(lines(&out.stdout).len(), 2);
}

#[test]
fn unreadable_paths_exit_2() {
    let out = run(&["no/such/dir"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("no/such/dir: cannot read: "), "{stderr}");
}

#[test]
fn garbage_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let deep = "[".repeat(10_000);
    let inputs: [(&str, &[u8]); 6] = [
        ("binary.yaml", &[0xff, 0xfe, 0x00, 0x01, 0x80, 0x81]),
        ("nul.yaml", b"a: \x00\n"),
        ("deep.yaml", deep.as_bytes()),
        ("aliases.yaml", b"a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"),
        ("markers.yaml", b"---\n...\n---\n--- |\n...\n%YAML 1.2\n"),
        ("empty.yml", b""),
    ];
    for (name, bytes) in inputs {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let out = run(&[dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("binary.yaml:1: invalid YAML: the file is not UTF-8"),
        "{stderr}"
    );
    for name in ["nul.yaml", "deep.yaml", "aliases.yaml"] {
        assert!(
            stderr.contains(&format!("{name}:")),
            "{name} not reported: {stderr}"
        );
    }
}

#[test]
fn help_documents_the_output_format_and_exit_codes() {
    let out = run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("FILE:DOC: KIND/NAME: FIELD: MESSAGE"),
        "{help}"
    );
    assert!(help.contains("1-based position of the document"), "{help}");
    assert!(help.contains("Exit status: 0"), "{help}");
    // No path at all is a usage error, like an unreadable file.
    assert_eq!(run(&[]).status.code(), Some(2));
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(FIXTURES)
            .is_dir()
    );
}
