//! Signatures, windows, rotation, unsigned mode, rejections: the pure rules.

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
