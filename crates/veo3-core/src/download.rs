//! Download decisions: which URLs and targets are acceptable, resume with `Range` after a cut
//! (in this process or a later one), restart when the server ignores the range, refresh an
//! expired link once, verify the length before a file gets its name, and how often progress
//! is reported.
//!
//! Result files live on hosts other than the API (and never receive the API key). Their URLs
//! expire, their connections get cut, and a half-written file must never appear under its final
//! name. The rules for all that are the same for the async and the blocking client, so they live
//! here as a pure state machine: the client feeds it response heads, byte counts and failures,
//! and it answers with what to do next. The file-system side (target checks, the locked
//! `.part`, the resume sidecar, fsync and rename) is [`PartFile`] and [`check_target`]; the
//! progress events are paced by [`ProgressMeter`] on the injected clock. The client only
//! moves bytes.
//!
//! The loop a client writes around it:
//!
//! ```
//! use veo3_core::download::{BodyEnd, DownloadPolicy, DownloadState, HeadAction, ResponseHead};
//!
//! let mut state = DownloadState::new(DownloadPolicy::default());
//! // First request: no Range header yet.
//! assert!(state.range_header().is_none());
//! let head = ResponseHead { status: 200, content_length: Some(10), etag: Some("\"v1\"".into()), ..ResponseHead::default() };
//! assert_eq!(state.on_head(&head)?, HeadAction::Write { truncate: false });
//! state.on_bytes(4)?; // the connection is cut after 4 bytes
//! state.on_interrupted()?;
//! // Second request resumes where the file ends.
//! assert_eq!(state.range_header().as_deref(), Some("bytes=4-"));
//! let head = ResponseHead { status: 206, content_length: Some(6), content_range: Some("bytes 4-9/10".into()), etag: Some("\"v1\"".into()), ..ResponseHead::default() };
//! assert_eq!(state.on_head(&head)?, HeadAction::Write { truncate: false });
//! state.on_bytes(6)?;
//! assert_eq!(state.on_end()?, BodyEnd::Complete { bytes: 10 });
//! # Ok::<(), veo3_core::download::DownloadError>(())
//! ```

use std::fmt;
use std::time::Duration;

use crate::Error;

pub(crate) mod progress;
mod target;

pub use progress::ProgressMeter;
pub use target::{PartFile, Resume, TargetProblem, check_target, part_path};

/// Limits of one download.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadPolicy {
    /// How many times a cut or failed transfer is resumed before giving up.
    pub max_resumes: u32,
    /// Whether an expired link (401/403/404/410 from the file host) is replaced once with a
    /// fresh one from the download-url endpoint.
    pub refresh_expired_link: bool,
    /// Ceiling of the first pause before a resume; it doubles per resume, up to 8 s.
    pub initial_backoff: Duration,
    /// Whether a download to a path that already holds a file replaces it. Off by default: that
    /// file is usually an earlier, paid-for video.
    pub overwrite: bool,
}

impl Default for DownloadPolicy {
    /// Eight resumes, one link refresh, 200 ms first pause.
    fn default() -> Self {
        Self {
            max_resumes: 8,
            refresh_expired_link: true,
            initial_backoff: Duration::from_millis(200),
            overwrite: false,
        }
    }
}

impl DownloadPolicy {
    /// Sets [`DownloadPolicy::max_resumes`].
    pub fn with_max_resumes(mut self, max_resumes: u32) -> Self {
        self.max_resumes = max_resumes;
        self
    }

    /// Sets [`DownloadPolicy::overwrite`].
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Sets [`DownloadPolicy::initial_backoff`].
    pub fn with_initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.initial_backoff = initial_backoff;
        self
    }
}

/// The parts of a file host's response head the decisions need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP status.
    pub status: u16,
    /// `Content-Length` of this response's body.
    pub content_length: Option<u64>,
    /// `Content-Range`, for 206 answers.
    pub content_range: Option<String>,
    /// `ETag`; a strong one is the `If-Range` validator of later resumes.
    pub etag: Option<String>,
    /// `Last-Modified`; with the length, the validator when there is no strong `ETag`.
    pub last_modified: Option<String>,
}

/// What proves that the bytes of a partial file and the rest a server would send belong to
/// the same file: sent as `If-Range`, so a changed file comes back whole (200).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validator {
    /// A strong entity tag.
    ETag(String),
    /// A `Last-Modified` date and the file's length (a weaker proof, used without a strong
    /// `ETag`).
    LastModified {
        /// The date, as the server wrote it.
        date: String,
        /// The file's length.
        length: u64,
    },
}

