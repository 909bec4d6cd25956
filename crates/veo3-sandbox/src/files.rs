//! The file host: result media at expiring, per-task URLs, and deterministic bodies of any size.
//!
//! It stands for kie's media CDN, so it never asks for the API key, and it notes every request
//! that carries an `Authorization` header anyway: a client must never send its key here.

use std::io;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{StreamExt as _, stream};

use crate::faults::{Fault, Route, mix};
use crate::server::{ConnKill, http_error};
use crate::state::{Asset, Shared};

static MP4_720P: &[u8] = include_bytes!("../assets/sample-720p.mp4");
static MP4_1080P: &[u8] = include_bytes!("../assets/sample-1080p.mp4");
static MP4_4K: &[u8] = include_bytes!("../assets/sample-4k.mp4");
static JPG_4K: &[u8] = include_bytes!("../assets/thumb-4k.jpg");

/// Period of the `/big` pattern: a prime, so consecutive chunks differ.
const PERIOD: usize = 65_521;

/// The byte at `offset` of every `/big/<bytes>` body, so a test can check what it downloaded.
///
/// ```
/// let byte = veo3_sandbox::big_file_byte(12_345);
/// assert_eq!(byte, veo3_sandbox::big_file_byte(12_345 + 65_521));
/// ```
pub fn big_file_byte(offset: u64) -> u8 {
    pattern()[(offset % PERIOD as u64) as usize]
}

fn pattern() -> &'static Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let one: Vec<u8> = (0..PERIOD)
            .map(|i| (mix(i as u64 / 8) >> ((i % 8) * 8)) as u8)
            .collect();
        let mut two = one.clone();
        two.extend_from_slice(&one);
        Bytes::from(two)
    })
}

/// Asks the handler to break the body half-way: cut it, or pause there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Break {
    Cut,
    Stall(std::time::Duration),
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/r/{token}/{name}", get(result_file))
        .route("/big/{bytes}", get(big_file))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found\n") })
}

/// Counts the request, notes an `Authorization` header, and applies the fault drawn for it.
pub(crate) async fn front_door(
    State(sh): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) {
        let path = req.uri().path().to_owned();
        sh.lock().stats.file_auth_headers.push(path);
    }
    sh.lock().stats.file_requests += 1;
    let drawn = sh.admit(Route::Download);
    if !drawn.latency.is_zero() {
        tokio::time::sleep(drawn.latency).await;
    }
    match drawn.fault {
        None | Some(Fault::Latency(_) | Fault::RecordNullEarly(_)) => next.run(req).await,
        Some(Fault::Cut | Fault::Malformed) => {
            req.extensions_mut().insert(Break::Cut);
            next.run(req).await
        }
        Some(Fault::Stall(pause)) => {
            req.extensions_mut().insert(Break::Stall(pause));
            next.run(req).await
        }
        Some(Fault::Drop | Fault::Lost) => match req.extensions().get::<ConnKill>().cloned() {
            Some(kill) => kill.close().await,
            None => StatusCode::BAD_GATEWAY.into_response(),
        },
        Some(Fault::Http(status)) => http_error(status),
        Some(Fault::Redirect { status, to }) => {
            crate::server::redirect(&req, status, to.as_deref())
        }
        Some(Fault::Envelope(code)) => http_error(u16::try_from(code).unwrap_or(500)),
        Some(Fault::RateLimited(secs)) => {
            let mut resp = http_error(429);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
    }
}

fn etag_of(bytes: &[u8]) -> String {
    // FNV-1a: a stable content hash, enough for an ETag.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}-{}\"", bytes.len())
}

async fn result_file(
    State(sh): State<Arc<Shared>>,
    Path((token, name)): Path<(String, String)>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let cut = req.extensions().get::<Break>().copied();
    let now = sh.now();
    let entry = sh.lock().files.get(&token).cloned();
    let Some(entry) = entry.filter(|e| e.name == name) else {
        return (StatusCode::NOT_FOUND, "Not Found\n").into_response();
    };
    if entry.expires_ms <= now {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>\n";
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/xml")],
            body,
        )
            .into_response();
    }
    let (bytes, mime) = match entry.asset {
        Asset::Video720 => (Bytes::from_static(MP4_720P), "video/mp4".to_owned()),
        Asset::Video1080 => (Bytes::from_static(MP4_1080P), "video/mp4".to_owned()),
        Asset::Video4k => (Bytes::from_static(MP4_4K), "video/mp4".to_owned()),
        Asset::Thumb4k => (Bytes::from_static(JPG_4K), "image/jpeg".to_owned()),
        Asset::Big(len) => return serve_big(&sh, &headers, len, cut),
        Asset::Upload { bytes, mime } => (bytes, mime),
    };
    let etag = etag_of(&bytes);
    let len = bytes.len() as u64;
    serve(&sh, &headers, &etag, &mime, len, cut, move |start, end| {
        Source::Static(bytes.slice(start as usize..end as usize))
    })
}

