//! The bytes a transport moves: plain request and response values, and the transport's own
//! failure. No HTTP library appears here, so any client (reqwest, ureq, a test double) can
//! carry them.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use veo3_types::{Endpoint, HttpMethod};

/// One request to the API base URL (or, for uploads, the upload base URL: see
/// [`Endpoint::base_url`]), ready to send.
///
/// The transport joins [`HttpRequest::path_and_query`] to the endpoint's base URL, adds the
/// `Authorization: Bearer <key>` header (see [`ApiKey`](crate::ApiKey)) and the headers from
/// [`HttpRequest::headers`], and sends [`HttpRequest::body`] when there is one. It must not
/// follow redirects: it returns them as answers, and the core decides (a billable request's
/// redirect is an error; a read-only call's is followed on the API's host only).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRequest {
    /// The operation, for logs and classification.
    pub endpoint: Endpoint,
    /// `GET` or `POST`.
    pub method: HttpMethod,
    /// Path and query relative to the base URL, percent-encoded, starting with `/`.
    pub path_and_query: String,
    /// The JSON body of `POST`s.
    pub body: Option<Vec<u8>>,
    /// The streamed multipart body of a file upload (then `body` is `None`): the transport
    /// sends its head, the file read from disk, and its tail, with its `Content-Type` and
    /// `Content-Length`, opening the file anew for every attempt.
    pub multipart: Option<crate::upload::Multipart>,
}

impl HttpRequest {
    /// Builds a request; `body` is JSON.
    pub fn new(
        endpoint: Endpoint,
        path_and_query: impl Into<String>,
        body: Option<Vec<u8>>,
    ) -> Self {
        Self {
            endpoint,
            method: endpoint.method(),
            path_and_query: path_and_query.into(),
            body,
            multipart: None,
        }
    }

    /// A file upload streaming `multipart` to `endpoint`'s path.
    pub fn multipart(endpoint: Endpoint, multipart: crate::upload::Multipart) -> Self {
        Self {
            endpoint,
            method: endpoint.method(),
            path_and_query: endpoint.path().to_owned(),
            body: None,
            multipart: Some(multipart),
        }
    }

    /// The headers to send besides `Authorization`: `Accept`, and `Content-Type` for JSON
    /// bodies (a multipart body brings its own, [`Multipart::content_type`](crate::Multipart::content_type)).
    pub fn headers(&self) -> Vec<(&'static str, &'static str)> {
        let mut headers = vec![("accept", "application/json")];
        if self.body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        headers
    }

    /// `base` (e.g. `https://api.kie.ai`, with or without a trailing slash, possibly with a
    /// path prefix) joined with [`HttpRequest::path_and_query`].
    pub fn url(&self, base: &str) -> String {
        format!("{}{}", base.trim_end_matches('/'), self.path_and_query)
    }
}

/// An HTTP answer, whatever its status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Response headers; only those in [`HttpResponse::READ_HEADERS`] are read,
    /// case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body, fully read (or its first bytes, for an [oversized](HttpResponse::oversized)
    /// answer).
    pub body: Vec<u8>,
    /// The limit this answer's body went beyond, when it did.
    exceeded: Option<usize>,
}

impl HttpResponse {
    /// The only headers the core reads (lower case): a transport need copy no others.
    /// `location` names a redirect's target, which the core decides about (transports never
    /// follow redirects of API requests themselves).
    pub const READ_HEADERS: [&'static str; 3] = ["retry-after", "date", "location"];

    /// A response with `status` and `body` and no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            exceeded: None,
        }
    }

    /// An answer whose body went beyond `limit` bytes (the client's `max_response_bytes`),
    /// keeping the `head` read so far for the error's excerpt. A transport reads at most
    /// `limit + 1` bytes and then builds this; the core turns it into one error, the same for
    /// both clients, that names the limit ([`Call::evaluate`](crate::Call::evaluate)).
    ///
    /// ```
    /// use veo3_core::{Call, Error, HttpResponse};
    ///
    /// let answer = HttpResponse::oversized(200, 1024, vec![b'{'; 1025]);
    /// assert_eq!(answer.exceeded_limit(), Some(1024));
    /// let error = Call::credits().decode(&answer).unwrap_err();
    /// assert!(error.to_string().contains("exceeded the 1024-byte limit"), "{error}");
    /// ```
    pub fn oversized(status: u16, limit: usize, head: impl Into<Vec<u8>>) -> Self {
        Self {
            exceeded: Some(limit),
            ..Self::new(status, head)
        }
    }

    /// The limit the body went beyond, for an [oversized](HttpResponse::oversized) answer.
    pub fn exceeded_limit(&self) -> Option<usize> {
        self.exceeded
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The `Retry-After` delay, resolved against the `Date` header for HTTP-dates.
    pub fn retry_after(&self) -> Option<Duration> {
        crate::retry::parse_retry_after(self.header("retry-after")?, self.header("date"))
    }
}

