//! Hybrid waits on simulated time: the callback ends the wait with one read, a stale one
//! costs one read, a lost one leaves the safety net, for the async and the blocking loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use veo3_types::{
    Credits, ExtendRequest, GenerateRequest, Hd1080pResult, TaskCreated, TaskRecord, TaskState,
    Upgrade4kRequest, Upgrade4kResult,
};

use super::*;
use crate::api::UpgradeStatus;
use crate::blocking::BlockingExecutor;
use crate::event::{Event, Finish, Observer};
use crate::retry::RetryPolicy;
use crate::time::{Clock, SimulatedClock, Sleeper, ThreadSleeper};

const TASK: &str = "t1";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A verified (unsigned) callback for `task_id`.
fn callback(task_id: &str) -> VerifiedCallback {
    let body = json!({"code": 200, "msg": "ok", "data": {"taskId": task_id}}).to_string();
    let callback = veo3_types::Callback::from_slice(body.as_bytes()).expect("a valid callback");
    VerifiedCallback::new(task_id, callback)
}

fn record(flag: i64) -> TaskRecord {
    TaskRecord::from_data(&json!({
        "taskId": TASK, "successFlag": flag, "errorCode": 501, "errorMessage": "boom",
        "response": {"resultUrls": ["https://f.example/v.mp4"]}
    }))
    .expect("record")
}

/// A task that finishes (with `flag`) at `done_at` on `clock`; counts and times its reads.
#[derive(Debug)]
struct Task {
    clock: SimulatedClock,
    done_at: Duration,
    flag: i64,
    reads: Mutex<Vec<Duration>>,
}

impl Task {
    fn new(clock: &SimulatedClock, done_at: Duration, flag: i64) -> Self {
        Self {
            clock: clock.clone(),
            done_at,
            flag,
            reads: Mutex::new(Vec::new()),
        }
    }

    fn read(&self) -> TaskRecord {
        let now = self.clock.now();
        self.reads.lock().expect("lock").push(now);
        record(if now >= self.done_at { self.flag } else { 0 })
    }

