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
    /// The journal cannot do this (workers and the shared limiter need a shared journal,
    /// such as `PostgresStore`).
    #[error("journal {path}: {what} needs a shared journal (a postgres:// URL)")]
    Unsupported {
        /// Which journal.
        path: String,
        /// What was asked.
        what: &'static str,
    },
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
    /// At most this many pending jobs to submit (each becomes `submitting`, owned by the
    /// worker, in the claim itself), within the batch's global in-flight bound.
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
    /// Jobs now `submitting`, owned by the claiming worker: it sends each one once.
    pub submits: Vec<Job>,
    /// Jobs with a task id (submitted, succeeded, upgrading) whose worker's lease expired:
    /// the claiming worker waits on their task ids, never submits them again.
    pub takeovers: Vec<Job>,
    /// Jobs that were `submitting` when their worker died: their request may have been
    /// billed, so they became `unknown` (reported, never resubmitted by themselves).
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

    // Workers: several processes sharing the journal. Only shared journals implement these;
    // the others answer `StoreError::Unsupported`.

    /// Registers a worker named `name` (for messages) holding a lease of `lease` from now,
    /// on the journal's clock.
    async fn register_worker(&self, name: &str, lease: Duration) -> Result<WorkerId, StoreError> {
        let _ = (name, lease);
        Err(self.unsupported("workers"))
    }

    /// Extends `worker`'s lease to `lease` from now. [`StoreError::LeaseLost`] when it had
    /// already expired: its jobs may belong to others by now.
    async fn renew_lease(&self, worker: WorkerId, lease: Duration) -> Result<(), StoreError> {
        let _ = (worker, lease);
        Err(self.unsupported("workers"))
    }

    /// Ends `worker`'s lease now and gives its jobs with a task id back (a graceful stop):
    /// another worker waits on them at once.
    async fn retire_worker(&self, worker: WorkerId) -> Result<(), StoreError> {
        let _ = worker;
        Err(self.unsupported("workers"))
    }

    /// Gives one job back (its owner stops working on it); another worker may claim it.
    async fn release(&self, worker: WorkerId, job: JobId) -> Result<(), StoreError> {
        let _ = (worker, job);
        Err(self.unsupported("workers"))
    }

    /// In one transaction, for `worker` in `batch`: the `submitting` jobs of dead workers
    /// become `unknown`; jobs with a task id whose worker is dead are taken over; pending jobs
    /// are taken and made `submitting`, as many as asked and as the batch's concurrency (a
    /// bound over all workers) allows. Rows another claim holds are skipped, never waited on.
    async fn claim(
        &self,
        worker: WorkerId,
        batch: BatchId,
        request: &ClaimRequest,
    ) -> Result<Claimed, StoreError> {
        let _ = (worker, batch, request);
        Err(self.unsupported("workers"))
    }

    /// The oldest batch with a job pending or in flight (other than `exclude`), if any.
    async fn next_batch_with_work(&self, exclude: &[JobId]) -> Result<Option<BatchId>, StoreError> {
        let _ = exclude;
        Err(self.unsupported("workers"))
    }

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
    ) -> Result<Option<Reservation>, StoreError> {
        let _ = (worker, account, max, window);
        Err(self.unsupported("the shared limiter"))
    }

    /// Journals that the send of `reservation` was answered (or ended without an answer):
    /// from now on, its window runs.
    async fn submit_answered(&self, reservation: i64) -> Result<(), StoreError> {
        let _ = reservation;
        Err(self.unsupported("the shared limiter"))
    }

    /// The error of a method this journal does not implement.
    fn unsupported(&self, what: &'static str) -> StoreError {
        StoreError::Unsupported {
            path: self.location(),
            what,
        }
    }
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
