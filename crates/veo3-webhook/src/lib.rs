//! A callback (webhook) receiver for kie.ai's Veo 3 API: verified, deduplicated, quick to
//! answer, and kept apart from the application it feeds.
//!
//! # Why a separate crate
//!
//! Receiving callbacks needs an HTTP server and HMAC; most users of the SDK only poll and should
//! compile neither. So `veo3-core` keeps only what the waits need (the [`Inbox`] and
//! [`VerifiedCallback`]), and this crate holds the rest: the pure rules ([`Verifier`],
//! [`Deduplicator`]) and their wiring to axum. Mount [`router`] (or [`method_router`]) in your
//! own axum server, or run [`Receiver`] (async) / [`BlockingReceiver`] (its own thread and
//! runtime, for blocking programs) on an address of its own.
//!
//! # What happens to a request
//!
//! 1. The body is read up to the verifier's limit; beyond it the request is refused with 413
//!    without reading the rest.
//! 2. [`Verifier::verify`] checks it against the raw bytes: the task id read from the body,
//!    the `X-Webhook-Timestamp` window, the `X-Webhook-Signature` (constant time, every
//!    configured key). Failures answer 401 (authentication) or 400 (malformed) with a JSON
//!    body naming the problem, and never reach the application.
//! 3. A [`Deduplicator`] drops redeliveries of an event already handed on: kie retries and
//!    duplicates, and the application should see each event once. It is keyed by what is
//!    signed, so other bodies replayed under a captured signature are repeats too and cannot
//!    push genuine events out of its memory. Duplicates are still answered 200, so kie stops
//!    retrying.
//! 4. The callback goes into the [`Inbox`] (where hybrid waits pick it up) and to the
//!    application's handler ([`Config::on_callback`]), then the answer is
//!    `200 {"code":200,"msg":"success"}`. kie counts a delivery as failed after 15 s, so the
//!    handler must only hand the callback on (send it to a channel, spawn a task), never
//!    process it inline.
//!
//! The body is not signed (only `taskId.timestamp` is), so treat everything in a callback
//! beyond its task id as a hint, and confirm with record-info before acting on it. The
//! SDK's hybrid waits do exactly that.
//!
//! ```
//! use veo3_webhook::{Config, Receiver, Verifier, WebhookKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = WebhookKey::new(std::env::var("KIE_WEBHOOK_HMAC_KEY").unwrap_or("k".into()))?;
//! let (sender, mut callbacks) = tokio::sync::mpsc::unbounded_channel();
//! let config = Config::new(Verifier::new(key)).on_callback(move |callback| {
//!     // Hand it on and return at once; the HTTP answer waits for this closure.
//!     let _ = sender.send(callback);
//! });
//! let receiver = Receiver::bind("127.0.0.1:0", config).await?;
//! let call_back_url = receiver.url("/veo3/callback"); // pass as `callBackUrl`
//! # drop(call_back_url);
//! # receiver.shutdown().await?;
//! # callbacks.close();
//! while let Some(callback) = callbacks.recv().await {
//!     println!("task {} finished with code {}", callback.task_id, callback.callback.code);
//! }
//! # Ok(())
//! # }
//! ```

mod dedup;
mod receive;
mod render;
mod server;
mod verify;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, post};
use tower_http::timeout::TimeoutLayer;

pub use dedup::Deduplicator;
pub use render::to_json;
pub use server::{BlockingReceiver, Receiver};
pub use veo3_core::webhook::{Inbox, VerifiedCallback};
pub use verify::{
    ACK_BODY, DEFAULT_MAX_BODY_BYTES, DEFAULT_TOLERANCE, InvalidWebhookKey, RejectReason,
    SIGNATURE_HEADER, TIMESTAMP_HEADER, Verifier, WebhookKey,
};

/// The application's callback handler: called once per new verified callback, before the
/// HTTP answer is sent, so it must return quickly.
type Handler = Arc<dyn Fn(VerifiedCallback) + Send + Sync>;

