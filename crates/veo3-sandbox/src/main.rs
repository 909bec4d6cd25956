//! `veo3-sandbox`: runs the Veo3 API emulator until Ctrl-C or SIGTERM.
//!
//! On start it prints one JSON line to stdout, `{"api": "http://127.0.0.1:PORT", "files":
//! "http://127.0.0.1:PORT2", "uploads": "http://127.0.0.1:PORT3"}`, so a script can read the
//! URLs; everything else goes to stderr.

use std::process::ExitCode;

use clap::Parser;
use veo3_sandbox::serve::{ServeArgs, serve_until_signal};

/// A faithful, stateful local emulator of kie.ai's Veo 3 API.
#[derive(Debug, Parser)]
#[command(name = "veo3-sandbox", version)]
struct Cli {
    #[command(flatten)]
    args: ServeArgs,
}

fn main() -> ExitCode {
    let Cli { args } = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "veo3_sandbox=info".into()),
        )
        .init();
    let builder = match args.builder() {
        Ok(builder) => builder,
        Err(e) => {
            eprintln!("veo3-sandbox: --faults: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("veo3-sandbox: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve_until_signal(builder)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("veo3-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}
