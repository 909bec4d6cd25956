//! The embedded journal: one SQLite file.
//!
//! Durability: WAL journal mode with `synchronous=FULL`, so every committed transition is
//! fsynced to the WAL before [`Store::transition`] returns; a crash or a power loss after it
//! cannot lose it. One connection behind a mutex (SQLite serializes writers anyway). Calls run
//! on tokio's blocking pool so an fsync never stalls the runtime's workers.
//!
//! Group commit: transitions queue up while the connection is busy, and whoever gets the
//! connection next applies every queued one (each its own compare-and-set) in one transaction,
//! one fsync for all, then answers each caller. A caller still returns only once its own
//! transition is durable; a busy batch pays one fsync per group instead of one per state
//! change, which is what keeps 1,000 jobs (4,000 writes) within the rate limit's pace on a
//! disk whose fsync takes milliseconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::job::{
    Batch, BatchId, BatchSettings, Job, JobId, JobState, JobTimes, NewJob, StateKind, Upgrade,
    predecessors,
};
use crate::migrate::{self, Migration};
use crate::store::{
    Answered, ClaimRequest, Claimed, JobQuery, NewWorker, ProcessId, Reservation, SendCheck, Store,
    StoreError, WorkerId, WorkerInfo,
};

/// The SQLite schema, in order. Never edit a released migration: add one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "batches and jobs",
        sql: include_str!("../migrations/sqlite/0001_jobs.sql"),
    },
    Migration {
        version: 2,
        name: "workers, leases, fencing tokens and the account limiter",
        sql: include_str!("../migrations/sqlite/0002_workers.sql"),
    },
];

/// A journal in one SQLite file. Cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) connection: Arc<Mutex<Connection>>,
    /// Transitions waiting for the next group commit.
    queued: Arc<Mutex<Vec<Queued>>>,
    path: PathBuf,
}

/// A write waiting for a group commit: it runs inside the group's transaction (in a savepoint
/// of its own) and returns what to do once the group's commit is known: answer its caller.
/// It is handed `Err(message)` instead of the connection when the transaction could not begin.
type Queued = Box<dyn for<'c> FnOnce(Result<&'c Connection, &'c str>) -> Finish + Send>;

/// Answers a grouped write's caller with the commit's outcome (`Some(message)` if it failed).
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the journal at `path`, and brings its
    /// schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let fail = |message: String| StoreError::Backend {
            path: path.display().to_string(),
            message,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| fail(format!("creating {}: {e}", parent.display())))?;
        }
        let mut connection = Connection::open(&path).map_err(|e| fail(e.to_string()))?;
        connection
            .busy_timeout(Duration::from_secs(10))
            .map_err(|e| fail(e.to_string()))?;
        // Switching a new journal to WAL needs an exclusive lock that SQLite does not wait for
        // (no busy handler): when several `veo3` processes open a new journal at once, the
        // losers are told "database is locked". Ask again for up to the busy timeout.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mode: String = loop {
            match connection.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0)) {
                Err(rusqlite::Error::SqliteFailure(error, _))
                    if error.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                result => break result.map_err(|e| fail(e.to_string()))?,
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(fail(format!("cannot use WAL mode (got {mode})")));
        }
        connection
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(|e| fail(e.to_string()))?;
        migrate::apply_sqlite(&mut connection, MIGRATIONS, &path.display().to_string())?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            queued: Arc::default(),
            path,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection, on the blocking pool.
    async fn with<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = self.connection.clone();
        let path = self.path.display().to_string();
        let path_for_panic = path.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a half-applied transaction (SQLite
            // rolls it back), so a poisoned lock is safe to take over.
            let mut guard = connection.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend {
            path: path_for_panic,
            message: format!("journal worker failed: {e}"),
        })?
        .map_err(|e| match e {
            StoreError::Backend { message, .. } => StoreError::Backend { path, message },
            other => other,
        })
    }
}

