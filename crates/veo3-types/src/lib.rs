//! Wire models for kie.ai's Veo 3 / Veo 3.1 video-generation API.
//!
//! This crate is the wire format and nothing else: serde types, validation of what we are
//! about to send, and tolerant decoding of what we receive. It does no I/O, owns no clock and
//! knows nothing about HTTP clients, so every other crate in the workspace (the core, both
//! clients, the sandbox) speaks through it.
//!
//! # Why decoding is tolerant
//!
//! kie's documentation exists in three generations that disagree with each other, and live
//! responses drift further: `resultUrls` is an array in one place and a JSON-encoded string in
//! another, timestamps are epoch milliseconds or two kinds of string, the task state lives in
//! `successFlag` or the legacy `status`, the message in `msg` or `message`. A client that fails
//! to decode a valid answer, or loops forever on a state it has never seen, is broken for its
//! users. So each decoder here accepts every documented shape and normalises it: the value you
//! get is the same whichever shape arrived. Enums the server may extend keep an `Other(..)` /
//! `Unknown(..)` variant instead of failing.
//!
//! Decoders never panic: they take `&serde_json::Value` or raw bytes and return a value or a
//! [`DecodeError`]. A property test feeds arbitrary JSON to each of them.
//!
//! # Why requests are validated here
//!
//! Generation is billable and cannot be cancelled, so every mistake we can catch locally must be
//! caught before a request is sent. [`GenerateRequest::builder`] checks the prompt, the image
//! count per generation type, the seed range, the URL schemes and the model/type pairing, and
//! reports each failure as a [`ValidationError`] naming the field and the rule.
//!
//! ```
//! use veo3_types::{AspectRatio, GenerateRequest, Model};
//!
//! let request = GenerateRequest::builder("A red fox trotting through fresh snow at dawn")
//!     .model(Model::Veo3Fast)
//!     .aspect_ratio(AspectRatio::Portrait)
//!     .seeds(12345)
//!     .build()?;
//! let json = serde_json::to_value(&request).unwrap();
//! assert_eq!(json["aspect_ratio"], "9:16");
//! assert_eq!(json["model"], "veo3_fast");
//! # Ok::<(), veo3_types::ValidationError>(())
//! ```

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod callback;
mod code;
mod error;
#[cfg(test)]
mod fuzz;
mod quick;
mod request;
mod response;
mod tolerant;
mod upload;
mod wire_enum;

pub use callback::{Callback, CallbackInfo, CallbackKind};
pub use code::{ApiCode, BaseUrl, CodeClass, Endpoint, HttpMethod, is_processing_message};
pub use error::{DecodeError, ValidationError};
pub use request::{
    DownloadUrlRequest, ExtendRequest, GenerateRequest, GenerateRequestBuilder, GenerateWithImages,
    Hd1080pQuery, MAX_ECHO_BYTES, MAX_PROMPT_CHARS, MAX_URL_BYTES, MAX_WATERMARK_CHARS,
    RecordInfoQuery, Upgrade4kRequest,
};
pub use response::{
    Credits, Envelope, Hd1080pResult, TaskCreated, TaskRecord, TaskResponse, TaskState,
    Upgrade4kResult, UploadAnswer, UploadedFile,
};
pub use tolerant::{Timestamp, parse_url_list};
pub use upload::{
    DEFAULT_UPLOAD_PATH, ImageFormat, ImageInput, ImageProblem, MAX_IMAGE_BYTES, SNIFF_BYTES,
    UploadBase64Request, UploadOptions, UploadUrlRequest, check_image, check_image_count,
    stream_upload_fields,
};
pub use wire_enum::{
    AspectRatio, DurationParseError, ExtendModel, GenerationType, Model, Resolution, VideoDuration,
};
