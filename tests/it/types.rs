//! Integration tests: every fixture decodes to the expected normalised values, requests
//! serialize to the documented JSON, and veo3-types stays free of transport crates.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use veo3_types::{
    ApiCode, AspectRatio, BaseUrl, Callback, CallbackKind, CodeClass, Credits, DownloadUrlRequest,
    Endpoint, Envelope, ExtendModel, ExtendRequest, GenerateRequest, GenerationType, Hd1080pResult,
    ImageFormat, ImageInput, ImageProblem, Model, Resolution, TaskCreated, TaskRecord, TaskState,
    Timestamp, Upgrade4kRequest, Upgrade4kResult, UploadAnswer, UploadBase64Request, UploadOptions,
    UploadUrlRequest, UploadedFile, ValidationError, VideoDuration, check_image_count,
};

use crate::support::{fixture, fixture_names};

const TASK: &str = "3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21";

fn envelope(name: &str) -> Envelope {
    Envelope::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn record(name: &str) -> TaskRecord {
    let envelope = envelope(name);
    assert_eq!(envelope.code, ApiCode::Success, "{name}");
    TaskRecord::from_data(&envelope.data).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn callback(name: &str) -> Callback {
    Callback::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn url(task: &str, file: &str) -> String {
    format!("https://cdn.example.com/veo/{task}/{file}")
}

/// Each fixture's test registers its name here; the coverage test compares with the folder.
const COVERED: &[&str] = &[
    "4k-already-generated.json",
    "4k-ok.json",
    "4k-processing.json",
    "callback-4k-failure.json",
    "callback-4k-success-snake-case.json",
    "callback-4k-success-with-credits.json",
    "callback-4k-success.json",
    "callback-ack.json",
    "callback-extend-success.json",
    "callback-failure-500.json",
    "callback-failure-501.json",
    "callback-failure.json",
    "callback-fallback-failed-422.json",
    "callback-fallback-success-legacy.json",
    "callback-success-legacy-string-urls.json",
    "callback-success-promptjson-object.json",
    "callback-success.json",
    "credits-ok.json",
    "download-url-external-422.json",
    "download-url-ok.json",
    "error-401.json",
    "error-402.json",
    "error-404.json",
    "error-408.json",
    "error-429.json",
    "error-451.json",
    "error-455.json",
    "error-500.json",
    "error-505.json",
    "extend-ok.json",
    "generate-error-400-content-policy.json",
    "generate-error-422-validation.json",
    "generate-ok.json",
    "hd-1080p-not-ready.json",
    "hd-1080p-ok.json",
    "hd-1080p-source-not-success.json",
    "record-info-expired.json",
    "record-info-failed.json",
    "record-info-generating.json",
    "record-info-generation-failed.json",
    "record-info-not-found.json",
    "record-info-success-doc-example-strings.json",
    "record-info-success-extend.json",
    "record-info-success-legacy-string-urls.json",
    "record-info-success-portrait.json",
    "record-info-success.json",
    "request-4k.json",
    "request-download-url.json",
    "request-extend.json",
    "request-generate-duration.json",
    "request-generate-first-last-frames.json",
    "request-generate-legacy-camelcase.json",
    "request-generate-reference.json",
    "request-generate-text.json",
    "request-upload-base64.json",
    "request-upload-url.json",
    "upload-error-400.json",
    "upload-error-401.json",
    "upload-ok.json",
    "webhook-signature-example.json",
];

#[test]
fn every_fixture_in_the_folder_is_covered_by_an_asserting_test() {
    let on_disk: BTreeSet<String> = fixture_names().into_iter().collect();
    let covered: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    assert_eq!(on_disk, covered, "fixtures and the COVERED table differ");
}

#[test]
fn generate_and_extend_answers_carry_the_new_task_id() {
    let created = TaskCreated::from_data(&envelope("generate-ok.json").data).unwrap();
    assert_eq!(created.task_id, TASK);
    let extended = envelope("extend-ok.json");
    assert_eq!(extended.code, ApiCode::Success);
    assert!(
        !TaskCreated::from_data(&extended.data)
            .unwrap()
            .task_id
            .is_empty()
    );
}

#[test]
fn rejections_and_generic_errors_keep_code_and_message() {
    let cases = [
        (
            "generate-error-400-content-policy.json",
            ApiCode::BadRequest,
            "flagged",
        ),
        (
            "generate-error-422-validation.json",
            ApiCode::Unprocessable,
            "Validation Error",
        ),
        ("error-401.json", ApiCode::Unauthorized, ""),
        ("error-402.json", ApiCode::InsufficientCredits, ""),
        ("error-404.json", ApiCode::NotFound, ""),
        ("error-408.json", ApiCode::UpstreamTimeout, "10 minutes"),
        ("error-429.json", ApiCode::RateLimited, ""),
        ("error-451.json", ApiCode::ImageFetchFailed, ""),
        ("error-455.json", ApiCode::ServiceUnavailable, ""),
        ("error-500.json", ApiCode::InternalError, ""),
        ("error-505.json", ApiCode::FeatureDisabled, ""),
        (
            "record-info-not-found.json",
            ApiCode::Unprocessable,
            "record is null",
        ),
        (
            "record-info-expired.json",
            ApiCode::Unprocessable,
            "14 days",
        ),
        (
            "hd-1080p-source-not-success.json",
            ApiCode::Unprocessable,
            "record status is not success",
        ),
        (
            "download-url-external-422.json",
            ApiCode::Unprocessable,
            "External file URLs",
        ),
        ("upload-error-400.json", ApiCode::BadRequest, ""),
        ("upload-error-401.json", ApiCode::Unauthorized, ""),
    ];
    for (name, code, needle) in cases {
        let envelope = envelope(name);
        assert_eq!(envelope.code, code, "{name}");
        assert!(!envelope.msg.is_empty(), "{name}: message lost");
        assert!(envelope.msg.contains(needle), "{name}: {:?}", envelope.msg);
        assert!(envelope.data.is_null(), "{name}");
    }
    assert_eq!(ApiCode::UpstreamTimeout.class(), CodeClass::Transient);
    assert_eq!(ApiCode::GenerationFailed.class(), CodeClass::Permanent);
}

#[test]
fn running_and_failed_records_normalise_state_and_error() {
    let generating = record("record-info-generating.json");
    assert_eq!(generating.state, TaskState::Generating);
    assert_eq!(generating.complete_time, None);
    assert_eq!(generating.error_message, None, "\"\" means none");
    assert!(generating.video_urls().is_empty());
    assert_eq!(
        generating.create_time,
        Some(Timestamp::from_epoch_millis(1_767_225_300_000))
    );

    let failed = record("record-info-failed.json");
    assert_eq!(failed.state, TaskState::Failed);
    assert!(failed.state.is_terminal() && failed.state.is_failure());
    assert_eq!(failed.error_code, Some(400));
    assert!(
        failed
            .error_message
            .as_deref()
            .unwrap()
            .contains("content policies")
    );

    let generation_failed = record("record-info-generation-failed.json");
    assert_eq!(generation_failed.state, TaskState::GenerationFailed);
    assert_eq!(generation_failed.error_code, Some(501));
    assert_eq!(
        generation_failed.error_message.as_deref(),
        Some("Video generation task failed")
    );
    assert_eq!(
        generation_failed.params().unwrap()["model"],
        "veo3_fast",
        "paramJson is decoded lazily"
    );
}

#[test]
fn successful_records_in_every_shape_expose_their_urls() {
    let modern = record("record-info-success.json");
    assert_eq!(modern.task_id, TASK);
    assert_eq!(modern.state, TaskState::Success);
    assert_eq!(modern.video_urls(), [url(TASK, "result_0.mp4")]);
    let response = modern.response.as_ref().unwrap();
    assert_eq!(response.origin_urls, None);
    assert_eq!(response.resolution, Some(Resolution::P720));
    assert_eq!(
        modern.complete_time,
        Some(Timestamp::from_epoch_millis(1_767_225_600_000))
    );
    assert_eq!(modern.fallback_flag, Some(false));

    let legacy = record("record-info-success-legacy-string-urls.json");
    assert_eq!(legacy.state, TaskState::Success);
    assert_eq!(
        legacy.video_urls(),
        modern.video_urls(),
        "JSON-string resultUrls decode the same"
    );
    assert_eq!(
        legacy.create_time,
        Some(Timestamp::from_epoch_millis(1_751_365_500_000))
    );

    let portrait = record("record-info-success-portrait.json");
    let task = "5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a";
    let response = portrait.response.as_ref().unwrap();
    assert_eq!(response.origin_urls, Some(vec![url(task, "origin_0.mp4")]));
    assert_eq!(response.seeds, Some(vec![18999]));
    assert_eq!(response.has_audio_list, Some(vec![true]));
    assert_eq!(portrait.error_message, None, "null means none");

    let doc = record("record-info-success-doc-example-strings.json");
    assert_eq!(
        doc.complete_time,
        Some(Timestamp::from_epoch_millis(1_767_263_400_000))
    );
    assert_eq!(
        doc.create_time,
        Some(Timestamp::from_epoch_millis(1_767_263_100_000))
    );
    assert_eq!(
        doc.video_urls(),
        ["https://cdn.example.com/veo/demo/full_0.mp4"]
    );

    let extend = record("record-info-success-extend.json");
    let task = "9a1b2c3d4e5f60718293a4b5c6d7e8f9";
    assert_eq!(
        extend.video_urls(),
        [url(task, "full_0.mp4")],
        "the stitched video wins"
    );
    assert_eq!(
        extend.response.as_ref().unwrap().result_urls,
        [url(task, "segment_0.mp4")]
    );
    assert_eq!(extend.fallback_flag, None);
}

#[test]
fn the_legacy_and_modern_shapes_of_one_record_normalise_to_equal_values() {
    let modern = json!({
        "taskId": TASK, "paramJson": "{\"prompt\":\"p\"}",
        "createTime": 1_751_365_500_000_i64, "completeTime": 1_751_365_800_000_i64,
        "successFlag": 1,
        "response": {"taskId": TASK, "resultUrls": [url(TASK, "a.mp4")], "originUrls": null, "resolution": "720p"},
        "errorCode": null, "errorMessage": "", "fallbackFlag": false
    });
    let legacy = json!({
        "taskId": TASK, "paramJson": "{\"prompt\":\"p\"}",
        "createTime": "2025-07-01T10:25:00Z", "completeTime": "2025-07-01 10:30:00",
        "status": "1",
        "resultUrls": format!("[\"{}\"]", url(TASK, "a.mp4")),
        "response": {"taskId": TASK, "resultUrls": format!("[{}]", url(TASK, "a.mp4")), "originUrls": "", "resolution": "720p"},
        "errorCode": null, "errorMessage": null, "fallbackFlag": "false"
    });
    assert_eq!(
        TaskRecord::from_data(&modern).unwrap(),
        TaskRecord::from_data(&legacy).unwrap()
    );
}

/// The one-pass reader of record-info answers takes the current shape and reads it exactly as
/// the tolerant pair does; every other answer (legacy shapes, errors without data) it leaves
/// to them.
#[test]
fn record_answers_in_the_current_shape_are_read_in_one_pass_with_equal_values() {
    let mut quick = BTreeSet::new();
    for name in fixture_names() {
        let bytes = fixture(&name);
        let Some((code, msg, record)) = TaskRecord::from_answer_quick(&bytes) else {
            continue;
        };
        let tolerant = envelope(&name);
        assert_eq!(
            (code, msg.as_str()),
            (tolerant.code, tolerant.msg.as_str()),
            "{name}"
        );
        assert_eq!(Ok(record), TaskRecord::from_data(&tolerant.data), "{name}");
        if name.starts_with("record-info") {
            quick.insert(name);
        }
    }
    let expected = [
        "record-info-failed.json",
        "record-info-generating.json",
        "record-info-generation-failed.json",
        "record-info-success-doc-example-strings.json",
        "record-info-success-extend.json",
        "record-info-success-portrait.json",
        "record-info-success.json",
    ];
    assert_eq!(
        quick,
        expected.map(str::to_owned).into(),
        "record-info answers read in one pass"
    );

    for declined in [
        // A repeated member: the tolerant reading keeps the last one; this one declines.
        &br#"{"code":200,"code":500,"msg":"","data":{"taskId":"t"}}"#[..],
        br#"{"code":200,"data":{"taskId":"t","taskId":"u"}}"#,
        // `data` by position, which serde's derived readers would accept.
        br#"{"code":200,"data":["t","{}",1,2,0,null,null,"",false]}"#,
        br#"[200,"success",null,{"taskId":"t"}]"#,
        br#"{"code":200,"data":{"taskId":"t"}} trailing"#,
        br#"{"code":422,"msg":"Temporarily supports records within 14 days.","data":null}"#,
        br#"{"code":200,"msg":"success"}"#,
        // The legacy shape (record-info-success-legacy-string-urls.json).
        br#"{"code":200,"data":{"taskId":"t","status":1,"resultUrls":"[]"}}"#,
    ] {
        assert_eq!(
            TaskRecord::from_answer_quick(declined),
            None,
            "{}",
            String::from_utf8_lossy(declined)
        );
    }
}

/// The typed reader of record-info answers (what the clients poll with) reads every
/// record-info fixture with a record, the legacy shape included, exactly as the tolerant pair
/// does; the answers without a record it leaves to them.
#[test]
fn record_answers_in_every_shape_are_read_by_the_typed_reader_with_equal_values() {
    let mut typed = BTreeSet::new();
    for name in fixture_names() {
        let bytes = fixture(&name);
        let Some((code, msg, record)) = TaskRecord::from_answer(&bytes) else {
            continue;
        };
        let tolerant = envelope(&name);
        assert_eq!(
            (code, msg.as_str()),
            (tolerant.code, tolerant.msg.as_str()),
            "{name}"
        );
        assert_eq!(Ok(record), TaskRecord::from_data(&tolerant.data), "{name}");
        if let Some(quick) = TaskRecord::from_answer_quick(&bytes) {
            assert_eq!(Some(quick), TaskRecord::from_answer(&bytes), "{name}");
        }
        if name.starts_with("record-info") {
            typed.insert(name);
        }
    }
    let expected = [
        "record-info-failed.json",
        "record-info-generating.json",
        "record-info-generation-failed.json",
        "record-info-success-doc-example-strings.json",
        "record-info-success-extend.json",
        "record-info-success-legacy-string-urls.json",
        "record-info-success-portrait.json",
        "record-info-success.json",
    ];
    assert_eq!(
        typed,
        expected.map(str::to_owned).into(),
        "record-info answers read by the typed reader"
    );

    // Shapes the current-shape reader declines and the typed reader takes, as the tolerant
    // pair reads them: a repeated member (the last counts), an unknown one, the legacy shape.
    for accepted in [
        &br#"{"code":200,"code":500,"msg":"","data":{"taskId":"t"}}"#[..],
        br#"{"code":200,"data":{"taskId":"t","taskId":"u"}}"#,
        br#"{"code":200,"data":{"taskId":"t","status":1,"resultUrls":"[]"}}"#,
        br#"{"code":200,"msg":"ok","traceId":"x","data":{"task_id":"t","state":"SUCCESS","extra":[1,{"a":null}],"response":{"result_urls":["https://f/a.mp4"],"seeds":7}}}"#,
        br#"{"code":"200","message":"ok","data":{"taskId":"t","response":{"x":1},"response":null,"resultUrls":"https://f/b.mp4"}}"#,
    ] {
        let text = String::from_utf8_lossy(accepted);
        let (code, msg, record) = TaskRecord::from_answer(accepted).expect(&text);
        let tolerant = Envelope::from_slice(accepted).unwrap();
        assert_eq!((code, msg), (tolerant.code, tolerant.msg), "{text}");
        assert_eq!(Ok(record), TaskRecord::from_data(&tolerant.data), "{text}");
    }
    // No record: left to the tolerant pair, which explains the answer.
    for declined in [
        &br#"{"code":200,"data":["t","{}",1,2,0,null,null,"",false]}"#[..],
        br#"[200,"success",null,{"taskId":"t"}]"#,
        br#"{"code":200,"data":{"taskId":"t"}} trailing"#,
        br#"{"code":422,"msg":"Temporarily supports records within 14 days.","data":null}"#,
        br#"{"code":200,"msg":"success"}"#,
        br#"{"msg":"success","data":{"taskId":"t"}}"#,
        br#"{"code":200,"data":{"taskId":"t"},"data":"gone"}"#,
    ] {
        assert_eq!(
            TaskRecord::from_answer(declined),
            None,
            "{}",
            String::from_utf8_lossy(declined)
        );
    }
}

#[test]
fn unknown_success_flags_are_kept_not_rejected() {
    let record = TaskRecord::from_data(&json!({"taskId": "t", "successFlag": 7})).unwrap();
    assert_eq!(record.state, TaskState::Unknown("7".into()));
    assert!(!record.state.is_terminal());
    let record = TaskRecord::from_data(&json!({"taskId": "t"})).unwrap();
    assert!(matches!(record.state, TaskState::Unknown(_)));
    let nested =
        TaskRecord::from_data(&json!({"taskId": "t", "response": {"successFlag": 1}})).unwrap();
    assert_eq!(nested.state, TaskState::Success);
}

#[test]
fn upgrade_answers_decode_to_their_distinct_shapes() {
    let hd = Hd1080pResult::from_data(&envelope("hd-1080p-ok.json").data).unwrap();
    assert_eq!(hd.result_url, url(TASK, "result_0_1080p.mp4"));

    let not_ready = envelope("hd-1080p-not-ready.json");
    assert_eq!(
        not_ready.code.class_with_message(&not_ready.msg),
        CodeClass::Pending
    );

    let accepted = envelope("4k-ok.json");
    assert_eq!(accepted.code, ApiCode::Success);
    let accepted = Upgrade4kResult::from_data(&accepted.data).unwrap();
    assert_eq!(accepted.task_id.as_deref(), Some(TASK));
    assert!(!accepted.is_ready());

    let processing = envelope("4k-processing.json");
    assert_eq!(
        processing.code.class_with_message(&processing.msg),
        CodeClass::Pending
    );
    assert!(
        !Upgrade4kResult::from_data(&processing.data)
            .unwrap()
            .is_ready()
    );

    let done = envelope("4k-already-generated.json");
    assert_eq!(
        done.code,
        ApiCode::Unprocessable,
        "success arrives as a 422"
    );
    let done = Upgrade4kResult::from_data(&done.data).unwrap();
    assert!(done.is_ready());
    assert_eq!(done.result_urls, [url(TASK, "result_0_4k.mp4")]);
    assert_eq!(done.image_urls, [url(TASK, "result_0_4k.jpg")]);
}

#[test]
fn credits_download_links_and_uploads_decode() {
    assert_eq!(
        Credits::from_data(&envelope("credits-ok.json").data).unwrap(),
        Credits(1850)
    );
    let link = envelope("download-url-ok.json").download_link().unwrap();
    assert!(link.starts_with("https://tempfile.example.com/dl/") && link.contains("expires="));
    let upload = envelope("upload-ok.json");
    let file = UploadedFile::from_data(&upload.data).unwrap();
    assert_eq!(
        file.download_url,
        "https://tempfile.example.com/uploads/images/veo-inputs/source.jpg"
    );
    assert_eq!(file.file_size, Some(154_832));
    let ack = envelope("callback-ack.json");
    assert_eq!((ack.code, ack.msg.as_str()), (ApiCode::Success, "success"));
}

#[test]
fn generation_callbacks_in_every_shape_normalise() {
    let success = callback("callback-success.json");
    assert!(success.is_success());
    assert_eq!(success.task_id.as_deref(), Some(TASK));
    assert_eq!(success.result_urls(), [url(TASK, "result_0.mp4")]);
    assert_eq!(
        success.prompt_json.as_ref().unwrap()["model"],
        "veo3_fast",
        "string promptJson is parsed"
    );
    assert_eq!(
        success.info.as_ref().unwrap().resolution,
        Some(Resolution::P720)
    );

    let legacy = callback("callback-success-legacy-string-urls.json");
    assert_eq!(legacy.result_urls(), success.result_urls());
    assert_eq!(
        legacy.info.as_ref().unwrap().origin_urls,
        None,
        "\"\" originUrls means none"
    );

    let object = callback("callback-success-promptjson-object.json");
    let task = "5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a";
    assert_eq!(object.prompt_json.as_ref().unwrap()["aspectRatio"], "9:16");
    assert_eq!(
        object.info.as_ref().unwrap().origin_urls,
        Some(vec![url(task, "origin_0.mp4")])
    );

    let fallback = callback("callback-fallback-success-legacy.json");
    assert_eq!(fallback.fallback_flag, Some(true));
    assert_eq!(fallback.result_urls(), [url(TASK, "result_0.mp4")]);

    let extend = callback("callback-extend-success.json");
    assert_eq!(
        extend.result_urls(),
        [url("9a1b2c3d4e5f60718293a4b5c6d7e8f9", "segment_0.mp4")]
    );

    for (name, code) in [
        ("callback-failure.json", ApiCode::BadRequest),
        ("callback-failure-500.json", ApiCode::InternalError),
        ("callback-failure-501.json", ApiCode::GenerationFailed),
        ("callback-fallback-failed-422.json", ApiCode::Unprocessable),
    ] {
        let failure = callback(name);
        assert_eq!(failure.code, code, "{name}");
        assert!(
            !failure.is_success() && failure.result_urls().is_empty(),
            "{name}"
        );
        assert_eq!(failure.task_id.as_deref(), Some(TASK), "{name}");
        assert!(!failure.msg.is_empty(), "{name}");
    }
}

/// A 4K callback carries the source task's id, like that task's own callback: the shape tells
/// them apart, in every documented variant.
#[test]
fn callbacks_are_told_apart_by_kind() {
    let names: Vec<String> = fixture_names()
        .into_iter()
        .filter(|name| name.starts_with("callback-") && name != "callback-ack.json")
        .collect();
    assert!(names.len() >= 13, "{names:?}");
    for name in names {
        let callback = callback(&name);
        let expected = if name.starts_with("callback-4k-") {
            CallbackKind::Upgrade4k
        } else if callback.info.as_ref().and_then(|i| i.resolution.as_ref())
            == Some(&Resolution::P1080)
        {
            CallbackKind::Hd1080p
        } else {
            CallbackKind::Video
        };
        assert_eq!(callback.kind(), expected, "{name}");
    }
}

#[test]
fn four_k_callbacks_in_every_shape_normalise() {
    let expected_video = vec![url(TASK, "result_0_4k.mp4")];
    let expected_image = Some(vec![url(TASK, "result_0_4k.jpg")]);
    for name in [
        "callback-4k-success.json",
        "callback-4k-success-with-credits.json",
        "callback-4k-success-snake-case.json",
    ] {
        let callback = callback(name);
        assert_eq!(callback.task_id.as_deref(), Some(TASK), "{name}");
        assert_eq!(callback.result_urls(), expected_video, "{name}");
        assert_eq!(
            callback.info.as_ref().unwrap().image_urls,
            expected_image,
            "{name}"
        );
    }
    assert_eq!(
        callback("callback-4k-success-with-credits.json").credits_consumed,
        Some(120)
    );
    assert_eq!(
        callback("callback-4k-success-snake-case.json")
            .info
            .unwrap()
            .media_ids
            .map(|m| m.len()),
        Some(1)
    );
    let failure = callback("callback-4k-failure.json");
    assert_eq!(failure.code, ApiCode::InternalError);
    assert!(failure.msg.contains("unavailable"));
}

#[test]
fn the_signature_example_body_decodes_and_names_the_signed_task() {
    let example: Value =
        serde_json::from_slice(&fixture("webhook-signature-example.json")).unwrap();
    let body = serde_json::to_vec(&example["body"]).unwrap();
    let callback = Callback::from_slice(&body).unwrap();
    let signed = example["signedString"].as_str().unwrap();
    let timestamp = example["headers"]["X-Webhook-Timestamp"].as_str().unwrap();
    assert_eq!(format!("{}.{timestamp}", callback.task_id.unwrap()), signed);
    assert_eq!(
        Callback::task_id_of(&example["body"]).as_deref(),
        Some(TASK)
    );
}

fn request_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

#[test]
fn generate_requests_serialize_to_the_documented_json() {
    let text = GenerateRequest::builder("A red fox trotting through fresh snow at dawn, cinematic")
        .model(Model::Veo3Fast)
        .generation_type(GenerationType::TextToVideo)
        .aspect_ratio(AspectRatio::Landscape)
        .enable_translation(true)
        .call_back_url("https://hooks.example.com/kie/veo")
        .build()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&text).unwrap(),
        request_json("request-generate-text.json")
    );

    let frames =
        GenerateRequest::builder("The camera glides from the empty room to the furnished room")
            .image_urls([
                "https://img.example.com/first.jpg",
                "https://img.example.com/last.jpg",
            ])
            .model(Model::Veo3)
            .generation_type(GenerationType::FirstAndLastFrames)
            .aspect_ratio(AspectRatio::Landscape)
            .seeds(24680)
            .watermark("MyBrand")
            .call_back_url("https://hooks.example.com/kie/veo")
            .build()
            .unwrap();
    assert_eq!(
        serde_json::to_value(&frames).unwrap(),
        request_json("request-generate-first-last-frames.json")
    );

    let reference =
        GenerateRequest::builder("The character from the references walks through a neon market")
            .image_url("https://img.example.com/ref1.png")
            .image_url("https://img.example.com/ref2.png")
            .image_url("https://img.example.com/ref3.png")
            .generation_type(GenerationType::Reference)
            .aspect_ratio(AspectRatio::Portrait)
            .resolution(Resolution::P1080)
            .build()
            .unwrap();
    assert_eq!(
        serde_json::to_value(&reference).unwrap(),
        request_json("request-generate-reference.json")
    );

    // With `duration` (4 s), and without it (every fixture above): sent only when set.
    let short = GenerateRequest::builder("A fox darts across a frozen lake, a short clip")
        .generation_type(GenerationType::TextToVideo)
        .aspect_ratio(AspectRatio::Portrait)
        .duration(VideoDuration::Seconds4)
        .build()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&short).unwrap(),
        request_json("request-generate-duration.json")
    );
    for name in [
        "request-generate-text.json",
        "request-generate-first-last-frames.json",
        "request-generate-reference.json",
    ] {
        let body = request_json(name);
        assert!(body.get("duration").is_none(), "{name}");
        assert_eq!(body["enableTranslation"], true, "{name}: always sent");
    }

    // Every fixture request reads back to the same value (the sandbox relies on this).
    for name in [
        "request-generate-duration.json",
        "request-generate-text.json",
        "request-generate-first-last-frames.json",
        "request-generate-reference.json",
    ] {
        let parsed: GenerateRequest = serde_json::from_slice(&fixture(name)).unwrap();
        parsed.validate().unwrap();
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            request_json(name),
            "{name}"
        );
    }
}

