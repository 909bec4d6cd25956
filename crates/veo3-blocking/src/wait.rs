//! Waiting, blocking: the per-wait loop over the core's [`WaitState`], and the flows built on
//! it (submit and wait, upgrade and wait).

use std::time::Duration;

use veo3_core::{
    Acceptance, Error, Event, PollSchedule, UpgradeStatus, WaitState, WaitTarget, accept_task,
    accept_upgrade,
};
use veo3_types::{
    Endpoint, ExtendRequest, GenerateRequest, Hd1080pResult, TaskRecord, Upgrade4kRequest,
    Upgrade4kResult,
};

use crate::Client;

/// A kind of wait, each with its own default [`PollSchedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// A generation task ([`PollSchedule::generation`], or [`PollSchedule::for_model`] when
    /// the model is known).
    Generation,
    /// An extension task ([`PollSchedule::extension`]).
    Extension,
    /// A 1080p version ([`PollSchedule::hd_1080p`]).
    Hd1080p,
    /// A 4K version ([`PollSchedule::upgrade_4k`]).
    Upgrade4k,
}

/// The client's default schedule per stage (`None`: the core's preset).
#[derive(Clone, Debug, Default)]
pub(crate) struct Schedules {
    generation: Option<PollSchedule>,
    extension: Option<PollSchedule>,
    hd_1080p: Option<PollSchedule>,
    upgrade_4k: Option<PollSchedule>,
}

impl Schedules {
    pub(crate) fn set(&mut self, stage: Stage, schedule: PollSchedule) {
        *self.slot(stage) = Some(schedule);
    }

    fn slot(&mut self, stage: Stage) -> &mut Option<PollSchedule> {
        match stage {
            Stage::Generation => &mut self.generation,
            Stage::Extension => &mut self.extension,
            Stage::Hd1080p => &mut self.hd_1080p,
            Stage::Upgrade4k => &mut self.upgrade_4k,
        }
    }

    pub(crate) fn get(&self, stage: Stage, model_preset: Option<PollSchedule>) -> PollSchedule {
        let configured = match stage {
            Stage::Generation => &self.generation,
            Stage::Extension => &self.extension,
            Stage::Hd1080p => &self.hd_1080p,
            Stage::Upgrade4k => &self.upgrade_4k,
        };
        configured.clone().unwrap_or_else(|| {
            model_preset.unwrap_or_else(|| match stage {
                Stage::Generation => PollSchedule::generation(),
                Stage::Extension => PollSchedule::extension(),
                Stage::Hd1080p => PollSchedule::hd_1080p(),
                Stage::Upgrade4k => PollSchedule::upgrade_4k(),
            })
        })
    }
}

/// Per-call wait tuning. The default keeps the client's schedule for the stage (the core's
/// presets unless [`ClientBuilder::poll_schedule`](crate::ClientBuilder::poll_schedule)
/// changed them); each field set here overrides one part of it.
///
/// ```
/// use std::time::Duration;
/// use veo3_blocking::WaitOptions;
///
/// let wait = WaitOptions::default()
///     .poll_interval(Duration::from_secs(10))
///     .timeout(Duration::from_secs(600));
/// assert_eq!(wait.timeout, Some(Duration::from_secs(600)));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct WaitOptions {
    /// A constant interval between polls (no growth).
    pub poll_interval: Option<Duration>,
    /// The delay before the first poll.
    pub first_delay: Option<Duration>,
    /// The wait's deadline, after which it ends with [`Error::WaitTimeout`] (the task may
    /// still finish; wait again with [`Client::wait_for_task`]).
    pub timeout: Option<Duration>,
    /// A whole schedule, replacing the stage's default (the fields above still apply on top).
    pub schedule: Option<PollSchedule>,
}

impl WaitOptions {
    /// Sets [`WaitOptions::poll_interval`].
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// Sets [`WaitOptions::first_delay`].
    pub fn first_delay(mut self, delay: Duration) -> Self {
        self.first_delay = Some(delay);
        self
    }

    /// Sets [`WaitOptions::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`WaitOptions::schedule`].
    pub fn schedule(mut self, schedule: PollSchedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// The schedule these options make of `base`.
    pub fn apply(&self, base: PollSchedule) -> PollSchedule {
        let mut schedule = self.schedule.clone().unwrap_or(base);
        if let Some(interval) = self.poll_interval {
            schedule = schedule.with_interval(interval).with_growth(1.0, interval);
        }
        if let Some(delay) = self.first_delay {
            schedule = schedule.with_first_delay(delay);
        }
        if let Some(timeout) = self.timeout {
            schedule = schedule.with_deadline(timeout);
        }
        schedule
    }
}

impl Client {
    fn schedule(
        &self,
        stage: Stage,
        preset: Option<PollSchedule>,
        wait: &WaitOptions,
    ) -> PollSchedule {
        wait.apply(self.inner.schedules.get(stage, preset))
    }

    /// The blocking wait loop over the core's [`BlockingExecutor`](veo3_core::BlockingExecutor).
    fn drive<T>(
        &self,
        wait: WaitState,
        poll: impl FnMut() -> Result<Acceptance<T>, Error>,
    ) -> Result<T, Error> {
        self.inner.executor.wait(wait, poll)
    }

    fn wait_state(&self, task_id: &str, target: WaitTarget, schedule: &PollSchedule) -> WaitState {
        WaitState::new(
            task_id,
            target,
            schedule,
            self.inner.observer.clone(),
            self.inner.now(),
        )
    }

