//! The one error type of the SDK.

use std::time::Duration;

use veo3_types::{ApiCode, Endpoint, TaskState, ValidationError};

use crate::event::PollStatus;
use crate::http::TransportPhase;
use crate::retry::{DisplayDuration, GiveUpReason};

/// Everything that can go wrong, with enough context to act on it and nothing secret in it.
///
/// Match on the variant when you need the details (every variant is `#[non_exhaustive]`, so
/// match with `..`), or use the predicates and accessors, which also look through the two
/// wrapping variants ([`Error::GaveUp`], [`Error::SubmitOutcomeUnknown`]) to the failure inside.
///
/// The two variants that matter most for money:
/// - [`Error::SubmitOutcomeUnknown`]: a billable request (generate, extend, 4K) may have been
///   processed, so it was **not** sent again. Resubmitting may bill twice.
/// - [`Error::TaskFailed`]: the task ran and failed; resubmitting creates a new billed task.
///
/// ```
/// use veo3_core::Error;
/// use veo3_types::ApiCode;
///
/// fn advice(error: &Error) -> &'static str {
///     if error.is_outcome_unknown() {
///         "check your tasks before submitting again"
///     } else if error.code() == Some(ApiCode::InsufficientCredits) {
///         "top up your credits"
///     } else if error.is_retryable() {
///         "try again later"
///     } else {
///         "fix the request"
///     }
/// }
/// # let _ = advice;
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with an envelope whose `code` is not a success (also inside an HTTP
    /// 200, which is how kie usually reports errors).
    #[error("{endpoint}{}: the API answered code {code} ({}): {message}", on_task(task_id), code.meaning())]
    #[non_exhaustive]
    Api {
        /// The endpoint called.
        endpoint: Endpoint,
        /// The task the call was about, when it names one.
        task_id: Option<String>,
        /// The envelope code.
        code: ApiCode,
        /// The envelope message, verbatim (redacted of credentials).
        message: String,
        /// The HTTP status that carried it (usually 200).
        status: u16,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },

    /// An HTTP error status whose body is missing or not an envelope (e.g. a proxy's HTML page).
    #[error(
        "{endpoint}{}: HTTP {status} without an API answer in the body",
        on_task(task_id)
    )]
    #[non_exhaustive]
    Http {
        /// The endpoint called.
        endpoint: Endpoint,
        /// The task the call was about, when it names one.
        task_id: Option<String>,
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The start of the body, truncated and redacted, for diagnosis.
        excerpt: String,
    },

    /// The request failed in transit.
    #[error("{endpoint}{}: {}{} ({message})", on_task(task_id), if *timed_out { "timed out " } else { "connection failed " }, phase.description())]
    #[non_exhaustive]
    Transport {
        /// The endpoint called.
        endpoint: Endpoint,
        /// The task the call was about, when it names one.
        task_id: Option<String>,
        /// How far the exchange got, which decides whether the server may have seen it.
        phase: TransportPhase,
        /// `true` when the failure was a timeout.
        timed_out: bool,
        /// The transport's description (never contains the key).
        message: String,
    },

    /// A success answer that could not be read.
    #[error("{endpoint}{}: could not read the answer: {message}", on_task(task_id))]
    #[non_exhaustive]
    Decode {
        /// The endpoint called.
        endpoint: Endpoint,
        /// The task the call was about, when it names one.
        task_id: Option<String>,
        /// What was wrong.
        message: String,
        /// The start of the body, truncated and redacted, for diagnosis.
        excerpt: String,
        /// `true` when the body was not an API answer at all (not JSON, cut short, an HTML
        /// page): asking a read-only endpoint again is safe and may well succeed.
        unreadable: bool,
    },

    /// A redirect that was not followed, so nothing was sent to its target: every redirect
    /// answering a billable request (generate, extend, 4K: a second POST could bill twice),
    /// and a read-only call's redirect off the API's host (the key only ever goes there),
    /// outside its base URL, or beyond the hop limit.
    #[error(
        "{endpoint}{}: HTTP {status} redirect to {location} not followed: {why}",
        on_task(task_id)
    )]
    #[non_exhaustive]
    Redirected {
        /// The endpoint called.
        endpoint: Endpoint,
        /// The task the call was about, when it names one.
        task_id: Option<String>,
        /// The redirect status (301, 302, 303, 307 or 308).
        status: u16,
        /// The target (the `Location` header), without its query or credentials.
        location: String,
        /// Why it was not followed.
        why: String,
    },

    /// The request breaks a documented rule; nothing was sent.
    ///
    /// The rule is in the message and not also a [`source`](std::error::Error::source), so a
    /// printer walking the chain states it once.
    #[error("invalid request: {0}")]
    Validation(ValidationError),

    /// The task finished in failure.
    #[error("task {task_id} ended in state {state}{}{}",
        code.map(|c| format!(" with error code {c}")).unwrap_or_default(),
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    #[non_exhaustive]
    TaskFailed {
        /// The task.
        task_id: String,
        /// The final state ([`TaskState::Failed`] or [`TaskState::GenerationFailed`]; for
        /// upgrades, the state of the source task).
        state: TaskState,
        /// The task's own error code (400 content policy or image, 500 internal, 501
        /// generation failed), or the code of a definitive upgrade refusal.
        code: Option<i64>,
        /// The task's own error message.
        message: Option<String>,
    },

    /// A task has no video at the index asked for: it is still running, or it has fewer
    /// videos. (A task that failed is [`Error::TaskFailed`] instead.)
    #[error("task {task_id} ({state}) {}", if *videos == 0 { "has no video yet".to_owned() } else { format!("has {videos} video(s); there is no video {index}") })]
    #[non_exhaustive]
    NoVideo {
        /// The task.
        task_id: String,
        /// Its state when read.
        state: TaskState,
        /// How many videos it has.
        videos: usize,
        /// The index asked for (0-based).
        index: usize,
    },

    /// A wait reached its deadline. The task may still finish: wait again, or check later.
    #[error("stopped waiting for the {target} of task {task_id} at the deadline, after {} and {polls} poll(s); last seen: {}",
        DisplayDuration(*elapsed),
        last_status.as_ref().map_or_else(|| "nothing".to_owned(), ToString::to_string))]
    #[non_exhaustive]
    WaitTimeout {
        /// The task.
        task_id: String,
        /// What was awaited.
        target: WaitTarget,
        /// Time spent waiting.
        elapsed: Duration,
        /// Polls made.
        polls: u32,
        /// What the last poll saw.
        last_status: Option<PollStatus>,
    },

    /// A wait stopped because polling kept failing (more consecutive retryable errors than
    /// the schedule tolerates, or an error that is not retryable). The task itself may be
    /// fine: its id is here so it is not lost.
    #[error("stopped waiting for the {target} of task {task_id} after {polls} poll(s) in {}: a poll failed", DisplayDuration(*elapsed))]
    #[non_exhaustive]
    WaitFailed {
        /// The task.
        task_id: String,
        /// What was awaited.
        target: WaitTarget,
        /// Polls made.
        polls: u32,
        /// Time spent waiting.
        elapsed: Duration,
        /// The poll's error.
        #[source]
        cause: Box<Error>,
    },

    /// A billable request (generate, extend, 4K) failed after it may have reached the server,
    /// so it may have created a task and billed for it. It was not sent again, because kie
    /// offers no idempotency key: a blind retry could bill twice. If you set a `callBackUrl`,
    /// a created task will report there; otherwise check your kie.ai dashboard before
    /// resubmitting.
    #[error(
        "{endpoint}: outcome unknown: the request may have been processed (and billed); \
             it was not sent again to avoid a duplicate task"
    )]
    #[non_exhaustive]
    SubmitOutcomeUnknown {
        /// The billable endpoint.
        endpoint: Endpoint,
        /// What happened (a timeout, a lost connection, a 5xx, an unreadable success).
        #[source]
        cause: Box<Error>,
    },

    /// A failure that was safe to retry, and was retried until a limit was reached.
    #[error("{endpoint}: gave up after {attempts} attempt(s) in {}: {reason}", DisplayDuration(*elapsed))]
    #[non_exhaustive]
    GaveUp {
        /// The endpoint called.
        endpoint: Endpoint,
        /// The limit reached.
        reason: GiveUpReason,
        /// Attempts made.
        attempts: u32,
        /// Time spent, sleeps included.
        elapsed: Duration,
        /// The last failure.
        #[source]
        last: Box<Error>,
    },

    /// An argument or configuration value is unusable (e.g. an empty API key).
    #[error("invalid input: {message}")]
    #[non_exhaustive]
    InvalidInput {
        /// What is wrong, without the value when it could be secret.
        message: String,
    },

    /// A result file could not be downloaded: the file host refused it, the link stayed
    /// expired after one refresh, the transfer kept failing beyond the resumes the
    /// [`DownloadPolicy`](crate::download::DownloadPolicy) allows, or the body did not match
    /// its announced length. No file was left under its final name.
    #[error("downloading {url} failed: {reason}")]
    #[non_exhaustive]
    Download {
        /// The URL, without its query or userinfo ([`redact_url`](crate::download::redact_url)).
        url: String,
        /// What went wrong.
        reason: crate::download::DownloadError,
    },

    /// A download target cannot receive the file: a folder, a missing folder, a file that
    /// exists, a folder that cannot be written, a `.part` held by another download (see
    /// [`check_target`](crate::download::check_target)). Nothing was written under `path`.
    #[error("{}", problem.message(path))]
    #[non_exhaustive]
    Target {
        /// The target, as given.
        path: std::path::PathBuf,
        /// What is wrong with it.
        problem: crate::download::TargetProblem,
    },

    /// A local I/O operation failed (e.g. writing a downloaded file).
    #[error("{operation} failed")]
    #[non_exhaustive]
    Io {
        /// What was being done, e.g. "writing /tmp/video.mp4".
        operation: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl From<ValidationError> for Error {
    fn from(error: ValidationError) -> Self {
        Self::Validation(error)
    }
}

/// What a wait was waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitTarget {
    /// A generation or extension task to finish.
    Task,
    /// The 1080p version of a video.
    Hd1080p,
    /// The 4K version of a video.
    Upgrade4k,
}

