//! `cargo xtask bench batch [JOBS] [TIME_SCALE] [--journal postgres://...]`: a batch of 1,000
//! `veo3_fast` jobs through `veo3-jobs` on the sandbox (rate limit on: 20 per 10 s of service
//! time; time scale 0.02 by default, so the window is 200 ms of wall time), with a SQLite
//! journal in a temporary folder.
//!
//! By default the SQLite runner is measured against a **per-task polling loop**, the baseline
//! (what a shell loop around `veo3 generate --wait --poll-interval 30s` does: every job
//! submitted at the limit's pace plus 5%, then polled every 30 s of service time until done,
//! then downloaded). Each side runs in a child process of this program (the sandbox stays in the
//! parent, so a child's peak RSS is its own), timed from spawn to exit; the sides take turns
//! (runner, loop, loop, runner, runner, loop) and every figure is the mean of three runs with
//! its range.
//!
//! With `--journal postgres://...`, the same batch also runs on that database (each run in a
//! schema of its own, dropped after) by 1 worker and by 3 workers (`Runner::work`, each with
//! its own client and connections, sharing the account limiter in the database), side by side
//! with SQLite, which is the baseline: the runs alternate (SQLite, 1, 3, 3, 1, SQLite) and each
//! figure is the mean of two runs with their spread.
//!
//! Four figures per journal:
//! 1. **makespan** against the lower bound the rate limit sets: the last of N submits cannot
//!    leave before (N/20 - 1) windows, and its generation then takes the model's duration;
//! 2. **record-info requests per job**, against a per-task polling loop (a 30 s loop per task,
//!    as kie's quickstart does: one poll per started 30 s of generation, plus the last);
//! 3. **journal writes per job** and their share of the wall time (each is an fsync, or a
//!    statement on the server; claims count as writes, though on SQLite they wait for no
//!    fsync; with 3 workers the time is summed over them);
//! 4. the **peak RSS** (`VmHWM`): of the child process by default; with `--journal`, of this
//!    process (reset before each run), runner and sandbox together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use veo3_jobs::{
    BatchSettings, NewJob, PostgresStore, RunSummary, Runner, RunnerOptions, SqliteStore,
    StateKind, Store, WorkOptions,
};
use veo3_reqwest::{Client, GenerateRequest, Model, PollSchedule};
use veo3_sandbox::{Route, Sandbox};

