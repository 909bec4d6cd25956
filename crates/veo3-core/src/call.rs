//! One operation as data: the request to send, and how to read (or retry) what comes back.
//!
//! A [`Call`] is built from a typed request (validated first), evaluated against each
//! transport result with [`Call::evaluate`] or, inside a retry loop, [`Call::step`]. The
//! `decode_*` functions are the same evaluation for a single response, for callers that do
//! their own sending.

use std::time::Duration;

use serde_json::Value;
use veo3_types::{
    ApiCode, Credits, DecodeError, DownloadUrlRequest, Endpoint, Envelope, ExtendRequest,
    GenerateRequest, Hd1080pQuery, Hd1080pResult, ImageFormat, RecordInfoQuery, TaskCreated,
    TaskRecord, Upgrade4kRequest, Upgrade4kResult, UploadBase64Request, UploadOptions,
    UploadUrlRequest, UploadedFile,
};

use crate::Error;
use crate::api::UpgradeStatus;
use crate::classify::{Answer, Disposition, Outcome, Stop, classify};
use crate::event::Event;
use crate::http::{
    HttpRequest, HttpResponse, TransportError, encode_query_value, push_query_value,
};
use crate::retry::{Decision, GiveUpReason, RetryReason, RetryState};
use crate::secret::{excerpt, redact};

/// How many characters of a body an error keeps.
const EXCERPT_CHARS: usize = 512;

/// Reads the `data` of an answer classified as success or pending. The `&str` is the task id
/// the call is about (`""` when none), for answers that omit it.
type Decoder<T> = fn(&Envelope, Disposition, &str) -> Result<T, DecodeError>;

/// Reads a whole answer in one pass when it has the common shape (the envelope's code, its
/// message and the value), `None` otherwise; the `&str` is as for [`Decoder`]. A fast path in
/// front of the envelope-first reading, which must agree with it (see
/// [`TaskRecord::from_answer`]).
type Quick<T> = fn(&[u8], &str) -> Option<(ApiCode, String, T)>;

/// One API operation: its request, and the reader of its answer.
///
/// ```
/// use veo3_core::{Call, HttpResponse, Step};
/// use veo3_types::GenerateRequest;
///
/// let request = GenerateRequest::builder("A red fox in the snow").build()?;
/// let call = Call::generate(&request)?;
/// assert_eq!(call.request().path_and_query, "/api/v1/veo/generate");
///
/// let answer = HttpResponse::new(200, r#"{"code":200,"msg":"success","data":{"taskId":"t-1"}}"#);
/// let created = call.decode(&answer)?;
/// assert_eq!(created.task_id, "t-1");
/// # Ok::<(), veo3_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Call<T> {
    request: HttpRequest,
    decode: Decoder<T>,
    quick: Option<Quick<T>>,
    task_id: String,
    once: bool,
}

/// What one transport result means, before retry bookkeeping.
#[derive(Debug)]
#[non_exhaustive]
pub enum Evaluation<T> {
    /// The call's value.
    Done(T),
    /// A failure that is safe to repeat.
    Retryable {
        /// Why it may be repeated.
        reason: RetryReason,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
        /// The failure, reported if the call gives up.
        error: Error,
    },
    /// A failure that must not be repeated.
    Failed(Error),
    /// A read-only call was redirected: send it to the target if
    /// [`Redirect::follow`] allows.
    Follow(Redirect),
}

impl<T> Evaluation<T> {
    /// The value, or the error (retryable or not), for callers that do not retry.
    fn into_result(self) -> Result<T, Error> {
        match self {
            Self::Done(value) => Ok(value),
            Self::Retryable { error, .. } | Self::Failed(error) => Err(error),
            Self::Follow(redirect) => Err(redirect.refused("this reader sends nothing")),
        }
    }
}

/// The most redirects one call follows.
pub const MAX_REDIRECTS: u32 = 5;

