//! The storage trait every journal backend implements, and its errors.
//!
//! The trait is small on purpose: a job's life is a sequence of compare-and-set transitions
//! ([`Store::transition`]), checked against [`JobState::allowed`] *inside* the store, in one
//! atomic statement. That is what makes "a job with a task id is never sent again" hold even
//! when two processes share a journal.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::job::{Batch, BatchId, BatchSettings, Job, JobId, JobState, NewJob, StateKind};

/// A storage failure, or a transition the state machine refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, corruption, lock timeout...).
    #[error("journal {path}: {message}")]
    Backend {
        /// Which journal.
        path: String,
        /// What failed.
        message: String,
    },
    /// The journal's schema is newer than this program knows.
    #[error(
        "journal {path} has schema version {found}, newer than this veo3 knows ({known}); upgrade veo3"
    )]
    TooNew {
        /// Which journal.
        path: String,
        /// Its version.
        found: i64,
        /// The newest this program knows.
        known: i64,
    },
    /// No such job.
    #[error("no job {0} in the journal")]
    NoSuchJob(JobId),
    /// The worker's lease expired (it stalled longer than its lease): other workers may have
    /// taken its jobs over, so it must stop.
    #[error("worker {0}'s lease expired; its jobs are left to the other workers")]
    LeaseLost(WorkerId),
    /// The job is not in a state that may go to the requested one.
    #[error("job {job} is {from}; it cannot become {to}")]
    Conflict {
        /// The job.
        job: JobId,
        /// Its current state.
        from: StateKind,
        /// The refused state.
        to: StateKind,
    },
}

/// Which jobs to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobQuery {
    /// Only this batch's jobs.
    pub batch: Option<BatchId>,
    /// Only jobs in these states (all when empty).
    pub states: Vec<StateKind>,
    /// At most this many, newest first when set; oldest first (by id) when `None`.
    pub limit: Option<u64>,
    /// Only jobs with this task id.
    pub task_id: Option<String>,
}

impl JobQuery {
    /// Every job of `batch`, by id.
    pub fn batch(batch: BatchId) -> Self {
        Self {
            batch: Some(batch),
            ..Self::default()
        }
    }

    /// Only jobs in `states`.
    pub fn states(mut self, states: &[StateKind]) -> Self {
        self.states = states.to_vec();
        self
    }

    /// The jobs whose task is `task_id` (newest first: a journal may hold a task twice only
    /// when one is an extra task).
    pub fn task(task_id: impl Into<String>) -> Self {
        Self {
            task_id: Some(task_id.into()),
            ..Self::default()
        }
    }

