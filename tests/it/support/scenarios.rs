//! The scenario table both clients run against the sandbox (issue 5 for the async client,
//! issue 6 for the blocking one), shared rather than copied.
//!
//! # How to plug a client in
//!
//! Implement [`Flows`] for your client: one method per endpoint and per flow, taking owned
//! arguments and returning a boxed `Send` future of the plain result or the typed
//! [`veo3_core::Error`]. A blocking client wraps each call in `tokio::task::spawn_blocking`
//! (the table runs on a multi-threaded tokio runtime, and the sandbox serves on it too). Then
//! write a [`Connect`] function that builds your client from a [`Setup`] (base URL, key, retry
//! policy, one poll schedule for every stage, download policy, observer), and call
//!
//! ```text
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn scenarios() { scenarios::run_table(my_connect).await }
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn fault_mix() { scenarios::run_fault_mix(my_connect, 200).await }
//! ```
//!
//! # What a scenario is
//!
//! A [`Scenario`] is a sandbox configuration (builder + response [`Shape`]) and a step
//! function that drives the client through [`Ctx`] and asserts on the results and on the
//! sandbox's counters ([`veo3_sandbox::Stats`]): tasks created per key (no double submission),
//! requests per route (retries happened, or did not), faults injected, and the file host's
//! record of `Authorization` headers (must stay empty). Downloaded files are compared byte for
//! byte with what the file host serves. Scenarios run on a small sandbox time scale with
//! millisecond poll schedules, never sleep for synchronisation and assert no timings.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use veo3_core::download::{DownloadPolicy, ProgressMeter, TargetProblem};
use veo3_core::settings::{Schedules, Stage, WaitMode, WaitOptions};
use veo3_core::webhook::Inbox;
use veo3_core::{Error, Event, Observer, PollSchedule, RetryPolicy, SimulatedClock, UpgradeStatus};
use veo3_sandbox::{
    Durations, Fault, FaultPlan, Outcome, Route, Sandbox, SandboxBuilder, SandboxHandle, Shape,
};
use veo3_types::{
    ApiCode, Credits, ExtendRequest, GenerateRequest, GenerateWithImages, Hd1080pResult,
    TaskCreated, TaskRecord, TaskState, Upgrade4kRequest, Upgrade4kResult, UploadOptions,
    UploadedFile,
};

pub(crate) mod uploads;

/// A boxed, sendable future: what every [`Flows`] method returns.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The API key every scenario's sandbox accepts.
pub(crate) const KEY: &str = "sk-scenario-0123456789abcdef";

/// Everything a client under test is built from.
#[derive(Clone, Debug)]
pub(crate) struct Setup {
    /// The sandbox's API base URL.
    pub(crate) base_url: String,
    /// The sandbox's upload host, when the client must be told (it is not the API host).
    pub(crate) upload_base_url: Option<String>,
    /// The API key.
    pub(crate) key: String,
    /// Retries: millisecond backoffs, generous time limits.
    pub(crate) retry: RetryPolicy,
    /// One schedule for every stage (generation, 1080p, 4K, extension).
    pub(crate) schedule: PollSchedule,
    /// Download resumes with millisecond backoffs.
    pub(crate) download: DownloadPolicy,
    /// Receives the client's events.
    pub(crate) observer: Observer,
    /// Simulated time for the client (its clock and sleeper, no jitter), for scenarios that
    /// check the schedule a wait follows; `None`: real time.
    pub(crate) clock: Option<SimulatedClock>,
    /// Leaves every stage on the core's presets instead of `schedule`.
    pub(crate) preset_schedules: bool,
    /// The client's `max_response_bytes`, when a scenario sets it.
    pub(crate) max_response_bytes: Option<usize>,
}

impl Setup {
    /// The defaults for `base_url`: 10 ms polls, a 60 s wait deadline, 5 attempts per call.
    pub(crate) fn for_sandbox(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            upload_base_url: None,
            key: KEY.to_owned(),
            retry: RetryPolicy::default()
                .with_max_attempts(5)
                .with_backoff(Duration::from_millis(5), Duration::from_millis(50))
                .with_max_retry_after(Duration::from_secs(2))
                .with_attempt_timeout(Some(Duration::from_secs(20)))
                .with_deadline(Some(Duration::from_secs(60))),
            schedule: PollSchedule::new(
                Duration::from_millis(10),
                Duration::from_millis(10),
                Duration::from_secs(60),
            )
            .with_jitter(0.0),
            download: DownloadPolicy::default().with_initial_backoff(Duration::from_millis(5)),
            observer: Observer::none(),
            clock: None,
            preset_schedules: false,
            max_response_bytes: None,
        }
    }
}

