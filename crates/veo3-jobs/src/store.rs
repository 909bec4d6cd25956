//! The storage trait every journal backend implements, and its errors.
//!
//! The trait is small on purpose: a job's life is a sequence of compare-and-set transitions
//! ([`Store::transition`]), checked against [`JobState::allowed`] *inside* the store, in one
//! atomic statement. That is what makes "a job with a task id is never sent again" hold even
//! when two processes share a journal.

use std::collections::BTreeMap;

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
}
