//! The batch runner: one event loop that submits, waits, downloads and journals.
//!
//! The loop owns all decisions; the work (a submit, a wait-and-download) runs in spawned tasks
//! that report back. Two kinds of task, treated differently on Ctrl-C:
//! - a **submit** (journal `submitting`, send, journal the answer) is never cancelled: it is
//!   bounded by the client's timeouts, and cancelling it between "answer received" and
//!   "answer journaled" is exactly the loss the journal exists to prevent;
//! - a **follow** (wait, follow-up, download) is aborted on Ctrl-C: its job keeps its task id
//!   in the journal and a resume waits on it again (a half-written `.part` is removed by the
//!   download's drop guard, or replaced by the next download).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use veo3_core::Error;
use veo3_core::download::TargetProblem;
use veo3_reqwest::{Client, Inbox, Upgrade4kRequest, Veo3Api, WaitOptions};

use crate::job::{Batch, BatchId, Job, JobId, JobState, StateKind, Upgrade};
use crate::pace::{Pace, submits_ahead};
use crate::price::PriceTable;
use crate::store::{JobQuery, Store, StoreError};

/// The address callbacks reach, and where verified ones are delivered.
///
/// Each job's `callBackUrl` is `url` with `job=<id>` added to its query ([`callback_url`]), so
/// a receiver that verified a callback can tell the runner which job a task belongs to, even
/// when the generate answer carrying the task id was lost.
#[derive(Debug)]
#[non_exhaustive]
pub struct Callbacks {
    /// The public URL of the receiver.
    pub url: String,
    /// Where the receiver delivers verified callbacks (for the hybrid waits).
    pub inbox: Inbox,
    /// `(job, task id)` for each verified callback whose URL named a job.
    pub recovered: mpsc::UnboundedReceiver<(JobId, String)>,
}

impl Callbacks {
    /// Callbacks arriving at `url`, delivered to `inbox`, with job ids sent on `recovered`.
    pub fn new(
        url: impl Into<String>,
        inbox: Inbox,
        recovered: mpsc::UnboundedReceiver<(JobId, String)>,
    ) -> Self {
        Self {
            url: url.into(),
            inbox,
            recovered,
        }
    }
}

/// The `callBackUrl` of job `job` for a receiver at `base`.
///
/// ```
/// use veo3_jobs::{JobId, callback_url};
///
/// assert_eq!(callback_url("http://h:8080/cb", JobId(7)), "http://h:8080/cb?job=7");
/// assert_eq!(callback_url("http://h/cb?k=1", JobId(7)), "http://h/cb?k=1&job=7");
/// ```
pub fn callback_url(base: &str, job: JobId) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}job={job}")
}

/// How a run behaves beyond the batch's stored settings.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunnerOptions {
    /// Poll schedule overrides for the waits.
    pub wait: WaitOptions,
    /// Callbacks, when a receiver is configured.
    pub callbacks: Option<Callbacks>,
    /// After everything else is done, how long to keep listening for the callbacks of
    /// `unknown` submits (with callbacks only).
    pub recovery_window: Duration,
    /// Send `unknown` jobs again (they may already be billed: an explicit choice).
    pub resubmit_unknown: bool,
    /// Send `failed` jobs again.
    pub retry_failed: bool,
    /// The prices for the budget check.
    pub prices: PriceTable,
    /// Refuse to start when the balance is below the estimate (default on).
    pub check_balance: bool,
    /// Stop after this many submits (for tests and benchmarks of partial runs).
    pub max_submits: Option<u64>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            wait: WaitOptions::default(),
            callbacks: None,
            recovery_window: Duration::from_secs(20 * 60),
            resubmit_unknown: false,
            retry_failed: false,
            prices: PriceTable::default(),
            check_balance: true,
            max_submits: None,
        }
    }
}

