//! Integration tests: the sandbox over real loopback HTTP, driven by a plain HTTP client.
//!
//! Most tests stop the sandbox's clock (`time_scale(0.0)`) and move it with `advance` or
//! `complete_now`, so they are deterministic and never sleep.

use serde_json::{Value, json};

mod binary;
mod callbacks;
mod faults;
mod files;
mod lifecycle;
mod requests;
mod tasks;
mod types;
pub(super) use veo3_sandbox::{
    Durations, Fault, FaultPlan, Outcome, RateLimit, Route, Sandbox, SandboxBuilder, SandboxHandle,
    Shape, TaskKind,
};

pub(super) use crate::support::http::{Api, Receiver, mp4_boxes};

pub(super) const KEY: &str = "sk-test-sandbox";
pub(super) const GENERATE: &str = "/api/v1/veo/generate";

/// A frozen-clock sandbox accepting [`KEY`].
pub(super) fn frozen() -> SandboxBuilder {
    Sandbox::builder().key(KEY).time_scale(0.0).seed(42)
}

pub(super) async fn start(builder: SandboxBuilder) -> (SandboxHandle, Api) {
    let sandbox = builder.start().await.expect("sandbox starts");
    let api = Api::new(sandbox.api_url(), KEY);
    (sandbox, api)
}

pub(super) fn text(prompt: &str) -> Value {
    json!({"prompt": prompt, "model": "veo3_fast", "aspect_ratio": "16:9"})
}

pub(super) fn urls(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) async fn fetch(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = reqwest::get(url).await.expect("download answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.bytes().await.expect("body").to_vec(),
    )
}
