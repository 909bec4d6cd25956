//! Integration tests: the batch runner (veo3-jobs) against the sandbox over loopback HTTP,
//! with a SQLite journal in a temporary folder.

use std::sync::Arc;
use std::time::Duration;

use veo3_jobs::{
    BatchSettings, JobQuery, JobState, NewJob, Runner, RunnerOptions, SqliteStore, StateKind, Store,
};
use veo3_reqwest::{Client, PollSchedule};
use veo3_sandbox::{Sandbox, SandboxHandle};
use veo3_types::GenerateRequest;

const KEY: &str = "sk-jobs-test";

/// A sandbox whose generations take 25-60 ms of real time.
async fn sandbox() -> SandboxHandle {
    Sandbox::builder()
        .key(KEY)
        .time_scale(0.001)
        .seed(11)
        .start()
        .await
        .expect("sandbox starts")
}

fn client(sandbox: &SandboxHandle) -> Client {
    let fast = PollSchedule::new(
        Duration::from_millis(10),
        Duration::from_millis(10),
        Duration::from_secs(60),
    )
    .with_jitter(0.0);
    Client::builder()
        .api_key(KEY)
        .base_url(sandbox.api_url())
        .poll_schedules(fast)
        .build()
        .expect("client builds")
}

fn jobs(count: usize) -> Vec<NewJob> {
    (0..count)
        .map(|i| {
            let request = GenerateRequest::builder(format!("prompt {i}"))
                .build()
                .unwrap();
            NewJob::new(request, format!("job-{i:03}")).cost(60)
        })
        .collect()
}

fn settings(out: &std::path::Path) -> BatchSettings {
    let mut settings = BatchSettings::new(out);
    settings.concurrency = 8;
    // The sandbox's default limit is 20 per 10 s of service time: 10 ms of real time here.
    settings.rate_max = 20;
    settings.rate_window_ms = 10;
    settings
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_downloads_every_job_once_with_its_sha256() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("journal.db")).unwrap());
    let out = dir.path().join("out");
    let batch = store
        .create_batch(&settings(&out), &jobs(20))
        .await
        .unwrap();
    let summary = Runner::new(client(&sandbox), store.clone(), RunnerOptions::default())
        .run(batch)
        .await
        .expect("the batch runs");
    assert_eq!(
        summary.counts.get(&StateKind::Downloaded),
        Some(&20),
        "{summary:?}"
    );
    assert_eq!(summary.submits, 20);
    assert_eq!(sandbox.stats().tasks_created, 20, "one task per job");
    let finished = store.jobs(&JobQuery::batch(batch)).await.unwrap();
    let mut tasks = std::collections::HashSet::new();
    for job in finished {
        let JobState::Downloaded {
            task_id,
            path,
            bytes,
            sha256,
            ..
        } = &job.state
        else {
            panic!("{} is {}", job.name, job.state);
        };
        assert!(tasks.insert(task_id.clone()), "task {task_id} twice");
        let content = std::fs::read(path).unwrap();
        assert_eq!(content.len() as u64, *bytes);
        assert_eq!(&sha256_hex(&content), sha256);
        assert_eq!(path, &out.join(format!("{}.mp4", job.name)));
    }
    // Four journal writes per job: submitting, submitted, succeeded, downloaded.
    assert_eq!(summary.journal_writes, 80);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
        .collect();
    assert!(leftovers.is_empty());
}

/// SQLite is compiled only by the journal's default feature: never in a client's tree, and not
/// in veo3-jobs without its `sqlite` feature.
#[test]
fn sqlite_stays_out_of_the_clients_trees() {
    use crate::support::{cargo_tree, cargo_tree_with, in_tree};

    for client in ["veo3-reqwest", "veo3-core", "veo3-blocking"] {
        let tree = cargo_tree(client);
        assert!(!in_tree(&tree, "rusqlite"), "{client}:\n{tree}");
        assert!(!in_tree(&tree, "libsqlite3-sys"), "{client}:\n{tree}");
    }
    let jobs = cargo_tree("veo3-jobs");
    assert!(in_tree(&jobs, "rusqlite"), "the default journal:\n{jobs}");
    let bare = cargo_tree_with("veo3-jobs", &["--offline", "--no-default-features"]);
    assert!(!in_tree(&bare, "rusqlite"), "{bare}");
}
