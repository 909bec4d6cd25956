//! The Veo3 API routes: validation, auth, credits, rate limit and the task state machine.
//!
//! Every answer is the `{code, msg, data}` envelope in HTTP 200, as the real service does, unless
//! the sandbox mirrors codes into the HTTP status.

// Handlers short-circuit with ready-made responses as `Err`; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use veo3_types::Endpoint;

use crate::config::ms;
use crate::faults::{Outcome, Route};
use crate::state::Sent;
use crate::state::{Asset, Kind, NewTask, Shared, State as World};

/// The outcome the fault plan drew for this request, put in its extensions by the front door.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DrawnOutcome(pub(crate) Option<Outcome>);

pub(crate) fn routes() -> Router<Arc<Shared>> {
    // The paths (and methods) are the protocol's, defined once in veo3-types.
    Router::new()
        .route(Endpoint::Generate.path(), post(generate))
        .route(Endpoint::RecordInfo.path(), get(record_info))
        .route(Endpoint::Hd1080p.path(), get(hd_1080p))
        .route(Endpoint::Upgrade4k.path(), post(upgrade_4k))
        .route(Endpoint::Extend.path(), post(extend))
        .route(Endpoint::Credits.path(), get(credits))
        .route(Endpoint::DownloadUrl.path(), post(download_url))
}

/// The documented `msg` of a bare error envelope.
pub(crate) fn standard_message(code: i64) -> &'static str {
    match code {
        200 => "success",
        400 => "Bad Request",
        401 => "You do not have access permissions",
        402 => {
            "Insufficient Credits - Account does not have enough credits to perform the operation"
        }
        404 => "Not Found - The requested resource or endpoint does not exist",
        405 => "Method Not Allowed - The request method is not supported for this resource",
        408 => {
            "Upstream is currently experiencing service issues. No result has been returned for over 10 minutes."
        }
        422 => "Validation Error - The request parameters failed validation checks",
        429 => "Rate Limited - Request limit has been exceeded for this resource",
        451 => {
            "Failed to fetch the image. Kindly verify any access limits set by you or your service provider."
        }
        455 => "Service Unavailable - System is currently undergoing maintenance",
        501 => "Video generation task failed",
        505 => "Feature Disabled - The requested feature is currently disabled",
        _ => "Server Error - An unexpected error occurred while processing the request",
    }
}

/// The envelope, in HTTP 200 or in the mirrored status.
pub(crate) fn envelope(sh: &Shared, code: i64, msg: &str, data: Value) -> Response {
    let status = if sh.cfg.mirror_http_status {
        u16::try_from(code)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    } else {
        StatusCode::OK
    };
    let body = json!({"code": code, "msg": msg, "data": data}).to_string();
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    response.extensions_mut().insert(EnvelopeCode(code));
    response
}

/// The envelope code of an answer, for [`count_answers`] (it may travel in an HTTP 200).
#[derive(Clone, Copy, Debug)]
pub(crate) struct EnvelopeCode(pub(crate) i64);

/// Outermost layer of both listeners: counts the answers that say 429, whether the code is in
/// the envelope or the HTTP status, and whoever produced it (rate limiter or fault).
pub(crate) async fn count_answers(
    State(sh): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(req).await;
    let envelope_429 = response
        .extensions()
        .get::<EnvelopeCode>()
        .is_some_and(|c| c.0 == 429);
    if envelope_429 || response.status() == StatusCode::TOO_MANY_REQUESTS {
        sh.lock().stats.answered_429 += 1;
    }
    response
}

/// Admits a new billable task for `key`: refused with 402 when the balance is short, 429 when
/// the key's rate window is full (dropped, not queued); otherwise debits `cost`.
fn admit(sh: &Shared, st: &mut World, key: &str, cost: i64, now: i64) -> Result<(), Response> {
    if Shared::balance(st, &sh.cfg, key) < cost {
        return Err(error(sh, 402));
    }
    if !sh.rate_ok(st, key, now) {
        return Err(error(sh, 429));
    }
    Shared::debit(st, &sh.cfg, key, cost);
    Ok(())
}

fn error(sh: &Shared, code: i64) -> Response {
    envelope(sh, code, standard_message(code), Value::Null)
}

fn invalid(sh: &Shared, detail: &str) -> Response {
    envelope(
        sh,
        422,
        &format!("Validation Error - {detail}"),
        Value::Null,
    )
}

/// The bearer key of a request, if well formed.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

