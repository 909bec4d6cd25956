//! `veo3 status`, `veo3 wait`, `veo3 download`, `veo3 download-url` and `veo3 credits`:
//! commands about a task or file that already exists (or the account), which never bill.

use serde_json::json;
use veo3_core::Veo3Api;

use crate::args::{DownloadArgs, DownloadUrlArgs, TaskArgs, WaitArgs};
use crate::error::CliError;
use crate::interrupt::{Resume, interruptible};
use crate::output::{download_json, record_json, record_text};
use crate::session::{Session, check_output_path};

impl Session {
    pub(crate) async fn status(&self, args: &TaskArgs) -> Result<(), CliError> {
        let record = self.api().record_info(&args.task_id).await?;
        self.printer
            .result(record_json(&record), || record_text(&record));
        Ok(())
    }

    pub(crate) async fn wait(&self, args: &WaitArgs) -> Result<(), CliError> {
        check_output_path(args.out.as_deref(), args.force)?;
        let mut options = self.wait_options(&args.tuning)?;
        // A task the journal knows (a `veo3 generate` of earlier) gets its row finished too,
        // and kie's grace for a new task's "record is null" from its journaled time.
        let row = crate::session::JournalRow::of_task(&args.journal, &args.task_id).await;
        if let Some(age) = row.as_ref().and_then(|r| r.age()) {
            options = options.created_ago(age);
        }
        self.finish_task(&args.task_id, &options, args.out.as_deref(), row.as_ref())
            .await
    }

    pub(crate) async fn download(&self, args: &DownloadArgs) -> Result<(), CliError> {
        check_output_path(Some(&args.out), args.force)?;
        if args.source.contains("://") && !is_url(&args.source) {
            return Err(CliError::Usage(format!(
                "{} is neither a task id nor an http(s) URL",
                crate::output::clean_line(&args.source)
            )));
        }
        let resume = || Resume::download(&args.source, args.index, &args.out);
        let downloaded = if is_url(&args.source) {
            if args.index != 0 {
                return Err(CliError::Usage(
                    "--index picks a video of a task; a URL is one video".into(),
                ));
            }
            interruptible(
                resume,
                &self.progress,
                self.api().download(&args.source, &args.out),
            )
            .await?
        } else {
            interruptible(
                resume,
                &self.progress,
                self.api()
                    .download_task_video(&args.source, args.index, &args.out),
            )
            .await?
        };
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

    pub(crate) async fn download_url(&self, args: &DownloadUrlArgs) -> Result<(), CliError> {
        if !is_url(&args.url) {
            return Err(CliError::Usage(format!(
                "URL {} must be an absolute http(s) URL",
                crate::output::clean_line(&args.url)
            )));
        }
        let link = self.api().download_url(&args.url).await?;
        self.printer
            .result(json!({"downloadUrl": link}), || link.clone());
        Ok(())
    }

    pub(crate) async fn credits(&self) -> Result<(), CliError> {
        let credits = self.api().credits().await?;
        self.printer.result(json!({"credits": credits.0}), || {
            format!("{} credits", credits.0)
        });
        Ok(())
    }
}

/// Whether a `download` argument is a URL rather than a task id (task ids never hold `://`).
fn is_url(source: &str) -> bool {
    let lower = source.trim_start().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}