#[test]
fn legacy_camelcase_generate_requests_are_read_with_the_current_names() {
    let legacy: GenerateRequest =
        serde_json::from_slice(&fixture("request-generate-legacy-camelcase.json")).unwrap();
    assert_eq!(legacy.aspect_ratio, Some(AspectRatio::Landscape));
    assert_eq!(legacy.model, Model::Veo3);
    let json = serde_json::to_value(&legacy).unwrap();
    assert_eq!(json["aspect_ratio"], "16:9");
    assert!(json.get("aspectRatio").is_none());
    let both: GenerateRequest = serde_json::from_value(
        json!({"prompt": "p", "aspect_ratio": "9:16", "aspectRatio": "16:9"}),
    )
    .unwrap();
    assert_eq!(
        both.aspect_ratio,
        Some(AspectRatio::Portrait),
        "snake_case wins"
    );
}

#[test]
fn other_requests_serialize_to_the_documented_json() {
    let extend = ExtendRequest::new(
        TASK,
        "The fox stops, looks at the camera, then leaps over a fallen log",
    )
    .model(ExtendModel::Fast)
    .seeds(13579)
    .call_back_url("https://hooks.example.com/kie/veo-extend");
    extend.validate().unwrap();
    assert_eq!(
        serde_json::to_value(&extend).unwrap(),
        request_json("request-extend.json")
    );

    let upgrade = Upgrade4kRequest::new(TASK)
        .index(0)
        .call_back_url("https://hooks.example.com/kie/veo-4k");
    assert_eq!(
        serde_json::to_value(&upgrade).unwrap(),
        request_json("request-4k.json")
    );
    let lenient: Upgrade4kRequest =
        serde_json::from_value(json!({"taskId": TASK, "index": "0"})).unwrap();
    assert_eq!(lenient.index, Some(0));

    let download = DownloadUrlRequest::new(url(TASK, "result_0.mp4"));
    assert_eq!(
        serde_json::to_value(&download).unwrap(),
        request_json("request-download-url.json")
    );
}

