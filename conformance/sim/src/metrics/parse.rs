//! Strict reading of a Prometheus text page, for tests of what the simulator serves.
//!
//! The parser is the workspace's one ([`switchyard_runtime::promtext`]) in strict mode: it
//! keeps the `vllm:`-style names with colons, reads `# TYPE` lines and rejects any malformed
//! line with its line number.

pub use switchyard_runtime::promtext::{Exposition, MetricType, Sample};

use crate::error::SimError;

/// Parses a whole exposition strictly; the first malformed line is a
/// [`SimError::BadRequest`] naming its line number.
pub fn parse(text: &str) -> Result<Exposition<'_>, SimError> {
    Exposition::parse_strict(text).map_err(|err| SimError::BadRequest(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_line_is_a_bad_request_naming_the_line() {
        let err = parse("# TYPE x gauge\nx{a=b} 1\n").unwrap_err();
        assert!(
            matches!(&err, SimError::BadRequest(text) if text.starts_with("metrics line 2: ")),
            "{err}"
        );
        let page = parse("# TYPE x gauge\nx{a=\"b\"} 1\n");
        assert!(page.is_ok_and(|page| page.type_of("x") == Some(MetricType::Gauge)));
    }
}