/// A redirect answer to a read-only call, which a driver may follow on the API's own host.
#[derive(Clone, Debug)]
pub struct Redirect {
    endpoint: Endpoint,
    task_id: String,
    status: u16,
    location: String,
}

impl Redirect {
    /// The redirect status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The request to send next: `request` (the one just answered) sent to the target, when
    /// the target is on the host of `base_url` (the client's base URL) and under its path,
    /// and `followed` (redirects already followed by this call) is below [`MAX_REDIRECTS`].
    /// Otherwise the [`Error::Redirected`] naming the target; nothing is sent there, so the
    /// key never reaches another host. `None` for `base_url` follows nothing.
    pub fn follow(
        &self,
        base_url: Option<&str>,
        request: &HttpRequest,
        followed: u32,
    ) -> Result<HttpRequest, Error> {
        if followed >= MAX_REDIRECTS {
            return Err(self.refused(&format!("more than {MAX_REDIRECTS} redirects")));
        }
        let base_url = base_url.ok_or_else(|| self.refused("the client's base URL is unknown"))?;
        let path_and_query =
            same_host_target(base_url, &self.location).map_err(|why| self.refused(why))?;
        let mut next = request.clone();
        next.path_and_query = path_and_query;
        Ok(next)
    }

    fn refused(&self, why: &str) -> Error {
        Error::Redirected {
            endpoint: self.endpoint,
            task_id: None,
            status: self.status,
            location: crate::download::redact_url(&self.location),
            why: why.to_owned(),
        }
        .about_task(&self.task_id)
    }
}

/// The path and query, relative to `base_url`, of a redirect `location` on the same host
/// (scheme, host and port) and under the base URL's path prefix; the reason otherwise.
fn same_host_target(base_url: &str, location: &str) -> Result<String, &'static str> {
    const OFF_HOST: &str = "it leads off the API's host, and the API key only goes there";
    if location.is_empty() || location.chars().any(|c| c.is_control() || c == ' ') {
        return Err("the Location header is not a usable URL");
    }
    let (base_origin, prefix) = split_origin(base_url).ok_or("the base URL has no host")?;
    let path = if location.starts_with("//") {
        return Err(OFF_HOST);
    } else if location.starts_with('/') {
        location
    } else {
        let (origin, path) = split_origin(location).ok_or("it is not an absolute URL or path")?;
        if !origin.eq_ignore_ascii_case(base_origin) {
            return Err(OFF_HOST);
        }
        if path.is_empty() { "/" } else { path }
    };
    let path = path.split('#').next().unwrap_or_default();
    let relative = path
        .strip_prefix(prefix)
        .filter(|rest| rest.starts_with('/'))
        .ok_or("it leads outside the API's base URL")?;
    Ok(relative.to_owned())
}

/// `scheme://authority` and the rest (path, query) of an http(s) URL.
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if authority_end == 0 {
        return None;
    }
    let split = scheme_end + 3 + authority_end;
    Some((&url[..split], &url[split..]))
}

/// What a retry loop does next.
#[derive(Debug)]
pub enum Step<T> {
    /// Return this value.
    Done(T),
    /// Sleep, then send the same request again.
    Retry(RetryPlan),
    /// Return this error.
    Fail(Error),
    /// Send the request to the redirect's target, if [`Redirect::follow`] allows (read-only
    /// calls only; a billable call's redirect is a [`Step::Fail`]).
    Follow(Redirect),
}

/// The details of a retry, for sleeping, logging and the [`Event::Retrying`] event.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryPlan {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// How long to sleep.
    pub delay: Duration,
    /// Why.
    pub reason: RetryReason,
    /// The number of the next attempt.
    pub attempt: u32,
    /// The failure being retried.
    pub cause: Error,
}

impl RetryPlan {
    /// The [`Event::Retrying`] describing this plan.
    pub fn event(&self) -> Event {
        Event::Retrying {
            endpoint: self.endpoint,
            reason: self.reason,
            delay: self.delay,
            attempt: self.attempt,
        }
    }
}

