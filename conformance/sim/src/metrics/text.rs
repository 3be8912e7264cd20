//! Writing the Prometheus text exposition format (version 0.0.4) by hand.

use std::fmt::Write as _;

use crate::engine::stats::histogram::Histogram;

/// `# HELP` and `# TYPE` lines of a family.
pub(super) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line.
pub(super) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    write_labels(out, labels, None);
    out.push(' ');
    write_value(out, value);
    out.push('\n');
}

/// A whole gauge family with one series.
pub(super) fn gauge(out: &mut String, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
    header(out, name, help, "gauge");
    sample(out, name, labels, v);
}

/// A whole counter family with one series; `name` already ends in `_total`, as the
/// reference spells every counter.
pub(super) fn counter(out: &mut String, name: &str, help: &str, labels: &[(&str, &str)], v: u64) {
    header(out, name, help, "counter");
    sample(out, name, labels, v as f64);
}

/// A histogram family: `_bucket{le=…}` lines (cumulative, ending in `+Inf`), `_sum`, `_count`.
pub(super) fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    labels: &[(&str, &str)],
    h: &Histogram,
) {
    header(out, name, help, "histogram");
    let mut le = String::new();
    for (i, cum) in h.cumulative().enumerate() {
        le.clear();
        match h.bounds().get(i) {
            Some(b) => write_value(&mut le, *b),
            None => le.push_str("+Inf"),
        }
        let _ = write!(out, "{name}_bucket");
        write_labels(out, labels, Some(&le));
        let _ = writeln!(out, " {cum}");
    }
    let _ = write!(out, "{name}_sum");
    write_labels(out, labels, None);
    out.push(' ');
    write_value(out, h.sum());
    out.push('\n');
    let _ = write!(out, "{name}_count");
    write_labels(out, labels, None);
    let _ = writeln!(out, " {}", h.count());
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let extra = le.map(|v| ("le", v));
    for (k, v) in labels.iter().copied().chain(extra) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}
