//! Integration tests: the built `veo3` binary against an in-process sandbox.
//!
//! Each test starts a sandbox on loopback and runs the binary as a user would, with
//! `--base-url` pointing at it. The sandbox's clock runs 1000x faster and the binary polls
//! every 20 ms, so whole journeys take well under a second of wall time; the assertions are on
//! exit codes, output (JSON parsed), files and the sandbox's counters, never on timing.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;
use veo3_sandbox::{Fault, Outcome, Route, Sandbox, SandboxHandle};

use crate::support::http::mp4_boxes;

mod downloads;
use crate::support::workspace_binary;

mod coverage;
mod messages;

const KEY: &str = "sk-cli-test";

fn veo3() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| workspace_binary("veo3-cli", "veo3"))
}

/// `veo3` with its journal in a temporary folder: tests never write to the user's data folder.
fn veo3_command() -> std::process::Command {
    static JOURNAL: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = JOURNAL.get_or_init(|| tempfile::tempdir().expect("a temporary folder"));
    let mut command = std::process::Command::new(veo3());
    command.env("VEO3_JOURNAL", dir.path().join("journal.db"));
    command
}

async fn sandbox() -> SandboxHandle {
    Sandbox::builder()
        .key(KEY)
        .time_scale(0.001)
        .seed(7)
        .start()
        .await
        .expect("sandbox starts")
}

/// Runs `veo3 ARGS` against `sandbox` with `key` and returns its output.
async fn run_with_key(sandbox: &SandboxHandle, key: &str, args: &[&str]) -> Output {
    let mut command = veo3_command();
    command
        .args(["--base-url", sandbox.api_url(), "--api-key", key])
        .args(args)
        .env_remove("KIE_API_KEY")
        .env_remove("KIE_BASE_URL")
        .env_remove("RUST_LOG");
    tokio::task::spawn_blocking(move || command.output().expect("veo3 runs"))
        .await
        .expect("join")
}

async fn run(sandbox: &SandboxHandle, args: &[&str]) -> Output {
    run_with_key(sandbox, KEY, args).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "veo3 failed: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

fn json(output: &Output) -> Value {
    assert_ok(output);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", stdout(output)))
}

/// Reads the first line a child writes to `pipe`, off the async runtime. The reader comes
/// back too, so the pipe stays open (a child writing to a closed pipe gets an error).
async fn first_line<R: std::io::Read + Send + 'static>(pipe: R) -> (String, std::io::BufReader<R>) {
    use std::io::BufRead as _;
    tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::new(pipe);
        let mut line = String::new();
        reader.read_line(&mut line).map(|_| (line, reader))
    })
    .await
    .expect("join")
    .expect("a line from the child")
}

const FAST: [&str; 4] = ["--poll-interval", "20ms", "--timeout", "60s"];

