//! Exact end-state checks and the crash tests built on them.
//!
//! [`check`] matches the journal's jobs with the sandbox's list of every billed task it
//! created (`SandboxHandle::tasks`), by prompt (every batch here has distinct prompts): each
//! task belongs to one job, no job has two, every job with a task id holds the id of its one
//! task, and its end is the one the sandbox scripted for that task.
//!
//! The crash tests drive a frozen-clock sandbox, so nothing finishes unless the test moves the
//! clock, and choose each kill point by what they can observe: a `--json` state-change line,
//! a scripted latency on a generate request or a stall half-way through a download reached
//! (the sandbox's counters, awaited with `wait_until`), the journal and the output folder.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use veo3_jobs::{JobId, JobQuery, JobState, SqliteStore, StateKind, Store as _};
use veo3_sandbox::{Fault, Outcome, Route, TaskKind};

use super::*;

/// How long any awaited condition may take before the test fails, naming it.
const DEADLINE: Duration = Duration::from_secs(60);

/// How a checked batch ended.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    pub(super) downloaded: usize,
    pub(super) failed: usize,
    pub(super) unknown: Vec<JobId>,
    /// Unknown jobs whose request had reached the sandbox (a task exists for them).
    pub(super) unknown_billed: usize,
}

/// The journal's jobs of its latest batch.
pub(super) async fn journal_jobs(workspace: &Workspace) -> Vec<veo3_jobs::Job> {
    let store = SqliteStore::open(workspace.journal()).expect("journal opens");
    let batch = store
        .latest_batch()
        .await
        .expect("journal reads")
        .expect("a batch");
    store
        .jobs(&JobQuery::batch(batch.id))
        .await
        .expect("journal reads")
}

