//! The file-upload API (kie's separate upload host, reference section 3.8) and image inputs.
//!
//! Image-to-video, first-and-last-frames and reference-to-video take `imageUrls`: public URLs.
//! Most users hold local files, so the SDK uploads them first (free) and submits the hosted
//! URLs. This module holds what that needs without any I/O: the upload request bodies, the
//! options, the image types the API accepts recognised from their first bytes (never from the
//! file name), the size limit, and [`ImageInput`], the "URL, local path or bytes" a request can
//! take. Checks that touch the filesystem (the file exists, is readable, starts with an image
//! signature) live in `veo3-core`, which reports them with the same [`ImageProblem`]s.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::request::check_url;

/// The upload folder used when the caller names none (the reference's example folder).
pub const DEFAULT_UPLOAD_PATH: &str = "images/veo-inputs";

/// The largest image the SDK uploads for a request: the upload API's documented
/// recommendation ("≤ 100 MB", reference section 3.8). Larger files are refused before any
/// request is sent.
pub const MAX_IMAGE_BYTES: u64 = 100 * 1000 * 1000;

/// How many leading bytes [`ImageFormat::sniff`] needs.
pub const SNIFF_BYTES: usize = 12;

/// Where an upload is stored, and under which name.
///
/// ```
/// use veo3_types::UploadOptions;
/// let options = UploadOptions::default().file_name("cat.png");
/// assert_eq!(options.upload_path, "images/veo-inputs");
/// options.validate()?;
/// assert!(UploadOptions::new("/leading").validate().is_err());
/// # Ok::<(), veo3_types::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadOptions {
    /// The folder on the upload host (`uploadPath`): required by the API, no leading or
    /// trailing slash.
    pub upload_path: String,
    /// The stored name (`fileName`); the same name overwrites an earlier file, `None` lets
    /// the server pick a random one.
    pub file_name: Option<String>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self::new(DEFAULT_UPLOAD_PATH)
    }
}

impl UploadOptions {
    /// Uploads into `upload_path` under a server-chosen name.
    pub fn new(upload_path: impl Into<String>) -> Self {
        Self {
            upload_path: upload_path.into(),
            file_name: None,
        }
    }

    /// Sets the stored file name.
    pub fn file_name(mut self, file_name: impl Into<String>) -> Self {
        self.file_name = Some(file_name.into());
        self
    }

    /// Checks `uploadPath` (non-empty, no leading or trailing slash) and `fileName` (no
    /// slash, not empty when set).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let path = self.upload_path.trim();
        let reason = if path.is_empty() {
            Some("it must not be empty")
        } else if path.starts_with('/') || path.ends_with('/') {
            Some("it must not start or end with a slash")
        } else if self.upload_path.chars().any(char::is_control) {
            Some("it must not contain control characters")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(ValidationError::InvalidUploadOption {
                field: "uploadPath",
                reason,
            });
        }
        if let Some(name) = &self.file_name {
            if name.trim().is_empty()
                || name.contains(['/', '\\'])
                || name.chars().any(char::is_control)
            {
                return Err(ValidationError::InvalidUploadOption {
                    field: "fileName",
                    reason: "it must be a plain, non-empty file name",
                });
            }
        }
        Ok(())
    }
}

/// Body of `POST /api/file-url-upload`: the upload host fetches `fileUrl` itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UploadUrlRequest {
    /// The file to fetch (http or https).
    #[serde(rename = "fileUrl")]
    pub file_url: String,
    /// The folder on the upload host.
    #[serde(rename = "uploadPath")]
    pub upload_path: String,
    /// The stored name.
    #[serde(rename = "fileName", skip_serializing_if = "Option::is_none", default)]
    pub file_name: Option<String>,
}

impl UploadUrlRequest {
    /// The request for `file_url` with `options`.
    pub fn new(file_url: impl Into<String>, options: &UploadOptions) -> Self {
        Self {
            file_url: file_url.into(),
            upload_path: options.upload_path.clone(),
            file_name: options.file_name.clone(),
        }
    }

