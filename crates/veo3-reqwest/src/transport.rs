//! The one thing this crate adds to the core for API calls: moving a request's bytes over
//! reqwest, and reporting honestly how far an exchange got when it fails.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT,
};
use tokio::io::AsyncReadExt;
use veo3_core::{
    ApiKey, HttpRequest, HttpResponse, Multipart, RequestLimit, Sleeper, Transport, TransportError,
    TransportPhase,
};
use veo3_types::{BaseUrl, Endpoint, HttpMethod};

/// The redirect policy of the client this crate builds: a redirect answering an API request
/// (any URL under `base_url`) is returned as the answer, for the core to decide on (a billable
/// request is never re-sent; a read-only one is followed on the API's host only); anything
/// else (result files, which never carry the key) follows up to 5 hops.
pub(crate) fn redirect_policy(base_url: &str) -> reqwest::redirect::Policy {
    let api = format!("{}/", base_url.trim_end_matches('/'));
    reqwest::redirect::Policy::custom(move |attempt| {
        let from_api = attempt
            .previous()
            .first()
            .is_some_and(|first| first.as_str().starts_with(&api));
        if from_api {
            attempt.stop()
        } else if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else {
            attempt.follow()
        }
    })
}

/// The base URL `endpoint` goes to, as veo3-types maps it: the upload host's or the API's.
fn base_for<'a>(
    endpoint: Endpoint,
    api: &'a reqwest::Url,
    upload: &'a reqwest::Url,
) -> &'a reqwest::Url {
    match endpoint.base_url() {
        BaseUrl::Upload => upload,
        _ => api,
    }
}

/// `base` with `path` after the base's own path (its prefix, if any).
fn with_path(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    if prefix.is_empty() {
        url.set_path(path);
    } else {
        url.set_path(&format!("{prefix}{path}"));
    }
    url
}

/// How much of an uploaded file is read at a time: the only part of it in memory.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// [`Transport`] over a `reqwest::Client`, to one API base URL (and one upload base URL for
/// the upload endpoints), with one key.
///
/// The key is added to each API request (never as a default header of the reqwest client, so
/// downloads and anything else sent through the same client never carry it) and marked
/// sensitive, so HTTP/2 never indexes it and reqwest's own `Debug` output hides it. The
/// client this crate builds never follows an API request's redirect itself
/// ([`redirect_policy`]): the answer goes back to the core, which decides.
pub(crate) struct ReqwestTransport {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: String,
    /// `base_url` parsed once: each request only swaps in its path and query.
    base: reqwest::Url,
    /// Where the upload endpoints go ([`BaseUrl::Upload`]).
    pub(crate) upload_base_url: String,
    upload_base: reqwest::Url,
    /// The URL of every endpoint, its path set once: a call clones it and sets its query.
    endpoints: Vec<(Endpoint, reqwest::Url)>,
    authorization: HeaderValue,
    user_agent: Option<HeaderValue>,
    max_body_bytes: usize,
    /// The client's cap on exchanges in flight, shared with its downloads.
    pub(crate) limit: RequestLimit,
}

impl ReqwestTransport {
    pub(crate) fn new(
        http: reqwest::Client,
        base_url: String,
        upload_base_url: String,
        key: &ApiKey,
        user_agent: Option<HeaderValue>,
        max_body_bytes: usize,
        limit: RequestLimit,
    ) -> Result<Self, veo3_core::Error> {
        // `ApiKey` has already refused whitespace, control and non-ASCII characters, so this
        // cannot fail for a valid key; the error names the problem, never the value.
        let mut authorization = HeaderValue::from_str(&key.authorization()).map_err(|_| {
            veo3_core::Error::invalid_input("the API key cannot be sent in an HTTP header")
        })?;
        authorization.set_sensitive(true);
        let base = reqwest::Url::parse(&base_url)
            .map_err(|_| veo3_core::Error::invalid_input("the base URL is not a valid URL"))?;
        let upload_base = reqwest::Url::parse(&upload_base_url).map_err(|_| {
            veo3_core::Error::invalid_input("the upload base URL is not a valid URL")
        })?;
        let endpoints = Endpoint::ALL
            .into_iter()
            .chain(Endpoint::UPLOADS)
            .map(|endpoint| {
                let base = base_for(endpoint, &base, &upload_base);
                (endpoint, with_path(base, endpoint.path()))
            })
            .collect();
        Ok(Self {
            http,
            endpoints,
            base,
            base_url,
            upload_base,
            upload_base_url,
            authorization,
            user_agent,
            max_body_bytes,
            limit,
        })
    }

    /// The request's URL: the parsed base with the request's path (after any prefix of the
    /// base) and query, without parsing the whole URL again for every call.
    fn url(&self, request: &HttpRequest) -> reqwest::Url {
        let (path, query) = request
            .path_and_query
            .split_once('?')
            .map_or((request.path_and_query.as_str(), None), |(path, query)| {
                (path, Some(query))
            });
        let known = self
            .endpoints
            .iter()
            .find(|(endpoint, _)| *endpoint == request.endpoint && endpoint.path() == path);
        let mut url = match known {
            Some((_, url)) => url.clone(),
            None => with_path(
                base_for(request.endpoint, &self.base, &self.upload_base),
                path,
            ),
        };
        url.set_query(query);
        url
    }

