//! `cargo xtask bench callbacks`: how soon does a wait notice a finished task, and how many
//! status requests does it spend?
//!
//! 100 `veo3_fast` tasks per strategy on the sandbox (HMAC-signed callbacks, time scale 0.02
//! by default, so a minute of service time takes 1.2 s). Each task finishes at its own time,
//! spread evenly over 60-300 s of service time after submission (the reference's "typically
//! 2-5 min", extended down to Fast's one minute): a completer calls `complete_now` at that
//! moment, which also fires the task's callback. For every task the benchmark records the
//! **detection delay**, from completion (the sandbox's completion time) to the wait returning,
//! in service time and in wall time, and counts the record-info requests the sandbox served.
//!
//! Strategies, all through `veo3-reqwest` with every poll duration scaled by the time scale
//! ([`PollSchedule::scaled`]):
//!
//! 1. **fixed 30 s loop** (the baseline): sleep 30 s, read record-info, repeat until the task
//!    is done, as kie's quickstart does;
//! 2. **default polling**: `Client::wait_for_task` with the core's generation schedule (30 s,
//!    then 15 s growing to 30 s, with jitter);
//! 3. **hybrid**: `Client::wait_for_task_hybrid` with its default safety net (first read at
//!    the generation stage's expected completion, 5 min, then every 2 min), fed by a
//!    `veo3-webhook` receiver; when callbacks arrive, the target is at most 1.1 record-info
//!    reads per task (issue 16: it was 1.97 with a first safety read at 2 min);
//! 4. **hybrid, callbacks lost**: the same with the sandbox's callbacks switched off, to show
//!    what the safety net alone costs.
//!
//! Figures are printed next to the baseline as ratios. Real latencies (loopback HTTP, a few
//! milliseconds) do not shrink with the time scale, so in service time the hybrid's delay is
//! inflated by 1/scale; the wall-time column shows it as it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::Instant;
use veo3_reqwest::core::PollTrigger;
use veo3_reqwest::{
    Client, Event, GenerateRequest, Model, Observer, PollSchedule, Stage, TaskState, Veo3Api,
    WaitOptions,
};
use veo3_sandbox::{Durations, Route, Sandbox};
use veo3_webhook::{Config, Receiver, Verifier, WebhookKey};

const KEY: &str = "bench-key";
const HMAC_KEY: &str = "bench_webhook_hmac_key_0123456789";
/// The quickstart's polling interval, in service time.
const QUICKSTART_INTERVAL: Duration = Duration::from_secs(30);
/// Completion times, in service time after submission: evenly spread over this range.
const FASTEST: Duration = Duration::from_secs(60);
const SLOWEST: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    Fixed30,
    DefaultPolling,
    Hybrid,
    HybridLost,
}

impl Strategy {
    fn label(self) -> &'static str {
        match self {
            Self::Fixed30 => "fixed 30 s loop (baseline)",
            Self::DefaultPolling => "default polling schedule",
            Self::Hybrid => "hybrid (callback + safety net)",
            Self::HybridLost => "hybrid, every callback lost",
        }
    }
}

/// One task's figures.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Completion to return, service time.
    service: Duration,
    /// Completion to return, wall time.
    wall: Duration,
}

/// One strategy's figures.
struct Run {
    strategy: Strategy,
    samples: Vec<Sample>,
    reads: u64,
    callback_reads: u64,
}

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut tasks = 100;
    let mut scale = 0.02;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--quick" => (tasks, scale) = (20, 0.01),
            "--tasks" => tasks = iter.next().context("--tasks N")?.parse()?,
            "--scale" => scale = iter.next().context("--scale X")?.parse()?,
            other => bail!("unknown argument {other:?}; known: --quick, --tasks N, --scale X"),
        }
    }
    if tasks == 0 || !(scale > 0.0 && scale <= 1.0) {
        bail!("need at least one task and a time scale in (0, 1]");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(tasks, scale))
}

async fn bench(tasks: usize, scale: f64) -> anyhow::Result<()> {
    println!(
        "callbacks: {tasks} veo3_fast tasks per strategy, finishing {}-{} s (service time) after submission, time scale {scale}",
        FASTEST.as_secs(),
        SLOWEST.as_secs()
    );
    let mut runs = Vec::new();
    for strategy in [
        Strategy::Fixed30,
        Strategy::DefaultPolling,
        Strategy::Hybrid,
        Strategy::HybridLost,
    ] {
        runs.push(run_strategy(strategy, tasks, scale).await?);
    }
    report(&runs, scale);
    Ok(())
}

