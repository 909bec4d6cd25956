//! Request bodies and queries, serialized with the field names the current API expects.
//!
//! Serialization follows the newest spec (`aspect_ratio`, `seeds`, `callBackUrl`) and omits
//! every unset optional field. Deserialization is tolerant in the other direction (it also
//! takes the 2025 `aspectRatio`, `seed`, `waterMark`, and `index` as a numeric string), so the
//! sandbox can read whatever a client of any vintage sends.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::tolerant::{as_bool, as_i64, field};
use crate::{
    AspectRatio, ExtendModel, GenerationType, ImageInput, Model, Resolution, ValidationError,
    VideoDuration,
};

/// The longest prompt this SDK sends, in characters (Unicode scalar values).
///
/// kie documents no maximum. The upstream model reads at most about a thousand tokens (some
/// 4,000-5,000 characters of English), so a longer prompt buys nothing; and every status answer
/// echoes the request back (`paramJson`), so an unbounded prompt makes a task whose answers
/// exceed the client's answer-size limit and whose video can never be fetched. 10,000
/// characters is twice what the model reads and keeps the largest echo ([`MAX_ECHO_BYTES`])
/// far below the clients' default answer limit of 4 MiB.
pub const MAX_PROMPT_CHARS: usize = 10_000;

/// The longest watermark this SDK sends, in characters (a burned-in caption, not a text).
pub const MAX_WATERMARK_CHARS: usize = 1_000;

/// The longest URL (image or callback) this SDK sends, in bytes: well above any real hosted
/// image URL, and what most HTTP servers accept in a request line.
pub const MAX_URL_BYTES: usize = 8_192;

/// An upper bound on the bytes a status answer (or callback) can spend echoing an accepted
/// generate request back: every text field at its limit, each character written as the
/// longest JSON escape twice over (a `paramJson` string inside the answer, 14 bytes for a
/// character outside the BMP), echoed twice (kie's `paramJson` and a callback's
/// `promptJson`, should one answer carry both), plus 64 KiB for everything else. The clients'
/// default answer limit stays above it (a test in veo3-core checks).
pub const MAX_ECHO_BYTES: usize =
    2 * 14 * (MAX_PROMPT_CHARS + MAX_WATERMARK_CHARS + 4 * MAX_URL_BYTES) + 64 * 1024;

/// Lowest seed the API accepts.
const SEED_MIN: u32 = 10_000;
/// Highest seed the API accepts.
const SEED_MAX: u32 = 99_999;

/// Body of `POST /api/v1/veo/generate`.
///
/// Build it with [`GenerateRequest::builder`], which validates; the fields are public for
/// reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GenerateRequest {
    /// What the video shows. Required, non-empty.
    pub prompt: String,
    /// The model; the SDK always sends it, because the default changed between doc versions.
    pub model: Model,
    /// How the video is derived; when `None` the server infers it from `imageUrls`.
    #[serde(rename = "generationType", skip_serializing_if = "Option::is_none")]
    pub generation_type: Option<GenerationType>,
    /// Input images (public http(s) URLs).
    #[serde(rename = "imageUrls", skip_serializing_if = "Vec::is_empty")]
    pub image_urls: Vec<String>,
    /// Output aspect ratio.
    #[serde(rename = "aspect_ratio", skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<AspectRatio>,
    /// Output resolution (2026 docs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// Seed, 10000-99999.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seeds: Option<u32>,
    /// Completion webhook.
    #[serde(rename = "callBackUrl", skip_serializing_if = "Option::is_none")]
    pub call_back_url: Option<String>,
    /// Translate the prompt to English first. Always sent (default `true`, as the reference
    /// documents): kie's schema once gave `false` as the default while its description said
    /// `true`, so leaving it out would let the server's choice of the month decide.
    #[serde(rename = "enableTranslation")]
    pub enable_translation: bool,
    /// Text watermark burned into the video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    /// Clip length: 4, 6 or 8 seconds (server default 8; `REFERENCE_2_VIDEO` takes 8 only).
    /// Sent only when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<VideoDuration>,
}

impl GenerateRequest {
    /// Starts a request for `prompt` with the Fast model and every other field unset.
    pub fn builder(prompt: impl Into<String>) -> GenerateRequestBuilder {
        GenerateRequestBuilder {
            request: GenerateRequest {
                prompt: prompt.into(),
                model: Model::default(),
                generation_type: None,
                image_urls: Vec::new(),
                aspect_ratio: None,
                resolution: None,
                seeds: None,
                call_back_url: None,
                enable_translation: true,
                watermark: None,
                duration: None,
            },
            images: Vec::new(),
        }
    }

