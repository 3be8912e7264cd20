//! One duration grammar for every flag, config field and header that takes a duration.
//!
//! Three entry points, one scanner:
//! - [`parse`]: Go's `time.ParseDuration` (`1h`, `1m30s`, `2.5s`, `500ms`, `1.5h`, `300us`
//!   or `µs`, `10ns`, a bare `0`). Upstream's EPP config (flow control TTLs, plugin
//!   parameters) and its headers are Go durations, so this is the default.
//! - [`parse_or_seconds`]: the same, plus a bare number of seconds (`90`, `0.5`). Only for
//!   flags that have always taken one: the EPP's own time flags (`--refresh-metrics-interval`,
//!   `--drain-timeout` and the other `Duration` flags of `epp/src/cli.rs`).
//! - [`parse_gateway`]: the Gateway API duration profile (GEP-2257), the subset the
//!   InferenceRollout CRD's schema pattern admits: whole numbers of at most five digits with
//!   `h`, `m`, `s` or `ms`, at most four parts (`1h`, `10m`, `1m30s`, `500ms`). No fractions,
//!   no sign, no bare `0`: the apiserver would reject them, so the checker must too.
//!
//! Sign rules follow Go: a leading `+` or `-` is allowed, and `-0`/`+0s` are zero, but a
//! negative non-zero duration is an error here because `std::time::Duration` cannot hold one.
//! Like Go, the total may not exceed `i64::MAX` nanoseconds (about 292 years); digits of a
//! fraction beyond what nanoseconds can resolve are dropped.
//!
//! Pure: no dependency, no allocation on success.

use std::fmt;
use std::time::Duration;

/// Nanoseconds in one unit of each suffix Go accepts; a unit is matched whole, so `ms` is
/// never read as `m`. `µ` is U+00B5 (micro sign), `μ` U+03BC (Greek mu); Go
/// accepts both.
const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
];

/// Go's ceiling: a `time.Duration` is an `int64` of nanoseconds.
const MAX_NANOS: u64 = i64::MAX as u64;

/// Nanoseconds in a second, the unit of a bare number in [`parse_or_seconds`].
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The Gateway API profile's limits (GEP-2257: `^([0-9]{1,5}(h|m|s|ms)){1,4}$`).
const GATEWAY_MAX_DIGITS: usize = 5;
const GATEWAY_MAX_PARTS: usize = 4;

/// Which grammar a text was read with; it picks the example an error shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grammar {
    /// Go's `time.ParseDuration`.
    Go,
    /// Go's grammar or a bare number of seconds.
    GoOrSeconds,
    /// The Gateway API duration profile (GEP-2257).
    Gateway,
}

/// What is wrong with a duration text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Nothing (or only a sign) was given.
    Empty,
    /// A part has no digits before its unit (`ms`, `.s`).
    MissingNumber,
    /// A number has no unit after it (`5` where a unit is required, `1.5.3s`).
    MissingUnit,
    /// The unit is not one of `ns`, `us`, `µs`, `ms`, `s`, `m`, `h` (or, in the Gateway
    /// profile, `ms`, `s`, `m`, `h`).
    UnknownUnit,
    /// A negative, non-zero duration.
    Negative,
    /// More than `i64::MAX` nanoseconds, Go's limit.
    TooLong,
    /// A fraction or a sign in the Gateway profile, which takes whole numbers only.
    NotWhole,
    /// A number of more than five digits in the Gateway profile.
    TooManyDigits,
    /// More than four parts in the Gateway profile.
    TooManyParts,
}

/// A text that is not a duration in the grammar it was read with. Its message names the
/// text, what is wrong and a valid example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    text: String,
    problem: Problem,
    grammar: Grammar,
}

/// Parses a Go duration (`1m30s`, `2.5s`, `500ms`, `0`).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    parse_go(text, false).map_err(|problem| DurationError::new(text, problem, Grammar::Go))
}

/// Parses a Go duration or a bare number of seconds (`90`, `0.5`). Only for flags that
/// historically take one (see the module header).
pub fn parse_or_seconds(text: &str) -> Result<Duration, DurationError> {
    parse_go(text, true).map_err(|problem| DurationError::new(text, problem, Grammar::GoOrSeconds))
}

/// Parses a Gateway API duration (GEP-2257: `1h`, `10m`, `1m30s`, `500ms`).
pub fn parse_gateway(text: &str) -> Result<Duration, DurationError> {
    gateway(text).map_err(|problem| DurationError::new(text, problem, Grammar::Gateway))
}

// === impl DurationError ===

impl DurationError {
    fn new(text: &str, problem: Problem, grammar: Grammar) -> Self {
        Self {
            text: text.to_owned(),
            problem,
            grammar,
        }
    }

    /// What is wrong.
    pub fn problem(&self) -> Problem {
        self.problem
    }

    /// The grammar the text was read with.
    pub fn grammar(&self) -> Grammar {
        self.grammar
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.problem {
            Problem::Empty => "it is empty",
            Problem::MissingNumber => "a unit has no number before it",
            Problem::MissingUnit if self.grammar == Grammar::GoOrSeconds => {
                "a number needs a unit unless it stands alone (seconds)"
            }
            Problem::MissingUnit => "a number has no unit",
            Problem::UnknownUnit if self.grammar == Grammar::Gateway => {
                "the unit is not one of h, m, s, ms"
            }
            Problem::UnknownUnit => "the unit is not one of h, m, s, ms, us, µs, ns",
            Problem::Negative => "it is negative",
            Problem::TooLong => "it is longer than 292 years",
            Problem::NotWhole => "Gateway API durations take whole numbers without a sign",
            Problem::TooManyDigits => "a number has more than five digits",
            Problem::TooManyParts => "it has more than four parts",
        };
        let example = match self.grammar {
            Grammar::Go => "`1m30s`, `2.5s` or `500ms`",
            Grammar::GoOrSeconds => "`1m30s`, `2.5s`, `500ms` or `90` (seconds)",
            Grammar::Gateway => "`1h`, `1m30s` or `2500ms`",
        };
        write!(
            f,
            "`{}` is not a duration: {what}; write e.g. {example}",
            self.text
        )
    }
}

