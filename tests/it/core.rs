//! Integration tests: veo3-core's drivers on simulated time (no socket, no real sleep), the
//! at-most-once rule for billable submits, the mock, and the crate's dependency boundary.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use veo3_core::{
    ApiClient, Clock, Effects, Error, Event, Executor, Finish, GiveUpReason, HttpRequest,
    HttpResponse, MockVeo3Api, Observer, PollSchedule, PollStatus, RetryBudget, RetryPolicy,
    RetryReason, SimulatedClock, Transport, TransportError, TransportPhase, UpgradeStatus, Veo3Api,
    generate_and_wait, upgrade_4k_and_wait, wait_for_1080p, wait_for_task,
};
use veo3_types::{
    ApiCode, Credits, Endpoint, GenerateRequest, Hd1080pResult, TaskCreated, TaskRecord, TaskState,
    Upgrade4kRequest, Upgrade4kResult,
};

use crate::support::fixture;

const TASK: &str = "3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21";

type Script = dyn Fn(u32, &HttpRequest, Option<Duration>) -> Result<HttpResponse, TransportError>
    + Send
    + Sync;

/// A transport that answers from a script and counts what it was asked to send. A script can
/// spend simulated time (as a slow server would) by advancing a clone of the test's clock.
struct ScriptedTransport {
    script: Box<Script>,
    sent: AtomicU32,
    timeouts: Mutex<Vec<Option<Duration>>>,
}

impl ScriptedTransport {
    fn new(
        script: impl Fn(u32, &HttpRequest, Option<Duration>) -> Result<HttpResponse, TransportError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self {
            script: Box::new(script),
            sent: AtomicU32::new(0),
            timeouts: Mutex::new(Vec::new()),
        }
    }

