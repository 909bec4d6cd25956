//! Integration tests: one engine for every journal. Several `veo3` processes on one journal
//! (a SQLite file, and where `VEO3_TEST_POSTGRES_URL` is set, a PostgreSQL schema) against one
//! sandbox: concurrent runs and resumes, workers sharing a file, a worker stopped (SIGSTOP)
//! past its lease and continued, a kill while jobs wait for their turn under the rate limit,
//! and `veo3 generate` in parallel on the default journal.
//!
//! What they assert is the promise: no task is billed twice by us, every task kie created
//! ends as a byte-identical file named in the journal (an extra task included), and a job is
//! reported unknown only when its owner is dead and its submit had no answer. Processes are
//! watched through the sandbox's counters (`wait_until`), their `--json` lines and the
//! journal; no sleep stands in for an event.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use veo3_jobs::{Job, JobQuery, JobState, PostgresStore, SqliteStore, StateKind, Store};
use veo3_sandbox::{Fault, Route, Sandbox, SandboxBuilder, SandboxHandle};

use crate::support::workspace_binary;

const KEY: &str = "sk-engine-test";

fn veo3_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| workspace_binary("veo3-cli", "veo3"))
}

/// A sandbox whose generations take 250-600 ms of real time, with kie's account limit (20 per
/// 10 s of service time: 20 per 100 ms here).
fn sandbox_builder() -> SandboxBuilder {
    Sandbox::builder().key(KEY).time_scale(0.01).seed(53)
}

/// The journal under test: a file in the workspace, or a PostgreSQL schema of its own.
enum Journal {
    File(PathBuf),
    Postgres {
        server: String,
        schema: String,
        url: String,
    },
}

impl Journal {
    /// The PostgreSQL journal, or `None` after one line saying `test` is skipped there.
    async fn postgres(test: &str) -> Option<Self> {
        // One line saying it is skipped where no server is given (CI always gives one).
        let server = crate::workers::server(test)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!("veo3_engine_{}_{nanos}", std::process::id());
        PostgresStore::connect_in_schema(&server, &schema)
            .await
            .expect("the test server answers");
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-csearch_path%3D{schema}");
        Some(Self::Postgres {
            server,
            schema,
            url,
        })
    }

    fn arg(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Postgres { url, .. } => url.clone(),
        }
    }

    async fn store(&self) -> Box<dyn Store> {
        match self {
            Self::File(path) => Box::new(SqliteStore::open(path).expect("journal opens")),
            Self::Postgres { server, schema, .. } => Box::new(
                PostgresStore::connect_in_schema(server, schema)
                    .await
                    .expect("journal opens"),
            ),
        }
    }

    /// Every job of the journal.
    async fn jobs(&self) -> Vec<Job> {
        self.store()
            .await
            .jobs(&JobQuery::default())
            .await
            .expect("journal reads")
    }

    async fn drop(self) {
        if let Self::Postgres { server, schema, .. } = self {
            PostgresStore::drop_schema(&server, &schema)
                .await
                .expect("schema dropped");
        }
    }
}

/// A temporary folder with batch files and output folders.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn file_journal(&self) -> Journal {
        Journal::File(self.dir.path().join("journal.db"))
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A batch file `name` of `count` prompts, distinct across files of distinct `name`s.
    fn prompts(&self, name: &str, count: usize) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.txt"));
        let text: String = (0..count)
            .map(|i| format!("{name}: a kite number {i} over a field\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `veo3 --json ARGS` against `sandbox` on `journal`, its output piped.
    fn command(&self, sandbox: &SandboxHandle, journal: &Journal, args: &[&str]) -> Command {
        let mut command = Command::new(veo3_binary());
        command
            .args(["--json", "--base-url", sandbox.api_url(), "--api-key", KEY])
            .args(args)
            .env("VEO3_JOURNAL", journal.arg())
            .env_remove("KIE_API_KEY")
            .env_remove("KIE_BASE_URL")
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// `batch run FILE --out-dir OUT` at `rate`, polling every 20 ms, with `extra` flags.
    fn run_args(file: &Path, out: &Path, rate: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "batch",
            "run",
            file.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
            "--rate",
            rate,
            "--concurrency",
            "100",
            "--poll-interval",
            "20ms",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }
}

impl Workspace {
    /// Starts `batch run` of `count` prompts of batch file `name` into folder `out` at `rate`.
    fn spawn_run(
        &self,
        sandbox: &SandboxHandle,
        journal: &Journal,
        (name, count, out): (&str, usize, &str),
        rate: &str,
    ) -> Child {
        let file = self.prompts(name, count);
        let run = Self::run_args(&file, &self.out(out), rate, &[]);
        self.command(sandbox, journal, &strs(&run))
            .spawn()
            .expect("veo3 starts")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs `command` to its end on a blocking thread.
async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("veo3 runs"))
        .await
        .expect("join")
}

/// Waits for a started process on a blocking thread.
async fn finish(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("reaped"))
        .await
        .expect("join")
}

/// The `--json` lines of `out`.
fn lines(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name}");
}

