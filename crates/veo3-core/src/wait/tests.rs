//! The pure wait state machine on simulated time.

use std::sync::{Arc, Mutex};

use serde_json::json;
use veo3_types::TaskRecord;

use super::*;

fn record(flag: serde_json::Value) -> TaskRecord {
    TaskRecord::from_data(
        &json!({"taskId": "t1", "successFlag": flag, "errorCode": 501, "errorMessage": "boom"}),
    )
    .expect("record")
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Runs a wait over `answers` (one per poll, the last repeated) on simulated time.
fn simulate(
    schedule: &PollSchedule,
    mut answer: impl FnMut(u32) -> Result<Acceptance<TaskRecord>, Error>,
) -> (Result<TaskRecord, Error>, Vec<Duration>, Vec<Event>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let observer =
        Observer::new(move |event: &Event| sink.lock().expect("lock").push(event.clone()));
    let mut now = Duration::ZERO;
    let mut poll_times = Vec::new();
    let mut wait = WaitState::new("t1", WaitTarget::Task, schedule, observer, now);
    let result = loop {
        let Some(delay) = wait.next_delay(now, 0) else {
            break Err(wait.timed_out(now));
        };
        now += delay;
        poll_times.push(now);
        assert!(poll_times.len() < 100_000, "the wait must end");
        match wait.observe(answer(wait.polls() + 1), now) {
            WaitStep::Done(value) => break Ok(value),
            WaitStep::Continue => {}
            WaitStep::Fail(error) => break Err(error),
        }
    };
    let events = events.lock().expect("lock").clone();
    (result, poll_times, events)
}

#[test]
fn success_after_pending() {
    let schedule = PollSchedule::new(secs(30), secs(15), secs(600)).with_jitter(0.0);
    let (result, times, events) = simulate(&schedule, |poll| {
        Ok(accept_task(record(json!(if poll < 3 { 0 } else { 1 }))))
    });
    assert_eq!(result.expect("success").state, TaskState::Success);
    assert_eq!(times, [secs(30), secs(45), secs(60)]);
    assert!(matches!(
        events.last(),
        Some(Event::Finished {
            outcome: Finish::Succeeded,
            polls: 3,
            ..
        })
    ));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Polled { .. }))
            .count(),
        3
    );
}

#[test]
fn failure_reports_the_tasks_code_and_message() {
    for flag in [2, 3] {
        let (result, _, _) = simulate(&PollSchedule::generation(), |_| {
            Ok(accept_task(record(json!(flag))))
        });
        let error = result.expect_err("failed task");
        assert!(error.is_task_failed());
        assert_eq!(error.task_id(), Some("t1"));
        assert_eq!(error.code(), Some(ApiCode::GenerationFailed));
        assert_eq!(error.message(), Some("boom"));
    }
}

