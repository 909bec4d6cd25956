//! Workers: any number of processes, on any number of machines, sharing one journal (a
//! [`Store`](crate::Store) that implements the worker methods, such as `PostgresStore`).
//!
//! A worker registers with a lease it renews while it works (every third of the lease). It
//! claims jobs in small steps ([`Store::claim`](crate::Store::claim)):
//! - a **pending** job is claimed only when the worker is about to send it (it holds one of
//!   its two places ahead of the rate limiter), and the claim itself journals `submitting`,
//!   so the invariant "journaled before it is sent" holds across workers; the claim respects
//!   the batch's concurrency over all workers;
//! - on every tick it also **takes over** jobs with a task id whose worker's lease expired (or
//!   that a stopping worker gave back), and waits on their task ids: never a second submit;
//! - jobs left `submitting` under an expired lease become **unknown** in that same claim: the
//!   request may have been billed, exactly as after a crash on one machine.
//!
//! Pacing is shared: each submit reserves its turn in the journal under the account's limit
//! ([`Store::reserve_submit`](crate::Store::reserve_submit)), keyed by a fingerprint of the API key ([`account_fingerprint`]).
//! A worker whose lease was lost (it stalled longer than the lease) stops at once: its jobs may
//! already be someone else's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::{Semaphore, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::job::{Batch, BatchId, Job, JobId, JobState, StateKind};
use crate::pace::{Pace, SUBMITS_AHEAD};
use crate::runner::{
    RunError, RunEvent, RunSummary, Runner, Shared, StopReason, SubmitOutcome, follow, submit,
};
use crate::store::{ClaimRequest, Claimed, JobQuery, StoreError, WorkerId};

/// The account key's fingerprint: what the shared limiter is keyed by (never the key).
///
/// ```
/// let print = veo3_jobs::account_fingerprint("sk-secret");
/// assert!(print.starts_with("sha256:") && !print.contains("secret"));
/// assert_eq!(print, veo3_jobs::account_fingerprint("sk-secret"));
/// ```
pub fn account_fingerprint(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// How a worker works ([`Runner::work`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkOptions {
    /// A name for messages and the journal's worker table (e.g. `host:pid`).
    pub name: String,
    /// The account the submits are paced for: [`account_fingerprint`] of its key.
    pub account: String,
    /// How long the worker's claims last without a renewal (renewed every third of it).
    pub lease: Duration,
    /// Exit once no job is pending or in flight (instead of serving until stopped).
    pub until_empty: bool,
    /// Only this batch (default: every batch, oldest first).
    pub batch: Option<BatchId>,
}

impl WorkOptions {
    /// A worker for the account whose key is `api_key`, with a 30 s lease, serving every
    /// batch until stopped.
    pub fn new(api_key: &str) -> Self {
        Self {
            name: format!("pid {}", std::process::id()),
            account: account_fingerprint(api_key),
            lease: Duration::from_secs(30),
            until_empty: false,
            batch: None,
        }
    }

    /// How often the worker looks for jobs to take over and for new work.
    fn tick(&self) -> Duration {
        (self.lease / 4).clamp(Duration::from_millis(20), Duration::from_secs(2))
    }
}

/// How many jobs with a task id one claim takes over at most.
const TAKEOVERS: usize = 64;

enum Work {
    Submit {
        job: Box<Job>,
        outcome: SubmitOutcome,
    },
    Follow {
        job: JobId,
        finished: bool,
    },
}

/// What a worker keeps across the batches it serves.
struct Worker {
    id: WorkerId,
    options: WorkOptions,
    lost: watch::Receiver<bool>,
    /// Jobs this worker left resumable (a wait or download failed): not claimed again by it.
    given_up: Vec<JobId>,
    summary: RunSummary,
    stopped: Option<StopReason>,
    stop_open: bool,
}

