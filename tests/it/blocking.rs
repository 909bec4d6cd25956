//! Integration tests: the blocking client against the sandbox over loopback HTTP.
//!
//! The shared scenario table and fault mix (`support::scenarios`) run here through
//! [`BlockingFlows`] (each call in `spawn_blocking`), with the same assertions as for the
//! async client. The tests before it cover what is specific to this client.
//!
//! In those, the sandbox runs on its own runtime in a background thread (`start_in_background`), so the
//! client can be called from plain tests and from inside `#[tokio::test]`s of both flavours.
//! Waits run on a [`SimulatedClock`]: the client never really sleeps, and an observer moves
//! the sandbox's frozen clock whenever a poll sees unfinished work, so nothing here depends on
//! real timing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use veo3_blocking::{
    Client, Clock, Credits, DownloadPolicy, Error, Event, ExtendRequest, GenerateRequest,
    Hd1080pResult, Model, Observer, PollStatus, RetryPolicy, SimulatedClock, TaskCreated,
    TaskRecord, TaskState, Upgrade4kRequest, Upgrade4kResult, UpgradeStatus, WaitOptions,
};
use veo3_sandbox::{Fault, Outcome, Route, Sandbox, SandboxBuilder, SandboxHandle, Shape};
use veo3_types::{GenerateWithImages, UploadOptions, UploadedFile};

use crate::support::cargo_tree;
use crate::support::scenarios::{self, BoxFuture, Flows, Setup};

const KEY: &str = "sk-blocking-test-key-0001";

/// A frozen-clock sandbox accepting [`KEY`].
fn frozen() -> SandboxBuilder {
    Sandbox::builder().key(KEY).time_scale(0.0).seed(7)
}

/// A sandbox, and a blocking client on simulated time whose observer records every event and
/// moves the sandbox's clock on whenever a poll sees unfinished work.
struct World {
    sandbox: Arc<SandboxHandle>,
    client: Client,
    clock: SimulatedClock,
    events: Arc<Mutex<Vec<Event>>>,
}

impl World {
    fn start(builder: SandboxBuilder) -> Self {
        Self::with_client(builder, |builder| builder)
    }

    fn with_client(
        builder: SandboxBuilder,
        configure: impl FnOnce(veo3_blocking::ClientBuilder) -> veo3_blocking::ClientBuilder,
    ) -> Self {
        let sandbox = Arc::new(builder.start_in_background().expect("sandbox starts"));
        let clock = SimulatedClock::new();
        let events = Arc::new(Mutex::new(Vec::new()));
        let (log, world) = (events.clone(), sandbox.clone());
        let observer = Observer::new(move |event: &Event| {
            log.lock().expect("events").push(event.clone());
            if matches!(
                event,
                Event::Polled {
                    status: PollStatus::Task(TaskState::Generating) | PollStatus::Processing { .. },
                    ..
                }
            ) {
                world.advance(Duration::from_secs(600));
            }
        });
        let builder = Client::builder()
            .api_key(KEY)
            .base_url(sandbox.api_url())
            .clock(Arc::new(clock.clone()))
            .sleeper(Arc::new(clock.clone()))
            .random(|| 0)
            .observer(observer);
        let client = configure(builder).build().expect("client");
        Self {
            sandbox,
            client,
            clock,
            events,
        }
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().expect("events").clone()
    }
}

fn fox() -> GenerateRequest {
    GenerateRequest::builder("A red fox trotting through fresh snow at dawn")
        .model(Model::Veo3Fast)
        .build()
        .expect("valid request")
}

/// The bytes at `url`, fetched with a plain HTTP client (the reference for byte identity).
fn plain_fetch(url: &str) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let response = reqwest::get(url).await.expect("fetch");
        assert_eq!(response.status().as_u16(), 200);
        response.bytes().await.expect("body").to_vec()
    })
}