    /// Checks every documented rule; the first violation is returned.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_prompt(&self.prompt)?;
        crate::upload::check_image_count(self.generation_type.as_ref(), self.image_urls.len())?;
        for (index, url) in self.image_urls.iter().enumerate() {
            check_url(url).map_err(|reason| ValidationError::InvalidUrl {
                field: "imageUrls",
                index: Some(index),
                reason,
            })?;
        }
        check_seeds(self.seeds)?;
        check_callback(self.call_back_url.as_deref())?;
        check_watermark(self.watermark.as_deref())?;
        check_duration(self.duration, self.generation_type.as_ref())?;
        Ok(())
    }

    /// The reference's soft rules this request breaks: the ones it marks "validate softly
    /// (warn), let the server decide", because its pages disagree. They never stop a request
    /// ([`GenerateRequest::validate`] does not return them); the clients log each as a warning
    /// before sending and the CLI prints it.
    ///
    /// Today there is one: `REFERENCE_2_VIDEO` with the Quality model (`veo3`), which the
    /// pages variously limit to Fast, or to Fast and Lite.
    ///
    /// ```
    /// use veo3_types::{GenerateRequest, GenerationType, Model, ValidationError};
    /// let request = GenerateRequest::builder("A fox")
    ///     .model(Model::Veo3)
    ///     .generation_type(GenerationType::Reference)
    ///     .image_url("https://example.com/a.png")
    ///     .build()
    ///     .expect("a soft rule does not stop the request");
    /// assert!(matches!(request.warnings()[..], [ValidationError::UnsupportedModel { .. }]));
    /// ```
    pub fn warnings(&self) -> Vec<ValidationError> {
        let mut warnings = Vec::new();
        if self.generation_type == Some(GenerationType::Reference) && self.model == Model::Veo3 {
            warnings.push(ValidationError::UnsupportedModel {
                generation_type: GenerationType::Reference,
                model: self.model.clone(),
            });
        }
        warnings
    }
}

impl<'de> Deserialize<'de> for GenerateRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if !value.is_object() {
            return Err(serde::de::Error::custom(
                "generate request must be a JSON object",
            ));
        }
        let text = |keys: &[&str]| {
            field(&value, keys)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let prompt = text(&["prompt"]).unwrap_or_default();
        let image_urls = match field(&value, &["imageUrls", "image_urls"]) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| serde::de::Error::custom("imageUrls must be an array of strings"))?,
            Some(_) => {
                return Err(serde::de::Error::custom(
                    "imageUrls must be an array of strings",
                ));
            }
        };
        let seeds = match field(&value, &["seeds", "seed"]) {
            None => None,
            Some(raw) => Some(
                as_i64(raw)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| serde::de::Error::custom("seeds must be an integer"))?,
            ),
        };
        Ok(GenerateRequest {
            prompt,
            model: text(&["model"])
                .map(|m| Model::from_wire(&m))
                .unwrap_or_default(),
            generation_type: text(&["generationType", "generation_type"])
                .map(|t| GenerationType::from_wire(&t)),
            image_urls,
            // The current name wins when a client sends both.
            aspect_ratio: text(&["aspect_ratio", "aspectRatio"])
                .map(|a| AspectRatio::from_wire(&a)),
            resolution: text(&["resolution"]).map(|r| Resolution::from_wire(&r)),
            seeds,
            call_back_url: text(&["callBackUrl", "callbackUrl"]),
            // Absent means what the reference documents, true.
            enable_translation: field(&value, &["enableTranslation"])
                .and_then(as_bool)
                .unwrap_or(true),
            watermark: text(&["watermark", "waterMark"]),
            duration: match field(&value, &["duration"]) {
                None => None,
                Some(raw) => Some(
                    as_i64(raw)
                        .map(VideoDuration::from_seconds)
                        .ok_or_else(|| serde::de::Error::custom("duration must be an integer"))?,
                ),
            },
        })
    }
}

/// Builder for [`GenerateRequest`]; [`build`](Self::build) validates.
///
/// Images may be URLs or local files ([`image`](Self::image)): [`build`](Self::build) takes
/// URLs only, [`build_with_images`](Self::build_with_images) also takes files and bytes, which
/// the clients' `generate_with_images` flows upload before submitting.
#[derive(Clone, Debug)]
pub struct GenerateRequestBuilder {
    request: GenerateRequest,
    images: Vec<ImageInput>,
}

impl GenerateRequestBuilder {
    /// Sets the model (default [`Model::Veo3Fast`]).
    pub fn model(mut self, model: Model) -> Self {
        self.request.model = model;
        self
    }

