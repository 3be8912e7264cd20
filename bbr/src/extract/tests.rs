//! Unit tests: one per accepted shape and per rejection class.

use std::borrow::Cow;

use super::*;

fn extract(body: &str) -> Result<Model<'_>, ExtractError> {
    Extractor::default().extract(body.as_bytes())
}

fn model(body: &str) -> Cow<'_, str> {
    match extract(body) {
        Ok(Model::String(m)) => m,
        other => panic!("{body:?}: expected a model string, got {other:?}"),
    }
}

fn kind(body: &[u8]) -> ExtractErrorKind {
    match Extractor::default().extract(body) {
        Err(e) => e.kind(),
        Ok(m) => panic!(
            "{:?}: expected rejection, got {m:?}",
            String::from_utf8_lossy(body)
        ),
    }
}

// === accepted ===

#[test]
fn finds_model_first_last_and_alone() {
    assert_eq!(model(r#"{"model":"a"}"#), "a");
    assert_eq!(model(r#"{"model":"a","messages":[]}"#), "a");
    assert_eq!(model(r#"{"messages":[{"role":"user"}],"model":"b"}"#), "b");
}

#[test]
fn borrows_unescaped_names_and_decodes_escaped_ones() {
    assert!(matches!(
        model(r#"{"model":"llama-3"}"#),
        Cow::Borrowed("llama-3")
    ));
    let decoded = model(r#"{"model":"a\/b\u00e9\ud83d\ude00\n"}"#);
    assert!(matches!(decoded, Cow::Owned(_)));
    assert_eq!(decoded, "a/b\u{e9}\u{1F600}\n");
}

#[test]
fn escaped_key_is_model() {
    assert_eq!(model(r#"{"mod\u0065l":"x"}"#), "x");
    assert_eq!(model(r#"{"\u006d\u006F\u0064\u0065\u006c":"y"}"#), "y");
    // A key that only starts like model is not model.
    assert_eq!(extract(r#"{"mod\u0065ls":"x"}"#), Ok(Model::Missing));
    assert_eq!(extract(r#"{"mode":"x"}"#), Ok(Model::Missing));
    assert_eq!(extract(r#"{"Model":"x"}"#), Ok(Model::Missing));
}

#[test]
fn nested_and_quoted_decoys_are_not_the_model() {
    let body = r#"{"messages":[{"role":"user","content":"\"model\":\"evil\"","model":"evil"}],
        "tools":[{"function":{"parameters":{"model":{"type":"string"}}}}],
        "metadata":{"model":"evil"},"model":"good"}"#;
    assert_eq!(model(body), "good");
    let no_top = r#"{"messages":[{"model":"evil"}],"text":"{\"model\":\"evil\"}"}"#;
    assert_eq!(extract(no_top), Ok(Model::Missing));
}

#[test]
fn whitespace_everywhere_is_fine() {
    assert_eq!(
        model(" \t\r\n{ \n\"model\" \t: \r\"m\" ,\"x\" : [ 1 , { } ] } \n"),
        "m"
    );
}

#[test]
fn missing_and_non_string_models() {
    assert_eq!(extract("{}"), Ok(Model::Missing));
    assert_eq!(
        extract(r#"{"model":""}"#),
        Ok(Model::String(Cow::Borrowed("")))
    );
    for (body, k) in [
        (r#"{"model":5}"#, JsonKind::Number),
        (r#"{"model":-0.5e+3}"#, JsonKind::Number),
        (r#"{"model":null}"#, JsonKind::Null),
        (r#"{"model":true}"#, JsonKind::Bool),
        (r#"{"model":false}"#, JsonKind::Bool),
        (r#"{"model":["a"]}"#, JsonKind::Array),
        (r#"{"model":{"name":"a"}}"#, JsonKind::Object),
        (r#"{"model":[]}"#, JsonKind::Array),
        (r#"{"model":{}}"#, JsonKind::Object),
    ] {
        assert_eq!(extract(body), Ok(Model::NotString(k)), "{body}");
    }
}

#[test]
fn all_value_kinds_validate() {
    let body = r#"{"a":[0,-0,1.5,-2e10,3E-2,4e+0,10,1234567890123456789012345678901234567890,
        true,false,null,"",{},[],[[]],{"k":{"k":[1,{"z":null}]}}],"model":"m","b":"\u0000\u001f\u007f"}"#;
    assert_eq!(model(body), "m");
}

#[test]
fn non_ascii_content_is_validated_and_kept() {
    assert_eq!(model("{\"model\":\"modèle-日本-😀\"}"), "modèle-日本-😀");
    let long = format!(
        "{{\"content\":\"{}\",\"model\":\"m\"}}",
        "日本語".repeat(100)
    );
    assert_eq!(model(&long), "m");
    // DEL (0x7f) and U+2028 are valid unescaped.
    assert_eq!(model("{\"model\":\"a\u{7f}\u{2028}\"}"), "a\u{7f}\u{2028}");
}

#[test]
fn depth_limit_counts_the_top_level_object() {
    let nested = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
    let e = Extractor::with_max_depth(3).unwrap();
    assert_eq!(e.extract(nested(3).as_bytes()), Ok(Model::Missing));
    let err = e.extract(nested(4).as_bytes()).unwrap_err();
    assert_eq!(err.kind(), ExtractErrorKind::TooDeep { limit: 3 });
    assert!(Extractor::default().extract(nested(128).as_bytes()).is_ok());
    assert!(
        Extractor::default()
            .extract(nested(129).as_bytes())
            .is_err()
    );
}

#[test]
fn hostile_depth_is_rejected_without_recursion() {
    let deep = "[".repeat(1_000_000);
    let body = format!("{{\"a\":{deep}");
    assert!(matches!(
        kind(body.as_bytes()),
        ExtractErrorKind::TooDeep { limit: 128 }
    ));
    let e = Extractor::with_max_depth(MAX_DEPTH_LIMIT).unwrap();
    assert!(matches!(
        e.extract(body.as_bytes()).unwrap_err().kind(),
        ExtractErrorKind::TooDeep {
            limit: MAX_DEPTH_LIMIT
        }
    ));
    let ok = format!("{{\"a\":{}{}}}", "[".repeat(1023), "]".repeat(1023));
    assert_eq!(e.extract(ok.as_bytes()), Ok(Model::Missing));
}

#[test]
fn depth_limit_configuration_is_checked() {
    assert!(Extractor::with_max_depth(0).is_err());
    assert!(Extractor::with_max_depth(MAX_DEPTH_LIMIT + 1).is_err());
    assert_eq!(Extractor::with_max_depth(7).unwrap().max_depth(), 7);
    let msg = Extractor::with_max_depth(0).unwrap_err().to_string();
    assert!(msg.contains("from 1 to 1024"), "{msg}");
}

// === rejected ===

#[test]
fn empty_and_blank_bodies() {
    assert_eq!(kind(b""), ExtractErrorKind::Empty);
    assert_eq!(kind(b" \n\t\r"), ExtractErrorKind::Empty);
}

#[test]
fn byte_order_mark_is_rejected() {
    assert_eq!(
        kind(b"\xEF\xBB\xBF{\"model\":\"m\"}"),
        ExtractErrorKind::ByteOrderMark
    );
    let msg = Extractor::default()
        .extract(b"\xEF\xBB\xBF{}")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("byte order mark"), "{msg}");
}

#[test]
fn non_object_top_levels() {
    for (body, k) in [
        (r#"["model","m"]"#, JsonKind::Array),
        (r#""model""#, JsonKind::String),
        ("42", JsonKind::Number),
        ("true", JsonKind::Bool),
        ("null", JsonKind::Null),
        (" [] ", JsonKind::Array),
    ] {
        assert_eq!(
            kind(body.as_bytes()),
            ExtractErrorKind::NotAnObject(k),
            "{body}"
        );
    }
    // Malformed non-objects get the precise syntax error instead.
    assert!(matches!(
        kind(b"[1,"),
        ExtractErrorKind::UnexpectedEnd { .. }
    ));
    assert_eq!(kind(b"[] []"), ExtractErrorKind::TrailingCharacters);
}

#[test]
fn duplicate_top_level_model_is_rejected_but_nested_duplicates_are_not() {
    let err = Extractor::default()
        .extract(br#"{"model":"a","x":1,"model":"b"}"#)
        .unwrap_err();
    assert_eq!(err.kind(), ExtractErrorKind::DuplicateModel);
    assert_eq!(err.offset(), 19);
    assert_eq!(
        kind(br#"{"model":1,"mod\u0065l":"b"}"#),
        ExtractErrorKind::DuplicateModel
    );
    assert_eq!(
        model(r#"{"x":{"model":1,"model":2},"model":"a","x":3}"#),
        "a"
    );
}

#[test]
fn syntax_errors() {
    let cases: &[&[u8]] = &[
        b"{",
        b"{\"model\"",
        b"{\"model\":",
        b"{\"model\":\"m\"",
        b"{\"model\":\"m\",}",
        b"{\"model\" \"m\"}",
        b"{,}",
        b"{model:\"m\"}",
        b"{'model':'m'}",
        b"{\"a\":[1,]}",
        b"{\"a\":[1 2]}",
        b"{\"a\":[}",
        b"{\"a\":{]}",
        b"{\"a\":{\"b\"}}",
        b"{\"a\":{\"b\":1,}}",
        b"{\"a\":tru}",
        b"{\"a\":True}",
        b"{\"a\":nul}",
        b"{\"a\":NaN}",
        b"{\"a\":Infinity}",
        b"{\"a\":undefined}",
        b"{\"a\":01}",
        b"{\"a\":-}",
        b"{\"a\":+1}",
        b"{\"a\":1.}",
        b"{\"a\":.5}",
        b"{\"a\":1e}",
        b"{\"a\":1e+}",
        b"{\"a\":0x10}",
        b"{\"a\":1}}",
        b"{\"a\":1} x",
        b"{} {}",
        b"{\"a\":\"\\x41\"}",
        b"{\"a\":\"\\'\"}",
        b"{\"a\":\"\\u12\"}",
        b"{\"a\":\"\\u12G4\"}",
        b"{\"a\":\"\\",
        b"{\"a\":\"\\u00",
        b"{\"a\":\"unterminated",
        b"{\"a\"\x00:1}",
        b"{\"a\":1\x0c}",
        b"{\"a\":1}\x00",
        b"\x00{}",
        b"{/*c*/}",
        b"{\"model\":\"m\"}\n//",
    ];
    for &body in cases {
        let err = Extractor::default()
            .extract(body)
            .expect_err(&String::from_utf8_lossy(body));
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn control_characters_in_strings() {
    for c in 0u8..0x20 {
        let body = [b"{\"model\":\"a".as_slice(), &[c], b"\"}"].concat();
        assert_eq!(
            kind(&body),
            ExtractErrorKind::ControlCharacter(c),
            "0x{c:02x}"
        );
        let key = [b"{\"k".as_slice(), &[c], b"\":1}"].concat();
        assert_eq!(kind(&key), ExtractErrorKind::ControlCharacter(c));
    }
}

#[test]
fn lone_surrogates_are_rejected_in_values_keys_and_skipped_strings() {
    for s in [
        r#"{"model":"\ud800"}"#,
        r#"{"model":"\udc00"}"#,
        r#"{"model":"\ud800x"}"#,
        r#"{"model":"\ud800\n"}"#,
        r#"{"model":"\ud800\ud800"}"#,
        r#"{"model":"\ude00\ud83d"}"#,
        r#"{"\ud800":1}"#,
        r#"{"messages":["\udfff"]}"#,
        r#"{"a":"\uDBFF\u0041"}"#,
    ] {
        assert_eq!(kind(s.as_bytes()), ExtractErrorKind::LoneSurrogate, "{s}");
    }
    assert!(matches!(
        kind(br#"{"a":"\ud800\u12"}"#),
        ExtractErrorKind::InvalidUnicodeEscape
    ));
}

#[test]
fn invalid_utf8_anywhere_is_rejected() {
    let cases: &[&[u8]] = &[
        b"{\"model\":\"\xff\"}",
        b"{\"model\":\"\xc3\"}",
        b"{\"model\":\"\xe6\x97\"}",
        b"{\"model\":\"\xed\xa0\x80\"}", // UTF-8-encoded surrogate
        b"{\"model\":\"\xc0\xaf\"}",     // overlong
        b"{\"model\":\"\xf4\x90\x80\x80\"}", // above U+10FFFF
        b"{\"\xff\":1}",
    ];
    for &body in cases {
        assert_eq!(kind(body), ExtractErrorKind::InvalidUtf8, "{body:?}");
    }
    // Outside strings a high byte is plain bad syntax.
    assert!(matches!(
        kind(b"{\xff}"),
        ExtractErrorKind::UnexpectedByte { found: 0xff, .. }
    ));
    // Long strings take the vector path: the error offset is still exact.
    let mut long = b"{\"a\":\"".to_vec();
    long.extend(std::iter::repeat_n(b'x', 100));
    long.push(0xfe);
    long.extend(std::iter::repeat_n(b'y', 100));
    long.extend_from_slice(b"\"}");
    let err = Extractor::default().extract(&long).unwrap_err();
    assert_eq!(
        (err.kind(), err.offset()),
        (ExtractErrorKind::InvalidUtf8, 106)
    );
}

#[test]
fn error_messages_point_at_the_problem() {
    let err = Extractor::default()
        .extract(br#"{"model" "m"}"#)
        .unwrap_err();
    assert_eq!(err.offset(), 9);
    assert_eq!(
        err.to_string(),
        "request body is not valid JSON: expected ':' after an object key at byte 9, found '\"'"
    );
    let err = Extractor::default()
        .extract(br#"{"model":"m""#)
        .unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    let err = Extractor::default().extract(b"[1]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "request body is an array, not a JSON object: send an object such as {\"model\":\"<name>\",…}"
    );
    assert_eq!(err.label(), "not_an_object");
}

#[test]
fn strings_at_vector_boundaries() {
    for len in 0..80 {
        let name = "m".repeat(len);
        let body = format!(
            "{{\"{}\":\"{}\",\"model\":\"{name}\"}}",
            "k".repeat(len),
            "v".repeat(len)
        );
        assert_eq!(model(&body), name.as_str());
        let escaped = format!(
            "{{\"model\":\"{}\\\"{}\"}}",
            "a".repeat(len),
            "b".repeat(len)
        );
        assert_eq!(
            model(&escaped),
            format!("{}\"{}", "a".repeat(len), "b".repeat(len))
        );
    }
}