const KEY: &str = "bench-key";
/// kie's account limit.
const RATE_MAX: u32 = 20;
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// The sandbox's `veo3_fast` generation time, in service time.
const GENERATION: Duration = Duration::from_secs(30);

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut positional = Vec::new();
    let mut journal = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--journal" => journal = Some(args.next().context("--journal URL")?.clone()),
            other => positional.push(other.to_owned()),
        }
    }
    if positional.first().map(String::as_str) == Some("--child") {
        return child(&positional[1..]);
    }
    let jobs: usize = positional.first().map_or(Ok(1000), |a| a.parse())?;
    let scale: f64 = positional.get(1).map_or(Ok(0.02), |a| a.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match journal {
            None => runner_against_loop(jobs, scale).await,
            Some(url) if veo3_jobs::is_postgres_url(&url) => side_by_side(&url, jobs, scale).await,
            Some(other) => anyhow::bail!("--journal {other}: expected a postgres:// URL"),
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Sqlite,
    Postgres { workers: usize },
}

/// One run's figures.
#[derive(Clone, Debug, Default)]
struct Figures {
    downloaded: u64,
    answered_429: u64,
    makespan: Duration,
    bound: Duration,
    record_info_per_job: f64,
    generation_polls: f64,
    writes_per_job: f64,
    write_time: Duration,
    peak_rss_kb: Option<u64>,
}

impl Figures {
    fn ratio(&self) -> f64 {
        self.makespan.as_secs_f64() / self.bound.as_secs_f64()
    }

    /// The mean of `runs`, with the makespan's spread (max - min).
    fn mean(runs: &[Figures]) -> (Figures, Duration) {
        let n = runs.len().max(1) as f64;
        let mean = |f: &dyn Fn(&Figures) -> f64| runs.iter().map(f).sum::<f64>() / n;
        let spread = runs.iter().map(|r| r.makespan).max().unwrap_or_default()
            - runs.iter().map(|r| r.makespan).min().unwrap_or_default();
        let first = runs.first().cloned().unwrap_or_default();
        (
            Figures {
                downloaded: runs.iter().map(|r| r.downloaded).min().unwrap_or(0),
                answered_429: runs.iter().map(|r| r.answered_429).sum(),
                makespan: Duration::from_secs_f64(mean(&|r| r.makespan.as_secs_f64())),
                bound: first.bound,
                record_info_per_job: mean(&|r| r.record_info_per_job),
                generation_polls: first.generation_polls,
                writes_per_job: mean(&|r| r.writes_per_job),
                write_time: Duration::from_secs_f64(mean(&|r| r.write_time.as_secs_f64())),
                peak_rss_kb: runs.iter().filter_map(|r| r.peak_rss_kb).max(),
            },
            spread,
        )
    }

    fn print(&self, label: &str, against: Option<(&Figures, Duration)>) {
        let jobs = self.downloaded;
        println!("{label}");
        println!(
            "  downloaded                 {jobs}, 429 answers: {}",
            self.answered_429
        );
        let spread = against
            .map(|(_, s)| format!(" (spread {s:.2?})"))
            .unwrap_or_default();
        let versus = against
            .map(|(base, _)| {
                format!(
                    "; {:.3}x the SQLite runner's",
                    self.makespan.as_secs_f64() / base.makespan.as_secs_f64()
                )
            })
            .unwrap_or_default();
        println!(
            "  makespan                   {:.2?}{spread} vs lower bound {:.2?}: {:.3}x (target <= 1.1x){versus}",
            self.makespan,
            self.bound,
            self.ratio()
        );
        println!(
            "  record-info per job        {:.2} vs {:.2} for a 30 s loop per task: {:.2}x",
            self.record_info_per_job,
            self.generation_polls,
            self.record_info_per_job / self.generation_polls
        );
        println!(
            "  journal writes per job     {:.2}, {:.1?} in total: {:.1}% of the wall time",
            self.writes_per_job,
            self.write_time,
            100.0 * self.write_time.as_secs_f64() / self.makespan.as_secs_f64()
        );
        println!(
            "  peak RSS                   {}",
            self.peak_rss_kb
                .map_or_else(|| "n/a".into(), |kb| format!("{kb} kB"))
        );
    }
}

fn print_header(jobs: usize, scale: f64) {
    println!("batch: {jobs} veo3_fast jobs, time scale {scale}, rate limit 20 per 10 s");
}

async fn side_by_side(url: &str, jobs: usize, scale: f64) -> anyhow::Result<()> {
    let order = [
        Side::Sqlite,
        Side::Postgres { workers: 1 },
        Side::Postgres { workers: 3 },
        Side::Postgres { workers: 3 },
        Side::Postgres { workers: 1 },
        Side::Sqlite,
    ];
    let mut runs: Vec<(Side, Figures)> = Vec::new();
    for (round, side) in order.into_iter().enumerate() {
        let figures = once(side, jobs, scale, round, Some(url))
            .await
            .with_context(|| format!("{side:?}"))?;
        eprintln!("  run {round}: {side:?}: {:.2?}", figures.makespan);
        runs.push((side, figures));
    }
    let of = |side: Side| -> Vec<Figures> {
        runs.iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, f)| f.clone())
            .collect()
    };
    let (sqlite, sqlite_spread) = Figures::mean(&of(Side::Sqlite));
    print_header(jobs, scale);
    println!("(each side: the mean of 2 runs, alternated; the SQLite runner is the baseline)");
    sqlite.print(
        &format!("sqlite, 1 runner (spread {sqlite_spread:.2?})"),
        None,
    );
    for workers in [1, 3] {
        let (figures, spread) = Figures::mean(&of(Side::Postgres { workers }));
        figures.print(
            &format!("postgres, {workers} worker(s) sharing the journal and the limiter"),
            Some((&sqlite, spread)),
        );
    }
    Ok(())
}

