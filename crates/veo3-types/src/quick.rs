//! The typed reader of the answer a client reads most: record-info, polled every few seconds
//! for every running task.
//!
//! The tolerant readers work on a `serde_json::Value` tree, which costs an allocation per key
//! and per node, a lookup per rule and a copy of every string before any rule runs. This
//! reader deserializes the answer once, straight into a slot per member the rules read
//! (matched by name as it streams past: no key strings, no maps), and moves each value into
//! the record: the strings of the answer are allocated once and never copied. It reads every
//! shape kie sends, the current documented one and the legacy one (`status`, `resultUrls` on
//! the record, `task_id`), in any member order, and keeps the tolerant path's meaning for
//! everything else it meets: a repeated member counts once, the last one (as a parsed object
//! does), an unknown member is parsed and dropped, a member of an unexpected type is kept as
//! the `Value` it is (a leaf costs no tree) and read by the same rules (`as_i64`, `as_text`,
//! `Timestamp::from_value`, `TaskState::from_value`, `parse_url_list`, ...).
//!
//! It declines (answers `None`, and the caller reads the answer the tolerant way, which
//! explains what it cannot read) only what is not a record-info answer with a record: invalid
//! JSON, trailing bytes, an envelope without a readable `code`, `data` that is not an object.
//! Property tests (`fuzz.rs`) and every record-info fixture (`tests/it/types.rs`) check that
//! whenever it answers, it answers what the tolerant path does.
//!
//! [`TaskRecord::from_answer_quick`] is the same reader held to the current documented shape
//! only (it declines a legacy or unknown member and a repeated one), as it always was.

use std::fmt;

mod scan;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::response::{TaskResponse, TaskState};
use crate::tolerant::{as_bool, as_i64, optional_url_list, parse_url_list};
use crate::{ApiCode, Resolution, TaskRecord, Timestamp};

/// The members of a task record in the current documented shape.
pub(crate) const RECORD: [&str; 9] = [
    "taskId",
    "paramJson",
    "createTime",
    "completeTime",
    "successFlag",
    "response",
    "errorCode",
    "errorMessage",
    "fallbackFlag",
];

/// A member as read: absent (`None`), or its value (`null` included, as in a parsed object).
type Slot = Option<Value>;

/// The members of a record, or of its `response` block, that any rule reads. The block's
/// rules read a subset; the others stay empty there.
#[derive(Default)]
struct Members {
    task_id: Slot,
    task_id_snake: Slot,
    param_json: Slot,
    create_time: Slot,
    complete_time: Slot,
    success_flag: Slot,
    status: Slot,
    state: Slot,
    error_code: Slot,
    error_message: Slot,
    fallback_flag: Slot,
    result_urls: Slot,
    result_urls_snake: Slot,
    origin_urls: Slot,
    origin_urls_snake: Slot,
    full_result_urls: Slot,
    full_result_urls_snake: Slot,
    resolution: Slot,
    seeds: Slot,
    has_audio_list: Slot,
    media_ids: Slot,
    media_ids_snake: Slot,
    /// `response` when it is an object (a record's only; a block's own is never read).
    response: Option<Box<Members>>,
    /// Whether `response` was seen at all (for the current-shape check).
    response_seen: bool,
    /// Whether every member was one of [`RECORD`], each once.
    current: bool,
}

impl Members {
    /// The slot of member `key`, `None` for a member no rule reads.
    fn slot(&mut self, key: &str) -> Option<&mut Slot> {
        Some(match key {
            "taskId" => &mut self.task_id,
            "task_id" => &mut self.task_id_snake,
            "paramJson" => &mut self.param_json,
            "createTime" => &mut self.create_time,
            "completeTime" => &mut self.complete_time,
            "successFlag" => &mut self.success_flag,
            "status" => &mut self.status,
            "state" => &mut self.state,
            "errorCode" => &mut self.error_code,
            "errorMessage" => &mut self.error_message,
            "fallbackFlag" => &mut self.fallback_flag,
            "resultUrls" => &mut self.result_urls,
            "result_urls" => &mut self.result_urls_snake,
            "originUrls" => &mut self.origin_urls,
            "origin_urls" => &mut self.origin_urls_snake,
            "fullResultUrls" => &mut self.full_result_urls,
            "full_result_urls" => &mut self.full_result_urls_snake,
            "resolution" => &mut self.resolution,
            "seeds" => &mut self.seeds,
            "hasAudioList" => &mut self.has_audio_list,
            "mediaIds" => &mut self.media_ids,
            "media_ids" => &mut self.media_ids_snake,
            _ => return None,
        })
    }
}

