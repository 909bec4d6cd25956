//! Progress events: what a driver is doing, for progress bars, logs and metrics.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use veo3_types::{Endpoint, TaskState};

use crate::retry::{DisplayDuration, RetryReason};

/// What a poll saw.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PollStatus {
    /// record-info's state of the task (including [`TaskState::Unknown`] for a `successFlag`
    /// this version does not know).
    Task(TaskState),
    /// A 1080p or 4K upgrade that is still being produced, with the server's message.
    Processing {
        /// What the server said (e.g. "1080P is processing...").
        message: String,
    },
    /// The upgrade is ready.
    Ready,
    /// record-info answered 422 "record is null" for a task created a moment ago, within the
    /// grace window ([`PollSchedule::record_null_grace`](crate::PollSchedule::record_null_grace)):
    /// not visible yet, polled on.
    NotVisibleYet,
    /// The poll itself failed with a retryable error (tolerated up to
    /// [`PollSchedule::max_consecutive_errors`](crate::PollSchedule::max_consecutive_errors)
    /// times in a row), described without secrets.
    Error {
        /// The error's description.
        message: String,
    },
}

impl fmt::Display for PollStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Task(TaskState::Unknown(raw)) => {
                write!(
                    f,
                    "unknown task state {raw:?} (not a successFlag this SDK knows)"
                )
            }
            Self::Task(state) => write!(f, "{state}"),
            Self::Processing { message } if message.is_empty() => f.write_str("processing"),
            Self::Processing { message } => write!(f, "processing ({message})"),
            Self::Ready => f.write_str("ready"),
            Self::NotVisibleYet => f.write_str("not visible yet (record is null)"),
            Self::Error { message } => write!(f, "poll failed ({message})"),
        }
    }
}

/// What made a wait poll.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PollTrigger {
    /// The poll schedule (for a hybrid wait: the safety net).
    #[default]
    Schedule,
    /// A verified callback for the task arrived; the poll confirms it (the callback body is
    /// not signed, so the record decides).
    Callback,
}

impl fmt::Display for PollTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Schedule => "schedule",
            Self::Callback => "callback",
        })
    }
}

/// How a wait or flow ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finish {
    /// The result is ready.
    Succeeded,
    /// The task reported failure, or the wait stopped on an error.
    Failed {
        /// The error's description.
        message: String,
    },
    /// The deadline passed.
    TimedOut,
}

/// One step of progress. Events are cheap to build and carry no secrets.
///
/// The enum is `#[non_exhaustive]` and so are its variants: match with `..`, and build the
/// variants defined for the client crates with their constructors (e.g.
/// [`Event::download_progress`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A billable call created a task.
    #[non_exhaustive]
    Submitted {
        /// The endpoint that created it (generate, extend or get-4k-video).
        endpoint: Endpoint,
        /// The new (or, for 4K, the source) task id.
        task_id: String,
    },
    /// A poll returned.
    #[non_exhaustive]
    Polled {
        /// The task being waited for.
        task_id: String,
        /// What the poll saw.
        status: PollStatus,
        /// The poll's number, from 1.
        poll: u32,
        /// Time since the wait started.
        elapsed: Duration,
        /// What made the wait poll: its schedule, or a callback (hybrid waits).
        trigger: PollTrigger,
    },
    /// A call failed in a way that is safe to repeat and will be sent again after `delay`.
    #[non_exhaustive]
    Retrying {
        /// The endpoint being retried.
        endpoint: Endpoint,
        /// Why.
        reason: RetryReason,
        /// How long the driver waits before the next attempt.
        delay: Duration,
        /// The number of the next attempt (2 for the first retry).
        attempt: u32,
    },
    /// A wait ended.
    #[non_exhaustive]
    Finished {
        /// The task waited for.
        task_id: String,
        /// How it ended.
        outcome: Finish,
        /// Polls made.
        polls: u32,
        /// Time since the wait started.
        elapsed: Duration,
    },
    /// Bytes of a result file arrived (emitted by the client crates while downloading).
    #[non_exhaustive]
    DownloadProgress {
        /// Bytes received so far.
        bytes: u64,
        /// The total, when the server announced it.
        total: Option<u64>,
        /// Average rate so far, in bytes per second.
        bytes_per_second: u64,
    },
    /// A download completed and the file is in place under its final name.
    #[non_exhaustive]
    DownloadFinished {
        /// Bytes written.
        bytes: u64,
        /// Time the download took.
        elapsed: Duration,
    },
    /// A local image is about to be uploaded (by the generate-with-images flows).
    #[non_exhaustive]
    Uploading {
        /// The image as the caller named it (path or file name).
        name: String,
        /// Its size in bytes.
        bytes: u64,
    },
    /// Bytes of a local file went out in a streamed upload (emitted while the transport
    /// streams it, paced like [`Event::DownloadProgress`]; each attempt starts again at 0,
    /// and the last event of a complete body has `bytes == total`).
    #[non_exhaustive]
    UploadProgress {
        /// The file as the caller named it.
        name: String,
        /// Bytes of the file handed to the connection in this attempt.
        bytes: u64,
        /// The file's size.
        total: u64,
        /// Average rate of this attempt so far, in bytes per second.
        bytes_per_second: u64,
    },
    /// A local image was uploaded; `url` is what the generation will use.
    #[non_exhaustive]
    Uploaded {
        /// The image as the caller named it.
        name: String,
        /// The hosted URL.
        url: String,
    },
}

