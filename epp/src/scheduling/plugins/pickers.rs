//! The picker plugins: how the scored candidates are ordered into the
//! destination list.

use rand::RngExt;

/// How the picker orders candidates by score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PickerKind {
    /// `max-score-picker`: highest total first, ties in random order.
    #[default]
    MaxScore,
    /// `random-picker`: uniform, ignoring scores.
    Random,
    /// `weighted-random-picker`: A-Res sampling by score (uniform if all 0).
    WeightedRandom,
}

/// A picker and how many endpoints it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Picker {
    /// The ordering.
    pub kind: PickerKind,
    /// `maxNumOfEndpoints`: the length of the fallback list.
    pub max_endpoints: usize,
}

impl Default for Picker {
    fn default() -> Self {
        Self {
            kind: PickerKind::MaxScore,
            max_endpoints: 1,
        }
    }
}

impl Picker {
    /// Puts the best `count` positions (into `scores`) first in `order`,
    /// best first. Every kind draws a random key per candidate, so equal
    /// scores are broken at random. Only the top `count` are sorted: a
    /// selection pass is O(n), which matters with 1,000 endpoints.
    pub fn order(&self, scores: &[f64], keys: &mut [f64], order: &mut [usize], count: usize) {
        let mut rng = rand::rng();
        let all_zero = scores.iter().all(|s| *s <= 0.0);
        for (key, &score) in keys.iter_mut().zip(scores) {
            let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            *key = match self.kind {
                // Score first; `u` (below any score step that matters, since
                // scores are sums of weighted [0, 1] terms) orders ties only.
                PickerKind::MaxScore => score + u * TIE_BREAK_SCALE,
                PickerKind::Random => u,
                PickerKind::WeightedRandom if all_zero => u,
                // A-Res: key = u^(1/w); larger keys win. Zero weight sorts last.
                PickerKind::WeightedRandom if score > 0.0 => u.powf(1.0 / score),
                PickerKind::WeightedRandom => -1.0 + u * f64::EPSILON,
            };
        }
        let best_first = |a: &usize, b: &usize| keys[*b].total_cmp(&keys[*a]);
        let count = count.min(order.len());
        if count == 0 {
            return;
        }
        if count < order.len() {
            order.select_nth_unstable_by(count - 1, best_first);
        }
        order[..count].sort_unstable_by(best_first);
    }
}

/// The random tie-break added to max-score keys: far below the smallest
/// score difference that should decide a pick (scores are weighted sums of
/// values in [0, 1]; 1e-9 is a billionth of a full scorer step), so it only
/// orders (near-)equal totals.
const TIE_BREAK_SCALE: f64 = 1e-9;
