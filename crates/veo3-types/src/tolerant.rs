//! Tolerant readers for the shapes kie's docs disagree on (reference section 8). Each takes a
//! `serde_json::Value` and normalises it; none of them can panic.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// An integer from a JSON number or a numeric string (`"0"` is documented for `index`).
pub(crate) fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean from `true`/`false`, `0`/`1` or their string forms.
pub(crate) fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(_) => as_i64(value).map(|n| n != 0),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A non-empty string; `""` and `null` mean "none" (as `errorMessage` does on success).
pub(crate) fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A JSON object's members by name: a parsed [`Value`] (which has none unless it is an
/// object). The typed record reader (`quick.rs`) keeps its members in slots of its own and
/// applies the same leaf rules to them.
pub(crate) trait Fields {
    /// The member called `key`, `null` included; `None` when absent.
    fn member(&self, key: &str) -> Option<&Value>;
}

impl Fields for Value {
    fn member(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

/// The first of several keys present with a non-null value.
pub(crate) fn field<'a, F: Fields + ?Sized>(object: &'a F, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .filter_map(|key| object.member(key))
        .find(|value| !value.is_null())
}

/// A list of URLs in any of the documented shapes: a JSON array of strings, a JSON-encoded
/// array inside a string, a bracketed comma list that is not valid JSON
/// (`'[http://a.mp4, http://b.mp4]'`, as the callback schema shows), a single bare URL, `""`
/// or `null` (empty list).
///
/// ```
/// use veo3_types::parse_url_list;
/// use serde_json::json;
///
/// let expected = vec!["https://a/x.mp4".to_string()];
/// assert_eq!(parse_url_list(&json!(["https://a/x.mp4"])), expected);
/// assert_eq!(parse_url_list(&json!("[\"https://a/x.mp4\"]")), expected);
/// assert_eq!(parse_url_list(&json!("[https://a/x.mp4]")), expected);
/// assert!(parse_url_list(&json!("")).is_empty());
/// ```
pub fn parse_url_list(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(url) => Some(url.trim().to_owned()),
                _ => None,
            })
            .filter(|url| !url.is_empty())
            .collect(),
        Value::String(text) => {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Vec::new();
            }
            if let Ok(inner @ Value::Array(_)) = serde_json::from_str::<Value>(trimmed) {
                return parse_url_list(&inner);
            }
            let unbracketed = trimmed
                .strip_prefix('[')
                .map(|rest| rest.strip_suffix(']').unwrap_or(rest))
                .unwrap_or(trimmed);
            unbracketed
                .split(',')
                .map(|part| part.trim().trim_matches(|c| c == '"' || c == '\'').trim())
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Like [`parse_url_list`], but keeps the difference between "absent / null / empty" (`None`)
/// and a list with entries, for fields such as `originUrls` that are only filled sometimes.
pub(crate) fn optional_url_list(value: Option<&Value>) -> Option<Vec<String>> {
    let urls = parse_url_list(value?);
    (!urls.is_empty()).then_some(urls)
}