    /// Checks the URL and the options.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_url(&self.file_url).map_err(|reason| ValidationError::InvalidUrl {
            field: "fileUrl",
            index: None,
            reason,
        })?;
        self.options().validate()
    }

    fn options(&self) -> UploadOptions {
        UploadOptions {
            upload_path: self.upload_path.clone(),
            file_name: self.file_name.clone(),
        }
    }
}

/// Body of `POST /api/file-base64-upload`: the bytes inline, as a `data:` URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UploadBase64Request {
    /// Raw base64 or `data:<mime>;base64,<payload>`.
    #[serde(rename = "base64Data")]
    pub base64_data: String,
    /// The folder on the upload host.
    #[serde(rename = "uploadPath")]
    pub upload_path: String,
    /// The stored name.
    #[serde(rename = "fileName", skip_serializing_if = "Option::is_none", default)]
    pub file_name: Option<String>,
}

impl fmt::Debug for UploadBase64Request {
    // The payload can be megabytes: show its size, not its text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadBase64Request")
            .field(
                "base64_data",
                &format_args!("<{} chars>", self.base64_data.len()),
            )
            .field("upload_path", &self.upload_path)
            .field("file_name", &self.file_name)
            .finish()
    }
}

impl UploadBase64Request {
    /// Encodes `bytes` as a `data:` URL of `mime_type` (when known) with `options`.
    ///
    /// ```
    /// use veo3_types::{UploadBase64Request, UploadOptions};
    /// let request = UploadBase64Request::from_bytes(b"hi", Some("text/plain"), &UploadOptions::default());
    /// assert_eq!(request.base64_data, "data:text/plain;base64,aGk=");
    /// ```
    pub fn from_bytes(bytes: &[u8], mime_type: Option<&str>, options: &UploadOptions) -> Self {
        let payload = base64_encode(bytes);
        let base64_data = match mime_type {
            Some(mime) => format!("data:{mime};base64,{payload}"),
            None => payload,
        };
        Self {
            base64_data,
            upload_path: options.upload_path.clone(),
            file_name: options.file_name.clone(),
        }
    }

    /// Checks the payload is present and the options.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.base64_data.trim().is_empty() {
            return Err(ValidationError::InvalidUploadOption {
                field: "base64Data",
                reason: "it must not be empty",
            });
        }
        UploadOptions {
            upload_path: self.upload_path.clone(),
            file_name: self.file_name.clone(),
        }
        .validate()
    }
}

/// The multipart fields of `POST /api/file-stream-upload` besides the file itself, in the
/// order they are sent.
pub fn stream_upload_fields(options: &UploadOptions) -> Vec<(&'static str, String)> {
    let mut fields = vec![("uploadPath", options.upload_path.clone())];
    if let Some(name) = &options.file_name {
        fields.push(("fileName", name.clone()));
    }
    fields
}

/// An image type the generation API accepts (JPG, PNG and WebP, reference section 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageFormat {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (`89 50 4E 47 0D 0A 1A 0A`).
    Png,
    /// WebP (`RIFF....WEBP`).
    Webp,
}

impl ImageFormat {
    /// Recognises an image from its first bytes (at least [`SNIFF_BYTES`] of them for WebP):
    /// the magic numbers, never the file name, so a text file named `.png` is refused.
    ///
    /// ```
    /// use veo3_types::ImageFormat;
    /// assert_eq!(ImageFormat::sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
    /// assert_eq!(ImageFormat::sniff(b"hello, world"), None);
    /// ```
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }

    /// The MIME type (`image/png`, ...).
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }
}

/// Why an image input is refused before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageProblem {
    /// No file at that path.
    NotFound,
    /// The path exists but is not a regular file (a directory, a device).
    NotAFile,
    /// The file could not be opened or read; the operating system's reason.
    Unreadable(String),
    /// The file is empty.
    Empty,
    /// Larger than the limit.
    TooLarge {
        /// The file's size in bytes.
        size: u64,
        /// The limit in bytes ([`MAX_IMAGE_BYTES`]).
        max: u64,
    },
    /// The bytes do not start like a JPEG, PNG or WebP image.
    NotAnImage,
    /// A local image given where only URLs are accepted (upload it first).
    NotUploaded,
}

