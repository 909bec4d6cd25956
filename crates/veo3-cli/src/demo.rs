//! `veo3 sandbox` and `veo3 demo`: the local emulator, and the whole journey run on it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use veo3_core::Veo3Api;
use veo3_core::download::DownloadPolicy;
use veo3_reqwest::{Client, WaitOptions};
use veo3_types::GenerateRequest;

use crate::args::DemoArgs;
use crate::error::CliError;
use crate::interrupt::{Resume, interruptible};
use crate::output::{Printer, download_json};
use crate::progress::Progress;
use crate::session::{Session, check_output_path, first_video};

pub(crate) async fn sandbox(
    args: &veo3_sandbox::serve::ServeArgs,
    printer: Printer,
) -> Result<(), CliError> {
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

/// The whole journey on an in-process sandbox whose clock runs 100x faster.
pub(crate) async fn demo(
    args: &DemoArgs,
    printer: Printer,
    progress: Progress,
) -> Result<(), CliError> {
    check_output_path(Some(&args.out), args.force)?;
    check_output_path(Some(&sibling(&args.out, "1080p")), args.force)?;
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
        .upload_base_url(sandbox.upload_url())
        .observer(progress.observer())
        .download_policy(DownloadPolicy::default().with_overwrite(args.force))
        .build()?;
    let options = WaitOptions::default()
        .poll_interval(Duration::from_millis(100))
        .first_delay(Duration::from_millis(100))
        .timeout(Duration::from_secs(120));
    let session = Session::new(client.clone(), printer, progress.clone());
    crate::error::mark_sent();

    let credits_before = client.credits().await?.0;
    let request =
        GenerateRequest::builder("A red fox trotting through fresh snow at dawn, cinematic")
            .build()?;
    let created = client.generate(&request).await?;
    session
        .printer
        .task_submitted("generation", &created.task_id);
    let record = interruptible(
        || Resume {
            state: "the demo stopped".into(),
            command: "veo3 demo".into(),
        },
        &progress,
        client.wait_for_task(&created.task_id, &options),
    )
    .await?;
    progress.clear();
    let url = first_video(&record)?;
    let video = client.download(&url, &args.out).await?;
    progress.clear();
    let hd = interruptible(
        || Resume {
            state: "the demo stopped".into(),
            command: "veo3 demo".into(),
        },
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
}