/// A client under test, as the scenarios see it. Arguments are owned so that a blocking
/// implementation can move them into `spawn_blocking`.
pub(crate) trait Flows: Send + Sync {
    /// The client's name, for failure messages.
    fn name(&self) -> &'static str;
    /// `Veo3Api::generate`: one billable call.
    fn generate(&self, request: GenerateRequest) -> BoxFuture<'_, Result<TaskCreated, Error>>;
    /// `generate_once`: one billable call, attempted once (a 429 is the error).
    fn generate_once(&self, request: GenerateRequest) -> BoxFuture<'_, Result<TaskCreated, Error>>;
    /// `Veo3Api::record_info`.
    fn record_info(&self, task_id: String) -> BoxFuture<'_, Result<TaskRecord, Error>>;
    /// `Veo3Api::hd_1080p`: one call, "processing" included.
    fn hd_1080p(
        &self,
        task_id: String,
        index: Option<u32>,
    ) -> BoxFuture<'_, Result<UpgradeStatus<Hd1080pResult>, Error>>;
    /// `Veo3Api::upgrade_4k`: one call.
    fn upgrade_4k(
        &self,
        request: Upgrade4kRequest,
    ) -> BoxFuture<'_, Result<UpgradeStatus<Upgrade4kResult>, Error>>;
    /// `Veo3Api::extend`: one billable call.
    fn extend(&self, request: ExtendRequest) -> BoxFuture<'_, Result<TaskCreated, Error>>;
    /// `Veo3Api::credits`.
    fn credits(&self) -> BoxFuture<'_, Result<Credits, Error>>;
    /// `Veo3Api::download_url`.
    fn download_url(&self, url: String) -> BoxFuture<'_, Result<String, Error>>;
    /// Generate and wait for the task (the generation schedule).
    fn generate_and_wait(
        &self,
        request: GenerateRequest,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>>;
    /// Wait for an existing task.
    fn wait_for_task(&self, task_id: String) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        self.wait_for_task_with(task_id, WaitOptions::default())
    }
    /// Wait for an existing task, with per-call options.
    fn wait_for_task_with(
        &self,
        task_id: String,
        options: WaitOptions,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>>;
    /// Wait for a task created a moment ago (the schedule's first delay first).
    fn wait_for_new_task(&self, task_id: String) -> BoxFuture<'_, Result<TaskRecord, Error>>;
    /// A hybrid wait for a task that may have finished already (read at once).
    fn wait_for_existing_task_hybrid(
        &self,
        task_id: String,
        inbox: Inbox,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>>;
    /// Request the 1080p version and wait for it.
    fn upgrade_1080p_and_wait(
        &self,
        task_id: String,
        index: Option<u32>,
    ) -> BoxFuture<'_, Result<Hd1080pResult, Error>>;
    /// Request the 4K version and wait for it.
    fn upgrade_4k_and_wait(
        &self,
        request: Upgrade4kRequest,
    ) -> BoxFuture<'_, Result<Upgrade4kResult, Error>>;
    /// Extend and wait for the extension.
    fn extend_and_wait(&self, request: ExtendRequest) -> BoxFuture<'_, Result<TaskRecord, Error>>;
    /// Download `url` to `path` (atomically), returning the bytes written.
    fn download(&self, url: String, path: PathBuf) -> BoxFuture<'_, Result<u64, Error>>;
    /// Generate and wait for the task with the hybrid wait (callbacks into `inbox`, rare
    /// safety-net polls).
    fn generate_and_wait_hybrid(
        &self,
        request: GenerateRequest,
        inbox: Inbox,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>>;
    /// Request the 1080p version and wait for it with the hybrid wait (a 1080p callback into
    /// `inbox` ends it), with per-call options.
    fn upgrade_1080p_and_wait_hybrid(
        &self,
        task_id: String,
        index: Option<u32>,
        inbox: Inbox,
        options: WaitOptions,
    ) -> BoxFuture<'_, Result<Hd1080pResult, Error>>;
    /// Request the 4K version and wait for it with the hybrid wait (the job's 4K callback
    /// into `inbox` ends it), with per-call options.
    fn upgrade_4k_and_wait_hybrid(
        &self,
        request: Upgrade4kRequest,
        inbox: Inbox,
        options: WaitOptions,
    ) -> BoxFuture<'_, Result<Upgrade4kResult, Error>>;
    /// Download video `index` of task `task_id` to `path`, returning the bytes written.
    fn download_task_video(
        &self,
        task_id: String,
        index: usize,
        path: PathBuf,
    ) -> BoxFuture<'_, Result<u64, Error>>;
    /// `upload_file`: stream a local file to the upload host.
    fn upload_file(
        &self,
        path: PathBuf,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<UploadedFile, Error>>;
    /// `upload_bytes`: base64 upload from memory.
    fn upload_bytes(
        &self,
        bytes: Vec<u8>,
        file_name: String,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<UploadedFile, Error>>;
    /// `upload_url`: the upload host fetches a URL.
    fn upload_url(
        &self,
        url: String,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<UploadedFile, Error>>;
    /// `generate_with_images`: check, upload the local images, submit with the hosted URLs.
    fn generate_with_images(
        &self,
        pending: GenerateWithImages,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<TaskCreated, Error>>;
}

/// Builds a client under test for a sandbox.
pub(crate) type Connect = fn(&Setup) -> Box<dyn Flows>;

/// What a scenario's steps get.
pub(crate) struct Ctx {
    /// The sandbox, for its controls and counters.
    pub(crate) sandbox: SandboxHandle,
    /// The client under test.
    pub(crate) flows: Box<dyn Flows>,
    /// A fresh folder for downloads.
    pub(crate) dir: tempfile::TempDir,
    /// The response shape served.
    pub(crate) shape: Shape,
    /// What built `flows`, for scenarios that need a client set up differently.
    pub(crate) connect: Connect,
    /// The setup `flows` was built from.
    pub(crate) setup: Setup,
    /// Every event the client emitted, in order.
    pub(crate) events: Arc<Mutex<Vec<Event>>>,
    /// Notified at each download progress event.
    pub(crate) progress: Arc<tokio::sync::Notify>,
}

impl Ctx {
    /// A path in the scenario's folder.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Downloads `url` to `name` with the client under test and checks the file against what
    /// the file host serves (fetched without faults by a plain client).
    pub(crate) async fn download_and_verify(&self, url: &str, name: &str) -> Vec<u8> {
        let path = self.path(name);
        let bytes = self
            .flows
            .download(url.to_owned(), path.clone())
            .await
            .unwrap_or_else(|e| panic!("{}: download failed: {e}", self.flows.name()));
        let file = std::fs::read(&path).expect("the downloaded file exists");
        assert_eq!(bytes, file.len() as u64, "reported length = file length");
        assert_no_part_file(&path);
        file
    }
}

/// One row of the table.
pub(crate) struct Scenario {
    /// Its name, for reports.
    pub(crate) name: &'static str,
    /// The shape served.
    pub(crate) shape: Shape,
    /// The sandbox's configuration (the shape and key are added).
    pub(crate) sandbox: fn() -> SandboxBuilder,
    /// The steps and assertions.
    pub(crate) run: for<'a> fn(&'a Ctx) -> BoxFuture<'a, ()>,
}

/// A sandbox whose jobs take 20 ms (of real time) to 300 ms: every flow runs for real, fast.
pub(crate) fn fast_sandbox() -> SandboxBuilder {
    Sandbox::builder().time_scale(0.001).seed(5)
}

/// A sandbox whose clock stands still: tasks never finish on their own.
pub(crate) fn frozen_sandbox() -> SandboxBuilder {
    Sandbox::builder().time_scale(0.0).seed(5)
}

/// Every scenario, in both shapes where the shape matters.
pub(crate) fn table() -> Vec<Scenario> {
    let mut rows = Vec::new();
    for shape in [Shape::Modern, Shape::Legacy] {
        rows.extend([
            Scenario {
                name: "every endpoint, one call each",
                shape,
                sandbox: frozen_sandbox,
                run: every_endpoint,
            },
            Scenario {
                name: "generate, wait, download",
                shape,
                sandbox: fast_sandbox,
                run: generate_wait_download,
            },
            Scenario {
                name: "1080p upgrade and wait",
                shape,
                sandbox: fast_sandbox,
                run: upgrade_1080p_flow,
            },
            Scenario {
                name: "4K upgrade and wait",
                shape,
                sandbox: fast_sandbox,
                run: upgrade_4k_flow,
            },
            Scenario {
                name: "extend and wait",
                shape,
                sandbox: fast_sandbox,
                run: extend_flow,
            },
            Scenario {
                name: "wait for an existing task",
                shape,
                sandbox: fast_sandbox,
                run: wait_for_existing_task,
            },
        ]);
    }
    rows.extend([
        Scenario {
            name: "a call's error names its endpoint, its task and the API's answer",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: errors_name_the_task,
        },
        Scenario {
            name: "a failed task is a typed error with its code",
            shape: Shape::Modern,
            sandbox: fast_sandbox,
            run: task_failure,
        },
        Scenario {
            name: "a lost generate answer is not resent",
            shape: Shape::Modern,
            sandbox: fast_sandbox,
            run: lost_generate,
        },
        Scenario {
            name: "an unreadable generate answer is reported, not resent",
            shape: Shape::Modern,
            sandbox: fast_sandbox,
            run: malformed_generate,
        },
        Scenario {
            name: "slow answers within the attempt timeout are awaited",
            shape: Shape::Legacy,
            sandbox: fast_sandbox,
            run: slow_answers,
        },
        Scenario {
            name: "a dropped generate is reported, not resent",
            shape: Shape::Modern,
            sandbox: fast_sandbox,
            run: dropped_generate,
        },
        Scenario {
            name: "a 429 with Retry-After on generate is retried once",
            shape: Shape::Modern,
            sandbox: fast_sandbox,
            run: rate_limited_generate,
        },
        Scenario {
            name: "generate_once answers a 429 with the error and sends nothing more",
            shape: Shape::Modern,
            sandbox: fast_sandbox,
            run: rate_limited_generate_once,
        },
        Scenario {
            name: "5xx, envelope 500 and drops on polls are retried",
            shape: Shape::Modern,
            sandbox: fast_sandbox,
            run: transient_poll_failures,
        },
        Scenario {
            name: "a cut download resumes with Range",
            shape: Shape::Modern,
            sandbox: fast_sandbox,
            run: cut_download,
        },
        Scenario {
            name: "a bad download URL is refused before any request",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: bad_download_url,
        },
        Scenario {
            name: "a bad refreshed link ends the download, naming both links",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: bad_refreshed_link,
        },
        Scenario {
            name: "a folder as target is refused before any request",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: folder_as_target,
        },
        Scenario {
            name: "progress events come at most every 100 ms",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: progress_is_throttled,
        },
        Scenario {
            name: "a second download to the same path is refused while the first runs",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: concurrent_downloads_to_one_path,
        },
        Scenario {
            name: "an existing file is kept unless overwriting is asked for",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: existing_file_is_kept,
        },
        Scenario {
            name: "an expired link is refreshed once",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: expired_link,
        },
        Scenario {
            name: "a failing poll ends the wait with the task id",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: failing_poll,
        },
        Scenario {
            name: "a wrong key is unauthorized and creates nothing",
            shape: Shape::Modern,
            sandbox: || frozen_sandbox().key("sk-the-only-valid-key"),
            run: wrong_key,
        },
        Scenario {
            name: "insufficient credits is a typed refusal, not retried",
            shape: Shape::Modern,
            sandbox: || frozen_sandbox().initial_credits(10),
            run: insufficient_credits,
        },
        Scenario {
            name: "invalid requests fail before sending",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: invalid_request,
        },
        Scenario {
            name: "a wait for a new task reads it first after the schedule's first delay",
            shape: Shape::Modern,
            sandbox: || frozen_sandbox().durations(Durations::uniform(Duration::ZERO)),
            run: a_new_task_is_read_after_the_first_delay,
        },
        Scenario {
            name: "a Quality-model hybrid wait follows the core's schedule for Quality",
            shape: Shape::Modern,
            sandbox: || frozen_sandbox().durations(Durations::uniform(Duration::ZERO)),
            run: quality_hybrid_wait,
        },
        Scenario {
            name: "a 4K hybrid wait ends on the job's 4K callback with one confirming request",
            shape: Shape::Modern,
            sandbox: || frozen_sandbox().hmac_key(HYBRID_HMAC_KEY),
            run: four_k_hybrid_wait,
        },
        Scenario {
            name: "a 1080p hybrid wait ends on a 1080p callback with one confirming request",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: hd_1080p_hybrid_wait,
        },
        Scenario {
            name: "an answer beyond max_response_bytes is an error naming the limit",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: oversized_answer,
        },
        Scenario {
            name: "an unreadable status answer is asked again, not the end of the wait",
            shape: Shape::Modern,
            sandbox: fast_sandbox,
            run: unreadable_status_answer_is_asked_again,
        },
        Scenario {
            name: "a redirect answering generate, extend or 4K is refused, naming the target",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: billable_redirects_are_refused_naming_the_target,
        },
        Scenario {
            name: "a read-only call follows a redirect on the API host, never to another",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: read_only_redirects_stay_on_the_api_host,
        },
        Scenario {
            name: "a wait for an existing task reads its state at once",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: a_wait_for_an_existing_task_reads_it_at_once,
        },
        Scenario {
            name: "an upgrade of a failed task ends at once with the API's message",
            shape: Shape::Modern,
            sandbox: frozen_sandbox,
            run: an_upgrade_of_a_failed_task_ends_at_once,
        },
        Scenario {
            name: "an early record is null is waited out inside the grace window",
            shape: Shape::Modern,
            sandbox: || frozen_sandbox().record_null_early(Duration::from_secs(5)),
            run: an_early_record_is_null_is_waited_out,
        },
        Scenario {
            name: "record is null after the grace window ends the wait",
            shape: Shape::Modern,
            sandbox: || frozen_sandbox().record_null_early(Duration::from_secs(3600)),
            run: record_is_null_after_the_window_ends_the_wait,
        },
    ]);
    rows.extend(uploads::rows());
    rows
}

/// Runs one scenario with the client `connect` builds; panics with the scenario's name.
pub(crate) async fn run_scenario(scenario: &Scenario, connect: Connect) {
    let sandbox = (scenario.sandbox)()
        .shape(scenario.shape)
        .start()
        .await
        .expect("sandbox starts");
    let mut setup = Setup::for_sandbox(sandbox.api_url());
    setup.upload_base_url = Some(sandbox.upload_url().to_owned());
    let events = Arc::new(Mutex::new(Vec::new()));
    let progress = Arc::new(tokio::sync::Notify::new());
    setup.observer = {
        let (events, progress) = (events.clone(), progress.clone());
        Observer::new(move |event: &Event| {
            if matches!(event, Event::DownloadProgress { .. }) {
                progress.notify_one();
            }
            events.lock().expect("events").push(event.clone());
        })
    };
    let ctx = Ctx {
        flows: connect(&setup),
        sandbox,
        dir: tempfile::tempdir().expect("temp dir"),
        shape: scenario.shape,
        connect,
        setup,
        events,
        progress,
    };
    (scenario.run)(&ctx).await;
    assert_eq!(
        ctx.sandbox.stats().file_auth_headers,
        Vec::<String>::new(),
        "the file host must never see an Authorization header"
    );
    assert_no_part_files(ctx.dir.path());
}

/// Runs the whole table (concurrently, each scenario on its own sandbox) and fails with the
/// names of the scenarios that failed.
pub(crate) async fn run_table(connect: Connect) {
    let mut set = tokio::task::JoinSet::new();
    let rows = Arc::new(table());
    for index in 0..rows.len() {
        let rows = rows.clone();
        set.spawn(async move {
            let started = std::time::Instant::now();
            run_scenario(&rows[index], connect).await;
            eprintln!(
                "scenario {:?} ({:?}) passed in {:?}",
                rows[index].name,
                rows[index].shape,
                started.elapsed()
            );
            index
        });
    }
    let mut passed = vec![false; rows.len()];
    while let Some(result) = set.join_next().await {
        if let Ok(index) = result {
            passed[index] = true;
        }
    }
    let failed: Vec<String> = rows
        .iter()
        .zip(&passed)
        .filter(|(_, ok)| !**ok)
        .map(|(row, _)| format!("{} ({:?})", row.name, row.shape))
        .collect();
    assert!(
        failed.is_empty(),
        "failed scenarios (see the panics above): {failed:#?}"
    );
}

/// A text-to-video request for the fast model.
pub(crate) fn text(prompt: &str) -> GenerateRequest {
    GenerateRequest::builder(prompt)
        .model(veo3_types::Model::Veo3Fast)
        .build()
        .expect("valid request")
}

/// Panics if `<path>.part` exists.
pub(crate) fn assert_no_part_file(path: &Path) {
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    assert!(
        !Path::new(&part).exists(),
        "{} was left behind",
        Path::new(&part).display()
    );
}

/// Panics if any `*.part` file is in `dir`.
pub(crate) fn assert_no_part_files(dir: &Path) {
    let parts: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "part"))
        .collect();
    assert!(parts.is_empty(), "partial files left: {parts:?}");
}

/// The bytes the file host serves at `url`, fetched by a plain client (no key).
pub(crate) async fn served(url: &str) -> Vec<u8> {
    let response = reqwest::get(url).await.expect("file host answers");
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response.bytes().await.expect("body").to_vec()
}

fn every_endpoint(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let flows = &ctx.flows;
        let sandbox = &ctx.sandbox;
        let before = flows.credits().await.expect("credits").0;
        assert_eq!(before, sandbox.credits(KEY));

        let created = flows.generate(text("A red fox")).await.expect("generate");
        let running = flows
            .record_info(created.task_id.clone())
            .await
            .expect("record-info");
        assert_eq!(running.task_id, created.task_id);
        assert_eq!(running.state, TaskState::Generating);
        assert!(running.video_urls().is_empty());

        assert!(sandbox.complete_now(&created.task_id));
        let done = flows
            .record_info(created.task_id.clone())
            .await
            .expect("record-info");
        assert_eq!(done.state, TaskState::Success);
        let url = done.video_urls().first().cloned().expect("a result URL");
        assert!(url.starts_with(sandbox.files_url()), "{url}");

        let first = flows
            .hd_1080p(created.task_id.clone(), None)
            .await
            .expect("1080p");
        assert!(!first.is_ready(), "1080p answers processing first");
        sandbox.advance(Duration::from_secs(600));
        let hd = flows
            .hd_1080p(created.task_id.clone(), Some(0))
            .await
            .expect("1080p")
            .ready()
            .expect("1080p ready after its duration");
        assert!(hd.result_url.starts_with(sandbox.files_url()));

        let request = Upgrade4kRequest::new(created.task_id.clone());
        let accepted = flows.upgrade_4k(request.clone()).await.expect("4k");
        assert!(!accepted.is_ready(), "the 4K job starts processing");
        sandbox.advance(Duration::from_secs(600));
        let four_k = flows
            .upgrade_4k(request)
            .await
            .expect("4k repeat")
            .ready()
            .expect("4K ready");
        assert!(!four_k.result_urls.is_empty());

        let extension = flows
            .extend(ExtendRequest::new(
                created.task_id.clone(),
                "and then it runs",
            ))
            .await
            .expect("extend");
        assert_ne!(extension.task_id, created.task_id);

        let link = flows.download_url(url.clone()).await.expect("download-url");
        assert!(link.starts_with(sandbox.files_url()), "{link}");
        assert_eq!(served(&link).await, served(&url).await);

        let after = flows.credits().await.expect("credits").0;
        assert!(after < before, "billable calls were charged");
        let stats = sandbox.stats();
        // Generate, the 4K job and the extension: one task each, each sent once.
        assert_eq!(stats.tasks_created_by(KEY), 3);
        for (route, n) in [
            (Route::Generate, 1),
            (Route::RecordInfo, 2),
            (Route::Hd1080p, 2),
            (Route::Upgrade4k, 2),
            (Route::Extend, 1),
            (Route::Credits, 2),
            (Route::DownloadUrl, 1),
        ] {
            assert_eq!(stats.requests(route), n, "requests on {route}");
        }
    })
}

fn generate_wait_download(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let record = ctx
            .flows
            .generate_and_wait(text("A lighthouse at dusk"))
            .await
            .expect("generate and wait");
        assert_eq!(record.state, TaskState::Success);
        let urls = record.video_urls();
        assert_eq!(urls.len(), 1, "{:?} shape: one video", ctx.shape);
        let file = ctx.download_and_verify(&urls[0], "video.mp4").await;
        assert_eq!(file, served(&urls[0]).await, "byte-identical");
        assert_eq!(&file[4..8], b"ftyp", "an MP4");
        let stats = ctx.sandbox.stats();
        assert_eq!(stats.tasks_created_by(KEY), 1);
        assert_eq!(stats.requests(Route::Generate), 1);
        assert!(stats.requests(Route::RecordInfo) >= 1);
    })
}

