//! Integration tests: the batch runner (veo3-jobs) against the sandbox over loopback HTTP,
//! with a SQLite journal in a temporary folder.

use std::sync::Arc;
use std::time::Duration;

use veo3_jobs::{
    BatchSettings, JobQuery, JobState, NewJob, Runner, RunnerOptions, SqliteStore, StateKind,
    Store, WorkOptions,
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
        .work(WorkOptions::batch(KEY, batch))
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

/// A file at a job's name when the runner comes to download it: the job's own (byte-identical
/// to its source, as a run killed between the download's rename and the journal write leaves
/// it) is adopted without being rewritten; any other file is left alone and the job stays
/// resumable; a client allowed to overwrite (`--force`) replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_adopts_its_own_file_and_protects_any_other() {
    use veo3_core::Veo3Api as _;

    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(0.0)
        .seed(12)
        .start()
        .await
        .expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("journal.db")).unwrap());
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let batch = store.create_batch(&settings(&out), &jobs(3)).await.unwrap();
    let client = client(&sandbox);
    // Each job submitted and finished by hand: journaled `succeeded`, not yet downloaded.
    let mut urls = Vec::new();
    for job in store.jobs(&JobQuery::batch(batch)).await.unwrap() {
        store
            .transition(job.id, &JobState::Submitting)
            .await
            .unwrap();
        let task_id = client.generate(&job.request).await.unwrap().task_id;
        store
            .transition(
                job.id,
                &JobState::Submitted {
                    task_id: task_id.clone(),
                },
            )
            .await
            .unwrap();
        assert!(sandbox.complete_now(&task_id));
        let record = client.record_info(&task_id).await.unwrap();
        let found = record.video_urls().to_vec();
        store
            .transition(
                job.id,
                &JobState::Succeeded {
                    task_id,
                    urls: found.clone(),
                    upgraded: false,
                },
            )
            .await
            .unwrap();
        urls.push(found[0].clone());
    }
    let own = veo3_jobs::job_file(&out, "job-000");
    let foreign = veo3_jobs::job_file(&out, "job-001");
    let served = reqwest::get(&urls[0]).await.unwrap().bytes().await.unwrap();
    std::fs::write(&own, &served).unwrap();
    std::fs::write(&foreign, b"someone else's video").unwrap();
    let own_modified = std::fs::metadata(&own).unwrap().modified().unwrap();

    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    let summary = Runner::new(client.clone(), store.clone(), RunnerOptions::default())
        .on_event(move |event| sink.lock().unwrap().push(event.clone()))
        .work(WorkOptions::batch(KEY, batch))
        .await
        .expect("the batch runs");
    assert_eq!(summary.submits, 0, "nothing is sent again");
    let finished = store.jobs(&JobQuery::batch(batch)).await.unwrap();
    let JobState::Downloaded {
        path,
        bytes,
        sha256,
        ..
    } = &finished[0].state
    else {
        panic!("job-000 is {}", finished[0].state);
    };
    assert_eq!(path, &own);
    assert_eq!(*bytes, served.len() as u64);
    assert_eq!(sha256, &sha256_hex(&served));
    assert_eq!(
        std::fs::metadata(&own).unwrap().modified().unwrap(),
        own_modified,
        "adopted as it was, not rewritten"
    );
    assert_eq!(
        finished[1].state.kind(),
        StateKind::Succeeded,
        "left resumable"
    );
    assert_eq!(std::fs::read(&foreign).unwrap(), b"someone else's video");
    let told = events.lock().unwrap().iter().any(|event| {
        matches!(event, veo3_jobs::RunEvent::Retryable { job, message }
            if *job == finished[1].id && message.contains("job-001.mp4 exists") && message.contains("--force"))
    });
    assert!(
        told,
        "the job names the file in the way: {:?}",
        events.lock().unwrap()
    );
    assert_eq!(finished[2].state.kind(), StateKind::Downloaded);

    // With overwrite allowed (the CLI's --force), the other file is replaced.
    let forcing = Client::builder()
        .api_key(KEY)
        .base_url(sandbox.api_url())
        .download_policy(veo3_core::download::DownloadPolicy::default().with_overwrite(true))
        .build()
        .unwrap();
    Runner::new(forcing, store.clone(), RunnerOptions::default())
        .work(WorkOptions::batch(KEY, batch))
        .await
        .expect("the batch runs");
    let job = store.job(finished[1].id).await.unwrap().unwrap();
    assert_eq!(job.state.kind(), StateKind::Downloaded);
    let replaced = reqwest::get(&urls[1]).await.unwrap().bytes().await.unwrap();
    assert_eq!(std::fs::read(&foreign).unwrap(), replaced.to_vec());
}