    /// Sets the generation type explicitly.
    pub fn generation_type(mut self, generation_type: GenerationType) -> Self {
        self.request.generation_type = Some(generation_type);
        self
    }

    /// Adds an input image URL.
    pub fn image_url(mut self, url: impl Into<String>) -> Self {
        self.images.push(ImageInput::Url(url.into()));
        self
    }

    /// Replaces the input images with these URLs.
    pub fn image_urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.images = urls
            .into_iter()
            .map(|url| ImageInput::Url(url.into()))
            .collect();
        self
    }

    /// Adds an input image: a URL, a local path or bytes (`"./cat.png"` and
    /// `"https://..."` both convert; see [`ImageInput::parse`]).
    pub fn image(mut self, image: impl Into<ImageInput>) -> Self {
        self.images.push(image.into());
        self
    }

    /// Sets the aspect ratio.
    pub fn aspect_ratio(mut self, aspect_ratio: AspectRatio) -> Self {
        self.request.aspect_ratio = Some(aspect_ratio);
        self
    }

    /// Sets the output resolution.
    pub fn resolution(mut self, resolution: Resolution) -> Self {
        self.request.resolution = Some(resolution);
        self
    }

    /// Sets the seed (10000-99999).
    pub fn seeds(mut self, seeds: u32) -> Self {
        self.request.seeds = Some(seeds);
        self
    }

    /// Sets the completion webhook URL.
    pub fn call_back_url(mut self, url: impl Into<String>) -> Self {
        self.request.call_back_url = Some(url.into());
        self
    }

    /// Enables or disables prompt translation (default enabled; sent either way).
    pub fn enable_translation(mut self, enable: bool) -> Self {
        self.request.enable_translation = enable;
        self
    }

    /// Sets the clip length (4, 6 or 8 s; `REFERENCE_2_VIDEO` takes 8 only).
    pub fn duration(mut self, duration: VideoDuration) -> Self {
        self.request.duration = Some(duration);
        self
    }

    /// Sets a text watermark.
    pub fn watermark(mut self, watermark: impl Into<String>) -> Self {
        self.request.watermark = Some(watermark.into());
        self
    }

    /// Validates and returns the request. Every image must be a URL: a local one is refused
    /// with [`ValidationError::Image`] (use [`build_with_images`](Self::build_with_images)).
    pub fn build(mut self) -> Result<GenerateRequest, ValidationError> {
        let mut urls = Vec::with_capacity(self.images.len());
        for image in self.images {
            match image {
                ImageInput::Url(url) => urls.push(url),
                local => {
                    return Err(ValidationError::Image {
                        name: local.name(),
                        problem: crate::ImageProblem::NotUploaded,
                    });
                }
            }
        }
        self.request.image_urls = urls;
        self.request.validate()?;
        Ok(self.request)
    }

    /// Validates everything that needs no filesystem (the image count for the generation
    /// type, URLs, bytes, every other field) and returns the request with its images still to
    /// upload.
    pub fn build_with_images(self) -> Result<GenerateWithImages, ValidationError> {
        let pending = GenerateWithImages {
            request: self.request,
            images: self.images,
        };
        pending.validate()?;
        Ok(pending)
    }
}

/// A generation whose images may still be local files or bytes: what the clients'
/// `generate_with_images` flows take. They check the files, upload the local images in order,
/// then submit [`GenerateWithImages::request`] with every image as a hosted URL.
///
/// ```
/// use veo3_types::{GenerateRequest, GenerationType, ImageInput};
/// let pending = GenerateRequest::builder("The cat jumps")
///     .generation_type(GenerationType::FirstAndLastFrames)
///     .image("./first.png")
///     .image("https://img.example.com/last.png")
///     .build_with_images()?;
/// assert!(pending.images[0].is_local());
/// let request = pending.with_urls(vec![
///     "https://files.example.com/first.png".into(),
///     "https://img.example.com/last.png".into(),
/// ])?;
/// assert_eq!(request.image_urls.len(), 2);
/// # Ok::<(), veo3_types::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenerateWithImages {
    /// The request without its images (`image_urls` is empty).
    pub request: GenerateRequest,
    /// The images, in the order they will be sent.
    pub images: Vec<ImageInput>,
}

