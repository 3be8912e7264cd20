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
/// colon) in a whole response body by `"model":"<to>"`, so clients see the model
/// they asked for. Returns `None` when nothing matched (forward as is).
pub fn restore_model(body: &[u8], from: &str, to: &str) -> Option<Vec<u8>> {
    ModelRestorer::new(from, to).restore(body)
}

/// Puts the client's model name back into a response that names the target model.
///
/// Both names are matched and written JSON-encoded, so a name holding quotes or
/// backslashes neither breaks the response JSON nor escapes its string (review finding L5).
/// Fed a streamed body chunk by chunk, it holds back a chunk's tail that could be the start
/// of a split `"model":"<from>"` and completes it with the next chunk, so a name split
/// across chunks is still restored; only such a partial match (never a whole SSE event) is
/// delayed.
#[derive(Debug)]
pub struct ModelRestorer {
    /// Without and with a space after the colon.
    pairs: [Substitution; 2],
    /// A chunk tail held back because it may start a needle.
    carry: Vec<u8>,
}

/// `(needle, replacement)`: `"model":"<from>"` and `"model":"<to>"`, JSON-encoded.
type Substitution = (Vec<u8>, Vec<u8>);

impl ModelRestorer {
    /// A restorer writing `to` where the response says `from`.
    pub fn new(from: &str, to: &str) -> Self {
        // Encoding a `&str` as JSON cannot fail.
        let encode = |name: &str| serde_json::to_vec(name).unwrap_or_default();
        let (from, to) = (encode(from), encode(to));
        let pair = |key: &[u8]| ([key, &from].concat(), [key, &to].concat());
        Self {
            pairs: [pair(b"\"model\":"), pair(b"\"model\": ")],
            carry: Vec::new(),
        }
    }

    /// The whole body with every occurrence replaced; `None` when nothing matched.
    pub fn restore(&self, body: &[u8]) -> Option<Vec<u8>> {
        let (out, matched, _) = self.replace(body, true);
        matched.then_some(out)
    }

    /// The bytes of a streamed chunk to forward now: the held-back tail of the previous
    /// chunk and this one, replaced, minus a new tail that may start a needle (none once
    /// `end` is set).
    pub fn feed(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        let data = if self.carry.is_empty() {
            std::borrow::Cow::Borrowed(chunk)
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(chunk);
            std::borrow::Cow::Owned(joined)
        };
        let (out, _, cut) = self.replace(&data, end);
        if let Some(tail) = data.get(cut..) {
            self.carry = tail.to_vec();
        }
        out
    }

    /// Replaces every needle in `data`; unless `end`, stops before a trailing partial
    /// needle. Returns the output, whether anything matched, and where the output stopped.
    fn replace(&self, data: &[u8], end: bool) -> (Vec<u8>, bool, usize) {
        let mut out = Vec::with_capacity(data.len());
        let mut copied = 0;
        let mut matched = false;
        while let Some((at, (needle, replacement))) = self.next_match(data, copied) {
            out.extend_from_slice(data.get(copied..at).unwrap_or_default());
            out.extend_from_slice(replacement);
            copied = at + needle.len();
            matched = true;
        }
        let rest = data.get(copied..).unwrap_or_default();
        let cut = if end {
            data.len()
        } else {
            data.len() - self.partial_tail(rest)
        };
        out.extend_from_slice(data.get(copied..cut).unwrap_or_default());
        (out, matched, cut)
    }

    /// The earliest needle at or after `from`.
    fn next_match(&self, data: &[u8], from: usize) -> Option<(usize, &Substitution)> {
        let rest = data.get(from..)?;
        self.pairs
            .iter()
            .filter_map(|pair| find(rest, &pair.0).map(|at| (from + at, pair)))
            .min_by_key(|(at, _)| *at)
    }

    /// The length of the longest tail of `rest` that is a proper prefix of a needle.
    fn partial_tail(&self, rest: &[u8]) -> usize {
        let longest = self.pairs.iter().map(|p| p.0.len()).max().unwrap_or(0);
        (1..longest.min(rest.len() + 1))
            .rev()
            .find(|&len| {
                let tail = rest.get(rest.len() - len..).unwrap_or_default();
                self.pairs
                    .iter()
                    .any(|(needle, _)| needle.starts_with(tail))
            })
            .unwrap_or(0)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