fn upgrade_1080p_flow(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let record = ctx
            .flows
            .generate_and_wait(text("A lighthouse at dusk"))
            .await
            .expect("generate and wait");
        let hd = ctx
            .flows
            .upgrade_1080p_and_wait(record.task_id.clone(), None)
            .await
            .expect("1080p");
        let file = ctx.download_and_verify(&hd.result_url, "hd.mp4").await;
        assert_eq!(file, served(&hd.result_url).await);
        let stats = ctx.sandbox.stats();
        assert!(
            stats.requests(Route::Hd1080p) >= 2,
            "processing, then ready"
        );
        assert_eq!(stats.tasks_created_by(KEY), 1, "1080p creates no task");
    })
}

fn upgrade_4k_flow(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let record = ctx
            .flows
            .generate_and_wait(text("A lighthouse at dusk"))
            .await
            .expect("generate and wait");
        let result = ctx
            .flows
            .upgrade_4k_and_wait(Upgrade4kRequest::new(record.task_id.clone()))
            .await
            .expect("4k");
        assert!(!result.result_urls.is_empty());
        ctx.download_and_verify(&result.result_urls[0], "4k.mp4")
            .await;
        let stats = ctx.sandbox.stats();
        assert_eq!(
            stats.tasks_created_by(KEY),
            2,
            "the generation and one 4K job"
        );
        assert!(
            stats.requests(Route::Upgrade4k) >= 2,
            "requested, then repeated"
        );
    })
}

fn extend_flow(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let record = ctx
            .flows
            .generate_and_wait(text("A lighthouse at dusk"))
            .await
            .expect("generate and wait");
        let extended = ctx
            .flows
            .extend_and_wait(ExtendRequest::new(
                record.task_id.clone(),
                "the storm comes",
            ))
            .await
            .expect("extend");
        assert_eq!(extended.state, TaskState::Success);
        assert_ne!(extended.task_id, record.task_id);
        let url = extended
            .video_urls()
            .first()
            .cloned()
            .expect("stitched video");
        ctx.download_and_verify(&url, "extended.mp4").await;
        let stats = ctx.sandbox.stats();
        assert_eq!(stats.tasks_created_by(KEY), 2);
        assert_eq!(stats.requests(Route::Extend), 1);
    })
}

