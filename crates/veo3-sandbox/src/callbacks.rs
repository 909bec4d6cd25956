//! Callback delivery: POST the payload, sign it when a webhook key is set, retry on failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::ms;
use crate::render;
use crate::state::{CallbackJob, Kind, Shared};

/// `base64(HMAC-SHA256(key, task_id + "." + timestamp))`, reference section 4.4.
///
/// ```
/// // The reference's test vector.
/// let signature = veo3_sandbox::webhook_signature(
///     b"test_webhook_hmac_key_0123456789",
///     "3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21",
///     "1767225600",
/// );
/// assert_eq!(signature, "fMhBtXDLyt/vyA/PLaFS2P1XwCk/91pXYffoZ6B4oo8=");
/// ```
pub fn webhook_signature(key: &[u8], task_id: &str, timestamp: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(task_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A callback rendered and ready to POST.
struct Delivery {
    task_id: String,
    url: String,
    body: String,
}

/// Renders each of `jobs` (released by the state's settling) and delivers it in the background,
/// if the sandbox's runtime still runs.
pub(crate) fn dispatch(sh: &Arc<Shared>, jobs: impl IntoIterator<Item = CallbackJob>) {
    for job in jobs {
        let Some(runtime) = sh.runtime.clone() else {
            return;
        };
        let body = render::callback(&job.task, job.shape, sh.cfg.prices.upgrade_4k).to_string();
        // The signature covers the task id the body names: a 4K callback names the source
        // task (reference section 4.4; the receiver verifies against the body's `taskId`).
        let task_id = match job.task.kind {
            Kind::Upgrade4k { source, .. } => source,
            _ => job.task.id,
        };
        let delivery = Delivery {
            task_id,
            url: job.url,
            body,
        };
        runtime.spawn(deliver(sh.clone(), delivery));
    }
}

async fn deliver(sh: Arc<Shared>, job: Delivery) {
    let copies = if sh.cfg.callback_duplicates { 2 } else { 1 };
    for _ in 0..copies {
        if !deliver_once(&sh, &job).await {
            return;
        }
    }
}

/// One delivery with its retries; true when the receiver answered 200.
async fn deliver_once(sh: &Arc<Shared>, job: &Delivery) -> bool {
    for attempt in 0..=sh.cfg.callback_retries {
        if attempt > 0 {
            if let Some(delay) = sh.clock.real_delay(ms(sh.cfg.callback_retry_delay)) {
                tokio::time::sleep(delay).await;
            }
        }
        if !sh.callbacks_on.load(Ordering::Relaxed) {
            return false;
        }
        let mut request = sh
            .http
            .post(&job.url)
            .header("content-type", "application/json")
            .body(job.body.clone());
        if let Some(key) = &sh.cfg.hmac_key {
            // Receivers check the timestamp against their own clock, so it is wall-clock time.
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string();
            let signature = webhook_signature(key.0.as_bytes(), &job.task_id, &timestamp);
            request = request
                .header("X-Webhook-Timestamp", timestamp)
                .header("X-Webhook-Signature", signature);
        }
        let ok = matches!(request.send().await, Ok(r) if r.status().as_u16() == 200);
        if ok {
            sh.lock().stats.callbacks_sent += 1;
            sh.stats_changed.notify_waiters();
            return true;
        }
        sh.lock().stats.callbacks_failed += 1;
        sh.stats_changed.notify_waiters();
        tracing::debug!(task_id = %job.task_id, attempt, "callback delivery failed");
    }
    sh.lock().stats.callbacks_abandoned += 1;
    sh.stats_changed.notify_waiters();
    false
}