/// The first of two members present with a non-null value (the tolerant `field`).
fn first(a: Slot, b: Slot) -> Option<Value> {
    a.filter(|value| !value.is_null())
        .or_else(|| b.filter(|value| !value.is_null()))
}

/// `as_text`, taking the value: a non-empty string is moved, not copied.
fn into_text(value: Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

impl Members {
    /// The record these members make: `TaskRecord::from_fields`, rule for rule, on owned
    /// values.
    fn take_record(&mut self) -> TaskRecord {
        let mut block = self.response.take();
        let state = first(self.success_flag.take(), None)
            .or_else(|| {
                block
                    .as_mut()
                    .and_then(|b| first(b.success_flag.take(), None))
            })
            .or_else(|| first(self.status.take(), self.state.take()))
            .map_or_else(
                || TaskState::Unknown("absent".into()),
                |raw| TaskState::from_value(&raw),
            );
        let task_id = first(self.task_id.take(), self.task_id_snake.take())
            .and_then(into_text)
            .or_else(|| {
                block.as_mut().and_then(|b| {
                    first(b.task_id.take(), b.task_id_snake.take()).and_then(into_text)
                })
            })
            .unwrap_or_default();
        let param_json = self.param_json.take().and_then(|raw| match raw {
            Value::String(text) if !text.is_empty() => Some(text),
            Value::Object(_) => Some(raw.to_string()),
            _ => None,
        });
        let create_time = self.create_time.take();
        let complete_time = self.complete_time.take();
        let error_code = self.error_code.take();
        let error_message = self.error_message.take();
        let fallback_flag = self.fallback_flag.take();
        let response = response_of(block, self);
        TaskRecord {
            task_id,
            param_json,
            create_time: create_time.as_ref().and_then(Timestamp::from_value),
            complete_time: complete_time.as_ref().and_then(Timestamp::from_value),
            state,
            response,
            error_code: error_code.as_ref().and_then(as_i64),
            error_message: error_message.and_then(into_text),
            fallback_flag: fallback_flag.as_ref().and_then(as_bool),
        }
    }
}

/// `TaskResponse::from_parts`: each field from the block first, the record second.
fn response_of(mut block: Option<Box<Members>>, data: &mut Members) -> Option<TaskResponse> {
    let has_block = block.is_some();
    let mut lookup = |pick: fn(&mut Members) -> (Slot, Slot)| {
        block
            .as_deref_mut()
            .and_then(|block| {
                let (a, b) = pick(block);
                first(a, b)
            })
            .or_else(|| {
                let (a, b) = pick(data);
                first(a, b)
            })
    };
    let result_urls = lookup(|m| (m.result_urls.take(), m.result_urls_snake.take()))
        .map(|raw| parse_url_list(&raw))
        .unwrap_or_default();
    let origin_urls = lookup(|m| (m.origin_urls.take(), m.origin_urls_snake.take()));
    let full_result_urls = lookup(|m| (m.full_result_urls.take(), m.full_result_urls_snake.take()));
    let resolution = lookup(|m| (m.resolution.take(), None));
    let seeds = lookup(|m| (m.seeds.take(), None));
    let has_audio_list = lookup(|m| (m.has_audio_list.take(), None));
    let media_ids = lookup(|m| (m.media_ids.take(), m.media_ids_snake.take()));
    let response = TaskResponse {
        result_urls,
        origin_urls: optional_url_list(origin_urls.as_ref()),
        full_result_urls: optional_url_list(full_result_urls.as_ref()),
        resolution: resolution
            .as_ref()
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(Resolution::from_wire),
        seeds: seeds.and_then(|raw| match raw {
            Value::Array(items) => Some(items.iter().filter_map(as_i64).collect()),
            other => as_i64(&other).map(|seed| vec![seed]),
        }),
        has_audio_list: has_audio_list.and_then(|raw| match raw {
            Value::Array(items) => Some(items.iter().filter_map(as_bool).collect()),
            _ => None,
        }),
        media_ids: optional_url_list(media_ids.as_ref()),
    };
    (has_block || response != TaskResponse::default()).then_some(response)
}

/// Reads a JSON value: an object as [`Members`] (`nested` for a record, whose `response` is
/// read as a block), anything else consumed and answered `None` (the caller treats it as
/// "not an object", as the rules do).
struct ObjectSeed {
    nested: bool,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Option<Members>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed {
    type Value = Option<Members>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Members {
            current: true,
            ..Members::default()
        };
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let known = RECORD.contains(&key.as_str());
            if key == "response" && self.nested {
                let repeated = std::mem::replace(&mut members.response_seen, true);
                members.current &= !repeated;
                members.response = map
                    .next_value_seed(ObjectSeed { nested: false })?
                    .map(Box::new);
                continue;
            }
            match members.slot(&key) {
                Some(slot) => {
                    let repeated = slot.replace(map.next_value()?).is_some();
                    members.current &= known && !repeated;
                }
                None => {
                    // Parsed (so the answer is exactly as valid as the tolerant path finds
                    // it) and dropped, as the rules never read it.
                    map.next_value::<Value>()?;
                    members.current = false;
                }
            }
        }
        Ok(Some(members))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Value>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct KeySeed;

/// A key as read; compared by value, whether or not it was borrowed.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Self::Borrowed(key) => key,
            Self::Owned(key) => key,
        }
    }
}

