//! `veo3-sandbox`: runs the Veo3 API emulator until Ctrl-C or SIGTERM.
//!
//! On start it prints one JSON line to stdout, `{"api": "http://127.0.0.1:PORT", "files":
//! "http://127.0.0.1:PORT2"}`, so a script can read the URLs; everything else goes to stderr.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use veo3_sandbox::{FaultPlan, Sandbox, Shape};

/// A faithful, stateful local emulator of kie.ai's Veo 3 API.
#[derive(Debug, Parser)]
#[command(name = "veo3-sandbox", version)]
struct Args {
    /// API port (0 or absent: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// File-host port (0 or absent: any free port).
    #[arg(long, default_value_t = 0)]
    files_port: u16,
    /// Accepted bearer key (repeatable); with none, any non-empty key is accepted.
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<String>,
    /// Multiplies every job duration (0.01: three minutes take under two seconds).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Seed for task ids and random faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Random faults, e.g. `generate:lost=0.1,status:5xx=0.05,download:cut=0.2`.
    #[arg(long, value_name = "SPEC")]
    faults: Option<String>,
    /// Signs callbacks with this webhook HMAC key.
    #[arg(long, value_name = "KEY")]
    hmac_key: Option<String>,
    /// Response shapes: modern or legacy.
    #[arg(long, default_value = "modern")]
    shape: Shape,
    /// Mirrors envelope codes into the HTTP status.
    #[arg(long)]
    mirror_http_status: bool,
    /// Sends no callbacks.
    #[arg(long)]
    no_callbacks: bool,
    /// Credits each key starts with.
    #[arg(long, default_value_t = 100_000)]
    credits: i64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "veo3_sandbox=info".into()),
        )
        .init();
    let faults = match args.faults.as_deref().map(str::parse::<FaultPlan>) {
        None => FaultPlan::new(),
        Some(Ok(plan)) => plan,
        Some(Err(e)) => {
            eprintln!("veo3-sandbox: {e}");
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
    runtime.block_on(async move {
        let mut builder = Sandbox::builder()
            .api_port(args.port)
            .files_port(args.files_port)
            .time_scale(args.time_scale)
            .seed(args.seed)
            .faults(faults)
            .shape(args.shape)
            .mirror_http_status(args.mirror_http_status)
            .callbacks(!args.no_callbacks)
            .initial_credits(args.credits);
        for key in args.keys {
            builder = builder.key(key);
        }
        if let Some(key) = args.hmac_key {
            builder = builder.hmac_key(key);
        }
        let sandbox = match builder.start().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("veo3-sandbox: cannot listen: {e}");
                return ExitCode::FAILURE;
            }
        };
        let line = serde_json::json!({"api": sandbox.api_url(), "files": sandbox.files_url()});
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
        drop(stdout);
        wait_for_signal().await;
        tracing::info!("stopping");
        sandbox.shutdown();
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