/// Resets the process's peak RSS (Linux: `clear_refs` 5), so each run reports its own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn once(
    side: Side,
    count: usize,
    scale: f64,
    round: usize,
    url: Option<&str>,
) -> anyhow::Result<Figures> {
    reset_peak_rss();
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(scale)
        .initial_credits(i64::MAX / 4)
        .seed(1)
        .start()
        .await?;
    let client = || {
        Client::builder()
            .api_key(KEY)
            .base_url(sandbox.api_url())
            .poll_schedules(poll_schedule(scale))
            .build()
    };
    let dir = std::env::temp_dir().join(format!("veo3-bench-batch-{}-{round}", std::process::id()));
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

    let schema = format!("veo3_bench_{}_{round}", std::process::id());
    let (summaries, makespan) = match (side, url) {
        (Side::Sqlite, _) => {
            let store = Arc::new(SqliteStore::open(dir.join("journal.db"))?);
            let batch = store.create_batch(&settings, &jobs).await?;
            let started = Instant::now();
            let summary = Runner::new(client()?, store, RunnerOptions::default())
                .work(WorkOptions::batch(KEY, batch))
                .await
                .context("the batch runs")?;
            (vec![summary], started.elapsed())
        }
        (Side::Postgres { workers }, Some(url)) => {
            let store = PostgresStore::connect_in_schema(url, &schema).await?;
            store.create_batch(&settings, &jobs).await?;
            let started = Instant::now();
            let mut handles = Vec::new();
            for w in 0..workers {
                let store: Arc<dyn Store> =
                    Arc::new(PostgresStore::connect_in_schema(url, &schema).await?);
                let runner = Runner::new(client()?, store, RunnerOptions::default());
                let mut options = WorkOptions::new(KEY);
                options.name = format!("bench-{w}");
                options.until_empty = true;
                options.lease = Duration::from_secs(10);
                handles.push(tokio::spawn(runner.work(options)));
            }
            let mut summaries: Vec<RunSummary> = Vec::new();
            for handle in handles {
                summaries.push(handle.await?.context("a worker runs")?);
            }
            let makespan = started.elapsed();
            drop(store);
            PostgresStore::drop_schema(url, &schema).await?;
            (summaries, makespan)
        }
        (Side::Postgres { .. }, None) => anyhow::bail!("no --journal URL"),
    };
    let stats = sandbox.stats();
    let _ = std::fs::remove_dir_all(&dir);

    let downloaded = summaries
        .iter()
        .map(|s| s.counts.get(&StateKind::Downloaded).copied().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let windows = (count as f64 / f64::from(RATE_MAX)).ceil() - 1.0;
    let per_job = |n: u64| n as f64 / count as f64;
    Ok(Figures {
        downloaded,
        answered_429: stats.answered_429,
        makespan,
        bound: window.mul_f64(windows.max(0.0)) + GENERATION.mul_f64(scale),
        record_info_per_job: per_job(stats.requests(Route::RecordInfo)),
        generation_polls: (GENERATION.as_secs_f64() / 30.0).ceil() + 1.0,
        writes_per_job: per_job(summaries.iter().map(|s| s.journal_writes + s.claims).sum()),
        write_time: summaries
            .iter()
            .map(|s| s.journal_time + s.claim_time)
            .sum(),
        peak_rss_kb: peak_rss_kb(),
    })
}

/// `VmHWM` from `/proc/self/status` (Linux), in kB.
fn peak_rss_kb() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// What a child process reports on its last stdout line.
#[derive(Clone, Debug, Default)]
struct ChildReport {
    downloaded: u64,
    journal_writes: u64,
    journal_time: Duration,
}

/// `--child runner|loop API_URL JOBS SCALE DIR`: one side, in a process of its own.
fn child(args: &[String]) -> anyhow::Result<()> {
    let [side, api, jobs, scale, dir] = args else {
        anyhow::bail!("--child SIDE API_URL JOBS SCALE DIR");
    };
    let count: usize = jobs.parse()?;
    let scale: f64 = scale.parse()?;
    let dir = std::path::PathBuf::from(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let client = Client::builder()
            .api_key(KEY)
            .base_url(api.as_str())
            .poll_schedules(poll_schedule(scale))
            .build()?;
        match side.as_str() {
            "runner" => child_runner(client, count, scale, &dir).await,
            "loop" => child_loop(client, count, scale, &dir).await,
            other => anyhow::bail!("unknown side {other:?}"),
        }
    })?;
    println!(
        "{}",
        serde_json::json!({
            "downloaded": report.downloaded,
            "journalWrites": report.journal_writes,
            "journalNanos": report.journal_time.as_nanos() as u64,
            "peakRssKb": peak_rss_kb(),
        })
    );
    Ok(())
}

fn bench_jobs(count: usize) -> Vec<NewJob> {
    (0..count)
        .map(|i| {
            let request = GenerateRequest::builder(format!("bench prompt {i}"))
                .model(Model::Veo3Fast)
                .build()
                .expect("valid");
            NewJob::new(request, format!("job-{i:05}")).cost(60)
        })
        .collect()
}