impl PartialEq<&str> for Key<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::ops::Deref for Key<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(key.to_owned()))
    }
}

/// A record-info answer as read: the envelope's members and `data`.
#[derive(Default)]
struct Answer {
    code: Slot,
    msg: Slot,
    message: Slot,
    /// `data` when it is an object; `Some(None)` when it is something else.
    data: Option<Option<Box<Members>>>,
    /// Whether every envelope member was `code`, `msg`, `message` or `data`, each once.
    current: bool,
}

struct AnswerSeed;

impl<'de> DeserializeSeed<'de> for AnswerSeed {
    type Value = Answer;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Answer, D::Error> {
        // Only an object: serde's derived readers would also take an array, by position.
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AnswerSeed {
    type Value = Answer;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record-info envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Answer, A::Error> {
        let mut answer = Answer {
            current: true,
            ..Answer::default()
        };
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let repeated = match &*key {
                "code" => answer.code.replace(map.next_value()?).is_some(),
                "msg" => answer.msg.replace(map.next_value()?).is_some(),
                "message" => answer.message.replace(map.next_value()?).is_some(),
                "data" => answer
                    .data
                    .replace(
                        map.next_value_seed(ObjectSeed { nested: true })?
                            .map(Box::new),
                    )
                    .is_some(),
                _ => {
                    map.next_value::<Value>()?;
                    true
                }
            };
            answer.current &= !repeated;
        }
        Ok(answer)
    }
}

/// Reads a record-info answer; `current_only` declines every shape but the current one.
///
/// The hand-written scanner reads the plain JSON kie sends; whatever it declines, serde_json
/// reads, exactly as before.
fn read(body: &[u8], current_only: bool) -> Option<(ApiCode, String, TaskRecord)> {
    let answer = scan::answer(body).or_else(|| deserialize(body))?;
    finish(answer, current_only)
}

/// The answer as serde_json reads it.
fn deserialize(body: &[u8]) -> Option<Answer> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let answer = AnswerSeed.deserialize(&mut deserializer).ok()?;
    // Trailing bytes make the answer invalid JSON, as the tolerant path reports.
    deserializer.end().ok()?;
    Some(answer)
}

