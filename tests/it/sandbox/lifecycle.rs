//! Task lifecycle over the service clock: generation, 1080p, 4K, extend, URL expiry, retention.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

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
async fn a_finished_1080p_job_is_readable_through_record_info_of_its_source() {
    // The reference: "The 1080P job itself is also queryable through record-info"; its
    // endpoint gives no id of its own, so the source's record shows it once it is ready.
    let (sandbox, api) = start(frozen()).await;
    let id = api.generate(&text("p")).await;
    sandbox.complete_now(&id);
    let before = api.record(&id).await;
    let original = urls(&before.data()["response"]["resultUrls"]);
    assert_eq!(before.data()["response"]["resolution"], "720p");

    let path = format!("/api/v1/veo/get-1080p-video?taskId={id}&index=0");
    assert_eq!(api.get(&path).await.code(), 400);
    let processing = api.record(&id).await;
    assert_eq!(processing.data()["successFlag"], 1);
    assert_eq!(
        processing.data()["response"]["resolution"],
        "720p",
        "still processing"
    );
    assert_eq!(urls(&processing.data()["response"]["resultUrls"]), original);

    sandbox.advance(Duration::from_secs(90));
    let ready = api.record(&id).await;
    assert_eq!(ready.data()["successFlag"], 1);
    assert_eq!(ready.data()["response"]["resolution"], "1080p");
    let shown = urls(&ready.data()["response"]["resultUrls"]);
    assert!(shown[0].ends_with("_1080p.mp4"), "{shown:?}");
    // The same stable URL the 1080p endpoint answers.
    let answered = api.get(&path).await;
    assert_eq!(answered.data()["resultUrl"], shown[0].as_str());
    assert_eq!(api.record(&id).await.data(), ready.data());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_k_answers_echo_the_source_task_id_as_the_references_examples_do() {
    // Every 4K example of the reference (first answer, both 422s, the callback) carries the
    // source task's id; none shows an id of the 4K job's own. The sandbox follows them.
    let (sandbox, api) = start(frozen()).await;
    let id = api.generate(&text("p")).await;
    sandbox.complete_now(&id);
    let body = json!({"taskId": id, "index": 0});
    let accepted = api.post("/api/v1/veo/get-4k-video", &body).await;
    assert_eq!(accepted.data()["taskId"], id.as_str());
    let processing = api.post("/api/v1/veo/get-4k-video", &body).await;
    assert_eq!(processing.data()["taskId"], id.as_str());
    sandbox.advance(Duration::from_secs(300));
    let done = api.post("/api/v1/veo/get-4k-video", &body).await;
    assert_eq!(done.code(), 422);
    assert_eq!(done.data()["taskId"], id.as_str());
    // The source's record stays the generation's.
    let record = api.record(&id).await;
    assert_eq!(record.data()["response"]["resolution"], "720p");
    assert_eq!(
        sandbox.stats().tasks_created,
        2,
        "the 4K job is a task of its own inside"
    );
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
    assert_eq!(sandbox.credits(KEY), before - 120);

    let processing = api.post("/api/v1/veo/get-4k-video", &body).await;
    assert_eq!(processing.code(), 422);
    assert!(processing.msg().starts_with("4k is processing"));
    assert_eq!(processing.data()["resultUrls"], Value::Null);

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
    // Long after the window, the sandbox forgets the task (bounded memory).
    sandbox.advance(Duration::from_secs(15 * 24 * 3600));
    assert_eq!(api.record(&id).await.msg(), "record is null");
    assert!(sandbox.task(&id).is_none());
    // Another key cannot see the task at all.
    let (sandbox, api) = start(Sandbox::builder().time_scale(0.0)).await;
    let id = api.with_key(Some("alice")).generate(&text("p")).await;
    let foreign = api.with_key(Some("bob")).record(&id).await;
    assert_eq!(foreign.msg(), "record is null");
    assert!(sandbox.task(&id).is_some());
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

#[tokio::test]
async fn a_sandbox_runs_on_a_current_thread_runtime() {
    let sandbox = Sandbox::builder()
        .keys(["k1", "k2"])
        .time_scale(0.0)
        .start()
        .await
        .expect("starts");
    let api = Api::new(sandbox.api_url(), "k2");
    let first = api.generate(&text("p")).await;
    sandbox.advance(Duration::from_secs(30));
    assert_eq!(api.record(&first).await.data()["successFlag"], 1);
    let second = api.generate(&text("p")).await;
    let third = api.generate(&text("p")).await;
    assert_eq!(sandbox.complete_all(), 2);
    for id in [second, third] {
        assert_eq!(api.record(&id).await.data()["successFlag"], 1);
    }
}
