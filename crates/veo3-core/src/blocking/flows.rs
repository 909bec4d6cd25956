//! The blocking flows: the async waiters and flows (`wait.rs`, `wait/hybrid.rs`, `upload.rs`)
//! step for step, over a [`BlockingVeo3Api`] and the executor's clock, sleeper and observer.
//! The blocking client calls these and keeps no flow of its own.

use veo3_types::{
    Endpoint, ExtendRequest, GenerateRequest, GenerateWithImages, Hd1080pResult, TaskCreated,
    TaskRecord, Upgrade4kRequest, Upgrade4kResult, UploadOptions,
};

use super::BlockingExecutor;
use crate::api::{BlockingVeo3Api, UpgradeStatus};
use crate::error::{Error, WaitTarget};
#[cfg(doc)]
use crate::event::Event;
use crate::schedule::PollSchedule;
use crate::upload::{UploadStep, begin_upload, emit_uploaded, prepare_images};
use crate::wait::{
    Acceptance, WaitState, accept_task, accept_upgrade, announce_submitted,
    confirm_upgrade_refusal, is_source_refusal, warn_without_callback,
};
use crate::webhook::Inbox;

#[cfg(doc)]
use crate::wait_for_task;

impl BlockingExecutor {
    fn wait_state(&self, task_id: &str, target: WaitTarget, schedule: &PollSchedule) -> WaitState {
        WaitState::new(
            task_id,
            target,
            schedule,
            self.observer.clone(),
            self.clock.now(),
        )
    }

    /// A wait for a task that exists already: its state is read at once, then `schedule`.
    fn existing_wait_state(&self, task_id: &str, schedule: &PollSchedule) -> WaitState {
        WaitState::for_existing_task(task_id, schedule, self.observer.clone(), self.clock.now())
    }

    /// Waits for a task that exists already: its state is read at once, then `schedule`
    /// follows. The blocking twin of [`wait_for_task`].
    pub fn wait_for_task(
        &self,
        api: &dyn BlockingVeo3Api,
        task_id: &str,
        schedule: &PollSchedule,
    ) -> Result<TaskRecord, Error> {
        let wait = self.existing_wait_state(task_id, schedule);
        self.wait_task(api, wait)
    }

    /// Waits for a task created a moment ago: the schedule's first delay comes first. The
    /// blocking twin of [`wait_for_new_task`](crate::wait_for_new_task).
    pub fn wait_for_new_task(
        &self,
        api: &dyn BlockingVeo3Api,
        task_id: &str,
        schedule: &PollSchedule,
    ) -> Result<TaskRecord, Error> {
        self.wait_task(api, self.wait_state(task_id, WaitTarget::Task, schedule))
    }

    fn wait_task(&self, api: &dyn BlockingVeo3Api, wait: WaitState) -> Result<TaskRecord, Error> {
        let task_id = wait.task_id().to_owned();
        let _span = tracing::info_span!("veo3.wait", task_id, target = "task").entered();
        self.wait(wait, || api.record_info(&task_id).map(accept_task))
    }

    /// Submits a generation (billable, sent at most once), announces it, and waits for it
    /// (the schedule's first delay first). The blocking twin of
    /// [`generate_and_wait`](crate::generate_and_wait).
    pub fn generate_and_wait(
        &self,
        api: &dyn BlockingVeo3Api,
        request: &GenerateRequest,
        schedule: &PollSchedule,
    ) -> Result<TaskRecord, Error> {
        let task_id = self.submit_generation(api, request)?;
        self.wait_for_new_task(api, &task_id, schedule)
    }

    /// Submits an extension (billable, sent at most once), announces it, and waits for it.
    /// The blocking twin of [`extend_and_wait`](crate::extend_and_wait).
    pub fn extend_and_wait(
        &self,
        api: &dyn BlockingVeo3Api,
        request: &ExtendRequest,
        schedule: &PollSchedule,
    ) -> Result<TaskRecord, Error> {
        let task_id = self.submit_extension(api, request)?;
        self.wait_task(api, self.wait_state(&task_id, WaitTarget::Task, schedule))
    }

