//! Waiting for results: acceptors that read one poll, a pure [`WaitState`] that decides what
//! comes next, and async waiters and flows written once over `&dyn Veo3Api`, polling only or
//! hybrid (also listening for callbacks, in `hybrid`).
//!
//! A wait always ends: with the result, with the task's own failure (its code and message),
//! with [`Error::WaitFailed`] when polling itself keeps failing, or with
//! [`Error::WaitTimeout`] at the deadline, naming the last state seen. States this version
//! does not know (a new `successFlag`) are reported and polled like "running", so an API
//! change cannot turn into either a false failure or an endless loop.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;
use veo3_types::{
    ApiCode, Endpoint, ExtendRequest, GenerateRequest, Hd1080pResult, TaskRecord, TaskState,
    Upgrade4kRequest, Upgrade4kResult,
};

use crate::Error;
use crate::api::{UpgradeStatus, Veo3Api};
use crate::error::WaitTarget;
use crate::event::{Event, Finish, Observer, PollStatus, PollTrigger};
use crate::executor::Effects;
use crate::schedule::PollSchedule;

/// What one poll says about the thing awaited.
#[derive(Debug)]
#[non_exhaustive]
pub enum Acceptance<T> {
    /// Finished with a result.
    Done(T),
    /// Finished in failure.
    Failed(Error),
    /// Still running.
    Pending(PollStatus),
    /// A state this version does not know: polled like `Pending` until the deadline, and
    /// reported.
    Unknown(PollStatus),
}

/// Reads a task record: success is done, a failure state is [`Error::TaskFailed`] with the
/// task's own code and message, `0` is pending, anything else is unknown.
pub fn accept_task(record: TaskRecord) -> Acceptance<TaskRecord> {
    match &record.state {
        TaskState::Success => Acceptance::Done(record),
        TaskState::Failed | TaskState::GenerationFailed => Acceptance::Failed(Error::TaskFailed {
            task_id: record.task_id.clone(),
            state: record.state.clone(),
            code: record.error_code,
            message: record.error_message.clone(),
        }),
        TaskState::Generating => Acceptance::Pending(PollStatus::Task(TaskState::Generating)),
        other => Acceptance::Unknown(PollStatus::Task(other.clone())),
    }
}

/// The URL of video `index` (0-based) of a task, for a download: a task that failed is
/// [`Error::TaskFailed`] with its own code and message (as a wait would end), and a task
/// without that video (still running, or fewer videos) is [`Error::NoVideo`]. Both clients'
/// `download_task_video` decide with this, so they cannot disagree.
pub fn task_video(record: &TaskRecord, index: usize) -> Result<&str, Error> {
    let urls = record.video_urls();
    if let Some(url) = urls.get(index) {
        return Ok(url);
    }
    match accept_task(record.clone()) {
        Acceptance::Failed(error) => Err(error),
        _ => Err(Error::NoVideo {
            task_id: record.task_id.clone(),
            state: record.state.clone(),
            videos: urls.len(),
            index,
        }),
    }
}

/// Whether `error`, from a poll of an upgrade (1080p or 4K), is the one refusal whose meaning
/// depends on the source task: code 422 "record status is not success". The reference
/// reports it for a short while after the source task succeeded (poll again), but it is also
/// the answer for a source task that failed, which no amount of polling changes. Read the
/// source's record once and give both to [`confirm_upgrade_refusal`].
pub fn is_source_refusal(error: &Error) -> bool {
    error.code() == Some(ApiCode::Unprocessable)
        && error.message().is_some_and(|message| {
            message
                .to_ascii_lowercase()
                .contains("record status is not success")
        })
}

