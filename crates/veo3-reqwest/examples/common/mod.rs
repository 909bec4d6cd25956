//! What every example shares: where the API is, and how fast to poll.
//!
//! - `KIE_BASE_URL` set (a sandbox, e.g. `veo3-sandbox` or `veo3 sandbox`, or
//!   `https://api.kie.ai` to reach the real service): the client comes from the environment
//!   (`KIE_API_KEY`, `KIE_BASE_URL`).
//! - `KIE_BASE_URL` unset: the example starts a sandbox in-process and talks to it, so
//!   `cargo run --example NAME` works offline and never bills anyone.
//!
//! `VEO3_POLL_INTERVAL_MS` makes waits poll at that interval from the start (handy against a
//! sandbox running at a small time scale); otherwise the client's per-stage presets apply.

use std::time::Duration;

use veo3_reqwest::{Client, Observer, PollSchedule, WaitOptions};
use veo3_sandbox::{Sandbox, SandboxHandle};

/// The client, the wait options, and the in-process sandbox if one was started (keep it
/// alive while the client runs).
pub(crate) struct Setup {
    pub(crate) client: Client,
    pub(crate) wait: WaitOptions,
    pub(crate) _sandbox: Option<SandboxHandle>,
}

pub(crate) async fn setup(observer: Observer) -> Result<Setup, Box<dyn std::error::Error>> {
    let poll = std::env::var("VEO3_POLL_INTERVAL_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(Duration::from_millis);
    let mut wait = WaitOptions::default();
    if let Some(interval) = poll {
        wait = wait.first_delay(interval).poll_interval(interval);
    }
    if std::env::var("KIE_BASE_URL").is_ok_and(|url| !url.trim().is_empty()) {
        let client = Client::builder().from_env().observer(observer).build()?;
        eprintln!("using the API at {}", client.base_url());
        return Ok(Setup {
            client,
            wait,
            _sandbox: None,
        });
    }
    // A sandbox whose jobs take a hundredth of their real duration.
    let sandbox = Sandbox::builder().time_scale(0.01).start().await?;
    eprintln!(
        "KIE_BASE_URL is not set: using an in-process sandbox at {}",
        sandbox.api_url()
    );
    let fast = PollSchedule::new(
        Duration::from_millis(200),
        Duration::from_millis(200),
        Duration::from_secs(120),
    );
    let client = Client::builder()
        .api_key(std::env::var("KIE_API_KEY").unwrap_or_else(|_| "sk-sandbox-demo".into()))
        .base_url(sandbox.api_url())
        .poll_schedules(fast)
        .observer(observer)
        .build()?;
    Ok(Setup {
        client,
        wait,
        _sandbox: Some(sandbox),
    })
}