impl Validator {
    /// The validator a response head offers for a file of `total` bytes: a strong `ETag`
    /// first, else `Last-Modified` when the length is known. Weak tags (`W/"..."`) prove
    /// nothing about bytes.
    pub fn from_head(head: &ResponseHead, total: Option<u64>) -> Option<Self> {
        let strong = head
            .etag
            .as_deref()
            .map(str::trim)
            .filter(|tag| tag.starts_with('"') && tag.len() >= 2);
        match (strong, head.last_modified.as_deref(), total) {
            (Some(tag), _, _) => Some(Self::ETag(tag.to_owned())),
            (None, Some(date), Some(length)) if !date.trim().is_empty() => {
                Some(Self::LastModified {
                    date: date.trim().to_owned(),
                    length,
                })
            }
            _ => None,
        }
    }

    /// The `If-Range` value.
    pub fn if_range(&self) -> &str {
        match self {
            Self::ETag(tag) => tag,
            Self::LastModified { date, .. } => date,
        }
    }
}

/// What to do with the body of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadAction {
    /// Write the body; when `truncate` is set, discard what the partial file holds first (the
    /// server sent the whole file instead of the requested range).
    Write {
        /// Empty the partial file before writing.
        truncate: bool,
    },
    /// The file is already complete (the server answered 416 to a range starting at its end).
    AlreadyComplete,
    /// The link has expired: get a fresh one from download-url and request again.
    RefreshLink,
    /// A transient failure of the file host: wait [`DownloadState::backoff`] and request again.
    Retry,
}

/// How a body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// Every byte is there (or, with no announced length, the server closed cleanly): the
    /// partial file may be renamed to its final name.
    Complete {
        /// The file's length.
        bytes: u64,
    },
    /// The body ended early: request the rest with [`DownloadState::range_header`].
    Resume,
}

/// A download that cannot complete. Messages never contain the URL's query (signed links carry
/// tokens there).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The file host answered with a status that is not retried.
    #[error("the file host answered HTTP {status}")]
    Status {
        /// HTTP status.
        status: u16,
    },
    /// The link stayed expired even after a fresh one was fetched (or refreshing is off).
    #[error("the download link has expired (HTTP {status})")]
    Expired {
        /// HTTP status.
        status: u16,
    },
    /// The transfer was cut or failed more times than the policy allows.
    #[error("the transfer failed {resumes} time(s); giving up with {written} of {} bytes", total.map_or_else(|| "?".to_owned(), |t| t.to_string()))]
    Interrupted {
        /// Resumes attempted.
        resumes: u32,
        /// Bytes in the partial file.
        written: u64,
        /// The announced length.
        total: Option<u64>,
    },
    /// The server sent more bytes than it announced, or a range that does not continue the
    /// partial file.
    #[error("the file host sent an inconsistent body: {0}")]
    Inconsistent(String),
}

/// The state of one download, fed by the client's loop.
#[derive(Clone, Debug)]
pub struct DownloadState {
    policy: DownloadPolicy,
    written: u64,
    total: Option<u64>,
    validator: Option<Validator>,
    resumes: u32,
    refreshed: bool,
}

impl DownloadState {
    /// A download that has written nothing yet.
    pub fn new(policy: DownloadPolicy) -> Self {
        Self {
            policy,
            written: 0,
            total: None,
            validator: None,
            resumes: 0,
            refreshed: false,
        }
    }

    /// A download that continues the bytes an earlier one left (see [`PartFile::resume`]):
    /// its first request asks for the rest, under `If-Range` with their validator.
    pub fn resuming(policy: DownloadPolicy, resume: &Resume) -> Self {
        Self {
            written: resume.written,
            total: resume.total,
            validator: Some(resume.validator.clone()),
            ..Self::new(policy)
        }
    }

    /// The validator of the bytes written, when the server gave one.
    pub fn validator(&self) -> Option<&Validator> {
        self.validator.as_ref()
    }

    /// Bytes in the partial file.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The file's full length, once a server announced it.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Resumes so far.
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    /// The `Range` header of the next request (`None` for the first).
    pub fn range_header(&self) -> Option<String> {
        (self.written > 0).then(|| format!("bytes={}-", self.written))
    }

