//! `veo3 upgrade`: 1080p or 4K for a finished task, waited for and optionally downloaded.

use serde_json::json;
use veo3_core::{UpgradeStatus, Veo3Api as _};
use veo3_types::Upgrade4kRequest;

use crate::args::{UpgradeArgs, UpgradeResolution};
use crate::error::CliError;
use crate::generate::start_receiver;
use crate::interrupt::{Resume, interruptible};
use crate::output::download_json;
use crate::session::{Session, check_output_path};

impl Session {
    pub(crate) async fn upgrade(&self, args: &UpgradeArgs) -> Result<(), CliError> {
        check_output_path(args.out.as_deref(), args.force)?;
        if args.task_id.trim().is_empty() {
            return Err(veo3_types::ValidationError::EmptyTaskId.into());
        }
        if args.callback_url.is_some() && args.resolution == UpgradeResolution::P1080 {
            return Err(CliError::Usage(
                "--callback-url and --callback-listen are for 4K only: the 1080p endpoint takes no callback".into(),
            ));
        }
        let options = self.wait_options(&args.tuning)?;
        let resolution = match args.resolution {
            UpgradeResolution::P1080 => "1080p",
            UpgradeResolution::K4 => "4k",
        };
        let resume = |job: Option<&str>| {
            Resume::upgrade(
                &args.task_id,
                resolution,
                job,
                args.index,
                args.out.as_deref(),
            )
        };
        let (url, mut value) = match args.resolution {
            UpgradeResolution::P1080 => {
                let result = interruptible(
                    || resume(None),
                    &self.progress,
                    self.api()
                        .upgrade_1080p_and_wait(&args.task_id, Some(args.index), &options),
                )
                .await?;
                let value = json!({"taskId": args.task_id, "resolution": "1080p", "resultUrl": result.result_url});
                (result.result_url, value)
            }
            UpgradeResolution::K4 => {
                let mut request = Upgrade4kRequest::new(&args.task_id).index(args.index);
                if let Some(url) = &args.callback_url {
                    request = request.call_back_url(url);
                }
                request.validate()?;
                // Up before the request, so that no callback can be missed.
                let listen = &args.listen;
                let receiver = start_receiver(
                    listen.callback_listen,
                    &listen.hmac_key_env,
                    listen.unsigned_callbacks,
                )
                .await?;
                // The billable request first, on its own: its answer names the 4K job, which
                // is shown (and named by an interrupt) before the wait.
                let answer = interruptible(
                    || resume(None),
                    &self.progress,
                    self.api().upgrade_4k(&request),
                )
                .await?;
                let (job_id, result) = match answer {
                    UpgradeStatus::Ready(result) => {
                        (result.task_id.clone().unwrap_or_default(), result)
                    }
                    accepted => {
                        let job_id = accepted.job_id().unwrap_or(&args.task_id).to_owned();
                        self.printer.task_submitted("4K", &job_id);
                        let result = match &receiver {
                            // The job's 4K callback (it names the source task) ends the wait.
                            Some(receiver) => {
                                let inbox = receiver.inbox();
                                interruptible(
                                    || resume(Some(&job_id)),
                                    &self.progress,
                                    self.api().wait_for_4k_hybrid(&request, &inbox, &options),
                                )
                                .await
                            }
                            None => {
                                interruptible(
                                    || resume(Some(&job_id)),
                                    &self.progress,
                                    self.api().wait_for_4k(&request, &options),
                                )
                                .await
                            }
                        };
                        if let Some(receiver) = receiver {
                            let _ = receiver.shutdown().await;
                        }
                        (job_id, result?)
                    }
                };
                let url = result.result_urls.first().cloned().ok_or_else(|| {
                    CliError::Other(format!(
                        "the 4K answer for task {} carried no video URL",
                        args.task_id
                    ))
                })?;
                let job_id = Some(job_id).filter(|id| !id.is_empty());
                let value = json!({
                    "taskId": args.task_id, "jobId": job_id, "resolution": "4k",
                    "resultUrls": result.result_urls, "imageUrls": result.image_urls,
                });
                (url, value)
            }
        };
        self.progress.clear();
        let saved = match &args.out {
            Some(path) => {
                let downloaded = interruptible(
                    || Resume::download(&url, 0, path),
                    &self.progress,
                    self.api().download(&url, path),
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
}