async fn child_runner(
    client: Client,
    count: usize,
    scale: f64,
    dir: &std::path::Path,
) -> anyhow::Result<ChildReport> {
    let mut settings = BatchSettings::new(dir.join("videos"));
    settings.concurrency = count.max(1);
    settings.rate_max = RATE_MAX;
    settings.rate_window_ms = u64::try_from(RATE_WINDOW.mul_f64(scale).as_millis())?.max(1);
    let store = Arc::new(SqliteStore::open(dir.join("journal.db"))?);
    let batch = store.create_batch(&settings, &bench_jobs(count)).await?;
    let summary = Runner::new(client, store, RunnerOptions::default())
        .work(WorkOptions::batch(KEY, batch))
        .await
        .context("the batch runs")?;
    Ok(ChildReport {
        downloaded: summary
            .counts
            .get(&StateKind::Downloaded)
            .copied()
            .unwrap_or(0),
        journal_writes: summary.journal_writes + summary.claims,
        journal_time: summary.journal_time + summary.claim_time,
    })
}

/// Every side polls every 30 s of service time (the sandbox's generation length), so the
/// sides differ only in pacing, journaling and bookkeeping; the library's default schedule
/// first polls at 90 s, tuned for kie's minutes-long generations.
fn poll_schedule(scale: f64) -> PollSchedule {
    let every = Duration::from_secs(30);
    PollSchedule::new(every, every, Duration::from_secs(30 * 60))
        .with_jitter(0.0)
        .scaled(scale)
}

/// The baseline: every job in a task of its own that waits for its turn (one submit per
/// window / 20, plus 5%: the margin a loop that does not count from answers needs to stay
/// clear of 429s; the runner has none), then `generate_and_wait` (polls every 30 s of
/// service time until the task is done), and downloads. No journal.
async fn child_loop(
    client: Client,
    count: usize,
    scale: f64,
    dir: &std::path::Path,
) -> anyhow::Result<ChildReport> {
    let out = dir.join("videos");
    tokio::fs::create_dir_all(&out).await?;
    let period = RATE_WINDOW.mul_f64(scale * 1.05 / f64::from(RATE_MAX));
    let mut pacing = tokio::time::interval(period);
    pacing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let pacing = Arc::new(tokio::sync::Mutex::new(pacing));
    let poll = Duration::from_secs(30).mul_f64(scale);
    let wait = veo3_reqwest::WaitOptions::default()
        .poll_interval(poll)
        .first_delay(poll);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, job) in bench_jobs(count).into_iter().enumerate() {
        let (client, pacing, wait, out) =
            (client.clone(), pacing.clone(), wait.clone(), out.clone());
        tasks.spawn(async move {
            pacing.lock().await.tick().await;
            let record = client.generate_and_wait(&job.request, &wait).await?;
            let url = record.video_urls().first().cloned().unwrap_or_default();
            client
                .download(&url, out.join(format!("job-{i:05}.mp4")))
                .await?;
            Ok::<_, veo3_core::Error>(())
        });
    }
    let mut downloaded = 0;
    while let Some(done) = tasks.join_next().await {
        if matches!(done, Ok(Ok(()))) {
            downloaded += 1;
        }
    }
    Ok(ChildReport {
        downloaded,
        ..ChildReport::default()
    })
}

