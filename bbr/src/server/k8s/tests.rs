//! The ConfigMap index, and the watcher against a mocked API server (tower-test).

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::json;

use super::*;
use crate::server::mappings::Source;
use crate::server::metrics::Metrics;

fn config_map(name: &str, data: serde_json::Value) -> serde_json::Value {
    labelled_config_map(name, &[BBR_MANAGED_LABEL], data)
}

fn labelled_config_map(name: &str, labels: &[&str], data: serde_json::Value) -> serde_json::Value {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|l| (l.to_string(), json!("true")))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "inference",
            "resourceVersion": "2",
            "labels": labels,
        },
        "data": data,
    })
}

fn typed(value: serde_json::Value) -> ConfigMap {
    serde_json::from_value(value).unwrap()
}

fn in_namespace(namespace: &str, name: &str, data: serde_json::Value) -> ConfigMap {
    let mut value = config_map(name, data);
    value["metadata"]["namespace"] = json!(namespace);
    typed(value)
}

#[test]
fn index_applies_and_deletes_config_maps() {
    let mut index = ConfigMapMappings::default();
    let llama = typed(config_map(
        "llama",
        json!({"baseModel": "llama", "adapters": "- food-review\n"}),
    ));
    index.apply(&llama).unwrap();
    assert_eq!(index.mappings()[0].0, "ConfigMap inference/llama");
    assert_eq!(index.mappings()[0].1.adapters, ["food-review"]);
    index.delete(&llama);
    assert!(index.mappings().is_empty());
    index.apply(&llama).unwrap();
    index.reset();
    assert!(index.mappings().is_empty());
}

/// L14: an invalid edit used to drop the ConfigMap's mapping, so its adapters lost the
/// base-model header until the edit was fixed. The last good mapping now stays, the
/// ConfigMap is counted invalid, and fixing or deleting it clears the count.
#[test]
fn l14_an_invalid_edit_keeps_the_last_good_mapping_and_is_reported() {
    let mut index = ConfigMapMappings::default();
    let llama = typed(config_map(
        "llama",
        json!({"baseModel": "llama", "adapters": "- food-review\n"}),
    ));
    index.apply(&llama).unwrap();
    let broken = typed(config_map("llama", json!({"adapters": "- x"})));
    let err = index.apply(&broken).unwrap_err();
    assert!(
        err.to_string().contains("ConfigMap inference/llama"),
        "{err}"
    );
    assert_eq!(index.mappings().len(), 1, "the last good mapping stays");
    assert_eq!(index.mappings()[0].1.adapters, ["food-review"]);
    assert_eq!(index.invalid(), 1);

    // Published, the count reaches the metrics; the fix clears it.
    let metrics = Arc::new(Metrics::new());
    let store = MappingStore::new(Arc::clone(&metrics));
    index.publish(&store, WATCHED_LABELS[0], "inference");
    assert_eq!(store.snapshot().base_of("food-review"), Some("llama"));
    let text = metrics.encode().unwrap();
    assert!(
        text.contains("bbr_base_model_configmaps_invalid 1"),
        "{text}"
    );
    index.apply(&llama).unwrap();
    index.publish(&store, WATCHED_LABELS[0], "inference");
    let text = metrics.encode().unwrap();
    assert!(
        text.contains("bbr_base_model_configmaps_invalid 0"),
        "{text}"
    );

    // A ConfigMap invalid from the start has nothing to keep; deleting it clears the count.
    let never_good = typed(config_map("qwen", json!({"adapters": "- y"})));
    assert!(index.apply(&never_good).is_err());
    assert_eq!((index.mappings().len(), index.invalid()), (1, 1));
    index.delete(&never_good);
    assert_eq!(index.invalid(), 0);
}

