//! Integration tests: several `veo3 batch work` processes sharing one PostgreSQL journal,
//! against one sandbox with its account rate limit on.
//!
//! They run when `VEO3_TEST_POSTGRES_URL` is set (`.ci/run` sets it; locally
//! `postgres://postgres@127.0.0.1:5432/test`) and print one line saying they were skipped
//! otherwise. Each test works in a schema of its own (the URL's `search_path`), so they run
//! in parallel on one database. Kills are placed by watching a worker's `--json` lines, and
//! ends are waited for on the processes and the journal, never with sleeps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use veo3_jobs::{JobQuery, PostgresStore, StateKind, Store};
use veo3_sandbox::{Sandbox, SandboxHandle};

use crate::support::workspace_binary;

const KEY: &str = "sk-workers-test";

fn veo3_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| workspace_binary("veo3-cli", "veo3"))
}

/// The server's URL, or `None` after printing one line saying `test` is skipped.
pub(crate) fn server(test: &str) -> Option<String> {
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

/// A schema of the test's own, migrated, with the URL the workers use to reach it.
struct Journal {
    server: String,
    schema: String,
    url: String,
    store: PostgresStore,
}

impl Journal {
    async fn new(server: &str, test: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!("veo3_it_{test}_{}_{nanos}", std::process::id());
        let store = PostgresStore::connect_in_schema(server, &schema)
            .await
            .expect("the test server answers");
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-csearch_path%3D{schema}");
        Self {
            server: server.to_owned(),
            schema,
            url,
            store,
        }
    }

    async fn drop(self) {
        PostgresStore::drop_schema(&self.server, &self.schema)
            .await
            .expect("schema dropped");
    }
}

/// A temporary folder with the batch file and the output folder.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("videos")
    }

    fn prompts(&self, count: usize) -> PathBuf {
        let path = self.dir.path().join("prompts.txt");
        let text: String = (0..count)
            .map(|i| format!("a lantern number {i} on a river\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `veo3 --json ARGS` against `sandbox`, on `journal`.
    fn command(&self, sandbox: &SandboxHandle, journal: &Journal, args: &[&str]) -> Command {
        let mut command = Command::new(veo3_binary());
        command
            .args(["--json", "--base-url", sandbox.api_url(), "--api-key", KEY])
            .args(args)
            .env("VEO3_JOURNAL", &journal.url)
            .env_remove("KIE_API_KEY")
            .env_remove("KIE_BASE_URL")
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Journals `count` jobs with `batch run --enqueue-only`, at `rate`, polling every `poll`.
    fn enqueue(
        &self,
        sandbox: &SandboxHandle,
        journal: &Journal,
        count: usize,
        rate: &str,
        poll: &str,
    ) {
        let file = self.prompts(count);
        let out = self
            .command(
                sandbox,
                journal,
                &[
                    "batch",
                    "run",
                    file.to_str().unwrap(),
                    "--enqueue-only",
                    "--out-dir",
                    self.out().to_str().unwrap(),
                    "--rate",
                    rate,
                    "--concurrency",
                    &count.to_string(),
                    "--poll-interval",
                    poll,
                ],
            )
            .output()
            .expect("veo3 runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let result: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(result["jobs"], count);
        assert_eq!(sandbox.stats().tasks_created, 0, "enqueueing sends nothing");
    }

    /// `batch work --until-empty` with a short lease (2 s: renewed every 667 ms, which a
    /// loaded machine still keeps; a dead worker's jobs are taken over 2 s after its death).
    fn worker(&self, sandbox: &SandboxHandle, journal: &Journal, name: &str) -> Child {
        self.worker_with_lease(sandbox, journal, name, "2s")
    }

    fn worker_with_lease(
        &self,
        sandbox: &SandboxHandle,
        journal: &Journal,
        name: &str,
        lease: &str,
    ) -> Child {
        self.command(
            sandbox,
            journal,
            &[
                "batch",
                "work",
                "--until-empty",
                "--lease",
                lease,
                "--worker-name",
                name,
            ],
        )
        .spawn()
        .expect("veo3 starts")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A worker's `--json` lines and exit code, read to its end (on a blocking thread).
async fn finish(mut child: Child) -> (Option<i32>, Vec<Value>, String) {
    tokio::task::spawn_blocking(move || {
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
            text
        });
        let lines: Vec<Value> = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect();
        let status = child.wait().expect("reaped");
        (status.code(), lines, errors.join().unwrap_or_default())
    })
    .await
    .expect("join")
}

/// Checks that the sandbox made exactly one task per job with a task id (matching prompts
/// and task ids, none twice), and at most one per unknown job. Returns the journal's jobs.
async fn one_task_per_job(
    sandbox: &SandboxHandle,
    journal: &Journal,
) -> (Vec<veo3_jobs::Job>, usize) {
    let jobs = journal.store.jobs(&JobQuery::default()).await.unwrap();
    let tasks = sandbox.tasks();
    let mut by_prompt: HashMap<String, Vec<String>> = HashMap::new();
    for task in &tasks {
        by_prompt
            .entry(task.prompt.clone().unwrap_or_default())
            .or_default()
            .push(task.task_id.clone());
    }
    let mut unknown = 0;
    for job in &jobs {
        let made = by_prompt
            .get(&job.request.prompt)
            .cloned()
            .unwrap_or_default();
        match job.state.task_id() {
            Some(task) => assert_eq!(
                made,
                vec![task.to_owned()],
                "job {} ({}): one task, the journaled one",
                job.id,
                job.name
            ),
            None => {
                assert_eq!(job.state.kind(), StateKind::Unknown, "job {}", job.id);
                assert!(made.len() <= 1, "job {} sent twice: {made:?}", job.id);
                unknown += 1;
            }
        }
    }
    assert_eq!(tasks.len(), by_prompt.values().map(Vec::len).sum::<usize>());
    (jobs, unknown)
}

/// 3 worker processes, one Postgres journal, 300 jobs under the sandbox's account limit
/// (20 per 10 s of service time: 20 per second here): every job done once, one task per job,
/// no 429, and the makespan within 1.15x of the limit's lower bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_a_batch_and_one_account_limit() {
    let Some(server) = server("three_workers_share_a_batch_and_one_account_limit") else {
        return;
    };
    const JOBS: usize = 300;
    // A 2 s window: the shared limiter counts each send's window from its answer, which
    // costs one answer's latency per window; on a loaded machine that is tens of
    // milliseconds, a few percent of 2 s.
    let scale = 0.2;
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(scale)
        .seed(31)
        .start()
        .await
        .expect("sandbox starts");
    let journal = Journal::new(&server, "three").await;
    let workspace = Workspace::new();
    // Polls every 300 ms: 60-odd tasks generate at any time, and faster polls would only
    // load the machine (the makespan moves by at most one interval).
    workspace.enqueue(&sandbox, &journal, JOBS, "20/2s", "300ms");

    let started = Instant::now();
    let started_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let workers: Vec<Child> = (0..3)
        .map(|i| workspace.worker(&sandbox, &journal, &format!("w{i}")))
        .collect();
    let mut results = Vec::new();
    for worker in workers {
        results.push(finish(worker).await);
    }
    let exited = started.elapsed();
    let mut submits_by_worker = Vec::new();
    for (code, lines, stderr) in &results {
        assert_eq!(*code, Some(0), "{stderr}");
        let summary = lines.last().expect("a summary line");
        assert_eq!(summary["counts"]["downloaded"], JOBS, "{summary}");
        submits_by_worker.push(summary["submits"].as_u64().unwrap());
    }
    assert_eq!(submits_by_worker.iter().sum::<u64>(), JOBS as u64);
    assert!(
        submits_by_worker.iter().all(|n| *n > 0),
        "every worker submitted: {submits_by_worker:?}"
    );

    let (jobs, unknown) = one_task_per_job(&sandbox, &journal).await;
    assert_eq!(unknown, 0);
    assert!(
        jobs.iter().all(|j| j.state.kind() == StateKind::Downloaded),
        "every job downloaded"
    );
    let files: BTreeSet<_> = std::fs::read_dir(workspace.out())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".mp4"))
        .collect();
    assert_eq!(files.len(), JOBS);
    let stats = sandbox.stats();
    assert_eq!(stats.answered_429, 0, "{stats:?}");
    assert_eq!(stats.tasks_created, JOBS as u64);

    // The last of 300 submits cannot leave before 14 windows; its generation then takes the
    // model's time (veo3_fast: 30 s of service time).
    let window = Duration::from_secs(10).mul_f64(scale);
    let generation = Duration::from_secs(30).mul_f64(scale);
    let bound = window * (JOBS.div_ceil(20) as u32 - 1) + generation;
    let last = jobs
        .iter()
        .filter_map(|j| j.times.finished_ms)
        .max()
        .unwrap();
    let makespan = Duration::from_millis(u64::try_from(last - started_ms).unwrap());
    let ratio = makespan.as_secs_f64() / bound.as_secs_f64();
    println!(
        "3 workers, {JOBS} jobs: makespan {makespan:.2?} (workers exited after {exited:.2?}), \
         lower bound {bound:.2?}: {ratio:.3}x; submits per worker {submits_by_worker:?}"
    );
    assert!(
        ratio <= 1.15,
        "makespan {makespan:?} is {ratio:.3}x the bound {bound:?}"
    );
    journal.drop().await;
}

/// One of 3 workers is SIGKILLed while it waits on tasks: the others take its jobs over by
/// waiting on their task ids (no task is made twice), and the jobs it was submitting when it
/// died are unknown, reported by `batch status`, and never sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_jobs_are_finished_by_the_others_without_a_second_task() {
    let Some(server) =
        server("a_killed_workers_jobs_are_finished_by_the_others_without_a_second_task")
    else {
        return;
    };
    const JOBS: usize = 90;
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(0.1)
        .seed(37)
        .start()
        .await
        .expect("sandbox starts");
    let journal = Journal::new(&server, "kill").await;
    let workspace = Workspace::new();
    workspace.enqueue(&sandbox, &journal, JOBS, "20/1s", "100ms");

    let survivors: Vec<Child> = (0..2)
        .map(|i| workspace.worker(&sandbox, &journal, &format!("survivor{i}")))
        .collect();
    // The victim is killed right after its 10th submit was answered: it holds tasks it is
    // waiting on (a generation takes 3 s here), and likely submits in progress.
    let mut victim = workspace.worker(&sandbox, &journal, "victim");
    let victim_lines = tokio::task::spawn_blocking(move || {
        let stdout = victim.stdout.take().unwrap();
        let mut lines = Vec::new();
        let mut submitted = 0;
        let mut reader = BufReader::new(stdout).lines();
        for line in reader.by_ref().map_while(Result::ok) {
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if value["state"] == "submitted" {
                submitted += 1;
            }
            lines.push(value);
            if submitted == 10 {
                victim.kill().expect("SIGKILL");
                break;
            }
        }
        victim.wait().expect("reaped");
        // What it printed before it died and the loop above had not read yet.
        lines.extend(
            reader
                .map_while(Result::ok)
                .filter_map(|line| serde_json::from_str::<Value>(&line).ok()),
        );
        lines
    })
    .await
    .unwrap();
    // The jobs the victim claimed, and their last state as it printed them.
    let mut victim_jobs: BTreeMap<i64, String> = BTreeMap::new();
    for line in &victim_lines {
        if let (Some(job), Some(state)) = (line["job"].as_i64(), line["state"].as_str()) {
            victim_jobs.insert(job, state.to_owned());
        }
    }
    let waiting: BTreeSet<i64> = victim_jobs
        .iter()
        .filter(|(_, s)| *s == "submitted")
        .map(|(j, _)| *j)
        .collect();
    assert!(
        !waiting.is_empty(),
        "the victim died holding submitted tasks"
    );

    let mut taken_over = BTreeSet::new();
    let mut lost = BTreeSet::new();
    let mut downloaded_by_survivors = BTreeSet::new();
    for survivor in survivors {
        let (code, lines, stderr) = finish(survivor).await;
        // 1 when jobs ended unknown (the survivors report them), else 0.
        assert!(matches!(code, Some(0 | 1)), "{code:?} {stderr}");
        for line in &lines {
            if line["event"] == "takenOver" {
                taken_over.insert(line["job"].as_i64().unwrap());
            }
            if line["state"] == "downloaded" {
                downloaded_by_survivors.insert(line["job"].as_i64().unwrap());
            }
            // A claim announces the submits it found in progress under an expired lease.
            if line["state"] == "unknown" {
                lost.insert(line["job"].as_i64().unwrap());
            }
        }
    }
    // Every job the victim was waiting on was taken over and finished by a survivor.
    assert!(
        waiting.is_subset(&taken_over),
        "waiting {waiting:?}, taken over {taken_over:?}"
    );
    assert!(waiting.is_subset(&downloaded_by_survivors));

    let (jobs, unknown) = one_task_per_job(&sandbox, &journal).await;
    for job in &jobs {
        assert!(
            matches!(job.state.kind(), StateKind::Downloaded | StateKind::Unknown),
            "job {} ended {}",
            job.id,
            job.state
        );
        if job.state.kind() == StateKind::Unknown {
            // The victim journals `submitting` before it prints it, so it may have died
            // between the two: its last line for the job is `submitting` or nothing. The
            // survivors' claims found it in progress under the victim's expired lease.
            assert!(
                matches!(
                    victim_jobs.get(&job.id.0).map(String::as_str),
                    None | Some("submitting")
                ) && lost.contains(&job.id.0),
                "only the victim's submits in progress become unknown (job {}: victim printed \
                 {:?}, a survivor announced it unknown: {})",
                job.id,
                victim_jobs.get(&job.id.0),
                lost.contains(&job.id.0)
            );
        }
    }
    // Pacing is the other test's subject (a 429 here would only put a job back in the queue).
    let stats = sandbox.stats();

    // The unknown jobs are reported, with what to do.
    let status = workspace
        .command(&sandbox, &journal, &["batch", "status"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["unknown"].as_array().unwrap().len(), unknown);
    assert_eq!(status["counts"]["downloaded"], JOBS - unknown);
    println!(
        "killed worker: {} jobs taken over, {unknown} unknown, {} tasks for {JOBS} jobs, {} answers of 429",
        taken_over.len(),
        stats.tasks_created,
        stats.answered_429
    );
    journal.drop().await;
}

/// Ctrl-C stops a worker gracefully: it finishes its submits in progress (journaling their
/// task ids), gives its jobs back and exits 130; the next worker waits on those tasks at once,
/// without waiting for the stopped worker's (30 s) lease to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_gives_its_tasks_back_at_once() {
    let Some(server) = server("a_stopped_worker_gives_its_tasks_back_at_once") else {
        return;
    };
    const JOBS: usize = 40;
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(0.1)
        .seed(43)
        .start()
        .await
        .expect("sandbox starts");
    let journal = Journal::new(&server, "stop").await;
    let workspace = Workspace::new();
    workspace.enqueue(&sandbox, &journal, JOBS, "20/1s", "100ms");
    let mut first = workspace.worker_with_lease(&sandbox, &journal, "first", "30s");
    let (code, first_lines) = tokio::task::spawn_blocking(move || {
        let stdout = first.stdout.take().unwrap();
        let mut lines = Vec::new();
        let mut submitted = 0;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if value["state"] == "submitted" {
                submitted += 1;
                if submitted == 5 {
                    Command::new("kill")
                        .args(["-INT", &first.id().to_string()])
                        .status()
                        .unwrap();
                }
            }
            lines.push(value);
        }
        (first.wait().expect("reaped").code(), lines)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(130));
    let waiting: BTreeSet<i64> = first_lines
        .iter()
        .filter(|l| l["state"] == "submitted")
        .filter_map(|l| l["job"].as_i64())
        .collect();
    assert!(waiting.len() >= 5);

    let started = Instant::now();
    let (code, lines, stderr) = finish(workspace.worker(&sandbox, &journal, "second")).await;
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{stderr}");
    let taken: BTreeSet<i64> = lines
        .iter()
        .filter(|l| l["event"] == "takenOver")
        .filter_map(|l| l["job"].as_i64())
        .collect();
    // Every task the first worker was waiting on, and no other job, was taken over.
    let unfinished: BTreeSet<i64> = waiting
        .iter()
        .copied()
        .filter(|j| {
            !first_lines
                .iter()
                .any(|l| l["job"] == *j && l["state"] == "downloaded")
        })
        .collect();
    assert_eq!(taken, unfinished);
    assert!(
        took < Duration::from_secs(20),
        "the second worker did not wait for the first one's lease: {took:?}"
    );
    let (jobs, unknown) = one_task_per_job(&sandbox, &journal).await;
    assert_eq!(unknown, 0, "submits in progress at Ctrl-C were finished");
    assert!(jobs.iter().all(|j| j.state.kind() == StateKind::Downloaded));
    assert_eq!(sandbox.stats().tasks_created, JOBS as u64);
    journal.drop().await;
}

