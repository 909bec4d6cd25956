//! A durable journal of Veo 3 jobs, and a batch runner that never loses or re-bills a video.
//!
//! Every generate request is billed, has no idempotency key and cannot be cancelled. So the
//! one rule this crate is built around is: **a submit is journaled before it is sent, and its
//! answer the moment it arrives**. A job is `submitting` in the journal right before the
//! request leaves (once its turn under the rate limit came, and the journal confirmed the job
//! is still this worker's), and `submitted` with its task id as soon as kie answers. Whatever
//! happens in between (a crash, SIGKILL, a lost answer) leaves `submitting`, which is reported
//! as `unknown` once its worker is dead, instead of being sent again. A job with a task id is
//! only ever *waited on*, and a task id kie answered is always journaled.
//!
//! - [`job`]: jobs, their [`JobState`] machine ([`JobState::allowed`]), batches and settings;
//! - [`Store`]: the storage trait (compare-and-set transitions); [`SqliteStore`], one SQLite
//!   file in WAL mode with `synchronous=FULL` (feature `sqlite`, on by default);
//!   `PostgresStore`, a journal shared by many workers on many machines (feature `postgres`);
//! - [`PriceTable`]: estimated costs, for `--max-credits`;
//! - [`input`]: batch files (JSONL, CSV or one prompt per line), validated line by line before
//!   anything is sent;
//! - [`Runner`]: the one engine, for one process or many on one journal ([`Runner::work`],
//!   the [`worker`] module): claims under renewed leases with fencing tokens, paces submits
//!   under the account's rate limit (each send's window counted from its answer, kept in the
//!   journal so every process shares it), bounds the tasks in flight, stops submitting on 402
//!   or when asked, waits (by polling or with callbacks), downloads with a SHA-256, takes
//!   over a dead worker's tasks by waiting on their ids, and recovers lost answers from
//!   callbacks that carry the job id.

pub mod input;
pub mod job;
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
mod migrate;
mod pace;
#[cfg(feature = "postgres")]
mod postgres;
mod price;
pub mod report;
mod runner;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
#[cfg(test)]
#[cfg_attr(not(feature = "sqlite"), allow(dead_code, unused_imports))]
mod suite;
pub mod worker;

pub use job::{
    Batch, BatchId, BatchSettings, CallbackSettings, Job, JobId, JobState, JobTimes, NewJob,
    StateKind, Upgrade,
};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, is_postgres_url};
pub use price::PriceTable;
pub use runner::{
    Callbacks, Preflight, RunError, RunEvent, RunSummary, Runner, RunnerOptions, StopReason,
    callback_url, job_file, sha256_file,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{
    Answered, ClaimRequest, Claimed, JobQuery, NewWorker, ProcessId, Reservation, SendCheck, Store,
    StoreError, WorkerId, WorkerInfo,
};
pub use worker::{AccountKey, WorkOptions, account_fingerprint};

/// Milliseconds since the Unix epoch, as the journals record times.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