/// Waits (on the sandbox's counters, at most a minute) until `done` holds.
async fn until(sandbox: &SandboxHandle, what: &str, done: impl Fn(&veo3_sandbox::Stats) -> bool) {
    assert!(
        sandbox.wait_until(Duration::from_secs(60), done).await,
        "timed out waiting for {what}"
    );
}

async fn served(url: &str) -> Vec<u8> {
    reqwest::get(url)
        .await
        .expect("file host answers")
        .bytes()
        .await
        .expect("body")
        .to_vec()
}

/// The end of everything: every task the sandbox created belongs to exactly one journaled
/// job (an extra task included) and ends as a byte-identical file under it; no prompt of a
/// job that is not an extra task was billed twice; no job is unknown or unfinished. Returns
/// the extra tasks.
async fn every_task_is_one_file(sandbox: &SandboxHandle, journal: &Journal) -> Vec<Job> {
    let jobs = journal.jobs().await;
    let by_task: HashMap<&str, &Job> = jobs
        .iter()
        .filter_map(|j| j.state.task_id().map(|t| (t, j)))
        .collect();
    for job in &jobs {
        assert!(
            matches!(job.state, JobState::Downloaded { .. }),
            "job {} ({}) ended {}",
            job.id,
            job.name,
            job.state
        );
    }
    let tasks = sandbox.tasks();
    let mut billed: HashMap<String, usize> = HashMap::new();
    for task in &tasks {
        *billed
            .entry(task.prompt.clone().expect("a prompt"))
            .or_default() += 1;
        let job = by_task
            .get(task.task_id.as_str())
            .unwrap_or_else(|| panic!("task {} is in no job of the journal", task.task_id));
        let JobState::Downloaded {
            path, url, bytes, ..
        } = &job.state
        else {
            unreachable!()
        };
        let file = std::fs::read(path).expect("the file exists");
        assert_eq!(file.len() as u64, *bytes);
        assert!(file == served(url).await, "{} differs", path.display());
    }
    assert_eq!(
        tasks.len(),
        jobs.len(),
        "one task per job, extra tasks included"
    );
    let extras: Vec<Job> = jobs.into_iter().filter(|j| j.extra_of.is_some()).collect();
    for (prompt, count) in billed {
        let extra = extras.iter().filter(|j| j.request.prompt == prompt).count();
        assert_eq!(count, 1 + extra, "{prompt:?} billed {count} times");
    }
    extras
}

/// `batch run` in one terminal; a `batch resume` of the same batch and a second `batch run`
/// in two more, on the same SQLite journal, with the account's rate limit on. Every process
/// exits 0, each job is sent once, every task ends as a byte-identical file, no job is ever
/// reported unknown (every owner lives), and the account limit is never exceeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_and_a_resume_share_one_sqlite_journal() {
    let sandbox = sandbox_builder().start().await.expect("sandbox starts");
    let workspace = Workspace::new();
    let journal = workspace.file_journal();
    let running = workspace.spawn_run(&sandbox, &journal, ("first", 40, "videos"), "10/100ms");
    // The second terminal comes while the first run is sending.
    until(&sandbox, "the first run sending", |s| s.tasks_created >= 5).await;
    let resume = workspace
        .command(
            &sandbox,
            &journal,
            &["batch", "resume", "--batch", "1", "--lease", "5s"],
        )
        .spawn()
        .unwrap();
    let running2 = workspace.spawn_run(&sandbox, &journal, ("second", 20, "more"), "10/100ms");
    let mut all_lines = Vec::new();
    for (what, child) in [("run", running), ("resume", resume), ("run 2", running2)] {
        let out = finish(child).await;
        assert!(
            out.status.success(),
            "{what}: {}\n{}",
            text(&out.stderr),
            text(&out.stdout)
        );
        let lines = lines(&out);
        if what == "resume" {
            // It said which live process held which jobs, and left them to it.
            let held: Vec<_> = lines
                .iter()
                .filter(|l| l["event"] == "heldByOthers")
                .collect();
            assert!(!held.is_empty(), "{}", text(&out.stdout));
            assert!(
                held.iter()
                    .all(|l| l["jobs"].as_array().is_some_and(|j| !j.is_empty()))
            );
        }
        all_lines.extend(lines);
    }
    assert!(
        all_lines.iter().all(|l| l["state"] != "unknown"),
        "a job reported unknown while its owner lived"
    );
    let extras = every_task_is_one_file(&sandbox, &journal).await;
    assert!(extras.is_empty(), "{extras:?}");
    assert_eq!(sandbox.tasks().len(), 60);
    assert_eq!(sandbox.stats().answered_429, 0, "{:?}", sandbox.stats());
}