    /// The `If-Range` header of the next request: the validator of the bytes we hold, so a
    /// changed file comes back whole (200) instead of as a mismatched range.
    pub fn if_range_header(&self) -> Option<&str> {
        if self.written > 0 {
            self.validator.as_ref().map(Validator::if_range)
        } else {
            None
        }
    }

    /// The pause before the next request after a [`HeadAction::Retry`] or a resume: full
    /// jitter under a ceiling that doubles per resume, capped at 8 s. `random` is any `u64`.
    pub fn backoff(&self, random: u64) -> Duration {
        let shift = self.resumes.saturating_sub(1).min(16);
        let ceiling = self
            .policy
            .initial_backoff
            .saturating_mul(1 << shift)
            .min(Duration::from_secs(8));
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(if nanos == 0 { 0 } else { random % (nanos + 1) })
    }

    /// Reads a response head and decides what to do with its body.
    pub fn on_head(&mut self, head: &ResponseHead) -> Result<HeadAction, DownloadError> {
        match head.status {
            200 => {
                let truncate = self.written > 0;
                self.written = 0;
                self.total = head.content_length;
                self.validator = Validator::from_head(head, self.total);
                Ok(HeadAction::Write { truncate })
            }
            206 => {
                let range = head
                    .content_range
                    .as_deref()
                    .and_then(parse_content_range)
                    .ok_or_else(|| {
                        DownloadError::Inconsistent(
                            "a 206 answer without a readable Content-Range".into(),
                        )
                    })?;
                if range.start != self.written {
                    return Err(DownloadError::Inconsistent(format!(
                        "asked for bytes from {}, got a range starting at {}",
                        self.written, range.start
                    )));
                }
                if let Some(total) = range.total {
                    if self.total.is_some_and(|known| known != total) {
                        return Err(DownloadError::Inconsistent(
                            "the file's length changed between requests".into(),
                        ));
                    }
                    self.total = Some(total);
                }
                if let Some(validator) = Validator::from_head(head, self.total) {
                    self.validator = Some(validator);
                }
                Ok(HeadAction::Write { truncate: false })
            }
            416 if self.written > 0 && self.total == Some(self.written) => {
                Ok(HeadAction::AlreadyComplete)
            }
            401 | 403 | 404 | 410 => {
                if self.policy.refresh_expired_link && !self.refreshed {
                    self.refreshed = true;
                    Ok(HeadAction::RefreshLink)
                } else {
                    Err(DownloadError::Expired {
                        status: head.status,
                    })
                }
            }
            408 | 416 | 429 | 500..=599 => {
                if head.status == 416 {
                    // Our range no longer fits the file: start over.
                    self.written = 0;
                    self.total = None;
                    self.validator = None;
                }
                self.count_resume()?;
                Ok(HeadAction::Retry)
            }
            status => Err(DownloadError::Status { status }),
        }
    }

    /// Records bytes written to the partial file.
    pub fn on_bytes(&mut self, bytes: u64) -> Result<(), DownloadError> {
        self.written = self.written.saturating_add(bytes);
        match self.total {
            Some(total) if self.written > total => Err(DownloadError::Inconsistent(format!(
                "received {} bytes of a {total}-byte file",
                self.written
            ))),
            _ => Ok(()),
        }
    }

    /// The body ended without a transport error: complete, or cut short.
    pub fn on_end(&mut self) -> Result<BodyEnd, DownloadError> {
        match self.total {
            Some(total) if self.written < total => {
                self.count_resume()?;
                Ok(BodyEnd::Resume)
            }
            _ => Ok(BodyEnd::Complete {
                bytes: self.written,
            }),
        }
    }

    /// The request or the body failed in transit: resume if the policy allows.
    pub fn on_interrupted(&mut self) -> Result<(), DownloadError> {
        self.count_resume()
    }

    fn count_resume(&mut self) -> Result<(), DownloadError> {
        self.resumes += 1;
        if self.resumes > self.policy.max_resumes {
            Err(DownloadError::Interrupted {
                resumes: self.resumes - 1,
                written: self.written,
                total: self.total,
            })
        } else {
            Ok(())
        }
    }
}

/// A parsed `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ContentRange {
    start: u64,
    total: Option<u64>,
}

fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        text => Some(text.parse::<u64>().ok().filter(|total| *total > end)?),
    };
    Some(ContentRange { start, total })
}