fn wait_for_existing_task(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        // Submitted with one call, awaited with another (as after a restart).
        let created = ctx.flows.generate(text("A fox")).await.expect("generate");
        let record = ctx
            .flows
            .wait_for_task(created.task_id.clone())
            .await
            .expect("wait");
        assert_eq!(record.task_id, created.task_id);
        assert_eq!(record.state, TaskState::Success);
        assert_eq!(record.video_urls().len(), 1);
        let stats = ctx.sandbox.stats();
        assert_eq!(stats.tasks_created_by(KEY), 1);
        assert_eq!(stats.requests(Route::Generate), 1);
        assert!(stats.requests(Route::RecordInfo) >= 1);
    })
}

fn task_failure(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        ctx.sandbox
            .script_outcome(Route::Generate, Outcome::Moderation);
        let error = ctx
            .flows
            .generate_and_wait(text("Something flagged"))
            .await
            .expect_err("moderation fails the task");
        assert!(error.is_task_failed(), "{error}");
        assert_eq!(error.code(), Some(ApiCode::from_i64(400)));
        let task_id = error
            .task_id()
            .expect("the error names the task")
            .to_owned();
        assert!(error.to_string().contains(&task_id));
        assert_eq!(ctx.sandbox.stats().tasks_created_by(KEY), 1);
        // Downloading the failed task's video ends with the same failure, not "bad input".
        let error = ctx
            .flows
            .download_task_video(task_id.clone(), 0, ctx.path("flagged.mp4"))
            .await
            .expect_err("a failed task has no video");
        assert!(error.is_task_failed(), "{error}");
        assert_eq!(error.code(), Some(ApiCode::from_i64(400)));
        assert!(!ctx.path("flagged.mp4").exists());
    })
}

/// A generate whose answer never usefully arrives: the error says the outcome is unknown, the
/// request went out exactly once, and the sandbox created `tasks` tasks (1 when it processed
/// the request, 0 when the connection dropped first).
fn unknown_generate_outcome(ctx: &Ctx, fault: Fault, error: Error, tasks: u64) {
    assert!(error.is_outcome_unknown(), "{error}");
    assert!(!error.is_retryable(), "{error}");
    let stats = ctx.sandbox.stats();
    assert_eq!(stats.requests(Route::Generate), 1, "sent once, never again");
    assert_eq!(stats.tasks_created_by(KEY), tasks);
    assert_eq!(stats.faults(fault.name()), 1);
}

fn lost_generate(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        ctx.sandbox.script_fault(Route::Generate, Fault::Lost);
        let error = ctx
            .flows
            .generate_and_wait(text("A fox"))
            .await
            .expect_err("the answer was lost");
        // The task exists; the client never heard of it.
        unknown_generate_outcome(ctx, Fault::Lost, error, 1);
    })
}

fn malformed_generate(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        ctx.sandbox.script_fault(Route::Generate, Fault::Malformed);
        let error = ctx
            .flows
            .generate(text("A fox"))
            .await
            .expect_err("the answer is cut JSON");
        // Processed (and billed) but unreadable: the task exists, the client cannot know it.
        unknown_generate_outcome(ctx, Fault::Malformed, error, 1);
    })
}

fn slow_answers(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let slow = Fault::Latency(Duration::from_millis(50));
        ctx.sandbox.script_fault(Route::Generate, slow.clone());
        ctx.sandbox
            .script_faults(Route::RecordInfo, slow.clone(), 2);
        ctx.sandbox.script_fault(Route::Download, slow);
        let record = ctx
            .flows
            .generate_and_wait(text("A fox"))
            .await
            .expect("slow is not failed");
        let url = record.video_urls()[0].clone();
        ctx.download_and_verify(&url, "slow.mp4").await;
        let stats = ctx.sandbox.stats();
        assert_eq!(
            stats.requests(Route::Generate),
            1,
            "no retry of a slow answer"
        );
        assert_eq!(stats.tasks_created_by(KEY), 1);
        assert_eq!(
            stats.faults("latency"),
            3,
            "generate, the first poll, the download"
        );
    })
}

fn dropped_generate(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        ctx.sandbox.script_fault(Route::Generate, Fault::Drop);
        let error = ctx
            .flows
            .generate(text("A fox"))
            .await
            .expect_err("the connection was dropped");
        // The client cannot know whether the request arrived, so it must not resend it; this
        // one was dropped before processing.
        unknown_generate_outcome(ctx, Fault::Drop, error, 0);
    })
}

fn rate_limited_generate(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        ctx.sandbox
            .script_fault(Route::Generate, Fault::RateLimited(1));
        let record = ctx
            .flows
            .generate_and_wait(text("A fox"))
            .await
            .expect("429 is an explicit refusal: retried after Retry-After");
        assert_eq!(record.state, TaskState::Success);
        let stats = ctx.sandbox.stats();
        assert_eq!(stats.requests(Route::Generate), 2);
        assert_eq!(stats.tasks_created_by(KEY), 1);
        assert_eq!(stats.faults("429"), 1);
    })
}

fn rate_limited_generate_once(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        ctx.sandbox
            .script_fault(Route::Generate, Fault::RateLimited(1));
        let error = ctx
            .flows
            .generate_once(text("A fox"))
            .await
            .expect_err("the 429 is the answer: a caller pacing its own sends retries");
        assert!(error.is_rate_limited(), "{error}");
        assert!(!error.is_outcome_unknown(), "a 429 proves nothing was made");
        let stats = ctx.sandbox.stats();
        assert_eq!(stats.requests(Route::Generate), 1, "no retry");
        assert_eq!(stats.tasks_created_by(KEY), 0);
        // Without a fault, one call makes one task.
        let created = ctx.flows.generate_once(text("A fox")).await.unwrap();
        assert!(!created.task_id.is_empty());
        let stats = ctx.sandbox.stats();
        assert_eq!(stats.requests(Route::Generate), 2);
        assert_eq!(stats.tasks_created_by(KEY), 1);
    })
}

fn transient_poll_failures(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let sandbox = &ctx.sandbox;
        sandbox.script_fault(Route::RecordInfo, Fault::Http(503));
        sandbox.script_fault(Route::RecordInfo, Fault::Envelope(500));
        sandbox.script_fault(Route::RecordInfo, Fault::Drop);
        sandbox.script_fault(Route::Credits, Fault::Http(502));
        assert!(ctx.flows.credits().await.is_ok(), "credits retried");
        let record = ctx
            .flows
            .generate_and_wait(text("A fox"))
            .await
            .expect("polls are retried");
        assert_eq!(record.state, TaskState::Success);
        let stats = sandbox.stats();
        assert!(
            stats.requests(Route::RecordInfo) >= 4,
            "three failures, then answers"
        );
        assert_eq!(stats.requests(Route::Credits), 2);
        assert_eq!(stats.faults("http"), 2);
        assert_eq!(stats.faults("code"), 1);
        assert_eq!(stats.faults("drop"), 1);
        assert_eq!(stats.tasks_created_by(KEY), 1);
    })
}

fn cut_download(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let record = ctx
            .flows
            .generate_and_wait(text("A fox"))
            .await
            .expect("generate and wait");
        let url = record.video_urls()[0].clone();
        let before = ctx.sandbox.stats().requests(Route::Download);
        ctx.sandbox.script_faults(Route::Download, Fault::Cut, 2);
        let file = ctx.download_and_verify(&url, "cut.mp4").await;
        let stats = ctx.sandbox.stats();
        assert_eq!(
            stats.requests(Route::Download) - before,
            3,
            "cut, cut again, then the rest"
        );
        assert_eq!(stats.faults("cut"), 2);
        assert_eq!(file, served(&url).await, "byte-identical after resuming");
    })
}

fn expired_link(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let sandbox = &ctx.sandbox;
        let created = ctx.flows.generate(text("A fox")).await.expect("generate");
        assert!(sandbox.complete_now(&created.task_id));
        let record = ctx
            .flows
            .record_info(created.task_id.clone())
            .await
            .expect("record");
        let url = record.video_urls()[0].clone();
        sandbox.advance(Duration::from_secs(48 * 3600));
        let expired = reqwest::get(&url).await.expect("answer").status().as_u16();
        assert_eq!(expired, 403, "the result URL has expired");
        ctx.download_and_verify(&url, "refreshed.mp4").await;
        let stats = sandbox.stats();
        assert_eq!(stats.requests(Route::DownloadUrl), 1, "refreshed once");
    })
}

/// The error's text, for comparing both clients with the core's wording.
fn message(error: &Error) -> String {
    error.to_string()
}

