use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::*;

/// The reference's worked example (section 4.4, fixture `webhook-signature-example.json`).
const KEY: &str = "test_webhook_hmac_key_0123456789";
const TASK: &str = "3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21";
const TS: &str = "1767225600";
const NOW: u64 = 1_767_225_600;
const SIGNATURE: &str = "fMhBtXDLyt/vyA/PLaFS2P1XwCk/91pXYffoZ6B4oo8=";
const BODY: &[u8] = br#"{"code":200,"msg":"Veo3.1 video generated successfully.","data":{"taskId":"3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21","info":{"resultUrls":["https://cdn.example.com/veo/3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21/result_0.mp4"],"originUrls":null,"resolution":"720p"},"fallbackFlag":false}}"#;

fn key(text: &str) -> WebhookKey {
    WebhookKey::new(text).expect("non-empty key")
}

fn verifier() -> Verifier {
    Verifier::new(key(KEY))
}

fn body_for(task_id: &str, code: i64, url: &str) -> Vec<u8> {
    format!(
        r#"{{"code":{code},"msg":"m","data":{{"taskId":"{task_id}","info":{{"resultUrls":["{url}"]}}}}}}"#
    )
    .into_bytes()
}

fn unsigned(task_id: &str, code: i64, url: &str) -> VerifiedCallback {
    Verifier::unsigned()
        .verify(None, None, &body_for(task_id, code, url), 0)
        .expect("valid body")
}

#[test]
fn reference_vector_verifies() {
    assert_eq!(key(KEY).sign(TASK, TS), SIGNATURE);
    let verified = verifier()
        .verify(Some(TS), Some(SIGNATURE), BODY, NOW)
        .expect("genuine");
    assert_eq!(verified.task_id, TASK);
    assert_eq!(verified.callback.task_id.as_deref(), Some(TASK));
    assert_eq!(verified.signed_at, Some(NOW));
    assert_eq!(verified.key_index, Some(0));
    assert!(verified.is_authenticated());
    assert_eq!(verified.callback.result_urls().len(), 1);
}

#[test]
fn signature_is_computed_over_the_raw_bytes_not_reserialized_json() {
    // Odd spacing, key order and escapes survive a parse/re-serialize round trip differently;
    // only the task id is signed, so the exact bytes do not matter as long as it is read
    // from them.
    let body = format!(
        "{{ \"data\" : {{ \"fallbackFlag\":false , \"taskId\" : \"{TASK}\" }},\n \"msg\":\"caf\\u00e9\", \"code\" : 200 }}"
    );
    let verified = verifier()
        .verify(Some(TS), Some(SIGNATURE), body.as_bytes(), NOW)
        .expect("genuine");
    assert_eq!(verified.callback.msg, "café");
}

