//! One-pass reading of the answer a client reads most: record-info, polled every few seconds
//! for every running task.
//!
//! The tolerant readers work on a `serde_json::Value` tree, which costs an allocation per key
//! and per node before any rule runs. This reader deserializes the current documented shape
//! straight into the members the rules read (no tree, no key strings) and hands them to the
//! *same* rules through [`Fields`], so it cannot disagree with them on the values it reads.
//! It only accepts an answer whose every member it knows: a legacy
//! shape, an extra or duplicate member, `data` that is not an object, or anything else
//! unusual makes it answer `None`, and the caller reads the answer the tolerant way. A
//! property test checks that whenever it answers, it answers what the tolerant path does.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::response::envelope_head;
use crate::tolerant::Fields;
use crate::{ApiCode, TaskRecord};

/// The envelope members read here; `data` is the record below.
const ENVELOPE: [&str; 4] = ["code", "msg", "message", "data"];
/// The index of `data` in [`ENVELOPE`].
const DATA: usize = 3;
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

/// One JSON object's members, each at its name's position in `names`; a member present with
/// `null` is `Some(Value::Null)`, as in a parsed object.
struct Object<const N: usize> {
    names: &'static [&'static str; N],
    values: [Option<Value>; N],
}

impl<const N: usize> Fields for Object<N> {
    fn member(&self, key: &str) -> Option<&Value> {
        let index = self.names.iter().position(|name| *name == key)?;
        self.values[index].as_ref()
    }
}

/// Reads a JSON object (only an object: serde's derived readers also take an array, by
/// position) whose members are all among `names`, each at most once; anything else is an
/// error, which makes [`TaskRecord::from_answer_quick`] decline.
struct ObjectSeed<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for ObjectSeed<N> {
    type Value = Object<N>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Object<N>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for ObjectSeed<N> {
    type Value = Object<N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with known members")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<N>, A::Error> {
        let mut values: [Option<Value>; N] = std::array::from_fn(|_| None);
        while let Some(index) = map.next_key_seed(KeySeed(self.0))? {
            let slot = &mut values[index];
            if slot.is_some() {
                return Err(de::Error::custom("repeated member"));
            }
            *slot = Some(map.next_value()?);
        }
        Ok(Object {
            names: self.0,
            values,
        })
    }
}

/// A record-info answer: the envelope's members, and `data` read as a record.
struct Answer {
    head: Object<DATA>,
    data: Option<Object<9>>,
}

struct AnswerSeed;

impl<'de> DeserializeSeed<'de> for AnswerSeed {
    type Value = Answer;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Answer, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AnswerSeed {
    type Value = Answer;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record-info envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Answer, A::Error> {
        let mut head: [Option<Value>; DATA] = std::array::from_fn(|_| None);
        let mut data = None;
        while let Some(index) = map.next_key_seed(KeySeed(&ENVELOPE))? {
            let repeated = match head.get_mut(index) {
                Some(slot) => slot.replace(map.next_value()?).is_some(),
                None => data
                    .replace(map.next_value_seed(ObjectSeed(&RECORD))?)
                    .is_some(),
            };
            if repeated {
                return Err(de::Error::custom("repeated member"));
            }
        }
        let names = &[ENVELOPE[0], ENVELOPE[1], ENVELOPE[2]];
        Ok(Answer {
            head: Object {
                names,
                values: head,
            },
            data,
        })
    }
}

/// An object key, as its position in the known names; an unknown key is an error.
struct KeySeed<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for KeySeed<N> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for KeySeed<N> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a known member name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        self.0
            .iter()
            .position(|name| *name == key)
            .ok_or_else(|| E::custom("unknown member"))
    }
}

impl TaskRecord {
    /// Reads a whole record-info answer (envelope and record) in one pass, when it has the
    /// current documented shape: the envelope's `code`, its message and the record, exactly
    /// as [`Envelope::from_slice`](crate::Envelope::from_slice) and
    /// [`TaskRecord::from_data`] would read them.
    ///
    /// `None` for any other shape (legacy members, unknown or duplicate members, `data` that
    /// is not an object, invalid JSON): read those with the tolerant pair, which accepts every
    /// documented shape and explains what it cannot read. This is a fast path, never the only
    /// path.
    ///
    /// ```
    /// use veo3_types::{ApiCode, TaskRecord, TaskState};
    ///
    /// let answer = br#"{"code":200,"msg":"success","data":{"taskId":"t1","successFlag":0,"response":null}}"#;
    /// let (code, msg, record) = TaskRecord::from_answer_quick(answer).expect("the current shape");
    /// assert_eq!((code, msg.as_str()), (ApiCode::Success, "success"));
    /// assert_eq!(record.state, TaskState::Generating);
    ///
    /// // A legacy answer is not read here; the tolerant readers take it.
    /// assert!(TaskRecord::from_answer_quick(br#"{"code":200,"data":{"taskId":"t1","status":1}}"#).is_none());
    /// ```
    pub fn from_answer_quick(body: &[u8]) -> Option<(ApiCode, String, TaskRecord)> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let answer = AnswerSeed.deserialize(&mut deserializer).ok()?;
        // Trailing bytes make the answer invalid JSON, as the tolerant path reports.
        deserializer.end().ok()?;
        let (code, msg) = envelope_head(&answer.head).ok()?;
        Some((code, msg, TaskRecord::from_fields(&answer.data?)))
    }
}