#[test]
fn a_download_of_a_failed_task_is_the_tasks_failure_not_bad_input() {
    let failed = record(json!(3));
    let error = task_video(&failed, 0).expect_err("no video");
    assert!(error.is_task_failed(), "{error:?}");
    assert_eq!(error.message(), Some("boom"));

    let running = record(json!(0));
    let error = task_video(&running, 0).expect_err("no video yet");
    assert!(
        matches!(error, Error::NoVideo { videos: 0, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("no video yet"), "{error}");

    let done = TaskRecord::from_data(&json!({
        "taskId": "t1", "successFlag": 1,
        "response": {"resultUrls": ["https://f/a.mp4"]},
    }))
    .expect("record");
    assert_eq!(task_video(&done, 0).expect("a video"), "https://f/a.mp4");
    let error = task_video(&done, 1).expect_err("one video only");
    assert!(error.to_string().contains("there is no video 1"), "{error}");
}

#[test]
fn unknown_success_flag_ends_at_the_deadline_with_a_clear_error() {
    let schedule = PollSchedule::new(secs(30), secs(20), secs(300)).with_jitter(0.0);
    let (result, times, _) = simulate(&schedule, |_| Ok(accept_task(record(json!(7)))));
    let error = result.expect_err("deadline");
    assert!(error.is_timeout());
    assert_eq!(
        times.last(),
        Some(&secs(300)),
        "the last poll lands on the deadline"
    );
    match &error {
        Error::WaitTimeout {
            elapsed,
            polls,
            last_status,
            ..
        } => {
            assert_eq!(*elapsed, secs(300));
            assert_eq!(*polls as usize, times.len());
            assert_eq!(
                last_status,
                &Some(PollStatus::Task(TaskState::Unknown("7".into())))
            );
        }
        other => panic!("expected a wait timeout, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("unknown task state \"7\"") && text.contains("5m00s"),
        "{text}"
    );
}

#[test]
fn transient_poll_errors_are_tolerated_up_to_the_limit() {
    let schedule = PollSchedule::new(secs(1), secs(1), secs(60)).with_max_consecutive_errors(2);
    let busy = || Error::Api {
        endpoint: Endpoint::RecordInfo,
        task_id: None,
        code: ApiCode::ServiceUnavailable,
        message: "maintenance".into(),
        status: 200,
        retry_after: None,
    };
    // Two errors, then success: fine.
    let (result, _, _) = simulate(&schedule, |poll| match poll {
        1 | 2 => Err(busy()),
        _ => Ok(accept_task(record(json!(1)))),
    });
    assert!(result.is_ok());
    // Errors separated by a good poll reset the count.
    let (result, _, _) = simulate(&schedule, |poll| match poll {
        1 | 2 | 4 | 5 => Err(busy()),
        3 => Ok(accept_task(record(json!(0)))),
        _ => Ok(accept_task(record(json!(1)))),
    });
    assert!(result.is_ok());
    // Three in a row: the wait fails, keeping the task id and the cause.
    let (result, times, _) = simulate(&schedule, |_| Err(busy()));
    let error = result.expect_err("too many errors");
    assert_eq!(times.len(), 3);
    assert_eq!(error.task_id(), Some("t1"));
    assert_eq!(error.code(), Some(ApiCode::ServiceUnavailable));
    assert!(matches!(error, Error::WaitFailed { polls: 3, .. }));
    // A permanent error ends the wait at once.
    let (result, times, _) = simulate(&schedule, |_| {
        Err(Error::Api {
            endpoint: Endpoint::RecordInfo,
            task_id: None,
            code: ApiCode::Unauthorized,
            message: "no".into(),
            status: 200,
            retry_after: None,
        })
    });
    assert!(result.expect_err("401").is_unauthorized());
    assert_eq!(times.len(), 1);
}

#[test]
fn upgrades_tolerate_their_documented_transients() {
    let not_yet = || Error::Api {
        endpoint: Endpoint::Hd1080p,
        task_id: None,
        code: ApiCode::Unprocessable,
        message: "record status is not success".into(),
        status: 200,
        retry_after: None,
    };
    let schedule = PollSchedule::hd_1080p();
    let mut wait = WaitState::new(
        "t1",
        WaitTarget::Hd1080p,
        &schedule,
        Observer::none(),
        Duration::ZERO,
    )
    .with_immediate_first_poll();
    assert_eq!(wait.next_delay(Duration::ZERO, 0), Some(Duration::ZERO));
    assert!(matches!(
        wait.observe::<()>(Err(not_yet()), Duration::ZERO),
        WaitStep::Continue
    ));
    assert_eq!(
        wait.next_delay(Duration::ZERO, 0),
        Some(secs(20)),
        "then the schedule's first delay"
    );
    let mut task_wait = WaitState::new(
        "t1",
        WaitTarget::Task,
        &schedule,
        Observer::none(),
        Duration::ZERO,
    );
    assert!(matches!(
        task_wait.observe::<()>(Err(not_yet()), Duration::ZERO),
        WaitStep::Fail(_)
    ));

    let lost = || Error::SubmitOutcomeUnknown {
        endpoint: Endpoint::Upgrade4k,
        cause: Box::new(Error::Transport {
            endpoint: Endpoint::Upgrade4k,
            task_id: None,
            phase: crate::TransportPhase::AwaitingResponse,
            timed_out: true,
            message: "timeout".into(),
        }),
    };
    let mut k4 = WaitState::new(
        "t1",
        WaitTarget::Upgrade4k,
        &PollSchedule::upgrade_4k(),
        Observer::none(),
        Duration::ZERO,
    );
    assert!(matches!(
        k4.observe::<()>(Err(lost()), Duration::ZERO),
        WaitStep::Continue
    ));
    assert!(matches!(
        k4.observe(
            Ok(accept_upgrade(UpgradeStatus::<()>::processing(
                "4k is processing"
            ))),
            Duration::ZERO
        ),
        WaitStep::Continue
    ));
    assert!(matches!(
        k4.last_status(),
        Some(PollStatus::Processing { .. })
    ));
}

#[test]
fn zero_deadline_still_ends() {
    let schedule = PollSchedule::generation().with_deadline(Duration::ZERO);
    let (result, times, _) = simulate(&schedule, |_| Ok(accept_task(record(json!(0)))));
    assert!(times.is_empty());
    assert!(matches!(result, Err(Error::WaitTimeout { polls: 0, .. })));
}

/// The "record is null" grace window as a decision: the answer, the task's age at the wait's
/// start (`None`: unknown), the time into the wait, the window; "not visible yet" or not.
#[test]
fn record_is_null_is_not_visible_yet_only_inside_the_grace_window() {
    let null = Error::api(
        Endpoint::RecordInfo,
        ApiCode::Unprocessable,
        "record is null",
    );
    let null_spaced = Error::api(
        Endpoint::RecordInfo,
        ApiCode::Unprocessable,
        " Record is NULL ",
    );
    let expired = Error::api(
        Endpoint::RecordInfo,
        ApiCode::Unprocessable,
        "Temporarily supports records within 14 days.",
    );
    let not_found = Error::api(Endpoint::RecordInfo, ApiCode::NotFound, "record is null");
    let ninety = secs(90);
    #[rustfmt::skip]
    let table: &[(&Error, Option<Duration>, Duration, Duration, bool)] = &[
        // error         age at start      elapsed    grace       not visible yet?
        (&null,          Some(secs(0)),    secs(0),   ninety,     true),  // our own submission, first read
        (&null,          Some(secs(0)),    secs(89),  ninety,     true),
        (&null,          Some(secs(0)),    secs(90),  ninety,     true),  // the window's last instant
        (&null,          Some(secs(0)),    secs(91),  ninety,     false), // after the window: today's error
        (&null,          Some(secs(60)),   secs(20),  ninety,     true),  // a journal's task, 60 s old
        (&null,          Some(secs(60)),   secs(31),  ninety,     false),
        (&null,          Some(secs(600)),  secs(0),   ninety,     false), // long created: unknown for real
        (&null,          None,             secs(0),   ninety,     false), // age unknown: no grace
        (&null,          Some(secs(0)),    secs(1),   secs(0),    false), // grace turned off
        (&null,          Some(secs(0)),    secs(200), secs(300),  true),  // a longer window
        (&null,          Some(Duration::MAX), secs(1), ninety,    false), // no overflow
        (&null_spaced,   Some(secs(0)),    secs(1),   ninety,     true),
        (&expired,       Some(secs(0)),    secs(1),   ninety,     false), // other 422 answers are not
        (&not_found,     Some(secs(0)),    secs(1),   ninety,     false),
    ];
    for (error, age, elapsed, grace, expected) in table {
        assert_eq!(
            is_not_visible_yet(error, *age, *elapsed, *grace),
            *expected,
            "{error} age {age:?} elapsed {elapsed:?} grace {grace:?}"
        );
    }
}

/// A wait after this client's submission waits "record is null" out inside the window and
/// finishes; the same answer after the window ends the wait as before; a wait for an
/// existing task of unknown age ends on the first one; with `created_ago` it has the rest of
/// the window.
#[test]
fn a_wait_follows_its_schedule_through_record_is_null_inside_the_window() {
    let null = || {
        Err(Error::api(
            Endpoint::RecordInfo,
            ApiCode::Unprocessable,
            "record is null",
        ))
    };
    let schedule = PollSchedule::new(secs(30), secs(30), secs(600)).with_jitter(0.0);
    // Invisible until 60 s, done at 90 s.
    let (result, times, events) = simulate(&schedule, |poll| match poll {
        1 | 2 => null(),
        _ => Ok(accept_task(record(json!(1)))),
    });
    assert_eq!(result.expect("finished").state, TaskState::Success);
    assert_eq!(times, [secs(30), secs(60), secs(90)]);
    assert!(events.iter().any(|event| matches!(
        event,
        Event::Polled {
            status: PollStatus::NotVisibleYet,
            ..
        }
    )));
    // Never visible: the poll at 120 s is past the 90 s window and ends the wait.
    let (result, times, _) = simulate(&schedule, |_| null());
    let error = result.expect_err("record is null after the window");
    let Error::WaitFailed { cause, .. } = &error else {
        panic!("not a failed wait: {error}");
    };
    assert!(is_record_null(cause), "{error}");
    assert_eq!(times, [secs(30), secs(60), secs(90), secs(120)]);

    // Existing tasks: unknown age, no grace; a known age, the rest of the window.
    let existing = |schedule: &PollSchedule| {
        WaitState::for_existing_task("t1", schedule, Observer::none(), Duration::ZERO)
    };
    let mut unknown = existing(&schedule);
    assert!(matches!(
        unknown.observe::<TaskRecord>(null(), secs(0)),
        WaitStep::Fail(_)
    ));
    let aged = schedule.clone().with_task_age(secs(70));
    let mut known = existing(&aged);
    assert!(matches!(
        known.observe::<TaskRecord>(null(), secs(0)),
        WaitStep::Continue
    ));
    assert!(matches!(
        known.observe::<TaskRecord>(null(), secs(20)),
        WaitStep::Continue
    ));
    assert!(matches!(
        known.observe::<TaskRecord>(null(), secs(21)),
        WaitStep::Fail(_)
    ));
    // Upgrade waits never take it for "not visible yet".
    let mut hd = WaitState::new(
        "t1",
        WaitTarget::Hd1080p,
        &schedule,
        Observer::none(),
        secs(0),
    );
    assert!(matches!(
        hd.observe::<()>(
            Err(Error::api(
                Endpoint::Hd1080p,
                ApiCode::Unprocessable,
                "record is null"
            )),
            secs(0)
        ),
        WaitStep::Fail(_)
    ));
}
