//! `veo3 batch run|resume|status`: many generations from a file, through the journal of
//! `veo3-jobs`. This module opens the journal, reads the file, receives callbacks (the
//! receiver reads each callback's `job` query parameter, which the library cannot see), shows
//! progress and writes the manifest and gallery; the runner decides everything else.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use veo3_jobs::{
    Batch, BatchId, BatchSettings, CallbackSettings, JobId, JobQuery, JobState, PostgresStore,
    PriceTable, RunEvent, RunSummary, Runner, RunnerOptions, SqliteStore, StateKind, StopReason,
    Store, Upgrade, WorkOptions,
};
use veo3_reqwest::{Inbox, WaitOptions};

use crate::args::{
    BatchCallbacks, BatchCommon, BatchResumeArgs, BatchRunArgs, BatchStatusArgs, BatchWorkArgs,
    JournalArg, UpgradeResolution, WorkerArgs,
};
use crate::error::CliError;
use crate::interrupt::Interrupt;
use crate::listen::verifier;
use crate::output::{Printer, to_stdout};
use crate::session::Session;

/// The journal file: `--journal`/`VEO3_JOURNAL`, else `journal.db` in the user's data folder.
pub(crate) fn journal_path(arg: &JournalArg) -> Result<PathBuf, CliError> {
    if let Some(path) = &arg.journal {
        return Ok(path.clone());
    }
    directories::ProjectDirs::from("", "", "veo3")
        .map(|dirs| dirs.data_dir().join("journal.db"))
        .ok_or_else(|| {
            CliError::Usage("no home folder to keep the journal in: pass --journal PATH".into())
        })
}

/// The shared journal's URL, when `--journal`/`VEO3_JOURNAL` is a `postgres://` URL.
fn journal_url(arg: &JournalArg) -> Option<&str> {
    arg.journal
        .as_deref()
        .and_then(|p| p.to_str())
        .filter(|p| veo3_jobs::is_postgres_url(p))
}

/// Opens the journal: a SQLite file, or a shared PostgreSQL journal for a `postgres://` URL.
pub(crate) async fn open_journal(arg: &JournalArg) -> Result<Arc<dyn Store>, CliError> {
    if let Some(url) = journal_url(arg) {
        let store = PostgresStore::connect(url)
            .await
            .map_err(|e| CliError::Other(e.to_string()))?;
        return Ok(Arc::new(store));
    }
    let path = journal_path(arg)?;
    let store = SqliteStore::open(&path).map_err(|e| CliError::Other(e.to_string()))?;
    Ok(Arc::new(store))
}

fn work_options(args: &WorkerArgs, key: &str) -> WorkOptions {
    let mut options = WorkOptions::new(key);
    options.lease = args.lease;
    options.name = args.worker_name.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        format!("{host}:{}", std::process::id())
    });
    options
}

fn store_error(error: veo3_jobs::StoreError) -> CliError {
    CliError::Other(error.to_string())
}

fn upgrade_of(arg: Option<UpgradeResolution>) -> Option<Upgrade> {
    arg.map(|u| match u {
        UpgradeResolution::P1080 => Upgrade::Hd1080p,
        UpgradeResolution::K4 => Upgrade::Uhd4k,
    })
}

fn prices(path: Option<&Path>) -> Result<PriceTable, CliError> {
    let Some(path) = path else {
        return Ok(PriceTable::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("--prices {}: {e}", path.display())))?;
    PriceTable::from_json(&text)
        .map_err(|e| CliError::Usage(format!("--prices {}: {e}", path.display())))
}

/// Reads and validates the batch file; every bad line is printed with its number.
fn read_jobs(args: &BatchRunArgs) -> Result<(Vec<veo3_jobs::NewJob>, PriceTable), CliError> {
    let table = prices(args.prices.as_deref())?;
    match veo3_jobs::input::read_file(&args.file, &table, upgrade_of(args.upgrade)) {
        Ok(jobs) => Ok((jobs, table)),
        Err(veo3_jobs::input::InputError::Lines { path, errors }) => {
            for error in &errors {
                crate::output::to_stderr(format_args!("{path}:{}: {}", error.line, error.message));
            }
            Err(CliError::Usage(format!(
                "{path}: {} invalid line(s); nothing was sent",
                errors.len()
            )))
        }
        Err(error) => Err(CliError::Usage(error.to_string())),
    }
}

