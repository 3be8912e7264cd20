//! InferencePool mistakes.

use super::{messages, pool};

const HEAD: &str =
    "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: p}\n";

fn spec(spec: &str) -> Vec<String> {
    messages(&format!("{HEAD}spec:\n{spec}"))
}

const OK_SELECTOR: &str = "  selector: {matchLabels: {app: p}}\n";
const OK_PORTS: &str = "  targetPorts: [{number: 8000}]\n";
const OK_PICKER: &str = "  endpointPickerRef: {name: p-epp, port: {number: 9002}}\n";

#[test]
fn bare_selector_map_says_use_match_labels() {
    let out = spec(&format!(
        "  selector: {{app: vllm-qwen3-32b}}\n{OK_PORTS}{OK_PICKER}"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.selector: a bare label map is the v1alpha2 selector; in inference.networking.k8s.io/v1 use selector.matchLabels: write selector: {matchLabels: {app: vllm-qwen3-32b}}"
        ]
    );
}

#[test]
fn extension_ref_with_plain_port_says_endpoint_picker_ref_with_port_number() {
    let out = spec(&format!(
        "{OK_SELECTOR}{OK_PORTS}  extensionRef: {{name: vllm-epp, port: 9002, failureMode: FailOpen}}\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.extensionRef: extensionRef is endpointPickerRef in inference.networking.k8s.io/v1, with port.number: write endpointPickerRef: {name: vllm-epp, port: {number: 9002}, failureMode: FailOpen}"
        ]
    );
}

#[test]
fn target_port_number_under_v1_says_target_ports() {
    let out = spec(&format!(
        "{OK_SELECTOR}  targetPortNumber: 8080\n{OK_PICKER}"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.targetPortNumber: targetPortNumber is the v1alpha2 field; in inference.networking.k8s.io/v1 use targetPorts: [{number: 8080}]"
        ]
    );
}

#[test]
fn typo_target_port_is_flagged_once() {
    let out = spec(&format!(
        "{OK_SELECTOR}  targetPort: [{{number: 8000}}]\n{OK_PICKER}"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.targetPort: unknown field \"targetPort\"; did you mean \"targetPorts\"?"
        ]
    );
}

#[test]
fn ports_out_of_range_quoted_and_duplicated() {
    let out = spec(&format!(
        "{OK_SELECTOR}  targetPorts: [{{number: 8000}}, {{number: 70000}}, {{number: \"8001\"}}, {{number: 8000}}]\n{OK_PICKER}"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.targetPorts[1].number is 70000; it must be from 1 to 65535",
            "m.yaml:1: InferencePool/p: spec.targetPorts[2].number must be an integer, not the string \"8001\": remove the quotes",
            "m.yaml:1: InferencePool/p: spec.targetPorts[3].number: port 8000 is listed twice; target port numbers must be unique",
        ]
    );
}

#[test]
fn bare_port_numbers_in_target_ports() {
    let out = spec(&format!("{OK_SELECTOR}  targetPorts: [8000]\n{OK_PICKER}"));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.targetPorts[0]: each target port is an object: write {number: 8000}, as in targetPorts: [{number: 8000}]"
        ]
    );
}

#[test]
fn failure_mode_casing() {
    let out = spec(&format!(
        "{OK_SELECTOR}{OK_PORTS}  endpointPickerRef: {{name: e, port: {{number: 9002}}, failureMode: failopen}}\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.endpointPickerRef.failureMode: \"failopen\" is not valid; write FailOpen (one of FailOpen, FailClose)"
        ]
    );
}

#[test]
fn app_protocol_h2c() {
    let out = spec(&format!(
        "{OK_SELECTOR}{OK_PORTS}{OK_PICKER}  appProtocol: h2c\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.appProtocol: \"h2c\" is not an appProtocol: HTTP/2 over cleartext is written appProtocol: kubernetes.io/h2c (the other value is http, the default)"
        ]
    );
}

#[test]
fn picker_service_needs_a_port_object() {
    let out = spec(&format!(
        "{OK_SELECTOR}{OK_PORTS}  endpointPickerRef: {{name: e}}\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.endpointPickerRef.port is required when kind is Service (the default): add port: {number: 9002} (the EPP's gRPC Service port)"
        ]
    );
    let out = spec(&format!(
        "{OK_SELECTOR}{OK_PORTS}  endpointPickerRef: {{name: e, port: 9002}}\n"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.endpointPickerRef.port: port is an object in inference.networking.k8s.io/v1: write port: {number: 9002}"
        ]
    );
}

