//! Integration tests: the callback receiver over real loopback HTTP, the sandbox delivering
//! signed callbacks to it, and the clients' hybrid waits that finish on those callbacks.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use veo3_core::{Event, Observer, PollSchedule, PollTrigger, Veo3Api};
use veo3_sandbox::{Outcome, Route, Sandbox, SandboxHandle};
use veo3_types::{GenerateRequest, Model, TaskState};
use veo3_webhook::{
    BlockingReceiver, Config, Receiver, RejectReason, VerifiedCallback, Verifier, WebhookKey,
};
use veo3_webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

use crate::support::fixture;

const KEY: &str = "test_webhook_hmac_key_0123456789";
const TASK: &str = "task-0123456789abcdef";
/// Generous bound for things that happen in the background; never reached when the code works.
const PATIENCE: Duration = Duration::from_secs(60);

fn key(text: &str) -> WebhookKey {
    WebhookKey::new(text).expect("non-empty key")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn success_body(task_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "code": 200,
        "msg": "Veo3.1 video generated successfully.",
        "data": {
            "taskId": task_id,
            "info": {"resultUrls": [format!("https://cdn.example.com/{task_id}.mp4")], "originUrls": null},
            "fallbackFlag": false
        }
    }))
    .expect("serializable")
}

/// The application side of a receiver: every callback its handler was given.
#[derive(Clone, Default)]
struct Delivered(Arc<Mutex<Vec<VerifiedCallback>>>);

impl Delivered {
    fn config(&self, verifier: Verifier) -> Config {
        let sink = self.0.clone();
        Config::new(verifier).on_callback(move |callback| {
            sink.lock().expect("not poisoned").push(callback);
        })
    }

    fn task_ids(&self) -> Vec<String> {
        let delivered = self.0.lock().expect("not poisoned");
        delivered.iter().map(|c| c.task_id.clone()).collect()
    }
}

async fn start(verifier: Verifier) -> (Receiver, Delivered) {
    let delivered = Delivered::default();
    let receiver = Receiver::bind("127.0.0.1:0", delivered.config(verifier))
        .await
        .expect("bind loopback");
    (receiver, delivered)
}

/// POSTs `body` with `headers`; the status and the JSON answer.
async fn post(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("receiver answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("answer body");
    let answer = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, answer)
}

