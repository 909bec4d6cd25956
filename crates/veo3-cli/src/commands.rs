//! One function per command. Each validates its input before the first request, then calls the
//! SDK; errors come back as [`CliError`] and become one line on stderr and an exit code.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use veo3_core::{Error, Veo3Api};
use veo3_reqwest::{Client, WaitOptions};
use veo3_types::{ExtendRequest, GenerateRequest, TaskRecord, Upgrade4kRequest};

use crate::args::{
    Cli, Command, DemoArgs, DownloadArgs, ExtendArgs, GenerateArgs, ListenArgs, TaskArgs,
    UpgradeArgs, UpgradeResolution, WaitArgs, WaitTuning,
};
use crate::exit;
use crate::output::{Printer, download_json, record_json, record_text};
use crate::progress::Progress;

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Bad usage caught before any request (exit 2).
    Usage(String),
    /// The SDK's error.
    Sdk(Error),
    /// Ctrl-C during a wait; the task keeps running.
    Interrupted { task_id: String },
    /// Anything else (starting the sandbox, writing output).
    Other(String),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => exit::USAGE,
            Self::Sdk(error)
                if matches!(
                    error.innermost(),
                    Error::Validation(_) | Error::InvalidInput { .. }
                ) =>
            {
                exit::USAGE
            }
            Self::Sdk(error) if error.is_task_failed() => exit::TASK_FAILED,
            Self::Sdk(Error::WaitTimeout { .. }) => exit::TIMED_OUT,
            Self::Interrupted { .. } => exit::INTERRUPTED,
            Self::Sdk(_) | Self::Other(_) => exit::FAILURE,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(message) | Self::Other(message) => f.write_str(message),
            Self::Sdk(error) => {
                // One line: the error and each cause it wraps.
                write!(f, "{error}")?;
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            Self::Interrupted { task_id } => write!(
                f,
                "interrupted; task {task_id} keeps running on the server: resume with `veo3 wait {task_id}`"
            ),
        }
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        Self::Sdk(error)
    }
}

impl From<veo3_types::ValidationError> for CliError {
    fn from(error: veo3_types::ValidationError) -> Self {
        Self::Sdk(Error::from(error))
    }
}

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    Interrupt::install();
    let printer = Printer { json: cli.json };
    let progress = Progress::new(cli.json);
    let result = match &cli.command {
        Command::Sandbox(args) => return sandbox(args, printer).await,
        Command::Demo(args) => return demo(args, printer, progress).await,
        Command::Listen(args) => return listen(args, printer).await,
        command => {
            let client = client(&cli, &progress)?;
            let session = Session {
                client,
                printer,
                progress: progress.clone(),
            };
            match command {
                Command::Generate(args) => session.generate(args).await,
                Command::Status(args) => session.status(args).await,
                Command::Wait(args) => session.wait(args).await,
                Command::Download(args) => session.download(args).await,
                Command::Upgrade(args) => session.upgrade(args).await,
                Command::Extend(args) => session.extend(args).await,
                Command::Credits => session.credits().await,
                Command::Sandbox(_) | Command::Demo(_) | Command::Listen(_) => Ok(()),
            }
        }
    };
    progress.clear();
    result
}

fn client(cli: &Cli, progress: &Progress) -> Result<Client, CliError> {
    let key = cli
        .api_key
        .as_deref()
        .filter(|key| !key.trim().is_empty())
        .ok_or_else(|| CliError::Usage("no API key: pass --api-key or set KIE_API_KEY".into()))?;
    Ok(Client::builder()
        .api_key(key)
        .base_url(&cli.base_url)
        .observer(progress.observer())
        .build()?)
}

fn wait_options(tuning: &WaitTuning) -> WaitOptions {
    let mut options = WaitOptions::default();
    if let Some(interval) = tuning.poll_interval {
        // A user who sets the interval expects the first poll on it too, not after the
        // stage's default first delay.
        options = options.poll_interval(interval).first_delay(interval);
    }
    if let Some(timeout) = tuning.timeout {
        options = options.timeout(timeout);
    }
    options
}

/// Ctrl-C, listened for from the start of the program: a Ctrl-C that arrives between
/// printing a task id and starting to wait must still end the wait cleanly, not kill the
/// process before it says how to resume.
static INTERRUPT: std::sync::OnceLock<Interrupt> = std::sync::OnceLock::new();

