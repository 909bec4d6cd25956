//! Moving bytes with ureq: one function sends an API request and returns the core's
//! [`HttpResponse`] or a [`TransportError`] with an honest phase; another opens a result file
//! for streaming. Nothing here decides anything about the protocol.

use std::io::{self, Read};
use std::time::Duration;

use ureq::http::Response;
use ureq::{Agent, SendBody};
use veo3_core::{
    ApiKey, HttpRequest, HttpResponse, Multipart, RequestLimit, TransportError, TransportPhase,
    UploadProgress,
};
use veo3_types::{BaseUrl, HttpMethod};

/// The API transport: an agent that never follows redirects (the key must not travel to
/// another host) and hands every status back as a response.
#[derive(Clone)]
pub(crate) struct ApiTransport {
    agent: Agent,
    base_url: String,
    upload_base_url: String,
    key: ApiKey,
    max_body: u64,
    limit: RequestLimit,
}

impl ApiTransport {
    pub(crate) fn new(
        agent: Agent,
        base_url: String,
        upload_base_url: String,
        key: ApiKey,
        max_body: u64,
        limit: RequestLimit,
    ) -> Self {
        Self {
            agent,
            base_url,
            upload_base_url,
            key,
            max_body,
            limit,
        }
    }

    /// The client's cap on exchanges in flight, shared with its downloads.
    pub(crate) fn limit(&self) -> &RequestLimit {
        &self.limit
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    pub(crate) fn upload_base_url(&self) -> &str {
        &self.upload_base_url
    }

    /// Sends `request` and reads the whole answer (at most `max_body` bytes), within
    /// `timeout` from connect to the last body byte.
    pub(crate) fn send(
        &self,
        request: &HttpRequest,
        timeout: Option<Duration>,
    ) -> Result<HttpResponse, TransportError> {
        // The wait for a slot is not part of the attempt: a request still queued here has not
        // been sent, so its time limit only starts once it may go.
        let _permit = self.limit.acquire_blocking();
        let url = match request.endpoint.base_url() {
            BaseUrl::Upload => request.url(&self.upload_base_url),
            _ => request.url(&self.base_url),
        };
        let authorization = self.key.authorization();
        let result = match (request.method, &request.body, &request.multipart) {
            (HttpMethod::Post, _, Some(multipart)) => {
                self.send_multipart(&url, &authorization, multipart, timeout)
            }
            (HttpMethod::Post, body, None) => {
                let mut builder = self.agent.post(&url);
                for (name, value) in request.headers() {
                    builder = builder.header(name, value);
                }
                let builder = builder
                    .header("authorization", &authorization)
                    .config()
                    // Per request as well as on the agent, so a caller-supplied agent cannot
                    // turn these off.
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .timeout_global(timeout)
                    .build();
                builder.send(body.as_deref().unwrap_or_default())
            }
            _ => {
                let mut builder = self.agent.get(&url);
                for (name, value) in request.headers() {
                    builder = builder.header(name, value);
                }
                builder
                    .header("authorization", &authorization)
                    .config()
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .timeout_global(timeout)
                    .build()
                    .call()
            }
        };
        let response = result.map_err(|error| self.failure(request_error(error)))?;
        let status = response.status().as_u16();
        let headers = header_pairs(&response);
        let mut body = Vec::new();
        let mut reader = response.into_body().into_reader().take(self.max_body + 1);
        if let Err(error) = reader.read_to_end(&mut body) {
            return Err(self.failure(body_error(&error)));
        }
        self.scrub(&mut body);
        // Past the limit the core decides what the answer means (`HttpResponse::oversized`).
        let mut response = if body.len() as u64 > self.max_body {
            let limit = usize::try_from(self.max_body).unwrap_or(usize::MAX);
            body.truncate(limit);
            HttpResponse::oversized(status, limit, body)
        } else {
            HttpResponse::new(status, body)
        };
        response.headers = headers;
        Ok(response)
    }

    /// Streams a multipart upload: the head, the file read from disk (opened here, for this
    /// attempt only, and limited to the length announced), the tail; nothing is buffered.
    fn send_multipart(
        &self,
        url: &str,
        authorization: &str,
        multipart: &Multipart,
        timeout: Option<Duration>,
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        let file = std::fs::File::open(multipart.path())?;
        let expected = multipart.file_len();
        let progress = multipart.progress();
        progress.start();
        let mut reader = multipart
            .head()
            .chain(Reported {
                inner: Exact::new(file, expected),
                progress,
            })
            .chain(multipart.tail());
        self.agent
            .post(url)
            .header("accept", "application/json")
            .header("content-type", multipart.content_type())
            .header("content-length", multipart.content_length().to_string())
            .header("authorization", authorization)
            .config()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(timeout)
            .build()
            .send(SendBody::from_reader(&mut reader))
    }

    /// The key never appears in a message, whatever a server or proxy echoes.
    fn failure(
        &self,
        (phase, timed_out, message): (TransportPhase, bool, String),
    ) -> TransportError {
        TransportError::new(phase, timed_out, self.key.redact(&message))
    }

    /// Replaces the key in a response body before anything can quote it in an error (the
    /// API has no reason to send it back; a misbehaving proxy might).
    fn scrub(&self, body: &mut Vec<u8>) {
        let key = self.key.expose().as_bytes();
        if key.len() < 4 || body.len() < key.len() {
            return;
        }
        if body.windows(key.len()).any(|window| window == key) {
            let text = String::from_utf8_lossy(body).into_owned();
            *body = self.key.redact(&text).into_bytes();
        }
    }
}

/// A reader that reports each piece of the file it hands out (to ureq, which writes it to
/// the connection before asking for more) to the upload's progress.
struct Reported<'a, R> {
    inner: R,
    progress: &'a UploadProgress,
}

