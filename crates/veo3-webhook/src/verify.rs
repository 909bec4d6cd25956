//! Checking a callback: the signature over `taskId.timestamp`, the timestamp window, the size,
//! and the body's shape.
//!
//! # What kie signs, and why that shapes everything here
//!
//! When an account has a webhook HMAC key, every callback carries two headers:
//! `X-Webhook-Timestamp` (Unix seconds) and `X-Webhook-Signature`, which is
//! `base64(HMAC-SHA256(key, taskId + "." + timestamp))`. Only the task id and the timestamp are
//! signed, not the body. So [`Verifier::verify`] reads the task id out of the *raw* body bytes
//! exactly as they arrived (never out of re-serialized JSON, which is how signature checks
//! break), compares signatures in constant time against every configured key (so keys can be
//! rotated without dropping callbacks), and refuses timestamps outside a tolerance window
//! (±5 minutes by default) so a captured request cannot be replayed later. Because the body
//! is not covered, everything in it beyond the task id is a *hint*: the one thing a verified
//! callback proves is "kie says something happened to task X around time T". The
//! authoritative answer is always a record-info read.
//!
//! Everything here is pure: the current time comes in as an argument (`now_unix_secs`), there
//! is no I/O. This lives here rather than in `veo3-core` so that SDK users who never receive
//! callbacks do not compile the HMAC crates.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use veo3_core::webhook::VerifiedCallback;
use veo3_types::{Callback, Envelope};

/// The header carrying the signing time, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Webhook-Timestamp";
/// The header carrying `base64(HMAC-SHA256(key, taskId + "." + timestamp))`.
pub const SIGNATURE_HEADER: &str = "X-Webhook-Signature";
/// How far the signing time may be from "now", either way, by default: five minutes, the
/// window integrators use (kie documents none).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// The largest body accepted by default. Real callbacks are a few kilobytes (a task id, a
/// handful of URLs, the echoed prompt); 64 KiB leaves room for long prompts and many URLs
/// while keeping a flood of junk cheap to refuse, and bounds what an [`Inbox`](veo3_core::webhook::Inbox) can hold.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// The reply a receiver should send for an accepted callback (the official samples' body).
pub const ACK_BODY: &str = r#"{"code":200,"msg":"success"}"#;

/// The account's webhook HMAC key (kie.ai settings page), as a secret.
///
/// `Debug` and `Display` print `WebhookKey(***)` / `***`: the key cannot leak through an
/// error, a log line or a `{:?}` of a config struct.
///
/// ```
/// use veo3_webhook::WebhookKey;
///
/// let key = WebhookKey::new("  test_webhook_hmac_key_0123456789\n")?;
/// assert_eq!(format!("{key:?}"), "WebhookKey(***)");
/// assert_eq!(key.to_string(), "***");
/// assert_eq!(
///     key.sign("3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21", "1767225600"),
///     "fMhBtXDLyt/vyA/PLaFS2P1XwCk/91pXYffoZ6B4oo8=",
/// );
/// assert!(WebhookKey::new("   ").is_err());
/// # Ok::<(), veo3_webhook::InvalidWebhookKey>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookKey(String);

impl WebhookKey {
    /// Wraps a key. Surrounding whitespace is trimmed (keys are usually pasted or read from an
    /// environment variable with a trailing newline); an empty key is refused, because HMAC
    /// with an empty key would "verify" signatures anyone can compute.
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidWebhookKey> {
        let key = key.into();
        let trimmed = key.trim();
        if trimmed.is_empty() {
            return Err(InvalidWebhookKey);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The signature kie would send for `task_id` at `timestamp`:
    /// `base64(HMAC-SHA256(key, task_id + "." + timestamp))`.
    ///
    /// Receivers do not need this ([`Verifier::verify`] does the comparison); it exists for
    /// tests and emulators that must produce genuine signatures.
    pub fn sign(&self, task_id: &str, timestamp: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.mac(task_id, timestamp))
    }

    fn mac(&self, task_id: &str, timestamp: &str) -> Vec<u8> {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail; an empty output would
        // simply never match a signature.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.as_bytes()) else {
            return Vec::new();
        };
        mac.update(task_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `signature` (the header value, base64) is this key's signature of
    /// `task_id.timestamp`. Constant-time in the signature's content.
    fn matches(&self, task_id: &str, timestamp: &str, signature: &str) -> bool {
        let expected = self.sign(task_id, timestamp);
        // The length of a base64 HMAC-SHA256 is public (44), so checking it first leaks nothing.
        expected.len() == signature.len()
            && bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    }
}

impl fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookKey(***)")
    }
}

impl fmt::Display for WebhookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The error of [`WebhookKey::new`]: the key is empty or only whitespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidWebhookKey;

impl fmt::Display for InvalidWebhookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the webhook HMAC key is empty")
    }
}

impl std::error::Error for InvalidWebhookKey {}