/// Refuses what cannot be downloaded, before any request: not an absolute URL, not http(s),
/// no host, or spaces and control characters. Messages never show the query.
///
/// ```
/// use veo3_core::download::check_url;
/// assert!(check_url("https://tempfile.aiquickdraw.com/v/a.mp4?sig=1").is_ok());
/// assert!(check_url("file:///etc/passwd").is_err());
/// ```
pub fn check_url(url: &str) -> Result<(), Error> {
    url_problem(url).map_or(Ok(()), |problem| {
        Err(Error::invalid_input(format!(
            "cannot download {}: {problem}",
            redact_url(url)
        )))
    })
}

/// [`check_url`] for the fresh link the download-url endpoint gave for `original`: a bad one
/// ends the download (naming both) instead of being requested.
pub fn check_refreshed_url(original: &str, refreshed: &str) -> Result<(), Error> {
    url_problem(refreshed).map_or(Ok(()), |problem| {
        Err(Error::invalid_input(format!(
            "the fresh link for {} that download-url returned is unusable ({}): {problem}",
            redact_url(original),
            redact_url(refreshed)
        )))
    })
}

/// Whether a download into a caller's writer (which cannot be rewound) may take the body the
/// file host is about to send: `truncate` (the host ignored the range and sends the whole file
/// again) is refused once `delivered` bytes have gone to the writer. Both clients'
/// `download_to_writer` decide with this.
///
/// ```
/// use veo3_core::download::check_writer_restart;
/// assert!(check_writer_restart(false, 10).is_ok());
/// assert!(check_writer_restart(true, 0).is_ok(), "nothing to take back yet");
/// assert!(check_writer_restart(true, 10).unwrap_err().to_string().contains("cannot be rewound"));
/// ```
pub fn check_writer_restart(truncate: bool, delivered: u64) -> Result<(), Error> {
    if truncate && delivered > 0 {
        return Err(Error::invalid_input(
            "the file host ignored a range request and sent the whole file again, \
             and a writer cannot be rewound (download to a path instead)",
        ));
    }
    Ok(())
}

fn url_problem(url: &str) -> Option<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some("not an absolute URL".into());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Some(format!(
            "only http and https URLs are supported, not {:?}",
            redact_url(scheme)
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("it contains spaces or control characters".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let port = host
        .rsplit_once(':')
        .filter(|(_, port)| !port.contains(']'))
        .map(|(_, port)| port);
    if host.is_empty() || host.starts_with(':') {
        return Some("it has no host".into());
    }
    if let Some(port) = port {
        if !port.is_empty() && port.parse::<u16>().is_err() {
            return Some(format!("{port:?} is not a port"));
        }
    }
    None
}

/// A URL fit for errors and logs: scheme, host and path, without the query or fragment (signed
/// links carry their tokens there) and without userinfo.
///
/// ```
/// use veo3_core::download::redact_url;
/// assert_eq!(redact_url("https://u:p@files.example/v/a.mp4?token=s3cr3t#t"), "https://files.example/v/a.mp4");
/// ```
pub fn redact_url(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or_default();
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            if path.is_empty() {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => without_query.to_owned(),
    }
}

/// The origin (`scheme://host[:port]`, lowercased) of an absolute URL, for deciding where
/// credentials may go.
///
/// ```
/// use veo3_core::download::origin_of;
/// assert_eq!(origin_of("https://API.kie.ai/api/v1/x?y"), Some("https://api.kie.ai".into()));
/// assert_ne!(origin_of("https://api.kie.ai/"), origin_of("https://tempfile.aiquickdraw.com/a.mp4"));
/// ```
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    ))
}