/// Something that happened during a run, for progress displays and `--json`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RunEvent {
    /// A job changed state (already journaled).
    State {
        /// The job.
        job: JobId,
        /// Its output name.
        name: String,
        /// Its new state.
        state: JobState,
    },
    /// A wait, follow-up or download failed in a way a resume may fix; the job keeps its
    /// state.
    Retryable {
        /// The job.
        job: JobId,
        /// What failed.
        message: String,
    },
    /// The runner stopped sending new work.
    StoppedSubmitting {
        /// Why.
        reason: StopReason,
    },
    /// A worker took over a job whose worker died or stopped: it waits on the job's task id
    /// (never submitting it again).
    TakenOver {
        /// The job.
        job: JobId,
        /// Its output name.
        name: String,
        /// Its state, with the task id.
        state: JobState,
    },
}

/// Why a run stopped submitting before the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// kie answered 402: the credits ran out.
    OutOfCredits,
    /// The user asked (Ctrl-C).
    Interrupted,
    /// [`RunnerOptions::max_submits`] was reached.
    SubmitLimit,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::OutOfCredits => "out of credits (402)",
            Self::Interrupted => "interrupted",
            Self::SubmitLimit => "submit limit reached",
        })
    }
}

/// The cost check before a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preflight {
    /// Jobs that will be submitted.
    pub to_submit: u64,
    /// Their estimated cost, plus follow-ups still to request for jobs already submitted.
    pub estimate: i64,
    /// The balance, when it was read.
    pub balance: Option<i64>,
}

/// Why a run did not start or ended early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The journal failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The batch does not exist.
    #[error("no batch {0} in the journal")]
    NoSuchBatch(BatchId),
    /// The estimate exceeds `--max-credits`.
    #[error(
        "the jobs left are estimated at {estimate} credits, more than --max-credits {max}; nothing was sent"
    )]
    OverBudget {
        /// The estimate.
        estimate: i64,
        /// The cap.
        max: i64,
    },
    /// The estimate exceeds the balance.
    #[error(
        "the jobs left are estimated at {estimate} credits and the balance is {balance}; nothing was sent"
    )]
    OverBalance {
        /// The estimate.
        estimate: i64,
        /// The balance.
        balance: i64,
    },
    /// An API call that concerns the whole run failed (the balance, a refused key).
    #[error(transparent)]
    Api(#[from] Error),
    /// Creating the output folder failed.
    #[error("cannot create {path}: {source}")]
    OutDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RunSummary {
    /// Generate requests sent.
    pub submits: u64,
    /// Submits answered 429 (after the client's own retries), put back in the queue.
    pub rate_limited: u64,
    /// Unknown submits recovered through their callbacks.
    pub recovered: u64,
    /// Journal writes (state changes) this run made.
    pub journal_writes: u64,
    /// Time spent in those writes.
    pub journal_time: Duration,
    /// Why submitting stopped early, if it did.
    pub stopped: Option<StopReason>,
    /// Jobs with a task id this worker took over from dead or stopped workers.
    pub taken_over: u64,
    /// Jobs found `submitting` under a dead worker's expired lease, made `unknown`.
    pub lost: u64,
    /// Jobs per state at the end.
    pub counts: std::collections::BTreeMap<StateKind, u64>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

pub(crate) type Sink = Arc<dyn Fn(&RunEvent) + Send + Sync>;

/// Runs a batch from its journal. See the [crate docs](crate).
pub struct Runner {
    pub(crate) client: Client,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) options: RunnerOptions,
    pub(crate) events: Sink,
    pub(crate) stop: watch::Receiver<bool>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("client", &self.client)
            .field("store", &self.store.location())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A finished piece of work, reported to the loop.
pub(crate) enum Done {
    Submit {
        job: Box<Job>,
        permit: OwnedSemaphorePermit,
        outcome: SubmitOutcome,
    },
    Follow,
}

pub(crate) enum SubmitOutcome {
    Submitted(String),
    NotSent {
        rate_limited: bool,
        credits: bool,
    },
    Unknown,
    Failed,
    /// The journal refused or failed; the job is left as the journal says.
    Journal(StoreError),
    /// The key was refused: nothing else will work.
    Fatal(Error),
}

/// What the spawned tasks share.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) events: Sink,
    pub(crate) wait: WaitOptions,
    pub(crate) inbox: Option<Inbox>,
    pub(crate) callback_base: Option<String>,
    pub(crate) out_dir: PathBuf,
    pub(crate) writes: std::sync::Mutex<(u64, Duration)>,
    pub(crate) pace: Pace,
}

impl Shared {
    /// Journals `state` for `job` and announces it.
    pub(crate) async fn set(&self, job: &Job, state: JobState) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.store.transition(job.id, &state).await;
        {
            let mut writes = self.writes.lock().unwrap_or_else(|p| p.into_inner());
            writes.0 += 1;
            writes.1 += started.elapsed();
        }
        result?;
        (self.events)(&RunEvent::State {
            job: job.id,
            name: job.name.clone(),
            state,
        });
        Ok(())
    }

    pub(crate) fn retryable(&self, job: &Job, message: String) {
        tracing::warn!(job = %job.id, %message, "job left resumable");
        (self.events)(&RunEvent::Retryable {
            job: job.id,
            message,
        });
    }
}

