//! The file-upload API (`/api/file-stream-upload`, `/api/file-url-upload`,
//! `/api/file-base64-upload`), served on a listener of its own like kie's separate upload host;
//! the uploaded bytes are served back by the file host.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::api::bearer;
use crate::config::iso8601;
use crate::state::{Asset, Shared};

/// Uploaded files stay for 24 hours of service time (the shorter of the documented figures).
const RETENTION_MS: i64 = 24 * 3600 * 1000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/file-stream-upload", post(stream_upload))
        .route("/api/file-url-upload", post(url_upload))
        .route("/api/file-base64-upload", post(base64_upload))
        .fallback(
            |State(sh): State<Arc<Shared>>| async move { answer(&sh, 404, "Not Found", None) },
        )
        .method_not_allowed_fallback(|State(sh): State<Arc<Shared>>| async move {
            answer(&sh, 405, "Method Not Allowed", None)
        })
        // kie documents no size limit for stream uploads; this only bounds what the emulator
        // holds in memory (`cargo xtask bench upload` sends 200 MiB).
        .layer(DefaultBodyLimit::max(512 << 20))
}

/// The upload API's envelope, which adds a `success` flag.
fn answer(sh: &Shared, code: i64, msg: &str, data: Option<Value>) -> Response {
    let status = if sh.cfg.mirror_http_status {
        StatusCode::from_u16(u16::try_from(code).unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    } else {
        StatusCode::OK
    };
    let mut body = json!({"success": code == 200, "code": code, "msg": msg});
    if let Some(data) = data {
        body["data"] = data;
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn authorized(sh: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    match bearer(headers) {
        Some(key) if sh.key_ok(key) => Ok(()),
        _ => Err(Box::new(answer(
            sh,
            401,
            "Authentication failed: Invalid API Key",
            None,
        ))),
    }
}

fn mime_for(name: &str) -> &'static str {
    let ext = name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

fn extension_for(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        _ => "bin",
    }
}

/// A file name safe in a URL path segment.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Checks `uploadPath` and stores the bytes; answers the documented success body.
fn store(
    sh: &Shared,
    upload_path: Option<&str>,
    file_name: Option<&str>,
    bytes: Bytes,
    mime: Option<String>,
) -> Response {
    let Some(upload_path) = upload_path.filter(|p| !p.trim().is_empty()) else {
        return answer(sh, 400, "Missing required parameter: uploadPath", None);
    };
    if upload_path.starts_with('/') || upload_path.ends_with('/') {
        return answer(
            sh,
            400,
            "uploadPath must not start or end with a slash",
            None,
        );
    }
    let now = sh.now();
    let mut st = sh.lock();
    let mime = mime
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| mime_for(file_name.unwrap_or_default()).to_owned());
    let name = match file_name.filter(|n| !n.is_empty()) {
        Some(name) => sanitize(name),
        None => format!("{}.{}", &sh.new_id(&mut st)[..16], extension_for(&mime)),
    };
    let size = bytes.len();
    let url = sh.mint_url(
        &mut st,
        Asset::Upload {
            bytes,
            mime: mime.clone(),
        },
        &name,
        now + RETENTION_MS,
    );
    drop(st);
    let data = json!({
        "fileName": name,
        "filePath": format!("{upload_path}/{name}"),
        "downloadUrl": url,
        "fileSize": size,
        "mimeType": mime,
        "uploadedAt": iso8601(now).replace('Z', ".000Z"),
    });
    answer(sh, 200, "File uploaded successfully", Some(data))
}

fn json_object(body: &Bytes) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

async fn base64_upload(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(resp) = authorized(&sh, &headers) {
        return *resp;
    }
    let Some(body) = json_object(&body) else {
        return answer(&sh, 400, "The request body must be a JSON object", None);
    };
    let Some(data) = body.get("base64Data").and_then(Value::as_str) else {
        return answer(&sh, 400, "Missing required parameter: base64Data", None);
    };
    // Either raw base64 or a data URL: data:<mime>;base64,<payload>.
    let (mime, payload) = match data.strip_prefix("data:").and_then(|r| r.split_once(',')) {
        Some((meta, payload)) => (meta.strip_suffix(";base64").map(str::to_owned), payload),
        None => (None, data),
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(payload.trim()) else {
        return answer(&sh, 400, "base64Data is not valid base64", None);
    };
    let upload_path = body.get("uploadPath").and_then(Value::as_str);
    let file_name = body.get("fileName").and_then(Value::as_str);
    store(&sh, upload_path, file_name, Bytes::from(bytes), mime)
}

async fn url_upload(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(resp) = authorized(&sh, &headers) {
        return *resp;
    }
    let Some(body) = json_object(&body) else {
        return answer(&sh, 400, "The request body must be a JSON object", None);
    };
    let Some(file_url) = body.get("fileUrl").and_then(Value::as_str) else {
        return answer(&sh, 400, "Missing required parameter: fileUrl", None);
    };
    let upload_path = body.get("uploadPath").and_then(Value::as_str);
    if upload_path.is_none() {
        return answer(&sh, 400, "Missing required parameter: uploadPath", None);
    }
    // The service downloads the file itself, with a 30-second limit.
    let fetched = sh
        .http
        .get(file_url)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await;
    let response = match fetched {
        Ok(r) if r.status().is_success() => r,
        _ => return answer(&sh, 400, "Failed to download the file from fileUrl", None),
    };
    let mime = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
    let Ok(bytes) = response.bytes().await else {
        return answer(&sh, 400, "Failed to download the file from fileUrl", None);
    };
    let file_name = body
        .get("fileName")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            let last = file_url.split(['?', '#']).next()?.rsplit('/').next()?;
            (!last.is_empty()).then(|| last.to_owned())
        });
    store(&sh, upload_path, file_name.as_deref(), bytes, mime)
}

