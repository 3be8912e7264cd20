//! Extraction benchmark: our validating scanner against serde_json (`Value` tree, and a
//! borrowed one-field struct) on OpenAI-style chat bodies of 1 KiB, 148 KiB and 1 MiB with
//! `model` as the first or the last key, in two styles:
//!
//! - `chat`: a conversation in English prose — paragraphs joined by `\n\n`, bullet lists, a
//!   quoted phrase per paragraph, a non-ASCII character every ~1.5 KiB: about one escape per
//!   80 bytes;
//! - `agent`: a coding agent's context — tool results holding source code, about one escape
//!   (`\n`, `\"`, `\t`) per 20 bytes: the stress case for string scanning.
//!
//! ```sh
//! cargo bench -p switchyard-bbr --bench extract
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::BytesCount;
use serde::Deserialize;
use switchyard_bbr::extract::{Extractor, Model};

// Counts heap allocations per iteration (the `alloc:` rows of the output): the extractor must
// show none for these bodies, whose model name has no escapes.
#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

/// `style/size/position` of every body.
pub const CASES: &[&str] = &[
    "chat/1KiB/first",
    "chat/1KiB/last",
    "chat/148KiB/first",
    "chat/148KiB/last",
    "chat/1MiB/first",
    "chat/1MiB/last",
    "agent/1KiB/last",
    "agent/148KiB/last",
    "agent/1MiB/last",
];

const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";

const SENTENCES: &[&str] = &[
    "The scheduler picks the replica with the shortest queue and the warmest prefix cache.",
    "If the adapter is not loaded yet, the request waits behind a cold start of a few seconds.",
    "We measured throughput at three concurrency levels and saw latency rise after the knee.",
    "Please summarise the trade-offs, and keep the answer short enough to fit on one slide.",
    "Retries are safe only before the first byte of the response has reached the client.",
    "A canary receives five percent of the traffic until its error rate stays under budget.",
    "Tokens per second drop when the batch fills up with long prompts from a single tenant.",
];

const CODE_LINES: &[&str] = &[
    "fn route(req: &Request) -> Result<Pool, Error> {",
    r#"\tlet model = req.header(\"x-model\")?;"#,
    r#"\tif model.is_empty() { return Err(Error::Missing(\"model\")); }"#,
    r#"\tlet pool = POOLS.get(model).ok_or(Error::Unknown)?;"#,
    r#"\tlog::info!(\"routing {} to {}\", model, pool.name);"#,
    r#"\tOk(pool.clone())"#,
    "}",
    r#"#[test] fn t() { assert_eq!(route(&r(\"a\")).unwrap().name, \"pool-a\"); }"#,
];

/// A tiny deterministic generator, so every run benchmarks the same bytes.
struct Lcg(u64);

impl Lcg {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        items[(self.0 >> 33) as usize % items.len()]
    }
}

