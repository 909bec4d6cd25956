//! `veo3 listen`: a standalone callback receiver printing each verified callback as a JSON
//! line, and the verifier it shares with `generate --callback-listen`.

use crate::args::ListenArgs;
use crate::error::CliError;
use crate::interrupt::Interrupt;
use crate::output::Printer;

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

pub(crate) async fn listen(args: &ListenArgs, printer: Printer) -> Result<(), CliError> {
    let verifier = verifier(&args.hmac_key_env, args.unsigned)?;
    // When whoever reads stdout goes away (`veo3 listen | head -1`), stop listening instead of
    // acknowledging callbacks nobody will see.
    let stdout_closed = std::sync::Arc::new(tokio::sync::Notify::new());
    let closed = stdout_closed.clone();
    let config = veo3_webhook::Config::new(verifier).on_callback(move |callback| {
        use std::io::Write as _;
        // One JSON line per verified, deduplicated callback, flushed at once for pipes.
        let mut stdout = std::io::stdout().lock();
        let written =
            writeln!(stdout, "{}", veo3_webhook::to_json(&callback)).and_then(|()| stdout.flush());
        if written.is_err() {
            closed.notify_one();
        }
    });
    let receiver = veo3_webhook::Receiver::bind(args.addr, config)
        .await
        .map_err(|e| CliError::Other(format!("cannot listen on {}: {e}", args.addr)))?;
    printer.note(format!("listening on {} (Ctrl-C stops)", receiver.url("/")));
    let outcome = tokio::select! {
        _ = Interrupt::received() => Ok(()),
        () = stdout_closed.notified() => {
            Err(CliError::Other("stdout was closed; stopped listening".into()))
        }
    };
    receiver
        .shutdown()
        .await
        .map_err(|e| CliError::Other(format!("stopping the receiver: {e}")))?;
    outcome
}
