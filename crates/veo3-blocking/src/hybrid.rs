//! Hybrid waits, blocking: finish as soon as a verified callback for the task arrives,
//! confirmed by one record-info read, with rare polling kept as the safety net. The flows are
//! the core's ([`BlockingExecutor::wait_for_task_hybrid`](veo3_core::BlockingExecutor::wait_for_task_hybrid)
//! and its siblings) and so is the schedule
//! ([`WaitSchedules::schedule`](veo3_core::settings::WaitSchedules::schedule)); this module
//! only connects them.

use veo3_core::Error;
use veo3_core::settings::WaitMode;
use veo3_core::webhook::Inbox;
use veo3_types::{ExtendRequest, GenerateRequest, TaskRecord};

use crate::{Client, Stage, WaitOptions};

impl Client {
    /// Waits for task `task_id` like [`Client::wait_for_task`], but returns as soon as a
    /// callback for it reaches `inbox` and one record-info read confirms it (the callback
    /// body is not signed, so the record decides).
    ///
    /// `inbox` is where a callback receiver delivers verified callbacks (`veo3-webhook`'s
    /// `BlockingReceiver::inbox()`), and the task must have been created with a
    /// `callBackUrl` reaching it. The thread blocks on the inbox between polls, so a callback
    /// wakes it at once. Polling continues as a safety net in case a callback is lost: the
    /// stage's schedule made rare ([`PollSchedule::safety_net`](veo3_core::PollSchedule::safety_net): for generations a poll
    /// every 2 minutes), which `wait` tunes like any schedule. Errors are those of
    /// [`Client::wait_for_task`].
    ///
    /// ```no_run
    /// use veo3_blocking::{Client, GenerateRequest, Inbox, WaitOptions};
    ///
    /// // `inbox` comes from the receiver, e.g. veo3-webhook's `BlockingReceiver::inbox()`.
    /// fn fox(client: &Client, inbox: &Inbox) -> Result<(), veo3_blocking::Error> {
    ///     let request = GenerateRequest::builder("A red fox trotting through fresh snow at dawn")
    ///         .call_back_url("https://hooks.example.com/veo3") // reaches the receiver
    ///         .build()?;
    ///     let task = client.generate_and_wait_hybrid(&request, inbox, &WaitOptions::default())?;
    ///     println!("{:?}", task.video_urls());
    ///     Ok(())
    /// }
    /// ```
    pub fn wait_for_task_hybrid(
        &self,
        task_id: &str,
        inbox: &Inbox,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Generation, None, wait, WaitMode::Hybrid)?;
        (self.inner.executor).wait_for_task_hybrid(self, task_id, inbox, &schedule)
    }

    /// Submits a generation (billable, sent at most once) and waits for it with
    /// [`Client::wait_for_task_hybrid`]. The request's `callBackUrl` must reach the receiver
    /// feeding `inbox`; without one, the wait only polls, rarely.
    pub fn generate_and_wait_hybrid(
        &self,
        request: &GenerateRequest,
        inbox: &Inbox,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule = (self.inner.waits).schedule(
            Stage::Generation,
            Some(&request.model),
            wait,
            WaitMode::Hybrid,
        )?;
        (self.inner.executor).generate_and_wait_hybrid(self, request, inbox, &schedule)
    }

    /// Submits an extension (billable, sent at most once) and waits for it with the hybrid
    /// wait; the stitched video is in [`TaskRecord::video_urls`].
    pub fn extend_and_wait_hybrid(
        &self,
        request: &ExtendRequest,
        inbox: &Inbox,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Extension, None, wait, WaitMode::Hybrid)?;
        (self.inner.executor).extend_and_wait_hybrid(self, request, inbox, &schedule)
    }
}
