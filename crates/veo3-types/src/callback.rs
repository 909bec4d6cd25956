//! Callback (webhook) payloads: generation, extension and 4K, in every documented shape.
//!
//! The same event has been documented as camelCase `data.info.resultUrls`, as snake_case
//! `data.task_id` / `data.result_urls` (4K schema), with string-typed URL lists, and with
//! `promptJson` as a string, an object or absent. [`Callback::from_slice`] reads them all into
//! one shape. Note that kie signs only `taskId.timestamp`, not the body: treat the URLs here as
//! hints and confirm with record-info.

use serde_json::Value;

use crate::tolerant::{as_bool, as_i64, as_text, field, optional_url_list, parse_url_list};
use crate::{ApiCode, DecodeError, Envelope, Resolution};

/// A decoded callback.
///
/// ```
/// use veo3_types::{ApiCode, Callback};
/// let body = br#"{"code":200,"msg":"ok","data":{"task_id":"t1","result_urls":"[\"https://f/4k.mp4\"]"}}"#;
/// let callback = Callback::from_slice(body)?;
/// assert_eq!(callback.task_id.as_deref(), Some("t1"));
/// assert_eq!(callback.result_urls(), ["https://f/4k.mp4"]);
/// assert!(callback.is_success());
/// # Ok::<(), veo3_types::DecodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Callback {
    /// 200 success; 400, 422, 500, 501 failures.
    pub code: ApiCode,
    /// The human-readable outcome or failure reason.
    pub msg: String,
    /// The task id (`data.taskId`, `data.task_id` or top-level `taskId`).
    pub task_id: Option<String>,
    /// The results, on success.
    pub info: Option<CallbackInfo>,
    /// The original request: an object when it arrived as an object or as a JSON string
    /// holding one; otherwise the string verbatim.
    pub prompt_json: Option<Value>,
    /// Deprecated `fallbackFlag`.
    pub fallback_flag: Option<bool>,
    /// Credits charged (only in one legacy 4K example).
    pub credits_consumed: Option<i64>,
}

/// The result part of a [`Callback`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackInfo {
    /// The video URLs.
    pub result_urls: Vec<String>,
    /// Pre-crop renders.
    pub origin_urls: Option<Vec<String>>,
    /// Thumbnails (4K).
    pub image_urls: Option<Vec<String>>,
    /// Media ids (4K snake_case schema).
    pub media_ids: Option<Vec<String>>,
    /// The output resolution.
    pub resolution: Option<Resolution>,
}

impl Callback {
    /// Parses the raw request body.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_envelope(Envelope::from_slice(bytes)?)
    }

    /// Reads an already-parsed envelope.
    pub fn from_envelope(envelope: Envelope) -> Result<Self, DecodeError> {
        let data = &envelope.data;
        if !(data.is_object() || data.is_null()) {
            return Err(DecodeError::UnexpectedShape {
                expected: "a callback data object",
            });
        }
        let info_block = data.get("info").filter(|info| info.is_object());
        let lookup = |keys: &[&str]| {
            info_block
                .and_then(|info| field(info, keys))
                .or_else(|| field(data, keys))
        };
        let info = CallbackInfo {
            result_urls: lookup(&["resultUrls", "result_urls"])
                .map(parse_url_list)
                .unwrap_or_default(),
            origin_urls: optional_url_list(lookup(&["originUrls", "origin_urls"])),
            image_urls: optional_url_list(lookup(&["imageUrls", "image_urls"])),
            media_ids: optional_url_list(lookup(&["mediaIds", "media_ids"])),
            resolution: lookup(&["resolution"])
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(Resolution::from_wire),
        };
        let info = (info_block.is_some() || info != CallbackInfo::default()).then_some(info);
        let prompt_json = data.get("promptJson").and_then(|raw| match raw {
            Value::Null => None,
            Value::String(text) if text.is_empty() => None,
            Value::String(text) => Some(
                serde_json::from_str::<Value>(text)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| raw.clone()),
            ),
            other => Some(other.clone()),
        });
        Ok(Self {
            code: envelope.code,
            task_id: field(data, &["taskId", "task_id"]).and_then(as_text),
            info,
            prompt_json,
            fallback_flag: data.get("fallbackFlag").and_then(as_bool),
            credits_consumed: data.get("creditsConsumed").and_then(as_i64),
            msg: envelope.msg,
        })
    }

    /// Reads the task id from a raw body without decoding the rest, as signature verification
    /// needs (`data.taskId` -> `data.task_id` -> top-level `taskId`).
    pub fn task_id_of(body: &Value) -> Option<String> {
        body.get("data")
            .and_then(|data| field(data, &["taskId", "task_id"]))
            .or_else(|| body.get("taskId"))
            .and_then(as_text)
    }

    /// `true` when `code` is 200.
    pub fn is_success(&self) -> bool {
        self.code.is_success()
    }

    /// The result URLs (empty on failure).
    pub fn result_urls(&self) -> &[String] {
        self.info.as_ref().map_or(&[], |info| &info.result_urls)
    }

    /// Which job this callback is about, told apart by its shape, since a 4K callback carries
    /// the *source* task's id, the same id as that task's own generation callback.
    ///
    /// - [`CallbackKind::Upgrade4k`]: thumbnails (`imageUrls`), media ids, the legacy
    ///   `creditsConsumed`, or a message about 4K (success "4K Video generated successfully.",
    ///   failure "The 4K version of this video is unavailable..."): every documented 4K shape.
    /// - [`CallbackKind::Hd1080p`]: a video callback reporting a 1080p video. The reference
    ///   documents no callback for the 1080p endpoint; this is how one would read, and what a
    ///   generation made at 1080p reports.
    /// - [`CallbackKind::Video`]: any other generation or extension callback.
    ///
    /// ```
    /// use veo3_types::{Callback, CallbackKind};
    /// let four_k = br#"{"code":200,"msg":"4K Video generated successfully.","data":{"taskId":"t1","info":{"resultUrls":["https://f/4k.mp4"],"imageUrls":["https://f/4k.jpg"]}}}"#;
    /// assert_eq!(Callback::from_slice(four_k)?.kind(), CallbackKind::Upgrade4k);
    /// let video = br#"{"code":200,"msg":"Veo3.1 video generated successfully.","data":{"taskId":"t1","info":{"resultUrls":["https://f/v.mp4"],"resolution":"720p"}}}"#;
    /// assert_eq!(Callback::from_slice(video)?.kind(), CallbackKind::Video);
    /// # Ok::<(), veo3_types::DecodeError>(())
    /// ```
    pub fn kind(&self) -> CallbackKind {
        let info = self.info.as_ref();
        let four_k = info.is_some_and(|info| info.image_urls.is_some() || info.media_ids.is_some())
            || self.credits_consumed.is_some()
            || self.msg.to_ascii_lowercase().contains("4k");
        if four_k {
            CallbackKind::Upgrade4k
        } else if info.and_then(|info| info.resolution.as_ref()) == Some(&Resolution::P1080) {
            CallbackKind::Hd1080p
        } else {
            CallbackKind::Video
        }
    }
}

/// What a callback is about ([`Callback::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallbackKind {
    /// A generation or extension finished (or failed).
    Video,
    /// A video callback reporting a 1080p video.
    Hd1080p,
    /// A 4K version finished (or failed); its task id is the source task's.
    Upgrade4k,
}

impl CallbackKind {
    /// Every kind, in a fixed order.
    pub const ALL: [CallbackKind; 3] = [Self::Video, Self::Hd1080p, Self::Upgrade4k];
}
