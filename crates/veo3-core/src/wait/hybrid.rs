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
use veo3_types::{ExtendRequest, GenerateRequest, TaskRecord};

use super::{Acceptance, WaitState, WaitStep, accept_task};
use crate::Error;
use crate::api::Veo3Api;
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
        let hint = inbox
            .wait_until(wait.task_id(), effects.sleeper().sleep(delay))
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
    let wait = WaitState::new(
        task_id,
        WaitTarget::Task,
        schedule,
        effects.observer().clone(),
        effects.now(),
    );
    let span = tracing::info_span!("veo3.wait", task_id, target = "task", hybrid = true);
    drive_hybrid(wait, effects, inbox, || async {
        api.record_info(task_id).await.map(accept_task)
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