/// The source of "now" in Unix seconds, for the timestamp window.
type UnixClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How a receiver checks callbacks and where it hands them.
///
/// ```
/// use veo3_webhook::{Config, Inbox, Verifier, WebhookKey};
///
/// let inbox = Inbox::new(); // share it with the client that waits
/// let config = Config::new(Verifier::new(WebhookKey::new("k")?))
///     .inbox(inbox.clone())
///     .dedup_capacity(10_000)
///     .on_callback(|callback| tracing::info!(task_id = %callback.task_id, "callback"));
/// # drop(config);
/// # Ok::<(), veo3_webhook::InvalidWebhookKey>(())
/// ```
#[derive(Clone)]
pub struct Config {
    verifier: Verifier,
    inbox: Inbox,
    dedup_capacity: usize,
    handler: Option<Handler>,
    clock: UnixClock,
    limits: Limits,
}

/// How much a client may hold of a receiver, and for how long (see the `Config` setters).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) header_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_connections: usize,
}

impl Config {
    /// The default [`Config::header_timeout`]: 10 s.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default [`Config::request_timeout`]: 10 s.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default [`Config::max_connections`]: 4096.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
}

impl Config {
    /// Checks callbacks with `verifier`; delivers them to a new [`Inbox`] only, until a
    /// handler or a shared inbox is set.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            inbox: Inbox::new(),
            dedup_capacity: Deduplicator::DEFAULT_CAPACITY,
            handler: None,
            clock: Arc::new(system_unix_seconds),
            limits: Limits {
                header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
                request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
                max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            },
        }
    }

    /// How long a client may take to send a request's head (request line and headers) once
    /// its connection is open or idle (default 10 s); then the standalone receivers close the
    /// connection. kie sends a callback at once, so only stalled or hostile clients hit this.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_timeout = timeout;
        self
    }

    /// How long one request may take from its head to the answer, body included (default
    /// 10 s); then it is answered 408 and its connection closed. Applies to [`router`] and
    /// [`method_router`] mounted in an application too. kie counts a delivery as failed after
    /// 15 s, so a genuine callback never comes near it.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.limits.request_timeout = timeout;
        self
    }

    /// The most connections the standalone receivers hold at once (default 4096, at least 1).
    /// At the limit, new clients wait in the kernel's backlog until a connection ends or times
    /// out. Each held connection costs a few kilobytes, plus the body read so far (at most the
    /// verifier's body limit). Keep it below the process's open-file limit (`ulimit -n`):
    /// beyond that, accepting fails anyway (and is logged).
    pub fn max_connections(mut self, limit: usize) -> Self {
        self.limits.max_connections = limit.max(1);
        self
    }

    /// Calls `handler` once per new verified callback (duplicates and rejections never reach
    /// it). It runs before the HTTP answer is sent, so it should only hand the callback on:
    /// send it to a channel, spawn a task. If it panics, the receiver answers 500 and forgets
    /// the event, so kie's redelivery is handed on again.
    pub fn on_callback<F>(mut self, handler: F) -> Self
    where
        F: Fn(VerifiedCallback) + Send + Sync + 'static,
    {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// Delivers new verified callbacks into `inbox` (by default a private one, reachable
    /// through [`Config::inbox_handle`], [`Receiver::inbox`] or [`BlockingReceiver::inbox`]).
    pub fn inbox(mut self, inbox: Inbox) -> Self {
        self.inbox = inbox;
        self
    }

    /// The inbox this configuration delivers into (a handle sharing it).
    pub fn inbox_handle(&self) -> Inbox {
        self.inbox.clone()
    }

    /// How many recent events are remembered to drop redeliveries (default 4096).
    pub fn dedup_capacity(mut self, capacity: usize) -> Self {
        self.dedup_capacity = capacity;
        self
    }

    /// Replaces the wall clock used for the timestamp window (Unix seconds). For tests that
    /// replay recorded callbacks, such as the reference's signature example.
    pub fn clock<F>(mut self, now_unix_secs: F) -> Self
    where
        F: Fn() -> u64 + Send + Sync + 'static,
    {
        self.clock = Arc::new(now_unix_secs);
        self
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("verifier", &self.verifier)
            .field("inbox", &self.inbox)
            .field("dedup_capacity", &self.dedup_capacity)
            .field("limits", &self.limits)
            .field(
                "handler",
                &self.handler.as_ref().map(|_| "Fn(VerifiedCallback)"),
            )
            .finish_non_exhaustive()
    }
}

