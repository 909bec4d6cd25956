//! The session every API command runs in (client, printer, progress), the dispatch from the
//! parsed command line, and the steps the commands share: wait options, finishing a task
//! (print or download), and the `--out` check made before anything is sent.

use std::path::Path;

use veo3_core::Error;
use veo3_core::download::{DownloadPolicy, TargetProblem, check_target};
use veo3_reqwest::{Client, WaitOptions};
use veo3_types::TaskRecord;

use crate::args::{BatchCommand, Cli, Command, WaitTuning};
use crate::error::CliError;
use crate::interrupt::{Interrupt, Resume, interruptible};
use crate::output::{Printer, download_json, record_json, record_text};
use crate::progress::Progress;

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    Interrupt::install();
    let printer = Printer { json: cli.json };
    let progress = Progress::new(cli.json);
    let result = match &cli.command {
        Command::Sandbox(args) => return crate::demo::sandbox(args, printer).await,
        Command::Demo(args) => return crate::demo::demo(args, printer, progress).await,
        Command::Listen(args) => return crate::listen::listen(&cli, args, printer).await,
        Command::Completions(args) => return crate::docs::completions(args.shell),
        Command::Man(args) => return crate::docs::man(args.dir.as_deref()),
        Command::Jobs(command) => return crate::jobs::jobs(command, printer).await,
        Command::Batch(BatchCommand::Status(args)) => {
            return crate::batch::status(args, printer).await;
        }
        Command::Batch(BatchCommand::Run(args)) if args.dry_run => {
            return crate::batch::dry_run(args, printer);
        }
        command => {
            // A batch draws its own display; the per-task spinner would fight it.
            let observer = match command {
                Command::Batch(_) => veo3_core::Observer::none(),
                _ => progress.observer(),
            };
            let client = client(&cli, observer)?;
            let session = Session::new(client, printer, progress.clone());
            match command {
                Command::Generate(args) => session.generate(args).await,
                Command::Status(args) => session.status(args).await,
                Command::Wait(args) => session.wait(args).await,
                Command::Download(args) => session.download(args).await,
                Command::DownloadUrl(args) => session.download_url(args).await,
                Command::Upgrade(args) => session.upgrade(args).await,
                Command::Extend(args) => session.extend(args).await,
                Command::Credits => session.credits().await,
                Command::Upload(args) => session.upload(args).await,
                Command::Batch(BatchCommand::Run(args)) => {
                    session.batch_run(args, &account(&cli)).await
                }
                Command::Batch(BatchCommand::Resume(args)) => {
                    session.batch_resume(args, &account(&cli)).await
                }
                Command::Batch(BatchCommand::Work(args)) => {
                    session.batch_work(args, &account(&cli)).await
                }
                Command::Sandbox(_)
                | Command::Demo(_)
                | Command::Listen(_)
                | Command::Completions(_)
                | Command::Man(_)
                | Command::Jobs(_)
                | Command::Batch(BatchCommand::Status(_)) => Ok(()),
            }
        }
    };
    progress.clear();
    result
}

/// The API key the journal's workers pace for (only its salted fingerprint reaches the
/// journal).
fn account(cli: &Cli) -> String {
    cli.api_key
        .as_deref()
        .map(|k| k.to_string_lossy().trim().to_owned())
        .unwrap_or_default()
}

pub(crate) fn client(cli: &Cli, observer: veo3_core::Observer) -> Result<Client, CliError> {
    let key_name = if cli.sources.api_key_from_env {
        "KIE_API_KEY"
    } else {
        "--api-key"
    };
    let key = cli
        .api_key
        .as_deref()
        .filter(|key| !key.to_string_lossy().trim().is_empty())
        .ok_or_else(|| CliError::Usage("no API key: pass --api-key or set KIE_API_KEY".into()))?
        .to_str()
        .ok_or_else(|| CliError::Usage(format!("{key_name} is not valid UTF-8")))?;
    let key = veo3_core::ApiKey::new(key).map_err(|error| named(key_name, error))?;
    let base_name = if cli.sources.base_url_from_env {
        "KIE_BASE_URL"
    } else {
        "--base-url"
    };
    let base_url = veo3_core::settings::normalize_base_url(&cli.base_url)
        .map_err(|error| named(base_name, error))?;
    let mut builder = Client::builder()
        .api_key(key.expose())
        .base_url(base_url)
        .observer(observer)
        .download_policy(DownloadPolicy::default().with_overwrite(cli.command.force()));
    if let Some(url) = cli
        .upload_base_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        let url = veo3_core::settings::normalize_base_url(url)
            .map_err(|error| named("--upload-base-url (or KIE_UPLOAD_BASE_URL)", error))?;
        builder = builder.upload_base_url(url);
    }
    Ok(builder.build()?)
}

