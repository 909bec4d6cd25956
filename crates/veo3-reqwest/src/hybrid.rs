//! Hybrid waits: finish as soon as a verified callback for the task arrives, confirmed by
//! one record-info read, with rare polling kept as the safety net. The loop is the core's
//! ([`veo3_core::wait_for_task_hybrid`]) and so is the schedule
//! ([`WaitSchedules::schedule`](veo3_core::settings::WaitSchedules::schedule)).

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
    /// `Receiver::inbox()`), and the task must have been created with a `callBackUrl`
    /// reaching it. Polling continues as a safety net in case a callback is lost: the
    /// stage's schedule made rare ([`PollSchedule::safety_net`](veo3_core::PollSchedule::safety_net): for generations a poll
    /// every 2 minutes), which `wait` tunes like any schedule. Errors are those of
    /// [`Client::wait_for_task`].
    ///
    /// ```no_run
    /// use veo3_reqwest::{Client, GenerateRequest, Inbox, WaitOptions};
    ///
    /// // `inbox` comes from the receiver, e.g. veo3-webhook's `Receiver::inbox()`.
    /// async fn fox(client: &Client, inbox: &Inbox) -> Result<(), veo3_reqwest::Error> {
    ///     let request = GenerateRequest::builder("A red fox trotting through fresh snow at dawn")
    ///         .call_back_url("https://hooks.example.com/veo3") // reaches the receiver
    ///         .build()?;
    ///     let task = client
    ///         .generate_and_wait_hybrid(&request, inbox, &WaitOptions::default())
    ///         .await?;
    ///     println!("{:?}", task.video_urls());
    ///     Ok(())
    /// }
    /// ```
    pub async fn wait_for_task_hybrid(
        &self,
        task_id: &str,
        inbox: &Inbox,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Generation, None, wait, WaitMode::Hybrid)?;
        veo3_core::wait_for_task_hybrid(self, task_id, inbox, &schedule, self.effects()).await
    }

    /// Submits a generation (billable, sent at most once) and waits for it with
    /// [`Client::wait_for_task_hybrid`]. The request's `callBackUrl` must reach the receiver
    /// feeding `inbox`; without one, the wait only polls, rarely.
    pub async fn generate_and_wait_hybrid(
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
        veo3_core::generate_and_wait_hybrid(self, request, inbox, &schedule, self.effects()).await
    }

    /// Submits an extension (billable, sent at most once) and waits for it with the hybrid
    /// wait; the stitched video is in [`TaskRecord::video_urls`].
    pub async fn extend_and_wait_hybrid(
        &self,
        request: &ExtendRequest,
        inbox: &Inbox,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Extension, None, wait, WaitMode::Hybrid)?;
        veo3_core::extend_and_wait_hybrid(self, request, inbox, &schedule, self.effects()).await
    }
}