fn bad_download_url(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let before = ctx.sandbox.stats().file_requests;
        for (url, says) in [
            (
                "ftp://files.example/a.mp4?token=s3cr3t",
                "cannot download ftp://files.example/a.mp4: only http and https URLs are supported, not \"ftp\"",
            ),
            (
                "not a url",
                "cannot download not a url: not an absolute URL",
            ),
            (
                "http:///a.mp4",
                "cannot download http:///a.mp4: it has no host",
            ),
            (
                "https://files.example/a b.mp4",
                "cannot download https://files.example/a b.mp4: it contains spaces or control characters",
            ),
        ] {
            let path = ctx.path("bad.mp4");
            let error = ctx
                .flows
                .download(url.to_owned(), path.clone())
                .await
                .expect_err(url);
            assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
            assert!(
                message(&error).contains(says),
                "{}: {:?} does not say {says:?}",
                ctx.flows.name(),
                message(&error)
            );
            assert!(!message(&error).contains("s3cr3t"));
            assert!(!path.exists());
        }
        assert_eq!(
            ctx.sandbox.stats().file_requests,
            before,
            "nothing was requested"
        );
    })
}

fn bad_refreshed_link(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let sandbox = &ctx.sandbox;
        let created = ctx.flows.generate(text("A fox")).await.expect("generate");
        assert!(sandbox.complete_now(&created.task_id));
        let record = ctx
            .flows
            .record_info(created.task_id.clone())
            .await
            .expect("record");
        let url = record.video_urls()[0].clone();
        sandbox.advance(Duration::from_secs(48 * 3600));
        sandbox.script_download_link("file:///etc/passwd");
        let before = sandbox.stats().file_requests;
        let path = ctx.path("refreshed.mp4");
        let error = ctx
            .flows
            .download(url.clone(), path.clone())
            .await
            .expect_err("a file: link is not followed");
        assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
        let says = format!(
            "the fresh link for {} that download-url returned is unusable (file:///etc/passwd): only http and https URLs are supported",
            veo3_core::download::redact_url(&url)
        );
        assert!(
            message(&error).contains(&says),
            "{}: {:?}",
            ctx.flows.name(),
            message(&error)
        );
        let stats = sandbox.stats();
        assert_eq!(stats.requests(Route::DownloadUrl), 1, "refreshed once");
        assert_eq!(
            stats.file_requests - before,
            1,
            "only the expired link was requested"
        );
        assert!(!path.exists());
    })
}

fn folder_as_target(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let url = ctx.sandbox.big_file_url(1000);
        let before = ctx.sandbox.stats().file_requests;
        let folder = ctx.path("folder");
        std::fs::create_dir(&folder).expect("folder");
        let error = ctx
            .flows
            .download(url.clone(), folder.clone())
            .await
            .expect_err("a folder is not a file");
        assert!(
            matches!(
                &error,
                Error::Target {
                    problem: TargetProblem::NotAFile,
                    ..
                }
            ),
            "{}: {error:?}",
            ctx.flows.name()
        );
        assert!(
            message(&error).contains("is a folder, not a file"),
            "{error}"
        );
        let slash = PathBuf::from(format!("{}/", ctx.path("newdir").display()));
        let error = ctx
            .flows
            .download(url, slash)
            .await
            .expect_err("a trailing slash names a folder");
        assert!(
            matches!(
                &error,
                Error::Target {
                    problem: TargetProblem::TrailingSlash,
                    ..
                }
            ),
            "{}: {error:?}",
            ctx.flows.name()
        );
        assert!(!ctx.path("newdir").exists() && !ctx.path("newdir.part").exists());
        assert_eq!(
            ctx.sandbox.stats().file_requests,
            before,
            "nothing was requested"
        );
    })
}

/// Checks a downloaded `/big` body of `len` bytes at `path`.
fn assert_big_file(path: &Path, len: u64) {
    let file = std::fs::read(path).expect("downloaded");
    assert_eq!(file.len() as u64, len, "{}", path.display());
    for (offset, byte) in file.iter().enumerate().step_by(4093) {
        assert_eq!(
            *byte,
            veo3_sandbox::big_file_byte(offset as u64),
            "byte {offset}"
        );
    }
}

fn progress_is_throttled(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let len = 8 << 20;
        let path = ctx.path("big.bin");
        let started = std::time::Instant::now();
        let bytes = ctx
            .flows
            .download(ctx.sandbox.big_file_url(len), path.clone())
            .await
            .expect("download");
        let elapsed = started.elapsed();
        assert_eq!(bytes, len);
        assert_big_file(&path, len);
        let events = ctx.events.lock().expect("events").clone();
        let progress: Vec<_> = events
            .iter()
            .filter_map(|event| match event {
                Event::DownloadProgress { bytes, .. } => Some(*bytes),
                _ => None,
            })
            .collect();
        let finished = events
            .iter()
            .filter(|event| matches!(event, Event::DownloadFinished { bytes, .. } if *bytes == len))
            .count();
        assert_eq!(finished, 1, "{}: one finish event", ctx.flows.name());
        assert_eq!(
            progress.last(),
            Some(&len),
            "the last progress is the whole file"
        );
        // One event at the start, at most one per 100 ms of the download, one at the end.
        let most = 2 + elapsed.as_millis() / ProgressMeter::EVERY.as_millis();
        assert!(
            progress.len() >= 2 && progress.len() as u128 <= most,
            "{}: {} progress events in {elapsed:?} (at most {most})",
            ctx.flows.name(),
            progress.len()
        );
    })
}

fn concurrent_downloads_to_one_path(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let len = 128 << 20;
        let url = ctx.sandbox.big_file_url(len);
        let path = ctx.path("shared.bin");
        let first = ctx.flows.download(url.clone(), path.clone());
        tokio::pin!(first);
        tokio::select! {
            biased;
            () = ctx.progress.notified() => {}
            result = &mut first => panic!("128 MiB arrived before any progress: {result:?}"),
        }
        let error = ctx
            .flows
            .download(url, path.clone())
            .await
            .expect_err("the second writer is refused");
        assert!(
            matches!(
                &error,
                Error::Target {
                    problem: TargetProblem::Busy { .. },
                    ..
                }
            ),
            "{}: {error:?}",
            ctx.flows.name()
        );
        assert!(
            message(&error).contains(&format!(
                "another download to {} is in progress",
                path.display()
            )),
            "{error}"
        );
        assert_eq!(first.await.expect("the first download completes"), len);
        assert_big_file(&path, len);
    })
}

fn existing_file_is_kept(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let path = ctx.path("earlier.mp4");
        std::fs::write(&path, b"an earlier, paid-for video").expect("write");
        let before = ctx.sandbox.stats().file_requests;
        let error = ctx
            .flows
            .download(ctx.sandbox.big_file_url(1000), path.clone())
            .await
            .expect_err("an existing file is not replaced");
        assert!(
            matches!(
                &error,
                Error::Target {
                    problem: TargetProblem::Exists,
                    ..
                }
            ),
            "{}: {error:?}",
            ctx.flows.name()
        );
        assert_eq!(
            std::fs::read(&path).expect("kept"),
            b"an earlier, paid-for video"
        );
        assert_eq!(
            ctx.sandbox.stats().file_requests,
            before,
            "nothing was requested"
        );
    })
}

fn failing_poll(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let created = ctx.flows.generate(text("A fox")).await.expect("generate");
        // A 404 envelope is not retryable: the wait ends on it, naming the task.
        ctx.sandbox
            .script_fault(Route::RecordInfo, Fault::Envelope(404));
        let error = ctx
            .flows
            .wait_for_task(created.task_id.clone())
            .await
            .expect_err("a 404 answer ends the wait");
        assert_eq!(error.task_id(), Some(created.task_id.as_str()), "{error}");
        assert_eq!(error.code(), Some(ApiCode::from_i64(404)));
        assert!(!error.is_outcome_unknown());
        assert_eq!(ctx.sandbox.stats().requests(Route::RecordInfo), 1);
        assert_eq!(ctx.sandbox.stats().tasks_created_by(KEY), 1);
    })
}

fn errors_name_the_task(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        const TASK: &str = "no-such-task";
        let flows = &ctx.flows;
        let results = [
            (
                Route::RecordInfo,
                flows.record_info(TASK.into()).await.err(),
            ),
            (
                Route::Hd1080p,
                flows.hd_1080p(TASK.into(), None).await.err(),
            ),
            (
                Route::Upgrade4k,
                flows.upgrade_4k(Upgrade4kRequest::new(TASK)).await.err(),
            ),
            (
                Route::Extend,
                flows.extend(ExtendRequest::new(TASK, "more")).await.err(),
            ),
        ];
        for (route, error) in results {
            let error = error.unwrap_or_else(|| panic!("{route}: an unknown task is refused"));
            let text = error.to_string();
            let endpoint = error.endpoint().expect("a call's error").name();
            let answer = error.message().expect("the API's message");
            assert_eq!(error.task_id(), Some(TASK), "{text}");
            for part in [endpoint, "for task no-such-task", answer] {
                assert!(
                    text.contains(part),
                    "{route}: {part:?} missing from {text:?}"
                );
            }
        }
        assert_eq!(ctx.sandbox.stats().tasks_created_by(KEY), 0);
    })
}

fn wrong_key(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let error = ctx
            .flows
            .generate_and_wait(text("A fox"))
            .await
            .expect_err("the key is not accepted");
        assert!(error.is_unauthorized(), "{error}");
        assert!(!error.to_string().contains(KEY));
        assert!(!format!("{error:?}").contains(KEY));
        let stats = ctx.sandbox.stats();
        assert_eq!(stats.tasks_created, 0);
        assert_eq!(stats.requests(Route::Generate), 1, "not retried");
    })
}

