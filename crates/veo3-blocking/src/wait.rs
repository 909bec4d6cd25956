//! Waiting, blocking: the flows users reach for (submit and wait, upgrade and wait), each the
//! core's schedule ([`WaitSchedules::schedule`]) run by the core's blocking flow
//! ([`BlockingExecutor`](veo3_core::BlockingExecutor)) over this client.

use veo3_core::Error;
use veo3_types::{
    ExtendRequest, GenerateRequest, Hd1080pResult, TaskRecord, Upgrade4kRequest, Upgrade4kResult,
};

use crate::Client;
#[cfg(doc)]
use veo3_core::settings::WaitSchedules;
use veo3_core::settings::{Stage, WaitMode, WaitOptions};

impl Client {
    /// Polls record-info until task `task_id` finishes.
    ///
    /// Returns the successful record; [`Error::TaskFailed`] with the task's own code and
    /// message; [`Error::WaitTimeout`] at the deadline; [`Error::WaitFailed`] when polling
    /// itself keeps failing. Every error carries the task id.
    ///
    /// The task exists already, so its state is read at once, then the schedule follows
    /// ([`WaitState::for_existing_task`](veo3_core::WaitState::for_existing_task)).
    pub fn wait_for_task(&self, task_id: &str, wait: &WaitOptions) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Generation, None, wait, WaitMode::Polling)?;
        self.inner.executor.wait_for_task(self, task_id, &schedule)
    }

    /// Polls record-info until task `task_id`, created a moment ago, finishes: the schedule's
    /// first delay comes first, since a read at once would only find it queued. For callers
    /// that submit ([`Client::generate`]), record the id, then wait; otherwise as
    /// [`Client::wait_for_task`].
    pub fn wait_for_new_task(
        &self,
        task_id: &str,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Generation, None, wait, WaitMode::Polling)?;
        self.inner
            .executor
            .wait_for_new_task(self, task_id, &schedule)
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
        let schedule = (self.inner.waits).schedule(
            Stage::Generation,
            Some(&request.model),
            wait,
            WaitMode::Polling,
        )?;
        self.inner
            .executor
            .generate_and_wait(self, request, &schedule)
    }

    /// [`generate_with_images`](Self::generate_with_images), then waits for the task.
    pub fn generate_with_images_and_wait(
        &self,
        pending: &veo3_types::GenerateWithImages,
        options: &veo3_types::UploadOptions,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule = (self.inner.waits).schedule(
            Stage::Generation,
            Some(&pending.request.model),
            wait,
            WaitMode::Polling,
        )?;
        let created = self.generate_with_images(pending, options)?;
        (self.inner.executor).wait_for_new_task(self, &created.task_id, &schedule)
    }

    /// Submits an extension (billable, sent at most once) and waits for it; the stitched
    /// video is in [`TaskRecord::video_urls`].
    pub fn extend_and_wait(
        &self,
        request: &ExtendRequest,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Extension, None, wait, WaitMode::Polling)?;
        self.inner
            .executor
            .extend_and_wait(self, request, &schedule)
    }

    /// Requests the 1080p version of video `index` of `task_id` and polls until it is ready.
    /// The first request is made at once (it starts the production).
    pub fn upgrade_1080p_and_wait(
        &self,
        task_id: &str,
        index: Option<u32>,
        wait: &WaitOptions,
    ) -> Result<Hd1080pResult, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Hd1080p, None, wait, WaitMode::Polling)?;
        (self.inner.executor).wait_for_1080p(self, task_id, index, &schedule)
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
        let schedule =
            (self.inner.waits).schedule(Stage::Upgrade4k, None, wait, WaitMode::Polling)?;
        (self.inner.executor).upgrade_4k_and_wait(self, request, &schedule)
    }

    /// Waits for a 4K job that was already requested, by repeating the request every poll.
    pub fn wait_for_4k(
        &self,
        request: &Upgrade4kRequest,
        wait: &WaitOptions,
    ) -> Result<Upgrade4kResult, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Upgrade4k, None, wait, WaitMode::Polling)?;
        self.inner.executor.wait_for_4k(self, request, &schedule)
    }
}
