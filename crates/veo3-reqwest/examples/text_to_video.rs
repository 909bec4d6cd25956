//! Text to video, to a file: the one-liner most programs need.
//!
//! ```text
//! cargo run -p veo3-reqwest --example text_to_video            # in-process sandbox
//! KIE_BASE_URL=http://127.0.0.1:8080 KIE_API_KEY=sk-... cargo run -p veo3-reqwest --example text_to_video
//! ```

mod common;

use veo3_reqwest::{AspectRatio, GenerateRequest, Model, Observer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setup = common::setup(Observer::none()).await?;
    let client = &setup.client;

    let request = GenerateRequest::builder("A red fox trotting through fresh snow at dawn")
        .model(Model::Veo3Fast)
        .aspect_ratio(AspectRatio::Landscape)
        .build()?; // invalid requests fail here, before anything is sent (or billed)

    // Sent at most once; if its outcome is unknown the error says so and nothing is resent.
    let task = client.generate_and_wait(&request, &setup.wait).await?;
    let url = task.video_urls().first().ok_or("the task has no video")?;

    // `fox.mp4.part` while downloading, `fox.mp4` once complete and verified.
    let file = client.download(url, "fox.mp4").await?;
    println!(
        "task {}: {} bytes in {}",
        task.task_id,
        file.bytes,
        file.path.display()
    );
    Ok(())
}