impl fmt::Display for ImageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such file"),
            Self::NotAFile => f.write_str("not a regular file"),
            Self::Unreadable(reason) => write!(f, "cannot be read: {reason}"),
            Self::Empty => f.write_str("the file is empty"),
            Self::TooLarge { size, max } => {
                write!(f, "{size} bytes is over the {max}-byte limit for an image")
            }
            Self::NotUploaded => f.write_str(
                "a local image must be uploaded first (build_with_images and the clients' generate_with_images do it)",
            ),
            Self::NotAnImage => f.write_str(
                "not a JPEG, PNG or WebP image (checked from its content, not its name)",
            ),
        }
    }
}

/// An input image: a public URL, or something to upload first.
///
/// ```
/// use veo3_types::ImageInput;
/// assert!(matches!(ImageInput::parse("https://img.example.com/a.png"), ImageInput::Url(_)));
/// assert!(matches!(ImageInput::parse("./cat.png"), ImageInput::Path(_)));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageInput {
    /// Already hosted: sent as is.
    Url(String),
    /// A local file: checked, streamed to the upload host, then sent as the hosted URL.
    Path(PathBuf),
    /// Bytes in memory, uploaded under `file_name`.
    Bytes {
        /// The image.
        bytes: Vec<u8>,
        /// The name it is stored (and reported) under.
        file_name: String,
    },
}

impl fmt::Debug for ImageInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.debug_tuple("Url").field(url).finish(),
            Self::Path(path) => f.debug_tuple("Path").field(path).finish(),
            Self::Bytes { bytes, file_name } => f
                .debug_struct("Bytes")
                .field("len", &bytes.len())
                .field("file_name", file_name)
                .finish(),
        }
    }
}

impl ImageInput {
    /// A command-line style argument: text that starts with a URL scheme (`https://`,
    /// `http://`, and also `ftp://` or any other `scheme://`) is a URL, so an unsupported
    /// scheme is refused as a URL rather than looked for on disk; anything else is a local
    /// path (write `./ftp:/x` for the rare file whose name looks like a URL).
    pub fn parse(text: &str) -> Self {
        let is_url = text.split_once("://").is_some_and(|(scheme, _)| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        if is_url {
            Self::Url(text.to_owned())
        } else {
            Self::Path(PathBuf::from(text))
        }
    }

    /// `true` when the image must be uploaded before it can be used.
    pub fn is_local(&self) -> bool {
        !matches!(self, Self::Url(_))
    }

    /// How errors and events name it: the URL, the path as given, or the file name.
    pub fn name(&self) -> String {
        match self {
            Self::Url(url) => url.clone(),
            Self::Path(path) => path.display().to_string(),
            Self::Bytes { file_name, .. } => file_name.clone(),
        }
    }

    /// The checks that need no filesystem: a URL's form, and for bytes their size and image
    /// signature. Paths are checked by `veo3-core` (it can read them).
    pub fn validate(&self, index: usize) -> Result<(), ValidationError> {
        match self {
            Self::Url(url) => check_url(url).map_err(|reason| ValidationError::InvalidUrl {
                field: "imageUrls",
                index: Some(index),
                reason,
            }),
            Self::Path(_) => Ok(()),
            Self::Bytes { bytes, file_name } => {
                check_image(bytes.len() as u64, bytes).map_err(|problem| {
                    ValidationError::Image {
                        name: file_name.clone(),
                        problem,
                    }
                })?;
                Ok(())
            }
        }
    }
}

impl From<&str> for ImageInput {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl From<String> for ImageInput {
    fn from(text: String) -> Self {
        Self::parse(&text)
    }
}

impl From<PathBuf> for ImageInput {
    fn from(path: PathBuf) -> Self {
        Self::Path(path)
    }
}

impl From<&std::path::Path> for ImageInput {
    fn from(path: &std::path::Path) -> Self {
        Self::Path(path.to_owned())
    }
}

/// The checks shared by files and bytes: `size` (the whole image's) within
/// [`MAX_IMAGE_BYTES`], not empty, and `head` (its first bytes, [`SNIFF_BYTES`] suffice)
/// starting like a supported image.
pub fn check_image(size: u64, head: &[u8]) -> Result<ImageFormat, ImageProblem> {
    if size == 0 {
        return Err(ImageProblem::Empty);
    }
    if size > MAX_IMAGE_BYTES {
        return Err(ImageProblem::TooLarge {
            size,
            max: MAX_IMAGE_BYTES,
        });
    }
    ImageFormat::sniff(head).ok_or(ImageProblem::NotAnImage)
}

/// Checks the number of images against what `generation_type` allows (the reference's table),
/// before anything is uploaded.
///
/// Without a generation type kie infers one from the images, as the reference says: none is
/// `TEXT_2_VIDEO`, any is `FIRST_AND_LAST_FRAMES_2_VIDEO`, which takes one or two. A third
/// image is therefore refused here, naming that rule ([`GenerationType::inferred`]), rather
/// than by the server after the request is sent; three reference images need
/// `REFERENCE_2_VIDEO` said explicitly.
///
/// ```
/// use veo3_types::{check_image_count, GenerationType};
/// assert!(check_image_count(None, 2).is_ok());
/// let error = check_image_count(None, 3).unwrap_err();
/// assert!(error.to_string().contains("FIRST_AND_LAST_FRAMES_2_VIDEO"), "{error}");
/// assert!(check_image_count(Some(&GenerationType::Reference), 3).is_ok());
/// ```
///
/// [`GenerationType::inferred`]: crate::GenerationType::inferred
pub fn check_image_count(
    generation_type: Option<&crate::GenerationType>,
    actual: usize,
) -> Result<(), ValidationError> {
    let (min, max) = match generation_type {
        Some(ty) => ty.image_range().unwrap_or((0, usize::MAX)),
        // What kie infers: none, or one or two frames.
        None => match crate::GenerationType::inferred(actual).image_range() {
            Some((_, max)) => (0, max),
            None => (0, usize::MAX),
        },
    };
    if actual < min || actual > max {
        return Err(ValidationError::ImageCount {
            generation_type: generation_type.cloned(),
            min,
            max: max.min(3),
            actual,
        });
    }
    Ok(())
}

/// Standard base64 with padding (RFC 4648), enough for the base64 upload.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64_encode(&[0xFB, 0xFF]), "+/8=");
    }

