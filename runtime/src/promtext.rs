//! One Prometheus text-format (0.0.4) parser, in two modes.
//!
//! Written by hand because the `prometheus-parse` crate silently drops every metric whose
//! name contains a colon, i.e. all of vLLM's and SGLang's (`vllm:num_requests_waiting`).
//! The parser borrows from the page: a [`Sample`] holds slices of the input, and label
//! values are unescaped only when read. No input makes it panic.
//!
//! - **Lenient** ([`Exposition::parse`], [`Lines::lenient`]): for scrapers (the EPP reading
//!   model servers, the rollout controller reading the EPP). A line it cannot parse is
//!   counted and skipped, never fatal, so a model server that emits one odd line still gets
//!   scheduled on the rest. Comments are skipped whatever they say, and an unknown escape in
//!   a label value is kept as written, as Prometheus does.
//! - **Strict** ([`Exposition::parse_strict`], [`Lines::strict`]): for tests of what we
//!   serve (the simulator's pages). It also reads `# TYPE` lines, and rejects a malformed
//!   line, a malformed or unknown `# TYPE` and an unknown escape, naming the line number.
//!
//! [`Lines`] yields the page line by line, so a reader that only sums a few families (the
//! rollout controller's EPP page) folds over it without collecting the samples.

mod scan;

use std::borrow::Cow;
use std::fmt;

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// The metric name, colons included.
    pub name: &'a str,
    /// The text between `{` and `}` (already validated), empty without labels.
    raw_labels: &'a str,
    /// The value; `NaN`, `+Inf` and `-Inf` are kept as such.
    pub value: f64,
    /// The optional timestamp, in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
}

/// The type a `# TYPE` line gives a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `summary`.
    Summary,
    /// `untyped`.
    Untyped,
}

/// Why a line is not a sample (or, in strict mode, not a well-formed `# TYPE` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The metric name is missing, malformed or not ended by `{` or whitespace.
    Name,
    /// The label set is malformed: a bad name, an unquoted or unterminated value, a missing
    /// comma or brace.
    Labels,
    /// A label value has an escape other than `\\`, `\"` or `\n` (strict mode only).
    Escape,
    /// The value is missing or not a number.
    Value,
    /// The timestamp is not an integer.
    Timestamp,
    /// Something follows the timestamp.
    Trailing,
    /// A `# TYPE` line without a valid metric name and type, or with more after them.
    TypeLine,
    /// A `# TYPE` line names a type other than counter, gauge, histogram, summary, untyped.
    UnknownType,
}

/// One line of a page that is not blank and not a skipped comment.
#[derive(Clone, Debug, PartialEq)]
pub enum Line<'a> {
    /// A sample.
    Sample(Sample<'a>),
    /// A `# TYPE` line (strict mode only).
    Type {
        /// The metric family.
        family: &'a str,
        /// Its type.
        kind: MetricType,
    },
    /// A line that could not be read.
    Malformed(Malformed<'a>),
}

/// A line that could not be read, with what a reader needs to decide whether it matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed<'a> {
    /// The line's number, from 1.
    pub number: usize,
    /// The metric name the line starts with, as far as it reads as one (may be empty), so a
    /// reader can count only the bad lines of the families it reads.
    pub name: &'a str,
    /// The line as written.
    pub text: &'a str,
    /// What is wrong.
    pub problem: Problem,
}

/// The lines of a page, in order, in lenient or strict mode.
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    strict: bool,
}

/// A parsed page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition<'a> {
    /// Every sample, in the order of the page.
    pub samples: Vec<Sample<'a>>,
    /// How many lines could not be parsed (always 0 from [`Exposition::parse_strict`]).
    pub malformed_lines: usize,
    /// The `# TYPE` lines, in page order (read in strict mode only).
    pub types: Vec<(&'a str, MetricType)>,
}

/// The first malformed line of a page read strictly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The line's number, from 1.
    pub line: usize,
    /// What is wrong.
    pub problem: Problem,
    /// The line as written.
    pub text: String,
}

// === impl Lines ===

impl<'a> Lines<'a> {
    /// The lines of `text`, skipping every comment and reading unknown escapes as written.
    pub fn lenient(text: &'a str) -> Self {
        Self {
            lines: text.lines().enumerate(),
            strict: false,
        }
    }