#[test]
fn every_flow_runs_on_simulated_time_in_both_shapes() {
    for shape in [Shape::Modern, Shape::Legacy] {
        let world = World::start(frozen().shape(shape));
        let (client, sandbox) = (&world.client, &world.sandbox);
        let dir = tempfile::tempdir().expect("tempdir");

        let before = client.credits().expect("credits").0;
        assert_eq!(before, sandbox.credits(KEY), "{shape:?}");

        let record = client
            .generate_and_wait(&fox(), &WaitOptions::default())
            .expect("generated");
        assert_eq!(record.state, TaskState::Success, "{shape:?}");
        assert_eq!(record.video_urls().len(), 1, "{shape:?}");
        let task_id = record.task_id.clone();
        assert_eq!(
            client.record_info(&task_id).expect("record").video_urls(),
            record.video_urls()
        );

        let hd = client
            .upgrade_1080p_and_wait(&task_id, None, &WaitOptions::default())
            .expect("1080p");
        assert!(hd.result_url.starts_with(sandbox.files_url()), "{shape:?}");

        let uhd = client
            .upgrade_4k_and_wait(&Upgrade4kRequest::new(&task_id), &WaitOptions::default())
            .expect("4k");
        assert!(uhd.is_ready(), "{shape:?}");

        let extended = client
            .extend_and_wait(
                &ExtendRequest::new(&task_id, "The fox runs into the forest"),
                &WaitOptions::default(),
            )
            .expect("extended");
        assert_eq!(extended.state, TaskState::Success);
        assert!(!extended.video_urls().is_empty());

        let link = client
            .download_url(&record.video_urls()[0])
            .expect("download link");
        let saved = client
            .download(&link, dir.path().join("fox.mp4"))
            .expect("downloaded");
        let on_disk = std::fs::read(&saved.path).expect("file");
        assert_eq!(on_disk.len() as u64, saved.bytes);
        assert_eq!(on_disk, plain_fetch(&link), "{shape:?}: byte-identical");

        let hd_saved = client
            .download(&hd.result_url, dir.path().join("fox-1080p.mp4"))
            .expect("1080p downloaded");
        assert_eq!(
            std::fs::read(&hd_saved.path).expect("file"),
            plain_fetch(&hd.result_url)
        );
        let video = client
            .download_task_video(&extended.task_id, 0, dir.path().join("extended.mp4"))
            .expect("task video");
        assert!(video.bytes > 0);

        let stats = sandbox.stats();
        assert!(
            stats.file_auth_headers.is_empty(),
            "{:?}",
            stats.file_auth_headers
        );
        assert_eq!(stats.requests(Route::Generate), 1);
        assert_eq!(stats.requests(Route::Extend), 1);
        assert!(client.credits().expect("credits").0 < before);
        let submitted = world
            .events()
            .iter()
            .filter(|event| matches!(event, Event::Submitted { .. }))
            .count();
        assert_eq!(
            submitted, 3,
            "generate, 4K and extend each report their task"
        );
        assert!(
            !dir.path().read_dir().expect("dir").any(|entry| entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".part")),
            "no partial file is left behind"
        );
    }
}

