//! Usage limits: how full the pool may be before a priority band stops
//! dispatching (upstream's `UsageLimitPolicy`,
//! docs/upstream.md#priority-flow-control-and-saturation). Pure functions.
//!
//! Each band gets a *ceiling* in [0, 1]; the band dispatches only while the
//! detector's saturation is below it. Ceilings never rise as priority falls,
//! so a band that may not dispatch blocks every band below it as well: the
//! dispatch order stays strict (no priority inversion) while lower bands stop
//! earlier, and the capacity between their ceiling and 1.0 stays free for the
//! bands above. That reserved headroom is what keeps the most important
//! traffic from waiting for a slot under overload.
//!
//! With the default (`static-usage-limit-policy`, threshold 1.0) every band
//! stops at saturation 1.0, which is upstream's strict head-of-line gate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Upstream's default: every band may fill the pool.
pub const DEFAULT_THRESHOLD: f64 = 1.0;

/// The configured usage limit policy.
#[derive(Clone, Debug, PartialEq)]
pub enum UsageLimitPolicy {
    /// `static-usage-limit-policy`: one ceiling for every band.
    Static {
        /// `threshold`, in (0, 1].
        threshold: f64,
    },
    /// `priority-holdback-policy` with `domain: rank` or `domain: value`:
    /// the highest active priority gets `max_ceiling`, the lowest
    /// `min_ceiling`, and the others are spaced between them evenly by rank
    /// or in proportion to their priority value.
    Spread {
        /// `domain: value` (otherwise `rank`).
        by_value: bool,
        /// `minCeiling`, in [0, 1).
        min_ceiling: f64,
        /// `maxCeiling`, in (0, 1], above `min_ceiling`.
        max_ceiling: f64,
    },
    /// `priority-holdback-policy` with `domain: explicit`: a ceiling per
    /// priority, non-increasing as priority falls. A priority not listed
    /// takes the ceiling of the nearest listed priority below it (or of the
    /// lowest listed one when it is below them all), which keeps the order.
    Explicit(BTreeMap<i64, f64>),
}

impl Default for UsageLimitPolicy {
    fn default() -> Self {
        Self::Static {
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

/// Where one priority sits among the active priority levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Levels {
    /// Active levels, the priority in question included.
    pub count: usize,
    /// Active levels above it (0 for the highest).
    pub above: usize,
    /// The lowest active priority.
    pub lowest: i64,
    /// The highest active priority.
    pub highest: i64,
}

impl UsageLimitPolicy {
    /// The ceiling of `priority`, which sits at `levels()` among the active
    /// priorities (computed only for the spreads, which need it). Always in
    /// [0, 1].
    pub fn ceiling(&self, priority: i64, levels: impl FnOnce() -> Levels) -> f64 {
        let levels = match self {
            Self::Spread { .. } => levels(),
            Self::Static { .. } | Self::Explicit(_) => Levels {
                count: 1,
                above: 0,
                lowest: priority,
                highest: priority,
            },
        };
        let ceiling = match self {
            Self::Static { threshold } => *threshold,
            // A single active level is never held back (upstream's bypass):
            // there is nothing above it to reserve room for.
            Self::Spread { max_ceiling, .. } if levels.count <= 1 => *max_ceiling,
            Self::Spread {
                by_value: false,
                min_ceiling,
                max_ceiling,
            } => {
                let steps = (levels.count - 1) as f64;
                let step = levels.above.min(levels.count - 1) as f64;
                max_ceiling - step * (max_ceiling - min_ceiling) / steps
            }
            Self::Spread {
                by_value: true,
                min_ceiling,
                max_ceiling,
            } => {
                let range = levels.highest.saturating_sub(levels.lowest) as f64;
                if range <= 0.0 {
                    *max_ceiling
                } else {
                    let offset = priority.saturating_sub(levels.lowest) as f64;
                    let position = (offset / range).clamp(0.0, 1.0);
                    min_ceiling + position * (max_ceiling - min_ceiling)
                }
            }
            Self::Explicit(ceilings) => ceilings
                .range(..=priority)
                .next_back()
                .or_else(|| ceilings.first_key_value())
                .map_or(DEFAULT_THRESHOLD, |(_, c)| *c),
        };
        if ceiling.is_nan() {
            DEFAULT_THRESHOLD
        } else {
            ceiling.clamp(0.0, 1.0)
        }
    }
}

/// How long a priority level that is not configured stays active after its
/// last request: upstream's band garbage-collection delay.
pub const LEVEL_IDLE_GC: Duration = Duration::from_secs(600);

/// The priority levels that count as active for the rank and value spreads:
/// the configured bands always, any other priority from its first request
/// until it has been idle for [`LEVEL_IDLE_GC`] (upstream creates bands on
/// demand and collects idle ones the same way).
#[derive(Clone, Debug, Default)]
pub struct ActiveLevels {
    /// Priority → its last request, `None` for configured bands.
    last_seen: BTreeMap<i64, Option<Instant>>,
}

impl ActiveLevels {
    /// The configured `priorities`, active for good.
    pub fn new(priorities: impl IntoIterator<Item = i64>) -> Self {
        Self {
            last_seen: priorities.into_iter().map(|p| (p, None)).collect(),
        }
    }

    /// Records a request of `priority` at `now`.
    pub fn touch(&mut self, priority: i64, now: Instant) {
        let entry = self.last_seen.entry(priority).or_insert(Some(now));
        if let Some(at) = entry {
            *at = (*at).max(now);
        }
    }

    /// Forgets levels idle since before `now − LEVEL_IDLE_GC`, except those
    /// for which `in_use` holds (requests still queued).
    pub fn prune(&mut self, now: Instant, in_use: impl Fn(i64) -> bool) {
        self.last_seen.retain(|priority, last| match last {
            None => true,
            Some(at) => now.saturating_duration_since(*at) < LEVEL_IDLE_GC || in_use(*priority),
        });
    }

    /// Where `priority` sits among the active levels (counted in even if
    /// it is not one of them).
    pub fn levels(&self, priority: i64) -> Levels {
        let known = self.last_seen.contains_key(&priority);
        let lowest = self
            .last_seen
            .keys()
            .next()
            .map_or(priority, |p| (*p).min(priority));
        let highest = self
            .last_seen
            .keys()
            .next_back()
            .map_or(priority, |p| (*p).max(priority));
        Levels {
            count: self.last_seen.len() + usize::from(!known),
            above: self
                .last_seen
                .range(priority.saturating_add(1)..)
                .filter(|(p, _)| **p > priority)
                .count(),
            lowest,
            highest,
        }
    }
}
