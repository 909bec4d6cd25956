//! A faithful, stateful local emulator of kie.ai's Veo 3 API, for tests, demos and benchmarks.
//!
//! # Why a stateful emulator
//!
//! A stateless mock (stripe-mock style) answers each request in isolation, so it cannot show a
//! client what matters most with this API: time. A Veo task is *created* by one request and
//! *finished* minutes later; 1080p answers "processing" before it answers; a repeated 4K request
//! reports success as a 422; result URLs expire; a generate request whose answer was lost has
//! still created (and billed) a task. The sandbox therefore keeps a world — tasks, a credit
//! ledger per key, rate-limit windows, minted media URLs — and moves it along a **service
//! clock**: real time divided by a *time scale* (0.01 turns a 30-second generation into 0.3 s),
//! plus explicit advances. With a time scale of 0 the clock stands still and only
//! [`SandboxHandle::advance`] or [`SandboxHandle::complete_now`] move tasks on, so a test can be
//! fully deterministic without sleeping.
//!
//! The sandbox fails the way the service fails, on purpose and reproducibly: a [`FaultPlan`]
//! (the `--faults` grammar) draws faults and task outcomes from the seed, and scripts queue
//! them for the next requests of a route. It also tells the test what happened: [`Stats`]
//! counts requests per route, tasks per key, injected faults, callbacks, and notes any request
//! to the file host that carried an `Authorization` header (the API key must never go there).
//!
//! Three listeners run on loopback: the **API** (the Veo3 routes plus admin routes under
//! `/__sandbox/`), the **upload host** (kie's file-upload API, on a host of its own as upstream)
//! and the **file host** (result media and uploaded files: small real MP4 files with
//! `Content-Length`, `HEAD`, `Range` and `ETag`, and `/big/<bytes>` deterministic bodies of any
//! size, streamed; see [`big_file_byte`]).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use veo3_sandbox::{Outcome, Route, Sandbox};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::builder()
//!     .key("test-key")
//!     .time_scale(0.0) // the clock moves only when the test says so
//!     .start()
//!     .await?;
//! sandbox.script_outcome(Route::Generate, Outcome::Moderation);
//!
//! let http = reqwest::Client::new();
//! let answer = http
//!     .post(format!("{}/api/v1/veo/generate", sandbox.api_url()))
//!     .bearer_auth("test-key")
//!     .body(r#"{"prompt": "A red fox in the snow", "model": "veo3_fast"}"#)
//!     .send()
//!     .await?
//!     .bytes()
//!     .await?;
//! let created: serde_json::Value = serde_json::from_slice(&answer)?;
//! assert_eq!(created["code"], 200);
//! let task_id = created["data"]["taskId"].as_str().unwrap_or_default();
//!
//! sandbox.advance(Duration::from_secs(60));
//! let task = sandbox.task(task_id).expect("the task exists");
//! assert_eq!(task.success_flag, 2); // moderation failure
//! assert_eq!(sandbox.stats().tasks_created_by("test-key"), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Admin routes
//!
//! The handle's controls are also reachable over HTTP on the API listener, without a key, for
//! tests written in other languages and for the binary:
//!
//! | Route | Body | Effect |
//! |---|---|---|
//! | `GET /__sandbox/stats` | | the counters as JSON |
//! | `POST /__sandbox/advance` | `{"ms": 30000}` | moves the service clock |
//! | `POST /__sandbox/complete/{taskId}` | | completes a task now |
//! | `POST /__sandbox/complete` | | completes every running task now |
//! | `POST /__sandbox/outcome/{taskId}` | `{"outcome": "moderation"}` | sets a running task's end |
//! | `GET /__sandbox/tasks` | | every billed job created, in creation order: `[{"taskId", "kind": "generate"\|"extend"\|"1080p"\|"4k", "prompt", "model", "callBackUrl", "imageUrls", "sourceTaskId", "index", "createTime", "successFlag"}]` ([`SandboxHandle::tasks`]) |
//! | `GET /__sandbox/tasks/{taskId}` | | a task's state |
//! | `POST /__sandbox/script` | `{"route": "generate", "action": "lost", "times": 1}` | queues a fault or outcome ([`Action`] grammar) |
//! | `DELETE /__sandbox/script` | | drops queued scripts |
//! | `PUT /__sandbox/faults` | `generate:lost=0.1,...` (text) | replaces the random [`FaultPlan`] |
//! | `POST /__sandbox/credits` | `{"key": "...", "credits": 100}` | sets a balance |
//! | `PUT /__sandbox/shape` | `{"shape": "legacy"}` | switches response shapes |
//! | `PUT /__sandbox/callbacks` | `{"enabled": false}` | switches callbacks |
//!
//! # The binary
//!
//! `veo3-sandbox --port N --key KEY --time-scale F --seed N --faults SPEC --hmac-key KEY
//! --shape modern|legacy --rate-limit MAX/WINDOW` prints `{"api": "...", "files": "...",
//! "uploads": "..."}` on one stdout line, logs to
//! stderr (`RUST_LOG` filters) and stops on Ctrl-C or SIGTERM. Its time scale defaults to 1
//! (real durations); the library's to 0.01.
//!
//! Behaviour summary (see the reference for the wire shapes):
//!
//! | Route | Behaviour |
//! |---|---|
//! | `POST /api/v1/veo/generate` | validates (422 naming the field), debits per model and resolution (402), 20 per 10 s of service time per key by default (429, counted in `answered_429`), creates a task |
//! | `GET /api/v1/veo/record-info` | the record, settled to the service clock; `record is null` / 14-day 422s |
//! | `GET /api/v1/veo/get-1080p-video` | 400 "1080P is processing" until ready, then a stable `resultUrl`, which the source's record then shows (`resolution: "1080p"`) |
//! | `POST /api/v1/veo/get-4k-video` | 200 echoing the source task id (as the reference's examples do), then 422 processing, then 422 with URLs; the 4K callback names the source too |
//! | `POST /api/v1/veo/extend` | a new task whose record carries `fullResultUrls` |
//! | `GET /api/v1/chat/credit` | the key's balance |
//! | `POST /api/v1/common/download-url` | a fresh 20-minute link for a sandbox media URL; 422 for others |
//! | `POST /api/file-{stream,url,base64}-upload` | the upload API, on the upload host ([`SandboxHandle::upload_url`]), files served by the file host for 24 h |