    fn sent(&self) -> u32 {
        self.sent.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Transport for ScriptedTransport {
    async fn send(
        &self,
        request: &HttpRequest,
        timeout: Option<Duration>,
    ) -> Result<HttpResponse, TransportError> {
        let attempt = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        self.timeouts.lock().unwrap().push(timeout);
        (self.script)(attempt, request, timeout)
    }
}

fn client(
    clock: &SimulatedClock,
    policy: RetryPolicy,
    transport: ScriptedTransport,
) -> ApiClient<ScriptedTransport> {
    let effects = Effects::simulated(clock).with_random(|| 1 << 63);
    ApiClient::new(transport, Executor::new(policy, effects))
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn generate_request() -> GenerateRequest {
    GenerateRequest::builder("A red fox trotting through fresh snow at dawn")
        .build()
        .expect("valid request")
}

fn envelope(code: i64, msg: &str) -> HttpResponse {
    HttpResponse::new(
        200,
        json!({"code": code, "msg": msg, "data": null}).to_string(),
    )
}

#[test]
fn generate_with_a_dropped_connection_is_sent_once_and_reported_unknown() {
    let clock = SimulatedClock::new();
    // The request went out; the connection died before any answer.
    let transport = ScriptedTransport::new(|_, request, _| {
        assert_eq!(request.endpoint, Endpoint::Generate);
        Err(TransportError::new(
            TransportPhase::AwaitingResponse,
            false,
            "connection reset by peer",
        ))
    });
    let api = client(
        &clock,
        RetryPolicy::default().with_max_attempts(10),
        transport,
    );
    let error = block_on(api.generate(&generate_request())).expect_err("unknown outcome");

    assert_eq!(api.transport().sent(), 1, "a billable POST is never resent");
    assert!(error.is_outcome_unknown(), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(error.endpoint(), Some(Endpoint::Generate));
    assert!(error.to_string().contains("outcome unknown"), "{error}");
    assert!(matches!(
        error.innermost(),
        Error::Transport {
            phase: TransportPhase::AwaitingResponse,
            ..
        }
    ));
    assert!(clock.sleeps().is_empty(), "no retry was even scheduled");
}

#[test]
fn billable_timeouts_and_server_errors_are_not_resent_but_refusals_are() {
    let cases: Vec<(&str, Box<Script>, u32, bool)> = vec![
        (
            "timeout after sending",
            Box::new(|_, _, _| {
                Err(TransportError::new(
                    TransportPhase::Send,
                    true,
                    "write timed out",
                ))
            }),
            1,
            true,
        ),
        (
            "HTTP 502 without a body",
            Box::new(|_, _, _| Ok(HttpResponse::new(502, "<html>bad gateway</html>"))),
            1,
            true,
        ),
        (
            "envelope 500",
            Box::new(|_, _, _| Ok(envelope(500, "Internal Error, Please try again later"))),
            1,
            true,
        ),
        (
            "success without a task id",
            Box::new(|_, _, _| Ok(envelope(200, "success"))),
            1,
            true,
        ),
        (
            "connection refused, then created",
            Box::new(|n, _, _| {
                if n == 1 {
                    Err(TransportError::connect(false, "connection refused"))
                } else {
                    Ok(HttpResponse::new(200, fixture("generate-ok.json")))
                }
            }),
            2,
            false,
        ),
        (
            "rate limited twice, then created",
            Box::new(|n, _, _| {
                if n <= 2 {
                    Ok(HttpResponse::new(200, fixture("error-429.json")))
                } else {
                    Ok(HttpResponse::new(200, fixture("generate-ok.json")))
                }
            }),
            3,
            false,
        ),
        (
            "maintenance, then created",
            Box::new(|n, _, _| {
                if n == 1 {
                    Ok(HttpResponse::new(200, fixture("error-455.json")))
                } else {
                    Ok(HttpResponse::new(200, fixture("generate-ok.json")))
                }
            }),
            2,
            false,
        ),
    ];
    for (name, script, expected_sends, unknown) in cases {
        let clock = SimulatedClock::new();
        let transport = ScriptedTransport::new(move |n, r, t| script(n, r, t));
        let api = client(&clock, RetryPolicy::default(), transport);
        let result = block_on(api.generate(&generate_request()));
        assert_eq!(api.transport().sent(), expected_sends, "{name}");
        match result {
            Ok(created) => {
                assert!(!unknown, "{name}");
                assert_eq!(created.task_id, TASK);
            }
            Err(error) => assert_eq!(error.is_outcome_unknown(), unknown, "{name}: {error}"),
        }
    }
}

/// Every row of the reference's code table, answered by the server on every call of every
/// endpoint, driven through the real executor on simulated time: how many requests are sent
/// and what the caller gets.
#[test]
fn the_code_table_through_the_driver_for_every_endpoint() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Expect {
        /// A value (ready or processing), after one request.
        Value,
        /// A final error with this code after one request.
        Rejected,
        /// Retried until the attempts ran out.
        Retried,
        /// A billable request that may have been processed: one request, outcome unknown.
        Unknown,
    }
    use Expect::{Rejected, Retried, Unknown, Value};
    let hd = "1080P is processing. It should be ready in 1-2 minutes.";
    let k4 = "4k is processing. It should be ready in 5-10 minutes.";
    #[rustfmt::skip]
    let table: &[(i64, &str, [Expect; 7])] = &[
        //                                         generate  record    1080p     4K        extend    credits   download
        (400, "Your prompt was flagged",          [Rejected, Rejected, Rejected, Rejected, Rejected, Rejected, Rejected]),
        (400, hd,                                 [Rejected, Rejected, Value,    Value,    Rejected, Rejected, Rejected]),
        (401, "You do not have access permissions", [Rejected, Rejected, Rejected, Rejected, Rejected, Rejected, Rejected]),
        (402, "Insufficient credits",             [Rejected, Rejected, Rejected, Rejected, Rejected, Rejected, Rejected]),
        (404, "Not found",                        [Rejected, Rejected, Rejected, Rejected, Rejected, Rejected, Rejected]),
        (405, "Method not allowed",               [Rejected, Rejected, Rejected, Rejected, Rejected, Rejected, Rejected]),
        (408, "Upstream timeout",                 [Unknown,  Retried,  Retried,  Unknown,  Unknown,  Retried,  Retried]),
        (422, "record is null",                   [Rejected, Rejected, Rejected, Rejected, Rejected, Rejected, Rejected]),
        (422, k4,                                 [Rejected, Rejected, Value,    Value,    Rejected, Rejected, Rejected]),
        (429, "Rate limited",                     [Retried,  Retried,  Retried,  Retried,  Retried,  Retried,  Retried]),
        (451, "Failed to fetch the image",        [Rejected, Rejected, Rejected, Rejected, Rejected, Rejected, Rejected]),
        (455, "Service unavailable",              [Retried,  Retried,  Retried,  Retried,  Retried,  Retried,  Retried]),
        (500, "Internal Error",                   [Unknown,  Retried,  Retried,  Unknown,  Unknown,  Retried,  Retried]),
        (501, "Generation failed",                [Rejected, Rejected, Rejected, Rejected, Rejected, Rejected, Rejected]),
        (505, "Feature disabled",                 [Rejected, Rejected, Rejected, Rejected, Rejected, Rejected, Rejected]),
    ];
    let attempts = 3;
    for (code, message, expected) in table {
        for (endpoint, want) in Endpoint::ALL.iter().zip(expected) {
            let clock = SimulatedClock::new();
            let body = json!({"code": code, "msg": message, "data": null}).to_string();
            let transport =
                ScriptedTransport::new(move |_, _, _| Ok(HttpResponse::new(200, body.clone())));
            let api = client(
                &clock,
                RetryPolicy::default().with_max_attempts(attempts),
                transport,
            );
            let context = format!("code {code} {message:?} on {endpoint}");
            let result: Result<(), Error> = block_on(async {
                match endpoint {
                    Endpoint::Generate => api.generate(&generate_request()).await.map(drop),
                    Endpoint::RecordInfo => api.record_info(TASK).await.map(drop),
                    Endpoint::Hd1080p => api.hd_1080p(TASK, None).await.map(drop),
                    Endpoint::Upgrade4k => {
                        api.upgrade_4k(&Upgrade4kRequest::new(TASK)).await.map(drop)
                    }
                    Endpoint::Extend => api
                        .extend(&veo3_types::ExtendRequest::new(TASK, "then it jumps"))
                        .await
                        .map(drop),
                    Endpoint::Credits => api.credits().await.map(drop),
                    _ => api
                        .download_url("https://cdn.example.com/v.mp4")
                        .await
                        .map(drop),
                }
            });
            let sent = api.transport().sent();
            match want {
                Value => {
                    assert!(result.is_ok(), "{context}: {result:?}");
                    assert_eq!(sent, 1, "{context}");
                }
                Rejected => {
                    let error = result.expect_err(&context);
                    assert_eq!(error.code(), Some(ApiCode::from_i64(*code)), "{context}");
                    assert!(
                        !error.is_retryable() && !error.is_outcome_unknown(),
                        "{context}"
                    );
                    assert_eq!(sent, 1, "{context}");
                }
                Retried => {
                    let error = result.expect_err(&context);
                    assert_eq!(error.code(), Some(ApiCode::from_i64(*code)), "{context}");
                    assert!(error.is_retryable(), "{context}");
                    assert_eq!(sent, attempts, "{context}");
                    assert_eq!(clock.sleeps().len() as u32, attempts - 1, "{context}");
                }
                Unknown => {
                    let error = result.expect_err(&context);
                    assert!(error.is_outcome_unknown(), "{context}");
                    assert_eq!(error.code(), Some(ApiCode::from_i64(*code)), "{context}");
                    assert_eq!(sent, 1, "{context}");
                }
            }
        }
    }
}

#[test]
fn read_only_calls_retry_transient_failures_with_backoff() {
    let clock = SimulatedClock::new();
    let transport = ScriptedTransport::new(|n, _, _| match n {
        1 => Err(TransportError::new(
            TransportPhase::AwaitingResponse,
            true,
            "read timed out",
        )),
        2 => Ok(HttpResponse::new(503, "")),
        _ => Ok(HttpResponse::new(200, fixture("credits-ok.json"))),
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let effects = Effects::simulated(&clock)
        .with_random(|| 1 << 63)
        .with_observer(Observer::new(move |e: &Event| {
            sink.lock().unwrap().push(e.clone())
        }));
    let api = ApiClient::new(transport, Executor::new(RetryPolicy::default(), effects));

    assert_eq!(block_on(api.credits()).expect("credits"), Credits(1850));
    assert_eq!(api.transport().sent(), 3);
    // Full jitter at the midpoint: half of the 1 s and 2 s ceilings.
    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(500), Duration::from_secs(1)]
    );
    let reasons: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Retrying {
                reason, attempt, ..
            } => Some((*reason, *attempt)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (RetryReason::Timeout, 2),
            (RetryReason::ServiceUnavailable, 3)
        ]
    );
}

#[test]
fn the_shared_budget_stops_a_retry_storm() {
    let clock = SimulatedClock::new();
    let transport = ScriptedTransport::new(|_, _, _| Ok(HttpResponse::new(500, "down")));
    let budget = Arc::new(RetryBudget::new(50));
    let effects = Effects::simulated(&clock).with_random(|| 0);
    let executor = Executor::new(
        RetryPolicy::default()
            .with_max_attempts(5)
            .with_deadline(None),
        effects,
    )
    .with_budget(budget.clone());
    let api = ApiClient::new(transport, executor);

    let calls = 100;
    let mut budget_errors = 0;
    for _ in 0..calls {
        let error = block_on(api.credits()).expect_err("outage");
        assert!(error.is_retryable());
        if matches!(
            error,
            Error::GaveUp {
                reason: GiveUpReason::BudgetExhausted,
                ..
            }
        ) {
            budget_errors += 1;
        }
    }
    // Without a budget: 100 calls x 5 attempts = 500 requests. With 50 tokens at 5 per retry,
    // only 10 retries happen in total, then every call makes a single attempt.
    let sent = api.transport().sent();
    assert_eq!(sent, calls + 50 / RetryBudget::RETRY_COST);
    assert_eq!(budget.available(), 0);
    assert!(budget_errors >= 97, "{budget_errors}");
}

#[test]
fn an_oversized_retry_after_fails_fast_with_the_hint() {
    let clock = SimulatedClock::new();
    let transport = ScriptedTransport::new(|_, _, _| {
        Ok(HttpResponse::new(429, fixture("error-429.json")).with_header("Retry-After", "7200"))
    });
    let api = client(
        &clock,
        RetryPolicy::default().with_max_retry_after(Duration::from_secs(60)),
        transport,
    );
    let error = block_on(api.record_info(TASK)).expect_err("rate limited");
    assert_eq!(api.transport().sent(), 1);
    assert!(clock.sleeps().is_empty(), "did not wait two hours");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7200)));
    assert!(error.is_rate_limited());
    assert!(matches!(
        error,
        Error::GaveUp {
            reason: GiveUpReason::RetryAfterTooLong { .. },
            attempts: 1,
            ..
        }
    ));
    assert!(error.to_string().contains("2h00m"), "{error}");

    // A hint within the cap is obeyed exactly (HTTP-date form, against the Date header).
    let clock = SimulatedClock::new();
    let transport = ScriptedTransport::new(|n, _, _| {
        if n == 1 {
            Ok(HttpResponse::new(429, "")
                .with_header("retry-after", "Wed, 21 Oct 2026 07:28:12 GMT")
                .with_header("date", "Wed, 21 Oct 2026 07:28:00 GMT"))
        } else {
            Ok(HttpResponse::new(200, fixture("record-info-success.json")))
        }
    });
    let api = client(&clock, RetryPolicy::default(), transport);
    assert!(block_on(api.record_info(TASK)).is_ok());
    assert_eq!(clock.sleeps(), [Duration::from_secs(12)]);
}