#[test]
fn upload_requests_serialize_to_the_documented_json() {
    let options = UploadOptions::new("images/veo-inputs").file_name("source.jpg");
    let by_url = UploadUrlRequest::new("https://img.example.com/source.jpg", &options);
    by_url.validate().unwrap();
    assert_eq!(
        serde_json::to_value(&by_url).unwrap(),
        request_json("request-upload-url.json")
    );
    let decoded: UploadUrlRequest =
        serde_json::from_value(request_json("request-upload-url.json")).unwrap();
    assert_eq!(decoded, by_url);

    // The fixture's one-pixel PNG, encoded by us as a data URL, is byte for byte the fixture.
    let fixture = request_json("request-upload-base64.json");
    let data_url = fixture["base64Data"].as_str().unwrap();
    let pixel = base64_decode(data_url.strip_prefix("data:image/png;base64,").unwrap());
    assert_eq!(ImageFormat::sniff(&pixel), Some(ImageFormat::Png));
    let options = UploadOptions::new("images/veo-inputs").file_name("pixel.png");
    let by_base64 = UploadBase64Request::from_bytes(&pixel, Some("image/png"), &options);
    by_base64.validate().unwrap();
    assert_eq!(serde_json::to_value(&by_base64).unwrap(), fixture);

    // Upload options refused before sending, naming the field.
    let bad = UploadUrlRequest::new("https://x.example.com/a.png", &UploadOptions::new("/abs"));
    assert_eq!(bad.validate().unwrap_err().field(), "uploadPath");
    let bad = UploadUrlRequest::new("ftp://x.example.com/a.png", &UploadOptions::default());
    assert_eq!(bad.validate().unwrap_err().field(), "fileUrl");
}

