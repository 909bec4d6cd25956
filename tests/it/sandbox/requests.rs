//! The front of the API: auth, validation, credits, rate limit, admin routes.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

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
async fn a_configured_rate_limit_allows_max_generations_per_window_of_service_time() {
    let limit: RateLimit = "3/10s".parse().expect("a rate limit");
    let (sandbox, api) = start(frozen().rate_limit(Some(limit))).await;
    let source = api.generate(&text("p")).await;
    sandbox.complete_now(&source);
    api.generate(&text("p")).await;
    // Extensions share the generations' window.
    let extend = json!({"taskId": source, "prompt": "more"});
    assert_eq!(api.post("/api/v1/veo/extend", &extend).await.code(), 200);
    assert_eq!(api.post(GENERATE, &text("p")).await.code(), 429);
    assert_eq!(api.post("/api/v1/veo/extend", &extend).await.code(), 429);
    // The window is service time: the frozen clock keeps it shut until it is advanced.
    sandbox.advance(Duration::from_millis(9_999));
    assert_eq!(api.post(GENERATE, &text("p")).await.code(), 429);
    sandbox.advance(Duration::from_millis(1));
    assert_eq!(api.post(GENERATE, &text("p")).await.code(), 200);
    let stats = sandbox.stats();
    assert_eq!((stats.rate_limited, stats.answered_429), (3, 3));
    assert_eq!(stats.tasks_created, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_builder_settings_are_refused_at_start_naming_the_setting() {
    let empty_window = RateLimit {
        max: 5,
        window: Duration::ZERO,
    };
    let no_requests = RateLimit {
        max: 0,
        window: Duration::from_secs(10),
    };
    let cases = [
        (frozen().time_scale(f64::NAN), "time_scale"),
        (frozen().time_scale(f64::INFINITY), "time_scale"),
        (frozen().time_scale(-1.0), "time_scale"),
        (frozen().rate_limit(Some(empty_window)), "rate_limit"),
        (frozen().rate_limit(Some(no_requests)), "rate_limit"),
        (frozen().initial_credits(-1), "initial_credits"),
        (frozen().credits(KEY, -1), "credits"),
        (
            frozen().callback_timeout(Duration::ZERO),
            "callback_timeout",
        ),
        (frozen().retention(Duration::ZERO), "retention"),
        (frozen().result_url_ttl(Duration::ZERO), "result_url_ttl"),
        (
            frozen().download_url_ttl(Duration::ZERO),
            "download_url_ttl",
        ),
    ];
    for (builder, setting) in cases {
        let error = builder.start().await.expect_err(setting);
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{setting}");
        assert!(error.to_string().contains(setting), "{setting}: {error}");
    }
    // 0 is a time scale of its own: the frozen clock the tests move by hand.
    start(frozen().time_scale(0.0).initial_credits(0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_429_answer_is_counted_whoever_produced_it() {
    let limit = RateLimit {
        max: 1,
        window: Duration::from_secs(10),
    };
    let (sandbox, api) = start(frozen().rate_limit(Some(limit))).await;
    api.generate(&text("p")).await;
    assert_eq!(api.post(GENERATE, &text("p")).await.code(), 429);
    sandbox.script_fault(Route::Credits, Fault::RateLimited(3));
    sandbox.script_fault(Route::RecordInfo, Fault::Envelope(429));
    sandbox.script_fault(Route::Credits, Fault::Http(429));
    sandbox.script_fault(Route::Download, Fault::RateLimited(1));
    assert_eq!(api.get("/api/v1/chat/credit").await.code(), 429);
    assert_eq!(api.record("nope").await.code(), 429);
    assert_eq!(api.get("/api/v1/chat/credit").await.status, 429);
    let file = reqwest::get(sandbox.big_file_url(10))
        .await
        .expect("answered");
    assert_eq!(file.status(), 429);
    // Answers that are not 429 are not counted.
    assert_eq!(api.get("/api/v1/chat/credit").await.code(), 200);
    assert_eq!(api.post(GENERATE, &json!({})).await.code(), 422);
    let stats = sandbox.stats();
    assert_eq!(stats.rate_limited, 1, "only the limiter's own refusals");
    assert_eq!(stats.answered_429, 5, "{stats:?}");

    let admin = api.with_key(None);
    let json = admin.get("/__sandbox/stats").await.json;
    assert_eq!(json["answered429"], 5, "{json}");
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

    let put = |path: &str, body: Value| {
        let request = api
            .http
            .put(format!("{}{path}", api.base))
            .body(body.to_string());
        async move { request.send().await.expect("PUT").status() }
    };
    let reset = api
        .http
        .put(format!("{}/__sandbox/faults", api.base))
        .body("")
        .send()
        .await
        .expect("PUT");
    assert_eq!(reset.status(), 200, "an empty spec clears the plan");
    assert_eq!(
        put("/__sandbox/shape", json!({"shape": "legacy"})).await,
        200
    );
    assert_eq!(api.record(&id).await.data()["status"], 2, "legacy shape");
    assert_eq!(
        put("/__sandbox/shape", json!({"shape": "weird"})).await,
        400
    );
    assert_eq!(
        put("/__sandbox/callbacks", json!({"enabled": false})).await,
        200
    );
    admin
        .post(
            "/__sandbox/script",
            &json!({"route": "credit", "action": "500"}),
        )
        .await;
    let cleared = api
        .http
        .delete(format!("{}/__sandbox/script", api.base))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(cleared.status(), 200);
    assert_eq!(
        api.get("/api/v1/chat/credit").await.code(),
        200,
        "script dropped"
    );

    sandbox.set_credits(KEY, 1000);
    let pending = api.generate(&text("p")).await;
    let all = admin.post("/__sandbox/complete", &json!({})).await;
    assert_eq!(all.json["completed"], 1);
    assert_eq!(sandbox.task(&pending).expect("task").success_flag, 1);

    let stats = admin.get("/__sandbox/stats").await;
    assert_eq!(stats.json["tasksCreated"], 3);
    assert_eq!(stats.json["requests"]["credit"], 5);
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