impl<T> Call<T> {
    /// The endpoint.
    pub fn endpoint(&self) -> Endpoint {
        self.request.endpoint
    }

    /// The request to send (the same for every attempt).
    pub fn request(&self) -> &HttpRequest {
        &self.request
    }

    /// What `result` means: the value, a retryable failure, or a final failure.
    pub fn evaluate(&self, result: Result<HttpResponse, TransportError>) -> Evaluation<T> {
        let endpoint = self.endpoint();
        match result {
            Err(failure) => {
                let outcome = Outcome::Transport {
                    phase: failure.phase(),
                    timed_out: failure.is_timeout(),
                };
                let error = Error::transport(endpoint, &failure).about_task(&self.task_id);
                without_answer(endpoint, &outcome, error)
            }
            Ok(response) => evaluate_response(endpoint, self.readers(), &self.task_id, &response),
        }
    }

    /// Evaluates `result` and updates the retry bookkeeping: the one step of every retry loop.
    ///
    /// `now` is the caller's [`Clock`](crate::time::Clock) reading and `random` a uniform
    /// `u64` for the backoff jitter.
    pub fn step(
        &self,
        state: &mut RetryState,
        result: Result<HttpResponse, TransportError>,
        now: Duration,
        random: u64,
    ) -> Step<T> {
        match self.evaluate(result) {
            Evaluation::Done(value) => {
                state.on_success();
                Step::Done(value)
            }
            Evaluation::Failed(error) => Step::Fail(error),
            Evaluation::Follow(redirect) => Step::Follow(redirect),
            Evaluation::Retryable {
                reason,
                retry_after,
                error,
            } => match self.decide(state, reason, retry_after, now, random) {
                Decision::Retry { delay, attempt } => Step::Retry(RetryPlan {
                    endpoint: self.endpoint(),
                    delay,
                    reason,
                    attempt,
                    cause: error,
                }),
                Decision::GiveUp(why) => Step::Fail(Error::GaveUp {
                    endpoint: self.endpoint(),
                    reason: why,
                    attempts: state.attempts(),
                    elapsed: state.elapsed(now),
                    last: Box::new(error),
                }),
            },
        }
    }

    /// Attempts this call once: an answer that would be retried (a 429, a 455, a proven
    /// rejection) is the call's error instead ([`Error::GaveUp`] with
    /// [`GiveUpReason::AttemptsExhausted`](crate::GiveUpReason) after 1 attempt, its cause
    /// inside). For a caller that paces its own sends under the account's limit, such as a
    /// batch runner: every request the call makes is one the caller counted.
    ///
    /// ```
    /// use veo3_core::{Call, HttpResponse, RetryBudget, RetryPolicy, RetryState, Step};
    /// use veo3_types::GenerateRequest;
    ///
    /// let request = GenerateRequest::builder("A red fox in the snow").build()?;
    /// let call = Call::generate(&request)?.once();
    /// let mut state = RetryState::new(&RetryPolicy::default(), RetryBudget::shared(), Default::default());
    /// state.begin_attempt(Default::default());
    /// let limited = HttpResponse::new(200, r#"{"code":429,"msg":"slow down","data":null}"#);
    /// let Step::Fail(error) = call.step(&mut state, Ok(limited), Default::default(), 0) else {
    ///     panic!("a call made once is not retried");
    /// };
    /// assert!(error.is_rate_limited());
    /// # Ok::<(), veo3_core::Error>(())
    /// ```
    #[must_use]
    pub fn once(mut self) -> Self {
        self.once = true;
        self
    }