/// Checks the end of a batch: every job downloaded, failed as the sandbox scripted its task,
/// or unknown (and every job in `must_be_unknown` unknown); exactly one task per job that
/// reached the sandbox and none for anything else; every file byte-identical to what the file
/// host serves, with its journaled size and SHA-256; no `.part` left; the manifest agrees.
pub(super) async fn check(
    sandbox: &SandboxHandle,
    workspace: &Workspace,
    jobs: usize,
    must_be_unknown: &HashSet<JobId>,
) -> Verdict {
    let journal = journal_jobs(workspace).await;
    assert_eq!(journal.len(), jobs);
    let tasks = sandbox.tasks();
    assert!(
        tasks.iter().all(|t| t.kind == TaskKind::Generate),
        "only generations were asked for: {tasks:?}"
    );
    let mut by_prompt: HashMap<String, Vec<String>> = HashMap::new();
    for task in &tasks {
        let prompt = task.prompt.clone().expect("a generation has a prompt");
        by_prompt
            .entry(prompt)
            .or_default()
            .push(task.task_id.clone());
    }
    let prompts: HashSet<&str> = journal.iter().map(|j| j.request.prompt.as_str()).collect();
    assert_eq!(prompts.len(), jobs, "the batch's prompts are distinct");
    for (prompt, ids) in &by_prompt {
        assert!(
            prompts.contains(prompt.as_str()),
            "a task for no job: {prompt:?}"
        );
        assert_eq!(
            ids.len(),
            1,
            "{prompt:?} was billed {} times: {ids:?}",
            ids.len()
        );
    }
    let mut verdict = Verdict::default();
    for job in &journal {
        let task = by_prompt.get(&job.request.prompt).map(|ids| ids[0].clone());
        if must_be_unknown.contains(&job.id) {
            assert_eq!(
                job.state,
                JobState::Unknown,
                "job {} was submitting at a kill",
                job.id
            );
        }
        match &job.state {
            JobState::Downloaded {
                task_id,
                path,
                bytes,
                sha256,
                url,
            } => {
                assert_eq!(task.as_deref(), Some(task_id.as_str()), "job {}", job.id);
                let info = sandbox.task(task_id).expect("the task exists");
                assert_eq!(info.outcome, Outcome::Success, "job {} downloaded", job.id);
                let file = std::fs::read(path).expect("the downloaded file exists");
                assert!(
                    file == served(url).await,
                    "{} differs from what {url} serves",
                    path.display()
                );
                assert_eq!(*bytes, file.len() as u64);
                assert_eq!(*sha256, sha256_hex(&file));
                verdict.downloaded += 1;
            }
            JobState::Failed {
                task_id: Some(task_id),
                code,
                ..
            } => {
                assert_eq!(task.as_deref(), Some(task_id.as_str()), "job {}", job.id);
                let info = sandbox.task(task_id).expect("the task exists");
                let scripted = info.outcome.error().map(|(code, _)| code);
                assert!(
                    scripted.is_some(),
                    "job {} failed, its task succeeded",
                    job.id
                );
                assert_eq!(*code, scripted, "job {} failed as scripted", job.id);
                verdict.failed += 1;
            }
            JobState::Unknown => {
                verdict.unknown.push(job.id);
                verdict.unknown_billed += usize::from(task.is_some());
            }
            other => panic!("job {} ended {other}", job.id),
        }
    }
    assert!(part_files(&workspace.out()).is_empty(), "a .part remains");
    let sidecars: Vec<_> = std::fs::read_dir(workspace.out())
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".part.json"))
                .collect()
        })
        .unwrap_or_default();
    assert!(sidecars.is_empty(), "resume sidecars remain: {sidecars:?}");
    // The manifest describes the journal.
    let manifest: BTreeMap<i64, String> = workspace
        .jobs()
        .iter()
        .map(|j| {
            (
                j["job"].as_i64().expect("job id"),
                j["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect();
    let journaled: BTreeMap<i64, String> = journal
        .iter()
        .map(|j| (j.id.0, j.state.kind().as_str().to_owned()))
        .collect();
    assert_eq!(manifest, journaled);
    assert_eq!(
        tasks.len(),
        verdict.downloaded + verdict.failed + verdict.unknown_billed,
        "one task per job that reached the sandbox"
    );
    verdict
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `veo3 --json` child whose stdout lines are collected as they come.
struct Running {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<Value>>>,
    seen: tokio::sync::watch::Receiver<usize>,
    reader: std::thread::JoinHandle<()>,
}

impl Running {
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("veo3 starts");
        let stdout = child.stdout.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, seen) = tokio::sync::watch::channel(0);
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let mut lines = sink.lock().expect("lines");
                    lines.push(value);
                    let _ = tx.send(lines.len());
                }
            }
        });
        Self {
            child,
            lines,
            seen,
            reader,
        }
    }

    /// Waits until `done` holds for the lines so far (or the child's output ends).
    async fn until_lines(&mut self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if done(&self.lines.lock().expect("lines")) {
                return;
            }
            match tokio::time::timeout_at(deadline, self.seen.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("veo3 ended before {what}"),
                Err(_) => panic!("no {what} within {DEADLINE:?}"),
            }
        }
    }

    /// SIGKILL; the lines it printed.
    fn kill(mut self) -> Vec<Value> {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
        self.reader.join().expect("reader");
        std::mem::take(&mut *self.lines.lock().expect("lines"))
    }

    /// SIGINT, as Ctrl-C sends.
    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the exit; the status and the lines.
    async fn finish(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        tokio::task::spawn_blocking(move || {
            let status = self.child.wait().expect("reaped");
            self.reader.join().expect("reader");
            let lines = std::mem::take(&mut *self.lines.lock().expect("lines"));
            (status, lines)
        })
        .await
        .expect("join")
    }
}

fn count_state(lines: &[Value], state: &str) -> usize {
    lines.iter().filter(|l| l["state"] == state).count()
}

/// Waits (re-checking on every sandbox counter change) until `done` holds.
async fn until_stats(
    sandbox: &SandboxHandle,
    what: &str,
    done: impl Fn(&veo3_sandbox::Stats) -> bool,
) {
    assert!(
        sandbox.wait_until(DEADLINE, done).await,
        "no {what} within {DEADLINE:?}: {:?}",
        sandbox.stats()
    );
}

