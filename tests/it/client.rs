//! Integration tests: the async client (veo3-reqwest) against the sandbox over loopback HTTP.
//!
//! The shared scenario table (`support::scenarios`) runs here through [`AsyncFlows`]; the
//! tests below cover what is specific to this client: the builder, redaction (Debug, errors,
//! trace-level logs), redirects, writers, progress events and the examples.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use veo3_core::{Error, UpgradeStatus, Veo3Api};
use veo3_reqwest::{Client, Event, Observer, Stage, WaitOptions};
use veo3_sandbox::{Fault, Route};
use veo3_types::{
    Credits, ExtendRequest, GenerateRequest, GenerateWithImages, Hd1080pResult, TaskCreated,
    TaskRecord, Upgrade4kRequest, Upgrade4kResult, UploadOptions, UploadedFile,
};

use crate::support::scenarios::{self, BoxFuture, Flows, KEY, Setup, served, text};

/// The async client behind the scenario table's [`Flows`].
struct AsyncFlows {
    client: Client,
}

fn connect(setup: &Setup) -> Box<dyn Flows> {
    Box::new(AsyncFlows {
        client: builder(setup).build().expect("client builds"),
    })
}

fn builder(setup: &Setup) -> veo3_reqwest::ClientBuilder {
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
        builder = builder.effects(veo3_reqwest::Effects::simulated(clock).with_random(|| 0));
    }
    if let Some(url) = &setup.upload_base_url {
        builder = builder.upload_base_url(url);
    }
    if let Some(bytes) = setup.max_response_bytes {
        builder = builder.max_response_bytes(bytes);
    }
    builder
}