fn auth(sh: &Shared, headers: &HeaderMap) -> Result<String, Response> {
    match bearer(headers) {
        Some(key) if sh.key_ok(key) => Ok(key.to_owned()),
        _ => Err(error(sh, 401)),
    }
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, &'static str> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the request body must be a JSON object"),
        Err(_) => Err("the request body is not valid JSON"),
    }
}

/// An optional string field; `Err` names the field when it has another type.
fn opt_str<'a>(body: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{field} must be a string")),
    }
}

fn required_str<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, String> {
    match opt_str(body, field)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(format!("{field} is required")),
    }
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && url.len() > "https://".len()
}

fn opt_callback(body: &Map<String, Value>) -> Result<Option<String>, String> {
    match opt_str(body, "callBackUrl")? {
        None | Some("") => Ok(None),
        Some(url) if is_http_url(url) => Ok(Some(url.to_owned())),
        Some(_) => Err("callBackUrl must be an http(s) URL".into()),
    }
}

fn opt_seeds(body: &Map<String, Value>) -> Result<Option<i64>, String> {
    let value = body.get("seeds").or_else(|| body.get("seed"));
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (10_000..=99_999).contains(&n) => Ok(Some(n)),
            _ => Err("seeds must be an integer between 10000 and 99999".into()),
        },
    }
}

fn opt_bool(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{field} must be a boolean")),
    }
}

/// `index` as an integer or a numeric string, default 0.
fn parse_index(value: Option<&Value>) -> Result<usize, String> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) if s.is_empty() => Ok(0),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| "index must be a non-negative integer".into()),
        Some(v) => v
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| "index must be a non-negative integer".into()),
    }
}

/// A validated generate request.
struct Generate {
    model: String,
    aspect: String,
    resolution: String,
    seeds: Option<i64>,
    call_back_url: Option<String>,
    param_json: String,
    /// `duration` as sent (`None`: the server's default, 8 s).
    duration: Option<i64>,
    /// `enableTranslation` as sent (`None`: absent).
    enable_translation: Option<bool>,
}

fn validate_generate(body: &Map<String, Value>) -> Result<Generate, String> {
    let prompt = required_str(body, "prompt")?;
    let model = opt_str(body, "model")?.unwrap_or("veo3_fast");
    if !["veo3", "veo3_fast", "veo3_lite"].contains(&model) {
        return Err(format!(
            "model must be one of veo3, veo3_fast, veo3_lite (got {model:?})"
        ));
    }
    let images: Vec<&str> = match body.get("imageUrls") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or("imageUrls must be an array of strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("imageUrls must be an array of strings".into()),
    };
    if let Some(bad) = images.iter().find(|u| !is_http_url(u)) {
        return Err(format!(
            "imageUrls must be public http(s) URLs (got {bad:?})"
        ));
    }
    let generation_type = match opt_str(body, "generationType")? {
        Some(t) => t,
        None if images.is_empty() => "TEXT_2_VIDEO",
        None => "FIRST_AND_LAST_FRAMES_2_VIDEO",
    };
    let (min, max) = match generation_type {
        "TEXT_2_VIDEO" => (0, 0),
        "FIRST_AND_LAST_FRAMES_2_VIDEO" => (1, 2),
        "REFERENCE_2_VIDEO" => (1, 3),
        other => {
            return Err(format!(
                "generationType must be one of TEXT_2_VIDEO, FIRST_AND_LAST_FRAMES_2_VIDEO, REFERENCE_2_VIDEO (got {other:?})"
            ));
        }
    };
    if !(min..=max).contains(&images.len()) {
        return Err(format!(
            "{generation_type} takes {min} to {max} imageUrls (got {})",
            images.len()
        ));
    }
    if generation_type == "REFERENCE_2_VIDEO" && model == "veo3" {
        return Err("REFERENCE_2_VIDEO supports only the veo3_fast and veo3_lite models".into());
    }
    // Both spellings are accepted; the current snake_case one wins when both are present.
    let aspect = match opt_str(body, "aspect_ratio")? {
        Some(a) => a,
        None => opt_str(body, "aspectRatio")?.unwrap_or("16:9"),
    };
    if !["16:9", "9:16", "Auto"].contains(&aspect) {
        return Err(format!(
            "aspect_ratio must be one of 16:9, 9:16, Auto (got {aspect:?})"
        ));
    }
    let resolution = opt_str(body, "resolution")?.unwrap_or("720p");
    if !["720p", "1080p", "4k"].contains(&resolution) {
        return Err(format!(
            "resolution must be one of 720p, 1080p, 4k (got {resolution:?})"
        ));
    }
    let duration = match body.get("duration") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_i64() {
            Some(seconds @ (4 | 6 | 8)) => Some(seconds),
            _ => {
                return Err(format!("duration must be one of 4, 6, 8 (got {value})"));
            }
        },
    };
    if generation_type == "REFERENCE_2_VIDEO" && duration.is_some_and(|d| d != 8) {
        return Err(
            "The REFERENCE_2_VIDEO mode currently only supports a duration of 8 seconds".into(),
        );
    }
    let seeds = opt_seeds(body)?;
    let call_back_url = opt_callback(body)?;
    let sent_translation = opt_bool(body, "enableTranslation")?;
    let translation = sent_translation.unwrap_or(true);
    opt_bool(body, "enableFallback")?;
    let watermark = opt_str(body, "watermark")?.unwrap_or("");
    // Auto resolves to whichever native ratio is closer; without looking at images, 16:9.
    let effective_aspect = if aspect == "Auto" { "16:9" } else { aspect };
    let mut param = json!({
        "prompt": prompt,
        "model": model,
        "aspectRatio": aspect,
        "generationType": generation_type,
        "enableTranslation": translation,
        "waterMark": watermark,
        "resolution": resolution,
    });
    if !images.is_empty() {
        param["imageUrls"] = json!(images);
    }
    if let Some(seeds) = seeds {
        param["seeds"] = json!(seeds);
    }
    if let Some(url) = &call_back_url {
        param["callBackUrl"] = json!(url);
    }
    if let Some(seconds) = duration {
        param["duration"] = json!(seconds);
    }
    Ok(Generate {
        model: model.to_owned(),
        aspect: effective_aspect.to_owned(),
        resolution: resolution.to_owned(),
        seeds,
        call_back_url,
        param_json: param.to_string(),
        duration,
        enable_translation: sent_translation,
    })
}

