//! The async client for kie.ai's Veo 3 / 3.1 video-generation API, over reqwest: from a
//! prompt to a verified MP4 on disk.
//!
//! ```no_run
//! use veo3_reqwest::{Client, GenerateRequest, WaitOptions};
//!
//! # async fn demo() -> Result<(), veo3_reqwest::Error> {
//! let client = Client::from_env()?; // KIE_API_KEY, and KIE_BASE_URL for a sandbox
//! let request = GenerateRequest::builder("A red fox trotting through fresh snow at dawn").build()?;
//! let task = client.generate_and_wait(&request, &WaitOptions::default()).await?;
//! let file = client.download(&task.video_urls()[0], "fox.mp4").await?;
//! println!("{} bytes in {}", file.bytes, file.path.display());
//! # Ok(())
//! # }
//! ```
//!
//! # This crate only moves bytes
//!
//! Everything that decides lives in `veo3-core`, written once for this client and the
//! blocking one: the paths and bodies, envelope-first decoding, the classification that keeps
//! billable requests (generate, extend, 4K) from ever being sent twice, retries with backoff
//! and a shared budget, poll schedules with deadlines, and the download state machine (resume
//! with `Range`, restart, refresh an expired link once, length check). This crate adds three
//! things and nothing else:
//!
//! - a `Transport` over reqwest, whose one job besides sending is to report honestly how far
//!   a failed exchange got. A connection that was never established is `Connect`; anything
//!   after that, including a timeout whose moment is unknown, is reported as a later phase,
//!   because claiming "never sent" for a generate request that may have arrived would let it
//!   be sent (and billed) twice;
//! - the download driver: it streams into `<file>.part` through a fixed buffer (flat memory
//!   for any size), feeds each response head, byte count and cut to the core's
//!   [`DownloadState`](veo3_core::download::DownloadState), and renames the file only once it
//!   is complete;
//! - the builder and the tokio-based clock and sleeper.
//!
//! # Secrets
//!
//! The key lives in an [`ApiKey`] (redacted `Debug`/`Display`). It is added to each API
//! request as a sensitive header and never set as a default header of the reqwest client,
//! so a download (result files live on other hosts), or anything else sent through a client
//! passed to [`ClientBuilder::http_client`], cannot carry it; reqwest removes it on a redirect
//! to another host. Error texts are redacted of bearer tokens and scrubbed of the key, and
//! `Debug` of [`Client`] and [`ClientBuilder`] never shows it.
//!
//! # API
//!
//! - [`Client::new`], [`Client::from_env`] (`KIE_API_KEY`, `KIE_BASE_URL`),
//!   [`Client::builder`] ([`ClientBuilder`]: base URL, connect / attempt / overall timeouts,
//!   user agent, [`RetryPolicy`] and a shared [`RetryBudget`], a [`PollSchedule`] per
//!   [`Stage`], [`DownloadPolicy`] and the download idle timeout, the API answer size limit,
//!   an [`Observer`], a caller's `reqwest::Client`, and an [`Effects`] for simulated time in
//!   tests); [`Client::base_url`], [`Client::poll_schedule`], [`Client::observer`],
//!   [`Client::effects`].
//! - Every endpoint through [`Veo3Api`] (`generate`, `record_info`, `hd_1080p`, `upgrade_4k`,
//!   `extend`, `credits`, `download_url`), each one logical call with the core's retries.
//! - Flows bounded by deadlines and reporting [`Event`]s: [`Client::generate_and_wait`],
//!   [`Client::wait_for_task`], [`Client::upgrade_1080p_and_wait`],
//!   [`Client::upgrade_4k_and_wait`], [`Client::wait_for_4k`], [`Client::extend_and_wait`],
//!   tuned per call with [`WaitOptions`].
//! - Downloads: [`Client::download`] (to a path, atomically, returning [`Downloaded`]),
//!   [`Client::download_to_writer`] (to any `AsyncWrite`), [`Client::download_task_video`];
//!   failures are [`Error::Download`] with the URL redacted of its query.
//!
//! The examples (`examples/`) run against `KIE_BASE_URL`, or an in-process sandbox when it is
//! unset; the integration tests run every endpoint and flow against the sandbox.
//! - Hybrid waits, which finish as soon as a verified callback arrives in an [`Inbox`] (fed
//!   by `veo3-webhook`'s receiver) and keep rare polling as the safety net:
//!   [`Client::wait_for_task_hybrid`], [`Client::generate_and_wait_hybrid`],
//!   [`Client::extend_and_wait_hybrid`].
//!
//! # Features
//!
//! `rustls-tls` (default): rustls with the webpki roots. `native-tls`: the platform's TLS
//! (OpenSSL, Secure Transport, SChannel) for clients this crate builds; a client passed to
//! [`ClientBuilder::http_client`] keeps its own. To use only the platform's TLS, turn the
//! default off (`default-features = false, features = ["native-tls"]`): rustls is then not
//! compiled at all.

mod client;
mod download;
mod hybrid;
mod transport;

pub use client::{
    API_KEY_ENV, BASE_URL_ENV, Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DOWNLOAD_IDLE_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, Stage, WaitOptions,
};
pub use download::Downloaded;
pub use veo3_core::webhook::Inbox;

pub use veo3_core::download::{DownloadError, DownloadPolicy};
pub use veo3_core::{
    ApiKey, Effects, Error, Event, Finish, Observer, PollSchedule, PollStatus, RetryBudget,
    RetryPolicy, RetryReason, UpgradeStatus, Veo3Api, WaitTarget,
};
pub use veo3_types::{
    ApiCode, AspectRatio, Credits, Endpoint, ExtendModel, ExtendRequest, GenerateRequest,
    GenerationType, Hd1080pResult, Model, Resolution, TaskCreated, TaskRecord, TaskState,
    Upgrade4kRequest, Upgrade4kResult, ValidationError,
};

/// The core crate, for what is not re-exported here (the sans-IO pieces, simulated time).
pub use veo3_core as core;
/// The wire models.
pub use veo3_types as types;