impl GenerateWithImages {
    /// The checks that need no filesystem, in the order a user fixes them: the count for the
    /// generation type, each image, then every other field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        crate::check_image_count(self.request.generation_type.as_ref(), self.images.len())?;
        for (index, image) in self.images.iter().enumerate() {
            image.validate(index)?;
        }
        let mut probe = self.request.clone();
        probe.image_urls = self
            .images
            .iter()
            .map(|image| match image {
                ImageInput::Url(url) => url.clone(),
                _ => "https://upload.invalid/image".to_owned(),
            })
            .collect();
        probe.validate()
    }

    /// The final request: `urls` (one per image, in order: the URL inputs as they are and the
    /// hosted URLs of the uploaded ones), validated.
    pub fn with_urls(&self, urls: Vec<String>) -> Result<GenerateRequest, ValidationError> {
        let mut request = self.request.clone();
        request.image_urls = urls;
        request.validate()?;
        Ok(request)
    }
}

/// Body of `POST /api/v1/veo/extend`.
///
/// ```
/// use veo3_types::{ExtendModel, ExtendRequest};
/// let request = ExtendRequest::new("3f9c1e7a", "The fox leaps").model(ExtendModel::Quality);
/// request.validate()?;
/// assert_eq!(serde_json::to_value(&request).unwrap()["model"], "quality");
/// # Ok::<(), veo3_types::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExtendRequest {
    /// The original generation task.
    #[serde(rename = "taskId")]
    pub task_id: String,
    /// What happens in the extension.
    pub prompt: String,
    /// `fast` (server default), `quality` or `lite`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub model: Option<ExtendModel>,
    /// Seed, 10000-99999.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seeds: Option<u32>,
    /// Text watermark.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub watermark: Option<String>,
    /// Completion webhook.
    #[serde(
        rename = "callBackUrl",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub call_back_url: Option<String>,
}

impl ExtendRequest {
    /// An extension of `task_id` described by `prompt`, every option unset.
    pub fn new(task_id: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            task_id: task_id.into(),
            prompt: prompt.into(),
            model: None,
            seeds: None,
            watermark: None,
            call_back_url: None,
        }
    }

    /// Sets the model.
    pub fn model(mut self, model: ExtendModel) -> Self {
        self.model = Some(model);
        self
    }

    /// Sets the seed.
    pub fn seeds(mut self, seeds: u32) -> Self {
        self.seeds = Some(seeds);
        self
    }

    /// Sets a text watermark.
    pub fn watermark(mut self, watermark: impl Into<String>) -> Self {
        self.watermark = Some(watermark.into());
        self
    }

    /// Sets the completion webhook URL.
    pub fn call_back_url(mut self, url: impl Into<String>) -> Self {
        self.call_back_url = Some(url.into());
        self
    }

    /// Checks the documented rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_task_id(&self.task_id)?;
        check_prompt(&self.prompt)?;
        check_seeds(self.seeds)?;
        check_callback(self.call_back_url.as_deref())?;
        check_watermark(self.watermark.as_deref())
    }
}

/// Body of `POST /api/v1/veo/get-4k-video`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Upgrade4kRequest {
    /// The source generation task.
    #[serde(rename = "taskId")]
    pub task_id: String,
    /// Position of the video in `resultUrls` (server default 0).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "lenient_index"
    )]
    pub index: Option<u32>,
    /// 4K completion webhook.
    #[serde(
        rename = "callBackUrl",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub call_back_url: Option<String>,
}

impl Upgrade4kRequest {
    /// A 4K request for the first video of `task_id`.
    pub fn new(task_id: impl Into<String>) -> Self {
        Self {
            task_id: task_id.into(),
            index: None,
            call_back_url: None,
        }
    }

    /// Selects the video by position.
    pub fn index(mut self, index: u32) -> Self {
        self.index = Some(index);
        self
    }

    /// Sets the 4K completion webhook URL.
    pub fn call_back_url(mut self, url: impl Into<String>) -> Self {
        self.call_back_url = Some(url.into());
        self
    }

    /// Checks the documented rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_task_id(&self.task_id)?;
        check_callback(self.call_back_url.as_deref())
    }
}

/// Query of `GET /api/v1/veo/get-1080p-video`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hd1080pQuery {
    /// The source generation task.
    #[serde(rename = "taskId")]
    pub task_id: String,
    /// Position of the video in `resultUrls` (default 0; the docs show it as `"0"` too).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "lenient_index"
    )]
    pub index: Option<u32>,
}

impl Hd1080pQuery {
    /// The 1080p query for the video at `index` (or the first) of `task_id`.
    pub fn new(task_id: impl Into<String>, index: Option<u32>) -> Self {
        Self {
            task_id: task_id.into(),
            index,
        }
    }

    /// Checks the documented rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_task_id(&self.task_id)
    }
}