fn insufficient_credits(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let error = ctx
            .flows
            .generate_and_wait(text("A fox"))
            .await
            .expect_err("10 credits are not enough");
        assert_eq!(error.code(), Some(ApiCode::from_i64(402)), "{error}");
        assert!(!error.is_retryable());
        assert!(!error.is_outcome_unknown(), "an explicit refusal");
        let stats = ctx.sandbox.stats();
        assert_eq!(stats.requests(Route::Generate), 1);
        assert_eq!(stats.tasks_created, 0);
        assert_eq!(ctx.flows.credits().await.expect("credits").0, 10);
    })
}

fn invalid_request(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let mut request = text("A fox");
        request.prompt = "   ".into();
        let error = ctx
            .flows
            .generate_and_wait(request)
            .await
            .expect_err("an empty prompt is refused");
        assert!(matches!(error, Error::Validation(_)), "{error}");
        let error = ctx
            .flows
            .record_info(String::new())
            .await
            .expect_err("an empty task id is refused");
        assert!(matches!(error, Error::Validation(_)), "{error}");
        assert_eq!(ctx.sandbox.stats().requests(Route::Generate), 0);
        assert_eq!(ctx.sandbox.stats().requests(Route::RecordInfo), 0);
    })
}

/// The outcome of one flow of the fault mix.
#[derive(Debug)]
pub(crate) struct MixOutcome {
    /// The task id the client learned, if any.
    pub(crate) task_id: Option<String>,
    /// The file, or the error.
    pub(crate) result: Result<(PathBuf, String), Error>,
}

/// `flows` concurrent flows (generate, wait, download) under a fault mix: 5xx, envelope 500,
/// 429 with Retry-After, dropped connections, lost generate answers, cut downloads. Asserts
/// that each flow ends in a verified file or a typed error, that the sandbox created exactly
/// one task per flow that was submitted and none twice, that the file host saw no
/// Authorization header, and that no partial file is left where a flow succeeded.
pub(crate) async fn run_fault_mix(connect: Connect, flows: usize) {
    let plan: FaultPlan = "generate:lost=0.04,generate:drop=0.03,generate:5xx=0.03,\
                           generate:429@1=0.04,status:5xx=0.05,status:500=0.05,\
                           status:drop=0.03,status:429@0=0.02,download-url:5xx=0.05,\
                           download:cut=0.25,download:5xx=0.05"
        .parse()
        .expect("fault plan");
    let sandbox = Sandbox::builder()
        .time_scale(0.001)
        .seed(2026)
        .rate_limit(None)
        .durations(Durations::uniform(Duration::from_secs(30)))
        .faults(plan)
        .start()
        .await
        .expect("sandbox starts");
    let client: Arc<dyn Flows> = Arc::from(connect(&Setup::for_sandbox(sandbox.api_url())));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut set = tokio::task::JoinSet::new();
    for n in 0..flows {
        let client = client.clone();
        let path = dir.path().join(format!("flow-{n}.mp4"));
        set.spawn(async move {
            let record = match client
                .generate_and_wait(text(&format!("Scene number {n}")))
                .await
            {
                Ok(record) => record,
                Err(error) => {
                    return MixOutcome {
                        task_id: error.task_id().map(str::to_owned),
                        result: Err(error),
                    };
                }
            };
            let url = record.video_urls().first().cloned().unwrap_or_default();
            let result = client
                .download(url.clone(), path.clone())
                .await
                .map(|_| (path, url));
            MixOutcome {
                task_id: Some(record.task_id),
                result,
            }
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = set.join_next().await {
        outcomes.push(joined.expect("no flow panics"));
    }
    assert_eq!(outcomes.len(), flows);

    // Verify files against what the file host serves, without faults now.
    sandbox.set_faults(FaultPlan::new());
    let mut ok = 0;
    let mut unknown = 0;
    let mut known_ids = std::collections::HashSet::new();
    for outcome in &outcomes {
        if let Some(id) = &outcome.task_id {
            assert!(known_ids.insert(id.clone()), "task {id} seen by two flows");
        }
        match &outcome.result {
            Ok((path, url)) => {
                ok += 1;
                let file = std::fs::read(path).expect("finished file exists");
                assert_eq!(
                    file,
                    served(url).await,
                    "{} is byte-identical",
                    path.display()
                );
                assert_no_part_file(path);
            }
            Err(error) => {
                if error.is_outcome_unknown() {
                    unknown += 1;
                    assert!(outcome.task_id.is_none());
                }
                // Typed, named, and free of the key.
                assert!(!error.to_string().contains(KEY));
                assert!(
                    error.endpoint().is_some() || error.task_id().is_some(),
                    "an error says which endpoint or task: {error}"
                );
            }
        }
    }
    let stats = sandbox.stats();
    // Each created task is either known to exactly one flow or is the one task of a flow
    // whose generate answer was lost: no flow created two.
    assert_eq!(
        stats.tasks_created,
        known_ids.len() as u64 + stats.faults("lost"),
        "tasks created = tasks the client knows + lost answers; stats: {stats:?}"
    );
    assert!(unknown as u64 >= stats.faults("lost"));
    assert!(stats.tasks_created <= flows as u64);
    assert_eq!(stats.file_auth_headers, Vec::<String>::new());
    assert!(stats.faults("cut") > 0, "the mix cut downloads: {stats:?}");
    assert!(
        stats.faults("429") > 0 && stats.faults("lost") > 0,
        "{stats:?}"
    );
    assert!(
        ok >= flows * 3 / 4,
        "most flows end in a file ({ok} of {flows}); stats: {stats:?}"
    );
}

/// The client under test on simulated time with the core's preset schedules, and the time
/// into its wait of each read it makes (`Event::Polled`).
fn on_simulated_time(ctx: &Ctx) -> (Box<dyn Flows>, Arc<Mutex<Vec<Duration>>>) {
    let polls = Arc::new(Mutex::new(Vec::new()));
    let seen = polls.clone();
    let setup = Setup {
        clock: Some(SimulatedClock::new()),
        preset_schedules: true,
        observer: Observer::new(move |event| {
            if let Event::Polled { elapsed, .. } = event {
                seen.lock().expect("not poisoned").push(*elapsed);
            }
        }),
        ..ctx.setup.clone()
    };
    ((ctx.connect)(&setup), polls)
}

/// A hybrid wait for a Quality generation follows the schedule the core chooses for it (the
/// Quality preset made a safety net) in both clients: with no callback coming, the first and
/// only poll is at that schedule's first delay, on simulated time. The async client once
/// chose the hybrid schedule without the model.
fn quality_hybrid_wait(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let (flows, polls) = on_simulated_time(ctx);
        let request = GenerateRequest::builder("A slow crane shot over a misty harbour")
            .model(veo3_types::Model::Veo3)
            .build()
            .expect("valid request");
        let record = flows
            .generate_and_wait_hybrid(request, Inbox::new())
            .await
            .unwrap_or_else(|e| panic!("{}: hybrid wait failed: {e}", flows.name()));
        assert_eq!(record.state, TaskState::Success);
        let chosen = Schedules::default().choose(
            Stage::Generation,
            Some(&veo3_types::Model::Veo3),
            &WaitOptions::default(),
            WaitMode::Hybrid,
        );
        assert_eq!(
            *polls.lock().expect("not poisoned"),
            [chosen.first_delay],
            "{}: one poll, at the Quality safety net's first delay",
            flows.name()
        );
    })
}

/// `wait_for_new_task` (what a caller that records the id between the submit and the wait
/// uses, such as the batch runner) makes its first read at the schedule's first delay, on
/// simulated time; `wait_for_task` and `wait_for_existing_task_hybrid` (a resumed batch's
/// waits) read the same finished task at once.
fn a_new_task_is_read_after_the_first_delay(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let (flows, polls) = on_simulated_time(ctx);
        let created = flows.generate(text("A fox")).await.expect("generate");
        let record = flows
            .wait_for_new_task(created.task_id.clone())
            .await
            .unwrap_or_else(|e| panic!("{}: wait failed: {e}", flows.name()));
        assert_eq!(record.state, TaskState::Success);
        let chosen = Schedules::default().choose(
            Stage::Generation,
            None,
            &WaitOptions::default(),
            WaitMode::Polling,
        );
        assert_eq!(
            std::mem::take(&mut *polls.lock().expect("not poisoned")),
            [chosen.first_delay],
            "{}: one read, at the first delay",
            flows.name()
        );
        flows
            .wait_for_task(created.task_id.clone())
            .await
            .expect("wait");
        assert_eq!(
            *polls.lock().expect("not poisoned"),
            [Duration::ZERO],
            "{}: an existing task is read at once",
            flows.name()
        );
        // A hybrid wait for the same task, whose callback nobody received: read at once
        // too, not at the safety net's first delay.
        polls.lock().expect("not poisoned").clear();
        flows
            .wait_for_existing_task_hybrid(created.task_id, Inbox::new())
            .await
            .expect("hybrid wait");
        assert_eq!(
            *polls.lock().expect("not poisoned"),
            [Duration::ZERO],
            "{}: an existing task is read at once by a hybrid wait",
            flows.name()
        );
        assert_eq!(ctx.sandbox.stats().requests(Route::RecordInfo), 3);
    })
}