    /// The newest `limit` jobs.
    pub fn newest(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// A worker's id in a shared journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerId(pub i64);

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What one worker may claim in one step ([`Store::claim`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimRequest {
    /// At most this many pending jobs to submit (each owned by the worker, still `pending`),
    /// within the batch's global in-flight bound.
    pub submits: usize,
    /// At most this many jobs with a task id whose worker died (or left them) to wait on.
    pub takeovers: usize,
    /// Jobs this worker already gave up on (left resumable); not claimed again by it.
    pub exclude: Vec<JobId>,
}

/// What a claim took.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Claimed {
    /// Pending jobs now owned by the claiming worker (under a new fencing token): it sends
    /// each one once, after [`Store::begin_send`].
    pub submits: Vec<Job>,
    /// Jobs with a task id (submitted, succeeded, upgrading) whose worker's lease expired:
    /// the claiming worker waits on their task ids, never submits them again.
    pub takeovers: Vec<Job>,
    /// Jobs that were `submitting` when their worker died (its lease and grace ran out):
    /// their request may have been billed, so they became `unknown` (reported, never
    /// resubmitted by themselves).
    pub lost: Vec<Job>,
}

/// A journal backend. Every method is one durable step: when it returns `Ok`, what it wrote
/// survives a crash or a power loss.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates a batch and its jobs (all `pending`) in one transaction.
    async fn create_batch(
        &self,
        settings: &BatchSettings,
        jobs: &[NewJob],
    ) -> Result<BatchId, StoreError>;

    /// A batch, if it exists.
    async fn batch(&self, id: BatchId) -> Result<Option<Batch>, StoreError>;

    /// The most recently created batch.
    async fn latest_batch(&self) -> Result<Option<Batch>, StoreError>;

    /// Records one job outside a batch (what `veo3 generate` does), in `state`.
    async fn add_job(&self, job: &NewJob, state: &JobState) -> Result<JobId, StoreError>;

    /// A job, if it exists.
    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError>;

    /// Jobs matching `query`.
    async fn jobs(&self, query: &JobQuery) -> Result<Vec<Job>, StoreError>;

    /// Moves job `id` to `to`, atomically, if [`JobState::allowed`] from its current state;
    /// otherwise [`StoreError::Conflict`] and nothing changes.
    async fn transition(&self, id: JobId, to: &JobState) -> Result<(), StoreError>;

    /// How many jobs are in each state (of `batch`, or of the whole journal).
    async fn counts(&self, batch: Option<BatchId>) -> Result<BTreeMap<StateKind, u64>, StoreError>;

    /// Where the journal is (a path or a URL without credentials), for messages.
    fn location(&self) -> String;

    // Workers: the processes working on the journal's batches. Every journal implements
    // them; a job in flight belongs to exactly one live worker.

    /// Registers a worker holding a lease of `worker.lease` from now, on the journal's clock.
    async fn register_worker(&self, worker: &NewWorker) -> Result<WorkerId, StoreError>;

    /// Extends `worker`'s lease to `lease` from now. [`StoreError::LeaseLost`] when it had
    /// already expired: its jobs may belong to others by now.
    async fn renew_lease(&self, worker: WorkerId, lease: Duration) -> Result<(), StoreError>;

    /// Ends `worker`'s lease now and gives its jobs back (a graceful stop): another worker
    /// waits on them at once.
    async fn retire_worker(&self, worker: WorkerId) -> Result<(), StoreError>;

    /// Ends the lease of a worker known to be dead (its process is gone), grace included:
    /// its jobs are taken over, and its submits without an answer made `unknown`, at the next
    /// claim instead of a lease and a grace later.
    async fn expire_worker(&self, worker: WorkerId) -> Result<(), StoreError>;

    /// The workers whose lease has not expired, oldest first.
    async fn live_workers(&self) -> Result<Vec<WorkerInfo>, StoreError>;

    /// Gives one job back (its owner stops working on it); another worker may claim it.
    async fn release(&self, worker: WorkerId, job: JobId) -> Result<(), StoreError>;

    /// In one transaction, for `worker` in `batch`:
    /// - with `takeovers`, the `submitting` jobs of workers dead for longer than their grace
    ///   (a lease past the lease's end) become `unknown`, and jobs with a task id whose
    ///   worker's lease expired are taken over;
    /// - pending jobs no live worker holds are claimed, as many as asked and as the batch's
    ///   concurrency (a bound over all workers) allows. A claimed job stays `pending`, owned
    ///   by `worker`, until [`Store::begin_send`] right before its request leaves.
    ///
    /// Every job taken gets a new fencing token ([`Job::fence`]). Rows another claim holds
    /// are skipped, never waited on.
    async fn claim(
        &self,
        worker: WorkerId,
        batch: BatchId,
        request: &ClaimRequest,
    ) -> Result<Claimed, StoreError>;

    /// The check right before a billable send: if `job` is still `pending`, owned by
    /// `worker` under fencing token `fence`, and `worker`'s lease has at least `margin` left,
    /// it becomes `submitting` ([`SendCheck::Go`]), durably; otherwise nothing changes.
    async fn begin_send(
        &self,
        worker: WorkerId,
        job: JobId,
        fence: i64,
        margin: Duration,
    ) -> Result<SendCheck, StoreError>;

    /// Journals the answer of a send [`Store::begin_send`] let go: `to` (submitted, unknown,
    /// pending or failed) if the job is still the sender's (`fence`). A task id kie answered
    /// is always journaled: when the job has moved on meanwhile (another worker took it over
    /// and sent it again), it is attached to the job as an extra task ([`Answered::Extra`]),
    /// a job of its own in `submitted`, owned by `worker`, whose video is downloaded too.
    async fn answer_send(
        &self,
        worker: WorkerId,
        job: JobId,
        fence: i64,
        to: &JobState,
    ) -> Result<Answered, StoreError>;

    /// The oldest batch with a job pending or in flight (other than `exclude`), if any.
    async fn next_batch_with_work(&self, exclude: &[JobId]) -> Result<Option<BatchId>, StoreError>;

    /// Reserves `worker`'s next submit of `account` under "at most `max` per `window`",
    /// shared by every worker of the journal: a send may go once the `max`-th latest one was
    /// answered `window` ago. Returns the reservation and how long to wait before
    /// sending, or `None` while the `max`-th latest send has no answer yet (ask again
    /// shortly). Every reservation must end with [`Store::submit_answered`], whatever the
    /// answer; one whose worker dies counts as answered when its lease ends.
    async fn reserve_submit(
        &self,
        worker: WorkerId,
        account: &str,
        max: u32,
        window: Duration,
    ) -> Result<Option<Reservation>, StoreError>;

    /// Journals that the send of `reservation` was answered (or ended without an answer):
    /// from now on, its window runs.
    async fn submit_answered(&self, reservation: i64) -> Result<(), StoreError>;

    /// A random value made once per journal and kept in it, which account fingerprints are
    /// keyed with ([`account_fingerprint`](crate::account_fingerprint)): a fingerprint read
    /// from the journal cannot be used to test guesses of a key without it.
    async fn salt(&self) -> Result<String, StoreError>;
}

/// A worker about to register ([`Store::register_worker`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewWorker {
    /// A name for messages (e.g. `host:pid`).
    pub name: String,
    /// How long its claims last without a renewal.
    pub lease: Duration,
    /// The process, so that workers on the same machine can tell that it died.
    pub process: Option<ProcessId>,
}

impl NewWorker {
    /// A worker named `name` with a lease of `lease`, in this process.
    pub fn new(name: impl Into<String>, lease: Duration) -> Self {
        Self {
            name: name.into(),
            lease,
            process: ProcessId::current(),
        }
    }
}

/// A process, as precisely as needed to tell from another process on the same machine
/// whether it is still alive: the kernel's boot and PID namespace, the PID, and the process's
/// start time (so that a reused PID is not mistaken for it). Linux only; `None` elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessId {
    /// The boot id and the PID namespace: processes with the same `host` see the same PIDs.
    pub host: String,
    /// The PID.
    pub pid: u32,
    /// When it started, in clock ticks after boot.
    pub start: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> Option<Self> {
        Self::of(std::process::id())
    }