/// Prose content of about `len` bytes (already JSON-escaped).
fn prose(rng: &mut Lcg, len: usize) -> String {
    let mut out = String::new();
    let mut paragraph = 0;
    while out.len() < len {
        for _ in 0..4 {
            out.push_str(rng.pick(SENTENCES));
            out.push(' ');
        }
        out.push_str(r#"As the runbook says, \"measure before you tune\"."#);
        if paragraph % 3 == 1 {
            out.push_str(
                r#"\n- check the queue depth\n- check the cache hit rate\n- check the adapters"#,
            );
        }
        if paragraph % 4 == 3 {
            out.push_str(" That\u{2019}s all \u{2014} caf\u{e9} closes at five. Merci, Zo\u{eb}!");
        }
        out.push_str(r#"\n\n"#);
        paragraph += 1;
    }
    out
}

/// Source-code content of about `len` bytes (already JSON-escaped).
fn code(rng: &mut Lcg, len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        out.push_str(rng.pick(CODE_LINES));
        out.push_str(r#"\n"#);
    }
    out
}

/// A body of about `size` bytes in the given style.
fn chat_body(style: &str, size: usize, model_first: bool) -> Vec<u8> {
    let mut rng = Lcg(7);
    let mut messages = String::new();
    let overhead = 120;
    let mut i = 0;
    while messages.len() + overhead < size {
        let remaining = size - overhead - messages.len();
        let piece = remaining.clamp(64, 8192);
        let message = match (style, i % 2) {
            ("agent", 1) => format!(
                r#"{{"role":"tool","tool_call_id":"call_{i}","content":"{}"}}"#,
                code(&mut rng, piece)
            ),
            (_, 0) => format!(
                r#"{{"role":"user","content":"{}"}}"#,
                prose(&mut rng, piece.min(600))
            ),
            _ => format!(
                r#"{{"role":"assistant","content":"{}"}}"#,
                prose(&mut rng, piece)
            ),
        };
        if !messages.is_empty() {
            messages.push(',');
        }
        messages.push_str(&message);
        i += 1;
    }
    let body = if model_first {
        format!(r#"{{"model":"{MODEL}","messages":[{messages}],"temperature":0.7,"stream":true}}"#)
    } else {
        format!(r#"{{"messages":[{messages}],"temperature":0.7,"stream":true,"model":"{MODEL}"}}"#)
    };
    body.into_bytes()
}

static BODIES: LazyLock<HashMap<&'static str, Vec<u8>>> = LazyLock::new(|| {
    CASES
        .iter()
        .map(|&case| {
            let mut parts = case.split('/');
            let style = parts.next().unwrap_or("chat");
            let bytes = match parts.next() {
                Some("1KiB") => 1024,
                Some("148KiB") => 148 * 1024,
                _ => 1024 * 1024,
            };
            (case, chat_body(style, bytes, parts.next() == Some("first")))
        })
        .collect()
});

pub fn body(case: &str) -> &'static [u8] {
    let body = BODIES.get(case).map(Vec::as_slice).unwrap_or_default();
    // Every engine must see the same valid body and find the same model.
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(body) {
        let at = e.column().saturating_sub(40);
        panic!(
            "{case}: generated body is invalid: {e}: {:?}",
            String::from_utf8_lossy(&body[at..at + 80])
        );
    }
    assert_eq!(
        Extractor::default().extract(body),
        Ok(Model::String(Cow::Borrowed(MODEL))),
        "{case}"
    );
    body
}

#[divan::bench(args = CASES)]
fn switchyard(bencher: Bencher, case: &str) {
    let body = body(case);
    let extractor = Extractor::default();
    bencher
        .counter(BytesCount::new(body.len()))
        .bench(|| extractor.extract(divan::black_box(body)));
}

#[derive(Deserialize)]
struct OneField<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
}

#[divan::bench(args = CASES)]
fn serde_borrowed_struct(bencher: Bencher, case: &str) {
    let body = body(case);
    bencher.counter(BytesCount::new(body.len())).bench(|| {
        serde_json::from_slice::<OneField<'_>>(divan::black_box(body)).map(|m| m.model.len())
    });
}

#[divan::bench(args = CASES)]
fn serde_value(bencher: Bencher, case: &str) {
    let body = body(case);
    bencher.counter(BytesCount::new(body.len())).bench(|| {
        serde_json::from_slice::<serde_json::Value>(divan::black_box(body))
            .map(|v| v.get("model").and_then(|m| m.as_str()).map(str::len))
    });
}

/// Prints the composition of every body (size, escapes per KiB), for the performance notes.
#[divan::bench]
fn describe_bodies() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for case in CASES {
            let b = body(case);
            let escapes = b.windows(2).filter(|w| w[0] == b'\\').count();
            let non_ascii = b.iter().filter(|&&c| c >= 0x80).count();
            eprintln!(
                "{case}: {} bytes, {:.1} escapes/KiB, {non_ascii} non-ASCII bytes",
                b.len(),
                escapes as f64 * 1024.0 / b.len() as f64
            );
        }
    });
}
