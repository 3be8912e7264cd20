//! The lenient parser on real and broken pages, the strict mode's refusals with line
//! numbers, and the line-by-line reader.

#![allow(clippy::unwrap_used)]

use super::*;

const VLLM_PAGE: &str = r#"# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B"} 3.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B"} 0.42
vllm:lora_requests_info{max_lora="4",running_lora_adapters="sql-lora,tweet-lora",waiting_lora_adapters=""} 1.7e+09
vllm:cache_config_info{block_size="16",num_gpu_blocks="2810"} 1.0
"#;

#[test]
fn parses_colon_names_labels_and_values() {
    let page = Exposition::parse(VLLM_PAGE);
    assert_eq!(page.malformed_lines, 0);
    assert_eq!(page.samples.len(), 4);
    let waiting = &page.samples[0];
    assert_eq!(waiting.name, "vllm:num_requests_waiting");
    assert_eq!(waiting.value, 3.0);
    assert_eq!(waiting.label("engine").as_deref(), Some("0"));
    assert_eq!(
        waiting.label("model_name").as_deref(),
        Some("meta-llama/Llama-3.1-8B")
    );
    let lora = page.named("vllm:lora_requests_info").next().unwrap();
    assert_eq!(
        lora.label("running_lora_adapters").as_deref(),
        Some("sql-lora,tweet-lora")
    );
    assert_eq!(lora.label("waiting_lora_adapters").as_deref(), Some(""));
    assert_eq!(lora.value, 1.7e9);
    assert_eq!(lora.label("absent"), None);
}

