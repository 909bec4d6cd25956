//! Uploads: local files checked before anything is sent, the multipart body described (not
//! buffered) so that both clients only move bytes, and the "upload the local images, then
//! submit with the hosted URLs" flow written once.
//!
//! # Why the body is a description
//!
//! `POST /api/file-stream-upload` takes the file as one multipart part. A [`Multipart`] holds
//! the small text around the file (its head and tail) and the file's path and length, never
//! its content: a transport writes the head, streams the file from disk, writes the tail, and
//! announces the exact `Content-Length` up front. A retry (uploads are free and idempotent in
//! effect, so the read-only retry rules apply) sends the same description again, which opens
//! the file again: nothing is kept in memory between attempts, whatever the file's size.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use veo3_types::{
    GenerateRequest, GenerateWithImages, ImageFormat, ImageInput, ImageProblem, SNIFF_BYTES,
    TaskCreated, UploadOptions, UploadedFile, ValidationError, check_image, stream_upload_fields,
};

use crate::event::{Event, Observer};
use crate::executor::Effects;
use crate::{Error, Veo3Api};

mod progress;

pub use progress::UploadProgress;

/// A local file checked for upload: it exists, is a regular file, could be opened and read,
/// and has this length. Its first bytes told whether it is an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    path: PathBuf,
    len: u64,
    format: Option<ImageFormat>,
}

impl LocalFile {
    /// Checks `path` for a general upload (any content): the failure names the file.
    pub fn inspect(path: &Path) -> Result<Self, Error> {
        Self::open(path).map_err(|problem| image_error(path, problem))
    }

    /// Checks `path` as an input image: as [`inspect`](Self::inspect), and also not empty,
    /// at most [`MAX_IMAGE_BYTES`](veo3_types::MAX_IMAGE_BYTES), and starting with a JPEG,
    /// PNG or WebP signature (the content decides, not the extension).
    pub fn inspect_image(path: &Path) -> Result<Self, Error> {
        let file = Self::inspect(path)?;
        let head = read_head(path)
            .map_err(|error| image_error(path, ImageProblem::Unreadable(describe_io(&error))))?;
        check_image(file.len, &head).map_err(|problem| image_error(path, problem))?;
        Ok(file)
    }

    fn open(path: &Path) -> Result<Self, ImageProblem> {
        let metadata = std::fs::metadata(path).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => ImageProblem::NotFound,
            _ => ImageProblem::Unreadable(describe_io(&error)),
        })?;
        if !metadata.is_file() {
            return Err(ImageProblem::NotAFile);
        }
        // Opening and reading the first bytes proves the file is readable now, before any
        // request is sent (permissions are not reliably visible in the metadata).
        let head =
            read_head(path).map_err(|error| ImageProblem::Unreadable(describe_io(&error)))?;
        Ok(Self {
            path: path.to_owned(),
            len: metadata.len(),
            format: ImageFormat::sniff(&head),
        })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The length in bytes when it was checked.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// `true` for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The image type its first bytes show, if any.
    pub fn format(&self) -> Option<ImageFormat> {
        self.format
    }

    /// The file name part of the path (`"upload"` when there is none).
    pub fn file_name(&self) -> String {
        self.path.file_name().map_or_else(
            || "upload".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        )
    }

    /// The progress of uploading this file, named by its path (as [`Event::Uploading`] names
    /// it), reported to `observer` at times read on `clock`; both clients build it so.
    pub fn progress(
        &self,
        observer: Observer,
        clock: std::sync::Arc<dyn crate::time::Clock>,
    ) -> UploadProgress {
        UploadProgress::new(self.path.display().to_string(), self.len, observer, clock)
    }

    /// The MIME type sent for its part: the sniffed image type, else
    /// `application/octet-stream`.
    pub fn mime_type(&self) -> &'static str {
        self.format
            .map_or("application/octet-stream", ImageFormat::mime_type)
    }
}

fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    File::open(path)?
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The OS error's kind and text, without the path (the caller names the file once).
fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string(),
    }
}

fn image_error(path: &Path, problem: ImageProblem) -> Error {
    Error::Validation(ValidationError::Image {
        name: path.display().to_string(),
        problem,
    })
}

/// A `multipart/form-data` body whose file part is streamed from disk: the text before the
/// file, the file (path and length), and the text after it.
///
/// ```
/// use veo3_core::Multipart;
/// use veo3_types::UploadOptions;
/// # let dir = std::env::temp_dir().join(format!("veo3-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("pixel.png");
/// # std::fs::write(&path, b"\x89PNG\r\n\x1a\n0000").unwrap();
/// let file = veo3_core::LocalFile::inspect(&path)?;
/// let body = Multipart::for_file(&file, &UploadOptions::default());
/// assert!(body.content_type().starts_with("multipart/form-data; boundary="));
/// assert_eq!(body.content_length(), body.head().len() as u64 + 12 + body.tail().len() as u64);
/// assert!(String::from_utf8_lossy(body.head()).contains("name=\"uploadPath\""));
/// # Ok::<(), veo3_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Multipart {
    boundary: String,
    head: Vec<u8>,
    path: PathBuf,
    file_len: u64,
    tail: Vec<u8>,
    progress: UploadProgress,
}