impl Runner {
    /// Works as one of many workers on a shared journal until stopped ([`Runner::stop_when`]),
    /// or with [`WorkOptions::until_empty`] until no job is pending or in flight. See the
    /// [`worker`](crate::worker) module. The summary counts this worker's work; its `counts`
    /// are those of the last batch it served.
    pub async fn work(mut self, options: WorkOptions) -> Result<RunSummary, RunError> {
        let started = Instant::now();
        let id = self
            .store
            .register_worker(&options.name, options.lease)
            .await?;
        let (lost_tx, lost) = watch::channel(false);
        let keeper = {
            let store = self.store.clone();
            let lease = options.lease;
            tokio::spawn(async move {
                let mut every = tokio::time::interval(lease / 3);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                every.tick().await;
                loop {
                    every.tick().await;
                    match store.renew_lease(id, lease).await {
                        Ok(()) => {}
                        Err(StoreError::LeaseLost(_)) => {
                            let _ = lost_tx.send(true);
                            return;
                        }
                        // The next renewal may still be in time; if not, it says so.
                        Err(error) => tracing::warn!(%error, "renewing the worker's lease"),
                    }
                }
            })
        };
        let mut worker = Worker {
            id,
            options,
            lost,
            given_up: Vec::new(),
            summary: RunSummary::default(),
            stopped: None,
            stop_open: true,
        };
        let result = self.serve(&mut worker).await;
        keeper.abort();
        let lease_lost = *worker.lost.borrow();
        if !lease_lost {
            // Jobs with a task id go back at once: another worker waits on them.
            self.store.retire_worker(id).await?;
        }
        result?;
        if lease_lost {
            return Err(StoreError::LeaseLost(id).into());
        }
        let mut summary = worker.summary;
        summary.stopped = worker.stopped;
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    async fn serve(&mut self, worker: &mut Worker) -> Result<(), RunError> {
        let mut stop = self.stop.clone();
        loop {
            if worker.stopped.is_some() || *worker.lost.borrow() {
                return Ok(());
            }
            let next = match worker.options.batch {
                Some(batch) => Some(batch),
                None => self.store.next_batch_with_work(&worker.given_up).await?,
            };
            if let Some(id) = next {
                let batch = self
                    .store
                    .batch(id)
                    .await?
                    .ok_or(RunError::NoSuchBatch(id))?;
                let emptied = self.work_batch(worker, &batch).await?;
                if worker.options.until_empty && emptied {
                    if worker.options.batch.is_some() {
                        return Ok(());
                    }
                    continue;
                }
                if worker.options.batch.is_none() && emptied {
                    continue;
                }
            } else if worker.options.until_empty {
                return Ok(());
            }
            // Nothing to do now: look again after a tick, unless stopped.
            tokio::select! {
                changed = stop.changed(), if worker.stop_open => {
                    if changed.is_err() {
                        worker.stop_open = false;
                    } else if *stop.borrow() {
                        worker.stopped = Some(StopReason::Interrupted);
                    }
                }
                () = tokio::time::sleep(worker.options.tick()) => {}
            }
        }
    }

    /// Serves `batch` until it has no job pending or in flight (other than those this worker
    /// gave up on): `true`; or until stopped: `false`.
    async fn work_batch(&mut self, worker: &mut Worker, batch: &Batch) -> Result<bool, RunError> {
        let settings = batch.settings.clone();
        tokio::fs::create_dir_all(&settings.out_dir)
            .await
            .map_err(|source| RunError::OutDir {
                path: settings.out_dir.clone(),
                source,
            })?;
        // Sending unknown or failed jobs again is the user's explicit choice, once.
        if self.options.resubmit_unknown || self.options.retry_failed {
            let mut again = Vec::new();
            if self.options.resubmit_unknown {
                again.push(StateKind::Unknown);
            }
            if self.options.retry_failed {
                again.push(StateKind::Failed);
            }
            for job in self
                .store
                .jobs(&JobQuery::batch(batch.id).states(&again))
                .await?
            {
                match self.store.transition(job.id, &JobState::Pending).await {
                    Ok(()) | Err(StoreError::Conflict { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            self.options.resubmit_unknown = false;
            self.options.retry_failed = false;
        }
        self.preflight(batch, settings.max_credits).await?;
        let (inbox, callback_base) = match &self.options.callbacks {
            Some(callbacks) => (Some(callbacks.inbox.clone()), Some(callbacks.url.clone())),
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            client: self.client.clone(),
            store: self.store.clone(),
            events: self.events.clone(),
            wait: self.options.wait.clone(),
            inbox,
            callback_base,
            out_dir: settings.out_dir.clone(),
            writes: std::sync::Mutex::new((0, Duration::ZERO)),
            pace: Pace::shared(
                worker.id,
                worker.options.account.clone(),
                settings.rate_max,
                settings.rate_window_ms,
            ),
        });
        let ahead = Arc::new(Semaphore::new(SUBMITS_AHEAD));
        let mut tasks: JoinSet<Work> = JoinSet::new();
        let mut follows: HashMap<tokio::task::Id, AbortHandle> = HashMap::new();
        let mut stop = self.stop.clone();
        let mut lost = worker.lost.clone();
        let mut tick = tokio::time::interval(worker.options.tick());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // No pending job was left at the last claim: wait for a tick or a finished task.
        let mut exhausted = false;
        let mut fatal: Option<veo3_core::Error> = None;
        let mut emptied = false;
        let mut lease_lost = false;
        // Whether to look at the journal for the end of the batch (after a tick, or when the
        // last task finished).
        let mut check_end = false;
        // Claims are journal writes too (a claim journals `submitting`).
        let mut claims: (u64, Duration) = (0, Duration::ZERO);

        loop {
            if tasks.is_empty() && (check_end || lease_lost) {
                check_end = false;
                if worker.stopped.is_some() || fatal.is_some() || lease_lost {
                    break;
                }
                let left = self
                    .store
                    .jobs(&JobQuery::batch(batch.id).states(&[
                        StateKind::Pending,
                        StateKind::Submitting,
                        StateKind::Submitted,
                        StateKind::Succeeded,
                        StateKind::Upgrading,
                    ]))
                    .await?;
                if left.iter().all(|j| worker.given_up.contains(&j.id)) {
                    emptied = true;
                    break;
                }
            }
            let submitting = worker.stopped.is_none() && fatal.is_none() && !lease_lost;
            tokio::select! {
                biased;
                changed = lost.changed(), if !lease_lost => {
                    if changed.is_err() || *lost.borrow() {
                        // Someone else may own these jobs now: stop waiting on them. Submits
                        // in progress still finish and journal their answers (never cancelled).
                        lease_lost = true;
                        for handle in follows.values() {
                            handle.abort();
                        }
                    }
                }
                changed = stop.changed(), if worker.stop_open => {
                    if changed.is_err() {
                        worker.stop_open = false;
                        continue;
                    }
                    if *stop.borrow() {
                        worker.stop_open = false;
                        if worker.stopped.is_none() {
                            worker.stopped = Some(StopReason::Interrupted);
                            (self.events)(&RunEvent::StoppedSubmitting {
                                reason: StopReason::Interrupted,
                            });
                        }
                        for handle in follows.values() {
                            handle.abort();
                        }
                    }
                }
                Some(joined) = tasks.join_next_with_id() => {
                    exhausted = false;
                    check_end = true;
                    let work = match joined {
                        Ok((id, work)) => {
                            follows.remove(&id);
                            work
                        }
                        Err(error) => {
                            follows.remove(&error.id());
                            if error.is_panic() {
                                tracing::error!("a job task panicked: {error}");
                            }
                            continue;
                        }
                    };
                    match work {
                        Work::Follow { job, finished } => {
                            if !finished && worker.stopped.is_none() && !lease_lost {
                                // Left resumable: give it back, and let another worker (or a
                                // later run) try it.
                                worker.given_up.push(job);
                                self.store.release(worker.id, job).await?;
                            }
                        }
                        Work::Submit { job, outcome } => match outcome {
                            SubmitOutcome::Submitted(task_id) => {
                                if worker.stopped.is_some() {
                                    continue;
                                }
                                let mut job = *job;
                                job.state = JobState::Submitted { task_id };
                                spawn_follow(&mut tasks, &mut follows, &shared, job, false);
                            }
                            SubmitOutcome::NotSent { rate_limited, credits } => {
                                if rate_limited {
                                    worker.summary.rate_limited += 1;
                                }
                                if credits && worker.stopped.is_none() {
                                    worker.stopped = Some(StopReason::OutOfCredits);
                                    (self.events)(&RunEvent::StoppedSubmitting {
                                        reason: StopReason::OutOfCredits,
                                    });
                                }
                            }
                            SubmitOutcome::Unknown | SubmitOutcome::Failed => {}
                            SubmitOutcome::Journal(error) => return Err(error.into()),
                            SubmitOutcome::Fatal(error) => fatal = Some(error),
                        },
                    }
                }
                permit = ahead.clone().acquire_owned(), if submitting && !exhausted => {
                    let Ok(permit) = permit else { continue };
                    let claiming = Instant::now();
                    let claimed = self
                        .store
                        .claim(
                            worker.id,
                            batch.id,
                            &ClaimRequest {
                                submits: 1,
                                takeovers: 0,
                                exclude: worker.given_up.clone(),
                            },
                        )
                        .await?;
                    claims.0 += 1;
                    claims.1 += claiming.elapsed();
                    let Some(job) = claimed.submits.into_iter().next() else {
                        exhausted = true;
                        continue;
                    };
                    (self.events)(&RunEvent::State {
                        job: job.id,
                        name: job.name.clone(),
                        state: JobState::Submitting,
                    });
                    worker.summary.submits += 1;
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let outcome = submit(&shared, &job, Some(permit), true).await;
                        Work::Submit { job: Box::new(job), outcome }
                    });
                }
                _ = tick.tick() => {
                    exhausted = false;
                    check_end = true;
                    if submitting {
                        let claiming = Instant::now();
                        let claimed = self
                            .store
                            .claim(
                                worker.id,
                                batch.id,
                                &ClaimRequest {
                                    submits: 0,
                                    takeovers: TAKEOVERS,
                                    exclude: worker.given_up.clone(),
                                },
                            )
                            .await?;
                        claims.0 += 1;
                        claims.1 += claiming.elapsed();
                        self.adopt(worker, &shared, claimed, &mut tasks, &mut follows);
                    }
                }
            }
        }
        let writes = *shared.writes.lock().unwrap_or_else(|p| p.into_inner());
        worker.summary.journal_writes += writes.0 + claims.0;
        worker.summary.journal_time += writes.1 + claims.1;
        worker.summary.counts = self.store.counts(Some(batch.id)).await?;
        if lease_lost {
            return Err(StoreError::LeaseLost(worker.id).into());
        }
        if let Some(error) = fatal {
            return Err(RunError::Api(error));
        }
        Ok(emptied)
    }

    /// Announces what a claim made unknown, and waits on the jobs it took over.
    fn adopt(
        &self,
        worker: &mut Worker,
        shared: &Arc<Shared>,
        claimed: Claimed,
        tasks: &mut JoinSet<Work>,
        follows: &mut HashMap<tokio::task::Id, AbortHandle>,
    ) {
        for job in claimed.lost {
            worker.summary.lost += 1;
            (self.events)(&RunEvent::State {
                job: job.id,
                name: job.name.clone(),
                state: JobState::Unknown,
            });
        }
        for job in claimed.takeovers {
            worker.summary.taken_over += 1;
            (self.events)(&RunEvent::TakenOver {
                job: job.id,
                name: job.name.clone(),
                state: job.state.clone(),
            });
            spawn_follow(tasks, follows, shared, job, true);
        }
    }
}

fn spawn_follow(
    tasks: &mut JoinSet<Work>,
    follows: &mut HashMap<tokio::task::Id, AbortHandle>,
    shared: &Arc<Shared>,
    job: Job,
    resumed: bool,
) {
    let shared = shared.clone();
    let handle = tasks.spawn(async move {
        let id = job.id;
        let finished = follow(&shared, job, resumed).await;
        Work::Follow { job: id, finished }
    });
    follows.insert(handle.id(), handle);
}