impl fmt::Display for HeadAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Write { truncate: false } => "write",
            Self::Write { truncate: true } => "restart",
            Self::AlreadyComplete => "already complete",
            Self::RefreshLink => "refresh link",
            Self::Retry => "retry",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, length: Option<u64>, range: Option<&str>) -> ResponseHead {
        ResponseHead {
            status,
            content_length: length,
            content_range: range.map(str::to_owned),
            ..ResponseHead::default()
        }
    }

    #[test]
    fn a_cut_body_resumes_from_the_bytes_written() {
        let mut state = DownloadState::new(DownloadPolicy::default());
        assert_eq!(
            state.on_head(&head(200, Some(100), None)),
            Ok(HeadAction::Write { truncate: false })
        );
        state.on_bytes(40).unwrap();
        assert_eq!(
            state.on_end(),
            Ok(BodyEnd::Resume),
            "40 of 100 bytes is a cut"
        );
        assert_eq!(state.range_header().as_deref(), Some("bytes=40-"));
        assert_eq!(
            state.on_head(&head(206, Some(60), Some("bytes 40-99/100"))),
            Ok(HeadAction::Write { truncate: false })
        );
        state.on_bytes(60).unwrap();
        assert_eq!(state.on_end(), Ok(BodyEnd::Complete { bytes: 100 }));
    }

    #[test]
    fn a_server_that_ignores_the_range_restarts_the_file() {
        let mut state = DownloadState::new(DownloadPolicy::default());
        state.on_head(&head(200, Some(100), None)).unwrap();
        state.on_bytes(40).unwrap();
        state.on_interrupted().unwrap();
        assert_eq!(
            state.on_head(&head(200, Some(100), None)),
            Ok(HeadAction::Write { truncate: true })
        );
        assert_eq!(state.written(), 0);
    }

    #[test]
    fn a_mismatched_range_or_overlong_body_is_an_error_not_a_corrupt_file() {
        let mut state = DownloadState::new(DownloadPolicy::default());
        state.on_head(&head(200, Some(100), None)).unwrap();
        state.on_bytes(40).unwrap();
        state.on_interrupted().unwrap();
        assert!(matches!(
            state.on_head(&head(206, Some(50), Some("bytes 50-99/100"))),
            Err(DownloadError::Inconsistent(_))
        ));
        let mut state = DownloadState::new(DownloadPolicy::default());
        state.on_head(&head(200, Some(10), None)).unwrap();
        assert!(state.on_bytes(11).is_err());
        assert!(matches!(
            DownloadState::new(DownloadPolicy::default()).on_head(&head(
                206,
                None,
                Some("garbage")
            )),
            Err(DownloadError::Inconsistent(_))
        ));
    }

    #[test]
    fn an_expired_link_is_refreshed_once_then_fails() {
        let mut state = DownloadState::new(DownloadPolicy::default());
        assert_eq!(
            state.on_head(&head(403, None, None)),
            Ok(HeadAction::RefreshLink)
        );
        assert_eq!(
            state.on_head(&head(404, None, None)),
            Err(DownloadError::Expired { status: 404 })
        );
    }

    #[test]
    fn resumes_are_bounded_and_backoff_is_capped() {
        let mut state = DownloadState::new(DownloadPolicy::default().with_max_resumes(2));
        assert_eq!(state.on_head(&head(503, None, None)), Ok(HeadAction::Retry));
        state.on_interrupted().unwrap();
        assert!(matches!(
            state.on_interrupted(),
            Err(DownloadError::Interrupted { resumes: 2, .. })
        ));
        let mut state = DownloadState::new(DownloadPolicy::default().with_max_resumes(u32::MAX));
        for _ in 0..1_000 {
            state.on_interrupted().unwrap();
            assert!(state.backoff(u64::MAX) <= Duration::from_secs(8));
        }
    }

    #[test]
    fn other_statuses_fail_at_once() {
        let mut state = DownloadState::new(DownloadPolicy::default());
        assert_eq!(
            state.on_head(&head(400, None, None)),
            Err(DownloadError::Status { status: 400 })
        );
    }

    #[test]
    fn content_ranges_parse_strictly() {
        assert_eq!(
            parse_content_range("bytes 0-9/10"),
            Some(ContentRange {
                start: 0,
                total: Some(10)
            })
        );
        assert_eq!(
            parse_content_range("bytes 5-9/*"),
            Some(ContentRange {
                start: 5,
                total: None
            })
        );
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("items 0-9/10"), None);
    }

    #[test]
    fn urls_are_redacted_of_tokens_and_userinfo() {
        assert_eq!(
            redact_url("http://127.0.0.1:9/f/a.mp4?sig=abc"),
            "http://127.0.0.1:9/f/a.mp4"
        );
        assert_eq!(redact_url("https://host"), "https://host");
        assert_eq!(redact_url("not a url?x"), "not a url");
        assert_eq!(
            origin_of("http://127.0.0.1:9/x"),
            Some("http://127.0.0.1:9".into())
        );
        assert_eq!(origin_of("nope"), None);
    }
}