    /// The lines of `text`, with `# TYPE` lines read and unknown escapes rejected.
    pub fn strict(text: &'a str) -> Self {
        Self {
            lines: text.lines().enumerate(),
            strict: true,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        for (index, raw) in self.lines.by_ref() {
            let line = raw.trim_start();
            if line.is_empty() {
                continue;
            }
            let parsed = match line.strip_prefix('#') {
                Some(comment) if self.strict => match scan::type_line(comment) {
                    Ok(None) => continue,
                    Ok(Some((family, kind))) => Ok(Line::Type { family, kind }),
                    Err(problem) => Err(problem),
                },
                Some(_) => continue,
                None => scan::sample(line, self.strict).map(Line::Sample),
            };
            return Some(parsed.unwrap_or_else(|problem| {
                Line::Malformed(Malformed {
                    number: index + 1,
                    name: scan::leading_name(line),
                    text: raw,
                    problem,
                })
            }));
        }
        None
    }
}

// === impl Exposition ===

impl<'a> Exposition<'a> {
    /// Parses a whole page leniently: comments and blank lines are skipped, malformed lines
    /// counted.
    pub fn parse(text: &'a str) -> Self {
        let mut exposition = Self::default();
        for line in Lines::lenient(text) {
            match line {
                Line::Sample(sample) => exposition.samples.push(sample),
                Line::Malformed(_) => exposition.malformed_lines += 1,
                Line::Type { .. } => {}
            }
        }
        exposition
    }

    /// Parses a whole page strictly: the first malformed line (or `# TYPE` line) is an error
    /// naming its line number.
    pub fn parse_strict(text: &'a str) -> Result<Self, ParseError> {
        let mut exposition = Self::default();
        for line in Lines::strict(text) {
            match line {
                Line::Sample(sample) => exposition.samples.push(sample),
                Line::Type { family, kind } => exposition.types.push((family, kind)),
                Line::Malformed(bad) => {
                    return Err(ParseError {
                        line: bad.number,
                        problem: bad.problem,
                        text: bad.text.to_owned(),
                    });
                }
            }
        }
        Ok(exposition)
    }

    /// The samples named `name`, in page order.
    pub fn named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Sample<'a>> + 's {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The first sample named `name` whose labels include all of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Sample<'a>> {
        self.samples.iter().find(|sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.label(key).as_deref() == Some(*value))
        })
    }

    /// The value of [`Self::find`].
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.find(name, labels).map(|sample| sample.value)
    }

    /// Whether the family `name` is present: a sample of that name, or the `_count` of a
    /// histogram or summary of that name.
    pub fn has(&self, name: &str) -> bool {
        self.samples
            .iter()
            .any(|sample| sample.name == name || sample.name.strip_prefix(name) == Some("_count"))
    }

    /// The type a `# TYPE` line gave `family` (strict mode only).
    pub fn type_of(&self, family: &str) -> Option<MetricType> {
        self.types
            .iter()
            .find(|(name, _)| *name == family)
            .map(|&(_, kind)| kind)
    }
}

// === impl Sample ===

impl<'a> Sample<'a> {
    /// The labels as `(name, unescaped value)` pairs, in order.
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            rest: self.raw_labels,
        }
    }

    /// The unescaped value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<Cow<'a, str>> {
        self.labels().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// Iterator over a sample's labels. The label text was validated when the sample was
/// parsed, so iteration cannot fail; should it meet something unexpected anyway it ends.
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let ((name, value), rest) = scan::next_label(self.rest).ok()??;
        self.rest = rest;
        Some((name, scan::unescape(value)))
    }
}

// === impl MetricType ===

impl MetricType {
    /// The type as a `# TYPE` line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
        }
    }
}

// === impl ParseError ===

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Name => "bad metric name",
            Self::Labels => "bad label set",
            Self::Escape => "bad escape in a label value (only \\\\, \\\" and \\n)",
            Self::Value => "missing or bad value",
            Self::Timestamp => "bad timestamp",
            Self::Trailing => "text after the timestamp",
            Self::TypeLine => "a TYPE line needs a metric name and a type, nothing more",
            Self::UnknownType => "unknown type (counter, gauge, histogram, summary, untyped)",
        })
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "metrics line {}: {}: {}",
            self.line, self.problem, self.text
        )
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests;
