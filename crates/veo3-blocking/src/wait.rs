//! Waiting, blocking: the per-wait loop over the core's [`WaitState`], and the flows built on
//! it (submit and wait, upgrade and wait).

use veo3_core::{
    Acceptance, Error, PollSchedule, UpgradeStatus, WaitState, WaitTarget, accept_task,
    accept_upgrade, announce_submitted, confirm_upgrade_refusal, is_source_refusal,
};
use veo3_types::{
    Endpoint, ExtendRequest, GenerateRequest, Hd1080pResult, TaskRecord, Upgrade4kRequest,
    Upgrade4kResult,
};

use crate::Client;
#[cfg(doc)]
use veo3_core::settings::Schedules;
use veo3_core::settings::{Stage, WaitMode, WaitOptions};
use veo3_types::Model;

impl Client {
    /// The schedule of a polling wait: the core's one choice ([`Schedules::choose`]), once the
    /// core's polling floor for this client's host allows it; checked before anything is sent.
    fn schedule(
        &self,
        stage: Stage,
        model: Option<&Model>,
        wait: &WaitOptions,
    ) -> Result<PollSchedule, Error> {
        self.checked((self.inner.schedules).choose(stage, model, wait, WaitMode::Polling))
    }

    /// `schedule`, if the polling floor for this client's host allows it
    /// ([`veo3_core::settings::check_poll_interval`]).
    pub(crate) fn checked(&self, schedule: PollSchedule) -> Result<PollSchedule, Error> {
        veo3_core::settings::check_poll_interval(&schedule, self.base_url())?;
        Ok(schedule)
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
    ///
    /// The task exists already, so its state is read at once, then the schedule follows
    /// ([`WaitState::for_existing_task`]).
    pub fn wait_for_task(&self, task_id: &str, wait: &WaitOptions) -> Result<TaskRecord, Error> {
        let schedule = self.schedule(Stage::Generation, None, wait)?;
        let state = WaitState::for_existing_task(
            task_id,
            &schedule,
            self.inner.observer.clone(),
            self.inner.now(),
        );
        self.wait_for_task_with(state)
    }

    fn wait_for_task_with(&self, state: WaitState) -> Result<TaskRecord, Error> {
        let task_id = state.task_id().to_owned();
        let _span = tracing::info_span!("veo3.wait", task_id, target = "task").entered();
        self.drive(state, || self.record_info(&task_id).map(accept_task))
    }

    /// Submits a generation (billable, sent at most once) and waits for it.
    ///
    /// Emits [`Event::Submitted`](veo3_core::Event::Submitted) as soon as the task id is known; errors of the wait carry
    /// the id ([`Error::task_id`]), so a created task is never lost.
    pub fn generate_and_wait(
        &self,
        request: &GenerateRequest,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule = self.schedule(Stage::Generation, Some(&request.model), wait)?;
        let created = self.generate(request)?;
        announce_submitted(&self.inner.observer, Endpoint::Generate, &created.task_id);
        self.wait_for_task_with(self.wait_state(&created.task_id, WaitTarget::Task, &schedule))
    }

    /// [`generate_with_images`](Self::generate_with_images), then waits for the task.
    pub fn generate_with_images_and_wait(
        &self,
        pending: &veo3_types::GenerateWithImages,
        options: &veo3_types::UploadOptions,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule = self.schedule(Stage::Generation, Some(&pending.request.model), wait)?;
        let created = self.generate_with_images(pending, options)?;
        self.wait_for_task_with(self.wait_state(&created.task_id, WaitTarget::Task, &schedule))
    }

    /// Submits an extension (billable, sent at most once) and waits for it; the stitched
    /// video is in [`TaskRecord::video_urls`].
    pub fn extend_and_wait(
        &self,
        request: &ExtendRequest,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule = self.schedule(Stage::Extension, None, wait)?;
        let created = self.extend(request)?;
        announce_submitted(&self.inner.observer, Endpoint::Extend, &created.task_id);
        self.wait_for_task_with(self.wait_state(&created.task_id, WaitTarget::Task, &schedule))
    }

    /// Requests the 1080p version of video `index` of `task_id` and polls until it is ready.
    /// The first request is made at once (it starts the production).
    pub fn upgrade_1080p_and_wait(
        &self,
        task_id: &str,
        index: Option<u32>,
        wait: &WaitOptions,
    ) -> Result<Hd1080pResult, Error> {
        let schedule = self.schedule(Stage::Hd1080p, None, wait)?;
        let _span = tracing::info_span!("veo3.wait", task_id, target = "1080p").entered();
        let state = self
            .wait_state(task_id, WaitTarget::Hd1080p, &schedule)
            .with_immediate_first_poll();
        self.drive(state, || match self.hd_1080p(task_id, index) {
            Err(refusal) if is_source_refusal(&refusal) => {
                confirm_upgrade_refusal(refusal, self.record_info(task_id))
            }
            result => result.map(accept_upgrade),
        })
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
                announce_submitted(&self.inner.observer, Endpoint::Upgrade4k, &request.task_id);
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
        let schedule = self.schedule(Stage::Upgrade4k, None, wait)?;
        let task_id = request.task_id.as_str();
        let _span = tracing::info_span!("veo3.wait", task_id, target = "4k").entered();
        let state = self.wait_state(task_id, WaitTarget::Upgrade4k, &schedule);
        self.drive(state, || match self.upgrade_4k(request) {
            Err(refusal) if is_source_refusal(&refusal) => {
                confirm_upgrade_refusal(refusal, self.record_info(task_id))
            }
            result => result.map(accept_upgrade),
        })
    }
}
