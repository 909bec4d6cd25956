//! The shared journal: a PostgreSQL database that any number of workers use at once.
//!
//! The same tables as the SQLite journal (its own migrations under `migrations/postgres`),
//! plus workers with leases (`0002_workers.sql`) and the account limiter
//! (`0003_answered_sends.sql`). Every transition
//! is one compare-and-set `UPDATE`, as in SQLite; a claim is one transaction that locks the
//! batch's row (so the in-flight bound holds over all workers) and takes job rows with
//! `FOR UPDATE SKIP LOCKED`. Times of leases and of the limiter are the server's
//! (`clock_timestamp()`), so the workers' clocks never need to agree.
//!
//! Two connections, no pool: single statements share one (tokio-postgres pipelines them), and
//! transactions (batch creation, claims, migrations) take turns on the other. Durability is
//! the server's: a statement that returned is committed.
//!
//! TLS follows libpq's `sslmode` and `sslrootcert` (see `tls.rs`): encrypted whenever the
//! server offers it, the certificate checked with `verify-ca` or `verify-full`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row, Statement, Transaction};

use self::tls::TlsSettings;

use crate::job::{
    Batch, BatchId, BatchSettings, Job, JobId, JobState, JobTimes, NewJob, StateKind, Upgrade,
    predecessors,
};
use crate::migrate::{self, Migration};

mod tls;
use crate::store::{
    Answered, ClaimRequest, Claimed, JobQuery, NewWorker, ProcessId, Reservation, SendCheck, Store,
    StoreError, WorkerId, WorkerInfo,
};

/// The PostgreSQL schema, in order. Never edit a released migration: add one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "batches and jobs",
        sql: include_str!("../migrations/postgres/0001_jobs.sql"),
    },
    Migration {
        version: 2,
        name: "workers, leases and the account limiter",
        sql: include_str!("../migrations/postgres/0002_workers.sql"),
    },
    Migration {
        version: 3,
        name: "the account limiter counts from each send's answer",
        sql: include_str!("../migrations/postgres/0003_answered_sends.sql"),
    },
    Migration {
        version: 4,
        name: "fencing tokens, extra tasks, dead processes and a keyed account fingerprint",
        sql: include_str!("../migrations/postgres/0004_fencing.sql"),
    },
];

