//! Fuzz target: on any input the extractor must not panic and must agree with serde_json about
//! the top-level `model` or about rejection (see `bbr/tests/common/oracle.rs` for how
//! serde_json's own choices are reconciled).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

fuzz_target!(|data: &[u8]| {
    oracle::assert_agrees(data);
});
