//! Task outcomes and request faults, scripted and random.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

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
    // Several at once, then back to success.
    sandbox.script_outcomes(Route::Generate, Outcome::Internal, 2);
    let ids = [
        api.generate(&text("p")).await,
        api.generate(&text("p")).await,
        api.generate(&text("p")).await,
    ];
    sandbox.complete_all();
    let mut flags = Vec::new();
    for id in &ids {
        flags.push(api.record(id).await.data()["successFlag"].clone());
    }
    assert_eq!(flags, [json!(2), json!(2), json!(1)]);
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
    // A failed 4K job (its answers carry the source's id) may be requested again.
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
async fn a_stalled_download_delivers_half_pauses_then_the_rest() {
    let (sandbox, api) = start(frozen()).await;
    let id = api.generate(&text("p")).await;
    sandbox.complete_now(&id);
    let url = urls(&api.record(&id).await.data()["response"]["resultUrls"])[0].clone();
    let full = fetch(&url).await.2;
    for (target, expected) in [
        (url.clone(), full),
        (sandbox.big_file_url(1 << 20), {
            let big = fetch(&sandbox.big_file_url(1 << 20)).await.2;
            assert_eq!(big.len(), 1 << 20);
            big
        }),
    ] {
        // A stall long enough that the half is observably all there is while it lasts.
        sandbox.script_fault(Route::Download, Fault::Stall(Duration::from_secs(30)));
        let mut response = reqwest::get(&target).await.expect("headers arrive");
        let mut received = Vec::new();
        while received.len() < expected.len() / 2 {
            let chunk = response
                .chunk()
                .await
                .expect("a chunk")
                .expect("not the end");
            received.extend_from_slice(&chunk);
        }
        assert_eq!(received.len(), expected.len() / 2, "exactly half first");
        assert_eq!(received[..], expected[..expected.len() / 2]);
        let more = tokio::time::timeout(Duration::from_millis(200), response.chunk()).await;
        assert!(more.is_err(), "then nothing while the stall lasts");
    }
    // A short stall ends, and the body completes intact.
    sandbox.script_fault(Route::Download, Fault::Stall(Duration::from_millis(50)));
    assert_eq!(fetch(&url).await.2, fetch(&url).await.2);
    assert_eq!(sandbox.stats().faults("stall"), 3);
    let plan: FaultPlan = "download:stall@250".parse().expect("stall parses");
    assert_eq!(plan.len(), 1);
    assert!("download:stall@x".parse::<FaultPlan>().is_err());
}