/// Checks callbacks: signature, timestamp window and size, then decodes them.
///
/// Built with the account's key ([`Verifier::new`]), more keys for rotation
/// ([`Verifier::add_key`]), or, for accounts without an HMAC key, explicitly without
/// signatures ([`Verifier::unsigned`]). There is deliberately no `Default`: accepting
/// unsigned callbacks must be a visible decision.
///
/// ```
/// use std::time::Duration;
/// use veo3_webhook::{RejectReason, Verifier, WebhookKey};
///
/// // Rotation: callbacks signed with either key verify while the account switches over.
/// let old = WebhookKey::new("old-key")?;
/// let new = WebhookKey::new("new-key")?;
/// let verifier = Verifier::new(new).add_key(old.clone()).tolerance(Duration::from_secs(60));
/// let body = br#"{"code":501,"msg":"generation failed","data":{"taskId":"t9"}}"#;
///
/// let verified = verifier.verify(Some("1000"), Some(&old.sign("t9", "1000")), body, 1030)?;
/// assert_eq!(verified.key_index, Some(1));
/// assert!(!verified.callback.is_success());
///
/// // A replay ten minutes later is refused, with the status a receiver should answer.
/// let stale = verifier.verify(Some("1000"), Some(&old.sign("t9", "1000")), body, 1600);
/// assert_eq!(stale.unwrap_err().http_status(), 401);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    /// Empty means unsigned mode (only [`Verifier::unsigned`] builds that).
    keys: Vec<WebhookKey>,
    tolerance: Duration,
    max_body_bytes: usize,
}

