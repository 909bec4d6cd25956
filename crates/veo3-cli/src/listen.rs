//! `veo3 listen`: a standalone callback receiver printing each new verified callback as a JSON
//! line, and the verifier it shares with `generate --callback-listen`.
//!
//! kie signs only the task id and the timestamp, so a line keeps them apart from the body:
//! `{"signed":{"taskId","timestamp"},"unsigned":{...},"confirmed":...}`. With an API key, each
//! callback is confirmed by one record-info read before it is printed (`"confirmed":true` and
//! the `record` when the task's record agrees with it); without one it is printed at once as
//! `"confirmed":false`, with the reason.

use std::sync::Arc;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use veo3_core::Veo3Api as _;
use veo3_reqwest::Client;
use veo3_types::TaskState;
use veo3_webhook::VerifiedCallback;

use crate::args::{Cli, ListenArgs};
use crate::error::CliError;
use crate::interrupt::Interrupt;
use crate::output::{Printer, record_json};
use crate::progress::Progress;

/// Callbacks waiting for their confirming read; beyond it they are printed unconfirmed rather
/// than queued without bound.
const BACKLOG: usize = 1024;
/// Confirming reads in flight at once.
const CONFIRMING: usize = 8;
/// Connections kept free for everything else the process opens (stdio, the API client).
const SPARE_FILES: u64 = 64;

/// The verifier `veo3 listen` and `--callback-listen` use: the key from the environment, or
/// explicitly unsigned.
pub(crate) fn verifier(
    hmac_key_env: &str,
    unsigned: bool,
) -> Result<veo3_webhook::Verifier, CliError> {
    if unsigned {
        return Ok(veo3_webhook::Verifier::unsigned());
    }
    let key = std::env::var(hmac_key_env).map_err(|_| {
        CliError::Usage(format!(
            "{hmac_key_env} is not set: export the webhook HMAC key, or pass --unsigned"
        ))
    })?;
    let key = veo3_webhook::WebhookKey::new(key)
        .map_err(|e| CliError::Usage(format!("{hmac_key_env}: {e}")))?;
    Ok(veo3_webhook::Verifier::new(key))
}

pub(crate) async fn listen(cli: &Cli, args: &ListenArgs, printer: Printer) -> Result<(), CliError> {
    let verifier = verifier(&args.hmac_key_env, args.unsigned)?;
    let has_key = cli
        .api_key
        .as_deref()
        .is_some_and(|key| !key.to_string_lossy().trim().is_empty());
    // The same client (and the same checks of the key and base URL) as every API command;
    // no progress bars, stdout is for the callback lines.
    let confirmer = if has_key {
        Some(crate::session::client(cli, Progress::new(true).observer())?)
    } else {
        None
    };
    // When whoever reads stdout goes away (`veo3 listen | head -1`), stop listening instead of
    // acknowledging callbacks nobody will see.
    let stdout_closed = Arc::new(Notify::new());
    let (queue, queued) = mpsc::channel::<VerifiedCallback>(BACKLOG);
    let config = veo3_webhook::Config::new(verifier).max_connections(connection_limit());
    let config = match &confirmer {
        // The handler must answer kie at once: it only queues the callback for its read.
        Some(_) => {
            let closed = stdout_closed.clone();
            config.on_callback(move |callback| {
                if let Err(full) = queue.try_send(callback) {
                    let callback = full.into_inner();
                    let line = unconfirmed(&callback, "too many callbacks waiting to be confirmed");
                    print_line(&line, &closed);
                }
            })
        }
        None => {
            let closed = stdout_closed.clone();
            config.on_callback(move |callback| {
                let line = unconfirmed(
                    &callback,
                    "no API key (--api-key or KIE_API_KEY) to confirm it with",
                );
                print_line(&line, &closed);
            })
        }
    };
    let receiver = veo3_webhook::Receiver::bind(args.addr, config)
        .await
        .map_err(|e| CliError::Other(format!("cannot listen on {}: {e}", args.addr)))?;
    let confirming = async {
        match &confirmer {
            Some(client) => confirm_all(client, queued, &stdout_closed).await,
            None => std::future::pending().await,
        }
    };
    printer.note(format!("listening on {} (Ctrl-C stops)", receiver.url("/")));
    if confirmer.is_none() {
        printer.note("no API key: callbacks are printed unconfirmed (their body is not signed)");
    }
    let outcome = tokio::select! {
        _ = Interrupt::received() => Ok(()),
        () = stdout_closed.notified() => {
            Err(CliError::Other("stdout was closed; stopped listening".into()))
        }
        () = confirming => Ok(()),
    };
    receiver
        .shutdown()
        .await
        .map_err(|e| CliError::Other(format!("stopping the receiver: {e}")))?;
    outcome
}

/// Confirms queued callbacks, a few at a time, printing each when its read is back.
async fn confirm_all(client: &Client, queued: mpsc::Receiver<VerifiedCallback>, closed: &Notify) {
    let callbacks = futures_util::stream::unfold(queued, |mut queued| async move {
        queued.recv().await.map(|callback| (callback, queued))
    });
    callbacks
        .for_each_concurrent(CONFIRMING, |callback| async move {
            let line = confirm(client, &callback).await;
            print_line(&line, closed);
        })
        .await;
}

/// One record-info read, and the line it makes: confirmed when the task's record has finished
/// the way the callback says.
async fn confirm(client: &Client, callback: &VerifiedCallback) -> Value {
    let record = match client.record_info(&callback.task_id).await {
        Ok(record) => record,
        Err(error) => return unconfirmed(callback, &format!("record-info failed: {error}")),
    };
    let says_success = callback.callback.is_success();
    let agrees = match record.state {
        TaskState::Success => says_success,
        TaskState::Failed | TaskState::GenerationFailed => !says_success,
        // Still running, or a state this version does not know: nothing to confirm.
        _ => false,
    };
    let mut line = veo3_webhook::to_json(callback);
    line["confirmed"] = agrees.into();
    if !agrees {
        line["unconfirmedBecause"] = format!(
            "record-info says the task is {}, the callback says it {}",
            record.state,
            if says_success { "succeeded" } else { "failed" }
        )
        .into();
    }
    line["record"] = record_json(&record);
    line
}

fn unconfirmed(callback: &VerifiedCallback, because: &str) -> Value {
    let mut line = veo3_webhook::to_json(callback);
    line["confirmed"] = false.into();
    line["unconfirmedBecause"] = json!(because);
    line
}

/// One JSON line on stdout, flushed at once for pipes; a closed stdout stops the listener.
fn print_line(line: &Value, closed: &Notify) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        closed.notify_one();
    }
}

/// How many connections the receiver may hold: its default, within the open-file limit.
///
/// A stalled client must not be able to exhaust the process's file descriptors (accepting then
/// fails, and a genuine callback waits in the backlog), so the soft limit is first raised to
/// the hard one, as servers commonly do, and the receiver keeps a margin below it.
fn connection_limit() -> usize {
    let default = veo3_webhook::Config::DEFAULT_MAX_CONNECTIONS;
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
            let raised = || rustix::process::Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            if soft < hard && setrlimit(Resource::Nofile, raised()).is_ok() {
                limit = raised();
            }
        }
        if let Some(files) = limit.current {
            let usable = usize::try_from(files.saturating_sub(SPARE_FILES)).unwrap_or(usize::MAX);
            if usable < default {
                tracing::warn!(
                    open_file_limit = files,
                    connections = usable.max(1),
                    "the open-file limit caps the callback connections"
                );
                return usable.max(1);
            }
        }
    }
    default
}
