//! Image to video: animate between a first and a last frame.
//!
//! The images must be reachable by kie.ai over https (or uploaded first with kie's upload
//! API). The sandbox accepts any http(s) URL.

mod common;

use veo3_reqwest::{AspectRatio, GenerateRequest, GenerationType, Model, Observer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setup = common::setup(Observer::none()).await?;
    let client = &setup.client;

    let request = GenerateRequest::builder("The fox turns its head towards the camera")
        .model(Model::Veo3Fast)
        .generation_type(GenerationType::FirstAndLastFrames)
        .image_url("https://example.com/fox-first.png")
        .image_url("https://example.com/fox-last.png")
        .aspect_ratio(AspectRatio::Portrait)
        .build()?;

    let task = client.generate_and_wait(&request, &setup.wait).await?;
    for (index, url) in task.video_urls().iter().enumerate() {
        let file = client.download(url, format!("fox-{index}.mp4")).await?;
        println!("{}: {} bytes", file.path.display(), file.bytes);
    }
    Ok(())
}
