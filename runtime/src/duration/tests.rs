//! The grammar as a table, the Gateway profile, the error messages, and the four parsers'
//! old disagreements.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn go_grammar_table() {
    let accepted = [
        ("0", Duration::ZERO),
        ("-0", Duration::ZERO),
        ("+0", Duration::ZERO),
        ("0s", Duration::ZERO),
        ("-0s", Duration::ZERO),
        ("1h", secs(3600)),
        ("10m", secs(600)),
        ("1m30s", secs(90)),
        ("2h45m", secs(9900)),
        ("2.5s", Duration::from_millis(2500)),
        ("1.5h", secs(5400)),
        (".5s", Duration::from_millis(500)),
        ("5.s", secs(5)),
        ("+5s", secs(5)),
        ("500ms", Duration::from_millis(500)),
        ("300us", Duration::from_micros(300)),
        ("10µs", Duration::from_micros(10)),
        ("10μs", Duration::from_micros(10)),
        ("10ns", Duration::from_nanos(10)),
        ("1h1m1s1ms1us1ns", Duration::from_nanos(3_661_001_001_001)),
        ("1s1s", secs(2)),
        ("0.000000001s", Duration::from_nanos(1)),
        // Fraction digits past nanoseconds are dropped, not an error (as Go does).
        ("1.0000000000000000000001s", secs(1)),
        ("2562047h", secs(2_562_047 * 3600)),
    ];
    for (text, expected) in accepted {
        assert_eq!(parse(text), Ok(expected), "{text:?}");
    }
    let rejected = [
        ("", Problem::Empty),
        ("-", Problem::Empty),
        ("+", Problem::Empty),
        ("5", Problem::MissingUnit),
        ("s", Problem::MissingNumber),
        (".s", Problem::MissingNumber),
        ("1.2.3s", Problem::MissingUnit),
        ("1d", Problem::UnknownUnit),
        ("1 s", Problem::UnknownUnit),
        (" 1s", Problem::MissingNumber),
        ("1e999h", Problem::UnknownUnit),
        ("-1s", Problem::Negative),
        ("-1m30s", Problem::Negative),
        ("2562048h", Problem::TooLong),
        ("99999999999999999999999s", Problem::TooLong),
    ];
    for (text, problem) in rejected {
        assert_eq!(
            parse(text).map_err(|e| e.problem()),
            Err(problem),
            "{text:?}"
        );
    }
}

#[test]
fn bare_seconds_only_in_their_own_variant() {
    assert_eq!(parse_or_seconds("90"), Ok(secs(90)));
    assert_eq!(parse_or_seconds("0.5"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_or_seconds("2"), Ok(secs(2)));
    assert_eq!(parse_or_seconds("1m30s"), Ok(secs(90)));
    assert_eq!(parse_or_seconds("50ms"), Ok(Duration::from_millis(50)));
    for bad in ["", "ms", "5 parsecs", "-1", "1x", "1.2.3"] {
        let err = parse_or_seconds(bad).unwrap_err();
        assert!(err.to_string().contains("not a duration"), "{bad}: {err}");
    }
    assert_eq!(parse("90").unwrap_err().problem(), Problem::MissingUnit);
    assert_eq!(
        parse_gateway("90").unwrap_err().problem(),
        Problem::MissingUnit
    );
}

#[test]
fn gateway_profile_table() {
    let accepted = [
        ("1h", secs(3600)),
        ("10m", secs(600)),
        ("1s", secs(1)),
        ("500ms", Duration::from_millis(500)),
        ("1m30s", secs(90)),
        ("1h2m3s4ms", Duration::from_millis(3_723_004)),
        ("99999h", secs(99_999 * 3600)),
        ("0s", Duration::ZERO),
    ];
    for (text, expected) in accepted {
        assert_eq!(parse_gateway(text), Ok(expected), "{text:?}");
    }
    let rejected = [
        ("", Problem::Empty),
        ("0", Problem::MissingUnit),
        ("2.5s", Problem::NotWhole),
        ("-1s", Problem::NotWhole),
        ("+1s", Problem::NotWhole),
        ("100000s", Problem::TooManyDigits),
        ("1h1m1s1ms1s", Problem::TooManyParts),
        ("300us", Problem::UnknownUnit),
        ("10ns", Problem::UnknownUnit),
        ("1d", Problem::UnknownUnit),
        ("ms", Problem::MissingNumber),
    ];
    for (text, problem) in rejected {
        assert_eq!(
            parse_gateway(text).map_err(|e| e.problem()),
            Err(problem),
            "{text:?}"
        );
    }
}

#[test]
fn errors_name_the_text_the_problem_and_a_valid_example() {
    let err = parse("1d").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`1d` is not a duration: the unit is not one of h, m, s, ms, us, µs, ns; write e.g. `1m30s`, `2.5s` or `500ms`"
    );
    assert_eq!(err.grammar(), Grammar::Go);
    let err = parse_gateway("2.5s").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`2.5s` is not a duration: Gateway API durations take whole numbers without a sign; write e.g. `1h`, `1m30s` or `2500ms`"
    );
    let err = parse_or_seconds("5 parsecs").unwrap_err();
    assert!(err.to_string().contains("`90` (seconds)"), "{err}");
    let err = parse("-1s").unwrap_err();
    assert!(err.to_string().contains("negative"), "{err}");
}