    /// Requests the 1080p version of video `index` of `task_id` at once and polls until it is
    /// ready. The blocking twin of [`wait_for_1080p`](crate::wait_for_1080p).
    pub fn wait_for_1080p(
        &self,
        api: &dyn BlockingVeo3Api,
        task_id: &str,
        index: Option<u32>,
        schedule: &PollSchedule,
    ) -> Result<Hd1080pResult, Error> {
        let _span = tracing::info_span!("veo3.wait", task_id, target = "1080p").entered();
        let wait = self
            .wait_state(task_id, WaitTarget::Hd1080p, schedule)
            .with_immediate_first_poll();
        self.wait(wait, || poll_1080p(api, task_id, index))
    }

    /// Waits for a 4K job that was already requested, by repeating the request every poll.
    /// The blocking twin of [`wait_for_4k`](crate::wait_for_4k).
    pub fn wait_for_4k(
        &self,
        api: &dyn BlockingVeo3Api,
        request: &Upgrade4kRequest,
        schedule: &PollSchedule,
    ) -> Result<Upgrade4kResult, Error> {
        let task_id = request.task_id.as_str();
        let _span = tracing::info_span!("veo3.wait", task_id, target = "4k").entered();
        let wait = self.wait_state(task_id, WaitTarget::Upgrade4k, schedule);
        self.wait(wait, || poll_4k(api, request))
    }

    /// Requests the 4K version (billable, sent once) and waits for it; an unknown outcome of
    /// the request is returned at once. The blocking twin of
    /// [`upgrade_4k_and_wait`](crate::upgrade_4k_and_wait).
    pub fn upgrade_4k_and_wait(
        &self,
        api: &dyn BlockingVeo3Api,
        request: &Upgrade4kRequest,
        schedule: &PollSchedule,
    ) -> Result<Upgrade4kResult, Error> {
        match api.upgrade_4k(request)? {
            UpgradeStatus::Ready(result) => Ok(result),
            accepted @ UpgradeStatus::Processing { .. } => {
                announce_submitted(
                    &self.observer,
                    Endpoint::Upgrade4k,
                    accepted.job_id().unwrap_or(&request.task_id),
                );
                self.wait_for_4k(api, request, schedule)
            }
        }
    }

    /// A hybrid wait for an existing task: polls on `schedule` (the safety net) and ends a
    /// sleep early when a callback for the task reaches `inbox`. The blocking twin of
    /// [`wait_for_task_hybrid`](crate::wait_for_task_hybrid).
    pub fn wait_for_task_hybrid(
        &self,
        api: &dyn BlockingVeo3Api,
        task_id: &str,
        inbox: &Inbox,
        schedule: &PollSchedule,
    ) -> Result<TaskRecord, Error> {
        let wait = self.wait_state(task_id, WaitTarget::Task, schedule);
        self.task_hybrid(api, wait, inbox)
    }

    /// A hybrid wait for a task that may have finished while nothing was listening: its state
    /// is read at once, then as [`BlockingExecutor::wait_for_task_hybrid`]. The blocking twin
    /// of [`wait_for_existing_task_hybrid`](crate::wait_for_existing_task_hybrid).
    pub fn wait_for_existing_task_hybrid(
        &self,
        api: &dyn BlockingVeo3Api,
        task_id: &str,
        inbox: &Inbox,
        schedule: &PollSchedule,
    ) -> Result<TaskRecord, Error> {
        let wait = self.existing_wait_state(task_id, schedule);
        self.task_hybrid(api, wait, inbox)
    }