#[test]
fn every_documented_task_id_location_is_signed() {
    let bodies = [
        format!(r#"{{"code":200,"msg":"","data":{{"taskId":"{TASK}"}}}}"#),
        format!(r#"{{"code":200,"msg":"","data":{{"task_id":"{TASK}","result_urls":["u"]}}}}"#),
        format!(r#"{{"code":200,"msg":"","taskId":"{TASK}","data":null}}"#),
    ];
    for body in bodies {
        let verified = verifier()
            .verify(Some(TS), Some(SIGNATURE), body.as_bytes(), NOW)
            .unwrap_or_else(|reason| panic!("{body}: {reason}"));
        assert_eq!(verified.callback.task_id.as_deref(), Some(TASK), "{body}");
    }
}

/// A name, the two headers, the body, the expected reason and status.
type RejectCase<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a [u8],
    RejectReason,
    u16,
);

#[test]
fn rejections_have_typed_reasons_and_statuses() {
    let other_task_body = body_for("another-task", 200, "u");
    let big = vec![b' '; 2048];
    let cases: Vec<RejectCase<'_>> = vec![
        (
            "missing timestamp",
            None,
            Some(SIGNATURE),
            BODY,
            RejectReason::MissingHeader {
                header: TIMESTAMP_HEADER,
            },
            401,
        ),
        (
            "missing signature",
            Some(TS),
            None,
            BODY,
            RejectReason::MissingHeader {
                header: SIGNATURE_HEADER,
            },
            401,
        ),
        (
            "empty signature",
            Some(TS),
            Some("  "),
            BODY,
            RejectReason::MissingHeader {
                header: SIGNATURE_HEADER,
            },
            401,
        ),
        (
            "timestamp not digits",
            Some("12:00"),
            Some(SIGNATURE),
            BODY,
            RejectReason::MalformedTimestamp,
            400,
        ),
        (
            "negative timestamp",
            Some("-1767225600"),
            Some(SIGNATURE),
            BODY,
            RejectReason::MalformedTimestamp,
            400,
        ),
        (
            "milliseconds",
            Some("1767225600000"),
            Some(SIGNATURE),
            BODY,
            RejectReason::MalformedTimestamp,
            400,
        ),
        (
            "forged signature",
            Some(TS),
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            BODY,
            RejectReason::BadSignature,
            401,
        ),
        (
            "truncated signature",
            Some(TS),
            Some(&SIGNATURE[..20]),
            BODY,
            RejectReason::BadSignature,
            401,
        ),
        (
            "signature for another timestamp",
            Some("1767225601"),
            Some(SIGNATURE),
            BODY,
            RejectReason::BadSignature,
            401,
        ),
        (
            "body names another task than the signed one",
            Some(TS),
            Some(SIGNATURE),
            &other_task_body,
            RejectReason::BadSignature,
            401,
        ),
        (
            "not JSON",
            Some(TS),
            Some(SIGNATURE),
            b"taskId=3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21",
            RejectReason::UndecodableBody {
                detail: "not JSON (line 1 column 2)".into(),
            },
            400,
        ),
        (
            "no task id",
            Some(TS),
            Some(SIGNATURE),
            br#"{"code":500,"msg":"4K unavailable","data":null}"#,
            RejectReason::MissingTaskId,
            400,
        ),
        (
            "too large",
            Some(TS),
            Some(SIGNATURE),
            &big,
            RejectReason::BodyTooLarge {
                size: 2048,
                limit: 1024,
            },
            413,
        ),
    ];
    let verifier = verifier().max_body_bytes(1024);
    for (name, timestamp, signature, body, reason, status) in cases {
        let rejected = verifier
            .verify(timestamp, signature, body, NOW)
            .expect_err(name);
        assert_eq!(rejected, reason, "{name}");
        assert_eq!(rejected.http_status(), status, "{name}");
        let shown = rejected.to_string();
        assert!(
            !shown.contains(KEY) && !shown.contains(SIGNATURE),
            "{name}: {shown}"
        );
    }
}

#[test]
fn wrong_key_is_a_bad_signature() {
    let rejected = Verifier::new(key("some-other-key"))
        .verify(Some(TS), Some(SIGNATURE), BODY, NOW)
        .expect_err("wrong key");
    assert_eq!(rejected, RejectReason::BadSignature);
}

#[test]
fn timestamp_window_is_inclusive_and_checked_after_the_signature() {
    let verifier = verifier();
    let tolerance = DEFAULT_TOLERANCE.as_secs();
    assert!(
        verifier
            .verify(Some(TS), Some(SIGNATURE), BODY, NOW + tolerance)
            .is_ok()
    );
    assert!(
        verifier
            .verify(Some(TS), Some(SIGNATURE), BODY, NOW - tolerance)
            .is_ok()
    );
    assert_eq!(
        verifier.verify(Some(TS), Some(SIGNATURE), BODY, NOW + tolerance + 1),
        Err(RejectReason::StaleTimestamp {
            age_secs: tolerance + 1
        })
    );
    assert_eq!(
        verifier.verify(Some(TS), Some(SIGNATURE), BODY, NOW - tolerance - 1),
        Err(RejectReason::FutureTimestamp {
            ahead_secs: tolerance + 1
        })
    );
    // Out of the window *and* forged: reported as forged.
    assert_eq!(
        verifier.verify(Some(TS), Some("bm9wZQ=="), BODY, NOW + 10_000),
        Err(RejectReason::BadSignature)
    );
    // A custom window, and no overflow at the extremes.
    let tight = verifier.clone().tolerance(Duration::from_secs(1));
    assert!(
        tight
            .verify(Some(TS), Some(SIGNATURE), BODY, NOW + 2)
            .is_err()
    );
    let signature = key(KEY).sign(TASK, "999999999999");
    let far = verifier.clone().tolerance(Duration::MAX).verify(
        Some("999999999999"),
        Some(&signature),
        BODY,
        0,
    );
    assert!(far.is_ok());
}

#[test]
fn rotation_accepts_any_listed_key() {
    let old = key("old-key");
    let verifier = Verifier::new(key(KEY)).add_key(old.clone());
    let with_old = verifier
        .verify(Some(TS), Some(&old.sign(TASK, TS)), BODY, NOW)
        .expect("old key still listed");
    assert_eq!(with_old.key_index, Some(1));
    let with_new = verifier
        .verify(Some(TS), Some(SIGNATURE), BODY, NOW)
        .expect("new key");
    assert_eq!(with_new.key_index, Some(0));
    let retired = Verifier::new(key(KEY)).verify(Some(TS), Some(&old.sign(TASK, TS)), BODY, NOW);
    assert_eq!(retired, Err(RejectReason::BadSignature));
}

#[test]
fn unsigned_mode_is_explicit_and_still_checks_the_body() {
    let unsigned = Verifier::unsigned();
    assert!(!unsigned.requires_signature());
    assert!(verifier().requires_signature());
    let verified = unsigned.verify(None, None, BODY, 0).expect("accepted");
    assert!(!verified.is_authenticated());
    assert_eq!(verified.signed_at, None);
    assert_eq!(
        unsigned.verify(None, None, b"{}", 0),
        Err(RejectReason::MissingTaskId)
    );
    assert_eq!(
        unsigned
            .clone()
            .max_body_bytes(10)
            .verify(None, None, BODY, 0),
        Err(RejectReason::BodyTooLarge {
            size: BODY.len(),
            limit: 10
        })
    );
    // Adding a key turns signatures back on.
    let signed = unsigned.add_key(key(KEY));
    assert!(signed.verify(None, None, BODY, NOW).is_err());
}

#[test]
fn secrets_never_print() {
    let key = key(KEY);
    let verifier = Verifier::new(key.clone());
    for shown in [
        format!("{key:?}"),
        key.to_string(),
        format!("{verifier:?}"),
        format!("{:?}", WebhookKey::new("")),
    ] {
        assert!(!shown.contains(KEY), "{shown}");
    }
    assert_eq!(WebhookKey::new(" \n"), Err(InvalidWebhookKey));
}

#[test]
fn deduplicator_drops_repeats_and_forgets_the_oldest() {
    let mut seen = Deduplicator::new(2);
    let generated = unsigned("t1", 200, "https://f/720p.mp4");
    let upgraded = unsigned("t1", 200, "https://f/4k.mp4");
    let failed = unsigned("t2", 501, "");
    assert!(seen.first_time(&generated));
    assert!(!seen.first_time(&generated.clone()));
    // Same task and code, another outcome (the 4K callback after the generation one).
    assert!(seen.first_time(&upgraded));
    assert_eq!(seen.len(), 2);
    // Full: remembering t2 forgets the oldest (the generation callback).
    assert!(seen.first_time(&failed));
    assert_eq!(seen.len(), 2);
    assert!(!seen.first_time(&upgraded));
    assert!(seen.first_time(&generated));
    seen.forget(&failed.event_key());
    assert!(seen.first_time(&failed));
    assert_eq!(Deduplicator::new(0).capacity(), 1);
    let key = failed.event_key();
    assert_eq!((key.task_id(), key.code()), ("t2", 501));
}

/// Counts wake-ups, to observe the `Waker` protocol without a runtime.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

#[test]
fn a_callback_that_arrives_first_is_kept_for_the_first_waiter() {
    let inbox = Inbox::new();
    assert_eq!(inbox.deliver(unsigned("t1", 200, "u")), 0);
    assert_eq!(inbox.kept_len(), 1);
    let mut wait = inbox.wait_for("t1");
    let Poll::Ready(arrived) = poll_once(&mut wait, Waker::noop()) else {
        panic!("kept callback not returned at once");
    };
    assert_eq!(arrived.task_id, "t1");
    drop(wait);
    // Consumed: the next wait for the same task does not see it again.
    assert_eq!(inbox.kept_len(), 0);
    assert!(inbox.try_take("t1").is_none());
}

#[test]
fn a_waiting_future_is_woken_by_delivery_for_its_task_only() {
    let inbox = Inbox::new();
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(counter.clone());
    let mut wait = inbox.wait_for("t1");
    assert!(poll_once(&mut wait, &waker).is_pending());
    assert_eq!(inbox.waiting(), 1);

    assert_eq!(inbox.deliver(unsigned("other", 200, "u")), 0);
    assert_eq!(counter.0.load(Ordering::SeqCst), 0);
    assert!(poll_once(&mut wait, &waker).is_pending());

    assert_eq!(inbox.deliver(unsigned("t1", 200, "u")), 1);
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    assert!(matches!(poll_once(&mut wait, &waker), Poll::Ready(c) if c.task_id == "t1"));
    drop(wait);
    assert_eq!(inbox.waiting(), 0);
    assert_eq!(
        inbox.kept_len(),
        1,
        "only the other task's callback is kept"
    );
}

#[test]
fn concurrent_waiters_of_one_task_all_complete() {
    let inbox = Inbox::new();
    let mut first = inbox.wait_for("t1");
    let mut second = inbox.wait_for("t1");
    assert_eq!(inbox.deliver(unsigned("t1", 200, "u")), 2);
    assert!(poll_once(&mut first, Waker::noop()).is_ready());
    assert!(poll_once(&mut second, Waker::noop()).is_ready());
}

#[test]
fn a_dropped_wait_returns_its_unclaimed_callback() {
    let inbox = Inbox::new();
    let wait = inbox.wait_for("t1");
    inbox.deliver(unsigned("t1", 200, "u"));
    drop(wait);
    assert_eq!(inbox.waiting(), 0);
    assert!(inbox.try_take("t1").is_some());
}

#[test]
fn wait_until_reports_which_side_won() {
    let inbox = Inbox::new();
    // The give-up side completes at once: no callback.
    let mut wait = inbox.wait_until("t1", std::future::ready(()));
    assert!(matches!(
        poll_once(&mut wait, Waker::noop()),
        Poll::Ready(None)
    ));
    drop(wait);
    // A kept callback wins even against a give-up future that is already complete.
    inbox.deliver(unsigned("t1", 200, "u"));
    let mut wait = inbox.wait_until("t1", std::future::ready(()));
    assert!(matches!(
        poll_once(&mut wait, Waker::noop()),
        Poll::Ready(Some(_))
    ));
    // A pending give-up side leaves the wait open until the delivery.
    let mut wait = inbox.wait_until("t2", std::future::pending::<()>());
    assert!(poll_once(&mut wait, Waker::noop()).is_pending());
    inbox.deliver(unsigned("t2", 501, ""));
    assert!(
        matches!(poll_once(&mut wait, Waker::noop()), Poll::Ready(Some(c)) if c.task_id == "t2")
    );
}

#[test]
fn blocking_wait_returns_kept_callbacks_and_times_out_without_one() {
    let inbox = Inbox::new();
    assert!(inbox.wait_timeout("t1", Duration::ZERO).is_none());
    assert_eq!(inbox.waiting(), 0);
    inbox.deliver(unsigned("t1", 200, "u"));
    assert!(inbox.wait_timeout("t1", Duration::ZERO).is_some());
}

#[test]
fn blocking_wait_wakes_on_delivery_from_another_thread() {
    let inbox = Inbox::new();
    let sender = inbox.clone();
    let delivering = std::thread::spawn(move || {
        // Deliver only once the waiter is registered, so the callback reaches it as a waiter
        // rather than through the kept map.
        while sender.waiting() == 0 {
            std::thread::yield_now();
        }
        sender.deliver(unsigned("t1", 200, "u"))
    });
    let arrived = inbox.wait_timeout("t1", Duration::from_secs(600));
    assert_eq!(arrived.map(|c| c.task_id).as_deref(), Some("t1"));
    assert_eq!(delivering.join().expect("no panic"), 1);
}

#[test]
fn kept_callbacks_are_bounded_latest_per_task() {
    let inbox = Inbox::with_capacity(2);
    inbox.deliver(unsigned("t1", 200, "first"));
    inbox.deliver(unsigned("t2", 200, "u"));
    inbox.deliver(unsigned("t1", 200, "second"));
    assert_eq!(inbox.kept_len(), 2);
    // t2 is now the oldest and goes first.
    inbox.deliver(unsigned("t3", 200, "u"));
    assert_eq!(inbox.kept_len(), 2);
    assert!(inbox.try_take("t2").is_none());
    let latest = inbox.try_take("t1").expect("kept");
    assert_eq!(latest.callback.result_urls(), ["second"]);
    assert!(inbox.try_take("t3").is_some());
    assert_eq!(inbox.kept_len(), 0);
}

#[test]
fn json_rendering_is_the_same_for_every_shape() {
    let verified = verifier()
        .verify(Some(TS), Some(SIGNATURE), BODY, NOW)
        .expect("genuine");
    let json = verified.to_json();
    assert_eq!(json["taskId"], TASK);
    assert_eq!(json["code"], 200);
    assert_eq!(json["success"], true);
    assert_eq!(json["resolution"], "720p");
    assert_eq!(json["signedAt"], NOW);
    assert_eq!(json["authenticated"], true);
    assert!(
        json.get("originUrls").is_none(),
        "null originUrls are left out"
    );
    let legacy = Verifier::unsigned()
        .verify(
            None,
            None,
            br#"{"code":501,"msg":"failed","data":{"taskId":"t2","promptJson":"{\"prompt\":\"p\"}"}}"#,
            0,
        )
        .expect("valid");
    let json = legacy.to_json();
    assert_eq!(json["success"], false);
    assert_eq!(json["resultUrls"], serde_json::json!([]));
    assert_eq!(json["promptJson"]["prompt"], "p");
    assert!(json.get("signedAt").is_none());
}
