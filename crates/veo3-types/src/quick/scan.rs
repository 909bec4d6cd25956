//! The record-info answer scanned by hand: the same [`Answer`] the serde reader builds, for the
//! plain JSON kie sends, at a fraction of the cost.
//!
//! serde_json unescapes every string with an escape into a scratch buffer that starts empty
//! for each answer and grows by reallocation, then copies it out; `paramJson` (a JSON text in
//! a string) has a dozen escapes in every record. This scanner finds a string's end first,
//! then borrows it (no escape) or unescapes it into one `String` of the right size, and builds
//! each member's value directly.
//!
//! It reads a strict subset of JSON and declines (`None`, and the serde reader reads the
//! answer as before) everything else: `\u` escapes, numbers with a sign, a fraction, an
//! exponent or more than 18 digits, nesting deeper than [`MAX_DEPTH`], and anything serde_json
//! would refuse. So whenever it answers, it answers exactly what the serde reader does: the
//! same values (the same `Value` for every member, built by the same `Map::insert` for
//! objects), and the same member rules (a repeated member counts once, the last; `response`
//! read as a block only in the record; the current-shape flags set the same way).

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::{Answer, Members, RECORD};

/// Deepest nesting scanned (serde_json allows 128; anything deeper is left to it).
const MAX_DEPTH: usize = 32;

/// Scans a whole record-info answer; `None` when it is outside the subset or not valid JSON.
pub(super) fn answer(body: &[u8]) -> Option<Answer> {
    let text = std::str::from_utf8(body).ok()?;
    let mut scan = Scan {
        text,
        bytes: body,
        pos: 0,
        depth: 0,
    };
    scan.skip_ws();
    let answer = scan.envelope()?;
    scan.skip_ws();
    (scan.pos == body.len()).then_some(answer)
}

/// The index of the first byte at or after `at` that ends a run of plain string bytes (`"`,
/// `\\` or a control character), or `bytes.len()`: eight bytes at a time, as serde_json's
/// `skip_to_escape` does.
fn plain_run(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_ne_bytes(chunk.try_into().unwrap_or_default());
        let quote = word ^ (ONES * u64::from(b'"'));
        let slash = word ^ (ONES * u64::from(b'\\'));
        // A high bit set where a byte is zero (or below 0x20), in any byte of the chunk.
        let special = (quote.wrapping_sub(ONES) & !quote)
            | (slash.wrapping_sub(ONES) & !slash)
            | (word.wrapping_sub(ONES * 0x20) & !word);
        if special & HIGH != 0 {
            break;
        }
        at += 8;
    }
    while let Some(&byte) = bytes.get(at) {
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            return at;
        }
        at += 1;
    }
    at
}

struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skips whitespace and takes `byte`, or declines.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek() == Some(byte)).then(|| self.pos += 1)
    }

    /// Walks the members of an object (at its `{`): `member(self, key)` reads each value.
    fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let key = self.string()?;
                self.expect(b':')?;
                member(self, key)?;
                self.skip_ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// A string (at its `"`): borrowed when it has no escape, else unescaped into a `String`
    /// of its escaped length.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.pos + 1;
        let mut at = start;
        let mut escaped = false;
        let end = loop {
            at = plain_run(self.bytes, at);
            match *self.bytes.get(at)? {
                b'"' => break at,
                b'\\' => {
                    escaped = true;
                    at += 2;
                }
                _ => return None,
            }
        };
        self.pos = end + 1;
        let raw = self.text.get(start..end)?;
        if !escaped {
            return Some(Cow::Borrowed(raw));
        }
        // Byte by byte into one buffer of the escaped length: every short escape is one
        // ASCII byte, so the text stays valid UTF-8 (checked once at the end, as a string).
        let bytes = raw.as_bytes();
        let mut text = Vec::with_capacity(raw.len());
        let mut at = 0;
        while let Some(&byte) = bytes.get(at) {
            if byte != b'\\' {
                text.push(byte);
                at += 1;
                continue;
            }
            text.push(match bytes.get(at + 1)? {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                // `\u` (surrogate pairs and all) and invalid escapes: serde_json's.
                _ => return None,
            });
            at += 2;
        }
        String::from_utf8(text).ok().map(Cow::Owned)
    }

    /// Any JSON value in the subset, as serde_json's `Value` would hold it.
    fn value(&mut self) -> Option<Value> {
        self.skip_ws();
        match self.peek()? {
            b'"' => Some(Value::String(self.string()?.into_owned())),
            b'{' => {
                let mut map = Map::new();
                self.object(|scan, key| {
                    let value = scan.value()?;
                    map.insert(key.into_owned(), value);
                    Some(())
                })?;
                Some(Value::Object(map))
            }
            b'[' => {
                self.pos += 1;
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return None;
                }
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.skip_ws();
                        match self.peek()? {
                            b',' => self.pos += 1,
                            b']' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                self.depth -= 1;
                Some(Value::Array(items))
            }
            b'n' => self.literal("null", Value::Null),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Option<Value> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word.as_bytes()).then(|| {
            self.pos = end;
            value
        })
    }

    /// A non-negative integer without fraction or exponent, of at most 18 digits (so it
    /// cannot overflow): serde_json's `u64`.
    fn integer(&mut self) -> Option<Value> {
        let start = self.pos;
        let mut number: u64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            number = number
                .wrapping_mul(10)
                .wrapping_add(u64::from(digit - b'0'));
            self.pos += 1;
        }
        let digits = self.pos - start;
        let leading_zero = self.bytes[start] == b'0' && digits > 1;
        if digits > 18 || leading_zero || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(Value::Number(Number::from(number)))
    }

    /// A record (`nested`) or its `response` block, as `ObjectSeed::visit_map` reads it.
    fn members(&mut self, nested: bool) -> Option<Box<Members>> {
        let mut members = Box::<Members>::default();
        members.current = true;
        self.object(|scan, key| {
            let known = RECORD.contains(&&*key);
            if nested && key == "response" {
                let repeated = std::mem::replace(&mut members.response_seen, true);
                members.current &= !repeated;
                scan.skip_ws();
                members.response = if scan.peek() == Some(b'{') {
                    Some(scan.members(false)?)
                } else {
                    scan.value()?;
                    None
                };
                return Some(());
            }
            let value = scan.value()?;
            match members.slot(&key) {
                Some(slot) => {
                    let repeated = slot.replace(value).is_some();
                    members.current &= known && !repeated;
                }
                None => members.current = false,
            }
            Some(())
        })?;
        Some(members)
    }

    /// The envelope, as `AnswerSeed::visit_map` reads it.
    fn envelope(&mut self) -> Option<Answer> {
        let mut answer = Answer {
            current: true,
            ..Answer::default()
        };
        self.object(|scan, key| {
            let repeated = match &*key {
                "code" => answer.code.replace(scan.value()?).is_some(),
                "msg" => answer.msg.replace(scan.value()?).is_some(),
                "message" => answer.message.replace(scan.value()?).is_some(),
                "data" => {
                    scan.skip_ws();
                    let data = if scan.peek() == Some(b'{') {
                        Some(scan.members(true)?)
                    } else {
                        scan.value()?;
                        None
                    };
                    answer.data.replace(data).is_some()
                }
                _ => {
                    scan.value()?;
                    true
                }
            };
            answer.current &= !repeated;
            Some(())
        })?;
        Some(answer)
    }
}