    #[test]
    fn images_are_recognised_by_content_not_name() {
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(ImageFormat::Webp)
        );
        assert_eq!(ImageFormat::sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG"),
            None,
            "a truncated signature"
        );
        assert_eq!(check_image(5, b"hello"), Err(ImageProblem::NotAnImage));
        assert_eq!(check_image(0, b""), Err(ImageProblem::Empty));
        assert_eq!(
            check_image(MAX_IMAGE_BYTES + 1, b"\x89PNG\r\n\x1a\n"),
            Err(ImageProblem::TooLarge {
                size: MAX_IMAGE_BYTES + 1,
                max: MAX_IMAGE_BYTES
            })
        );
    }

    #[test]
    fn image_counts_follow_the_generation_type() {
        use crate::GenerationType;
        assert!(check_image_count(Some(&GenerationType::FirstAndLastFrames), 2).is_ok());
        assert!(check_image_count(Some(&GenerationType::FirstAndLastFrames), 3).is_err());
        assert!(check_image_count(Some(&GenerationType::Reference), 3).is_ok());
        assert!(check_image_count(None, 4).is_err());
    }

    #[test]
    fn without_a_generation_type_the_count_follows_kies_inference() {
        // kie infers TEXT_2_VIDEO from no image and FIRST_AND_LAST_FRAMES_2_VIDEO from any,
        // which takes at most two: a third is refused before anything is sent.
        for count in 0..=2 {
            assert!(check_image_count(None, count).is_ok(), "{count} images");
        }
        let error = check_image_count(None, 3).expect_err("three images need REFERENCE_2_VIDEO");
        assert_eq!(error.field(), "imageUrls");
        let message = error.to_string();
        assert!(
            message.contains("FIRST_AND_LAST_FRAMES_2_VIDEO")
                && message.contains("at most 2")
                && message.contains("REFERENCE_2_VIDEO")
                && message.contains("got 3"),
            "{message}"
        );
    }
}