    fn decide(
        &self,
        state: &mut RetryState,
        reason: RetryReason,
        retry_after: Option<Duration>,
        now: Duration,
        random: u64,
    ) -> Decision {
        if self.once {
            return Decision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        state.on_retryable(reason, retry_after, now, random)
    }

    /// Reads a single response without retrying: the value, or the error it represents
    /// (retryable failures included).
    pub fn decode(&self, response: &HttpResponse) -> Result<T, Error> {
        evaluate_response(self.endpoint(), self.readers(), &self.task_id, response).into_result()
    }

    fn new(request: HttpRequest, decode: Decoder<T>) -> Self {
        Self {
            request,
            decode,
            quick: None,
            task_id: String::new(),
            once: false,
        }
    }

    fn readers(&self) -> Readers<T> {
        Readers {
            decode: self.decode,
            quick: self.quick,
        }
    }

    fn about(mut self, task_id: &str) -> Self {
        task_id.clone_into(&mut self.task_id);
        self
    }
}

impl Call<TaskCreated> {
    /// `POST /api/v1/veo/generate`, after validating `request`. The reference's soft rules
    /// ([`GenerateRequest::warnings`]) are logged as warnings and the request is sent: the
    /// server decides.
    pub fn generate(request: &GenerateRequest) -> Result<Self, Error> {
        request.validate()?;
        for warning in request.warnings() {
            tracing::warn!(field = warning.field(), "{warning}");
        }
        Ok(Self::new(
            json_request(Endpoint::Generate, request)?,
            decode_task_created,
        ))
    }

    /// `POST /api/v1/veo/extend`, after validating `request`.
    pub fn extend(request: &ExtendRequest) -> Result<Self, Error> {
        request.validate()?;
        Ok(Self::new(
            json_request(Endpoint::Extend, request)?,
            decode_task_created,
        )
        .about(&request.task_id))
    }
}

impl Call<TaskRecord> {
    /// `GET /api/v1/veo/record-info?taskId=...`.
    pub fn record_info(task_id: &str) -> Result<Self, Error> {
        RecordInfoQuery::check(task_id)?;
        // The path and its query in one allocation (a task id is short and mostly plain).
        let endpoint = Endpoint::RecordInfo.path();
        let mut path = String::with_capacity(endpoint.len() + 8 + task_id.len() * 3);
        path.push_str(endpoint);
        path.push_str("?taskId=");
        push_query_value(&mut path, task_id);
        let mut call = Self::new(
            HttpRequest::new(Endpoint::RecordInfo, path, None),
            decode_task_record,
        )
        .about(task_id);
        call.quick = Some(quick_task_record);
        Ok(call)
    }
}

impl Call<UpgradeStatus<Hd1080pResult>> {
    /// `GET /api/v1/veo/get-1080p-video?taskId=...&index=...`.
    pub fn hd_1080p(task_id: &str, index: Option<u32>) -> Result<Self, Error> {
        Hd1080pQuery::new(task_id, index).validate()?;
        let mut path = format!(
            "{}?taskId={}",
            Endpoint::Hd1080p.path(),
            encode_query_value(task_id)
        );
        if let Some(index) = index {
            path.push_str(&format!("&index={index}"));
        }
        Ok(Self::new(
            HttpRequest::new(Endpoint::Hd1080p, path, None),
            decode_hd_1080p_status,
        )
        .about(task_id))
    }
}

impl Call<UpgradeStatus<Upgrade4kResult>> {
    /// `POST /api/v1/veo/get-4k-video`, after validating `request`.
    pub fn upgrade_4k(request: &Upgrade4kRequest) -> Result<Self, Error> {
        request.validate()?;
        Ok(Self::new(
            json_request(Endpoint::Upgrade4k, request)?,
            decode_upgrade_4k_status,
        )
        .about(&request.task_id))
    }
}

impl Call<Credits> {
    /// `GET /api/v1/chat/credit`.
    pub fn credits() -> Self {
        Self::new(
            HttpRequest::new(Endpoint::Credits, Endpoint::Credits.path(), None),
            decode_credits_data,
        )
    }
}

impl Call<String> {
    /// `POST /api/v1/common/download-url`, after validating `url`.
    pub fn download_url(url: &str) -> Result<Self, Error> {
        let request = DownloadUrlRequest::new(url);
        request.validate()?;
        Ok(Self::new(
            json_request(Endpoint::DownloadUrl, &request)?,
            decode_download_link,
        ))
    }
}

impl Call<UploadedFile> {
    /// `POST /api/file-stream-upload` (upload host): `file` streamed as the multipart `file`
    /// part, after validating `options`; the transport reports the bytes it streams to
    /// `progress` ([`UploadProgress::none`](crate::UploadProgress::none) for nothing).
    pub fn upload_file(
        file: &crate::LocalFile,
        options: &UploadOptions,
        progress: crate::UploadProgress,
    ) -> Result<Self, Error> {
        options.validate()?;
        Ok(Self::new(
            HttpRequest::multipart(
                Endpoint::UploadStream,
                crate::Multipart::for_file(file, options).with_progress(progress),
            ),
            decode_uploaded_file,
        ))
    }