/// The sandbox's webhook key in the hybrid upgrade rows, and the receiver's.
const HYBRID_HMAC_KEY: &str = "scenario_webhook_hmac_key_0123456789";

/// A safety net no scenario waits out: a hybrid wait under it ends only on a callback.
fn ten_minute_safety_net() -> WaitOptions {
    WaitOptions::default().schedule(PollSchedule::new(
        Duration::from_secs(600),
        Duration::from_secs(600),
        Duration::from_secs(1800),
    ))
}

/// A finished generation on a frozen sandbox, its id.
async fn finished_task(ctx: &Ctx) -> String {
    let task_id = ctx
        .flows
        .generate(text("A lighthouse in a storm"))
        .await
        .unwrap_or_else(|e| panic!("{}: generate failed: {e}", ctx.flows.name()))
        .task_id;
    assert!(ctx.sandbox.complete_now(&task_id));
    task_id
}

/// Waits (without sleeping) until the sandbox has served `count` requests on `route`.
async fn requests_reach(ctx: &Ctx, route: Route, count: u64) {
    let reached = ctx
        .sandbox
        .wait_until(Duration::from_secs(30), |stats| {
            stats.requests(route) >= count
        })
        .await;
    assert!(
        reached,
        "{}: {route:?} never reached {count}",
        ctx.flows.name()
    );
}

/// A 4K hybrid wait, with a 10-minute safety net, ends when the job's own 4K callback (signed,
/// carrying the source task's id, through a `veo3-webhook` receiver) arrives, with exactly one
/// confirming request (the repeat that answers with the URLs). The source's generation
/// callback, kept in the same inbox under the same id, does not end it: callbacks are told
/// apart by kind.
fn four_k_hybrid_wait(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let source = finished_task(ctx).await;
        let key = veo3_webhook::WebhookKey::new(HYBRID_HMAC_KEY).expect("a key");
        let receiver = veo3_webhook::Receiver::bind(
            "127.0.0.1:0",
            veo3_webhook::Config::new(veo3_webhook::Verifier::new(key)),
        )
        .await
        .expect("the receiver binds");
        let inbox = receiver.inbox();
        let body = serde_json::json!({"code": 200, "msg": "Veo3.1 video generated successfully.",
            "data": {"taskId": source, "info": {"resultUrls": ["https://f.example/v.mp4"], "resolution": "720p"}}});
        let stale = veo3_types::Callback::from_slice(body.to_string().as_bytes()).expect("body");
        inbox.deliver(veo3_core::webhook::VerifiedCallback::new(&source, stale));
        let request = Upgrade4kRequest::new(&source).call_back_url(receiver.url("/veo3/4k"));
        let wait =
            ctx.flows
                .upgrade_4k_and_wait_hybrid(request, inbox.clone(), ten_minute_safety_net());
        let finish = async {
            requests_reach(ctx, Route::Upgrade4k, 1).await;
            // The 4K job finishes now; the sandbox posts its 4K callback to the receiver.
            assert!(ctx.sandbox.complete_now(&source));
        };
        let (result, ()) = tokio::join!(wait, finish);
        let result = result.unwrap_or_else(|e| panic!("{}: 4K hybrid wait: {e}", ctx.flows.name()));
        assert!(
            result
                .result_urls
                .first()
                .is_some_and(|u| u.ends_with(".mp4")),
            "{}: {result:?}",
            ctx.flows.name()
        );
        let stats = ctx.sandbox.stats();
        assert_eq!(
            stats.requests(Route::Upgrade4k),
            2,
            "{}: the request and exactly one confirming repeat",
            ctx.flows.name()
        );
        assert_eq!(stats.requests(Route::RecordInfo), 0, "{}", ctx.flows.name());
        assert!(
            inbox
                .try_take_target(&source, veo3_core::WaitTarget::Task)
                .is_some(),
            "{}: the source's own callback was not consumed by the 4K wait",
            ctx.flows.name()
        );
        receiver.shutdown().await.expect("the receiver stops");
    })
}

/// A 1080p hybrid wait, with a 10-minute safety net: the first request starts production,
/// and a 1080p callback for the task (delivered into the inbox as a receiver would; kie
/// documents none for this endpoint) ends it with exactly one confirming request. A 4K
/// callback for the same task, kept in the inbox, does not.
fn hd_1080p_hybrid_wait(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let source = finished_task(ctx).await;
        let inbox = Inbox::new();
        let callback = |body: serde_json::Value| {
            let decoded =
                veo3_types::Callback::from_slice(body.to_string().as_bytes()).expect("body");
            veo3_core::webhook::VerifiedCallback::new(&source, decoded)
        };
        inbox.deliver(callback(serde_json::json!({"code": 200, "msg": "4K Video generated successfully.",
            "data": {"taskId": source, "info": {"resultUrls": ["https://f.example/4k.mp4"], "imageUrls": ["https://f.example/4k.jpg"]}}})));
        let wait = ctx.flows.upgrade_1080p_and_wait_hybrid(
            source.clone(),
            Some(0),
            inbox.clone(),
            ten_minute_safety_net(),
        );
        let finish = async {
            requests_reach(ctx, Route::Hd1080p, 1).await;
            assert!(ctx.sandbox.complete_now(&source));
            inbox.deliver(callback(serde_json::json!({"code": 200, "msg": "Veo3.1 video generated successfully.",
                "data": {"taskId": source, "info": {"resultUrls": ["https://f.example/1080p.mp4"], "resolution": "1080p"}}})));
        };
        let (result, ()) = tokio::join!(wait, finish);
        let result =
            result.unwrap_or_else(|e| panic!("{}: 1080p hybrid wait: {e}", ctx.flows.name()));
        assert!(result.result_url.ends_with(".mp4"), "{result:?}");
        assert_eq!(
            ctx.sandbox.stats().requests(Route::Hd1080p),
            2,
            "{}: the request and exactly one confirming request",
            ctx.flows.name()
        );
        assert_eq!(
            inbox.kept_len(),
            1,
            "{}: the 4K callback stays",
            ctx.flows.name()
        );
    })
}

/// An answer beyond the client's `max_response_bytes` is one error in both clients: it names
/// the limit, keeps the task id, and is retried or not like any other unreadable answer of a
/// read (the sandbox echoes the prompt in record-info, so a long prompt makes a long record).
fn oversized_answer(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let limit = veo3_core::settings::MIN_RESPONSE_BYTES;
        let setup = Setup {
            max_response_bytes: Some(limit),
            ..ctx.setup.clone()
        };
        let flows = (ctx.connect)(&setup);
        let created = flows
            .generate(text(&"a very long and detailed prompt ".repeat(60)))
            .await
            .unwrap_or_else(|e| panic!("{}: a short answer is read: {e}", flows.name()));
        let error = flows
            .record_info(created.task_id.clone())
            .await
            .expect_err("the record is longer than the limit");
        let name = flows.name();
        // A read-only call asks again after an unreadable answer, so the limit may be named
        // by the last failure inside the error that gave up.
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        assert!(
            text.contains(&format!("exceeded the {limit}-byte limit")),
            "{name}: {text}"
        );
        assert!(!error.is_outcome_unknown(), "{name}: {error}");
        assert_eq!(error.task_id(), Some(created.task_id.as_str()), "{name}");
        let reads = ctx.sandbox.stats().requests(Route::RecordInfo);
        if error.is_retryable() {
            assert!(reads > 1, "{name}: a retryable read is retried");
        } else {
            assert_eq!(reads, 1, "{name}: a final error is not retried");
        }
    })
}

fn unreadable_status_answer_is_asked_again(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let sandbox = &ctx.sandbox;
        let created = ctx.flows.generate(text("A fox")).await.expect("generate");
        // Cut JSON, then a proxy's HTML page in an HTTP 200: both read-only, both asked again.
        sandbox.script_fault(Route::RecordInfo, Fault::Malformed);
        sandbox.script_fault(Route::RecordInfo, Fault::Http(200));
        let record = ctx
            .flows
            .wait_for_task(created.task_id.clone())
            .await
            .expect("an unreadable answer does not end the wait");
        assert_eq!(record.state, TaskState::Success);
        let stats = sandbox.stats();
        assert_eq!(stats.faults("malformed"), 1);
        assert_eq!(stats.faults("http"), 1);
        assert!(stats.requests(Route::RecordInfo) >= 3);
        assert_eq!(stats.tasks_created_by(KEY), 1);
    })
}

/// Asserts that `error` refuses a redirect to a target containing `target`.
#[track_caller]
fn assert_redirect_refused(error: &Error, target: &str) {
    let text = error.to_string();
    assert!(matches!(error, Error::Redirected { .. }), "{text}");
    assert!(text.contains(target), "the target is named: {text}");
    assert!(
        !error.is_retryable() && !error.is_outcome_unknown(),
        "{text}"
    );
}