#[test]
fn the_deadline_bounds_attempts_and_sleeps_together() {
    let clock = SimulatedClock::new();
    let server_clock = clock.clone();
    // A server that hangs: every attempt lasts as long as the timeout it was given.
    let transport = ScriptedTransport::new(move |_, _, timeout| {
        server_clock.advance(timeout.expect("attempts always have a time limit"));
        Err(TransportError::new(
            TransportPhase::AwaitingResponse,
            true,
            "read timed out",
        ))
    });
    let deadline = Duration::from_secs(20);
    let policy = RetryPolicy::default()
        .with_max_attempts(100)
        .with_attempt_timeout(Some(Duration::from_secs(8)))
        .with_backoff(Duration::from_secs(2), Duration::from_secs(2))
        .with_deadline(Some(deadline));
    let api = client(&clock, policy, transport);
    let error = block_on(api.record_info(TASK)).expect_err("hangs");

    assert!(clock.now() <= deadline, "{:?} > {deadline:?}", clock.now());
    assert!(error.is_timeout());
    assert!(matches!(
        error,
        Error::GaveUp {
            reason: GiveUpReason::DeadlineExceeded,
            ..
        }
    ));
    // 8 s, sleep 1 s, 8 s, sleep 1 s, then only 2 s were left for the third attempt.
    let timeouts = api.transport().timeouts.lock().unwrap().clone();
    assert_eq!(
        timeouts,
        [
            Some(Duration::from_secs(8)),
            Some(Duration::from_secs(8)),
            Some(Duration::from_secs(2))
        ]
    );
    assert_eq!(clock.now(), deadline);
}