impl Runner {
    /// A runner over `client` and `store`.
    pub fn new(client: Client, store: Arc<dyn Store>, options: RunnerOptions) -> Self {
        let (_, stop) = watch::channel(false);
        Self {
            client,
            store,
            options,
            events: Arc::new(|_| {}),
            stop,
        }
    }

    /// Calls `sink` for every [`RunEvent`]. It runs inside the runner: hand events on quickly.
    #[must_use]
    pub fn on_event<F>(mut self, sink: F) -> Self
    where
        F: Fn(&RunEvent) + Send + Sync + 'static,
    {
        self.events = Arc::new(sink);
        self
    }

    /// Stops submitting, and abandons waits and downloads (leaving them resumable), once
    /// `stop` becomes `true`.
    #[must_use]
    pub fn stop_when(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = stop;
        self
    }

    /// The cost check: the estimate of what is left to pay for `batch`, against
    /// `max_credits` and (when [`RunnerOptions::check_balance`]) the balance. Sends nothing
    /// billable.
    pub async fn preflight(
        &self,
        batch: &Batch,
        max_credits: Option<i64>,
    ) -> Result<Preflight, RunError> {
        let jobs = self.store.jobs(&JobQuery::batch(batch.id)).await?;
        let mut preflight = Preflight {
            to_submit: 0,
            estimate: 0,
            balance: None,
        };
        for job in &jobs {
            let resend = match job.state.kind() {
                StateKind::Pending => true,
                StateKind::Unknown | StateKind::Submitting => self.options.resubmit_unknown,
                StateKind::Failed => self.options.retry_failed,
                _ => false,
            };
            if resend {
                preflight.to_submit += 1;
                preflight.estimate = preflight.estimate.saturating_add(job.cost);
            }
        }
        if let Some(max) = max_credits {
            if preflight.estimate > max {
                return Err(RunError::OverBudget {
                    estimate: preflight.estimate,
                    max,
                });
            }
        }
        if self.options.check_balance && preflight.to_submit > 0 {
            let balance = self.client.credits().await?.0;
            preflight.balance = Some(balance);
            if preflight.estimate > balance {
                return Err(RunError::OverBalance {
                    estimate: preflight.estimate,
                    balance,
                });
            }
        }
        Ok(preflight)
    }

    /// Runs `batch` until every job is final, or submitting stopped and what was in flight is
    /// done. Jobs left `submitting` by an earlier run become `unknown` first.
    pub async fn run(mut self, batch: BatchId) -> Result<RunSummary, RunError> {
        let started = Instant::now();
        let batch = self
            .store
            .batch(batch)
            .await?
            .ok_or(RunError::NoSuchBatch(batch))?;
        let settings = batch.settings.clone();
        tokio::fs::create_dir_all(&settings.out_dir)
            .await
            .map_err(|source| RunError::OutDir {
                path: settings.out_dir.clone(),
                source,
            })?;
        let callbacks = self.options.callbacks.take();
        let (inbox, callback_base, mut recovered_rx) = match callbacks {
            Some(c) => (Some(c.inbox), Some(c.url), Some(c.recovered)),
            None => (None, None, None),
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
            pace: Pace::local(settings.rate_max, settings.rate_window_ms),
        });

