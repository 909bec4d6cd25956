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
};
use crate::migrate::{self, Migration};
use crate::store::{JobQuery, Store, StoreError};

/// The SQLite schema, in order. Never edit a released migration: add one.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "batches and jobs",
    sql: include_str!("../migrations/sqlite/0001_jobs.sql"),
}];

/// A journal in one SQLite file. Cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) connection: Arc<Mutex<Connection>>,
    /// Transitions waiting for the next group commit.
    queued: Arc<Mutex<Vec<Queued>>>,
    path: PathBuf,
}

/// A transition waiting for a group commit, and where its outcome goes.
struct Queued {
    id: JobId,
    to: JobState,
    reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

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
                           created_ms, updated_ms, submitted_ms, finished_ms";

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

/// Applies every queued transition (each its own compare-and-set) in one transaction and
/// answers each caller once the transaction is durable (or failed).
fn commit_queued(connection: &mut Connection, queued: &Mutex<Vec<Queued>>, path: &str) {
    let group = std::mem::take(&mut *queued.lock().unwrap_or_else(|p| p.into_inner()));
    if group.is_empty() {
        return;
    }
    let backend = |error: &rusqlite::Error| StoreError::Backend {
        path: path.to_owned(),
        message: error.to_string(),
    };
    // IMMEDIATE: the write lock is taken at BEGIN, where SQLite's busy timeout waits for
    // another process's writer. A deferred transaction that reads first and then writes fails
    // at once with "database is locked" when another process wrote in between (two `veo3`
    // commands sharing the default journal).
    let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            for item in group {
                let _ = item.reply.send(Err(backend(&error)));
            }
            return;
        }
    };
    let results: Vec<Result<(), StoreError>> = group
        .iter()
        .map(|item| apply_transition(&tx, item.id, &item.to))
        .collect();
    let committed = tx.commit();
    for (item, result) in group.into_iter().zip(results) {
        let result = match (&committed, result) {
            (Err(error), Ok(())) => Err(backend(error)),
            (_, Err(StoreError::Backend { message, .. })) => Err(StoreError::Backend {
                path: path.to_owned(),
                message,
            }),
            (_, result) => result,
        };
        let _ = item.reply.send(result);
    }
}

/// One transition as one compare-and-set statement: the check and the write are atomic,
/// whoever else writes.
fn apply_transition(connection: &Connection, id: JobId, to: &JobState) -> Result<(), StoreError> {
    let kind = to.kind();
    let from: Vec<&str> = StateKind::ALL
        .into_iter()
        .filter(|from| JobState::allowed(*from, kind))
        .map(StateKind::as_str)
        .collect();
    let now = crate::now_ms();
    let detail = serde_json::to_string(to).map_err(json_error)?;
    let marks = from
        .iter()
        .map(|state| format!("'{state}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let changed = connection
        .execute(
            &format!(
                "UPDATE jobs SET state = ?1, task_id = COALESCE(?2, task_id), detail = ?3, \
                 updated_ms = ?4, \
                 submitted_ms = CASE WHEN ?5 THEN ?4 ELSE submitted_ms END, \
                 finished_ms = CASE WHEN ?6 THEN ?4 ELSE NULL END \
                 WHERE id = ?7 AND state IN ({marks})"
            ),
            params![
                kind.as_str(),
                to.task_id(),
                detail,
                now,
                kind == StateKind::Submitted,
                kind.is_final(),
                id.0,
            ],
        )
        .map_err(db)?;
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
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Queued {
                id,
                to: to.clone(),
                reply,
            });
        let queued = self.queued.clone();
        let path = self.path.display().to_string();
        self.with(move |connection| {
            commit_queued(connection, &queued, &path);
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
}