struct Interrupt {
    #[cfg(unix)]
    signal: tokio::sync::Mutex<tokio::signal::unix::Signal>,
}

impl Interrupt {
    /// Installs the handler (call once, inside the runtime, before any request).
    fn install() {
        #[cfg(unix)]
        if let Ok(signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        {
            let _ = INTERRUPT.set(Interrupt {
                signal: tokio::sync::Mutex::new(signal),
            });
        }
        #[cfg(not(unix))]
        let _ = INTERRUPT.set(Interrupt {});
    }

    /// Completes on the next Ctrl-C.
    async fn received() {
        #[cfg(unix)]
        if let Some(interrupt) = INTERRUPT.get() {
            interrupt.signal.lock().await.recv().await;
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `wait` until it finishes or Ctrl-C, which leaves the task id on screen.
async fn interruptible<T>(
    task_id: &str,
    progress: &Progress,
    wait: impl Future<Output = Result<T, Error>>,
) -> Result<T, CliError> {
    tokio::select! {
        result = wait => result.map_err(CliError::from),
        () = Interrupt::received() => {
            progress.clear();
            Err(CliError::Interrupted { task_id: task_id.to_owned() })
        }
    }
}

struct Session {
    client: Client,
    printer: Printer,
    progress: Progress,
}

impl Session {
    async fn generate(&self, args: &GenerateArgs) -> Result<(), CliError> {
        let mut builder = GenerateRequest::builder(&args.prompt)
            .model(args.model.clone())
            .image_urls(args.images.iter().cloned());
        if let Some(ratio) = &args.aspect_ratio {
            builder = builder.aspect_ratio(ratio.clone());
        }
        if let Some(generation_type) = args.generation_type {
            builder = builder.generation_type(generation_type.into());
        }
        if let Some(seeds) = args.seeds {
            builder = builder.seeds(seeds);
        }
        if let Some(watermark) = &args.watermark {
            builder = builder.watermark(watermark);
        }
        if let Some(url) = &args.callback_url {
            builder = builder.call_back_url(url);
        }
        if args.no_translation {
            builder = builder.enable_translation(false);
        }
        let request = builder.build()?;
        check_output_path(args.out.as_deref())?;

        // The receiver is up before the task exists, so no callback can be missed.
        let receiver = match args.callback_listen {
            Some(addr) => {
                let verifier = verifier(&args.hmac_key_env, args.unsigned_callbacks)?;
                let config = veo3_webhook::Config::new(verifier);
                let receiver = veo3_webhook::Receiver::bind(addr, config)
                    .await
                    .map_err(|e| CliError::Other(format!("cannot listen on {addr}: {e}")))?;
                Some(receiver)
            }
            None => None,
        };

        let created = self.client.generate(&request).await?;
        self.printer.task_submitted("generation", &created.task_id);
        if !args.wait && args.out.is_none() && receiver.is_none() {
            self.printer
                .result(json!({"taskId": created.task_id}), String::new);
            return Ok(());
        }
        let result = match &receiver {
            Some(receiver) => {
                let options = wait_options(&args.tuning);
                let inbox = receiver.inbox();
                let wait = self
                    .client
                    .wait_for_task_hybrid(&created.task_id, &inbox, &options);
                match interruptible(&created.task_id, &self.progress, wait).await {
                    Ok(record) => self.finish_record(record, args.out.as_deref()).await,
                    Err(error) => Err(error),
                }
            }
            None => {
                self.finish_task(&created.task_id, &args.tuning, args.out.as_deref())
                    .await
            }
        };
        if let Some(receiver) = receiver {
            // Best effort: the outcome is already decided.
            let _ = receiver.shutdown().await;
        }
        result
    }

    async fn status(&self, args: &TaskArgs) -> Result<(), CliError> {
        let record = self.client.record_info(&args.task_id).await?;
        self.printer
            .result(record_json(&record), || record_text(&record));
        Ok(())
    }

    async fn wait(&self, args: &WaitArgs) -> Result<(), CliError> {
        check_output_path(args.out.as_deref())?;
        self.finish_task(&args.task_id, &args.tuning, args.out.as_deref())
            .await
    }

    /// Waits for a task and, with `out`, downloads its first video.
    async fn finish_task(
        &self,
        task_id: &str,
        tuning: &WaitTuning,
        out: Option<&Path>,
    ) -> Result<(), CliError> {
        let options = wait_options(tuning);
        let record = interruptible(
            task_id,
            &self.progress,
            self.client.wait_for_task(task_id, &options),
        )
        .await?;
        self.finish_record(record, out).await
    }

    /// Prints a finished task and, with `out`, downloads its first video.
    async fn finish_record(&self, record: TaskRecord, out: Option<&Path>) -> Result<(), CliError> {
        let task_id = record.task_id.as_str();
        self.progress.clear();
        match out {
            None => self
                .printer
                .result(record_json(&record), || record_text(&record)),
            Some(path) => {
                let url = first_video(&record)?;
                let downloaded =
                    interruptible(task_id, &self.progress, self.client.download(&url, path))
                        .await?;
                self.progress.clear();
                let mut value = record_json(&record);
                value["download"] = download_json(&downloaded.path, downloaded.bytes);
                self.printer.result(value, || {
                    format!(
                        "{}\nsaved {} ({} bytes)",
                        record_text(&record),
                        downloaded.path.display(),
                        downloaded.bytes
                    )
                });
            }
        }
        Ok(())
    }

    async fn download(&self, args: &DownloadArgs) -> Result<(), CliError> {
        check_output_path(Some(&args.out))?;
        let downloaded = interruptible(
            &args.task_id,
            &self.progress,
            self.client
                .download_task_video(&args.task_id, args.index, &args.out),
        )
        .await?;
        self.progress.clear();
        self.printer
            .result(download_json(&downloaded.path, downloaded.bytes), || {
                format!(
                    "saved {} ({} bytes)",
                    downloaded.path.display(),
                    downloaded.bytes
                )
            });
        Ok(())
    }

    async fn upgrade(&self, args: &UpgradeArgs) -> Result<(), CliError> {
        check_output_path(args.out.as_deref())?;
        if args.task_id.trim().is_empty() {
            return Err(veo3_types::ValidationError::EmptyTaskId.into());
        }
        let options = wait_options(&args.tuning);
        let (url, mut value) = match args.resolution {
            UpgradeResolution::P1080 => {
                let result = interruptible(
                    &args.task_id,
                    &self.progress,
                    self.client
                        .upgrade_1080p_and_wait(&args.task_id, Some(args.index), &options),
                )
                .await?;
                let value = json!({"taskId": args.task_id, "resolution": "1080p", "resultUrl": result.result_url});
                (result.result_url, value)
            }
            UpgradeResolution::K4 => {
                let request = Upgrade4kRequest::new(&args.task_id).index(args.index);
                let result = interruptible(
                    &args.task_id,
                    &self.progress,
                    self.client.upgrade_4k_and_wait(&request, &options),
                )
                .await?;
                let url = result.result_urls.first().cloned().ok_or_else(|| {
                    CliError::Other(format!(
                        "the 4K answer for task {} carried no video URL",
                        args.task_id
                    ))
                })?;
                let value = json!({
                    "taskId": args.task_id, "resolution": "4k",
                    "resultUrls": result.result_urls, "imageUrls": result.image_urls,
                });
                (url, value)
            }
        };
        self.progress.clear();
        let saved = match &args.out {
            Some(path) => {
                let downloaded = interruptible(
                    &args.task_id,
                    &self.progress,
                    self.client.download(&url, path),
                )
                .await?;
                self.progress.clear();
                value["download"] = download_json(&downloaded.path, downloaded.bytes);
                Some(downloaded)
            }
            None => None,
        };
        self.printer.result(value, || match saved {
            Some(downloaded) => format!(
                "{url}\nsaved {} ({} bytes)",
                downloaded.path.display(),
                downloaded.bytes
            ),
            None => url.clone(),
        });
        Ok(())
    }

    async fn extend(&self, args: &ExtendArgs) -> Result<(), CliError> {
        let mut request = ExtendRequest::new(&args.task_id, &args.prompt);
        if let Some(model) = &args.model {
            request = request.model(model.clone());
        }
        if let Some(seeds) = args.seeds {
            request = request.seeds(seeds);
        }
        if let Some(watermark) = &args.watermark {
            request = request.watermark(watermark);
        }
        if let Some(url) = &args.callback_url {
            request = request.call_back_url(url);
        }
        request.validate()?;
        check_output_path(args.out.as_deref())?;
        let created = self.client.extend(&request).await?;
        self.printer.task_submitted("extension", &created.task_id);
        if !args.wait && args.out.is_none() {
            self.printer
                .result(json!({"taskId": created.task_id}), String::new);
            return Ok(());
        }
        self.finish_task(&created.task_id, &args.tuning, args.out.as_deref())
            .await
    }

    async fn credits(&self) -> Result<(), CliError> {
        let credits = self.client.credits().await?;
        self.printer.result(json!({"credits": credits.0}), || {
            format!("{} credits", credits.0)
        });
        Ok(())
    }
}

fn first_video(record: &TaskRecord) -> Result<String, CliError> {
    record.video_urls().first().cloned().ok_or_else(|| {
        CliError::Other(format!(
            "task {} succeeded but returned no video URL",
            record.task_id
        ))
    })
}

/// Refuses an output path whose folder does not exist, before anything is submitted or billed.
fn check_output_path(path: Option<&Path>) -> Result<(), CliError> {
    let Some(path) = path else { return Ok(()) };
    if path.as_os_str().is_empty() || path.is_dir() {
        return Err(CliError::Usage(format!(
            "--out {} must be a file path",
            path.display()
        )));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(CliError::Usage(format!(
            "--out {}: folder {} does not exist",
            path.display(),
            parent.display()
        )));
    }
    Ok(())
}

async fn sandbox(args: &veo3_sandbox::serve::ServeArgs, printer: Printer) -> Result<(), CliError> {
    let builder = args
        .builder()
        .map_err(|e| CliError::Usage(format!("--faults: {e}")))?;
    printer.note(
        "sandbox starting; Ctrl-C stops it. Point the SDK or the CLI at it with KIE_BASE_URL.",
    );
    veo3_sandbox::serve::serve_until_signal(builder)
        .await
        .map_err(|e| CliError::Other(format!("sandbox: {e}")))
}

/// The verifier `veo3 listen` and `--callback-listen` use: the key from the environment, or
/// explicitly unsigned.
fn verifier(hmac_key_env: &str, unsigned: bool) -> Result<veo3_webhook::Verifier, CliError> {
    if unsigned {
        return Ok(veo3_webhook::Verifier::unsigned());
    }
    let key = std::env::var(hmac_key_env).map_err(|_| {
        CliError::Usage(format!(
            "{hmac_key_env} is not set: export the webhook HMAC key, or pass --unsigned"
        ))
    })?;
    let key = veo3_webhook::WebhookKey::new(key)
        .map_err(|e| CliError::Usage(format!("{hmac_key_env}: {e}")))?;
    Ok(veo3_webhook::Verifier::new(key))
}

async fn listen(args: &ListenArgs, printer: Printer) -> Result<(), CliError> {
    let verifier = verifier(&args.hmac_key_env, args.unsigned)?;
    // When whoever reads stdout goes away (`veo3 listen | head -1`), stop listening instead of
    // acknowledging callbacks nobody will see.
    let stdout_closed = std::sync::Arc::new(tokio::sync::Notify::new());
    let closed = stdout_closed.clone();
    let config = veo3_webhook::Config::new(verifier).on_callback(move |callback| {
        use std::io::Write as _;
        // One JSON line per verified, deduplicated callback, flushed at once for pipes.
        let mut stdout = std::io::stdout().lock();
        let written = writeln!(stdout, "{}", callback.to_json()).and_then(|()| stdout.flush());
        if written.is_err() {
            closed.notify_one();
        }
    });
    let receiver = veo3_webhook::Receiver::bind(args.addr, config)
        .await
        .map_err(|e| CliError::Other(format!("cannot listen on {}: {e}", args.addr)))?;
    printer.note(format!("listening on {} (Ctrl-C stops)", receiver.url("/")));
    let outcome = tokio::select! {
        () = Interrupt::received() => Ok(()),
        () = stdout_closed.notified() => {
            Err(CliError::Other("stdout was closed; stopped listening".into()))
        }
    };
    receiver
        .shutdown()
        .await
        .map_err(|e| CliError::Other(format!("stopping the receiver: {e}")))?;
    outcome
}

/// The whole journey on an in-process sandbox whose clock runs 100x faster.
async fn demo(args: &DemoArgs, printer: Printer, progress: Progress) -> Result<(), CliError> {
    check_output_path(Some(&args.out))?;
    let sandbox = veo3_sandbox::Sandbox::builder()
        .time_scale(0.01)
        .start()
        .await
        .map_err(|e| CliError::Other(format!("cannot start the sandbox: {e}")))?;
    printer.note(format!(
        "sandbox API at {} (time runs 100x faster)",
        sandbox.api_url()
    ));
    let client = Client::builder()
        .api_key("demo-key")
        .base_url(sandbox.api_url())
        .observer(progress.observer())
        .build()?;
    let options = WaitOptions::default()
        .poll_interval(Duration::from_millis(100))
        .first_delay(Duration::from_millis(100))
        .timeout(Duration::from_secs(120));
    let session = Session {
        client: client.clone(),
        printer,
        progress: progress.clone(),
    };

    let credits_before = client.credits().await?.0;
    let request =
        GenerateRequest::builder("A red fox trotting through fresh snow at dawn, cinematic")
            .build()?;
    let created = client.generate(&request).await?;
    session
        .printer
        .task_submitted("generation", &created.task_id);
    let record = interruptible(
        &created.task_id,
        &progress,
        client.wait_for_task(&created.task_id, &options),
    )
    .await?;
    progress.clear();
    let url = first_video(&record)?;
    let video = client.download(&url, &args.out).await?;
    progress.clear();
    let hd = interruptible(
        &created.task_id,
        &progress,
        client.upgrade_1080p_and_wait(&created.task_id, None, &options),
    )
    .await?;
    progress.clear();
    let hd_path = sibling(&args.out, "1080p");
    let hd_video = client.download(&hd.result_url, &hd_path).await?;
    progress.clear();
    let credits_after = client.credits().await?.0;
    for path in [&video.path, &hd_video.path] {
        if !looks_like_mp4(path) {
            return Err(CliError::Other(format!(
                "{} is not an MP4 file",
                path.display()
            )));
        }
    }
    sandbox.shutdown();
    printer.result(
        json!({
            "taskId": created.task_id,
            "video": download_json(&video.path, video.bytes),
            "video1080p": download_json(&hd_video.path, hd_video.bytes),
            "creditsSpent": credits_before - credits_after,
        }),
        || {
            format!(
                "demo complete:\n  task      {}\n  video     {} ({} bytes)\n  1080p     {} ({} bytes)\n  credits   {} spent (sandbox ledger)",
                created.task_id,
                video.path.display(),
                video.bytes,
                hd_video.path.display(),
                hd_video.bytes,
                credits_before - credits_after
            )
        },
    );
    Ok(())
}

/// `demo.mp4` -> `demo-1080p.mp4`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "video".into());
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mp4".into());
    path.with_file_name(format!("{stem}-{suffix}.{extension}"))
}

/// An MP4 starts with an `ftyp` box.
fn looks_like_mp4(path: &Path) -> bool {
    let mut head = [0_u8; 8];
    std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut head))
        .is_ok_and(|()| &head[4..8] == b"ftyp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_are_checked_before_anything_is_sent() {
        assert!(check_output_path(None).is_ok());
        assert!(check_output_path(Some(Path::new("video.mp4"))).is_ok());
        assert!(matches!(
            check_output_path(Some(Path::new("/no/such/folder/v.mp4"))),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            check_output_path(Some(Path::new("."))),
            Err(CliError::Usage(_))
        ));
    }

    #[test]
    fn siblings_keep_the_extension() {
        assert_eq!(
            sibling(Path::new("/tmp/demo.mp4"), "1080p"),
            PathBuf::from("/tmp/demo-1080p.mp4")
        );
        assert_eq!(
            sibling(Path::new("out"), "1080p"),
            PathBuf::from("out-1080p.mp4")
        );
    }

    #[test]
    fn exit_codes_follow_the_cause() {
        let usage = CliError::from(veo3_types::ValidationError::EmptyPrompt);
        assert_eq!(usage.exit_code(), exit::USAGE);
        assert_eq!(
            CliError::Interrupted {
                task_id: "t".into()
            }
            .exit_code(),
            exit::INTERRUPTED
        );
        assert!(
            CliError::Interrupted {
                task_id: "t".into()
            }
            .to_string()
            .contains("veo3 wait t")
        );
    }
}