async fn generate(
    State(sh): State<Arc<Shared>>,
    drawn: Option<Extension<DrawnOutcome>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match auth(&sh, &headers) {
        Ok(key) => key,
        Err(resp) => return resp,
    };
    let request = match parse_body(&body)
        .map_err(String::from)
        .and_then(|b| validate_generate(&b))
    {
        Ok(r) => r,
        Err(detail) => return invalid(&sh, &detail),
    };
    let prices = &sh.cfg.prices;
    let table = match request.model.as_str() {
        "veo3" => prices.quality,
        "veo3_lite" => prices.lite,
        _ => prices.fast,
    };
    let clip = match request.resolution.as_str() {
        "1080p" => table[1],
        "4k" => table[2],
        _ => table[0],
    };
    // Prices are per 8 s clip; a shorter one is charged pro rata, rounded up (the
    // assumption veo3-jobs' price table makes too; kie does not document it).
    let cost = prorate(clip, request.duration.unwrap_or(8));
    let d = &sh.cfg.durations;
    let duration = match request.model.as_str() {
        "veo3" => d.generate_quality,
        "veo3_lite" => d.generate_lite,
        _ => d.generate_fast,
    };
    let now = sh.now();
    let mut st = sh.lock();
    if let Err(refusal) = admit(&sh, &mut st, &key, cost, now) {
        return refusal;
    }
    let outcome = Shared::next_outcome(&mut st, Route::Generate, drawn.and_then(|d| d.0.0));
    let id = sh.create_task(
        &mut st,
        NewTask {
            key,
            kind: Kind::Generate,
            param_json: request.param_json,
            duration_ms: ms(duration),
            resolution: request.resolution,
            aspect: request.aspect,
            seeds: request.seeds,
            call_back_url: request.call_back_url,
            cost,
            outcome,
            sent: Sent {
                duration: request.duration,
                enable_translation: request.enable_translation,
            },
        },
        now,
    );
    drop(st);
    envelope(&sh, 200, "success", json!({"taskId": id}))
}

/// The price of a `seconds` clip when an 8 s one costs `clip`: pro rata, rounded up.
fn prorate(clip: i64, seconds: i64) -> i64 {
    (clip.saturating_mul(seconds) + 7) / 8
}