/// Two `batch work --until-empty` processes share one batch enqueued in a SQLite file, at the
/// sandbox's exact account limit: each job once, never answered 429, and both did work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_a_sqlite_file_and_one_account_limit() {
    // 20 per 10 s of service time is 20 per second here.
    let sandbox = sandbox_builder()
        .time_scale(0.1)
        .start()
        .await
        .expect("sandbox starts");
    let workspace = Workspace::new();
    let journal = workspace.file_journal();
    let file = workspace.prompts("shared", 60);
    let enqueue = Workspace::run_args(
        &file,
        &workspace.out("videos"),
        "20/1s",
        &["--enqueue-only"],
    );
    let out = output(workspace.command(&sandbox, &journal, &strs(&enqueue))).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(sandbox.stats().tasks_created, 0, "enqueueing sends nothing");
    let workers: Vec<Child> = (0..2)
        .map(|i| {
            workspace
                .command(
                    &sandbox,
                    &journal,
                    &[
                        "batch",
                        "work",
                        "--until-empty",
                        "--lease",
                        "5s",
                        "--worker-name",
                        &format!("w{i}"),
                    ],
                )
                .spawn()
                .unwrap()
        })
        .collect();
    let mut submits = Vec::new();
    for worker in workers {
        let out = finish(worker).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let summary = lines(&out).pop().expect("a summary");
        submits.push(summary["submits"].as_u64().expect("submits"));
    }
    every_task_is_one_file(&sandbox, &journal).await;
    assert_eq!(sandbox.tasks().len(), 60);
    assert_eq!(submits.iter().sum::<u64>(), 60, "{submits:?}");
    assert!(submits.iter().all(|s| *s > 0), "both worked: {submits:?}");
    assert_eq!(sandbox.stats().answered_429, 0, "{:?}", sandbox.stats());
}

