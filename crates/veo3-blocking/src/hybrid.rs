//! Hybrid waits, blocking: finish as soon as a verified callback for the task arrives,
//! confirmed by one record-info read, with rare polling kept as the safety net. The loop is
//! the core's [`BlockingExecutor::wait_hybrid`](veo3_core::BlockingExecutor::wait_hybrid);
//! the schedule is the core's choice too; this module only connects them.

use veo3_core::settings::WaitMode;
use veo3_core::webhook::Inbox;
use veo3_core::{
    Error, PollSchedule, WaitState, WaitTarget, accept_task, announce_submitted,
    warn_without_callback,
};
use veo3_types::{Endpoint, ExtendRequest, GenerateRequest, TaskRecord};

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
    /// stage's schedule made rare ([`PollSchedule::safety_net`]: for generations a poll
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
        let schedule = self.safety_net(Stage::Generation, None, wait)?;
        self.wait_hybrid_with(task_id, inbox, &schedule)
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
        warn_without_callback(request.call_back_url.as_deref());
        let schedule = self.safety_net(Stage::Generation, Some(&request.model), wait)?;
        let created = self.generate(request)?;
        announce_submitted(&self.inner.observer, Endpoint::Generate, &created.task_id);
        self.wait_hybrid_with(&created.task_id, inbox, &schedule)
    }

    /// Submits an extension (billable, sent at most once) and waits for it with the hybrid
    /// wait; the stitched video is in [`TaskRecord::video_urls`].
    pub fn extend_and_wait_hybrid(
        &self,
        request: &ExtendRequest,
        inbox: &Inbox,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        warn_without_callback(request.call_back_url.as_deref());
        let schedule = self.safety_net(Stage::Extension, None, wait)?;
        let created = self.extend(request)?;
        announce_submitted(&self.inner.observer, Endpoint::Extend, &created.task_id);
        self.wait_hybrid_with(&created.task_id, inbox, &schedule)
    }

    fn wait_hybrid_with(
        &self,
        task_id: &str,
        inbox: &Inbox,
        schedule: &PollSchedule,
    ) -> Result<TaskRecord, Error> {
        let _span =
            tracing::info_span!("veo3.wait", task_id, target = "task", hybrid = true).entered();
        let state = WaitState::new(
            task_id,
            WaitTarget::Task,
            schedule,
            self.inner.observer.clone(),
            self.inner.now(),
        );
        self.inner
            .executor
            .wait_hybrid(state, inbox, || self.record_info(task_id).map(accept_task))
    }

    /// The schedule of a hybrid wait: the core's one choice
    /// ([`Schedules::choose`](veo3_core::settings::Schedules::choose)).
    fn safety_net(
        &self,
        stage: Stage,
        model: Option<&veo3_types::Model>,
        wait: &WaitOptions,
    ) -> Result<PollSchedule, Error> {
        self.checked((self.inner.schedules).choose(stage, model, wait, WaitMode::Hybrid))
    }
}