    /// The process `pid` on this machine, if it exists (and the platform tells).
    pub fn of(pid: u32) -> Option<Self> {
        Some(Self {
            host: this_host()?,
            pid,
            start: start_time(pid)?,
        })
    }

    /// A process as a journal's columns hold it (all three, or none).
    pub(crate) fn from_columns(
        host: Option<String>,
        pid: Option<i64>,
        start: Option<i64>,
    ) -> Option<Self> {
        Some(Self {
            host: host?,
            pid: u32::try_from(pid?).ok()?,
            start: u64::try_from(start?).ok()?,
        })
    }

    /// Whether this process is known to have ended: it ran on this machine (the same boot
    /// and PID namespace) and no process with its PID and start time exists. `false` when
    /// it cannot be told (another machine, another platform).
    pub fn is_gone(&self) -> bool {
        match this_host() {
            Some(host) if host == self.host => start_time(self.pid) != Some(self.start),
            _ => false,
        }
    }
}

/// The boot id and PID namespace of this process (Linux).
fn this_host() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), namespace.display()))
}

/// The start time of process `pid` in clock ticks after boot: field 22 of
/// `/proc/PID/stat`, read after the command name (which may hold spaces and parentheses).
/// `None` for a process that has ended, its exit not yet collected by its parent included
/// (state `Z` or `X`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3 (state); the start time is field 22.
    let mut fields = after_name.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// A live worker, as the journal holds it ([`Store::live_workers`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// Its id.
    pub id: WorkerId,
    /// Its name.
    pub name: String,
    /// Its process, when it registered one.
    pub process: Option<ProcessId>,
    /// When its lease ends, in Unix milliseconds of the journal's clock.
    pub lease_until_ms: i64,
}

/// What [`Store::begin_send`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendCheck {
    /// The job is `submitting` now: send it, once.
    Go,
    /// The job is no longer this worker's (taken over, or moved on): send nothing.
    Lost,
    /// The job is still this worker's but its lease is too short to cover the send: send
    /// nothing now (give the job back, or try again after a renewal).
    LeaseShort,
}

/// What [`Store::answer_send`] journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answered {
    /// The job took the answer's state.
    Journaled,
    /// The job had already moved on: this answer's task id (if any) was already the job's,
    /// or the answer carried none. Nothing to do.
    Moved,
    /// The job had moved on and the answer carried another task id: journaled as this job,
    /// an extra task of the job (billed twice), in `submitted`.
    Extra(Box<Job>),
}

/// A send reserved under the account's shared limit ([`Store::reserve_submit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reservation {
    /// Its id, for [`Store::submit_answered`].
    pub id: i64,
    /// How long to wait before sending.
    pub wait: Duration,
}