/// A point in time as epoch milliseconds (UTC), whichever shape it arrived in.
///
/// kie has documented `createTime` / `completeTime` as epoch-ms numbers, ISO-8601 strings and
/// `"YYYY-MM-DD HH:MM:SS"` strings (taken as UTC). Epoch seconds (a number below 10^11) are
/// scaled to milliseconds.
///
/// ```
/// use veo3_types::Timestamp;
/// use serde_json::json;
///
/// let ms = Timestamp::from_value(&json!(1767225600000_i64)).unwrap();
/// assert_eq!(Timestamp::from_value(&json!("2026-01-01T00:00:00Z")), Some(ms));
/// assert_eq!(Timestamp::from_value(&json!("2026-01-01 00:00:00")), Some(ms));
/// assert_eq!(Timestamp::from_value(&json!("1767225600000")), Some(ms));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Wraps epoch milliseconds.
    pub const fn from_epoch_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Epoch milliseconds, UTC.
    pub const fn epoch_millis(self) -> i64 {
        self.0
    }

    /// Reads any documented shape; `None` for null, empty or unreadable values.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Number(_) => as_i64(value).map(Self::from_number),
            Value::String(text) => {
                let text = text.trim();
                if text.is_empty() {
                    None
                } else if let Ok(number) = text.parse::<i64>() {
                    Some(Self::from_number(number))
                } else {
                    parse_datetime(text).map(Self)
                }
            }
            _ => None,
        }
    }

    fn from_number(number: i64) -> Self {
        if number.unsigned_abs() < 100_000_000_000 {
            Self(number.saturating_mul(1000))
        } else {
            Self(number)
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(&value).ok_or_else(|| serde::de::Error::custom("unreadable timestamp"))
    }
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH:MM]` into epoch milliseconds; no offset means UTC.
fn parse_datetime(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if bytes.len() < 19
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    if bytes[10] != b'T' && bytes[10] != b't' && bytes[10] != b' ' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let first3 = fraction.get(..len.min(3))?;
        millis = first3.parse::<i64>().ok()? * 10_i64.pow(3 - first3.len() as u32);
        rest = fraction.get(len..)?;
    }
    let offset_minutes = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let body = rest.get(1..)?.replace(':', "");
            if body.len() != 4 || !body.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = body.get(..2)?.parse().ok()?;
            let minutes: i64 = body.get(2..)?.parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_agree_across_shapes() {
        let expected = Some(Timestamp(1_751_365_800_000)); // 2025-07-01T10:30:00Z
        assert_eq!(
            Timestamp::from_value(&json!("2025-07-01T10:30:00Z")),
            expected
        );
        assert_eq!(
            Timestamp::from_value(&json!("2025-07-01 10:30:00")),
            expected
        );
        assert_eq!(
            Timestamp::from_value(&json!("2025-07-01T12:30:00+02:00")),
            expected
        );
        assert_eq!(
            Timestamp::from_value(&json!(1_751_365_800_000_i64)),
            expected
        );
        assert_eq!(Timestamp::from_value(&json!(1_751_365_800_i64)), expected);
        assert_eq!(
            Timestamp::from_value(&json!("2025-07-01T10:30:00.250Z")),
            Some(Timestamp(1_751_365_800_250))
        );
        assert_eq!(Timestamp::from_value(&json!("yesterday")), None);
        assert_eq!(Timestamp::from_value(&json!(null)), None);
        assert_eq!(Timestamp::from_value(&json!("2025-13-01 10:30:00")), None);
    }

    #[test]
    fn url_lists_in_every_shape_normalise_to_the_same_list() {
        let expected = vec!["https://a/1.mp4".to_string(), "https://a/2.mp4".to_string()];
        for shape in [
            json!(["https://a/1.mp4", "https://a/2.mp4"]),
            json!("[\"https://a/1.mp4\",\"https://a/2.mp4\"]"),
            json!("[https://a/1.mp4, https://a/2.mp4]"),
            json!("https://a/1.mp4,https://a/2.mp4"),
        ] {
            assert_eq!(parse_url_list(&shape), expected, "{shape}");
        }
        assert_eq!(optional_url_list(Some(&json!(""))), None);
        assert_eq!(optional_url_list(Some(&json!([]))), None);
        assert_eq!(optional_url_list(None), None);
    }

    #[test]
    fn numbers_and_booleans_accept_their_string_forms() {
        assert_eq!(as_i64(&json!("0")), Some(0));
        assert_eq!(as_i64(&json!(2.0)), Some(2));
        assert_eq!(as_i64(&json!(2.5)), None);
        assert_eq!(as_bool(&json!("true")), Some(true));
        assert_eq!(as_bool(&json!(0)), Some(false));
        assert_eq!(as_text(&json!("")), None);
    }
}
