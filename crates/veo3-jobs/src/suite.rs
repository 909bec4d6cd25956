//! The store test suite, written once against the [`Store`] trait; every backend runs it.

use std::path::PathBuf;

use veo3_types::GenerateRequest;

use crate::job::{BatchSettings, JobState, NewJob, StateKind, Upgrade};
use crate::store::{JobQuery, Store, StoreError};

fn job(prompt: &str, name: &str) -> NewJob {
    NewJob::new(GenerateRequest::builder(prompt).build().unwrap(), name)
        .line(7)
        .cost(60)
}

/// Runs every check on `store`, which must be empty.
pub(crate) async fn run_all(store: &dyn Store) {
    batches_round_trip(store).await;
    transitions_follow_the_state_machine(store).await;
    a_job_with_a_task_id_is_never_sent_again(store).await;
    queries_filter_and_count(store).await;
    single_jobs_outside_batches(store).await;
}

async fn batches_round_trip(store: &dyn Store) {
    assert!(store.latest_batch().await.unwrap().is_none());
    let mut settings = BatchSettings::new("/tmp/out");
    settings.max_credits = Some(1000);
    settings.upgrade = Some(Upgrade::Uhd4k);
    let jobs = [
        job("a cat", "cat").upgrade(Some(Upgrade::Uhd4k)),
        job("a dog", "dog"),
    ];
    let batch = store.create_batch(&settings, &jobs).await.unwrap();
    let read = store.batch(batch).await.unwrap().unwrap();
    assert_eq!(read.settings, settings);
    assert_eq!(store.latest_batch().await.unwrap().unwrap().id, batch);
    let listed = store.jobs(&JobQuery::batch(batch)).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].name, "cat");
    assert_eq!(listed[0].request, jobs[0].request);
    assert_eq!(listed[0].upgrade, Some(Upgrade::Uhd4k));
    assert_eq!(listed[0].line, Some(7));
    assert_eq!(listed[0].cost, 60);
    assert_eq!(listed[0].state, JobState::Pending);
    assert_eq!(listed[0].batch, Some(batch));
    assert!(listed[0].id < listed[1].id);
}

async fn transitions_follow_the_state_machine(store: &dyn Store) {
    let batch = store
        .create_batch(&BatchSettings::new("out"), &[job("p", "one")])
        .await
        .unwrap();
    let id = store.jobs(&JobQuery::batch(batch)).await.unwrap()[0].id;
    store.transition(id, &JobState::Submitting).await.unwrap();
    let submitted = JobState::Submitted {
        task_id: "t-1".into(),
    };
    store.transition(id, &submitted).await.unwrap();
    let read = store.job(id).await.unwrap().unwrap();
    assert_eq!(read.state, submitted);
    assert!(read.times.submitted_ms.is_some());
    assert!(read.times.finished_ms.is_none());
    store
        .transition(
            id,
            &JobState::Succeeded {
                task_id: "t-1".into(),
                urls: vec!["https://f/1.mp4".into()],
                upgraded: false,
            },
        )
        .await
        .unwrap();
    let done = JobState::Downloaded {
        task_id: "t-1".into(),
        path: PathBuf::from("out/one.mp4"),
        bytes: 42,
        sha256: "ab".repeat(32),
        url: "https://f/1.mp4".into(),
    };
    store.transition(id, &done).await.unwrap();
    let read = store.job(id).await.unwrap().unwrap();
    assert_eq!(read.state, done);
    assert!(read.times.finished_ms.is_some());
    assert!(matches!(
        store
            .transition(JobId(i64::MAX), &JobState::Submitting)
            .await,
        Err(StoreError::NoSuchJob(_))
    ));
}

use crate::job::JobId;

