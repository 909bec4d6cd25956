//! The `veo3` command-line tool.

fn main() {}