impl SqliteStore {
    /// Queues `work` for the next group commit (in a savepoint of its own) and returns its
    /// outcome once the group's transaction is durable.
    async fn grouped<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let path = self.path.display().to_string();
        let item: Queued = Box::new(move |connection| {
            let result = match connection {
                Ok(connection) => in_savepoint(connection, work),
                Err(message) => Err(db_message(message)),
            };
            Box::new(move |commit_error| {
                let result = match (commit_error, result) {
                    (Some(message), Ok(_)) => Err(db_message(message)),
                    (_, result) => result,
                };
                let result = result.map_err(|e| match e {
                    StoreError::Backend { message, .. } => StoreError::Backend {
                        path: path.clone(),
                        message,
                    },
                    other => other,
                });
                let _ = reply.send(result);
            })
        });
        self.queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(item);
        let queued = self.queued.clone();
        self.with(move |connection| {
            commit_queued(connection, &queued);
            Ok(())
        })
        .await?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Backend {
                path: self.path.display().to_string(),
                message: "the journal worker stopped before committing".into(),
            })
        })
    }

    /// Runs `work` in an IMMEDIATE transaction of its own, without waiting for its fsync
    /// (`synchronous=NORMAL` for it alone): for writes that a power loss may take back
    /// without harm (claims, leases, the limiter), since every one of them is redone or
    /// expires by itself. A process crash loses none of them (the WAL is written).
    async fn light<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.with(move |connection| {
            connection
                .execute_batch("PRAGMA synchronous=NORMAL")
                .map_err(db)?;
            let result = (|| {
                let tx = connection
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db)?;
                let value = work(&tx)?;
                tx.commit().map_err(db)?;
                Ok(value)
            })();
            connection
                .execute_batch("PRAGMA synchronous=FULL")
                .map_err(db)?;
            result
        })
        .await
    }
}

fn db_message(message: &str) -> StoreError {
    StoreError::Backend {
        path: String::new(),
        message: message.to_owned(),
    }
}

/// A backend error without its path (filled in by [`SqliteStore::with`]).
fn db(error: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        path: String::new(),
        message: error.to_string(),
    }
}

fn json_error(error: serde_json::Error) -> StoreError {
    StoreError::Backend {
        path: String::new(),
        message: format!("unreadable record: {error}"),
    }
}

const JOB_COLUMNS: &str = "id, batch_id, name, line, request, upgrade, cost, detail, \
                           created_ms, updated_ms, submitted_ms, finished_ms, worker_id, fence, extra_of";

fn read_job(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Job, StoreError>> {
    let request: String = row.get(4)?;
    let upgrade: Option<String> = row.get(5)?;
    let detail: String = row.get(7)?;
    let line: Option<i64> = row.get(3)?;
    let id = JobId(row.get(0)?);
    let batch = row.get::<_, Option<i64>>(1)?.map(BatchId);
    let name: String = row.get(2)?;
    let cost: i64 = row.get(6)?;
    let times = JobTimes {
        created_ms: row.get(8)?,
        updated_ms: row.get(9)?,
        submitted_ms: row.get(10)?,
        finished_ms: row.get(11)?,
    };
    let owner = row.get::<_, Option<i64>>(12)?.map(WorkerId);
    let fence: i64 = row.get(13)?;
    let extra_of = row.get::<_, Option<i64>>(14)?.map(JobId);
    Ok((|| {
        Ok(Job {
            id,
            batch,
            name,
            line: line.and_then(|l| u64::try_from(l).ok()),
            request: serde_json::from_str(&request).map_err(json_error)?,
            upgrade: upgrade
                .map(|u| u.parse::<Upgrade>())
                .transpose()
                .map_err(|message| StoreError::Backend {
                    path: String::new(),
                    message,
                })?,
            state: serde_json::from_str(&detail).map_err(json_error)?,
            cost,
            times,
            owner,
            fence,
            extra_of,
        })
    })())
}

fn insert_job(
    tx: &rusqlite::Transaction<'_>,
    batch: Option<BatchId>,
    job: &NewJob,
    state: &JobState,
    now: i64,
) -> Result<JobId, StoreError> {
    let request = serde_json::to_string(&job.request).map_err(json_error)?;
    let detail = serde_json::to_string(state).map_err(json_error)?;
    tx.execute(
        "INSERT INTO jobs (batch_id, name, line, request, upgrade, cost, state, task_id, detail, \
         created_ms, updated_ms, submitted_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
        params![
            batch.map(|b| b.0),
            job.name,
            job.line.and_then(|l| i64::try_from(l).ok()),
            request,
            job.upgrade.map(Upgrade::as_str),
            job.cost,
            state.kind().as_str(),
            state.task_id(),
            detail,
            now,
            state.task_id().map(|_| now),
        ],
    )
    .map_err(db)?;
    Ok(JobId(tx.last_insert_rowid()))
}

fn read_batch(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn to_batch((id, settings, created_ms): (i64, String, i64)) -> Result<Batch, StoreError> {
    Ok(Batch {
        id: BatchId(id),
        settings: serde_json::from_str(&settings).map_err(json_error)?,
        created_ms,
    })
}

/// Applies every queued write (each its own compare-and-set, in a savepoint of its own) in one
/// transaction and answers each caller once the transaction is durable (or failed).
fn commit_queued(connection: &mut Connection, queued: &Mutex<Vec<Queued>>) {
    let group = std::mem::take(&mut *queued.lock().unwrap_or_else(|p| p.into_inner()));
    if group.is_empty() {
        return;
    }
    // IMMEDIATE: the write lock is taken at BEGIN, where SQLite's busy timeout waits for
    // another process's writer. A deferred transaction that reads first and then writes fails
    // at once with "database is locked" when another process wrote in between (two `veo3`
    // commands sharing the default journal).
    let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            let message = error.to_string();
            for item in group {
                item(Err(&message))(None);
            }
            return;
        }
    };
    let finishes: Vec<Finish> = group.into_iter().map(|item| item(Ok(&tx))).collect();
    let committed = tx.commit().map_err(|e| e.to_string());
    for finish in finishes {
        finish(committed.as_ref().err().map(String::as_str));
    }
}

