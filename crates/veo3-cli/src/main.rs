//! `veo3`: kie.ai's Veo 3 / 3.1 API from the command line, with a built-in sandbox and demo.
//!
//! The binary is a thin layer over `veo3-reqwest`: it parses arguments (clap), validates the
//! request before anything is sent (so a typo never costs credits), prints the task id the
//! moment it exists (so an interrupted wait can be resumed with `veo3 wait`), and maps errors to
//! one line on stderr and a documented exit code.

mod args;
mod batch;
mod demo;
mod docs;
mod error;
mod generate;
mod interrupt;
mod jobs;
mod listen;
mod output;
mod progress;
mod session;
mod task;
mod upgrade;
mod upload;

use std::process::ExitCode;

use crate::args::Cli;
use crate::error::exit;

fn main() -> ExitCode {
    let cli = Cli::from_process();
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
            // Messages quote API strings (error messages, task ids, URLs): one clean line.
            let message = error.to_string();
            output::to_stderr(format_args!("error: {}", output::clean_line(&message)));
            ExitCode::from(error.exit_code(error::anything_sent()))
        }
    }
}

/// Diagnostics go to stderr through tracing; `-v` shows the SDK's debug events, `-vv` trace.
/// `RUST_LOG` overrides (when set and not empty). The SDK never logs the API key, at any
/// level. Colours only on a terminal, and never with `NO_COLOR` set.
fn init_tracing(verbose: u8) {
    use std::io::IsTerminal as _;
    let default = match verbose {
        0 => "warn",
        1 => "warn,veo3_core=debug,veo3_reqwest=debug,veo3_cli=debug",
        _ => "info,veo3_core=trace,veo3_reqwest=trace,veo3_cli=trace",
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .and_then(|value| tracing_subscriber::EnvFilter::try_new(value).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .init();
}

/// Colours only on a terminal, and not when `NO_COLOR` is set to anything but the empty
/// string (<https://no-color.org>).
fn colours(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(colours(true, Some("".into())), "an empty NO_COLOR is unset");
        assert!(!colours(true, Some("1".into())));
        assert!(!colours(false, None));
    }
}