/// A worker is stopped (SIGSTOP) with a generate request in flight (held by the sandbox) and
/// more jobs claimed, waiting for their turn; its lease (2 s) runs out. A `batch resume`
/// finishes the other jobs and, only once the stopped worker's grace is over too, reports the
/// one in flight unknown; `batch resume --resubmit-unknown` sends it again, as the user asked.
/// Then the stopped worker continues: it sends nothing for the jobs it lost, and the answer it
/// finds for its old request (a second billed task) is journaled as an extra task, which the
/// next resume downloads. Every task kie created ends as a file; none was lost.
async fn a_stopped_worker_sends_nothing_for_the_jobs_it_lost(journal: Journal) {
    let sandbox = sandbox_builder().start().await.expect("sandbox starts");
    let workspace = Workspace::new();
    let file = workspace.prompts("stopped", 6);
    // One turn per 300 ms: the stopped worker's next claimed jobs wait for theirs.
    let enqueue = Workspace::run_args(
        &file,
        &workspace.out("videos"),
        "1/300ms",
        &["--enqueue-only"],
    );
    let out = output(workspace.command(&sandbox, &journal, &strs(&enqueue))).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    sandbox.script_fault(Route::Generate, Fault::Latency(Duration::from_secs(2)));
    let sleeper = workspace
        .command(
            &sandbox,
            &journal,
            &[
                "batch",
                "work",
                "--until-empty",
                "--lease",
                "2s",
                "--worker-name",
                "sleeper",
            ],
        )
        .spawn()
        .unwrap();
    until(&sandbox, "the first generate held", |s| {
        s.faults("latency") >= 1
    })
    .await;
    signal(&sleeper, "STOP");

    // The others finish; the one in flight is unknown once the sleeper's lease and grace end.
    let resume = ["batch", "resume", "--batch", "1"];
    let first = output(workspace.command(&sandbox, &journal, &resume)).await;
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    let unknown: Vec<_> = lines(&first)
        .into_iter()
        .filter(|l| l["state"] == "unknown")
        .collect();
    assert_eq!(unknown.len(), 1, "the request in flight: {unknown:?}");
    // The user sends it again.
    let again = output(workspace.command(
        &sandbox,
        &journal,
        &["batch", "resume", "--batch", "1", "--resubmit-unknown"],
    ))
    .await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    let sent = sandbox.stats().requests(Route::Generate);
    assert_eq!(
        sandbox.tasks().len(),
        7,
        "6 jobs, one sent twice by the user's choice"
    );

    // The sleeper wakes: its lease is gone, it sends nothing, and keeps the answer it finds.
    signal(&sleeper, "CONT");
    let woke = finish(sleeper).await;
    assert!(
        !woke.status.success(),
        "a worker whose lease was lost stops with an error"
    );
    // It stops on its lost lease (or, on PostgreSQL, on the session the server ended under
    // the transaction it stalled in), after journaling what it had in flight.
    let stderr = text(&woke.stderr);
    assert!(
        stderr.contains("lease") || stderr.contains("connection closed"),
        "{stderr}"
    );
    assert_eq!(
        sandbox.stats().requests(Route::Generate),
        sent,
        "the woken worker sent nothing"
    );
    let extras: Vec<Value> = lines(&woke)
        .into_iter()
        .filter(|l| l["event"] == "extraTask")
        .collect();
    assert_eq!(extras.len(), 1, "{}", text(&woke.stdout));

    // The extra task is downloaded by the next resume; every task is a file.
    let last = output(workspace.command(&sandbox, &journal, &resume)).await;
    assert!(last.status.success(), "{}", text(&last.stderr));
    let extras = every_task_is_one_file(&sandbox, &journal).await;
    assert_eq!(extras.len(), 1);
    assert!(extras[0].name.ends_with(".extra-1"), "{}", extras[0].name);
    let status = output(workspace.command(&sandbox, &journal, &["batch", "status"])).await;
    let status: Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(status["extraTasks"].as_array().map(Vec::len), Some(1));
    journal.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_sends_nothing_for_the_jobs_it_lost_on_sqlite() {
    let workspace = Workspace::new();
    let journal = workspace.file_journal();
    a_stopped_worker_sends_nothing_for_the_jobs_it_lost(journal).await;
    drop(workspace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_sends_nothing_for_the_jobs_it_lost_on_postgres() {
    let Some(journal) =
        Journal::postgres("a_stopped_worker_sends_nothing_for_the_jobs_it_lost").await
    else {
        return;
    };
    a_stopped_worker_sends_nothing_for_the_jobs_it_lost(journal).await;
}

/// SIGKILL while jobs are claimed and waiting for their turn under the rate limit: the
/// resume finds no `unknown` job that was never sent. The sandbox's generate count at the
/// kill says which were sent; the resume sends each other job once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_jobs_wait_for_their_turn_leaves_none_unknown_that_was_not_sent() {
    let sandbox = sandbox_builder().start().await.expect("sandbox starts");
    let workspace = Workspace::new();
    let journal = workspace.file_journal();
    // One turn per 400 ms: most of the time, claimed jobs are waiting for theirs.
    let mut running = workspace.spawn_run(&sandbox, &journal, ("paced", 12, "videos"), "1/400ms");
    until(&sandbox, "three generates", |s| {
        s.requests(Route::Generate) >= 3
    })
    .await;
    running.kill().expect("SIGKILL");
    running.wait().expect("reaped");
    let resumed = output(workspace.command(&sandbox, &journal, &["batch", "resume"])).await;
    let jobs = journal.jobs().await;
    // A resume never sends an unknown job: a task for its prompt can only be the killed
    // run's, so every unknown job has one (it was sent), and no other.
    let sent: HashSet<String> = sandbox
        .tasks()
        .into_iter()
        .filter_map(|t| t.prompt)
        .collect();
    for job in jobs.iter().filter(|j| j.state.kind() == StateKind::Unknown) {
        assert!(
            sent.contains(&job.request.prompt),
            "job {} is unknown but was never sent",
            job.id
        );
    }
    // Every job that is not unknown was sent once and downloaded.
    let tasks = sandbox.tasks();
    for job in jobs.iter().filter(|j| j.state.kind() != StateKind::Unknown) {
        assert!(
            matches!(job.state, JobState::Downloaded { .. }),
            "job {} ended {}: {}",
            job.id,
            job.state,
            text(&resumed.stderr)
        );
        let billed = tasks
            .iter()
            .filter(|t| t.prompt.as_deref() == Some(job.request.prompt.as_str()))
            .count();
        assert_eq!(billed, 1, "job {}", job.id);
    }
    assert_eq!(
        resumed.status.success(),
        jobs.iter().all(|j| j.state.kind() != StateKind::Unknown),
        "{}",
        text(&resumed.stderr)
    );
}

/// `veo3 generate --out` in 8 processes at once on the default journal (in a data folder of
/// the test's own): 8 tasks, 8 files, no "database is locked", and each journal row finished
/// as downloaded with the file's size and SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_parallel_generates_share_the_default_journal() {
    let sandbox = sandbox_builder().start().await.expect("sandbox starts");
    let workspace = Workspace::new();
    let data = workspace.dir.path().join("data");
    let children: Vec<Child> = (0..8)
        .map(|i| {
            let mut command = Command::new(veo3_binary());
            command
                .args(["--json", "--base-url", sandbox.api_url(), "--api-key", KEY])
                .args(["generate", &format!("a paper plane number {i}"), "--out"])
                .arg(workspace.dir.path().join(format!("plane-{i}.mp4")))
                .args(["--poll-interval", "50ms"])
                .env("XDG_DATA_HOME", &data)
                .env("HOME", workspace.dir.path())
                .env_remove("VEO3_JOURNAL")
                .env_remove("KIE_API_KEY")
                .env_remove("KIE_BASE_URL")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            command.spawn().expect("veo3 starts")
        })
        .collect();
    for child in children {
        let out = finish(child).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("locked"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(sandbox.tasks().len(), 8);
    let journal = Journal::File(data.join("veo3").join("journal.db"));
    assert!(
        matches!(&journal, Journal::File(p) if p.exists()),
        "the default journal is under XDG_DATA_HOME"
    );
    let jobs = journal.jobs().await;
    assert_eq!(jobs.len(), 8);
    for job in &jobs {
        let JobState::Downloaded {
            path,
            bytes,
            sha256,
            ..
        } = &job.state
        else {
            panic!("job {} is {}", job.id, job.state);
        };
        let file = std::fs::read(path).expect("the file");
        assert_eq!(file.len() as u64, *bytes);
        assert_eq!(sha256, &veo3_jobs::sha256_file(path).await.unwrap());
    }
}

/// kie's early "record is null": every task of a frozen-clock sandbox answers it until the
/// test moves the clock. A batch run is killed once its tasks are being read; the resume takes
/// them over (reading each at once, as for any task of a dead worker) and, since the journal
/// says when each was created, waits the answer out inside kie's grace window instead of
/// ending there; once the clock moves, every job finishes, each sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_waits_out_an_early_record_is_null() {
    let sandbox = sandbox_builder()
        .time_scale(0.0)
        .rate_limit(None)
        .record_null_early(Duration::from_secs(60))
        .start()
        .await
        .expect("sandbox starts");
    let workspace = Workspace::new();
    let journal = workspace.file_journal();
    let mut running = workspace.spawn_run(&sandbox, &journal, ("early", 6, "videos"), "20/100ms");
    until(&sandbox, "every task created and read", |s| {
        s.tasks_created == 6 && s.faults("record-null-early") >= 6
    })
    .await;
    running.kill().expect("SIGKILL");
    running.wait().expect("reaped");
    let before = sandbox.stats().faults("record-null-early");
    let resume = workspace
        .command(&sandbox, &journal, &["batch", "resume"])
        .spawn()
        .unwrap();
    // The takeover reads the tasks while they are still invisible, and keeps waiting.
    until(&sandbox, "the takeover's reads", |s| {
        s.faults("record-null-early") >= before + 12
    })
    .await;
    sandbox.advance(Duration::from_secs(120));
    let out = finish(resume).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        lines(&out).iter().any(|l| l["event"] == "takenOver"),
        "{}",
        text(&out.stdout)
    );
    let extras = every_task_is_one_file(&sandbox, &journal).await;
    assert!(extras.is_empty());
    assert_eq!(sandbox.tasks().len(), 6);
}
