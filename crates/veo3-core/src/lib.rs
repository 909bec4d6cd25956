//! The transport-agnostic heart of veo3-rs: the [`Veo3Api`] trait, the [`Error`] model, and
//! the retry and polling decisions, for kie.ai's Veo 3 API.
//!
//! # At most once
//!
//! kie's generate, extend and 4K endpoints are billable, have no idempotency key and cannot
//! be cancelled. A client that resends such a request after a timeout bills its user twice,
//! and the usual retry middleware does exactly that. This crate makes that mistake impossible
//! by construction:
//!
//! - Every outcome of a request is reduced to plain facts ([`Outcome`]: the envelope code and
//!   message, the HTTP status, or a transport failure *and the phase it happened in*) and
//!   classified by one pure function, [`classify()`], tested as a table against the
//!   reference's code table for every endpoint.
//! - For billable endpoints, "retry" is only ever the answer when the failure proves no task
//!   was created: the connection was never established, or the server explicitly rejected the
//!   request (429, 455). A timeout, a dropped connection, a 5xx or an unreadable success after
//!   the request may have been sent becomes [`Error::SubmitOutcomeUnknown`], returned to the
//!   caller and never silently resent.
//! - Read-only endpoints retry transient failures freely, within a [`RetryPolicy`] (attempts,
//!   exponential backoff with full jitter, a cap on `Retry-After`, an overall deadline) and a
//!   [`RetryBudget`] shared by all calls of a client, so an outage cannot multiply traffic.
//!
//! # Pure decisions, thin drivers
//!
//! Following quinn's protocol/driver split, nothing that decides reads a clock, sleeps or
//! draws random numbers: [`classify()`], [`RetryState`], [`PollSchedule`], [`WaitState`] and
//! the acceptors take time (a [`Duration`](std::time::Duration) from a [`Clock`]) and
//! randomness (a `u64`) as arguments. A `clippy.toml` in this crate bans direct clock reads
//! and sleeps, with one explicit exception in [`SystemClock`]. The async drivers
//! ([`Executor::execute`], [`wait_for_task`] and friends, and the hybrid waits such as
//! [`wait_for_task_hybrid`] that also finish on a callback) are written once here over injected
//! [`Clock`]/[`Sleeper`] ([`Effects`], named so as not to be confused with environment
//! variables); their blocking twins are written here too ([`BlockingExecutor`]'s `execute`,
//! `wait` and `wait_hybrid`, over a [`BlockingSleeper`]), so the blocking client keeps no loop of
//! its own. What a builder setting means and which schedule a wait follows are decided once as
//! well, in [`settings`]. Tests run on a [`SimulatedClock`]: a thirty-minute wait takes
//! microseconds and asserts exact times.
//!
//! # Sans-IO
//!
//! Core knows the protocol (paths, bodies, envelope decoding) but moves no bytes: a [`Call`]
//! yields an [`HttpRequest`] and reads an [`HttpResponse`] or a [`TransportError`]; a client
//! crate implements [`Transport`] (one method) and gets the whole [`Veo3Api`] from
//! [`ApiClient`]. There is no reqwest, hyper, ureq or tokio in this crate's dependencies.
//!
//! ## How a transport crate uses it
//!
//! Async (veo3-reqwest): implement [`Transport::send`] (join `path_and_query` to the base URL,
//! add `Authorization` from [`ApiKey::authorization`] and [`HttpRequest::headers`], enforce
//! the given timeout, map failures to a [`TransportPhase`]), then
//! `ApiClient::new(transport, Executor::new(policy, Effects::new(clock, sleeper)))`.
//!
//! Blocking (veo3-blocking), per call:
//!
//! ```
//! # use std::{sync::Arc, time::Duration};
//! # use veo3_core::*;
//! # fn send(_: &HttpRequest, _: Option<Duration>) -> Result<HttpResponse, TransportError> {
//! #     Ok(HttpResponse::new(200, r#"{"code":200,"msg":"success","data":1850}"#))
//! # }
//! # let (policy, budget, clock) = (RetryPolicy::default(), RetryBudget::shared(), SimulatedClock::new());
//! # let observer = Observer::none();
//! # let sleep = |_: Duration| {};
//! # let result: Result<veo3_types::Credits, Error> = (|| {
//! let call = Call::credits();
//! let mut state = RetryState::new(&policy, budget.clone(), clock.now());
//! loop {
//!     let timeout = state.begin_attempt(clock.now());
//!     let result = send(call.request(), timeout);
//!     match call.step(&mut state, result, clock.now(), fastrand::u64(..)) {
//!         Step::Done(value) => return Ok(value),
//!         Step::Retry(plan) => {
//!             observer.emit(&plan.event());
//!             sleep(plan.delay);
//!         }
//!         Step::Fail(error) => return Err(error),
//!         // `BlockingExecutor::execute` follows a read-only call's redirect on the API host;
//!         // this short loop follows none (without a base URL, `follow` refuses, naming the
//!         // target).
//!         Step::Follow(redirect) => match redirect.follow(None, call.request(), 0) {
//!             Ok(_) => unreachable!("nothing is followed without a base URL"),
//!             Err(error) => return Err(error),
//!         },
//!     }
//! }
//! # })();
//! # assert_eq!(result.unwrap().0, 1850);
//! ```
//!
//! and per wait, the loop shown on [`WaitState`]. [`BlockingExecutor`] packages both loops
//! (`execute` and `wait`) with the same events, `tracing` and secret scrubbing as the async
//! driver, over a [`BlockingSleeper`].
//!
//! # Testing your code
//!
//! With the `mock` feature, mockall generates `MockVeo3Api` and `MockBlockingVeo3Api`; see
//! [`Veo3Api`] and its blocking twin [`BlockingVeo3Api`].

