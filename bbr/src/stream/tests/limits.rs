//! H5: the process-wide budget of buffered bytes, the declared length checked at the headers,
//! and a message past the decode limit — each answered with a JSON error, in both modes.

use switchyard_runtime::budget::ByteBudget;

use super::*;

fn budgeted(max_body_bytes: usize, budget: &ByteBudget) -> RouterConfig {
    RouterConfig {
        max_body_bytes,
        budget: budget.clone(),
        ..RouterConfig::default()
    }
}

fn with_length(length: &str) -> Vec<(&'static str, String)> {
    let mut headers: Vec<(&str, String)> = post_headers()
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    headers.push(("content-length", length.to_string()));
    headers
}

fn open_with(stream: &mut RequestStream, mode: BodySendMode, length: &str) -> Vec<Seen> {
    let headers = with_length(length);
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    seen_all(&open(stream, mode, &pairs))
}

fn overloaded() -> Seen {
    Seen::Immediate {
        status: 503,
        code: "server_overloaded".into(),
    }
}

fn too_large() -> Seen {
    Seen::Immediate {
        status: 413,
        code: "request_too_large".into(),
    }
}

#[test]
fn h5_full_duplex_bodies_past_the_shared_budget_get_503_and_release_it() {
    let budget = ByteBudget::new(100);
    let config = Arc::new(budgeted(1000, &budget));
    let index = Arc::new(BaseModelIndex::default());
    let mut first = RequestStream::new(config.clone(), index.clone());
    let mut second = RequestStream::new(config, index);
    open(
        &mut first,
        BodySendMode::FullDuplexStreamed,
        &post_headers(),
    );
    open(
        &mut second,
        BodySendMode::FullDuplexStreamed,
        &post_headers(),
    );
    assert!(send(&mut first, body_msg(&[b' '; 60], false)).is_empty());
    assert_eq!(budget.in_use(), 60);
    // The second stream's 60 bytes would make 120 of 100: refused, nothing more held.
    let refused = send(&mut second, body_msg(&[b' '; 60], false));
    assert_eq!(seen_all(&refused), [overloaded()]);
    assert_eq!(budget.in_use(), 60);
    assert_eq!(
        second.take_summary().unwrap().outcome,
        Outcome::Rejected(Reason::Overloaded)
    );
    // The first finishes; everything returns to the budget.
    let answers = send(&mut first, body_msg(&BODY[..30], true));
    assert_eq!(
        first.take_summary().unwrap().outcome.label(),
        "rejected_invalid_json"
    );
    assert!(!answers.is_empty());
    assert_eq!(budget.in_use(), 0, "every byte returned");
}

#[test]
fn h5_a_buffered_body_over_the_budget_is_503_with_a_reason() {
    // Within the size limit, but more than the whole budget.
    let budget = ByteBudget::new(BODY.len() - 1);
    let mut s = stream(budgeted(10_000, &budget));
    open(&mut s, BodySendMode::Buffered, &post_headers());
    let answers = send(&mut s, body_msg(BODY, true));
    assert_eq!(seen_all(&answers), [overloaded()]);
    let Some(Response::ImmediateResponse(immediate)) = &answers[0].response else {
        panic!("not an immediate response");
    };
    let json: serde_json::Value = serde_json::from_slice(&immediate.body).unwrap();
    assert_eq!(json["error"]["type"], "server_error");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("budget") && message.contains("retry"),
        "{message}"
    );
    assert_eq!(budget.in_use(), 0);
}

#[test]
fn h5_a_declared_length_past_the_limit_is_413_at_the_headers_in_both_modes() {
    for mode in [BodySendMode::Buffered, BodySendMode::FullDuplexStreamed] {
        let budget = ByteBudget::new(10_000);
        let mut s = stream(budgeted(1000, &budget));
        assert_eq!(open_with(&mut s, mode, "1001"), [too_large()], "{mode:?}");
        // A length too large for any integer is past the limit too.
        let mut s = stream(budgeted(1000, &budget));
        let huge = "9".repeat(40);
        assert_eq!(open_with(&mut s, mode, &huge), [too_large()], "{mode:?}");
        assert_eq!(budget.in_use(), 0);
    }
}

#[test]
fn h5_a_declared_length_reserves_the_budget_before_the_body_arrives() {
    let budget = ByteBudget::new(1000);
    let config = Arc::new(budgeted(1000, &budget));
    let index = Arc::new(BaseModelIndex::default());
    let mut first = RequestStream::new(config.clone(), index.clone());
    let answered = open_with(&mut first, BodySendMode::Buffered, "800");
    assert_eq!(answered.len(), 1, "headers answered: {answered:?}");
    assert_eq!(budget.in_use(), 800, "reserved at the headers");
    // A second request declaring 300 bytes would overdraw: 503 before Envoy buffers it.
    let mut second = RequestStream::new(config, index);
    assert_eq!(
        open_with(&mut second, BodySendMode::Buffered, "300"),
        [overloaded()]
    );
    // An unparsable length is no declaration at all.
    let mut third = stream(budgeted(1000, &budget));
    assert_eq!(
        open_with(&mut third, BodySendMode::Buffered, "12abc").len(),
        1
    );
    drop(first);
    assert_eq!(
        budget.in_use(),
        0,
        "a stream dropped mid-request returns its bytes"
    );
}

#[test]
fn h5_a_message_past_the_decode_limit_is_413_with_the_json_error() {
    let mut s = stream(budgeted(1000, &ByteBudget::new(10_000)));
    open(&mut s, BodySendMode::Buffered, &post_headers());
    let answer = s.on_message_too_large();
    assert_eq!(seen(&answer), too_large());
    assert_eq!(
        s.take_summary().unwrap().outcome,
        Outcome::Rejected(Reason::BodyTooLarge)
    );
}
