//! `veo3 jobs list|show`: the journal's history, batches and `veo3 generate` alike.

use serde_json::{Value, json};
use veo3_jobs::{Job, JobId, JobQuery, StateKind};

use crate::args::JobsCommand;
use crate::batch::open_journal;
use crate::error::CliError;
use crate::output::Printer;

pub(crate) async fn jobs(command: &JobsCommand, printer: Printer) -> Result<(), CliError> {
    match command {
        JobsCommand::List(args) => {
            let store = open_journal(&args.journal).await?;
            let mut query = JobQuery::default().newest(args.limit);
            if let Some(state) = &args.state {
                let kind = StateKind::parse(state).ok_or_else(|| {
                    CliError::Usage(format!(
                        "--state {state}: use one of {}",
                        StateKind::ALL.map(StateKind::as_str).join(", ")
                    ))
                })?;
                query = query.states(&[kind]);
            }
            let jobs = store
                .jobs(&query)
                .await
                .map_err(|e| CliError::Other(e.to_string()))?;
            if printer.json {
                for job in &jobs {
                    crate::output::to_stdout(format_args!("{}", job_json(job)));
                }
            } else {
                for job in &jobs {
                    crate::output::to_stdout(format_args!(
                        "{:>6}  {:<10}  {:<24}  {:<34}  {}",
                        job.id,
                        job.state.kind().as_str(),
                        job.name,
                        job.state.task_id().unwrap_or("-"),
                        shorten(&job.request.prompt, 60)
                    ));
                }
            }
            Ok(())
        }
        JobsCommand::Show(args) => {
            let store = open_journal(&args.journal).await?;
            let job = store
                .job(JobId(args.id))
                .await
                .map_err(|e| CliError::Other(e.to_string()))?
                .ok_or_else(|| {
                    CliError::Usage(format!("no job {} in {}", args.id, store.location()))
                })?;
            let value = job_json(&job);
            printer.result(value.clone(), || {
                serde_json::to_string_pretty(&value).unwrap_or_default()
            });
            Ok(())
        }
    }
}

fn job_json(job: &Job) -> Value {
    let mut value = veo3_jobs::report::manifest_line(job);
    value["batch"] = json!(job.batch.map(|b| b.0));
    value["detail"] = serde_json::to_value(&job.state).unwrap_or(Value::Null);
    value["request"] = serde_json::to_value(&job.request).unwrap_or(Value::Null);
    value
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
