//! The API key as a secret, and the redaction applied to every piece of text that could end up
//! in an error or a log.

use std::fmt;

use crate::Error;

/// The kie.ai API key.
///
/// `Debug` and `Display` print `ApiKey(***)` / `***`, so the key cannot leak through an error,
/// a log line or a `{:?}` of a config struct. [`ApiKey::expose`] is the only way to read it
/// and is meant for exactly one place: building the `Authorization` header of a request to
/// the API base URL (never to the hosts serving result files).
///
/// ```
/// use veo3_core::ApiKey;
///
/// let key = ApiKey::new("0123456789abcdef0123456789abcdef")?;
/// assert_eq!(format!("{key:?}"), "ApiKey(***)");
/// assert_eq!(key.to_string(), "***");
/// assert_eq!(key.authorization(), "Bearer 0123456789abcdef0123456789abcdef");
/// assert!(ApiKey::new("has space").is_err());
/// # Ok::<(), veo3_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, refusing values that cannot be sent in a header: empty, or containing
    /// whitespace or control characters (a common copy-paste mistake that would otherwise
    /// surface as a confusing 401). Surrounding whitespace is trimmed first.
    ///
    /// The error names the problem, never the value.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        let trimmed = key.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid_input("the API key is empty"));
        }
        if trimmed
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        {
            return Err(Error::invalid_input(
                "the API key contains whitespace, control or non-ASCII characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The key itself. Use it only to build the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `Authorization` header value: `Bearer <key>`.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Removes this key from `text` (and bearer tokens in general, see [`redact`]).
    pub fn redact(&self, text: &str) -> String {
        redact(text, &[self.expose()])
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The replacement for anything redacted.
pub const REDACTED: &str = "***";

/// Returns `text` with every occurrence of each secret replaced by `***`, the credential after
/// every `Bearer `/`Basic ` (any case), and the values of JSON-ish fields whose names suggest
/// a secret (`apiKey`, `api_key`, `authorization`, `token`, `secret`, `password`,
/// `webhookHmacKey`, ...).
///
/// Used on response-body excerpts and transport messages before they are stored in an
/// [`Error`], because a server or proxy may echo request headers back.
///
/// ```
/// use veo3_core::redact;
///
/// let text = r#"{"echo":"Authorization: Bearer sk-123","apiKey":"sk-123","taskId":"abc"}"#;
/// assert_eq!(
///     redact(text, &["sk-123"]),
///     r#"{"echo":"Authorization: Bearer ***","apiKey":"***","taskId":"abc"}"#,
/// );
/// ```
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, REDACTED);
    }
    let out = redact_after_schemes(&out);
    redact_secret_fields(&out)
}

/// Cuts `body` to at most `max_chars` characters (on a character boundary, adding `…` when
/// cut), replaces invalid UTF-8, and redacts it.
pub fn excerpt(body: &[u8], max_chars: usize, secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    // Redact first so that a secret straddling the cut is still removed.
    let redacted = redact(&text, secrets);
    let mut chars = redacted.char_indices();
    match chars.nth(max_chars) {
        Some((cut, _)) => format!("{}…", &redacted[..cut]),
        None => redacted,
    }
}

const SCHEMES: [&str; 2] = ["bearer ", "basic "];

fn redact_after_schemes(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some((start, scheme_len)) = SCHEMES
        .iter()
        .filter_map(|scheme| {
            lower[search..]
                .find(scheme)
                .map(|at| (search + at, scheme.len()))
        })
        .min_by_key(|(at, _)| *at)
    {
        let token_start = start + scheme_len;
        let token_end = text[token_start..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '}' | ')' | '\\')
            })
            .map_or(text.len(), |len| token_start + len);
        out.push_str(&text[copied..token_start]);
        if token_end > token_start && &text[token_start..token_end] != REDACTED {
            out.push_str(REDACTED);
        } else {
            out.push_str(&text[token_start..token_end]);
        }
        copied = token_end;
        search = token_end.max(token_start);
    }
    out.push_str(&text[copied..]);
    out
}