/// The four parsers this module replaced disagreed; each case below was accepted by one and
/// rejected by another, and is now decided by one rule.
#[test]
fn the_old_parsers_disagreements_are_settled() {
    // epp/src/scheduling/plugins.rs read one number and one unit: `1m30s` failed there
    // while the flow-control config (flow/config/units.rs) took it for the same
    // `metricsStalenessThreshold`. Both now use `parse`.
    assert_eq!(parse("1m30s"), Ok(secs(90)));
    // api/src/rollout.rs took whole numbers only, so `2.5s` failed there and passed in the
    // EPP. The Go grammar takes it; the Gateway profile refuses it on purpose (the CRD's
    // schema pattern does too) and now says why and what to write instead.
    assert_eq!(parse("2.5s"), Ok(Duration::from_millis(2500)));
    let refused = parse_gateway("2.5s").unwrap_err();
    assert!(refused.to_string().contains("`2500ms`"), "{refused}");
    // A bare `90` passed in epp/src/cli.rs and plugins.rs but not in units.rs. Now only the
    // variant for the EPP's own flags takes it.
    assert_eq!(parse_or_seconds("90"), Ok(secs(90)));
    assert!(parse("90").is_err());
    // `μs` (Greek mu) passed only in units.rs; `-0` passed nowhere though Go takes it.
    assert_eq!(parse_or_seconds("10μs"), Ok(Duration::from_micros(10)));
    assert_eq!(parse("-0"), Ok(Duration::ZERO));
}

/// L3: `parse_duration` in the EPP's CLI once summed parts with `+=`, so digits whose sum
/// overflows panicked. Every sum is checked now: overflow is an error naming the problem.
#[test]
fn l3_parts_whose_sum_overflows_are_an_error_not_a_panic() {
    let huge = "18446744073709551615";
    for text in [
        format!("{huge}s{huge}s"),
        format!("{huge}h"),
        "5124095h5124095h".to_owned(),
        huge.to_owned(),
        format!("{huge}.{huge}s"),
    ] {
        let refused = parse_or_seconds(&text);
        assert!(refused.is_err(), "{text}: {refused:?}");
        assert!(parse(&text).is_err(), "{text}");
        assert!(parse_gateway(&text).is_err(), "{text}");
    }
    // The largest sums still parse.
    assert!(parse("2562047h").is_ok());
}

mod props {
    use proptest::prelude::*;

    use super::super::*;

    /// Strings from the grammar's own alphabet, where the edge cases live.
    fn durationish() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                "[0-9]{1,25}",
                Just(".".to_owned()),
                Just("-".to_owned()),
                Just("+".to_owned()),
                prop_oneof![
                    Just("ns"),
                    Just("us"),
                    Just("µs"),
                    Just("ms"),
                    Just("s"),
                    Just("m"),
                    Just("h"),
                    Just("d"),
                ]
                .prop_map(str::to_owned),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        /// L3: no input panics any of the three parsers.
        #[test]
        fn l3_no_input_panics_the_parsers(text in durationish(), noise in ".{0,40}") {
            for candidate in [&text, &noise] {
                let _ = parse(candidate);
                let _ = parse_or_seconds(candidate);
                let _ = parse_gateway(candidate);
            }
        }

        /// L3: a sum of parts is the sum of its parts' values, or an error; never a
        /// wrapped or saturated value.
        #[test]
        fn l3_sums_are_exact_or_refused(a in 0u64..u64::MAX, b in 0u64..u64::MAX) {
            let text = format!("{a}ms{b}ms");
            let exact = u128::from(a) * 1_000_000 + u128::from(b) * 1_000_000;
            match parse(&text) {
                Ok(d) => prop_assert_eq!(d.as_nanos(), exact),
                Err(_) => prop_assert!(exact > u128::from(i64::MAX as u64)),
            }
        }
    }
}