/// Settles a [`is_source_refusal`] answer with the source task's record (`source`, one
/// record-info read): when the source task failed, the refusal is definite and ends the wait
/// at once with the API's own message; otherwise (or when the read itself failed) it stays the
/// error the wait tolerates a few times, as the reference's transient.
pub fn confirm_upgrade_refusal<T>(
    refusal: Error,
    source: Result<TaskRecord, Error>,
) -> Result<Acceptance<T>, Error> {
    match source {
        Ok(record)
            if matches!(
                record.state,
                TaskState::Failed | TaskState::GenerationFailed
            ) =>
        {
            Ok(Acceptance::Failed(refusal))
        }
        _ => Err(refusal),
    }
}

/// Whether `error` is record-info's answer for a task it does not know: code 422
/// "record is null".
pub fn is_record_null(error: &Error) -> bool {
    error.code() == Some(ApiCode::Unprocessable)
        && error
            .message()
            .is_some_and(|message| message.trim().eq_ignore_ascii_case("record is null"))
}

/// Whether a task wait should read `error` as "the task is not visible yet" and go on: a
/// 422 "record is null" ([`is_record_null`]) for a task whose age is known and still within
/// `grace` of its creation. `age_at_start` is how old the task was when the wait started
/// (0 after this client's own submission, a journal's figure for a resumed wait, `None` when
/// nobody knows: then there is no grace, and the answer ends the wait as it always did);
/// `elapsed` is the wait's time so far.
///
/// The reference (section 3.2) reports that kie's task API answers this way for a short
/// while after creation; a task created longer ago than the window really is unknown (or
/// another account's), and polling it on would only wait for the deadline.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::{Error, is_not_visible_yet};
/// use veo3_types::{ApiCode, Endpoint};
///
/// let null = Error::api(Endpoint::RecordInfo, ApiCode::Unprocessable, "record is null");
/// let grace = Duration::from_secs(90);
/// assert!(is_not_visible_yet(&null, Some(Duration::ZERO), Duration::from_secs(5), grace));
/// assert!(!is_not_visible_yet(&null, Some(Duration::from_secs(80)), Duration::from_secs(20), grace));
/// assert!(!is_not_visible_yet(&null, None, Duration::ZERO, grace));
/// ```
pub fn is_not_visible_yet(
    error: &Error,
    age_at_start: Option<Duration>,
    elapsed: Duration,
    grace: Duration,
) -> bool {
    age_at_start.is_some_and(|age| age.saturating_add(elapsed) <= grace) && is_record_null(error)
}

/// A wait for `task_id` on `effects`' clock and observer, starting now; the schedule's first
/// delay comes first.
pub(crate) fn wait_state(
    task_id: &str,
    target: WaitTarget,
    schedule: &PollSchedule,
    effects: &Effects,
) -> WaitState {
    WaitState::new(
        task_id,
        target,
        schedule,
        effects.observer().clone(),
        effects.now(),
    )
}

/// Reads an upgrade answer: ready is done, processing is pending.
pub fn accept_upgrade<T>(status: UpgradeStatus<T>) -> Acceptance<T> {
    match status {
        UpgradeStatus::Ready(value) => Acceptance::Done(value),
        UpgradeStatus::Processing { message, .. } => {
            Acceptance::Pending(PollStatus::Processing { message })
        }
    }
}

/// One round of a 1080p wait: the request, a source refusal settled with one read of the
/// source ([`confirm_upgrade_refusal`]). Shared by the polling and the hybrid waits.
pub(crate) async fn poll_1080p(
    api: &dyn Veo3Api,
    task_id: &str,
    index: Option<u32>,
) -> Result<Acceptance<Hd1080pResult>, Error> {
    match api.hd_1080p(task_id, index).await {
        Err(refusal) if is_source_refusal(&refusal) => {
            confirm_upgrade_refusal(refusal, api.record_info(task_id).await)
        }
        result => result.map(accept_upgrade),
    }
}