/// Runs `work` in a savepoint of the group's transaction: its writes stay only if it
/// succeeded, whatever the others do.
fn in_savepoint<T>(
    connection: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    connection.execute_batch("SAVEPOINT item").map_err(db)?;
    let result = work(connection);
    let end = if result.is_ok() {
        "RELEASE item"
    } else {
        "ROLLBACK TO item; RELEASE item"
    };
    connection.execute_batch(end).map_err(db)?;
    result
}

/// Writes `to` to job `id` in one compare-and-set statement (from the states
/// [`predecessors`] allows), and returns how many rows changed (0 or 1). With `send`, the
/// answer of that worker's send under that fencing token: applied only while the job carries
/// the token, and it leaves the job to that worker. A job that is final or back to pending has
/// no owner any more.
fn update_state(
    connection: &Connection,
    id: JobId,
    to: &JobState,
    send: Option<(WorkerId, i64)>,
) -> Result<usize, StoreError> {
    let kind = to.kind();
    let detail = serde_json::to_string(to).map_err(json_error)?;
    let from = predecessors(kind, send.is_some())
        .iter()
        .map(|state| format!("'{state}'"))
        .collect::<Vec<_>>()
        .join(", ");
    connection
        .execute(
            &format!(
                "UPDATE jobs SET state = ?1, task_id = COALESCE(?2, task_id), detail = ?3, \
                 updated_ms = ?4, \
                 submitted_ms = CASE WHEN ?5 THEN ?4 ELSE submitted_ms END, \
                 finished_ms = CASE WHEN ?6 THEN ?4 ELSE NULL END, \
                 worker_id = CASE WHEN ?7 THEN NULL ELSE COALESCE(?8, worker_id) END \
                 WHERE id = ?9 AND (?10 IS NULL OR fence = ?10) AND state IN ({from})"
            ),
            params![
                kind.as_str(),
                to.task_id(),
                detail,
                crate::now_ms(),
                kind == StateKind::Submitted,
                kind.is_final(),
                kind.is_final() || kind == StateKind::Pending,
                send.map(|(worker, _)| worker.0),
                id.0,
                send.map(|(_, fence)| fence),
            ],
        )
        .map_err(db)
}