async fn a_job_with_a_task_id_is_never_sent_again(store: &dyn Store) {
    let batch = store
        .create_batch(&BatchSettings::new("out"), &[job("p", "a"), job("q", "b")])
        .await
        .unwrap();
    let jobs = store.jobs(&JobQuery::batch(batch)).await.unwrap();
    let (a, b) = (jobs[0].id, jobs[1].id);
    store.transition(a, &JobState::Submitting).await.unwrap();
    // A second runner racing for the same job loses: the transition is a compare-and-set.
    let second = store.transition(a, &JobState::Submitting).await;
    assert!(matches!(
        second,
        Err(StoreError::Conflict {
            from: StateKind::Submitting,
            to: StateKind::Submitting,
            ..
        })
    ));
    store
        .transition(
            a,
            &JobState::Submitted {
                task_id: "t-a".into(),
            },
        )
        .await
        .unwrap();
    for to in [JobState::Pending, JobState::Submitting, JobState::Unknown] {
        assert!(store.transition(a, &to).await.is_err(), "{to:?}");
    }
    assert_eq!(
        store.job(a).await.unwrap().unwrap().state.task_id(),
        Some("t-a")
    );
    // An unknown submit goes back to pending only by the explicit resubmission path, and a
    // callback can still give it its task id.
    store.transition(b, &JobState::Submitting).await.unwrap();
    store.transition(b, &JobState::Unknown).await.unwrap();
    store
        .transition(
            b,
            &JobState::Submitted {
                task_id: "t-b".into(),
            },
        )
        .await
        .unwrap();
}

async fn queries_filter_and_count(store: &dyn Store) {
    let jobs: Vec<NewJob> = (0..5).map(|i| job("p", &format!("j{i}"))).collect();
    let batch = store
        .create_batch(&BatchSettings::new("out"), &jobs)
        .await
        .unwrap();
    let ids: Vec<_> = store
        .jobs(&JobQuery::batch(batch))
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    store
        .transition(ids[0], &JobState::Submitting)
        .await
        .unwrap();
    store.transition(ids[0], &JobState::Unknown).await.unwrap();
    store
        .transition(
            ids[1],
            &JobState::Failed {
                task_id: None,
                code: Some(400),
                message: "rejected".into(),
            },
        )
        .await
        .unwrap();
    let counts = store.counts(Some(batch)).await.unwrap();
    assert_eq!(counts.get(&StateKind::Pending), Some(&3));
    assert_eq!(counts.get(&StateKind::Unknown), Some(&1));
    assert_eq!(counts.get(&StateKind::Failed), Some(&1));
    let unknown = store
        .jobs(&JobQuery::batch(batch).states(&[StateKind::Unknown]))
        .await
        .unwrap();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].id, ids[0]);
    let newest = store.jobs(&JobQuery::default().newest(2)).await.unwrap();
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[0].id, ids[4]);
    let all = store.counts(None).await.unwrap().values().sum::<u64>();
    assert!(all >= 5);
}

async fn single_jobs_outside_batches(store: &dyn Store) {
    let state = JobState::Submitted {
        task_id: "t-solo".into(),
    };
    let id = store.add_job(&job("solo", "solo"), &state).await.unwrap();
    let read = store.job(id).await.unwrap().unwrap();
    assert_eq!(read.batch, None);
    assert_eq!(read.state, state);
    assert!(read.times.submitted_ms.is_some());
}

