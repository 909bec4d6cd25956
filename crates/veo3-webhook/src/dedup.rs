//! Dropping redeliveries, keyed by what kie signs, so that unsigned content can neither multiply
//! an event nor push a genuine one out of memory.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

use veo3_core::webhook::VerifiedCallback;

/// Remembers recent deliveries to drop repeats, in bounded memory.
///
/// Two things identify a repeat, and both are remembered only once per *signature*:
///
/// * **The signed delivery**, `(task id, signed timestamp)`: what the signature covers. Every
///   request carrying the same signature is the same delivery whatever its body says, since
///   the body is not signed. So 5,000 body variants replayed under one captured signature are
///   one delivery: the first is handed on, the others are repeats, and together they take one
///   place in memory, so they cannot evict anything genuine.
/// * **The event**, `(task id, code, result URLs)` as the first body under a new signature
///   told it. kie does not say whether a redelivery is signed anew; if it is, the new
///   signature is a new delivery, and this key recognizes it as the same event. It is recorded
///   only when a delivery is new, so its number is bounded by genuine signatures as well. (The
///   code and URLs tell a task's generation success from its later 4K success.)
///
/// Holds at most `capacity` keys (a signed delivery takes two); when full, the oldest is
/// forgotten, and a redelivery of an event that old passes again, which is why the waits that
/// consume callbacks confirm with record-info instead of trusting them. kie gives up after
/// three retries, so a capacity well above "callbacks per retry window" is plenty; the default
/// is 4096 (about 300 KiB).
///
/// Callbacks accepted without a signature ([`Verifier::unsigned`](crate::Verifier::unsigned))
/// have only the event key, which anyone who can reach the receiver chooses: in that mode
/// repeats are dropped, but a flood of invented events can push real ones out.
///
/// ```
/// use veo3_webhook::{Deduplicator, Verifier, WebhookKey};
///
/// let key = WebhookKey::new("k")?;
/// let verifier = Verifier::new(key.clone());
/// let signature = key.sign("t1", "1000");
/// let genuine = br#"{"code":200,"msg":"ok","data":{"taskId":"t1","info":{"resultUrls":["u"]}}}"#;
/// let variant = br#"{"code":200,"msg":"ok","data":{"taskId":"t1","info":{"resultUrls":["evil"]}}}"#;
///
/// let mut seen = Deduplicator::default();
/// assert!(seen.first_time(&verifier.verify(Some("1000"), Some(&signature), genuine, 1000)?));
/// // Another body under the same signature is the same delivery.
/// assert!(!seen.first_time(&verifier.verify(Some("1000"), Some(&signature), variant, 1000)?));
/// // The same event signed anew (a redelivery a second later) is a repeat too.
/// let resigned = key.sign("t1", "1001");
/// assert!(!seen.first_time(&verifier.verify(Some("1001"), Some(&resigned), genuine, 1001)?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Deduplicator {
    capacity: usize,
    order: VecDeque<Key>,
    seen: HashSet<Key>,
}

/// One remembered fact; see [`Deduplicator`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Delivery {
        task_id: String,
        signed_at: u64,
    },
    Event {
        task_id: String,
        code: i64,
        /// A 64-bit fingerprint of the result URLs.
        results: u64,
    },
}

impl Key {
    fn delivery(callback: &VerifiedCallback) -> Option<Self> {
        callback.signed_at.map(|signed_at| Self::Delivery {
            task_id: callback.task_id.clone(),
            signed_at,
        })
    }

    fn event(callback: &VerifiedCallback) -> Self {
        let mut hasher = DefaultHasher::new();
        callback.callback.result_urls().hash(&mut hasher);
        Self::Event {
            task_id: callback.task_id.clone(),
            code: callback.callback.code.as_i64(),
            results: hasher.finish(),
        }
    }
}