mod admin;
mod api;
mod callbacks;
mod config;
mod faults;
mod files;
mod render;
pub mod serve;
mod server;
mod state;
mod uploads;

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use callbacks::webhook_signature;
pub use config::{Durations, Prices, RateLimit, Shape};
pub use faults::{Action, Fault, FaultPlan, FaultSpecError, Outcome, Route};
pub use files::big_file_byte;
pub use state::{CreatedTask, Stats, TaskInfo, TaskKind};

use config::{Config, Secret};
use state::Shared;

/// Entry point: [`Sandbox::builder`].
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// A builder with defaults for tests: any non-empty key accepted, time scale 0.01, seed 0,
    /// modern shapes, callbacks on without signature, HTTP 200 envelopes, 100 000 credits per key,
    /// the real rate limit (20 per 10 s of service time), random ports on 127.0.0.1.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder {
            config: Config::default(),
        }
    }
}

/// Configures and starts a sandbox; see [`Sandbox::builder`] for the defaults.
#[derive(Clone, Debug)]
#[must_use]
pub struct SandboxBuilder {
    config: Config,
}

impl SandboxBuilder {
    /// Accepts `key` as a bearer key (repeatable). With no key configured, any non-empty key
    /// is accepted.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.config.keys.push(Secret(key.into()));
        self
    }

    /// Accepts each of `keys` as a bearer key (see [`SandboxBuilder::key`]).
    pub fn keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.config
            .keys
            .extend(keys.into_iter().map(|k| Secret(k.into())));
        self
    }

    /// Multiplies every duration by `scale` (0.01: three minutes take 1.8 s). 0 stops the
    /// clock: only [`SandboxHandle::advance`] and [`SandboxHandle::complete_now`] move tasks.
    /// A negative or non-finite scale makes [`SandboxBuilder::start`] fail.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.config.time_scale = scale;
        self
    }

    /// Seeds task ids, URL tokens, default seeds and random faults.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Random faults and outcomes (see [`FaultPlan`] for the grammar).
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.config.faults = plan;
        self
    }

    /// Answers every record-info read of a task during the first `window` of its life
    /// (service time) with 422 `record is null`, as kie's task API is reported to do right
    /// after creation: the fault `record-info:record-null-early@MS` added to the plan.
    pub fn record_null_early(mut self, window: Duration) -> Self {
        self.config.faults = std::mem::take(&mut self.config.faults).with(
            Some(Route::RecordInfo),
            Action::Fault(Fault::RecordNullEarly(window)),
            1.0,
        );
        self
    }

    /// The response shapes served (default [`Shape::Modern`]).
    pub fn shape(mut self, shape: Shape) -> Self {
        self.config.shape = shape;
        self
    }

    /// Sends callbacks to `callBackUrl`s (default on).
    pub fn callbacks(mut self, on: bool) -> Self {
        self.config.callbacks = on;
        self
    }

    /// Signs callbacks with this webhook HMAC key (`X-Webhook-Timestamp`/`-Signature`).
    pub fn hmac_key(mut self, key: impl Into<String>) -> Self {
        self.config.hmac_key = Some(Secret(key.into()));
        self
    }

    /// Mirrors the envelope's `code` into the HTTP status (default off: HTTP 200 always).
    pub fn mirror_http_status(mut self, on: bool) -> Self {
        self.config.mirror_http_status = on;
        self
    }

    /// Credits every key starts with (default 100 000).
    pub fn initial_credits(mut self, credits: i64) -> Self {
        self.config.initial_credits = credits;
        self
    }

    /// Credits `key` starts with.
    pub fn credits(mut self, key: impl Into<String>, credits: i64) -> Self {
        self.config.credits.push((Secret(key.into()), credits));
        self
    }

    /// Gives the credits of failed tasks back (undocumented upstream; default off).
    pub fn refund_failed(mut self, on: bool) -> Self {
        self.config.refund_failed = on;
        self
    }

    /// Unscaled durations of each kind of job.
    pub fn durations(mut self, durations: Durations) -> Self {
        self.config.durations = durations;
        self
    }

    /// Credits charged per operation.
    pub fn prices(mut self, prices: Prices) -> Self {
        self.config.prices = prices;
        self
    }

    /// The generation rate limit, or `None` for none (default 20 per 10 s per key). The window
    /// is service time, so it scales with [`SandboxBuilder::time_scale`].
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.config.rate_limit = limit;
        self
    }

    /// How long records stay readable (default 14 days of service time).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.config.retention = retention;
        self
    }

    /// How long result URLs stay valid after completion (default 24 h of service time).
    pub fn result_url_ttl(mut self, ttl: Duration) -> Self {
        self.config.result_url_ttl = ttl;
        self
    }

    /// Makes every generation's result a body of `bytes` bytes in the `/big` pattern
    /// ([`big_file_byte`]) instead of a sample MP4, to exercise downloads of large files
    /// through the whole journey (default: the sample MP4s).
    pub fn result_bytes(mut self, bytes: Option<u64>) -> Self {
        self.config.result_bytes = bytes;
        self
    }

    /// How long `download-url` links stay valid (default 20 min of service time).
    pub fn download_url_ttl(mut self, ttl: Duration) -> Self {
        self.config.download_url_ttl = ttl;
        self
    }

    /// Time a callback receiver has to answer (default 15 s, real time).
    pub fn callback_timeout(mut self, timeout: Duration) -> Self {
        self.config.callback_timeout = timeout;
        self
    }

    /// Retries after a failed delivery (default 3).
    pub fn callback_retries(mut self, retries: u32) -> Self {
        self.config.callback_retries = retries;
        self
    }

    /// Pause between delivery attempts (default 30 s of service time).
    pub fn callback_retry_delay(mut self, delay: Duration) -> Self {
        self.config.callback_retry_delay = delay;
        self
    }

    /// Delivers every callback twice, as the service may (default off).
    pub fn callback_duplicates(mut self, on: bool) -> Self {
        self.config.callback_duplicates = on;
        self
    }

    /// Starts the service clock at this epoch-ms instant instead of now.
    pub fn epoch_ms(mut self, epoch_ms: i64) -> Self {
        self.config.epoch_ms = Some(epoch_ms);
        self
    }

    /// The API's port (default 0: any free port).
    pub fn api_port(mut self, port: u16) -> Self {
        self.config.api_port = port;
        self
    }

    /// The file host's port (default 0: any free port).
    pub fn files_port(mut self, port: u16) -> Self {
        self.config.files_port = port;
        self
    }

    /// The upload host's port (default 0: any free port).
    pub fn uploads_port(mut self, port: u16) -> Self {
        self.config.uploads_port = port;
        self
    }

    /// Binds the three listeners (API, file host, upload host) on 127.0.0.1 and serves them on the current tokio runtime (which
    /// must be multi-threaded if the test blocks a thread while the sandbox serves).
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`], naming the setting, when a setting cannot
    /// work: a negative or non-finite time scale, a rate limit of 0 requests or an empty
    /// window, negative credits, a zero callback timeout, retention or URL lifetime.
    pub async fn start(self) -> io::Result<SandboxHandle> {
        self.config
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("sandbox: {e}")))?;
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let api = TcpListener::bind((ip, self.config.api_port)).await?;
        let files = TcpListener::bind((ip, self.config.files_port)).await?;
        let uploads = TcpListener::bind((ip, self.config.uploads_port)).await?;
        let api_url = format!("http://{}", api.local_addr()?);
        let files_url = format!("http://{}", files.local_addr()?);
        let upload_url = format!("http://{}", uploads.local_addr()?);
        let shared = Shared::new(self.config, api_url, files_url, upload_url);
        let (stop, stopped) = watch::channel(false);

        let api_router = Router::new()
            .merge(api::routes())
            .merge(admin::routes())
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(from_fn_with_state(shared.clone(), server::front_door))
            .layer(from_fn_with_state(shared.clone(), api::count_answers))
            .with_state(shared.clone());
        // The upload API on a host of its own, as kie's is; faults by path, like the API's.
        let uploads_router = uploads::routes()
            .layer(from_fn_with_state(shared.clone(), server::front_door))
            .layer(from_fn_with_state(shared.clone(), api::count_answers))
            .with_state(shared.clone());
        let files_router = files::routes()
            .layer(from_fn_with_state(shared.clone(), files::front_door))
            .layer(from_fn_with_state(shared.clone(), api::count_answers))
            .with_state(shared.clone());
        let sh = shared.clone();
        let api_accepted = move || sh.lock().stats.api_connections += 1;
        let sh = shared.clone();
        let file_accepted = move || sh.lock().stats.file_connections += 1;
        tokio::spawn(server::serve(
            api,
            api_router,
            stopped.clone(),
            api_accepted,
        ));
        tokio::spawn(server::serve(
            files,
            files_router,
            stopped.clone(),
            file_accepted,
        ));
        tokio::spawn(server::serve(
            uploads,
            uploads_router,
            stopped.clone(),
            || {},
        ));
        tokio::spawn(scheduler(shared.clone(), stopped));
        tracing::info!(
            api = %shared.api_url,
            files = %shared.files_url,
            uploads = %shared.upload_url,
            "sandbox started"
        );
        Ok(SandboxHandle {
            shared,
            stop,
            _thread: None,
        })
    }

    /// Starts the sandbox on a runtime of its own, in a background thread: for blocking code
    /// and tests that have no runtime. The runtime stops when the handle is dropped.
    pub fn start_in_background(self) -> io::Result<SandboxHandle> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("veo3-sandbox".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match self.start().await {
                        Ok(handle) => {
                            let mut stopped = handle.stop.subscribe();
                            let _ = tx.send(Ok(handle));
                            let _ = stopped.wait_for(|stop| *stop).await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })?;
        let mut handle = rx
            .recv()
            .map_err(|_| io::Error::other("the sandbox thread stopped before starting"))??;
        handle._thread = Some(thread);
        Ok(handle)
    }
}

async fn not_found(
    axum::extract::State(sh): axum::extract::State<Arc<Shared>>,
) -> axum::response::Response {
    api::envelope(
        &sh,
        404,
        api::standard_message(404),
        serde_json::Value::Null,
    )
}

async fn method_not_allowed(
    axum::extract::State(sh): axum::extract::State<Arc<Shared>>,
) -> axum::response::Response {
    api::envelope(
        &sh,
        405,
        api::standard_message(405),
        serde_json::Value::Null,
    )
}

/// Settles tasks when their time comes, so callbacks fire even if nobody polls.
async fn scheduler(sh: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        let (jobs, next_due) = sh.settle_due();
        callbacks::dispatch(&sh, jobs);
        let delay = next_due.and_then(|due| sh.clock.real_delay(due - sh.now() + 1));
        let sleep = async {
            match delay {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sh.wake.notified() => {}
            _ = sleep => {}
            _ = stopped.wait_for(|stop| *stop) => break,
        }
    }
}

/// A running sandbox: its URLs, its counters and its controls. Dropping it stops the sandbox.
#[derive(Debug)]
pub struct SandboxHandle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    _thread: Option<std::thread::JoinHandle<()>>,
}

impl SandboxHandle {
    /// The API base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn api_url(&self) -> &str {
        &self.shared.api_url
    }

    /// The file host's base URL (result media, uploaded files, `/big/<bytes>`).
    pub fn files_url(&self) -> &str {
        &self.shared.files_url
    }

    /// The upload API's base URL: a host of its own, like kie's `kieai.redpandaai.co`
    /// (`/api/file-stream-upload`, `/api/file-url-upload`, `/api/file-base64-upload`).
    pub fn upload_url(&self) -> &str {
        &self.shared.upload_url
    }

    /// The URL of a deterministic body of `bytes` bytes (see [`big_file_byte`]).
    pub fn big_file_url(&self, bytes: u64) -> String {
        format!("{}/big/{bytes}", self.shared.files_url)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Waits (up to `timeout` of real time) until `done` holds for the counters, re-checking
    /// whenever a request is counted, a fault injected, a task created or a callback counter
    /// changes; returns whether it held. For tests that must see what happens in the
    /// background (a delivery's outcome, a client's request reaching a scripted fault)
    /// without sleeping.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&Stats) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.stats_changed.notified();
            if done(&self.stats()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(&self.stats());
            }
        }
    }

    /// Service time now, epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.shared.now()
    }

    /// Moves the service clock forward; tasks due by then complete (and send callbacks).
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
        let (jobs, _) = self.shared.settle_due();
        callbacks::dispatch(&self.shared, jobs);
        self.shared.wake.notify_one();
    }

    /// Completes task `task_id` now (and its pending 1080p and 4K jobs), with its scripted
    /// outcome.
    /// False when no such task exists.
    pub fn complete_now(&self, task_id: &str) -> bool {
        match self.shared.complete_now(task_id) {
            Some(jobs) => {
                callbacks::dispatch(&self.shared, jobs);
                true
            }
            None => false,
        }
    }

    /// Completes every running task (and pending 1080p job) now; returns how many tasks.
    pub fn complete_all(&self) -> usize {
        let (count, jobs) = self.shared.complete_all();
        callbacks::dispatch(&self.shared, jobs);
        count
    }

    /// Sets how a running task will end. False when it does not exist or has ended.
    pub fn set_outcome(&self, task_id: &str, outcome: Outcome) -> bool {
        self.shared.set_outcome(task_id, outcome)
    }

    /// A task's current state (settled to the service clock).
    pub fn task(&self, task_id: &str) -> Option<TaskInfo> {
        let (info, job) = self.shared.task_info(task_id);
        callbacks::dispatch(&self.shared, job);
        info
    }

    /// Every billed job created so far, in creation order: generations, extensions, 4K tasks
    /// and 1080p jobs (one per task and index, under the source's id), with the prompt,
    /// callback URL and image URLs each was created with. Lets a test assert that each of its
    /// jobs reached the service exactly once (see [`CreatedTask::callback_param`]). Tasks are
    /// forgotten only after twice the retention window.
    pub fn tasks(&self) -> Vec<CreatedTask> {
        self.shared.created_tasks()
    }

    /// Makes the next download-url call for a known result answer `link` as-is instead of a
    /// fresh link (a broken or hostile link, for testing what clients do with it).
    pub fn script_download_link(&self, link: impl Into<String>) {
        self.shared.lock().scripted_links.push_back(link.into());
    }

    /// Applies `fault` to the next request on `route` (before any random fault).
    pub fn script_fault(&self, route: Route, fault: Fault) {
        self.shared.script_fault(route, fault, 1);
    }

    /// Applies `fault` to each of the next `times` requests on `route`.
    pub fn script_faults(&self, route: Route, fault: Fault, times: usize) {
        self.shared.script_fault(route, fault, times);
    }

    /// Gives the next task created on `route` (generate, extend or 4k) this outcome.
    pub fn script_outcome(&self, route: Route, outcome: Outcome) {
        self.shared.script_outcome(route, outcome, 1);
    }

    /// Gives each of the next `times` tasks created on `route` this outcome.
    pub fn script_outcomes(&self, route: Route, outcome: Outcome, times: usize) {
        self.shared.script_outcome(route, outcome, times);
    }

    /// Drops every scripted fault and outcome not yet used.
    pub fn clear_scripts(&self) {
        self.shared.clear_scripts();
    }

    /// Replaces the random fault plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.lock().faults = plan;
    }

    /// Switches the response shapes served from now on.
    pub fn set_shape(&self, shape: Shape) {
        self.shared.lock().shape = shape;
    }

    /// Turns callbacks on or off (deliveries in progress stop before their next attempt).
    pub fn set_callbacks(&self, on: bool) {
        self.shared.callbacks_on.store(on, Ordering::Relaxed);
    }

    /// Sets `key`'s balance.
    pub fn set_credits(&self, key: &str, credits: i64) {
        self.shared.set_credits(key, credits);
    }

    /// `key`'s balance.
    pub fn credits(&self, key: &str) -> i64 {
        self.shared.credits(key)
    }

    /// Stops both listeners and the scheduler (also done on drop).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
