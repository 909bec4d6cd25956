//! Benchmark programs behind `cargo xtask bench NAME`.
//!
//! Each benchmark measures its baseline in the same run and prints ratios, so figures are
//! comparable across machines.

mod batch;
mod callbacks;
mod client;
mod listen;
mod sandbox;
mod upload;

fn main() -> anyhow::Result<()> {
    let name = std::env::args().nth(1).unwrap_or_default();
    let rest: Vec<String> = std::env::args().skip(2).collect();
    match name.as_str() {
        "client" => client::run(&rest),
        "sandbox" => sandbox::run(&rest),
        "callbacks" => callbacks::run(&rest),
        "listen" => listen::run(&rest),
        "batch" => batch::run(&rest),
        "upload" => upload::run(&rest),
        other => {
            anyhow::bail!(
                "unknown benchmark {other:?}; known: client, sandbox, callbacks, listen, batch, upload"
            )
        }
    }
}
