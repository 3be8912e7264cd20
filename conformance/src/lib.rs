//! Conformance: end-to-end harness around a real Envoy.
