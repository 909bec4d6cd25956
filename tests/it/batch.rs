//! Integration tests: `veo3 batch` and `veo3 jobs` as child processes against the sandbox,
//! each with its journal and output folder in a temporary directory (never the user's).
//!
//! Crash tests (`batch/exact.rs`) kill the child at points chosen by watching its `--json`
//! lines (one per journaled state change) and the sandbox's counters (a scripted stall on a
//! generate or a download reached), so the kill lands at a known place without any sleep.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use veo3_sandbox::{FaultPlan, Sandbox, SandboxBuilder, SandboxHandle};

mod exact;

use crate::support::workspace_binary;

const KEY: &str = "sk-batch-test";

fn veo3_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| workspace_binary("veo3-cli", "veo3"))
}

/// A sandbox whose generations take 250-600 ms of real time, and whose rate limit (20 per
/// 10 s of service time) is 20 per 100 ms of real time.
fn sandbox_builder() -> SandboxBuilder {
    Sandbox::builder().key(KEY).time_scale(0.01).seed(23)
}

async fn start(builder: SandboxBuilder) -> SandboxHandle {
    builder.start().await.expect("sandbox starts")
}

/// A temporary folder with a journal, an output folder and a batch file.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn journal(&self) -> PathBuf {
        self.dir.path().join("journal.db")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("videos")
    }

    /// A plain-text batch of `count` distinct prompts.
    fn prompts(&self, count: usize) -> PathBuf {
        let path = self.dir.path().join("prompts.txt");
        let text: String = (0..count)
            .map(|i| format!("a paper boat number {i} on a pond\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `veo3 --json ARGS` against `sandbox`, with this workspace's journal.
    fn command(&self, sandbox: &SandboxHandle, args: &[&str]) -> Command {
        let mut command = Command::new(veo3_binary());
        command
            .args(["--json", "--base-url", sandbox.api_url(), "--api-key", KEY])
            .args(args)
            .env("VEO3_JOURNAL", self.journal())
            .env("KIE_UPLOAD_BASE_URL", sandbox.upload_url())
            .env_remove("KIE_API_KEY")
            .env_remove("KIE_BASE_URL")
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path());
        command
    }

    /// `batch run FILE` with fast polls, under the sandbox's account limit (20 per 100 ms of
    /// real time) with room for a loaded machine's scheduling delays (the pacing test uses the
    /// exact limit).
    fn run_args(&self, file: &Path) -> Vec<String> {
        [
            "batch",
            "run",
            file.to_str().unwrap(),
            "--out-dir",
            self.out().to_str().unwrap(),
            "--rate",
            "15/100ms",
            "--concurrency",
            "60",
            "--poll-interval",
            "20ms",
        ]
        .map(String::from)
        .to_vec()
    }

    fn jobs(&self) -> Vec<Value> {
        let manifest = std::fs::read_to_string(self.out().join("manifest.jsonl"))
            .expect("manifest.jsonl written");
        manifest
            .lines()
            .map(|l| serde_json::from_str(l).expect("manifest lines are JSON"))
            .collect()
    }
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("veo3 runs"))
        .await
        .expect("join")
}

fn args_of(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file in `dir` named `*.part`.
fn part_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "part"))
                .collect()
        })
        .unwrap_or_default()
}

/// The file host's bytes for `url`.
async fn served(url: &str) -> Vec<u8> {
    reqwest::get(url)
        .await
        .expect("file host answers")
        .bytes()
        .await
        .expect("body")
        .to_vec()
}

