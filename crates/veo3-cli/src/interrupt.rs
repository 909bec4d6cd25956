//! Interrupts: Ctrl-C (SIGINT), SIGTERM and SIGHUP, listened for from the start of the
//! program and raced against every long step, so that an interrupt, whoever sends it (a
//! user, a supervisor, a closed terminal), leaves on screen what was stopped and the command
//! that resumes it.

use std::fmt;
use std::future::Future;
use std::path::Path;

use veo3_core::Error;

use crate::error::CliError;
use crate::output::{clean_line, shell_word};
use crate::progress::Progress;

/// The signals handled, listened for from the start of the program: one that arrives between
/// printing a task id and starting to wait must still end the wait cleanly, not kill the
/// process before it says how to resume.
static INTERRUPT: std::sync::OnceLock<Interrupt> = std::sync::OnceLock::new();

/// Which signal stopped the command; the exit code is 128 + its number, as shells report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`kill`, a supervisor stopping the process).
    Terminate,
    /// SIGHUP (the terminal went away).
    Hangup,
}

impl Signal {
    /// The signal's number on Unix (also used for the exit code elsewhere).
    pub(crate) fn number(self) -> u8 {
        match self {
            Self::Hangup => 1,
            Self::Interrupt => 2,
            Self::Terminate => 15,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Interrupt => "Ctrl-C (SIGINT)",
            Self::Terminate => "SIGTERM",
            Self::Hangup => "SIGHUP",
        })
    }
}

pub(crate) struct Interrupt {
    #[cfg(unix)]
    signals: tokio::sync::Mutex<UnixSignals>,
}

#[cfg(unix)]
struct UnixSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Interrupt {
    /// Installs the handlers (call once, inside the runtime, before any request).
    pub(crate) fn install() {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = (|| {
                Ok::<_, std::io::Error>(UnixSignals {
                    interrupt: signal(SignalKind::interrupt())?,
                    terminate: signal(SignalKind::terminate())?,
                    hangup: signal(SignalKind::hangup())?,
                })
            })();
            if let Ok(signals) = signals {
                let _ = INTERRUPT.set(Interrupt {
                    signals: tokio::sync::Mutex::new(signals),
                });
            }
        }
        #[cfg(not(unix))]
        let _ = INTERRUPT.set(Interrupt {});
    }

    /// Completes on the next interrupt and says which one it was.
    pub(crate) async fn received() -> Signal {
        #[cfg(unix)]
        if let Some(interrupt) = INTERRUPT.get() {
            let mut signals = interrupt.signals.lock().await;
            let UnixSignals {
                interrupt,
                terminate,
                hangup,
            } = &mut *signals;
            // `recv` yields `None` only if the runtime's signal driver is gone; that is no
            // interrupt, so it must not end the race.
            return tokio::select! {
                Some(()) = interrupt.recv() => Signal::Interrupt,
                Some(()) = terminate.recv() => Signal::Terminate,
                Some(()) = hangup.recv() => Signal::Hangup,
                else => std::future::pending().await,
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    }
}

/// What an interrupted step leaves behind, and the command that takes it up again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resume {
    /// What keeps going or was stopped, e.g. "task X keeps running on the server".
    pub(crate) state: String,
    /// The command line that resumes it, e.g. `veo3 wait X`.
    pub(crate) command: String,
}

impl Resume {
    /// A wait for a generation or extension: `veo3 wait ID [--out PATH]`.
    pub(crate) fn wait(task_id: &str, out: Option<&Path>) -> Self {
        let mut command = format!("veo3 wait {}", shell_word(task_id));
        if let Some(out) = out {
            command.push_str(&format!(
                " --out {}",
                shell_word(&out.display().to_string())
            ));
        }
        Self {
            state: format!("task {} keeps running on the server", clean_line(task_id)),
            command,
        }
    }

    /// A download of a task's video or of a URL: `veo3 download SOURCE --out PATH`.
    pub(crate) fn download(source: &str, index: usize, out: &Path) -> Self {
        let mut command = format!(
            "veo3 download {} --out {}",
            shell_word(source),
            shell_word(&out.display().to_string())
        );
        if index != 0 {
            command.push_str(&format!(" --index {index}"));
        }
        Self {
            state: format!(
                "the download to {} stopped",
                clean_line(&out.display().to_string())
            ),
            command,
        }
    }

    /// An upgrade: the same `veo3 upgrade` again, which reads (1080p) or repeats (4K, as the
    /// reference recommends for polling: a repeat answers "processing" for a job that exists
    /// rather than billing again) the request for the same job. `job_id` is the job waited on,
    /// shown when known: a 4K job's id as its answer named it. A 1080p version has no id of
    /// its own; it is named by its source task and video index.
    pub(crate) fn upgrade(
        task_id: &str,
        resolution: &str,
        job_id: Option<&str>,
        index: u32,
        out: Option<&Path>,
    ) -> Self {
        let mut command = format!(
            "veo3 upgrade {} --resolution {resolution}",
            shell_word(task_id)
        );
        if index != 0 {
            command.push_str(&format!(" --index {index}"));
        }
        if let Some(out) = out {
            command.push_str(&format!(
                " --out {}",
                shell_word(&out.display().to_string())
            ));
        }
        let source = clean_line(task_id);
        let state = match job_id {
            Some(job) => format!(
                "{} job {} (video {index} of task {source}) is still being made on the server",
                resolution.to_uppercase(),
                clean_line(job)
            ),
            None if resolution == "4k" => format!(
                "the 4K request for video {index} of task {source} may have reached the server"
            ),
            None => format!(
                "the {resolution} version of video {index} of task {source} is still being made on the server"
            ),
        };
        Self { state, command }
    }
}

/// Runs `step` until it finishes or an interrupt arrives, which ends the command with
/// `resume` on screen.
pub(crate) async fn interruptible<T>(
    resume: impl FnOnce() -> Resume,
    progress: &Progress,
    step: impl Future<Output = Result<T, Error>>,
) -> Result<T, CliError> {
    tokio::select! {
        result = step => result.map_err(CliError::from),
        signal = Interrupt::received() => {
            progress.clear();
            Err(CliError::Interrupted { signal, resume: resume() })
        }
    }
}
