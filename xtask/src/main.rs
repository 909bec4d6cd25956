//! `cargo xtask`: the workspace's automation entry point.

fn main() {}
