//! Response models. Every answer arrives in the `{code, msg, data}` [`Envelope`]; the typed
//! payloads are read from its `data` with `from_data`, tolerant of every documented shape.

use serde::Serialize;
use serde_json::Value;

use crate::tolerant::{Fields, as_bool, as_i64, as_text, field, optional_url_list, parse_url_list};
use crate::{ApiCode, DecodeError, Resolution, Timestamp};

/// The `{code, msg, data}` wrapper of every API answer (and of callbacks).
///
/// The envelope `code` is authoritative: kie usually answers errors with HTTP 200 and the real
/// code here. `message` is accepted in place of `msg`, as other kie APIs spell it.
///
/// ```
/// use veo3_types::{ApiCode, Envelope};
/// let envelope = Envelope::from_slice(br#"{"code":401,"message":"You do not have access permissions"}"#)?;
/// assert_eq!(envelope.code, ApiCode::Unauthorized);
/// assert_eq!(envelope.msg, "You do not have access permissions");
/// assert!(envelope.data.is_null());
/// # Ok::<(), veo3_types::DecodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Envelope {
    /// The business code.
    pub code: ApiCode,
    /// Human-readable message (`msg` or `message`; empty when absent).
    pub msg: String,
    /// The payload: an object, a string, a number or null depending on the endpoint.
    pub data: Value,
}

impl Envelope {
    /// Parses raw bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|error| DecodeError::NotJson {
            detail: format!(
                "{} at line {} column {}",
                classify(&error),
                error.line(),
                error.column()
            ),
        })?;
        Self::from_value(value)
    }

    /// Reads an already-parsed JSON value.
    pub fn from_value(mut value: Value) -> Result<Self, DecodeError> {
        if !value.is_object() {
            return Err(DecodeError::UnexpectedShape {
                expected: "a JSON object envelope",
            });
        }
        let (code, msg) = envelope_head(&value)?;
        let data = value
            .as_object_mut()
            .and_then(|object| object.remove("data"))
            .unwrap_or(Value::Null);
        Ok(Self { code, msg, data })
    }
}