async fn fetch(url: &str) -> Vec<u8> {
    reqwest::get(url)
        .await
        .expect("file host answers")
        .bytes()
        .await
        .expect("body")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_with_out_downloads_the_bytes_the_file_host_serves() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("fox.mp4");
    let out_arg = out.to_str().expect("utf-8 path");
    let mut args = vec![
        "--json",
        "generate",
        "A red fox in the snow",
        "--out",
        out_arg,
    ];
    args.extend(FAST);
    let result = json(&run(&sandbox, &args).await);

    let task_id = result["taskId"].as_str().expect("task id");
    assert_eq!(result["state"], "success");
    let url = result["videoUrls"][0].as_str().expect("a video URL");
    let written = std::fs::read(&out).expect("the file exists under its final name");
    assert_eq!(
        written,
        fetch(url).await,
        "byte-identical to what the file host serves"
    );
    assert!(mp4_boxes(&written).is_some_and(|boxes| boxes.iter().any(|(name, _)| name == "moov")));
    assert_eq!(
        result["download"]["bytes"].as_u64(),
        Some(written.len() as u64)
    );
    assert!(
        !dir.path().join("fox.mp4.part").exists(),
        "no partial file left"
    );
    assert!(stderr(&run(&sandbox, &["status", task_id]).await).is_empty());
    assert_eq!(sandbox.stats().tasks_created_by(KEY), 1);
    assert_eq!(
        sandbox.stats().file_auth_headers.len(),
        0,
        "the key never went to the file host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_prints_the_task_id_before_waiting_and_status_wait_download_follow_it() {
    let sandbox = sandbox().await;
    // Human mode: the first stdout line names the task.
    let submitted = run(&sandbox, &["generate", "A lighthouse in a storm"]).await;
    assert_ok(&submitted);
    let first_line = stdout(&submitted)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let task_id = first_line
        .split_whitespace()
        .nth(2)
        .expect("`generation task ID submitted`")
        .to_owned();
    assert!(first_line.contains("submitted"), "{first_line}");

    let mut args = vec!["--json", "wait", task_id.as_str()];
    args.extend(FAST);
    let waited = json(&run(&sandbox, &args).await);
    assert_eq!(waited["taskId"], task_id.as_str());
    assert_eq!(waited["state"], "success");
    assert_eq!(waited["successFlag"], 1);

    let status = json(&run(&sandbox, &["--json", "status", &task_id]).await);
    assert_eq!(status["videoUrls"], waited["videoUrls"]);
    let human = run(&sandbox, &["status", &task_id]).await;
    assert_ok(&human);
    assert!(
        stdout(&human).contains("success") && stdout(&human).contains(".mp4"),
        "{}",
        stdout(&human)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("again.mp4");
    let downloaded = json(
        &run(
            &sandbox,
            &[
                "--json",
                "download",
                &task_id,
                "--out",
                out.to_str().expect("utf-8"),
            ],
        )
        .await,
    );
    let bytes = std::fs::read(&out).expect("downloaded");
    assert_eq!(downloaded["bytes"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(
        bytes,
        fetch(waited["videoUrls"][0].as_str().expect("url")).await
    );
    let human = run(
        &sandbox,
        &[
            "download",
            &task_id,
            "--out",
            out.to_str().expect("utf-8"),
            "--force",
        ],
    )
    .await;
    assert_ok(&human);
    assert!(stdout(&human).contains("saved"), "{}", stdout(&human));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_extend_and_credits_work_with_and_without_json() {
    let sandbox = sandbox().await;
    let mut args = vec![
        "--json",
        "generate",
        "A barista pouring latte art",
        "--wait",
    ];
    args.extend(FAST);
    let task = json(&run(&sandbox, &args).await);
    let task_id = task["taskId"].as_str().expect("task id").to_owned();

    let dir = tempfile::tempdir().expect("tempdir");
    let hd_path = dir.path().join("hd.mp4");
    let mut args = vec![
        "--json",
        "upgrade",
        &task_id,
        "--resolution",
        "1080p",
        "--out",
        hd_path.to_str().expect("utf-8"),
    ];
    args.extend(FAST);
    let hd = json(&run(&sandbox, &args).await);
    assert_eq!(hd["resolution"], "1080p");
    let hd_url = hd["resultUrl"].as_str().expect("1080p URL");
    assert_eq!(
        std::fs::read(&hd_path).expect("1080p file"),
        fetch(hd_url).await
    );

    let mut args = vec!["--json", "upgrade", &task_id, "--resolution", "4k"];
    args.extend(FAST);
    let k4 = json(&run(&sandbox, &args).await);
    assert_eq!(k4["resolution"], "4k");
    assert!(
        k4["resultUrls"][0]
            .as_str()
            .is_some_and(|u| u.ends_with(".mp4")),
        "{k4}"
    );
    assert!(
        sandbox.stats().requests(Route::Upgrade4k) >= 2,
        "4K polled by re-POSTing"
    );

    let mut args = vec![
        "--json",
        "extend",
        &task_id,
        "The fox leaps over a log",
        "--model",
        "quality",
        "--wait",
    ];
    args.extend(FAST);
    let extended = json(&run(&sandbox, &args).await);
    assert_ne!(
        extended["taskId"],
        task_id.as_str(),
        "an extension is a new task"
    );
    assert!(
        extended["fullResultUrls"][0].is_string(),
        "the stitched video: {extended}"
    );
    assert_eq!(extended["videoUrls"], extended["fullResultUrls"]);

    let human = run(&sandbox, &["extend", &task_id, "Then it sleeps"]).await;
    assert_ok(&human);
    assert!(
        stdout(&human).starts_with("extension task "),
        "{}",
        stdout(&human)
    );

    let credits = json(&run(&sandbox, &["--json", "credits"]).await);
    assert_eq!(credits["credits"].as_i64(), Some(sandbox.credits(KEY)));
    let human = run(&sandbox, &["credits"]).await;
    assert_eq!(
        stdout(&human).trim(),
        format!("{} credits", sandbox.credits(KEY))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_fails_with_the_apis_code_and_message() {
    let sandbox = sandbox().await;
    let output = run_with_key(&sandbox, "sk-wrong", &["credits"]).await;
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.starts_with("error: ") && message.contains("401"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    assert!(
        !message.contains("sk-wrong"),
        "the key is never printed: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_exit_2_before_any_request_is_sent() {
    let sandbox = sandbox().await;
    let cases: [&[&str]; 4] = [
        &["generate", "A fox", "--seeds", "5"],
        &["generate", " "],
        &[
            "generate",
            "A fox",
            "--generation-type",
            "first-and-last-frames",
        ],
        &["generate", "A fox", "--image", "ftp://example.com/a.png"],
    ];
    let fields = ["seeds", "prompt", "imageUrls", "imageUrls"];
    for (args, field) in cases.iter().zip(fields) {
        let output = run(&sandbox, args).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(field),
            "{args:?} names {field}: {}",
            stderr(&output)
        );
    }
    let usage = run(&sandbox, &["generate", "A fox", "--aspect-ratio", "4:3"]).await;
    assert_eq!(usage.status.code(), Some(2), "clap rejects unknown values");
    let no_key = veo3_command()
        .args(["--base-url", sandbox.api_url(), "credits"])
        .env_remove("KIE_API_KEY")
        .output()
        .expect("veo3 runs");
    assert_eq!(no_key.status.code(), Some(2));
    assert!(stderr(&no_key).contains("KIE_API_KEY"));
    assert_eq!(
        sandbox.stats().requests(Route::Generate),
        0,
        "nothing was sent"
    );
    assert_eq!(
        sandbox.stats().requests(Route::Credits),
        0,
        "nothing was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_exits_3_with_the_tasks_own_message() {
    let sandbox = sandbox().await;
    sandbox.script_outcome(Route::Generate, Outcome::Moderation);
    let mut args = vec!["generate", "Something the moderator flags", "--wait"];
    args.extend(FAST);
    let output = run(&sandbox, &args).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("400") && message.to_lowercase().contains("content polic"),
        "{message}"
    );
    assert!(
        stdout(&output).contains("submitted"),
        "the task id was printed before waiting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_to_completion_and_leaves_valid_mp4_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo.mp4");
    let binary = veo3();
    let out_arg = out.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary)
            .args(["--json", "demo", "--out"])
            .arg(&out_arg)
            .output()
            .expect("veo3 runs")
    })
    .await
    .expect("join");
    let summary = json(&output);
    for (key, path) in [
        ("video", out.clone()),
        ("video1080p", dir.path().join("demo-1080p.mp4")),
    ] {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(summary[key]["bytes"].as_u64(), Some(bytes.len() as u64));
        let boxes = mp4_boxes(&bytes).expect("a well-formed MP4");
        assert!(
            boxes.iter().any(|(name, _)| name == "ftyp")
                && boxes.iter().any(|(name, _)| name == "moov")
        );
    }
    assert!(
        summary["creditsSpent"]
            .as_i64()
            .is_some_and(|spent| spent > 0)
    );
}

#[test]
fn every_help_page_is_complete_and_shows_examples() {
    let root = veo3_command().arg("--help").output().expect("veo3 runs");
    assert!(root.status.success());
    let text = stdout(&root);
    let commands = [
        "generate", "status", "wait", "download", "upgrade", "extend", "credits", "sandbox",
        "listen", "demo",
    ];
    for command in commands {
        assert!(text.contains(command), "root help lists {command}");
        let help = veo3_command()
            .args([command, "--help"])
            .output()
            .expect("veo3 runs");
        assert!(help.status.success(), "{command} --help");
        let help = stdout(&help);
        assert!(
            help.contains("Examples:") && help.contains(&format!("veo3 {command}")),
            "{command} help has examples:\n{help}"
        );
    }
    assert!(text.contains("Exit codes:") && text.contains("KIE_API_KEY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_with_callback_listen_finishes_on_the_signed_callback() {
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(0.001)
        .hmac_key("cli-webhook-key")
        .start()
        .await
        .expect("sandbox starts");
    // A free port for the CLI's receiver (released just before the CLI binds it).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let callback_url = format!("http://127.0.0.1:{port}/veo3/callback");
    let mut command = veo3_command();
    command
        .args([
            "--base-url",
            sandbox.api_url(),
            "--api-key",
            KEY,
            "--json",
            "generate",
            "A fox",
        ])
        .args([
            "--callback-listen",
            &listen,
            "--callback-url",
            &callback_url,
        ])
        // Polling alone would take ten minutes: only the callback can end this wait in time.
        .args(["--poll-interval", "10m", "--timeout", "30m"])
        .env("KIE_WEBHOOK_HMAC_KEY", "cli-webhook-key");
    let output = tokio::task::spawn_blocking(move || command.output().expect("veo3 runs"))
        .await
        .expect("join");
    let record = json(&output);
    assert_eq!(record["state"], "success");
    let stats = sandbox.stats();
    assert_eq!(
        stats.requests(Route::RecordInfo),
        1,
        "one confirming read, no polling"
    );
    assert!(stats.callbacks_sent >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_4k_and_extend_with_callback_listen_finish_on_their_callbacks() {
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(0.001)
        .hmac_key("cli-webhook-key")
        .start()
        .await
        .expect("sandbox starts");
    let mut args = vec!["--json", "generate", "A crane over a lake", "--wait"];
    args.extend(FAST);
    let source = json(&run(&sandbox, &args).await)["taskId"]
        .as_str()
        .expect("a task id")
        .to_owned();
    let listen_args = || {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        [
            "--callback-listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--callback-url".to_owned(),
            format!("http://127.0.0.1:{port}/veo3/callback"),
            // Polling alone would take ten minutes: only the callback can end the wait in time.
            "--poll-interval".to_owned(),
            "10m".to_owned(),
        ]
    };
    let run_listening = |args: Vec<String>| {
        let mut command = veo3_command();
        command
            .args(["--base-url", sandbox.api_url(), "--api-key", KEY, "--json"])
            .args(args)
            .env("KIE_WEBHOOK_HMAC_KEY", "cli-webhook-key")
            .env_remove("RUST_LOG");
        tokio::task::spawn_blocking(move || command.output().expect("veo3 runs"))
    };

    let mut args: Vec<String> = ["upgrade", &source, "--resolution", "4k"]
        .map(str::to_owned)
        .into();
    args.extend(listen_args());
    let k4 = json(&run_listening(args).await.expect("join"));
    assert!(
        k4["resultUrls"][0]
            .as_str()
            .is_some_and(|u| u.ends_with(".mp4")),
        "{k4}"
    );
    assert_eq!(
        sandbox.stats().requests(Route::Upgrade4k),
        2,
        "the request and one confirming repeat, on the 4K callback"
    );

    let reads_before = sandbox.stats().requests(Route::RecordInfo);
    let mut args: Vec<String> = ["extend", &source, "The crane lands"]
        .map(str::to_owned)
        .into();
    args.extend(listen_args());
    let extended = json(&run_listening(args).await.expect("join"));
    assert_eq!(extended["state"], "success", "{extended}");
    assert_ne!(extended["taskId"], source.as_str());
    assert_eq!(
        sandbox.stats().requests(Route::RecordInfo) - reads_before,
        1,
        "one confirming read, on the extension's callback"
    );
}

/// `generate --wait` and `extend --wait` poll the task they just created from the first
/// interval on, not at once (a read at once only finds a new task queued): one read each for
/// tasks that take 300 ms here and a 1 s interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_task_is_first_read_after_the_poll_interval() {
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(0.01)
        .durations(veo3_sandbox::Durations::uniform(
            std::time::Duration::from_secs(30),
        ))
        .seed(11)
        .start()
        .await
        .expect("sandbox starts");
    let generated = json(
        &run(
            &sandbox,
            &[
                "--json",
                "generate",
                "A fox",
                "--wait",
                "--poll-interval",
                "1s",
            ],
        )
        .await,
    );
    assert_eq!(generated["state"], "success", "{generated}");
    assert_eq!(sandbox.stats().requests(Route::RecordInfo), 1, "one read");
    let source = generated["taskId"].as_str().expect("taskId").to_owned();
    let extended = json(
        &run(
            &sandbox,
            &[
                "--json",
                "extend",
                &source,
                "It runs",
                "--wait",
                "--poll-interval",
                "1s",
            ],
        )
        .await,
    );
    assert_eq!(extended["state"], "success", "{extended}");
    assert_eq!(
        sandbox.stats().requests(Route::RecordInfo),
        2,
        "one read more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veo3_sandbox_serves_until_stopped_and_prints_its_urls() {
    let mut child = veo3_command()
        .args([
            "sandbox",
            "--key",
            KEY,
            "--time-scale",
            "0.01",
            "--credits",
            "77",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("veo3 sandbox starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (line, _stdout) = first_line(stdout).await;
    let urls: Value = serde_json::from_str(&line).expect("one JSON line");
    let api = urls["api"].as_str().expect("api URL");
    assert!(
        urls["files"]
            .as_str()
            .is_some_and(|f| f.starts_with("http://127.0.0.1:"))
    );
    let credits = reqwest::Client::new()
        .get(format!("{api}/api/v1/chat/credit"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("the sandbox answers")
        .bytes()
        .await
        .expect("a body");
    let credits: Value = serde_json::from_slice(&credits).expect("JSON");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(credits["data"], 77, "the options reached the sandbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_wait_leaves_the_task_id_and_how_to_resume() {
    let sandbox = sandbox().await;
    let mut child = veo3_command()
        .args(["--base-url", sandbox.api_url(), "--api-key", KEY])
        .args(["generate", "A fox", "--wait", "--poll-interval", "10m"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("veo3 starts");
    let stdout = child.stdout.take().expect("piped stdout");
    // The first line appears once the task exists, before the wait starts.
    let (line, _stdout) = first_line(stdout).await;
    let task_id = line
        .split_whitespace()
        .nth(2)
        .expect("a task id")
        .to_owned();
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("veo3 ends");
    assert_eq!(output.status.code(), Some(130));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("veo3 wait {task_id}")),
        "{message}"
    );
    assert_eq!(sandbox.stats().tasks_created_by(KEY), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_prints_each_verified_callback_once_and_nothing_forged() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut child = veo3_command()
        .args(["listen", "--addr", &format!("127.0.0.1:{port}")])
        .env("KIE_WEBHOOK_HMAC_KEY", "listen-key")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("veo3 listen starts");
    // "listening on ..." on stderr means the receiver is bound. The reader is kept open, so
    // the child's later diagnostics never meet a closed pipe.
    let stderr = child.stderr.take().expect("piped stderr");
    let (ready, _stderr) = first_line(stderr).await;
    assert!(ready.starts_with("listening on"), "{ready}");
    let url = format!("http://127.0.0.1:{port}/veo3/callback");
    let http = reqwest::Client::new();
    let body = crate::support::fixture("callback-success.json");
    let task_id = "3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21";
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .to_string();
    let post = |signature: String| {
        http.post(&url)
            .header("content-type", "application/json")
            .header("X-Webhook-Timestamp", &timestamp)
            .header("X-Webhook-Signature", signature)
            .body(body.clone())
            .send()
    };
    let valid = post(veo3_sandbox::webhook_signature(
        b"listen-key",
        task_id,
        &timestamp,
    ))
    .await
    .expect("answered");
    let forged = post(veo3_sandbox::webhook_signature(
        b"wrong-key",
        task_id,
        &timestamp,
    ))
    .await
    .expect("answered");
    let duplicate = post(veo3_sandbox::webhook_signature(
        b"listen-key",
        task_id,
        &timestamp,
    ))
    .await
    .expect("answered");
    let statuses = [valid.status(), forged.status(), duplicate.status()].map(|s| s.as_u16());
    assert_eq!(statuses, [200, 401, 200], "valid, forged, duplicate");

    let stdout = child.stdout.take().expect("piped stdout");
    let (line, reader) = first_line(stdout).await;
    let _ = child.kill();
    let _ = child.wait();
    let printed: Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(printed["signed"]["taskId"], task_id);
    let rest: Vec<String> = std::io::BufRead::lines(reader)
        .map_while(Result::ok)
        .collect();
    assert!(
        rest.is_empty(),
        "the forged and duplicate callbacks were not printed: {rest:?}"
    );
}

/// Starts `veo3 listen` on a free port with the HMAC key `listen-key` and `env`; the child,
/// its callback URL, and its stdout. Returns once the receiver is bound.
async fn start_listen(
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    String,
    std::process::ChildStdout,
    std::io::BufReader<std::process::ChildStderr>,
) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut command = std::process::Command::new(veo3());
    command
        .args(["listen", "--addr", &format!("127.0.0.1:{port}")])
        .env("KIE_WEBHOOK_HMAC_KEY", "listen-key")
        .env_remove("KIE_API_KEY")
        .env_remove("KIE_BASE_URL")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("veo3 listen starts");
    let stderr = child.stderr.take().expect("piped stderr");
    // "listening on ..." on stderr means the receiver is bound.
    let stderr = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        let mut reader = std::io::BufReader::new(stderr);
        loop {
            let mut line = String::new();
            let read = reader.read_line(&mut line).expect("stderr is readable");
            assert!(read > 0, "veo3 listen ended before listening");
            if line.starts_with("listening on") {
                return reader;
            }
        }
    })
    .await
    .expect("veo3 listen starts listening");
    let stdout = child.stdout.take().expect("piped stdout");
    (
        child,
        format!("http://127.0.0.1:{port}/veo3/callback"),
        stdout,
        stderr,
    )
}

/// Reads JSON lines from `stdout` until one for `last_task` (signed or not), off the runtime.
async fn lines_until(stdout: std::process::ChildStdout, last_task: &str) -> Vec<Value> {
    let last_task = last_task.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line: Value = serde_json::from_str(&line.expect("a line")).expect("JSON line");
            let task = line["signed"]["taskId"].clone();
            lines.push(line);
            if task == last_task.as_str() {
                break;
            }
        }
        lines
    })
    .await
    .expect("join")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// POSTs a callback `body` signed with `listen-key` for `task_id` at `timestamp`; the status.
async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    task_id: &str,
    timestamp: u64,
    body: String,
) -> u16 {
    let timestamp = timestamp.to_string();
    let signature = veo3_sandbox::webhook_signature(b"listen-key", task_id, &timestamp);
    http.post(url)
        .header("content-type", "application/json")
        .header("X-Webhook-Timestamp", &timestamp)
        .header("X-Webhook-Signature", signature)
        .body(body)
        .send()
        .await
        .expect("answered")
        .status()
        .as_u16()
}

fn callback_body(task_id: &str, result_url: &str) -> String {
    serde_json::json!({
        "code": 200,
        "msg": "Veo3.1 video generated successfully.",
        "data": {"taskId": task_id, "info": {"resultUrls": [result_url]}, "fallbackFlag": false}
    })
    .to_string()
}

/// Only the task id and the timestamp are signed: whoever captures one signature can send any
/// body under it for as long as the timestamp window allows. Those bodies are one delivery,
/// printed once, and they cannot push the genuine callback out of the deduplication memory,
/// so its redelivery is not printed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_prints_body_variants_under_one_signature_once_and_not_a_genuine_redelivery() {
    use futures_util::StreamExt as _;

    let (mut child, url, stdout, _stderr) = start_listen(&[]).await;
    let http = reqwest::Client::new();
    let (task, marker) = ("task-variants", "task-marker");
    let signed_at = unix_now();
    let genuine = callback_body(task, "https://cdn.example.com/genuine.mp4");
    assert_eq!(
        post_signed(&http, &url, task, signed_at, genuine.clone()).await,
        200
    );
    let variants = futures_util::stream::iter(0..5_000).map(|variant| {
        let body = callback_body(task, &format!("https://evil.example/{variant}.mp4"));
        post_signed(&http, &url, task, signed_at, body)
    });
    let statuses: Vec<u16> = variants.buffer_unordered(16).collect().await;
    assert!(
        statuses.iter().all(|status| *status == 200),
        "answered as repeats"
    );
    // kie's redelivery of the genuine callback, and then a callback for another task.
    assert_eq!(
        post_signed(&http, &url, task, signed_at, genuine).await,
        200
    );
    let marked = callback_body(marker, "https://cdn.example.com/marker.mp4");
    assert_eq!(
        post_signed(&http, &url, marker, unix_now(), marked).await,
        200
    );

    let lines = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        lines_until(stdout, marker),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.expect("the marker was printed");
    let tasks: Vec<&Value> = lines.iter().map(|line| &line["signed"]["taskId"]).collect();
    assert_eq!(tasks, [task, marker], "{lines:?}");
    assert_eq!(
        lines[0]["unsigned"]["resultUrls"][0],
        "https://cdn.example.com/genuine.mp4"
    );
}

/// A line keeps what the signature covers (task id, timestamp) apart from the unsigned body,
/// and with an API key it is confirmed by one record-info read: the record, not the body, says
/// where the video is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_marks_the_unsigned_body_and_confirms_each_callback_with_one_record_read() {
    let sandbox = sandbox().await;
    let created = json(&run(&sandbox, &["--json", "generate", "A red fox"]).await);
    let task_id = created["taskId"].as_str().expect("task id").to_owned();
    assert!(sandbox.complete_now(&task_id));
    let reads_before = sandbox.stats().requests(Route::RecordInfo);

    let (mut child, url, stdout, _stderr) =
        start_listen(&[("KIE_API_KEY", KEY), ("KIE_BASE_URL", sandbox.api_url())]).await;
    let http = reqwest::Client::new();
    let signed_at = unix_now();
    // A captured signature with a body pointing elsewhere.
    let forged = callback_body(&task_id, "https://evil.example/not-your-video.mp4");
    assert_eq!(
        post_signed(&http, &url, &task_id, signed_at, forged).await,
        200
    );
    let lines = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        lines_until(stdout, &task_id),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.expect("the callback was printed");
    let line = &lines[0];
    assert_eq!(
        line["signed"],
        serde_json::json!({"taskId": task_id, "timestamp": signed_at})
    );
    assert_eq!(
        line["unsigned"]["resultUrls"][0],
        "https://evil.example/not-your-video.mp4"
    );
    assert_eq!(line["confirmed"], true, "{line}");
    assert_eq!(line["record"]["state"], "success");
    let video = line["record"]["videoUrls"][0]
        .as_str()
        .expect("a video URL");
    assert!(video.starts_with(sandbox.files_url()), "{video}");
    assert_eq!(
        sandbox.stats().requests(Route::RecordInfo) - reads_before,
        1,
        "one confirming read"
    );
}

/// Without an API key nothing can confirm a callback, and the line says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_without_an_api_key_prints_callbacks_as_unconfirmed() {
    let (mut child, url, stdout, _stderr) = start_listen(&[]).await;
    let task = "task-unconfirmed";
    let body = callback_body(task, "https://cdn.example.com/v.mp4");
    assert_eq!(
        post_signed(&reqwest::Client::new(), &url, task, unix_now(), body).await,
        200
    );
    let lines = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        lines_until(stdout, task),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let line = &lines.expect("the callback was printed")[0];
    assert_eq!(line["confirmed"], false);
    assert!(
        line["unconfirmedBecause"]
            .as_str()
            .is_some_and(|why| why.contains("API key")),
        "{line}"
    );
    assert!(line.get("record").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_status_answer_does_not_end_a_wait_and_a_failed_wait_says_how_to_resume() {
    let sandbox = sandbox().await;
    let submitted = json(&run(&sandbox, &["--json", "generate", "A fox"]).await);
    let task_id = submitted["taskId"].as_str().expect("task id").to_owned();
    // A proxy's HTML page in an HTTP 200, then cut JSON: each read again, the wait goes on.
    sandbox.script_fault(Route::RecordInfo, Fault::Http(200));
    sandbox.script_fault(Route::RecordInfo, Fault::Malformed);
    let mut args = vec!["--json", "wait", task_id.as_str()];
    args.extend(FAST);
    let waited = json(&run(&sandbox, &args).await);
    assert_eq!(waited["state"], "success");
    assert_eq!(sandbox.stats().faults("malformed"), 1);

    // A poll failure that does end the wait leaves the task running: the message says how
    // to come back to it.
    sandbox.script_fault(Route::RecordInfo, Fault::Envelope(404));
    let output = run(&sandbox, &args).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("veo3 wait {task_id}")),
        "the resume command is named: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_interval_below_the_floor_exits_2_before_sending_except_on_loopback() {
    // A host that is not loopback (TEST-NET-1: nothing answers there, nothing is sent).
    for args in [
        &["wait", "t-1", "--poll-interval", "1ns"][..],
        &["generate", "A fox", "--wait", "--poll-interval", "1ns"][..],
        &[
            "upgrade",
            "t-1",
            "--resolution",
            "1080p",
            "--poll-interval",
            "500ms",
        ][..],
    ] {
        let mut command = std::process::Command::new(veo3());
        command
            .args(["--base-url", "http://192.0.2.1:9", "--api-key", KEY])
            .args(args)
            .env_remove("KIE_API_KEY")
            .env_remove("KIE_BASE_URL");
        let output = tokio::task::spawn_blocking(move || command.output().expect("veo3 runs"))
            .await
            .expect("join");
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(
            message.contains("poll interval") && message.contains("minimum of 1s"),
            "{args:?}: {message}"
        );
    }
    // The sandbox is on loopback: polling it every few milliseconds is allowed.
    let sandbox = sandbox().await;
    let created = json(&run(&sandbox, &["--json", "generate", "A fox"]).await);
    let task_id = created["taskId"].as_str().expect("task id");
    let waited = json(
        &run(
            &sandbox,
            &["--json", "wait", task_id, "--poll-interval", "1ms"],
        )
        .await,
    );
    assert_eq!(waited["state"], "success");
}

async fn run_uploads(sandbox: &SandboxHandle, args: &[&str]) -> Output {
    let mut full = vec!["--upload-base-url", sandbox.upload_url()];
    full.extend_from_slice(args);
    run(sandbox, &full).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_prints_the_hosted_url_in_human_and_json_modes() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().expect("dir");
    let image = dir.path().join("cat.png");
    let bytes = crate::support::scenarios::uploads::png(9, 4000);
    std::fs::write(&image, &bytes).expect("write");
    let path = image.to_str().expect("utf-8 path");

    let human = run_uploads(&sandbox, &["upload", path, "--path", "cats"]).await;
    assert_ok(&human);
    let url = stdout(&human).trim().to_owned();
    assert!(url.starts_with(sandbox.files_url()), "{url}");
    assert_eq!(crate::support::scenarios::served(&url).await, bytes);

    let answer = json(&run_uploads(&sandbox, &["--json", "upload", path, "--name", "c.png"]).await);
    assert_eq!(answer["filePath"], "images/veo-inputs/c.png");
    assert_eq!(answer["fileSize"], bytes.len());
    assert_eq!(answer["mimeType"], "image/png");
    let by_url = json(
        &run_uploads(
            &sandbox,
            &["--json", "upload", answer["downloadUrl"].as_str().unwrap()],
        )
        .await,
    );
    assert_eq!(
        crate::support::scenarios::served(by_url["downloadUrl"].as_str().unwrap()).await,
        bytes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_uploads_a_local_image_then_downloads_the_video() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().expect("dir");
    let image = dir.path().join("cat.png");
    std::fs::write(&image, crate::support::scenarios::uploads::png(10, 2000)).expect("write");
    let out = dir.path().join("cat.mp4");
    let output = run_uploads(
        &sandbox,
        &[
            "generate",
            "A cat walks",
            "--image",
            image.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_ok(&output);
    assert!(
        stderr(&output).contains(&format!(
            "uploaded {}: {}",
            image.display(),
            sandbox.files_url()
        )),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("generation task"),
        "{}",
        stdout(&output)
    );
    assert!(out.exists());
    assert_eq!(sandbox.stats().requests(Route::Upload), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_file_named_png_is_refused_before_any_request_with_exit_2() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().expect("dir");
    let fake = dir.path().join("notes.png");
    std::fs::write(&fake, "not a picture").expect("write");
    let output = run_uploads(
        &sandbox,
        &["generate", "A cat walks", "--image", fake.to_str().unwrap()],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("notes.png"), "{}", stderr(&output));
    let stats = sandbox.stats();
    assert_eq!(stats.requests(Route::Upload), 0);
    assert_eq!(stats.tasks_created, 0);
}
