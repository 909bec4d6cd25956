//! Hybrid waits: finish the moment a verified callback says so, keep slow polling as the
//! safety net.
//!
//! Each round races the [`Inbox`] (a callback for the task) against the safety-poll delay;
//! whichever wins, one record-info read decides, because only `taskId.timestamp` is signed and
//! the callback's body is a hint. A callback for a task the record still shows running (a
//! stale event, or a forged unsigned one) costs that one read and the schedule continues. If
//! no callback ever comes (lost, callbacks disabled, no `callBackUrl`), the wait is an
//! ordinary polling wait on its safety-net schedule, with the same deadline and errors.

use std::future::Future;

use tracing::Instrument;
use veo3_types::{
    Endpoint, ExtendRequest, GenerateRequest, Hd1080pResult, TaskRecord, Upgrade4kRequest,
    Upgrade4kResult,
};

use super::{
    Acceptance, WaitState, WaitStep, accept_task, announce_submitted, poll_4k, poll_1080p,
    wait_state,
};
use crate::Error;
use crate::api::{UpgradeStatus, Veo3Api};
use crate::error::WaitTarget;
use crate::event::PollTrigger;
use crate::executor::Effects;
use crate::schedule::PollSchedule;
use crate::webhook::{Inbox, VerifiedCallback};

