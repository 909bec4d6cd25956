//! `veo3`: kie.ai's Veo 3 / 3.1 API from the command line, with a built-in sandbox and demo.
//!
//! The binary is a thin layer over `veo3-reqwest`: it parses arguments (clap), validates the
//! request before anything is sent (so a typo never costs credits), prints the task id the
//! moment it exists (so an interrupted wait can be resumed with `veo3 wait`), and maps errors to
//! one line on stderr and a documented exit code.

mod args;
mod commands;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::Cli;

/// Exit codes, documented in `veo3 --help`.
pub(crate) mod exit {
    /// The API, the network or a local file failed.
    pub(crate) const FAILURE: u8 = 1;
    /// Bad usage or a request that breaks a documented rule (nothing was sent).
    pub(crate) const USAGE: u8 = 2;
    /// The task ran and failed (content policy, generation failure, ...).
    pub(crate) const TASK_FAILED: u8 = 3;
    /// A wait hit its `--timeout`; the task may still finish (`veo3 wait TASK_ID`).
    pub(crate) const TIMED_OUT: u8 = 4;
    /// Interrupted by Ctrl-C; the task keeps running on the server.
    pub(crate) const INTERRUPTED: u8 = 130;
}

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
    match runtime.block_on(commands::run(cli)) {
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