/// The wall clock in Unix seconds (0 if the system clock is before 1970, which makes every
/// signed callback "from the future" rather than panicking).
fn system_unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Counts of what a receiver did with the requests it got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// New verified callbacks handed to the application.
    pub delivered: u64,
    /// Verified redeliveries of an event already handed on (answered 200, not handed on).
    pub duplicates: u64,
    /// Requests refused (forged, stale, malformed, oversized, ...).
    pub rejected: u64,
}

/// A receiver's state: the verifier, the deduplication memory, the inbox, the handler and the
/// counters. Cheap to clone (clones share everything).
///
/// [`router`] and [`method_router`] build one and hide it; build it yourself to keep access to
/// its [`Stats`] and [`Inbox`] while serving its router from your own server.
///
/// ```
/// use veo3_webhook::{Config, Verifier, Webhook, WebhookKey};
///
/// let webhook = Webhook::new(Config::new(Verifier::new(WebhookKey::new("k")?)));
/// let app: axum::Router = axum::Router::new().route("/veo3/callback", webhook.method_router());
/// assert_eq!(webhook.stats().delivered, 0);
/// # drop(app);
/// # Ok::<(), veo3_webhook::InvalidWebhookKey>(())
/// ```
#[derive(Clone, Debug)]
pub struct Webhook {
    shared: Arc<receive::Shared>,
    request_timeout: Duration,
}

impl Webhook {
    /// A receiver configured by `config`.
    pub fn new(config: Config) -> Self {
        Self {
            request_timeout: config.limits.request_timeout,
            shared: Arc::new(receive::Shared::new(config)),
        }
    }

    /// A router receiving callbacks with `POST` on every path (other methods get 405). All
    /// routers and method routers of one `Webhook` share its deduplication memory.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let handler = self.method_router();
        Router::new()
            .route("/", handler.clone())
            .route("/{*path}", handler)
    }

    /// The `POST` handler alone, for `Router::route("/your/path", webhook.method_router())`,
    /// with the [`Config::request_timeout`] layer.
    pub fn method_router<S>(&self) -> MethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let shared = self.shared.clone();
        post(move |request| receive::receive(shared.clone(), request)).layer(
            TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, self.request_timeout),
        )
    }

    /// What the receiver has done so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The inbox new verified callbacks are delivered into.
    pub fn inbox(&self) -> Inbox {
        self.shared.inbox()
    }
}

/// An axum router that receives callbacks with `POST` on every path (other methods get 405):
/// shorthand for `Webhook::new(config).router()`.
///
/// Serve it as is, or mount it in your application under the path your `callBackUrl` uses:
///
/// ```
/// use axum::Router;
/// use veo3_webhook::{Config, Verifier, WebhookKey};
///
/// let config = Config::new(Verifier::new(WebhookKey::new("k")?));
/// let inbox = config.inbox_handle(); // for hybrid waits
/// let app: Router = Router::new()
///     .route("/health", axum::routing::get(|| async { "ok" }))
///     .nest("/hooks/veo3", veo3_webhook::router(config));
/// # drop((app, inbox));
/// # Ok::<(), veo3_webhook::InvalidWebhookKey>(())
/// ```
pub fn router<S>(config: Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Webhook::new(config).router()
}

/// The receiving handler alone, for `Router::route("/your/path", method_router(config))`:
/// shorthand for `Webhook::new(config).method_router()`.
pub fn method_router<S>(config: Config) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    Webhook::new(config).method_router()
}

#[cfg(test)]
mod tests;