    async fn exchange(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut builder = match request.method {
            HttpMethod::Post => self.http.post(self.url(request)),
            _ => self.http.get(self.url(request)),
        };
        builder = builder.header(AUTHORIZATION, self.authorization.clone());
        if let Some(agent) = &self.user_agent {
            builder = builder.header(USER_AGENT, agent.clone());
        }
        for (name, value) in request.headers() {
            builder = builder.header(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        if let Some(multipart) = &request.multipart {
            builder = builder
                .header(CONTENT_TYPE, multipart.content_type())
                .header(CONTENT_LENGTH, multipart.content_length())
                .body(stream_body(multipart).await?);
        }
        let mut response = builder.send().await.map_err(|error| {
            let phase = if error.is_connect() {
                TransportPhase::Connect
            } else {
                // Written, partly written or not at all: reqwest cannot tell, so assume the
                // server may have it. Reporting `Connect` here could bill a generation twice.
                TransportPhase::AwaitingResponse
            };
            TransportError::new(phase, error.is_timeout(), describe(&error))
        })?;
        let status = response.status().as_u16();
        let headers = HttpResponse::READ_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), value.to_owned()))
            })
            .collect();
        // API answers are small; bound what a misbehaving server or proxy can make us hold.
        // Past the limit the core decides what the answer means (`HttpResponse::oversized`).
        let mut body = Vec::with_capacity(
            response
                .content_length()
                .map_or(1024, |n| n.min(self.max_body_bytes as u64) as usize),
        );
        while let Some(chunk) = response.chunk().await.map_err(|error| {
            TransportError::new(
                TransportPhase::ReadingBody,
                error.is_timeout(),
                describe(&error),
            )
        })? {
            let room = self.max_body_bytes - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                tracing::warn!(
                    limit = self.max_body_bytes,
                    endpoint = request.endpoint.name(),
                    "API answer larger than the limit"
                );
                let mut answer = HttpResponse::oversized(status, self.max_body_bytes, body);
                answer.headers = headers;
                return Ok(answer);
            }
            body.extend_from_slice(&chunk);
        }
        let mut answer = HttpResponse::new(status, body);
        answer.headers = headers;
        Ok(answer)
    }
}

#[async_trait]
impl Transport for ReqwestTransport {
    async fn send(
        &self,
        request: &HttpRequest,
        timeout: Option<Duration>,
    ) -> Result<HttpResponse, TransportError> {
        // The wait for a slot is not part of the attempt: a request still queued here has not
        // been sent, so its time limit only starts once it may go.
        let permit = self.limit.acquire().await;
        let exchange = self.exchange(request);
        let result = match timeout {
            None => exchange.await,
            Some(limit) => match tokio::time::timeout(limit, exchange).await {
                Ok(result) => result,
                // The attempt's time ran out somewhere between connecting and the last body
                // byte; without knowing where, the honest answer is the later phase.
                Err(_) => Err(TransportError::new(
                    TransportPhase::AwaitingResponse,
                    true,
                    format!("no complete answer within {limit:?}"),
                )),
            },
        };
        drop(permit);
        result
    }
}

/// A multipart body streamed from disk: the head, the file read [`UPLOAD_CHUNK`] bytes at a
/// time (exactly `file_len` of them, each reported to the body's progress as the connection
/// takes it), the tail. The file is opened here, once per attempt, so a retry re-reads it
/// from the start and nothing is buffered between attempts.
async fn stream_body(multipart: &Multipart) -> Result<reqwest::Body, TransportError> {
    let file = tokio::fs::File::open(multipart.path())
        .await
        .map_err(|error| {
            // Nothing was sent yet: the retry rules may try again.
            TransportError::connect(false, format!("cannot open the file to upload: {error}"))
        })?;
    let head = multipart.head().to_vec();
    let tail = multipart.tail().to_vec();
    let expected = multipart.file_len();
    let progress = multipart.progress().clone();
    progress.start();
    let file_chunks = futures_util::stream::try_unfold((file, 0u64), move |(mut file, sent)| {
        let progress = progress.clone();
        async move {
            if sent == expected {
                return Ok(None);
            }
            let want = (expected - sent).min(UPLOAD_CHUNK as u64) as usize;
            let mut chunk = vec![0u8; want];
            let read = file.read(&mut chunk).await?;
            if read == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file got shorter while it was being uploaded",
                ));
            }
            chunk.truncate(read);
            progress.sent(read as u64);
            Ok(Some((chunk, (file, sent + read as u64))))
        }
    });
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) })
        .chain(file_chunks)
        .chain(futures_util::stream::once(async move { Ok(tail) }));
    Ok(reqwest::Body::wrap_stream(stream))
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransport")
            .field("base_url", &self.base_url)
            .field("upload_base_url", &self.upload_base_url)
            .field("authorization", &"Bearer ***")
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// A reqwest error's description and causes, without its URL (download links carry tokens in
/// their query; API URLs are harmless but kept out for uniformity).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source = error.source();
    let kind = if error.is_connect() {
        "connect error"
    } else if error.is_timeout() {
        "timeout"
    } else if error.is_body() || error.is_decode() {
        "body error"
    } else if error.is_redirect() {
        "redirect error"
    } else {
        "request error"
    };
    text.push_str(kind);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// [`Sleeper`] over tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veo3_types::Endpoint;

    fn transport(base: &str) -> ReqwestTransport {
        let key = ApiKey::new("sk-test").expect("a valid key");
        ReqwestTransport::new(
            reqwest::Client::new(),
            base.to_owned(),
            base.to_owned(),
            &key,
            None,
            1024,
            RequestLimit::new(1),
        )
        .expect("a valid transport")
    }

    #[test]
    fn request_urls_keep_the_base_prefix_and_the_encoded_query() {
        let request = HttpRequest::new(
            Endpoint::RecordInfo,
            "/api/v1/veo/record-info?taskId=a%20b%26c",
            None,
        );
        for base in ["http://127.0.0.1:9", "http://127.0.0.1:9/prefix"] {
            let url = transport(base).url(&request);
            assert_eq!(url.as_str(), request.url(base), "{base}");
        }
    }
}