/// A journal in a PostgreSQL database, shared by every process that opens the same URL.
/// Cheap to clone (clones share the connections).
#[derive(Clone)]
pub struct PostgresStore {
    client: Arc<Client>,
    transactions: Arc<Mutex<Client>>,
    /// Prepared statements of the hot paths (transitions, claims, turns), per connection: one
    /// round trip per statement instead of two.
    prepared: Arc<std::sync::Mutex<HashMap<String, Statement>>>,
    prepared_tx: Arc<std::sync::Mutex<HashMap<String, Statement>>>,
    location: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Whether `text` names a PostgreSQL journal (`postgres://` or `postgresql://`).
pub fn is_postgres_url(text: &str) -> bool {
    let lower = text.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// `url` without its password (and anything else but user, hosts, ports and database).
fn redact(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    format!(
        "postgres://{}{}/{}",
        config
            .get_user()
            .map(|u| format!("{u}@"))
            .unwrap_or_default(),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// How long a session may sit inside a transaction without sending anything before the server
/// ends it (and its locks): see [`PostgresStore::connect`].
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

/// How messages name a URL that could not be read (it may hold a password: never repeated).
const UNREAD_URL: &str = "postgres://...";

/// The connection settings of `url`, its TLS settings, and its redacted form for messages.
fn parse(url: &str) -> Result<(tokio_postgres::Config, TlsSettings, String), StoreError> {
    // The URL may hold a password: no message repeats it.
    let (tls, rest) = TlsSettings::split(url).map_err(|m| backend(UNREAD_URL, m))?;
    let mut config: tokio_postgres::Config = rest.parse().map_err(|e| {
        backend(
            UNREAD_URL,
            format!("not a PostgreSQL URL: {}", with_causes(&e)),
        )
    })?;
    config.ssl_mode(tls.ssl_mode());
    let location = redact(&config);
    Ok((config, tls, location))
}

/// One connection, its I/O driven by a task of its own until the client is dropped.
async fn connect(
    config: &tokio_postgres::Config,
    tls: &TlsSettings,
    location: &str,
) -> Result<Client, StoreError> {
    let failed =
        |e: tokio_postgres::Error| backend(location, format!("connecting: {}", with_causes(&e)));
    let where_ = location.to_owned();
    let closed = move |result: Result<(), tokio_postgres::Error>| {
        if let Err(error) = result {
            tracing::warn!(journal = %where_, %error, "journal connection closed");
        }
    };
    match tls.connector().map_err(|m| backend(location, m))? {
        Some(connector) => {
            let (client, connection) = config.connect(connector).await.map_err(failed)?;
            tokio::spawn(async move { closed(connection.await) });
            Ok(client)
        }
        None => {
            let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
            tokio::spawn(async move { closed(connection.await) });
            Ok(client)
        }
    }
}

/// `error` and its causes: tokio-postgres's own message leaves them out ("error performing TLS
/// handshake", "invalid connection string"), and they say which ("invalid peer certificate:
/// UnknownIssuer", "unknown option `bogus`").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        message = format!("{message}: {inner}");
        cause = inner.source();
    }
    message
}

fn backend(location: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        path: location.to_owned(),
        message: message.to_string(),
    }
}

/// A schema name this store will quote into SQL: lowercase letters, digits and `_`.
fn check_schema(schema: &str) -> Result<(), String> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "schema {schema:?}: use lowercase letters, digits and _ (at most 63)"
        ))
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (e.g. `postgres://user@host:5432/db`) and brings its
    /// schema up to date. Its sessions are ended by the server when they sit inside a
    /// transaction for 5 s (`idle_in_transaction_session_timeout`): a stalled worker cannot
    /// hold the others' claims. Tables go in the connection's current schema (the first of its
    /// `search_path`, `options=-csearch_path%3DNAME` in the URL).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, None).await
    }

    /// Like [`PostgresStore::connect`], in `schema` (created if needed): several journals
    /// side by side in one database, as the tests do.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::open(url, Some(schema)).await
    }

    async fn open(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        let (config, tls, mut location) = parse(url)?;
        if let Some(schema) = schema {
            check_schema(schema).map_err(|m| backend(&location, m))?;
            location = format!("{location} (schema {schema})");
        }
        let connect = || async {
            let client = connect(&config, &tls, &location).await?;
            // A worker stalled inside a transaction (SIGSTOP, a frozen VM) would hold its row
            // locks, and every other worker's claims of the batch would wait on them for as
            // long as it stalls. The server ends such a session instead: our transactions
            // are a few statements long and never wait for anything but the database.
            client
                .batch_execute(&format!(
                    "SET idle_in_transaction_session_timeout = {}",
                    IDLE_IN_TRANSACTION.as_millis()
                ))
                .await
                .map_err(|e| backend(&location, format!("connecting: {e}")))?;
            if let Some(schema) = schema {
                client
                    .batch_execute(&format!(
                        "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
                    ))
                    .await
                    .map_err(|e| backend(&location, format!("schema {schema}: {e}")))?;
            }
            Ok::<_, StoreError>(client)
        };
        let client = connect().await?;
        let mut transactions = connect().await?;
        migrate::apply_postgres(&mut transactions, MIGRATIONS, &location).await?;
        Ok(Self {
            client: Arc::new(client),
            transactions: Arc::new(Mutex::new(transactions)),
            prepared: Arc::default(),
            prepared_tx: Arc::default(),
            location,
        })
    }

    /// Drops `schema` and everything in it (for tests that made their own).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        check_schema(schema).map_err(|m| backend(UNREAD_URL, m))?;
        let (config, tls, location) = parse(url)?;
        let client = connect(&config, &tls, &location).await?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .map_err(|e| backend(&location, e))
    }

    /// Runs `sql` on the store's connection (tests that tamper with the journal).
    /// Whether the statements' connection is encrypted, as the server sees it.
    #[cfg(test)]
    pub(crate) async fn encrypted_for_tests(&self) -> bool {
        self.client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_ssl")
            .get(0)
    }

    /// A server setting (`SHOW name`).
    #[cfg(test)]
    pub(crate) async fn setting_for_tests(&self, name: &str) -> String {
        self.client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .expect("SHOW")
            .get(0)
    }

    #[cfg(test)]
    pub(crate) async fn execute_for_tests(&self, sql: &str) {
        self.client.batch_execute(sql).await.expect("test SQL runs");
    }

    /// `sql` prepared once on the statements' connection.
    async fn statement(&self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = lock(&self.prepared).get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await.map_err(|e| self.db(e))?;
        lock(&self.prepared).insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// `sql` prepared once on the transactions' connection (`tx` is on it).
    async fn tx_statement(&self, tx: &Transaction<'_>, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = lock(&self.prepared_tx).get(sql) {
            return Ok(statement.clone());
        }
        let statement = tx.prepare(sql).await.map_err(|e| self.db(e))?;
        lock(&self.prepared_tx).insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Writes `to` to job `id` in one compare-and-set statement (from the states
    /// [`predecessors`] allows), and returns how many rows changed (0 or 1). With `send`, the
    /// answer of that worker's send under that fencing token: applied only while the job
    /// carries the token, and it leaves the job to that worker. A job that is final or back
    /// to pending has no owner any more.
    async fn update_state(
        &self,
        id: JobId,
        to: &JobState,
        send: Option<(WorkerId, i64)>,
    ) -> Result<u64, StoreError> {
        let kind = to.kind();
        let detail = serde_json::to_string(to).map_err(|e| self.json(e))?;
        let statement = self
            .statement(
                "UPDATE jobs SET state = $1, task_id = COALESCE($2, task_id), detail = $3, \
                 updated_ms = $4, \
                 submitted_ms = CASE WHEN $5 THEN $4 ELSE submitted_ms END, \
                 finished_ms = CASE WHEN $6 THEN $4 ELSE NULL END, \
                 worker_id = CASE WHEN $7 THEN NULL ELSE COALESCE($8::BIGINT, worker_id) END \
                 WHERE id = $9 AND ($10::BIGINT IS NULL OR fence = $10) AND state = ANY($11)",
            )
            .await?;
        self.client
            .execute(
                &statement,
                &[
                    &kind.as_str(),
                    &to.task_id(),
                    &detail,
                    &crate::now_ms(),
                    &(kind == StateKind::Submitted),
                    &kind.is_final(),
                    &(kind.is_final() || kind == StateKind::Pending),
                    &send.map(|(worker, _)| worker.0),
                    &id.0,
                    &send.map(|(_, fence)| fence),
                    &predecessors(kind, send.is_some()),
                ],
            )
            .await
            .map_err(|e| self.db(e))
    }

    fn db(&self, error: tokio_postgres::Error) -> StoreError {
        // `Display` of a server error is its message; the source has the detail.
        let detail = error
            .as_db_error()
            .map(|e| e.message().to_owned())
            .unwrap_or_else(|| error.to_string());
        backend(&self.location, detail)
    }

    fn json(&self, error: serde_json::Error) -> StoreError {
        backend(&self.location, format!("unreadable record: {error}"))
    }

    fn read_job(&self, row: &Row) -> Result<Job, StoreError> {
        let request: String = row.get(4);
        let upgrade: Option<String> = row.get(5);
        let detail: String = row.get(7);
        let line: Option<i64> = row.get(3);
        Ok(Job {
            id: JobId(row.get(0)),
            batch: row.get::<_, Option<i64>>(1).map(BatchId),
            name: row.get(2),
            line: line.and_then(|l| u64::try_from(l).ok()),
            request: serde_json::from_str(&request).map_err(|e| self.json(e))?,
            upgrade: upgrade
                .map(|u| u.parse::<Upgrade>())
                .transpose()
                .map_err(|m| backend(&self.location, m))?,
            state: serde_json::from_str(&detail).map_err(|e| self.json(e))?,
            cost: row.get(6),
            times: JobTimes {
                created_ms: row.get(8),
                updated_ms: row.get(9),
                submitted_ms: row.get(10),
                finished_ms: row.get(11),
            },
            owner: row.get::<_, Option<i64>>(12).map(WorkerId),
            fence: row.get(13),
            extra_of: row.get::<_, Option<i64>>(14).map(JobId),
        })
    }

    fn read_jobs(&self, rows: &[Row]) -> Result<Vec<Job>, StoreError> {
        rows.iter().map(|row| self.read_job(row)).collect()
    }

    fn read_batch(&self, row: &Row) -> Result<Batch, StoreError> {
        let settings: String = row.get(1);
        Ok(Batch {
            id: BatchId(row.get(0)),
            settings: serde_json::from_str(&settings).map_err(|e| self.json(e))?,
            created_ms: row.get(2),
        })
    }

    async fn insert_job(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        statement: &tokio_postgres::Statement,
        batch: Option<BatchId>,
        job: &NewJob,
        state: &JobState,
        now: i64,
    ) -> Result<JobId, StoreError> {
        let request = serde_json::to_string(&job.request).map_err(|e| self.json(e))?;
        let detail = serde_json::to_string(state).map_err(|e| self.json(e))?;
        let row = tx
            .query_one(
                statement,
                &[
                    &batch.map(|b| b.0),
                    &job.name,
                    &job.line.and_then(|l| i64::try_from(l).ok()),
                    &request,
                    &job.upgrade.map(Upgrade::as_str),
                    &job.cost,
                    &state.kind().as_str(),
                    &state.task_id(),
                    &detail,
                    &now,
                    &state.task_id().map(|_| now),
                ],
            )
            .await
            .map_err(|e| self.db(e))?;
        Ok(JobId(row.get(0)))
    }
}

const JOB_COLUMNS: &str = "id, batch_id, name, line, request, upgrade, cost, detail, \
                           created_ms, updated_ms, submitted_ms, finished_ms, worker_id, fence, extra_of";

const INSERT_JOB: &str = "INSERT INTO jobs (batch_id, name, line, request, upgrade, cost, state, \
     task_id, detail, created_ms, updated_ms, submitted_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) RETURNING id";

/// The states of a job whose task is (or may be) being worked on.
const IN_FLIGHT: [&str; 4] = ["submitting", "submitted", "succeeded", "upgrading"];

/// Owners that no longer hold their lease (or none at all).
const NOT_OWNED: &str = "(worker_id IS NULL OR worker_id IN \
     (SELECT id FROM veo3_workers WHERE lease_until < clock_timestamp()))";

/// Owners dead for longer than their grace (a lease past the lease's end), or none.
const PAST_GRACE: &str = "(worker_id IS NULL OR worker_id IN (SELECT id FROM veo3_workers \
     WHERE lease_until + lease_ms * INTERVAL '1 millisecond' < clock_timestamp()))";

/// A poisoned cache is still a valid cache.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn ids(jobs: &[JobId]) -> Vec<i64> {
    jobs.iter().map(|j| j.0).collect()
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_batch(
        &self,
        settings: &BatchSettings,
        jobs: &[NewJob],
    ) -> Result<BatchId, StoreError> {
        let settings = serde_json::to_string(settings).map_err(|e| self.json(e))?;
        let mut connection = self.transactions.lock().await;
        let tx = connection.transaction().await.map_err(|e| self.db(e))?;
        let now = crate::now_ms();
        let row = tx
            .query_one(
                "INSERT INTO batches (settings, created_ms) VALUES ($1, $2) RETURNING id",
                &[&settings, &now],
            )
            .await
            .map_err(|e| self.db(e))?;
        let batch = BatchId(row.get(0));
        let statement = tx.prepare(INSERT_JOB).await.map_err(|e| self.db(e))?;
        for job in jobs {
            self.insert_job(&tx, &statement, Some(batch), job, &JobState::Pending, now)
                .await?;
        }
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(batch)
    }

    async fn batch(&self, id: BatchId) -> Result<Option<Batch>, StoreError> {
        let row = self
            .client
            .query_opt(
                "SELECT id, settings, created_ms FROM batches WHERE id = $1",
                &[&id.0],
            )
            .await
            .map_err(|e| self.db(e))?;
        row.map(|row| self.read_batch(&row)).transpose()
    }

    async fn latest_batch(&self) -> Result<Option<Batch>, StoreError> {
        let row = self
            .client
            .query_opt(
                "SELECT id, settings, created_ms FROM batches ORDER BY id DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(|e| self.db(e))?;
        row.map(|row| self.read_batch(&row)).transpose()
    }

    async fn add_job(&self, job: &NewJob, state: &JobState) -> Result<JobId, StoreError> {
        let mut connection = self.transactions.lock().await;
        let tx = connection.transaction().await.map_err(|e| self.db(e))?;
        let statement = tx.prepare(INSERT_JOB).await.map_err(|e| self.db(e))?;
        let id = self
            .insert_job(&tx, &statement, None, job, state, crate::now_ms())
            .await?;
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(id)
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let row = self
            .client
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
                &[&id.0],
            )
            .await
            .map_err(|e| self.db(e))?;
        row.map(|row| self.read_job(&row)).transpose()
    }

    async fn jobs(&self, query: &JobQuery) -> Result<Vec<Job>, StoreError> {
        let batch = query.batch.map(|b| b.0);
        let states: Vec<&str> = query.states.iter().map(|s| s.as_str()).collect();
        let limit = query.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let order = if limit.is_some() {
            "ORDER BY id DESC LIMIT $3"
        } else {
            "AND $3::BIGINT IS NULL ORDER BY id"
        };
        let task_id = query.task_id.as_deref();
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs \
                     WHERE ($1::BIGINT IS NULL OR batch_id = $1) \
                     AND (cardinality($2::TEXT[]) = 0 OR state = ANY($2)) \
                     AND ($4::TEXT IS NULL OR task_id = $4) {order}"
                ),
                &[&batch, &states, &limit, &task_id],
            )
            .await
            .map_err(|e| self.db(e))?;
        self.read_jobs(&rows)
    }

    async fn transition(&self, id: JobId, to: &JobState) -> Result<(), StoreError> {
        let kind = to.kind();
        let changed = self.update_state(id, to, None).await?;
        if changed == 1 {
            return Ok(());
        }
        let current = self
            .client
            .query_opt("SELECT state FROM jobs WHERE id = $1", &[&id.0])
            .await
            .map_err(|e| self.db(e))?;
        match current {
            None => Err(StoreError::NoSuchJob(id)),
            Some(row) => Err(StoreError::Conflict {
                job: id,
                from: StateKind::parse(row.get(0)).unwrap_or(StateKind::Unknown),
                to: kind,
            }),
        }
    }

    async fn counts(&self, batch: Option<BatchId>) -> Result<BTreeMap<StateKind, u64>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT state, COUNT(*) FROM jobs WHERE ($1::BIGINT IS NULL OR batch_id = $1) \
                 GROUP BY state",
                &[&batch.map(|b| b.0)],
            )
            .await
            .map_err(|e| self.db(e))?;
        let mut counts = BTreeMap::new();
        for row in rows {
            if let Some(kind) = StateKind::parse(row.get(0)) {
                counts.insert(kind, u64::try_from(row.get::<_, i64>(1)).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn register_worker(&self, worker: &NewWorker) -> Result<WorkerId, StoreError> {
        let process = worker.process.as_ref();
        let row = self
            .client
            .query_one(
                "INSERT INTO veo3_workers (name, lease_until, lease_ms, host, pid, pid_start) \
                 VALUES ($1, clock_timestamp() + $2::FLOAT8 * INTERVAL '1 millisecond', $3, $4, $5, $6) \
                 RETURNING id",
                &[
                    &worker.name,
                    &(millis(worker.lease) as f64),
                    &millis(worker.lease),
                    &process.map(|p| p.host.clone()),
                    &process.map(|p| i64::from(p.pid)),
                    &process.map(|p| i64::try_from(p.start).unwrap_or(i64::MAX)),
                ],
            )
            .await
            .map_err(|e| self.db(e))?;
        Ok(WorkerId(row.get(0)))
    }

    async fn renew_lease(&self, worker: WorkerId, lease: Duration) -> Result<(), StoreError> {
        let changed = self
            .client
            .execute(
                "UPDATE veo3_workers SET lease_until = clock_timestamp() + $2::FLOAT8 * INTERVAL '1 millisecond' \
                 WHERE id = $1 AND lease_until >= clock_timestamp()",
                &[&worker.0, &(millis(lease) as f64)],
            )
            .await
            .map_err(|e| self.db(e))?;
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::LeaseLost(worker))
        }
    }

    async fn retire_worker(&self, worker: WorkerId) -> Result<(), StoreError> {
        // Its jobs go back at once; one still `submitting` (it never should be on a graceful
        // stop) stays owned by the expired lease, and becomes unknown.
        self.client
            .execute(
                "UPDATE jobs SET worker_id = NULL WHERE worker_id = $1 AND state <> 'submitting'",
                &[&worker.0],
            )
            .await
            .map_err(|e| self.db(e))?;
        self.client
            .execute(
                "UPDATE veo3_workers SET lease_until = LEAST(lease_until, clock_timestamp()) \
                 WHERE id = $1",
                &[&worker.0],
            )
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    async fn expire_worker(&self, worker: WorkerId) -> Result<(), StoreError> {
        self.client
            .execute(
                "UPDATE veo3_workers SET lease_until = to_timestamp(0), lease_ms = 0 WHERE id = $1",
                &[&worker.0],
            )
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    async fn live_workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT id, name, host, pid, pid_start, \
                 (extract(epoch FROM lease_until) * 1000)::BIGINT FROM veo3_workers \
                 WHERE lease_until >= clock_timestamp() ORDER BY id",
                &[],
            )
            .await
            .map_err(|e| self.db(e))?;
        Ok(rows
            .iter()
            .map(|row| WorkerInfo {
                id: WorkerId(row.get(0)),
                name: row.get(1),
                process: ProcessId::from_columns(row.get(2), row.get(3), row.get(4)),
                lease_until_ms: row.get(5),
            })
            .collect())
    }

    async fn release(&self, worker: WorkerId, job: JobId) -> Result<(), StoreError> {
        self.client
            .execute(
                "UPDATE jobs SET worker_id = NULL WHERE id = $1 AND worker_id = $2 \
                 AND state <> 'submitting'",
                &[&job.0, &worker.0],
            )
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    async fn claim(
        &self,
        worker: WorkerId,
        batch: BatchId,
        request: &ClaimRequest,
    ) -> Result<Claimed, StoreError> {
        let exclude = ids(&request.exclude);
        let now = crate::now_ms();
        let unknown = serde_json::to_string(&JobState::Unknown).map_err(|e| self.json(e))?;
        let mut connection = self.transactions.lock().await;
        let tx = connection.transaction().await.map_err(|e| self.db(e))?;
        // Claims of one batch take turns on its row: the in-flight count below is then exact
        // for all workers. Job rows are taken with SKIP LOCKED: a row another statement holds
        // is left for the next claim rather than waited on.
        let lock = self
            .tx_statement(&tx, "SELECT settings FROM batches WHERE id = $1 FOR UPDATE")
            .await?;
        let Some(row) = tx
            .query_opt(&lock, &[&batch.0])
            .await
            .map_err(|e| self.db(e))?
        else {
            return Ok(Claimed::default());
        };
        let settings: BatchSettings =
            serde_json::from_str(row.get::<_, &str>(0)).map_err(|e| self.json(e))?;
        // Submits whose worker died between journaling and the answer: maybe billed. Looked
        // for with the takeovers (a worker's periodic claim), not before every submit.
        let mut lost = Vec::new();
        let mut takeovers = Vec::new();
        if request.takeovers > 0 {
            let statement = self
                .tx_statement(
                    &tx,
                    &format!(
                        "WITH picked AS (SELECT id FROM jobs WHERE batch_id = $1 \
                         AND state = 'submitting' AND {PAST_GRACE} FOR UPDATE SKIP LOCKED) \
                         UPDATE jobs SET state = 'unknown', detail = $2, worker_id = NULL, \
                         updated_ms = $3, finished_ms = $3 FROM picked \
                         WHERE jobs.id = picked.id RETURNING {}",
                        qualified("jobs")
                    ),
                )
                .await?;
            lost = tx
                .query(&statement, &[&batch.0, &unknown, &now])
                .await
                .map_err(|e| self.db(e))?;
            let statement = self
                .tx_statement(
                    &tx,
                    &format!(
                        "WITH picked AS (SELECT id FROM jobs WHERE batch_id = $1 \
                         AND state IN ('submitted', 'succeeded', 'upgrading') AND {NOT_OWNED} \
                         AND id <> ALL($3) ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                         UPDATE jobs SET worker_id = $2, fence = jobs.fence + 1 FROM picked \
                         WHERE jobs.id = picked.id \
                         RETURNING {}",
                        qualified("jobs")
                    ),
                )
                .await?;
            takeovers = tx
                .query(
                    &statement,
                    &[
                        &batch.0,
                        &worker.0,
                        &exclude,
                        &i64::try_from(request.takeovers).unwrap_or(i64::MAX),
                    ],
                )
                .await
                .map_err(|e| self.db(e))?;
        }
        let mut submits = Vec::new();
        if request.submits > 0 {
            let count = self
                .tx_statement(
                    &tx,
                    &format!(
                        "SELECT COUNT(*) FROM jobs WHERE batch_id = $1 AND (state = ANY($2) \
                         OR (state = 'pending' AND NOT {NOT_OWNED}))"
                    ),
                )
                .await?;
            let held: i64 = tx
                .query_one(&count, &[&batch.0, &IN_FLIGHT.as_slice()])
                .await
                .map_err(|e| self.db(e))?
                .get(0);
            let room = i64::try_from(settings.concurrency.max(1))
                .unwrap_or(i64::MAX)
                .saturating_sub(held)
                .min(i64::try_from(request.submits).unwrap_or(i64::MAX));
            if room > 0 {
                // Owned, still pending: `submitting` comes with the send ([`Store::begin_send`]).
                let statement = self
                    .tx_statement(
                        &tx,
                        &format!(
                            "WITH picked AS (SELECT id FROM jobs WHERE batch_id = $1 \
                             AND state = 'pending' AND {NOT_OWNED} AND id <> ALL($3) \
                             ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                             UPDATE jobs SET worker_id = $2, fence = jobs.fence + 1, \
                             updated_ms = $5 FROM picked \
                             WHERE jobs.id = picked.id RETURNING {}",
                            qualified("jobs")
                        ),
                    )
                    .await?;
                submits = tx
                    .query(&statement, &[&batch.0, &worker.0, &exclude, &room, &now])
                    .await
                    .map_err(|e| self.db(e))?;
            }
        }
        tx.commit().await.map_err(|e| self.db(e))?;
        let mut claimed = Claimed {
            submits: self.read_jobs(&submits)?,
            takeovers: self.read_jobs(&takeovers)?,
            lost: self.read_jobs(&lost)?,
        };
        for list in [
            &mut claimed.submits,
            &mut claimed.takeovers,
            &mut claimed.lost,
        ] {
            list.sort_by_key(|j| j.id);
        }
        Ok(claimed)
    }

    async fn begin_send(
        &self,
        worker: WorkerId,
        job: JobId,
        fence: i64,
        margin: Duration,
    ) -> Result<SendCheck, StoreError> {
        let submitting = serde_json::to_string(&JobState::Submitting).map_err(|e| self.json(e))?;
        let statement = self
            .statement(
                "UPDATE jobs SET state = 'submitting', detail = $4, updated_ms = $5, \
                 finished_ms = NULL WHERE id = $1 AND state = 'pending' AND worker_id = $2 \
                 AND fence = $3 AND EXISTS (SELECT 1 FROM veo3_workers WHERE id = $2 \
                 AND lease_until >= clock_timestamp() + $6::FLOAT8 * INTERVAL '1 millisecond')",
            )
            .await?;
        let changed = self
            .client
            .execute(
                &statement,
                &[
                    &job.0,
                    &worker.0,
                    &fence,
                    &submitting,
                    &crate::now_ms(),
                    &(millis(margin) as f64),
                ],
            )
            .await
            .map_err(|e| self.db(e))?;
        if changed == 1 {
            return Ok(SendCheck::Go);
        }
        let still_ours = self
            .client
            .query_opt(
                "SELECT 1 FROM jobs WHERE id = $1 AND state = 'pending' AND worker_id = $2 \
                 AND fence = $3",
                &[&job.0, &worker.0, &fence],
            )
            .await
            .map_err(|e| self.db(e))?
            .is_some();
        Ok(if still_ours {
            SendCheck::LeaseShort
        } else {
            SendCheck::Lost
        })
    }

    async fn answer_send(
        &self,
        worker: WorkerId,
        job: JobId,
        fence: i64,
        to: &JobState,
    ) -> Result<Answered, StoreError> {
        let now = crate::now_ms();
        let detail = serde_json::to_string(to).map_err(|e| self.json(e))?;
        // Single statements on the statements' connection, never a transaction: the answer of
        // a send must be journaled even when this worker stalled and the server ended its
        // transactions' session meanwhile.
        let changed = self.update_state(job, to, Some((worker, fence))).await?;
        if changed == 1 {
            return Ok(Answered::Journaled);
        }
        let Some(task_id) = to.task_id() else {
            return Ok(Answered::Moved);
        };
        // A task kie answered for a job that moved on: kept, as an extra task, once.
        let row = self
            .client
            .query_opt(
                &format!(
                    "INSERT INTO jobs (batch_id, name, line, request, upgrade, cost, state, \
                     task_id, detail, created_ms, updated_ms, submitted_ms, worker_id, fence, \
                     extra_of) SELECT j.batch_id, j.name || '.extra-' || \
                     (SELECT COUNT(*) + 1 FROM jobs e WHERE e.extra_of = j.id), j.line, \
                     j.request, j.upgrade, j.cost, 'submitted', $2, $3, $4, $4, $4, $5, 1, j.id \
                     FROM jobs j WHERE j.id = $1 AND NOT EXISTS (SELECT 1 FROM jobs k \
                     WHERE (k.id = $1 OR k.extra_of = $1) AND k.task_id = $2) \
                     RETURNING {JOB_COLUMNS}"
                ),
                &[&job.0, &task_id, &detail, &now, &worker.0],
            )
            .await
            .map_err(|e| self.db(e))?;
        match row {
            Some(row) => Ok(Answered::Extra(Box::new(self.read_job(&row)?))),
            None if self.job(job).await?.is_none() => Err(StoreError::NoSuchJob(job)),
            None => Ok(Answered::Moved),
        }
    }

    async fn salt(&self) -> Result<String, StoreError> {
        let fresh = crate::worker::new_salt().map_err(|m| backend(&self.location, m))?;
        self.client
            .execute(
                "INSERT INTO veo3_meta (key, value) VALUES ('salt', $1) ON CONFLICT (key) DO NOTHING",
                &[&fresh],
            )
            .await
            .map_err(|e| self.db(e))?;
        let row = self
            .client
            .query_one("SELECT value FROM veo3_meta WHERE key = 'salt'", &[])
            .await
            .map_err(|e| self.db(e))?;
        Ok(row.get(0))
    }

    async fn next_batch_with_work(&self, exclude: &[JobId]) -> Result<Option<BatchId>, StoreError> {
        let mut states = vec!["pending"];
        states.extend(IN_FLIGHT);
        let row = self
            .client
            .query_one(
                "SELECT MIN(batch_id) FROM jobs WHERE batch_id IS NOT NULL \
                 AND state = ANY($1) AND id <> ALL($2)",
                &[&states, &ids(exclude)],
            )
            .await
            .map_err(|e| self.db(e))?;
        Ok(row.get::<_, Option<i64>>(0).map(BatchId))
    }

    async fn reserve_submit(
        &self,
        worker: WorkerId,
        account: &str,
        max: u32,
        window: Duration,
    ) -> Result<Option<Reservation>, StoreError> {
        let window_us = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
        let max = i32::try_from(max.max(1)).unwrap_or(i32::MAX);
        let statement = self
            .statement("SELECT reservation, wait_us FROM veo3_reserve_submit($1, $2, $3, $4)")
            .await?;
        let row = self
            .client
            .query_one(&statement, &[&worker.0, &account, &max, &window_us])
            .await
            .map_err(|e| self.db(e))?;
        let (Some(id), Some(wait)) = (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1))
        else {
            return Ok(None);
        };
        Ok(Some(Reservation {
            id,
            wait: Duration::from_micros(u64::try_from(wait).unwrap_or(0)),
        }))
    }

    async fn submit_answered(&self, reservation: i64) -> Result<(), StoreError> {
        let statement = self.statement("SELECT veo3_submit_answered($1)").await?;
        self.client
            .execute(&statement, &[&reservation])
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }
}

/// The job columns, qualified by `table` (for `RETURNING` after an `UPDATE ... FROM`).
fn qualified(table: &str) -> String {
    JOB_COLUMNS
        .split(", ")
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