        // Checked before anything changes, so a refused run leaves the journal as it was.
        self.preflight(&batch, settings.max_credits).await?;
        // An earlier run died between journaling a submit and journaling its answer: the
        // request may have been billed, so it is never sent again by itself.
        let mut jobs = self.store.jobs(&JobQuery::batch(batch.id)).await?;
        for job in &mut jobs {
            if job.state.kind() == StateKind::Submitting {
                shared.set(job, JobState::Unknown).await?;
                job.state = JobState::Unknown;
            }
            let resend = match job.state.kind() {
                StateKind::Unknown => self.options.resubmit_unknown,
                StateKind::Failed => self.options.retry_failed,
                _ => false,
            };
            if resend {
                shared.set(job, JobState::Pending).await?;
                job.state = JobState::Pending;
            }
        }

        let concurrency = settings.concurrency.max(1);
        let slots = Arc::new(Semaphore::new(concurrency));
        // Submits journaled and waiting for their turn under the rate limit. Pacing happens
        // between the journal write and the send (a journal write's fsync can take longer than
        // the pacing period, and would bunch the sends if it came after); few may wait there,
        // because a crash makes each of them `unknown`.
        let ahead = Arc::new(Semaphore::new(submits_ahead(
            settings.rate_max,
            settings.rate_window_ms,
        )));
        let mut queue: VecDeque<Job> = VecDeque::new();
        let mut resume: VecDeque<Job> = VecDeque::new();
        // Unknown submits whose callback may still name their task, and callbacks that
        // arrived before their job was known to be unknown.
        let mut awaiting: HashMap<JobId, Job> = HashMap::new();
        let mut early: HashMap<JobId, String> = HashMap::new();
        for job in jobs {
            match job.state.kind() {
                StateKind::Pending => queue.push_back(job),
                StateKind::Submitted | StateKind::Succeeded | StateKind::Upgrading => {
                    resume.push_back(job);
                }
                StateKind::Unknown if recovered_rx.is_some() => {
                    awaiting.insert(job.id, job);
                }
                _ => {}
            }
        }

        let mut summary = RunSummary::default();
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let mut follows: HashMap<tokio::task::Id, AbortHandle> = HashMap::new();
        let mut in_submit: HashSet<JobId> = HashSet::new();
        let mut stopped: Option<StopReason> = None;
        let mut fatal: Option<Error> = None;
        let mut stop = self.stop.clone();
        let mut stop_open = true;
        let mut recovery_deadline: Option<tokio::time::Instant> = None;