/// One transition as one compare-and-set statement: the check and the write are atomic,
/// whoever else writes.
fn apply_transition(connection: &Connection, id: JobId, to: &JobState) -> Result<(), StoreError> {
    let kind = to.kind();
    let changed = update_state(connection, id, to, None)?;
    if changed == 1 {
        return Ok(());
    }
    let current: Option<String> = connection
        .query_row("SELECT state FROM jobs WHERE id = ?1", [id.0], |row| {
            row.get(0)
        })
        .optional()
        .map_err(db)?;
    match current {
        None => Err(StoreError::NoSuchJob(id)),
        Some(state) => Err(StoreError::Conflict {
            job: id,
            from: StateKind::parse(&state).unwrap_or(StateKind::Unknown),
            to: kind,
        }),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_batch(
        &self,
        settings: &BatchSettings,
        jobs: &[NewJob],
    ) -> Result<BatchId, StoreError> {
        let settings = serde_json::to_string(settings).map_err(json_error)?;
        let jobs = jobs.to_vec();
        self.with(move |connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let now = crate::now_ms();
            tx.execute(
                "INSERT INTO batches (settings, created_ms) VALUES (?1, ?2)",
                params![settings, now],
            )
            .map_err(db)?;
            let batch = BatchId(tx.last_insert_rowid());
            for job in &jobs {
                insert_job(&tx, Some(batch), job, &JobState::Pending, now)?;
            }
            tx.commit().map_err(db)?;
            Ok(batch)
        })
        .await
    }

    async fn batch(&self, id: BatchId) -> Result<Option<Batch>, StoreError> {
        self.with(move |connection| {
            connection
                .query_row(
                    "SELECT id, settings, created_ms FROM batches WHERE id = ?1",
                    [id.0],
                    read_batch,
                )
                .optional()
                .map_err(db)?
                .map(to_batch)
                .transpose()
        })
        .await
    }

    async fn latest_batch(&self) -> Result<Option<Batch>, StoreError> {
        self.with(move |connection| {
            connection
                .query_row(
                    "SELECT id, settings, created_ms FROM batches ORDER BY id DESC LIMIT 1",
                    [],
                    read_batch,
                )
                .optional()
                .map_err(db)?
                .map(to_batch)
                .transpose()
        })
        .await
    }

    async fn add_job(&self, job: &NewJob, state: &JobState) -> Result<JobId, StoreError> {
        let job = job.clone();
        let state = state.clone();
        self.with(move |connection| {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let id = insert_job(&tx, None, &job, &state, crate::now_ms())?;
            tx.commit().map_err(db)?;
            Ok(id)
        })
        .await
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.with(move |connection| {
            connection
                .query_row(
                    &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                    [id.0],
                    read_job,
                )
                .optional()
                .map_err(db)?
                .transpose()
        })
        .await
    }

    async fn jobs(&self, query: &JobQuery) -> Result<Vec<Job>, StoreError> {
        let query = query.clone();
        self.with(move |connection| {
            let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(batch) = query.batch {
                sql.push_str(" AND batch_id = ?");
                values.push(batch.0.into());
            }
            if let Some(task_id) = &query.task_id {
                sql.push_str(" AND task_id = ?");
                values.push(task_id.clone().into());
            }
            if !query.states.is_empty() {
                let marks = vec!["?"; query.states.len()].join(", ");
                sql.push_str(&format!(" AND state IN ({marks})"));
                values.extend(query.states.iter().map(|s| s.as_str().to_owned().into()));
            }
            match query.limit {
                Some(limit) => {
                    sql.push_str(" ORDER BY id DESC LIMIT ?");
                    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
                }
                None => sql.push_str(" ORDER BY id"),
            }
            let mut statement = connection.prepare(&sql).map_err(db)?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(values), read_job)
                .map_err(db)?;
            let mut jobs = Vec::new();
            for row in rows {
                jobs.push(row.map_err(db)??);
            }
            Ok(jobs)
        })
        .await
    }

    async fn transition(&self, id: JobId, to: &JobState) -> Result<(), StoreError> {
        let to = to.clone();
        self.grouped(move |connection| apply_transition(connection, id, &to))
            .await
    }

    async fn counts(&self, batch: Option<BatchId>) -> Result<BTreeMap<StateKind, u64>, StoreError> {
        self.with(move |connection| {
            let mut statement = connection
                .prepare(
                    "SELECT state, COUNT(*) FROM jobs WHERE (?1 IS NULL OR batch_id = ?1) GROUP BY state",
                )
                .map_err(db)?;
            let rows = statement
                .query_map([batch.map(|b| b.0)], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .map_err(db)?;
            let mut counts = BTreeMap::new();
            for row in rows {
                let (state, count) = row.map_err(db)?;
                if let Some(kind) = StateKind::parse(&state) {
                    counts.insert(kind, u64::try_from(count).unwrap_or(0));
                }
            }
            Ok(counts)
        })
        .await
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn register_worker(&self, worker: &NewWorker) -> Result<WorkerId, StoreError> {
        let worker = worker.clone();
        self.light(move |tx| {
            let now = crate::now_ms();
            let lease = millis(worker.lease);
            let process = worker.process.as_ref();
            tx.execute(
                "INSERT INTO veo3_workers (name, host, pid, pid_start, started_ms, lease_ms, \
                 lease_until_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5 + ?6)",
                params![
                    worker.name,
                    process.map(|p| p.host.clone()),
                    process.map(|p| i64::from(p.pid)),
                    process.map(|p| i64::try_from(p.start).unwrap_or(i64::MAX)),
                    now,
                    lease,
                ],
            )
            .map_err(db)?;
            Ok(WorkerId(tx.last_insert_rowid()))
        })
        .await
    }

    async fn renew_lease(&self, worker: WorkerId, lease: Duration) -> Result<(), StoreError> {
        let changed = self
            .light(move |tx| {
                tx.execute(
                    "UPDATE veo3_workers SET lease_until_ms = ?2 + ?3 \
                     WHERE id = ?1 AND lease_until_ms > ?2",
                    params![worker.0, crate::now_ms(), millis(lease)],
                )
                .map_err(db)
            })
            .await?;
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::LeaseLost(worker))
        }
    }

    async fn retire_worker(&self, worker: WorkerId) -> Result<(), StoreError> {
        self.light(move |tx| {
            // Its jobs go back at once; one still `submitting` (it never should be on a
            // graceful stop) stays owned by the ended lease, and becomes unknown.
            tx.execute(
                "UPDATE jobs SET worker_id = NULL WHERE worker_id = ?1 AND state <> 'submitting'",
                [worker.0],
            )
            .map_err(db)?;
            tx.execute(
                "UPDATE veo3_workers SET lease_until_ms = MIN(lease_until_ms, ?2) WHERE id = ?1",
                params![worker.0, crate::now_ms()],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn expire_worker(&self, worker: WorkerId) -> Result<(), StoreError> {
        self.light(move |tx| {
            tx.execute(
                "UPDATE veo3_workers SET lease_until_ms = 0, lease_ms = 0 WHERE id = ?1",
                [worker.0],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn live_workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        self.with(move |connection| {
            let mut statement = connection
                .prepare(
                    "SELECT id, name, host, pid, pid_start, lease_until_ms FROM veo3_workers \
                     WHERE lease_until_ms > ?1 ORDER BY id",
                )
                .map_err(db)?;
            let rows = statement
                .query_map([crate::now_ms()], |row| {
                    let host: Option<String> = row.get(2)?;
                    let pid: Option<i64> = row.get(3)?;
                    let start: Option<i64> = row.get(4)?;
                    Ok(WorkerInfo {
                        id: WorkerId(row.get(0)?),
                        name: row.get(1)?,
                        process: ProcessId::from_columns(host, pid, start),
                        lease_until_ms: row.get(5)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)
        })
        .await
    }

    async fn release(&self, worker: WorkerId, job: JobId) -> Result<(), StoreError> {
        self.light(move |tx| {
            tx.execute(
                "UPDATE jobs SET worker_id = NULL WHERE id = ?1 AND worker_id = ?2 \
                 AND state <> 'submitting'",
                params![job.0, worker.0],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn claim(
        &self,
        worker: WorkerId,
        batch: BatchId,
        request: &ClaimRequest,
    ) -> Result<Claimed, StoreError> {
        let request = request.clone();
        let unknown = serde_json::to_string(&JobState::Unknown).map_err(json_error)?;
        self.light(move |tx| {
            let now = crate::now_ms();
            let Some(settings) = tx
                .query_row(
                    "SELECT settings FROM batches WHERE id = ?1",
                    [batch.0],
                    |row| row.get::<_, String>(0),
                )
                .optional()
                .map_err(db)?
            else {
                return Ok(Claimed::default());
            };
            let settings: BatchSettings = serde_json::from_str(&settings).map_err(json_error)?;
            let exclude = request
                .exclude
                .iter()
                .map(|j| j.0.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let returning = |sql: &str, values: &[&dyn rusqlite::ToSql]| {
                let mut statement = tx.prepare(sql).map_err(db)?;
                let rows = statement.query_map(values, read_job).map_err(db)?;
                let mut jobs = Vec::new();
                for row in rows {
                    jobs.push(row.map_err(db)??);
                }
                jobs.sort_by_key(|j: &Job| j.id);
                Ok::<_, StoreError>(jobs)
            };
            let mut claimed = Claimed::default();
            if request.takeovers > 0 {
                // Submits whose worker died without an answer, a lease and a grace ago (or at
                // once when its process is known gone): maybe billed.
                claimed.lost = returning(
                    &format!(
                        "UPDATE jobs SET state = 'unknown', detail = ?2, worker_id = NULL, \
                         updated_ms = ?3, finished_ms = ?3 WHERE batch_id = ?1 \
                         AND state = 'submitting' AND {PAST_GRACE} RETURNING {JOB_COLUMNS}"
                    ),
                    &[&batch.0, &unknown, &now],
                )?;
                claimed.takeovers = returning(
                    &format!(
                        "UPDATE jobs SET worker_id = ?2, fence = fence + 1 WHERE id IN \
                         (SELECT id FROM jobs WHERE batch_id = ?1 \
                         AND state IN ('submitted', 'succeeded', 'upgrading') AND {NOT_OWNED} \
                         AND id NOT IN ({exclude}) ORDER BY id LIMIT ?4) RETURNING {JOB_COLUMNS}"
                    ),
                    &[
                        &batch.0,
                        &worker.0,
                        &now,
                        &i64::try_from(request.takeovers).unwrap_or(i64::MAX),
                    ],
                )?;
            }
            if request.submits > 0 {
                let held: i64 = tx
                    .query_row(
                        &format!(
                            "SELECT COUNT(*) FROM jobs WHERE batch_id = ?1 AND \
                             (state IN ('submitting', 'submitted', 'succeeded', 'upgrading') \
                             OR (state = 'pending' AND NOT {NOT_OWNED}))"
                        ),
                        // ?2 is unused here: NOT_OWNED reads now as ?3.
                        params![batch.0, worker.0, now],
                        |row| row.get(0),
                    )
                    .map_err(db)?;
                let room = i64::try_from(settings.concurrency.max(1))
                    .unwrap_or(i64::MAX)
                    .saturating_sub(held)
                    .min(i64::try_from(request.submits).unwrap_or(i64::MAX));
                if room > 0 {
                    claimed.submits = returning(
                        &format!(
                            "UPDATE jobs SET worker_id = ?2, fence = fence + 1, updated_ms = ?3 \
                             WHERE id IN (SELECT id FROM jobs WHERE batch_id = ?1 \
                             AND state = 'pending' AND {NOT_OWNED} AND id NOT IN ({exclude}) \
                             ORDER BY id LIMIT ?4) RETURNING {JOB_COLUMNS}"
                        ),
                        &[&batch.0, &worker.0, &now, &room],
                    )?;
                }
            }
            Ok(claimed)
        })
        .await
    }

    async fn begin_send(
        &self,
        worker: WorkerId,
        job: JobId,
        fence: i64,
        margin: Duration,
    ) -> Result<SendCheck, StoreError> {
        let submitting = serde_json::to_string(&JobState::Submitting).map_err(json_error)?;
        // Durable before the request leaves (the group's fsync): "journaled before it is sent".
        self.grouped(move |connection| {
            let now = crate::now_ms();
            let changed = connection
                .execute(
                    "UPDATE jobs SET state = 'submitting', detail = ?4, updated_ms = ?5, \
                     finished_ms = NULL WHERE id = ?1 AND state = 'pending' AND worker_id = ?2 \
                     AND fence = ?3 AND EXISTS (SELECT 1 FROM veo3_workers \
                     WHERE id = ?2 AND lease_until_ms > ?5 + ?6)",
                    params![job.0, worker.0, fence, submitting, now, millis(margin)],
                )
                .map_err(db)?;
            if changed == 1 {
                return Ok(SendCheck::Go);
            }
            let still_ours: bool = connection
                .query_row(
                    "SELECT COUNT(*) FROM jobs WHERE id = ?1 AND state = 'pending' \
                     AND worker_id = ?2 AND fence = ?3",
                    params![job.0, worker.0, fence],
                    |row| row.get::<_, i64>(0),
                )
                .map_err(db)?
                == 1;
            Ok(if still_ours {
                SendCheck::LeaseShort
            } else {
                SendCheck::Lost
            })
        })
        .await
    }

    async fn answer_send(
        &self,
        worker: WorkerId,
        job: JobId,
        fence: i64,
        to: &JobState,
    ) -> Result<Answered, StoreError> {
        let to = to.clone();
        let detail = serde_json::to_string(&to).map_err(json_error)?;
        self.grouped(move |connection| {
            let now = crate::now_ms();
            let changed = update_state(connection, job, &to, Some((worker, fence)))?;
            if changed == 1 {
                return Ok(Answered::Journaled);
            }
            let Some(task_id) = to.task_id() else {
                return Ok(Answered::Moved);
            };
            let current: Option<Option<String>> = connection
                .query_row("SELECT task_id FROM jobs WHERE id = ?1", [job.0], |row| {
                    row.get(0)
                })
                .optional()
                .map_err(db)?;
            let Some(current) = current else {
                return Err(StoreError::NoSuchJob(job));
            };
            let known: i64 = connection
                .query_row(
                    "SELECT COUNT(*) FROM jobs WHERE (id = ?1 OR extra_of = ?1) AND task_id = ?2",
                    params![job.0, task_id],
                    |row| row.get(0),
                )
                .map_err(db)?;
            if current.as_deref() == Some(task_id) || known > 0 {
                return Ok(Answered::Moved);
            }
            // A task kie answered for a job that moved on: kept, as an extra task of the job.
            let extras: i64 = connection
                .query_row(
                    "SELECT COUNT(*) FROM jobs WHERE extra_of = ?1",
                    [job.0],
                    |row| row.get(0),
                )
                .map_err(db)?;
            connection
                .execute(
                    "INSERT INTO jobs (batch_id, name, line, request, upgrade, cost, state, \
                     task_id, detail, created_ms, updated_ms, submitted_ms, worker_id, fence, \
                     extra_of) SELECT batch_id, name || '.extra-' || ?2, line, request, upgrade, \
                     cost, 'submitted', ?3, ?4, ?5, ?5, ?5, ?6, 1, id FROM jobs WHERE id = ?1",
                    params![job.0, extras + 1, task_id, detail, now, worker.0],
                )
                .map_err(db)?;
            let id = connection.last_insert_rowid();
            let extra = connection
                .query_row(
                    &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                    [id],
                    read_job,
                )
                .map_err(db)??;
            Ok(Answered::Extra(Box::new(extra)))
        })
        .await
    }

    async fn next_batch_with_work(&self, exclude: &[JobId]) -> Result<Option<BatchId>, StoreError> {
        let exclude = exclude
            .iter()
            .map(|j| j.0.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        self.with(move |connection| {
            connection
                .query_row(
                    &format!(
                        "SELECT MIN(batch_id) FROM jobs WHERE batch_id IS NOT NULL AND state IN \
                         ('pending', 'submitting', 'submitted', 'succeeded', 'upgrading') \
                         AND id NOT IN ({exclude})"
                    ),
                    [],
                    |row| row.get::<_, Option<i64>>(0),
                )
                .map_err(db)
                .map(|b| b.map(BatchId))
        })
        .await
    }

    async fn reserve_submit(
        &self,
        worker: WorkerId,
        account: &str,
        max: u32,
        window: Duration,
    ) -> Result<Option<Reservation>, StoreError> {
        let account = account.to_owned();
        let window_us = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
        let max = i64::from(max.max(1));
        self.light(move |tx| {
            // Read inside the write lock: the time the reservation is made.
            let now_us = now_us();
            let last_slot: Option<i64> = tx
                .query_row(
                    "SELECT MAX(slot_us) FROM veo3_sends WHERE account = ?1",
                    [&account],
                    |row| row.get(0),
                )
                .map_err(db)?;
            let maxth: Option<(i64, i64, Option<i64>)> = tx
                .query_row(
                    "SELECT id, worker_id, answered_us FROM veo3_sends WHERE account = ?1 \
                     ORDER BY id DESC LIMIT 1 OFFSET ?2",
                    params![account, max - 1],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(db)?;
            let latest = match maxth {
                None => None,
                Some((id, owner, answered)) => {
                    let answered = match answered {
                        Some(at) => Some(at),
                        // In flight: counts as answered when its worker's lease ended.
                        None => tx
                            .query_row(
                                "SELECT lease_until_ms FROM veo3_workers WHERE id = ?1",
                                [owner],
                                |row| row.get::<_, i64>(0),
                            )
                            .optional()
                            .map_err(db)?
                            .map_or(Some(now_us), |until_ms| {
                                (until_ms.saturating_mul(1000) < now_us)
                                    .then(|| until_ms.saturating_mul(1000))
                            }),
                    };
                    Some((id, answered))
                }
            };
            let Some(slot) = crate::pace::next_slot(
                now_us,
                last_slot,
                latest.map(|(_, answered)| answered),
                window_us,
            ) else {
                return Ok(None);
            };
            if let Some((oldest, _)) = latest {
                tx.execute(
                    "DELETE FROM veo3_sends WHERE account = ?1 AND id < ?2",
                    params![account, oldest],
                )
                .map_err(db)?;
            }
            tx.execute(
                "INSERT INTO veo3_sends (account, worker_id, slot_us) VALUES (?1, ?2, ?3)",
                params![account, worker.0, slot],
            )
            .map_err(db)?;
            Ok(Some(Reservation {
                id: tx.last_insert_rowid(),
                wait: Duration::from_micros(u64::try_from(slot - now_us).unwrap_or(0)),
            }))
        })
        .await
    }

    async fn submit_answered(&self, reservation: i64) -> Result<(), StoreError> {
        // The answer's time is now, not when the write gets the connection (every process on
        // this machine reads the same clock): queueing behind a group commit's fsync would
        // push the account's next turn back by it.
        let answered = now_us();
        self.light(move |tx| {
            tx.execute(
                "UPDATE veo3_sends SET answered_us = ?2 WHERE id = ?1 AND answered_us IS NULL",
                params![reservation, answered],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn salt(&self) -> Result<String, StoreError> {
        let fresh = crate::worker::new_salt().map_err(|message| StoreError::Backend {
            path: self.location(),
            message,
        })?;
        self.light(move |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO veo3_meta (key, value) VALUES ('salt', ?1)",
                [fresh],
            )
            .map_err(db)?;
            tx.query_row(
                "SELECT value FROM veo3_meta WHERE key = 'salt'",
                [],
                |row| row.get(0),
            )
            .map_err(db)
        })
        .await
    }
}

/// Owners that no longer hold their lease (or none at all). `?3` is now; a lease is live while
/// now is before its end (milliseconds: a lease renewed to zero has ended).
const NOT_OWNED: &str = "(worker_id IS NULL OR worker_id IN \
     (SELECT id FROM veo3_workers WHERE lease_until_ms <= ?3))";

/// Owners dead for longer than their grace (a lease past the lease's end), or none. `?3` is
/// now.
const PAST_GRACE: &str = "(worker_id IS NULL OR worker_id IN \
     (SELECT id FROM veo3_workers WHERE lease_until_ms + lease_ms <= ?3))";

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
