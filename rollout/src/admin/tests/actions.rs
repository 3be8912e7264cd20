//! Recording admin actions: intents with their idempotency keys, what the rollout's state
//! forbids, `If-Match` preconditions and manual weights.

use super::*;

#[tokio::test]
async fn pause_records_the_intent_with_the_idempotency_key_as_nonce() {
    let (admin, handle) = start(token_file()).await;
    let server = serve(handle, vec![
        Expect::get(ROLLOUT_PATH, stored(progressing())),
        intent_patch(|body| {
            assert_eq!(
                body["status"]["intent"],
                json!({"action": "pause", "nonce": "key-1", "by": "alice", "at": "2027-01-15T08:00:00Z", "reason": "dashboards"})
            );
            // Always a precondition (H4), with or without If-Match.
            assert_eq!(body["metadata"]["resourceVersion"], "77");
        })
        .answering(200, stored(progressing())),
    ]);
    let headers = [
        bearer(),
        ("idempotency-key", "key-1"),
        ("content-type", "application/json"),
    ];
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/pause"),
        &headers,
        r#"{"reason":"dashboards"}"#,
    )
    .await;
    server.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["recorded"], true);
    assert_eq!(body["intent"]["nonce"], "key-1");
    assert_eq!(body["resourceVersion"], "77");
}

#[tokio::test]
async fn a_repeated_idempotency_key_is_a_no_op_and_a_pending_action_blocks_others() {
    let mut pending = progressing();
    pending["intent"] =
        json!({"action": "pause", "nonce": "key-1", "by": "alice", "at": "2027-01-15T07:59:00Z"});
    let (admin, handle) = start(token_file()).await;
    let server = serve(
        handle,
        vec![
            Expect::get(ROLLOUT_PATH, stored(pending.clone())),
            Expect::get(ROLLOUT_PATH, stored(pending.clone())),
            Expect::get(ROLLOUT_PATH, stored(pending)),
        ],
    );
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/pause"),
        &[bearer(), ("idempotency-key", "key-1")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["recorded"], false);
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/abort"),
        &[bearer(), ("idempotency-key", "key-1")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used for Pause")
    );
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/abort"),
        &[bearer(), ("idempotency-key", "key-2")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("still pending")
    );
    server.await.unwrap();
}

#[tokio::test]
async fn actions_the_state_forbids_are_409() {
    let (admin, handle) = start(token_file()).await;
    let server = serve(
        handle,
        vec![Expect::get(ROLLOUT_PATH, stored(progressing()))],
    );
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/resume"),
        &[bearer()],
        "",
    )
    .await;
    server.await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["error"]["message"],
        "cannot Resume a rollout that is Progressing: it is not paused"
    );
}

#[tokio::test]
async fn if_match_is_checked_and_then_sent_as_a_precondition() {
    let (admin, handle) = start(token_file()).await;
    let server = serve(
        handle,
        vec![
            Expect::get(ROLLOUT_PATH, stored(progressing())),
            Expect::get(ROLLOUT_PATH, stored(progressing())),
            intent_patch(|body| assert_eq!(body["metadata"]["resourceVersion"], "77"))
                .answering(200, stored(progressing())),
        ],
    );
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/promote"),
        &[bearer(), ("if-match", "\"76\"")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/promote"),
        &[bearer(), ("if-match", "\"77\"")],
        r#"{"mode":"full"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["intent"]["mode"], "full");
    server.await.unwrap();
}

#[tokio::test]
async fn set_weight_converts_percent_and_refuses_unsafe_weights() {
    let (admin, handle) = start(token_file()).await;
    let server = serve(
        handle,
        vec![
            Expect::get(ROLLOUT_PATH, stored(progressing())),
            intent_patch(|body| assert_eq!(body["status"]["intent"]["canaryWeight"], 250))
                .answering(200, stored(progressing())),
            Expect::get(ROLLOUT_PATH, stored(progressing())),
        ],
    );
    let weight = format!("{R}/weight");
    let (status, _, body) = call(
        &admin,
        Method::PUT,
        &weight,
        &[bearer()],
        r#"{"canary": 2.5, "unit": "percent"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, _, body) = call(
        &admin,
        Method::PUT,
        &weight,
        &[bearer()],
        r#"{"canary": 10000}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("use promote with mode full")
    );
    // Refused before reading the rollout.
    for (bad, code) in [
        (r#"{"canary": -1}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (r#"{"canary": 12.5}"#, StatusCode::BAD_REQUEST),
        (r#"{"canary": "lots"}"#, StatusCode::BAD_REQUEST),
        (r#"{"weight": 5}"#, StatusCode::BAD_REQUEST),
        ("", StatusCode::BAD_REQUEST),
        ("{", StatusCode::BAD_REQUEST),
    ] {
        let (status, _, body) = call(&admin, Method::PUT, &weight, &[bearer()], bad).await;
        assert_eq!(status, code, "{bad}: {body}");
        assert!(body["error"]["message"].is_string());
        if bad.is_empty() {
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("\"canary\""),
                "{body}"
            );
        }
    }
    server.await.unwrap();
}