    fn task_hybrid(
        &self,
        api: &dyn BlockingVeo3Api,
        wait: WaitState,
        inbox: &Inbox,
    ) -> Result<TaskRecord, Error> {
        let task_id = wait.task_id().to_owned();
        let _span =
            tracing::info_span!("veo3.wait", task_id, target = "task", hybrid = true).entered();
        self.wait_hybrid(wait, inbox, || api.record_info(&task_id).map(accept_task))
    }

    /// Requests the 1080p version at once and waits for it, asking again as soon as a 1080p
    /// callback for the task reaches `inbox`. The blocking twin of
    /// [`upgrade_1080p_and_wait_hybrid`](crate::upgrade_1080p_and_wait_hybrid).
    pub fn upgrade_1080p_and_wait_hybrid(
        &self,
        api: &dyn BlockingVeo3Api,
        task_id: &str,
        index: Option<u32>,
        inbox: &Inbox,
        schedule: &PollSchedule,
    ) -> Result<Hd1080pResult, Error> {
        let _span =
            tracing::info_span!("veo3.wait", task_id, target = "1080p", hybrid = true).entered();
        let wait = self
            .wait_state(task_id, WaitTarget::Hd1080p, schedule)
            .with_immediate_first_poll();
        self.wait_hybrid(wait, inbox, || poll_1080p(api, task_id, index))
    }

    /// Waits for a requested 4K job, repeating the request as soon as its 4K callback reaches
    /// `inbox`. The blocking twin of [`wait_for_4k_hybrid`](crate::wait_for_4k_hybrid).
    pub fn wait_for_4k_hybrid(
        &self,
        api: &dyn BlockingVeo3Api,
        request: &Upgrade4kRequest,
        inbox: &Inbox,
        schedule: &PollSchedule,
    ) -> Result<Upgrade4kResult, Error> {
        let task_id = request.task_id.as_str();
        let _span =
            tracing::info_span!("veo3.wait", task_id, target = "4k", hybrid = true).entered();
        let wait = self.wait_state(task_id, WaitTarget::Upgrade4k, schedule);
        self.wait_hybrid(wait, inbox, || poll_4k(api, request))
    }

    /// Requests the 4K version (billable, sent once), announces the job, and waits for it
    /// with [`BlockingExecutor::wait_for_4k_hybrid`]. The blocking twin of
    /// [`upgrade_4k_and_wait_hybrid`](crate::upgrade_4k_and_wait_hybrid).
    pub fn upgrade_4k_and_wait_hybrid(
        &self,
        api: &dyn BlockingVeo3Api,
        request: &Upgrade4kRequest,
        inbox: &Inbox,
        schedule: &PollSchedule,
    ) -> Result<Upgrade4kResult, Error> {
        warn_without_callback(request.call_back_url.as_deref());
        match api.upgrade_4k(request)? {
            UpgradeStatus::Ready(result) => Ok(result),
            accepted @ UpgradeStatus::Processing { .. } => {
                announce_submitted(
                    &self.observer,
                    Endpoint::Upgrade4k,
                    accepted.job_id().unwrap_or(&request.task_id),
                );
                self.wait_for_4k_hybrid(api, request, inbox, schedule)
            }
        }
    }

    /// Submits a generation and waits for it with [`BlockingExecutor::wait_for_task_hybrid`].
    /// The blocking twin of [`generate_and_wait_hybrid`](crate::generate_and_wait_hybrid).
    pub fn generate_and_wait_hybrid(
        &self,
        api: &dyn BlockingVeo3Api,
        request: &GenerateRequest,
        inbox: &Inbox,
        schedule: &PollSchedule,
    ) -> Result<TaskRecord, Error> {
        warn_without_callback(request.call_back_url.as_deref());
        let task_id = self.submit_generation(api, request)?;
        self.wait_for_task_hybrid(api, &task_id, inbox, schedule)
    }

