//! What a job is and the states it goes through.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use veo3_types::GenerateRequest;

/// A job's id in its journal (positive, assigned by the store, never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for JobId {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim().parse().map(JobId)
    }
}

/// A batch's id in its journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchId(pub i64);

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A follow-up after the generation: which version of the video to download.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upgrade {
    /// The 1080p version (`get-1080p-video`; not billed again).
    #[serde(rename = "1080p")]
    Hd1080p,
    /// The 4K version (`get-4k-video`; billable, journaled before it is sent).
    #[serde(rename = "4k")]
    Uhd4k,
}

impl Upgrade {
    /// `1080p` or `4k`, as the CLI and the journal write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hd1080p => "1080p",
            Self::Uhd4k => "4k",
        }
    }
}

impl FromStr for Upgrade {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "1080p" => Ok(Self::Hd1080p),
            "4k" => Ok(Self::Uhd4k),
            other => Err(format!("unknown upgrade {other:?} (expected 1080p or 4k)")),
        }
    }
}

/// What the user asked for: one generation, its output name and its follow-up.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewJob {
    /// The generate request, validated. Its `callBackUrl` is set by the runner, per job.
    pub request: GenerateRequest,
    /// The output file's stem (unique within a batch); the file is `<name>.mp4`.
    pub name: String,
    /// The line of the batch file it came from, for messages.
    pub line: Option<u64>,
    /// A follow-up (1080p or 4K) before downloading.
    pub upgrade: Option<Upgrade>,
    /// Its estimated cost in credits (see [`PriceTable`](crate::PriceTable)).
    pub cost: i64,
}

impl NewJob {
    /// A job for `request`, downloaded as `<name>.mp4`.
    pub fn new(request: GenerateRequest, name: impl Into<String>) -> Self {
        Self {
            request,
            name: name.into(),
            line: None,
            upgrade: None,
            cost: 0,
        }
    }

    /// Sets the batch-file line the job came from.
    pub fn line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    /// Sets the follow-up.
    pub fn upgrade(mut self, upgrade: Option<Upgrade>) -> Self {
        self.upgrade = upgrade;
        self
    }

    /// Sets the estimated cost.
    pub fn cost(mut self, cost: i64) -> Self {
        self.cost = cost;
        self
    }
}

/// The state of a job, as journaled.
///
/// ```text
///  pending --> submitting --> submitted(task) --> succeeded(urls) --> downloaded(path, bytes, sha256)
///     ^            |   \             |                 |  ^
///     |            |    \            v                 v  |
///     +-- 402/429 -+     +-> unknown  failed(code, msg)  upgrading (4K/1080p follow-up)
/// ```
///
/// `submitting` is written before the generate request is sent and `submitted` the moment its
/// answer arrives, so a crash in between leaves `submitting`, which a resume reports as
/// `unknown` instead of sending again (the request may have been billed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Not sent yet.
    Pending,
    /// The generate request is about to be sent, or was sent and its answer is not journaled.
    Submitting,
    /// kie accepted the request: the task exists (and is billed).
    Submitted {
        /// kie's task id.
        task_id: String,
    },
    /// The task finished; `urls` are the videos to download.
    Succeeded {
        /// kie's task id.
        task_id: String,
        /// The result URLs (of the follow-up's version once `upgraded`).
        urls: Vec<String>,
        /// Whether the follow-up (if the job has one) is done and `urls` are its result.
        #[serde(default)]
        upgraded: bool,
    },
    /// The follow-up (1080p or 4K) is requested; a resume waits for it (a repeated 4K request
    /// for the same task does not bill again).
    Upgrading {
        /// kie's task id of the generation.
        task_id: String,
    },
    /// The task or the request failed for good.
    Failed {
        /// kie's task id, when the task existed.
        task_id: Option<String>,
        /// kie's code (or HTTP status), when there was one.
        code: Option<i64>,
        /// What went wrong.
        message: String,
    },
    /// The video is on disk under its final name.
    Downloaded {
        /// kie's task id.
        task_id: String,
        /// Where the file is.
        path: PathBuf,
        /// Its length.
        bytes: u64,
        /// Its SHA-256, lowercase hex.
        sha256: String,
        /// The URL it came from.
        url: String,
    },
    /// A generate request that may have reached kie and whose answer never came: the task
    /// may exist and be billed. Not resubmitted unless asked.
    Unknown,
}