    /// `POST /api/file-base64-upload` (upload host): `bytes` as a `data:` URL (its type
    /// sniffed when it is an image), stored as `options.file_name`, else `file_name`.
    pub fn upload_bytes(
        bytes: &[u8],
        file_name: &str,
        options: &UploadOptions,
    ) -> Result<Self, Error> {
        let mut options = options.clone();
        if options.file_name.is_none() && !file_name.is_empty() {
            options.file_name = Some(file_name.to_owned());
        }
        options.validate()?;
        let mime =
            ImageFormat::sniff(bytes).map_or("application/octet-stream", ImageFormat::mime_type);
        let request = UploadBase64Request::from_bytes(bytes, Some(mime), &options);
        request.validate()?;
        Ok(Self::new(
            json_request(Endpoint::UploadBase64, &request)?,
            decode_uploaded_file,
        ))
    }

    /// `POST /api/file-url-upload` (upload host): the host fetches `url`.
    pub fn upload_url(url: &str, options: &UploadOptions) -> Result<Self, Error> {
        let request = UploadUrlRequest::new(url, options);
        request.validate()?;
        Ok(Self::new(
            json_request(Endpoint::UploadUrl, &request)?,
            decode_uploaded_file,
        ))
    }
}

/// Reads an answer of any of the three upload endpoints: the hosted file.
pub fn decode_upload(response: &HttpResponse) -> Result<UploadedFile, Error> {
    decode_with(Endpoint::UploadStream, decode_uploaded_file, response)
}

/// Reads a generate answer (envelope first; see [`classify`]).
pub fn decode_generate(response: &HttpResponse) -> Result<TaskCreated, Error> {
    decode_with(Endpoint::Generate, decode_task_created, response)
}

/// Reads an extend answer.
pub fn decode_extend(response: &HttpResponse) -> Result<TaskCreated, Error> {
    decode_with(Endpoint::Extend, decode_task_created, response)
}

/// Reads a record-info answer.
pub fn decode_record_info(response: &HttpResponse) -> Result<TaskRecord, Error> {
    let readers = Readers {
        decode: decode_task_record,
        quick: Some(quick_task_record),
    };
    evaluate_response(Endpoint::RecordInfo, readers, "", response).into_result()
}

/// Reads a get-1080p-video answer; "processing" is [`UpgradeStatus::Processing`].
pub fn decode_hd_1080p(response: &HttpResponse) -> Result<UpgradeStatus<Hd1080pResult>, Error> {
    decode_with(Endpoint::Hd1080p, decode_hd_1080p_status, response)
}

/// Reads a get-4k-video answer; a 422 with URLs is [`UpgradeStatus::Ready`], "processing" (or
/// a first acceptance without URLs) is [`UpgradeStatus::Processing`].
pub fn decode_upgrade_4k(response: &HttpResponse) -> Result<UpgradeStatus<Upgrade4kResult>, Error> {
    decode_with(Endpoint::Upgrade4k, decode_upgrade_4k_status, response)
}

/// Reads a chat/credit answer.
pub fn decode_credits(response: &HttpResponse) -> Result<Credits, Error> {
    decode_with(Endpoint::Credits, decode_credits_data, response)
}

/// Reads a download-url answer: the temporary link.
pub fn decode_download_url(response: &HttpResponse) -> Result<String, Error> {
    decode_with(Endpoint::DownloadUrl, decode_download_link, response)
}

fn decode_with<T>(
    endpoint: Endpoint,
    decode: Decoder<T>,
    response: &HttpResponse,
) -> Result<T, Error> {
    let readers = Readers {
        decode,
        quick: None,
    };
    evaluate_response(endpoint, readers, "", response).into_result()
}

fn json_request<B: serde::Serialize>(endpoint: Endpoint, body: &B) -> Result<HttpRequest, Error> {
    let body = serde_json::to_vec(body).map_err(|error| {
        Error::invalid_input(format!("cannot encode the {endpoint} request: {error}"))
    })?;
    Ok(HttpRequest::new(endpoint, endpoint.path(), Some(body)))
}

/// The envelope-first reading of an HTTP answer.
struct Parsed {
    envelope: Option<Envelope>,
    /// Why the body is not an envelope, when it is not.
    not_envelope: Option<DecodeError>,
    has_result_urls: bool,
    retry_after: Option<Duration>,
}

impl Parsed {
    fn new(endpoint: Endpoint, response: &HttpResponse) -> Self {
        let (envelope, not_envelope) = if response.body.iter().all(u8::is_ascii_whitespace) {
            (None, Some(DecodeError::MissingField { field: "body" }))
        } else {
            match Envelope::from_slice(&response.body) {
                Ok(envelope) => (Some(envelope), None),
                Err(error) => (None, Some(error)),
            }
        };
        // Only a 4K answer's meaning depends on its URLs (see `classify`).
        let has_result_urls = endpoint == Endpoint::Upgrade4k
            && envelope.as_ref().is_some_and(|envelope| {
                envelope.data.is_object()
                    && Upgrade4kResult::from_data(&envelope.data)
                        .is_ok_and(|result| result.is_ready())
            });
        Self {
            envelope,
            not_envelope,
            has_result_urls,
            retry_after: response.retry_after(),
        }
    }