impl std::fmt::Display for WaitTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Task => "result",
            Self::Hd1080p => "1080p version",
            Self::Upgrade4k => "4K version",
        })
    }
}

impl Error {
    /// An [`Error::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput {
            message: message.into(),
        }
    }

    /// An [`Error::Api`] in an HTTP 200, as kie reports errors (e.g. for a mock to return).
    pub fn api(endpoint: Endpoint, code: ApiCode, message: impl Into<String>) -> Self {
        Self::Api {
            endpoint,
            task_id: None,
            code,
            message: crate::secret::redact(&message.into(), &[]),
            status: 200,
            retry_after: None,
        }
    }

    /// An [`Error::Http`] without a body.
    pub fn http(endpoint: Endpoint, status: u16) -> Self {
        Self::Http {
            endpoint,
            task_id: None,
            status,
            retry_after: None,
            excerpt: String::new(),
        }
    }

    /// An [`Error::Transport`].
    pub fn transport(endpoint: Endpoint, failure: &crate::http::TransportError) -> Self {
        Self::Transport {
            endpoint,
            task_id: None,
            phase: failure.phase(),
            timed_out: failure.is_timeout(),
            message: failure.message().to_owned(),
        }
    }

    /// An [`Error::TaskFailed`].
    pub fn task_failed(
        task_id: impl Into<String>,
        state: TaskState,
        code: Option<i64>,
        message: Option<String>,
    ) -> Self {
        Self::TaskFailed {
            task_id: task_id.into(),
            state,
            code,
            message,
        }
    }

    /// An [`Error::SubmitOutcomeUnknown`] caused by `cause`.
    pub fn outcome_unknown(endpoint: Endpoint, cause: Error) -> Self {
        Self::SubmitOutcomeUnknown {
            endpoint,
            cause: Box::new(cause),
        }
    }

    /// An [`Error::Download`] of `url` (redacted here: query, fragment and userinfo removed).
    pub fn download(url: &str, reason: crate::download::DownloadError) -> Self {
        Self::Download {
            url: crate::download::redact_url(url),
            reason,
        }
    }

    /// An [`Error::Target`].
    pub fn target(
        path: impl Into<std::path::PathBuf>,
        problem: crate::download::TargetProblem,
    ) -> Self {
        Self::Target {
            path: path.into(),
            problem,
        }
    }

    /// An [`Error::Io`].
    pub fn io(operation: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            operation: operation.into(),
            source,
        }
    }

    /// The failure inside [`Error::GaveUp`], [`Error::SubmitOutcomeUnknown`] and
    /// [`Error::WaitFailed`] (recursively), or `self`.
    pub fn innermost(&self) -> &Error {
        match self {
            Self::GaveUp { last, .. } => last.innermost(),
            Self::SubmitOutcomeUnknown { cause, .. } | Self::WaitFailed { cause, .. } => {
                cause.innermost()
            }
            other => other,
        }
    }

    /// `true` when sending the same request again later may succeed: rate limits, maintenance,
    /// server errors and transport failures of calls that are safe to repeat.
    ///
    /// Always `false` for [`Error::SubmitOutcomeUnknown`]: that request may already have
    /// been processed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { code, .. } => {
                matches!(code.class(), veo3_types::CodeClass::Transient)
            }
            Self::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::Transport { .. } => true,
            Self::Decode {
                endpoint,
                unreadable: true,
                ..
            } => !endpoint.is_billable(),
            Self::Download {
                reason: crate::download::DownloadError::Interrupted { .. },
                ..
            } => true,
            Self::GaveUp { last, .. } => last.is_retryable(),
            Self::WaitFailed { cause, .. } => cause.is_retryable(),
            _ => false,
        }
    }

    /// `true` for timeouts: a transport timeout, a call that ran out of time, or a wait that
    /// reached its deadline.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Transport { timed_out, .. } => *timed_out,
            Self::WaitTimeout { .. } => true,
            Self::GaveUp {
                reason: GiveUpReason::DeadlineExceeded,
                ..
            } => true,
            Self::GaveUp { last, .. } => last.is_timeout(),
            Self::SubmitOutcomeUnknown { cause, .. } | Self::WaitFailed { cause, .. } => {
                cause.is_timeout()
            }
            _ => false,
        }
    }

    /// `true` when a billable request may have been processed (see
    /// [`Error::SubmitOutcomeUnknown`]).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::SubmitOutcomeUnknown { .. })
    }

    /// `true` for code 429 or HTTP 429.
    pub fn is_rate_limited(&self) -> bool {
        self.code() == Some(ApiCode::RateLimited) || self.status() == Some(429)
    }

    /// `true` for a bad or missing API key (code 401 or HTTP 401).
    pub fn is_unauthorized(&self) -> bool {
        self.code() == Some(ApiCode::Unauthorized) || self.status() == Some(401)
    }

    /// `true` when the task itself failed ([`Error::TaskFailed`]).
    pub fn is_task_failed(&self) -> bool {
        matches!(self, Self::TaskFailed { .. })
    }

    /// The API's code: the envelope code, or a failed task's error code.
    pub fn code(&self) -> Option<ApiCode> {
        match self.innermost() {
            Self::Api { code, .. } => Some(*code),
            Self::TaskFailed { code, .. } => code.map(ApiCode::from_i64),
            _ => None,
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self.innermost() {
            Self::Api { status, .. }
            | Self::Http { status, .. }
            | Self::Redirected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The API's message: the envelope `msg`, or a failed task's error message.
    pub fn message(&self) -> Option<&str> {
        match self.innermost() {
            Self::Api { message, .. } => Some(message),
            Self::TaskFailed { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// The task the error is about, when known.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Self::TaskFailed { task_id, .. }
            | Self::NoVideo { task_id, .. }
            | Self::WaitTimeout { task_id, .. }
            | Self::WaitFailed { task_id, .. } => Some(task_id),
            Self::Api { task_id, .. }
            | Self::Http { task_id, .. }
            | Self::Transport { task_id, .. }
            | Self::Decode { task_id, .. }
            | Self::Redirected { task_id, .. } => task_id.as_deref(),
            Self::GaveUp { last: inner, .. } | Self::SubmitOutcomeUnknown { cause: inner, .. } => {
                inner.task_id()
            }
            _ => None,
        }
    }

    /// The endpoint called, when the error came from a call.
    pub fn endpoint(&self) -> Option<Endpoint> {
        match self {
            Self::Api { endpoint, .. }
            | Self::Http { endpoint, .. }
            | Self::Transport { endpoint, .. }
            | Self::Decode { endpoint, .. }
            | Self::Redirected { endpoint, .. }
            | Self::SubmitOutcomeUnknown { endpoint, .. }
            | Self::GaveUp { endpoint, .. } => Some(*endpoint),
            _ => None,
        }
    }

    /// How long the server asked to wait before trying again (`Retry-After`), also when the
    /// client refused to wait that long.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } | Self::Http { retry_after, .. } => *retry_after,
            Self::GaveUp {
                reason: GiveUpReason::RetryAfterTooLong { hint },
                ..
            } => Some(*hint),
            Self::GaveUp { last, .. } => last.retry_after(),
            Self::SubmitOutcomeUnknown { cause, .. } | Self::WaitFailed { cause, .. } => {
                cause.retry_after()
            }
            _ => None,
        }
    }

    /// The redacted start of the response body, for decode and HTTP errors.
    pub fn body_excerpt(&self) -> Option<&str> {
        match self.innermost() {
            Self::Http { excerpt, .. } | Self::Decode { excerpt, .. } => Some(excerpt),
            _ => None,
        }
    }

    /// Names the task a call was about in the error it ended with (and in the one a wrapper
    /// carries); `""` names none.
    pub(crate) fn about_task(mut self, task: &str) -> Self {
        if task.is_empty() {
            return self;
        }
        match &mut self {
            Self::Api { task_id, .. }
            | Self::Http { task_id, .. }
            | Self::Transport { task_id, .. }
            | Self::Decode { task_id, .. }
            | Self::Redirected { task_id, .. } => *task_id = Some(task.to_owned()),
            Self::GaveUp { last: inner, .. } | Self::SubmitOutcomeUnknown { cause: inner, .. } => {
                let error = std::mem::replace(inner.as_mut(), Error::invalid_input(""));
                **inner = error.about_task(task);
            }
            _ => {}
        }
        self
    }

    /// Replaces `secret` in every text field (used by the drivers with the API key, as a last
    /// line of defence on top of the redaction applied when the error was built).
    pub(crate) fn scrub(mut self, secret: &str) -> Self {
        fn clean(text: &mut String, secret: &str) {
            if secret.len() >= 4 && text.contains(secret) {
                *text = text.replace(secret, crate::secret::REDACTED);
            }
        }
        match &mut self {
            Self::Api { message, .. } => clean(message, secret),
            Self::Http { excerpt, .. } => clean(excerpt, secret),
            Self::Transport { message, .. } => clean(message, secret),
            Self::Redirected { location, .. } => clean(location, secret),
            Self::Decode {
                message, excerpt, ..
            } => {
                clean(message, secret);
                clean(excerpt, secret);
            }
            Self::TaskFailed {
                message: Some(message),
                ..
            } => clean(message, secret),
            Self::InvalidInput { message } => clean(message, secret),
            Self::GaveUp { last, .. } => {
                let inner = std::mem::replace(last.as_mut(), Error::invalid_input(""));
                **last = inner.scrub(secret);
            }
            Self::SubmitOutcomeUnknown { cause, .. } | Self::WaitFailed { cause, .. } => {
                let inner = std::mem::replace(cause.as_mut(), Error::invalid_input(""));
                **cause = inner.scrub(secret);
            }
            _ => {}
        }
        self
    }
}

/// `" for task ID"` when an error names its task, for the messages above.
fn on_task(task_id: &Option<String>) -> String {
    task_id
        .as_deref()
        .map(|task| format!(" for task {task}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: i64) -> Error {
        Error::Api {
            endpoint: Endpoint::Generate,
            task_id: None,
            code: ApiCode::from_i64(code),
            message: "m".into(),
            status: 200,
            retry_after: None,
        }
    }

    #[test]
    fn predicates_look_through_wrappers() {
        let gave_up = Error::GaveUp {
            endpoint: Endpoint::RecordInfo,
            reason: GiveUpReason::RetryAfterTooLong {
                hint: Duration::from_secs(3600),
            },
            attempts: 1,
            elapsed: Duration::ZERO,
            last: Box::new(api(429)),
        };
        assert!(gave_up.is_retryable());
        assert!(gave_up.is_rate_limited());
        assert_eq!(gave_up.retry_after(), Some(Duration::from_secs(3600)));
        assert_eq!(gave_up.code(), Some(ApiCode::RateLimited));
        assert_eq!(gave_up.status(), Some(200));

        let unknown = Error::SubmitOutcomeUnknown {
            endpoint: Endpoint::Generate,
            cause: Box::new(Error::Transport {
                endpoint: Endpoint::Generate,
                task_id: None,
                phase: TransportPhase::AwaitingResponse,
                timed_out: true,
                message: "read timed out".into(),
            }),
        };
        assert!(!unknown.is_retryable());
        assert!(unknown.is_timeout());
        assert!(unknown.is_outcome_unknown());
        assert!(unknown.to_string().contains("outcome unknown"));
    }

    #[test]
    fn retryable_codes_follow_the_table() {
        for (code, retryable) in [
            (400, false),
            (401, false),
            (402, false),
            (404, false),
            (408, true),
            (422, false),
            (429, true),
            (451, false),
            (455, true),
            (500, true),
            (501, false),
            (505, false),
        ] {
            assert_eq!(api(code).is_retryable(), retryable, "code {code}");
        }
    }

    #[test]
    fn public_types_are_thread_safe() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_send_sync::<crate::Event>();
        assert_send_sync::<crate::Observer>();
        assert_send_sync::<crate::Effects>();
        assert_send_sync::<crate::Executor>();
        assert_send_sync::<crate::RetryBudget>();
        assert_send_sync::<crate::Call<veo3_types::TaskRecord>>();
        assert_send_sync::<Box<dyn crate::Veo3Api>>();
    }

    #[test]
    fn error_stays_small() {
        assert!(
            std::mem::size_of::<Error>() <= 128,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn no_message_repeats_its_source() {
        let errors = [
            Error::from(ValidationError::EmptyPrompt),
            Error::io("writing v.mp4", std::io::Error::other("disk full")),
            Error::outcome_unknown(Endpoint::Generate, api(500)),
            Error::GaveUp {
                endpoint: Endpoint::Credits,
                reason: GiveUpReason::AttemptsExhausted,
                attempts: 3,
                elapsed: Duration::ZERO,
                last: Box::new(api(500)),
            },
        ];
        for error in errors {
            let mut chain = vec![error.to_string()];
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                chain.push(cause.to_string());
                source = cause.source();
            }
            let line = chain.join(": ");
            for part in &chain {
                assert_eq!(line.matches(part.as_str()).count(), 1, "{line}");
            }
        }
        assert_eq!(
            Error::from(ValidationError::EmptyPrompt).to_string(),
            "invalid request: prompt must not be empty"
        );
    }

    #[test]
    fn scrub_reaches_nested_errors() {
        let error = Error::GaveUp {
            endpoint: Endpoint::Credits,
            reason: GiveUpReason::AttemptsExhausted,
            attempts: 3,
            elapsed: Duration::ZERO,
            last: Box::new(Error::Api {
                endpoint: Endpoint::Credits,
                task_id: None,
                code: ApiCode::InternalError,
                message: "bad key sk-secret-1".into(),
                status: 500,
                retry_after: None,
            }),
        }
        .scrub("sk-secret-1");
        assert_eq!(error.message(), Some("bad key ***"));
    }
}