/// Checks the end state of a batch exactly ([`exact::check`]); returns how many jobs are
/// unknown.
async fn check_finished(sandbox: &SandboxHandle, workspace: &Workspace, jobs: usize) -> usize {
    exact::check(sandbox, workspace, jobs, &std::collections::HashSet::new())
        .await
        .unknown
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_downloads_every_job_and_writes_its_manifest_and_gallery() {
    let sandbox = start(sandbox_builder()).await;
    let workspace = Workspace::new();
    let file = workspace.prompts(12);
    let out = output(workspace.command(&sandbox, &args_of(&workspace.run_args(&file)))).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(check_finished(&sandbox, &workspace, 12).await, 0);
    assert_eq!(sandbox.stats().tasks_created, 12);
    // One JSON line per state change, then the summary.
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let changes = lines.iter().filter(|l| l.get("state").is_some()).count();
    assert_eq!(
        changes,
        12 * 4,
        "submitting, submitted, succeeded, downloaded"
    );
    assert_eq!(lines.last().unwrap()["counts"]["downloaded"], 12);
    let gallery = std::fs::read_to_string(workspace.out().join("index.html")).unwrap();
    assert_eq!(gallery.matches("<video").count(), 12);
    gallery_in_chromium(&workspace.out().join("index.html"));

    let list = output(workspace.command(&sandbox, &["jobs", "list"])).await;
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert_eq!(text(&list.stdout).lines().count(), 12);
    let first = workspace.jobs()[0]["job"].as_i64().unwrap().to_string();
    let show = output(workspace.command(&sandbox, &["jobs", "show", &first])).await;
    let shown: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["state"], "downloaded");
    assert_eq!(shown["prompt"], "a paper boat number 0 on a pond");
}

/// The gallery in headless Chromium: it loads, and every `<video>` has a source that exists
/// on disk. Skipped, saying so, where Chromium is not installed locally; under CI (`CI` set,
/// and `.ci/run` installs Chromium) a missing browser fails the test instead.
fn gallery_in_chromium(page: &Path) {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must check the gallery in Chromium, and none is on PATH"
        );
        println!("SKIPPED: no chromium on PATH; the gallery was not checked in a browser");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let dom = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(dom.status.success(), "{}", text(&dom.stderr));
    let dom = text(&dom.stdout);
    let videos: Vec<&str> = dom.split("<video").skip(1).collect();
    assert!(
        !videos.is_empty(),
        "no video element in the loaded page:\n{dom}"
    );
    for video in videos {
        let src = video
            .split("src=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("every video has a src");
        let file = page.parent().unwrap().join(src);
        assert!(file.is_file(), "{} is missing", file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_is_reported_with_its_number_before_anything_is_sent() {
    let sandbox = start(sandbox_builder()).await;
    let workspace = Workspace::new();
    let file = workspace.dir.path().join("jobs.jsonl");
    std::fs::write(
        &file,
        "{\"prompt\":\"a cat\"}\n{\"prompt\":\"a dog\",\"seeds\":12}\n\n{\"prompt\":\"\"}\n",
    )
    .unwrap();
    let out = output(workspace.command(&sandbox, &args_of(&workspace.run_args(&file)))).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("jobs.jsonl:2:"), "{stderr}");
    assert!(stderr.contains("jobs.jsonl:4:"), "{stderr}");
    assert!(!stderr.contains("jobs.jsonl:1:"), "{stderr}");
    assert_eq!(sandbox.stats().tasks_created, 0);
    assert_eq!(sandbox.stats().requests(veo3_sandbox::Route::Generate), 0);
    assert!(!workspace.journal().exists(), "nothing journaled");
}

/// A job's file already in the output folder: `batch run` refuses before anything is journaled
/// or sent, naming the line and the file; with `--force` the batch runs and replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_file_exists_is_refused_unless_forced() {
    let sandbox = start(sandbox_builder()).await;
    let workspace = Workspace::new();
    let file = workspace.prompts(3);
    std::fs::create_dir_all(workspace.out()).unwrap();
    let taken = workspace.out().join("line-0002.mp4");
    std::fs::write(&taken, b"not a batch video").unwrap();
    let out = output(workspace.command(&sandbox, &args_of(&workspace.run_args(&file)))).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("prompts.txt:2:"), "{stderr}");
    assert!(stderr.contains("line-0002.mp4 exists"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(!stderr.contains("prompts.txt:1:"), "{stderr}");
    assert_eq!(sandbox.stats().requests(veo3_sandbox::Route::Generate), 0);
    assert!(!workspace.journal().exists(), "nothing journaled");
    assert_eq!(std::fs::read(&taken).unwrap(), b"not a batch video");

    let mut forced = workspace.run_args(&file);
    forced.push("--force".into());
    let out = output(workspace.command(&sandbox, &args_of(&forced))).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(check_finished(&sandbox, &workspace, 3).await, 0);
    assert_ne!(std::fs::read(&taken).unwrap(), b"not a batch video");
}

/// A small PNG (its signature is what the checks read).
fn png(seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..300u16).map(|i| (i as u8).wrapping_mul(seed)));
    bytes
}