    fn answer(&self, status: u16) -> Answer<'_> {
        Answer {
            status,
            code: self.envelope.as_ref().map(|envelope| envelope.code),
            message: self
                .envelope
                .as_ref()
                .map_or("", |envelope| envelope.msg.as_str()),
            has_result_urls: self.has_result_urls,
            retry_after: self.retry_after,
        }
    }

    /// The error this answer represents when it is not a success.
    fn error(&self, endpoint: Endpoint, response: &HttpResponse) -> Error {
        match &self.envelope {
            Some(envelope) => Error::Api {
                endpoint,
                task_id: None,
                code: envelope.code,
                message: redact(&envelope.msg, &[]),
                status: response.status,
                retry_after: self.retry_after,
            },
            None if (200..300).contains(&response.status) => Error::Decode {
                endpoint,
                task_id: None,
                message: self
                    .not_envelope
                    .as_ref()
                    .map_or_else(|| "not an API answer".to_owned(), ToString::to_string),
                excerpt: excerpt(&response.body, EXCERPT_CHARS, &[]),
                unreadable: true,
            },
            None => Error::Http {
                endpoint,
                task_id: None,
                status: response.status,
                retry_after: self.retry_after,
                excerpt: excerpt(&response.body, EXCERPT_CHARS, &[]),
            },
        }
    }
}

/// How a call reads its answers.
struct Readers<T> {
    decode: Decoder<T>,
    quick: Option<Quick<T>>,
}