/// A setting's problem, said once and naming the flag or variable it came from.
fn named(name: &str, error: veo3_core::Error) -> CliError {
    match error {
        veo3_core::Error::InvalidInput { message, .. } => {
            CliError::Usage(format!("{name}: {message}"))
        }
        other => CliError::Sdk(other),
    }
}

/// The wait options of `--poll-interval` and `--timeout`, refused (exit 2, before anything is
/// sent) when the interval is below the core's polling floor for `base_url`.
pub(crate) fn wait_options(tuning: &WaitTuning, base_url: &str) -> Result<WaitOptions, CliError> {
    let options = tuning_options(tuning);
    veo3_core::settings::check_poll_interval(
        &options.apply(veo3_core::PollSchedule::generation()),
        base_url,
    )
    .map_err(|error| named("--poll-interval", error))?;
    Ok(options)
}

fn tuning_options(tuning: &WaitTuning) -> WaitOptions {
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

/// What every API command holds.
pub(crate) struct Session {
    client: Client,
    pub(crate) printer: Printer,
    pub(crate) progress: Progress,
}

impl Session {
    pub(crate) fn new(client: Client, printer: Printer, progress: Progress) -> Self {
        Self {
            client,
            printer,
            progress,
        }
    }

    /// The wait options of `--poll-interval` and `--timeout` for this session's API host
    /// (refused below the polling floor; nothing is sent).
    pub(crate) fn wait_options(&self, tuning: &WaitTuning) -> Result<WaitOptions, CliError> {
        wait_options(tuning, self.client.base_url())
    }

    /// The client, for a call that may send a request: from here on a failure no longer
    /// exits 2 ("nothing was sent").
    pub(crate) fn api(&self) -> &Client {
        crate::error::mark_sent();
        &self.client
    }

    /// Waits for a task and, with `out`, downloads its first video.
    pub(crate) async fn finish_task(
        &self,
        task_id: &str,
        options: &WaitOptions,
        out: Option<&Path>,
        row: Option<&JournalRow>,
    ) -> Result<(), CliError> {
        let record = interruptible(
            || Resume::wait(task_id, out),
            &self.progress,
            self.api().wait_for_task(task_id, options),
        )
        .await;
        self.finish_record(record, out, row).await
    }

    /// Prints a finished task and, with `out`, downloads its first video; the journal's row
    /// of the task (`row`), if any, follows: succeeded, downloaded or failed.
    pub(crate) async fn finish_record(
        &self,
        record: Result<TaskRecord, CliError>,
        out: Option<&Path>,
        row: Option<&JournalRow>,
    ) -> Result<(), CliError> {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                if let (Some(row), CliError::Sdk(sdk)) = (row, &error) {
                    if sdk.innermost().is_task_failed() {
                        row.failed(sdk.innermost()).await;
                    }
                }
                return Err(error);
            }
        };
        let task_id = record.task_id.as_str();
        self.progress.clear();
        if let Some(row) = row {
            row.succeeded(&record).await;
        }
        match out {
            None => self
                .printer
                .result(record_json(&record), || record_text(&record)),
            Some(path) => {
                let url = first_video(&record)?;
                let downloaded = interruptible(
                    || Resume::download(task_id, 0, path),
                    &self.progress,
                    self.api().download(&url, path),
                )
                .await?;
                self.progress.clear();
                if let Some(row) = row {
                    row.downloaded(task_id, &url, &downloaded.path, downloaded.bytes)
                        .await;
                }
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
}

/// The journal's row of the task a command waits on (a `veo3 generate` job, or the job `veo3
/// wait` found by its task id), which the command brings to where the task got: succeeded,
/// downloaded or failed. A journal that fails to record it only loses its copy: the command's
/// own output says the same, so a failure is a warning.
pub(crate) struct JournalRow {
    pub(crate) store: std::sync::Arc<dyn veo3_jobs::Store>,
    pub(crate) job: veo3_jobs::JobId,
    /// When the task's id was journaled (Unix ms), if known.
    pub(crate) submitted_ms: Option<i64>,
}

impl JournalRow {
    /// The row of `task_id` in the journal named by `journal`, if the journal exists and
    /// knows the task (the default journal is never created for this).
    pub(crate) async fn of_task(journal: &crate::args::JournalArg, task_id: &str) -> Option<Self> {
        if journal.journal.is_none() && !crate::batch::journal_path(journal).ok()?.exists() {
            return None;
        }
        let store = crate::batch::open_journal(journal).await.ok()?;
        let job = store
            .jobs(&veo3_jobs::JobQuery::task(task_id))
            .await
            .ok()?
            .into_iter()
            .find(|j| {
                matches!(
                    j.state.kind(),
                    veo3_jobs::StateKind::Submitted | veo3_jobs::StateKind::Succeeded
                )
            })?;
        Some(Self {
            store,
            job: job.id,
            submitted_ms: job.times.submitted_ms,
        })
    }

    /// How old the task is, from the journal's time of its answer.
    pub(crate) fn age(&self) -> Option<std::time::Duration> {
        let at = self.submitted_ms?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis();
        let age = now.saturating_sub(u128::try_from(at).ok()?);
        Some(std::time::Duration::from_millis(u64::try_from(age).ok()?))
    }

    async fn set(&self, state: &veo3_jobs::JobState) {
        match self.store.transition(self.job, state).await {
            Ok(()) | Err(veo3_jobs::StoreError::Conflict { .. }) => {}
            Err(error) => {
                tracing::warn!(%error, job = %self.job, "could not journal the task's state")
            }
        }
    }

    async fn succeeded(&self, record: &TaskRecord) {
        self.set(&veo3_jobs::JobState::Succeeded {
            task_id: record.task_id.clone(),
            urls: record.video_urls().to_vec(),
            upgraded: false,
        })
        .await;
    }

    async fn downloaded(&self, task_id: &str, url: &str, path: &Path, bytes: u64) {
        let sha256 = match veo3_jobs::sha256_file(path).await {
            Ok(sha256) => sha256,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "could not hash the download for the journal");
                return;
            }
        };
        self.set(&veo3_jobs::JobState::Downloaded {
            task_id: task_id.to_owned(),
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
            bytes,
            sha256,
            url: url.to_owned(),
        })
        .await;
    }

    async fn failed(&self, error: &Error) {
        self.set(&veo3_jobs::JobState::Failed {
            task_id: None,
            code: error.code().map(|c| c.as_i64()),
            message: error.message().unwrap_or("the task failed").to_owned(),
        })
        .await;
    }
}

/// The first video URL of a finished task.
pub(crate) fn first_video(record: &TaskRecord) -> Result<String, CliError> {
    Ok(veo3_core::task_video(record, 0)?.to_owned())
}

/// Refuses an output path that cannot receive the video, before anything is submitted or
/// billed: the core's [`check_target`] (a folder, a missing folder, a trailing slash, a folder
/// that cannot be written, a `.part` in use), and an existing file unless `force`.
pub(crate) fn check_output_path(path: Option<&Path>, force: bool) -> Result<(), CliError> {
    let Some(path) = path else { return Ok(()) };
    check_target(path, force).map_err(|error| match error {
        Error::Target {
            problem: TargetProblem::Exists,
            ..
        } => CliError::Usage(format!(
            "--out {} already exists; pass --force to replace it",
            path.display()
        )),
        other => CliError::Usage(format!("--out: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_are_checked_before_anything_is_sent() {
        assert!(check_output_path(None, false).is_ok());
        assert!(check_output_path(Some(Path::new("video.mp4")), false).is_ok());
        assert!(matches!(
            check_output_path(Some(Path::new("/no/such/folder/v.mp4")), false),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            check_output_path(Some(Path::new(".")), false),
            Err(CliError::Usage(_))
        ));
    }
}