impl Multipart {
    /// The body of `POST /api/file-stream-upload` for `file` with `options`: the text fields
    /// first (`uploadPath`, `fileName`), then the `file` part.
    pub fn for_file(file: &LocalFile, options: &UploadOptions) -> Self {
        let boundary = boundary_for(file);
        let mut head = Vec::new();
        for (name, value) in stream_upload_fields(options) {
            head.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        let file_name = options
            .file_name
            .clone()
            .unwrap_or_else(|| file.file_name());
        head.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                quote(&file_name),
                file.mime_type()
            )
            .as_bytes(),
        );
        let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
        Self {
            boundary,
            head,
            path: file.path.clone(),
            file_len: file.len,
            tail,
            progress: UploadProgress::none(),
        }
    }

    /// Reports the file's bytes to `progress` as a transport streams them.
    pub fn with_progress(mut self, progress: UploadProgress) -> Self {
        self.progress = progress;
        self
    }

    /// Where a transport reports the file's bytes: [`UploadProgress::start`] when an attempt
    /// opens the file, [`UploadProgress::sent`] for each piece handed to the connection.
    pub fn progress(&self) -> &UploadProgress {
        &self.progress
    }

    /// The `Content-Type` header value, with the boundary.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The bytes before the file.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The file to stream: open it for each attempt.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many bytes of the file to send (its length when checked). A transport sends
    /// exactly this many, and fails the attempt if the file got shorter.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The bytes after the file.
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// The whole body's length, for `Content-Length`.
    pub fn content_length(&self) -> u64 {
        self.head.len() as u64 + self.file_len + self.tail.len() as u64
    }
}

/// A boundary that depends on the file (FNV-1a of its path and length), so the description is
/// pure and stable across retries; 64 random-looking bits make a collision with the content
/// practically impossible.
fn boundary_for(file: &LocalFile) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let path = file.path.to_string_lossy();
    for byte in path.bytes().chain(file.len.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("veo3-rs-{hash:016x}")
}

/// A header parameter value: quotes and line breaks cannot end it early.
fn quote(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if matches!(c, '"' | '\r' | '\n' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// One image of a [`GenerateWithImages`], checked and ready: a URL to send as is, or a file or
/// bytes to upload first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PreparedImage {
    /// Sent as is.
    Url(String),
    /// Streamed from disk.
    File(LocalFile),
    /// Uploaded from memory.
    Bytes {
        /// The image.
        bytes: Vec<u8>,
        /// Its name.
        file_name: String,
    },
}

impl PreparedImage {
    /// How events and errors name it.
    pub fn name(&self) -> String {
        match self {
            Self::Url(url) => url.clone(),
            Self::File(file) => file.path().display().to_string(),
            Self::Bytes { file_name, .. } => file_name.clone(),
        }
    }
}

/// Checks every image of `pending` (URLs by form, files on disk, bytes by content) and the
/// rest of the request, before anything is sent: the first failure names the image.
pub fn prepare_images(pending: &GenerateWithImages) -> Result<Vec<PreparedImage>, Error> {
    pending.validate()?;
    pending
        .images
        .iter()
        .map(|image| match image {
            ImageInput::Url(url) => Ok(PreparedImage::Url(url.clone())),
            ImageInput::Path(path) => LocalFile::inspect_image(path).map(PreparedImage::File),
            ImageInput::Bytes { bytes, file_name } => Ok(PreparedImage::Bytes {
                bytes: bytes.clone(),
                file_name: file_name.clone(),
            }),
            other => Err(Error::invalid_input(format!(
                "unsupported image input {}",
                other.name()
            ))),
        })
        .collect()
}

/// The options each image of a generation is uploaded with: `base`'s folder, and a name made
/// unique by `nonce` (the upload host overwrites a file of the same name, and its CDN may keep
/// serving the old one).
pub fn image_upload_options(base: &UploadOptions, name: &str, nonce: u64) -> UploadOptions {
    let stem: String = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = if stem.is_empty() {
        "image".to_owned()
    } else {
        stem
    };
    UploadOptions::new(base.upload_path.clone()).file_name(format!("{nonce:016x}-{stem}"))
}

/// Uploads the local images of `pending` (after checking all of them), reporting each upload
/// through the observer, then submits the generation (billable, at most once) with the hosted
/// URLs in the images' order. The async flow; its blocking twin is
/// [`BlockingExecutor::generate_with_images`](crate::BlockingExecutor::generate_with_images).
pub async fn generate_with_images(
    api: &dyn Veo3Api,
    pending: &GenerateWithImages,
    options: &UploadOptions,
    env: &Effects,
) -> Result<TaskCreated, Error> {
    let request = upload_images(api, pending, options, env).await?;
    let created = api.generate(&request).await?;
    crate::announce_submitted(
        env.observer(),
        veo3_types::Endpoint::Generate,
        &created.task_id,
    );
    Ok(created)
}

/// The first half of [`generate_with_images`]: checks, uploads, and returns the request to
/// submit.
pub async fn upload_images(
    api: &dyn Veo3Api,
    pending: &GenerateWithImages,
    options: &UploadOptions,
    env: &Effects,
) -> Result<GenerateRequest, Error> {
    options.validate()?;
    let prepared = prepare_images(pending)?;
    let mut urls = Vec::with_capacity(prepared.len());
    for image in &prepared {
        let url = match begin_upload(env.observer(), image, options, || env.random()) {
            UploadStep::Hosted(url) => url,
            UploadStep::File(file, options) => {
                let uploaded = api.upload_file(file.path(), &options).await?;
                emit_uploaded(env.observer(), image, &uploaded)
            }
            UploadStep::Bytes(bytes, file_name, options) => {
                let uploaded = api.upload_bytes(bytes, file_name, &options).await?;
                emit_uploaded(env.observer(), image, &uploaded)
            }
        };
        urls.push(url);
    }
    Ok(pending.with_urls(urls)?)
}

/// What one image of a generation needs: nothing (a URL), or an upload with its options.
pub(crate) enum UploadStep<'a> {
    /// Already hosted.
    Hosted(String),
    /// A local file to stream.
    File(&'a LocalFile, UploadOptions),
    /// Bytes to send, with their file name.
    Bytes(&'a [u8], &'a str, UploadOptions),
}

/// The step for `image` (both clients' upload flows): its upload options, a unique name drawn
/// from `nonce` (only for an upload), announced as [`Event::Uploading`].
pub(crate) fn begin_upload<'a>(
    observer: &Observer,
    image: &'a PreparedImage,
    base: &UploadOptions,
    nonce: impl FnOnce() -> u64,
) -> UploadStep<'a> {
    let (name, len) = match image {
        PreparedImage::Url(url) => return UploadStep::Hosted(url.clone()),
        PreparedImage::File(file) => (file.file_name(), file.len()),
        PreparedImage::Bytes { bytes, file_name } => (file_name.clone(), bytes.len() as u64),
    };
    let options = image_upload_options(base, &name, nonce());
    observer.emit(&Event::uploading(image.name(), len));
    match image {
        PreparedImage::File(file) => UploadStep::File(file, options),
        PreparedImage::Bytes { bytes, file_name } => UploadStep::Bytes(bytes, file_name, options),
        PreparedImage::Url(url) => UploadStep::Hosted(url.clone()),
    }
}