/// One round of a 4K wait: the request repeated, as the reference recommends, a source
/// refusal settled as in [`poll_1080p`].
pub(crate) async fn poll_4k(
    api: &dyn Veo3Api,
    request: &Upgrade4kRequest,
) -> Result<Acceptance<Upgrade4kResult>, Error> {
    match api.upgrade_4k(request).await {
        Err(refusal) if is_source_refusal(&refusal) => {
            confirm_upgrade_refusal(refusal, api.record_info(&request.task_id).await)
        }
        result => result.map(accept_upgrade),
    }
}

/// What a wait loop does next.
#[derive(Debug)]
pub enum WaitStep<T> {
    /// Return this value.
    Done(T),
    /// Ask [`WaitState::next_delay`] and poll again.
    Continue,
    /// Return this error.
    Fail(Error),
}

/// The bookkeeping of one wait: polls made, consecutive errors, the last status, and the
/// schedule. Pure apart from emitting events to its [`Observer`] and `tracing`.
///
/// Loop (async shown; the blocking client is the same without `.await`):
///
/// ```text
/// let mut wait = WaitState::new(task_id, WaitTarget::Task, &schedule, observer, clock.now());
/// loop {
///     let Some(delay) = wait.next_delay(clock.now(), random()) else {
///         return Err(wait.timed_out(clock.now()));
///     };
///     sleep(delay).await;
///     let result = api.record_info(task_id).await.map(accept_task);
///     match wait.observe(result, clock.now()) {
///         WaitStep::Done(record) => return Ok(record),
///         WaitStep::Continue => {}
///         WaitStep::Fail(error) => return Err(error),
///     }
/// }
/// ```
#[derive(Debug)]
pub struct WaitState {
    task_id: String,
    target: WaitTarget,
    schedule: PollSchedule,
    observer: Observer,
    started: Duration,
    polls: u32,
    consecutive_errors: u32,
    last_status: Option<PollStatus>,
    immediate_first_poll: bool,
    warned_unknown: bool,
    trigger: PollTrigger,
    callback_polls: u32,
    task_age: Option<Duration>,
}

impl WaitState {
    /// Starts waiting at `now` for `target` of `task_id`, created a moment ago unless
    /// `schedule` says how old it is ([`PollSchedule::task_age`]): a 422 "record is null"
    /// within its [`PollSchedule::record_null_grace`] means "not visible yet".
    pub fn new(
        task_id: impl Into<String>,
        target: WaitTarget,
        schedule: &PollSchedule,
        observer: Observer,
        now: Duration,
    ) -> Self {
        Self {
            task_id: task_id.into(),
            target,
            schedule: schedule.clone(),
            observer,
            started: now,
            polls: 0,
            consecutive_errors: 0,
            last_status: None,
            immediate_first_poll: false,
            warned_unknown: false,
            trigger: PollTrigger::Schedule,
            callback_polls: 0,
            task_age: Some(schedule.task_age.unwrap_or(Duration::ZERO)),
        }
    }

    /// Starts a wait for a task that already exists ([`wait_for_task`], `veo3 wait ID`, any
    /// resumed wait) at `now`: its state is read at once, then `schedule` follows. Only a
    /// task submitted a moment ago is sure not to be done yet; one submitted earlier may have
    /// finished long ago, and the schedule's first delay (90 s for a generation) would only
    /// make the caller wait for an answer that is already there.
    ///
    /// Its age is what `schedule` says ([`PollSchedule::task_age`], from
    /// [`WaitOptions::created_ago`](crate::settings::WaitOptions::created_ago)); when unknown,
    /// a 422 "record is null" ends the wait at once.
    pub fn for_existing_task(
        task_id: impl Into<String>,
        schedule: &PollSchedule,
        observer: Observer,
        now: Duration,
    ) -> Self {
        let mut wait = Self::new(task_id, WaitTarget::Task, schedule, observer, now)
            .with_immediate_first_poll();
        wait.task_age = schedule.task_age;
        wait
    }

    /// Makes the first poll at once, with the schedule starting after it. For endpoints whose
    /// first call is the request itself (get-1080p-video produces the file on first request).
    pub fn with_immediate_first_poll(mut self) -> Self {
        self.immediate_first_poll = true;
        self
    }

