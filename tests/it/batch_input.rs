//! Bad batch files are refused as strictly as the command line refuses the same values: each
//! case exits 2 naming the file, the line and the field, with nothing sent. Also `duration`
//! reaching the sandbox from `veo3 generate` and a batch line, and waits through the
//! sandbox's early "record is null" (issue 22).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use veo3_sandbox::{Route, Sandbox, SandboxBuilder, SandboxHandle};

use crate::support::workspace_binary;

const KEY: &str = "sk-batch-input-test";

fn veo3_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| workspace_binary("veo3-cli", "veo3"))
}

/// Generations of 300 ms (real time; 30 s of service time).
fn sandbox_builder() -> SandboxBuilder {
    Sandbox::builder().key(KEY).time_scale(0.01).seed(29)
}

async fn start(builder: SandboxBuilder) -> SandboxHandle {
    builder.start().await.expect("sandbox starts")
}

/// `veo3 ARGS` against `sandbox` in `dir`, with its journal there.
fn command(dir: &Path, sandbox: &SandboxHandle, args: &[&str]) -> Command {
    let mut command = Command::new(veo3_binary());
    command
        .args(["--base-url", sandbox.api_url(), "--api-key", KEY])
        .args(args)
        .env("VEO3_JOURNAL", dir.join("journal.db"))
        .env_remove("KIE_API_KEY")
        .env_remove("KIE_BASE_URL")
        .env_remove("RUST_LOG")
        .current_dir(dir);
    command
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("veo3 runs"))
        .await
        .expect("join")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `bytes` to `name` in `dir` and runs `veo3 batch run FILE` on it (with `--dry-run`
/// when `dry`).
async fn batch(
    dir: &Path,
    sandbox: &SandboxHandle,
    name: &str,
    bytes: &[u8],
    dry: bool,
) -> (PathBuf, Output) {
    let file = dir.join(name);
    std::fs::write(&file, bytes).expect("write the batch file");
    let out = dir.join("videos");
    let mut args = vec![
        "batch",
        "run",
        file.to_str().expect("utf-8 path"),
        "--out-dir",
        out.to_str().expect("utf-8 path"),
        "--poll-interval",
        "20ms",
    ];
    if dry {
        args.push("--dry-run");
    }
    let result = output(command(dir, sandbox, &args)).await;
    (file, result)
}

/// A bad batch file: exit 2, stderr naming `FILE:LINE:` and `field`, nothing sent.
async fn refused(name: &str, bytes: &[u8], line: u64, field: &str) {
    let sandbox = start(sandbox_builder()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    for dry in [true, false] {
        let (file, out) = batch(dir.path(), &sandbox, name, bytes, dry).await;
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name} (dry {dry}): {text}");
        let location = format!("{}:{line}:", file.display());
        assert!(text.contains(&location), "{name}: names {location}: {text}");
        assert!(text.contains(field), "{name}: names {field}: {text}");
    }
    let stats = sandbox.stats();
    assert_eq!(stats.requests.values().sum::<u64>(), 0, "{name}: {stats:?}");
    assert!(sandbox.tasks().is_empty(), "{name}: no task created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_is_not_a_string_is_refused() {
    refused(
        "model.jsonl",
        b"{\"prompt\":\"m1\",\"model\":5}\n",
        1,
        "`model`",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_field_is_refused() {
    let file = b"{\"prompt\":\"ok\"}\n{\"prompt\":\"m1\",\"modle\":\"veo3\"}\n";
    refused("typo.jsonl", file, 2, "`modle`").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_model_is_refused_at_parse_time() {
    refused(
        "veo4.jsonl",
        b"{\"prompt\":\"m1\",\"model\":\"veo4\"}\n",
        1,
        "veo4",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_aspect_ratio_is_refused_at_parse_time() {
    let file = b"{\"prompt\":\"m1\",\"aspect_ratio\":\"4:3\"}\n";
    refused("ratio.jsonl", file, 1, "`aspect_ratio`").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbalanced_csv_quote_is_refused() {
    // The quote swallows the next row: two fields, the first across two lines.
    let file = b"prompt,model\n\"a cat on a wall,veo3_fast\na dog\",veo3_fast\n";
    refused("quote.csv", file, 2, "`prompt`").await;
    // Left open to the end, with rows of another width: the row is refused by the reader.
    let file = b"prompt,name\n\"a cat on a wall,cat\na dog,dog\n";
    refused("open.csv", file, 2, "quote").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_refused_with_its_line() {
    let file = b"a cat\na dog\na \xff\xfe fish\n";
    refused("latin.txt", file, 3, "UTF-8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_byte_in_a_prompt_is_refused() {
    refused("nul.txt", b"a cat\na \0dog\n", 2, "prompt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_differ_only_by_case_are_refused() {
    let file = b"{\"prompt\":\"a\",\"name\":\"Same\"}\n{\"prompt\":\"b\",\"name\":\"same\"}\n";
    refused("names.jsonl", file, 2, "`name`").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_past_the_limit_is_refused() {
    let mut file = b"a cat\n".to_vec();
    file.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    file.push(b'\n');
    refused(
        "huge.txt",
        &file,
        2,
        "prompt must be at most 10000 characters",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_outside_the_list_is_refused() {
    refused(
        "five.jsonl",
        b"{\"prompt\":\"a\",\"duration\":5}\n",
        1,
        "duration",
    )
    .await;
}

/// A byte-order mark is not part of the first prompt, nor of the first JSON object or CSV
/// header; each file's one job is sent with its prompt as written. `duration` in a JSONL
/// line and a CSV column reaches kie; every job carries `enableTranslation`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bom_is_stripped_and_duration_columns_reach_kie() {
    let sandbox = start(sandbox_builder()).await;
    let files: [(&str, &[u8], &str, Option<i64>); 3] = [
        (
            "bom.txt",
            b"\xef\xbb\xbfa fox in the snow\n",
            "a fox in the snow",
            None,
        ),
        (
            "bom.jsonl",
            b"\xef\xbb\xbf{\"prompt\":\"a heron\",\"duration\":6}\n",
            "a heron",
            Some(6),
        ),
        (
            "bom.csv",
            b"\xef\xbb\xbfprompt,duration\nan owl,4\n",
            "an owl",
            Some(4),
        ),
    ];
    for (name, bytes, prompt, duration) in files {
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, out) = batch(dir.path(), &sandbox, name, bytes, false).await;
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let task = sandbox.tasks().pop().expect("a task");
        assert_eq!(task.prompt.as_deref(), Some(prompt), "{name}");
        assert_eq!(task.duration, duration, "{name}");
        assert_eq!(task.enable_translation, Some(true), "{name}");
    }
    assert_eq!(sandbox.tasks().len(), 3);
}

/// `veo3 generate --duration 4 --out` reaches kie with `"duration":4` and waits through an
/// early "record is null" (the sandbox's fault, for the first 25 s of service time: 250 ms);
/// `--duration 5` and `--generation-type reference --duration 6` exit 2 with nothing sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_sends_duration_and_waits_out_an_early_record_is_null() {
    let sandbox = start(sandbox_builder().record_null_early(Duration::from_secs(25))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let image = "https://img.example.com/ref.png";
    let refusals: [(&[&str], &str); 2] = [
        (&["generate", "A fox", "--duration", "5"], "4, 6 or 8"),
        (
            &[
                "generate",
                "A fox",
                "--generation-type",
                "reference",
                "--image",
                image,
                "--duration",
                "6",
            ],
            "REFERENCE_2_VIDEO",
        ),
    ];
    for (args, rule) in refusals {
        let out = output(command(dir.path(), &sandbox, args)).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(rule), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(sandbox.stats().requests(Route::Generate), 0, "nothing sent");

    let video = dir.path().join("f.mp4");
    let args = [
        "generate",
        "A fox",
        "--duration",
        "4",
        "--out",
        video.to_str().expect("utf-8 path"),
        "--poll-interval",
        "10ms",
    ];
    let out = output(command(dir.path(), &sandbox, &args)).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(video.exists());
    let tasks = sandbox.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].duration, Some(4));
    assert_eq!(tasks[0].enable_translation, Some(true));
    assert!(
        sandbox.stats().faults("record-null-early") >= 1,
        "the wait met the early answer: {:?}",
        sandbox.stats()
    );
}

/// A batch run whose every task is invisible for its first 250 ms finishes every job, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_run_waits_out_an_early_record_is_null() {
    let sandbox = start(sandbox_builder().record_null_early(Duration::from_secs(25))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let prompts: String = (0..4).map(|i| format!("a kite number {i}\n")).collect();
    let (_, out) = batch(dir.path(), &sandbox, "kites.txt", prompts.as_bytes(), false).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sandbox.tasks().len(), 4, "one task per job");
    assert!(sandbox.stats().faults("record-null-early") >= 1);
}