/// Waits until some `.part` in `dir` holds at least `bytes` bytes (the file system tells
/// nobody, so it is looked at every few milliseconds, up to the deadline).
async fn until_part_holds(dir: &Path, bytes: u64) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    loop {
        let held = part_files(dir)
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .any(|m| m.len() >= bytes);
        if held {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let files: Vec<String> = std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| {
                            let len = e.metadata().map_or(0, |m| m.len());
                            format!("{} {len}", e.file_name().to_string_lossy())
                        })
                        .filter(|f| !f.contains(".mp4 600000"))
                        .collect()
                })
                .unwrap_or_default();
            panic!(
                "no .part of {bytes} bytes in {} within {DEADLINE:?}; besides finished videos: {files:?}",
                dir.display()
            );
        }
        tick.tick().await;
    }
}

/// Results of this many bytes, of which a download stalls after half.
const RESULT_BYTES: u64 = 600_000;

/// What a download stalled half-way has surely written into its `.part`: the half, less what
/// the client's 256 KiB write buffer may still hold.
const FLUSHED: u64 = RESULT_BYTES / 2 - 256 * 1024;

/// The crash tests' sandbox: a frozen clock (tasks finish only when the test advances it),
/// no account rate limit (a frozen window would never slide; pacing has its own test),
/// results of [`RESULT_BYTES`], and scripted ends: about 10% of the tasks fail moderation and
/// 5% fail generation, drawn from the seed.
fn frozen_sandbox() -> SandboxBuilder {
    let outcomes: FaultPlan = "generate:moderation=0.1,generate:failed=0.05"
        .parse()
        .expect("plan");
    Sandbox::builder()
        .key(KEY)
        .time_scale(0.0)
        .seed(29)
        .rate_limit(None)
        .result_bytes(Some(RESULT_BYTES))
        .faults(outcomes)
}

/// `batch run` with room to observe: 16 in flight, polls every 50 ms.
fn crash_args(workspace: &Workspace, file: &Path) -> Vec<String> {
    let mut args = workspace.run_args(file);
    for (flag, value) in [("--concurrency", "16"), ("--poll-interval", "50ms")] {
        let at = args.iter().position(|a| a == flag).expect("flag");
        args[at + 1] = value.into();
    }
    args
}

/// Where a crash round stops the child.
#[derive(Clone, Copy, Debug)]
enum Point {
    /// A generate request held by a scripted latency (its job journaled `submitting`).
    Submit,
    /// After this many `submitted` lines of this run.
    Submitted(usize),
    /// Once the jobs in flight have polled this many more times.
    Polls(u64),
    /// A download stalled half-way, its `.part` holding the first half.
    Download,
}

/// Starts `command`, stops it at `point`, and returns its lines.
async fn stop_at(
    sandbox: &SandboxHandle,
    workspace: &Workspace,
    command: Command,
    point: Point,
    ctrl_c: bool,
) -> Vec<Value> {
    let stats = sandbox.stats();
    match point {
        Point::Submit => {
            sandbox.script_fault(Route::Generate, Fault::Latency(Duration::from_secs(2)))
        }
        // The next three downloads stop half-way for longer than any round lasts.
        Point::Download => {
            sandbox.script_faults(Route::Download, Fault::Stall(Duration::from_secs(30)), 3);
        }
        _ => {}
    }
    let mut running = Running::spawn(command);
    match point {
        Point::Submit => {
            let before = stats.faults("latency");
            until_stats(sandbox, "generate request held", |s| {
                s.faults("latency") > before
            })
            .await;
        }
        Point::Submitted(n) => {
            running
                .until_lines(&format!("{n} submitted lines"), |lines| {
                    count_state(lines, "submitted") >= n
                })
                .await;
        }
        Point::Polls(n) => {
            let before = stats.requests(Route::RecordInfo);
            until_stats(sandbox, "polls", |s| {
                s.requests(Route::RecordInfo) >= before + n
            })
            .await;
        }
        Point::Download => {
            let before = stats.faults("stall");
            until_stats(sandbox, "stalled download", |s| s.faults("stall") > before).await;
            until_part_holds(&workspace.out(), FLUSHED).await;
        }
    }
    let lines = if ctrl_c {
        running.interrupt();
        let (status, lines) = running.finish().await;
        assert_eq!(status.code(), Some(130), "Ctrl-C exits 130");
        lines
    } else {
        running.kill()
    };
    // A scripted stall or latency this round did not reach stays out of the next.
    sandbox.clear_scripts();
    lines
}