/// Runs `tasks` tasks with `strategy` on a fresh sandbox.
async fn run_strategy(strategy: Strategy, tasks: usize, scale: f64) -> anyhow::Result<Run> {
    let sandbox = Arc::new(
        Sandbox::builder()
            .key(KEY)
            .time_scale(scale)
            .rate_limit(None)
            .initial_credits(1_000_000_000)
            .hmac_key(HMAC_KEY)
            .callbacks(strategy != Strategy::HybridLost)
            // Tasks end only when the completer says so.
            .durations(Durations::uniform(Duration::from_secs(24 * 3600)))
            .start()
            .await?,
    );
    let receiver = Receiver::bind(
        "127.0.0.1:0",
        Config::new(Verifier::new(WebhookKey::new(HMAC_KEY)?)),
    )
    .await?;
    let callback_reads = Arc::new(AtomicU64::new(0));
    let counter = callback_reads.clone();
    let observer = Observer::new(move |event: &Event| {
        if let Event::Polled {
            trigger: PollTrigger::Callback,
            ..
        } = event
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let client = Client::builder()
        .api_key(KEY)
        .base_url(sandbox.api_url())
        .poll_schedule(Stage::Generation, PollSchedule::generation().scaled(scale))
        .observer(observer)
        .build()?;
    let call_back_url = receiver.url("/veo3/callback");
    let hybrid = matches!(strategy, Strategy::Hybrid | Strategy::HybridLost);

    let mut waits = tokio::task::JoinSet::new();
    for i in 0..tasks {
        let (client, sandbox, inbox) = (client.clone(), sandbox.clone(), receiver.inbox());
        let mut request = GenerateRequest::builder(format!("task {i}: a red fox in fresh snow"))
            .model(Model::Veo3Fast);
        if hybrid {
            request = request.call_back_url(call_back_url.clone());
        }
        let request = request.build()?;
        // Evenly spread, in a shuffled order (61 is coprime with any count not divisible by it).
        let slot = (i * 61) % tasks;
        let after = FASTEST + (SLOWEST - FASTEST).mul_f64(slot as f64 / tasks as f64);
        waits.spawn(async move {
            let task_id = client.generate(&request).await?.task_id;
            let completer = {
                let (sandbox, task_id) = (sandbox.clone(), task_id.clone());
                let at = Instant::now() + after.mul_f64(scale);
                tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    let completed = Instant::now();
                    sandbox.complete_now(&task_id);
                    completed
                })
            };
            let record = match strategy {
                Strategy::Fixed30 => fixed_loop(&client, &task_id, scale).await?,
                Strategy::DefaultPolling => {
                    client
                        .wait_for_task(&task_id, &WaitOptions::default())
                        .await?
                }
                Strategy::Hybrid | Strategy::HybridLost => {
                    client
                        .wait_for_task_hybrid(&task_id, &inbox, &WaitOptions::default())
                        .await?
                }
            };
            let (returned, returned_ms) = (Instant::now(), sandbox.now_ms());
            if record.state != TaskState::Success {
                bail!("task {task_id} ended {:?}", record.state);
            }
            let completed = completer.await?;
            let info = sandbox.task(&task_id).context("the task exists")?;
            let service_ms = u64::try_from(returned_ms - info.complete_time).unwrap_or(0);
            anyhow::Ok(Sample {
                service: Duration::from_millis(service_ms),
                wall: returned.saturating_duration_since(completed),
            })
        });
    }
    let mut samples = Vec::with_capacity(tasks);
    while let Some(sample) = waits.join_next().await {
        samples.push(sample??);
    }
    let reads = sandbox.stats().requests(Route::RecordInfo);
    receiver.shutdown().await?;
    let callback_reads = callback_reads.load(Ordering::Relaxed);
    Ok(Run {
        strategy,
        samples,
        reads,
        callback_reads,
    })
}

/// kie's quickstart: every 30 s, read the record until it is done.
async fn fixed_loop(
    client: &Client,
    task_id: &str,
    scale: f64,
) -> Result<veo3_reqwest::TaskRecord, veo3_reqwest::Error> {
    loop {
        tokio::time::sleep(QUICKSTART_INTERVAL.mul_f64(scale)).await;
        let record = client.record_info(task_id).await?;
        if record.state != TaskState::Generating {
            return Ok(record);
        }
    }
}

fn report(runs: &[Run], scale: f64) {
    let Some(baseline) = runs.first() else { return };
    let base_delay = mean(baseline.samples.iter().map(|s| s.service));
    let base_reads = per_task(baseline);
    println!(
        "{:<32} {:>30} {:>24} {:>14} {:>22}",
        "", "detection delay, service s", "wall ms", "record-info", "vs baseline"
    );
    println!(
        "{:<32} {:>8} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>14} {:>10} {:>11}",
        "strategy",
        "mean",
        "p50",
        "p95",
        "max",
        "mean",
        "p50",
        "p95",
        "per task",
        "delay",
        "requests"
    );
    for run in runs {
        let mut service: Vec<Duration> = run.samples.iter().map(|s| s.service).collect();
        let mut wall: Vec<Duration> = run.samples.iter().map(|s| s.wall).collect();
        service.sort_unstable();
        wall.sort_unstable();
        let delay = mean(service.iter().copied());
        let reads = per_task(run);
        let s = |d: Duration| d.as_secs_f64();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<32} {:>8.2} {:>6.2} {:>6.2} {:>7.2} {:>7.1} {:>7.1} {:>7.1} {:>14.2} {:>9.3}x {:>10.2}x",
            run.strategy.label(),
            s(delay),
            s(percentile(&service, 50)),
            s(percentile(&service, 95)),
            s(percentile(&service, 100)),
            ms(mean(wall.iter().copied())),
            ms(percentile(&wall, 50)),
            ms(percentile(&wall, 95)),
            reads,
            s(delay) / s(base_delay).max(1e-9),
            reads / base_reads.max(1e-9),
        );
        if matches!(run.strategy, Strategy::Hybrid | Strategy::HybridLost) {
            println!(
                "{:<32} of which {:.2} per task confirmed a callback, {:.2} were safety polls",
                "",
                run.callback_reads as f64 / run.samples.len() as f64,
                (run.reads - run.callback_reads.min(run.reads)) as f64 / run.samples.len() as f64
            );
        }
    }
    println!(
        "(service time = wall time / {scale}; real latencies do not shrink with the scale, so a few wall ms read as {:.0}x as much service time)",
        1.0 / scale
    );
}

fn per_task(run: &Run) -> f64 {
    run.reads as f64 / run.samples.len().max(1) as f64
}

fn mean(durations: impl Iterator<Item = Duration>) -> Duration {
    let (sum, n) = durations.fold((Duration::ZERO, 0_u32), |(sum, n), d| (sum + d, n + 1));
    if n == 0 { Duration::ZERO } else { sum / n }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() - 1) * p / 100]
}