mod api;
mod blocking;
mod call;
mod classify;
pub mod download;
mod error;
mod event;
mod executor;
mod http;
mod limit;
mod retry;
mod schedule;
mod secret;
pub mod settings;
pub mod time;
mod upload;
mod wait;
pub mod webhook;

pub use api::{BlockingVeo3Api, UpgradeStatus, Veo3Api};
#[cfg(feature = "mock")]
pub use api::{MockBlockingVeo3Api, MockVeo3Api};
pub use blocking::BlockingExecutor;
pub use call::{
    Call, Evaluation, MAX_REDIRECTS, Redirect, RetryPlan, Step, decode_credits,
    decode_download_url, decode_extend, decode_generate, decode_hd_1080p, decode_record_info,
    decode_upgrade_4k, decode_upload,
};
pub use classify::{Answer, Disposition, Outcome, Stop, classify};
pub use error::{Error, WaitTarget};
pub use event::{Event, Finish, Observer, PollStatus, PollTrigger};
pub use executor::{ApiClient, Effects, Executor};
pub use http::{HttpRequest, HttpResponse, Transport, TransportError, TransportPhase};
pub use limit::{Acquire, RequestLimit, RequestPermit};
pub use retry::{
    Decision, GiveUpReason, RetryBudget, RetryPolicy, RetryReason, RetryState, parse_retry_after,
};
pub use schedule::{PollSchedule, RECORD_NULL_GRACE};
pub use secret::{ApiKey, REDACTED, excerpt, redact};
pub use time::{BlockingSleeper, Clock, SimulatedClock, Sleeper, SystemClock, ThreadSleeper};
pub use upload::{
    LocalFile, Multipart, PreparedImage, UploadProgress, generate_with_images,
    image_upload_options, prepare_images, upload_images,
};
pub use wait::{
    Acceptance, WaitState, WaitStep, accept_task, accept_upgrade, announce_submitted,
    confirm_upgrade_refusal, extend_and_wait, extend_and_wait_hybrid, generate_and_wait,
    generate_and_wait_hybrid, is_not_visible_yet, is_record_null, is_source_refusal, task_video,
    upgrade_4k_and_wait, upgrade_4k_and_wait_hybrid, upgrade_1080p_and_wait_hybrid, wait_for_4k,
    wait_for_4k_hybrid, wait_for_1080p, wait_for_existing_task_hybrid, wait_for_new_task,
    wait_for_task, wait_for_task_hybrid, warn_without_callback,
};

/// The wire models this crate speaks, re-exported so that users of the trait need one import.
pub use veo3_types as types;