/// `batch status` and `jobs list` show every worker's jobs; `batch work` also takes a journal
/// file (workers on one machine share it), and with nothing to do exits at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_of_a_shared_journal_and_work_on_a_file() {
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(0.01)
        .seed(41)
        .start()
        .await
        .expect("sandbox starts");
    let workspace = Workspace::new();
    let mut file_worker = Command::new(veo3_binary());
    file_worker
        .args(["--base-url", sandbox.api_url(), "--api-key", KEY])
        .args(["batch", "work", "--until-empty", "--journal"])
        .arg(workspace.dir.path().join("journal.db"));
    let empty = file_worker.output().unwrap();
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty.stderr));
    assert!(workspace.dir.path().join("journal.db").exists());

    let Some(server) = server("views_of_a_shared_journal_and_work_on_a_file") else {
        return;
    };
    let journal = Journal::new(&server, "views").await;
    workspace.enqueue(&sandbox, &journal, 12, "20/100ms", "20ms");
    let workers: Vec<Child> = (0..2)
        .map(|i| workspace.worker(&sandbox, &journal, &format!("v{i}")))
        .collect();
    for worker in workers {
        let (code, _, stderr) = finish(worker).await;
        assert_eq!(code, Some(0), "{stderr}");
    }
    let list = workspace
        .command(&sandbox, &journal, &["jobs", "list"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed: Vec<Value> = text(&list.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 12);
    assert!(listed.iter().all(|j| j["state"] == "downloaded"));
    let status = workspace
        .command(&sandbox, &journal, &["batch", "status"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["counts"]["downloaded"], 12);
    assert!(status["unknown"].as_array().unwrap().is_empty());
    journal.drop().await;
}
