//! `veo3`: kie.ai's Veo 3 / 3.1 API from the command line, with a built-in sandbox and demo.
//!
//! The binary is a thin layer over `veo3-reqwest`: it parses arguments (clap), validates the
//! request before anything is sent (so a typo never costs credits), prints the task id the
//! moment it exists (so an interrupted wait can be resumed with `veo3 wait`), and maps errors to
//! one line on stderr and a documented exit code.

mod args;
mod demo;
mod error;
mod generate;
mod interrupt;
mod listen;
mod output;
mod progress;
mod session;
mod task;
mod upgrade;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::Cli;
use crate::error::exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            output::to_stderr(format_args!(
                "error: cannot start the async runtime: {error}"
            ));
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(session::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output::to_stderr(format_args!("error: {error}"));
            ExitCode::from(error.exit_code())
        }
    }
}

/// Diagnostics go to stderr through tracing; `-v` shows the SDK's debug events, `-vv` trace.
/// `RUST_LOG` overrides. The SDK never logs the API key, at any level.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "warn,veo3_core=debug,veo3_reqwest=debug,veo3_cli=debug",
        _ => "info,veo3_core=trace,veo3_reqwest=trace,veo3_cli=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