#[test]
fn selector_labels_must_be_present_valid_and_strings() {
    let out = spec(&format!(
        "  selector: {{matchLabels: {{}}}}\n{OK_PORTS}{OK_PICKER}"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.selector.matchLabels must have at least one label: an empty selector would match every pod in the namespace"
        ]
    );
    let out = spec(&format!(
        "  selector: {{matchLabels: {{app: p, version: 1, 'bad key': x, tier: -x}}}}\n{OK_PORTS}{OK_PICKER}"
    ));
    assert_eq!(
        out,
        [
            "m.yaml:1: InferencePool/p: spec.selector.matchLabels.bad key: the label key \"bad key\" contains ' '; only letters, digits, '-', '_' and '.' are allowed",
            "m.yaml:1: InferencePool/p: spec.selector.matchLabels.tier: the label value \"-x\" must start and end with a letter or digit",
            "m.yaml:1: InferencePool/p: spec.selector.matchLabels.version: label values are strings: quote it, version: \"1\"",
        ]
    );
}

#[test]
fn missing_required_fields_say_how_to_write_them() {
    assert_eq!(
        spec(OK_PICKER),
        [
            "m.yaml:1: InferencePool/p: spec.selector is required: add selector: {matchLabels: {app: my-model-server}}",
            "m.yaml:1: InferencePool/p: spec.targetPorts is required: add targetPorts: [{number: 8000}]",
        ]
    );
}

#[test]
fn spec_fields_at_the_top_level() {
    let out = messages(&format!(
        "{HEAD}selector: {{matchLabels: {{app: p}}}}\nspec: {{}}\n"
    ));
    assert_eq!(
        out[0],
        "m.yaml:1: InferencePool/p: selector: selector is a spec field: indent it under spec:"
    );
}

#[test]
fn v1alpha1_pool_maps_every_field_to_v1() {
    let text = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: InferencePool\nmetadata: {name: llama}\nspec:\n  targetPortNumber: 8000\n  selector: {matchLabels: {model: llama}}\n  endpointPickerConfig: {extensionRef: {name: gpu-aware-picker}}\n";
    assert_eq!(
        messages(text),
        [
            "m.yaml:1: InferencePool/llama: apiVersion: inference.networking.x-k8s.io/v1alpha1 never shipped InferencePool; write apiVersion: inference.networking.k8s.io/v1 (the GA version; each field below says what it becomes)",
            "m.yaml:1: InferencePool/llama: spec.endpointPickerConfig: endpointPickerConfig never shipped; the endpoint picker is endpointPickerRef in inference.networking.k8s.io/v1, with port.number: write endpointPickerRef: {name: gpu-aware-picker, port: {number: 9002}}",
            "m.yaml:1: InferencePool/llama: spec.targetPortNumber: targetPortNumber is the v1alpha2 field; in inference.networking.k8s.io/v1 use targetPorts: [{number: 8000}]",
        ]
    );
}

#[test]
fn legacy_pool_accepts_its_shape_and_explains_v1_fields() {
    let legacy = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\nmetadata: {name: old}\nspec:\n";
    let ok = format!(
        "{legacy}  selector: {{app: old}}\n  targetPortNumber: 8000\n  extensionRef: {{name: old-epp, portNumber: 9002}}\n"
    );
    assert_eq!(messages(&ok), Vec::<String>::new());
    let mixed = format!(
        "{legacy}  selector: {{matchLabels: {{app: old}}}}\n  targetPorts: [{{number: 8000}}]\n  extensionRef: {{name: old-epp, port: {{number: 9002}}}}\n"
    );
    assert_eq!(
        messages(&mixed),
        [
            "m.yaml:1: InferencePool/old: spec.extensionRef.port: the inference.networking.x-k8s.io/v1alpha2 extensionRef takes portNumber: 9002 (or move the pool to apiVersion: inference.networking.k8s.io/v1, where it is port: {number: …})",
            "m.yaml:1: InferencePool/old: spec.selector: the inference.networking.x-k8s.io/v1alpha2 selector is a bare label map: write selector: {app: old} (or move the pool to apiVersion: inference.networking.k8s.io/v1, where selector.matchLabels is right)",
            "m.yaml:1: InferencePool/old: spec.targetPorts: targetPorts is the inference.networking.k8s.io/v1 field; in inference.networking.x-k8s.io/v1alpha2 write targetPortNumber: 8000 (or move the pool to apiVersion: inference.networking.k8s.io/v1)",
        ]
    );
}

#[test]
fn the_helper_pool_is_valid() {
    assert_eq!(messages(&pool("a", "b")), Vec::<String>::new());
}

#[test]
fn a_pool_without_endpoint_picker_ref_passes_as_gie_v1_6_allows() {
    assert_eq!(
        spec(&format!("{OK_SELECTOR}{OK_PORTS}")),
        Vec::<String>::new()
    );
    // A picker that is given is still checked.
    assert!(
        !spec(&format!(
            "{OK_SELECTOR}{OK_PORTS}  endpointPickerRef: {{port: 1}}\n"
        ))
        .is_empty()
    );
}