/// H8: with every namespace watched, a ConfigMap from another namespace (`aaa`, sorting
/// before the home namespace) cannot take over an adapter the file or the home namespace
/// maps; it only adds names nobody claimed, and the conflict is counted.
#[test]
fn h8_other_namespaces_never_override_the_file_or_the_home_namespace() {
    let metrics = Arc::new(Metrics::new());
    let store = MappingStore::new(Arc::clone(&metrics));
    store.publish(
        Source::File,
        vec![(
            "mappings.yaml".into(),
            crate::adapters::Mapping {
                base_model: "qwen".into(),
                adapters: vec!["qwen-sql".into()],
            },
        )],
    );
    let mut gie = ConfigMapMappings::default();
    let hijack = |name: &str, adapter: &str| {
        in_namespace(
            "aaa",
            name,
            json!({"baseModel": "attacker", "adapters": format!("- {adapter}\n- attacker-only\n")}),
        )
    };
    gie.apply(&hijack("steal-home", "food-review")).unwrap();
    gie.apply(&in_namespace(
        "prod",
        "llama",
        json!({"baseModel": "llama", "adapters": "- food-review\n"}),
    ))
    .unwrap();
    let mut llm_d = ConfigMapMappings::default();
    llm_d.apply(&hijack("steal-file", "qwen-sql")).unwrap();
    gie.publish(&store, WATCHED_LABELS[0], "prod");
    llm_d.publish(&store, WATCHED_LABELS[1], "prod");

    let index = store.snapshot();
    assert_eq!(index.base_of("food-review"), Some("llama"), "home wins");
    assert_eq!(index.base_of("qwen-sql"), Some("qwen"), "the file wins");
    assert_eq!(
        index.base_of("attacker-only"),
        Some("attacker"),
        "new names are added"
    );
    let text = metrics.encode().unwrap();
    assert!(
        text.contains("bbr_base_model_mapping_conflicts 2"),
        "{text}"
    );

    // Split: the home namespace apart from the others.
    let (home, others) = gie.split("prod");
    assert_eq!(home.len(), 1);
    assert_eq!(others[0].0, "ConfigMap aaa/steal-home");
}

/// Answers the watcher's list with `llama`, then one watch with an added, a modified and a
/// deleted ConfigMap; later watches stay pending.
async fn api_server(mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>) {
    let mut pending = Vec::new();
    let mut watches = 0;
    while let Some((request, respond)) = handle.next_request().await {
        let uri = request.uri().to_string();
        assert!(
            uri.starts_with("/api/v1/namespaces/inference/configmaps?"),
            "{uri}"
        );
        assert!(
            uri.contains("labelSelector=inference.networking.k8s.io%2Fbbr-managed%3Dtrue"),
            "{uri}"
        );
        if !uri.contains("watch=true") {
            let list = json!({
                "apiVersion": "v1",
                "kind": "ConfigMapList",
                "metadata": { "resourceVersion": "10" },
                "items": [config_map("llama", json!({"baseModel": "llama", "adapters": "- food-review"}))],
            });
            respond.send_response(Response::new(Body::from(list.to_string().into_bytes())));
            continue;
        }
        watches += 1;
        if watches > 1 {
            pending.push(respond);
            continue;
        }
        let events = [
            json!({"type": "ADDED", "object": config_map("mistral", json!({"baseModel": "mistral", "adapters": "- sql-lora"}))}),
            json!({"type": "MODIFIED", "object": config_map("mistral", json!({"baseModel": "mistral", "adapters": "- sql-lora\n- chat-lora"}))}),
            json!({"type": "DELETED", "object": config_map("llama", json!({"baseModel": "llama"}))}),
        ];
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        respond.send_response(Response::new(Body::from(body.into_bytes())));
    }
}

#[tokio::test]
async fn watcher_publishes_list_and_watch_events() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(api_server(handle));
    let client = Client::new(service, "inference");
    let store = Arc::new(MappingStore::new(Arc::new(Metrics::new())));
    let cancel = CancellationToken::new();
    let watch = tokio::spawn(watch_config_maps(
        client,
        Scope::home("inference"),
        WATCHED_LABELS[0],
        store.clone(),
        cancel.clone(),
    ));

    let reached = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let index = store.snapshot();
            if index.base_of("chat-lora") == Some("mistral")
                && index.base_of("food-review").is_none()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "the watch events never reached the store");
    let index = store.snapshot();
    assert_eq!(index.base_of("sql-lora"), Some("mistral"));
    assert_eq!(index.base_of("llama"), None);

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), watch)
        .await
        .unwrap()
        .unwrap();
    server.abort();
}