/// One part of a `multipart/form-data` body.
struct Part {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

/// A small `multipart/form-data` parser: enough for the upload API's three fields.
fn multipart(content_type: &str, body: &Bytes) -> Option<Vec<Part>> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let find = |from: usize| {
        body.get(from..)?
            .windows(delimiter.len())
            .position(|w| w == delimiter)
            .map(|p| p + from)
    };
    let mut parts = Vec::new();
    let mut pos = find(0)? + delimiter.len();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            break;
        }
        let start = pos + 2; // past CRLF
        let next = find(start)?;
        let section = body.slice(start..next.saturating_sub(2).max(start));
        let split = section.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&section[..split]).into_owned();
        let mut part = Part {
            name: String::new(),
            file_name: None,
            content_type: None,
            body: section.slice(split + 4..),
        };
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(value.trim().to_owned());
            } else if key.trim().eq_ignore_ascii_case("content-disposition") {
                for param in value.split(';').map(str::trim) {
                    if let Some(v) = param.strip_prefix("name=") {
                        part.name = v.trim_matches('"').to_owned();
                    } else if let Some(v) = param.strip_prefix("filename=") {
                        part.file_name = Some(v.trim_matches('"').to_owned());
                    }
                }
            }
        }
        parts.push(part);
        pos = next + delimiter.len();
    }
    Some(parts)
}

async fn stream_upload(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(resp) = authorized(&sh, &headers) {
        return *resp;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(parts) = multipart(content_type, &body) else {
        return answer(
            &sh,
            400,
            "The request body must be multipart/form-data",
            None,
        );
    };
    let text = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.body).into_owned())
    };
    let Some(file) = parts.iter().find(|p| p.name == "file") else {
        return answer(&sh, 400, "Missing required parameter: file", None);
    };
    let upload_path = text("uploadPath");
    let file_name = text("fileName").or_else(|| file.file_name.clone());
    store(
        &sh,
        upload_path.as_deref(),
        file_name.as_deref(),
        file.body.clone(),
        file.content_type.clone(),
    )
}
