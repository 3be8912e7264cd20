//! Text ⇄ tokens without a tokenizer, and the shape of generated output.
//!
//! The simulator never loads a real tokenizer: a token is **4 bytes of UTF-8 text** (about
//! four characters of English, the usual rule of thumb for BPE vocabularies). Counting is
//! `ceil(bytes / 4)`, and a prompt's token "ids" are its consecutive 4-byte slices, so two
//! prompts that share a text prefix share a token prefix and therefore KV blocks. That is
//! all the prefix cache needs; exact counts matching a real model's tokenizer are not a goal.

use crate::rng::SplitMix64;

/// Bytes of text per simulated token.
pub const BYTES_PER_TOKEN: usize = 4;

/// Token count of `text` under the 4-bytes-per-token rule.
pub fn count_tokens(text: &str) -> u32 {
    u32::try_from(text.len().div_ceil(BYTES_PER_TOKEN)).unwrap_or(u32::MAX)
}

/// Words the random mode strings together. Each is exactly one token long (4 bytes), so the
/// usage numbers a client computes from the text agree with the `usage` block.
const WORDS: [&str; 16] = [
    "the ", "sim ", "kv  ", "pod ", "and ", "gpu ", "log ", "to  ", "of  ", "ok. ", "yes ", "run ",
    "hot ", "new ", "on  ", "it  ",
];

/// Text of the `index`-th generated token of a response in random mode. Deterministic per
/// index, which keeps streaming and non-streaming output of the same length identical.
pub fn random_token_text(index: u32) -> &'static str {
    WORDS[(crate::rng::mix(u64::from(index)) % WORDS.len() as u64) as usize]
}

/// Text of the `index`-th token in echo mode: bytes `[4i, 4i + 4)` of the prompt, with both
/// ends moved forward to a character boundary so consecutive tokens tile the prompt and no
/// multi-byte character is split.
pub fn echo_token_text(prompt: &str, index: u32) -> &str {
    let start = index as usize * BYTES_PER_TOKEN;
    let lo = ceil_char_boundary(prompt, start);
    let hi = ceil_char_boundary(prompt, start + BYTES_PER_TOKEN);
    prompt.get(lo..hi).unwrap_or("")
}

fn ceil_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Whole generated text for `n` tokens (non-streaming responses).
pub fn generate_text(echo_of: Option<&str>, n: u32) -> String {
    let mut out = String::with_capacity(n as usize * BYTES_PER_TOKEN);
    for i in 0..n {
        match echo_of {
            Some(p) => out.push_str(echo_token_text(p, i)),
            None => out.push_str(random_token_text(i)),
        }
    }
    out
}

/// How many tokens a request generates, following llm-d-inference-sim's random mode.
///
/// * `ignore_eos` forces exactly `max_tokens`.
/// * With `max_tokens` = M: six buckets drawn with probabilities 20/30/20/5/10/15 %. For
///   M ≤ 120 the buckets split 1..=M evenly; above that buckets 1, 2, 3, 5 and 6 are 20
///   tokens wide and bucket 4 takes the rest, so most answers are short but 15 % run to
///   within 20 tokens of the limit.
/// * Without `max_tokens`: Gaussian with mean 40 and deviation 20, at least 1.
pub fn sample_output_len(rng: &mut SplitMix64, max_tokens: Option<u32>, ignore_eos: bool) -> u32 {
    let Some(m) = max_tokens else {
        return rng.normal(40.0, 20.0).round().max(1.0) as u32;
    };
    let m = m.max(1);
    if ignore_eos || m <= 6 {
        return m;
    }
    const WEIGHTS: [f64; 6] = [0.20, 0.30, 0.20, 0.05, 0.10, 0.15];
    let mut u = rng.next_f64();
    let mut bucket = WEIGHTS.len() - 1;
    for (i, w) in WEIGHTS.iter().enumerate() {
        if u < *w {
            bucket = i;
            break;
        }
        u -= w;
    }
    let (lo, hi) = bucket_bounds(m, bucket);
    rng.range(u64::from(lo), u64::from(hi)) as u32
}

/// Inclusive token range of output-length bucket `b` (0-based) for limit `m` > 6.
fn bucket_bounds(m: u32, b: usize) -> (u32, u32) {
    if m <= 120 {
        let b = b as u32;
        let lo = b * m / 6 + 1;
        let hi = (b + 1) * m / 6;
        return (lo, hi.max(lo));
    }
    match b {
        0 => (1, 20),
        1 => (21, 40),
        2 => (41, 60),
        3 => (61, m - 40),
        4 => (m - 39, m - 20),
        _ => (m - 19, m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_bytes_per_token() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("abcd"), 1);
        assert_eq!(count_tokens("abcde"), 2);
        assert_eq!(count_tokens(&"x".repeat(4000)), 1000);
    }

    #[test]
    fn generated_words_are_one_token_each() {
        let text = generate_text(None, 25);
        assert_eq!(count_tokens(&text), 25);
        assert_eq!(generate_text(Some("hello world!"), 3), "hello world!");
        assert_eq!(echo_token_text("héllo", 0), "hél");
    }

    #[test]
    fn output_length_buckets() {
        let mut rng = SplitMix64::new(3);
        assert_eq!(sample_output_len(&mut rng, Some(500), true), 500);
        let draws: Vec<u32> = (0..10_000)
            .map(|_| sample_output_len(&mut rng, Some(1000), false))
            .collect();
        assert!(draws.iter().all(|&n| (1..=1000).contains(&n)));
        let short = draws.iter().filter(|&&n| n <= 60).count() as f64 / 1e4;
        let near_max = draws.iter().filter(|&&n| n > 980).count() as f64 / 1e4;
        assert!((short - 0.70).abs() < 0.03, "short {short}");
        assert!((near_max - 0.15).abs() < 0.02, "near max {near_max}");
        let free: Vec<u32> = (0..1000)
            .map(|_| sample_output_len(&mut rng, None, false))
            .collect();
        let mean = free.iter().map(|&n| f64::from(n)).sum::<f64>() / 1000.0;
        assert!((35.0..46.0).contains(&mean), "mean {mean}");
    }
}
