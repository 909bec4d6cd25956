//! Callbacks (modern and legacy shapes, HMAC, retries, duplicates) and the legacy record shape.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

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
async fn a_receiver_that_does_not_answer_in_time_counts_as_a_failure() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", silent.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let (sandbox, api) = start(
        frozen()
            .callback_timeout(Duration::from_millis(100))
            .callback_retries(1),
    )
    .await;
    let id = api
        .generate(&json!({"prompt": "p", "callBackUrl": url}))
        .await;
    sandbox.complete_now(&id);
    assert!(
        sandbox
            .wait_until(Duration::from_secs(20), |s| s.callbacks_abandoned == 1)
            .await
    );
    let stats = sandbox.stats();
    assert_eq!((stats.callbacks_failed, stats.callbacks_sent), (2, 0));
}
