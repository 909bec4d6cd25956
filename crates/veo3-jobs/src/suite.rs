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

#[cfg(feature = "sqlite")]
mod sqlite {
    use crate::SqliteStore;

    #[tokio::test]
    async fn the_store_suite_passes_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("nested/journal.db")).unwrap();
        super::run_all(&store).await;
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