/// What the mocked API server saw of one request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Recorded {
    method: String,
    path: String,
    label_selector: String,
    watch: bool,
    body: Vec<u8>,
}

async fn record(request: Request<Body>) -> Recorded {
    let (parts, body) = request.into_parts();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%2F", "/").replace("%3D", "=")))
        .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        label_selector: param("labelSelector"),
        watch: param("watch") == "true",
        body: body.collect_bytes().await.unwrap().to_vec(),
    }
}

#[tokio::test]
async fn both_upstream_labels_are_watched_and_merged() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let gie = format!("{BBR_MANAGED_LABEL}=true");
    let llm_d = format!("{LLM_D_BBR_MANAGED_LABEL}=true");
    let server = tokio::spawn({
        let (gie, llm_d) = (gie.clone(), llm_d.clone());
        async move {
            let mut pending = Vec::new();
            while let Some((request, respond)) = handle.next_request().await {
                let seen = record(request).await;
                assert!(
                    seen.label_selector == gie || seen.label_selector == llm_d,
                    "{seen:?}"
                );
                let items = if seen.label_selector == gie {
                    vec![config_map(
                        "llama",
                        json!({"baseModel": "llama", "adapters": "- food-review"}),
                    )]
                } else {
                    vec![
                        labelled_config_map(
                            "qwen",
                            &[LLM_D_BBR_MANAGED_LABEL],
                            json!({"baseModel": "qwen", "adapters": "- qwen-sql"}),
                        ),
                        // Carries both labels: each watch reads it, the claims agree.
                        labelled_config_map(
                            "llama",
                            &[BBR_MANAGED_LABEL, LLM_D_BBR_MANAGED_LABEL],
                            json!({"baseModel": "llama", "adapters": "- food-review"}),
                        ),
                    ]
                };
                if seen.watch {
                    pending.push(respond);
                } else {
                    let list = json!({
                        "apiVersion": "v1",
                        "kind": "ConfigMapList",
                        "metadata": { "resourceVersion": "10" },
                        "items": items,
                    });
                    respond.send_response(Response::new(Body::from(list.to_string().into_bytes())));
                }
                let _ = seen_tx.send(seen);
            }
        }
    });
    let client = Client::new(service, "inference");
    let store = Arc::new(MappingStore::new(Arc::new(Metrics::new())));
    let cancel = CancellationToken::new();
    let watches: Vec<_> = WATCHED_LABELS
        .into_iter()
        .map(|labelled| {
            tokio::spawn(watch_config_maps(
                client.clone(),
                Scope::home("inference"),
                labelled,
                store.clone(),
                cancel.clone(),
            ))
        })
        .collect();

    // Each watch lists, then watches from the list's resource version.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let next = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv()).await;
        seen.push(next.expect("the watches made too few requests").unwrap());
    }
    seen.sort();
    let expected = |selector: &str, watch: bool| Recorded {
        method: "GET".into(),
        path: "/api/v1/namespaces/inference/configmaps".into(),
        label_selector: selector.into(),
        watch,
        body: Vec::new(),
    };
    let mut want = vec![
        expected(&gie, false),
        expected(&gie, true),
        expected(&llm_d, false),
        expected(&llm_d, true),
    ];
    want.sort();
    assert_eq!(seen, want);

    let index = store.snapshot();
    assert_eq!(index.base_of("food-review"), Some("llama"));
    assert_eq!(index.base_of("qwen-sql"), Some("qwen"));
    assert_eq!(index.base_of("qwen"), Some("qwen"));

    cancel.cancel();
    for watch in watches {
        tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .unwrap()
            .unwrap();
    }
    server.abort();
}
