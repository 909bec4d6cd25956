//! Workers: the one engine that runs batches, for any number of processes on one journal (a
//! SQLite file shared on one machine, or a PostgreSQL database shared by many).
//!
//! A worker registers with a lease it renews while it works (every third of the lease). It
//! claims jobs in small steps ([`Store::claim`](crate::Store::claim)):
//! - a **pending** job is claimed (owned, with a new fencing token, still `pending`) when the
//!   worker has room ahead of the rate limiter; once its turn under the account's limit comes,
//!   [`Store::begin_send`](crate::Store::begin_send) checks that the job is still its own and
//!   that its lease covers the send, and journals `submitting`: only then does the request
//!   leave. A crash while waiting for a turn leaves a pending job to the next claim, never an
//!   `unknown` one;
//! - on every tick it also **takes over** jobs with a task id whose worker's lease expired (or
//!   that a stopping worker gave back), and waits on their task ids: never a second submit;
//! - jobs left `submitting` by a worker dead for a lease and a grace (another lease) become
//!   **unknown** in that same claim: the request may have been billed. A worker whose process
//!   is gone from this machine ([`ProcessId::is_gone`](crate::ProcessId::is_gone)) is dead at
//!   once, without waiting for its lease.
//!
//! The answer of every send is journaled with its fencing token
//! ([`Store::answer_send`](crate::Store::answer_send)): a task id kie answered is never lost,
//! even when the job was taken over meanwhile (it becomes an extra task of the job, waited on
//! and downloaded).
//!
//! Pacing is shared: each submit reserves its turn in the journal under the account's limit
//! ([`Store::reserve_submit`](crate::Store::reserve_submit)), keyed by a salted fingerprint of
//! the API key ([`account_fingerprint`]). A worker whose lease was lost (it stalled longer
//! than the lease) stops at once: its jobs may already be someone else's.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::job::{Batch, BatchId, Job, JobId, JobState, StateKind};
use crate::pace::{Pace, submits_ahead};
use crate::runner::{
    RunError, RunEvent, RunSummary, Runner, Shared, StopReason, SubmitOutcome, follow, submit,
};
use crate::store::{ClaimRequest, Claimed, JobQuery, NewWorker, StoreError, WorkerId};

/// The account key's fingerprint: what the shared limiter is keyed by (never the key). It is
/// an HMAC-SHA-256 of the key under the journal's random salt ([`Store::salt`]), so that
/// someone who can read the journal cannot test guesses of the key against it offline.
///
/// [`Store::salt`]: crate::Store::salt
///
/// ```
/// let print = veo3_jobs::account_fingerprint("sk-secret", "salt-1");
/// assert!(print.starts_with("hmac-sha256:") && !print.contains("secret"));
/// assert_eq!(print, veo3_jobs::account_fingerprint("sk-secret", "salt-1"));
/// assert_ne!(print, veo3_jobs::account_fingerprint("sk-secret", "salt-2"));
/// ```
pub fn account_fingerprint(key: &str, salt: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(salt.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(key.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("hmac-sha256:{hex}")
}

/// A new random salt for a journal (32 hex digits from the operating system's generator).
pub(crate) fn new_salt() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random numbers for the salt: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The API key a worker paces for; only its salted fingerprint reaches the journal. Its
/// `Debug` shows nothing of it.
#[derive(Clone)]
pub struct AccountKey(String);

impl AccountKey {
    /// The key `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

/// How a worker works ([`Runner::work`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkOptions {
    /// A name for messages and the journal's worker table (e.g. `host:pid`).
    pub name: String,
    /// The account the submits are paced for.
    pub key: AccountKey,
    /// How long the worker's claims last without a renewal (renewed every third of it). Its
    /// submits without an answer are declared unknown a lease after it ended (unless its
    /// process is known gone).
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
            key: AccountKey::new(api_key),
            lease: Duration::from_secs(30),
            until_empty: false,
            batch: None,
        }
    }

    /// A worker that works on `batch` until no job of it is pending or in flight (what
    /// `veo3 batch run` and `veo3 batch resume` do).
    pub fn batch(api_key: &str, batch: BatchId) -> Self {
        Self {
            until_empty: true,
            batch: Some(batch),
            ..Self::new(api_key)
        }
    }

    /// How often the worker looks for jobs to take over and for new work.
    fn tick(&self) -> Duration {
        (self.lease / 4).clamp(Duration::from_millis(20), Duration::from_secs(2))
    }

    /// What a send needs left of the lease: a third of it, which a renewal on time (every
    /// third) always leaves.
    fn margin(&self) -> Duration {
        self.lease / 3
    }
}

