//! Why a command failed, and the exit code each cause maps to (documented in README.md and
//! `veo3 --help`).

use std::fmt;

use veo3_core::Error;

/// Exit codes, documented in `veo3 --help`.
pub(crate) mod exit {
    /// The API, the network or a local file failed.
    pub(crate) const FAILURE: u8 = 1;
    /// Bad usage or a request that breaks a documented rule (nothing was sent).
    pub(crate) const USAGE: u8 = 2;
    /// The task ran and failed (content policy, generation failure, ...).
    pub(crate) const TASK_FAILED: u8 = 3;
    /// A wait hit its `--timeout`; the task may still finish (`veo3 wait TASK_ID`).
    pub(crate) const TIMED_OUT: u8 = 4;
    /// Interrupted by Ctrl-C; the task keeps running on the server.
    pub(crate) const INTERRUPTED: u8 = 130;
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Bad usage caught before any request (exit 2).
    Usage(String),
    /// The SDK's error.
    Sdk(Error),
    /// Ctrl-C during a wait; the task keeps running.
    Interrupted { task_id: String },
    /// Anything else (starting the sandbox, writing output).
    Other(String),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => exit::USAGE,
            Self::Sdk(error)
                if matches!(
                    error.innermost(),
                    Error::Validation(_) | Error::InvalidInput { .. }
                ) =>
            {
                exit::USAGE
            }
            Self::Sdk(error) if error.is_task_failed() => exit::TASK_FAILED,
            Self::Sdk(Error::WaitTimeout { .. }) => exit::TIMED_OUT,
            Self::Interrupted { .. } => exit::INTERRUPTED,
            Self::Sdk(_) | Self::Other(_) => exit::FAILURE,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(message) | Self::Other(message) => f.write_str(message),
            Self::Sdk(error) => {
                // One line: the error and each cause it wraps.
                write!(f, "{error}")?;
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            Self::Interrupted { task_id } => write!(
                f,
                "interrupted; task {task_id} keeps running on the server: resume with `veo3 wait {task_id}`"
            ),
        }
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
        assert_eq!(usage.exit_code(), exit::USAGE);
        assert_eq!(
            CliError::Interrupted {
                task_id: "t".into()
            }
            .exit_code(),
            exit::INTERRUPTED
        );
        assert!(
            CliError::Interrupted {
                task_id: "t".into()
            }
            .to_string()
            .contains("veo3 wait t")
        );
    }
}
