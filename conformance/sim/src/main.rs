//! switchyard-sim binary.
fn main() {}
