//! Generate, then fetch the 1080p version (produced on first request; the client polls
//! until it is ready).

mod common;

use veo3_reqwest::{GenerateRequest, Model, Observer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setup = common::setup(Observer::none()).await?;
    let client = &setup.client;

    let request = GenerateRequest::builder("A paper boat drifting down a rainy street")
        .model(Model::Veo3Fast)
        .build()?;
    let task = client.generate_and_wait(&request, &setup.wait).await?;
    println!("task {} finished; asking for 1080p", task.task_id);

    let hd = client
        .upgrade_1080p_and_wait(&task.task_id, None, &setup.wait)
        .await?;
    let file = client.download(&hd.result_url, "boat-1080p.mp4").await?;
    println!("{}: {} bytes", file.path.display(), file.bytes);
    Ok(())
}