/// Emits [`Event::Uploaded`] and returns the hosted URL (both clients' upload flows).
pub(crate) fn emit_uploaded(
    observer: &Observer,
    image: &PreparedImage,
    uploaded: &UploadedFile,
) -> String {
    observer.emit(&Event::uploaded(
        image.name(),
        uploaded.download_url.clone(),
    ));
    uploaded.download_url.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("veo3-core-upload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_text_file_named_png_is_refused_by_content_naming_the_file() {
        let path = temp("notes.png", b"these are notes, not pixels");
        let error = LocalFile::inspect_image(&path).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("notes.png") && text.contains("not a JPEG"),
            "{text}"
        );
        // As a general upload it is fine: only image inputs must be images.
        assert_eq!(LocalFile::inspect(&path).unwrap().format(), None);
    }

    #[test]
    fn missing_files_and_directories_are_refused_naming_them() {
        let missing = std::env::temp_dir().join("veo3-no-such-file.png");
        let text = LocalFile::inspect_image(&missing).unwrap_err().to_string();
        assert!(
            text.contains("veo3-no-such-file.png") && text.contains("no such file"),
            "{text}"
        );
        let dir = std::env::temp_dir();
        assert!(
            LocalFile::inspect(&dir)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
    }

    #[test]
    fn the_multipart_body_frames_the_file_between_head_and_tail() {
        let path = temp("frame.jpg", &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]);
        let file = LocalFile::inspect_image(&path).unwrap();
        let body = Multipart::for_file(&file, &UploadOptions::new("in/veo"));
        let head = String::from_utf8(body.head().to_vec()).unwrap();
        let boundary = body.content_type().rsplit('=').next().unwrap().to_owned();
        assert!(head.starts_with(&format!("--{boundary}\r\n")));
        assert!(head.contains("name=\"uploadPath\"\r\n\r\nin/veo\r\n"));
        assert!(head.contains("filename=\"frame.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"));
        assert_eq!(body.tail(), format!("\r\n--{boundary}--\r\n").as_bytes());
        assert_eq!(body.file_len(), 7);
        assert_eq!(
            Multipart::for_file(&file, &UploadOptions::new("in/veo")),
            body,
            "stable"
        );
    }

    #[test]
    fn image_upload_names_are_unique_and_url_safe() {
        let options = image_upload_options(&UploadOptions::default(), "dir/my cat.png", 0xab);
        assert_eq!(
            options.file_name.as_deref(),
            Some("00000000000000ab-my_cat.png")
        );
        options.validate().unwrap();
    }
}