/// An envelope's `code` and message (`msg`, else `message`; empty when neither).
pub(crate) fn envelope_head<F: Fields + ?Sized>(
    object: &F,
) -> Result<(ApiCode, String), DecodeError> {
    let code = match object.member("code") {
        None | Some(Value::Null) => return Err(DecodeError::MissingField { field: "code" }),
        Some(raw) => as_i64(raw)
            .map(ApiCode::from_i64)
            .ok_or(DecodeError::InvalidField {
                field: "code",
                expected: "an integer",
            })?,
    };
    let msg = ["msg", "message"]
        .iter()
        .filter_map(|key| object.member(key))
        .find_map(|raw| match raw {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .unwrap_or_default();
    Ok((code, msg))
}

fn classify(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "data error",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

fn object<'a>(data: &'a Value, expected: &'static str) -> Result<&'a Value, DecodeError> {
    match data {
        Value::Object(_) => Ok(data),
        Value::Null => Err(DecodeError::MissingField { field: "data" }),
        _ => Err(DecodeError::UnexpectedShape { expected }),
    }
}

fn task_id_of<F: Fields + ?Sized>(value: &F) -> Option<String> {
    field(value, &["taskId", "task_id"]).and_then(as_text)
}

/// `data` of a successful generate or extend: the new task's id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TaskCreated {
    /// The new task's id; opaque, never validated for format.
    #[serde(rename = "taskId")]
    pub task_id: String,
}

impl TaskCreated {
    /// Reads `{"taskId": ...}` (or `task_id`).
    pub fn from_data(data: &Value) -> Result<Self, DecodeError> {
        let data = object(data, "an object with taskId")?;
        let task_id = task_id_of(data).ok_or(DecodeError::MissingField { field: "taskId" })?;
        Ok(Self { task_id })
    }
}

/// The state of a task, from `successFlag` (or the legacy `status`).
///
/// `0` is running, `1` success, `2` failed before completion, `3` generation failed. Any other
/// value is kept as [`TaskState::Unknown`] rather than rejected, so a waiter can report it
/// instead of failing to decode or looping blindly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// `0`: still generating.
    Generating,
    /// `1`: finished with results.
    Success,
    /// `2`: failed before completion (moderation, bad input, ...).
    Failed,
    /// `3`: created but failed upstream.
    GenerationFailed,
    /// A value this version does not know (or no state at all), verbatim as it arrived.
    Unknown(String),
}

impl TaskState {
    /// Maps a numeric `successFlag`.
    pub fn from_flag(flag: i64) -> Self {
        match flag {
            0 => Self::Generating,
            1 => Self::Success,
            2 => Self::Failed,
            3 => Self::GenerationFailed,
            other => Self::Unknown(other.to_string()),
        }
    }

    /// Reads a flag given as a number, a numeric string or a legacy word
    /// (`"SUCCESS"`, `"GENERATING"`, `"FAILED"`, ...).
    pub fn from_value(value: &Value) -> Self {
        if let Some(flag) = as_i64(value) {
            return Self::from_flag(flag);
        }
        match value {
            Value::String(word) => match word.trim().to_ascii_uppercase().as_str() {
                "SUCCESS" | "SUCCEEDED" | "COMPLETED" | "DONE" => Self::Success,
                "GENERATING" | "RUNNING" | "PROCESSING" | "PENDING" | "WAITING" | "QUEUED" => {
                    Self::Generating
                }
                "FAILED" | "FAIL" | "CREATE_TASK_FAILED" => Self::Failed,
                "GENERATE_FAILED" | "GENERATION_FAILED" => Self::GenerationFailed,
                _ => Self::Unknown(word.clone()),
            },
            other => Self::Unknown(other.to_string()),
        }
    }

    /// The numeric flag, for the known states.
    pub fn flag(&self) -> Option<i64> {
        match self {
            Self::Generating => Some(0),
            Self::Success => Some(1),
            Self::Failed => Some(2),
            Self::GenerationFailed => Some(3),
            Self::Unknown(raw) => raw.parse().ok(),
        }
    }

    /// `true` once the task will not change again (success or a known failure). Unknown
    /// states are not terminal: a waiter keeps polling them until its deadline and then
    /// reports the state it saw.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::GenerationFailed)
    }

    /// `true` for the known failure states.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed | Self::GenerationFailed)
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Generating => f.write_str("generating"),
            Self::Success => f.write_str("success"),
            Self::Failed => f.write_str("failed"),
            Self::GenerationFailed => f.write_str("generation failed"),
            Self::Unknown(raw) => write!(f, "unknown state {raw}"),
        }
    }
}

/// `data` of record-info: the authoritative status and result of any Veo task.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskRecord {
    /// The task id (empty if the server omitted it everywhere).
    pub task_id: String,
    /// The original request as the JSON string the server stored (objects are re-encoded).
    pub param_json: Option<String>,
    /// When the task was created.
    pub create_time: Option<Timestamp>,
    /// When the task finished; `None` while running.
    pub complete_time: Option<Timestamp>,
    /// The state.
    pub state: TaskState,
    /// The result block; `None` until there is one.
    pub response: Option<TaskResponse>,
    /// The task's own error code (400, 500, 501) when it failed.
    pub error_code: Option<i64>,
    /// The task's own error message; `""` is normalised to `None`.
    pub error_message: Option<String>,
    /// Deprecated `fallbackFlag`.
    pub fallback_flag: Option<bool>,
}

/// The `response` block of a [`TaskRecord`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskResponse {
    /// The generated video URLs (for an extend task, possibly only the new segment).
    pub result_urls: Vec<String>,
    /// Pre-crop renders; only for non-16:9 outputs.
    pub origin_urls: Option<Vec<String>>,
    /// The stitched video after an extend.
    pub full_result_urls: Option<Vec<String>>,
    /// The output resolution.
    pub resolution: Option<Resolution>,
    /// Seeds used (observed in live responses).
    pub seeds: Option<Vec<i64>>,
    /// Whether each video has audio (observed in live responses).
    pub has_audio_list: Option<Vec<bool>>,
    /// Media ids (4K tasks; shape undocumented, strings kept).
    pub media_ids: Option<Vec<String>>,
}