/// The workers' part of the suite, for every journal: claims, leases, fencing tokens,
/// takeovers, the grace before unknown, extra tasks, the in-flight bound and the account
/// limiter. `store` must be empty.
pub(crate) async fn run_workers(store: &dyn Store) {
    use std::time::Duration;

    use crate::store::{Answered, ClaimRequest, NewWorker, SendCheck};

    let mut settings = BatchSettings::new("out");
    settings.concurrency = 3;
    let jobs: Vec<NewJob> = (0..6).map(|i| job("p", &format!("w{i}"))).collect();
    let batch = store.create_batch(&settings, &jobs).await.unwrap();
    let long = Duration::from_secs(600);
    let worker = |name: &str, lease| NewWorker::new(name, lease);
    let a = store.register_worker(&worker("a", long)).await.unwrap();
    let b = store.register_worker(&worker("b", long)).await.unwrap();
    let submits = |n| ClaimRequest {
        submits: n,
        ..ClaimRequest::default()
    };
    let takeovers = |exclude: Vec<crate::JobId>| ClaimRequest {
        takeovers: 10,
        exclude,
        ..ClaimRequest::default()
    };
    let live: Vec<_> = store.live_workers().await.unwrap();
    assert_eq!(live.iter().map(|w| w.id).collect::<Vec<_>>(), [a, b]);
    assert_eq!(live[0].name, "a");
    assert_eq!(
        live[0].process,
        crate::ProcessId::current(),
        "this process, so others can tell it is gone"
    );

    // A claim owns pending jobs under a new fencing token; they stay pending until sent.
    let first = store.claim(a, batch, &submits(2)).await.unwrap();
    assert_eq!(first.submits.len(), 2);
    for job in &first.submits {
        assert_eq!(job.state, JobState::Pending);
        assert_eq!(job.owner, Some(a));
        assert_eq!(job.fence, 1);
    }
    // Another worker never gets the same job, and the batch's concurrency (3) holds over both,
    // claimed jobs included.
    let second = store.claim(b, batch, &submits(5)).await.unwrap();
    assert_eq!(
        second.submits.len(),
        1,
        "3 in flight at most, over all workers"
    );
    assert!(first.submits.iter().all(|j| j.id != second.submits[0].id));
    assert!(
        store
            .claim(b, batch, &submits(5))
            .await
            .unwrap()
            .submits
            .is_empty()
    );

    // The send check: only the owner, under its token, with lease to spare.
    let (answered, unanswered) = (&first.submits[0], &first.submits[1]);
    assert_eq!(
        store
            .begin_send(b, answered.id, answered.fence, Duration::ZERO)
            .await
            .unwrap(),
        SendCheck::Lost,
        "not b's"
    );
    assert_eq!(
        store
            .begin_send(a, answered.id, answered.fence + 1, Duration::ZERO)
            .await
            .unwrap(),
        SendCheck::Lost,
        "another token"
    );
    assert_eq!(
        store
            .begin_send(a, answered.id, answered.fence, long * 2)
            .await
            .unwrap(),
        SendCheck::LeaseShort,
        "the lease would end during the send"
    );
    for job in [answered, unanswered] {
        assert_eq!(
            store
                .begin_send(a, job.id, job.fence, Duration::from_secs(1))
                .await
                .unwrap(),
            SendCheck::Go
        );
        assert_eq!(
            store.job(job.id).await.unwrap().unwrap().state,
            JobState::Submitting
        );
    }
    let submitted = JobState::Submitted {
        task_id: "t-w".into(),
    };
    assert_eq!(
        store
            .answer_send(a, answered.id, answered.fence, &submitted)
            .await
            .unwrap(),
        Answered::Journaled
    );
    // a's lease is still live: nothing of a's can be taken over.
    let none = store.claim(b, batch, &takeovers(vec![])).await.unwrap();
    assert!(none.takeovers.is_empty() && none.lost.is_empty());
    // A lease that ran out cannot be renewed.
    let dead = store
        .register_worker(&worker("dead", Duration::ZERO))
        .await
        .unwrap();
    assert!(matches!(
        store.renew_lease(dead, long).await,
        Err(StoreError::LeaseLost(_))
    ));
    store.renew_lease(b, long).await.unwrap();
    let c = store.register_worker(&worker("c", long)).await.unwrap();
    // a stalls: its lease expires with its jobs still naming it. Its waits are taken over at
    // once (under a new token), but its unanswered submit is not unknown yet: a stalled worker
    // may still be sending it, for a grace of one more lease.
    expire(store, a).await;
    let taken = store.claim(c, batch, &takeovers(vec![])).await.unwrap();
    assert_eq!(taken.takeovers.len(), 1);
    assert_eq!(taken.takeovers[0].id, answered.id);
    assert_eq!(taken.takeovers[0].state, submitted);
    assert_eq!(taken.takeovers[0].fence, answered.fence + 1);
    assert!(taken.lost.is_empty(), "still within a's grace");
    // a's process is then known gone (or its grace ran out): the submit is unknown.
    store.expire_worker(a).await.unwrap();
    let taken = store.claim(c, batch, &takeovers(vec![])).await.unwrap();
    assert_eq!(taken.lost.len(), 1);
    assert_eq!(taken.lost[0].id, unanswered.id);
    assert_eq!(
        store.job(unanswered.id).await.unwrap().unwrap().state,
        JobState::Unknown
    );
    // Renewing a's lost lease fails: it must stop.
    assert!(matches!(
        store.renew_lease(a, long).await,
        Err(StoreError::LeaseLost(_))
    ));
    // a wakes and its answers arrive late. The unknown job nobody sent again takes its task.
    let late = JobState::Submitted {
        task_id: "t-late".into(),
    };
    assert_eq!(
        store
            .answer_send(a, unanswered.id, unanswered.fence, &late)
            .await
            .unwrap(),
        Answered::Journaled
    );
    // The same task again is nothing new; a task answered for a job taken over meanwhile is
    // kept as an extra task of the job, never lost.
    assert_eq!(
        store
            .answer_send(a, unanswered.id, unanswered.fence, &late)
            .await
            .unwrap(),
        Answered::Moved
    );
    let other = JobState::Submitted {
        task_id: "t-twice".into(),
    };
    let Answered::Extra(extra) = store
        .answer_send(a, answered.id, answered.fence, &other)
        .await
        .unwrap()
    else {
        panic!("an extra task")
    };
    assert_eq!(extra.extra_of, Some(answered.id));
    assert_eq!(extra.state, other);
    assert_eq!(extra.batch, Some(batch));
    assert_eq!(extra.name, format!("{}.extra-1", answered.name));
    assert_eq!(
        store.job(answered.id).await.unwrap().unwrap().state,
        submitted,
        "the job keeps its own task"
    );
    assert_eq!(
        store
            .answer_send(a, answered.id, answered.fence, &other)
            .await
            .unwrap(),
        Answered::Moved,
        "journaled once"
    );
    // An answer without a task for a job that moved on changes nothing.
    assert_eq!(
        store
            .answer_send(a, answered.id, answered.fence, &JobState::Unknown)
            .await
            .unwrap(),
        Answered::Moved
    );
    // A job given back (released, or by a graceful stop) is taken over at once, unless the
    // claimer excludes it.
    store.release(c, answered.id).await.unwrap();
    let excluded = store
        .claim(b, batch, &takeovers(vec![answered.id]))
        .await
        .unwrap();
    assert!(
        excluded.takeovers.iter().all(|j| j.id != answered.id),
        "{excluded:?}"
    );
    let retaken = store.claim(b, batch, &takeovers(vec![])).await.unwrap();
    assert!(retaken.takeovers.iter().any(|j| j.id == answered.id));
    store.retire_worker(b).await.unwrap();
    let back = store.claim(c, batch, &takeovers(vec![])).await.unwrap();
    assert!(
        back.takeovers.iter().any(|j| j.id == answered.id),
        "a retired worker's jobs are free at once"
    );
    // The extra task counts in flight like any other; it fails here, to make room.
    let failed = JobState::Failed {
        task_id: Some("t-twice".into()),
        code: None,
        message: "for the test".into(),
    };
    store.transition(extra.id, &failed).await.unwrap();
    // A claimed job whose owner's lease ended goes to the next claim, under a new token: the
    // old owner's send check then fails.
    let d = store.register_worker(&worker("d", long)).await.unwrap();
    let pending_of_b = &second.submits[0];
    let reclaimed = store.claim(d, batch, &submits(1)).await.unwrap();
    assert_eq!(reclaimed.submits.len(), 1);
    assert_eq!(reclaimed.submits[0].id, pending_of_b.id);
    assert!(reclaimed.submits[0].fence > pending_of_b.fence);
    assert_eq!(
        store
            .begin_send(b, pending_of_b.id, pending_of_b.fence, Duration::ZERO)
            .await
            .unwrap(),
        SendCheck::Lost
    );
    assert_eq!(
        store.next_batch_with_work(&[]).await.unwrap(),
        Some(batch),
        "pending and in-flight jobs left"
    );
    let salt = store.salt().await.unwrap();
    assert_eq!(salt.len(), 32);
    assert_eq!(store.salt().await.unwrap(), salt, "one salt per journal");

    // The limiter: 3 per 200 ms for one account, shared by whoever asks, each send's window
    // counted from its answer; another account is paced on its own.
    let window = Duration::from_millis(200);
    let reserve = |worker, account| store.reserve_submit(worker, account, 3, window);
    let a = store
        .register_worker(&worker("pacer-a", long))
        .await
        .unwrap();
    let c = store
        .register_worker(&worker("pacer-c", long))
        .await
        .unwrap();
    let mut first = Vec::new();
    for worker in [a, c, a] {
        let turn = reserve(worker, "acct-1").await.unwrap().expect("a turn");
        assert!(turn.wait < Duration::from_millis(50), "{turn:?}");
        first.push(turn);
    }
    assert_eq!(
        reserve(c, "acct-1").await.unwrap(),
        None,
        "the 4th waits for the 1st send's answer"
    );
    store.submit_answered(first[0].id).await.unwrap();
    store.submit_answered(first[0].id).await.unwrap();
    let fourth = reserve(c, "acct-1").await.unwrap().expect("a turn");
    assert!(
        fourth.wait > Duration::from_millis(150),
        "a window after the 1st answer: {fourth:?}"
    );
    // The 2nd send's worker dies without journaling its answer: its send counts as answered
    // when the lease ended, so the next turn comes a window after that, not never.
    let doomed = store
        .register_worker(&worker("doomed", long))
        .await
        .unwrap();
    let _in_flight = reserve(doomed, "acct-2").await.unwrap().expect("a turn");
    for _ in 0..2 {
        let turn = reserve(a, "acct-2").await.unwrap().expect("a turn");
        store.submit_answered(turn.id).await.unwrap();
    }
    assert_eq!(
        reserve(a, "acct-2").await.unwrap(),
        None,
        "the doomed send is in flight"
    );
    expire(store, doomed).await;
    let after = reserve(a, "acct-2")
        .await
        .unwrap()
        .expect("its lease ended");
    assert!(after.wait > Duration::from_millis(150), "{after:?}");
    let other = reserve(a, "acct-3").await.unwrap().expect("a turn");
    assert!(other.wait < Duration::from_millis(50), "{other:?}");
}

