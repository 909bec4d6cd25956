//! Ctrl-C: listened for from the start of the program, and raced against every long wait so
//! that an interrupt leaves the task id and the command that resumes it on screen.

use std::future::Future;

use veo3_core::Error;

use crate::error::CliError;
use crate::progress::Progress;

/// Ctrl-C, listened for from the start of the program: a Ctrl-C that arrives between
/// printing a task id and starting to wait must still end the wait cleanly, not kill the
/// process before it says how to resume.
static INTERRUPT: std::sync::OnceLock<Interrupt> = std::sync::OnceLock::new();

pub(crate) struct Interrupt {
    #[cfg(unix)]
    signal: tokio::sync::Mutex<tokio::signal::unix::Signal>,
}

impl Interrupt {
    /// Installs the handler (call once, inside the runtime, before any request).
    pub(crate) fn install() {
        #[cfg(unix)]
        if let Ok(signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        {
            let _ = INTERRUPT.set(Interrupt {
                signal: tokio::sync::Mutex::new(signal),
            });
        }
        #[cfg(not(unix))]
        let _ = INTERRUPT.set(Interrupt {});
    }

    /// Completes on the next Ctrl-C.
    pub(crate) async fn received() {
        #[cfg(unix)]
        if let Some(interrupt) = INTERRUPT.get() {
            interrupt.signal.lock().await.recv().await;
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `wait` until it finishes or Ctrl-C, which leaves the task id on screen.
pub(crate) async fn interruptible<T>(
    task_id: &str,
    progress: &Progress,
    wait: impl Future<Output = Result<T, Error>>,
) -> Result<T, CliError> {
    tokio::select! {
        result = wait => result.map_err(CliError::from),
        () = Interrupt::received() => {
            progress.clear();
            Err(CliError::Interrupted { task_id: task_id.to_owned() })
        }
    }
}