async fn big_file(
    State(sh): State<Arc<Shared>>,
    Path(bytes): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let cut = req.extensions().get::<Break>().copied();
    let Ok(len) = bytes.parse::<u64>() else {
        return (StatusCode::NOT_FOUND, "Not Found\n").into_response();
    };
    serve_big(&sh, &headers, len, cut)
}

fn serve_big(sh: &Arc<Shared>, headers: &HeaderMap, len: u64, cut: Option<Break>) -> Response {
    let etag = format!("\"big-{len}\"");
    serve(
        sh,
        headers,
        &etag,
        "application/octet-stream",
        len,
        cut,
        |start, _| Source::Big { start },
    )
}

enum Source {
    Static(Bytes),
    Big { start: u64 },
}

/// The `[start, end)` span a `Range` header asks for; `Err` when unsatisfiable.
fn range(headers: &HeaderMap, etag: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    // If-Range with another validator asks for the whole, fresh representation.
    if let Some(if_range) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        if if_range != etag {
            return Ok(None);
        }
    }
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Multiple ranges: serving the whole body is allowed and keeps the host simple.
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let span = if first.is_empty() {
        let suffix: u64 = last.parse().map_err(|_| ())?;
        if suffix == 0 {
            return Err(());
        }
        (len.saturating_sub(suffix), len)
    } else {
        let start: u64 = first.parse().map_err(|_| ())?;
        let end = if last.is_empty() {
            len
        } else {
            let last: u64 = last.parse().map_err(|_| ())?;
            if last < start {
                return Err(());
            }
            last.saturating_add(1).min(len)
        };
        if start >= len {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(span))
}

fn serve(
    sh: &Arc<Shared>,
    headers: &HeaderMap,
    etag: &str,
    mime: &str,
    len: u64,
    cut: Option<Break>,
    source: impl FnOnce(u64, u64) -> Source,
) -> Response {
    let etag_value = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"x\""));
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        resp.headers_mut().insert(header::ETAG, etag_value);
        return resp;
    }
    let (status, start, end) = match range(headers, etag, len) {
        Ok(None) => (StatusCode::OK, 0, len),
        Ok(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
        Err(()) => {
            let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return resp;
        }
    };
    let cut_at = if cut.is_some() {
        start + (end - start) / 2
    } else {
        end
    };
    let body = match (source(start, end), cut) {
        (Source::Static(bytes), None) => {
            sh.lock().stats.file_bytes_served += bytes.len() as u64;
            Body::from(bytes)
        }
        (Source::Static(bytes), Some(Break::Cut)) => {
            let half = bytes.slice(..(cut_at - start) as usize);
            sh.lock().stats.file_bytes_served += half.len() as u64;
            Body::from_stream(stream::iter([Ok(half)]).chain(stream::once(cut_error())))
        }
        (Source::Static(bytes), Some(Break::Stall(pause))) => {
            let half = bytes.slice(..(cut_at - start) as usize);
            let rest = bytes.slice((cut_at - start) as usize..);
            sh.lock().stats.file_bytes_served += half.len() as u64;
            let sh = sh.clone();
            let rest = stream::once(async move {
                tokio::time::sleep(pause).await;
                sh.lock().stats.file_bytes_served += rest.len() as u64;
                Ok::<_, io::Error>(rest)
            });
            Body::from_stream(stream::iter([Ok(half)]).chain(rest))
        }
        (Source::Big { start, .. }, cut) => big_stream(sh.clone(), start, end, cut_at, cut),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, etag_value);
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// The error that cuts a body; it first pauses so the bytes before it reach the client (hyper
/// flushes while the body is pending) instead of being discarded with the connection.
async fn cut_error() -> Result<Bytes, io::Error> {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    Err(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "download cut",
    ))
}

/// Streams `[start, end)` of the pattern in zero-copy chunks; at `cut_at`, if before `end`,
/// errors (a cut) or pauses once (a stall).
fn big_stream(sh: Arc<Shared>, start: u64, end: u64, cut_at: u64, cut: Option<Break>) -> Body {
    let pattern = pattern().clone();
    let chunks = stream::unfold((start, cut), move |(pos, cut)| {
        let pattern = pattern.clone();
        let sh = sh.clone();
        async move {
            if pos >= end {
                return None;
            }
            let mut limit = end;
            if pos >= cut_at {
                match cut {
                    Some(Break::Cut) => return Some((cut_error().await, (end, cut))),
                    Some(Break::Stall(pause)) => tokio::time::sleep(pause).await,
                    None => {}
                }
            } else {
                limit = cut_at;
            }
            let cut = if pos >= cut_at { None } else { cut };
            let offset = (pos % PERIOD as u64) as usize;
            let n = (limit - pos).min(PERIOD as u64) as usize;
            sh.lock().stats.file_bytes_served += n as u64;
            Some((Ok(pattern.slice(offset..offset + n)), (pos + n as u64, cut)))
        }
    });
    Body::from_stream(chunks)
}