/// The name of a state, without its data (what the store indexes and filters on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StateKind {
    /// [`JobState::Pending`].
    Pending,
    /// [`JobState::Submitting`].
    Submitting,
    /// [`JobState::Submitted`].
    Submitted,
    /// [`JobState::Succeeded`].
    Succeeded,
    /// [`JobState::Upgrading`].
    Upgrading,
    /// [`JobState::Failed`].
    Failed,
    /// [`JobState::Downloaded`].
    Downloaded,
    /// [`JobState::Unknown`].
    Unknown,
}

impl StateKind {
    /// Every state, in life-cycle order.
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Submitting,
        Self::Submitted,
        Self::Succeeded,
        Self::Upgrading,
        Self::Downloaded,
        Self::Failed,
        Self::Unknown,
    ];

    /// The journal's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Submitting => "submitting",
            Self::Submitted => "submitted",
            Self::Succeeded => "succeeded",
            Self::Upgrading => "upgrading",
            Self::Failed => "failed",
            Self::Downloaded => "downloaded",
            Self::Unknown => "unknown",
        }
    }

    /// Reads the journal's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// A state nothing more happens to without an explicit choice.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Downloaded | Self::Failed | Self::Unknown)
    }

    /// A state whose job has (or may have) a billed task.
    pub fn is_billed(self) -> bool {
        !matches!(self, Self::Pending | Self::Failed)
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JobState {
    /// The state's name.
    pub fn kind(&self) -> StateKind {
        match self {
            Self::Pending => StateKind::Pending,
            Self::Submitting => StateKind::Submitting,
            Self::Submitted { .. } => StateKind::Submitted,
            Self::Succeeded { .. } => StateKind::Succeeded,
            Self::Upgrading { .. } => StateKind::Upgrading,
            Self::Failed { .. } => StateKind::Failed,
            Self::Downloaded { .. } => StateKind::Downloaded,
            Self::Unknown => StateKind::Unknown,
        }
    }

    /// kie's task id, once known.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Self::Submitted { task_id }
            | Self::Succeeded { task_id, .. }
            | Self::Upgrading { task_id }
            | Self::Downloaded { task_id, .. } => Some(task_id),
            Self::Failed { task_id, .. } => task_id.as_deref(),
            Self::Pending | Self::Submitting | Self::Unknown => None,
        }
    }

    /// Whether the state machine allows going from `from` to `to`.
    ///
    /// The only ways back to `pending` are a submit that provably did not reach kie (402, 429,
    /// a connection refused) and the explicit resubmission of an `unknown` or `failed` job.
    /// Nothing with a task id ever goes back to `pending` or `submitting`: that would bill
    /// again.
    pub fn allowed(from: StateKind, to: StateKind) -> bool {
        use StateKind::*;
        matches!(
            (from, to),
            (Pending, Submitting)
                | (Pending, Failed)
                | (Submitting, Submitted)
                | (Submitting, Pending)
                | (Submitting, Failed)
                | (Submitting, Unknown)
                | (Unknown, Submitted)
                | (Unknown, Pending)
                | (Submitted, Succeeded)
                | (Submitted, Failed)
                | (Succeeded, Upgrading)
                | (Succeeded, Downloaded)
                | (Succeeded, Failed)
                | (Upgrading, Succeeded)
                | (Upgrading, Failed)
                | (Failed, Pending)
                | (Downloaded, Downloaded)
        )
    }
}

/// The states a job may be in for a write of `to` to apply, by their journal names: every state
/// [`JobState::allowed`] lets go to `to`, or, for the answer of a send (`answer`), only
/// `submitting` and `unknown` among them (a late answer after its worker was declared lost,
/// when nobody sent the job again).
pub(crate) fn predecessors(to: StateKind, answer: bool) -> Vec<&'static str> {
    StateKind::ALL
        .into_iter()
        .filter(|from| !answer || matches!(from, StateKind::Submitting | StateKind::Unknown))
        .filter(|from| JobState::allowed(*from, to))
        .map(StateKind::as_str)
        .collect()
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Submitted { task_id } => write!(f, "submitted (task {task_id})"),
            Self::Succeeded { task_id, .. } => write!(f, "succeeded (task {task_id})"),
            Self::Upgrading { task_id } => write!(f, "upgrading (task {task_id})"),
            Self::Failed { code, message, .. } => match code {
                Some(code) => write!(f, "failed ({code}: {message})"),
                None => write!(f, "failed ({message})"),
            },
            Self::Downloaded { path, .. } => write!(f, "downloaded ({})", path.display()),
            other => f.write_str(other.kind().as_str()),
        }
    }
}