/// The async hybrid loop, written once: like the polling loop, but every sleep also ends
/// when a callback for the task reaches `inbox`.
async fn drive_hybrid<T, F, Fut>(
    mut wait: WaitState,
    effects: &Effects,
    inbox: &Inbox,
    mut poll: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Acceptance<T>, Error>>,
{
    loop {
        let Some(delay) = wait.next_delay(effects.now(), effects.random()) else {
            return Err(wait.timed_out(effects.now()));
        };
        // A callback kept in the inbox (it arrived before this round, even before the wait
        // began) wins at once, without starting the sleep.
        // Only a callback about what is awaited counts: a 4K callback names the source task,
        // like the source's own callback, and neither may wake the other's wait.
        let hint = inbox
            .wait_until_target(
                wait.task_id(),
                wait.target(),
                effects.sleeper().sleep(delay),
            )
            .await;
        let trigger = trigger_of(hint.as_ref());
        let result = poll().await;
        match wait.observe_triggered(result, effects.now(), trigger) {
            WaitStep::Done(value) => return Ok(value),
            WaitStep::Continue => {}
            WaitStep::Fail(error) => return Err(error),
        }
    }
}

/// What woke a round, logged: the callback (its code and whether it was signed) or the
/// schedule. Shared with the blocking loop.
pub(crate) fn trigger_of(hint: Option<&VerifiedCallback>) -> PollTrigger {
    match hint {
        Some(callback) => {
            tracing::debug!(
                task_id = %callback.task_id,
                code = callback.callback.code.as_i64(),
                authenticated = callback.is_authenticated(),
                "callback arrived; confirming with record-info"
            );
            PollTrigger::Callback
        }
        None => PollTrigger::Schedule,
    }
}

/// Waits for task `task_id` to finish, returning as soon as a callback for it arrives in
/// `inbox` and one record-info read confirms it; polls on `schedule` as the safety net.
///
/// `inbox` is the one a callback receiver delivers into (`veo3-webhook`'s `Receiver::inbox`,
/// or any code calling [`Inbox::deliver`] with verified callbacks), and the task must have
/// been created with a `callBackUrl` reaching that receiver. `schedule` is the safety net:
/// typically the stage's schedule made rare with [`PollSchedule::safety_net`]. Results and
/// errors are those of [`wait_for_task`](crate::wait_for_task); [`Event::Polled`](crate::Event::Polled) reports
/// [`PollTrigger::Callback`] for a read a callback caused.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::types::Callback;
/// use veo3_core::webhook::{Inbox, VerifiedCallback};
/// use veo3_core::{wait_for_task_hybrid, Clock, Effects, PollSchedule, SimulatedClock};
///
/// # #[cfg(feature = "mock")] {
/// use veo3_core::MockVeo3Api;
/// let mut api = MockVeo3Api::new();
/// api.expect_record_info().times(1).returning(|id| {
///     let data = serde_json::json!({"taskId": id, "successFlag": 1,
///                                   "response": {"resultUrls": ["https://f.example/v.mp4"]}});
///     Ok(veo3_types::TaskRecord::from_data(&data).unwrap())
/// });
/// // The task finished and its callback arrived before the wait began: it is kept.
/// let inbox = Inbox::new();
/// let body = br#"{"code":200,"msg":"ok","data":{"taskId":"t1"}}"#;
/// inbox.deliver(VerifiedCallback::new("t1", Callback::from_slice(body).unwrap()));
///
/// let clock = SimulatedClock::new();
/// let effects = Effects::simulated(&clock);
/// let schedule = PollSchedule::generation().safety_net();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let record = runtime
///     .block_on(wait_for_task_hybrid(&api, "t1", &inbox, &schedule, &effects))
///     .unwrap();
/// assert_eq!(record.video_urls(), ["https://f.example/v.mp4"]);
/// assert_eq!(clock.now(), Duration::ZERO); // one read, no waiting
/// # }
/// ```
pub async fn wait_for_task_hybrid(
    api: &dyn Veo3Api,
    task_id: &str,
    inbox: &Inbox,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<TaskRecord, Error> {
    let wait = wait_state(task_id, WaitTarget::Task, schedule, effects);
    task_hybrid(api, wait, inbox, effects).await
}

/// [`wait_for_task_hybrid`] for a task that may have finished while nothing was listening (a
/// resumed wait, a task taken over from a worker that died): its state is read at once, as
/// [`wait_for_task`](crate::wait_for_task) does, then the safety net and the callbacks take
/// over. [`wait_for_task_hybrid`] is for a task just created, whose callback is still to come.
pub async fn wait_for_existing_task_hybrid(
    api: &dyn Veo3Api,
    task_id: &str,
    inbox: &Inbox,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<TaskRecord, Error> {
    let wait =
        WaitState::for_existing_task(task_id, schedule, effects.observer().clone(), effects.now());
    task_hybrid(api, wait, inbox, effects).await
}

async fn task_hybrid(
    api: &dyn Veo3Api,
    wait: WaitState,
    inbox: &Inbox,
    effects: &Effects,
) -> Result<TaskRecord, Error> {
    let task_id = wait.task_id().to_owned();
    let span = tracing::info_span!("veo3.wait", task_id, target = "task", hybrid = true);
    drive_hybrid(wait, effects, inbox, || async {
        api.record_info(&task_id).await.map(accept_task)
    })
    .instrument(span)
    .await
}

/// Submits a generation (billable, sent at most once) and waits for it with
/// [`wait_for_task_hybrid`]. The request's `callBackUrl` should reach the receiver feeding
/// `inbox`; without one the wait only polls (and says so in a `tracing` warning).
pub async fn generate_and_wait_hybrid(
    api: &dyn Veo3Api,
    request: &GenerateRequest,
    inbox: &Inbox,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<TaskRecord, Error> {
    warn_without_callback(request.call_back_url.as_deref());
    let task_id = super::submit_generation(api, request, effects).await?;
    wait_for_task_hybrid(api, &task_id, inbox, schedule, effects).await
}

/// Submits an extension (billable, sent at most once) and waits for it with
/// [`wait_for_task_hybrid`]; the stitched video is in [`TaskRecord::video_urls`].
pub async fn extend_and_wait_hybrid(
    api: &dyn Veo3Api,
    request: &ExtendRequest,
    inbox: &Inbox,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<TaskRecord, Error> {
    warn_without_callback(request.call_back_url.as_deref());
    let task_id = super::submit_extension(api, request, effects).await?;
    wait_for_task_hybrid(api, &task_id, inbox, schedule, effects).await
}

/// Requests the 1080p version of video `index` of `task_id` (at once: the first request
/// starts production) and waits for it like [`wait_for_1080p`](crate::wait_for_1080p), but
/// asks again as soon as a 1080p callback for the task reaches `inbox`
/// ([`CallbackKind::Hd1080p`](veo3_types::CallbackKind::Hd1080p)): one confirming request,
/// whose answer decides. `schedule` is the safety net (the 1080p stage's, made rare).
///
/// The reference documents no callback for the 1080p endpoint (it takes no `callBackUrl`):
/// this wait finishes early only when something delivers one into `inbox` (a generation made
/// at 1080p reports it; a server that notifies 1080p versions would); otherwise it is a
/// polling wait on its safety net, with the same results and errors as `wait_for_1080p`.
pub async fn upgrade_1080p_and_wait_hybrid(
    api: &dyn Veo3Api,
    task_id: &str,
    index: Option<u32>,
    inbox: &Inbox,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<Hd1080pResult, Error> {
    let wait =
        wait_state(task_id, WaitTarget::Hd1080p, schedule, effects).with_immediate_first_poll();
    let span = tracing::info_span!("veo3.wait", task_id, target = "1080p", hybrid = true);
    drive_hybrid(wait, effects, inbox, || poll_1080p(api, task_id, index))
        .instrument(span)
        .await
}

/// Waits for a 4K job that was already requested (with a `callBackUrl` reaching the receiver
/// feeding `inbox`) like [`wait_for_4k`](crate::wait_for_4k), but repeats the request as soon
/// as the job's 4K callback arrives: one confirming request (a repeat answers with the URLs
/// once the job is done). A 4K callback carries the source task's id; only callbacks of kind
/// [`CallbackKind::Upgrade4k`](veo3_types::CallbackKind::Upgrade4k) count, so the source's
/// own generation callback does not wake it. `schedule` is the safety net.
pub async fn wait_for_4k_hybrid(
    api: &dyn Veo3Api,
    request: &Upgrade4kRequest,
    inbox: &Inbox,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<Upgrade4kResult, Error> {
    let wait = wait_state(
        request.task_id.as_str(),
        WaitTarget::Upgrade4k,
        schedule,
        effects,
    );
    let span =
        tracing::info_span!("veo3.wait", task_id = %request.task_id, target = "4k", hybrid = true);
    drive_hybrid(wait, effects, inbox, || poll_4k(api, request))
        .instrument(span)
        .await
}

/// Requests the 4K version (billable, sent once), announces the 4K job (its id as the answer
/// names it), and waits for it with [`wait_for_4k_hybrid`]. The request's `callBackUrl`
/// should reach the receiver feeding `inbox`; without one the wait only polls (and says so in
/// a `tracing` warning).
pub async fn upgrade_4k_and_wait_hybrid(
    api: &dyn Veo3Api,
    request: &Upgrade4kRequest,
    inbox: &Inbox,
    schedule: &PollSchedule,
    effects: &Effects,
) -> Result<Upgrade4kResult, Error> {
    warn_without_callback(request.call_back_url.as_deref());
    match api.upgrade_4k(request).await? {
        UpgradeStatus::Ready(result) => Ok(result),
        accepted @ UpgradeStatus::Processing { .. } => {
            announce_submitted(
                effects.observer(),
                Endpoint::Upgrade4k,
                accepted.job_id().unwrap_or(&request.task_id),
            );
            wait_for_4k_hybrid(api, request, inbox, schedule, effects).await
        }
    }
}

/// Warns (`tracing`) when a hybrid wait is about to submit a request without `callBackUrl`:
/// the wait still works (it polls), but is almost certainly not what the caller meant. Both
/// clients' hybrid flows call this one.
pub fn warn_without_callback(call_back_url: Option<&str>) {
    if call_back_url.is_none_or(|url| url.trim().is_empty()) {
        tracing::warn!(
            "hybrid wait for a request without callBackUrl: no callback will come; only the safety-net polls will notice the result"
        );
    }
}

#[cfg(test)]
mod tests;
