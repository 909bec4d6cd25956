//! `veo3 generate` and `veo3 extend`: the billable submissions. Each validates the request and
//! checks `--out` before the one request that bills, then prints the task id at once.

use serde_json::json;
use veo3_core::Veo3Api;
use veo3_types::{ExtendRequest, GenerateRequest};

use crate::args::{ExtendArgs, GenerateArgs};
use crate::error::CliError;
use crate::interrupt::{Resume, interruptible};
use crate::listen::verifier;
use crate::session::{Session, check_output_path, wait_options};

impl Session {
    pub(crate) async fn generate(&self, args: &GenerateArgs) -> Result<(), CliError> {
        let mut builder = GenerateRequest::builder(&args.prompt)
            .model(args.model.clone())
            .image_urls(args.images.iter().cloned());
        if let Some(ratio) = &args.aspect_ratio {
            builder = builder.aspect_ratio(ratio.clone());
        }
        if let Some(generation_type) = args.generation_type {
            builder = builder.generation_type(generation_type.into());
        }
        if let Some(resolution) = &args.resolution {
            builder = builder.resolution(resolution.clone());
        }
        if let Some(seeds) = args.seeds {
            builder = builder.seeds(seeds);
        }
        if let Some(watermark) = &args.watermark {
            builder = builder.watermark(watermark);
        }
        if let Some(url) = &args.callback_url {
            builder = builder.call_back_url(url);
        }
        if args.no_translation {
            builder = builder.enable_translation(false);
        }
        let request = builder.build()?;
        check_output_path(args.out.as_deref())?;

        // The receiver is up before the task exists, so no callback can be missed.
        let receiver = match args.callback_listen {
            Some(addr) => {
                let verifier = verifier(&args.hmac_key_env, args.unsigned_callbacks)?;
                let config = veo3_webhook::Config::new(verifier);
                let receiver = veo3_webhook::Receiver::bind(addr, config)
                    .await
                    .map_err(|e| CliError::Other(format!("cannot listen on {addr}: {e}")))?;
                Some(receiver)
            }
            None => None,
        };

        let created = self.api().generate(&request).await?;
        self.printer.task_submitted("generation", &created.task_id);
        if !args.wait && args.out.is_none() && receiver.is_none() {
            self.printer
                .result(json!({"taskId": created.task_id}), String::new);
            return Ok(());
        }
        let result = match &receiver {
            Some(receiver) => {
                let options = wait_options(&args.tuning);
                let inbox = receiver.inbox();
                let wait = self
                    .api()
                    .wait_for_task_hybrid(&created.task_id, &inbox, &options);
                let resume = || Resume::wait(&created.task_id, args.out.as_deref());
                match interruptible(resume, &self.progress, wait).await {
                    Ok(record) => self.finish_record(record, args.out.as_deref()).await,
                    Err(error) => Err(error),
                }
            }
            None => {
                self.finish_task(&created.task_id, &args.tuning, args.out.as_deref())
                    .await
            }
        };
        if let Some(receiver) = receiver {
            // Best effort: the outcome is already decided.
            let _ = receiver.shutdown().await;
        }
        result
    }

    pub(crate) async fn extend(&self, args: &ExtendArgs) -> Result<(), CliError> {
        let mut request = ExtendRequest::new(&args.task_id, &args.prompt);
        if let Some(model) = &args.model {
            request = request.model(model.clone());
        }
        if let Some(seeds) = args.seeds {
            request = request.seeds(seeds);
        }
        if let Some(watermark) = &args.watermark {
            request = request.watermark(watermark);
        }
        if let Some(url) = &args.callback_url {
            request = request.call_back_url(url);
        }
        request.validate()?;
        check_output_path(args.out.as_deref())?;
        let created = self.api().extend(&request).await?;
        self.printer.task_submitted("extension", &created.task_id);
        if !args.wait && args.out.is_none() {
            self.printer
                .result(json!({"taskId": created.task_id}), String::new);
            return Ok(());
        }
        self.finish_task(&created.task_id, &args.tuning, args.out.as_deref())
            .await
    }
}
