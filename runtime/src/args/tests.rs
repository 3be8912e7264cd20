//! The shared groups flattened into a parser, with a binary's own defaults and environment
//! variables applied the way BBR applies them.

use clap::Parser;

use super::*;

/// The EPP's shape: the groups as they are.
#[derive(Debug, Parser)]
struct Plain {
    #[command(flatten)]
    serve: ServeArgs,
    #[command(flatten)]
    log: LogArgs,
}

/// BBR's shape: other defaults and environment variables on the same flags.
#[derive(Debug, Parser)]
#[command(
    mut_arg("grpc_port", |a| a.env("TEST_RUNTIME_GRPC_PORT").default_value("9004")),
    mut_arg("log_format", |a| a.env("TEST_RUNTIME_LOG_FORMAT")),
)]
struct Adjusted {
    #[command(flatten)]
    serve: ServeArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[test]
fn defaults_are_the_epps() {
    let plain = Plain::try_parse_from(["epp"]).unwrap();
    let [grpc, health, metrics] = plain.serve.addresses().unwrap();
    assert_eq!(
        (grpc.port(), health.port(), metrics.port()),
        (9002, 9003, 9090)
    );
    assert!(grpc.ip().is_unspecified());
    assert_eq!(plain.log.log_format, LogFormat::Json);
    assert_eq!(plain.log.verbosity, 0);
}

#[test]
fn flags_are_read() {
    let plain = Plain::try_parse_from([
        "epp",
        "--bind-address",
        "127.0.0.1",
        "--grpc-port",
        "1",
        "--log-format",
        "text",
        "-v",
        "4",
    ])
    .unwrap();
    assert_eq!(
        plain.serve.addresses().unwrap()[0].to_string(),
        "127.0.0.1:1"
    );
    assert_eq!(plain.log.log_format, LogFormat::Text);
    assert_eq!(plain.log.verbosity, 4);
}

#[test]
fn a_binary_keeps_its_own_defaults_and_environment() {
    let adjusted = Adjusted::try_parse_from(["bbr"]).unwrap();
    assert_eq!(adjusted.serve.grpc_port, 9004);
    let help = Adjusted::try_parse_from(["bbr", "--help"])
        .unwrap_err()
        .to_string();
    assert!(help.contains("TEST_RUNTIME_GRPC_PORT"), "{help}");
    assert!(help.contains("[default: 9004]"), "{help}");
    assert!(help.contains("TEST_RUNTIME_LOG_FORMAT"), "{help}");
}

#[test]
fn a_port_used_twice_names_the_flags() {
    let plain = Plain::try_parse_from(["epp", "--metrics-port", "9002"]).unwrap();
    let err = plain.serve.addresses().unwrap_err().to_string();
    assert!(
        err.contains("9002") && err.contains("--metrics-port"),
        "{err}"
    );
    // Port 0 ("any free port") may repeat.
    let zeros = Plain::try_parse_from([
        "epp",
        "--grpc-port",
        "0",
        "--grpc-health-port",
        "0",
        "--metrics-port",
        "0",
    ])
    .unwrap();
    assert!(zeros.serve.addresses().is_ok());
}