    /// How long to wait before the next poll, or `None` when the deadline has been reached
    /// (then call [`WaitState::timed_out`]). `random` is a uniform `u64` for the jitter.
    pub fn next_delay(&self, now: Duration, random: u64) -> Option<Duration> {
        let elapsed = self.elapsed(now);
        if self.immediate_first_poll {
            if self.polls == 0 {
                return (elapsed < self.schedule.deadline).then_some(Duration::ZERO);
            }
            return self.schedule.next_delay(self.polls, elapsed, random);
        }
        self.schedule
            .next_delay(self.polls.saturating_add(1), elapsed, random)
    }

    /// Records the result of a poll made just before `now`, and says what to do next.
    pub fn observe<T>(
        &mut self,
        result: Result<Acceptance<T>, Error>,
        now: Duration,
    ) -> WaitStep<T> {
        self.observe_triggered(result, now, PollTrigger::Schedule)
    }

    /// [`WaitState::observe`] for a poll made because of `trigger`: a hybrid wait passes
    /// [`PollTrigger::Callback`] for the read that confirms a callback, which its
    /// [`Event::Polled`] then reports. The decision is the same either way: the record is
    /// authoritative, and a task still running per the record continues the schedule.
    pub fn observe_triggered<T>(
        &mut self,
        result: Result<Acceptance<T>, Error>,
        now: Duration,
        trigger: PollTrigger,
    ) -> WaitStep<T> {
        self.trigger = trigger;
        if trigger == PollTrigger::Callback {
            self.callback_polls = self.callback_polls.saturating_add(1);
        }
        self.polls = self.polls.saturating_add(1);
        let elapsed = self.elapsed(now);
        match result {
            Ok(Acceptance::Done(value)) => {
                self.consecutive_errors = 0;
                let status = match self.target {
                    WaitTarget::Task => PollStatus::Task(TaskState::Success),
                    _ => PollStatus::Ready,
                };
                self.record(status, elapsed);
                self.finish(Finish::Succeeded, elapsed);
                WaitStep::Done(value)
            }
            Ok(Acceptance::Failed(error)) => {
                let error = self.with_task_id(error);
                if let Error::TaskFailed { state, .. } = &error {
                    self.record(PollStatus::Task(state.clone()), elapsed);
                }
                self.finish(
                    Finish::Failed {
                        message: error.to_string(),
                    },
                    elapsed,
                );
                WaitStep::Fail(error)
            }
            Ok(Acceptance::Pending(status)) => {
                self.consecutive_errors = 0;
                self.record(status, elapsed);
                WaitStep::Continue
            }
            Ok(Acceptance::Unknown(status)) => {
                self.consecutive_errors = 0;
                if !self.warned_unknown {
                    self.warned_unknown = true;
                    tracing::warn!(task_id = %self.task_id, %status, "unknown state; polling on until the deadline");
                }
                self.record(status, elapsed);
                WaitStep::Continue
            }
            Err(error)
                if self.target == WaitTarget::Task
                    && is_not_visible_yet(
                        &error,
                        self.task_age,
                        elapsed,
                        self.schedule.record_null_grace,
                    ) =>
            {
                tracing::debug!(task_id = %self.task_id, "record is null within the grace window; not visible yet");
                self.record(PollStatus::NotVisibleYet, elapsed);
                WaitStep::Continue
            }
            Err(error)
                if self.tolerates(&error)
                    && self.consecutive_errors < self.schedule.max_consecutive_errors =>
            {
                self.consecutive_errors += 1;
                tracing::debug!(task_id = %self.task_id, %error, consecutive = self.consecutive_errors, "poll failed; tolerated");
                self.record(
                    PollStatus::Error {
                        message: error.to_string(),
                    },
                    elapsed,
                );
                WaitStep::Continue
            }
            Err(error) => {
                let error = Error::WaitFailed {
                    task_id: self.task_id.clone(),
                    target: self.target,
                    polls: self.polls,
                    elapsed,
                    cause: Box::new(error),
                };
                self.finish(
                    Finish::Failed {
                        message: error.to_string(),
                    },
                    elapsed,
                );
                WaitStep::Fail(error)
            }
        }
    }

