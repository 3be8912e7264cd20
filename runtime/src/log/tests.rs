//! Logging set-up: each format writes what it promises, and the verbosity maps like
//! upstream's `-v`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::*;

/// A writer into shared memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Captured {
    type Writer = Captured;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn log_with(format: LogFormat, level: &str) -> String {
    let captured = Captured::default();
    let subscriber = subscriber(format, level, captured.clone());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(port = 9002, "serving");
        tracing::debug!("a detail");
    });
    captured.text()
}

#[test]
fn json_lines_are_json_objects() {
    // RUST_LOG would override the level; these tests assume it is unset, as in CI.
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    let text = log_with(LogFormat::Json, "info");
    let line = text.lines().next().unwrap();
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert!(line.contains("\"message\":\"serving\""), "{line}");
    assert!(line.contains("\"port\":9002"), "{line}");
    assert_eq!(
        text.lines().count(),
        1,
        "debug filtered out at info: {text}"
    );
}

#[test]
fn text_lines_are_plain_and_follow_the_level() {
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    let text = log_with(LogFormat::Text, "debug");
    assert!(!text.starts_with('{'), "{text}");
    // Fields may be wrapped in colour codes (as on a terminal): look for the parts.
    assert!(
        text.contains("INFO") && text.contains("serving") && text.contains("9002"),
        "{text}"
    );
    assert!(text.contains("a detail"), "debug shown at debug: {text}");
}

#[test]
fn verbosity_maps_like_upstream() {
    let levels: Vec<_> = (0..=5).map(level_for_verbosity).collect();
    assert_eq!(levels, ["info", "info", "debug", "debug", "trace", "trace"]);
}
