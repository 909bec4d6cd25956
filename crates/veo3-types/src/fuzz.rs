//! Property tests: every decoder, fed arbitrary JSON (biased towards the field names the
//! decoders look for, so the deep paths are reached), returns a value or an error and never
//! panics. Each decoder sees at least 10,000 cases.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::quick::RECORD;
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

/// Members of a record the one-pass reader must decline (legacy ones), besides those it knows
/// (`quick::RECORD`).
const DECLINED_RECORD_KEYS: [&str; 3] = ["status", "resultUrls", "task_id"];

/// An object whose members are a random subset of `keys` (so the one-pass reader often
/// accepts it), each with arbitrary JSON.
fn object_of(keys: Vec<&'static str>, count: usize) -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(keys), json()), 0..count).prop_map(|pairs| {
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

/// A record-info-like answer: mostly the current shape with arbitrary values, sometimes an
/// extra member, a missing one, or `data` of another type.
fn record_answer() -> impl Strategy<Value = Value> {
    let code = prop_oneof![
        4 => Just(Value::from(200)),
        1 => leaf(),
    ];
    let data = prop_oneof![
        6 => object_of(RECORD.to_vec(), 10),
        2 => object_of([&RECORD[..], &DECLINED_RECORD_KEYS].concat(), 12),
        1 => json(),
    ];
    (
        prop::option::weighted(0.95, code),
        prop::option::weighted(0.8, leaf()),
        prop::option::weighted(0.1, leaf()),
        prop::option::weighted(0.95, data),
        prop::option::weighted(0.05, (prop::sample::select(KEYS), leaf())),
    )
        .prop_map(|(code, msg, message, data, extra)| {
            let mut envelope = Map::new();
            if let Some((key, value)) = extra {
                envelope.insert(key.to_owned(), value);
            }
            for (key, value) in [
                ("code", code),
                ("msg", msg),
                ("message", message),
                ("data", data),
            ] {
                if let Some(value) = value {
                    envelope.insert(key.to_owned(), value);
                }
            }
            Value::Object(envelope)
        })
}

/// Whenever the one-pass reader answers, the tolerant pair answers the same.
fn quick_agrees_with_the_tolerant_path(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let Some((code, msg, record)) = TaskRecord::from_answer_quick(bytes) else {
        return Ok(false);
    };
    let envelope = Envelope::from_slice(bytes);
    prop_assert!(
        envelope.is_ok(),
        "quick read {bytes:?}, the tolerant path refused it"
    );
    let envelope = envelope.expect("checked above");
    prop_assert_eq!(code, envelope.code);
    prop_assert_eq!(msg, envelope.msg);
    prop_assert_eq!(Ok(record), TaskRecord::from_data(&envelope.data));
    Ok(true)
}

/// Every member a record's rules read, legacy ones included, and a few they do not.
const ANY_RECORD_KEYS: [&str; 24] = [
    "taskId",
    "task_id",
    "paramJson",
    "createTime",
    "completeTime",
    "successFlag",
    "status",
    "state",
    "response",
    "errorCode",
    "errorMessage",
    "fallbackFlag",
    "resultUrls",
    "result_urls",
    "originUrls",
    "fullResultUrls",
    "full_result_urls",
    "resolution",
    "seeds",
    "hasAudioList",
    "mediaIds",
    "media_ids",
    "info",
    "promptJson",
];

/// A record-info-like answer in any shape: current or legacy members (duplicates included,
/// written out by hand since a `Value` cannot hold them), a `response` block of result
/// members, sometimes an unknown member or `data` of another type.
fn any_record_answer() -> impl Strategy<Value = Vec<u8>> {
    let member = |keys: Vec<&'static str>| (prop::sample::select(keys), json());
    let block = prop::collection::vec(member(ANY_RECORD_KEYS.to_vec()), 0..8).prop_map(|pairs| {
        let members: Vec<String> = pairs
            .into_iter()
            .map(|(key, value)| format!("{}:{value}", Value::from(key)))
            .collect();
        format!("{{{}}}", members.join(","))
    });
    let value = prop_oneof![
        3 => json().prop_map(|value| value.to_string()),
        2 => block,
    ];
    let data = prop_oneof![
        8 => prop::collection::vec((prop::sample::select(ANY_RECORD_KEYS.to_vec()), value), 0..12)
            .prop_map(|pairs| {
                let members: Vec<String> = pairs
                    .into_iter()
                    .map(|(key, value)| format!("{}:{value}", Value::from(key)))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        1 => json().prop_map(|value| value.to_string()),
    ];
    let code = prop_oneof![
        4 => Just("200".to_owned()),
        1 => leaf().prop_map(|value| value.to_string()),
    ];
    (
        code,
        prop::option::weighted(0.8, leaf()),
        prop::option::weighted(0.1, leaf()),
        data,
        prop::option::weighted(0.1, (prop::sample::select(KEYS), leaf())),
    )
        .prop_map(|(code, msg, message, data, extra)| {
            let mut members = vec![format!("\"code\":{code}")];
            if let Some(msg) = msg {
                members.push(format!("\"msg\":{msg}"));
            }
            if let Some(message) = message {
                members.push(format!("\"message\":{message}"));
            }
            members.push(format!("\"data\":{data}"));
            if let Some((key, value)) = extra {
                members.push(format!("{}:{value}", Value::from(key)));
            }
            format!("{{{}}}", members.join(",")).into_bytes()
        })
}

/// Whenever the typed reader answers, the tolerant pair answers the same; and whenever the
/// current-shape reader answers, the typed reader answers the same.
fn typed_agrees_with_the_tolerant_path(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let typed = TaskRecord::from_answer(bytes);
    if let Some(quick) = TaskRecord::from_answer_quick(bytes) {
        prop_assert_eq!(Some(quick), typed.clone());
    }
    let Some((code, msg, record)) = typed else {
        return Ok(false);
    };
    let envelope = Envelope::from_slice(bytes);
    prop_assert!(
        envelope.is_ok(),
        "typed read {:?}, the tolerant path refused it",
        String::from_utf8_lossy(bytes)
    );
    let envelope = envelope.expect("checked above");
    prop_assert_eq!(code, envelope.code);
    prop_assert_eq!(msg, envelope.msg);
    prop_assert_eq!(Ok(record), TaskRecord::from_data(&envelope.data));
    Ok(true)
}

/// When the tolerant pair reads a record from an answer, the typed reader reads it too: it
/// declines only answers without a record.
fn typed_reads_what_the_tolerant_path_reads(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(envelope) = Envelope::from_slice(bytes) else {
        return Ok(());
    };
    if TaskRecord::from_data(&envelope.data).is_ok() {
        prop_assert!(
            TaskRecord::from_answer(bytes).is_some(),
            "the tolerant path read {:?}, the typed reader declined",
            String::from_utf8_lossy(bytes)
        );
    }
    Ok(())
}

/// Whenever the hand-written scanner reads an answer, serde_json's reader reads the same, in
/// both shapes' modes; returns whether the scanner read it.
fn scanner_agrees_with_serde(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let mut scanned = false;
    for current_only in [false, true] {
        let [scan, serde] = crate::quick::read_both_ways(bytes, current_only);
        if scan.is_some() {
            scanned = true;
            prop_assert_eq!(
                &scan,
                &serde,
                "scanner and serde_json disagree on {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
    Ok(scanned)
}

/// The same answer with whitespace between every token (the scanner must skip what
/// serde_json skips).
fn spaced(bytes: &[u8], pretty: &[u8]) -> [Vec<u8>; 2] {
    let mut padded = b" \n\t".to_vec();
    padded.extend_from_slice(bytes);
    padded.extend_from_slice(b"\r\n ");
    [padded, pretty.to_vec()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_scanner_reads_what_serde_json_reads(
        answer in any_record_answer(),
        generated in record_answer(),
        value in json(),
        bytes in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let generated_bytes = serde_json::to_vec(&generated).expect("a Value always serializes");
        let pretty = serde_json::to_vec_pretty(&generated).expect("a Value always serializes");
        let [padded, pretty] = spaced(&generated_bytes, &pretty);
        for input in [
            answer,
            generated_bytes,
            padded,
            pretty,
            serde_json::to_vec(&value).expect("a Value always serializes"),
            bytes,
        ] {
            scanner_agrees_with_serde(&input)?;
        }
    }

    #[test]
    fn the_scanner_reads_what_serde_json_reads_when_bytes_are_cut_or_changed(
        answer in record_answer(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(&b"\"\\/{}[]:,0123456789.-+eEnulltrf \n\tx\x01\xc3\xa9"[..]),
    ) {
        let bytes = serde_json::to_vec(&answer).expect("a Value always serializes");
        let at = at.index(bytes.len());
        let mut changed = bytes.clone();
        changed[at] = byte;
        let mut inserted = bytes.clone();
        inserted.insert(at, byte);
        for input in [&bytes[..at], &changed[..], &inserted[..]] {
            scanner_agrees_with_serde(input)?;
        }
    }

    #[test]
    fn the_typed_record_reader_agrees_with_the_tolerant_one_on_every_shape(answer in any_record_answer()) {
        typed_agrees_with_the_tolerant_path(&answer)?;
        typed_reads_what_the_tolerant_path_reads(&answer)?;
    }

    #[test]
    fn the_typed_record_reader_agrees_on_generated_answers_arbitrary_json_and_bytes(
        answer in record_answer(),
        value in json(),
        bytes in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        for input in [
            serde_json::to_vec(&answer).expect("a Value always serializes"),
            serde_json::to_vec(&value).expect("a Value always serializes"),
            bytes,
        ] {
            typed_agrees_with_the_tolerant_path(&input)?;
            typed_reads_what_the_tolerant_path_reads(&input)?;
        }
    }

    #[test]
    fn the_quick_record_reader_agrees_with_the_tolerant_one(answer in record_answer()) {
        let bytes = serde_json::to_vec(&answer).expect("a Value always serializes");
        quick_agrees_with_the_tolerant_path(&bytes)?;
    }

    #[test]
    fn the_quick_record_reader_agrees_on_arbitrary_json_and_bytes(
        value in json(),
        bytes in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let text = serde_json::to_vec(&value).expect("a Value always serializes");
        quick_agrees_with_the_tolerant_path(&text)?;
        quick_agrees_with_the_tolerant_path(&bytes)?;
    }

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

/// The scanner reads the plain answers kie sends (so the property above is not vacuous), and
/// leaves to serde_json what is outside its subset, agreeing on the edge cases either way.
#[test]
fn the_scanner_takes_plain_answers_and_leaves_the_rest() {
    let read = |text: &str| crate::quick::read_both_ways(text.as_bytes(), false);
    let plain = r#"{"code":200,"msg":"success","data":{"taskId":"t1","paramJson":"{\"prompt\":\"a \\\"cat\\\"\\n\"}","createTime":1767225600000,"completeTime":null,"successFlag":1,"response":{"taskId":"t1","resultUrls":["https://f/x.mp4"],"resolution":"1080p","seeds":[7],"hasAudioList":[true,false]},"errorCode":null,"errorMessage":"","fallbackFlag":false}}"#;
    let [scan, serde] = read(plain);
    assert!(scan.is_some());
    assert_eq!(scan, serde);
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(plain).expect("JSON"))
        .expect("a Value always serializes");
    let [scan, serde] = read(&pretty);
    assert!(scan.is_some());
    assert_eq!(scan, serde);
    // Outside the subset: declined by the scanner, read (or refused) by serde_json.
    for text in [
        r#"{"code":200,"data":{"taskId":"\u0074"}}"#,
        r#"{"code":200,"data":{"errorCode":-1}}"#,
        r#"{"code":200,"data":{"errorCode":1.0}}"#,
        r#"{"code":200,"data":{"errorCode":1e3}}"#,
        r#"{"code":200,"data":{"errorCode":1234567890123456789}}"#,
        r#"{"code":200,"data":{"errorCode":01}}"#,
        r#"{"code":200,"data":{"taskId":"a\qb"}}"#,
        r#"{"code":200,"data":{"taskId":"a	b"}}"#,
        r#"{"code":200,"data":{"taskId":"t",}}"#,
        r#"{"code":200,"data":{"seeds":[1,]}}"#,
        r#"{"code":200,"data":{"taskId":"t"}} x"#,
        r#"{"code":200,"data":{"taskId":"t"}"#,
        r#"{"code":200,"data":{"taskId":nul}}"#,
        r#"[200]"#,
    ] {
        let [scan, serde] = read(text);
        assert!(scan.is_none(), "{text}");
        if text.contains("\\u") || text.contains("-1") || text.contains("1.0") {
            assert!(serde.is_some(), "{text}");
        }
    }
    let deep = format!(
        r#"{{"code":200,"data":{{"taskId":"t","info":{}1{}}}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let [scan, serde] = read(&deep);
    assert!(scan.is_none() && serde.is_some());
    // Inside it: every short escape, raw UTF-8, duplicates (the last counts), any order.
    let [scan, serde] = read(
        r#"{"data":{"taskId":"x","taskId":"\/\b\f\n\r\t\"\\é","status":0,"successFlag":1},"code":200,"msg":null,"message":"m"}"#,
    );
    assert!(scan.is_some());
    assert_eq!(scan, serde);
}

/// The generator reaches the one-pass reader's accepting paths, so the agreement above is
/// not vacuous: of 2,000 answers, most are read in one pass, and some with a result block.
#[test]
fn the_record_answer_generator_mostly_takes_the_quick_path() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = record_answer();
    let (mut quick, mut with_response) = (0, 0);
    for _ in 0..2_000 {
        let answer = strategy.new_tree(&mut runner).expect("a tree").current();
        let bytes = serde_json::to_vec(&answer).expect("a Value always serializes");
        if let Some((_, _, record)) = TaskRecord::from_answer_quick(&bytes) {
            quick += 1;
            with_response += usize::from(record.response.is_some());
        }
    }
    assert!(
        quick > 600,
        "only {quick} of 2000 answers took the quick path"
    );
    assert!(
        with_response > 20,
        "only {with_response} quick answers had a response block"
    );
}

/// The any-shape generator reaches the typed reader's paths: most answers have a record,
/// many in a legacy shape (which the current-shape reader declines), some with a result
/// block.
#[test]
fn the_any_shape_generator_mostly_takes_the_typed_path() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = any_record_answer();
    let (mut typed, mut legacy, mut with_urls) = (0, 0, 0);
    for _ in 0..2_000 {
        let bytes = strategy.new_tree(&mut runner).expect("a tree").current();
        if let Some((_, _, record)) = TaskRecord::from_answer(&bytes) {
            typed += 1;
            legacy += usize::from(TaskRecord::from_answer_quick(&bytes).is_none());
            with_urls += usize::from(!record.video_urls().is_empty());
        }
    }
    assert!(
        typed > 1_000,
        "only {typed} of 2000 answers had a typed read"
    );
    assert!(
        legacy > 300,
        "only {legacy} typed reads were of other shapes"
    );
    assert!(with_urls > 50, "only {with_urls} typed reads had URLs");
}
