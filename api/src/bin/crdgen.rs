//! Prints every CRD Switchyard serves as multi-document YAML on stdout.
//!
//! `cargo run -q -p switchyard-api --bin crdgen > charts/crds/switchyard-crds.yaml`

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let yaml = match switchyard_api::crds::render_yaml() {
        Ok(yaml) => yaml,
        Err(err) => {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("crdgen: {message}");
            return ExitCode::FAILURE;
        }
    };
    match std::io::stdout().lock().write_all(yaml.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("crdgen: cannot write to stdout: {err}");
            ExitCode::FAILURE
        }
    }
}