#[test]
fn backoff_at_attempt_one_thousand_does_not_overflow() {
    let policy = RetryPolicy::default();
    for random in [0, 1, u64::MAX / 2, u64::MAX] {
        assert!(policy.backoff(1_000, random) <= policy.max_backoff);
    }
    let huge = RetryPolicy::default().with_backoff(Duration::MAX, Duration::MAX);
    assert!(huge.backoff(1_000, u64::MAX) > Duration::from_secs(u64::MAX / 2));
}

fn record(flag: i64) -> TaskRecord {
    let data = json!({
        "taskId": TASK,
        "successFlag": flag,
        "response": if flag == 1 { json!({"resultUrls": ["https://cdn.example.com/v.mp4"]}) } else { json!(null) },
        "errorCode": if flag >= 2 { json!(400) } else { json!(null) },
        "errorMessage": if flag >= 2 { "Your prompt was flagged" } else { "" },
    });
    TaskRecord::from_data(&data).expect("record")
}

#[test]
fn an_unknown_success_flag_ends_the_wait_at_the_deadline() {
    let mut api = MockVeo3Api::new();
    api.expect_record_info().returning(|_| Ok(record(9)));
    let clock = SimulatedClock::new();
    let effects = Effects::simulated(&clock).with_random(|| 0);
    let schedule = PollSchedule::generation().with_deadline(Duration::from_secs(10 * 60));

    let error = block_on(wait_for_task(&api, TASK, &schedule, &effects)).expect_err("deadline");
    assert!(error.is_timeout());
    assert_eq!(error.task_id(), Some(TASK));
    assert_eq!(
        clock.now(),
        Duration::from_secs(600),
        "the last poll is on the deadline"
    );
    match &error {
        Error::WaitTimeout {
            last_status, polls, ..
        } => {
            assert_eq!(
                last_status,
                &Some(PollStatus::Task(TaskState::Unknown("9".into())))
            );
            assert!(*polls > 10 && *polls < 40, "{polls}");
        }
        other => panic!("expected a wait timeout, got {other:?}"),
    }
    assert!(error.to_string().contains("unknown task state"), "{error}");
}

