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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use veo3_core::Error;
use veo3_core::download::TargetProblem;
use veo3_reqwest::{Client, Inbox, Upgrade4kRequest, Veo3Api, WaitOptions};

use crate::job::{Batch, BatchId, Job, JobId, JobState, StateKind, Upgrade};
use crate::pace::Pace;
use crate::price::PriceTable;
use crate::store::{Answered, JobQuery, SendCheck, Store, StoreError, WorkerId, WorkerInfo};

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
    /// `(job, task id)` for each verified callback whose URL named a job (taken by the
    /// worker that runs with these callbacks).
    pub recovered: Option<mpsc::UnboundedReceiver<(JobId, String)>>,
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
            recovered: Some(recovered),
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
    /// A late answer named a task for a job that had moved on (its worker lost its claim and
    /// another sent it again): the task is billed, so it is journaled as an extra task of the
    /// job, waited on and downloaded as `<name>.extra-N.mp4`.
    ExtraTask {
        /// The job it was sent for.
        job: JobId,
        /// The extra task's own job.
        extra: JobId,
        /// Its output name.
        name: String,
        /// kie's task id.
        task_id: String,
    },
    /// Live workers hold some of the batch's jobs: they are left to them.
    HeldByOthers {
        /// The worker.
        worker: WorkerInfo,
        /// Its jobs.
        jobs: Vec<JobId>,
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
    /// Journal writes (state changes, each durable before it returns) this run made.
    pub journal_writes: u64,
    /// Time spent in those writes.
    pub journal_time: Duration,
    /// Claims this run made (taking jobs and takeovers; light writes, no fsync of their own).
    pub claims: u64,
    /// Time spent in those claims.
    pub claim_time: Duration,
    /// Why submitting stopped early, if it did.
    pub stopped: Option<StopReason>,
    /// Jobs with a task id this worker took over from dead or stopped workers.
    pub taken_over: u64,
    /// Jobs found `submitting` under a dead worker's expired lease, made `unknown`.
    pub lost: u64,
    /// Late answers for jobs that had moved on, journaled as extra tasks (billed twice).
    pub extra_tasks: u64,
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

pub(crate) enum SubmitOutcome {
    Submitted(String),
    /// The answer came for a job that moved on meanwhile: journaled as this extra task.
    Extra(Box<Job>),
    NotSent {
        rate_limited: bool,
        credits: bool,
    },
    Unknown,
    Failed,
    /// Nothing was sent: the job is no longer this worker's (or it gave it back).
    NotOurs,
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
    /// The worker sending.
    pub(crate) worker: WorkerId,
    /// What a send needs left of the worker's lease.
    pub(crate) margin: Duration,
    /// `true` once the worker stops sending (Ctrl-C, a lost lease, a 402): submits still
    /// waiting for their turn give their jobs back.
    pub(crate) halt: watch::Sender<bool>,
}

impl Shared {
    /// Counts one journal write that took since `started`.
    fn count_write(&self, started: Instant) {
        let mut writes = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        writes.0 += 1;
        writes.1 += started.elapsed();
    }

    /// Announces `state` for `job` (already journaled).
    fn announce(&self, job: &Job, state: JobState) {
        (self.events)(&RunEvent::State {
            job: job.id,
            name: job.name.clone(),
            state,
        });
    }

    /// Journals `state` for `job` and announces it.
    pub(crate) async fn set(&self, job: &Job, state: JobState) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.store.transition(job.id, &state).await;
        self.count_write(started);
        result?;
        self.announce(job, state);
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
}

/// The longest pause after a refused submit, whatever the server's hint.
const MAX_REFUSAL_PAUSE: Duration = Duration::from_secs(60);

/// Sends a claimed job's generate request once, in its turn under the account's limit:
/// waits for the turn, checks in the journal that the job is still this worker's and that
/// its lease covers the send (journaling `submitting`: "journaled before it is sent"), sends,
/// and journals the answer under the claim's fencing token. `turn` is the job's place among
/// those claimed ahead, given up once its turn comes.
pub(crate) async fn submit(
    shared: &Shared,
    job: &Job,
    turn: OwnedSemaphorePermit,
) -> SubmitOutcome {
    let store = shared.store.as_ref();
    let mut halt = shared.halt.subscribe();
    let ticket = tokio::select! {
        ticket = shared.pace.turn(store) => match ticket {
            Ok(ticket) => ticket,
            Err(error) => {
                // Nothing was sent: the job goes back to whoever claims it next.
                let _ = store.release(shared.worker, job.id).await;
                return SubmitOutcome::Journal(error);
            }
        },
        () = async {
            let _ = halt.wait_for(|halted| *halted).await;
        } => {
            let _ = store.release(shared.worker, job.id).await;
            return SubmitOutcome::NotOurs;
        }
    };
    drop(turn);
    // As late as possible: the job is still ours, and nothing stopped us.
    let started = Instant::now();
    let halted = *shared.halt.borrow();
    let check = if halted {
        Ok(SendCheck::LeaseShort)
    } else {
        store
            .begin_send(shared.worker, job.id, job.fence, shared.margin)
            .await
    };
    shared.count_write(started);
    match check {
        Ok(SendCheck::Go) => {}
        other => {
            if let Err(error) = shared.pace.answered(store, ticket).await {
                tracing::warn!("journaling an unused turn for the account limiter: {error}");
            }
            return match other {
                Err(error) => SubmitOutcome::Journal(error),
                // Lost to another worker: it is theirs now.
                Ok(SendCheck::Lost) => SubmitOutcome::NotOurs,
                // Still ours, but not to be sent now: given back.
                _ => {
                    let _ = store.release(shared.worker, job.id).await;
                    SubmitOutcome::NotOurs
                }
            };
        }
    }
    shared.announce(job, JobState::Submitting);
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
    let started = Instant::now();
    let answered = store
        .answer_send(shared.worker, job.id, job.fence, &state)
        .await;
    shared.count_write(started);
    match answered {
        Ok(Answered::Journaled) => {
            shared.announce(job, state);
            outcome
        }
        // The job moved on (a verified callback recovered its task first, or its new owner
        // journaled this same task): nothing of ours to follow.
        Ok(Answered::Moved) => SubmitOutcome::NotOurs,
        Ok(Answered::Extra(extra)) => {
            tracing::warn!(job = %job.id, extra = %extra.id, "a late answer for a job sent again elsewhere: kept as an extra task");
            (shared.events)(&RunEvent::ExtraTask {
                job: job.id,
                extra: extra.id,
                name: extra.name.clone(),
                task_id: extra.state.task_id().unwrap_or_default().to_owned(),
            });
            SubmitOutcome::Extra(extra)
        }
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
    // A task the journal names is as old as its answer's journal time says: within kie's
    // grace window, "record is null" means "not visible yet" (a fresh wait counts from now).
    let options = match job.times.submitted_ms {
        Some(at) if !fresh => {
            let age = u64::try_from(crate::now_ms().saturating_sub(at)).unwrap_or(0);
            shared.wait.clone().created_ago(Duration::from_millis(age))
        }
        _ => shared.wait.clone(),
    };
    let result = match &shared.inbox {
        Some(inbox) if fresh => client.wait_for_task_hybrid(task_id, inbox, &options).await,
        // Its callback may have come while nothing listened.
        Some(inbox) => {
            client
                .wait_for_existing_task_hybrid(task_id, inbox, &options)
                .await
        }
        None if fresh => client.wait_for_new_task(task_id, &options).await,
        None => client.wait_for_task(task_id, &options).await,
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

/// The SHA-256 of a file, lowercase hex (what [`JobState::Downloaded`] records).
pub async fn sha256_file(path: &Path) -> std::io::Result<String> {
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