impl<R: Read> Read for Reported<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.progress.sent(read as u64);
        Ok(read)
    }
}

/// A reader of exactly `len` bytes of `inner`: fewer is an error (the file got shorter
/// after it was checked), so the body never disagrees with its `Content-Length`.
struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, len: u64) -> Self {
        Self {
            inner: inner.take(len),
            left: len,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let read = self.inner.read(buf)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file got shorter while it was being uploaded",
            ));
        }
        self.left -= read as u64;
        Ok(read)
    }
}

/// A result-file response: its head, and the body to stream.
pub(crate) struct FileResponse {
    pub(crate) status: u16,
    pub(crate) content_length: Option<u64>,
    pub(crate) content_range: Option<String>,
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<String>,
    pub(crate) body: ureq::BodyReader<'static>,
}

/// Requests a result file: no `Authorization` header, ever (these hosts are not the API).
pub(crate) fn get_file(
    agent: &Agent,
    url: &str,
    range: Option<&str>,
    if_range: Option<&str>,
) -> Result<FileResponse, TransportError> {
    let mut builder = agent.get(url);
    if let Some(range) = range {
        builder = builder.header("range", range);
    }
    if let Some(if_range) = if_range {
        builder = builder.header("if-range", if_range);
    }
    let response = builder
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .map_err(|error| {
            let (phase, timed_out, message) = request_error(error);
            TransportError::new(phase, timed_out, message)
        })?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    Ok(FileResponse {
        status: response.status().as_u16(),
        content_length: header("content-length").and_then(|v| v.trim().parse().ok()),
        content_range: header("content-range"),
        etag: header("etag"),
        last_modified: header("last-modified"),
        body: response.into_body().into_reader(),
    })
}

