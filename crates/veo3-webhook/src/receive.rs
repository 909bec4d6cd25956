//! One request, from bytes to the application: read (bounded), verify, deduplicate, hand on,
//! answer.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use veo3_core::webhook::{Inbox, VerifiedCallback};

use crate::verify::{ACK_BODY, RejectReason, SIGNATURE_HEADER, TIMESTAMP_HEADER, Verifier};
use crate::{Config, Deduplicator, Handler, Stats, UnixClock};

/// Everything a request needs, shared by all requests of one receiver.
pub(crate) struct Shared {
    verifier: Verifier,
    inbox: Inbox,
    seen: Mutex<Deduplicator>,
    handler: Option<Handler>,
    clock: UnixClock,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            verifier: config.verifier,
            inbox: config.inbox,
            seen: Mutex::new(Deduplicator::new(config.dedup_capacity)),
            handler: config.handler,
            clock: config.clock,
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            delivered: self.delivered.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    fn reject(&self, reason: &RejectReason) -> Response {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let status = StatusCode::from_u16(reason.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        // Reasons name the problem, never header values or body content, so they are safe to
        // log and to send back (kie does not read the body; a developer testing by hand does).
        tracing::warn!(status = status.as_u16(), %reason, "callback rejected");
        json_response(
            status,
            serde_json::json!({"code": status.as_u16(), "msg": reason.to_string()}).to_string(),
        )
    }

    /// Hands a verified callback on once; the answer for kie.
    fn accept(&self, verified: VerifiedCallback) -> Response {
        let first_time = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first_time(&verified);
        if !first_time {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(task_id = %verified.task_id, "duplicate callback dropped");
            return ack();
        }
        tracing::debug!(task_id = %verified.task_id, "callback accepted");
        self.inbox.deliver(verified.clone());
        if let Some(handler) = &self.handler {
            // The handler is the application's code: if it panics, the event was not handed
            // on, so forget it and answer 500 to make kie deliver it again.
            let handed = verified.clone();
            if catch_unwind(AssertUnwindSafe(|| handler(handed))).is_err() {
                self.seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .forget(&verified);
                tracing::error!(task_id = %verified.task_id, "callback handler panicked");
                return json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"code":500,"msg":"callback handler failed"}"#.to_owned(),
                );
            }
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        ack()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("verifier", &self.verifier)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The axum handler.
pub(crate) async fn receive(shared: Arc<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let limit = shared.verifier.body_limit();
    let bytes = match read_bounded(&parts.headers, body, limit).await {
        Ok(bytes) => bytes,
        Err(Unread::TooLarge { size }) => {
            return shared.reject(&RejectReason::BodyTooLarge { size, limit });
        }
        Err(Unread::Broken) => {
            return shared.reject(&RejectReason::UndecodableBody {
                detail: "the body could not be read".into(),
            });
        }
    };
    let timestamp = header_text(&parts.headers, TIMESTAMP_HEADER);
    let signature = header_text(&parts.headers, SIGNATURE_HEADER);
    let now = (shared.clock)();
    match shared
        .verifier
        .verify(timestamp.as_deref(), signature.as_deref(), &bytes, now)
    {
        Ok(verified) => shared.accept(verified),
        Err(reason) => shared.reject(&reason),
    }
}

enum Unread {
    TooLarge { size: usize },
    Broken,
}

/// Reads the body, stopping as soon as it is known to exceed `limit`: from `Content-Length`
/// before reading anything, or from the bytes read so far for chunked bodies.
async fn read_bounded(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Unread> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if let Some(declared) = declared {
        if declared > limit as u64 {
            return Err(Unread::TooLarge {
                size: usize::try_from(declared).unwrap_or(usize::MAX),
            });
        }
    }
    let capacity = declared.map_or(0, |declared| declared as usize);
    let mut bytes = Vec::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Unread::Broken)?;
        if bytes.len() + chunk.len() > limit {
            return Err(Unread::TooLarge {
                size: bytes.len() + chunk.len(),
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A header's value as text: absent stays `None`; bytes that are not UTF-8 are kept lossily so
/// they fail verification as malformed or forged rather than pass as "missing".
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

fn ack() -> Response {
    json_response(StatusCode::OK, ACK_BODY.to_owned())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
