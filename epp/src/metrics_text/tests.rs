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
        let page = Exposition::parse(input);
        for sample in &page.samples {
            let _ = sample.labels().count();
        }
    }
    // Every prefix of a real page, cut at any byte that is a char boundary.
    for end in 0..=VLLM_PAGE.len() {
        if let Some(prefix) = VLLM_PAGE.get(..end) {
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