impl Verifier {
    /// Requires callbacks signed with `key`, within [`DEFAULT_TOLERANCE`] of now and at most
    /// [`DEFAULT_MAX_BODY_BYTES`] long.
    pub fn new(key: WebhookKey) -> Self {
        Self {
            keys: vec![key],
            tolerance: DEFAULT_TOLERANCE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Accepts callbacks without checking any signature, for accounts that have not enabled
    /// the webhook HMAC key. Size and shape are still checked, and a task id is still required.
    ///
    /// Anyone who can reach the receiver can then inject callbacks. With hybrid waits that
    /// costs at most a record-info read per forged callback (the record, not the callback,
    /// decides the outcome), but an application that acts on callback bodies directly should
    /// enable signing instead.
    pub fn unsigned() -> Self {
        Self {
            keys: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Also accepts signatures made with `key`: during a rotation, list the new key and the
    /// old one until the old one is retired. Calling this on an unsigned verifier makes it
    /// require signatures.
    pub fn add_key(mut self, key: WebhookKey) -> Self {
        self.keys.push(key);
        self
    }

    /// How far the signed timestamp may lie from now, in either direction (default five
    /// minutes). Callbacks outside the window are refused as stale or from the future.
    ///
    /// kie does not say whether a redelivery is signed anew; if it reuses the first attempt's
    /// timestamp, retries after a longer outage are refused too. Nothing is lost that way:
    /// the waits' safety poll still finds the outcome.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The largest body accepted, in bytes (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// The body size limit; receivers should stop reading the request beyond it.
    pub fn body_limit(&self) -> usize {
        self.max_body_bytes
    }

    /// Whether signatures are required (`false` only for [`Verifier::unsigned`]).
    pub fn requires_signature(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Verifies and decodes one callback.
    ///
    /// `timestamp` and `signature` are the values of [`TIMESTAMP_HEADER`] and
    /// [`SIGNATURE_HEADER`] (`None` when absent), `body` the raw request body exactly as
    /// received, and `now_unix_secs` the current time. In order: the size is checked, the task
    /// id is read from the raw body, the timestamp is parsed, the signature is compared in
    /// constant time against each key, the timestamp window is checked, and finally the body
    /// is decoded in every documented shape.
    ///
    /// The window is checked after the signature on purpose: a rejection as stale or future
    /// then always means a genuine callback out of its window (a replay or a skewed clock),
    /// never a forgery, which is what an operator needs to know.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now_unix_secs: u64,
    ) -> Result<VerifiedCallback, RejectReason> {
        if body.len() > self.max_body_bytes {
            return Err(RejectReason::BodyTooLarge {
                size: body.len(),
                limit: self.max_body_bytes,
            });
        }
        // Parse once; the task id that is checked and the callback that is returned come from
        // the same parsed value, so they cannot disagree (even with duplicate JSON keys).
        let value: Value =
            serde_json::from_slice(body).map_err(|error| RejectReason::UndecodableBody {
                detail: format!("not JSON (line {} column {})", error.line(), error.column()),
            })?;
        let task_id = Callback::task_id_of(&value).ok_or(RejectReason::MissingTaskId)?;

        let (signed_at, key_index) = if self.requires_signature() {
            let (signed_at, key_index) = self.authenticate(&task_id, timestamp, signature)?;
            (Some(signed_at), Some(key_index))
        } else {
            (None, None)
        };
        if let Some(signed_at) = signed_at {
            self.check_window(signed_at, now_unix_secs)?;
        }

        let callback = Envelope::from_value(value)
            .and_then(Callback::from_envelope)
            .map_err(|error| RejectReason::UndecodableBody {
                detail: error.to_string(),
            })?;
        // `task_id_of` also accepts a top-level `taskId`, which the decoder does not read (the
        // decoded id is then `None`, and `VerifiedCallback::new` fills it in). Otherwise both
        // read the same fields in the same order; this guards that invariant.
        if callback
            .task_id
            .as_ref()
            .is_some_and(|decoded| *decoded != task_id)
        {
            return Err(RejectReason::UndecodableBody {
                detail: "conflicting task ids".into(),
            });
        }
        let verified = VerifiedCallback::new(task_id, callback);
        Ok(match (signed_at, key_index) {
            (Some(signed_at), Some(key_index)) => verified.signed(signed_at, key_index),
            _ => verified,
        })
    }

    /// Checks the headers; returns the parsed timestamp and the index of the matching key.
    fn authenticate(
        &self,
        task_id: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Result<(u64, usize), RejectReason> {
        let timestamp = timestamp
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .ok_or(RejectReason::MissingHeader {
                header: TIMESTAMP_HEADER,
            })?;
        let signature = signature
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .ok_or(RejectReason::MissingHeader {
                header: SIGNATURE_HEADER,
            })?;
        let signed_at = parse_unix_seconds(timestamp).ok_or(RejectReason::MalformedTimestamp)?;
        // The signed message uses the header text as sent, not the parsed number re-printed.
        // Every key is tried, so the time taken does not reveal which one matched.
        let mut matched = None;
        for (index, key) in self.keys.iter().enumerate() {
            if key.matches(task_id, timestamp, signature) && matched.is_none() {
                matched = Some(index);
            }
        }
        let key_index = matched.ok_or(RejectReason::BadSignature)?;
        Ok((signed_at, key_index))
    }

    fn check_window(&self, signed_at: u64, now: u64) -> Result<(), RejectReason> {
        let tolerance = self.tolerance.as_secs();
        if signed_at > now.saturating_add(tolerance) {
            return Err(RejectReason::FutureTimestamp {
                ahead_secs: signed_at - now,
            });
        }
        if signed_at.saturating_add(tolerance) < now {
            return Err(RejectReason::StaleTimestamp {
                age_secs: now - signed_at,
            });
        }
        Ok(())
    }
}

/// Unix seconds as kie sends them: ASCII digits only, at most 12 of them (year 33658), so a
/// millisecond value or junk is refused rather than misread.
fn parse_unix_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Why a callback was refused.
///
/// Each reason maps to the HTTP status a receiver should answer ([`RejectReason::http_status`]).
/// `Display` names the problem without echoing header values or the body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// A required header is absent or empty.
    MissingHeader {
        /// The header's name.
        header: &'static str,
    },
    /// `X-Webhook-Timestamp` is not Unix seconds.
    MalformedTimestamp,
    /// The signature is genuine but older than the tolerance allows (a replay, or a slow
    /// redelivery).
    StaleTimestamp {
        /// How old the timestamp is.
        age_secs: u64,
    },
    /// The signature is genuine but its time is further ahead than the tolerance allows (a
    /// skewed clock on one side).
    FutureTimestamp {
        /// How far ahead the timestamp is.
        ahead_secs: u64,
    },
    /// No key produces this signature for this task id and timestamp: forged, made with
    /// another key, or for another task than the body names.
    BadSignature,
    /// The body exceeds the size limit.
    BodyTooLarge {
        /// The body's size in bytes (as far as it was read).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not JSON, or not a callback envelope.
    UndecodableBody {
        /// What was wrong (position and kind, never content).
        detail: String,
    },
    /// The body names no task id (`data.taskId`, `data.task_id` or `taskId`).
    MissingTaskId,
}

impl RejectReason {
    /// The HTTP status to answer: 401 for authentication failures (missing headers, bad
    /// signature, timestamps out of the window), 400 for malformed requests, 413 for oversized
    /// bodies.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::MissingHeader { .. }
            | Self::StaleTimestamp { .. }
            | Self::FutureTimestamp { .. }
            | Self::BadSignature => 401,
            Self::MalformedTimestamp | Self::UndecodableBody { .. } | Self::MissingTaskId => 400,
            Self::BodyTooLarge { .. } => 413,
        }
    }

    /// Whether the request failed authentication (as opposed to being malformed or too big).
    pub fn is_authentication_failure(&self) -> bool {
        self.http_status() == 401
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader { header } => write!(f, "missing header {header}"),
            Self::MalformedTimestamp => {
                write!(f, "{TIMESTAMP_HEADER} is not a Unix time in seconds")
            }
            Self::StaleTimestamp { age_secs } => {
                write!(
                    f,
                    "signed timestamp is {age_secs} s old, outside the tolerance"
                )
            }
            Self::FutureTimestamp { ahead_secs } => write!(
                f,
                "signed timestamp is {ahead_secs} s in the future, outside the tolerance"
            ),
            Self::BadSignature => f.write_str("signature does not match"),
            Self::BodyTooLarge { size, limit } => {
                write!(f, "body of {size} bytes exceeds the limit of {limit} bytes")
            }
            Self::UndecodableBody { detail } => write!(f, "body is not a callback: {detail}"),
            Self::MissingTaskId => f.write_str("body names no task id"),
        }
    }
}

impl std::error::Error for RejectReason {}

#[cfg(test)]
mod tests;
