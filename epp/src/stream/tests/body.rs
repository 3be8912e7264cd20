//! The one parse of a request body: the API a path names, the prompt text per API, and
//! the prompt span kept across admission instead of the borrowed view.

use super::*;

#[test]
fn api_paths_and_prefix_texts() {
    assert_eq!(Api::from_path("/v1/chat/completions?x=1"), Api::Chat);
    assert_eq!(Api::from_path("/v1/completions"), Api::Completions);
    assert_eq!(Api::from_path("/v1/responses/"), Api::Responses);
    assert_eq!(Api::from_path("/v1/conversations"), Api::Conversations);
    assert_eq!(Api::from_path("/v1/embeddings"), Api::Embeddings);
    assert_eq!(Api::from_path("/whatever"), Api::Completions);
    let body = br#"{"model":"m","prompt":"p","messages":[1],"input":"i","instructions":"s","tools":[],"items":[2],"cache_salt":"salt","stream":true}"#;
    let parsed = RequestBody::parse(body).unwrap();
    assert_eq!(&*parsed.prefix_text(Api::Completions), br#""p""#);
    assert_eq!(&*parsed.prefix_text(Api::Chat), b"[1]");
    assert_eq!(&*parsed.prefix_text(Api::Embeddings), br#""i""#);
    assert_eq!(&*parsed.prefix_text(Api::Conversations), b"[2]");
    assert_eq!(&*parsed.prefix_text(Api::Responses), br#""s"[]"i""#);
    assert_eq!(
        (parsed.cache_salt.as_deref(), parsed.stream),
        (Some("salt"), Some(true))
    );
}

#[test]
fn the_prompt_span_reads_the_same_text_as_the_borrowed_view() {
    let body = br#"{"model":"m","prompt":"p","messages":[{"role":"user","content":"h\u00e9"}],"input":"i","instructions":"s","tools":[1],"items":[2]}"#;
    let parsed = RequestBody::parse(body).unwrap();
    for api in [
        Api::Completions,
        Api::Chat,
        Api::Embeddings,
        Api::Conversations,
        Api::Responses,
        Api::Messages,
    ] {
        let span = parsed.prompt_span(api, body);
        assert_eq!(span.text(body), parsed.prefix_text(api), "{api:?}");
    }
    // Fields that are absent read as empty text, as the view reads them.
    let bare = br#"{"model":"m"}"#;
    let parsed = RequestBody::parse(bare).unwrap();
    assert!(parsed.prompt_span(Api::Chat, bare).text(bare).is_empty());
    assert!(
        parsed
            .prompt_span(Api::Responses, bare)
            .text(bare)
            .is_empty()
    );
}

#[test]
fn anthropic_messages_hash_system_tools_and_messages() {
    assert_eq!(Api::from_path("/v1/messages"), Api::Messages);
    assert_eq!(
        Api::from_path("/v1/messages/count_tokens?beta=true"),
        Api::Messages
    );
    assert_eq!(Api::from_path("/v1/chat/completions"), Api::Chat);
    let body = br#"{"model":"claude","max_tokens":64,"system":[{"type":"text","text":"be brief"}],"tools":[{"name":"t"}],"messages":[{"role":"user","content":"hi"}]}"#;
    let parsed = RequestBody::parse(body).unwrap();
    assert_eq!(parsed.model.as_deref(), Some("claude"));
    let text = parsed.prefix_text(Api::Messages);
    assert_eq!(
        &*text,
        br#"[{"type":"text","text":"be brief"}][{"name":"t"}][{"role":"user","content":"hi"}]"#
    );
    assert_eq!(parsed.prompt_span(Api::Messages, body).text(body), text);
}
