//! Why a command failed, and the exit code each cause maps to (documented in README.md and
//! `veo3 --help`).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use veo3_core::{Error, WaitTarget};

use crate::interrupt::{Resume, Signal};

/// Exit codes, documented in `veo3 --help` and README.md.
pub(crate) mod exit {
    /// The API, the network or a local file failed, or bad input was found after a request
    /// had already been sent.
    pub(crate) const FAILURE: u8 = 1;
    /// Bad usage or a request that breaks a documented rule, found before anything was sent.
    pub(crate) const USAGE: u8 = 2;
    /// The task ran and failed (content policy, generation failure, ...).
    pub(crate) const TASK_FAILED: u8 = 3;
    /// A wait hit its `--timeout`; the task may still finish (`veo3 wait TASK_ID`).
    pub(crate) const TIMED_OUT: u8 = 4;
    /// Interrupted by a signal: 128 + its number (130 for Ctrl-C, 143 for SIGTERM, 129 for
    /// SIGHUP), as shells report it.
    pub(crate) const SIGNAL_BASE: u8 = 128;
}

/// Set once a command may have sent a request; from then on no failure exits 2, which
/// promises that nothing was sent.
static SENT: AtomicBool = AtomicBool::new(false);

/// Records that a request may be sent from now on (called when the client is handed out).
pub(crate) fn mark_sent() {
    SENT.store(true, Ordering::Relaxed);
}

/// Whether [`mark_sent`] was called.
pub(crate) fn anything_sent() -> bool {
    SENT.load(Ordering::Relaxed)
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Bad usage (exit 2 when caught before any request, as it always is).
    Usage(String),
    /// The SDK's error.
    Sdk(Error),
    /// A signal during a long step; `resume` says what was left and how to take it up.
    Interrupted { signal: Signal, resume: Resume },
    /// Anything else (starting the sandbox, writing output).
    Other(String),
}

impl CliError {
    /// The exit code; `sent` is whether a request may have been sent (see [`anything_sent`]).
    pub(crate) fn exit_code(&self, sent: bool) -> u8 {
        match self {
            Self::Usage(_) if !sent => exit::USAGE,
            Self::Sdk(error)
                if !sent
                    && matches!(
                        error.innermost(),
                        Error::Validation(_) | Error::InvalidInput { .. }
                    ) =>
            {
                exit::USAGE
            }
            Self::Sdk(error) if error.innermost().is_task_failed() => exit::TASK_FAILED,
            Self::Sdk(Error::WaitTimeout { .. }) => exit::TIMED_OUT,
            Self::Interrupted { signal, .. } => exit::SIGNAL_BASE + signal.number(),
            Self::Usage(_) | Self::Sdk(_) | Self::Other(_) => exit::FAILURE,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(message) | Self::Other(message) => f.write_str(message),
            Self::Sdk(Error::Validation(rule)) => {
                // The SDK names the wire field; the user typed a flag.
                write!(f, "invalid request: {rule} ({})", flag_of(rule.field()))
            }
            Self::Sdk(error) => {
                // One line: the error and each cause it wraps (no error repeats its source).
                write!(f, "{error}")?;
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                // A wait that ended without the task's own verdict leaves it running.
                if let Error::WaitFailed {
                    task_id,
                    target: WaitTarget::Task,
                    ..
                }
                | Error::WaitTimeout {
                    task_id,
                    target: WaitTarget::Task,
                    ..
                } = error
                {
                    write!(
                        f,
                        "; the task may still finish: resume with `veo3 wait {task_id}`"
                    )?;
                }
                Ok(())
            }
            Self::Interrupted { signal, resume } => write!(
                f,
                "interrupted by {signal}; {}: resume with `{}`",
                resume.state, resume.command
            ),
        }
    }
}

/// The flag or argument that sets a request's wire field.
fn flag_of(field: &str) -> &str {
    match field.split('[').next().unwrap_or(field) {
        "prompt" => "the PROMPT argument",
        "taskId" => "the TASK_ID argument",
        "imageUrls" => "--image",
        "seeds" => "--seeds",
        "model" => "--model",
        "callBackUrl" => "--callback-url",
        "watermark" => "--watermark",
        "aspectRatio" => "--aspect-ratio",
        "generationType" => "--generation-type",
        "resolution" => "--resolution",
        "index" => "--index",
        _ => field,
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        Self::Sdk(error)
    }
}

impl From<veo3_types::ValidationError> for CliError {
    fn from(error: veo3_types::ValidationError) -> Self {
        Self::Sdk(Error::from(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_cause() {
        let usage = CliError::from(veo3_types::ValidationError::EmptyPrompt);
        assert_eq!(usage.exit_code(false), exit::USAGE);
        assert_eq!(
            usage.exit_code(true),
            exit::FAILURE,
            "2 promises nothing was sent"
        );
        let interrupted = |signal| CliError::Interrupted {
            signal,
            resume: Resume::wait("t", None),
        };
        assert_eq!(interrupted(Signal::Interrupt).exit_code(true), 130);
        assert_eq!(interrupted(Signal::Terminate).exit_code(true), 143);
        assert_eq!(interrupted(Signal::Hangup).exit_code(true), 129);
        assert!(
            interrupted(Signal::Terminate)
                .to_string()
                .contains("`veo3 wait t`")
        );
        let failed = CliError::from(Error::task_failed(
            "t",
            veo3_types::TaskState::Failed,
            Some(400),
            None,
        ));
        assert_eq!(failed.exit_code(true), exit::TASK_FAILED);
    }

    #[test]
    fn a_validation_error_names_the_flag_and_states_the_rule_once() {
        let error = CliError::from(veo3_types::ValidationError::SeedsOutOfRange { value: 5 });
        assert_eq!(
            error.to_string(),
            "invalid request: seeds must be between 10000 and 99999, got 5 (--seeds)"
        );
    }
}