/// How many jobs with a task id one claim takes over at most.
const TAKEOVERS: usize = 64;

pub(crate) enum Work {
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
    account: String,
    lost: watch::Receiver<bool>,
    /// Jobs this worker left resumable (a wait or download failed): not claimed again by it.
    given_up: Vec<JobId>,
    summary: RunSummary,
    stopped: Option<StopReason>,
    stop_open: bool,
    /// `(job, task id)` of verified callbacks naming a job, when a receiver feeds them.
    recovered: Option<mpsc::UnboundedReceiver<(JobId, String)>>,
}

impl Runner {
    /// Works on the journal as one of its workers until stopped ([`Runner::stop_when`]), or
    /// with [`WorkOptions::until_empty`] until no job is pending or in flight. See the
    /// [`worker`](crate::worker) module. The summary counts this worker's work; its `counts`
    /// are those of the last batch it served.
    pub async fn work(mut self, options: WorkOptions) -> Result<RunSummary, RunError> {
        let started = Instant::now();
        let id = self
            .store
            .register_worker(&NewWorker::new(&options.name, options.lease))
            .await?;
        let salt = self.store.salt().await?;
        let account = account_fingerprint(&options.key.0, &salt);
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
        let recovered = self
            .options
            .callbacks
            .as_mut()
            .and_then(|c| c.recovered.take());
        let mut worker = Worker {
            id,
            options,
            account,
            lost,
            given_up: Vec::new(),
            summary: RunSummary::default(),
            stopped: None,
            stop_open: true,
            recovered,
        };
        let result = self.serve(&mut worker).await;
        keeper.abort();
        let lease_lost = *worker.lost.borrow();
        if !lease_lost {
            // Its jobs go back at once: another worker waits on them.
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

    /// Ends the leases of workers whose process is gone from this machine (a crash, SIGKILL):
    /// their jobs are taken over now rather than a lease later.
    async fn reap(&self, me: WorkerId) -> Result<(), StoreError> {
        for other in self.store.live_workers().await? {
            if other.id != me && other.process.as_ref().is_some_and(|p| p.is_gone()) {
                tracing::info!(worker = %other.id, name = %other.name, "its process is gone; taking its jobs over");
                self.store.expire_worker(other.id).await?;
            }
        }
        Ok(())
    }

    /// Takes over what dead workers left in `batch` (their waits, and their unanswered
    /// submits as unknown).
    async fn take_over(&self, worker: &Worker, batch: BatchId) -> Result<Claimed, StoreError> {
        self.reap(worker.id).await?;
        self.store
            .claim(
                worker.id,
                batch,
                &ClaimRequest {
                    submits: 0,
                    takeovers: TAKEOVERS,
                    exclude: worker.given_up.clone(),
                },
            )
            .await
    }

    /// Announces which live workers hold jobs of `batch`: they are left to them.
    async fn announce_others(&self, worker: &Worker, batch: BatchId) -> Result<(), StoreError> {
        let live: HashMap<WorkerId, _> = self
            .store
            .live_workers()
            .await?
            .into_iter()
            .map(|w| (w.id, w))
            .collect();
        let mut held: BTreeMap<WorkerId, Vec<JobId>> = BTreeMap::new();
        for job in self.store.jobs(&JobQuery::batch(batch)).await? {
            if let Some(owner) = job
                .owner
                .filter(|o| *o != worker.id && live.contains_key(o))
            {
                held.entry(owner).or_default().push(job.id);
            }
        }
        for (owner, jobs) in held {
            (self.events)(&RunEvent::HeldByOthers {
                worker: live[&owner].clone(),
                jobs,
            });
        }
        Ok(())
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
        let (inbox, callback_base) = match &self.options.callbacks {
            Some(callbacks) => (Some(callbacks.inbox.clone()), Some(callbacks.url.clone())),
            None => (None, None),
        };
        let (halt, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            client: self.client.clone(),
            store: self.store.clone(),
            events: self.events.clone(),
            wait: self.options.wait.clone(),
            inbox,
            callback_base,
            out_dir: settings.out_dir.clone(),
            writes: std::sync::Mutex::new((0, Duration::ZERO)),
            pace: Pace::new(
                worker.id,
                worker.account.clone(),
                settings.rate_max,
                settings.rate_window_ms,
            ),
            worker: worker.id,
            margin: worker.options.margin(),
            halt,
        });
        let mut tasks: JoinSet<Work> = JoinSet::new();
        let mut follows: HashMap<tokio::task::Id, AbortHandle> = HashMap::new();
        // Dead workers' submits become unknown before the user's choice to send unknown jobs
        // again applies to them.
        let claimed = self.take_over(worker, batch.id).await?;
        self.adopt(worker, &shared, claimed, &mut tasks, &mut follows);
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
            // Sending them again is the user's explicit choice, once.
            self.options.resubmit_unknown = false;
            self.options.retry_failed = false;
        }
        self.preflight(batch, settings.max_credits).await?;
        self.announce_others(worker, batch.id).await?;
        let ahead = Arc::new(Semaphore::new(submits_ahead(
            settings.rate_max,
            settings.rate_window_ms,
        )));
        // Jobs whose submit is in progress here, and callbacks that named one of them before
        // its submit ended (its answer may be lost).
        let mut in_submit: HashSet<JobId> = HashSet::new();
        let mut early: HashMap<JobId, String> = HashMap::new();
        let mut recovery_deadline: Option<tokio::time::Instant> = None;
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
        let mut check_end = true;
        // Claims are journal writes too.
        let mut claims: (u64, Duration) = (0, Duration::ZERO);

        // A journal error ends the loop, but never a send in progress: its answer is still
        // journaled (the submit tasks are drained below, not dropped).
        let outcome: Result<(), RunError> = async {
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
                            StateKind::Unknown,
                        ]))
                        .await?;
                    let unfinished = left
                        .iter()
                        .filter(|j| j.state.kind() != StateKind::Unknown)
                        .all(|j| worker.given_up.contains(&j.id));
                    let unknown = left.iter().any(|j| j.state.kind() == StateKind::Unknown);
                    if unfinished {
                        // Only unknown jobs left: with callbacks, their tasks may still be named
                        // by one for a while.
                        if worker.recovered.is_some() && unknown {
                            recovery_deadline.get_or_insert_with(|| {
                                tokio::time::Instant::now() + self.options.recovery_window
                            });
                        } else {
                            emptied = true;
                            break;
                        }
                    } else {
                        recovery_deadline = None;
                    }
                }
                let submitting = worker.stopped.is_none() && fatal.is_none() && !lease_lost;
                let deadline = recovery_deadline;
                tokio::select! {
                    biased;
                    changed = lost.changed(), if !lease_lost => {
                        if changed.is_err() || *lost.borrow() {
                            // Someone else may own these jobs now: stop waiting on them, and send
                            // nothing more. Sends in progress still journal their answers.
                            lease_lost = true;
                            let _ = shared.halt.send(true);
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
                            // Submits still waiting for their turn give their jobs back; one
                            // already sent is finished and journaled, never abandoned.
                            let _ = shared.halt.send(true);
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
                            Work::Submit { job, outcome } => {
                                in_submit.remove(&job.id);
                                let early_task = early.remove(&job.id);
                                match outcome {
                                    SubmitOutcome::Submitted(task_id) => {
                                        if worker.stopped.is_some() || lease_lost {
                                            continue;
                                        }
                                        let mut job = *job;
                                        job.state = JobState::Submitted { task_id };
                                        spawn_follow(&mut tasks, &mut follows, &shared, job, false);
                                    }
                                    SubmitOutcome::Extra(extra) => {
                                        worker.summary.extra_tasks += 1;
                                        if worker.stopped.is_none() && !lease_lost {
                                            spawn_follow(&mut tasks, &mut follows, &shared, *extra, false);
                                        }
                                    }
                                    SubmitOutcome::NotSent { rate_limited, credits } => {
                                        if rate_limited {
                                            worker.summary.rate_limited += 1;
                                        }
                                        if credits && worker.stopped.is_none() {
                                            worker.stopped = Some(StopReason::OutOfCredits);
                                            let _ = shared.halt.send(true);
                                            (self.events)(&RunEvent::StoppedSubmitting {
                                                reason: StopReason::OutOfCredits,
                                            });
                                        }
                                    }
                                    SubmitOutcome::Unknown => {
                                        // A callback named its task while the submit was in flight.
                                        if let Some(task_id) = early_task {
                                            if self.recover(worker, &job, &task_id).await? {
                                                let claimed = self.take_over(worker, batch.id).await?;
                                                self.adopt(worker, &shared, claimed, &mut tasks, &mut follows);
                                            }
                                        }
                                    }
                                    SubmitOutcome::NotOurs | SubmitOutcome::Failed => {}
                                    SubmitOutcome::Journal(error) => return Err(error.into()),
                                    SubmitOutcome::Fatal(error) => {
                                        let _ = shared.halt.send(true);
                                        fatal = Some(error);
                                    }
                                }
                            }
                        }
                    }
                    Some((job_id, task_id)) = async {
                        match worker.recovered.as_mut() {
                            Some(rx) => rx.recv().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        if in_submit.contains(&job_id) {
                            early.insert(job_id, task_id);
                        } else if let Some(job) = self.store.job(job_id).await? {
                            if job.state.kind() == StateKind::Unknown
                                && self.recover(worker, &job, &task_id).await?
                            {
                                check_end = true;
                                let claimed = self.take_over(worker, batch.id).await?;
                                self.adopt(worker, &shared, claimed, &mut tasks, &mut follows);
                            }
                        }
                    }
                    permit = ahead.clone().acquire_owned(), if submitting && !exhausted => {
                        let Ok(permit) = permit else { continue };
                        if self
                            .options
                            .max_submits
                            .is_some_and(|max| worker.summary.submits >= max)
                        {
                            worker.stopped = Some(StopReason::SubmitLimit);
                            let _ = shared.halt.send(true);
                            (self.events)(&RunEvent::StoppedSubmitting {
                                reason: StopReason::SubmitLimit,
                            });
                            continue;
                        }
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
                        worker.summary.submits += 1;
                        in_submit.insert(job.id);
                        let shared = shared.clone();
                        tasks.spawn(async move {
                            let outcome = submit(&shared, &job, permit).await;
                            Work::Submit { job: Box::new(job), outcome }
                        });
                    }
                    _ = tick.tick() => {
                        exhausted = false;
                        check_end = true;
                        if submitting {
                            let claiming = Instant::now();
                            let claimed = self.take_over(worker, batch.id).await?;
                            claims.0 += 1;
                            claims.1 += claiming.elapsed();
                            self.adopt(worker, &shared, claimed, &mut tasks, &mut follows);
                        }
                    }
                    () = async {
                        match deadline {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    }, if deadline.is_some() && tasks.is_empty() => {
                        emptied = true;
                        break;
                    }
                }
            }
            Ok(())
        }
        .await;
        if outcome.is_err() {
            let _ = shared.halt.send(true);
            for handle in follows.values() {
                handle.abort();
            }
            while tasks.join_next().await.is_some() {}
        }
        let writes = *shared.writes.lock().unwrap_or_else(|p| p.into_inner());
        outcome?;
        worker.summary.journal_writes += writes.0;
        worker.summary.journal_time += writes.1;
        worker.summary.claims += claims.0;
        worker.summary.claim_time += claims.1;
        worker.summary.counts = self.store.counts(Some(batch.id)).await?;
        if lease_lost {
            return Err(StoreError::LeaseLost(worker.id).into());
        }
        if let Some(error) = fatal {
            return Err(RunError::Api(error));
        }
        Ok(emptied)
    }

    /// Journals an unknown job's task id from its callback; `false` if the journal already
    /// moved it on.
    async fn recover(
        &self,
        worker: &mut Worker,
        job: &Job,
        task_id: &str,
    ) -> Result<bool, RunError> {
        let state = JobState::Submitted {
            task_id: task_id.to_owned(),
        };
        match self.store.transition(job.id, &state).await {
            Ok(()) => {
                worker.summary.recovered += 1;
                (self.events)(&RunEvent::State {
                    job: job.id,
                    name: job.name.clone(),
                    state,
                });
                Ok(true)
            }
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
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