/// Refuses a batch whose jobs' files already exist in the output folder (before anything is
/// journaled or sent): a job would be billed and then not downloaded. Names every one, with
/// its line.
fn refuse_existing_files(args: &BatchRunArgs, jobs: &[veo3_jobs::NewJob]) -> Result<(), CliError> {
    let taken: Vec<String> = jobs
        .iter()
        .filter_map(|job| {
            let path = veo3_jobs::job_file(&args.out_dir, &job.name);
            std::fs::symlink_metadata(&path).ok().map(|_| {
                let line = job.line.map_or(String::new(), |l| format!(":{l}"));
                format!("{}{line}: {} exists", args.file.display(), path.display())
            })
        })
        .collect();
    if taken.is_empty() {
        return Ok(());
    }
    for line in &taken {
        crate::output::to_stderr(format_args!("{line}"));
    }
    Err(CliError::Usage(format!(
        "{} job file(s) already exist in {}; move them away or pass --force to replace them; nothing was sent",
        taken.len(),
        args.out_dir.display()
    )))
}

/// `batch run --dry-run`: validates, prices, sends nothing.
pub(crate) fn dry_run(args: &BatchRunArgs, printer: Printer) -> Result<(), CliError> {
    let (jobs, _) = read_jobs(args)?;
    let estimate: i64 = jobs.iter().map(|j| j.cost).sum();
    let within = args.max_credits.is_none_or(|max| estimate <= max);
    printer.result(
        json!({"jobs": jobs.len(), "estimatedCredits": estimate, "maxCredits": args.max_credits, "withinBudget": within}),
        || {
            let mut text = format!(
                "{}: {} job(s), estimated {estimate} credits; nothing was sent",
                args.file.display(),
                jobs.len()
            );
            if !within {
                text.push_str(&format!(
                    "\nover --max-credits {}",
                    args.max_credits.unwrap_or_default()
                ));
            }
            text
        },
    );
    if within {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "estimated {estimate} credits, more than --max-credits {}",
            args.max_credits.unwrap_or_default()
        )))
    }
}

impl Session {
    pub(crate) async fn batch_run(&self, args: &BatchRunArgs, key: &str) -> Result<(), CliError> {
        let (mut jobs, table) = read_jobs(args)?;
        if !args.common.force {
            refuse_existing_files(args, &jobs)?;
        }
        // The budget is checked before anything is uploaded or journaled, so a refused batch
        // leaves nothing behind to resume by mistake.
        let estimate: i64 = jobs.iter().map(|j| j.cost).sum();
        if let Some(max) = args.max_credits {
            if estimate > max {
                return Err(CliError::Usage(format!(
                    "{}: {} jobs estimated at {estimate} credits, more than --max-credits {max}; nothing was sent",
                    args.file.display(),
                    jobs.len()
                )));
            }
        }
        self.upload_local_images(args, &mut jobs).await?;
        let store = open_journal(&args.journal).await?;
        let mut settings = BatchSettings::new(&args.out_dir);
        settings.source = Some(args.file.display().to_string());
        settings.concurrency = args.concurrency as usize;
        settings.rate_max = args.rate.0;
        settings.rate_window_ms = u64::try_from(args.rate.1.as_millis()).unwrap_or(u64::MAX);
        settings.max_credits = args.max_credits;
        settings.upgrade = upgrade_of(args.upgrade);
        settings.poll_interval_ms = args
            .common
            .poll_interval
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        settings.callback = callback_settings(&args.callbacks);
        let batch = store
            .create_batch(&settings, &jobs)
            .await
            .map_err(store_error)?;
        if args.enqueue_only {
            self.printer.result(
                json!({"batch": batch.0, "jobs": jobs.len(), "journal": store.location()}),
                || {
                    format!(
                        "batch {batch}: {} job(s) enqueued in {}; run them with `veo3 batch work --journal {}`",
                        jobs.len(),
                        store.location(),
                        store.location()
                    )
                },
            );
            return Ok(());
        }
        self.printer.note(format!(
            "batch {batch}: {} job(s) journaled in {} (resume with `veo3 batch resume --journal {}`)",
            jobs.len(),
            store.location(),
            store.location()
        ));
        // Enqueued; now this process works on the batch until it is empty, beside any other
        // process working on the same journal.
        let mut options = work_options(&args.worker, key);
        options.until_empty = true;
        options.batch = Some(batch);
        self.run_batch(store, batch, &args.common, table, false, false, options)
            .await
    }

