//! Integration tests: the sandbox over real loopback HTTP, driven by a plain HTTP client.
//!
//! Most tests stop the sandbox's clock (`time_scale(0.0)`) and move it with `advance` or
//! `complete_now`, so they are deterministic and never sleep.

use std::time::Duration;

use serde_json::{Value, json};
use veo3_sandbox::{
    Durations, Fault, FaultPlan, Outcome, RateLimit, Route, Sandbox, SandboxBuilder, SandboxHandle,
    Shape,
};

use crate::support::http::{Api, Receiver, mp4_boxes};

const KEY: &str = "sk-test-sandbox";
const GENERATE: &str = "/api/v1/veo/generate";

/// A frozen-clock sandbox accepting [`KEY`].
fn frozen() -> SandboxBuilder {
    Sandbox::builder().key(KEY).time_scale(0.0).seed(42)
}

async fn start(builder: SandboxBuilder) -> (SandboxHandle, Api) {
    let sandbox = builder.start().await.expect("sandbox starts");
    let api = Api::new(sandbox.api_url(), KEY);
    (sandbox, api)
}

fn text(prompt: &str) -> Value {
    json!({"prompt": prompt, "model": "veo3_fast", "aspect_ratio": "16:9"})
}

fn urls(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn fetch(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = reqwest::get(url).await.expect("download answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.bytes().await.expect("body").to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_goes_from_generating_to_success_on_the_service_clock() {
    let (sandbox, api) = start(frozen()).await;
    let id = api.generate(&text("A red fox")).await;
    assert_eq!(id.len(), 32);
    assert!(
        id.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    let running = api.record(&id).await;
    assert_eq!(
        (running.status, running.code(), running.msg()),
        (200, 200, "success")
    );
    let data = running.data();
    assert_eq!(data["taskId"], id.as_str());
    assert_eq!(data["successFlag"], 0);
    assert_eq!(data["response"], Value::Null);
    assert_eq!(data["completeTime"], Value::Null);
    assert!(data["createTime"].is_i64());
    let params: Value =
        serde_json::from_str(data["paramJson"].as_str().expect("paramJson is a string"))
            .expect("JSON");
    assert_eq!(params["prompt"], "A red fox");
    assert_eq!(params["aspectRatio"], "16:9");

    sandbox.advance(Duration::from_secs(29));
    assert_eq!(api.record(&id).await.data()["successFlag"], 0);
    sandbox.advance(Duration::from_secs(1));
    let done = api.record(&id).await;
    let data = done.data();
    assert_eq!(data["successFlag"], 1);
    assert_eq!(data["errorCode"], Value::Null);
    assert_eq!(data["errorMessage"], "");
    assert_eq!(
        data["completeTime"].as_i64().expect("ms") - data["createTime"].as_i64().expect("ms"),
        30_000,
        "a veo3_fast generation takes 30 s of service time"
    );
    let response = &data["response"];
    assert_eq!(response["taskId"], id.as_str());
    assert_eq!(response["resolution"], "720p");
    assert_eq!(
        response["originUrls"],
        Value::Null,
        "16:9 has no origin URLs"
    );
    assert!(
        response.get("fullResultUrls").is_none(),
        "only extensions carry fullResultUrls"
    );
    let result = urls(&response["resultUrls"]);
    assert_eq!(result.len(), 1);
    assert!(result[0].starts_with(sandbox.files_url()));
    let info = sandbox.task(&id).expect("task");
    assert_eq!(info.success_flag, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_is_slower_than_fast_and_lite_is_faster() {
    let (sandbox, api) = start(frozen()).await;
    let mut durations = Vec::new();
    for model in ["veo3_lite", "veo3_fast", "veo3"] {
        let id = api.generate(&json!({"prompt": "p", "model": model})).await;
        let info = sandbox.task(&id).expect("task");
        durations.push(info.complete_time - info.create_time);
    }
    assert!(
        durations[0] < durations[1] && durations[1] < durations[2],
        "{durations:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_answers_401_inside_http_200_or_mirrored() {
    let (_sandbox, api) = start(frozen()).await;
    for key in [None, Some("wrong-key"), Some("")] {
        let answer = api.with_key(key).post(GENERATE, &text("x")).await;
        assert_eq!((answer.status, answer.code()), (200, 401), "key {key:?}");
        assert_eq!(answer.msg(), "You do not have access permissions");
        assert_eq!(answer.data(), &Value::Null);
    }
    let (_mirrored, api) = start(frozen().mirror_http_status(true)).await;
    let answer = api.with_key(Some("wrong")).get("/api/v1/chat/credit").await;
    assert_eq!((answer.status, answer.code()), (401, 401));

    // Without configured keys, any non-empty key is accepted.
    let (_open, api) = start(Sandbox::builder().time_scale(0.0)).await;
    let answer = api
        .with_key(Some("anything"))
        .get("/api/v1/chat/credit")
        .await;
    assert_eq!(answer.code(), 200);
    let answer = api.with_key(None).get("/api/v1/chat/credit").await;
    assert_eq!(answer.code(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_generate_requests_get_422_naming_the_problem() {
    let (sandbox, api) = start(frozen()).await;
    let img = "https://img.example.com/a.jpg";
    let cases = [
        (json!({"model": "veo3_fast"}), "prompt"),
        (json!({"prompt": "   "}), "prompt"),
        (json!({"prompt": "p", "model": "veo4"}), "model"),
        (
            json!({"prompt": "p", "aspect_ratio": "4:3"}),
            "aspect_ratio",
        ),
        (json!({"prompt": "p", "aspectRatio": "1:1"}), "aspect_ratio"),
        (json!({"prompt": "p", "resolution": "8k"}), "resolution"),
        (json!({"prompt": "p", "seeds": 9999}), "seeds"),
        (json!({"prompt": "p", "seeds": 100_000}), "seeds"),
        (
            json!({"prompt": "p", "generationType": "IMAGE_2_VIDEO"}),
            "generationType",
        ),
        (
            json!({"prompt": "p", "generationType": "TEXT_2_VIDEO", "imageUrls": [img]}),
            "imageUrls",
        ),
        (
            json!({"prompt": "p", "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO"}),
            "imageUrls",
        ),
        (
            json!({"prompt": "p", "imageUrls": [img, img, img]}),
            "imageUrls",
        ),
        (
            json!({"prompt": "p", "generationType": "REFERENCE_2_VIDEO", "imageUrls": [img, img, img, img]}),
            "imageUrls",
        ),
        (
            json!({"prompt": "p", "model": "veo3", "generationType": "REFERENCE_2_VIDEO", "imageUrls": [img]}),
            "REFERENCE_2_VIDEO",
        ),
        (
            json!({"prompt": "p", "imageUrls": ["file:///etc/passwd"]}),
            "imageUrls",
        ),
        (
            json!({"prompt": "p", "callBackUrl": "not a url"}),
            "callBackUrl",
        ),
        (
            json!({"prompt": "p", "enableTranslation": "yes"}),
            "enableTranslation",
        ),
        (json!(["not", "an", "object"]), "JSON object"),
    ];
    for (body, field) in cases {
        let answer = api.post(GENERATE, &body).await;
        assert_eq!((answer.status, answer.code()), (200, 422), "{body}");
        assert!(
            answer.msg().starts_with("Validation Error - "),
            "{}",
            answer.msg()
        );
        assert!(
            answer.msg().contains(field),
            "{body}: {} should name {field}",
            answer.msg()
        );
    }
    let raw = api
        .http
        .post(format!("{}{GENERATE}", api.base))
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .expect("answered");
    let envelope: Value = serde_json::from_slice(&raw.bytes().await.expect("body")).expect("JSON");
    assert_eq!(envelope["code"], 422);
    assert_eq!(
        sandbox.stats().tasks_created,
        0,
        "no invalid request creates a task"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_aspect_ratio_names_are_accepted_and_snake_case_wins() {
    let (sandbox, api) = start(frozen()).await;
    let legacy = api
        .generate(&json!({"prompt": "p", "aspectRatio": "9:16"}))
        .await;
    let both = api
        .generate(&json!({"prompt": "p", "aspectRatio": "9:16", "aspect_ratio": "16:9"}))
        .await;
    let fixture = crate::support::fixture("request-generate-legacy-camelcase.json");
    let fixture: Value = serde_json::from_slice(&fixture).expect("fixture");
    let from_fixture = api.generate(&fixture).await;
    for id in [&legacy, &both, &from_fixture] {
        sandbox.complete_now(id);
    }
    let params = |answer: &crate::support::http::Answer| -> Value {
        serde_json::from_str(answer.data()["paramJson"].as_str().expect("string")).expect("JSON")
    };
    let legacy = api.record(&legacy).await;
    assert_eq!(params(&legacy)["aspectRatio"], "9:16");
    assert_eq!(
        urls(&legacy.data()["response"]["originUrls"]).len(),
        1,
        "9:16 has origin URLs"
    );
    let both = api.record(&both).await;
    assert_eq!(params(&both)["aspectRatio"], "16:9");
    assert_eq!(api.record(&from_fixture).await.data()["successFlag"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_requests_are_accepted() {
    let (_sandbox, api) = start(frozen()).await;
    for name in [
        "request-generate-text.json",
        "request-generate-first-last-frames.json",
        "request-generate-reference.json",
    ] {
        let body: Value = serde_json::from_slice(&crate::support::fixture(name)).expect("fixture");
        let answer = api.post(GENERATE, &body).await;
        assert_eq!(answer.code(), 200, "{name}: {:?}", answer.json);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_are_debited_per_model_and_exhaustion_answers_402() {
    let (sandbox, api) = start(frozen().credits(KEY, 100)).await;
    let balance = api.get("/api/v1/chat/credit").await;
    assert_eq!((balance.code(), balance.data()), (200, &json!(100)));
    api.generate(&json!({"prompt": "p", "model": "veo3_fast"}))
        .await;
    assert_eq!(api.get("/api/v1/chat/credit").await.data(), &json!(40));
    let refused = api
        .post(GENERATE, &json!({"prompt": "p", "model": "veo3_fast"}))
        .await;
    assert_eq!(refused.code(), 402);
    assert!(refused.msg().starts_with("Insufficient Credits"));
    api.generate(&json!({"prompt": "p", "model": "veo3_lite"}))
        .await;
    assert_eq!(sandbox.credits(KEY), 10);
    assert_eq!(sandbox.stats().tasks_created_by(KEY), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_drops_the_21st_generation_in_10_seconds() {
    let (sandbox, api) = start(frozen()).await;
    for _ in 0..20 {
        api.generate(&text("p")).await;
    }
    let refused = api.post(GENERATE, &text("p")).await;
    assert_eq!(refused.code(), 429);
    assert_eq!(
        sandbox.stats().tasks_created,
        20,
        "a refused request is dropped, not queued"
    );
    assert_eq!(sandbox.stats().rate_limited, 1);
    // Another key has its own window.
    let other = api.with_key(Some("sk-other"));
    let (_open, _) = (sandbox.credits("sk-other"), ());
    let refused_other = other.post(GENERATE, &text("p")).await;
    assert_eq!(
        refused_other.code(),
        401,
        "only configured keys are accepted"
    );
    sandbox.advance(Duration::from_secs(10));
    api.generate(&text("p")).await;

    let (_open, api) = start(Sandbox::builder().time_scale(0.0)).await;
    for _ in 0..20 {
        api.with_key(Some("a")).generate(&text("p")).await;
    }
    api.with_key(Some("b")).generate(&text("p")).await;
    let (_unlimited, api) = start(frozen().rate_limit(None)).await;
    for _ in 0..25 {
        api.generate(&text("p")).await;
    }
    let (_small, api) = start(frozen().rate_limit(Some(RateLimit {
        max: 1,
        window: Duration::from_secs(1),
    })))
    .await;
    api.generate(&text("p")).await;
    assert_eq!(api.post(GENERATE, &text("p")).await.code(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hd_1080p_answers_processing_until_ready_then_a_stable_url() {
    let (sandbox, api) = start(frozen()).await;
    let id = api.generate(&text("p")).await;
    let path = format!("/api/v1/veo/get-1080p-video?taskId={id}&index=0");
    let early = api.get(&path).await;
    assert_eq!(
        (early.code(), early.msg()),
        (422, "record status is not success")
    );
    sandbox.complete_now(&id);

    let first = api.get(&path).await;
    assert_eq!(first.code(), 400);
    assert!(first.msg().contains("processing"), "{}", first.msg());
    sandbox.advance(Duration::from_secs(89));
    assert_eq!(api.get(&path).await.code(), 400);
    sandbox.advance(Duration::from_secs(1));
    let ready = api.get(&path).await;
    assert_eq!(ready.code(), 200);
    let url = ready.data()["resultUrl"]
        .as_str()
        .expect("singular resultUrl")
        .to_owned();
    assert!(url.ends_with("_1080p.mp4"));
    // Without index (the quickstart omits it) and with a string index: the same stable URL.
    let again = api
        .get(&format!("/api/v1/veo/get-1080p-video?taskId={id}"))
        .await;
    assert_eq!(again.data()["resultUrl"], url.as_str());
    let (status, headers, body) = fetch(&url).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "video/mp4");
    assert!(mp4_boxes(&body).is_some());

    let missing = api.get("/api/v1/veo/get-1080p-video?taskId=nope").await;
    assert_eq!((missing.code(), missing.msg()), (422, "record is null"));
    let out_of_range = api
        .get(&format!("/api/v1/veo/get-1080p-video?taskId={id}&index=3"))
        .await;
    assert_eq!(out_of_range.code(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_k_answers_200_then_422_processing_then_422_with_urls() {
    let (sandbox, api) = start(frozen()).await;
    let id = api.generate(&text("p")).await;
    sandbox.complete_now(&id);
    let before = sandbox.credits(KEY);
    let body = json!({"taskId": id, "index": 0});
    let accepted = api.post("/api/v1/veo/get-4k-video", &body).await;
    assert_eq!(accepted.code(), 200);
    assert_eq!(accepted.data()["resultUrls"], Value::Null);
    assert_eq!(accepted.data()["imageUrls"], Value::Null);
    let job = accepted.data()["taskId"]
        .as_str()
        .expect("4K task id")
        .to_owned();
    assert_eq!(sandbox.credits(KEY), before - 120);

    let processing = api.post("/api/v1/veo/get-4k-video", &body).await;
    assert_eq!(processing.code(), 422);
    assert!(processing.msg().starts_with("4k is processing"));
    assert_eq!(processing.data()["resultUrls"], Value::Null);
    assert_eq!(api.record(&job).await.data()["successFlag"], 0);

    sandbox.advance(Duration::from_secs(300));
    let done = api.post("/api/v1/veo/get-4k-video", &body).await;
    assert_eq!(
        (done.code(), done.msg()),
        (422, "The video has been generated successfully")
    );
    let videos = urls(&done.data()["resultUrls"]);
    let images = urls(&done.data()["imageUrls"]);
    assert!(videos[0].ends_with("_4k.mp4") && images[0].ends_with("_4k.jpg"));
    assert_eq!(sandbox.credits(KEY), before - 120, "repeats are not billed");
    let record = api.record(&job).await;
    assert_eq!(record.data()["successFlag"], 1);
    assert_eq!(record.data()["response"]["resolution"], "4k");
    assert!(
        record.data().get("fallbackFlag").is_none(),
        "4K records have no fallbackFlag"
    );
    let (_, headers, image) = fetch(&images[0]).await;
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(&image[..2], &[0xff, 0xd8], "a JPEG");

    let unknown = api
        .post("/api/v1/veo/get-4k-video", &json!({"taskId": "nope"}))
        .await;
    assert_eq!((unknown.code(), unknown.msg()), (422, "record is null"));
    let missing = api.post("/api/v1/veo/get-4k-video", &json!({})).await;
    assert_eq!(missing.code(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_creates_a_new_task_whose_record_carries_full_result_urls() {
    let (sandbox, api) = start(frozen()).await;
    let source = api.generate(&text("p")).await;
    let early = api
        .post(
            "/api/v1/veo/extend",
            &json!({"taskId": source, "prompt": "more"}),
        )
        .await;
    assert_eq!(
        (early.code(), early.msg()),
        (422, "record status is not success")
    );
    sandbox.complete_now(&source);
    let mut body: Value =
        serde_json::from_slice(&crate::support::fixture("request-extend.json")).expect("fixture");
    body["taskId"] = json!(source);
    body["callBackUrl"] = Value::Null;
    let created = api.post("/api/v1/veo/extend", &body).await;
    assert_eq!(created.code(), 200, "{:?}", created.json);
    let id = created.data()["taskId"]
        .as_str()
        .expect("taskId")
        .to_owned();
    assert_ne!(id, source);
    assert_eq!(api.record(&id).await.data()["successFlag"], 0);
    sandbox.advance(Duration::from_secs(300));
    let record = api.record(&id).await;
    let response = &record.data()["response"];
    assert_eq!(record.data()["successFlag"], 1);
    assert_eq!(urls(&response["fullResultUrls"]).len(), 1);
    assert_eq!(urls(&response["resultUrls"]).len(), 1);
    let params: Value =
        serde_json::from_str(record.data()["paramJson"].as_str().expect("string")).expect("JSON");
    assert_eq!(params["taskId"], source.as_str());

    let unknown = api
        .post(
            "/api/v1/veo/extend",
            &json!({"taskId": "nope", "prompt": "more"}),
        )
        .await;
    assert_eq!(unknown.code(), 404);
    let bad_model = api
        .post(
            "/api/v1/veo/extend",
            &json!({"taskId": source, "prompt": "x", "model": "veo3"}),
        )
        .await;
    assert_eq!(bad_model.code(), 422);
    assert!(bad_model.msg().contains("model"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_urls_expire_and_download_url_returns_a_fresh_20_minute_link() {
    let (sandbox, api) = start(frozen().result_url_ttl(Duration::from_secs(3600))).await;
    let id = api.generate(&text("p")).await;
    sandbox.complete_now(&id);
    let url = urls(&api.record(&id).await.data()["response"]["resultUrls"])[0].clone();
    let other = api.generate(&text("p")).await;
    sandbox.complete_now(&other);
    let other_url = urls(&api.record(&other).await.data()["response"]["resultUrls"])[0].clone();
    assert_ne!(url, other_url, "result URLs are unique per task");
    assert_eq!(fetch(&url).await.0, 200);

    sandbox.advance(Duration::from_secs(3601));
    assert_eq!(fetch(&url).await.0, 403, "an expired link is refused");
    let fresh = api
        .post("/api/v1/common/download-url", &json!({"url": url}))
        .await;
    assert_eq!(fresh.code(), 200);
    let fresh = fresh
        .data()
        .as_str()
        .expect("data is a bare string")
        .to_owned();
    assert_ne!(fresh, url);
    let (status, _, body) = fetch(&fresh).await;
    assert_eq!(status, 200);
    assert!(mp4_boxes(&body).is_some());
    sandbox.advance(Duration::from_secs(20 * 60));
    assert_eq!(fetch(&fresh).await.0, 403, "download links last 20 minutes");

    let external = api
        .post(
            "/api/v1/common/download-url",
            &json!({"url": "https://example.com/x.mp4"}),
        )
        .await;
    assert_eq!(external.code(), 422);
    assert!(
        external
            .msg()
            .contains("External file URLs are not supported")
    );
    let unknown = format!("{}/r/0000000000000000/result_0.mp4", sandbox.files_url());
    assert_eq!(fetch(&unknown).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_expire_after_the_retention_window() {
    let (sandbox, api) = start(frozen()).await;
    let id = api.generate(&text("p")).await;
    let unknown = api.record("does-not-exist").await;
    assert_eq!((unknown.code(), unknown.msg()), (422, "record is null"));
    let missing = api.get("/api/v1/veo/record-info").await;
    assert_eq!(missing.code(), 422);
    sandbox.advance(Duration::from_secs(14 * 24 * 3600 + 1));
    let expired = api.record(&id).await;
    assert_eq!(
        (expired.code(), expired.msg()),
        (422, "Temporarily supports records within 14 days.")
    );
    // Another key cannot see the task at all.
    let (sandbox, api) = start(Sandbox::builder().time_scale(0.0)).await;
    let id = api.with_key(Some("alice")).generate(&text("p")).await;
    let foreign = api.with_key(Some("bob")).record(&id).await;
    assert_eq!(foreign.msg(), "record is null");
    assert!(sandbox.task(&id).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_and_per_task_outcomes_end_tasks_as_the_service_does() {
    let (sandbox, api) = start(frozen()).await;
    let cases = [
        (Outcome::Moderation, 2, 400),
        (Outcome::ImageFetchFailed, 2, 451),
        (Outcome::Internal, 2, 500),
        (Outcome::GenerationFailed, 3, 501),
    ];
    for (outcome, flag, code) in cases {
        sandbox.script_outcome(Route::Generate, outcome);
        let id = api.generate(&text("p")).await;
        sandbox.advance(Duration::from_secs(30));
        let record = api.record(&id).await;
        let data = record.data();
        assert_eq!(data["successFlag"], flag, "{outcome:?}");
        assert_eq!(data["errorCode"], code, "{outcome:?}");
        assert!(!data["errorMessage"].as_str().unwrap_or_default().is_empty());
        assert_eq!(data["response"], Value::Null);
        assert!(data["completeTime"].is_i64());
    }
    // Per task: change the fate of a running task.
    let id = api.generate(&text("p")).await;
    assert!(sandbox.set_outcome(&id, Outcome::GenerationFailed));
    sandbox.complete_now(&id);
    assert_eq!(api.record(&id).await.data()["successFlag"], 3);
    assert!(
        !sandbox.set_outcome(&id, Outcome::Success),
        "a finished task keeps its end"
    );
    // Failed sources cannot be upgraded.
    let hd = api
        .get(&format!("/api/v1/veo/get-1080p-video?taskId={id}"))
        .await;
    assert_eq!(hd.msg(), "record status is not success");
    // 4K and extend outcomes are scriptable too.
    let ok = api.generate(&text("p")).await;
    sandbox.complete_now(&ok);
    sandbox.script_outcome(Route::Upgrade4k, Outcome::Internal);
    let job = api
        .post("/api/v1/veo/get-4k-video", &json!({"taskId": ok}))
        .await;
    let job = job.data()["taskId"].as_str().expect("id").to_owned();
    sandbox.complete_now(&job);
    assert_eq!(api.record(&job).await.data()["successFlag"], 2);
    let retry = api
        .post("/api/v1/veo/get-4k-video", &json!({"taskId": ok}))
        .await;
    assert_eq!(retry.code(), 200, "a failed 4K job can be requested again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_outcomes_are_deterministic_from_the_seed() {
    let plan: FaultPlan = "generate:moderation=0.3,generate:failed=0.3"
        .parse()
        .expect("spec");
    let run = |seed| {
        let plan = plan.clone();
        async move {
            let (sandbox, api) = start(frozen().seed(seed).faults(plan).rate_limit(None)).await;
            let mut flags = Vec::new();
            for _ in 0..30 {
                let id = api.generate(&text("p")).await;
                sandbox.complete_now(&id);
                flags.push(
                    api.record(&id).await.data()["successFlag"]
                        .as_i64()
                        .expect("flag"),
                );
            }
            flags
        }
    };
    let first = run(7).await;
    assert_eq!(first, run(7).await, "same seed, same outcomes");
    assert!(
        first.contains(&1) && first.contains(&2) && first.contains(&3),
        "{first:?}"
    );
    assert_ne!(first, run(8).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_faults_fail_the_way_the_service_fails() {
    let (sandbox, api) = start(frozen()).await;

    // Closed before any answer: nothing was processed.
    sandbox.script_fault(Route::Generate, Fault::Drop);
    assert!(api.try_post(GENERATE, &text("p")).await.is_err());
    assert_eq!(sandbox.stats().tasks_created, 0);

    // Processed, answer lost: the task exists and was billed, the client never heard of it.
    let before = sandbox.credits(KEY);
    sandbox.script_fault(Route::Generate, Fault::Lost);
    assert!(api.try_post(GENERATE, &text("p")).await.is_err());
    assert_eq!(sandbox.stats().tasks_created, 1);
    assert_eq!(sandbox.stats().tasks_created_by(KEY), 1);
    assert_eq!(sandbox.credits(KEY), before - 60);

    // HTTP 5xx from the front door, not JSON.
    sandbox.script_fault(Route::RecordInfo, Fault::Http(502));
    let bare = api.record("x").await;
    assert_eq!(bare.status, 502);
    assert_eq!(bare.json, Value::Null);

    // Envelope 500 inside HTTP 200.
    sandbox.script_fault(Route::Credits, Fault::Envelope(500));
    let internal = api.get("/api/v1/chat/credit").await;
    assert_eq!((internal.status, internal.code()), (200, 500));

    // 429 with Retry-After.
    sandbox.script_fault(Route::Generate, Fault::RateLimited(7));
    let limited = api.post(GENERATE, &text("p")).await;
    assert_eq!(limited.code(), 429);
    assert_eq!(limited.headers["retry-after"], "7");

    // Added latency, then a normal answer.
    sandbox.script_fault(Route::Credits, Fault::Latency(Duration::from_millis(20)));
    assert_eq!(api.get("/api/v1/chat/credit").await.code(), 200);

    // Malformed JSON: the request was processed, the body cannot be parsed.
    sandbox.script_fault(Route::Generate, Fault::Malformed);
    let broken = api.post(GENERATE, &text("p")).await;
    assert_eq!(broken.status, 200);
    assert!(serde_json::from_slice::<Value>(&broken.body).is_err());
    assert!(!broken.body.is_empty());
    assert_eq!(sandbox.stats().tasks_created, 2);

    let stats = sandbox.stats();
    for name in [
        "drop",
        "lost",
        "http",
        "code",
        "429",
        "latency",
        "malformed",
    ] {
        assert_eq!(stats.faults(name), 1, "{name}");
    }
    assert_eq!(stats.requests(Route::Generate), 4);

    // A scripted fault applies once; the next request is normal again.
    assert_eq!(api.post(GENERATE, &text("p")).await.code(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_request_faults_follow_the_plan() {
    let plan: FaultPlan = "credit:5xx=0.5,status:code@455=1".parse().expect("spec");
    let (sandbox, api) = start(frozen().faults(plan)).await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(api.get("/api/v1/chat/credit").await.status);
    }
    let failures = statuses.iter().filter(|s| **s == 503).count();
    assert!((8..=32).contains(&failures), "{statuses:?}");
    assert_eq!(
        statuses.len() - failures,
        statuses.iter().filter(|s| **s == 200).count()
    );
    assert_eq!(api.record("x").await.code(), 455);
    assert_eq!(sandbox.stats().faults("http"), failures as u64);
    sandbox.set_faults(FaultPlan::new());
    assert_eq!(api.record("x").await.code(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_are_real_mp4s_with_exact_ranges_and_etags() {
    let (sandbox, api) = start(frozen()).await;
    let mut sizes = Vec::new();
    for resolution in ["720p", "1080p", "4k"] {
        let id = api
            .generate(&json!({"prompt": "p", "resolution": resolution}))
            .await;
        sandbox.complete_now(&id);
        let record = api.record(&id).await;
        assert_eq!(record.data()["response"]["resolution"], resolution);
        let url = urls(&record.data()["response"]["resultUrls"])[0].clone();
        let (status, headers, body) = fetch(&url).await;
        assert_eq!(status, 200);
        let boxes = mp4_boxes(&body).expect("a well-formed MP4");
        let kinds: Vec<&str> = boxes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds.first(), Some(&"ftyp"));
        assert!(
            kinds.contains(&"moov") && kinds.contains(&"mdat"),
            "{kinds:?}"
        );
        assert_eq!(headers["content-length"], body.len().to_string().as_str());
        assert_eq!(headers["accept-ranges"], "bytes");
        let etag = headers["etag"].to_str().expect("etag").to_owned();
        sizes.push(body.len());

        let http = reqwest::Client::new();
        let head = http.head(&url).send().await.expect("HEAD");
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()["content-length"],
            body.len().to_string().as_str()
        );
        for (range, start, end) in [
            ("bytes=0-99", 0, 100),
            ("bytes=100-", 100, body.len()),
            ("bytes=-64", body.len() - 64, body.len()),
        ] {
            let part = http
                .get(&url)
                .header("range", range)
                .send()
                .await
                .expect("range");
            assert_eq!(part.status(), 206, "{range}");
            assert_eq!(
                part.headers()["content-range"],
                format!("bytes {start}-{}/{}", end - 1, body.len()).as_str()
            );
            assert_eq!(
                &part.bytes().await.expect("body")[..],
                &body[start..end],
                "{range}"
            );
        }
        let unsatisfiable = http
            .get(&url)
            .header("range", format!("bytes={}-", body.len()))
            .send()
            .await
            .expect("416");
        assert_eq!(unsatisfiable.status(), 416);
        let cached = http
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("304");
        assert_eq!(cached.status(), 304);
    }
    sizes.dedup();
    assert_eq!(sizes.len(), 3, "each resolution serves its own file");
    assert!(sandbox.stats().file_auth_headers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_host_serves_big_bodies_and_notes_authorization_headers() {
    let (sandbox, _api) = start(frozen()).await;
    let http = reqwest::Client::new();
    let size = 3 * 65_536 + 17;
    let body = http
        .get(sandbox.big_file_url(size))
        .send()
        .await
        .expect("big");
    assert_eq!(body.headers()["content-length"], size.to_string().as_str());
    let body = body.bytes().await.expect("body");
    assert_eq!(body.len() as u64, size);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, b)| *b == veo3_sandbox::big_file_byte(i as u64))
    );
    let part = http
        .get(sandbox.big_file_url(size))
        .header("range", "bytes=70000-70009")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    let expected: Vec<u8> = (70_000..70_010).map(veo3_sandbox::big_file_byte).collect();
    assert_eq!(&part.bytes().await.expect("body")[..], &expected[..]);

    assert!(sandbox.stats().file_auth_headers.is_empty());
    http.get(sandbox.big_file_url(10))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        sandbox.stats().file_auth_headers,
        vec!["/big/10".to_owned()]
    );
    assert_eq!(sandbox.stats().file_requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_download_delivers_half_then_fails() {
    let (sandbox, api) = start(frozen()).await;
    let id = api.generate(&text("p")).await;
    sandbox.complete_now(&id);
    let url = urls(&api.record(&id).await.data()["response"]["resultUrls"])[0].clone();
    let full = fetch(&url).await.2;

    sandbox.script_fault(Route::Download, Fault::Cut);
    let response = reqwest::get(&url).await.expect("headers arrive");
    assert_eq!(
        response.headers()["content-length"],
        full.len().to_string().as_str()
    );
    assert!(response.bytes().await.is_err(), "the body is cut short");

    sandbox.script_fault(Route::Download, Fault::Cut);
    let response = reqwest::get(sandbox.big_file_url(1 << 20))
        .await
        .expect("headers");
    let mut response = response;
    let mut received = 0usize;
    let failed = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(failed);
    assert_eq!(received, 1 << 19, "exactly half arrives");
    assert_eq!(sandbox.stats().faults("cut"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_shape_works_with_the_quickstart_polling_code() {
    let receiver = Receiver::start(Vec::new()).await;
    let (sandbox, api) = start(frozen().shape(Shape::Legacy)).await;
    let id = api
        .generate(&json!({"prompt": "A cat", "model": "veo3", "aspectRatio": "16:9", "callBackUrl": receiver.url}))
        .await;
    let running = api.record(&id).await;
    assert_eq!(running.data()["successFlag"], 0);
    assert_eq!(running.data()["status"], 0);
    sandbox.complete_now(&id);

    // The quickstart: `const { successFlag, resultUrls } = data; JSON.parse(resultUrls)`.
    let record = api.record(&id).await;
    let data = record.data();
    assert_eq!(data["successFlag"], 1);
    let result_urls: Vec<String> =
        serde_json::from_str(data["resultUrls"].as_str().expect("a JSON string")).expect("parses");
    assert_eq!(result_urls.len(), 1);
    let nested: Vec<String> = serde_json::from_str(
        data["response"]["resultUrls"]
            .as_str()
            .expect("a JSON string"),
    )
    .expect("parses");
    assert_eq!(nested, result_urls);
    assert!(
        data["createTime"]
            .as_str()
            .expect("string time")
            .ends_with('Z')
    );
    assert!(data["completeTime"].is_string());
    assert_eq!(fetch(&result_urls[0]).await.0, 200);

    // The quickstart's callback handler: `JSON.parse(data.info.resultUrls)`.
    let callback = receiver.wait_for(1).await.remove(0).json();
    let info_urls: Vec<String> = serde_json::from_str(
        callback["data"]["info"]["resultUrls"]
            .as_str()
            .expect("string"),
    )
    .expect("parses");
    assert_eq!(info_urls, result_urls);
    assert_eq!(callback["msg"], "Video generated successfully.");

    // The shape can be switched at run time.
    sandbox.set_shape(Shape::Modern);
    assert!(api.record(&id).await.data()["response"]["resultUrls"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_signed_and_shaped_as_documented() {
    let vector: Value =
        serde_json::from_slice(&crate::support::fixture("webhook-signature-example.json"))
            .expect("fixture");
    let hmac_key = vector["webhookHmacKey"].as_str().expect("key");
    assert_eq!(
        veo3_sandbox::webhook_signature(
            hmac_key.as_bytes(),
            vector["body"]["data"]["taskId"].as_str().expect("id"),
            vector["headers"]["X-Webhook-Timestamp"]
                .as_str()
                .expect("ts"),
        ),
        vector["headers"]["X-Webhook-Signature"]
            .as_str()
            .expect("sig")
    );

    let receiver = Receiver::start(Vec::new()).await;
    let (sandbox, api) = start(frozen().hmac_key(hmac_key)).await;
    let id = api
        .generate(&json!({"prompt": "p", "callBackUrl": receiver.url}))
        .await;
    sandbox.advance(Duration::from_secs(30));
    let got = receiver.wait_for(1).await.remove(0);
    let body = got.json();
    assert_eq!(body["code"], 200);
    assert_eq!(body["msg"], "Veo3.1 video generated successfully.");
    assert_eq!(body["data"]["taskId"], id.as_str());
    assert!(body["data"]["promptJson"].is_string());
    assert_eq!(body["data"]["fallbackFlag"], false);
    assert_eq!(urls(&body["data"]["info"]["resultUrls"]).len(), 1);
    assert_eq!(body["data"]["info"]["resolution"], "720p");
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.path, "/hook");
    let timestamp = got.header("x-webhook-timestamp").expect("timestamp");
    let signature = got.header("x-webhook-signature").expect("signature");
    assert_eq!(
        signature,
        veo3_sandbox::webhook_signature(hmac_key.as_bytes(), &id, timestamp)
    );

    // Failure and 4K shapes.
    sandbox.script_outcome(Route::Generate, Outcome::Moderation);
    let failed = api
        .generate(&json!({"prompt": "p", "callBackUrl": receiver.url}))
        .await;
    sandbox.complete_now(&failed);
    let body = receiver.wait_for(2).await[1].json();
    assert_eq!(body["code"], 400);
    assert_eq!(body["data"]["taskId"], failed.as_str());
    assert!(body["data"].get("info").is_none());

    let job = api
        .post(
            "/api/v1/veo/get-4k-video",
            &json!({"taskId": id, "callBackUrl": receiver.url}),
        )
        .await;
    let job = job.data()["taskId"].as_str().expect("id").to_owned();
    sandbox.complete_now(&job);
    let body = receiver.wait_for(3).await[2].json();
    assert_eq!(body["msg"], "4K Video generated successfully.");
    assert_eq!(body["data"]["taskId"], job.as_str());
    assert_eq!(urls(&body["data"]["info"]["imageUrls"]).len(), 1);

    // Extension callbacks.
    let extended = api
        .post(
            "/api/v1/veo/extend",
            &json!({"taskId": id, "prompt": "more", "callBackUrl": receiver.url}),
        )
        .await;
    let extended = extended.data()["taskId"].as_str().expect("id").to_owned();
    sandbox.complete_now(&extended);
    let body = receiver.wait_for(4).await[3].json();
    assert_eq!(body["msg"], "Veo3.1 video extension successful.");
    assert!(
        sandbox
            .wait_until(Duration::from_secs(20), |s| s.callbacks_sent == 4)
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_callbacks_are_retried_three_times_then_abandoned() {
    let receiver = Receiver::start(vec![500, 503]).await;
    let (sandbox, api) = start(frozen()).await;
    let id = api
        .generate(&json!({"prompt": "p", "callBackUrl": receiver.url}))
        .await;
    sandbox.complete_now(&id);
    let got = receiver.wait_for(3).await;
    assert!(
        got.iter()
            .all(|r| r.json()["data"]["taskId"] == id.as_str())
    );
    assert!(
        got[0].header("x-webhook-signature").is_none(),
        "unsigned without a key"
    );
    assert!(
        sandbox
            .wait_until(Duration::from_secs(20), |s| s.callbacks_sent == 1)
            .await
    );
    assert_eq!(sandbox.stats().callbacks_failed, 2);

    let stubborn = Receiver::start(vec![500; 10]).await;
    let id = api
        .generate(&json!({"prompt": "p", "callBackUrl": stubborn.url}))
        .await;
    sandbox.complete_now(&id);
    stubborn.wait_for(4).await;
    assert!(
        sandbox
            .wait_until(Duration::from_secs(20), |s| s.callbacks_abandoned == 1)
            .await
    );
    assert_eq!(
        stubborn.received().len(),
        4,
        "one attempt and three retries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_can_be_duplicated_or_switched_off() {
    let receiver = Receiver::start(Vec::new()).await;
    let (sandbox, api) = start(frozen().callback_duplicates(true)).await;
    let id = api
        .generate(&json!({"prompt": "p", "callBackUrl": receiver.url}))
        .await;
    sandbox.complete_now(&id);
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body, "the same delivery, twice");

    let quiet = Receiver::start(Vec::new()).await;
    let (sandbox, api) = start(frozen().callbacks(false)).await;
    let id = api
        .generate(&json!({"prompt": "p", "callBackUrl": quiet.url}))
        .await;
    sandbox.complete_now(&id);
    // The sandbox settles tasks synchronously: with callbacks off nothing is queued at all.
    assert_eq!(
        sandbox.stats().callbacks_sent + sandbox.stats().callbacks_failed,
        0
    );
    sandbox.set_callbacks(true);
    let id = api
        .generate(&json!({"prompt": "p", "callBackUrl": quiet.url}))
        .await;
    sandbox.complete_now(&id);
    assert_eq!(quiet.wait_for(1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_mirror_the_library_controls() {
    let (sandbox, api) = start(frozen()).await;
    let admin = api.with_key(None);
    let answer = admin
        .post(
            "/__sandbox/script",
            &json!({"route": "generate", "action": "moderation"}),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.json);
    let id = api.generate(&text("p")).await;
    let answer = admin
        .post(&format!("/__sandbox/complete/{id}"), &json!({}))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(api.record(&id).await.data()["successFlag"], 2);

    let second = api.generate(&text("p")).await;
    let answer = admin
        .post(
            &format!("/__sandbox/outcome/{second}"),
            &json!({"outcome": "failed"}),
        )
        .await;
    assert_eq!(answer.status, 200);
    admin
        .post("/__sandbox/advance", &json!({"ms": 30_000}))
        .await;
    assert_eq!(api.record(&second).await.data()["successFlag"], 3);
    let task = admin.get(&format!("/__sandbox/tasks/{second}")).await;
    assert_eq!(task.json["successFlag"], 3);

    admin
        .post(
            "/__sandbox/script",
            &json!({"route": "credit", "action": "429@3", "times": 2}),
        )
        .await;
    assert_eq!(api.get("/api/v1/chat/credit").await.code(), 429);
    assert_eq!(api.get("/api/v1/chat/credit").await.code(), 429);
    assert_eq!(api.get("/api/v1/chat/credit").await.code(), 200);

    admin
        .post("/__sandbox/credits", &json!({"key": KEY, "credits": 7}))
        .await;
    assert_eq!(api.get("/api/v1/chat/credit").await.data(), &json!(7));

    let put = api
        .http
        .put(format!("{}/__sandbox/faults", api.base))
        .body("status:code@455")
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), 200);
    assert_eq!(api.record(&id).await.code(), 455);
    let bad = api
        .http
        .put(format!("{}/__sandbox/faults", api.base))
        .body("status:explode")
        .send()
        .await
        .expect("PUT");
    assert_eq!(bad.status(), 400);

    let stats = admin.get("/__sandbox/stats").await;
    assert_eq!(stats.json["tasksCreated"], 2);
    assert_eq!(stats.json["requests"]["credit"], 4);
    assert!(
        admin
            .post(
                "/__sandbox/script",
                &json!({"route": "nowhere", "action": "drop"})
            )
            .await
            .status
            == 400
    );
    let not_found = api.get("/api/v1/veo/nothing").await;
    assert_eq!(not_found.code(), 404);
    let wrong_method = api.get(GENERATE).await;
    assert_eq!(wrong_method.code(), 405);
    drop(sandbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_tasks_complete_at_time_scale_001() {
    let sandbox = Sandbox::builder()
        .time_scale(0.01)
        .rate_limit(None)
        .start()
        .await
        .expect("sandbox");
    let api = Api::new(sandbox.api_url(), KEY);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let api = api.clone();
        tasks.spawn(async move {
            let id = api.generate(&text(&format!("task {i}"))).await;
            loop {
                let record = api.record(&id).await;
                match record.data()["successFlag"].as_i64() {
                    Some(0) => tokio::time::sleep(Duration::from_millis(50)).await,
                    Some(flag) => return flag,
                    None => panic!("unexpected answer {:?}", record.json),
                }
            }
        });
    }
    let mut flags = Vec::new();
    while let Some(flag) = tasks.join_next().await {
        flags.push(flag.expect("task"));
    }
    assert_eq!(flags.len(), 200);
    assert!(flags.iter().all(|f| *f == 1));
    assert_eq!(sandbox.stats().tasks_created, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_runs_in_the_background_for_blocking_code() {
    let sandbox = tokio::task::spawn_blocking(|| {
        Sandbox::builder()
            .time_scale(0.0)
            .durations(Durations::uniform(Duration::from_secs(1)))
            .start_in_background()
            .expect("starts")
    })
    .await
    .expect("thread");
    let api = Api::new(sandbox.api_url(), KEY);
    let id = api.generate(&text("p")).await;
    tokio::task::spawn_blocking(move || {
        sandbox.advance(Duration::from_secs(1));
        assert_eq!(sandbox.task(&id).expect("task").success_flag, 1);
        sandbox.shutdown();
    })
    .await
    .expect("thread");
}

/// The built `veo3-sandbox` binary, built on demand with the same cargo and target dir.
fn sandbox_binary() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "veo3-sandbox",
            "--bin",
            "veo3-sandbox",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building veo3-sandbox failed");
    // The test binary lives in <target>/<profile>/deps/; the sandbox binary in <target>/debug/.
    let exe = std::env::current_exe().expect("test exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let target = profile_dir.parent().expect("target dir");
    let candidate = target.join("debug").join("veo3-sandbox");
    assert!(candidate.exists(), "{} not found", candidate.display());
    candidate
}

/// Kills the child on drop, so a failing test leaves no process behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(args: &[&str]) -> Value {
    let output = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("curl got JSON")
}

#[test]
fn the_quickstart_curl_commands_work_against_the_binary() {
    use std::io::BufRead as _;
    let binary = sandbox_binary();
    let mut child = Child(
        std::process::Command::new(binary)
            .args([
                "--port",
                "0",
                "--key",
                KEY,
                "--time-scale",
                "0.001",
                "--seed",
                "3",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sandbox binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let urls: Value = serde_json::from_str(&line).expect("one JSON line");
    let api = urls["api"].as_str().expect("api").to_owned();
    assert!(
        urls["files"]
            .as_str()
            .expect("files")
            .starts_with("http://127.0.0.1:")
    );
    let auth = format!("Authorization: Bearer {KEY}");

    // The quickstart's generate command, with only the base URL and key changed.
    let created = curl(&[
        "--request",
        "POST",
        "--url",
        &format!("{api}/api/v1/veo/generate"),
        "--header",
        &auth,
        "--header",
        "Content-Type: application/json",
        "--data",
        r#"{"prompt": "A dog playing in a park", "model": "veo3", "aspectRatio": "16:9", "callBackUrl": "http://127.0.0.1:9/callback"}"#,
    ]);
    assert_eq!(created["code"], 200, "{created}");
    let id = created["data"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_owned();

    // Poll record-info the quickstart way (60 s of service time pass in 60 ms).
    let record_url = format!("{api}/api/v1/veo/record-info?taskId={id}");
    let mut record = Value::Null;
    for _ in 0..400 {
        record = curl(&["--request", "GET", "--url", &record_url, "--header", &auth]);
        if record["data"]["successFlag"] != 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(record["data"]["successFlag"], 1, "{record}");

    let hd_url = format!("{api}/api/v1/veo/get-1080p-video?taskId={id}&index=0");
    let mut hd = Value::Null;
    for _ in 0..400 {
        hd = curl(&["--request", "GET", "--url", &hd_url, "--header", &auth]);
        if hd["code"] == 200 {
            break;
        }
        assert_eq!(hd["code"], 400, "{hd}");
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        hd["data"]["resultUrl"]
            .as_str()
            .expect("resultUrl")
            .ends_with(".mp4")
    );

    // SIGTERM stops it cleanly.
    let pid = child.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.0.wait().expect("exits");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_api_stores_files_on_the_file_host() {
    let (sandbox, api) = start(frozen()).await;
    let request: Value =
        serde_json::from_slice(&crate::support::fixture("request-upload-base64.json"))
            .expect("fixture");
    let uploaded = api.post("/api/file-base64-upload", &request).await;
    assert_eq!(uploaded.json["success"], true, "{:?}", uploaded.json);
    assert_eq!(uploaded.code(), 200);
    let data = uploaded.data();
    assert_eq!(data["fileName"], "pixel.png");
    assert_eq!(data["filePath"], "images/veo-inputs/pixel.png");
    assert_eq!(data["mimeType"], "image/png");
    let (status, headers, body) = fetch(data["downloadUrl"].as_str().expect("downloadUrl")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(&body[1..4], b"PNG");
    assert_eq!(data["fileSize"], body.len());

    // The service fetches a URL itself.
    let source = sandbox.big_file_url(1000);
    let fetched = api
        .post(
            "/api/file-url-upload",
            &json!({"fileUrl": source, "uploadPath": "inputs"}),
        )
        .await;
    assert_eq!(fetched.code(), 200, "{:?}", fetched.json);
    let (_, _, body) = fetch(fetched.data()["downloadUrl"].as_str().expect("url")).await;
    let expected: Vec<u8> = (0..1000).map(veo3_sandbox::big_file_byte).collect();
    assert_eq!(body, expected);

    // Multipart stream upload.
    let boundary = "XyZboundary";
    let mut form = Vec::new();
    form.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"uploadPath\"\r\n\r\nclips\r\n"
        )
        .as_bytes(),
    );
    form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
    form.extend_from_slice(&[0xff, 0xd8, 0xff, 0x00, 0x0d, 0x0a, 0x42]);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let streamed = api
        .http
        .post(format!("{}/api/file-stream-upload", api.base))
        .bearer_auth(KEY)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .expect("answered");
    let streamed: Value =
        serde_json::from_slice(&streamed.bytes().await.expect("body")).expect("JSON");
    assert_eq!(streamed["code"], 200, "{streamed}");
    assert_eq!(streamed["data"]["fileName"], "a_b.jpg");
    let (_, _, body) = fetch(streamed["data"]["downloadUrl"].as_str().expect("url")).await;
    assert_eq!(body, [0xff, 0xd8, 0xff, 0x00, 0x0d, 0x0a, 0x42]);

    let missing = api
        .post("/api/file-base64-upload", &json!({"base64Data": "AAAA"}))
        .await;
    assert_eq!(
        (missing.code(), missing.json["success"].clone()),
        (400, json!(false))
    );
    assert!(missing.msg().contains("uploadPath"));
    let unauthorized = api
        .with_key(Some("nope"))
        .post("/api/file-base64-upload", &request)
        .await;
    assert_eq!(unauthorized.code(), 401);
    assert_eq!(sandbox.stats().requests(Route::Upload), 5);
    assert!(sandbox.stats().file_auth_headers.is_empty());
}
