//! Progress through callbacks: an [`Observer`] sees every step of a flow (submission, each
//! poll, retries, the end, download progress), which is what progress bars and logs hang on.
//!
//! For kie's own HTTP callbacks (`callBackUrl`), see the `veo3-webhook` crate.

mod common;

use veo3_reqwest::{Event, GenerateRequest, Observer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The callback runs on the flow's task, between steps: keep it short.
    let observer = Observer::new(|event: &Event| match event {
        Event::DownloadProgress {
            bytes,
            total,
            bytes_per_second,
            ..
        } => {
            let total = total.map_or_else(|| "?".to_owned(), |t| t.to_string());
            eprintln!(
                "  {bytes}/{total} bytes ({} KiB/s)",
                bytes_per_second / 1024
            );
        }
        other => eprintln!("event: {other}"),
    });
    let setup = common::setup(observer).await?;
    let client = &setup.client;

    let request = GenerateRequest::builder("Lanterns rising over a lake at night").build()?;
    let task = client.generate_and_wait(&request, &setup.wait).await?;
    let file = client
        .download_task_video(&task.task_id, 0, "lanterns.mp4")
        .await?;
    println!("{}: {} bytes", file.path.display(), file.bytes);
    Ok(())
}