/// Moves the sandbox's clock by a generation's length (30 s of service time) every 50 ms until
/// dropped: for the rounds that must see tasks finish. (Result links live 24 h of service
/// time, far beyond what a test run advances.)
struct Ticker(tokio::task::JoinHandle<()>);

impl Ticker {
    fn start(sandbox: &Arc<SandboxHandle>) -> Self {
        let sandbox = sandbox.clone();
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                sandbox.advance(Duration::from_secs(30));
            }
        }))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the journal says right after a stop.
async fn states_now(workspace: &Workspace) -> BTreeMap<StateKind, HashSet<JobId>> {
    let mut states: BTreeMap<StateKind, HashSet<JobId>> = BTreeMap::new();
    for job in journal_jobs(workspace).await {
        states.entry(job.state.kind()).or_default().insert(job.id);
    }
    states
}

/// A 100-job batch SIGKILLed at ten points (three during submits, three during waits, four
/// during downloads, each confirmed in the journal or on disk), resumed each time; then
/// finished. Every job ends downloaded, failed as the sandbox scripted, or unknown; exactly
/// one task per job that reached the sandbox; every file intact; no `.part` left; the jobs
/// journaled `submitting` at a kill end unknown and are never sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_killed_at_ten_points_resumes_without_losing_or_rebilling_a_video() {
    let sandbox = Arc::new(start(frozen_sandbox()).await);
    let workspace = Workspace::new();
    let file = workspace.prompts(100);
    let journal = workspace.journal().to_str().expect("utf-8").to_owned();
    let resume = ["batch", "resume", "--journal", journal.as_str()];
    // (where, whether the clock moves first so that tasks finish and slots free up)
    let points = [
        (Point::Submit, false),
        (Point::Submitted(10), false),
        (Point::Submit, false),
        (Point::Polls(40), false),
        (Point::Download, true),
        (Point::Submit, true),
        (Point::Download, true),
        (Point::Polls(40), false),
        (Point::Download, true),
        (Point::Download, true),
    ];
    let mut submitting_at_kills: HashSet<JobId> = HashSet::new();
    for (round, (point, advance)) in points.into_iter().enumerate() {
        if advance {
            sandbox.advance(Duration::from_secs(60));
        }
        let command = if round == 0 {
            workspace.command(&sandbox, &args_of(&crash_args(&workspace, &file)))
        } else {
            workspace.command(&sandbox, &resume)
        };
        let lines = stop_at(&sandbox, &workspace, command, point, false).await;
        // Nothing journaled `submitting` at an earlier kill is sent again.
        for line in lines.iter().filter(|l| l["state"] == "submitting") {
            let job = JobId(line["job"].as_i64().expect("job id"));
            assert!(
                !submitting_at_kills.contains(&job),
                "round {round}: job {job} sent again"
            );
        }
        let states = states_now(&workspace).await;
        let held = |kind| states.get(&kind).map_or(0, HashSet::len);
        match point {
            Point::Submit => assert!(
                held(StateKind::Submitting) >= 1,
                "round {round}: {states:?}"
            ),
            Point::Submitted(_) | Point::Polls(_) => {
                assert!(held(StateKind::Submitted) >= 1, "round {round}: {states:?}");
            }
            Point::Download => {
                assert!(held(StateKind::Succeeded) >= 1, "round {round}: {states:?}");
                assert!(!part_files(&workspace.out()).is_empty(), "round {round}");
            }
        }
        submitting_at_kills.extend(states.get(&StateKind::Submitting).into_iter().flatten());
    }
    let ticker = Ticker::start(&sandbox);
    let (status, lines) = Running::spawn(workspace.command(&sandbox, &resume))
        .finish()
        .await;
    drop(ticker);
    for line in lines.iter().filter(|l| l["state"] == "submitting") {
        let job = JobId(line["job"].as_i64().expect("job id"));
        assert!(!submitting_at_kills.contains(&job), "job {job} sent again");
    }
    let verdict = check(&sandbox, &workspace, 100, &submitting_at_kills).await;
    assert!(
        verdict.failed >= 1,
        "some tasks were scripted to fail: {verdict:?}"
    );
    assert!(verdict.downloaded >= 50, "{verdict:?}");
    let unknown: HashSet<JobId> = verdict.unknown.iter().copied().collect();
    assert_eq!(
        unknown, submitting_at_kills,
        "exactly the jobs submitting at a kill are unknown"
    );
    // Unknown jobs are reported, with what to do, and not resubmitted.
    assert_eq!(status.code(), Some(1));
    let report = output(workspace.command(&sandbox, &["batch", "status"])).await;
    let report: Value = serde_json::from_slice(&report.stdout).expect("JSON");
    let reported: HashSet<JobId> = report["unknown"]
        .as_array()
        .expect("unknown jobs")
        .iter()
        .map(|j| JobId(j["job"].as_i64().expect("id")))
        .collect();
    assert_eq!(reported, unknown);
    assert!(
        report["unknownAdvice"]
            .as_str()
            .expect("advice")
            .contains("--resubmit-unknown")
    );
}

