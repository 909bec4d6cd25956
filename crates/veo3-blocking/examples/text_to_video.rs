//! Text to video with plain function calls: generate, wait, download.
//!
//! ```text
//! KIE_API_KEY=... cargo run -p veo3-blocking --example blocking_text_to_video -- "A red fox in the snow" fox.mp4
//! ```
//!
//! Against the local sandbox (`cargo run -p veo3-sandbox -- --time-scale 0.05` prints its URL),
//! set `KIE_BASE_URL` to the sandbox's API URL and any `KIE_API_KEY`; `VEO3_POLL_INTERVAL_MS`
//! makes the wait poll at that interval from the start (handy with a small time scale).
//! Progress goes to stderr.

use std::process::ExitCode;
use std::time::Duration;

use veo3_blocking::{Client, Error, Event, GenerateRequest, Model, Observer, WaitOptions};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let prompt = args
        .next()
        .unwrap_or_else(|| "A red fox trotting through fresh snow at dawn".to_owned());
    let output = args.next().unwrap_or_else(|| "video.mp4".to_owned());
    match run(&prompt, &output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(task_id) = error.task_id() {
                eprintln!("the task is {task_id}; check it later with record-info");
            }
            if error.is_outcome_unknown() {
                eprintln!("the request may have created a task: check before submitting again");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(prompt: &str, output: &str) -> Result<(), Error> {
    let client = Client::builder()
        .from_env()
        .observer(Observer::new(|event: &Event| match event {
            // Download progress is frequent; report only its end.
            Event::DownloadProgress { .. } => {}
            other => eprintln!("{other}"),
        }))
        .build()?;
    eprintln!(
        "API: {}; credits: {}",
        client.base_url(),
        client.credits()?.0
    );

    let request = GenerateRequest::builder(prompt)
        .model(Model::Veo3Fast)
        .build()?;
    // Poll every 10 s after the first check; give up waiting after 15 minutes.
    let mut wait = WaitOptions::default()
        .poll_interval(Duration::from_secs(10))
        .timeout(Duration::from_secs(15 * 60));
    if let Some(interval) = std::env::var("VEO3_POLL_INTERVAL_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
    {
        wait = wait.first_delay(interval).poll_interval(interval);
    }
    let record = client.generate_and_wait(&request, &wait)?;
    let Some(url) = record.video_urls().first() else {
        return Err(Error::invalid_input(
            "the task succeeded without a video URL",
        ));
    };
    let saved = client.download(url, output)?;
    println!("{} ({} bytes)", saved.path.display(), saved.bytes);
    Ok(())
}
