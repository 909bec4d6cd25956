//! `veo3 generate` and `veo3 extend`: the billable submissions. Each validates the request and
//! checks `--out` before the one request that bills, then prints the task id at once.

use serde_json::json;
use std::path::Path;
use veo3_core::Veo3Api;

use veo3_reqwest::{Stage, WaitOptions};
use veo3_types::{ExtendRequest, GenerateRequest, ImageInput};

use crate::args::{ExtendArgs, GenerateArgs};
use crate::error::CliError;
use crate::interrupt::{Resume, interruptible};
use crate::listen::verifier;
use crate::session::{JournalRow, Session, check_output_path};

impl Session {
    pub(crate) async fn generate(&self, args: &GenerateArgs) -> Result<(), CliError> {
        let mut builder = GenerateRequest::builder(&args.prompt).model(args.model.clone());
        for image in &args.images {
            builder = builder.image(ImageInput::parse(image));
        }
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
        if let Some(duration) = args.duration {
            builder = builder.duration(duration);
        }
        // Always sent (the request type sends it either way): the server's default is not
        // what decides.
        builder = builder.enable_translation(!args.no_translation);
        // Every image (files included) is checked before anything is sent.
        let pending = builder.build_with_images()?;
        veo3_core::prepare_images(&pending)?;
        check_output_path(args.out.as_deref(), args.force)?;
        let options = self.wait_options(&args.tuning)?;

        // The receiver is up before the task exists, so no callback can be missed.
        let receiver = start_receiver(
            args.callback_listen,
            &args.hmac_key_env,
            args.unsigned_callbacks,
        )
        .await?;

        // Journaled before it is sent, like a batch job: a billed task id never lives only in
        // the terminal's scrollback.
        let request = self.upload_images(&pending).await?;
        let journal = match args.no_journal {
            true => None,
            false => Some(record_submit(&args.journal, &request).await?),
        };
        let answer = self.api().generate(&request).await;
        if let Some(row) = &journal {
            record_answer(row, &answer).await;
        }
        let created = answer?;
        self.printer.task_submitted("generation", &created.task_id);
        if !args.wait && args.out.is_none() && receiver.is_none() {
            self.printer
                .result(json!({"taskId": created.task_id}), String::new);
            return Ok(());
        }
        self.finish_new_task(
            &created.task_id,
            receiver,
            &options,
            args.out.as_deref(),
            journal.as_ref(),
        )
        .await
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
        check_output_path(args.out.as_deref(), args.force)?;
        let options = self.wait_options(&args.tuning)?;
        // As for generate: the receiver is up before the extension exists.
        let listen = &args.listen;
        let receiver = start_receiver(
            listen.callback_listen,
            &listen.hmac_key_env,
            listen.unsigned_callbacks,
        )
        .await?;
        let created = self.api().extend(&request).await?;
        self.printer.task_submitted("extension", &created.task_id);
        if !args.wait && args.out.is_none() && receiver.is_none() {
            self.printer
                .result(json!({"taskId": created.task_id}), String::new);
            return Ok(());
        }
        let mut options = options;
        if receiver.is_some() {
            // The extension stage's safety net, with the user's tuning on top.
            options.schedule = Some(self.api().poll_schedule(Stage::Extension).safety_net());
        }
        self.finish_new_task(
            &created.task_id,
            receiver,
            &options,
            args.out.as_deref(),
            None,
        )
        .await
    }

    /// Waits for a task this command just created, then prints it (and downloads it with
    /// `out`): on its callback when `receiver` listens, otherwise by polling from the
    /// schedule's first delay (a read at once would only find it queued). The receiver is
    /// shut down afterwards.
    async fn finish_new_task(
        &self,
        task_id: &str,
        receiver: Option<veo3_webhook::Receiver>,
        options: &WaitOptions,
        out: Option<&Path>,
        row: Option<&JournalRow>,
    ) -> Result<(), CliError> {
        let resume = || Resume::wait(task_id, out);
        let api = self.api();
        let record = match &receiver {
            Some(receiver) => {
                let inbox = receiver.inbox();
                let wait = api.wait_for_task_hybrid(task_id, &inbox, options);
                interruptible(resume, &self.progress, wait).await
            }
            None => {
                let wait = api.wait_for_new_task(task_id, options);
                interruptible(resume, &self.progress, wait).await
            }
        };
        let result = self.finish_record(record, out, row).await;
        if let Some(receiver) = receiver {
            // Best effort: the outcome is already decided.
            let _ = receiver.shutdown().await;
        }
        result
    }
}

/// The callback receiver of `--callback-listen`, bound before anything is sent so that no
/// callback can be missed; `None` without the flag.
pub(crate) async fn start_receiver(
    addr: Option<std::net::SocketAddr>,
    hmac_key_env: &str,
    unsigned: bool,
) -> Result<Option<veo3_webhook::Receiver>, CliError> {
    let Some(addr) = addr else { return Ok(None) };
    let verifier = verifier(hmac_key_env, unsigned)?;
    let config = veo3_webhook::Config::new(verifier);
    let receiver = veo3_webhook::Receiver::bind(addr, config)
        .await
        .map_err(|e| CliError::Other(format!("cannot listen on {addr}: {e}")))?;
    Ok(Some(receiver))
}

/// Journals a `veo3 generate` as `submitting`, before it is sent.
async fn record_submit(
    journal: &crate::args::JournalArg,
    request: &GenerateRequest,
) -> Result<JournalRow, CliError> {
    let store = crate::batch::open_journal(journal).await.map_err(|e| {
        CliError::Other(format!(
            "{e} (pass --no-journal to generate without a journal)"
        ))
    })?;
    let cost = veo3_jobs::PriceTable::default().generation(request);
    let job = veo3_jobs::NewJob::new(request.clone(), "generate").cost(cost);
    let id = store
        .add_job(&job, &veo3_jobs::JobState::Submitting)
        .await
        .map_err(|e| {
            CliError::Other(format!(
                "{e} (pass --no-journal to generate without a journal)"
            ))
        })?;
    Ok(JournalRow {
        store,
        job: id,
        submitted_ms: None,
    })
}

/// Journals the generate answer: the task id, an unknown outcome, or a refusal.
async fn record_answer(
    row: &JournalRow,
    answer: &Result<veo3_types::TaskCreated, veo3_core::Error>,
) {
    use veo3_jobs::JobState;
    let state = match answer {
        Ok(created) => JobState::Submitted {
            task_id: created.task_id.clone(),
        },
        Err(error) if error.is_outcome_unknown() => JobState::Unknown,
        Err(error) => JobState::Failed {
            task_id: None,
            code: error.code().map(|c| c.as_i64()),
            message: error.to_string(),
        },
    };
    if let Err(error) = row.store.transition(row.job, &state).await {
        // The task id is printed next anyway; the journal only failed to keep a copy.
        tracing::warn!(%error, "could not journal the generate answer");
    }
}