        loop {
            let submitting_allowed = stopped.is_none() && fatal.is_none();
            // Work to start: resumed jobs first (they are paid for), then new submits.
            let want_slot = submitting_allowed && (!resume.is_empty() || !queue.is_empty());
            if tasks.is_empty() && !want_slot {
                if awaiting.is_empty() || stopped == Some(StopReason::Interrupted) {
                    break;
                }
                if recovery_deadline.is_none() {
                    recovery_deadline =
                        Some(tokio::time::Instant::now() + self.options.recovery_window);
                }
            } else {
                recovery_deadline = None;
            }
            let deadline = recovery_deadline;
            tokio::select! {
                biased;
                changed = stop.changed(), if stop_open => {
                    if changed.is_err() {
                        stop_open = false;
                        continue;
                    }
                    if *stop.borrow() {
                        stop_open = false;
                        if stopped.is_none() {
                            stopped = Some(StopReason::Interrupted);
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
                    let done = match joined {
                        Ok((id, done)) => {
                            follows.remove(&id);
                            done
                        }
                        Err(error) => {
                            follows.remove(&error.id());
                            if error.is_panic() {
                                tracing::error!("a job task panicked: {error}");
                            }
                            continue;
                        }
                    };
                    let Done::Submit { job, permit, outcome } = done else {
                        continue;
                    };
                    let job = *job;
                    in_submit.remove(&job.id);
                    let early_task = early.remove(&job.id);
                    match outcome {
                        SubmitOutcome::Submitted(task_id) => {
                            if stopped == Some(StopReason::Interrupted) {
                                continue;
                            }
                            let mut job = job;
                            job.state = JobState::Submitted { task_id };
                            spawn_follow(&mut tasks, &mut follows, &shared, job, permit, false);
                        }
                        SubmitOutcome::NotSent { rate_limited, credits } => {
                            if credits && stopped.is_none() {
                                stopped = Some(StopReason::OutOfCredits);
                                (self.events)(&RunEvent::StoppedSubmitting {
                                    reason: StopReason::OutOfCredits,
                                });
                            }
                            if rate_limited {
                                summary.rate_limited += 1;
                            }
                            let mut job = job;
                            job.state = JobState::Pending;
                            queue.push_front(job);
                        }
                        SubmitOutcome::Unknown => {
                            if recovered_rx.is_some() {
                                if let Some(task_id) = early_task {
                                    if recover(&shared, &job, &task_id).await? {
                                        summary.recovered += 1;
                                        let mut job = job;
                                        job.state = JobState::Submitted { task_id };
                                        resume.push_back(job);
                                    }
                                } else {
                                    let mut job = job;
                                    job.state = JobState::Unknown;
                                    awaiting.insert(job.id, job);
                                }
                            }
                        }
                        SubmitOutcome::Failed => {}
                        SubmitOutcome::Journal(error) => return Err(error.into()),
                        SubmitOutcome::Fatal(error) => {
                            fatal = Some(error);
                        }
                    }
                }
                Some((job_id, task_id)) = async {
                    match recovered_rx.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(job) = awaiting.remove(&job_id) {
                        if recover(&shared, &job, &task_id).await? {
                            summary.recovered += 1;
                            let mut job = job;
                            job.state = JobState::Submitted { task_id };
                            resume.push_back(job);
                        }
                    } else if in_submit.contains(&job_id) {
                        early.insert(job_id, task_id);
                    }
                }
                (permit, turn) = next_slot(&slots, &ahead, !resume.is_empty()), if want_slot => {
                    if let Some(job) = resume.pop_front() {
                        spawn_follow(&mut tasks, &mut follows, &shared, job, permit, true);
                    } else if let Some(job) = queue.pop_front() {
                        if self.options.max_submits.is_some_and(|max| summary.submits >= max) {
                            queue.push_front(job);
                            stopped = Some(StopReason::SubmitLimit);
                            (self.events)(&RunEvent::StoppedSubmitting {
                                reason: StopReason::SubmitLimit,
                            });
                            continue;
                        }
                        summary.submits += 1;
                        in_submit.insert(job.id);
                        let shared = shared.clone();
                        tasks.spawn(async move {
                            let outcome = submit(&shared, &job, turn, false).await;
                            Done::Submit { job: Box::new(job), permit, outcome }
                        });
                    }
                }
                () = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                }, if deadline.is_some() => {
                    break;
                }
            }
        }

        if let Some(error) = fatal {
            return Err(RunError::Api(error));
        }
        let writes = *shared.writes.lock().unwrap_or_else(|p| p.into_inner());
        summary.journal_writes = writes.0;
        summary.journal_time = writes.1;
        summary.stopped = stopped;
        summary.counts = self.store.counts(Some(batch.id)).await?;
        summary.elapsed = started.elapsed();
        Ok(summary)
    }
}

/// A slot for one more job in flight; for a submit, also a place among those waiting for the
/// rate limiter.
async fn next_slot(
    slots: &Arc<Semaphore>,
    ahead: &Arc<Semaphore>,
    resume: bool,
) -> (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>) {
    // The semaphores are never closed.
    let Ok(permit) = slots.clone().acquire_owned().await else {
        return std::future::pending().await;
    };
    if resume {
        return (permit, None);
    }
    let Ok(turn) = ahead.clone().acquire_owned().await else {
        return std::future::pending().await;
    };
    (permit, Some(turn))
}

