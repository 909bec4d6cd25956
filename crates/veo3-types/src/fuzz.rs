//! Property tests: every decoder, fed arbitrary JSON (biased towards the field names the
//! decoders look for, so the deep paths are reached), returns a value or an error and never
//! panics. Each decoder sees at least 10,000 cases.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::*;

const CASES: u32 = 10_000;

/// Field names the decoders read, so generated objects reach past the first lookup.
const KEYS: &[&str] = &[
    "code",
    "msg",
    "message",
    "data",
    "taskId",
    "task_id",
    "successFlag",
    "status",
    "state",
    "response",
    "resultUrls",
    "result_urls",
    "originUrls",
    "fullResultUrls",
    "resolution",
    "seeds",
    "seed",
    "hasAudioList",
    "mediaIds",
    "media_ids",
    "imageUrls",
    "image_urls",
    "createTime",
    "completeTime",
    "errorCode",
    "errorMessage",
    "fallbackFlag",
    "paramJson",
    "info",
    "promptJson",
    "creditsConsumed",
    "resultUrl",
    "credits",
    "downloadUrl",
    "fileUrl",
    "prompt",
    "model",
    "generationType",
    "aspect_ratio",
    "aspectRatio",
    "index",
    "url",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-5i64..600).prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("[\"https://a/x.mp4\"]"),
            Just("[https://a/x.mp4, "),
            Just("[\""),
            Just("2026-01-01 10:30:00"),
            Just("2026-02-30T25:61:61+99:99"),
            Just("9999-12-31T23:59:59.9999999Z"),
            Just("-0000-01-01T00:00:00Z"),
            Just("1767225600000"),
            Just("99999999999999999999999"),
            Just("processing"),
            Just("{\"prompt\":1}"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn decode_everything(value: &Value) {
    let _ = Envelope::from_value(value.clone());
    let _ = TaskCreated::from_data(value);
    let _ = TaskRecord::from_data(value).map(|record| {
        let _ = record.video_urls();
        let _ = record.params();
        let _ = record.state.to_string();
    });
    let _ = Hd1080pResult::from_data(value);
    let _ = Upgrade4kResult::from_data(value);
    let _ = Credits::from_data(value);
    let _ = UploadedFile::from_data(value);
    let _ = crate::response::download_link(value);
    let _ = Timestamp::from_value(value);
    let _ = parse_url_list(value);
    let _ = Callback::task_id_of(value);
    let _ = serde_json::from_value::<GenerateRequest>(value.clone()).map(|r| r.validate());
    let _ = serde_json::from_value::<ExtendRequest>(value.clone()).map(|r| r.validate());
    let _ = serde_json::from_value::<Upgrade4kRequest>(value.clone()).map(|r| r.validate());
    let _ = serde_json::from_value::<Hd1080pQuery>(value.clone());
    if let Ok(bytes) = serde_json::to_vec(value) {
        let _ = Callback::from_slice(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_arbitrary_json(value in json()) {
        decode_everything(&value);
        // The same value wrapped as an envelope's data and as a record's response.
        let wrapped = serde_json::json!({"code": 200, "msg": "ok", "data": value.clone()});
        decode_everything(&wrapped);
        decode_everything(&serde_json::json!({"taskId": "t", "response": value, "info": wrapped}));
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Envelope::from_slice(&bytes);
        let _ = Callback::from_slice(&bytes);
    }

    #[test]
    fn timestamps_never_panic_on_arbitrary_strings(text in ".{0,40}") {
        let _ = Timestamp::from_value(&Value::String(text.clone()));
        let _ = parse_url_list(&Value::String(text));
    }
}