    /// Submits an extension and waits for it with [`BlockingExecutor::wait_for_task_hybrid`].
    /// The blocking twin of [`extend_and_wait_hybrid`](crate::extend_and_wait_hybrid).
    pub fn extend_and_wait_hybrid(
        &self,
        api: &dyn BlockingVeo3Api,
        request: &ExtendRequest,
        inbox: &Inbox,
        schedule: &PollSchedule,
    ) -> Result<TaskRecord, Error> {
        warn_without_callback(request.call_back_url.as_deref());
        let task_id = self.submit_extension(api, request)?;
        self.wait_for_task_hybrid(api, &task_id, inbox, schedule)
    }

    /// Checks every image of `pending`, uploads the local ones (reported as
    /// [`Event::Uploading`] and [`Event::Uploaded`]), then submits the generation with the
    /// hosted URLs (billable, at most once) and announces it. The blocking twin of
    /// [`generate_with_images`](crate::generate_with_images).
    pub fn generate_with_images(
        &self,
        api: &dyn BlockingVeo3Api,
        pending: &GenerateWithImages,
        options: &UploadOptions,
    ) -> Result<TaskCreated, Error> {
        let request = self.upload_images(api, pending, options)?;
        let created = api.generate(&request)?;
        announce_submitted(&self.observer, Endpoint::Generate, &created.task_id);
        Ok(created)
    }

    /// The first half of [`BlockingExecutor::generate_with_images`]: checks, uploads, and
    /// returns the request to submit. The blocking twin of
    /// [`upload_images`](crate::upload_images).
    pub fn upload_images(
        &self,
        api: &dyn BlockingVeo3Api,
        pending: &GenerateWithImages,
        options: &UploadOptions,
    ) -> Result<GenerateRequest, Error> {
        options.validate()?;
        let prepared = prepare_images(pending)?;
        let mut urls = Vec::with_capacity(prepared.len());
        for image in &prepared {
            let url = match begin_upload(&self.observer, image, options, || self.random()) {
                UploadStep::Hosted(url) => url,
                UploadStep::File(file, options) => emit_uploaded(
                    &self.observer,
                    image,
                    &api.upload_file(file.path(), &options)?,
                ),
                UploadStep::Bytes(bytes, file_name, options) => emit_uploaded(
                    &self.observer,
                    image,
                    &api.upload_bytes(bytes, file_name, &options)?,
                ),
            };
            urls.push(url);
        }
        Ok(pending.with_urls(urls)?)
    }

    fn submit_generation(
        &self,
        api: &dyn BlockingVeo3Api,
        request: &GenerateRequest,
    ) -> Result<String, Error> {
        let created = api.generate(request)?;
        announce_submitted(&self.observer, Endpoint::Generate, &created.task_id);
        Ok(created.task_id)
    }

    fn submit_extension(
        &self,
        api: &dyn BlockingVeo3Api,
        request: &ExtendRequest,
    ) -> Result<String, Error> {
        let created = api.extend(request)?;
        announce_submitted(&self.observer, Endpoint::Extend, &created.task_id);
        Ok(created.task_id)
    }
}

/// One round of a blocking 1080p wait: the twin of the async waits' `poll_1080p`.
fn poll_1080p(
    api: &dyn BlockingVeo3Api,
    task_id: &str,
    index: Option<u32>,
) -> Result<Acceptance<Hd1080pResult>, Error> {
    match api.hd_1080p(task_id, index) {
        Err(refusal) if is_source_refusal(&refusal) => {
            confirm_upgrade_refusal(refusal, api.record_info(task_id))
        }
        result => result.map(accept_upgrade),
    }
}

/// One round of a blocking 4K wait: the twin of the async waits' `poll_4k`.
fn poll_4k(
    api: &dyn BlockingVeo3Api,
    request: &Upgrade4kRequest,
) -> Result<Acceptance<Upgrade4kResult>, Error> {
    match api.upgrade_4k(request) {
        Err(refusal) if is_source_refusal(&refusal) => {
            confirm_upgrade_refusal(refusal, api.record_info(&request.task_id))
        }
        result => result.map(accept_upgrade),
    }
}