/// Looks up `id` for `key`, settling it; the 422 answers of the record routes otherwise.
fn find(sh: &Arc<Shared>, st: &mut World, key: &str, id: &str, now: i64) -> Result<(), Response> {
    if let Some(job) = sh.settle(st, id, now) {
        crate::callbacks::dispatch(sh, [job]);
    }
    match st.tasks.get(id) {
        Some(task) if task.key == key => {
            if now - task.create_ms > ms(sh.cfg.retention) {
                Err(envelope(
                    sh,
                    422,
                    "Temporarily supports records within 14 days.",
                    Value::Null,
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(envelope(sh, 422, "record is null", Value::Null)),
    }
}

async fn record_info(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = match auth(&sh, &headers) {
        Ok(key) => key,
        Err(resp) => return resp,
    };
    let Some(id) = query.get("taskId").filter(|id| !id.is_empty()) else {
        return invalid(&sh, "taskId is required");
    };
    let now = sh.now();
    let mut st = sh.lock();
    if let Err(resp) = find(&sh, &mut st, &key, id, now) {
        return resp;
    }
    // A task too young to be visible (the `record-null-early` fault) is not there yet.
    if let (Some(window), Some(task)) = (st.faults.record_null_early(), st.tasks.get(id)) {
        if now.saturating_sub(task.create_ms) < ms(window) {
            *st.stats
                .faults_injected
                .entry("record-null-early".into())
                .or_default() += 1;
            drop(st);
            sh.stats_changed.notify_waiters();
            return envelope(&sh, 422, "record is null", Value::Null);
        }
    }
    // The 1080p jobs that are ready show in the record, as the reference says they can be read.
    let ready: Vec<usize> = st.tasks.get(id).map_or_else(Vec::new, |t| {
        t.hd.iter()
            .filter(|(_, job)| job.due_ms <= now)
            .map(|(index, _)| *index)
            .collect()
    });
    for index in ready {
        hd_url(&sh, &mut st, id, index);
    }
    let shape = st.shape;
    let data = st.tasks.get(id).map(|t| crate::render::record(t, shape));
    drop(st);
    envelope(&sh, 200, "success", data.unwrap_or(Value::Null))
}

async fn hd_1080p(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = match auth(&sh, &headers) {
        Ok(key) => key,
        Err(resp) => return resp,
    };
    let Some(id) = query.get("taskId").filter(|id| !id.is_empty()) else {
        return invalid(&sh, "taskId is required");
    };
    let index = match parse_index(
        query
            .get("index")
            .map(|s| Value::String(s.clone()))
            .as_ref(),
    ) {
        Ok(i) => i,
        Err(detail) => return invalid(&sh, &detail),
    };
    let now = sh.now();
    let mut st = sh.lock();
    if let Err(resp) = find(&sh, &mut st, &key, id, now) {
        return resp;
    }
    let Some(task) = st.tasks.get(id) else {
        return envelope(&sh, 422, "record is null", Value::Null);
    };
    if task.flag != 1 || matches!(task.kind, Kind::Upgrade4k { .. }) {
        return envelope(&sh, 422, "record status is not success", Value::Null);
    }
    if task
        .result
        .as_ref()
        .is_none_or(|r| index >= r.result_urls.len())
    {
        return envelope(&sh, 422, "record result data not exist", Value::Null);
    }
    let processing =
        "1080P is processing. It should be ready in 1-2 minutes. Please check back shortly.";
    let job = task.hd.get(&index).map(|j| (j.due_ms, j.url.clone()));
    match job {
        None => {
            if !Shared::debit(&mut st, &sh.cfg, &key, sh.cfg.prices.hd_1080p) {
                return error(&sh, 402);
            }
            let due_ms = now + ms(sh.cfg.durations.hd_1080p);
            let seq = Shared::next_seq(&mut st);
            if let Some(task) = st.tasks.get_mut(id) {
                let job = crate::state::HdJob {
                    due_ms,
                    url: None,
                    create_ms: now,
                    seq,
                };
                task.hd.insert(index, job);
            }
            envelope(&sh, 400, processing, Value::Null)
        }
        Some((due, _)) if due > now => envelope(&sh, 400, processing, Value::Null),
        Some(_) => match hd_url(&sh, &mut st, id, index) {
            Some(url) => envelope(&sh, 200, "success", json!({"resultUrl": url})),
            None => envelope(&sh, 422, "record result data not exist", Value::Null),
        },
    }
}

/// The URL of task `id`'s finished 1080p video at `index`, minted on first use and stable
/// after; `None` when there is no such job.
fn hd_url(sh: &Shared, st: &mut World, id: &str, index: usize) -> Option<String> {
    let job = st.tasks.get(id)?.hd.get(&index)?;
    if let Some(url) = &job.url {
        return Some(url.clone());
    }
    let expires = job.due_ms + ms(sh.cfg.result_url_ttl);
    let name = format!("result_{index}_1080p.mp4");
    let url = sh.mint_url(st, Asset::Video1080, &name, expires);
    let job = st.tasks.get_mut(id)?.hd.get_mut(&index)?;
    job.url = Some(url.clone());
    Some(url)
}

async fn upgrade_4k(
    State(sh): State<Arc<Shared>>,
    drawn: Option<Extension<DrawnOutcome>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match auth(&sh, &headers) {
        Ok(key) => key,
        Err(resp) => return resp,
    };
    let parsed = parse_body(&body).map_err(String::from).and_then(|b| {
        let id = required_str(&b, "taskId")?.to_owned();
        let index = parse_index(b.get("index"))?;
        Ok((id, index, opt_callback(&b)?))
    });
    let (id, index, call_back_url) = match parsed {
        Ok(p) => p,
        Err(detail) => return invalid(&sh, &detail),
    };
    let now = sh.now();
    let mut st = sh.lock();
    if let Err(resp) = find(&sh, &mut st, &key, &id, now) {
        return resp;
    }
    let Some(source) = st.tasks.get(&id) else {
        return envelope(&sh, 422, "record is null", Value::Null);
    };
    if source.flag != 1 || matches!(source.kind, Kind::Upgrade4k { .. }) {
        return envelope(&sh, 422, "record status is not success", Value::Null);
    }
    if source
        .result
        .as_ref()
        .is_none_or(|r| index >= r.result_urls.len())
    {
        return envelope(&sh, 422, "record result data not exist", Value::Null);
    }
    let aspect = source.aspect.clone();
    if let Some(existing) = source.upgrades.get(&index).cloned() {
        if let Some(job) = sh.settle(&mut st, &existing, now) {
            crate::callbacks::dispatch(&sh, [job]);
        }
        if let Some(upgrade) = st.tasks.get(&existing) {
            // Every answer names the source task, as all of the reference's 4K examples do.
            let nulls = json!({"taskId": id, "resultUrls": null, "imageUrls": null});
            match (upgrade.flag, &upgrade.result) {
                (0, _) => {
                    let msg = "4k is processing. It should be ready in 5-10 minutes. Please check back shortly.";
                    return envelope(&sh, 422, msg, nulls);
                }
                (1, Some(result)) => {
                    let data = json!({
                        "taskId": id,
                        "resultUrls": result.result_urls,
                        "imageUrls": result.image_urls,
                    });
                    return envelope(&sh, 422, "The video has been generated successfully", data);
                }
                // A failed 4K job may be requested again: fall through to a new one.
                _ => {}
            }
        }
    }
    if !Shared::debit(&mut st, &sh.cfg, &key, sh.cfg.prices.upgrade_4k) {
        return error(&sh, 402);
    }
    let outcome = Shared::next_outcome(&mut st, Route::Upgrade4k, drawn.and_then(|d| d.0.0));
    let mut param = json!({"taskId": id, "index": index});
    if let Some(url) = &call_back_url {
        param["callBackUrl"] = json!(url);
    }
    let new_id = sh.create_task(
        &mut st,
        NewTask {
            key,
            kind: Kind::Upgrade4k {
                source: id.clone(),
                index,
            },
            param_json: param.to_string(),
            duration_ms: ms(sh.cfg.durations.upgrade_4k),
            resolution: "4k".into(),
            aspect,
            seeds: None,
            call_back_url,
            cost: sh.cfg.prices.upgrade_4k,
            outcome,
            sent: Sent::default(),
        },
        now,
    );
    if let Some(source) = st.tasks.get_mut(&id) {
        source.upgrades.insert(index, new_id);
    }
    drop(st);
    // The 4K job's id stays internal: the answer echoes the source's, as the reference's
    // example (and every other 4K example, callbacks included) does.
    envelope(
        &sh,
        200,
        "success",
        json!({"taskId": id, "resultUrls": null, "imageUrls": null}),
    )
}

async fn extend(
    State(sh): State<Arc<Shared>>,
    drawn: Option<Extension<DrawnOutcome>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match auth(&sh, &headers) {
        Ok(key) => key,
        Err(resp) => return resp,
    };
    let parsed = parse_body(&body).map_err(String::from).and_then(|b| {
        let source = required_str(&b, "taskId")?.to_owned();
        let prompt = required_str(&b, "prompt")?.to_owned();
        let model = opt_str(&b, "model")?.unwrap_or("fast").to_owned();
        if !["fast", "quality", "lite"].contains(&model.as_str()) {
            return Err(format!(
                "model must be one of fast, quality, lite (got {model:?})"
            ));
        }
        let seeds = opt_seeds(&b)?;
        let watermark = opt_str(&b, "watermark")?.map(str::to_owned);
        let call_back_url = opt_callback(&b)?;
        let mut param = json!({"taskId": source, "prompt": prompt, "model": model});
        if let Some(s) = seeds {
            param["seeds"] = json!(s);
        }
        if let Some(w) = watermark {
            param["waterMark"] = json!(w);
        }
        if let Some(url) = &call_back_url {
            param["callBackUrl"] = json!(url);
        }
        Ok((source, model, seeds, call_back_url, param.to_string()))
    });
    let (source_id, model, seeds, call_back_url, param_json) = match parsed {
        Ok(p) => p,
        Err(detail) => return invalid(&sh, &detail),
    };
    let (cost, duration) = match model.as_str() {
        "lite" => (sh.cfg.prices.extend[0], ms(sh.cfg.durations.extend)),
        "quality" => (sh.cfg.prices.extend[2], ms(sh.cfg.durations.extend) * 3 / 2),
        _ => (sh.cfg.prices.extend[1], ms(sh.cfg.durations.extend)),
    };
    let now = sh.now();
    let mut st = sh.lock();
    if let Some(job) = sh.settle(&mut st, &source_id, now) {
        crate::callbacks::dispatch(&sh, [job]);
    }
    let aspect = match st.tasks.get(&source_id) {
        Some(t) if t.key == key => {
            if now - t.create_ms > ms(sh.cfg.retention) {
                let msg = "Temporarily supports records within 14 days.";
                return envelope(&sh, 422, msg, Value::Null);
            }
            if t.flag != 1 || matches!(t.kind, Kind::Upgrade4k { .. }) {
                return envelope(&sh, 422, "record status is not success", Value::Null);
            }
            t.aspect.clone()
        }
        _ => {
            let msg = "Not Found - The original task does not exist";
            return envelope(&sh, 404, msg, Value::Null);
        }
    };
    if let Err(refusal) = admit(&sh, &mut st, &key, cost, now) {
        return refusal;
    }
    let outcome = Shared::next_outcome(&mut st, Route::Extend, drawn.and_then(|d| d.0.0));
    let id = sh.create_task(
        &mut st,
        NewTask {
            key,
            kind: Kind::Extend { source: source_id },
            param_json,
            duration_ms: duration,
            resolution: "720p".into(),
            aspect,
            seeds,
            call_back_url,
            cost,
            outcome,
            sent: Sent::default(),
        },
        now,
    );
    drop(st);
    envelope(&sh, 200, "success", json!({"taskId": id}))
}

async fn credits(State(sh): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match auth(&sh, &headers) {
        Ok(key) => {
            let balance = sh.credits(&key);
            envelope(&sh, 200, "success", json!(balance))
        }
        Err(resp) => resp,
    }
}

async fn download_url(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(resp) = auth(&sh, &headers) {
        return resp;
    }
    let url = match parse_body(&body)
        .map_err(String::from)
        .and_then(|b| required_str(&b, "url").map(str::to_owned))
    {
        Ok(url) => url,
        Err(detail) => return invalid(&sh, &detail),
    };
    let external = || invalid(&sh, "Invalid URL (External file URLs are not supported)");
    let prefix = format!("{}/r/", sh.files_url);
    let Some(token) = url
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split('/').next())
    else {
        return external();
    };
    let now = sh.now();
    let mut st = sh.lock();
    if let Some(scripted) = st.scripted_links.pop_front() {
        drop(st);
        return envelope(&sh, 200, "success", json!(scripted));
    }
    let Some(entry) = st.files.get(token).cloned() else {
        return external();
    };
    let expires = now + ms(sh.cfg.download_url_ttl);
    let fresh = sh.mint_url(&mut st, entry.asset, &entry.name, expires);
    drop(st);
    envelope(&sh, 200, "success", json!(fresh))
}
