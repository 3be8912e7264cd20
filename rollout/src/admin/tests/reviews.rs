//! M2: the TokenReview asks for the admin API's own audience, and the
//! SubjectAccessReview carries everything the TokenReview said about the user.

use http::{Method, StatusCode};
use serde_json::json;

use super::{R, bearer, call, kubernetes_auth, start};
use crate::controller::tests::fixtures::{Expect, serve};

const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

fn token_review(status: serde_json::Value) -> Expect {
    Expect {
        method: Method::POST,
        path: TOKEN_REVIEWS,
        query: &[],
        body: Box::new(|body| {
            assert_eq!(body["spec"]["audiences"], json!(["switchyard-rollout"]));
        }),
        status: 201,
        reply: json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {},
                      "status": status}),
    }
}

#[tokio::test]
async fn m2_the_access_review_carries_uid_and_extra_of_a_scoped_token() {
    let (admin, handle) = start(kubernetes_auth()).await;
    let server = serve(
        handle,
        vec![
            token_review(
                json!({"authenticated": true, "audiences": ["switchyard-rollout"],
                "user": {"username": "alice", "uid": "u-42", "groups": ["devs"],
                         "extra": {"scopes.authorization.openshift.io": ["user:info"]}}}),
            ),
            Expect {
                method: Method::POST,
                path: ACCESS_REVIEWS,
                query: &[],
                body: Box::new(|body| {
                    assert_eq!(body["spec"]["user"], "alice");
                    assert_eq!(body["spec"]["uid"], "u-42");
                    assert_eq!(
                        body["spec"]["extra"],
                        json!({"scopes.authorization.openshift.io": ["user:info"]})
                    );
                }),
                status: 201,
                reply: json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                              "spec": {}, "status": {"allowed": false}}),
            },
        ],
    );
    let (status, _, body) = call(&admin, Method::GET, R, &[bearer()], "").await;
    server.await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn m2_a_token_not_bound_to_the_admin_audience_is_refused() {
    let (admin, handle) = start(kubernetes_auth()).await;
    // An authenticator that ignored the asked audiences answers none.
    let server = serve(
        handle,
        vec![token_review(
            json!({"authenticated": true, "user": {"username": "alice"}}),
        )],
    );
    let (status, _, body) = call(&admin, Method::GET, R, &[bearer()], "").await;
    server.await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("--audience switchyard-rollout"),
        "{message}"
    );
}