/// The runner and the per-task loop, each three times, alternated; means and ranges.
async fn runner_against_loop(count: usize, scale: f64) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let window = RATE_WINDOW.mul_f64(scale);
    let windows = (count as f64 / f64::from(RATE_MAX)).ceil() - 1.0;
    let bound = window.mul_f64(windows.max(0.0)) + GENERATION.mul_f64(scale);
    let order = ["runner", "loop", "loop", "runner", "runner", "loop"];
    let mut runs: Vec<(&str, Figures)> = Vec::new();
    for (round, side) in order.into_iter().enumerate() {
        let sandbox = Sandbox::builder()
            .key(KEY)
            .time_scale(scale)
            .initial_credits(i64::MAX / 4)
            .seed(1)
            .start()
            .await?;
        let dir =
            std::env::temp_dir().join(format!("veo3-bench-batch-{}-{round}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut command = std::process::Command::new(&exe);
        command
            .args(["batch", "--child", side, sandbox.api_url()])
            .arg(count.to_string())
            .arg(scale.to_string())
            .arg(&dir)
            .stderr(std::process::Stdio::inherit());
        // Timed from spawn to exit, on a thread of its own while the sandbox serves.
        let (output, makespan) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let output = command.output();
            (output, started.elapsed())
        })
        .await?;
        let output = output?;
        anyhow::ensure!(output.status.success(), "the {side} child failed");
        let stats = sandbox.stats();
        let _ = std::fs::remove_dir_all(&dir);
        let report: serde_json::Value = serde_json::from_slice(
            output
                .stdout
                .split(|b| *b == b'\n')
                .rfind(|l| !l.is_empty())
                .unwrap_or_default(),
        )?;
        let per_job = |n: u64| n as f64 / count as f64;
        let figures = Figures {
            downloaded: report["downloaded"].as_u64().unwrap_or(0),
            answered_429: stats.answered_429,
            makespan,
            bound,
            record_info_per_job: per_job(stats.requests(Route::RecordInfo)),
            generation_polls: (GENERATION.as_secs_f64() / 30.0).ceil() + 1.0,
            writes_per_job: per_job(report["journalWrites"].as_u64().unwrap_or(0)),
            write_time: Duration::from_nanos(report["journalNanos"].as_u64().unwrap_or(0)),
            peak_rss_kb: report["peakRssKb"].as_u64(),
        };
        eprintln!(
            "  run {round}: {side}: {:.2?}, {} downloaded, {:.2} record-info per job, {} kB",
            figures.makespan,
            figures.downloaded,
            figures.record_info_per_job,
            figures.peak_rss_kb.unwrap_or(0)
        );
        runs.push((side, figures));
    }
    let of = |side: &str| -> Vec<Figures> {
        runs.iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, f)| f.clone())
            .collect()
    };
    let range = |runs: &[Figures], f: &dyn Fn(&Figures) -> f64| {
        let values: Vec<f64> = runs.iter().map(f).collect();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    };
    let (runner_runs, loop_runs) = (of("runner"), of("loop"));
    let (runner, _) = Figures::mean(&runner_runs);
    let (baseline, _) = Figures::mean(&loop_runs);
    print_header(count, scale);
    println!("(each side: the mean of 3 runs in child processes, alternated; [min - max])");
    let ratio = |f: &Figures| f.makespan.as_secs_f64() / f.bound.as_secs_f64();
    for (label, figures, all) in [
        ("runner (SQLite journal)", &runner, &runner_runs),
        (
            "per-task 30 s polling loop (baseline, no journal)",
            &baseline,
            &loop_runs,
        ),
    ] {
        let (lo, hi) = range(all, &ratio);
        let (rss_lo, rss_hi) = range(all, &|f| f.peak_rss_kb.unwrap_or(0) as f64);
        let (ri_lo, ri_hi) = range(all, &|f| f.record_info_per_job);
        println!("{label}");
        println!(
            "  downloaded                 {} of {count}, 429 answers: {}",
            figures.downloaded, figures.answered_429
        );
        println!(
            "  makespan                   {:.2?} vs lower bound {:.2?}: {:.3}x [{lo:.3} - {hi:.3}] (target <= 1.1x)",
            figures.makespan,
            figures.bound,
            ratio(figures)
        );
        println!(
            "  record-info per job        {:.2} [{ri_lo:.2} - {ri_hi:.2}]",
            figures.record_info_per_job
        );
        if figures.writes_per_job > 0.0 {
            let (w_lo, w_hi) = range(all, &|f| {
                100.0 * f.write_time.as_secs_f64() / f.makespan.as_secs_f64()
            });
            println!(
                "  journal writes per job     {:.2}, {:.1?} in total: {:.1}% of the wall time [{w_lo:.1} - {w_hi:.1}]",
                figures.writes_per_job,
                figures.write_time,
                100.0 * figures.write_time.as_secs_f64() / figures.makespan.as_secs_f64()
            );
        }
        println!(
            "  peak RSS                   {} kB [{rss_lo:.0} - {rss_hi:.0}]",
            figures.peak_rss_kb.unwrap_or(0)
        );
    }
    println!(
        "runner / loop: makespan {:.3}x, record-info per job {:.2}x, peak RSS {:.2}x",
        runner.makespan.as_secs_f64() / baseline.makespan.as_secs_f64(),
        runner.record_info_per_job / baseline.record_info_per_job,
        runner.peak_rss_kb.unwrap_or(0) as f64 / baseline.peak_rss_kb.unwrap_or(1).max(1) as f64
    );
    Ok(())
}