/// Jobs whose `imageUrls` name local files (relative to the batch file): every file is checked
/// before anything is sent, a bad one named with its line; the good batch uploads each distinct
/// file once before submitting, sends and journals the hosted URLs, and a resume uploads
/// nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_jobs_take_local_images_uploaded_once_before_anything_is_billed() {
    let sandbox = start(sandbox_builder()).await;
    let workspace = Workspace::new();
    let images = workspace.dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("first.png"), png(3)).unwrap();
    std::fs::write(images.join("last.png"), png(7)).unwrap();
    std::fs::write(images.join("notes.txt"), b"not an image").unwrap();
    let file = workspace.dir.path().join("jobs.jsonl");
    let url = format!("{}/big/1000", sandbox.files_url());
    let lines = |bad: bool| {
        let mut text = String::new();
        text.push_str("{\"prompt\":\"a fox from a photo\",\"imageUrls\":[\"images/first.png\"]}\n");
        text.push_str(&format!(
            "{{\"prompt\":\"first to last\",\"imageUrls\":[\"images/first.png\",\"images/last.png\"]}}\n{{\"prompt\":\"hosted and local\",\"imageUrls\":[\"{url}\",\"images/last.png\"]}}\n"
        ));
        text.push_str("{\"prompt\":\"no image\"}\n");
        if bad {
            text.push_str("{\"prompt\":\"missing\",\"imageUrls\":[\"images/gone.png\"]}\n");
            text.push_str("{\"prompt\":\"text file\",\"imageUrls\":[\"images/notes.txt\"]}\n");
        }
        text
    };
    std::fs::write(&file, lines(true)).unwrap();
    let refused = output(workspace.command(&sandbox, &args_of(&workspace.run_args(&file)))).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("jobs.jsonl:5:") && stderr.contains("gone.png"),
        "{stderr}"
    );
    assert!(
        stderr.contains("jobs.jsonl:6:") && stderr.contains("notes.txt"),
        "{stderr}"
    );
    assert!(!stderr.contains("jobs.jsonl:1:"), "{stderr}");
    let stats = sandbox.stats();
    assert_eq!(
        stats.requests.values().sum::<u64>(),
        0,
        "nothing sent: {stats:?}"
    );
    assert!(!workspace.journal().exists(), "nothing journaled");

    std::fs::write(&file, lines(false)).unwrap();
    let out = output(workspace.command(&sandbox, &args_of(&workspace.run_args(&file)))).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(check_finished(&sandbox, &workspace, 4).await, 0);
    assert_eq!(
        sandbox.stats().requests(veo3_sandbox::Route::Upload),
        2,
        "each distinct file uploaded once"
    );
    // What kie was sent: hosted URLs serving the local files' bytes, in the jobs' order.
    let tasks = sandbox.tasks();
    let sent = |prompt: &str| {
        tasks
            .iter()
            .find(|t| t.prompt.as_deref() == Some(prompt))
            .unwrap()
            .image_urls
            .clone()
    };
    let fox = sent("a fox from a photo");
    let pair = sent("first to last");
    let mixed = sent("hosted and local");
    assert_eq!(fox[0], pair[0], "one upload of first.png");
    assert_eq!(pair[1], mixed[1], "one upload of last.png");
    assert_eq!(mixed[0], url, "a hosted image is sent as it is");
    assert!(sent("no image").is_empty());
    assert!(fox[0].starts_with(sandbox.files_url()), "{fox:?}");
    assert_eq!(served(&fox[0]).await, png(3));
    assert_eq!(served(&pair[1]).await, png(7));
    // The journal holds the hosted URLs: a resume sends nothing again.
    for job in exact::journal_jobs(&workspace).await {
        assert!(
            job.request.image_urls.iter().all(|u| u.starts_with("http")),
            "{job:?}"
        );
    }
    let resumed = output(workspace.command(&sandbox, &["batch", "resume"])).await;
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert_eq!(sandbox.stats().requests(veo3_sandbox::Route::Upload), 2);
    assert_eq!(sandbox.tasks().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_estimate_and_sends_nothing() {
    let sandbox = start(sandbox_builder()).await;
    let workspace = Workspace::new();
    let file = workspace.prompts(7);
    let mut args = workspace.run_args(&file);
    args.push("--dry-run".into());
    let out = output(workspace.command(&sandbox, &args_of(&args))).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["jobs"], 7);
    assert_eq!(result["estimatedCredits"], 7 * 60);
    let stats = sandbox.stats();
    assert_eq!(stats.requests.values().sum::<u64>(), 0, "{stats:?}");
}