impl TaskRecord {
    /// Reads record-info's `data` in any documented shape.
    ///
    /// ```
    /// use serde_json::json;
    /// use veo3_types::{TaskRecord, TaskState};
    ///
    /// let legacy = json!({"taskId": "t1", "status": 1, "resultUrls": "[\"https://f/x.mp4\"]"});
    /// let record = TaskRecord::from_data(&legacy)?;
    /// assert_eq!(record.state, TaskState::Success);
    /// assert_eq!(record.video_urls(), ["https://f/x.mp4"]);
    /// # Ok::<(), veo3_types::DecodeError>(())
    /// ```
    pub fn from_data(data: &Value) -> Result<Self, DecodeError> {
        Ok(Self::from_fields(object(data, "a task record object")?))
    }

    /// The record from the members of its object. The typed reader
    /// ([`TaskRecord::from_answer`]) applies these rules, rule for rule, to its own slots;
    /// property tests hold the two together.
    pub(crate) fn from_fields<F: Fields + ?Sized>(data: &F) -> Self {
        let response_block = data.member("response").filter(|value| value.is_object());
        let state = field(data, &["successFlag"])
            .or_else(|| response_block.and_then(|r| field(r, &["successFlag"])))
            .or_else(|| field(data, &["status", "state"]))
            .map_or_else(
                || TaskState::Unknown("absent".into()),
                TaskState::from_value,
            );

        let response = TaskResponse::from_parts(response_block, data);
        let param_json = data.member("paramJson").and_then(|raw| match raw {
            Value::String(text) if !text.is_empty() => Some(text.clone()),
            Value::Object(_) => Some(raw.to_string()),
            _ => None,
        });
        let task_id = task_id_of(data)
            .or_else(|| response_block.and_then(task_id_of))
            .unwrap_or_default();
        Self {
            task_id,
            param_json,
            create_time: data.member("createTime").and_then(Timestamp::from_value),
            complete_time: data.member("completeTime").and_then(Timestamp::from_value),
            state,
            response,
            error_code: data.member("errorCode").and_then(as_i64),
            error_message: data.member("errorMessage").and_then(as_text),
            fallback_flag: data.member("fallbackFlag").and_then(as_bool),
        }
    }

    /// The URLs a user wants: the stitched `fullResultUrls` when present (extend tasks),
    /// otherwise `resultUrls`. Empty while the task runs.
    pub fn video_urls(&self) -> &[String] {
        match &self.response {
            Some(response) => match &response.full_result_urls {
                Some(full) if !full.is_empty() => full,
                _ => &response.result_urls,
            },
            None => &[],
        }
    }

    /// The original request's fields, when `paramJson` holds a JSON object.
    pub fn params(&self) -> Option<Value> {
        let value: Value = serde_json::from_str(self.param_json.as_deref()?).ok()?;
        value.is_object().then_some(value)
    }
}

