//! What a batch leaves next to its videos: `manifest.jsonl` (one line per job) and
//! `index.html`, a self-contained gallery that plays every downloaded video offline.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::job::{Job, JobState};

/// The manifest line of a job: job, name, prompt, model, task id, state, file, bytes, sha256,
/// urls, cost, timings and, for a failure, its code and message.
pub fn manifest_line(job: &Job) -> Value {
    let mut line = json!({
        "job": job.id.0,
        "name": job.name,
        "line": job.line,
        "prompt": job.request.prompt,
        "model": job.request.model.as_str(),
        "taskId": job.state.task_id(),
        "state": job.state.kind().as_str(),
        "cost": job.cost,
        "createdMs": job.times.created_ms,
        "submittedMs": job.times.submitted_ms,
        "finishedMs": job.times.finished_ms,
    });
    match &job.state {
        JobState::Downloaded {
            path,
            bytes,
            sha256,
            url,
            ..
        } => {
            line["file"] = json!(path.file_name().map(|f| f.to_string_lossy()));
            line["bytes"] = json!(bytes);
            line["sha256"] = json!(sha256);
            line["urls"] = json!([url]);
        }
        JobState::Succeeded { urls, .. } => line["urls"] = json!(urls),
        JobState::Failed { code, message, .. } => {
            line["errorCode"] = json!(code);
            line["errorMessage"] = json!(message);
        }
        _ => {}
    }
    line
}

/// Writes `manifest.jsonl` and `index.html` for `jobs` into `dir`, each under a temporary
/// name first and renamed, so neither is ever half-written under its final name. Returns
/// their paths.
pub fn write(dir: &Path, title: &str, jobs: &[Job]) -> std::io::Result<(PathBuf, PathBuf)> {
    let mut manifest = String::new();
    for job in jobs {
        manifest.push_str(&manifest_line(job).to_string());
        manifest.push('\n');
    }
    let manifest_path = dir.join("manifest.jsonl");
    write_atomically(&manifest_path, manifest.as_bytes())?;
    let gallery_path = dir.join("index.html");
    write_atomically(&gallery_path, gallery(title, jobs).as_bytes())?;
    Ok((manifest_path, gallery_path))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut temporary = path.as_os_str().to_owned();
    // Per process: workers sharing an output folder each write the report of the batch.
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)
}

/// The gallery page: one card per job, a `<video>` for each downloaded one (its file next to
/// the page, by relative URL), with prompt, model, state and cost. No script, no network.
pub fn gallery(title: &str, jobs: &[Job]) -> String {
    let mut cards = String::new();
    for job in jobs {
        let media = match &job.state {
            JobState::Downloaded { path, .. } => {
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!(
                    "<video controls preload=\"metadata\" src=\"{}\"></video>",
                    escape(&file)
                )
            }
            other => format!("<div class=\"none\">{}</div>", escape(&other.to_string())),
        };
        cards.push_str(&format!(
            "<figure class=\"{state}\" id=\"job-{id}\">{media}<figcaption><b>{name}</b> \
             <span>{state}</span><p>{prompt}</p><small>{model} &middot; {cost} credits{task}</small>\
             </figcaption></figure>\n",
            state = job.state.kind().as_str(),
            id = job.id,
            name = escape(&job.name),
            prompt = escape(&job.request.prompt),
            model = escape(job.request.model.as_str()),
            cost = job.cost,
            task = job
                .state
                .task_id()
                .map(|t| format!(" &middot; task {}", escape(t)))
                .unwrap_or_default(),
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>\
         body{{font:14px system-ui,sans-serif;margin:1.5em;background:#fafafa}}\
         main{{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1em}}\
         figure{{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;overflow:hidden}}\
         video{{width:100%;display:block;background:#000}}\
         .none{{padding:3em 1em;text-align:center;color:#888}}\
         figcaption{{padding:.6em}} figcaption p{{margin:.4em 0}} small{{color:#666}}\
         .failed span,.unknown span{{color:#b00}}\
         </style></head><body><h1>{title}</h1><main>\n{cards}</main></body></html>\n",
        title = escape(title),
    )
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_cannot_inject_markup_into_the_gallery() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
