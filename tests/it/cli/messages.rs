//! What the `veo3` binary tells its user when something goes wrong or is stopped: every
//! signal that stops it says how to resume, every exit code keeps the README's promise,
//! every message states its problem once and names the flag or variable, and nothing a
//! server sends can drive the terminal.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};

use veo3_sandbox::{Outcome, Route, Sandbox};

use super::{FAST, KEY, first_line, run, sandbox, stderr, stdout, veo3};

/// Kills the child when a test ends early, so a failed assertion never leaves a download
/// running.
struct Reaper(Option<Child>);

impl Reaper {
    fn take(mut self) -> Child {
        self.0.take().expect("the child")
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn send_signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

async fn finish(child: Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("veo3 ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sighup_end_a_wait_like_ctrl_c_and_say_how_to_resume() {
    let sandbox = sandbox().await;
    // A journal of the test's own: never the user's.
    let journal = tempfile::tempdir().expect("temp dir");
    for (signal, code) in [("TERM", 143), ("HUP", 129)] {
        let mut child = Command::new(veo3())
            .args(["--base-url", sandbox.api_url(), "--api-key", KEY])
            .args(["generate", "A fox", "--wait", "--poll-interval", "10m"])
            .env("VEO3_JOURNAL", journal.path().join("journal.db"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("veo3 starts");
        let pipe = child.stdout.take().expect("piped stdout");
        let child = Reaper(Some(child));
        // The first line appears once the task exists, before the wait starts.
        let (line, _pipe) = first_line(pipe).await;
        let task_id = line
            .split_whitespace()
            .nth(2)
            .expect("a task id")
            .to_owned();
        let child = child.take();
        send_signal(&child, signal);
        let output = finish(child).await;
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "SIG{signal}: {message}");
        assert!(
            message.contains(&format!("`veo3 wait {task_id}`")),
            "SIG{signal}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_says_veo3_download_resumes_it() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("big.bin");
    // Far more than can arrive before the signal does.
    let url = sandbox.big_file_url(4 << 30);
    let child = Command::new(veo3())
        .args(["--base-url", sandbox.api_url(), "--api-key", KEY])
        .args(["download", &url, "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("veo3 starts");
    let child = Reaper(Some(child));
    // The transfer has started once its partial file exists (whatever its name).
    let started = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while std::fs::read_dir(dir.path()).map_or(true, |mut d| d.next().is_none()) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(started.is_ok(), "the download never started");
    let child = child.take();
    send_signal(&child, "TERM");
    let output = finish(child).await;
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(143), "{message}");
    let resume = format!("`veo3 download {url} --out {}`", out.display());
    assert!(message.contains(&resume), "{message}");
    assert!(!message.contains("veo3 wait"), "{message}");
}

/// A server that accepts every 4K request and names the job `job_id`, a different id from the
/// source's (the reference's examples echo the source, but the CLI must show whatever the
/// answer names), and then keeps it processing.
fn four_k_server(job_id: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0_u8; 8192];
            let _ = stream.read(&mut request);
            let body = format!(
                r#"{{"code":200,"msg":"success","data":{{"taskId":"{job_id}","resultUrls":null,"imageUrls":null}}}}"#
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Runs `veo3 ARGS` against `base_url` with piped output, killed if the test ends early.
fn spawn(base_url: &str, args: &[&str]) -> Reaper {
    let child = Command::new(veo3())
        .args(["--base-url", base_url, "--api-key", KEY])
        .args(args)
        .env_remove("RUST_LOG")
        // Never the user's journal (a generate or wait would open it).
        .env(
            "VEO3_JOURNAL",
            std::env::temp_dir().join(format!("veo3-test-{}.db", std::process::id())),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("veo3 starts");
    Reaper(Some(child))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_4k_upgrade_shows_the_4k_jobs_id_and_the_upgrade_command() {
    let url = four_k_server("job-4k-7f3a");
    let mut child = spawn(
        &url,
        &[
            "upgrade",
            "src-1",
            "--resolution",
            "4k",
            "--poll-interval",
            "10m",
        ],
    );
    let pipe = child
        .0
        .as_mut()
        .and_then(|c| c.stdout.take())
        .expect("stdout");
    // The job is shown once its request is answered, before the wait starts.
    let (line, _pipe) = first_line(pipe).await;
    assert_eq!(line.trim(), "4K task job-4k-7f3a submitted");
    let child = child.take();
    send_signal(&child, "INT");
    let output = finish(child).await;
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{message}");
    assert!(
        message.contains("4K job job-4k-7f3a (video 0 of task src-1)"),
        "the 4K job's own id: {message}"
    );
    assert!(
        message.contains("resume with `veo3 upgrade src-1 --resolution 4k`"),
        "{message}"
    );
    assert!(!message.contains("veo3 wait"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_1080p_upgrade_and_extension_name_the_command_that_resumes_them() {
    let sandbox = sandbox().await;
    let mut args = vec!["--json", "generate", "A heron at dawn", "--wait"];
    args.extend(FAST);
    let source = super::json(&run(&sandbox, &args).await)["taskId"]
        .as_str()
        .expect("a task id")
        .to_owned();

    // 1080p: the first request starts production; the next poll is 10 minutes away.
    let child = spawn(
        sandbox.api_url(),
        &[
            "upgrade",
            &source,
            "--resolution",
            "1080p",
            "--poll-interval",
            "10m",
        ],
    );
    let asked = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while sandbox.stats().requests(Route::Hd1080p) == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(asked.is_ok(), "the 1080p request was never made");
    let child = child.take();
    send_signal(&child, "TERM");
    let output = finish(child).await;
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(143), "{message}");
    assert!(
        message.contains(&format!("1080p version of video 0 of task {source}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("`veo3 upgrade {source} --resolution 1080p`")),
        "{message}"
    );

    // An extension is a task of its own: its id, not the source's, is waited for.
    let mut child = spawn(
        sandbox.api_url(),
        &[
            "extend",
            &source,
            "The heron takes off",
            "--wait",
            "--poll-interval",
            "10m",
        ],
    );
    let pipe = child
        .0
        .as_mut()
        .and_then(|c| c.stdout.take())
        .expect("stdout");
    let (line, _pipe) = first_line(pipe).await;
    let extension = line.split_whitespace().nth(2).expect("an id").to_owned();
    assert_ne!(extension, source);
    let child = child.take();
    send_signal(&child, "INT");
    let output = finish(child).await;
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{message}");
    assert!(
        message.contains(&format!("task {extension} keeps running"))
            && message.contains(&format!("`veo3 wait {extension}`")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_state_the_rule_once_and_name_the_flag() {
    let sandbox = sandbox().await;
    let cases: [(&[&str], &str, &str); 3] = [
        (&["generate", " "], "prompt must not be empty", "PROMPT"),
        (
            &["generate", "A fox", "--seeds", "5"],
            "between 10000 and 99999",
            "--seeds",
        ),
        (
            &["generate", "A fox", "--image", "ftp://example.com/a.png"],
            "must be an absolute http(s) URL",
            "--image",
        ),
    ];
    for (args, rule, flag) in cases {
        let output = run(&sandbox, args).await;
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert_eq!(message.matches(rule).count(), 1, "{args:?}: {message}");
        assert!(message.contains(flag), "{args:?} names {flag}: {message}");
    }
    assert_eq!(sandbox.stats().requests(Route::Generate), 0);
}

/// The reference's hard and soft rules, as the CLI applies them: three images without a
/// generation type are refused before anything is sent (kie infers first-and-last-frames,
/// which takes at most two), while REFERENCE_2_VIDEO with veo3 is a warning and the request is
/// sent, for the server to decide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_count_follows_kies_inference_and_reference_with_veo3_is_left_to_the_server() {
    let sandbox = sandbox().await;
    let images = [
        "--image",
        "https://example.com/1.png",
        "--image",
        "https://example.com/2.png",
        "--image",
        "https://example.com/3.png",
    ];
    let mut args = vec!["generate", "A fox"];
    args.extend(images);
    let refused = run(&sandbox, &args).await;
    let message = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    for part in [
        "FIRST_AND_LAST_FRAMES_2_VIDEO",
        "at most 2",
        "--image",
        "got 3",
    ] {
        assert!(message.contains(part), "names {part}: {message}");
    }
    assert_eq!(sandbox.stats().requests(Route::Generate), 0, "nothing sent");

    // Two images without a type are first and last frames: sent and accepted.
    let two = run(
        &sandbox,
        &[
            "generate",
            "A fox",
            "--no-journal",
            images[0],
            images[1],
            images[2],
            images[3],
        ],
    )
    .await;
    assert_eq!(two.status.code(), Some(0), "{}", stderr(&two));

    let soft = run(
        &sandbox,
        &[
            "generate",
            "A fox",
            "--no-journal",
            "--model",
            "veo3",
            "--generation-type",
            "reference",
            images[0],
            images[1],
        ],
    )
    .await;
    let message = stderr(&soft);
    assert!(
        message.contains("may not support REFERENCE_2_VIDEO")
            && message.contains("the server decides"),
        "warned: {message}"
    );
    assert_eq!(
        sandbox.stats().requests(Route::Generate),
        2,
        "the soft rule did not stop the request: {message}"
    );
    // The sandbox, like the pages it follows, refuses it: the server's answer, exit 1.
    assert_eq!(soft.status.code(), Some(1), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_exits_3_for_a_failed_task_and_never_2_after_a_request() {
    let sandbox = sandbox().await;
    sandbox.script_outcome(Route::Generate, Outcome::Moderation);
    let submitted = run(&sandbox, &["--json", "generate", "Flagged"]).await;
    let task_id = super::json(&submitted)["taskId"]
        .as_str()
        .expect("a task id")
        .to_owned();
    let mut wait = vec!["wait", task_id.as_str()];
    wait.extend(FAST);
    assert_eq!(run(&sandbox, &wait).await.status.code(), Some(3));

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("v.mp4");
    let out = out.to_str().expect("utf-8 path");
    let failed = run(&sandbox, &["download", &task_id, "--out", out]).await;
    let message = stderr(&failed);
    assert_eq!(failed.status.code(), Some(3), "{message}");
    assert_eq!(message.matches("content polic").count(), 1, "{message}");

    // A task still running: a request was made, so not 2 ("nothing sent").
    let slow = Sandbox::builder()
        .key(KEY)
        .time_scale(1.0)
        .start()
        .await
        .expect("sandbox starts");
    let submitted = run(&slow, &["--json", "generate", "A fox"]).await;
    let task_id = super::json(&submitted)["taskId"]
        .as_str()
        .expect("a task id")
        .to_owned();
    let running = run(&slow, &["download", &task_id, "--out", out]).await;
    assert_eq!(running.status.code(), Some(1), "{}", stderr(&running));
    assert!(
        stderr(&running).contains("no video yet"),
        "{}",
        stderr(&running)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_kie_api_key_is_reported_as_kie_api_key_not_as_the_arguments() {
    use std::os::unix::ffi::OsStrExt as _;
    let sandbox = sandbox().await;
    let not_utf8 = std::ffi::OsStr::from_bytes(b"sk-\xff\xfe");
    for (value, problem) in [
        (not_utf8, "not valid UTF-8"),
        (std::ffi::OsStr::new("sk with spaces"), "whitespace"),
    ] {
        let output = Command::new(veo3())
            .args(["--base-url", sandbox.api_url(), "credits"])
            .env("KIE_API_KEY", value)
            .output()
            .expect("veo3 runs");
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{message}");
        assert!(message.contains("KIE_API_KEY"), "{message}");
        assert!(message.contains(problem), "{message}");
        assert!(!message.contains("arguments"), "{message}");
        assert_eq!(message.lines().count(), 1, "{message}");
    }
    assert_eq!(sandbox.stats().requests(Route::Credits), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_environment_variable_counts_as_unset() {
    let sandbox = sandbox().await;
    // KIE_BASE_URL= means the default URL: the command goes on to its own check (an empty
    // task id) instead of failing on the base URL. Nothing reaches the network.
    let output = Command::new(veo3())
        .args(["upgrade", " ", "--resolution", "1080p"])
        .env("KIE_BASE_URL", "")
        .env("KIE_API_KEY", KEY)
        .output()
        .expect("veo3 runs");
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("taskId"), "{message}");
    assert!(!message.contains("base URL"), "{message}");

    // KIE_API_KEY= is no key at all.
    let output = Command::new(veo3())
        .args(["--base-url", sandbox.api_url(), "credits"])
        .env("KIE_API_KEY", "")
        .output()
        .expect("veo3 runs");
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("no API key"), "{message}");

    // RUST_LOG= is the default filter, not "log nothing at all" or an error.
    let output = Command::new(veo3())
        .args([
            "--base-url",
            sandbox.api_url(),
            "--api-key",
            KEY,
            "-vv",
            "credits",
        ])
        .env("RUST_LOG", "")
        .output()
        .expect("veo3 runs");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).is_empty(), "-vv logs at trace level");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let sandbox = sandbox().await;
    let output = run(&sandbox, &["-vv", "credits"]).await;
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(!log.is_empty(), "-vv logs");
    assert!(!log.contains('\u{1b}'), "{log}");
}

/// A server whose every answer is a failed task full of terminal escape sequences.
fn hostile_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0_u8; 4096];
            let _ = stream.read(&mut request);
            let body = r#"{"code":200,"msg":"success","data":{"taskId":"t\u001b[2J1","successFlag":2,"errorCode":400,"errorMessage":"bad\u001b]0;pwned\u0007 news\r\u009b2J","response":{"resultUrls":["https://f.example/\u001b[31mv.mp4"]}}}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_sequences_from_the_api_never_reach_human_output() {
    let url = hostile_server();
    for args in [
        &["status", "t1"][..],
        &["wait", "t1", "--poll-interval", "20ms"][..],
    ] {
        let output = Command::new(veo3())
            .args(["--base-url", &url, "--api-key", KEY])
            .args(args)
            .output()
            .expect("veo3 runs");
        for text in [stdout(&output), stderr(&output)] {
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "{args:?}: {text:?}"
            );
        }
        assert!(
            stdout(&output).contains("pwned") || stderr(&output).contains("pwned"),
            "the message itself is kept: {args:?}"
        );
    }
}