/// How far an exchange got before it failed. This is what decides whether a billable request
/// may have been processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportPhase {
    /// Resolving, connecting or the TLS handshake: no byte of the request reached the server.
    Connect,
    /// Writing the request: the server may have received it (or enough of it).
    Send,
    /// The request was sent and no status line arrived.
    AwaitingResponse,
    /// The status arrived but the body was cut off.
    ReadingBody,
}

impl TransportPhase {
    /// `false` only when the request provably never left ([`TransportPhase::Connect`]).
    pub fn may_have_reached_server(self) -> bool {
        !matches!(self, Self::Connect)
    }

    /// Describes the phase for messages.
    pub fn description(self) -> &'static str {
        match self {
            Self::Connect => "while connecting",
            Self::Send => "while sending the request",
            Self::AwaitingResponse => "while awaiting the response",
            Self::ReadingBody => "while reading the response body",
        }
    }
}

/// A failure of the transport itself: no (complete) HTTP answer.
///
/// Transports must report the phase honestly: when in doubt, a later phase. Reporting
/// [`TransportPhase::Connect`] for a request that may have been sent would let a billable
/// request be sent twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    phase: TransportPhase,
    timed_out: bool,
    message: String,
}

impl TransportError {
    /// A failure in `phase`. `message` describes it; credentials in it (`Bearer ...`) are
    /// redacted here, but transports should not put request headers in it to begin with.
    pub fn new(phase: TransportPhase, timed_out: bool, message: impl AsRef<str>) -> Self {
        let message = crate::secret::redact(message.as_ref(), &[]);
        Self {
            phase,
            timed_out,
            message,
        }
    }

    /// A failure to connect (never reached the server).
    pub fn connect(timed_out: bool, message: impl AsRef<str>) -> Self {
        Self::new(TransportPhase::Connect, timed_out, message)
    }

    /// How far the exchange got.
    pub fn phase(&self) -> TransportPhase {
        self.phase
    }

    /// `true` for timeouts.
    pub fn is_timeout(&self) -> bool {
        self.timed_out
    }

    /// See [`TransportPhase::may_have_reached_server`].
    pub fn may_have_reached_server(&self) -> bool {
        self.phase.may_have_reached_server()
    }

    /// The description.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.timed_out {
            "timed out"
        } else {
            "failed"
        };
        write!(f, "{what} {}: {}", self.phase.description(), self.message)
    }
}

impl std::error::Error for TransportError {}

/// Sends one request and returns the answer: the only thing an async client has to write.
///
/// `timeout` bounds the whole exchange (connect to last body byte); it comes from
/// [`RetryState::begin_attempt`](crate::RetryState::begin_attempt) so that attempts cannot
/// outlive the call's deadline. Implementations must not retry on their own (the
/// [`Executor`](crate::Executor) decides that), must return every HTTP status as an
/// `Ok(HttpResponse)`, and must report failures with an honest [`TransportPhase`].
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request` and reads the whole answer.
    async fn send(
        &self,
        request: &HttpRequest,
        timeout: Option<Duration>,
    ) -> Result<HttpResponse, TransportError>;
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
pub(crate) fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_query_value(&mut out, value);
    out
}

/// Appends `value` percent-encoded (as [`encode_query_value`]) to `out`, without a
/// temporary string.
pub(crate) fn push_query_value(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive_and_retry_after_uses_date() {
        let response = HttpResponse::new(429, "")
            .with_header("Retry-After", "Wed, 21 Oct 2015 07:28:10 GMT")
            .with_header("DATE", "Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(
            response.header("retry-after"),
            Some("Wed, 21 Oct 2015 07:28:10 GMT")
        );
        assert_eq!(response.retry_after(), Some(Duration::from_secs(10)));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query_value("abc-123_~."), "abc-123_~.");
        assert_eq!(encode_query_value("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn transport_messages_are_redacted() {
        let error = TransportError::new(
            TransportPhase::Send,
            false,
            "header Authorization: Bearer sk-1 rejected",
        );
        assert_eq!(error.message(), "header Authorization: Bearer *** rejected");
        assert!(TransportError::connect(true, "dns").phase() == TransportPhase::Connect);
        assert!(!TransportError::connect(true, "dns").may_have_reached_server());
    }

    #[test]
    fn urls_join_without_double_slashes() {
        let request = HttpRequest::new(Endpoint::Credits, "/api/v1/chat/credit", None);
        assert_eq!(
            request.url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/api/v1/chat/credit"
        );
        assert_eq!(request.headers(), [("accept", "application/json")]);
    }
}
