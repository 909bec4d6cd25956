//! Batch files: JSONL, CSV, or one prompt per line, read and validated before anything is sent.
//!
//! - **JSONL** (`.jsonl`, `.ndjson`, or a file whose first non-blank line starts with `{`): one
//!   object per line with the generate request's fields (`prompt`, `model`, `aspect_ratio`,
//!   `imageUrls`, `seeds`, `resolution`, `enableTranslation`, `watermark`...) plus the job's
//!   own `name` (output file stem) and `upgrade` (`1080p` or `4k`).
//! - **CSV** (`.csv`): a header row naming the same columns; `imageUrls` holds URLs separated
//!   by spaces or `|`.
//! - **Plain text**: one prompt per line.
//!
//! Blank lines and lines starting with `#` are skipped in every format except inside CSV
//! quoting. Every line is checked, and all bad lines are reported with their numbers, so a
//! batch either starts whole or not at all.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};
use veo3_types::GenerateRequest;

use crate::job::{NewJob, Upgrade};
use crate::price::PriceTable;

/// The format of a batch file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A header row, then one job per row.
    Csv,
    /// One prompt per line.
    Text,
}

/// A line that cannot become a job.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LineError {
    /// The 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Why a batch file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Some lines are invalid (all of them are listed).
    #[error("{path}: {} invalid line(s); first: {}", .errors.len(), .errors[0])]
    Lines {
        /// The file.
        path: String,
        /// Every bad line.
        errors: Vec<LineError>,
    },
    /// The file holds no job.
    #[error("{path}: no job in the file")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Reads and validates the batch file at `path`, pricing each job with `prices`; `upgrade` is
/// the follow-up for jobs whose line does not name one.
pub fn read_file(
    path: &Path,
    prices: &PriceTable,
    upgrade: Option<Upgrade>,
) -> Result<Vec<NewJob>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let format = detect(path, &text);
    parse(&text, format, prices, upgrade).map_err(|e| match e {
        InputError::Lines { errors, .. } => InputError::Lines {
            path: path.display().to_string(),
            errors,
        },
        InputError::Empty { .. } => InputError::Empty {
            path: path.display().to_string(),
        },
        other => other,
    })
}

/// The format of a file from its extension, else from its first non-blank line.
pub fn detect(path: &Path, text: &str) -> Format {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jsonl" | "ndjson") => Format::Jsonl,
        Some("csv") => Format::Csv,
        _ => {
            let first = text.lines().map(str::trim).find(|l| !l.is_empty());
            if first.is_some_and(|l| l.starts_with('{')) {
                Format::Jsonl
            } else {
                Format::Text
            }
        }
    }
}

/// Parses `text` in `format` (the path in errors is left empty; see [`read_file`]).
pub fn parse(
    text: &str,
    format: Format,
    prices: &PriceTable,
    upgrade: Option<Upgrade>,
) -> Result<Vec<NewJob>, InputError> {
    let rows: Rows = match format {
        Format::Jsonl => content_lines(text)
            .map(|(line, content)| {
                let object = match serde_json::from_str::<Value>(content) {
                    Ok(Value::Object(object)) => Ok(object),
                    Ok(_) => Err("not a JSON object".to_owned()),
                    Err(e) => Err(format!("invalid JSON: {e}")),
                };
                (line, object)
            })
            .collect(),
        Format::Text => content_lines(text)
            .map(|(line, content)| {
                let mut object = Map::new();
                object.insert("prompt".into(), Value::String(content.to_owned()));
                (line, Ok(object))
            })
            .collect(),
        Format::Csv => csv_rows(text)?,
    };
    let mut jobs = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut names = HashSet::new();
    for (line, row) in rows {
        match row.and_then(|object| to_job(object, line, prices, upgrade)) {
            Ok(job) => {
                if names.insert(job.name.clone()) {
                    jobs.push(job);
                } else {
                    errors.push(LineError {
                        line,
                        message: format!("the name {:?} is used by an earlier line", job.name),
                    });
                }
            }
            Err(message) => errors.push(LineError { line, message }),
        }
    }
    if !errors.is_empty() {
        return Err(InputError::Lines {
            path: String::new(),
            errors,
        });
    }
    if jobs.is_empty() {
        return Err(InputError::Empty {
            path: String::new(),
        });
    }
    Ok(jobs)
}