fn header_pairs(response: &Response<ureq::Body>) -> Vec<(String, String)> {
    HttpResponse::READ_HEADERS
        .iter()
        .filter_map(|name| {
            let value = response.headers().get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

/// Maps a failure of ureq's request-and-head phase to the core's phases.
///
/// The phase decides whether a billable request may be sent again, so every doubt resolves to
/// a later phase: only failures that prove no byte reached the server are
/// [`TransportPhase::Connect`] (name resolution, a refused connection, connect timeouts, the
/// TLS-free connector chain giving up, a request ureq refused to build).
pub(crate) fn request_error(error: ureq::Error) -> (TransportPhase, bool, String) {
    use ureq::Timeout;
    let message = error.to_string();
    let (phase, timed_out) = match &error {
        ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect) => {
            (TransportPhase::Connect, true)
        }
        ureq::Error::Timeout(Timeout::SendRequest | Timeout::SendBody | Timeout::PerWrite) => {
            (TransportPhase::Send, true)
        }
        ureq::Error::Timeout(Timeout::RecvBody) => (TransportPhase::ReadingBody, true),
        // RecvResponse, PerRead, PerCall, Global and anything newer: the request may be out.
        ureq::Error::Timeout(_) => (TransportPhase::AwaitingResponse, true),
        ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::BadUri(_)
        | ureq::Error::Http(_)
        | ureq::Error::RequireHttpsOnly(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::ConnectProxyFailed(_) => (TransportPhase::Connect, false),
        ureq::Error::Io(io) => io_phase(io),
        ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) => {
            (TransportPhase::AwaitingResponse, false)
        }
        // TLS errors, body limits and the rest: they can happen after bytes went out.
        _ => (TransportPhase::Send, false),
    };
    (phase, timed_out, message)
}

/// An I/O error before the response head: `ConnectionRefused` is only ever reported by
/// `connect()`, so it proves the request never left. Everything else (a reset, a broken pipe,
/// an unreachable host reported after retransmissions) may follow a sent request.
fn io_phase(error: &io::Error) -> (TransportPhase, bool) {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => (TransportPhase::Connect, false),
        io::ErrorKind::TimedOut => (TransportPhase::AwaitingResponse, true),
        _ => (TransportPhase::Send, false),
    }
}

/// A failure while reading a body whose head arrived.
pub(crate) fn body_error(error: &io::Error) -> (TransportPhase, bool, String) {
    let timed_out = error.kind() == io::ErrorKind::TimedOut
        || error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)));
    (TransportPhase::ReadingBody, timed_out, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_that_prove_nothing_was_sent_are_connect() {
        use ureq::Timeout;
        let cases = [
            (ureq::Error::HostNotFound, TransportPhase::Connect, false),
            (
                ureq::Error::ConnectionFailed,
                TransportPhase::Connect,
                false,
            ),
            (
                ureq::Error::Timeout(Timeout::Resolve),
                TransportPhase::Connect,
                true,
            ),
            (
                ureq::Error::Timeout(Timeout::Connect),
                TransportPhase::Connect,
                true,
            ),
            (
                ureq::Error::Timeout(Timeout::SendRequest),
                TransportPhase::Send,
                true,
            ),
            (
                ureq::Error::Timeout(Timeout::SendBody),
                TransportPhase::Send,
                true,
            ),
            (
                ureq::Error::Timeout(Timeout::RecvResponse),
                TransportPhase::AwaitingResponse,
                true,
            ),
            (
                ureq::Error::Timeout(Timeout::Global),
                TransportPhase::AwaitingResponse,
                true,
            ),
            (
                ureq::Error::Timeout(Timeout::RecvBody),
                TransportPhase::ReadingBody,
                true,
            ),
            (
                ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()),
                TransportPhase::Connect,
                false,
            ),
            (
                ureq::Error::Io(io::ErrorKind::ConnectionReset.into()),
                TransportPhase::Send,
                false,
            ),
            (
                ureq::Error::Io(io::ErrorKind::HostUnreachable.into()),
                TransportPhase::Send,
                false,
            ),
            (ureq::Error::Tls("handshake"), TransportPhase::Send, false),
        ];
        for (error, phase, timed_out) in cases {
            let label = format!("{error:?}");
            let (got, got_timed_out, _) = request_error(error);
            assert_eq!((got, got_timed_out), (phase, timed_out), "{label}");
        }
    }

    #[test]
    fn body_failures_are_reading_body() {
        let (phase, timed_out, _) = body_error(&io::ErrorKind::UnexpectedEof.into());
        assert_eq!((phase, timed_out), (TransportPhase::ReadingBody, false));
        let timeout = ureq::Error::Timeout(ureq::Timeout::RecvBody).into_io();
        assert!(body_error(&timeout).1);
    }
}