impl TaskResponse {
    /// Reads each field from the `response` block first and the record itself second (the
    /// 2025 quickstart reads `data.resultUrls`). `None` when neither has anything.
    fn from_parts<F: Fields + ?Sized>(block: Option<&Value>, data: &F) -> Option<Self> {
        let lookup = |keys: &[&str]| {
            block
                .and_then(|b| field(b, keys))
                .or_else(|| field(data, keys))
        };
        let result_urls = lookup(&["resultUrls", "result_urls"])
            .map(parse_url_list)
            .unwrap_or_default();
        let response = Self {
            result_urls,
            origin_urls: optional_url_list(lookup(&["originUrls", "origin_urls"])),
            full_result_urls: optional_url_list(lookup(&["fullResultUrls", "full_result_urls"])),
            resolution: lookup(&["resolution"])
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(Resolution::from_wire),
            seeds: lookup(&["seeds"]).and_then(|raw| match raw {
                Value::Array(items) => Some(items.iter().filter_map(as_i64).collect()),
                other => as_i64(other).map(|seed| vec![seed]),
            }),
            has_audio_list: lookup(&["hasAudioList"]).and_then(|raw| match raw {
                Value::Array(items) => Some(items.iter().filter_map(as_bool).collect()),
                _ => None,
            }),
            media_ids: optional_url_list(lookup(&["mediaIds", "media_ids"])),
        };
        (block.is_some() || response != Self::default()).then_some(response)
    }
}

/// `data` of a successful get-1080p-video: the singular `resultUrl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Hd1080pResult {
    /// The 1080p video URL.
    #[serde(rename = "resultUrl")]
    pub result_url: String,
}

impl Hd1080pResult {
    /// Reads `{"resultUrl": ...}`; also a bare string or a one-element `resultUrls`.
    pub fn from_data(data: &Value) -> Result<Self, DecodeError> {
        if let Value::String(url) = data {
            if !url.is_empty() {
                return Ok(Self {
                    result_url: url.clone(),
                });
            }
        }
        let data = object(data, "an object with resultUrl")?;
        let result_url = field(data, &["resultUrl", "result_url"])
            .and_then(as_text)
            .or_else(|| {
                field(data, &["resultUrls", "result_urls"])
                    .and_then(|urls| parse_url_list(urls).into_iter().next())
            })
            .ok_or(DecodeError::MissingField { field: "resultUrl" })?;
        Ok(Self { result_url })
    }
}

/// `data` of get-4k-video (also found inside its 422 answers).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Upgrade4kResult {
    /// The source task id echoed back.
    #[serde(rename = "taskId")]
    pub task_id: Option<String>,
    /// The 4K video URLs; empty while processing.
    #[serde(rename = "resultUrls")]
    pub result_urls: Vec<String>,
    /// Thumbnail URLs.
    #[serde(rename = "imageUrls")]
    pub image_urls: Vec<String>,
}

impl Upgrade4kResult {
    /// Reads the payload; `null` data gives an empty (processing) result.
    pub fn from_data(data: &Value) -> Result<Self, DecodeError> {
        match data {
            Value::Null => Ok(Self::default()),
            Value::Object(_) => Ok(Self {
                task_id: task_id_of(data),
                result_urls: field(data, &["resultUrls", "result_urls"])
                    .map(parse_url_list)
                    .unwrap_or_default(),
                image_urls: field(data, &["imageUrls", "image_urls"])
                    .map(parse_url_list)
                    .unwrap_or_default(),
            }),
            _ => Err(DecodeError::UnexpectedShape {
                expected: "a 4K result object",
            }),
        }
    }

    /// `true` once the 4K URLs are there. A 422 answer carrying them means success.
    pub fn is_ready(&self) -> bool {
        !self.result_urls.is_empty()
    }
}

/// `data` of chat/credit: the remaining balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Credits(pub i64);

impl Credits {
    /// Reads a bare number (or numeric string); fractions are rounded down. An object with a
    /// `credits` or `balance` field is also accepted.
    pub fn from_data(data: &Value) -> Result<Self, DecodeError> {
        let raw = match data {
            Value::Object(_) => field(data, &["credits", "balance"]).unwrap_or(&Value::Null),
            other => other,
        };
        let credits = as_i64(raw).or_else(|| {
            raw.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.floor() as i64)
        });
        credits.map(Self).ok_or(DecodeError::InvalidField {
            field: "data",
            expected: "a number of credits",
        })
    }
}