    /// Uploads the jobs' local images (all checked already) and journals nothing: the batch is
    /// created with the hosted URLs, so a resume never uploads again. Nothing billable is sent.
    async fn upload_local_images(
        &self,
        args: &BatchRunArgs,
        jobs: &mut [veo3_jobs::NewJob],
    ) -> Result<(), CliError> {
        if !veo3_jobs::input::has_local_images(jobs) {
            return Ok(());
        }
        let client = self.api();
        let options = veo3_types::UploadOptions::new(veo3_types::DEFAULT_UPLOAD_PATH);
        let uploaded =
            veo3_jobs::input::upload_local_images(client, jobs, &options, client.effects())
                .await
                .map_err(|e| {
                    CliError::Other(format!(
                        "{}:{}: uploading {}: {}; nothing was billed or journaled",
                        args.file.display(),
                        e.line,
                        e.path.display(),
                        e.source
                    ))
                })?;
        for (path, url) in &uploaded {
            self.printer
                .note(format!("uploaded {} as {url}", path.display()));
        }
        Ok(())
    }

    pub(crate) async fn batch_resume(
        &self,
        args: &BatchResumeArgs,
        key: &str,
    ) -> Result<(), CliError> {
        let store = open_journal(&args.journal).await?;
        let batch = pick_batch(store.as_ref(), args.batch).await?;
        // Works on the batch: jobs a live process holds are left to it, a dead one's taken
        // over.
        let mut options = work_options(&args.worker, key);
        options.until_empty = true;
        options.batch = Some(batch.id);
        self.run_batch(
            store,
            batch.id,
            &args.common,
            PriceTable::default(),
            args.resubmit_unknown,
            args.retry_failed,
            options,
        )
        .await
    }