/// A small standard-base64 decoder for the fixture (the SDK only encodes).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | (u32::from(d) << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[test]
fn upload_answers_decode_every_documented_field_and_the_success_flag() {
    let ok = UploadAnswer::from_slice(&fixture("upload-ok.json")).unwrap();
    assert_eq!(ok.success, Some(true));
    assert_eq!(ok.envelope.code, ApiCode::Success);
    assert_eq!(ok.envelope.msg, "File uploaded successfully");
    let file = UploadedFile::from_data(&ok.envelope.data).unwrap();
    assert_eq!(file.file_name.as_deref(), Some("source.jpg"));
    assert_eq!(
        file.file_path.as_deref(),
        Some("images/veo-inputs/source.jpg")
    );
    assert_eq!(file.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        file.uploaded_at,
        Some(Timestamp::from_epoch_millis(1_767_225_600_000))
    );
    for (name, code, needle) in [
        ("upload-error-400.json", ApiCode::BadRequest, "uploadPath"),
        (
            "upload-error-401.json",
            ApiCode::Unauthorized,
            "Invalid API Key",
        ),
    ] {
        let answer = UploadAnswer::from_slice(&fixture(name)).unwrap();
        assert_eq!(answer.success, Some(false), "{name}");
        assert_eq!(answer.envelope.code, code, "{name}");
        assert!(answer.envelope.msg.contains(needle), "{name}");
    }
    // The one quickstart's invented shape still yields the URL; a missing flag is `None`.
    let quickstart =
        json!({"fileId": "f1", "fileUrl": "https://f.example.com/a.png", "expiresAt": 1});
    let file = UploadedFile::from_data(&quickstart).unwrap();
    assert_eq!(file.download_url, "https://f.example.com/a.png");
    let bare = UploadAnswer::from_slice(br#"{"code":200,"msg":"ok","data":null}"#).unwrap();
    assert_eq!(bare.success, None);
}

#[test]
fn uploads_go_to_the_upload_host_and_are_not_billable() {
    for endpoint in Endpoint::UPLOADS {
        assert_eq!(endpoint.base_url(), BaseUrl::Upload, "{endpoint}");
        assert!(!endpoint.is_billable(), "{endpoint}");
        assert!(endpoint.path().starts_with("/api/file-"), "{endpoint}");
    }
    for endpoint in Endpoint::ALL {
        assert_eq!(endpoint.base_url(), BaseUrl::Api, "{endpoint}");
    }
}

#[test]
fn image_inputs_are_checked_by_content_and_count_before_sending() {
    let text = ImageInput::Bytes {
        bytes: b"just some text, not a picture".to_vec(),
        file_name: "cat.png".to_owned(),
    };
    let error = text.validate(0).unwrap_err();
    assert_eq!(
        error,
        ValidationError::Image {
            name: "cat.png".to_owned(),
            problem: ImageProblem::NotAnImage
        }
    );
    assert!(error.to_string().contains("cat.png"), "{error}");
    assert!(
        ImageInput::parse("HTTPS://img.example.com/a.png")
            .validate(0)
            .is_ok()
    );
    assert!(matches!(ImageInput::parse("cat.png"), ImageInput::Path(_)));
    // Another scheme is still a URL, refused as one, never looked for on disk.
    assert!(matches!(
        ImageInput::parse("ftp://example.com/a.png"),
        ImageInput::Url(_)
    ));
    let count = check_image_count(Some(&GenerationType::FirstAndLastFrames), 3).unwrap_err();
    assert_eq!(count.field(), "imageUrls");
}

#[test]
fn the_builder_rejects_each_documented_rule_naming_the_field() {
    let base = || GenerateRequest::builder("a prompt");
    let cases: Vec<(Result<GenerateRequest, ValidationError>, &str)> = vec![
        (GenerateRequest::builder("").build(), "prompt"),
        (
            base()
                .generation_type(GenerationType::TextToVideo)
                .image_url("https://i/a.png")
                .build(),
            "imageUrls",
        ),
        (
            base()
                .generation_type(GenerationType::FirstAndLastFrames)
                .build(),
            "imageUrls",
        ),
        (
            base()
                .generation_type(GenerationType::FirstAndLastFrames)
                .image_urls(["https://i/1", "https://i/2", "https://i/3"])
                .build(),
            "imageUrls",
        ),
        (
            base().generation_type(GenerationType::Reference).build(),
            "imageUrls",
        ),
        (
            base()
                .generation_type(GenerationType::Reference)
                .image_urls(["https://i/1", "https://i/2", "https://i/3", "https://i/4"])
                .build(),
            "imageUrls",
        ),
        (base().seeds(9_999).build(), "seeds"),
        (base().seeds(100_000).build(), "seeds"),
        (base().image_url("file:///etc/passwd").build(), "imageUrls"),
        (
            base().call_back_url("ftp://hooks.example.com").build(),
            "callBackUrl",
        ),
        (
            // No generation type: kie infers FIRST_AND_LAST_FRAMES_2_VIDEO, at most two.
            base()
                .image_urls(["https://i/1", "https://i/2", "https://i/3"])
                .build(),
            "imageUrls",
        ),
    ];
    for (result, field) in cases {
        let error = result.expect_err(field);
        assert_eq!(error.field(), field, "{error}");
        assert!(
            error.to_string().contains(field),
            "message names the field: {error}"
        );
    }
    // The boundaries themselves are accepted.
    base().seeds(10_000).build().unwrap();
    base().seeds(99_999).build().unwrap();
    base()
        .model(Model::Veo3Lite)
        .generation_type(GenerationType::Reference)
        .image_url("https://i/1")
        .build()
        .unwrap();
    // Two images without a type are first and last frames, as kie infers.
    base()
        .image_urls(["https://i/1", "https://i/2"])
        .build()
        .unwrap();
    // REFERENCE_2_VIDEO with veo3 is a soft rule (the reference: "validate softly (warn), let
    // the server decide"): the request is built and sent, with the rule as a warning.
    let quality_reference = base()
        .model(Model::Veo3)
        .generation_type(GenerationType::Reference)
        .image_url("https://i/1")
        .build()
        .expect("a soft rule does not stop the request");
    let warnings = quality_reference.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].field(), "model");
    assert!(
        warnings[0].to_string().contains("the server decides"),
        "{}",
        warnings[0]
    );
    assert!(
        base()
            .model(Model::Veo3Fast)
            .generation_type(GenerationType::Reference)
            .image_url("https://i/1")
            .build()
            .unwrap()
            .warnings()
            .is_empty()
    );
    assert_eq!(
        ExtendRequest::new("", "p").validate(),
        Err(ValidationError::EmptyTaskId)
    );
    assert_eq!(
        ExtendRequest::new("t", "p")
            .seeds(5)
            .validate()
            .unwrap_err()
            .field(),
        "seeds"
    );
}