    fn reads(&self) -> Vec<Duration> {
        self.reads.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Veo3Api for Task {
    async fn generate(&self, _: &GenerateRequest) -> Result<TaskCreated, Error> {
        Ok(TaskCreated::from_data(&json!({"taskId": TASK})).expect("created"))
    }
    async fn record_info(&self, task_id: &str) -> Result<TaskRecord, Error> {
        assert_eq!(task_id, TASK);
        Ok(self.read())
    }
    async fn hd_1080p(
        &self,
        task_id: &str,
        _: Option<u32>,
    ) -> Result<UpgradeStatus<Hd1080pResult>, Error> {
        assert_eq!(task_id, TASK);
        Ok(match self.read().state {
            TaskState::Generating => UpgradeStatus::processing("1080P is processing"),
            _ => UpgradeStatus::Ready(
                Hd1080pResult::from_data(&json!({"resultUrl": "https://f.example/v_1080p.mp4"}))
                    .expect("1080p"),
            ),
        })
    }
    async fn upgrade_4k(
        &self,
        request: &Upgrade4kRequest,
    ) -> Result<UpgradeStatus<Upgrade4kResult>, Error> {
        assert_eq!(request.task_id, TASK);
        Ok(match self.read().state {
            TaskState::Generating => UpgradeStatus::Processing {
                message: "4k is processing".into(),
                job_id: Some(TASK.into()),
            },
            _ => UpgradeStatus::Ready(
                Upgrade4kResult::from_data(&json!({
                    "taskId": TASK,
                    "resultUrls": ["https://f.example/v_4k.mp4"],
                    "imageUrls": ["https://f.example/v_4k.jpg"]
                }))
                .expect("4K"),
            ),
        })
    }
    async fn extend(&self, _: &ExtendRequest) -> Result<TaskCreated, Error> {
        unreachable!("not used here")
    }
    async fn credits(&self) -> Result<Credits, Error> {
        unreachable!("not used here")
    }
    async fn download_url(&self, _: &str) -> Result<String, Error> {
        unreachable!("not used here")
    }

    async fn upload_file(
        &self,
        _: &std::path::Path,
        _: &veo3_types::UploadOptions,
    ) -> Result<veo3_types::UploadedFile, Error> {
        unreachable!("not used here")
    }

    async fn upload_bytes(
        &self,
        _: &[u8],
        _: &str,
        _: &veo3_types::UploadOptions,
    ) -> Result<veo3_types::UploadedFile, Error> {
        unreachable!("not used here")
    }

    async fn upload_url(
        &self,
        _: &str,
        _: &veo3_types::UploadOptions,
    ) -> Result<veo3_types::UploadedFile, Error> {
        unreachable!("not used here")
    }
}

/// Simulated time on which the task's callback reaches `inbox` at `arrives_at` (once): a
/// sleep crossing that instant advances to it, delivers, and never completes, as a real
/// sleep that loses the race to the callback would be dropped.
#[derive(Debug)]
struct Arrival {
    clock: SimulatedClock,
    inbox: Inbox,
    arrives_at: Option<Duration>,
    delivered: AtomicBool,
    /// What arrives.
    sends: VerifiedCallback,
}

#[async_trait]
impl Sleeper for Arrival {
    async fn sleep(&self, duration: Duration) {
        let now = self.clock.now();
        if let Some(at) = self.arrives_at {
            if now + duration >= at && !self.delivered.swap(true, Ordering::SeqCst) {
                self.clock.advance(at.saturating_sub(now));
                if self.inbox.deliver(self.sends.clone()) > 0 {
                    std::future::pending::<()>().await;
                }
                // Nobody waits for this kind: it is kept, and the sleep runs its course.
                self.clock.advance((now + duration).saturating_sub(at));
                return;
            }
        }
        self.clock.advance(duration);
    }
}

/// What an observer saw: (poll, trigger, elapsed) per poll, and the final outcome.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Event>>>);

impl Seen {
    fn observer(&self) -> Observer {
        let sink = self.0.clone();
        Observer::new(move |event: &Event| sink.lock().expect("lock").push(event.clone()))
    }

    fn triggers(&self) -> Vec<PollTrigger> {
        let events = self.0.lock().expect("lock");
        events
            .iter()
            .filter_map(|event| match event {
                Event::Polled { trigger, .. } => Some(*trigger),
                _ => None,
            })
            .collect()
    }

    fn finish(&self) -> Option<Finish> {
        let events = self.0.lock().expect("lock");
        events.iter().rev().find_map(|event| match event {
            Event::Finished { outcome, .. } => Some(outcome.clone()),
            _ => None,
        })
    }
}

/// Runs an async hybrid wait for a task finishing at `done_at`, whose callback arrives at
/// `arrives_at`; the result, the read times and the triggers.
fn run_async(
    schedule: &PollSchedule,
    done_at: Duration,
    flag: i64,
    arrives_at: Option<Duration>,
    inbox: &Inbox,
) -> (Result<TaskRecord, Error>, Vec<Duration>, Seen) {
    let clock = SimulatedClock::new();
    let task = Task::new(&clock, done_at, flag);
    let sleeper = Arrival {
        clock: clock.clone(),
        inbox: inbox.clone(),
        arrives_at,
        delivered: AtomicBool::new(false),
        sends: callback(TASK),
    };
    let seen = Seen::default();
    let effects = Effects::new(Arc::new(clock.clone()), Arc::new(sleeper))
        .with_random(|| 0)
        .with_observer(seen.observer());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let result = runtime.block_on(wait_for_task_hybrid(&task, TASK, inbox, schedule, &effects));
    (result, task.reads(), seen)
}

/// A safety net far longer than anything the tests wait for.
fn ten_minutes() -> PollSchedule {
    PollSchedule::new(secs(600), secs(600), secs(3600)).with_jitter(0.0)
}

#[test]
fn the_callback_ends_the_wait_with_one_confirming_read() {
    let inbox = Inbox::new();
    let (result, reads, seen) = run_async(&ten_minutes(), secs(95), 1, Some(secs(95)), &inbox);
    assert_eq!(result.expect("success").state, TaskState::Success);
    assert_eq!(reads, [secs(95)], "one read, when the callback came");
    assert_eq!(seen.triggers(), [PollTrigger::Callback]);
    assert_eq!(seen.finish(), Some(Finish::Succeeded));
    assert_eq!(inbox.waiting(), 0, "the wait unregistered");
}

#[test]
fn a_failure_callback_is_confirmed_and_reported_with_the_tasks_code() {
    let (result, reads, _) = run_async(&ten_minutes(), secs(40), 3, Some(secs(40)), &Inbox::new());
    let error = result.expect_err("the task failed");
    assert!(error.is_task_failed());
    assert_eq!(error.message(), Some("boom"));
    assert_eq!(reads, [secs(40)]);
}

#[test]
fn a_callback_that_came_before_the_wait_is_used_at_once() {
    let inbox = Inbox::new();
    inbox.deliver(callback(TASK));
    inbox.deliver(callback("another-task"));
    let (result, reads, _) = run_async(&ten_minutes(), Duration::ZERO, 1, None, &inbox);
    assert!(result.is_ok());
    assert_eq!(reads, [Duration::ZERO]);
    assert_eq!(
        inbox.kept_len(),
        1,
        "other tasks' callbacks stay for their waits"
    );
}

#[test]
fn without_a_callback_the_safety_net_finds_the_result() {
    let schedule = PollSchedule::generation().with_jitter(0.0).safety_net();
    let (result, reads, seen) = run_async(&schedule, secs(95), 1, None, &Inbox::new());
    assert!(result.is_ok());
    // The first safety read comes when a generation is expected done (5 min), not earlier.
    assert_eq!(reads, [secs(300)]);
    assert_eq!(seen.triggers(), [PollTrigger::Schedule]);
}

#[test]
fn a_stale_callback_costs_one_read_and_the_schedule_continues() {
    let schedule = PollSchedule::generation().with_jitter(0.0).safety_net();
    let (result, reads, seen) = run_async(&schedule, secs(200), 1, Some(secs(50)), &Inbox::new());
    assert!(result.is_ok());
    assert_eq!(reads, [secs(50), secs(170), secs(290)]);
    assert_eq!(
        seen.triggers(),
        [
            PollTrigger::Callback,
            PollTrigger::Schedule,
            PollTrigger::Schedule
        ]
    );
}

#[test]
fn without_a_callback_or_a_result_the_deadline_still_ends_the_wait() {
    let schedule = PollSchedule::new(secs(60), secs(60), secs(150)).with_jitter(0.0);
    let (result, reads, seen) = run_async(&schedule, Duration::MAX, 1, None, &Inbox::new());
    assert!(result.expect_err("deadline").is_timeout());
    assert_eq!(reads, [secs(60), secs(120), secs(150)]);
    assert_eq!(seen.finish(), Some(Finish::TimedOut));
}

#[test]
fn generate_and_wait_hybrid_submits_once_and_reports_the_callback() {
    let clock = SimulatedClock::new();
    let task = Task::new(&clock, Duration::ZERO, 1);
    let inbox = Inbox::new();
    inbox.deliver(callback(TASK));
    let seen = Seen::default();
    let effects = Effects::simulated(&clock).with_observer(seen.observer());
    let request = GenerateRequest::builder("a fox")
        .call_back_url("https://example.com/cb")
        .build()
        .expect("valid");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let record = runtime.block_on(generate_and_wait_hybrid(
        &task,
        &request,
        &inbox,
        &ten_minutes(),
        &effects,
    ));
    assert!(record.is_ok());
    let events = seen.0.lock().expect("lock").clone();
    assert!(matches!(events.first(), Some(Event::Submitted { .. })));
    let polled = events
        .iter()
        .find(|event| matches!(event, Event::Polled { .. }))
        .expect("a poll");
    assert!(
        polled.to_string().ends_with("(after a callback)"),
        "{polled}"
    );
}

/// Runs a blocking hybrid wait on simulated time; `poll` gets (read number, now).
fn run_blocking(
    schedule: &PollSchedule,
    inbox: &Inbox,
    mut answer: impl FnMut(u32, Duration) -> i64,
) -> (Result<TaskRecord, Error>, Vec<Duration>, Seen) {
    let clock = SimulatedClock::new();
    let seen = Seen::default();
    let executor = BlockingExecutor::simulated(RetryPolicy::default(), &clock)
        .with_random(|| 0)
        .with_observer(seen.observer());
    let wait = WaitState::new(
        TASK,
        WaitTarget::Task,
        schedule,
        executor.observer().clone(),
        clock.now(),
    );
    let mut reads = Vec::new();
    let result = executor.wait_hybrid(wait, inbox, || {
        reads.push(clock.now());
        Ok(accept_task(record(answer(reads.len() as u32, clock.now()))))
    });
    (result, reads, seen)
}

#[test]
fn blocking_on_simulated_time_a_callback_arriving_during_a_round_is_confirmed_at_once() {
    let schedule = PollSchedule::generation().with_jitter(0.0).safety_net();
    let inbox = Inbox::new();
    let arriving = inbox.clone();
    // The first safety poll sees the task running; its callback arrives right after.
    let (result, reads, seen) = run_blocking(&schedule, &inbox, |read, _| {
        if read == 1 {
            arriving.deliver(callback(TASK));
            0
        } else {
            1
        }
    });
    assert!(result.is_ok());
    assert_eq!(reads, [secs(300), secs(300)]);
    assert_eq!(
        seen.triggers(),
        [PollTrigger::Schedule, PollTrigger::Callback]
    );
}

#[test]
fn blocking_on_simulated_time_without_callbacks_follows_the_safety_net() {
    let schedule = PollSchedule::new(secs(600), secs(600), secs(3600)).with_jitter(0.0);
    let (result, reads, _) = run_blocking(
        &schedule,
        &Inbox::new(),
        |read, _| {
            if read < 3 { 0 } else { 1 }
        },
    );
    assert!(result.is_ok());
    assert_eq!(reads, [secs(600), secs(1200), secs(1800)]);
}

#[test]
fn blocking_in_real_time_the_callback_wakes_a_ten_minute_sleep() {
    // The real sleeper blocks on the inbox; the clock is simulated only so that nothing here
    // depends on how long the thread really waited.
    let clock = SimulatedClock::new();
    let executor = BlockingExecutor::new(
        RetryPolicy::default(),
        Arc::new(clock.clone()),
        Arc::new(ThreadSleeper),
    );
    let inbox = Inbox::new();
    let wait = WaitState::new(
        TASK,
        WaitTarget::Task,
        &ten_minutes(),
        Observer::none(),
        clock.now(),
    );
    let receiver = inbox.clone();
    let delivery = std::thread::spawn(move || receiver.deliver(callback(TASK)));
    let mut reads = 0;
    let result = executor.wait_hybrid(wait, &inbox, || {
        reads += 1;
        Ok(accept_task(record(1)))
    });
    assert!(result.is_ok());
    assert_eq!(reads, 1);
    delivery.join().expect("delivery thread");
    assert_eq!(inbox.kept_len(), 0, "consumed by the wait");
}

#[test]
fn the_simulated_sleeper_takes_a_kept_callback_without_sleeping() {
    let clock = SimulatedClock::new();
    let inbox = Inbox::new();
    inbox.deliver(callback(TASK));
    assert!(inbox.sleep_or_take(&clock, TASK, secs(600)).is_some());
    assert_eq!(clock.now(), Duration::ZERO);
    assert!(inbox.sleep_or_take(&clock, TASK, secs(600)).is_none());
    assert_eq!(clock.now(), secs(600));
}

/// A verified callback for `TASK` with `body`'s code, message and data.
fn shaped(body: serde_json::Value) -> VerifiedCallback {
    let callback =
        veo3_types::Callback::from_slice(body.to_string().as_bytes()).expect("a valid callback");
    VerifiedCallback::new(TASK, callback)
}

fn four_k_callback() -> VerifiedCallback {
    shaped(
        json!({"code": 200, "msg": "4K Video generated successfully.", "data": {
            "taskId": TASK,
            "info": {"resultUrls": ["https://f.example/v_4k.mp4"], "imageUrls": ["https://f.example/v_4k.jpg"]}
        }}),
    )
}

fn hd_callback() -> VerifiedCallback {
    shaped(
        json!({"code": 200, "msg": "Veo3.1 video generated successfully.", "data": {
            "taskId": TASK,
            "info": {"resultUrls": ["https://f.example/v_1080p.mp4"], "resolution": "1080p"}
        }}),
    )
}

/// Runs an upgrade hybrid wait (4K or 1080p) whose job is done at `done_at` and whose
/// `arriving` callback reaches `inbox` then; the request times and the triggers.
fn run_upgrade(
    four_k: bool,
    done_at: Duration,
    arriving: VerifiedCallback,
    inbox: &Inbox,
) -> (bool, Vec<Duration>, Seen) {
    let clock = SimulatedClock::new();
    let task = Task::new(&clock, done_at, 1);
    let sleeper = Arrival {
        clock: clock.clone(),
        inbox: inbox.clone(),
        arrives_at: Some(done_at),
        delivered: AtomicBool::new(false),
        sends: arriving,
    };
    let seen = Seen::default();
    let effects = Effects::new(Arc::new(clock.clone()), Arc::new(sleeper))
        .with_random(|| 0)
        .with_observer(seen.observer());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let ok = if four_k {
        let request = Upgrade4kRequest::new(TASK);
        let schedule = PollSchedule::upgrade_4k().with_jitter(0.0).safety_net();
        runtime
            .block_on(upgrade_4k_and_wait_hybrid(
                &task, &request, inbox, &schedule, &effects,
            ))
            .is_ok_and(|result| result.result_urls == ["https://f.example/v_4k.mp4"])
    } else {
        let schedule = PollSchedule::hd_1080p().with_jitter(0.0).safety_net();
        runtime
            .block_on(upgrade_1080p_and_wait_hybrid(
                &task,
                TASK,
                Some(0),
                inbox,
                &schedule,
                &effects,
            ))
            .is_ok_and(|result| result.result_url == "https://f.example/v_1080p.mp4")
    };
    (ok, task.reads(), seen)
}

#[test]
fn a_4k_callback_ends_a_4k_wait_with_one_confirming_request_and_the_sources_own_does_not() {
    // The source's generation callback (same task id) was kept: it must not wake the 4K wait.
    let inbox = Inbox::new();
    inbox.deliver(callback(TASK));
    let (ok, requests, seen) = run_upgrade(true, secs(420), four_k_callback(), &inbox);
    assert!(ok);
    // The request at once, then the one confirming repeat when the 4K callback came (the
    // safety net's first read would be at 10 minutes).
    assert_eq!(requests, [secs(0), secs(420)]);
    assert_eq!(seen.triggers(), [PollTrigger::Callback]);
    assert!(
        inbox.try_take_target(TASK, WaitTarget::Task).is_some(),
        "the source's callback is still there for a wait of the source"
    );
}

#[test]
fn a_generation_callback_does_not_end_a_4k_wait_early() {
    let inbox = Inbox::new();
    let (ok, requests, seen) = run_upgrade(true, secs(420), callback(TASK), &inbox);
    assert!(ok);
    // Ignored: the safety net's first read, at the 4K stage's expected completion, finds it.
    assert_eq!(requests, [secs(0), secs(600)]);
    assert_eq!(seen.triggers(), [PollTrigger::Schedule]);
}

#[test]
fn a_1080p_callback_ends_a_1080p_wait_with_one_confirming_request() {
    let inbox = Inbox::new();
    inbox.deliver(four_k_callback());
    let (ok, requests, seen) = run_upgrade(false, secs(70), hd_callback(), &inbox);
    assert!(ok);
    // The first request starts production at once; the callback's confirming one decides.
    assert_eq!(requests, [secs(0), secs(70)]);
    assert_eq!(
        seen.triggers(),
        [PollTrigger::Schedule, PollTrigger::Callback]
    );
    assert_eq!(inbox.kept_len(), 1, "the 4K callback stays for a 4K wait");
}

#[test]
fn the_inbox_keeps_callbacks_per_task_and_kind() {
    let inbox = Inbox::new();
    inbox.deliver(callback(TASK));
    inbox.deliver(four_k_callback());
    assert_eq!(
        inbox.kept_len(),
        2,
        "one task, two kinds: neither replaces the other"
    );
    assert!(inbox.try_take_target(TASK, WaitTarget::Hd1080p).is_none());
    let four_k = inbox
        .try_take_target(TASK, WaitTarget::Upgrade4k)
        .expect("4K");
    assert_eq!(four_k.callback.kind(), veo3_types::CallbackKind::Upgrade4k);
    assert!(inbox.try_take_target(TASK, WaitTarget::Upgrade4k).is_none());
    assert!(inbox.try_take(TASK).is_some(), "any kind");
}