/// Ctrl-C during a submit held by the sandbox, and again half-way through a download; each
/// time resumed. A submit in flight is finished and journaled, never abandoned, so no job is
/// unknown; the stopped download is finished by the resume; the end is exact as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_interrupted_by_ctrl_c_resumes_to_the_same_result() {
    let sandbox = Arc::new(start(frozen_sandbox()).await);
    let workspace = Workspace::new();
    let file = workspace.prompts(40);
    let journal = workspace.journal().to_str().expect("utf-8").to_owned();
    let resume = ["batch", "resume", "--journal", journal.as_str()];
    let command = workspace.command(&sandbox, &args_of(&crash_args(&workspace, &file)));
    let lines = stop_at(&sandbox, &workspace, command, Point::Submit, true).await;
    let states = states_now(&workspace).await;
    assert!(!states.contains_key(&StateKind::Submitting), "{states:?}");
    assert!(!states.contains_key(&StateKind::Unknown), "{states:?}");
    assert!(
        states
            .get(&StateKind::Pending)
            .is_some_and(|p| !p.is_empty()),
        "Ctrl-C stopped submitting: {states:?}"
    );
    assert!(count_state(&lines, "submitted") >= 1);

    sandbox.advance(Duration::from_secs(60));
    let command = workspace.command(&sandbox, &resume);
    stop_at(&sandbox, &workspace, command, Point::Download, true).await;
    let states = states_now(&workspace).await;
    assert!(!states.contains_key(&StateKind::Unknown), "{states:?}");
    assert!(states.contains_key(&StateKind::Succeeded), "{states:?}");

    let ticker = Ticker::start(&sandbox);
    let (status, _) = Running::spawn(workspace.command(&sandbox, &resume))
        .finish()
        .await;
    drop(ticker);
    let verdict = check(&sandbox, &workspace, 40, &HashSet::new()).await;
    assert!(verdict.unknown.is_empty(), "{verdict:?}");
    assert_eq!(sandbox.tasks().len(), 40, "one task per job");
    assert_eq!(
        status.success(),
        verdict.failed == 0,
        "a batch with failed jobs exits 1"
    );
}