#[test]
fn veo3_types_has_no_transport_crate_in_its_tree() {
    let tree = crate::support::cargo_tree("veo3-types");
    for forbidden in ["reqwest", "tokio", "hyper", "ureq", "axum"] {
        assert!(
            !tree
                .lines()
                .any(|line| line.split_whitespace().next() == Some(forbidden)),
            "{forbidden} in veo3-types' tree:\n{tree}"
        );
    }
    assert!(tree.contains("serde_json"), "the tree was read: {tree}");
}

/// `duration` outside 4, 6 and 8, or anything but 8 with REFERENCE_2_VIDEO, is refused
/// before sending, naming the rule; the limits on text fields too.
#[test]
fn duration_and_text_limits_are_checked_before_sending() {
    let base = || GenerateRequest::builder("A fox");
    assert!(base().duration(VideoDuration::Seconds6).build().is_ok());
    let odd = base()
        .duration(VideoDuration::from_seconds(5))
        .build()
        .unwrap_err();
    assert_eq!(odd.field(), "duration");
    assert!(odd.to_string().contains("4, 6 or 8"), "{odd}");
    let reference = |duration| {
        base()
            .generation_type(GenerationType::Reference)
            .image_url("https://img.example.com/a.png")
            .duration(duration)
            .build()
    };
    assert!(reference(VideoDuration::Seconds8).is_ok());
    let short = reference(VideoDuration::Seconds6).unwrap_err();
    assert!(matches!(
        short,
        ValidationError::DurationForReference { seconds: 6 }
    ));
    assert!(short.to_string().contains("REFERENCE_2_VIDEO"), "{short}");

    let long = GenerateRequest::builder("x".repeat(veo3_types::MAX_PROMPT_CHARS + 1))
        .build()
        .unwrap_err();
    assert!(
        matches!(
            long,
            ValidationError::TooLong {
                field: "prompt",
                ..
            }
        ),
        "{long}"
    );
    assert!(
        GenerateRequest::builder("x".repeat(veo3_types::MAX_PROMPT_CHARS))
            .build()
            .is_ok()
    );
    let nul = GenerateRequest::builder("a\0fox").build().unwrap_err();
    assert_eq!(nul.field(), "prompt");
    // A request read back keeps an unknown length as Other, for validation to refuse.
    let parsed: GenerateRequest = serde_json::from_str(r#"{"prompt":"p","duration":10}"#).unwrap();
    assert_eq!(parsed.duration, Some(VideoDuration::Other(10)));
    assert!(parsed.validate().is_err());
    // Translation is always sent, true unless turned off.
    let json = serde_json::to_value(base().build().unwrap()).unwrap();
    assert_eq!(json["enableTranslation"], true);
    let off = serde_json::to_value(base().enable_translation(false).build().unwrap()).unwrap();
    assert_eq!(off["enableTranslation"], false);
}

/// Code 433 is in the table: not retryable, its meaning names sub-key limits.
#[test]
fn code_433_is_a_sub_key_limit_and_not_retryable() {
    let code = ApiCode::from_i64(433);
    assert_eq!(code, ApiCode::SubKeyLimitExceeded);
    assert_eq!(code.class(), CodeClass::Permanent);
    assert!(code.meaning().contains("sub-key"), "{}", code.meaning());
}

/// Every field of the generate request, as serde writes it with every setter used, is a batch
/// column (`veo3_jobs::input::REQUEST_COLUMNS`), except `callBackUrl`, which the batch runner
/// sets per job; the CLI's own unit test (`every_request_field_has_a_flag`) checks each has a
/// `veo3 generate` flag. A field added to the request fails one of the two until it has both.
#[test]
fn every_generate_field_is_a_batch_column() {
    let url = "https://example.com/a.png";
    let request = GenerateRequest::builder("p")
        .model(Model::Veo3Fast)
        .generation_type(GenerationType::Reference)
        .image_url(url)
        .aspect_ratio(AspectRatio::Landscape)
        .resolution(Resolution::P1080)
        .seeds(12345)
        .call_back_url(url)
        .enable_translation(false)
        .watermark("w")
        .duration(VideoDuration::Seconds8)
        .build()
        .unwrap();
    let body = serde_json::to_value(request).unwrap();
    for field in body.as_object().unwrap().keys() {
        assert!(
            field == "callBackUrl" || veo3_jobs::input::REQUEST_COLUMNS.contains(&field.as_str()),
            "generate field {field} has no batch column"
        );
    }
}
