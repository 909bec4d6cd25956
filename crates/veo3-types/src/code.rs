//! The API's code table and endpoint map: what each envelope `code` means and which endpoints
//! exist, as data. Retry and poll decisions in veo3-core are made from these values.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a code should be treated by a client, before looking at the endpoint or message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodeClass {
    /// The call succeeded.
    Success,
    /// A temporary condition: the same call may succeed later.
    Transient,
    /// The call was rejected; repeating it unchanged will fail again.
    Permanent,
    /// The work is still in progress ("1080P is processing", "4k is processing"): ask again later.
    Pending,
}

/// The envelope `code` (also record-info's `errorCode` and a callback's `code`).
///
/// ```
/// use veo3_types::{ApiCode, CodeClass};
/// assert_eq!(ApiCode::from_i64(429), ApiCode::RateLimited);
/// assert_eq!(ApiCode::RateLimited.class(), CodeClass::Transient);
/// assert_eq!(ApiCode::from_i64(433), ApiCode::SubKeyLimitExceeded);
/// assert_eq!(ApiCode::from_i64(434), ApiCode::Other(434));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiCode {
    /// 200: success.
    Success,
    /// 400: rejected input (moderation, non-English prompt, image fetch, unsafe image); on the
    /// 1080p endpoint also "1080P is processing".
    BadRequest,
    /// 401: missing or invalid credentials.
    Unauthorized,
    /// 402: insufficient credits.
    InsufficientCredits,
    /// 404: resource or endpoint not found (for extend: the original task).
    NotFound,
    /// 405: method not allowed (upload API).
    MethodNotAllowed,
    /// 408: upstream produced no result for over 10 minutes.
    UpstreamTimeout,
    /// 422: validation error, record messages, 14-day window, and the 4K "processing" /
    /// "already generated" answers.
    Unprocessable,
    /// 429: rate limited; the request was dropped, not queued.
    RateLimited,
    /// 433: the API key's sub-key usage exceeds its limit (documented on kie's newer model
    /// pages for sub-keys, not on the Veo pages; the reference's section 5). Not retryable:
    /// the limit is a setting of the key, not a passing condition.
    SubKeyLimitExceeded,
    /// 451: failed to fetch an input image.
    ImageFetchFailed,
    /// 455: service unavailable or under maintenance.
    ServiceUnavailable,
    /// 500: server error or timeout.
    InternalError,
    /// 501: the generation (or extension) task failed.
    GenerationFailed,
    /// 505: feature disabled.
    FeatureDisabled,
    /// A code the reference does not document, kept verbatim.
    Other(i64),
}

impl ApiCode {
    /// Maps a numeric code; undocumented values become [`ApiCode::Other`].
    pub fn from_i64(code: i64) -> Self {
        match code {
            200 => Self::Success,
            400 => Self::BadRequest,
            401 => Self::Unauthorized,
            402 => Self::InsufficientCredits,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::UpstreamTimeout,
            422 => Self::Unprocessable,
            429 => Self::RateLimited,
            433 => Self::SubKeyLimitExceeded,
            451 => Self::ImageFetchFailed,
            455 => Self::ServiceUnavailable,
            500 => Self::InternalError,
            501 => Self::GenerationFailed,
            505 => Self::FeatureDisabled,
            other => Self::Other(other),
        }
    }