/// Credits for 30 jobs: a 50-job batch is refused by `--max-credits`; without the cap it stops
/// at the 402 with 20 jobs pending, which a resume finishes once credits are added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_budget_is_refused_and_one_out_of_credits_stops_and_resumes() {
    let sandbox = start(sandbox_builder().initial_credits(30 * 60)).await;
    let workspace = Workspace::new();
    let file = workspace.prompts(50);
    let mut capped = workspace.run_args(&file);
    capped.extend(["--max-credits".into(), (30 * 60).to_string()]);
    let refused = output(workspace.command(&sandbox, &args_of(&capped))).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("--max-credits"));
    assert_eq!(sandbox.stats().requests(veo3_sandbox::Route::Generate), 0);

    let mut uncapped = workspace.run_args(&file);
    uncapped.push("--skip-balance-check".into());
    let stopped = output(workspace.command(&sandbox, &args_of(&uncapped))).await;
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped.stderr));
    assert!(
        text(&stopped.stderr).contains("402"),
        "{}",
        text(&stopped.stderr)
    );
    let manifest = workspace.jobs();
    let count = |state: &str| manifest.iter().filter(|j| j["state"] == state).count();
    assert_eq!(count("downloaded"), 30);
    assert_eq!(count("pending"), 20);
    assert_eq!(sandbox.stats().tasks_created, 30);

    sandbox.set_credits(KEY, 20 * 60);
    let resumed = output(workspace.command(
        &sandbox,
        &[
            "batch",
            "resume",
            "--journal",
            workspace.journal().to_str().unwrap(),
        ],
    ))
    .await;
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert_eq!(check_finished(&sandbox, &workspace, 50).await, 0);
    assert_eq!(sandbox.stats().tasks_created, 50);
}

/// 200 jobs paced at exactly the sandbox's account limit (20 per 10 s of service time, 2 s of
/// real time here), on a machine loaded by the rest of the suite: never answered 429. The
/// runner counts each send's window from its answer, so a send that reached the sandbox late
/// cannot crowd the next window, and it sends each generate request once (the client's own
/// retry of a 429 would be a send the limiter never counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_batch_is_never_rate_limited() {
    let sandbox = start(sandbox_builder().time_scale(0.2)).await;
    let workspace = Workspace::new();
    let file = workspace.prompts(200);
    let mut args = workspace.run_args(&file);
    for (flag, value) in [
        ("--concurrency", "200"),
        ("--rate", "20/2s"),
        ("--poll-interval", "500ms"),
    ] {
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1] = value.into();
    }
    let out = output(workspace.command(&sandbox, &args_of(&args))).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stats = sandbox.stats();
    assert_eq!(stats.answered_429, 0, "{stats:?}");
    assert_eq!(stats.tasks_created, 200);
}

