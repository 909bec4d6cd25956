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
        let task_id = clean_line(task_id);
        if self.json {
            to_stderr(format_args!("{what} task {task_id} submitted"));
        } else {
            to_stdout(format_args!("{what} task {task_id} submitted"));
        }
    }

    /// A note for humans (stderr), silent in JSON mode.
    pub(crate) fn note(&self, message: impl AsRef<str>) {
        if !self.json {
            to_stderr(format_args!("{}", clean_text(message.as_ref())));
        }
    }

    /// The final result: `human` lines on stdout, or `value` as JSON.
    pub(crate) fn result(&self, value: Value, human: impl FnOnce() -> String) {
        if self.json {
            to_stdout(format_args!("{value}"));
        } else {
            let text = human();
            let text = clean_text(&text);
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
        "seeds": response.and_then(|r| r.seeds.clone()),
        "hasAudioList": response.and_then(|r| r.has_audio_list.clone()),
        "mediaIds": response.and_then(|r| r.media_ids.clone()),
        "paramJson": record.param_json,
        "errorCode": record.error_code,
        "errorMessage": record.error_message,
        "fallbackFlag": record.fallback_flag,
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
            clean_line(record.error_message.as_deref().unwrap_or(""))
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

/// `text` without control characters (escape sequences, carriage returns, bells, C1 codes),
/// for one line of human output. Strings from the API (task ids, messages, URLs) pass through
/// here, so a hostile or broken server cannot clear the screen, set the window title or fake
/// a line; what is left of an escape sequence is printable and harmless.
pub(crate) fn clean_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        text.chars()
            .filter(|c| !c.is_control())
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// [`clean_line`] for several lines: line breaks stay, other control characters go.
pub(crate) fn clean_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(|c| c.is_control() && c != '\n') {
        text.split('\n')
            .map(clean_line)
            .collect::<Vec<_>>()
            .join("\n")
            .into()
    } else {
        text.into()
    }
}

/// `word` as one shell word (single-quoted when it holds anything a shell would interpret),
/// for the commands printed in hints, which users paste back.
pub(crate) fn shell_word(word: &str) -> String {
    let word = clean_line(word);
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_the_api_never_reach_the_terminal() {
        let hostile = "boom\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{9b}31m";
        assert_eq!(clean_line(hostile), "boom]0;pwned[2J31m");
        assert_eq!(clean_text("a\u{1b}[2J\nb"), "a[2J\nb");
        assert_eq!(clean_line("plain"), "plain");
    }

    #[test]
    fn status_json_passes_every_field_of_the_record_through() {
        let record = TaskRecord::from_data(&json!({
            "taskId": "t1", "successFlag": 1, "paramJson": r#"{"prompt":"x"}"#,
            "fallbackFlag": false, "createTime": 1_700_000_000_000_i64,
            "completeTime": 1_700_000_100_000_i64,
            "response": {
                "resultUrls": ["https://f/a.mp4"], "originUrls": ["https://f/o.mp4"],
                "fullResultUrls": ["https://f/full.mp4"], "resolution": "1080p",
                "seeds": [12345], "hasAudioList": [true], "mediaIds": ["m1"],
            },
        }))
        .expect("record");
        let value = record_json(&record);
        for field in [
            "taskId",
            "paramJson",
            "createTime",
            "completeTime",
            "successFlag",
            "errorCode",
            "errorMessage",
            "fallbackFlag",
            "resultUrls",
            "originUrls",
            "fullResultUrls",
            "resolution",
            "seeds",
            "hasAudioList",
            "mediaIds",
        ] {
            assert!(value.get(field).is_some(), "{field} is missing: {value}");
        }
        for field in [
            "paramJson",
            "fallbackFlag",
            "seeds",
            "hasAudioList",
            "mediaIds",
        ] {
            assert!(!value[field].is_null(), "{field} is dropped: {value}");
        }
    }

    #[test]
    fn hints_quote_what_a_shell_would_interpret() {
        assert_eq!(shell_word("3f9c1e7a"), "3f9c1e7a");
        assert_eq!(shell_word("/tmp/my video.mp4"), "'/tmp/my video.mp4'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(
            shell_word("https://f.example/v.mp4?sig=a&x=1"),
            "'https://f.example/v.mp4?sig=a&x=1'"
        );
    }
}
