//! Developer tasks: `cargo xtask tools|test|up`.

fn main() {}