impl std::error::Error for DurationError {}

// === Go's grammar ===

/// One decimal number as written: `12`, `1.5`, `.5` or `5.`.
#[derive(Clone, Copy, Debug)]
struct Decimal {
    whole: u64,
    /// The fraction's digits read as an integer, over `scale` (a power of ten).
    fraction: u64,
    scale: u64,
}

impl Decimal {
    /// The number times `unit` nanoseconds, truncated to whole nanoseconds.
    fn times(self, unit: u64) -> Option<u64> {
        let whole = self.whole.checked_mul(unit)?;
        // Exact in u128: fraction < scale ≤ 10^19 and unit < 2^42.
        let part = u128::from(self.fraction) * u128::from(unit) / u128::from(self.scale);
        whole.checked_add(u64::try_from(part).ok()?)
    }
}

/// Reads `[0-9]*(\.[0-9]*)?` from the start of `text`; `None` when it holds no digit.
/// Errors only on a whole part too large for u64.
fn leading_decimal(text: &str) -> Result<Option<(Decimal, &str)>, Problem> {
    let bytes = text.as_bytes();
    let whole_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut whole: u64 = 0;
    for digit in &bytes[..whole_len] {
        whole = whole
            .checked_mul(10)
            .and_then(|w| w.checked_add(u64::from(digit - b'0')))
            .ok_or(Problem::TooLong)?;
    }
    let mut rest = &text[whole_len..];
    let (mut fraction, mut scale, mut fraction_len) = (0u64, 1u64, 0usize);
    if let Some(after_point) = rest.strip_prefix('.') {
        fraction_len = after_point.bytes().take_while(u8::is_ascii_digit).count();
        for digit in after_point.bytes().take(fraction_len) {
            // Like Go, digits past what the scale can hold are dropped, not an error.
            let (Some(next_fraction), Some(next_scale)) = (
                fraction
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(digit - b'0'))),
                scale.checked_mul(10),
            ) else {
                break;
            };
            fraction = next_fraction;
            scale = next_scale;
        }
        rest = &after_point[fraction_len..];
    }
    if whole_len == 0 && fraction_len == 0 {
        return Ok(None);
    }
    Ok(Some((
        Decimal {
            whole,
            fraction,
            scale,
        },
        rest,
    )))
}

/// Splits the unit (everything up to the next digit or point) off `text` and looks it up.
fn leading_unit(text: &str) -> Result<(u64, &str), Problem> {
    let end = text
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(text.len());
    let (unit, rest) = text.split_at(end);
    if unit.is_empty() {
        return Err(Problem::MissingUnit);
    }
    UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|&(_, nanos)| (nanos, rest))
        .ok_or(Problem::UnknownUnit)
}

/// Go's `time.ParseDuration`, optionally taking a bare number as seconds.
fn parse_go(text: &str, bare_seconds: bool) -> Result<Duration, Problem> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if unsigned == "0" {
        return Ok(Duration::ZERO);
    }
    if unsigned.is_empty() {
        return Err(Problem::Empty);
    }
    if bare_seconds
        && !negative
        && let Some((number, "")) = leading_decimal(unsigned)?
    {
        let nanos = number
            .times(NANOS_PER_SECOND)
            .filter(|n| *n <= MAX_NANOS)
            .ok_or(Problem::TooLong)?;
        return Ok(Duration::from_nanos(nanos));
    }
    let mut total: u64 = 0;
    let mut rest = unsigned;
    while !rest.is_empty() {
        let (number, after_number) = leading_decimal(rest)?.ok_or(Problem::MissingNumber)?;
        let (unit, after_unit) = leading_unit(after_number)?;
        total = number
            .times(unit)
            .and_then(|part| total.checked_add(part))
            .filter(|t| *t <= MAX_NANOS)
            .ok_or(Problem::TooLong)?;
        rest = after_unit;
    }
    if negative && total > 0 {
        return Err(Problem::Negative);
    }
    Ok(Duration::from_nanos(total))
}

// === the Gateway API profile ===

/// GEP-2257: `^([0-9]{1,5}(h|m|s|ms)){1,4}$`.
fn gateway(text: &str) -> Result<Duration, Problem> {
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    if text.starts_with(['+', '-']) || text.contains('.') {
        return Err(Problem::NotWhole);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(Problem::MissingNumber);
        }
        if digits > GATEWAY_MAX_DIGITS {
            return Err(Problem::TooManyDigits);
        }
        let number: u64 = rest[..digits].parse().map_err(|_| Problem::TooLong)?;
        let (unit, after_unit) = leading_unit(&rest[digits..])?;
        if unit < 1_000_000 {
            // `ns` and `us` are Go units the Gateway profile does not admit.
            return Err(Problem::UnknownUnit);
        }
        parts += 1;
        if parts > GATEWAY_MAX_PARTS {
            return Err(Problem::TooManyParts);
        }
        // Five digits of hours fit comfortably: 99,999 h × 4 parts is far below u64 nanos.
        total += Duration::from_nanos(number * unit);
        rest = after_unit;
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