#[test]
fn unescapes_label_values() {
    let page = Exposition::parse(r#"m{a="say \"hi\"",b="back\\slash",c="two\nlines",d="odd\q"} 1"#);
    assert_eq!(page.malformed_lines, 0);
    let sample = &page.samples[0];
    assert_eq!(sample.label("a").as_deref(), Some(r#"say "hi""#));
    assert_eq!(sample.label("b").as_deref(), Some(r"back\slash"));
    assert_eq!(sample.label("c").as_deref(), Some("two\nlines"));
    assert_eq!(sample.label("d").as_deref(), Some(r"odd\q"));
    // A closing brace or comma inside a quoted value is data, not syntax.
    let page = Exposition::parse(r#"m{a="x}y,z=\"w\"",b="2"} 5"#);
    assert_eq!(page.samples[0].label("a").as_deref(), Some(r#"x}y,z="w""#));
    assert_eq!(page.samples[0].label("b").as_deref(), Some("2"));
}

#[test]
fn special_values_and_timestamps() {
    let page =
        Exposition::parse("a NaN\nb +Inf\nc -Inf\nd 1.5 1700000000000\ne{x=\"1\"} 2e-3 -5\nf 7 \n");
    assert_eq!(page.malformed_lines, 0);
    let values: Vec<f64> = page.samples.iter().map(|s| s.value).collect();
    assert!(values[0].is_nan());
    assert_eq!(values[1], f64::INFINITY);
    assert_eq!(values[2], f64::NEG_INFINITY);
    assert_eq!(page.samples[3].timestamp_ms, Some(1_700_000_000_000));
    assert_eq!(page.samples[4].value, 0.002);
    assert_eq!(page.samples[4].timestamp_ms, Some(-5));
    assert_eq!(page.samples[5].timestamp_ms, None);
}

#[test]
fn tolerates_whitespace_trailing_commas_and_empty_braces() {
    let page = Exposition::parse("  m { a = \"1\" , b=\"2\", } 3\nn{} 4\n\n\t\r\n");
    assert_eq!(page.malformed_lines, 0);
    assert_eq!(page.samples.len(), 2);
    let labels: Vec<_> = page.samples[0].labels().collect();
    assert_eq!(labels, vec![("a", "1".into()), ("b", "2".into())]);
    assert_eq!(page.samples[1].labels().count(), 0);
}

#[test]
fn comments_are_skipped_whatever_they_say() {
    let page = Exposition::parse("# TYPE x gauge\n#garbage {{{\n# EOF\nx 1\n");
    assert_eq!(page.malformed_lines, 0);
    assert_eq!(page.samples.len(), 1);
}

#[test]
fn malformed_lines_are_counted_not_fatal() {
    let cases = [
        "1abc 2",              // name starts with a digit
        "m",                   // no value
        "m{a=\"1\" 2",         // unclosed brace
        "m{a=1} 2",            // unquoted label value
        "m{a=\"1} 2",          // unterminated quote
        "m{=\"1\"} 2",         // empty label name
        "m{a:b=\"1\"} 2",      // colon in a label name
        "m{a=\"1\"b=\"2\"} 3", // no comma between labels
        "m abc",               // value not a number
        "m 1 notatime",        // bad timestamp
        "m 1 2 3",             // trailing field
        "m+1 2",               // name not ended by whitespace
        "{a=\"1\"} 2",         // no name
        "m{a=\"1\"}",          // labels but no value
    ];
    for case in cases {
        let page = Exposition::parse(case);
        assert_eq!(page.samples, vec![], "{case:?} should not parse");
        assert_eq!(page.malformed_lines, 1, "{case:?}");
    }
    let page = Exposition::parse("ok 1\nbad{\nalso_ok 2\n");
    assert_eq!(page.samples.len(), 2);
    assert_eq!(page.malformed_lines, 1);
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "\u{0}\u{1}\u{2}",
        "{{{{}}}}",
        "m{a=\"\\",
        "m{a=\"\\\"} 1",
        "é{ü=\"ö\"} 1",
        "m{a=\"ö\u{10FFFF}\"} 1e400",
        "\\\\\\\\",
        "m{,} 1",
        "m{a=\"1\",,b=\"2\"} 1",
        "m{a=\"1\"}} 1",
        "m 1e999999999999",
        "m 99999999999999999999999 1",
        "m 1 99999999999999999999999",
    ];
    for input in inputs {
        let _ = Exposition::parse_strict(input);
        let page = Exposition::parse(input);
        for sample in &page.samples {
            let _ = sample.labels().count();
        }
    }
    // Every prefix of a real page, cut at any byte that is a char boundary.
    for end in 0..=VLLM_PAGE.len() {
        if let Some(prefix) = VLLM_PAGE.get(..end) {
            let _ = Exposition::parse_strict(prefix);
            let page = Exposition::parse(prefix);
            for sample in &page.samples {
                let _ = sample.labels().count();
            }
        }
    }
}

#[test]
fn huge_values_saturate_to_infinity() {
    let page = Exposition::parse("m 1e400");
    assert_eq!(page.samples[0].value, f64::INFINITY);
}

// === strict mode ===

const SIM_PAGE: &str = "# HELP vllm:x help text\n# TYPE vllm:x gauge\n\
vllm:x{model_name=\"m\",running_lora_adapters=\"a,b\"} 0.5\n\
# TYPE h histogram\n\
h_bucket{le=\"0.1\"} 1\n\
h_bucket{le=\"+Inf\"} 3 1700000000000\n\
h_sum 0.7\n\
h_count 3\n\
e{v=\"q\\\"uote\\\\\",} NaN\n";

#[test]
fn strict_reads_types_histograms_and_specials() {
    let page = Exposition::parse_strict(SIM_PAGE).unwrap();
    assert_eq!(page.malformed_lines, 0);
    assert_eq!(
        page.get("vllm:x", &[("running_lora_adapters", "a,b")]),
        Some(0.5)
    );
    assert_eq!(page.type_of("vllm:x"), Some(MetricType::Gauge));
    assert_eq!(page.type_of("h"), Some(MetricType::Histogram));
    assert_eq!(page.type_of("h").map(MetricType::as_str), Some("histogram"));
    assert_eq!(page.type_of("e"), None);
    assert_eq!(page.get("h_bucket", &[("le", "+Inf")]), Some(3.0));
    assert_eq!(
        page.find("h_bucket", &[("le", "+Inf")])
            .unwrap()
            .timestamp_ms,
        Some(1_700_000_000_000)
    );
    assert!(page.has("h"), "a histogram is present through its _count");
    assert!(page.has("vllm:x"));
    assert!(!page.has("vllm"));
    let e = page.find("e", &[]).unwrap();
    assert!(e.value.is_nan());
    assert_eq!(e.label("v").as_deref(), Some("q\"uote\\"));
    // The lenient reader sees the same samples and skips the TYPE lines.
    let lenient = Exposition::parse(SIM_PAGE);
    assert_eq!(lenient.samples.len(), page.samples.len());
    assert!(lenient.types.is_empty());
}

#[test]
fn strict_rejects_what_lenient_counts_with_the_line_number() {
    let cases = [
        ("1bad 1", Problem::Name),
        ("x{a=b} 1", Problem::Labels),
        ("x{a=\"b\" 1", Problem::Labels),
        ("x one", Problem::Value),
        ("x 1 2 3", Problem::Trailing),
        ("x 1 soon", Problem::Timestamp),
        ("x{a=\"odd\\q\"} 1", Problem::Escape),
        ("# TYPE x weird", Problem::UnknownType),
        ("# TYPE x", Problem::TypeLine),
        ("# TYPE 1x gauge", Problem::TypeLine),
        ("# TYPE x gauge extra", Problem::TypeLine),
    ];
    for (bad, problem) in cases {
        let text = format!("ok 1\n\n{bad}\nalso_ok 2\n");
        let err = Exposition::parse_strict(&text).unwrap_err();
        assert_eq!((err.line, err.problem), (3, problem), "{bad}");
        assert_eq!(err.text, bad);
        assert!(err.to_string().starts_with("metrics line 3: "), "{err}");
        // Lenient: the good lines are kept; a bad sample is counted, a comment skipped,
        // and an unknown escape read as written.
        let page = Exposition::parse(&text);
        let read_anyway = problem == Problem::Escape;
        assert_eq!(page.samples.len(), 2 + usize::from(read_anyway), "{bad}");
        let counted = usize::from(!bad.starts_with('#') && !read_anyway);
        assert_eq!(page.malformed_lines, counted, "{bad}");
    }
    // The lenient reader keeps an unknown escape as written.
    let page = Exposition::parse("x{a=\"odd\\q\"} 1");
    assert_eq!(page.samples[0].label("a").as_deref(), Some("odd\\q"));
}

#[test]
fn lines_name_the_family_of_a_bad_line() {
    let text = "# TYPE m counter\nm_total{a=\"1\"} 2\nm_total{a=\"unterminated} 3\n\u{0} junk\n";
    let lines: Vec<Line<'_>> = Lines::lenient(text).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(matches!(&lines[0], Line::Sample(s) if s.name == "m_total"));
    let Line::Malformed(bad) = &lines[1] else {
        panic!("{lines:?}")
    };
    assert_eq!(
        (bad.number, bad.name, bad.problem),
        (3, "m_total", Problem::Labels)
    );
    let Line::Malformed(junk) = &lines[2] else {
        panic!("{lines:?}")
    };
    assert_eq!((junk.number, junk.name), (4, ""));
    let strict: Vec<Line<'_>> = Lines::strict(text).collect();
    assert_eq!(
        strict[0],
        Line::Type {
            family: "m",
            kind: MetricType::Counter
        }
    );
}