/// `data` of the upload API (separate host): where the uploaded file now lives.
///
/// ```
/// use veo3_types::{UploadAnswer, UploadedFile};
/// let body = br#"{"success":true,"code":200,"msg":"File uploaded successfully",
///   "data":{"fileName":"a.png","filePath":"images/a.png","downloadUrl":"https://files.example.com/a.png",
///           "fileSize":"68","mimeType":"image/png","uploadedAt":"2026-01-01T00:00:00.000Z"}}"#;
/// let answer = UploadAnswer::from_slice(body)?;
/// assert_eq!(answer.success, Some(true));
/// let file = UploadedFile::from_data(&answer.envelope.data)?;
/// assert_eq!(file.file_size, Some(68));
/// assert_eq!(file.uploaded_at.map(|t| t.epoch_millis()), Some(1_767_225_600_000));
/// # Ok::<(), veo3_types::DecodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UploadedFile {
    /// The public URL to pass as `imageUrls` (`downloadUrl`, or `fileUrl` in one quickstart).
    #[serde(rename = "downloadUrl")]
    pub download_url: String,
    /// The stored file name.
    #[serde(rename = "fileName")]
    pub file_name: Option<String>,
    /// Where it is stored on the upload host (`uploadPath/fileName`).
    #[serde(rename = "filePath")]
    pub file_path: Option<String>,
    /// The size in bytes.
    #[serde(rename = "fileSize")]
    pub file_size: Option<i64>,
    /// The MIME type.
    #[serde(rename = "mimeType")]
    pub mime_type: Option<String>,
    /// When it was stored (ISO-8601 in the spec; any timestamp shape is accepted).
    #[serde(rename = "uploadedAt")]
    pub uploaded_at: Option<Timestamp>,
}

impl UploadedFile {
    /// Reads the upload payload; only the URL is required.
    pub fn from_data(data: &Value) -> Result<Self, DecodeError> {
        let data = object(data, "an upload result object")?;
        Ok(Self {
            download_url: field(data, &["downloadUrl", "fileUrl", "download_url", "url"])
                .and_then(as_text)
                .ok_or(DecodeError::MissingField {
                    field: "downloadUrl",
                })?,
            file_name: field(data, &["fileName", "file_name"]).and_then(as_text),
            file_path: field(data, &["filePath", "file_path"]).and_then(as_text),
            file_size: field(data, &["fileSize", "file_size"]).and_then(as_i64),
            mime_type: field(data, &["mimeType", "mime_type"]).and_then(as_text),
            uploaded_at: field(data, &["uploadedAt", "uploaded_at"])
                .and_then(Timestamp::from_value),
        })
    }
}

/// An answer of the upload host: the usual envelope plus its `success` flag.
///
/// The envelope `code` stays authoritative (as for the Veo API); `success` is kept for
/// callers that want it, and is `None` when absent or not a boolean.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UploadAnswer {
    /// `success`: `true` exactly when `code` is 200 in every documented example.
    pub success: Option<bool>,
    /// `code`, `msg` and `data`.
    #[serde(flatten)]
    pub envelope: Envelope,
}

impl UploadAnswer {
    /// Parses raw bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|error| DecodeError::NotJson {
            detail: format!(
                "{} at line {} column {}",
                classify(&error),
                error.line(),
                error.column()
            ),
        })?;
        let success = value.get("success").and_then(as_bool);
        Ok(Self {
            success,
            envelope: Envelope::from_value(value)?,
        })
    }
}

/// Reads download-url's `data`: a bare string link (or an object with `url`).
pub(crate) fn download_link(data: &Value) -> Result<String, DecodeError> {
    match data {
        Value::String(url) if !url.is_empty() => Ok(url.clone()),
        Value::Object(_) => field(data, &["url", "downloadUrl"])
            .and_then(as_text)
            .ok_or(DecodeError::MissingField { field: "data" }),
        _ => Err(DecodeError::InvalidField {
            field: "data",
            expected: "a download URL string",
        }),
    }
}

impl Envelope {
    /// Reads download-url's `data`: the temporary link.
    pub fn download_link(&self) -> Result<String, DecodeError> {
        download_link(&self.data)
    }
}