/// 20% of generate answers lost. With callbacks, every job is recovered through the callback
/// naming it; without, the lost ones are reported unknown and not resubmitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_are_recovered_by_callbacks_or_reported_unknown() {
    let lost: FaultPlan = "generate:lost=0.2".parse().unwrap();
    for callbacks in [true, false] {
        let sandbox = start(
            sandbox_builder()
                .faults(lost.clone())
                .hmac_key("batch-hmac-key"),
        )
        .await;
        let workspace = Workspace::new();
        let file = workspace.prompts(50);
        let mut args = workspace.run_args(&file);
        if callbacks {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            args.extend([
                "--callback-listen".into(),
                format!("127.0.0.1:{port}"),
                "--callback-url".into(),
                format!("http://127.0.0.1:{port}/veo3"),
                "--recovery-window".into(),
                "30s".into(),
            ]);
        }
        let mut command = workspace.command(&sandbox, &args_of(&args));
        command.env("KIE_WEBHOOK_HMAC_KEY", "batch-hmac-key");
        let out = output(command).await;
        let stats = sandbox.stats();
        let lost_count = stats.faults("lost") as usize;
        assert!(lost_count > 0, "the fault plan lost some answers");
        let manifest = workspace.jobs();
        let states: Vec<_> = manifest.iter().map(|j| j["state"].clone()).collect();
        assert_eq!(
            stats.tasks_created,
            50,
            "one task per job, none resubmitted: {stats:?} {states:?} {}",
            text(&out.stderr)
        );
        // The jobs whose answer was lost: journaled unknown when the submit ended.
        let lost_jobs: std::collections::HashSet<veo3_jobs::JobId> = text(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["state"] == "unknown")
            .map(|l| veo3_jobs::JobId(l["job"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            lost_jobs.len(),
            lost_count,
            "each lost answer made its job unknown"
        );
        let verdict = exact::check(&sandbox, &workspace, 50, &Default::default()).await;
        let summary: Value =
            serde_json::from_str(text(&out.stdout).lines().last().unwrap()).unwrap();
        if callbacks {
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert!(verdict.unknown.is_empty(), "{verdict:?}");
            assert_eq!(verdict.downloaded, 50, "{verdict:?}");
            assert_eq!(summary["recovered"].as_u64(), Some(lost_count as u64));
            // Each task's callback named the job it belongs to: that is how the lost ones
            // were recovered.
            let by_prompt: std::collections::HashMap<String, veo3_jobs::JobId> =
                exact::journal_jobs(&workspace)
                    .await
                    .into_iter()
                    .map(|j| (j.request.prompt, j.id))
                    .collect();
            for task in sandbox.tasks() {
                let job = by_prompt[task.prompt.as_deref().unwrap()];
                assert_eq!(task.callback_param("job"), Some(job.to_string()));
            }
        } else {
            assert_eq!(out.status.code(), Some(1));
            let unknown: std::collections::HashSet<_> = verdict.unknown.iter().copied().collect();
            assert_eq!(unknown, lost_jobs, "exactly the lost ones are unknown");
            assert_eq!(
                verdict.unknown_billed, lost_count,
                "each lost submit made its one task, and none was sent again"
            );
            assert_eq!(verdict.downloaded, 50 - lost_count);
            let status = output(workspace.command(&sandbox, &["batch", "status"])).await;
            let status: Value = serde_json::from_slice(&status.stdout).unwrap();
            let reported: std::collections::HashSet<_> = status["unknown"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| veo3_jobs::JobId(j["job"].as_i64().unwrap()))
                .collect();
            let expected = lost_jobs.clone();
            assert_eq!(reported, expected, "unknown jobs reported by id");
        }
    }
}
