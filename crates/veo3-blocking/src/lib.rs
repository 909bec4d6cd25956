//! Blocking client for kie.ai's Veo 3 / 3.1 video-generation API, without an async runtime.
//!
//! # Why no runtime, and why that makes it safe inside one
//!
//! The usual blocking HTTP client in Rust is an async client plus a private tokio runtime
//! that `block_on`s every call. That design compiles a runtime its users never asked for, and
//! it panics when it is called, or merely dropped, inside another tokio runtime ("Cannot drop
//! a runtime in a context where blocking is not allowed"), which scripts embedded in async
//! services, test harnesses and GUI event loops hit again and again.
//!
//! This crate has no runtime to nest. It sends with [`ureq`] (a synchronous HTTP/1.1 stack over
//! std sockets and rustls) and sleeps with `std::thread::sleep`, so tokio is not in its
//! dependency tree (a test checks) and every method, construction and drop works the same on
//! any thread: a plain `main`, a `spawn_blocking` task, or even directly on a runtime's thread
//! (which it then blocks, like any blocking call; prefer `spawn_blocking` there).
//!
//! # No second copy of the protocol
//!
//! Everything that decides lives in `veo3-core` and `veo3-types`, shared with the async
//! client: request shapes and validation, envelope-first decoding, classification (which
//! failures may be retried, which billable requests must never be resent), retry timing,
//! poll schedules, the wait state, the download state machine and redaction. The loops that
//! drive them are the core's [`BlockingExecutor`]; this crate adds only its transport (ureq
//! requests mapped to the core's [`HttpRequest`](veo3_core::HttpRequest) /
//! [`HttpResponse`](veo3_core::HttpResponse) and to honest
//! [`TransportPhase`](veo3_core::TransportPhase)s) and the download loop that moves bytes
//! to disk.
//!
//! # The API
//!
//! ```no_run
//! use std::time::Duration;
//! use veo3_blocking::{Client, Event, GenerateRequest, Model, Observer, WaitOptions};
//!
//! let client = Client::builder()
//!     .api_key("your-kie-key")
//!     .observer(Observer::new(|event: &Event| eprintln!("{event}")))
//!     .build()?;
//! println!("credits: {}", client.credits()?.0);
//!
//! let request = GenerateRequest::builder("A red fox trotting through fresh snow at dawn")
//!     .model(Model::Veo3Fast)
//!     .build()?;
//! let record = client.generate_and_wait(&request, &WaitOptions::default())?;
//! let hd = client.upgrade_1080p_and_wait(&record.task_id, None, &WaitOptions::default())?;
//! client.download(&hd.result_url, "fox-1080p.mp4")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - Construction: [`Client::new`], [`Client::from_env`] (`KIE_API_KEY`, `KIE_BASE_URL`),
//!   [`Client::builder`] (timeouts, retry policy and budget, poll schedules per [`Stage`],
//!   download policy, observer, clock/sleeper/jitter for tests, a custom ureq agent).
//! - Endpoints, one call each with retries where safe: [`Client::generate`],
//!   [`Client::record_info`], [`Client::hd_1080p`], [`Client::upgrade_4k`],
//!   [`Client::extend`], [`Client::credits`], [`Client::download_url`].
//! - Flows: [`Client::generate_and_wait`], [`Client::wait_for_task`],
//!   [`Client::upgrade_1080p_and_wait`], [`Client::upgrade_4k_and_wait`],
//!   [`Client::wait_for_4k`], [`Client::extend_and_wait`], tuned per call by
//!   [`WaitOptions`].
//! - Downloads: [`Client::download`] (`.part` file, `Range` resume, one fresh link on expiry,
//!   fsync and atomic rename, flat memory), [`Client::download_to_writer`],
//!   [`Client::download_task_video`]. No `Authorization` header ever goes to a file host.
//! - Hybrid waits, which return as soon as a verified callback arrives in an [`Inbox`] (fed
//!   by `veo3-webhook`'s `BlockingReceiver`) and keep rare polling as the safety net:
//!   [`Client::wait_for_task_hybrid`], [`Client::generate_and_wait_hybrid`],
//!   [`Client::extend_and_wait_hybrid`].
//! - Progress: [`Event`]s to the builder's [`Observer`]; diagnostics through `tracing`.
//!
//! Errors are the core's [`Error`]; the key never appears in them, in `Debug` output or in
//! logs.

mod client;
mod download;
mod hybrid;
mod transport;
mod wait;

pub use client::{
    Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DOWNLOAD_IDLE_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
};
pub use download::Downloaded;
pub use veo3_core::settings::{Stage, WaitOptions};

pub use veo3_core::webhook::Inbox;

pub use veo3_core::download::{DownloadError, DownloadPolicy};
pub use veo3_core::{
    ApiKey, BlockingExecutor, BlockingSleeper, BlockingVeo3Api, Clock, Error, Event, Finish,
    Observer, PollSchedule, PollStatus, RetryBudget, RetryPolicy, SimulatedClock, SystemClock,
    ThreadSleeper, UpgradeStatus, WaitTarget,
};
pub use veo3_types::{
    ApiCode, AspectRatio, Credits, Endpoint, ExtendModel, ExtendRequest, GenerateRequest,
    GenerationType, Hd1080pResult, Model, Resolution, TaskCreated, TaskRecord, TaskResponse,
    TaskState, Upgrade4kRequest, Upgrade4kResult, ValidationError,
};

/// The core crate (decisions, error model, events), for what is not re-exported here.
pub use veo3_core as core;
/// The wire models.
pub use veo3_types as types;
