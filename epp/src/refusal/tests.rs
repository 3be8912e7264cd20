//! Every refusal body, byte for byte as the four builders this type replaced wrote them.

use super::*;

#[test]
fn codes_fix_status_reason_and_type() {
    let table = [
        (ErrorCode::BadRequest, 400, "bad-request", "BadRequestError"),
        (
            ErrorCode::BodyTooLarge,
            413,
            "body-too-large",
            "BadRequestError",
        ),
        (
            ErrorCode::ResourceExhausted,
            429,
            "rejected-saturated",
            "RateLimitError",
        ),
        (
            ErrorCode::ServiceUnavailable,
            503,
            "rejected-no-endpoints",
            "ServiceUnavailableError",
        ),
        (
            ErrorCode::Internal,
            500,
            "internal-error",
            "InternalServerError",
        ),
    ];
    for (code, status, reason, openai_type) in table {
        assert_eq!(code.status(), status, "{code:?}");
        assert_eq!(code.default_reason(), reason, "{code:?}");
        assert_eq!(code.openai_type(), openai_type, "{code:?}");
    }
}

#[test]
fn the_413_body_is_unchanged() {
    let refusal = Refusal::body_too_large(100);
    assert_eq!((refusal.status(), refusal.reason), (413, "body-too-large"));
    assert_eq!(
        String::from_utf8(refusal.json_body()).unwrap(),
        r#"{"error":{"code":413,"message":"inference error: BadRequest - the request body exceeds the EPP's limit of 100 bytes (--max-body-bytes)","param":null,"type":"BadRequestError"}}"#
    );
}

#[test]
fn the_429_and_503_bodies_are_unchanged() {
    let saturated = Refusal::new(
        ErrorCode::ResourceExhausted,
        "the pool is saturated and this request's objective is sheddable (priority < 0)",
    );
    assert_eq!(
        String::from_utf8(saturated.json_body()).unwrap(),
        r#"{"error":{"code":429,"message":"inference error: ResourceExhausted - the pool is saturated and this request's objective is sheddable (priority < 0)","param":null,"type":"RateLimitError"}}"#
    );
    let empty = Refusal::new(ErrorCode::ServiceUnavailable, "no endpoints");
    assert_eq!(
        String::from_utf8(empty.json_body()).unwrap(),
        r#"{"error":{"code":503,"message":"inference error: ServiceUnavailable - no endpoints","param":null,"type":"ServiceUnavailableError"}}"#
    );
}

#[test]
fn a_specific_reason_replaces_the_default_but_not_the_status() {
    let refusal = Refusal::new(ErrorCode::ResourceExhausted, "request timed out in queue")
        .with_reason("rejected-ttl-expired");
    assert_eq!(
        (refusal.status(), refusal.reason),
        (429, "rejected-ttl-expired")
    );
    assert_eq!(
        refusal.text(),
        "inference error: ResourceExhausted - request timed out in queue"
    );
}

#[test]
fn messages_with_quotes_stay_valid_json() {
    let refusal = Refusal::new(ErrorCode::BadRequest, "bad \"model\"\n");
    let body: serde_json::Value = serde_json::from_slice(&refusal.json_body()).unwrap();
    assert_eq!(
        body["error"]["message"],
        "inference error: BadRequest - bad \"model\"\n"
    );
}
