//! Callbacks (webhooks) as the waits see them: the [`Inbox`] a receiver delivers into, and the
//! [`VerifiedCallback`] it carries.
//!
//! # What a callback proves, and what it does not
//!
//! kie signs only `taskId + "." + timestamp`, never the body. A receiver that checked the
//! signature (the `veo3-webhook` crate's `Verifier` does, with the HMAC crates this crate
//! deliberately does not depend on) therefore knows one thing for certain: "kie says something
//! happened to task X around time T". Everything else in the body is a *hint*, and the
//! authoritative answer is always a record-info read. That is why this crate needs no
//! cryptography at all: the waits below treat a callback as a reason to read the record early,
//! never as the outcome itself, so a forged or stale callback costs one extra read and nothing
//! more.
//!
//! # Hybrid waiting with the [`Inbox`]
//!
//! A receiver pushes each new verified callback into an [`Inbox`] with [`Inbox::deliver`];
//! a waiter asks the inbox for the next callback about its task, racing it against a slow
//! safety poll, and confirms with one record-info read whatever woke it. The ready-made
//! waits are [`wait_for_task_hybrid`](crate::wait_for_task_hybrid) (and the
//! `generate`/`extend` flows next to it) and
//! [`BlockingExecutor::wait_hybrid`](crate::BlockingExecutor::wait_hybrid); in outline:
//!
//! ```text
//! let task_id = client.generate(&request).await?.task_id;   // inbox shared with the receiver
//! loop {
//!     // Resolves early with Some(callback) if one for this task arrives (or already had
//!     // arrived), or with None when the safety-poll sleep completes first.
//!     let hint = inbox.wait_until(&task_id, sleeper.sleep(safety_poll_interval)).await;
//!     let record = client.record_info(&task_id).await?;     // the record is authoritative
//!     if record.state.is_terminal() {
//!         return Ok(record);
//!     }
//!     // Not terminal: the callback was stale (e.g. an earlier event of the same task) or
//!     // there was none; wait again. A stale hint costs exactly one extra read.
//! }
//! ```
//!
//! The blocking client does the same with [`Inbox::sleep_or_take`] in place of the race: it
//! blocks until a callback arrives or the interval passes on the wait's
//! [`BlockingSleeper`](crate::BlockingSleeper) (instantly, on a simulated clock). Callbacks
//! that arrive before anyone waits (the task can finish before `generate` has even returned
//! to the caller) are kept, boundedly, for the first waiter of their task; a callback is
//! consumed by the wait it wakes, so a stale one cannot make a waiter spin.
//!
//! ```
//! use veo3_core::types::Callback;
//! use veo3_core::webhook::{Inbox, VerifiedCallback};
//!
//! let body = br#"{"code":200,"msg":"ok","data":{"taskId":"t1","info":{"resultUrls":["https://f/v.mp4"]}}}"#;
//! // A receiver builds this after checking the signature (veo3-webhook's `Verifier`).
//! let verified = VerifiedCallback::new("t1", Callback::from_slice(body)?).signed(1_767_225_600, 0);
//!
//! let inbox = Inbox::new();
//! inbox.deliver(verified);
//! let arrived = inbox.try_take("t1").expect("kept for the first waiter");
//! assert_eq!(arrived.callback.result_urls(), ["https://f/v.mp4"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use veo3_types::{Callback, CallbackKind};

use crate::error::WaitTarget;

mod inbox;

pub use inbox::{Inbox, WaitFor, WaitUntil};

/// A callback a receiver accepted, as delivered to an [`Inbox`] and to applications.
///
/// Only `task_id` and, for signed callbacks, `signed_at` are covered by kie's signature; the
/// rest of `callback` (code, message, result URLs) is a hint to confirm with record-info.
/// Receivers build it with [`VerifiedCallback::new`] once they have checked what they check
/// (`veo3-webhook`'s `Verifier`); tests build it directly.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VerifiedCallback {
    /// The task id, as signed.
    pub task_id: String,
    /// The decoded body (its `task_id` is always `Some(task_id)`). Not signed.
    pub callback: Callback,
    /// The signed `X-Webhook-Timestamp`; `None` when accepted without a signature.
    pub signed_at: Option<u64>,
    /// Which key (in the order given to the verifier) matched; `None` without a signature.
    /// Useful to tell when callbacks stop arriving under an old key during a rotation.
    pub key_index: Option<usize>,
}

impl VerifiedCallback {
    /// A callback for `task_id` accepted without a signature; the body's task id is set to
    /// `task_id`, so the two cannot disagree. Add the signature's facts with
    /// [`VerifiedCallback::signed`].
    pub fn new(task_id: impl Into<String>, mut callback: Callback) -> Self {
        let task_id = task_id.into();
        callback.task_id = Some(task_id.clone());
        Self {
            task_id,
            callback,
            signed_at: None,
            key_index: None,
        }
    }

    /// The same callback, recorded as signed at `signed_at` (Unix seconds) by the key at
    /// `key_index` in the verifier's list.
    pub fn signed(mut self, signed_at: u64, key_index: usize) -> Self {
        self.signed_at = Some(signed_at);
        self.key_index = Some(key_index);
        self
    }

    /// Whether the signature was checked (`false` when accepted without one).
    pub fn is_authenticated(&self) -> bool {
        self.key_index.is_some()
    }
}

impl WaitTarget {
    /// Whether a callback of `kind` is about what a wait of this target waits for: a task
    /// wait (generation, extension) takes video callbacks (at any resolution), a 1080p wait
    /// takes 1080p ones, a 4K wait takes 4K ones. A 4K callback names the source task, so
    /// without this the source's own callback would wake its 4K wait, and the other way round.
    ///
    /// ```
    /// use veo3_core::WaitTarget;
    /// use veo3_core::types::CallbackKind;
    /// assert!(WaitTarget::Upgrade4k.accepts(CallbackKind::Upgrade4k));
    /// assert!(!WaitTarget::Upgrade4k.accepts(CallbackKind::Video));
    /// assert!(!WaitTarget::Task.accepts(CallbackKind::Upgrade4k));
    /// ```
    pub fn accepts(self, kind: CallbackKind) -> bool {
        match self {
            Self::Task => matches!(kind, CallbackKind::Video | CallbackKind::Hd1080p),
            Self::Hd1080p => kind == CallbackKind::Hd1080p,
            Self::Upgrade4k => kind == CallbackKind::Upgrade4k,
        }
    }
}

#[cfg(test)]
mod tests;