    /// The numeric value.
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Success => 200,
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::InsufficientCredits => 402,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::UpstreamTimeout => 408,
            Self::Unprocessable => 422,
            Self::RateLimited => 429,
            Self::SubKeyLimitExceeded => 433,
            Self::ImageFetchFailed => 451,
            Self::ServiceUnavailable => 455,
            Self::InternalError => 500,
            Self::GenerationFailed => 501,
            Self::FeatureDisabled => 505,
            Self::Other(code) => code,
        }
    }

    /// What the code means, paraphrasing the reference's table.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::BadRequest => {
                "rejected input (content policy, language, image fetch or unsafe image), or 1080P still processing"
            }
            Self::Unauthorized => "missing or invalid credentials",
            Self::InsufficientCredits => "insufficient credits",
            Self::NotFound => "resource not found",
            Self::MethodNotAllowed => "method not allowed",
            Self::UpstreamTimeout => "upstream produced no result for over 10 minutes",
            Self::Unprocessable => "validation error or record not available",
            Self::RateLimited => "rate limited: the request was dropped, not queued",
            Self::SubKeyLimitExceeded => {
                "sub-key usage exceeds limit: this API key's sub-key has reached its usage limit (hourly, daily or total); raise the sub-key's limit in kie.ai's API key settings or use another key"
            }
            Self::ImageFetchFailed => "failed to fetch an input image",
            Self::ServiceUnavailable => "service unavailable or under maintenance",
            Self::InternalError => "internal server error",
            Self::GenerationFailed => "the generation task failed",
            Self::FeatureDisabled => "feature disabled",
            Self::Other(code) if (500..600).contains(&code) => "undocumented server error",
            Self::Other(_) => "undocumented code",
        }
    }

    /// The class of the code on its own. Two codes need the message as well to be read right
    /// (400 and 422 can mean "processing"); see [`ApiCode::class_with_message`].
    pub fn class(self) -> CodeClass {
        match self {
            Self::Success => CodeClass::Success,
            Self::UpstreamTimeout
            | Self::RateLimited
            | Self::ServiceUnavailable
            | Self::InternalError => CodeClass::Transient,
            Self::Other(code) if (500..600).contains(&code) => CodeClass::Transient,
            _ => CodeClass::Permanent,
        }
    }

    /// The class, reading the message where the code alone is ambiguous: a 400 or 422 whose
    /// message says "processing" is [`CodeClass::Pending`].
    pub fn class_with_message(self, message: &str) -> CodeClass {
        match self {
            Self::BadRequest | Self::Unprocessable if is_processing_message(message) => {
                CodeClass::Pending
            }
            other => other.class(),
        }
    }

    /// `true` for 200.
    pub fn is_success(self) -> bool {
        self == Self::Success
    }
}

impl fmt::Display for ApiCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_i64())
    }
}

impl Serialize for ApiCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.as_i64())
    }
}

impl<'de> Deserialize<'de> for ApiCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        crate::tolerant::as_i64(&value)
            .map(Self::from_i64)
            .ok_or_else(|| serde::de::Error::custom("code is not an integer"))
    }
}

/// `true` when an answer's message says the work is still in progress, as the 1080p endpoint
/// ("1080P is processing...") and the 4K endpoint ("4k is processing...") do.
pub fn is_processing_message(message: &str) -> bool {
    message.to_ascii_lowercase().contains("processing")
}

/// HTTP method of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST` with a JSON body.
    Post,
}

impl HttpMethod {
    /// `"GET"` or `"POST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// The endpoints: the Veo API on the API base URL, and the file-upload API on its own host
/// ([`Endpoint::base_url`] says which).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /api/v1/veo/generate`: billable.
    Generate,
    /// `GET /api/v1/veo/record-info`.
    RecordInfo,
    /// `GET /api/v1/veo/get-1080p-video`.
    Hd1080p,
    /// `POST /api/v1/veo/get-4k-video`: billable.
    Upgrade4k,
    /// `POST /api/v1/veo/extend`: billable.
    Extend,
    /// `GET /api/v1/chat/credit`.
    Credits,
    /// `POST /api/v1/common/download-url`.
    DownloadUrl,
    /// `POST /api/file-stream-upload` on the upload host: a multipart upload.
    UploadStream,
    /// `POST /api/file-url-upload` on the upload host: the server fetches a URL.
    UploadUrl,
    /// `POST /api/file-base64-upload` on the upload host: the bytes inline as base64.
    UploadBase64,
}

/// Which base URL an endpoint is joined to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BaseUrl {
    /// The Veo API (`https://api.kie.ai`).
    Api,
    /// kie's file-upload host (`https://kieai.redpandaai.co`); it takes the same API key.
    Upload,
}

impl Endpoint {
    /// The endpoints of the upload host.
    pub const UPLOADS: [Endpoint; 3] = [Self::UploadStream, Self::UploadUrl, Self::UploadBase64];

    /// Every endpoint of the Veo API base URL (the upload endpoints are in
    /// [`Endpoint::UPLOADS`]).
    pub const ALL: [Endpoint; 7] = [
        Self::Generate,
        Self::RecordInfo,
        Self::Hd1080p,
        Self::Upgrade4k,
        Self::Extend,
        Self::Credits,
        Self::DownloadUrl,
    ];