/// Ends `worker`'s lease as a stall leaves it: expired, its jobs still naming it, its grace
/// (one more lease) still to run.
async fn expire(store: &dyn Store, worker: crate::store::WorkerId) {
    // A renewal to a zero lease is "expires now"; it succeeds while the lease is live.
    store
        .renew_lease(worker, std::time::Duration::ZERO)
        .await
        .unwrap();
}

/// Three stores on one journal (three connections, as three processes have) claim a batch's
/// 90 jobs at once: each job is claimed exactly once.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) async fn three_claimers(stores: Vec<std::sync::Arc<dyn Store>>) {
    let mut settings = BatchSettings::new("out");
    settings.concurrency = 1000;
    let jobs: Vec<_> = (0..90).map(|i| job("p", &format!("r{i}"))).collect();
    let batch = stores[0].create_batch(&settings, &jobs).await.unwrap();
    let mut tasks = Vec::new();
    for (w, store) in stores.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let me = store
                .register_worker(&crate::NewWorker::new(
                    format!("w{w}"),
                    std::time::Duration::from_secs(60),
                ))
                .await
                .unwrap();
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .claim(
                        me,
                        batch,
                        &crate::ClaimRequest {
                            submits: 2,
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                if claimed.submits.is_empty() {
                    return mine;
                }
                mine.extend(claimed.submits.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let unique: std::collections::BTreeSet<_> = all.iter().collect();
    assert_eq!(all.len(), 90);
    assert_eq!(unique.len(), 90, "a job claimed twice");
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use crate::SqliteStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn three_stores_claim_concurrently_without_sharing_a_job_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let stores = (0..3)
            .map(|_| {
                std::sync::Arc::new(SqliteStore::open(&path).unwrap())
                    as std::sync::Arc<dyn crate::Store>
            })
            .collect();
        super::three_claimers(stores).await;
    }

    #[tokio::test]
    async fn claims_leases_and_the_limiter_work_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("journal.db")).unwrap();
        super::run_workers(&store).await;
    }

    #[tokio::test]
    async fn the_store_suite_passes_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("nested/journal.db")).unwrap();
        super::run_all(&store).await;
    }

    /// Group commit: 200 transitions at once, among them a second claim of each of 50 jobs;
    /// every caller gets its own answer (the second claims a conflict), and every write lands.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_transitions_each_get_their_own_answer() {
        use crate::store::{JobQuery, Store as _};
        use crate::{BatchSettings, JobState, StateKind, StoreError};

        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("journal.db")).unwrap();
        let jobs: Vec<_> = (0..150)
            .map(|i| super::job(&format!("p{i}"), &format!("n{i}")))
            .collect();
        let batch = store
            .create_batch(&BatchSettings::new("out"), &jobs)
            .await
            .unwrap();
        let ids: Vec<_> = store
            .jobs(&JobQuery::batch(batch))
            .await
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for (n, id) in ids.iter().chain(&ids[..50]).enumerate() {
            let (store, id) = (store.clone(), *id);
            tasks.spawn(async move { (n, id, store.transition(id, &JobState::Submitting).await) });
        }
        let mut claimed = std::collections::HashMap::new();
        let mut conflicts = 0;
        while let Some(joined) = tasks.join_next().await {
            let (_, id, result) = joined.unwrap();
            match result {
                Ok(()) => assert!(claimed.insert(id, ()).is_none(), "{id} claimed twice"),
                Err(StoreError::Conflict { job, from, to }) => {
                    assert_eq!(
                        (job, from, to),
                        (id, StateKind::Submitting, StateKind::Submitting)
                    );
                    conflicts += 1;
                }
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!((claimed.len(), conflicts), (150, 50));
        let counts = store.counts(Some(batch)).await.unwrap();
        assert_eq!(counts.get(&StateKind::Submitting), Some(&150));
        drop(store);
        let reopened = SqliteStore::open(dir.path().join("journal.db")).unwrap();
        let counts = reopened.counts(Some(batch)).await.unwrap();
        assert_eq!(counts.get(&StateKind::Submitting), Some(&150), "durable");
    }

    #[tokio::test]
    async fn a_reopened_journal_keeps_every_state_and_its_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let store = SqliteStore::open(&path).unwrap();
        super::run_all(&store).await;
        let counts = crate::Store::counts(&store, None).await.unwrap();
        drop(store);
        let reopened = SqliteStore::open(&path).unwrap();
        assert_eq!(crate::Store::counts(&reopened, None).await.unwrap(), counts);
    }

    #[tokio::test]
    async fn a_journal_from_a_newer_program_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        drop(SqliteStore::open(&path).unwrap());
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute(
                "INSERT INTO veo3_migrations (version, name, applied_ms) VALUES (99, 'future', 0)",
                [],
            )
            .unwrap();
        drop(connection);
        let error = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(error, crate::StoreError::TooNew { found: 99, .. }),
            "{error}"
        );
    }

    #[test]
    fn the_journal_runs_in_wal_mode_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("j.db")).unwrap();
        let connection = store.connection.lock().unwrap();
        let mode: String = connection
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = connection
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use crate::PostgresStore;

    /// The server's URL, or `None` after printing one line saying the test is skipped.
    fn url(test: &str) -> Option<String> {
        match std::env::var("VEO3_TEST_POSTGRES_URL") {
            Ok(url) if !url.trim().is_empty() => Some(url),
            _ => {
                // CI sets the variable (.ci/run): there a missing server fails.
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must run the PostgreSQL tests: set VEO3_TEST_POSTGRES_URL"
                );
                // Straight to stderr: the test harness captures `println!`, and this line
                // must show in a plain `cargo test`.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {test}: VEO3_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)"
                );
                None
            }
        }
    }

    /// A schema of this test's own, so tests run in parallel on one database.
    fn schema(test: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("veo3_unit_{test}_{}_{nanos}", std::process::id())
    }

    /// `sslmode` and `sslrootcert` mean what they mean to libpq, against the real server (when
    /// it has TLS on, as the project's machines do: Debian's snake-oil certificate, issued to
    /// `localhost`).
    #[tokio::test]
    async fn tls_follows_libpq_sslmode_and_sslrootcert() {
        let test = "tls_follows_libpq_sslmode_and_sslrootcert";
        let Some(url) = url(test) else {
            return;
        };
        let plain = PostgresStore::connect(&with(&url, "sslmode=disable"))
            .await
            .unwrap();
        let ssl_on: String = plain.setting_for_tests("ssl").await;
        assert!(!plain.encrypted_for_tests().await, "disable");
        if ssl_on != "on" {
            skipped(test, "the server has ssl=off");
            return;
        }
        for mode in ["", "sslmode=prefer", "sslmode=require"] {
            let store = PostgresStore::connect(&with(&url, mode)).await.unwrap();
            assert!(store.encrypted_for_tests().await, "{mode:?}");
        }
        // Without a trusted root, verify-full refuses the server's self-signed certificate.
        let error = PostgresStore::connect(&with(&url, "sslmode=verify-full"))
            .await
            .expect_err("an untrusted certificate is refused");
        assert!(error.to_string().contains("certificate"), "{error}");
        let error = PostgresStore::connect(&with(
            &url,
            "sslmode=verify-full&sslrootcert=/nonexistent.pem",
        ))
        .await
        .expect_err("a missing root certificate file");
        assert!(
            error.to_string().contains("sslrootcert /nonexistent.pem"),
            "{error}"
        );
        // With the server's own certificate as the root: verify-full for the name it was
        // issued to (`localhost`), verify-ca (and require with a root) for any host name.
        // This needs the server on this machine, at 127.0.0.1, as CI's is.
        if !url.contains("@127.0.0.1:") {
            skipped(test, "the certificate checks need the server at 127.0.0.1");
            return;
        }
        let cert: String = plain.setting_for_tests("ssl_cert_file").await;
        let root = format!("sslrootcert={cert}");
        let localhost = url.replace("@127.0.0.1:", "@localhost:");
        let store =
            PostgresStore::connect(&with(&localhost, &format!("sslmode=verify-full&{root}")))
                .await
                .unwrap();
        assert!(store.encrypted_for_tests().await);
        for mode in ["sslmode=verify-ca", "sslmode=require"] {
            let store = PostgresStore::connect(&with(&url, &format!("{mode}&{root}")))
                .await
                .unwrap();
            assert!(store.encrypted_for_tests().await, "{mode}");
        }
        let error = PostgresStore::connect(&with(&url, &format!("sslmode=verify-full&{root}")))
            .await
            .expect_err("a certificate for localhost does not name 127.0.0.1");
        assert!(error.to_string().contains("certificate"), "{error}");
    }

    /// Says on stderr that (part of) `test` was skipped, and why; CI's server has everything
    /// the tests need, so there a skip is a failure.
    fn skipped(test: &str, why: &str) {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} must run in CI, but {why}"
        );
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    }

    /// `url` with `parameter` added to its query (nothing for "").
    fn with(url: &str, parameter: &str) -> String {
        match (parameter, url.contains('?')) {
            ("", _) => url.to_owned(),
            (_, true) => format!("{url}&{parameter}"),
            (_, false) => format!("{url}?{parameter}"),
        }
    }

    #[tokio::test]
    async fn the_store_suite_passes_on_postgres() {
        let Some(url) = url("the_store_suite_passes_on_postgres") else {
            return;
        };
        let schema = schema("suite");
        let store = PostgresStore::connect_in_schema(&url, &schema)
            .await
            .unwrap();
        super::run_all(&store).await;
        // A second connection finds the schema migrated and the same jobs.
        let again = PostgresStore::connect_in_schema(&url, &schema)
            .await
            .unwrap();
        assert_eq!(
            crate::Store::counts(&again, None).await.unwrap(),
            crate::Store::counts(&store, None).await.unwrap()
        );
        PostgresStore::drop_schema(&url, &schema).await.unwrap();
    }

    #[tokio::test]
    async fn claims_leases_and_the_limiter_work_on_postgres() {
        let Some(url) = url("claims_leases_and_the_limiter_work_on_postgres") else {
            return;
        };
        let schema = schema("workers");
        let store = PostgresStore::connect_in_schema(&url, &schema)
            .await
            .unwrap();
        super::run_workers(&store).await;
        PostgresStore::drop_schema(&url, &schema).await.unwrap();
    }

    #[tokio::test]
    async fn a_journal_from_a_newer_program_is_refused_on_postgres() {
        let Some(url) = url("a_journal_from_a_newer_program_is_refused_on_postgres") else {
            return;
        };
        let schema = schema("newer");
        let store = PostgresStore::connect_in_schema(&url, &schema)
            .await
            .unwrap();
        store
            .execute_for_tests(
                "INSERT INTO veo3_migrations (version, name, applied_ms) VALUES (99, 'future', 0)",
            )
            .await;
        let error = PostgresStore::connect_in_schema(&url, &schema)
            .await
            .unwrap_err();
        assert!(
            matches!(error, crate::StoreError::TooNew { found: 99, .. }),
            "{error}"
        );
        PostgresStore::drop_schema(&url, &schema).await.unwrap();
    }

    #[tokio::test]
    async fn three_stores_claim_concurrently_without_sharing_a_job() {
        let Some(url) = url("three_stores_claim_concurrently_without_sharing_a_job") else {
            return;
        };
        let schema = schema("race");
        let mut stores: Vec<std::sync::Arc<dyn crate::Store>> = Vec::new();
        for _ in 0..3 {
            stores.push(std::sync::Arc::new(
                PostgresStore::connect_in_schema(&url, &schema)
                    .await
                    .unwrap(),
            ));
        }
        super::three_claimers(stores).await;
        PostgresStore::drop_schema(&url, &schema).await.unwrap();
    }
}