#[test]
fn generate_and_wait_with_the_mock_reports_progress() {
    let mut api = MockVeo3Api::new();
    api.expect_generate()
        .times(1)
        .returning(|_| Ok(TaskCreated::from_data(&json!({"taskId": TASK})).expect("created")));
    let polls = Arc::new(AtomicU32::new(0));
    let counter = polls.clone();
    api.expect_record_info().returning(move |id| {
        assert_eq!(id, TASK);
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Ok(record(if n < 2 { 0 } else { 1 }))
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let clock = SimulatedClock::new();
    let effects = Effects::simulated(&clock)
        .with_random(|| 0)
        .with_observer(Observer::new(move |e: &Event| {
            sink.lock().unwrap().push(e.clone())
        }));

    let record = block_on(generate_and_wait(
        &api,
        &generate_request(),
        &PollSchedule::generation(),
        &effects,
    ))
    .expect("done");
    assert_eq!(record.video_urls(), ["https://cdn.example.com/v.mp4"]);

    let events = events.lock().unwrap();
    assert!(
        matches!(&events[0], Event::Submitted { endpoint: Endpoint::Generate, task_id, .. } if task_id == TASK)
    );
    let polled: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Polled { status, poll, .. } => Some((*poll, status.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(polled.len(), 3);
    assert_eq!(polled[2].1, PollStatus::Task(TaskState::Success));
    assert!(matches!(
        events.last(),
        Some(Event::Finished {
            outcome: Finish::Succeeded,
            polls: 3,
            ..
        })
    ));
}

#[test]
fn a_failed_task_reports_its_own_code_and_message() {
    let mut api = MockVeo3Api::new();
    api.expect_record_info().returning(|_| Ok(record(2)));
    let clock = SimulatedClock::new();
    let effects = Effects::simulated(&clock);
    let error = block_on(wait_for_task(
        &api,
        TASK,
        &PollSchedule::generation(),
        &effects,
    ))
    .expect_err("failed");
    assert!(error.is_task_failed());
    assert_eq!(error.code(), Some(ApiCode::BadRequest));
    assert_eq!(error.message(), Some("Your prompt was flagged"));
    assert_eq!(error.task_id(), Some(TASK));
}

#[test]
fn upgrades_poll_until_ready() {
    // 1080p: asked at once (the first request starts production), then every 20 s.
    let mut api = MockVeo3Api::new();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    api.expect_hd_1080p().returning(move |_, index| {
        assert_eq!(index, Some(0));
        if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            Ok(UpgradeStatus::processing("1080P is processing"))
        } else {
            Ok(UpgradeStatus::Ready(
                Hd1080pResult::from_data(
                    &json!({"resultUrl": "https://cdn.example.com/v_1080p.mp4"}),
                )
                .expect("result"),
            ))
        }
    });
    let clock = SimulatedClock::new();
    let effects = Effects::simulated(&clock).with_random(|| 0);
    let hd = block_on(wait_for_1080p(
        &api,
        TASK,
        Some(0),
        &PollSchedule::hd_1080p(),
        &effects,
    ))
    .expect("1080p");
    assert_eq!(hd.result_url, "https://cdn.example.com/v_1080p.mp4");
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(20), Duration::from_secs(20)]
    );

    // 4K: requested once, then re-checked; a lost re-check is tolerated.
    let mut api = MockVeo3Api::new();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    api.expect_upgrade_4k().returning(move |request| {
        assert_eq!(request.task_id, TASK);
        match counter.fetch_add(1, Ordering::SeqCst) {
            0 | 2 => Ok(UpgradeStatus::processing("4k is processing")),
            1 => Err(Error::outcome_unknown(
                Endpoint::Upgrade4k,
                Error::transport(
                    Endpoint::Upgrade4k,
                    &TransportError::new(TransportPhase::AwaitingResponse, true, "timed out"),
                ),
            )),
            _ => Ok(UpgradeStatus::Ready(
                Upgrade4kResult::from_data(
                    &json!({"resultUrls": ["https://cdn.example.com/v_4k.mp4"]}),
                )
                .expect("result"),
            )),
        }
    });
    let clock = SimulatedClock::new();
    let effects = Effects::simulated(&clock).with_random(|| 0);
    let k4 = block_on(upgrade_4k_and_wait(
        &api,
        &Upgrade4kRequest::new(TASK),
        &PollSchedule::upgrade_4k(),
        &effects,
    ))
    .expect("4k");
    assert_eq!(k4.result_urls, ["https://cdn.example.com/v_4k.mp4"]);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(clock.sleeps().iter().all(|d| *d >= Duration::from_secs(30)));
}

#[test]
fn code_written_against_the_trait_can_use_the_mock_as_dyn() {
    async fn balance(api: &dyn Veo3Api) -> Result<i64, Error> {
        Ok(api.credits().await?.0)
    }
    let mut api = MockVeo3Api::new();
    api.expect_credits().times(1).returning(|| {
        Err(Error::api(
            Endpoint::Credits,
            ApiCode::Unauthorized,
            "You do not have access permissions",
        ))
    });
    let boxed: Box<dyn Veo3Api> = Box::new(api);
    let error = block_on(balance(boxed.as_ref())).expect_err("401");
    assert!(error.is_unauthorized());
}

#[test]
fn api_client_decodes_every_endpoint_over_a_transport() {
    let clock = SimulatedClock::new();
    let transport = ScriptedTransport::new(|_, request, _| {
        let name = match request.endpoint {
            Endpoint::Generate => "generate-ok.json",
            Endpoint::Extend => "extend-ok.json",
            Endpoint::RecordInfo => "record-info-success.json",
            Endpoint::Hd1080p => "hd-1080p-not-ready.json",
            Endpoint::Upgrade4k => "4k-already-generated.json",
            Endpoint::Credits => "credits-ok.json",
            _ => "download-url-ok.json",
        };
        Ok(HttpResponse::new(200, fixture(name)))
    });
    let api = client(&clock, RetryPolicy::default(), transport);
    block_on(async {
        assert_eq!(
            api.generate(&generate_request())
                .await
                .expect("generate")
                .task_id,
            TASK
        );
        let extend = veo3_types::ExtendRequest::new(TASK, "and then it jumps");
        assert!(api.extend(&extend).await.is_ok());
        assert_eq!(
            api.record_info(TASK).await.expect("record").state,
            TaskState::Success
        );
        assert!(!api.hd_1080p(TASK, None).await.expect("1080p").is_ready());
        assert!(
            api.upgrade_4k(&Upgrade4kRequest::new(TASK))
                .await
                .expect("4k")
                .is_ready()
        );
        assert_eq!(api.credits().await.expect("credits"), Credits(1850));
        assert!(
            api.download_url("https://cdn.example.com/v.mp4")
                .await
                .is_ok()
        );
        // Invalid input never reaches the transport.
        assert!(matches!(
            api.record_info("").await,
            Err(Error::Validation(_))
        ));
    });
    assert_eq!(api.transport().sent(), 7);
}

#[test]
fn veo3_core_has_no_http_client_or_runtime_in_its_tree() {
    let tree = crate::support::cargo_tree("veo3-core");
    for forbidden in ["reqwest", "hyper", "ureq", "tokio", "axum"] {
        assert!(
            !tree
                .lines()
                .any(|line| line.split_whitespace().next() == Some(forbidden)),
            "{forbidden} in veo3-core's tree:\n{tree}"
        );
    }
    assert!(tree.contains("veo3-types"), "the tree was read: {tree}");
}

/// Webhook verification lives in veo3-webhook: SDK users who only poll do not compile HMAC.
#[test]
fn veo3_core_has_no_webhook_crypto_in_its_tree() {
    let tree = crate::support::cargo_tree("veo3-core");
    for forbidden in ["hmac", "sha2", "base64", "subtle"] {
        assert!(
            !crate::support::in_tree(&tree, forbidden),
            "{forbidden} in veo3-core's tree:\n{tree}"
        );
    }
    assert!(tree.contains("veo3-types"), "the tree was read: {tree}");
}