    /// Polls record-info until task `task_id` finishes.
    ///
    /// Returns the successful record; [`Error::TaskFailed`] with the task's own code and
    /// message; [`Error::WaitTimeout`] at the deadline; [`Error::WaitFailed`] when polling
    /// itself keeps failing. Every error carries the task id.
    pub fn wait_for_task(&self, task_id: &str, wait: &WaitOptions) -> Result<TaskRecord, Error> {
        self.wait_for_task_with(task_id, self.schedule(Stage::Generation, None, wait))
    }

    fn wait_for_task_with(
        &self,
        task_id: &str,
        schedule: PollSchedule,
    ) -> Result<TaskRecord, Error> {
        let _span = tracing::info_span!("veo3.wait", task_id, target = "task").entered();
        let state = self.wait_state(task_id, WaitTarget::Task, &schedule);
        self.drive(state, || self.record_info(task_id).map(accept_task))
    }

    /// Submits a generation (billable, sent at most once) and waits for it.
    ///
    /// Emits [`Event::Submitted`] as soon as the task id is known; errors of the wait carry
    /// the id ([`Error::task_id`]), so a created task is never lost.
    pub fn generate_and_wait(
        &self,
        request: &GenerateRequest,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule = self.schedule(
            Stage::Generation,
            Some(PollSchedule::for_model(&request.model)),
            wait,
        );
        let created = self.generate(request)?;
        self.emit_submitted(Endpoint::Generate, &created.task_id);
        self.wait_for_task_with(&created.task_id, schedule)
    }

    /// Submits an extension (billable, sent at most once) and waits for it; the stitched
    /// video is in [`TaskRecord::video_urls`].
    pub fn extend_and_wait(
        &self,
        request: &ExtendRequest,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule = self.schedule(Stage::Extension, None, wait);
        let created = self.extend(request)?;
        self.emit_submitted(Endpoint::Extend, &created.task_id);
        self.wait_for_task_with(&created.task_id, schedule)
    }

    /// Requests the 1080p version of video `index` of `task_id` and polls until it is ready.
    /// The first request is made at once (it starts the production).
    pub fn upgrade_1080p_and_wait(
        &self,
        task_id: &str,
        index: Option<u32>,
        wait: &WaitOptions,
    ) -> Result<Hd1080pResult, Error> {
        let schedule = self.schedule(Stage::Hd1080p, None, wait);
        let _span = tracing::info_span!("veo3.wait", task_id, target = "1080p").entered();
        let state = self
            .wait_state(task_id, WaitTarget::Hd1080p, &schedule)
            .with_immediate_first_poll();
        self.drive(state, || self.hd_1080p(task_id, index).map(accept_upgrade))
    }

    /// Requests the 4K version (billable, sent once) and waits for it, repeating the request
    /// as the reference recommends (a repeat answers "processing", or the URLs when done).
    ///
    /// If the first request's outcome is unknown the error is returned at once, like any
    /// billable call.
    pub fn upgrade_4k_and_wait(
        &self,
        request: &Upgrade4kRequest,
        wait: &WaitOptions,
    ) -> Result<Upgrade4kResult, Error> {
        match self.upgrade_4k(request)? {
            UpgradeStatus::Ready(result) => Ok(result),
            UpgradeStatus::Processing { .. } => {
                self.emit_submitted(Endpoint::Upgrade4k, &request.task_id);
                self.wait_for_4k(request, wait)
            }
            // `UpgradeStatus` is non-exhaustive: a future state is polled like processing.
            _ => self.wait_for_4k(request, wait),
        }
    }

    /// Waits for a 4K job that was already requested, by repeating the request every poll.
    pub fn wait_for_4k(
        &self,
        request: &Upgrade4kRequest,
        wait: &WaitOptions,
    ) -> Result<Upgrade4kResult, Error> {
        let schedule = self.schedule(Stage::Upgrade4k, None, wait);
        let task_id = request.task_id.as_str();
        let _span = tracing::info_span!("veo3.wait", task_id, target = "4k").entered();
        let state = self.wait_state(task_id, WaitTarget::Upgrade4k, &schedule);
        self.drive(state, || self.upgrade_4k(request).map(accept_upgrade))
    }

    fn emit_submitted(&self, endpoint: Endpoint, task_id: &str) {
        self.inner
            .observer
            .emit(&Event::submitted(endpoint, task_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_override_the_stage_schedule_field_by_field() {
        let mut schedules = Schedules::default();
        assert_eq!(
            schedules.get(Stage::Upgrade4k, None),
            PollSchedule::upgrade_4k()
        );
        assert_eq!(
            schedules.get(
                Stage::Generation,
                Some(PollSchedule::for_model(&veo3_types::Model::Veo3))
            ),
            PollSchedule::for_model(&veo3_types::Model::Veo3)
        );
        let custom = PollSchedule::new(
            Duration::from_millis(10),
            Duration::from_millis(10),
            Duration::from_secs(5),
        );
        schedules.set(Stage::Generation, custom.clone());
        assert_eq!(
            schedules.get(Stage::Generation, Some(PollSchedule::generation())),
            custom,
            "a configured schedule beats the model's preset"
        );

        let wait = WaitOptions::default()
            .poll_interval(Duration::from_secs(7))
            .first_delay(Duration::from_secs(3))
            .timeout(Duration::from_secs(60));
        let applied = wait.apply(PollSchedule::generation());
        assert_eq!(applied.first_delay, Duration::from_secs(3));
        assert_eq!(applied.interval, Duration::from_secs(7));
        assert_eq!(applied.max_interval, Duration::from_secs(7));
        assert_eq!(applied.deadline, Duration::from_secs(60));
        assert_eq!(WaitOptions::default().apply(custom.clone()), custom);
    }
}
