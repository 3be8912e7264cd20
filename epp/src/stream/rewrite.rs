//! Model rewriting (InferenceModelRewrite, docs/upstream.md#apis) and the reverse
//! substitution of the model name in responses.

use rand::RngExt;
use switchyard_api::InferenceModelRewriteSpec;
use xxhash_rust::xxh3::xxh3_64;

/// The model to serve `model` as, by the rewrite rules of `rewrites`
/// (oldest object first): an exact match beats a catch-all rule, then the
/// oldest object, then list order. Within the rule a target is drawn by
/// weight (uniformly when no weights are set or all are 0). `None`: no rule
/// applies.
///
/// With a `session` key (the value of `--model-rewrite-session-header`) the
/// draw is a hash of the key instead of a random number, so every request of
/// one session is served by the same target for as long as the rule's
/// targets and weights stay the same; the split across many sessions still
/// follows the weights.
pub fn rewrite_target<'r>(
    rewrites: &'r [std::sync::Arc<InferenceModelRewriteSpec>],
    model: &str,
    session: Option<&[u8]>,
) -> Option<&'r str> {
    let rules = rewrites.iter().flat_map(|r| r.rules.iter());
    let rule = rules
        .clone()
        .find(|rule| !rule.is_catch_all() && rule.matches_model(model))
        .or_else(|| rules.clone().find(|rule| rule.is_catch_all()))?;
    let targets = &rule.targets;
    let weight =
        |t: &switchyard_api::TargetModel| u64::try_from(t.weight.unwrap_or(0).max(0)).unwrap_or(0);
    let total: u64 = targets.iter().map(weight).sum();
    let draw_below = |bound: u64| match session {
        // Multiply-shift maps the 64-bit hash onto 0..bound without the bias
        // of a modulo.
        Some(key) => {
            let scaled = u128::from(xxh3_64(key)) * u128::from(bound);
            u64::try_from(scaled >> 64).unwrap_or(0)
        }
        None => rand::rng().random_range(0..bound),
    };
    let chosen = if total == 0 {
        let len = u64::try_from(targets.len().max(1)).unwrap_or(u64::MAX);
        targets.get(usize::try_from(draw_below(len)).unwrap_or(0))
    } else {
        let mut draw = draw_below(total);
        targets.iter().find(|t| {
            let w = weight(t);
            if draw < w {
                true
            } else {
                draw -= w;
                false
            }
        })
    };
    chosen.map(|t| t.model_rewrite.as_str())
}

/// Replaces every `"model":"<from>"` (with or without a space after the
/// colon) in a response chunk by `"model":"<to>"`, so clients see the model
/// they asked for. Returns `None` when nothing matched (forward as is).
pub fn restore_model(chunk: &[u8], from: &str, to: &str) -> Option<Vec<u8>> {
    let pairs = [
        (
            format!("\"model\":\"{from}\""),
            format!("\"model\":\"{to}\""),
        ),
        (
            format!("\"model\": \"{from}\""),
            format!("\"model\": \"{to}\""),
        ),
    ];
    let mut out: Option<Vec<u8>> = None;
    for (needle, replacement) in &pairs {
        let haystack = out.as_deref().unwrap_or(chunk);
        if find(haystack, needle.as_bytes()).is_none() {
            continue;
        }
        let mut result = Vec::with_capacity(haystack.len());
        let mut rest = haystack;
        while let Some(at) = find(rest, needle.as_bytes()) {
            result.extend_from_slice(&rest[..at]);
            result.extend_from_slice(replacement.as_bytes());
            rest = &rest[at + needle.len()..];
        }
        result.extend_from_slice(rest);
        out = Some(result);
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