    /// The deadline passed: the [`Error::WaitTimeout`] to return (and the `Finished` event).
    pub fn timed_out(&self, now: Duration) -> Error {
        let elapsed = self.elapsed(now);
        self.finish(Finish::TimedOut, elapsed);
        Error::WaitTimeout {
            task_id: self.task_id.clone(),
            target: self.target,
            elapsed,
            polls: self.polls,
            last_status: self.last_status.clone(),
        }
    }

    /// Polls made.
    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// Polls made to confirm a callback (included in [`WaitState::polls`]).
    pub fn callback_polls(&self) -> u32 {
        self.callback_polls
    }

    /// The task waited for.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// What is waited for: the task itself, or its 1080p or 4K version. A hybrid wait takes
    /// only the callbacks this target is about ([`WaitTarget::accepts`]).
    pub fn target(&self) -> WaitTarget {
        self.target
    }

    /// Time since the wait started.
    pub fn elapsed(&self, now: Duration) -> Duration {
        now.saturating_sub(self.started)
    }

    /// What the last poll saw.
    pub fn last_status(&self) -> Option<&PollStatus> {
        self.last_status.as_ref()
    }

    /// Poll errors worth another poll: retryable ones and, for upgrades, two documented
    /// transients.
    fn tolerates(&self, error: &Error) -> bool {
        if error.is_retryable() {
            return true;
        }
        match self.target {
            WaitTarget::Task => false,
            WaitTarget::Hd1080p | WaitTarget::Upgrade4k
                if error.code() == Some(ApiCode::Unprocessable)
                    && error.message().is_some_and(|m| {
                        m.to_ascii_lowercase()
                            .contains("record status is not success")
                    }) =>
            {
                // The reference (section 8) reports this answer for a short while after the
                // source task succeeded.
                true
            }
            // The 4K waiter polls by repeating the request, which the reference documents as
            // answering 422 "processing" or 422 with URLs once a job exists; a lost repeat
            // therefore cannot bill again, and the next poll tells what happened.
            WaitTarget::Upgrade4k => error.is_outcome_unknown(),
            WaitTarget::Hd1080p => false,
        }
    }

    fn with_task_id(&self, error: Error) -> Error {
        match error {
            Error::TaskFailed {
                task_id,
                state,
                code,
                message,
            } if task_id.is_empty() => Error::TaskFailed {
                task_id: self.task_id.clone(),
                state,
                code,
                message,
            },
            other => other,
        }
    }

    fn record(&mut self, status: PollStatus, elapsed: Duration) {
        tracing::debug!(task_id = %self.task_id, poll = self.polls, %status, trigger = %self.trigger, "polled");
        self.observer.emit(&Event::Polled {
            task_id: self.task_id.clone(),
            status: status.clone(),
            poll: self.polls,
            elapsed,
            trigger: self.trigger,
        });
        self.last_status = Some(status);
    }

    fn finish(&self, outcome: Finish, elapsed: Duration) {
        tracing::info!(task_id = %self.task_id, polls = self.polls, ?outcome, "wait finished");
        self.observer.emit(&Event::Finished {
            task_id: self.task_id.clone(),
            outcome,
            polls: self.polls,
            elapsed,
        });
    }
}