/// The answer as the scanner reads it, and as serde_json does (for the property test that
/// they agree whenever the scanner answers).
#[cfg(test)]
pub(crate) fn read_both_ways(
    body: &[u8],
    current_only: bool,
) -> [Option<(ApiCode, String, TaskRecord)>; 2] {
    [scan::answer(body), deserialize(body)].map(|answer| finish(answer?, current_only))
}

/// The envelope's code and message and the record, from an answer as read.
fn finish(answer: Answer, current_only: bool) -> Option<(ApiCode, String, TaskRecord)> {
    let code = match answer.code? {
        Value::Null => return None,
        raw => ApiCode::from_i64(as_i64(&raw)?),
    };
    // `msg`, else `message`: a string as it is, null skipped, anything else as JSON text.
    let msg = [answer.msg, answer.message]
        .into_iter()
        .flatten()
        .find_map(|raw| match raw {
            Value::String(text) => Some(text),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .unwrap_or_default();
    let mut data = answer.data??;
    if current_only && !(answer.current && data.current) {
        return None;
    }
    Some((code, msg, data.take_record()))
}

impl TaskRecord {
    /// Reads a whole record-info answer (envelope and record) in one pass, in every shape kie
    /// sends (the current documented one and the legacy one): the envelope's `code`, its
    /// message and the record, exactly as [`Envelope::from_slice`](crate::Envelope::from_slice)
    /// and [`TaskRecord::from_data`] would read them, without building a JSON tree and without
    /// copying the answer's strings.
    ///
    /// `None` for what is not an answer with a record (invalid JSON, no readable `code`,
    /// `data` that is absent or not an object): read those with the tolerant pair, which
    /// explains what it cannot read. This is a fast path, never the only path.
    ///
    /// ```
    /// use veo3_types::{ApiCode, TaskRecord, TaskState};
    ///
    /// let legacy = br#"{"code":200,"msg":"success","data":{"taskId":"t1","status":1,"resultUrls":"[\"https://f/x.mp4\"]"}}"#;
    /// let (code, _, record) = TaskRecord::from_answer(legacy).expect("a record");
    /// assert_eq!((code, &record.state), (ApiCode::Success, &TaskState::Success));
    /// assert_eq!(record.video_urls(), ["https://f/x.mp4"]);
    ///
    /// // No record: the tolerant readers explain the answer.
    /// assert!(TaskRecord::from_answer(br#"{"code":422,"msg":"record is null","data":null}"#).is_none());
    /// ```
    pub fn from_answer(body: &[u8]) -> Option<(ApiCode, String, TaskRecord)> {
        read(body, false)
    }

    /// Like [`TaskRecord::from_answer`], but only for the current documented shape: the
    /// envelope's `code`, its message and `data`, the record's documented members, each at
    /// most once.
    ///
    /// `None` for any other shape (legacy members, unknown or duplicate members, `data` that
    /// is not an object, invalid JSON): read those with [`TaskRecord::from_answer`] or the
    /// tolerant pair.
    ///
    /// ```
    /// use veo3_types::{ApiCode, TaskRecord, TaskState};
    ///
    /// let answer = br#"{"code":200,"msg":"success","data":{"taskId":"t1","successFlag":0,"response":null}}"#;
    /// let (code, msg, record) = TaskRecord::from_answer_quick(answer).expect("the current shape");
    /// assert_eq!((code, msg.as_str()), (ApiCode::Success, "success"));
    /// assert_eq!(record.state, TaskState::Generating);
    ///
    /// // A legacy answer is not read here; `from_answer` and the tolerant readers take it.
    /// assert!(TaskRecord::from_answer_quick(br#"{"code":200,"data":{"taskId":"t1","status":1}}"#).is_none());
    /// ```
    pub fn from_answer_quick(body: &[u8]) -> Option<(ApiCode, String, TaskRecord)> {
        read(body, true)
    }
}
