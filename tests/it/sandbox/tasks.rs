//! The list of every billed job the sandbox created (`SandboxHandle::tasks`,
//! `GET /__sandbox/tasks`): what "exactly one task per job" assertions are made of.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_billed_job_is_listed_once_in_creation_order_with_what_it_was_created_with() {
    let (sandbox, api) = start(frozen()).await;
    assert!(sandbox.tasks().is_empty());
    let image = format!("{}/big/10", sandbox.files_url());
    let first = api
        .generate(&json!({
            "prompt": "A red fox",
            "model": "veo3_fast",
            "imageUrls": [image],
            "callBackUrl": "http://127.0.0.1:9/cb?k=1&job=17%2Fb",
        }))
        .await;
    let second = api.generate(&text("A blue whale")).await;
    // Refused requests create nothing: a validation error, a 402, a 429.
    let refused = api.post(GENERATE, &json!({"model": "veo3_fast"})).await;
    assert_eq!(refused.code(), 422);
    sandbox.complete_now(&first);
    sandbox.complete_now(&second);
    let extended = api
        .post(
            "/api/v1/veo/extend",
            &json!({"taskId": first, "prompt": "and it runs", "model": "quality"}),
        )
        .await;
    assert_eq!(extended.code(), 200, "{:?}", extended.json);
    let extension = extended.data()["taskId"].as_str().expect("id").to_owned();
    let hd = format!("/api/v1/veo/get-1080p-video?taskId={second}&index=0");
    assert_eq!(api.get(&hd).await.code(), 400, "1080p is processing");
    assert_eq!(api.get(&hd).await.code(), 400, "asked again: the same job");
    let four_k = json!({"taskId": first, "index": 0, "callBackUrl": "http://127.0.0.1:9/4k"});
    assert_eq!(
        api.post("/api/v1/veo/get-4k-video", &four_k).await.code(),
        200
    );
    assert_eq!(
        api.post("/api/v1/veo/get-4k-video", &four_k).await.code(),
        422
    );

    let tasks = sandbox.tasks();
    let kinds: Vec<TaskKind> = tasks.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [
            TaskKind::Generate,
            TaskKind::Generate,
            TaskKind::Extend,
            TaskKind::Hd1080p,
            TaskKind::Upgrade4k
        ]
    );
    let ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(ids[..4], [&first[..], &second, &extension, &second]);
    assert!(
        !ids.contains(&"") && ids[4] != first,
        "the 4K job has an id of its own"
    );

    let fox = &tasks[0];
    assert_eq!(fox.prompt.as_deref(), Some("A red fox"));
    assert_eq!(fox.model.as_deref(), Some("veo3_fast"));
    assert_eq!(fox.image_urls, [image]);
    assert_eq!(fox.callback_param("job").as_deref(), Some("17/b"));
    assert_eq!(fox.callback_param("k").as_deref(), Some("1"));
    assert_eq!(fox.callback_param("missing"), None);
    assert_eq!(fox.create_time, sandbox.now_ms());
    assert_eq!(fox.success_flag, 1);
    assert_eq!(tasks[1].call_back_url, None);
    assert_eq!(tasks[1].callback_param("job"), None);
    assert!(tasks[1].image_urls.is_empty());
    assert_eq!(tasks[2].prompt.as_deref(), Some("and it runs"));
    assert_eq!(tasks[2].source_task_id.as_deref(), Some(&first[..]));
    assert_eq!(tasks[2].success_flag, 0);
    assert_eq!(
        (
            tasks[3].source_task_id.as_deref(),
            tasks[3].index,
            tasks[3].prompt.as_deref()
        ),
        (Some(&second[..]), Some(0), None)
    );
    assert_eq!(tasks[4].source_task_id.as_deref(), Some(&first[..]));
    assert_eq!(
        tasks[4].call_back_url.as_deref(),
        Some("http://127.0.0.1:9/4k")
    );
    assert_eq!(
        tasks.iter().filter(|t| t.kind != TaskKind::Hd1080p).count() as u64,
        sandbox.stats().tasks_created,
        "the list and the counter agree"
    );

    // The admin route shows the same list.
    let listed = api.with_key(None).get("/__sandbox/tasks").await;
    assert_eq!(listed.status, 200);
    let rows = listed.json.as_array().expect("an array").clone();
    assert_eq!(rows.len(), 5);
    let row_kinds: Vec<&str> = rows.iter().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(row_kinds, ["generate", "generate", "extend", "1080p", "4k"]);
    for (row, task) in rows.iter().zip(&tasks) {
        assert_eq!(row["taskId"], task.task_id.as_str());
        assert_eq!(row["prompt"], json!(task.prompt));
        assert_eq!(row["callBackUrl"], json!(task.call_back_url));
        assert_eq!(row["imageUrls"], json!(task.image_urls));
        assert_eq!(row["createTime"], task.create_time);
    }
    assert_eq!(rows[3]["index"], 0);
    assert_eq!(rows[0]["index"], Value::Null);

    // The 1080p job shows as done once its URL was handed out.
    sandbox.advance(Duration::from_secs(120));
    assert_eq!(api.get(&hd).await.code(), 200);
    assert_eq!(sandbox.tasks()[3].success_flag, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_still_lists_the_task_it_created() {
    // What the crash tests rely on: the client never heard of this task, the list has it.
    let (sandbox, api) = start(frozen()).await;
    sandbox.script_fault(Route::Generate, Fault::Lost);
    let lost = api.try_post(GENERATE, &text("lost one")).await;
    assert!(lost.is_err(), "the connection closed without an answer");
    let tasks = sandbox.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].prompt.as_deref(), Some("lost one"));
}