fn evaluate_response<T>(
    endpoint: Endpoint,
    readers: Readers<T>,
    task_id: &str,
    response: &HttpResponse,
) -> Evaluation<T> {
    if let Some(limit) = response.exceeded_limit() {
        let error = Error::Decode {
            endpoint,
            task_id: None,
            message: format!(
                "the answer (HTTP {}) exceeded the {limit}-byte limit (max_response_bytes)",
                response.status
            ),
            excerpt: excerpt(&response.body, EXCERPT_CHARS, &[]),
            unreadable: true,
        };
        return unreadable(endpoint, response, error.about_task(task_id));
    }
    // The one-pass reading settles the common case, a success or pending answer; every other
    // answer (and every other shape) is read envelope-first below, which explains failures.
    if let Some((code, message, value)) = readers
        .quick
        .and_then(|quick| quick(&response.body, task_id))
    {
        let answer = Answer {
            status: response.status,
            code: Some(code),
            message: &message,
            has_result_urls: false,
            retry_after: response.retry_after(),
        };
        if let Disposition::Success | Disposition::Pending =
            classify(endpoint, &Outcome::Answer(answer))
        {
            return Evaluation::Done(value);
        }
    }
    let decode = readers.decode;
    let parsed = Parsed::new(endpoint, response);
    let disposition = classify(endpoint, &Outcome::Answer(parsed.answer(response.status)));
    match disposition {
        Disposition::Success | Disposition::Pending => {
            let decoded = match &parsed.envelope {
                Some(envelope) => decode(envelope, disposition, task_id),
                None => Err(DecodeError::MissingField { field: "code" }),
            };
            match decoded {
                Ok(value) => Evaluation::Done(value),
                Err(problem) => {
                    let error = Error::Decode {
                        endpoint,
                        task_id: None,
                        message: problem.to_string(),
                        excerpt: excerpt(&response.body, EXCERPT_CHARS, &[]),
                        unreadable: false,
                    }
                    .about_task(task_id);
                    // A billable success we cannot read may still have created a task; a
                    // read whose envelope is fine but whose data is not will not improve.
                    if endpoint.is_billable() {
                        Evaluation::Failed(outcome_unknown(endpoint, error))
                    } else {
                        Evaluation::Failed(error)
                    }
                }
            }
        }
        Disposition::Retry { reason, after } => Evaluation::Retryable {
            reason,
            retry_after: after,
            error: parsed.error(endpoint, response).about_task(task_id),
        },
        Disposition::Stop(Stop::OutcomeUnknown) => Evaluation::Failed(outcome_unknown(
            endpoint,
            parsed.error(endpoint, response).about_task(task_id),
        )),
        Disposition::Follow | Disposition::Stop(Stop::Redirected) => {
            let Some(location) = response.header("location") else {
                return Evaluation::Failed(parsed.error(endpoint, response).about_task(task_id));
            };
            let redirect = Redirect {
                endpoint,
                task_id: task_id.to_owned(),
                status: response.status,
                location: location.trim().to_owned(),
            };
            if disposition == Disposition::Follow {
                Evaluation::Follow(redirect)
            } else {
                Evaluation::Failed(
                    redirect
                        .refused("a billable request is never sent twice, nor to another address"),
                )
            }
        }
        Disposition::Stop(_) => {
            Evaluation::Failed(parsed.error(endpoint, response).about_task(task_id))
        }
    }
}

/// An answer beyond the size limit: read like any other answer without a readable envelope
/// (see [`classify`]), so a read-only call asks again and a billable call's outcome is unknown.
fn unreadable<T>(endpoint: Endpoint, response: &HttpResponse, error: Error) -> Evaluation<T> {
    let answer = Answer::bare(response.status).with_retry_after(response.retry_after());
    without_answer(endpoint, &Outcome::Answer(answer), error)
}