/// The async wait loop, written once.
async fn drive<T, F, Fut>(mut wait: WaitState, effects: &Effects, mut poll: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Acceptance<T>, Error>>,
{
    loop {
        let Some(delay) = wait.next_delay(effects.now(), effects.random()) else {
            return Err(wait.timed_out(effects.now()));
        };
        if !delay.is_zero() {
            effects.sleeper().sleep(delay).await;
        }
        let result = poll().await;
        match wait.observe(result, effects.now()) {
            WaitStep::Done(value) => return Ok(value),
            WaitStep::Continue => {}
            WaitStep::Fail(error) => return Err(error),
        }
    }
}

/// Polls record-info until task `task_id`, which already exists, finishes: its state is read
/// at once, then `schedule` follows (see [`WaitState::for_existing_task`]).
///
/// Returns the successful record; [`Error::TaskFailed`] when the task failed;
/// [`Error::WaitTimeout`] at the deadline; [`Error::WaitFailed`] when polling keeps failing.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::{wait_for_task, Clock, Effects, PollSchedule, SimulatedClock};
///
/// # #[cfg(feature = "mock")] {
/// use veo3_core::MockVeo3Api;
/// let mut api = MockVeo3Api::new();
/// let mut polls = 0;
/// api.expect_record_info().returning(move |id| {
///     polls += 1;
///     let flag = if polls < 3 { 0 } else { 1 };
///     let data = serde_json::json!({"taskId": id, "successFlag": flag,
///                                   "response": {"resultUrls": ["https://f.example/v.mp4"]}});
///     Ok(veo3_types::TaskRecord::from_data(&data).unwrap())
/// });
/// let clock = SimulatedClock::new();
/// let effects = Effects::simulated(&clock).with_random(|| 0);
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let record = runtime.block_on(wait_for_task(&api, "t1", &PollSchedule::generation(), &effects)).unwrap();
/// assert_eq!(record.video_urls(), ["https://f.example/v.mp4"]);
/// // Three polls: at once (the task exists already), at 90 s, then 20 s later; no real time
/// // passed.
/// assert_eq!(clock.now(), Duration::from_secs(110));
/// # }
/// ```
pub async fn wait_for_task(
    api: &dyn Veo3Api,
    task_id: &str,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<TaskRecord, Error> {
    let wait =
        WaitState::for_existing_task(task_id, schedule, effects.observer().clone(), effects.now());
    wait_task(api, wait, effects).await
}

/// Polls record-info until task `task_id`, created a moment ago, finishes: the schedule's
/// first delay comes first (a read at once would only find it queued). For a caller that
/// submits and then records the id before it waits, such as a batch runner; a task that may
/// have run for a while is [`wait_for_task`]'s.
///
/// Returns what [`wait_for_task`] returns.
pub async fn wait_for_new_task(
    api: &dyn Veo3Api,
    task_id: &str,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<TaskRecord, Error> {
    let wait = wait_state(task_id, WaitTarget::Task, schedule, effects);
    wait_task(api, wait, effects).await
}

async fn wait_task(
    api: &dyn Veo3Api,
    wait: WaitState,
    effects: &Effects,
) -> Result<TaskRecord, Error> {
    let task_id = wait.task_id().to_owned();
    let span = tracing::info_span!("veo3.wait", task_id, target = "task");
    drive(wait, effects, || async {
        api.record_info(&task_id).await.map(accept_task)
    })
    .instrument(span)
    .await
}

/// Requests the 1080p version of video `index` of `task_id` and polls until it is ready.
/// The first request is made at once (it starts the production); then `schedule` applies.
pub async fn wait_for_1080p(
    api: &dyn Veo3Api,
    task_id: &str,
    index: Option<u32>,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<Hd1080pResult, Error> {
    let wait =
        wait_state(task_id, WaitTarget::Hd1080p, schedule, effects).with_immediate_first_poll();
    let span = tracing::info_span!("veo3.wait", task_id, target = "1080p");
    drive(wait, effects, || poll_1080p(api, task_id, index))
        .instrument(span)
        .await
}

/// Waits for a 4K job that was already requested, by repeating the request every poll as the
/// reference recommends (a repeat answers 422 "processing", or 422 with the URLs when done).
pub async fn wait_for_4k(
    api: &dyn Veo3Api,
    request: &Upgrade4kRequest,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<Upgrade4kResult, Error> {
    let wait = wait_state(
        request.task_id.as_str(),
        WaitTarget::Upgrade4k,
        schedule,
        effects,
    );
    let span = tracing::info_span!("veo3.wait", task_id = %request.task_id, target = "4k");
    drive(wait, effects, || poll_4k(api, request))
        .instrument(span)
        .await
}

/// Requests the 4K version (billable, sent once) and waits for it.
///
/// If the request's outcome is unknown the error is returned at once, like any billable
/// call; once the job is accepted, polling follows `schedule`.
pub async fn upgrade_4k_and_wait(
    api: &dyn Veo3Api,
    request: &Upgrade4kRequest,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<Upgrade4kResult, Error> {
    match api.upgrade_4k(request).await? {
        UpgradeStatus::Ready(result) => Ok(result),
        accepted @ UpgradeStatus::Processing { .. } => {
            announce_submitted(
                effects.observer(),
                Endpoint::Upgrade4k,
                accepted.job_id().unwrap_or(&request.task_id),
            );
            wait_for_4k(api, request, schedule, effects).await
        }
    }
}

/// Submits a generation (billable, sent at most once) and waits for it.
///
/// Emits [`Event::Submitted`] with the new id as soon as it is known; errors of the wait
/// carry the id ([`Error::task_id`]), so a created task is never lost.
pub async fn generate_and_wait(
    api: &dyn Veo3Api,
    request: &GenerateRequest,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<TaskRecord, Error> {
    let task_id = submit_generation(api, request, effects).await?;
    wait_for_new_task(api, &task_id, schedule, effects).await
}

/// Submits an extension (billable, sent at most once) and waits for it. The stitched video
/// is in [`TaskRecord::video_urls`].
pub async fn extend_and_wait(
    api: &dyn Veo3Api,
    request: &ExtendRequest,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<TaskRecord, Error> {
    let task_id = submit_extension(api, request, effects).await?;
    wait_for_new_task(api, &task_id, schedule, effects).await
}

/// Sends a generation (billable, at most once) and announces the new task: the first half of
/// every generate-and-wait flow.
pub(crate) async fn submit_generation(
    api: &dyn Veo3Api,
    request: &GenerateRequest,
    effects: &Effects,
) -> Result<String, Error> {
    let created = api.generate(request).await?;
    announce_submitted(effects.observer(), Endpoint::Generate, &created.task_id);
    Ok(created.task_id)
}

/// Sends an extension (billable, at most once) and announces the new task.
pub(crate) async fn submit_extension(
    api: &dyn Veo3Api,
    request: &ExtendRequest,
    effects: &Effects,
) -> Result<String, Error> {
    let created = api.extend(request).await?;
    announce_submitted(effects.observer(), Endpoint::Extend, &created.task_id);
    Ok(created.task_id)
}

/// Announces a task a flow has just created (a generation, an extension, an accepted 4K job):
/// [`Event::Submitted`] to `observer` and a `tracing` line. The one place both clients'
/// submit-and-wait flows announce a submission, so the id reaches the caller before any wait.
pub fn announce_submitted(observer: &Observer, endpoint: Endpoint, task_id: &str) {
    tracing::info!(task_id, endpoint = endpoint.name(), "task submitted");
    observer.emit(&Event::submitted(endpoint, task_id));
}

mod hybrid;

pub(crate) use hybrid::trigger_of;
pub use hybrid::{
    extend_and_wait_hybrid, generate_and_wait_hybrid, upgrade_4k_and_wait_hybrid,
    upgrade_1080p_and_wait_hybrid, wait_for_4k_hybrid, wait_for_existing_task_hybrid,
    wait_for_task_hybrid, warn_without_callback,
};

#[cfg(test)]
mod tests;
