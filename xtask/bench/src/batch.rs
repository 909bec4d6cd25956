//! `cargo xtask bench batch [JOBS] [TIME_SCALE]`: a batch of 1,000 `veo3_fast` jobs through
//! `veo3-jobs` on the sandbox (rate limit on: 20 per 10 s of service time; time scale 0.02 by
//! default, so the window is 200 ms of wall time), with a SQLite journal in a temporary folder.
//!
//! Four figures:
//! 1. **makespan** against the lower bound the rate limit sets: the last of N submits cannot
//!    leave before (N/20 - 1) windows, and its generation then takes the model's duration;
//! 2. **record-info requests per job**, against a per-task polling loop (a 30 s loop per task,
//!    as kie's quickstart does: one poll per started 30 s of generation, plus the last);
//! 3. **journal writes per job** and their share of the wall time (each is an fsync);
//! 4. the process's **peak RSS** (`VmHWM`), runner and sandbox together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use veo3_jobs::{BatchSettings, NewJob, Runner, RunnerOptions, SqliteStore, StateKind, Store};
use veo3_reqwest::{Client, GenerateRequest, Model, PollSchedule};
use veo3_sandbox::{Route, Sandbox};

const KEY: &str = "bench-key";
/// kie's account limit.
const RATE_MAX: u32 = 20;
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// The sandbox's `veo3_fast` generation time, in service time.
const GENERATION: Duration = Duration::from_secs(30);

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let jobs: usize = args.first().map_or(Ok(1000), |a| a.parse())?;
    let scale: f64 = args.get(1).map_or(Ok(0.02), |a| a.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(batch(jobs, scale))
}

async fn batch(count: usize, scale: f64) -> anyhow::Result<()> {
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(scale)
        .initial_credits(i64::MAX / 4)
        .seed(1)
        .start()
        .await?;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(sandbox.api_url())
        .poll_schedules(PollSchedule::for_model(&Model::Veo3Fast).scaled(scale))
        .build()?;
    let dir = std::env::temp_dir().join(format!("veo3-bench-batch-{}", std::process::id()));
    let store = Arc::new(SqliteStore::open(dir.join("journal.db"))?);
    let mut settings = BatchSettings::new(dir.join("videos"));
    settings.concurrency = count.max(1);
    settings.rate_max = RATE_MAX;
    let window = RATE_WINDOW.mul_f64(scale);
    settings.rate_window_ms = u64::try_from(window.as_millis())?.max(1);
    let jobs: Vec<NewJob> = (0..count)
        .map(|i| {
            let request = GenerateRequest::builder(format!("bench prompt {i}"))
                .model(Model::Veo3Fast)
                .build()
                .expect("valid");
            NewJob::new(request, format!("job-{i:05}")).cost(60)
        })
        .collect();
    let batch = store.create_batch(&settings, &jobs).await?;
    let started = Instant::now();
    let summary = Runner::new(client, store.clone(), RunnerOptions::default())
        .run(batch)
        .await
        .context("the batch runs")?;
    let makespan = started.elapsed();
    let stats = sandbox.stats();
    let _ = std::fs::remove_dir_all(&dir);

    let downloaded = summary
        .counts
        .get(&StateKind::Downloaded)
        .copied()
        .unwrap_or(0);
    let windows = (count as f64 / f64::from(RATE_MAX)).ceil() - 1.0;
    let bound = window.mul_f64(windows.max(0.0)) + GENERATION.mul_f64(scale);
    let per_job = |n: u64| n as f64 / count as f64;
    let generation_polls = (GENERATION.as_secs_f64() / 30.0).ceil() + 1.0;
    println!("batch: {count} veo3_fast jobs, time scale {scale}, rate limit 20 per 10 s");
    println!(
        "  downloaded                 {downloaded}/{count}, 429 answers: {}",
        stats.answered_429
    );
    println!(
        "  makespan                   {:.2?} vs lower bound {:.2?}: {:.3}x (target <= 1.1x)",
        makespan,
        bound,
        makespan.as_secs_f64() / bound.as_secs_f64()
    );
    println!(
        "  record-info per job        {:.2} vs {:.2} for a 30 s loop per task: {:.2}x",
        per_job(stats.requests(Route::RecordInfo)),
        generation_polls,
        per_job(stats.requests(Route::RecordInfo)) / generation_polls
    );
    println!(
        "  journal writes per job     {:.2}, {:.1?} in total: {:.1}% of the wall time",
        per_job(summary.journal_writes),
        summary.journal_time,
        100.0 * summary.journal_time.as_secs_f64() / makespan.as_secs_f64()
    );
    println!("  peak RSS                   {}", peak_rss());
    Ok(())
}

/// `VmHWM` from `/proc/self/status` (Linux), else "n/a".
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "n/a".into())
}