/// What an outcome that gave no usable answer means (a transport failure, an unreadable
/// answer): retried when [`classify`] says so, "submit outcome unknown" for a billable call
/// that may have arrived, else `error`.
fn without_answer<T>(endpoint: Endpoint, outcome: &Outcome<'_>, error: Error) -> Evaluation<T> {
    match classify(endpoint, outcome) {
        Disposition::Retry { reason, after } => Evaluation::Retryable {
            reason,
            retry_after: after,
            error,
        },
        Disposition::Stop(Stop::OutcomeUnknown) => {
            Evaluation::Failed(outcome_unknown(endpoint, error))
        }
        _ => Evaluation::Failed(error),
    }
}

fn outcome_unknown(endpoint: Endpoint, cause: Error) -> Error {
    Error::SubmitOutcomeUnknown {
        endpoint,
        cause: Box::new(cause),
    }
}

fn decode_uploaded_file(
    envelope: &Envelope,
    _: Disposition,
    _: &str,
) -> Result<UploadedFile, DecodeError> {
    UploadedFile::from_data(&envelope.data)
}

fn decode_task_created(
    envelope: &Envelope,
    _: Disposition,
    _: &str,
) -> Result<TaskCreated, DecodeError> {
    TaskCreated::from_data(&envelope.data)
}

fn decode_task_record(
    envelope: &Envelope,
    _: Disposition,
    task_id: &str,
) -> Result<TaskRecord, DecodeError> {
    TaskRecord::from_data(&envelope.data).map(|record| about(record, task_id))
}

fn quick_task_record(body: &[u8], task_id: &str) -> Option<(ApiCode, String, TaskRecord)> {
    let (code, message, record) = TaskRecord::from_answer(body)?;
    Some((code, message, about(record, task_id)))
}

/// Some answer shapes omit the id; the caller asked about a known one.
fn about(mut record: TaskRecord, task_id: &str) -> TaskRecord {
    if record.task_id.is_empty() {
        task_id.clone_into(&mut record.task_id);
    }
    record
}

fn decode_hd_1080p_status(
    envelope: &Envelope,
    disposition: Disposition,
    _: &str,
) -> Result<UpgradeStatus<Hd1080pResult>, DecodeError> {
    match disposition {
        Disposition::Pending => Ok(UpgradeStatus::processing(envelope.msg.clone())),
        _ => Hd1080pResult::from_data(&envelope.data).map(UpgradeStatus::Ready),
    }
}

fn decode_upgrade_4k_status(
    envelope: &Envelope,
    disposition: Disposition,
    _: &str,
) -> Result<UpgradeStatus<Upgrade4kResult>, DecodeError> {
    match disposition {
        // The job is named by the answer's `data.taskId` (the source's id, in the reference's
        // examples); a processing answer without readable data names none.
        Disposition::Pending => Ok(UpgradeStatus::Processing {
            message: envelope.msg.clone(),
            job_id: Upgrade4kResult::from_data(&envelope.data)
                .ok()
                .and_then(|result| result.task_id)
                .filter(|id| !id.trim().is_empty()),
        }),
        _ => Upgrade4kResult::from_data(&envelope.data).map(UpgradeStatus::Ready),
    }
}

fn decode_credits_data(
    envelope: &Envelope,
    _: Disposition,
    _: &str,
) -> Result<Credits, DecodeError> {
    Credits::from_data(&envelope.data)
}

fn decode_download_link(
    envelope: &Envelope,
    _: Disposition,
    _: &str,
) -> Result<String, DecodeError> {
    let link = match &envelope.data {
        Value::String(link) => Some(link.clone()),
        // Tolerate an object wrapper, as other kie endpoints use.
        Value::Object(object) => ["downloadUrl", "url", "download_url"]
            .iter()
            .find_map(|key| object.get(*key).and_then(Value::as_str).map(str::to_owned)),
        _ => None,
    };
    link.filter(|link| !link.trim().is_empty())
        .ok_or(DecodeError::InvalidField {
            field: "data",
            expected: "a download URL string",
        })
}

#[cfg(test)]
mod tests;
