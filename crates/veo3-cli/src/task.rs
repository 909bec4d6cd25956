//! `veo3 status`, `veo3 wait`, `veo3 download` and `veo3 credits`: commands about a task that
//! already exists (or the account), which never bill.

use serde_json::json;
use veo3_core::Veo3Api;

use crate::args::{DownloadArgs, TaskArgs, WaitArgs};
use crate::error::CliError;
use crate::interrupt::interruptible;
use crate::output::{download_json, record_json, record_text};
use crate::session::{Session, check_output_path};

impl Session {
    pub(crate) async fn status(&self, args: &TaskArgs) -> Result<(), CliError> {
        let record = self.client.record_info(&args.task_id).await?;
        self.printer
            .result(record_json(&record), || record_text(&record));
        Ok(())
    }

    pub(crate) async fn wait(&self, args: &WaitArgs) -> Result<(), CliError> {
        check_output_path(args.out.as_deref())?;
        self.finish_task(&args.task_id, &args.tuning, args.out.as_deref())
            .await
    }

    pub(crate) async fn download(&self, args: &DownloadArgs) -> Result<(), CliError> {
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

    pub(crate) async fn credits(&self) -> Result<(), CliError> {
        let credits = self.client.credits().await?;
        self.printer.result(json!({"credits": credits.0}), || {
            format!("{} credits", credits.0)
        });
        Ok(())
    }
}
