//! The two ways a wire value can be wrong: a request we refuse to send ([`ValidationError`]) and
//! a response we cannot read ([`DecodeError`]).

use std::fmt;

use crate::{GenerationType, ImageProblem, Model};

/// A request that breaks one of the API's documented rules, caught before it is sent.
///
/// Each variant names the field ([`ValidationError::field`]) and its `Display` states the rule.
///
/// ```
/// use veo3_types::{GenerateRequest, ValidationError};
///
/// let error = GenerateRequest::builder("  ").build().unwrap_err();
/// assert_eq!(error.field(), "prompt");
/// assert!(matches!(error, ValidationError::EmptyPrompt));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationError {
    /// `prompt` is empty or only whitespace.
    EmptyPrompt,
    /// `taskId` is empty.
    EmptyTaskId,
    /// `imageUrls` has a count the generation type does not accept.
    ImageCount {
        /// The generation type (or `None` when the server is left to infer it).
        generation_type: Option<GenerationType>,
        /// Inclusive minimum.
        min: usize,
        /// Inclusive maximum.
        max: usize,
        /// What was given.
        actual: usize,
    },
    /// `seeds` is outside 10000-99999.
    SeedsOutOfRange {
        /// What was given.
        value: u32,
    },
    /// A URL field that is not an absolute http(s) URL.
    InvalidUrl {
        /// The field, e.g. `imageUrls[1]` or `callBackUrl`.
        field: &'static str,
        /// The position for list fields.
        index: Option<usize>,
        /// Why it was refused.
        reason: &'static str,
    },
    /// `REFERENCE_2_VIDEO` with a model the docs say may not do it. A soft rule: reported by
    /// [`GenerateRequest::warnings`](crate::GenerateRequest::warnings), never by `validate`.
    UnsupportedModel {
        /// The generation type.
        generation_type: GenerationType,
        /// The model given.
        model: Model,
    },
    /// `duration` is not one of the lengths kie documents (4, 6 or 8 seconds).
    DurationNotSupported {
        /// What was given, in seconds.
        seconds: i64,
    },
    /// `REFERENCE_2_VIDEO` with a `duration` other than 8: the reference quotes kie's schema,
    /// "The REFERENCE_2_VIDEO mode currently only supports a duration of 8 seconds."
    DurationForReference {
        /// What was given, in seconds.
        seconds: i64,
    },
    /// A text field longer than this SDK sends (see
    /// [`MAX_PROMPT_CHARS`](crate::MAX_PROMPT_CHARS) for why there is a limit).
    TooLong {
        /// The field.
        field: &'static str,
        /// The limit, in characters.
        max: usize,
        /// What was given, in characters.
        actual: usize,
    },
    /// A text field holding a NUL character.
    NulCharacter {
        /// The field.
        field: &'static str,
    },
    /// An upload option is malformed (`uploadPath`, `fileName`, `base64Data`).
    InvalidUploadOption {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// An input image is refused before anything is sent (missing, unreadable, too large, not
    /// an image).
    Image {
        /// The file as the caller named it (path, or file name for bytes).
        name: String,
        /// What is wrong with it.
        problem: ImageProblem,
    },
}

impl ValidationError {
    /// The wire name of the offending field.
    pub fn field(&self) -> &'static str {
        match self {
            Self::EmptyPrompt => "prompt",
            Self::EmptyTaskId => "taskId",
            Self::ImageCount { .. } => "imageUrls",
            Self::SeedsOutOfRange { .. } => "seeds",
            Self::InvalidUrl { field, .. } => field,
            Self::UnsupportedModel { .. } => "model",
            Self::DurationNotSupported { .. } | Self::DurationForReference { .. } => "duration",
            Self::TooLong { field, .. } | Self::NulCharacter { field } => field,
            Self::InvalidUploadOption { field, .. } => field,
            Self::Image { .. } => "imageUrls",
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyPrompt => f.write_str("prompt must not be empty"),
            Self::EmptyTaskId => f.write_str("taskId must not be empty"),
            Self::ImageCount {
                generation_type: None,
                max,
                actual,
                ..
            } => write!(
                f,
                "imageUrls must have at most {max} images when generationType is not given: kie then infers {} from the images, which takes 1 or 2 (pass generationType REFERENCE_2_VIDEO for up to 3 reference images), got {actual}",
                GenerationType::FirstAndLastFrames.as_str()
            ),
            Self::ImageCount {
                generation_type: Some(ty),
                min,
                max,
                actual,
            } => {
                let ty = ty.as_str();
                if min == max {
                    write!(
                        f,
                        "imageUrls must have exactly {min} image(s) for {ty}, got {actual}"
                    )
                } else {
                    write!(
                        f,
                        "imageUrls must have {min} to {max} images for {ty}, got {actual}"
                    )
                }
            }
            Self::SeedsOutOfRange { value } => {
                write!(f, "seeds must be between 10000 and 99999, got {value}")
            }
            Self::InvalidUrl {
                field,
                index: Some(index),
                reason,
            } => {
                write!(
                    f,
                    "{field}[{index}] must be an absolute http(s) URL: {reason}"
                )
            }
            Self::InvalidUrl {
                field,
                index: None,
                reason,
            } => {
                write!(f, "{field} must be an absolute http(s) URL: {reason}")
            }
            Self::UnsupportedModel {
                generation_type,
                model,
            } => write!(
                f,
                "model {model} may not support {generation_type}: the docs list only veo3_fast (and, on one page, veo3_lite); sent anyway, the server decides"
            ),
            Self::DurationNotSupported { seconds } => {
                write!(f, "duration must be 4, 6 or 8 seconds, got {seconds}")
            }
            Self::DurationForReference { seconds } => write!(
                f,
                "duration must be 8 seconds for REFERENCE_2_VIDEO (kie: \"the REFERENCE_2_VIDEO mode currently only supports a duration of 8 seconds\"), got {seconds}"
            ),
            Self::TooLong { field, max, actual } => {
                write!(f, "{field} must be at most {max} characters, got {actual}")
            }
            Self::NulCharacter { field } => {
                write!(f, "{field} must not contain a NUL character")
            }
            Self::InvalidUploadOption { field, reason } => {
                write!(f, "{field} is invalid: {reason}")
            }
            Self::Image { name, problem } => write!(f, "image {name}: {problem}"),
        }
    }
}

impl std::error::Error for ValidationError {}

/// A response body or callback that could not be read as any documented shape.
///
/// Messages name what was missing or wrong; they never quote request headers, so they cannot
/// carry the API key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not JSON.
    NotJson {
        /// serde_json's description (position and kind, not content).
        detail: String,
    },
    /// The JSON is not of the expected kind (e.g. an array where an object belongs).
    UnexpectedShape {
        /// What was expected.
        expected: &'static str,
    },
    /// A required field is absent or null.
    MissingField {
        /// The wire name.
        field: &'static str,
    },
    /// A field is present but unreadable.
    InvalidField {
        /// The wire name.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson { detail } => write!(f, "body is not JSON: {detail}"),
            Self::UnexpectedShape { expected } => write!(f, "expected {expected}"),
            Self::MissingField { field } => write!(f, "missing field `{field}`"),
            Self::InvalidField { field, expected } => {
                write!(f, "field `{field}` is not {expected}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}