impl Event {
    /// A [`Event::DownloadProgress`].
    pub fn download_progress(bytes: u64, total: Option<u64>, bytes_per_second: u64) -> Self {
        Self::DownloadProgress {
            bytes,
            total,
            bytes_per_second,
        }
    }

    /// A [`Event::DownloadFinished`].
    pub fn download_finished(bytes: u64, elapsed: Duration) -> Self {
        Self::DownloadFinished { bytes, elapsed }
    }

    /// A [`Event::Uploading`].
    pub fn uploading(name: impl Into<String>, bytes: u64) -> Self {
        Self::Uploading {
            name: name.into(),
            bytes,
        }
    }

    /// A [`Event::UploadProgress`].
    pub fn upload_progress(
        name: impl Into<String>,
        bytes: u64,
        total: u64,
        bytes_per_second: u64,
    ) -> Self {
        Self::UploadProgress {
            name: name.into(),
            bytes,
            total,
            bytes_per_second,
        }
    }

    /// A [`Event::Uploaded`].
    pub fn uploaded(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self::Uploaded {
            name: name.into(),
            url: url.into(),
        }
    }

    /// A [`Event::Submitted`].
    pub fn submitted(endpoint: Endpoint, task_id: impl Into<String>) -> Self {
        Self::Submitted {
            endpoint,
            task_id: task_id.into(),
        }
    }

    /// The task id the event is about, if any.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Self::Submitted { task_id, .. }
            | Self::Polled { task_id, .. }
            | Self::Finished { task_id, .. } => Some(task_id),
            _ => None,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Submitted { endpoint, task_id } => {
                write!(f, "{endpoint}: submitted task {task_id}")
            }
            Self::Polled {
                task_id,
                status,
                poll,
                elapsed,
                trigger,
            } => {
                write!(
                    f,
                    "task {task_id}: poll {poll} at {}: {status}",
                    DisplayDuration(*elapsed)
                )?;
                match trigger {
                    PollTrigger::Callback => f.write_str(" (after a callback)"),
                    _ => Ok(()),
                }
            }
            Self::Retrying {
                endpoint,
                reason,
                delay,
                attempt,
            } => {
                write!(
                    f,
                    "{endpoint}: {reason}; attempt {attempt} in {}",
                    DisplayDuration(*delay)
                )
            }
            Self::Finished {
                task_id,
                outcome,
                polls,
                elapsed,
            } => {
                let outcome = match outcome {
                    Finish::Succeeded => "succeeded".to_owned(),
                    Finish::Failed { message } => format!("failed: {message}"),
                    Finish::TimedOut => "timed out".to_owned(),
                };
                write!(
                    f,
                    "task {task_id}: {outcome} after {polls} poll(s) in {}",
                    DisplayDuration(*elapsed)
                )
            }
            Self::DownloadProgress {
                bytes,
                total: Some(total),
                ..
            } => write!(f, "downloaded {bytes} of {total} bytes"),
            Self::DownloadProgress {
                bytes, total: None, ..
            } => write!(f, "downloaded {bytes} bytes"),
            Self::Uploading { name, bytes } => write!(f, "uploading {name} ({bytes} bytes)"),
            Self::UploadProgress {
                name, bytes, total, ..
            } => write!(f, "uploading {name}: {bytes} of {total} bytes"),
            Self::Uploaded { name, url } => write!(f, "uploaded {name}: {url}"),
            Self::DownloadFinished { bytes, elapsed } => {
                write!(
                    f,
                    "download finished: {bytes} bytes in {}",
                    DisplayDuration(*elapsed)
                )
            }
        }
    }
}

/// Receives [`Event`]s. Cheap to clone (an `Arc`); the default observer ignores everything.
///
/// The callback runs on the driver's task or thread, between steps: keep it short (update a
/// progress bar, send to a channel) and do not block in it.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use veo3_core::{Event, Observer};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// let observer = Observer::new(move |event: &Event| sink.lock().unwrap().push(event.to_string()));
/// observer.emit(&Event::download_progress(10, Some(20), 5));
/// assert_eq!(seen.lock().unwrap().as_slice(), ["downloaded 10 of 20 bytes"]);
/// ```
#[derive(Clone, Default)]
pub struct Observer(Option<Callback>);

type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

impl Observer {
    /// Calls `callback` for every event.
    pub fn new(callback: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(callback)))
    }

    /// An observer that ignores every event.
    pub fn none() -> Self {
        Self(None)
    }

    /// Delivers `event`.
    pub fn emit(&self, event: &Event) {
        if let Some(callback) = &self.0 {
            callback(event);
        }
    }

    /// `true` when events go somewhere (lets callers skip building costly events).
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }
}

impl PartialEq for Observer {
    /// Two observers are equal when both ignore events or both deliver to the same callback.
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observer(active)"
        } else {
            "Observer(none)"
        })
    }
}