const SECRET_FIELDS: [&str; 9] = [
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "token",
    "secret",
    "password",
    "hmackey",
    "hmac_key",
];

/// Replaces the string value of `"<name>": "<value>"` pairs whose lower-cased name contains
/// one of [`SECRET_FIELDS`].
fn redact_secret_fields(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Walk over JSON string literals: each `"name"` followed by `:` and a string value.
    while let Some(open) = rest.find('"') {
        let Some(close) = find_string_end(rest, open + 1) else {
            break;
        };
        let name = &rest[open + 1..close];
        let after = &rest[close + 1..];
        let colon_gap = after.len() - after.trim_start().len();
        let after_colon = after.trim_start();
        let is_secret_name = {
            let lower = name.to_ascii_lowercase();
            SECRET_FIELDS.iter().any(|field| lower.contains(field))
        };
        if is_secret_name && after_colon.starts_with(':') {
            let value_part = &after_colon[1..];
            let value_gap = value_part.len() - value_part.trim_start().len();
            let value = value_part.trim_start();
            if let Some(stripped) = value.strip_prefix('"') {
                if let Some(end) = find_string_end(stripped, 0) {
                    let head_len = close + 1 + colon_gap + 1 + value_gap + 1;
                    out.push_str(&rest[..head_len]);
                    out.push_str(REDACTED);
                    out.push('"');
                    rest = &rest[head_len + end + 1..];
                    continue;
                }
            }
        }
        out.push_str(&rest[..=close]);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The index of the closing quote of a JSON string whose content starts at `from`.
fn find_string_end(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_cases() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("no secrets here", &[], "no secrets here"),
            ("key k3y-value leaked", &["k3y-value"], "key *** leaked"),
            (
                "Authorization: Bearer abc.def",
                &[],
                "Authorization: Bearer ***",
            ),
            (
                "authorization: bearer abc, next",
                &[],
                "authorization: bearer ***, next",
            ),
            ("BASIC dXNlcjpwYXNz", &[], "BASIC ***"),
            ("Bearer ", &[], "Bearer "),
            (r#"{"token": "t0k"}"#, &[], r#"{"token": "***"}"#),
            (
                r#"{"webhookHmacKey":"x\"y","n":1}"#,
                &[],
                r#"{"webhookHmacKey":"***","n":1}"#,
            ),
            (
                r#"{"taskId":"abc","msg":"token"}"#,
                &[],
                r#"{"taskId":"abc","msg":"token"}"#,
            ),
            (r#"{"apiKey": 12}"#, &[], r#"{"apiKey": 12}"#),
            (r#"{"unterminated"#, &[], r#"{"unterminated"#),
            ("Bearer ***", &[], "Bearer ***"),
            ("short ab", &["ab"], "short ab"),
        ];
        for (input, secrets, expected) in cases {
            assert_eq!(redact(input, secrets), *expected, "input {input:?}");
        }
    }

    #[test]
    fn excerpt_cuts_on_char_boundaries() {
        assert_eq!(excerpt("héllo wörld".as_bytes(), 4, &[]), "héll…");
        assert_eq!(excerpt(b"short", 10, &[]), "short");
        assert_eq!(excerpt(&[0xff, b'a'], 10, &[]), "\u{fffd}a");
        assert_eq!(excerpt(b"Bearer secret-token-value", 10, &[]), "Bearer ***");
    }

    #[test]
    fn key_never_prints() {
        let key = ApiKey::new("  abcd1234  ").expect("valid");
        assert_eq!(key.expose(), "abcd1234");
        assert!(!format!("{key:?} {key}").contains("abcd"));
        assert_eq!(key.redact("echo abcd1234"), "echo ***");
        for bad in ["", "   ", "ab cd", "ab\ncd", "clé"] {
            let error = ApiKey::new(bad).expect_err("invalid");
            assert!(!error.to_string().contains(bad.trim()) || bad.trim().is_empty());
        }
    }
}