/// Journals an unknown job's task id from its callback; `false` if the journal already moved
/// it on.
async fn recover(shared: &Shared, job: &Job, task_id: &str) -> Result<bool, RunError> {
    match shared
        .set(
            job,
            JobState::Submitted {
                task_id: task_id.to_owned(),
            },
        )
        .await
    {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

fn spawn_follow(
    tasks: &mut JoinSet<Done>,
    follows: &mut HashMap<tokio::task::Id, AbortHandle>,
    shared: &Arc<Shared>,
    job: Job,
    permit: OwnedSemaphorePermit,
    resumed: bool,
) {
    let shared = shared.clone();
    let handle = tasks.spawn(async move {
        let _ = follow(&shared, job, resumed).await;
        drop(permit);
        Done::Follow
    });
    follows.insert(handle.id(), handle);
}

/// Journals `submitting` (unless a worker's claim already did), waits for the rate limiter,
/// sends the generate request once, and journals its answer.
/// The longest pause after a refused submit, whatever the server's hint.
const MAX_REFUSAL_PAUSE: Duration = Duration::from_secs(60);

pub(crate) async fn submit(
    shared: &Shared,
    job: &Job,
    turn: Option<OwnedSemaphorePermit>,
    journaled: bool,
) -> SubmitOutcome {
    // The invariant: journaled before it is sent.
    if !journaled {
        if let Err(error) = shared.set(job, JobState::Submitting).await {
            return SubmitOutcome::Journal(error);
        }
    }
    let ticket = match shared.pace.turn(shared.store.as_ref()).await {
        Ok(ticket) => ticket,
        Err(error) => {
            // Nothing was sent: the job may go back to the queue.
            let _ = shared.set(job, JobState::Pending).await;
            return SubmitOutcome::Journal(error);
        }
    };
    drop(turn);
    let mut request = job.request.clone();
    request.call_back_url = shared
        .callback_base
        .as_deref()
        .map(|base| callback_url(base, job.id));
    // Sent once: a 429 comes back here and waits for a turn of the pace, which counted it.
    let result = shared.client.generate_once(&request).await;
    if let Err(error) = shared.pace.answered(shared.store.as_ref(), ticket).await {
        // Its place in the shared window ends with its worker's lease instead.
        tracing::warn!("journaling a submit's answer for the account limiter: {error}");
    }
    let (state, outcome) = match result {
        Ok(created) => {
            let task_id = created.task_id;
            (
                JobState::Submitted {
                    task_id: task_id.clone(),
                },
                SubmitOutcome::Submitted(task_id),
            )
        }
        Err(error) if error.is_outcome_unknown() => (JobState::Unknown, SubmitOutcome::Unknown),
        Err(error) if error.code().is_some_and(|c| c.as_i64() == 402) => (
            JobState::Pending,
            SubmitOutcome::NotSent {
                rate_limited: false,
                credits: true,
            },
        ),
        Err(error) if error.is_unauthorized() => (JobState::Pending, SubmitOutcome::Fatal(error)),
        // Refused, provably before any task was made: back to the queue. After a 429 the
        // pace already counted the refused send; after another refusal (455 maintenance, a
        // connection that never opened) the job pauses first, for the server's hint or a
        // second, so that an outage is waited out rather than hammered.
        Err(error) if error.is_retryable() => {
            let pause = match error.retry_after() {
                Some(hint) => Some(hint.min(MAX_REFUSAL_PAUSE)),
                None if !error.is_rate_limited() => Some(Duration::from_secs(1)),
                None => None,
            };
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
            (
                JobState::Pending,
                SubmitOutcome::NotSent {
                    rate_limited: error.is_rate_limited(),
                    credits: false,
                },
            )
        }
        Err(error) => (
            JobState::Failed {
                task_id: None,
                code: error
                    .code()
                    .map(|c| c.as_i64())
                    .or(error.status().map(i64::from)),
                message: error.to_string(),
            },
            SubmitOutcome::Failed,
        ),
    };
    match shared.set(job, state).await {
        Ok(()) => outcome,
        // A verified callback recovered the task first (a lost answer): it owns the job now.
        Err(StoreError::Conflict {
            from: StateKind::Submitted,
            ..
        }) if matches!(outcome, SubmitOutcome::Unknown) => SubmitOutcome::Failed,
        Err(error) => SubmitOutcome::Journal(error),
    }
}

/// Waits for a job's task, runs its follow-up and downloads it, journaling each step. Errors
/// that a resume may fix leave the job where it is and are reported as events. Returns
/// whether the job reached a final state.
pub(crate) async fn follow(shared: &Shared, mut job: Job, resumed: bool) -> bool {
    loop {
        let next = match &job.state {
            JobState::Submitted { task_id } => wait(shared, &job, task_id, !resumed).await,
            JobState::Succeeded {
                task_id,
                urls,
                upgraded,
            } => {
                if job.upgrade.is_some() && !upgraded {
                    Some(JobState::Upgrading {
                        task_id: task_id.clone(),
                    })
                } else {
                    download(shared, &job, task_id, urls).await
                }
            }
            JobState::Upgrading { task_id } => upgrade(shared, &job, task_id, resumed).await,
            _ => None,
        };
        let Some(next) = next else {
            return job.state.kind().is_final();
        };
        if let Err(error) = shared.set(&job, next.clone()).await {
            shared.retryable(&job, format!("journal: {error}"));
            return false;
        }
        job.state = next;
    }
}

/// Waits for `job`'s task: `fresh` when this process has just submitted it (its first read
/// then comes at the schedule's first delay, not at once).
async fn wait(shared: &Shared, job: &Job, task_id: &str, fresh: bool) -> Option<JobState> {
    let client = &shared.client;
    let result = match &shared.inbox {
        Some(inbox) if fresh => {
            client
                .wait_for_task_hybrid(task_id, inbox, &shared.wait)
                .await
        }
        // Its callback may have come while nothing listened.
        Some(inbox) => {
            client
                .wait_for_existing_task_hybrid(task_id, inbox, &shared.wait)
                .await
        }
        None if fresh => client.wait_for_new_task(task_id, &shared.wait).await,
        None => client.wait_for_task(task_id, &shared.wait).await,
    };
    match result {
        Ok(record) => {
            let urls = record.video_urls().to_vec();
            if urls.is_empty() {
                Some(JobState::Failed {
                    task_id: Some(task_id.to_owned()),
                    code: None,
                    message: "the task succeeded without a video URL".into(),
                })
            } else {
                Some(JobState::Succeeded {
                    task_id: task_id.to_owned(),
                    urls,
                    upgraded: false,
                })
            }
        }
        Err(error) if error.is_task_failed() => Some(JobState::Failed {
            task_id: Some(task_id.to_owned()),
            code: error.code().map(|c| c.as_i64()),
            message: error.message().unwrap_or("the task failed").to_owned(),
        }),
        Err(error) => {
            shared.retryable(job, error.to_string());
            None
        }
    }
}

async fn upgrade(shared: &Shared, job: &Job, task_id: &str, resumed: bool) -> Option<JobState> {
    let result = match job.upgrade {
        Some(Upgrade::Hd1080p) => shared
            .client
            .upgrade_1080p_and_wait(task_id, None, &shared.wait)
            .await
            .map(|r| vec![r.result_url]),
        Some(Upgrade::Uhd4k) => {
            let request = Upgrade4kRequest::new(task_id);
            // Journaled `upgrading` before the first request: a resume repeats it, which kie
            // answers without billing again once the 4K job exists.
            if resumed {
                shared.client.wait_for_4k(&request, &shared.wait).await
            } else {
                shared
                    .client
                    .upgrade_4k_and_wait(&request, &shared.wait)
                    .await
            }
            .map(|r| r.result_urls)
        }
        None => Ok(Vec::new()),
    };
    match result {
        Ok(urls) if !urls.is_empty() => Some(JobState::Succeeded {
            task_id: task_id.to_owned(),
            urls,
            upgraded: true,
        }),
        Ok(_) => Some(JobState::Failed {
            task_id: Some(task_id.to_owned()),
            code: None,
            message: "the follow-up finished without a video URL".into(),
        }),
        Err(error)
            if error.is_task_failed() || (error.code().is_some() && !error.is_retryable()) =>
        {
            Some(JobState::Failed {
                task_id: Some(task_id.to_owned()),
                code: error.code().map(|c| c.as_i64()),
                message: error.to_string(),
            })
        }
        Err(error) => {
            shared.retryable(job, error.to_string());
            None
        }
    }
}

/// Where job `name`'s video goes in `out_dir`: `<out_dir>/<name>.mp4`.
///
/// ```
/// use std::path::Path;
///
/// assert_eq!(veo3_jobs::job_file(Path::new("videos"), "fox"), Path::new("videos/fox.mp4"));
/// ```
pub fn job_file(out_dir: &Path, name: &str) -> PathBuf {
    out_dir.join(format!("{name}.mp4"))
}

/// Downloads a job's video to [`job_file`].
///
/// The client's download policy decides whether an existing file may be replaced (the CLI's
/// `--force`). Without it, a file already at the job's name is this job's own only when it
/// holds exactly the bytes its source serves: a run killed between the download's rename and
/// the journal write leaves that. Such a file is adopted as it is (one read of the source,
/// nothing rewritten); any other file is left alone and the job stays resumable.
async fn download(shared: &Shared, job: &Job, task_id: &str, urls: &[String]) -> Option<JobState> {
    let url = urls.first()?;
    let path = job_file(&shared.out_dir, &job.name);
    let downloaded = match shared.client.download(url, &path).await {
        Err(Error::Target {
            problem: TargetProblem::Exists,
            ..
        }) => return adopt(shared, job, task_id, url, &path).await,
        other => other,
    };
    match downloaded {
        Ok(downloaded) => match sha256_file(&path).await {
            Ok(sha256) => Some(JobState::Downloaded {
                task_id: task_id.to_owned(),
                path,
                bytes: downloaded.bytes,
                sha256,
                url: url.clone(),
            }),
            Err(error) => {
                shared.retryable(job, format!("reading {}: {error}", path.display()));
                None
            }
        },
        Err(error) => {
            shared.retryable(job, error.to_string());
            None
        }
    }
}

/// Adopts the file already at `path` as job `job`'s download when it is byte-identical to
/// what `url` serves; otherwise leaves it alone and reports the job resumable.
async fn adopt(
    shared: &Shared,
    job: &Job,
    task_id: &str,
    url: &str,
    path: &Path,
) -> Option<JobState> {
    let existing = match sha256_file(path).await {
        Ok(sha) => sha,
        Err(error) => {
            shared.retryable(job, format!("reading {}: {error}", path.display()));
            return None;
        }
    };
    let mut source = HashingWriter::default();
    if let Err(error) = shared.client.download_to_writer(url, &mut source).await {
        shared.retryable(job, error.to_string());
        return None;
    }
    let (bytes, sha256) = source.finish();
    let on_disk = tokio::fs::metadata(path).await.map(|m| m.len()).ok();
    if sha256 != existing || on_disk != Some(bytes) {
        shared.retryable(
            job,
            format!(
                "{} exists and is not this job's video; move it away, or resume with --force to replace it",
                path.display()
            ),
        );
        return None;
    }
    tracing::info!(job = %job.id, path = %path.display(), "adopted the job's own file left by an earlier run");
    Some(JobState::Downloaded {
        task_id: task_id.to_owned(),
        path: path.to_owned(),
        bytes,
        sha256,
        url: url.to_owned(),
    })
}

/// An [`tokio::io::AsyncWrite`] that only counts and hashes what it is given.
#[derive(Default)]
struct HashingWriter {
    hasher: Sha256,
    bytes: u64,
}

impl HashingWriter {
    /// The byte count and the SHA-256, lowercase hex.
    fn finish(self) -> (u64, String) {
        (self.bytes, hex(&self.hasher.finalize()))
    }
}

impl tokio::io::AsyncWrite for HashingWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a file, lowercase hex.
pub(crate) async fn sha256_file(path: &Path) -> std::io::Result<String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(hex(&hasher.finalize()))
    })
    .await
    .map_err(std::io::Error::other)?
}