/// Query of `GET /api/v1/veo/record-info`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordInfoQuery {
    /// Any Veo task id (generate, extend, 1080p, 4K).
    #[serde(rename = "taskId")]
    pub task_id: String,
}

impl RecordInfoQuery {
    /// The query for `task_id`.
    pub fn new(task_id: impl Into<String>) -> Self {
        Self {
            task_id: task_id.into(),
        }
    }

    /// Checks the documented rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_task_id(&self.task_id)
    }

    /// Checks the documented rules for the query of `task_id`, as
    /// [`RecordInfoQuery::validate`] does, without building the query.
    ///
    /// ```
    /// use veo3_types::RecordInfoQuery;
    ///
    /// assert!(RecordInfoQuery::check("task-1").is_ok());
    /// assert!(RecordInfoQuery::check("").is_err());
    /// ```
    pub fn check(task_id: &str) -> Result<(), ValidationError> {
        check_task_id(task_id)
    }
}

/// Body of `POST /api/v1/common/download-url`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DownloadUrlRequest {
    /// A URL produced by kie.ai.
    pub url: String,
}

impl DownloadUrlRequest {
    /// The request for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into() }
    }

    /// Checks the URL is absolute http(s).
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_url(&self.url).map_err(|reason| ValidationError::InvalidUrl {
            field: "url",
            index: None,
            reason,
        })
    }
}

fn lenient_index<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    as_i64(&value)
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("index must be a non-negative integer"))
}

fn check_task_id(task_id: &str) -> Result<(), ValidationError> {
    if task_id.trim().is_empty() {
        Err(ValidationError::EmptyTaskId)
    } else {
        Ok(())
    }
}

fn check_prompt(prompt: &str) -> Result<(), ValidationError> {
    if prompt.trim().is_empty() {
        return Err(ValidationError::EmptyPrompt);
    }
    check_text("prompt", prompt, MAX_PROMPT_CHARS)
}

fn check_watermark(watermark: Option<&str>) -> Result<(), ValidationError> {
    watermark.map_or(Ok(()), |text| {
        check_text("watermark", text, MAX_WATERMARK_CHARS)
    })
}

/// A text field: at most `max` characters, and no NUL (which kie's stack may cut the text at,
/// or refuse, after billing).
fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), ValidationError> {
    if text.contains('\0') {
        return Err(ValidationError::NulCharacter { field });
    }
    // Counting stops at the first character past the limit, so a huge text costs no more.
    if text.chars().nth(max).is_some() {
        return Err(ValidationError::TooLong {
            field,
            max,
            actual: text.chars().count(),
        });
    }
    Ok(())
}

fn check_duration(
    duration: Option<VideoDuration>,
    generation_type: Option<&GenerationType>,
) -> Result<(), ValidationError> {
    let Some(duration) = duration else {
        return Ok(());
    };
    if let VideoDuration::Other(seconds) = duration {
        return Err(ValidationError::DurationNotSupported { seconds });
    }
    if generation_type == Some(&GenerationType::Reference) && duration != VideoDuration::Seconds8 {
        return Err(ValidationError::DurationForReference {
            seconds: duration.seconds(),
        });
    }
    Ok(())
}

fn check_seeds(seeds: Option<u32>) -> Result<(), ValidationError> {
    match seeds {
        Some(value) if !(SEED_MIN..=SEED_MAX).contains(&value) => {
            Err(ValidationError::SeedsOutOfRange { value })
        }
        _ => Ok(()),
    }
}

fn check_callback(url: Option<&str>) -> Result<(), ValidationError> {
    match url {
        None => Ok(()),
        Some(url) => check_url(url).map_err(|reason| ValidationError::InvalidUrl {
            field: "callBackUrl",
            index: None,
            reason,
        }),
    }
}

/// Accepts `http://host...` and `https://host...` (any case) without whitespace.
pub(crate) fn check_url(url: &str) -> Result<(), &'static str> {
    if url.len() > MAX_URL_BYTES {
        return Err("it is longer than 8192 bytes");
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err("the scheme must be http or https");
    };
    if url.chars().any(char::is_whitespace) {
        return Err("it contains whitespace");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || host.starts_with('@') {
        return Err("the host is missing");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_check_accepts_http_and_https_only() {
        assert!(check_url("https://img.example.com/a.png").is_ok());
        assert!(check_url("HTTP://img.example.com").is_ok());
        assert!(check_url("ftp://img.example.com/a.png").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_url("https:///path").is_err());
        assert!(check_url("https://a b").is_err());
        assert!(check_url("img.example.com/a.png").is_err());
        assert!(check_url("").is_err());
        assert!(check_url("héllo://x").is_err());
    }
}
