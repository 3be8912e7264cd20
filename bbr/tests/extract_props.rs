//! Property tests: on generated JSON — random nesting, escapes (keys too), unicode,
//! whitespace, `model` present or not, nested decoys, duplicate keys — and on mutations of it,
//! the extractor agrees with serde_json about the top-level `model` or about rejection.
//!
//! Case counts are proptest's default (256), overridable with `PROPTEST_CASES`.

mod common;

use common::oracle::{Verdict, assert_agrees, our_verdict, serde_verdict};
use proptest::prelude::*;
use proptest::sample::select;

// === rendering pieces ===

fn ws() -> impl Strategy<Value = &'static str> {
    select(vec!["", "", "", "", " ", "\n", "\t", "\r\n  ", "  "])
}

/// One character of a string, and how to write it (0 = raw when allowed, 1 = `\u` form,
/// 2 = short escape when one exists, 3 = uppercase `\u` form).
fn string_char() -> impl Strategy<Value = (char, u8)> {
    let ch = prop_oneof![
        6 => prop::char::range('a', 'z'),
        2 => select(vec!['"', '\\', '/', '\n', '\t', '\u{0}', '\u{1f}', '\u{7f}', ' ', ':', ',', '{', '}', '[', ']']),
        1 => prop::char::range('\u{80}', '\u{7ff}'),
        1 => prop::char::range('\u{800}', '\u{ffff}'), // char ranges skip surrogates
        1 => prop::char::range('\u{10000}', '\u{10ffff}'),
        1 => any::<char>(),
    ];
    (ch, 0u8..4)
}

fn push_unicode_escape(out: &mut String, c: char, upper: bool) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        if upper {
            out.push_str(&format!("\\u{unit:04X}"));
        } else {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
}

fn render_chars(chars: &[(char, u8)]) -> String {
    let mut out = String::from("\"");
    for &(c, style) in chars {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let must_escape = c == '"' || c == '\\' || c < ' ';
        match (style, short) {
            (0, _) if !must_escape => out.push(c),
            (2, Some(s)) => out.push_str(s),
            (0, Some(s)) if must_escape => out.push_str(s),
            (3, _) => push_unicode_escape(&mut out, c, true),
            _ => push_unicode_escape(&mut out, c, false),
        }
    }
    out.push('"');
    out
}

fn json_string() -> impl Strategy<Value = String> {
    prop::collection::vec(string_char(), 0..12).prop_map(|chars| render_chars(&chars))
}

/// A key: often one of the interesting names, written with random escapes.
fn key() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        3 => select(vec!["model", "mode", "models", "Model", "mod", "messages", "content", "role"])
            .prop_map(|s| s.chars().collect::<Vec<_>>()),
        1 => prop::collection::vec(prop::char::range('a', 'z'), 0..6),
    ];
    (name, prop::collection::vec(0u8..4, 8)).prop_map(|(chars, styles)| {
        let styled: Vec<_> = chars
            .iter()
            .zip(styles.iter().cycle())
            // Mostly raw, so that plain "model" keys are common.
            .map(|(&c, &s)| (c, if s == 1 { 1 } else { 0 }))
            .collect();
        render_chars(&styled)
    })
}

fn number() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop_oneof![
            Just("0".to_string()),
            (1u64..u64::MAX).prop_map(|n| n.to_string())
        ],
        prop::option::of(0u32..1_000_000),
        prop::option::of((
            select(vec!["e", "E"]),
            select(vec!["", "+", "-"]),
            0u32..400,
        )),
    )
        .prop_map(|(neg, int, frac, exp)| {
            let mut s = String::new();
            if neg {
                s.push('-');
            }
            s.push_str(&int);
            if let Some(f) = frac {
                s.push_str(&format!(".{f}"));
            }
            if let Some((e, sign, x)) = exp {
                s.push_str(&format!("{e}{sign}{x}"));
            }
            s
        })
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => json_string(),
        2 => number(),
        1 => select(vec!["true", "false", "null"]).prop_map(str::to_string),
    ];
    leaf.prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..5).prop_map(|items| {
                let parts: Vec<String> = items
                    .into_iter()
                    .map(|(a, v, b)| format!("{a}{v}{b}"))
                    .collect();
                format!("[{}]", parts.join(","))
            }),
            prop::collection::vec((ws(), key(), ws(), ws(), inner, ws()), 0..5).prop_map(
                |members| {
                    let parts: Vec<String> = members
                        .into_iter()
                        .map(|(a, k, b, c, v, d)| format!("{a}{k}{b}:{c}{v}{d}"))
                        .collect();
                    format!("{{{}}}", parts.join(","))
                }
            ),
        ]
    })
}

/// A top-level object: members with random keys (duplicates included), sometimes an explicit
/// string `model`, nested decoys via `value()`.
fn document() -> impl Strategy<Value = String> {
    let member = prop_oneof![
        3 => (key(), value()),
        1 => (Just("\"model\"".to_string()), json_string()),
    ];
    (
        ws(),
        prop::collection::vec((ws(), member, ws(), ws()), 0..6),
        ws(),
    )
        .prop_map(|(lead, members, trail)| {
            let parts: Vec<String> = members
                .into_iter()
                .map(|(a, (k, v), b, c)| format!("{a}{k}{b}:{c}{v}"))
                .collect();
            format!("{lead}{{{}}}{trail}", parts.join(","))
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        select(b"\"\\{}[]:,0-.eE tfn\xff\xc3\x80\x00u".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Replace(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(doc: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = doc.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Delete(i) if len > 0 => {
                bytes.remove(i % len);
            }
            Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
            Mutation::Replace(i, b) if len > 0 => bytes[i % len] = b,
            Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
            _ => {}
        }
    }
    bytes
}

proptest! {
    #[test]
    fn agrees_with_serde_on_generated_documents(doc in document()) {
        assert_agrees(doc.as_bytes());
        // Generated documents are valid unless a duplicate model or a huge exponent crept in.
        let verdict = serde_verdict(doc.as_bytes());
        if verdict != Verdict::Reject && verdict != Verdict::Skip {
            prop_assert_ne!(our_verdict(doc.as_bytes()), Verdict::Reject);
        }
    }

    #[test]
    fn agrees_with_serde_on_mutated_documents(
        doc in document(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        assert_agrees(&apply(&doc, &mutations));
    }

    #[test]
    fn agrees_with_serde_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        assert_agrees(&bytes);
    }

    #[test]
    fn agrees_on_top_level_values_of_every_kind(v in value(), lead in ws(), trail in ws()) {
        assert_agrees(format!("{lead}{v}{trail}").as_bytes());
    }
}

#[test]
fn generated_documents_exercise_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut strings, mut missing, mut other, mut escaped_keys) = (0, 0, 0, 0);
    let strategy = document();
    for _ in 0..400 {
        let doc = strategy.new_tree(&mut runner).unwrap().current();
        match our_verdict(doc.as_bytes()) {
            Verdict::String(_) => strings += 1,
            Verdict::Missing => missing += 1,
            _ => other += 1,
        }
        if doc.contains("\\u006") {
            escaped_keys += 1;
        }
    }
    assert!(
        strings > 20 && missing > 20 && other > 5,
        "{strings} {missing} {other}"
    );
    assert!(escaped_keys > 5, "{escaped_keys}");
}