impl Deduplicator {
    /// The default capacity.
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// Remembers up to `capacity` keys (at least two: one signed delivery).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2);
        Self {
            capacity,
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Records `callback`; `true` the first time its delivery and its event are seen, `false`
    /// for a repeat of either.
    pub fn first_time(&mut self, callback: &VerifiedCallback) -> bool {
        if let Some(delivery) = Key::delivery(callback) {
            if !self.insert(delivery) {
                // A delivery already seen: nothing about this body is recorded.
                return false;
            }
        }
        self.insert(Key::event(callback))
    }

    /// Forgets `callback`'s delivery and event, so its next delivery counts as new (for a
    /// receiver that could not hand the event on and wants kie's redelivery to be processed).
    pub fn forget(&mut self, callback: &VerifiedCallback) {
        let keys = Key::delivery(callback)
            .into_iter()
            .chain([Key::event(callback)]);
        for key in keys {
            if self.seen.remove(&key) {
                self.order.retain(|kept| *kept != key);
            }
        }
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered yet.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The most keys remembered at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records `key`; `true` if it was not already remembered.
    fn insert(&mut self, key: Key) -> bool {
        if self.seen.contains(&key) {
            return false;
        }
        if self.order.len() >= self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

impl Default for Deduplicator {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Verifier, WebhookKey};

    const KEY: &str = "dedup-key";

    fn body(task_id: &str, code: i64, url: &str) -> Vec<u8> {
        format!(
            r#"{{"code":{code},"msg":"m","data":{{"taskId":"{task_id}","info":{{"resultUrls":["{url}"]}}}}}}"#
        )
        .into_bytes()
    }

    fn unsigned(task_id: &str, code: i64, url: &str) -> VerifiedCallback {
        Verifier::unsigned()
            .verify(None, None, &body(task_id, code, url), 0)
            .expect("valid body")
    }

    fn signed(task_id: &str, at: u64, code: i64, url: &str) -> VerifiedCallback {
        let key = WebhookKey::new(KEY).expect("key");
        let timestamp = at.to_string();
        Verifier::new(key.clone())
            .verify(
                Some(&timestamp),
                Some(&key.sign(task_id, &timestamp)),
                &body(task_id, code, url),
                at,
            )
            .expect("genuine")
    }

    #[test]
    fn repeats_are_dropped_and_the_oldest_is_forgotten() {
        let mut seen = Deduplicator::new(2);
        let generated = unsigned("t1", 200, "https://f/720p.mp4");
        let upgraded = unsigned("t1", 200, "https://f/4k.mp4");
        let failed = unsigned("t2", 501, "");
        assert!(seen.first_time(&generated));
        assert!(!seen.first_time(&generated.clone()));
        // Same task and code, another outcome (the 4K callback after the generation one).
        assert!(seen.first_time(&upgraded));
        assert_eq!(seen.len(), 2);
        // Full: remembering t2 forgets the oldest (the generation callback).
        assert!(seen.first_time(&failed));
        assert_eq!(seen.len(), 2);
        assert!(!seen.first_time(&upgraded));
        assert!(seen.first_time(&generated));
        seen.forget(&failed);
        assert!(seen.first_time(&failed));
        assert_eq!(Deduplicator::new(0).capacity(), 2);
    }

    #[test]
    fn body_variants_under_one_signature_are_one_delivery_and_evict_nothing() {
        let mut seen = Deduplicator::new(8);
        let genuine = signed("t1", 1000, 200, "https://f/v.mp4");
        assert!(seen.first_time(&genuine));
        let remembered = seen.len();
        for variant in 0..5_000 {
            let forged = signed("t1", 1000, 200, &format!("https://evil/{variant}.mp4"));
            assert!(!seen.first_time(&forged), "variant {variant} passed");
        }
        assert_eq!(seen.len(), remembered, "variants took no memory");
        // The genuine redelivery, under the same signature or signed anew, is still a repeat.
        assert!(!seen.first_time(&genuine));
        assert!(!seen.first_time(&signed("t1", 1003, 200, "https://f/v.mp4")));
        // Another genuine event of the same task (its 4K success) is new.
        assert!(seen.first_time(&signed("t1", 2000, 200, "https://f/4k.mp4")));
    }

    #[test]
    fn forgetting_a_signed_delivery_lets_its_redelivery_through() {
        let mut seen = Deduplicator::default();
        let genuine = signed("t1", 1000, 200, "u");
        assert!(seen.first_time(&genuine));
        seen.forget(&genuine);
        assert!(seen.is_empty());
        assert!(seen.first_time(&genuine));
    }
}