impl Flows for AsyncFlows {
    fn name(&self) -> &'static str {
        "veo3-reqwest"
    }

    fn generate(&self, request: GenerateRequest) -> BoxFuture<'_, Result<TaskCreated, Error>> {
        Box::pin(async move { self.client.generate(&request).await })
    }

    fn generate_once(&self, request: GenerateRequest) -> BoxFuture<'_, Result<TaskCreated, Error>> {
        Box::pin(async move { self.client.generate_once(&request).await })
    }

    fn record_info(&self, task_id: String) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        Box::pin(async move { self.client.record_info(&task_id).await })
    }

    fn hd_1080p(
        &self,
        task_id: String,
        index: Option<u32>,
    ) -> BoxFuture<'_, Result<UpgradeStatus<Hd1080pResult>, Error>> {
        Box::pin(async move { self.client.hd_1080p(&task_id, index).await })
    }

    fn upgrade_4k(
        &self,
        request: Upgrade4kRequest,
    ) -> BoxFuture<'_, Result<UpgradeStatus<Upgrade4kResult>, Error>> {
        Box::pin(async move { self.client.upgrade_4k(&request).await })
    }

    fn extend(&self, request: ExtendRequest) -> BoxFuture<'_, Result<TaskCreated, Error>> {
        Box::pin(async move { self.client.extend(&request).await })
    }

    fn credits(&self) -> BoxFuture<'_, Result<Credits, Error>> {
        Box::pin(async move { self.client.credits().await })
    }

    fn download_url(&self, url: String) -> BoxFuture<'_, Result<String, Error>> {
        Box::pin(async move { self.client.download_url(&url).await })
    }

    fn generate_and_wait(
        &self,
        request: GenerateRequest,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        Box::pin(async move {
            self.client
                .generate_and_wait(&request, &WaitOptions::default())
                .await
        })
    }

    fn wait_for_new_task(&self, task_id: String) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        Box::pin(async move {
            (self.client)
                .wait_for_new_task(&task_id, &WaitOptions::default())
                .await
        })
    }

    fn wait_for_existing_task_hybrid(
        &self,
        task_id: String,
        inbox: veo3_reqwest::Inbox,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        Box::pin(async move {
            (self.client)
                .wait_for_existing_task_hybrid(&task_id, &inbox, &WaitOptions::default())
                .await
        })
    }

    fn wait_for_task_with(
        &self,
        task_id: String,
        options: WaitOptions,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        Box::pin(async move { self.client.wait_for_task(&task_id, &options).await })
    }

    fn upgrade_1080p_and_wait(
        &self,
        task_id: String,
        index: Option<u32>,
    ) -> BoxFuture<'_, Result<Hd1080pResult, Error>> {
        Box::pin(async move {
            self.client
                .upgrade_1080p_and_wait(&task_id, index, &WaitOptions::default())
                .await
        })
    }

    fn upgrade_4k_and_wait(
        &self,
        request: Upgrade4kRequest,
    ) -> BoxFuture<'_, Result<Upgrade4kResult, Error>> {
        Box::pin(async move {
            self.client
                .upgrade_4k_and_wait(&request, &WaitOptions::default())
                .await
        })
    }

    fn extend_and_wait(&self, request: ExtendRequest) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        Box::pin(async move {
            self.client
                .extend_and_wait(&request, &WaitOptions::default())
                .await
        })
    }

    fn download(&self, url: String, path: PathBuf) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(async move { self.client.download(&url, &path).await.map(|d| d.bytes) })
    }

    fn generate_and_wait_hybrid(
        &self,
        request: GenerateRequest,
        inbox: veo3_reqwest::Inbox,
    ) -> BoxFuture<'_, Result<TaskRecord, Error>> {
        Box::pin(async move {
            (self.client)
                .generate_and_wait_hybrid(&request, &inbox, &WaitOptions::default())
                .await
        })
    }

    fn upgrade_1080p_and_wait_hybrid(
        &self,
        task_id: String,
        index: Option<u32>,
        inbox: veo3_reqwest::Inbox,
        options: WaitOptions,
    ) -> BoxFuture<'_, Result<Hd1080pResult, Error>> {
        Box::pin(async move {
            (self.client)
                .upgrade_1080p_and_wait_hybrid(&task_id, index, &inbox, &options)
                .await
        })
    }

    fn upgrade_4k_and_wait_hybrid(
        &self,
        request: Upgrade4kRequest,
        inbox: veo3_reqwest::Inbox,
        options: WaitOptions,
    ) -> BoxFuture<'_, Result<Upgrade4kResult, Error>> {
        Box::pin(async move {
            (self.client)
                .upgrade_4k_and_wait_hybrid(&request, &inbox, &options)
                .await
        })
    }

    fn download_task_video(
        &self,
        task_id: String,
        index: usize,
        path: PathBuf,
    ) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(async move {
            self.client
                .download_task_video(&task_id, index, &path)
                .await
                .map(|d| d.bytes)
        })
    }

    fn upload_file(
        &self,
        path: PathBuf,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<UploadedFile, Error>> {
        Box::pin(async move { self.client.upload_file(&path, &options).await })
    }

    fn upload_bytes(
        &self,
        bytes: Vec<u8>,
        file_name: String,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<UploadedFile, Error>> {
        Box::pin(async move { self.client.upload_bytes(&bytes, &file_name, &options).await })
    }

    fn upload_url(
        &self,
        url: String,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<UploadedFile, Error>> {
        Box::pin(async move { self.client.upload_url(&url, &options).await })
    }

    fn generate_with_images(
        &self,
        pending: GenerateWithImages,
        options: UploadOptions,
    ) -> BoxFuture<'_, Result<TaskCreated, Error>> {
        Box::pin(async move { self.client.generate_with_images(&pending, &options).await })
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
async fn two_hundred_flows_under_a_fault_mix_end_in_verified_files_or_typed_errors() {
    scenarios::run_fault_mix(connect, 200).await;
}

fn events() -> (Observer, Arc<Mutex<Vec<Event>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let observer =
        Observer::new(move |event: &Event| sink.lock().expect("lock").push(event.clone()));
    (observer, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_report_submitted_polled_finished_and_download_progress() {
    let sandbox = scenarios::fast_sandbox().start().await.expect("sandbox");
    let (observer, seen) = events();
    let mut setup = Setup::for_sandbox(sandbox.api_url());
    setup.observer = observer;
    let client = builder(&setup).build().expect("client");
    let record = client
        .generate_and_wait(&text("A fox"), &WaitOptions::default())
        .await
        .expect("flow");
    let dir = tempfile::tempdir().expect("dir");
    let done = client
        .download_task_video(&record.task_id, 0, dir.path().join("v.mp4"))
        .await
        .expect("download");
    assert_eq!(done.path, dir.path().join("v.mp4"));
    let events = seen.lock().expect("lock").clone();
    let submitted: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Submitted { .. }))
        .collect();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].task_id(), Some(record.task_id.as_str()));
    assert!(events.iter().any(|e| matches!(e, Event::Polled { .. })));
    assert!(events.iter().any(|e| matches!(e, Event::Finished { .. })));
    let progress = events.iter().rev().find_map(|e| match e {
        Event::DownloadProgress { bytes, total, .. } => Some((*bytes, *total)),
        _ => None,
    });
    assert_eq!(progress, Some((done.bytes, Some(done.bytes))));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::DownloadFinished { bytes, .. } if *bytes == done.bytes
    )));
    let index_error = client
        .download_task_video(&record.task_id, 3, dir.path().join("none.mp4"))
        .await
        .expect_err("there is one video");
    assert!(
        index_error.to_string().contains("no video 3"),
        "{index_error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_stream_into_any_writer_and_resume_after_cuts() {
    let sandbox = scenarios::fast_sandbox().start().await.expect("sandbox");
    let client = builder(&Setup::for_sandbox(sandbox.api_url()))
        .build()
        .expect("client");
    let size = 3 * 1024 * 1024 + 17;
    let url = sandbox.big_file_url(size);
    sandbox.script_faults(Route::Download, Fault::Cut, 3);
    let mut buffer = Vec::new();
    let written = client
        .download_to_writer(&url, &mut buffer)
        .await
        .expect("download");
    assert_eq!(written, size);
    assert_eq!(buffer.len() as u64, size);
    assert!(
        buffer
            .iter()
            .enumerate()
            .all(|(i, b)| *b == veo3_sandbox::big_file_byte(i as u64)),
        "every byte is the file host's"
    );
    let stats = sandbox.stats();
    assert_eq!(
        stats.requests(Route::Download),
        4,
        "three cuts, three resumes"
    );
    assert!(stats.file_auth_headers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_keeps_failing_is_a_typed_error_and_leaves_no_file() {
    let sandbox = scenarios::fast_sandbox().start().await.expect("sandbox");
    let mut setup = Setup::for_sandbox(sandbox.api_url());
    setup.download = setup.download.with_max_resumes(2);
    let client = builder(&setup).build().expect("client");
    sandbox.script_faults(Route::Download, Fault::Http(503), 10);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("never.mp4");
    let url = format!("{}?token=s3cr3t-signature", sandbox.big_file_url(1000));
    let error = client.download(&url, &path).await.expect_err("503 forever");
    assert!(
        matches!(&error, Error::Download { .. }),
        "a download error: {error:?}"
    );
    assert!(error.is_retryable());
    assert!(
        !error.to_string().contains("s3cr3t"),
        "no URL query in errors: {error}"
    );
    assert!(!path.exists());
    scenarios::assert_no_part_files(dir.path());
    assert_eq!(sandbox.stats().requests(Route::Download), 3);

    // A link the file host does not know (the 503s still queued are dropped first).
    sandbox.clear_scripts();
    let missing = format!("{}/r/unknown/file.mp4", sandbox.files_url());
    let error = client
        .download(&missing, &path)
        .await
        .expect_err("not a sandbox result");
    // 404 reads as an expired link: one refresh is asked for, and refused for a URL the
    // sandbox never minted, which is the error returned.
    assert_eq!(
        error.endpoint(),
        Some(veo3_types::Endpoint::DownloadUrl),
        "{error}"
    );
    assert_eq!(sandbox.stats().requests(Route::DownloadUrl), 1);
    assert!(!path.exists());
}

// Current-thread runtime: every task (the client's, reqwest's and hyper's connection tasks)
// runs on this thread, where the capturing subscriber is the default.
#[tokio::test]
async fn the_key_never_appears_in_debug_errors_or_trace_logs() {
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A sandbox that accepts the key, with failures on every route we touch.
    let sandbox = scenarios::fast_sandbox()
        .key(KEY)
        .start()
        .await
        .expect("sandbox");
    let setup = Setup::for_sandbox(sandbox.api_url());
    let client = builder(&setup).build().expect("client");
    assert!(!format!("{client:?}").contains(KEY));
    assert!(!format!("{:?}", builder(&setup)).contains(KEY));

    sandbox.script_fault(Route::Generate, Fault::Lost);
    sandbox.script_faults(Route::RecordInfo, Fault::Http(500), 2);
    // Unreadable answers to a read-only call are asked again: five of them exhaust the retries.
    sandbox.script_faults(Route::Credits, Fault::Malformed, 5);
    let mut errors = vec![
        client.generate(&text("A fox")).await.expect_err("lost"),
        client.credits().await.expect_err("malformed"),
        client.record_info("no-such-task").await.expect_err("404"),
    ];
    let record = client
        .generate_and_wait(&text("A fox"), &WaitOptions::default())
        .await
        .expect("flow");
    let wrong = builder(&setup)
        .api_key("sk-wrong-key-0000")
        .build()
        .expect("client");
    errors.push(
        wrong
            .record_info(&record.task_id)
            .await
            .expect_err("a wrong key is refused"),
    );
    for error in &errors {
        let text = format!("{error} {error:?}");
        assert!(!text.contains(KEY), "the key leaked: {text}");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            assert!(!cause.to_string().contains(KEY));
            source = cause.source();
        }
    }
    drop(_guard);
    let logs = String::from_utf8_lossy(&capture.0.lock().expect("lock")).into_owned();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "logs were captured"
    );
    assert!(!logs.contains(KEY), "the key is in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_does_not_carry_the_key() {
    // An "API" that redirects every request to the sandbox's file host, which records any
    // Authorization header it receives.
    let sandbox = scenarios::frozen_sandbox().start().await.expect("sandbox");
    let target = sandbox.big_file_url(10);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    let client = builder(&Setup::for_sandbox(&base))
        .retry_policy(veo3_reqwest::RetryPolicy::no_retries())
        .build()
        .expect("client");
    let error = client.credits().await.expect_err("not followed");
    assert!(matches!(error, Error::Redirected { .. }), "{error}");
    assert!(
        error.to_string().contains("/big/10"),
        "names the target: {error}"
    );
    assert!(!error.to_string().contains(KEY));
    let stats = sandbox.stats();
    assert_eq!(stats.file_requests, 0, "the other host received nothing");
    assert_eq!(stats.file_auth_headers, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_validates_its_input_and_keeps_stage_schedules() {
    let error = Client::builder()
        .api_key("sk-1234")
        .base_url("ftp://example.com")
        .build()
        .expect_err("not http");
    assert!(error.to_string().contains("http"), "{error}");
    let error = Client::builder()
        .api_key("sk-1234")
        .user_agent("bad\nagent")
        .build()
        .expect_err("bad header");
    assert!(error.to_string().contains("user agent"));
    let client = Client::new("sk-1234").expect("client");
    assert_eq!(client.base_url(), veo3_reqwest::DEFAULT_BASE_URL);
    assert_eq!(
        client.poll_schedule(Stage::Upgrade4k),
        veo3_reqwest::PollSchedule::upgrade_4k()
    );
    let schedule = veo3_reqwest::PollSchedule::new(
        Duration::from_millis(1),
        Duration::from_millis(2),
        Duration::from_secs(3),
    );
    let client = Client::builder()
        .api_key("sk-1234")
        .poll_schedule(Stage::Hd1080p, schedule.clone())
        .build()
        .expect("client");
    assert_eq!(client.poll_schedule(Stage::Hd1080p), schedule);
    assert_eq!(
        client.poll_schedule(Stage::Extension),
        veo3_reqwest::PollSchedule::extension()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_reqwest_client_is_used_without_default_authorization() {
    let sandbox = scenarios::fast_sandbox().start().await.expect("sandbox");
    let http = reqwest::Client::builder()
        .user_agent("custom-agent/1")
        .build()
        .expect("reqwest");
    let client = builder(&Setup::for_sandbox(sandbox.api_url()))
        .http_client(http)
        .build()
        .expect("client");
    let record = client
        .generate_and_wait(
            &text("A fox"),
            &WaitOptions::default().poll_interval(Duration::from_millis(5)),
        )
        .await
        .expect("flow");
    let url = record.video_urls()[0].clone();
    let mut bytes = Vec::new();
    client
        .download_to_writer(&url, &mut bytes)
        .await
        .expect("download");
    assert_eq!(bytes, served(&url).await);
    assert!(sandbox.stats().file_auth_headers.is_empty());
}

/// Runs the example binaries (built by `cargo test --workspace`) against a sandbox given by
/// `KIE_BASE_URL`. When this test binary was built without them (e.g. `cargo test -p
/// veo3-tests`), it says so and checks nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_run_against_the_sandbox() {
    let names = [
        "text_to_video",
        "image_to_video",
        "upgrade_1080p",
        "callbacks",
    ];
    let found: Vec<_> = names
        .iter()
        .map(|name| crate::support::workspace_example("veo3-reqwest", name))
        .collect();
    let sandbox = scenarios::fast_sandbox().start().await.expect("sandbox");
    for (name, binary) in names.iter().zip(found) {
        let dir = tempfile::tempdir().expect("dir");
        let mut command = std::process::Command::new(&binary);
        command
            .env("KIE_API_KEY", KEY)
            .env("KIE_BASE_URL", sandbox.api_url())
            .env("VEO3_POLL_INTERVAL_MS", "10")
            .current_dir(dir.path());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("joined")
            .expect("example runs");
        assert!(
            output.status.success(),
            "{name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mp4s = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "mp4"))
            .count();
        assert!(mp4s >= 1, "{name} wrote a video");
        scenarios::assert_no_part_files(dir.path());
    }
    let stats = sandbox.stats();
    assert!(stats.tasks_created_by(KEY) >= 4, "{stats:?}");
    assert!(stats.file_auth_headers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_even_for_generate_because_nothing_was_sent() {
    // A port with nothing listening: bind, note the address, close.
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let client = builder(&Setup::for_sandbox(&format!("http://{address}")))
        .retry_policy(
            veo3_reqwest::RetryPolicy::default()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(1), Duration::from_millis(2)),
        )
        .build()
        .expect("client");
    let error = client.generate(&text("A fox")).await.expect_err("refused");
    assert!(!error.is_outcome_unknown(), "never sent: {error}");
    match &error {
        Error::GaveUp { attempts, .. } => assert_eq!(*attempts, 3),
        other => panic!("expected GaveUp after 3 attempts: {other:?}"),
    }
    assert!(
        matches!(
            error.innermost(),
            Error::Transport {
                phase: veo3_core::TransportPhase::Connect,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generate_that_times_out_is_reported_once_and_never_resent() {
    // A server that reads requests and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        seen.clear();
                    }
                }
            });
        }
    });
    // A generous attempt timeout, so the request is surely written before it expires.
    let client = builder(&Setup::for_sandbox(&base))
        .attempt_timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    let error = client
        .generate(&text("A fox"))
        .await
        .expect_err("no answer");
    assert!(error.is_outcome_unknown(), "{error}");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(error.endpoint(), Some(veo3_types::Endpoint::Generate));
    assert_eq!(
        received.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "sent once"
    );
    // A read-only call in the same situation is retried (attempts = 5 in the setup).
    let client = builder(&Setup::for_sandbox(&base))
        .attempt_timeout(Duration::from_millis(100))
        .build()
        .expect("client");
    let error = client.credits().await.expect_err("no answer");
    assert!(
        matches!(&error, Error::GaveUp { attempts: 5, .. }),
        "{error:?}"
    );
    assert!(received.load(std::sync::atomic::Ordering::SeqCst) > 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_ends_at_its_deadline_naming_the_task_and_its_last_state() {
    let sandbox = scenarios::frozen_sandbox().start().await.expect("sandbox");
    let client = builder(&Setup::for_sandbox(sandbox.api_url()))
        .build()
        .expect("client");
    let created = client.generate(&text("A fox")).await.expect("generate");
    // The sandbox's clock stands still, so the task never finishes.
    let wait = WaitOptions::default()
        .first_delay(Duration::from_millis(5))
        .poll_interval(Duration::from_millis(5))
        .timeout(Duration::from_millis(60));
    let error = client
        .wait_for_task(&created.task_id, &wait)
        .await
        .expect_err("deadline");
    match &error {
        Error::WaitTimeout {
            task_id,
            polls,
            last_status,
            ..
        } => {
            assert_eq!(task_id, &created.task_id);
            assert_eq!(
                u64::from(*polls),
                sandbox.stats().requests(Route::RecordInfo),
                "every poll reached the sandbox"
            );
            assert_eq!(
                last_status,
                &Some(veo3_reqwest::PollStatus::Task(
                    veo3_types::TaskState::Generating
                ))
            );
        }
        other => panic!("expected WaitTimeout: {other:?}"),
    }
    assert!(error.is_timeout());
    assert_eq!(sandbox.stats().tasks_created_by(KEY), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_simulated_time_a_thirty_minute_wait_follows_the_preset_schedule_exactly() {
    let sandbox = scenarios::frozen_sandbox().start().await.expect("sandbox");
    use veo3_core::Clock as _;
    let clock = veo3_core::SimulatedClock::new();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(sandbox.api_url())
        .effects(veo3_reqwest::Effects::simulated(&clock).with_random(|| 0))
        .build()
        .expect("client");
    // The default (Fast model) schedule: first poll at 90 s, 30 min deadline.
    let error = client
        .generate_and_wait(&text("A fox"), &WaitOptions::default())
        .await
        .expect_err("the frozen task never finishes");
    assert!(matches!(error, Error::WaitTimeout { .. }), "{error}");
    assert_eq!(
        clock.now(),
        Duration::from_secs(30 * 60),
        "ends on the deadline"
    );
    assert_eq!(clock.sleeps()[0], Duration::from_secs(90));
    let polls = match error {
        Error::WaitTimeout { polls, .. } => u64::from(polls),
        _ => unreachable!(),
    };
    assert_eq!(polls, sandbox.stats().requests(Route::RecordInfo));
    assert_eq!(polls, clock.sleeps().len() as u64, "one poll per sleep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_api_answer_is_cut_at_the_limit_and_reported_unreadable() {
    // A server answering every request with a 1 MiB "envelope".
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body = format!(
                    r#"{{"code":200,"msg":"success","data":"{}"}}"#,
                    "x".repeat(1 << 20)
                );
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
            });
        }
    });
    let client = builder(&Setup::for_sandbox(&base))
        .max_response_bytes(64 * 1024)
        .build()
        .expect("client");
    // A cut body is unreadable: a read-only call asks again within its retries, then reports it.
    let error = client.credits().await.expect_err("cut at 64 KiB");
    assert!(
        matches!(
            error.innermost(),
            Error::Decode {
                unreadable: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .body_excerpt()
            .is_some_and(|e| e.chars().count() <= 513),
        "the error keeps a short excerpt"
    );
}

/// rustls by default; with `native-tls` instead, the platform's TLS and no rustls at all (a
/// user who picks native-tls should not compile two TLS stacks).
#[test]
fn the_tls_feature_picks_exactly_one_tls_stack() {
    use crate::support::{cargo_tree, cargo_tree_with, in_tree};

    let default = cargo_tree("veo3-reqwest");
    assert!(in_tree(&default, "rustls"), "rustls by default:\n{default}");
    assert!(!in_tree(&default, "native-tls"), "{default}");
    let native = cargo_tree_with(
        "veo3-reqwest",
        &["--no-default-features", "--features", "native-tls"],
    );
    assert!(
        in_tree(&native, "native-tls"),
        "native-tls selected:\n{native}"
    );
    for rustls in ["rustls", "hyper-rustls", "tokio-rustls"] {
        assert!(
            !in_tree(&native, rustls),
            "{rustls} with native-tls:\n{native}"
        );
    }
}

/// The default tree stays lean: at most 100 crates (0.8 times async-openai with one API
/// feature), counted as ARCHITECTURE.md does (`cargo tree -e normal`, each crate once).
/// HTTP/2 and tracing's `#[instrument]` macros are opt-in for that reason.
#[test]
fn the_default_tree_has_at_most_100_crates() {
    use crate::support::{cargo_tree, in_tree};

    let tree = cargo_tree("veo3-reqwest");
    let crates: std::collections::BTreeSet<&str> = tree
        .lines()
        .map(|line| line.trim_end_matches(" (*)").trim())
        .filter(|line| !line.is_empty())
        .collect();
    assert!(
        crates.len() <= 100,
        "{} crates in veo3-reqwest's default tree:\n{}",
        crates.len(),
        crates.into_iter().collect::<Vec<_>>().join("\n")
    );
    for opt_in in ["h2", "tracing-attributes"] {
        assert!(!in_tree(&tree, opt_in), "{opt_in} by default:\n{tree}");
    }
}

/// A download whose future is dropped half-way (a timeout, a `select!`, Ctrl-C in the CLI)
/// leaves nothing under the final name, but keeps its `.part` and the sidecar with the file
/// host's validator, and the next download to that path continues from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_dropped_half_way_keeps_its_part_and_the_next_one_resumes_it() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let sandbox = scenarios::frozen_sandbox().start().await.expect("sandbox");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("big.mp4");
    let part = dir.path().join("big.mp4.part");
    let sidecar = dir.path().join("big.mp4.part.json");
    let (started, part_existed) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(AtomicBool::new(false)),
    );
    let observer = {
        let (started, part_existed, part) = (started.clone(), part_existed.clone(), part.clone());
        Observer::new(move |event: &Event| {
            if matches!(event, Event::DownloadProgress { .. }) {
                part_existed.store(part.exists(), Ordering::SeqCst);
                started.notify_one();
            }
        })
    };
    let mut setup = Setup::for_sandbox(sandbox.api_url());
    setup.observer = observer;
    let client = builder(&setup).build().expect("client");
    let len: u64 = 256 << 20;
    let url = sandbox.big_file_url(len);
    // Dropped once a good part of the file is on disk (not just in the write buffer).
    let mut download = Box::pin(client.download(&url, &path));
    loop {
        tokio::select! {
            biased;
            () = started.notified() => {
                if std::fs::metadata(&part).is_ok_and(|meta| meta.len() >= 32 << 20) {
                    break;
                }
            }
            result = &mut download => panic!("256 MiB arrived before 32 MiB were on disk: {result:?}"),
        }
    }
    drop(download);
    assert!(
        part_existed.load(Ordering::SeqCst),
        "bytes were going to {}",
        part.display()
    );
    assert!(!path.exists());
    assert!(
        part.exists() && sidecar.exists(),
        "the resumable .part and its sidecar stay"
    );
    let kept = std::fs::metadata(&part).expect("part").len();
    let served_before = sandbox.stats().file_bytes_served;
    let saved = client.download(&url, &path).await.expect("resumed");
    assert_eq!(saved.bytes, len);
    let served = sandbox.stats().file_bytes_served - served_before;
    // The dropped connection may still have handed a few buffers to its socket, and the
    // dropped download's last write may land after `kept` was measured.
    assert!(
        served.abs_diff(len - kept) < 16 << 20,
        "only the missing bytes were transferred: {served} served, {kept} of {len} kept"
    );
    let file = std::fs::read(&path).expect("file");
    for offset in (0..len).step_by(65_537) {
        assert_eq!(file[offset as usize], veo3_sandbox::big_file_byte(offset));
    }
    assert!(!part.exists() && !sidecar.exists());
}