/// A job as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Its batch (`None` for a task recorded by `veo3 generate`).
    pub batch: Option<BatchId>,
    /// The output name.
    pub name: String,
    /// The batch-file line.
    pub line: Option<u64>,
    /// The request (without the per-job `callBackUrl`).
    pub request: GenerateRequest,
    /// The follow-up.
    pub upgrade: Option<Upgrade>,
    /// The current state.
    pub state: JobState,
    /// Credits this job is estimated to cost.
    pub cost: i64,
    /// Unix milliseconds: created, last changed, submitted (answer journaled), finished.
    pub times: JobTimes,
    /// The worker that holds it (claimed and not yet final), if any.
    pub owner: Option<crate::store::WorkerId>,
    /// Its fencing token: bumped by every claim and takeover, so that a worker that lost
    /// the job (its lease expired and another took it) can tell, and sends nothing.
    pub fence: i64,
    /// For an extra task (a second task billed for one job, when a late answer came for a
    /// job already sent again elsewhere): the job it belongs to.
    pub extra_of: Option<JobId>,
}

/// When things happened to a job, in Unix milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobTimes {
    /// Put in the journal.
    pub created_ms: i64,
    /// Last state change.
    pub updated_ms: i64,
    /// The task id was journaled.
    pub submitted_ms: Option<i64>,
    /// Reached a final state.
    pub finished_ms: Option<i64>,
}

/// A batch's settings, stored with it so that a resume needs nothing else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchSettings {
    /// The file the jobs came from (for messages).
    pub source: Option<String>,
    /// Where videos, `manifest.jsonl` and `index.html` go.
    pub out_dir: PathBuf,
    /// Most tasks in flight (submitted and not yet downloaded) at once.
    pub concurrency: usize,
    /// Submits per window: at most `rate_max` generate requests per `rate_window_ms`.
    pub rate_max: u32,
    /// The rate window, in milliseconds.
    pub rate_window_ms: u64,
    /// Refuse to start when the estimated cost of the jobs left exceeds this.
    pub max_credits: Option<i64>,
    /// The follow-up for every job.
    pub upgrade: Option<Upgrade>,
    /// Where callbacks arrive, when the batch uses them.
    #[serde(default)]
    pub callback: Option<CallbackSettings>,
    /// A fixed poll interval for the waits, in milliseconds (default: the stage's schedule).
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
}

/// How a batch receives callbacks. The webhook key itself is never stored: only the name of
/// the environment variable that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallbackSettings {
    /// The public URL kie posts to (each job adds `job=<id>` to its query).
    pub url: String,
    /// The local address to listen on.
    pub listen: String,
    /// The environment variable holding the webhook HMAC key.
    pub hmac_key_env: String,
    /// Accept unsigned callbacks.
    pub unsigned: bool,
}

impl CallbackSettings {
    /// Callbacks posted to `url`, received on `listen`, checked with the key in `hmac_key_env`.
    pub fn new(
        url: impl Into<String>,
        listen: impl Into<String>,
        hmac_key_env: impl Into<String>,
        unsigned: bool,
    ) -> Self {
        Self {
            url: url.into(),
            listen: listen.into(),
            hmac_key_env: hmac_key_env.into(),
            unsigned,
        }
    }
}

impl BatchSettings {
    /// Defaults: concurrency 50, kie's limit of 20 submits per 10 s, no cap, no follow-up.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            source: None,
            out_dir: out_dir.into(),
            concurrency: 50,
            rate_max: 20,
            rate_window_ms: 10_000,
            max_credits: None,
            upgrade: None,
            callback: None,
            poll_interval_ms: None,
        }
    }
}

/// A batch as the journal holds it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Batch {
    /// Its id.
    pub id: BatchId,
    /// Its settings.
    pub settings: BatchSettings,
    /// Unix milliseconds when it was created.
    pub created_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_with_a_task_id_goes_back_to_sending() {
        for from in StateKind::ALL {
            for to in [StateKind::Pending, StateKind::Submitting] {
                if matches!(
                    from,
                    StateKind::Submitted
                        | StateKind::Succeeded
                        | StateKind::Upgrading
                        | StateKind::Downloaded
                ) {
                    assert!(!JobState::allowed(from, to), "{from} -> {to}");
                }
            }
        }
        assert!(!JobState::allowed(
            StateKind::Submitting,
            StateKind::Submitting
        ));
        assert!(JobState::allowed(StateKind::Pending, StateKind::Submitting));
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for kind in StateKind::ALL {
            assert_eq!(StateKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!("4K".parse::<Upgrade>(), Ok(Upgrade::Uhd4k));
        assert!("8k".parse::<Upgrade>().is_err());
    }
}
