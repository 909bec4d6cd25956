//! Admin routes under `/__sandbox/`: the handle's controls over HTTP, for tests in other
//! languages and for the binary. They need no API key (the sandbox is a local test fixture).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::config::Shape;
use crate::faults::{Action, FaultPlan, Outcome, Route};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__sandbox/stats", get(stats))
        .route("/__sandbox/advance", post(advance))
        .route("/__sandbox/complete", post(complete_all))
        .route("/__sandbox/complete/{task_id}", post(complete))
        .route("/__sandbox/outcome/{task_id}", post(outcome))
        .route("/__sandbox/tasks", get(tasks))
        .route("/__sandbox/tasks/{task_id}", get(task))
        .route("/__sandbox/script", post(script).delete(clear_scripts))
        .route("/__sandbox/faults", put(faults))
        .route("/__sandbox/credits", post(credits))
        .route("/__sandbox/shape", put(shape))
        .route("/__sandbox/callbacks", put(callbacks))
}

fn bad(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message.to_string()})),
    )
        .into_response()
}

fn ok(extra: Value) -> Response {
    let mut body = json!({"ok": true});
    if let (Some(map), Value::Object(more)) = (body.as_object_mut(), extra) {
        map.extend(more);
    }
    axum::Json(body).into_response()
}

fn json_body(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

async fn stats(State(sh): State<Arc<Shared>>) -> Response {
    let stats = sh.lock().stats.clone();
    axum::Json(stats.to_json()).into_response()
}

async fn advance(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(ms) = json_body(&body)["ms"].as_u64() else {
        return bad("expected {\"ms\": <milliseconds>}");
    };
    sh.clock.advance(Duration::from_millis(ms));
    sh.wake.notify_one();
    ok(json!({"now": sh.now()}))
}

async fn complete(State(sh): State<Arc<Shared>>, Path(task_id): Path<String>) -> Response {
    match sh.complete_now(&task_id) {
        Some(jobs) => {
            crate::callbacks::dispatch(&sh, jobs);
            ok(json!({}))
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such task"})),
        )
            .into_response(),
    }
}

async fn complete_all(State(sh): State<Arc<Shared>>) -> Response {
    let (count, jobs) = sh.complete_all();
    crate::callbacks::dispatch(&sh, jobs);
    ok(json!({"completed": count}))
}

async fn outcome(
    State(sh): State<Arc<Shared>>,
    Path(task_id): Path<String>,
    body: Bytes,
) -> Response {
    let parsed = json_body(&body)["outcome"]
        .as_str()
        .map(str::parse::<Outcome>);
    match parsed {
        Some(Ok(o)) if sh.set_outcome(&task_id, o) => ok(json!({})),
        Some(Ok(_)) => bad("no running task with that id"),
        Some(Err(e)) => bad(e),
        None => bad("expected {\"outcome\": \"moderation\" | ...}"),
    }
}

async fn tasks(State(sh): State<Arc<Shared>>) -> Response {
    let tasks: Vec<Value> = sh.created_tasks().iter().map(|t| t.to_json()).collect();
    axum::Json(Value::Array(tasks)).into_response()
}

async fn task(State(sh): State<Arc<Shared>>, Path(task_id): Path<String>) -> Response {
    let (info, job) = sh.task_info(&task_id);
    crate::callbacks::dispatch(&sh, job);
    match info {
        Some(info) => axum::Json(json!({
            "taskId": info.task_id,
            "successFlag": info.success_flag,
            "outcome": info.outcome.name(),
            "kind": info.kind,
            "callBackUrl": info.call_back_url,
            "createTime": info.create_time,
            "completeTime": info.complete_time,
            "resultUrls": info.result_urls,
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such task"})),
        )
            .into_response(),
    }
}

async fn script(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = json_body(&body);
    let route = match body["route"].as_str().map(str::parse::<Route>) {
        Some(Ok(r)) => r,
        Some(Err(e)) => return bad(e),
        None => return bad("expected {\"route\": ..., \"action\": ..., \"times\": n}"),
    };
    let action = match body["action"].as_str().map(str::parse::<Action>) {
        Some(Ok(a)) => a,
        Some(Err(e)) => return bad(e),
        None => return bad("expected an \"action\""),
    };
    let times = body["times"].as_u64().unwrap_or(1) as usize;
    match action {
        Action::Fault(f) => sh.script_fault(route, f, times),
        Action::Outcome(_) if !route.creates_tasks() => {
            return bad(format!("route {route} creates no task"));
        }
        Action::Outcome(o) => sh.script_outcome(route, o, times),
    }
    ok(json!({}))
}

async fn clear_scripts(State(sh): State<Arc<Shared>>) -> Response {
    sh.clear_scripts();
    ok(json!({}))
}

async fn faults(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let spec = String::from_utf8_lossy(&body);
    match spec.parse::<FaultPlan>() {
        Ok(plan) => {
            sh.lock().faults = plan;
            ok(json!({}))
        }
        Err(e) => bad(e),
    }
}

async fn credits(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = json_body(&body);
    match (body["key"].as_str(), body["credits"].as_i64()) {
        (Some(key), Some(credits)) => {
            sh.set_credits(key, credits);
            ok(json!({}))
        }
        _ => bad("expected {\"key\": ..., \"credits\": n}"),
    }
}

async fn shape(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    match json_body(&body)["shape"].as_str().map(str::parse::<Shape>) {
        Some(Ok(shape)) => {
            sh.lock().shape = shape;
            ok(json!({}))
        }
        Some(Err(e)) => bad(e),
        None => bad("expected {\"shape\": \"modern\" | \"legacy\"}"),
    }
}

async fn callbacks(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    match json_body(&body)["enabled"].as_bool() {
        Some(on) => {
            sh.callbacks_on.store(on, Ordering::Relaxed);
            ok(json!({}))
        }
        None => bad("expected {\"enabled\": true | false}"),
    }
}