    /// The path below the API base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Generate => "/api/v1/veo/generate",
            Self::RecordInfo => "/api/v1/veo/record-info",
            Self::Hd1080p => "/api/v1/veo/get-1080p-video",
            Self::Upgrade4k => "/api/v1/veo/get-4k-video",
            Self::Extend => "/api/v1/veo/extend",
            Self::Credits => "/api/v1/chat/credit",
            Self::DownloadUrl => "/api/v1/common/download-url",
            Self::UploadStream => "/api/file-stream-upload",
            Self::UploadUrl => "/api/file-url-upload",
            Self::UploadBase64 => "/api/file-base64-upload",
        }
    }

    /// The base URL the path is joined to: uploads go to the upload host, not the API.
    pub fn base_url(self) -> BaseUrl {
        match self {
            Self::UploadStream | Self::UploadUrl | Self::UploadBase64 => BaseUrl::Upload,
            _ => BaseUrl::Api,
        }
    }

    /// The HTTP method.
    pub fn method(self) -> HttpMethod {
        match self {
            Self::RecordInfo | Self::Hd1080p | Self::Credits => HttpMethod::Get,
            Self::Generate
            | Self::Upgrade4k
            | Self::Extend
            | Self::DownloadUrl
            | Self::UploadStream
            | Self::UploadUrl
            | Self::UploadBase64 => HttpMethod::Post,
        }
    }

    /// `true` for the endpoints that create billed work and have no idempotency key: a request
    /// that may have reached the server must never be sent again blindly.
    pub fn is_billable(self) -> bool {
        matches!(self, Self::Generate | Self::Upgrade4k | Self::Extend)
    }

    /// A short, stable name for logs and errors (`"generate"`, `"record-info"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Generate => "generate",
            Self::RecordInfo => "record-info",
            Self::Hd1080p => "get-1080p-video",
            Self::Upgrade4k => "get-4k-video",
            Self::Extend => "extend",
            Self::Credits => "credit",
            Self::DownloadUrl => "download-url",
            Self::UploadStream => "file-stream-upload",
            Self::UploadUrl => "file-url-upload",
            Self::UploadBase64 => "file-base64-upload",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_table_round_trips_and_classifies() {
        let table = [
            (200, CodeClass::Success),
            (400, CodeClass::Permanent),
            (401, CodeClass::Permanent),
            (402, CodeClass::Permanent),
            (404, CodeClass::Permanent),
            (405, CodeClass::Permanent),
            (408, CodeClass::Transient),
            (422, CodeClass::Permanent),
            (429, CodeClass::Transient),
            (451, CodeClass::Permanent),
            (455, CodeClass::Transient),
            (500, CodeClass::Transient),
            (501, CodeClass::Permanent),
            (505, CodeClass::Permanent),
            (503, CodeClass::Transient),
            (433, CodeClass::Permanent),
            (434, CodeClass::Permanent),
        ];
        for (code, class) in table {
            let parsed = ApiCode::from_i64(code);
            assert_eq!(parsed.as_i64(), code);
            assert_eq!(parsed.class(), class, "code {code}");
        }
    }

    #[test]
    fn processing_messages_are_pending() {
        let hd =
            "1080P is processing. It should be ready in 1-2 minutes. Please check back shortly.";
        let k4 = "4k is processing. It should be ready in 5-10 minutes. Please check back shortly.";
        assert_eq!(
            ApiCode::BadRequest.class_with_message(hd),
            CodeClass::Pending
        );
        assert_eq!(
            ApiCode::Unprocessable.class_with_message(k4),
            CodeClass::Pending
        );
        assert_eq!(
            ApiCode::BadRequest.class_with_message("Your prompt was flagged"),
            CodeClass::Permanent
        );
        assert_eq!(
            ApiCode::InternalError.class_with_message("processing"),
            CodeClass::Transient
        );
    }

    #[test]
    fn billable_endpoints_are_exactly_the_posts_that_create_work() {
        let billable: Vec<_> = Endpoint::ALL
            .into_iter()
            .filter(|e| e.is_billable())
            .collect();
        assert_eq!(
            billable,
            [Endpoint::Generate, Endpoint::Upgrade4k, Endpoint::Extend]
        );
    }
}