#[test]
fn reads_are_retried_through_server_errors_and_rate_limits() {
    let world = World::start(frozen());
    world
        .sandbox
        .script_faults(Route::Credits, Fault::Http(503), 2);
    world
        .sandbox
        .script_fault(Route::Credits, Fault::RateLimited(2));
    assert!(world.client.credits().is_ok());
    assert_eq!(world.sandbox.stats().requests(Route::Credits), 4);
    let retries: Vec<Duration> = world
        .events()
        .iter()
        .filter_map(|event| match event {
            Event::Retrying { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 3);
    assert_eq!(
        retries[2],
        Duration::from_secs(2),
        "Retry-After is honoured"
    );
    assert_eq!(
        world.clock.total_slept(),
        Duration::from_secs(2),
        "no real sleeping"
    );
}

#[test]
fn a_failed_task_reports_its_own_code_and_a_wait_ends_at_its_deadline() {
    let world = World::start(frozen());
    world
        .sandbox
        .script_outcome(Route::Generate, Outcome::Moderation);
    let error = world
        .client
        .generate_and_wait(&fox(), &WaitOptions::default())
        .expect_err("moderated");
    assert!(error.is_task_failed(), "{error}");
    assert_eq!(error.code().map(|code| code.as_i64()), Some(400));
    assert!(error.task_id().is_some());

    // Nobody moves this sandbox's clock: the wait must end at its deadline, with the id.
    let sandbox = frozen().start_in_background().expect("sandbox");
    let clock = SimulatedClock::new();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(sandbox.api_url())
        .clock(Arc::new(clock.clone()))
        .sleeper(Arc::new(clock.clone()))
        .build()
        .expect("client");
    let created = client.generate(&fox()).expect("created");
    let wait = WaitOptions::default().timeout(Duration::from_secs(120));
    let error = client
        .wait_for_task(&created.task_id, &wait)
        .expect_err("times out");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(error.task_id(), Some(created.task_id.as_str()));
    assert_eq!(
        clock.now(),
        Duration::from_secs(120),
        "the last poll is on the deadline"
    );
}

#[test]
fn downloads_resume_after_cuts_and_refresh_an_expired_link() {
    let world = World::with_client(frozen().result_url_ttl(Duration::from_secs(60)), |b| {
        b.download_policy(DownloadPolicy::default().with_initial_backoff(Duration::from_millis(1)))
    });
    let dir = tempfile::tempdir().expect("tempdir");

    // A 3 MiB body cut in half twice: resumed with Range, byte-identical at the end.
    let size = 3 * 1024 * 1024 + 17;
    world.sandbox.script_faults(Route::Download, Fault::Cut, 2);
    let saved = world
        .client
        .download(
            &world.sandbox.big_file_url(size),
            dir.path().join("big.bin"),
        )
        .expect("downloaded");
    assert_eq!(saved.bytes, size);
    let bytes = std::fs::read(&saved.path).expect("file");
    assert!(
        bytes
            .iter()
            .enumerate()
            .all(|(offset, byte)| *byte == veo3_sandbox::big_file_byte(offset as u64))
    );
    assert!(world.sandbox.stats().requests(Route::Download) >= 3);

    // A result URL that expired: one fresh link through download-url, then the file.
    let record = world
        .client
        .generate_and_wait(&fox(), &WaitOptions::default())
        .expect("generated");
    world.sandbox.advance(Duration::from_secs(3600));
    let link_requests = world.sandbox.stats().requests(Route::DownloadUrl);
    let url = &record.video_urls()[0];
    let saved = world
        .client
        .download(url, dir.path().join("expired.mp4"))
        .expect("refreshed and downloaded");
    assert!(saved.bytes > 0);
    assert_eq!(
        world.sandbox.stats().requests(Route::DownloadUrl),
        link_requests + 1
    );
    assert!(world.sandbox.stats().file_auth_headers.is_empty());

    // A link that stays bad: an error, and nothing under the final name.
    let missing = format!("{}/nope/none.mp4", world.sandbox.files_url());
    let target = dir.path().join("missing.mp4");
    assert!(world.client.download(&missing, &target).is_err());
    assert!(!target.exists());
    assert!(!dir.path().join("missing.mp4.part").exists());
}

#[test]
fn a_download_streams_into_a_writer_with_progress_events() {
    let world = World::start(frozen());
    let size = 2 * 1024 * 1024;
    world.sandbox.script_fault(Route::Download, Fault::Cut);
    let mut out = Vec::new();
    let written = world
        .client
        .download_to_writer(&world.sandbox.big_file_url(size), &mut out)
        .expect("downloaded");
    assert_eq!(written, size);
    assert_eq!(out.len() as u64, size);
    assert!(
        out.iter()
            .enumerate()
            .all(|(offset, byte)| *byte == veo3_sandbox::big_file_byte(offset as u64))
    );
    let events = world.events();
    let progress: Vec<u64> = events
        .iter()
        .filter_map(|event| match event {
            Event::DownloadProgress { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .collect();
    assert!(progress.windows(2).all(|pair| pair[0] <= pair[1]));
    assert_eq!(progress.last(), Some(&size));
    assert!(matches!(
        events.last(),
        Some(Event::DownloadFinished { bytes, .. }) if *bytes == size
    ));
}

#[test]
fn the_key_never_appears_in_debug_or_errors() {
    let sandbox = frozen()
        .mirror_http_status(true)
        .start_in_background()
        .expect("sandbox");
    let wrong = "sk-wrong-key-that-must-not-leak";
    let client = Client::builder()
        .api_key(wrong)
        .base_url(sandbox.api_url())
        .retry_policy(RetryPolicy::no_retries())
        .build()
        .expect("client");
    assert!(!format!("{client:?}").contains(wrong));
    let error = client.credits().expect_err("unauthorized");
    assert!(error.is_unauthorized(), "{error}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains(wrong), "{text}");
}

#[test]
fn generate_requests_are_validated_before_anything_is_sent() {
    let world = World::start(frozen());
    let mut request = fox();
    request.seeds = Some(7);
    let error = world.client.generate(&request).expect_err("invalid seed");
    assert!(error.to_string().contains("seeds"), "{error}");
    assert_eq!(world.sandbox.stats().requests(Route::Generate), 0);
}

/// Every method of the client, run on whatever thread calls this: construction, each
/// endpoint, each flow, both kinds of download, clones and drops.
fn full_journey() {
    let world = World::start(frozen());
    let client = &world.client;
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(client.credits().is_ok());
    let created = client.generate(&fox()).expect("created");
    assert!(client.record_info(&created.task_id).is_ok());
    let record = client
        .wait_for_task(&created.task_id, &WaitOptions::default())
        .expect("finished");
    let generated = client
        .generate_and_wait(&fox(), &WaitOptions::default())
        .expect("generated and waited");
    assert_eq!(generated.state, TaskState::Success);
    let task_id = record.task_id.as_str();
    assert!(client.hd_1080p(task_id, None).is_ok());
    assert!(
        client
            .upgrade_1080p_and_wait(task_id, Some(0), &WaitOptions::default())
            .is_ok()
    );
    let request = Upgrade4kRequest::new(task_id);
    assert!(client.upgrade_4k(&request).is_ok());
    assert!(
        client
            .wait_for_4k(&request, &WaitOptions::default())
            .is_ok()
    );
    assert!(
        client
            .upgrade_4k_and_wait(&request, &WaitOptions::default())
            .is_ok()
    );
    let extension = ExtendRequest::new(task_id, "and then it snows");
    let extended = client.extend(&extension).expect("extended");
    assert!(world.sandbox.complete_now(&extended.task_id));
    assert!(
        client
            .extend_and_wait(&extension, &WaitOptions::default())
            .is_ok()
    );
    let url = record.video_urls()[0].clone();
    let link = client.download_url(&url).expect("link");
    assert!(client.download(&link, dir.path().join("v.mp4")).is_ok());
    assert!(client.download_to_writer(&url, &mut Vec::new()).is_ok());
    assert!(
        client
            .download_task_video(task_id, 0, dir.path().join("t.mp4"))
            .is_ok()
    );
    let built_here = Client::builder()
        .api_key(KEY)
        .base_url(world.sandbox.api_url())
        .build()
        .expect("built");
    assert!(built_here.credits().is_ok());
    let clone = built_here.clone();
    drop(built_here);
    drop(clone);
    drop(world);
}

#[tokio::test(flavor = "current_thread")]
async fn works_directly_inside_a_current_thread_runtime() {
    full_journey();
    // A client created here and dropped on a blocking thread, and the reverse.
    let client = Client::new(KEY).expect("client");
    tokio::task::spawn_blocking(move || drop(client))
        .await
        .expect("dropped");
    let client = tokio::task::spawn_blocking(|| Client::new(KEY).expect("client"))
        .await
        .expect("built");
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_directly_inside_a_multi_thread_runtime_and_in_spawn_blocking() {
    full_journey();
    tokio::task::spawn_blocking(full_journey)
        .await
        .expect("journey on a blocking thread");
}

#[test]
fn tokio_is_not_in_the_dependency_tree() {
    let tree = cargo_tree("veo3-blocking");
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"ureq"), "{tree}");
    for banned in ["tokio", "hyper", "reqwest", "futures-util", "mio", "axum"] {
        assert!(
            !crates.contains(&banned),
            "{banned} is in the tree:\n{tree}"
        );
    }
}

#[test]
fn an_unreachable_server_is_a_connect_failure_that_is_safe_to_report() {
    // A port nobody listens on: refused at connect, so even a generate may be retried.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let clock = SimulatedClock::new();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(url)
        .clock(Arc::new(clock.clone()))
        .sleeper(Arc::new(clock))
        .retry_policy(RetryPolicy::default().with_max_attempts(2))
        .build()
        .expect("client");
    let error = client.generate(&fox()).expect_err("nobody listens");
    assert!(!error.is_outcome_unknown(), "{error}");
    assert!(
        matches!(error, veo3_blocking::Error::GaveUp { attempts: 2, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("generate"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// The shared scenario table (`support::scenarios`), run against the blocking client: every
// call goes through `spawn_blocking`, as a blocking library is used from async code.

/// The blocking client behind the scenario table's [`Flows`].
struct BlockingFlows {
    client: Client,
}

fn connect(setup: &Setup) -> Box<dyn Flows> {
    let mut builder = Client::builder()
        .api_key(&setup.key)
        .base_url(&setup.base_url)
        .retry_policy(setup.retry.clone())
        .download_policy(setup.download.clone())
        .observer(setup.observer.clone());
    if !setup.preset_schedules {
        builder = builder.poll_schedules(setup.schedule.clone());
    }
    if let Some(clock) = &setup.clock {
        builder = builder
            .clock(Arc::new(clock.clone()))
            .sleeper(Arc::new(clock.clone()))
            .random(|| 0);
    }
    if let Some(bytes) = setup.max_response_bytes {
        builder = builder.max_response_bytes(bytes);
    }
    if let Some(url) = &setup.upload_base_url {
        builder = builder.upload_base_url(url);
    }
    let client = builder.build().expect("client builds");
    Box::new(BlockingFlows { client })
}

impl BlockingFlows {
    /// Runs `call` with a clone of the client on tokio's blocking pool.
    fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(Client) -> T + Send + 'static,
    ) -> BoxFuture<'_, T> {
        let client = self.client.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || call(client))
                .await
                .expect("the blocking call does not panic")
        })
    }
}

impl Flows for BlockingFlows {
    fn name(&self) -> &'static str {
        "veo3-blocking"
    }

    fn generate(&self, request: GenerateRequest) -> BoxFuture<'_, Result<TaskCreated, Error>> {
        self.run(move |client| client.generate(&request))
    }

    fn generate_once(&self, request: GenerateRequest) -> BoxFuture<'_, Result<TaskCreated, Error>> {
        self.run(move |client| client.generate_once(&request))
    }

    fn record_info(&self, task_id: String) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        self.run(move |client| client.record_info(&task_id))
    }

    fn hd_1080p(
        &self,
        task_id: String,
        index: Option<u32>,
    ) -> BoxFuture<'_, Result<UpgradeStatus<Hd1080pResult>, Error>> {
        self.run(move |client| client.hd_1080p(&task_id, index))
    }

    fn upgrade_4k(
        &self,
        request: Upgrade4kRequest,
    ) -> BoxFuture<'_, Result<UpgradeStatus<Upgrade4kResult>, Error>> {
        self.run(move |client| client.upgrade_4k(&request))
    }

    fn extend(&self, request: ExtendRequest) -> BoxFuture<'_, Result<TaskCreated, Error>> {
        self.run(move |client| client.extend(&request))
    }

    fn credits(&self) -> BoxFuture<'_, Result<Credits, Error>> {
        self.run(|client| client.credits())
    }

    fn download_url(&self, url: String) -> BoxFuture<'_, Result<String, Error>> {
        self.run(move |client| client.download_url(&url))
    }

    fn generate_and_wait(
        &self,
        request: GenerateRequest,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        self.run(move |client| client.generate_and_wait(&request, &WaitOptions::default()))
    }

    fn wait_for_new_task(&self, task_id: String) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        self.run(move |client| client.wait_for_new_task(&task_id, &WaitOptions::default()))
    }

    fn wait_for_existing_task_hybrid(
        &self,
        task_id: String,
        inbox: veo3_blocking::Inbox,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        self.run(move |client| {
            client.wait_for_existing_task_hybrid(&task_id, &inbox, &WaitOptions::default())
        })
    }

    fn wait_for_task_with(
        &self,
        task_id: String,
        options: WaitOptions,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        self.run(move |client| client.wait_for_task(&task_id, &options))
    }

    fn upgrade_1080p_and_wait(
        &self,
        task_id: String,
        index: Option<u32>,
    ) -> BoxFuture<'_, Result<Hd1080pResult, Error>> {
        self.run(move |client| {
            client.upgrade_1080p_and_wait(&task_id, index, &WaitOptions::default())
        })
    }

    fn upgrade_4k_and_wait(
        &self,
        request: Upgrade4kRequest,
    ) -> BoxFuture<'_, Result<Upgrade4kResult, Error>> {
        self.run(move |client| client.upgrade_4k_and_wait(&request, &WaitOptions::default()))
    }

    fn extend_and_wait(&self, request: ExtendRequest) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        self.run(move |client| client.extend_and_wait(&request, &WaitOptions::default()))
    }

    fn download(&self, url: String, path: PathBuf) -> BoxFuture<'_, Result<u64, Error>> {
        self.run(move |client| client.download(&url, &path).map(|saved| saved.bytes))
    }

    fn generate_and_wait_hybrid(
        &self,
        request: GenerateRequest,
        inbox: veo3_blocking::Inbox,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        self.run(move |client| {
            client.generate_and_wait_hybrid(
                &request,
                &inbox,
                &veo3_blocking::WaitOptions::default(),
            )
        })
    }

    fn upgrade_1080p_and_wait_hybrid(
        &self,
        task_id: String,
        index: Option<u32>,
        inbox: veo3_blocking::Inbox,
        options: veo3_blocking::WaitOptions,
    ) -> BoxFuture<'_, Result<Hd1080pResult, Error>> {
        self.run(move |client| {
            client.upgrade_1080p_and_wait_hybrid(&task_id, index, &inbox, &options)
        })
    }

    fn upgrade_4k_and_wait_hybrid(
        &self,
        request: Upgrade4kRequest,
        inbox: veo3_blocking::Inbox,
        options: veo3_blocking::WaitOptions,
    ) -> BoxFuture<'_, Result<Upgrade4kResult, Error>> {
        self.run(move |client| client.upgrade_4k_and_wait_hybrid(&request, &inbox, &options))
    }

    fn download_task_video(
        &self,
        task_id: String,
        index: usize,
        path: PathBuf,
    ) -> BoxFuture<'_, Result<u64, Error>> {
        self.run(move |client| {
            client
                .download_task_video(&task_id, index, &path)
                .map(|saved| saved.bytes)
        })
    }

    fn upload_file(
        &self,
        path: PathBuf,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<UploadedFile, Error>> {
        self.run(move |client| client.upload_file(&path, &options))
    }

    fn upload_bytes(
        &self,
        bytes: Vec<u8>,
        file_name: String,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<UploadedFile, Error>> {
        self.run(move |client| client.upload_bytes(&bytes, &file_name, &options))
    }

    fn upload_url(
        &self,
        url: String,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<UploadedFile, Error>> {
        self.run(move |client| client.upload_url(&url, &options))
    }

    fn generate_with_images(
        &self,
        pending: GenerateWithImages,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<TaskCreated, Error>> {
        self.run(move |client| client.generate_with_images(&pending, &options))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_with_images_reports_each_upload_before_the_submission() {
    scenarios::uploads::uploads_are_reported_in_order(connect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_table_passes() {
    scenarios::run_table(connect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_mix_creates_one_task_per_submitted_flow() {
    scenarios::run_fault_mix(connect, 200).await;
}

/// Runs the example against a sandbox given by `KIE_BASE_URL`.
#[test]
fn the_example_runs_against_the_sandbox() {
    let binary = crate::support::workspace_example("veo3-blocking", "blocking_text_to_video");
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(0.001)
        .start_in_background()
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("dir");
    let output = std::process::Command::new(&binary)
        .args(["A red fox in the snow", "fox.mp4"])
        .env("KIE_API_KEY", KEY)
        .env("KIE_BASE_URL", sandbox.api_url())
        .env("VEO3_POLL_INTERVAL_MS", "10")
        .current_dir(dir.path())
        .output()
        .expect("the example runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let video = std::fs::read(dir.path().join("fox.mp4")).expect("the video");
    assert!(!video.is_empty());
    assert!(String::from_utf8_lossy(&output.stdout).contains("fox.mp4"));
    let stats = sandbox.stats();
    assert_eq!(stats.tasks_created_by(KEY), 1);
    assert!(stats.file_auth_headers.is_empty());
}

/// A one-shot HTTP server on loopback that answers every request with `reply` and records
/// the request heads it read.
fn canned_server(reply: String) -> (String, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let log = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            log.lock().expect("log").push(head);
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (url, heads)
}

#[test]
fn an_api_redirect_is_not_followed_so_the_key_stays_home() {
    let files = frozen().start_in_background().expect("sandbox");
    let target = format!("{}/big/10", files.files_url());
    let (url, heads) = canned_server(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ));
    let client = Client::builder()
        .api_key(KEY)
        .base_url(url)
        .retry_policy(RetryPolicy::no_retries())
        .build()
        .expect("client");
    let error = client.credits().expect_err("a redirect is not an answer");
    assert_eq!(error.status(), Some(307), "{error}");
    assert_eq!(heads.lock().expect("log").len(), 1);
    assert!(
        heads.lock().expect("log")[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer"),
        "the API itself gets the key"
    );
    let stats = files.stats();
    assert_eq!(
        stats.file_requests, 0,
        "the redirect target was never contacted"
    );
}

/// A server answering every request with a 1 MiB "envelope", counting requests per path.
fn oversized_server() -> (String, Arc<Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let paths = Arc::new(Mutex::new(Vec::new()));
    let seen = paths.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            seen.lock().expect("log").push(path);
            let body = format!(
                r#"{{"code":200,"msg":"success","data":"{}"}}"#,
                "x".repeat(1 << 20)
            );
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    (base, paths)
}

#[test]
fn an_oversized_answer_is_bounded_and_a_billable_one_is_not_resent() {
    let (base, paths) = oversized_server();
    let client = Client::builder()
        .api_key(scenarios::KEY)
        .base_url(base)
        .max_response_bytes(64 * 1024)
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(1), Duration::from_millis(1)),
        )
        .build()
        .expect("client");
    // A read-only call retries an unreadable answer within its budget, then gives up with it.
    let error = client.credits().expect_err("the answer is too long");
    assert!(
        error
            .innermost()
            .to_string()
            .contains("exceeded the 65536-byte limit"),
        "{error:?}"
    );
    let error = client.generate(&fox()).expect_err("too long");
    assert!(error.is_outcome_unknown(), "{error}");
    let generates = paths
        .lock()
        .expect("log")
        .iter()
        .filter(|path| path.contains("generate"))
        .count();
    assert_eq!(generates, 1, "a billable call is not resent");
}
