//! Upstream's flags: every one is accepted, and each is mapped or reported.

use super::*;

const UPSTREAM_FLAGS: &str = include_str!("../upstream-flags.txt");

fn try_parse(args: &[&str]) -> std::result::Result<Args, clap::Error> {
    Args::try_parse_from(std::iter::once("switchyard-epp").chain(args.iter().copied()))
}

/// `(flag, value)` for each line of the upstream list.
fn upstream_flags() -> Vec<(&'static str, &'static str)> {
    UPSTREAM_FLAGS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .collect()
}

#[test]
fn every_upstream_flag_is_accepted() {
    let flags = upstream_flags();
    assert!(flags.len() >= 50, "the list lost entries: {}", flags.len());
    let ours: Vec<String> = <Args as clap::CommandFactory>::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    for (flag, value) in flags {
        assert!(
            ours.iter().any(|o| o == flag),
            "--{flag} is not a flag of ours"
        );
        let args = match value.strip_prefix('=') {
            Some(boolean) => vec![format!("--{flag}={boolean}")],
            None => vec![format!("--{flag}"), value.to_owned()],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Err(err) = try_parse(&args) {
            panic!("upstream's {args:?} is refused: {err}");
        }
    }
}

#[test]
fn zap_flags_drive_logging() {
    let args = parse(&["--pool-name", "p", "--zap-encoder", "console"]);
    assert_eq!(args.upstream.log_format(), Some(LogFormat::Text));
    let args = parse(&[
        "--pool-name",
        "p",
        "--zap-encoder",
        "json",
        "--zap-log-level",
        "debug",
    ]);
    assert_eq!(args.upstream.log_format(), Some(LogFormat::Json));
    assert_eq!(args.upstream.log_level(), Some("debug"));
    // A number is a verbosity, as --v.
    let args = parse(&["--pool-name", "p", "--zap-log-level", "5"]);
    assert_eq!(args.upstream.log_level(), Some("trace"));
    let args = parse(&["--pool-name", "p", "--zap-log-level", "error"]);
    assert_eq!(args.upstream.log_level(), Some("error"));
    // Development mode: console and debug unless told otherwise.
    let args = parse(&["--pool-name", "p", "--zap-devel"]);
    assert_eq!(args.upstream.log_format(), Some(LogFormat::Text));
    assert_eq!(args.upstream.log_level(), Some("debug"));
    let args = parse(&["--pool-name", "p"]);
    assert_eq!(
        (args.upstream.log_format(), args.upstream.log_level()),
        (None, None)
    );
    let err = try_parse(&["--zap-log-level", "loud"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`loud` is not a zap level"), "{err}");
}

#[test]
fn metric_name_flags_set_the_default_engine() {
    let args = parse(&[
        "--pool-name",
        "p",
        "--kv-cache-usage-percentage-metric",
        "my_kv{pool=a}",
        "--total-queued-requests-metric",
        "my_waiting",
        "--lora-info-metric",
        "",
    ]);
    let scrape = args.scrape_config().unwrap();
    let vllm = scrape.engines.get("vllm").unwrap();
    let kv = vllm.kv_usage.as_ref().unwrap();
    assert_eq!((kv.name.as_str(), kv.labels.len()), ("my_kv", 1));
    assert_eq!(vllm.queued_requests.as_ref().unwrap().name, "my_waiting");
    assert_eq!(
        vllm.running_requests.as_ref().unwrap().name,
        "vllm:num_requests_running"
    );
    assert_eq!(vllm.lora, None, "an empty name disables the metric");
    let err = parse(&["--pool-name", "p", "--cache-info-metric", "bad name"])
        .scrape_config()
        .unwrap_err()
        .to_string();
    assert!(err.contains("--cache-info-metric"), "{err}");
}

#[test]
fn metrics_path_and_scheme() {
    let args = parse(&["--pool-name", "p", "--model-server-metrics-path", "/stats"]);
    assert_eq!(args.scrape_config().unwrap().path, "/stats");
    let args = parse(&["--pool-name", "p", "--model-server-metrics-scheme", "https"]);
    let err = args.scrape_config().unwrap_err().to_string();
    assert!(
        err.contains("--model-server-metrics-scheme") && err.contains("http"),
        "{err}"
    );
    let args = parse(&["--pool-name", "p", "--model-server-metrics-path", "stats"]);
    assert!(
        args.scrape_config().is_err(),
        "a path without `/` is refused"
    );
}

#[test]
fn flags_without_effect_warn_once_each() {
    let args = parse(&[
        "--pool-name",
        "p",
        "--tracing=false",
        "--enable-pprof=false",
    ]);
    assert!(
        args.ignored_flag_warnings().is_empty(),
        "turning off what we lack is silent"
    );
    let args = parse(&[
        "--pool-name",
        "p",
        "--tracing",
        "--metrics-endpoint-auth=true",
        "--zap-time-encoding",
        "epoch",
        "--kubeconfig",
        "/k",
    ]);
    let warnings = args.ignored_flag_warnings();
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    for flag in [
        "tracing",
        "metrics-endpoint-auth",
        "zap-time-encoding",
        "kubeconfig",
    ] {
        let hits: Vec<_> = warnings
            .iter()
            .filter(|w| w.contains(&format!("--{flag} ")))
            .collect();
        assert_eq!(hits.len(), 1, "--{flag}: {warnings:#?}");
        assert!(hits[0].contains("has no effect"), "{}", hits[0]);
    }
}

#[test]
fn feature_gates_flag_turns_on_flow_control() {
    let args = parse(&["--pool-name", "p"]);
    assert!(!args.flow_control_config().unwrap().enabled);
    let args = parse(&["--pool-name", "p", "--feature-gates", "flowControl"]);
    assert!(args.flow_control_config().unwrap().enabled);
    let args = parse(&[
        "--pool-name",
        "p",
        "--config-text",
        "featureGates: [flowControl]",
        "--feature-gates",
        "flowControl=false",
    ]);
    assert!(
        !args.flow_control_config().unwrap().enabled,
        "the flag wins"
    );
    let args = parse(&[
        "--pool-name",
        "p",
        "--config-text",
        "plugins: [{type: queue-scorer}]",
        "--feature-gates",
        "warpDrive",
    ]);
    let err = args.scheduler_config().unwrap_err().to_string();
    assert!(err.contains("unknown feature gate `warpDrive`"), "{err}");
}

#[test]
fn alpha_plugins_need_the_experimental_flag() {
    let text =
        "plugins: [{name: hb, type: priority-holdback-policy, parameters: {minCeiling: 0.5}}]";
    let args = parse(&["--pool-name", "p", "--config-text", text]);
    let err = args.scheduler_config().unwrap_err().to_string();
    assert!(
        err.contains("Alpha") && err.contains("--allow-experimental-plugins"),
        "{err}"
    );
    let args = parse(&[
        "--pool-name",
        "p",
        "--config-text",
        text,
        "--allow-experimental-plugins",
    ]);
    args.scheduler_config().unwrap();
}

#[test]
fn endpoint_selector_alone_says_what_to_use() {
    let args = parse(&[
        "--endpoint-selector",
        "app=vllm",
        "--endpoint-target-ports",
        "8000",
    ]);
    let err = args.pool_name().unwrap_err().to_string();
    assert!(
        err.contains("--endpoint-selector") && err.contains("InferencePool"),
        "{err}"
    );
    let args = parse(&["--endpoint-selector", "app=vllm", "--pool-name", "p"]);
    assert_eq!(args.pool_name().unwrap(), "p");
}