/// Non-blank, non-comment lines with their 1-based numbers.
fn content_lines(text: &str) -> impl Iterator<Item = (u64, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index as u64 + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

type Rows = Vec<(u64, Result<Map<String, Value>, String>)>;

fn csv_rows(text: &str) -> Result<Rows, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let lines_error = |line: u64, message: String| InputError::Lines {
        path: String::new(),
        errors: vec![LineError { line, message }],
    };
    let headers = reader
        .headers()
        .map_err(|e| lines_error(1, format!("unreadable header row: {e}")))?
        .clone();
    if !headers.iter().any(|h| h == "prompt") {
        return Err(lines_error(
            1,
            "the header row has no `prompt` column".into(),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, csv::Position::line);
                let mut object = Map::new();
                for (header, value) in headers.iter().zip(record.iter()) {
                    if value.is_empty() {
                        continue;
                    }
                    let value = match header {
                        "imageUrls" | "image_urls" => Value::Array(
                            value
                                .split(|c: char| c == '|' || c.is_whitespace())
                                .filter(|u| !u.is_empty())
                                .map(|u| Value::String(u.to_owned()))
                                .collect(),
                        ),
                        "enableTranslation" => match value.parse::<bool>() {
                            Ok(b) => Value::Bool(b),
                            Err(_) => Value::String(value.to_owned()),
                        },
                        _ => Value::String(value.to_owned()),
                    };
                    object.insert(header.to_owned(), value);
                }
                rows.push((line, Ok(object)));
            }
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                rows.push((line, Err(format!("unreadable CSV row: {e}"))));
            }
        }
    }
    Ok(rows)
}

fn to_job(
    mut object: Map<String, Value>,
    line: u64,
    prices: &PriceTable,
    default_upgrade: Option<Upgrade>,
) -> Result<NewJob, String> {
    let name = match object.remove("name") {
        None => format!("line-{line:04}"),
        Some(Value::String(name)) => check_name(&name)?,
        Some(_) => return Err("`name` must be a string".into()),
    };
    let upgrade = match object.remove("upgrade") {
        None | Some(Value::Null) => default_upgrade,
        Some(Value::String(text)) => Some(text.parse::<Upgrade>()?),
        Some(_) => return Err("`upgrade` must be \"1080p\" or \"4k\"".into()),
    };
    if object.contains_key("callBackUrl") || object.contains_key("callbackUrl") {
        return Err("`callBackUrl` is set by the batch runner (per job); remove it".into());
    }
    let request: GenerateRequest =
        serde_json::from_value(Value::Object(object)).map_err(|e| e.to_string())?;
    request.validate().map_err(|e| e.to_string())?;
    let cost = prices.job(&request, upgrade);
    Ok(NewJob::new(request, name)
        .line(line)
        .upgrade(upgrade)
        .cost(cost))
}

/// An output name: letters, digits, `.`, `_`, `-`; not starting with `.`; at most 100 bytes.
fn check_name(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "invalid name {name:?}: use letters, digits, '.', '_' and '-' (not first '.'), at most 100"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str, format: Format) -> Result<Vec<NewJob>, InputError> {
        parse(text, format, &PriceTable::default(), None)
    }

    #[test]
    fn plain_text_is_one_prompt_per_line_skipping_blanks_and_comments() {
        let jobs = parse_text("a cat\n\n# note\na dog\n", Format::Text).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[1].request.prompt, "a dog");
        assert_eq!(jobs[1].line, Some(4));
        assert_eq!(jobs[1].name, "line-0004");
    }

    #[test]
    fn every_bad_jsonl_line_is_reported_with_its_number() {
        let text = "{\"prompt\":\"ok\",\"name\":\"a\"}\n{\"prompt\":\"\"}\nnot json\n{\"prompt\":\"x\",\"seeds\":5}\n{\"prompt\":\"y\",\"name\":\"a\"}\n";
        let Err(InputError::Lines { errors, .. }) = parse_text(text, Format::Jsonl) else {
            panic!("accepted");
        };
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5], "{errors:?}");
    }

    #[test]
    fn jsonl_lines_carry_request_fields_name_and_upgrade() {
        let text = r#"{"prompt":"a cat","model":"veo3","aspect_ratio":"9:16","name":"cat","upgrade":"4k"}"#;
        let jobs = parse(text, Format::Jsonl, &PriceTable::default(), None).unwrap();
        assert_eq!(jobs[0].name, "cat");
        assert_eq!(jobs[0].upgrade, Some(Upgrade::Uhd4k));
        assert_eq!(jobs[0].cost, 250 + 120);
        assert_eq!(jobs[0].request.model.as_str(), "veo3");
    }

    #[test]
    fn csv_rows_become_jobs_and_bad_rows_are_numbered() {
        let text = "prompt,model,name,imageUrls\na cat,veo3_fast,cat,https://i/1.png|https://i/2.png\n,veo3_fast,empty,\n";
        let Err(InputError::Lines { errors, .. }) = parse_text(text, Format::Csv) else {
            panic!("accepted");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3);
        let jobs = parse_text("prompt,name\na cat,cat\n", Format::Csv).unwrap();
        assert_eq!(jobs[0].name, "cat");
        assert_eq!(jobs[0].line, Some(2));
        assert!(parse_text("title\nx\n", Format::Csv).is_err());
    }

    #[test]
    fn names_cannot_escape_the_output_folder() {
        for name in ["../x", "a/b", ".hidden", ""] {
            let text = format!("{{\"prompt\":\"p\",\"name\":{name:?}}}");
            assert!(parse_text(&text, Format::Jsonl).is_err(), "{name}");
        }
    }
}
