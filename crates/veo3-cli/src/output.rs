//! What the commands print: human lines, or one JSON document on stdout with `--json`.

use std::path::Path;

use serde_json::{Value, json};
use veo3_types::{TaskRecord, TaskState};

/// Prints results in the mode the user chose.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Printer {
    pub(crate) json: bool,
}

impl Printer {
    /// Announces a new task id at once (before any wait), so an interrupted wait can be
    /// resumed. Human mode: on stdout. JSON mode: on stderr, keeping stdout one document.
    pub(crate) fn task_submitted(&self, what: &str, task_id: &str) {
        if self.json {
            to_stderr(format_args!("{what} task {task_id} submitted"));
        } else {
            to_stdout(format_args!("{what} task {task_id} submitted"));
        }
    }

    /// A note for humans (stderr), silent in JSON mode.
    pub(crate) fn note(&self, message: impl AsRef<str>) {
        if !self.json {
            to_stderr(format_args!("{}", message.as_ref()));
        }
    }

    /// The final result: `human` lines on stdout, or `value` as JSON.
    pub(crate) fn result(&self, value: Value, human: impl FnOnce() -> String) {
        if self.json {
            to_stdout(format_args!("{value}"));
        } else {
            let text = human();
            if !text.is_empty() {
                to_stdout(format_args!("{text}"));
            }
        }
    }
}

/// A task record as JSON, with the normalised fields (whatever shape the server used).
pub(crate) fn record_json(record: &TaskRecord) -> Value {
    let response = record.response.as_ref();
    json!({
        "taskId": record.task_id,
        "state": state_name(&record.state),
        "successFlag": record.state.flag(),
        "videoUrls": record.video_urls(),
        "resultUrls": response.map(|r| r.result_urls.clone()).unwrap_or_default(),
        "fullResultUrls": response.and_then(|r| r.full_result_urls.clone()),
        "originUrls": response.and_then(|r| r.origin_urls.clone()),
        "resolution": response.and_then(|r| r.resolution.as_ref().map(|r| r.to_string())),
        "errorCode": record.error_code,
        "errorMessage": record.error_message,
        "createTime": record.create_time.map(|t| t.epoch_millis()),
        "completeTime": record.complete_time.map(|t| t.epoch_millis()),
    })
}

/// The record for humans: the state, then one URL per line.
pub(crate) fn record_text(record: &TaskRecord) -> String {
    let mut lines = vec![format!("task {}: {}", record.task_id, record.state)];
    if let Some(code) = record.error_code {
        lines.push(format!(
            "error code {code}: {}",
            record.error_message.as_deref().unwrap_or("")
        ));
    }
    lines.extend(record.video_urls().iter().cloned());
    lines.join("\n")
}

fn state_name(state: &TaskState) -> String {
    match state {
        TaskState::Generating => "generating".into(),
        TaskState::Success => "success".into(),
        TaskState::Failed => "failed".into(),
        TaskState::GenerationFailed => "generation_failed".into(),
        other => other.to_string(),
    }
}

/// `{"path": ..., "bytes": ...}` for a finished download.
pub(crate) fn download_json(path: &Path, bytes: u64) -> Value {
    json!({"path": path.display().to_string(), "bytes": bytes})
}

/// Writes a line to stdout and flushes it (so a task id reaches a pipe before a long wait).
/// A reader that went away (`veo3 ... | head -1`) is not an error worth a panic: the line is
/// dropped, as `println!` would have panicked.
pub(crate) fn to_stdout(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// Writes a line to stderr; like [`to_stdout`], a closed stderr is ignored.
pub(crate) fn to_stderr(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
