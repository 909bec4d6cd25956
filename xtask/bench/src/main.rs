//! Benchmark programs behind `cargo xtask bench NAME`.
//!
//! Each benchmark measures its baseline in the same run and prints ratios, so figures are
//! comparable across machines.

fn main() -> anyhow::Result<()> {
    let name = std::env::args().nth(1).unwrap_or_default();
    match name.as_str() {
        other => anyhow::bail!("unknown benchmark {other:?}; known: (none yet)"),
    }
}
