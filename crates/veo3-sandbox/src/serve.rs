//! The sandbox as a server process: the command-line options shared by the `veo3-sandbox`
//! binary and `veo3 sandbox`, and the run-until-signal loop behind both.

use std::io::Write as _;

use crate::{FaultPlan, FaultSpecError, RateLimit, Sandbox, SandboxBuilder, Shape};

/// Options of a sandbox served from the command line (`veo3-sandbox --help`).
#[derive(Clone, Debug, clap::Args)]
#[non_exhaustive]
pub struct ServeArgs {
    /// API port (0 or absent: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// File-host port (0 or absent: any free port).
    #[arg(long, default_value_t = 0)]
    pub files_port: u16,
    /// Upload-host port (0 or absent: any free port).
    #[arg(long, default_value_t = 0)]
    pub uploads_port: u16,
    /// Accepted bearer key (repeatable); with none, any non-empty key is accepted.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// Multiplies every job duration (0.01: three minutes take under two seconds); a finite
    /// number above 0.
    #[arg(
        long,
        default_value_t = 1.0,
        allow_negative_numbers = true,
        value_parser = crate::config::parse_time_scale
    )]
    pub time_scale: f64,
    /// Seed for task ids and random faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Random faults, e.g. `generate:lost=0.1,status:5xx=0.05,download:cut=0.2`;
    /// `record-info:record-null-early@MS` answers "record is null" for the first MS of every
    /// task's life (service time).
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Signs callbacks with this webhook HMAC key.
    #[arg(long, value_name = "KEY")]
    pub hmac_key: Option<String>,
    /// Response shapes: modern or legacy.
    #[arg(long, default_value = "modern")]
    pub shape: Shape,
    /// Mirrors envelope codes into the HTTP status.
    #[arg(long)]
    pub mirror_http_status: bool,
    /// Sends no callbacks.
    #[arg(long)]
    pub no_callbacks: bool,
    /// Credits each key starts with (0 or more).
    #[arg(
        long,
        default_value_t = 100_000,
        allow_negative_numbers = true,
        value_parser = crate::config::parse_credits
    )]
    pub credits: i64,
    /// At most MAX generations (generate + extend) per WINDOW of service time per key, so the
    /// window scales with --time-scale; the excess is answered 429.
    #[arg(long, value_name = "MAX/WINDOW", default_value = "20/10s")]
    pub rate_limit: RateLimit,
    /// Turns the generation rate limit off.
    #[arg(long, conflicts_with = "rate_limit")]
    pub no_rate_limit: bool,
}

impl ServeArgs {
    /// The builder these options describe; fails on an unreadable `--faults` spec.
    pub fn builder(&self) -> Result<SandboxBuilder, FaultSpecError> {
        let faults = match self.faults.as_deref() {
            None => FaultPlan::new(),
            Some(spec) => spec.parse::<FaultPlan>()?,
        };
        let mut builder = Sandbox::builder()
            .api_port(self.port)
            .files_port(self.files_port)
            .uploads_port(self.uploads_port)
            .time_scale(self.time_scale)
            .seed(self.seed)
            .faults(faults)
            .shape(self.shape)
            .mirror_http_status(self.mirror_http_status)
            .callbacks(!self.no_callbacks)
            .initial_credits(self.credits)
            .rate_limit((!self.no_rate_limit).then_some(self.rate_limit));
        for key in &self.keys {
            builder = builder.key(key);
        }
        if let Some(key) = &self.hmac_key {
            builder = builder.hmac_key(key);
        }
        Ok(builder)
    }
}

/// Starts a sandbox, prints `{"api": ..., "files": ..., "uploads": ...}` as one line on stdout, and serves
/// until Ctrl-C or SIGTERM. `builder` comes from [`ServeArgs::builder`] or is made by hand.
pub async fn serve_until_signal(builder: SandboxBuilder) -> std::io::Result<()> {
    let sandbox = builder.start().await?;
    let line = serde_json::json!({
        "api": sandbox.api_url(),
        "files": sandbox.files_url(),
        "uploads": sandbox.upload_url(),
    });
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
    }
    wait_for_signal().await;
    tracing::info!("stopping");
    sandbox.shutdown();
    Ok(())
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
