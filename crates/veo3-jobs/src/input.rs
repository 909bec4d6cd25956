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
//!
//! `imageUrls` entries may be local files (anything that is not `scheme://...`), relative to
//! the batch file's folder: each is checked on disk (exists, readable, at most 100 MB, JPEG,
//! PNG or WebP by content) with the other checks, naming its line and file. Such a job holds
//! the file's absolute path until [`upload_local_images`] replaces it with the hosted URL,
//! which the batch is journaled with: a resume never uploads again, and nothing is billed
//! before every image was checked and uploaded.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use veo3_core::{Effects, Veo3Api};
use veo3_types::{
    AspectRatio, GenerateRequest, GenerationType, ImageInput, Model, Resolution, UploadOptions,
    VideoDuration,
};

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
    let bytes = std::fs::read(path).map_err(|source| InputError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        InputError::Lines {
            path: path.display().to_string(),
            errors: vec![LineError {
                line,
                message: format!(
                    "not valid UTF-8 (byte {} of the file); save the file as UTF-8",
                    e.utf8_error().valid_up_to()
                ),
            }],
        }
    })?;
    let text = strip_bom(&text);
    let format = detect(path, text);
    let base = path.parent().unwrap_or(Path::new(""));
    parse_in(text, format, prices, upgrade, base).map_err(|e| match e {
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

/// Parses `text` in `format` (the path in errors is left empty; see [`read_file`]); local
/// images are relative to the current folder.
pub fn parse(
    text: &str,
    format: Format,
    prices: &PriceTable,
    upgrade: Option<Upgrade>,
) -> Result<Vec<NewJob>, InputError> {
    parse_in(text, format, prices, upgrade, Path::new(""))
}

/// A UTF-8 byte-order mark at the start is not part of the first line, whatever the format.
fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

fn parse_in(
    text: &str,
    format: Format,
    prices: &PriceTable,
    upgrade: Option<Upgrade>,
    base: &Path,
) -> Result<Vec<NewJob>, InputError> {
    let text = strip_bom(text);
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
    // Names are compared without case: `Same` and `same` are one file on case-insensitive
    // file systems (macOS, Windows).
    let mut names: HashMap<String, (String, u64)> = HashMap::new();
    for (line, row) in rows {
        match row.and_then(|object| to_job(object, line, prices, upgrade, base)) {
            Ok(job) => match names.get(&job.name.to_lowercase()) {
                None => {
                    names.insert(job.name.to_lowercase(), (job.name.clone(), line));
                    jobs.push(job);
                }
                Some((earlier, _)) if *earlier == job.name => errors.push(LineError {
                    line,
                    message: format!("`name` {:?} is used by an earlier line", job.name),
                }),
                Some((earlier, earlier_line)) => errors.push(LineError {
                    line,
                    message: format!(
                        "`name` {:?} differs only by case from {earlier:?} (line {earlier_line}): the two files would collide on a case-insensitive file system",
                        job.name
                    ),
                }),
            },
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
                // A quoted value across lines is almost always a quote left open, which
                // swallows the rows after it into one value (a prompt has no line breaks).
                if let Some((header, _)) = headers
                    .iter()
                    .zip(record.iter())
                    .find(|(_, value)| value.contains(['\n', '\r']))
                {
                    rows.push((
                        line,
                        Err(format!(
                            "`{header}` runs past the end of the line: a quote (\") opened on line {line} is not closed (values cannot hold line breaks)"
                        )),
                    ));
                    continue;
                }
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
                        "seeds" | "duration" => match value.parse::<i64>() {
                            Ok(n) => Value::from(n),
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
                // A row of the wrong width that holds a quote is most often a quote left open.
                let hint = match (e.kind(), e.position()) {
                    (csv::ErrorKind::UnequalLengths { .. }, Some(position))
                        if text
                            .get(usize::try_from(position.byte()).unwrap_or(usize::MAX)..)
                            .and_then(|rest| rest.lines().next())
                            .is_some_and(|row| row.contains('"')) =>
                    {
                        format!(" (a quote (\") opened on line {line} may not be closed)")
                    }
                    _ => String::new(),
                };
                rows.push((line, Err(format!("unreadable CSV row: {e}{hint}"))));
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
    base: &Path,
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
    let images = take_images(&mut object, base)?.unwrap_or_default();
    // Every image checked with the rest of the request, local files on disk.
    for (index, image) in images.iter().enumerate() {
        image.validate(index).map_err(|e| e.to_string())?;
    }
    let urls = images
        .iter()
        .map(|image| match image {
            ImageInput::Url(url) => url.clone(),
            _ => "https://upload.invalid/image".to_owned(),
        })
        .collect();
    let mut request = request_of(&object, urls)?;
    for image in &images {
        if let ImageInput::Path(path) = image {
            veo3_core::LocalFile::inspect_image(path).map_err(|e| e.to_string())?;
        }
    }
    request.image_urls = images.iter().map(image_text).collect();
    let cost = prices.job(&request, upgrade);
    Ok(NewJob::new(request, name)
        .line(line)
        .upgrade(upgrade)
        .cost(cost))
}

/// Takes `imageUrls` out of a row: each entry a URL or a local file (made absolute against
/// `base`); `None` when the row has none; an error unless it is an array of strings.
fn take_images(
    object: &mut Map<String, Value>,
    base: &Path,
) -> Result<Option<Vec<ImageInput>>, String> {
    let Some(key) = one_of(object, &["imageUrls", "image_urls"])? else {
        return Ok(None);
    };
    let texts: Option<Vec<String>> = match object.remove(key) {
        Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    };
    let texts = texts.ok_or_else(|| format!("`{key}` must be an array of strings"))?;
    Ok(Some(
        texts
            .iter()
            .map(|text| match ImageInput::parse(text) {
                ImageInput::Path(path) if path.is_relative() => ImageInput::Path(base.join(path)),
                other => other,
            })
            .map(|image| match image {
                ImageInput::Path(path) => ImageInput::Path(absolute(&path)),
                other => other,
            })
            .collect(),
    ))
}

/// The columns (JSONL fields) a row may have besides `name` and `upgrade`: every field of the
/// generate request but `callBackUrl` (the runner's), under its wire name and the alias the
/// reference records for it. Anything else is refused, so a misspelt field (`modle`) is an
/// error rather than a job billed on the default.
pub const REQUEST_COLUMNS: &[&str] = &[
    "prompt",
    "model",
    "generationType",
    "generation_type",
    "imageUrls",
    "image_urls",
    "aspect_ratio",
    "aspectRatio",
    "resolution",
    "seeds",
    "enableTranslation",
    "watermark",
    "duration",
];

/// The key of `keys` (one field's spellings) the row uses; an error when it uses two.
fn one_of(
    object: &Map<String, Value>,
    keys: &[&'static str],
) -> Result<Option<&'static str>, String> {
    let mut present = keys.iter().copied().filter(|key| object.contains_key(*key));
    let first = present.next();
    match present.next() {
        Some(second) => Err(format!(
            "`{}` and `{second}` are the same field; keep one",
            first.unwrap_or_default()
        )),
        None => Ok(first),
    }
}

/// The row's value for one field (any of its spellings), `None` when absent or null.
fn value_of<'a>(
    object: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Result<Option<(&'static str, &'a Value)>, String> {
    Ok(one_of(object, keys)?
        .and_then(|key| object.get(key).map(|value| (key, value)))
        .filter(|(_, value)| !value.is_null()))
}

/// A string field, refused when it is of another type.
fn string_of<'a>(
    object: &'a Map<String, Value>,
    keys: &[&'static str],
    expected: &str,
) -> Result<Option<&'a str>, String> {
    match value_of(object, keys)? {
        None => Ok(None),
        Some((_, Value::String(text))) => Ok(Some(text)),
        Some((key, other)) => Err(format!("`{key}` must be {expected}, got {other}")),
    }
}

/// A value the command line would refuse as unknown (`Other`) is refused here too, at parse
/// time, naming the values it takes.
fn known<T>(key: &str, text: &str, value: T, is_other: bool, allowed: &str) -> Result<T, String> {
    if is_other {
        Err(format!("`{key}`: unknown value {text:?}; use {allowed}"))
    } else {
        Ok(value)
    }
}

/// The generate request of a row (images excepted, taken before), typed strictly: every
/// field of the right JSON type, enums among the values this version knows (as
/// `veo3 generate` refuses others), no field the request does not have.
fn request_of(
    object: &Map<String, Value>,
    image_urls: Vec<String>,
) -> Result<GenerateRequest, String> {
    if let Some(unknown) = object
        .keys()
        .find(|key| !REQUEST_COLUMNS.contains(&key.as_str()))
    {
        return Err(format!(
            "unknown field `{unknown}` (a row takes name, upgrade and {})",
            REQUEST_COLUMNS.join(", ")
        ));
    }
    let prompt = match value_of(object, &["prompt"])? {
        None => return Err("`prompt` is missing".into()),
        Some((_, Value::String(prompt))) => prompt,
        Some((_, other)) => return Err(format!("`prompt` must be a string, got {other}")),
    };
    let mut builder = GenerateRequest::builder(prompt.as_str());
    if let Some(text) = string_of(
        object,
        &["model"],
        "a string (veo3_fast, veo3 or veo3_lite)",
    )? {
        let model = Model::from_wire(text);
        let other = matches!(model, Model::Other(_));
        builder = builder.model(known(
            "model",
            text,
            model,
            other,
            "veo3_fast, veo3 or veo3_lite",
        )?);
    }
    let spellings = ["generationType", "generation_type"];
    if let Some(text) = string_of(object, &spellings, "a string")? {
        let ty = GenerationType::from_wire(text);
        let other = matches!(ty, GenerationType::Other(_));
        let allowed = "TEXT_2_VIDEO, FIRST_AND_LAST_FRAMES_2_VIDEO or REFERENCE_2_VIDEO";
        builder = builder.generation_type(known("generationType", text, ty, other, allowed)?);
    }
    let spellings = ["aspect_ratio", "aspectRatio"];
    if let Some(text) = string_of(object, &spellings, "a string (16:9, 9:16 or Auto)")? {
        let ratio = AspectRatio::from_wire(text);
        let other = matches!(ratio, AspectRatio::Other(_));
        builder = builder.aspect_ratio(known(
            "aspect_ratio",
            text,
            ratio,
            other,
            "16:9, 9:16 or Auto",
        )?);
    }
    if let Some(text) = string_of(object, &["resolution"], "a string (720p, 1080p or 4k)")? {
        let resolution = Resolution::from_wire(text);
        let other = matches!(resolution, Resolution::Other(_));
        builder = builder.resolution(known(
            "resolution",
            text,
            resolution,
            other,
            "720p, 1080p or 4k",
        )?);
    }
    if let Some((key, value)) = value_of(object, &["seeds"])? {
        let seeds = value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("`{key}` must be an integer (10000-99999), got {value}"))?;
        builder = builder.seeds(seeds);
    }
    if let Some((key, value)) = value_of(object, &["duration"])? {
        let seconds = value.as_i64().ok_or_else(|| {
            format!("`{key}` must be a whole number of seconds (4, 6 or 8), got {value}")
        })?;
        builder = builder.duration(VideoDuration::from_seconds(seconds));
    }
    if let Some((key, value)) = value_of(object, &["enableTranslation"])? {
        let enable = value
            .as_bool()
            .ok_or_else(|| format!("`{key}` must be true or false, got {value}"))?;
        builder = builder.enable_translation(enable);
    }
    if let Some(watermark) = string_of(object, &["watermark"], "a string")? {
        builder = builder.watermark(watermark);
    }
    // Every rule of the request, the image count and URLs included.
    builder
        .image_urls(image_urls)
        .build()
        .map_err(|e| e.to_string())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// How a checked image is held in a job's `image_urls` until upload: the URL, or the path.
fn image_text(image: &ImageInput) -> String {
    match image {
        ImageInput::Path(path) => path.display().to_string(),
        ImageInput::Url(url) => url.clone(),
        other => other.name(),
    }
}

/// The local file an `image_urls` entry of a job read by [`read_file`] stands for, if it is
/// not a URL.
pub fn local_image(entry: &str) -> Option<PathBuf> {
    match ImageInput::parse(entry) {
        ImageInput::Path(path) => Some(path),
        _ => None,
    }
}

/// Whether any job still holds a local image (see [`upload_local_images`]).
pub fn has_local_images(jobs: &[NewJob]) -> bool {
    jobs.iter()
        .flat_map(|job| &job.request.image_urls)
        .any(|entry| local_image(entry).is_some())
}

/// A local image that could not be uploaded.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: uploading {path}: {source}")]
#[non_exhaustive]
pub struct UploadError {
    /// The line of the first job using the image.
    pub line: u64,
    /// The image.
    pub path: PathBuf,
    /// Why.
    pub source: veo3_core::Error,
}

/// Uploads every local image of `jobs` (each distinct file once, into `options`' folder
/// under a unique name) and puts the hosted URLs in their place, so the jobs can be journaled
/// and sent. Returns the `(file, hosted URL)` pairs, in upload order. Sends nothing billable;
/// stops at the first failure.
pub async fn upload_local_images(
    api: &dyn Veo3Api,
    jobs: &mut [NewJob],
    options: &UploadOptions,
    effects: &Effects,
) -> Result<Vec<(PathBuf, String)>, UploadError> {
    let mut hosted: HashMap<PathBuf, String> = HashMap::new();
    let mut uploaded = Vec::new();
    for job in jobs.iter_mut() {
        for entry in &mut job.request.image_urls {
            let Some(path) = local_image(entry) else {
                continue;
            };
            let url = match hosted.get(&path) {
                Some(url) => url.clone(),
                None => {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let unique = veo3_core::image_upload_options(options, &name, effects.random());
                    let file =
                        api.upload_file(&path, &unique)
                            .await
                            .map_err(|source| UploadError {
                                line: job.line.unwrap_or(0),
                                path: path.clone(),
                                source,
                            })?;
                    hosted.insert(path.clone(), file.download_url.clone());
                    uploaded.push((path, file.download_url.clone()));
                    file.download_url
                }
            };
            *entry = url;
        }
    }
    Ok(uploaded)
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