/// Header names and values to send.
type Headers = Vec<(&'static str, String)>;

fn signed(key: &WebhookKey, task_id: &str, timestamp: u64) -> Headers {
    let timestamp = timestamp.to_string();
    vec![
        (SIGNATURE_HEADER, key.sign(task_id, &timestamp)),
        (TIMESTAMP_HEADER, timestamp),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_callback_posted_three_times_is_delivered_once() {
    let (receiver, delivered) = start(Verifier::new(key(KEY))).await;
    let url = receiver.url("/veo3/callback");
    let headers = signed(&key(KEY), TASK, now());
    for _ in 0..3 {
        let (status, answer) = post(&url, &headers, success_body(TASK)).await;
        assert_eq!(status, 200);
        assert_eq!(answer, json!({"code": 200, "msg": "success"}));
    }
    assert_eq!(delivered.task_ids(), [TASK]);
    let stats = receiver.stats();
    assert_eq!(
        (stats.delivered, stats.duplicates, stats.rejected),
        (1, 2, 0)
    );
    // The inbox got it once too, for a hybrid wait to pick up.
    let inbox = receiver.inbox();
    let arrived = inbox.try_take(TASK).expect("kept for the waiter");
    assert!(arrived.is_authenticated());
    assert_eq!(
        arrived.callback.result_urls(),
        [format!("https://cdn.example.com/{TASK}.mp4")]
    );
    assert!(inbox.try_take(TASK).is_none());
    receiver.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_malformed_and_oversized_requests_are_rejected_and_never_delivered() {
    let limit = 4096;
    let (receiver, delivered) = start(Verifier::new(key(KEY)).max_body_bytes(limit)).await;
    let url = receiver.url("/any/path");
    let now = now();
    let good = signed(&key(KEY), TASK, now);
    let ts = now.to_string();
    let oversized = {
        let mut body = success_body(TASK);
        body.truncate(body.len() - 2);
        body.extend(format!(r#","pad":"{}"}}}}"#, "x".repeat(limit)).bytes());
        body
    };
    let cases: Vec<(&str, Headers, Vec<u8>, u16)> = vec![
        (
            "forged signature",
            vec![
                (TIMESTAMP_HEADER, ts.clone()),
                (
                    SIGNATURE_HEADER,
                    "fMhBtXDLyt/vyA/PLaFS2P1XwCk/91pXYffoZ6B4oo8=".into(),
                ),
            ],
            success_body(TASK),
            401,
        ),
        (
            "signed with another key",
            signed(&key("not-the-account-key"), TASK, now),
            success_body(TASK),
            401,
        ),
        (
            "stale timestamp",
            signed(&key(KEY), TASK, now - 3600),
            success_body(TASK),
            401,
        ),
        (
            "future timestamp",
            signed(&key(KEY), TASK, now + 3600),
            success_body(TASK),
            401,
        ),
        (
            "body names another task than the signed one",
            good.clone(),
            success_body("some-other-task"),
            401,
        ),
        (
            "missing signature",
            vec![(TIMESTAMP_HEADER, ts.clone())],
            success_body(TASK),
            401,
        ),
        (
            "missing timestamp",
            vec![(SIGNATURE_HEADER, key(KEY).sign(TASK, &ts))],
            success_body(TASK),
            401,
        ),
        ("no headers at all", vec![], success_body(TASK), 401),
        (
            "malformed timestamp",
            vec![
                (TIMESTAMP_HEADER, "yesterday".into()),
                (SIGNATURE_HEADER, key(KEY).sign(TASK, "yesterday")),
            ],
            success_body(TASK),
            400,
        ),
        (
            "malformed JSON",
            good.clone(),
            br#"{"code":200,"data":{"taskId":"task-0123456789abcdef""#.to_vec(),
            400,
        ),
        (
            "no task id",
            good.clone(),
            br#"{"code":500,"msg":"The 4K version is unavailable.","data":null}"#.to_vec(),
            400,
        ),
        ("oversized body", good.clone(), oversized, 413),
    ];
    let count = cases.len() as u64;
    for (name, headers, body, expected) in cases {
        let (status, answer) = post(&url, &headers, body).await;
        assert_eq!(status, expected, "{name}: {answer}");
        assert_eq!(answer["code"], expected, "{name}: {answer}");
        let message = answer["msg"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{name}: the answer names the problem");
        assert!(!message.contains(KEY), "{name}: {message}");
    }
    assert!(
        delivered.task_ids().is_empty(),
        "rejections reached the application"
    );
    assert_eq!(receiver.inbox().kept_len(), 0);
    let stats = receiver.stats();
    assert_eq!((stats.delivered, stats.rejected), (0, count));

    // Only POST is a callback.
    let status = reqwest::get(&url).await.expect("answers").status();
    assert_eq!(status.as_u16(), 405);
    assert!(delivered.task_ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_chunked_body_is_refused_without_reading_it_all() {
    let limit = 1024;
    let (receiver, delivered) = start(Verifier::new(key(KEY)).max_body_bytes(limit)).await;
    let headers = signed(&key(KEY), TASK, now());
    let mut stream = tokio::net::TcpStream::connect(receiver.local_addr())
        .await
        .expect("connect");
    let mut head = String::from(
        "POST /cb HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n",
    );
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    // No Content-Length: the limit must be enforced while reading. Send twice the limit and
    // never terminate the body; the receiver answers as soon as the limit is crossed.
    let chunk = vec![b' '; limit];
    for _ in 0..2 {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        stream.write_all(&framed).await.expect("write chunk");
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(delivered.task_ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_signature_vector_verifies_in_core_and_over_http() {
    let vector: Value = serde_json::from_slice(&fixture("webhook-signature-example.json"))
        .expect("fixture is JSON");
    let hmac_key = vector["webhookHmacKey"].as_str().expect("key");
    let timestamp = vector["headers"][TIMESTAMP_HEADER]
        .as_str()
        .expect("timestamp");
    let signature = vector["headers"][SIGNATURE_HEADER]
        .as_str()
        .expect("signature");
    let body = serde_json::to_vec(&vector["body"]).expect("serializable");
    let task_id = vector["body"]["data"]["taskId"].as_str().expect("task id");
    let signed_at: u64 = timestamp.parse().expect("seconds");
    assert_eq!(
        vector["signedString"].as_str(),
        Some(format!("{task_id}.{timestamp}").as_str())
    );
    assert_eq!(key(hmac_key).sign(task_id, timestamp), signature);

    let verifier = Verifier::new(key(hmac_key));
    let verified = verifier
        .verify(Some(timestamp), Some(signature), &body, signed_at + 1)
        .expect("the reference example verifies");
    assert_eq!(verified.task_id, task_id);
    assert_eq!(
        verifier.verify(Some(timestamp), Some(signature), &body, signed_at + 3600),
        Err(RejectReason::StaleTimestamp { age_secs: 3600 })
    );

    // Over HTTP, with the receiver's clock set to the example's time.
    let delivered = Delivered::default();
    let config = delivered.config(verifier).clock(move || signed_at);
    let receiver = Receiver::bind("127.0.0.1:0", config).await.expect("bind");
    let headers = [
        (TIMESTAMP_HEADER, timestamp.to_owned()),
        (SIGNATURE_HEADER, signature.to_owned()),
    ];
    let (status, _) = post(&receiver.url("/"), &headers, body).await;
    assert_eq!(status, 200);
    assert_eq!(delivered.task_ids(), [task_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_and_unsigned_mode_over_http() {
    let old = key("old-account-key");
    let (receiver, delivered) = start(Verifier::new(key(KEY)).add_key(old.clone())).await;
    let (status, _) = post(
        &receiver.url("/"),
        &signed(&old, "t-old", now()),
        success_body("t-old"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &receiver.url("/"),
        &signed(&key(KEY), "t-new", now()),
        success_body("t-new"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(delivered.task_ids(), ["t-old", "t-new"]);

    // Unsigned mode must be chosen explicitly; then headers are not needed.
    let (receiver, delivered) = start(Verifier::unsigned()).await;
    let (status, _) = post(&receiver.url("/"), &[], success_body(TASK)).await;
    assert_eq!(status, 200);
    let only = delivered.0.lock().expect("not poisoned").clone();
    assert_eq!(only.len(), 1);
    assert!(!only[0].is_authenticated());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_gets_the_redelivery() {
    let calls = Arc::new(Mutex::new(0_u32));
    let seen = calls.clone();
    let config = Config::new(Verifier::new(key(KEY))).on_callback(move |_| {
        let mut calls = seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *calls += 1;
        assert!(*calls > 1, "the application fails on the first delivery");
    });
    let receiver = Receiver::bind("127.0.0.1:0", config).await.expect("bind");
    let headers = signed(&key(KEY), TASK, now());
    let (status, _) = post(&receiver.url("/"), &headers, success_body(TASK)).await;
    assert_eq!(status, 500, "kie must deliver again");
    let (status, _) = post(&receiver.url("/"), &headers, success_body(TASK)).await;
    assert_eq!(status, 200);
    assert_eq!(*calls.lock().unwrap_or_else(|p| p.into_inner()), 2);
    assert_eq!(receiver.stats().delivered, 1);
}

#[test]
fn the_blocking_receiver_serves_from_its_own_thread_and_wakes_a_blocking_wait() {
    let receiver =
        BlockingReceiver::bind("127.0.0.1:0", Config::new(Verifier::new(key(KEY)))).expect("bind");
    let inbox = receiver.inbox();
    let addr = receiver.local_addr();
    let poster = std::thread::spawn(move || {
        let body = success_body(TASK);
        let mut request = format!(
            "POST /cb HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in signed(&key(KEY), TASK, now()) {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.write_all(request.as_bytes()).expect("write head");
        stream.write_all(&body).expect("write body");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read answer");
        answer
    });
    let arrived = inbox
        .wait_timeout(TASK, PATIENCE)
        .expect("the callback wakes the wait");
    assert_eq!(arrived.task_id, TASK);
    let answer = poster.join().expect("poster thread");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(r#"{"code":200,"msg":"success"}"#),
        "{answer}"
    );
    receiver.shutdown().expect("clean shutdown");
}

/// Creates a task on the sandbox with `callBackUrl`; its id.
/// Slowloris: clients that open a connection and stall, in the request head or in the body,
/// are cut off by the receiver's timeouts, so a genuine callback gets through although the
/// stalled clients took every connection the receiver allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_timed_out_and_do_not_starve_a_valid_callback() {
    const SLOTS: usize = 8;
    let delivered = Delivered::default();
    let config = delivered
        .config(Verifier::new(key(KEY)))
        .header_timeout(Duration::from_millis(200))
        .request_timeout(Duration::from_millis(200))
        .max_connections(SLOTS);
    let receiver = Receiver::bind("127.0.0.1:0", config)
        .await
        .expect("bind loopback");
    let addr = receiver.local_addr();
    let mut stalled = Vec::new();
    for slot in 0..SLOTS {
        let partial = if slot % 2 == 0 {
            "POST /cb HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl".to_owned()
        } else {
            "POST /cb HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{\"code\":"
                .to_owned()
        };
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(partial.as_bytes()).await.expect("write");
        stalled.push(stream);
    }
    // Queued behind the stalled clients: served once the first of them is timed out.
    let (status, _) = post(
        &receiver.url("/veo3/callback"),
        &signed(&key(KEY), TASK, now()),
        success_body(TASK),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(delivered.task_ids(), [TASK]);
    // Every stalled client was cut off (a 408 for a stalled body, or just closed).
    for mut stream in stalled {
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "a stalled connection was left open");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    assert_eq!(receiver.stats().rejected, 0);
}

async fn create_task(api_url: &str, call_back_url: &str) -> String {
    let request = json!({
        "prompt": "A red fox trotting through fresh snow at dawn",
        "model": "veo3_fast",
        "callBackUrl": call_back_url,
    });
    let answer = reqwest::Client::new()
        .post(format!("{api_url}/api/v1/veo/generate"))
        .bearer_auth("sandbox-key")
        .header("Content-Type", "application/json")
        .body(request.to_string())
        .send()
        .await
        .expect("sandbox answers")
        .bytes()
        .await
        .expect("answer body");
    let created: Value = serde_json::from_slice(&answer).expect("JSON envelope");
    assert_eq!(created["code"], 200, "{created}");
    created["data"]["taskId"]
        .as_str()
        .expect("task id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_signs_callbacks_that_verify_and_duplicates_reach_the_application_once() {
    let sandbox = Sandbox::builder()
        .key("sandbox-key")
        .time_scale(0.0)
        .hmac_key(KEY)
        .callback_duplicates(true)
        .start()
        .await
        .expect("sandbox starts");
    let (receiver, delivered) = start(Verifier::new(key(KEY))).await;
    let inbox = receiver.inbox();
    let call_back_url = receiver.url("/veo3/callback");

    let succeeded = create_task(sandbox.api_url(), &call_back_url).await;
    sandbox.script_outcome(Route::Generate, Outcome::Moderation);
    let moderated = create_task(sandbox.api_url(), &call_back_url).await;
    assert!(sandbox.complete_now(&succeeded));
    assert!(sandbox.complete_now(&moderated));

    let first = inbox
        .wait_until(&succeeded, tokio::time::sleep(PATIENCE))
        .await
        .expect("the success callback arrives");
    assert!(first.is_authenticated());
    assert!(first.callback.is_success());
    assert!(!first.callback.result_urls().is_empty());
    let second = inbox
        .wait_until(&moderated, tokio::time::sleep(PATIENCE))
        .await
        .expect("the failure callback arrives");
    assert_eq!(second.callback.code.as_i64(), 400);

    // Each callback is sent twice; wait until all four deliveries were answered.
    assert!(
        sandbox
            .wait_until(PATIENCE, |stats| stats.callbacks_sent >= 4)
            .await
    );
    let mut task_ids = delivered.task_ids();
    task_ids.sort();
    let mut expected = vec![succeeded, moderated];
    expected.sort();
    assert_eq!(task_ids, expected);
    let stats = receiver.stats();
    assert_eq!(
        (stats.delivered, stats.duplicates, stats.rejected),
        (2, 2, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_signed_with_another_key_are_refused_until_the_sandbox_gives_up() {
    let sandbox = Sandbox::builder()
        .key("sandbox-key")
        .time_scale(0.0)
        .hmac_key("a-key-the-receiver-does-not-know")
        .callback_retries(2)
        .start()
        .await
        .expect("sandbox starts");
    let (receiver, delivered) = start(Verifier::new(key(KEY))).await;
    let task = create_task(sandbox.api_url(), &receiver.url("/cb")).await;
    assert!(sandbox.complete_now(&task));
    assert!(
        sandbox
            .wait_until(PATIENCE, |stats| stats.callbacks_abandoned >= 1)
            .await
    );
    let sent = sandbox.stats();
    assert_eq!((sent.callbacks_sent, sent.callbacks_failed), (0, 3));
    assert!(delivered.task_ids().is_empty());
    assert_eq!(receiver.stats().rejected, 3);
    assert!(receiver.inbox().try_take(&task).is_none());
}

/// Whether `krate` appears in a `cargo tree` listing.
#[test]
fn only_users_of_the_receiver_compile_a_server() {
    use crate::support::in_tree;
    // Users who poll must not pay for axum: the clients' default trees stay free of it.
    for client in ["veo3-reqwest", "veo3-blocking"] {
        let tree = crate::support::cargo_tree(client);
        assert!(in_tree(&tree, client), "the tree was read: {tree}");
        assert!(!in_tree(&tree, "axum"), "axum in {client}'s tree:\n{tree}");
    }
    // And the receiver needs no HTTP client or TLS stack.
    let tree = crate::support::cargo_tree("veo3-webhook");
    assert!(in_tree(&tree, "axum"), "the tree was read: {tree}");
    for forbidden in ["reqwest", "ureq", "rustls"] {
        assert!(
            !in_tree(&tree, forbidden),
            "{forbidden} in veo3-webhook's tree:\n{tree}"
        );
    }
}

// Hybrid waits: the clients against the sandbox, with the sandbox signing its callbacks and a
// veo3-webhook receiver feeding the inbox the waits listen on.

/// A safety net no test outlives: if a hybrid wait returns, a callback made it return.
fn ten_minute_safety_net() -> PollSchedule {
    PollSchedule::new(
        Duration::from_secs(600),
        Duration::from_secs(600),
        Duration::from_secs(1800),
    )
}

/// A safety net that polls quickly, for sandboxes that send no callbacks.
fn quick_safety_net() -> PollSchedule {
    PollSchedule::new(
        Duration::from_millis(20),
        Duration::from_millis(20),
        PATIENCE,
    )
}

/// Every event a client emitted.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    fn observer(&self) -> Observer {
        let sink = self.0.clone();
        Observer::new(move |event: &Event| sink.lock().expect("not poisoned").push(event.clone()))
    }

    /// What triggered each poll, in order.
    fn triggers(&self) -> Vec<PollTrigger> {
        let events = self.0.lock().expect("not poisoned");
        events
            .iter()
            .filter_map(|event| match event {
                Event::Polled { trigger, .. } => Some(*trigger),
                _ => None,
            })
            .collect()
    }
}

fn fox_with_callback(call_back_url: &str) -> GenerateRequest {
    GenerateRequest::builder("A red fox trotting through fresh snow at dawn")
        .model(Model::Veo3Fast)
        .call_back_url(call_back_url)
        .build()
        .expect("valid request")
}

/// A sandbox on a stopped clock (tasks finish when the test says so) signing callbacks.
fn signing_sandbox() -> veo3_sandbox::SandboxBuilder {
    Sandbox::builder()
        .key("sandbox-key")
        .time_scale(0.0)
        .hmac_key(KEY)
}

fn async_client(sandbox: &SandboxHandle, events: &Events) -> veo3_reqwest::Client {
    veo3_reqwest::Client::builder()
        .api_key("sandbox-key")
        .base_url(sandbox.api_url())
        .observer(events.observer())
        .build()
        .expect("client")
}

fn blocking_client(sandbox: &SandboxHandle, events: &Events) -> veo3_blocking::Client {
    veo3_blocking::Client::builder()
        .api_key("sandbox-key")
        .base_url(sandbox.api_url())
        .observer(events.observer())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_wait_returns_on_the_callback_after_one_confirming_read() {
    let sandbox = signing_sandbox().start().await.expect("sandbox starts");
    let (receiver, delivered) = start(Verifier::new(key(KEY))).await;
    let inbox = receiver.inbox();
    let events = Events::default();
    let client = async_client(&sandbox, &events);
    let task = client
        .generate(&fox_with_callback(&receiver.url("/veo3/callback")))
        .await
        .expect("created")
        .task_id;

    let wait = veo3_reqwest::WaitOptions::default().schedule(ten_minute_safety_net());
    let waiting = {
        let (client, inbox, task) = (client.clone(), inbox.clone(), task.clone());
        tokio::spawn(async move { client.wait_for_task_hybrid(&task, &inbox, &wait).await })
    };
    // Finish the task once the wait is listening, so the callback wakes a sleeping wait.
    tokio::time::timeout(PATIENCE, async {
        while inbox.waiting() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the wait listens on the inbox");
    assert_eq!(sandbox.stats().requests(Route::RecordInfo), 0);
    assert!(sandbox.complete_now(&task));

    let record = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("the callback ends the wait")
        .expect("wait task")
        .expect("success");
    assert_eq!(record.task_id, task);
    assert_eq!(record.state, TaskState::Success);
    assert!(!record.video_urls().is_empty());
    // Ten minutes of safety net never elapsed: the callback ended the wait, and the only
    // status request was the read confirming it.
    assert_eq!(sandbox.stats().requests(Route::RecordInfo), 1);
    assert_eq!(events.triggers(), [PollTrigger::Callback]);
    assert_eq!(delivered.task_ids(), [task]);
    assert_eq!(inbox.waiting(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_and_wait_hybrid_finishes_with_a_failure_the_callback_announced() {
    let sandbox = signing_sandbox().start().await.expect("sandbox starts");
    let (receiver, _) = start(Verifier::new(key(KEY))).await;
    let events = Events::default();
    let client = async_client(&sandbox, &events);
    sandbox.script_outcome(Route::Generate, Outcome::Moderation);
    let wait = veo3_reqwest::WaitOptions::default().schedule(ten_minute_safety_net());
    let request = fox_with_callback(&receiver.url("/cb"));
    let inbox = receiver.inbox();
    let flow = client.generate_and_wait_hybrid(&request, &inbox, &wait);
    let completer = async {
        // Finish the task as soon as the flow announces it (its Submitted event).
        loop {
            let submitted = events
                .0
                .lock()
                .expect("not poisoned")
                .iter()
                .find_map(|event| event.task_id().map(str::to_owned));
            if let Some(task) = submitted {
                assert!(sandbox.complete_now(&task));
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    let (result, ()) = tokio::time::timeout(PATIENCE, async { tokio::join!(flow, completer) })
        .await
        .expect("the flow ends");
    let error = result.expect_err("moderated");
    assert!(error.is_task_failed(), "{error}");
    assert!(error.task_id().is_some());
    assert_eq!(sandbox.stats().requests(Route::Generate), 1);
    assert_eq!(sandbox.stats().requests(Route::RecordInfo), 1);
    assert_eq!(events.triggers(), [PollTrigger::Callback]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_callbacks_off_a_hybrid_wait_finishes_by_polling() {
    // The clock runs (30 s of service time take 30 ms) and nothing is ever called back.
    let sandbox = Sandbox::builder()
        .key("sandbox-key")
        .time_scale(0.001)
        .hmac_key(KEY)
        .callbacks(false)
        .start()
        .await
        .expect("sandbox starts");
    let (receiver, delivered) = start(Verifier::new(key(KEY))).await;
    let events = Events::default();
    let client = async_client(&sandbox, &events);
    let wait = veo3_reqwest::WaitOptions::default().schedule(quick_safety_net());
    let record = client
        .generate_and_wait_hybrid(
            &fox_with_callback(&receiver.url("/cb")),
            &receiver.inbox(),
            &wait,
        )
        .await
        .expect("found by the safety net");
    assert_eq!(record.state, TaskState::Success);
    let triggers = events.triggers();
    assert!(!triggers.is_empty());
    assert!(
        triggers.iter().all(|t| *t == PollTrigger::Schedule),
        "{triggers:?}"
    );
    assert_eq!(
        sandbox.stats().requests(Route::RecordInfo),
        triggers.len() as u64
    );
    assert_eq!(sandbox.stats().callbacks_sent, 0);
    assert!(delivered.task_ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_callback_reaches_the_application_once_and_costs_one_read() {
    let sandbox = signing_sandbox()
        .callback_duplicates(true)
        .start()
        .await
        .expect("sandbox starts");
    let (receiver, delivered) = start(Verifier::new(key(KEY))).await;
    let events = Events::default();
    let client = async_client(&sandbox, &events);
    let task = client
        .generate(&fox_with_callback(&receiver.url("/cb")))
        .await
        .expect("created")
        .task_id;
    assert!(sandbox.complete_now(&task));
    let wait = veo3_reqwest::WaitOptions::default().schedule(ten_minute_safety_net());
    let record = tokio::time::timeout(
        PATIENCE,
        client.wait_for_task_hybrid(&task, &receiver.inbox(), &wait),
    )
    .await
    .expect("the callback ends the wait")
    .expect("success");
    assert_eq!(record.state, TaskState::Success);
    // Both copies were answered 200; the second was recognised as a redelivery.
    assert!(
        sandbox
            .wait_until(PATIENCE, |stats| stats.callbacks_sent >= 2)
            .await
    );
    assert_eq!(delivered.task_ids(), [task]);
    let stats = receiver.stats();
    assert_eq!((stats.delivered, stats.duplicates), (1, 1));
    assert_eq!(
        receiver.inbox().kept_len(),
        0,
        "nothing left to wake a later wait"
    );
    assert_eq!(sandbox.stats().requests(Route::RecordInfo), 1);
}

/// The blocking client: a sandbox on its own runtime, a receiver on its own thread.
fn blocking_receiver(delivered: &Delivered) -> BlockingReceiver {
    BlockingReceiver::bind("127.0.0.1:0", delivered.config(Verifier::new(key(KEY))))
        .expect("bind loopback")
}

#[test]
fn a_blocking_hybrid_wait_returns_on_the_callback_and_duplicates_reach_the_application_once() {
    let sandbox = signing_sandbox()
        .callback_duplicates(true)
        .start_in_background()
        .expect("sandbox starts");
    let delivered = Delivered::default();
    let receiver = blocking_receiver(&delivered);
    let inbox = receiver.inbox();
    let events = Events::default();
    let client = blocking_client(&sandbox, &events);
    let task = client
        .generate(&fox_with_callback(&receiver.url("/cb")))
        .expect("created")
        .task_id;

    let record = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            // The deadline makes a broken wait fail (a second read, or a timeout) instead of
            // blocking the test for ten minutes.
            let wait = veo3_blocking::WaitOptions::default()
                .schedule(ten_minute_safety_net())
                .timeout(PATIENCE);
            client.wait_for_task_hybrid(&task, &inbox, &wait)
        });
        // Finish the task once the wait is blocked on the inbox.
        while inbox.waiting() == 0 && !waiting.is_finished() {
            std::thread::yield_now();
        }
        assert!(sandbox.complete_now(&task));
        waiting.join().expect("wait thread")
    })
    .expect("success");
    assert_eq!(record.state, TaskState::Success);
    assert_eq!(sandbox.stats().requests(Route::RecordInfo), 1);
    assert_eq!(events.triggers(), [PollTrigger::Callback]);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    assert!(runtime.block_on(sandbox.wait_until(PATIENCE, |stats| stats.callbacks_sent >= 2)));
    assert_eq!(delivered.task_ids(), [task]);
    assert_eq!(receiver.stats().duplicates, 1);
    receiver.shutdown().expect("clean shutdown");
}

#[test]
fn with_callbacks_off_a_blocking_hybrid_wait_finishes_by_polling() {
    let sandbox = Sandbox::builder()
        .key("sandbox-key")
        .time_scale(0.001)
        .hmac_key(KEY)
        .callbacks(false)
        .start_in_background()
        .expect("sandbox starts");
    let delivered = Delivered::default();
    let receiver = blocking_receiver(&delivered);
    let events = Events::default();
    let client = blocking_client(&sandbox, &events);
    let wait = veo3_blocking::WaitOptions::default().schedule(quick_safety_net());
    let record = client
        .generate_and_wait_hybrid(
            &fox_with_callback(&receiver.url("/cb")),
            &receiver.inbox(),
            &wait,
        )
        .expect("found by the safety net");
    assert_eq!(record.state, TaskState::Success);
    let triggers = events.triggers();
    assert!(!triggers.is_empty());
    assert!(
        triggers.iter().all(|t| *t == PollTrigger::Schedule),
        "{triggers:?}"
    );
    assert_eq!(
        sandbox.stats().requests(Route::RecordInfo),
        triggers.len() as u64
    );
    assert!(delivered.task_ids().is_empty());
}