    /// `batch work`: one worker of a journal (a file several processes on this machine
    /// share, or a `postgres://` database), on one batch or all of them.
    pub(crate) async fn batch_work(&self, args: &BatchWorkArgs, key: &str) -> Result<(), CliError> {
        let store = open_journal(&args.journal).await?;
        let batch = match args.batch {
            Some(id) => Some(pick_batch(store.as_ref(), Some(id)).await?.id),
            None => None,
        };
        let mut options = work_options(&args.worker, key);
        options.until_empty = args.until_empty;
        options.batch = batch;
        // The display and the manifest follow the given batch, else the latest one.
        let shown = match batch {
            Some(id) => id,
            None => match store.latest_batch().await.map_err(store_error)? {
                Some(latest) => latest.id,
                None if args.until_empty => {
                    self.printer
                        .note(format!("no batch in {}: nothing to do", store.location()));
                    return Ok(());
                }
                None => {
                    return Err(CliError::Usage(format!(
                        "no batch in {}: enqueue one first (`veo3 batch run FILE --enqueue-only`)",
                        store.location()
                    )));
                }
            },
        };
        self.run_batch(
            store,
            shown,
            &args.common,
            PriceTable::default(),
            false,
            false,
            options,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_batch(
        &self,
        store: Arc<dyn Store>,
        batch: BatchId,
        common: &BatchCommon,
        prices: PriceTable,
        resubmit_unknown: bool,
        retry_failed: bool,
        work: WorkOptions,
    ) -> Result<(), CliError> {
        let record = store
            .batch(batch)
            .await
            .map_err(store_error)?
            .ok_or_else(|| CliError::Other(format!("no batch {batch} in the journal")))?;
        let settings = record.settings.clone();
        let mut wait = WaitOptions::default();
        let interval = common
            .poll_interval
            .or(settings.poll_interval_ms.map(Duration::from_millis));
        if let Some(interval) = interval {
            wait = wait.poll_interval(interval).first_delay(interval);
        }
        let receiver = match &settings.callback {
            Some(callback) => Some(CallbackReceiver::start(callback).await?),
            None => None,
        };
        let mut options = RunnerOptions::default();
        options.wait = wait;
        options.prices = prices;
        options.resubmit_unknown = resubmit_unknown;
        options.retry_failed = retry_failed;
        options.check_balance = !common.skip_balance_check;
        options.recovery_window = common.recovery_window;
        let mut server = None;
        if let Some((receiver, recovered)) = receiver {
            options.callbacks = Some(veo3_jobs::Callbacks::new(
                receiver.url.clone(),
                receiver.inbox.clone(),
                recovered,
            ));
            server = Some(receiver);
        }
        let total = store
            .jobs(&JobQuery::batch(batch))
            .await
            .map_err(store_error)?
            .len() as u64;
        let display = Display::new(self.printer, total);
        let (stop_tx, stop_rx) = watch::channel(false);
        let interrupted = tokio::spawn(async move {
            let signal = Interrupt::received().await;
            let _ = stop_tx.send(true);
            signal
        });
        let sink = display.clone();
        let runner = Runner::new(self.api().clone(), store.clone(), options)
            .on_event(move |event| sink.event(event))
            .stop_when(stop_rx);
        let result = runner.work(work).await;
        let signal = if interrupted.is_finished() {
            interrupted.await.ok()
        } else {
            interrupted.abort();
            None
        };
        display.finish();
        if let Some(server) = server {
            server.shutdown();
        }
        // The manifest and the gallery describe the journal as it is now, whatever happened.
        let jobs = store
            .jobs(&JobQuery::batch(batch))
            .await
            .map_err(store_error)?;
        let title = format!(
            "veo3 batch {batch}{}",
            settings
                .source
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        );
        let written = if settings.out_dir.is_dir() {
            Some(
                veo3_jobs::report::write(&settings.out_dir, &title, &jobs).map_err(|e| {
                    CliError::Other(format!(
                        "writing the manifest in {}: {e}",
                        settings.out_dir.display()
                    ))
                })?,
            )
        } else {
            None
        };
        let summary = match result {
            Ok(summary) => summary,
            Err(veo3_jobs::RunError::OverBudget { estimate, max }) => {
                return Err(CliError::Usage(format!(
                    "the jobs left are estimated at {estimate} credits, more than --max-credits {max}; nothing was sent"
                )));
            }
            Err(error) => return Err(CliError::Other(error.to_string())),
        };
        self.print_summary(batch, &summary, written.as_ref(), store.location());
        outcome(batch, &summary, store.location(), signal)
    }

    fn print_summary(
        &self,
        batch: BatchId,
        summary: &RunSummary,
        written: Option<&(PathBuf, PathBuf)>,
        journal: String,
    ) {
        let counts: BTreeMap<&str, u64> = summary
            .counts
            .iter()
            .map(|(state, n)| (state.as_str(), *n))
            .collect();
        self.printer.result(
            json!({
                "batch": batch.0,
                "counts": counts,
                "submits": summary.submits,
                "recovered": summary.recovered,
                "takenOver": summary.taken_over,
                "lost": summary.lost,
                "extraTasks": summary.extra_tasks,
                "rateLimited": summary.rate_limited,
                "journalWrites": summary.journal_writes,
                "stopped": summary.stopped.map(|s| s.to_string()),
                "manifest": written.map(|w| w.0.display().to_string()),
                "gallery": written.map(|w| w.1.display().to_string()),
                "journal": journal,
                "elapsedMs": u64::try_from(summary.elapsed.as_millis()).unwrap_or(u64::MAX),
            }),
            || {
                let mut lines = vec![format!(
                    "batch {batch}: {} in {:.1?}",
                    counts
                        .iter()
                        .map(|(s, n)| format!("{n} {s}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    summary.elapsed
                )];
                if let Some((manifest, gallery)) = written {
                    lines.push(format!(
                        "manifest {}, gallery {}",
                        manifest.display(),
                        gallery.display()
                    ));
                }
                lines.join("\n")
            },
        );
    }
}

/// The exit status of a finished run: interrupted (130), stopped at a 402 or with jobs left
/// unknown or failed (a one-line error naming what to do), else success.
fn outcome(
    batch: BatchId,
    summary: &RunSummary,
    journal: String,
    signal: Option<crate::interrupt::Signal>,
) -> Result<(), CliError> {
    let count = |state| summary.counts.get(&state).copied().unwrap_or(0);
    match summary.stopped {
        Some(StopReason::Interrupted) => {
            return Err(CliError::Interrupted {
                signal: signal.unwrap_or(crate::interrupt::Signal::Interrupt),
                resume: crate::interrupt::Resume {
                    state: format!(
                        "batch {batch} stopped submitting, its tasks keep running on the server"
                    ),
                    command: format!("veo3 batch resume --journal {journal}"),
                },
            });
        }
        Some(StopReason::OutOfCredits) => {
            return Err(CliError::Other(format!(
                "out of credits (402): {} job(s) left pending; top up, then `veo3 batch resume --journal {journal}`",
                count(StateKind::Pending)
            )));
        }
        _ => {}
    }
    let (unknown, failed) = (count(StateKind::Unknown), count(StateKind::Failed));
    let unfinished = count(StateKind::Submitted)
        + count(StateKind::Succeeded)
        + count(StateKind::Upgrading)
        + count(StateKind::Pending);
    if unknown + failed + unfinished > 0 {
        return Err(CliError::Other(format!(
            "batch {batch}: {unknown} unknown, {failed} failed, {unfinished} unfinished; see `veo3 batch status --journal {journal}`"
        )));
    }
    Ok(())
}

async fn pick_batch(store: &dyn Store, id: Option<i64>) -> Result<Batch, CliError> {
    let found = match id {
        Some(id) => store.batch(BatchId(id)).await,
        None => store.latest_batch().await,
    }
    .map_err(store_error)?;
    found.ok_or_else(|| match id {
        Some(id) => CliError::Usage(format!("no batch {id} in {}", store.location())),
        None => CliError::Usage(format!("no batch in {}", store.location())),
    })
}

fn callback_settings(args: &BatchCallbacks) -> Option<CallbackSettings> {
    match (&args.callback_url, args.callback_listen) {
        (Some(url), Some(listen)) => Some(CallbackSettings::new(
            url,
            listen.to_string(),
            &args.hmac_key_env,
            args.unsigned_callbacks,
        )),
        _ => None,
    }
}

/// `batch status`: counts, credits, ETA, and the unknown jobs with what to do about them.
pub(crate) async fn status(args: &BatchStatusArgs, printer: Printer) -> Result<(), CliError> {
    let store = open_journal(&args.journal).await?;
    let batch = pick_batch(store.as_ref(), args.batch).await?;
    let jobs = store
        .jobs(&JobQuery::batch(batch.id))
        .await
        .map_err(store_error)?;
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for job in &jobs {
        *counts.entry(job.state.kind().as_str()).or_default() += 1;
    }
    let spent: i64 = jobs
        .iter()
        .filter(|j| j.state.task_id().is_some() || j.state.kind() == StateKind::Unknown)
        .map(|j| j.cost)
        .sum();
    let pending = counts.get("pending").copied().unwrap_or(0);
    let in_flight: u64 = ["submitting", "submitted", "succeeded", "upgrading"]
        .iter()
        .map(|s| counts.get(s).copied().unwrap_or(0))
        .sum();
    // The rate limit bounds how fast the rest can be submitted; a generation then takes
    // minutes. The ETA is the submit time of what is left plus one generation.
    let settings = &batch.settings;
    let submit_secs = pending as f64 * settings.rate_window_ms as f64
        / f64::from(settings.rate_max.max(1))
        / 1000.0;
    let eta_secs = if pending + in_flight == 0 {
        0.0
    } else {
        submit_secs + 150.0
    };
    let unknown: Vec<_> = jobs
        .iter()
        .filter(|j| j.state.kind() == StateKind::Unknown)
        .collect();
    // Who holds what: each owned job, its worker and whether that worker's lease is live.
    let live: BTreeMap<i64, veo3_jobs::WorkerInfo> = store
        .live_workers()
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|w| (w.id.0, w))
        .collect();
    let held: Vec<_> = jobs
        .iter()
        .filter_map(|j| j.owner.map(|owner| (j, live.get(&owner.0), owner)))
        .collect();
    let journal = store.location();
    let advice = format!(
        "the submit may have reached kie and been billed; check kie's dashboard for its prompt, \
         then either leave it, or send it again with `veo3 batch resume --journal {journal} --resubmit-unknown` (bills again)"
    );
    printer.result(
        json!({
            "batch": batch.id.0,
            "source": settings.source,
            "outDir": settings.out_dir.display().to_string(),
            "counts": counts,
            "jobs": jobs.len(),
            "creditsSpent": spent,
            "etaSeconds": eta_secs.round(),
            "unknown": unknown.iter().map(|j| json!({
                "job": j.id.0, "name": j.name, "line": j.line, "prompt": j.request.prompt,
            })).collect::<Vec<_>>(),
            "unknownAdvice": if unknown.is_empty() { None } else { Some(&advice) },
            "held": held.iter().map(|(j, worker, owner)| json!({
                "job": j.id.0, "name": j.name, "state": j.state.kind().as_str(),
                "worker": owner.0, "workerName": worker.map(|w| w.name.clone()),
                "leaseUntilMs": worker.map(|w| w.lease_until_ms), "alive": worker.is_some(),
            })).collect::<Vec<_>>(),
            "extraTasks": jobs.iter().filter_map(|j| j.extra_of.map(|of| json!({
                "job": j.id.0, "extraOf": of.0, "name": j.name, "taskId": j.state.task_id(),
                "state": j.state.kind().as_str(),
            }))).collect::<Vec<_>>(),
        }),
        || {
            let mut lines = vec![
                format!(
                    "batch {} ({} jobs{}): {}",
                    batch.id,
                    jobs.len(),
                    settings
                        .source
                        .as_deref()
                        .map(|s| format!(" from {s}"))
                        .unwrap_or_default(),
                    counts
                        .iter()
                        .map(|(s, n)| format!("{n} {s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!("credits spent (estimated): {spent}"),
            ];
            if eta_secs > 0.0 {
                lines.push(format!(
                    "ETA: about {} once resumed",
                    humantime::format_duration(Duration::from_secs(eta_secs as u64))
                ));
            }
            for (job, worker, owner) in &held {
                lines.push(match worker {
                    Some(worker) => format!(
                        "  job {} ({}): {}, held by worker {owner} ({}), lease until {}",
                        job.id,
                        job.name,
                        job.state.kind(),
                        worker.name,
                        lease_time(worker.lease_until_ms)
                    ),
                    None => format!(
                        "  job {} ({}): {}, held by worker {owner}, whose lease expired (the next worker takes it over)",
                        job.id,
                        job.name,
                        job.state.kind()
                    ),
                });
            }
            for job in jobs.iter().filter(|j| j.extra_of.is_some()) {
                lines.push(format!(
                    "  job {} ({}): an extra task of job {} (billed twice: a late answer after the job was sent again), {}",
                    job.id,
                    job.name,
                    job.extra_of.map_or(0, |j| j.0),
                    job.state
                ));
            }
            if !unknown.is_empty() {
                lines.push(format!("{} unknown job(s): {advice}", unknown.len()));
                for job in &unknown {
                    lines.push(format!(
                        "  job {} ({}, line {}): {}",
                        job.id,
                        job.name,
                        job.line.map_or("-".into(), |l| l.to_string()),
                        job.request.prompt
                    ));
                }
            }
            lines.join("\n")
        },
    );
    Ok(())
}

/// The batch's callback receiver: verifies each callback with the webhook key, delivers it to
/// the inbox the hybrid waits read, and tells the runner which job it names (the `job` query
/// parameter the runner put in the job's `callBackUrl`).
struct CallbackReceiver {
    url: String,
    inbox: Inbox,
    shutdown: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct ReceiverState {
    verifier: Arc<veo3_webhook::Verifier>,
    inbox: Inbox,
    recovered: mpsc::UnboundedSender<(JobId, String)>,
}

#[derive(serde::Deserialize)]
struct JobParam {
    job: Option<String>,
}

impl CallbackReceiver {
    async fn start(
        settings: &CallbackSettings,
    ) -> Result<(Self, mpsc::UnboundedReceiver<(JobId, String)>), CliError> {
        let verifier = verifier(&settings.hmac_key_env, settings.unsigned)?;
        let limit = verifier.body_limit();
        let inbox = Inbox::new();
        let (recovered_tx, recovered_rx) = mpsc::unbounded_channel();
        let state = ReceiverState {
            verifier: Arc::new(verifier),
            inbox: inbox.clone(),
            recovered: recovered_tx,
        };
        let app = axum::Router::new()
            .fallback(axum::routing::post(receive))
            .layer(axum::extract::DefaultBodyLimit::max(limit))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .map_err(|e| CliError::Other(format!("cannot listen on {}: {e}", settings.listen)))?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok((
            Self {
                url: settings.url.clone(),
                inbox,
                shutdown,
            },
            recovered_rx,
        ))
    }

    fn shutdown(self) {
        let _ = self.shutdown.send(());
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    Query(param): Query<JobParam>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match state.verifier.verify(
        header(veo3_webhook::TIMESTAMP_HEADER),
        header(veo3_webhook::SIGNATURE_HEADER),
        &body,
        now,
    ) {
        Ok(verified) => {
            if let Some(job) = param.job.as_deref().and_then(|j| j.parse::<JobId>().ok()) {
                let _ = state.recovered.send((job, verified.task_id.clone()));
            }
            state.inbox.deliver(verified);
            StatusCode::OK
        }
        Err(reason) => {
            tracing::warn!(%reason, "callback rejected");
            StatusCode::from_u16(reason.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
        }
    }
}

/// The batch's display: one JSON line per state change with `--json`; on a terminal, a
/// progress bar and a line of counts; otherwise a line per final state.
#[derive(Clone)]
struct Display {
    printer: Printer,
    bars: Option<(indicatif::ProgressBar, indicatif::ProgressBar)>,
    counts: Arc<std::sync::Mutex<BTreeMap<JobId, StateKind>>>,
}

impl Display {
    fn new(printer: Printer, total: u64) -> Self {
        let bars = (!printer.json && std::io::stderr().is_terminal()).then(|| {
            let multi = indicatif::MultiProgress::new();
            let bar = multi.add(indicatif::ProgressBar::new(total));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} done  {elapsed_precise} (eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let line = multi.add(indicatif::ProgressBar::new_spinner());
            line.enable_steady_tick(Duration::from_millis(200));
            (bar, line)
        });
        Self {
            printer,
            bars,
            counts: Arc::default(),
        }
    }

    fn event(&self, event: &RunEvent) {
        match event {
            RunEvent::State { job, name, state } => {
                if self.printer.json {
                    let mut line = json!({
                        "job": job.0, "name": name, "state": state.kind().as_str(),
                        "taskId": state.task_id(),
                    });
                    match state {
                        JobState::Downloaded {
                            path,
                            bytes,
                            sha256,
                            ..
                        } => {
                            line["path"] = json!(path.display().to_string());
                            line["bytes"] = json!(bytes);
                            line["sha256"] = json!(sha256);
                        }
                        JobState::Failed { code, message, .. } => {
                            line["code"] = json!(code);
                            line["message"] = json!(message);
                        }
                        _ => {}
                    }
                    to_stdout(format_args!("{line}"));
                    return;
                }
                let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
                counts.insert(*job, state.kind());
                let finals = counts.values().filter(|k| k.is_final()).count() as u64;
                let mut by_state: BTreeMap<StateKind, u64> = BTreeMap::new();
                for kind in counts.values() {
                    *by_state.entry(*kind).or_default() += 1;
                }
                drop(counts);
                match &self.bars {
                    Some((bar, line)) => {
                        bar.set_position(finals);
                        line.set_message(
                            by_state
                                .iter()
                                .map(|(s, n)| format!("{n} {s}"))
                                .collect::<Vec<_>>()
                                .join("  "),
                        );
                        if matches!(state.kind(), StateKind::Failed | StateKind::Unknown) {
                            bar.println(format!("job {job} ({name}): {state}"));
                        }
                    }
                    None => {
                        if state.kind().is_final() {
                            crate::output::to_stderr(format_args!("job {job} ({name}): {state}"));
                        }
                    }
                }
            }
            RunEvent::Retryable { job, message } => {
                self.printer
                    .note(format!("job {job}: {message} (left resumable)"));
            }
            RunEvent::StoppedSubmitting { reason } => {
                self.printer.note(format!("stopped submitting: {reason}"));
            }
            RunEvent::HeldByOthers { worker, jobs } => {
                let ids: Vec<i64> = jobs.iter().map(|j| j.0).collect();
                if self.printer.json {
                    to_stdout(format_args!(
                        "{}",
                        json!({"event": "heldByOthers", "worker": worker.id.0,
                               "workerName": worker.name, "leaseUntilMs": worker.lease_until_ms,
                               "jobs": ids})
                    ));
                } else {
                    self.printer.note(format!(
                        "{} job(s) ({}) are held by worker {} ({}), which is alive (lease until {}): \
                         left to it; this process works on the rest, and takes them over if it stops",
                        jobs.len(),
                        job_list(jobs),
                        worker.id,
                        worker.name,
                        lease_time(worker.lease_until_ms)
                    ));
                }
            }
            RunEvent::ExtraTask {
                job,
                extra,
                name,
                task_id,
            } => {
                if self.printer.json {
                    to_stdout(format_args!(
                        "{}",
                        json!({"event": "extraTask", "job": job.0, "extra": extra.0,
                               "name": name, "taskId": task_id})
                    ));
                } else {
                    self.printer.note(format!(
                        "job {job}: a late answer named task {task_id} after another worker had sent the job again: \
                         it is billed, so it is kept as job {extra} ({name}) and downloaded too"
                    ));
                }
            }
            RunEvent::TakenOver { job, name, state } => {
                if self.printer.json {
                    to_stdout(format_args!(
                        "{}",
                        json!({"job": job.0, "name": name, "event": "takenOver",
                               "from": state.kind().as_str(), "taskId": state.task_id()})
                    ));
                } else {
                    self.printer.note(format!(
                        "job {job} ({name}): taken over from a stopped worker, waiting on task {}",
                        state.task_id().unwrap_or("-")
                    ));
                }
            }
            _ => {}
        }
    }

    fn finish(&self) {
        if let Some((bar, line)) = &self.bars {
            line.finish_and_clear();
            bar.finish_and_clear();
        }
    }
}

/// `1, 2, 5` (at most ten, then how many more).
fn job_list(jobs: &[JobId]) -> String {
    let mut shown: Vec<String> = jobs.iter().take(10).map(|j| j.to_string()).collect();
    if jobs.len() > 10 {
        shown.push(format!("and {} more", jobs.len() - 10));
    }
    shown.join(", ")
}

/// A lease's end, in RFC 3339 (UTC, to the second).
fn lease_time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}
