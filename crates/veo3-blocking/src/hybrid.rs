//! Hybrid waits, blocking: finish as soon as a verified callback for the task arrives,
//! confirmed by one record-info read, with rare polling kept as the safety net. The flows are
//! the core's ([`BlockingExecutor::wait_for_task_hybrid`](veo3_core::BlockingExecutor::wait_for_task_hybrid)
//! and its siblings) and so is the schedule
//! ([`WaitSchedules::schedule`](veo3_core::settings::WaitSchedules::schedule)); this module
//! only connects them.

use veo3_core::Error;
use veo3_core::settings::WaitMode;
use veo3_core::webhook::Inbox;
use veo3_types::{
    ExtendRequest, GenerateRequest, Hd1080pResult, TaskRecord, Upgrade4kRequest, Upgrade4kResult,
};

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
    /// stage's schedule made rare ([`PollSchedule::safety_net`](veo3_core::PollSchedule::safety_net):
    /// for generations a first poll at the stage's expected completion, 5 minutes, then one
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

    /// [`Client::wait_for_task_hybrid`] for a task that may have finished while nothing was
    /// listening (a resumed wait): its state is read at once, then the safety net and the
    /// callbacks take over.
    pub fn wait_for_existing_task_hybrid(
        &self,
        task_id: &str,
        inbox: &Inbox,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Generation, None, wait, WaitMode::Hybrid)?;
        (self.inner.executor).wait_for_existing_task_hybrid(self, task_id, inbox, &schedule)
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

    /// Requests the 1080p version of video `index` (default 0) of `task_id` and waits for it
    /// like [`Client::upgrade_1080p_and_wait`], asking again as soon as a 1080p callback for
    /// the task reaches `inbox` (one confirming request). The reference documents no callback
    /// for the 1080p endpoint, so without one delivered this polls on the 1080p safety net
    /// (first at 3 minutes). The blocking twin of `veo3-reqwest`'s method of the same name.
    pub fn upgrade_1080p_and_wait_hybrid(
        &self,
        task_id: &str,
        index: Option<u32>,
        inbox: &Inbox,
        wait: &WaitOptions,
    ) -> Result<Hd1080pResult, Error> {
        let schedule = (self.inner.waits).schedule(Stage::Hd1080p, None, wait, WaitMode::Hybrid)?;
        (self.inner.executor).upgrade_1080p_and_wait_hybrid(self, task_id, index, inbox, &schedule)
    }

    /// Requests the 4K version (billable, sent once; its `callBackUrl` should reach the
    /// receiver feeding `inbox`) and waits for it, repeating the request once as soon as the
    /// job's 4K callback arrives; polls on the 4K safety net (first at 10 minutes) in case it
    /// is lost. A 4K callback carries the source task's id; the source's own callback does not
    /// end this wait.
    pub fn upgrade_4k_and_wait_hybrid(
        &self,
        request: &Upgrade4kRequest,
        inbox: &Inbox,
        wait: &WaitOptions,
    ) -> Result<Upgrade4kResult, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Upgrade4k, None, wait, WaitMode::Hybrid)?;
        (self.inner.executor).upgrade_4k_and_wait_hybrid(self, request, inbox, &schedule)
    }

    /// Waits for a 4K job already requested with a `callBackUrl` reaching the receiver feeding
    /// `inbox`, like [`Client::wait_for_4k`] but ended by the job's 4K callback.
    pub fn wait_for_4k_hybrid(
        &self,
        request: &Upgrade4kRequest,
        inbox: &Inbox,
        wait: &WaitOptions,
    ) -> Result<Upgrade4kResult, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Upgrade4k, None, wait, WaitMode::Hybrid)?;
        (self.inner.executor).wait_for_4k_hybrid(self, request, inbox, &schedule)
    }
}
