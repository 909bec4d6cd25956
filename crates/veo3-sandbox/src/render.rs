//! The JSON the sandbox emits for task records and callbacks, in the modern or legacy shape.

use serde_json::{Map, Value, json};

use crate::config::{Shape, iso8601};
use crate::state::{Kind, Task};

/// A URL list: an array in the modern shape, a JSON-encoded string in the legacy one.
fn urls(shape: Shape, urls: &[String]) -> Value {
    match shape {
        Shape::Modern => json!(urls),
        Shape::Legacy => Value::String(serde_json::to_string(urls).unwrap_or_default()),
    }
}

fn optional_urls(shape: Shape, list: Option<&Vec<String>>) -> Value {
    match (shape, list) {
        (_, Some(list)) => urls(shape, list),
        (Shape::Modern, None) => Value::Null,
        (Shape::Legacy, None) => Value::String(String::new()),
    }
}

fn time(shape: Shape, epoch_ms: i64) -> Value {
    match shape {
        Shape::Modern => json!(epoch_ms),
        Shape::Legacy => Value::String(iso8601(epoch_ms)),
    }
}

/// `data` of a record-info answer.
pub(crate) fn record(task: &Task, shape: Shape) -> Value {
    let mut data = Map::new();
    data.insert("taskId".into(), json!(task.id));
    data.insert("paramJson".into(), json!(task.param_json));
    data.insert("createTime".into(), time(shape, task.create_ms));
    data.insert(
        "completeTime".into(),
        task.complete_ms.map_or(Value::Null, |t| time(shape, t)),
    );
    data.insert("successFlag".into(), json!(task.flag));
    let (code, message) = match (task.flag, task.outcome.error()) {
        (0, _) | (_, None) => (Value::Null, ""),
        (_, Some((code, message))) => (json!(code), message),
    };
    data.insert("errorCode".into(), code);
    data.insert("errorMessage".into(), json!(message));
    // The 4K record omits the deprecated fallbackFlag, as documented.
    if !matches!(task.kind, Kind::Upgrade4k { .. }) {
        data.insert("fallbackFlag".into(), json!(false));
    }
    let response = match &task.result {
        None => Value::Null,
        Some(result) => {
            // A finished 1080p job shows in its source's record: its video replaces the
            // 720p one at its index, and the resolution says 1080p.
            let mut result_urls = result.result_urls.clone();
            let mut resolution = task.resolution.as_str();
            for (index, job) in &task.hd {
                if let (Some(url), Some(slot)) = (&job.url, result_urls.get_mut(*index)) {
                    slot.clone_from(url);
                    resolution = "1080p";
                }
            }
            let mut r = Map::new();
            r.insert("taskId".into(), json!(task.id));
            r.insert("resultUrls".into(), urls(shape, &result_urls));
            r.insert(
                "originUrls".into(),
                optional_urls(shape, result.origin_urls.as_ref()),
            );
            if let Some(full) = &result.full_result_urls {
                r.insert("fullResultUrls".into(), urls(shape, full));
            }
            if let Some(images) = &result.image_urls {
                r.insert("imageUrls".into(), urls(shape, images));
            }
            r.insert("resolution".into(), json!(resolution));
            r.insert("seeds".into(), json!([task.seeds]));
            r.insert("hasAudioList".into(), json!([true]));
            if shape == Shape::Legacy {
                data.insert("resultUrls".into(), urls(shape, &result_urls));
            }
            Value::Object(r)
        }
    };
    data.insert("response".into(), response);
    if shape == Shape::Legacy {
        data.insert("status".into(), json!(task.flag));
    }
    Value::Object(data)
}

/// The body POSTed to a task's `callBackUrl` when it completes.
pub(crate) fn callback(task: &Task, shape: Shape, credits_4k: i64) -> Value {
    let failure = task.outcome.error();
    if let Kind::Upgrade4k { source, .. } = &task.kind {
        return match (&task.result, failure) {
            (Some(result), _) => {
                let images = result.image_urls.as_deref().unwrap_or_default();
                // 4K callbacks name the source task, like every 4K answer.
                let mut data = json!({
                    "taskId": source,
                    "info": {
                        "resultUrls": urls(shape, &result.result_urls),
                        "imageUrls": urls(shape, images),
                    },
                });
                if shape == Shape::Legacy {
                    data["creditsConsumed"] = json!(credits_4k);
                }
                json!({"code": 200, "msg": "4K Video generated successfully.", "data": data})
            }
            _ => json!({
                "code": 500,
                "msg": "The 4K version of this video is unavailable. Please try a different video.",
                "data": {"taskId": source},
            }),
        };
    }
    match (&task.result, failure) {
        (Some(result), _) => {
            let msg = match (&task.kind, shape) {
                (Kind::Extend { .. }, _) => "Veo3.1 video extension successful.",
                (_, Shape::Modern) => "Veo3.1 video generated successfully.",
                (_, Shape::Legacy) => "Video generated successfully.",
            };
            let mut info = json!({
                "resultUrls": urls(shape, &result.result_urls),
                "originUrls": optional_urls(shape, result.origin_urls.as_ref()),
                "resolution": task.resolution,
            });
            if let Some(full) = &result.full_result_urls {
                info["fullResultUrls"] = urls(shape, full);
            }
            json!({
                "code": 200,
                "msg": msg,
                "data": {
                    "taskId": task.id,
                    "promptJson": task.param_json,
                    "info": info,
                    "fallbackFlag": false,
                },
            })
        }
        (None, Some((code, message))) => json!({
            "code": code,
            "msg": message,
            "data": {"taskId": task.id, "fallbackFlag": false},
        }),
        (None, None) => json!({
            "code": 500,
            "msg": "Internal Error, Please try again later.",
            "data": {"taskId": task.id, "fallbackFlag": false},
        }),
    }
}