fn billable_redirects_are_refused_naming_the_target(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let sandbox = &ctx.sandbox;
        let flows = &ctx.flows;
        // The redirect points at the very same URL: a client that followed it would send
        // the billable body again and create (and bill) a task.
        let redirect = |status| Fault::Redirect { status, to: None };
        sandbox.script_fault(Route::Generate, redirect(307));
        let error = flows.generate(text("A fox")).await.expect_err("refused");
        assert_redirect_refused(&error, "/api/v1/veo/generate");
        assert_eq!(sandbox.stats().tasks_created_by(KEY), 0);

        let created = flows.generate(text("A fox")).await.expect("generate");
        assert!(sandbox.complete_now(&created.task_id));
        sandbox.script_fault(Route::Extend, redirect(308));
        let extend = ExtendRequest::new(created.task_id.clone(), "and then");
        let error = flows.extend(extend).await.expect_err("refused");
        assert_redirect_refused(&error, "/api/v1/veo/extend");
        sandbox.script_fault(Route::Upgrade4k, redirect(302));
        let error = flows
            .upgrade_4k(Upgrade4kRequest::new(created.task_id.clone()))
            .await
            .expect_err("refused");
        assert_redirect_refused(&error, "/api/v1/veo/get-4k-video");

        let stats = sandbox.stats();
        assert_eq!(stats.requests(Route::Generate), 2, "each sent once");
        assert_eq!(stats.requests(Route::Extend), 1);
        assert_eq!(stats.requests(Route::Upgrade4k), 1);
        assert_eq!(
            stats.tasks_created_by(KEY),
            1,
            "only the unredirected generate"
        );
        assert_eq!(stats.faults("redirect"), 3);
    })
}

fn read_only_redirects_stay_on_the_api_host(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let sandbox = &ctx.sandbox;
        let created = ctx.flows.generate(text("A fox")).await.expect("generate");
        sandbox.script_fault(
            Route::RecordInfo,
            Fault::Redirect {
                status: 307,
                to: None,
            },
        );
        let record = ctx
            .flows
            .record_info(created.task_id.clone())
            .await
            .expect("a redirect on the API host is followed");
        assert_eq!(record.task_id, created.task_id);
        assert_eq!(sandbox.stats().requests(Route::RecordInfo), 2);

        // Another host (the file host: another port) never receives the request, or the key.
        let elsewhere = format!("{}/api/v1/chat/credit", sandbox.files_url());
        sandbox.script_fault(
            Route::Credits,
            Fault::Redirect {
                status: 302,
                to: Some(elsewhere.clone()),
            },
        );
        let error = ctx.flows.credits().await.expect_err("not followed");
        assert_redirect_refused(&error, &elsewhere);
        assert!(error.to_string().contains("off the API's host"), "{error}");
        let stats = sandbox.stats();
        assert_eq!(stats.requests(Route::Credits), 1);
        assert_eq!(stats.file_requests, 0, "nothing reached the other host");
    })
}

fn a_wait_for_an_existing_task_reads_it_at_once(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let sandbox = &ctx.sandbox;
        let created = ctx.flows.generate(text("A fox")).await.expect("generate");
        assert!(sandbox.complete_now(&created.task_id));
        // The generation preset's first delay (90 s): only a read made at once answers within
        // the bound (a generous one for a loopback read, and shorter than that delay).
        let options = WaitOptions::default()
            .first_delay(Duration::from_secs(90))
            .timeout(Duration::from_secs(180));
        let wait = ctx
            .flows
            .wait_for_task_with(created.task_id.clone(), options);
        let record = tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("the finished task is read at once, not after the first delay")
            .expect("wait");
        assert_eq!(record.state, TaskState::Success);
        assert_eq!(sandbox.stats().requests(Route::RecordInfo), 1);
    })
}

fn an_upgrade_of_a_failed_task_ends_at_once(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let sandbox = &ctx.sandbox;
        sandbox.script_outcome(Route::Generate, Outcome::GenerationFailed);
        let created = ctx.flows.generate(text("A fox")).await.expect("generate");
        assert!(sandbox.complete_now(&created.task_id));
        let error = ctx
            .flows
            .upgrade_1080p_and_wait(created.task_id.clone(), None)
            .await
            .expect_err("a failed task has no 1080p version");
        assert_eq!(error.code(), Some(ApiCode::Unprocessable), "{error}");
        assert!(
            error.to_string().contains("record status is not success"),
            "the API's message: {error}"
        );
        let error = ctx
            .flows
            .upgrade_4k_and_wait(Upgrade4kRequest::new(created.task_id.clone()))
            .await
            .expect_err("nor a 4K one");
        assert_eq!(error.code(), Some(ApiCode::Unprocessable), "{error}");
        let stats = sandbox.stats();
        assert_eq!(
            stats.requests(Route::Hd1080p),
            1,
            "a definite refusal is not retried"
        );
        assert_eq!(stats.requests(Route::Upgrade4k), 1);
        assert_eq!(
            stats.requests(Route::RecordInfo),
            1,
            "one read of the source task"
        );
    })
}

/// Waits (without sleeping) until the sandbox has answered `count` reads with its
/// `record-null-early` fault, then makes the newest task visible (the service clock past the
/// fault's window) and finished.
async fn reveal_newest_task_after(ctx: &Ctx, count: u64) {
    let reached = ctx
        .sandbox
        .wait_until(Duration::from_secs(30), |stats| {
            stats.faults("record-null-early") >= count
        })
        .await;
    assert!(
        reached,
        "{}: no read reached the early window",
        ctx.flows.name()
    );
    ctx.sandbox.advance(Duration::from_secs(10));
    let newest = ctx.sandbox.tasks().pop().expect("a task").task_id;
    assert!(ctx.sandbox.complete_now(&newest));
}

/// A task record-info calls "record is null" for a while after its creation (the sandbox's
/// `record-null-early` fault): a wait after the client's own submission, and a wait for an
/// existing task whose age is given (`created_ago`, as a journal knows it), poll through it
/// and finish; a wait for an existing task of unknown age ends on it, as before. Every
/// generate carried `enableTranslation`.
fn an_early_record_is_null_is_waited_out(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let name = ctx.flows.name();
        let (record, ()) = tokio::join!(
            ctx.flows.generate_and_wait(text("A fox on a frozen lake")),
            reveal_newest_task_after(ctx, 2)
        );
        let record = record.unwrap_or_else(|e| panic!("{name}: the fresh wait failed: {e}"));
        assert_eq!(record.state, TaskState::Success);

        let created = ctx.flows.generate(text("A heron")).await.expect("generate");
        let seen = ctx.sandbox.stats().faults("record-null-early");
        let (record, ()) = tokio::join!(
            ctx.flows.wait_for_task_with(
                created.task_id.clone(),
                WaitOptions::default().created_ago(Duration::ZERO)
            ),
            reveal_newest_task_after(ctx, seen + 2)
        );
        let record = record.unwrap_or_else(|e| panic!("{name}: the aged wait failed: {e}"));
        assert_eq!(record.task_id, created.task_id);

        let unknown = ctx.flows.generate(text("An owl")).await.expect("generate");
        let error = ctx
            .flows
            .wait_for_task(unknown.task_id.clone())
            .await
            .expect_err("no grace for a task of unknown age");
        let Error::WaitFailed { cause, polls, .. } = &error else {
            panic!("{name}: not a failed wait: {error}");
        };
        assert!(veo3_core::is_record_null(cause), "{name}: {error}");
        assert_eq!(*polls, 1, "{name}: ended on the first read");

        let tasks = ctx.sandbox.tasks();
        assert_eq!(tasks.len(), 3, "{name}: one task per generate");
        assert!(
            tasks.iter().all(|t| t.enable_translation == Some(true)),
            "{name}: enableTranslation sent: {tasks:?}"
        );
    })
}

/// The same answer past the window ends the wait, on simulated time with the core's preset
/// schedules: an existing task 60 s old is read at once (inside the 90 s window) and again
/// at the preset's first delay (outside); a fresh wait's first read at 90 s is the window's
/// last instant, its second (110 s) is past it.
fn record_is_null_after_the_window_ends_the_wait(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let (flows, polls) = on_simulated_time(ctx);
        let name = flows.name();
        let created = flows.generate(text("A crane")).await.expect("generate");
        let error = flows
            .wait_for_task_with(
                created.task_id.clone(),
                WaitOptions::default().created_ago(Duration::from_secs(60)),
            )
            .await
            .expect_err("record is null past the window");
        let Error::WaitFailed {
            cause, polls: made, ..
        } = &error
        else {
            panic!("{name}: not a failed wait: {error}");
        };
        assert!(veo3_core::is_record_null(cause), "{name}: {error}");
        assert_eq!(*made, 2, "{name}: {error}");
        assert_eq!(
            *polls.lock().expect("not poisoned"),
            [Duration::ZERO],
            "{name}"
        );

        polls.lock().expect("not poisoned").clear();
        let error = flows
            .generate_and_wait(text("A crane at dusk"))
            .await
            .expect_err("record is null past the window");
        let Error::WaitFailed {
            cause, polls: made, ..
        } = &error
        else {
            panic!("{name}: not a failed wait: {error}");
        };
        assert!(veo3_core::is_record_null(cause), "{name}: {error}");
        assert_eq!(*made, 2, "{name}: {error}");
        assert_eq!(
            *polls.lock().expect("not poisoned"),
            [Duration::from_secs(90)],
            "{name}: the read at the window's last instant was not visible yet"
        );
        assert_eq!(ctx.sandbox.stats().requests(Route::RecordInfo), 4, "{name}");
        assert_eq!(ctx.sandbox.stats().faults("record-null-early"), 4, "{name}");
    })
}
