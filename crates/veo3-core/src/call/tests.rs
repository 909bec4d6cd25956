//! Decoding every fixture through the same path the drivers use, and the retry step.

use std::sync::Arc;
use std::time::Duration;

use veo3_types::{ApiCode, TaskState};

use super::*;
use crate::http::TransportPhase;
use crate::retry::{GiveUpReason, RetryBudget, RetryPolicy};

macro_rules! fixture {
    ($name:literal) => {
        HttpResponse::new(
            200,
            include_str!(concat!("../../../../tests/fixtures/", $name)),
        )
    };
}

#[test]
fn fixtures_decode_per_endpoint() {
    assert_eq!(
        decode_generate(&fixture!("generate-ok.json"))
            .map(|c| c.task_id.len())
            .ok(),
        Some(32)
    );
    assert!(decode_extend(&fixture!("extend-ok.json")).is_ok());
    let record = decode_record_info(&fixture!("record-info-success.json")).expect("success record");
    assert_eq!(record.state, TaskState::Success);
    assert_eq!(
        decode_record_info(&fixture!("record-info-generating.json"))
            .map(|r| r.state)
            .ok(),
        Some(TaskState::Generating)
    );
    assert_eq!(
        decode_credits(&fixture!("credits-ok.json")).ok(),
        Some(Credits(1850))
    );
    assert!(
        decode_download_url(&fixture!("download-url-ok.json"))
            .is_ok_and(|link| link.starts_with("https://"))
    );

    assert!(matches!(
        decode_hd_1080p(&fixture!("hd-1080p-ok.json")),
        Ok(UpgradeStatus::Ready(_))
    ));
    assert!(matches!(
        decode_hd_1080p(&fixture!("hd-1080p-not-ready.json")),
        Ok(UpgradeStatus::Processing { message, job_id: None }) if message.starts_with("1080P is processing")
    ));
    let not_success =
        decode_hd_1080p(&fixture!("hd-1080p-source-not-success.json")).expect_err("422");
    assert_eq!(not_success.code(), Some(ApiCode::Unprocessable));

    // The first 4K answer names the job (the source's id, in the reference's example).
    let accepted = decode_upgrade_4k(&fixture!("4k-ok.json")).expect("accepted");
    assert!(matches!(accepted, UpgradeStatus::Processing { .. }));
    assert!(
        accepted.job_id().is_some_and(|id| !id.is_empty()),
        "{accepted:?}"
    );
    assert!(matches!(
        decode_upgrade_4k(&fixture!("4k-processing.json")),
        Ok(UpgradeStatus::Processing { .. })
    ));
    match decode_upgrade_4k(&fixture!("4k-already-generated.json")) {
        Ok(UpgradeStatus::Ready(result)) => {
            assert_eq!(result.result_urls.len(), 1);
            assert_eq!(result.image_urls.len(), 1);
        }
        other => panic!("a 422 with URLs is success, got {other:?}"),
    }
}

#[test]
fn error_fixtures_become_api_errors_with_their_code() {
    let cases = [
        (fixture!("error-401.json"), ApiCode::Unauthorized, false),
        (
            fixture!("error-402.json"),
            ApiCode::InsufficientCredits,
            false,
        ),
        (fixture!("error-404.json"), ApiCode::NotFound, false),
        (fixture!("error-429.json"), ApiCode::RateLimited, true),
        (fixture!("error-451.json"), ApiCode::ImageFetchFailed, false),
        (
            fixture!("error-455.json"),
            ApiCode::ServiceUnavailable,
            true,
        ),
        (fixture!("error-505.json"), ApiCode::FeatureDisabled, false),
        (
            fixture!("generate-error-400-content-policy.json"),
            ApiCode::BadRequest,
            false,
        ),
        (
            fixture!("generate-error-422-validation.json"),
            ApiCode::Unprocessable,
            false,
        ),
    ];
    for (response, code, retryable) in cases {
        let error = decode_generate(&response).expect_err("error envelope");
        assert_eq!(error.code(), Some(code));
        assert_eq!(error.status(), Some(200));
        assert_eq!(error.is_retryable(), retryable, "{code}");
        assert!(
            !error.is_outcome_unknown(),
            "{code} proves nothing was created"
        );
    }
    // 500 and 408 on a billable endpoint: maybe created.
    for response in [fixture!("error-500.json"), fixture!("error-408.json")] {
        let error = decode_generate(&response).expect_err("error");
        assert!(error.is_outcome_unknown());
        assert!(decode_credits(&response).expect_err("error").is_retryable());
    }
    let expired = decode_record_info(&fixture!("record-info-expired.json")).expect_err("expired");
    assert_eq!(expired.code(), Some(ApiCode::Unprocessable));
    let external =
        decode_download_url(&fixture!("download-url-external-422.json")).expect_err("external");
    assert_eq!(external.code(), Some(ApiCode::Unprocessable));
}

#[test]
fn envelope_first_status_second() {
    // HTTP 429 with an envelope 200: the envelope wins.
    let mirrored = HttpResponse::new(429, r#"{"code":200,"msg":"ok","data":7}"#);
    assert_eq!(decode_credits(&mirrored).ok(), Some(Credits(7)));
    // An HTML error page: the status decides, and the excerpt is kept (redacted).
    let html = HttpResponse::new(
        502,
        "<html>Bad gateway. Authorization: Bearer sk-live-123</html>",
    );
    let error = decode_credits(&html).expect_err("502");
    assert_eq!(error.status(), Some(502));
    assert!(error.is_retryable());
    let excerpt = error.body_excerpt().expect("excerpt");
    assert!(
        excerpt.contains("Bad gateway") && !excerpt.contains("sk-live-123"),
        "{excerpt}"
    );
    // An empty 200: a decode error for reads, an unknown outcome for generate.
    let empty = HttpResponse::new(200, "");
    assert!(matches!(decode_credits(&empty), Err(Error::Decode { .. })));
    assert!(
        decode_generate(&empty)
            .expect_err("empty")
            .is_outcome_unknown()
    );
    // A success whose data cannot be read: same split.
    let no_id = HttpResponse::new(200, r#"{"code":200,"msg":"success","data":{}}"#);
    let error = decode_generate(&no_id).expect_err("no id");
    assert!(error.is_outcome_unknown());
    assert!(matches!(error.innermost(), Error::Decode { .. }));
    // Long bodies are cut.
    let long = HttpResponse::new(500, "x".repeat(10_000));
    assert!(
        decode_credits(&long)
            .expect_err("500")
            .body_excerpt()
            .is_some_and(|e| e.chars().count() <= EXCERPT_CHARS + 1)
    );
}

#[test]
fn records_without_an_id_get_the_one_asked_about() {
    let call = Call::record_info("t-42").expect("valid");
    let answer = HttpResponse::new(
        200,
        r#"{"code":200,"msg":"success","data":{"successFlag":0}}"#,
    );
    assert_eq!(call.decode(&answer).expect("record").task_id, "t-42");
    assert_eq!(decode_record_info(&answer).expect("record").task_id, "");
}

#[test]
fn requests_are_built_and_validated() {
    let call = Call::record_info("id with space&x").expect("valid");
    assert_eq!(
        call.request().path_and_query,
        "/api/v1/veo/record-info?taskId=id%20with%20space%26x"
    );
    assert!(call.request().body.is_none());
    let call = Call::hd_1080p("t1", Some(2)).expect("valid");
    assert_eq!(
        call.request().path_and_query,
        "/api/v1/veo/get-1080p-video?taskId=t1&index=2"
    );
    assert!(matches!(Call::record_info(" "), Err(Error::Validation(_))));
    assert!(matches!(
        Call::download_url("ftp://x"),
        Err(Error::Validation(_))
    ));
    let call = Call::upgrade_4k(&Upgrade4kRequest::new("t1").index(1)).expect("valid");
    let body: serde_json::Value =
        serde_json::from_slice(call.request().body.as_deref().expect("body")).expect("json");
    assert_eq!(body, serde_json::json!({"taskId": "t1", "index": 1}));
    assert_eq!(call.request().headers().len(), 2);
    assert_eq!(
        Call::credits().request().path_and_query,
        "/api/v1/chat/credit"
    );
}

#[test]
fn step_retries_reads_and_refuses_to_resend_billable_posts() {
    let policy = RetryPolicy::default().with_deadline(None);
    let budget = Arc::new(RetryBudget::default());
    let lost = || {
        Err(TransportError::new(
            TransportPhase::AwaitingResponse,
            true,
            "read timed out",
        ))
    };

    let read = Call::credits();
    let mut state = RetryState::new(&policy, budget.clone(), Duration::ZERO);
    state.begin_attempt(Duration::ZERO);
    match read.step(&mut state, lost(), Duration::ZERO, 0) {
        Step::Retry(plan) => {
            assert_eq!(plan.attempt, 2);
            assert_eq!(plan.reason, RetryReason::Timeout);
            assert!(matches!(plan.event(), Event::Retrying { attempt: 2, .. }));
        }
        other => panic!("expected a retry, got {other:?}"),
    }

    let request = GenerateRequest::builder("a fox").build().expect("valid");
    let generate = Call::generate(&request).expect("valid");
    let mut state = RetryState::new(&policy, budget.clone(), Duration::ZERO);
    state.begin_attempt(Duration::ZERO);
    match generate.step(&mut state, lost(), Duration::ZERO, 0) {
        Step::Fail(error) => {
            assert!(error.is_outcome_unknown());
            assert!(error.is_timeout());
        }
        other => panic!("expected outcome unknown, got {other:?}"),
    }
    let refused = || Err(TransportError::connect(false, "connection refused"));
    state.begin_attempt(Duration::ZERO);
    assert!(matches!(
        generate.step(&mut state, refused(), Duration::ZERO, 0),
        Step::Retry(_)
    ));
}

#[test]
fn step_gives_up_with_context() {
    let policy = RetryPolicy::default()
        .with_max_attempts(2)
        .with_deadline(None);
    let mut state = RetryState::new(&policy, Arc::new(RetryBudget::default()), Duration::ZERO);
    let call = Call::credits();
    let busy = || Ok(fixture!("error-455.json"));
    state.begin_attempt(Duration::ZERO);
    assert!(matches!(
        call.step(&mut state, busy(), Duration::ZERO, 0),
        Step::Retry(_)
    ));
    state.begin_attempt(Duration::from_secs(1));
    match call.step(&mut state, busy(), Duration::from_secs(2), 0) {
        Step::Fail(error @ Error::GaveUp { .. }) => {
            assert!(matches!(
                error,
                Error::GaveUp {
                    reason: GiveUpReason::AttemptsExhausted,
                    attempts: 2,
                    ..
                }
            ));
            assert_eq!(error.code(), Some(ApiCode::ServiceUnavailable));
            assert!(error.is_retryable());
            assert!(
                error
                    .to_string()
                    .contains("gave up after 2 attempt(s) in 2s"),
                "{error}"
            );
        }
        other => panic!("expected give-up, got {other:?}"),
    }
}

/// The one-pass reading of record-info answers changes nothing but speed: for answers in the
/// current shape, with every envelope code and several HTTP statuses, the call evaluates to
/// the same value or the same error with it as without it.
#[test]
fn record_info_reads_the_same_with_and_without_the_one_pass_reader() {
    let quick = Call::record_info("t-9").expect("valid");
    assert!(quick.quick.is_some(), "record-info has a one-pass reader");
    let mut slow = quick.clone();
    slow.quick = None;
    let mut read_quickly = 0;
    for status in [200, 201, 400, 404, 422, 429, 500, 503] {
        for code in [
            200, 400, 401, 402, 404, 408, 422, 429, 451, 455, 500, 501, 505, 999,
        ] {
            for (msg, data) in [
                (
                    "success",
                    r#"{"taskId":"t-9","successFlag":1,"response":{"resultUrls":["https://f/a.mp4"]}}"#,
                ),
                (
                    "success",
                    r#"{"successFlag":0,"response":null,"errorMessage":""}"#,
                ),
                (
                    "The video is being processed",
                    r#"{"taskId":"t-9","successFlag":0}"#,
                ),
                (
                    "",
                    r#"{"taskId":"t-9","successFlag":3,"errorCode":500,"errorMessage":"boom"}"#,
                ),
            ] {
                let body = format!(r#"{{"code":{code},"msg":"{msg}","data":{data}}}"#);
                let mut answer = HttpResponse::new(status, body.clone());
                answer.headers = vec![("retry-after".to_owned(), "7".to_owned())];
                read_quickly += usize::from(
                    veo3_types::TaskRecord::from_answer_quick(body.as_bytes()).is_some(),
                );
                assert_eq!(
                    format!("{:?}", quick.evaluate(Ok(answer.clone()))),
                    format!("{:?}", slow.evaluate(Ok(answer))),
                    "HTTP {status}, {body}"
                );
            }
        }
    }
    assert_eq!(
        read_quickly,
        8 * 14 * 4,
        "every answer above has the current shape"
    );
}

#[test]
fn an_oversized_answer_names_the_limit_and_follows_the_unreadable_rule() {
    // Even a well-formed success is refused once it went beyond the limit: the body is cut.
    let head = br#"{"code":200,"msg":"success","data":{"taskId":"t-1"}}"#.to_vec();
    let oversized = HttpResponse::oversized(200, 1024, head);
    let request = GenerateRequest::builder("a fox").build().expect("valid");
    let Evaluation::Failed(error) = Call::generate(&request)
        .unwrap()
        .evaluate(Ok(oversized.clone()))
    else {
        panic!("an oversized billable answer is final");
    };
    assert!(
        error.is_outcome_unknown(),
        "a billable call may have created a task: {error}"
    );
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert!(
        cause.is_some_and(|cause| cause.contains("exceeded the 1024-byte limit")),
        "{error:?}"
    );
    // A read follows the same rule as any other unreadable answer of a read.
    let oversized_read = Call::credits().evaluate(Ok(oversized.clone()));
    let unreadable_read = Call::credits().evaluate(Ok(HttpResponse::new(200, "{not json")));
    assert_eq!(
        matches!(oversized_read, Evaluation::Retryable { .. }),
        matches!(unreadable_read, Evaluation::Retryable { .. }),
    );
    let error = Call::record_info("t-1")
        .unwrap()
        .decode(&oversized)
        .unwrap_err();
    assert!(!error.is_outcome_unknown());
    assert_eq!(error.task_id(), Some("t-1"));
    assert!(
        error.to_string().contains("exceeded the 1024-byte limit"),
        "{error}"
    );
}

#[test]
fn an_unreadable_read_only_answer_is_retried_and_a_billable_one_is_unknown() {
    let clock = crate::time::SimulatedClock::new();
    let executor =
        crate::BlockingExecutor::simulated(RetryPolicy::default(), &clock).with_random(|| 0);
    let ok = r#"{"code":200,"msg":"success","data":{"taskId":"t1","successFlag":1}}"#;
    for garbled in [
        HttpResponse::new(200, "<html><body>502 Bad Gateway</body></html>"),
        HttpResponse::new(200, &ok[..ok.len() / 2]),
        HttpResponse::new(200, ""),
    ] {
        let mut answers = vec![Ok(HttpResponse::new(200, ok)), Ok(garbled.clone())];
        let record = executor
            .execute(&Call::record_info("t1").expect("valid"), |_, _| {
                answers.pop().expect("at most two sends")
            })
            .expect("the garbled answer is asked again");
        assert_eq!(record.state, TaskState::Success);
        assert!(answers.is_empty(), "sent twice");

        let request = GenerateRequest::builder("a fox").build().expect("valid");
        let mut sent = 0;
        let error = executor
            .execute(&Call::generate(&request).expect("valid"), |_, _| {
                sent += 1;
                Ok(garbled.clone())
            })
            .expect_err("unknown");
        assert!(error.is_outcome_unknown(), "{error}");
        assert_eq!(sent, 1);
    }
}

#[test]
fn redirects_are_followed_for_reads_on_the_api_host_only() {
    let clock = crate::time::SimulatedClock::new();
    let base = "https://api.example:8443/prefix";
    let executor =
        crate::BlockingExecutor::simulated(RetryPolicy::default(), &clock).with_base_url(base);
    let credits = r#"{"code":200,"msg":"ok","data":7}"#;
    // Same host: absolute or path-only, the path after the prefix is asked.
    for location in [
        "https://API.example:8443/prefix/api/v1/chat/credit2?x=1",
        "/prefix/api/v1/chat/credit2?x=1",
    ] {
        let mut paths = Vec::new();
        let value = executor
            .execute(&Call::credits(), |request, _| {
                paths.push(request.path_and_query.clone());
                Ok(if paths.len() == 1 {
                    HttpResponse::new(307, "").with_header("Location", location)
                } else {
                    HttpResponse::new(200, credits)
                })
            })
            .expect("followed");
        assert_eq!(value.0, 7);
        assert_eq!(paths, ["/api/v1/chat/credit", "/api/v1/chat/credit2?x=1"]);
    }
    // Elsewhere: refused, naming the target, and nothing sent there.
    for (location, why) in [
        (
            "https://evil.example/prefix/api/v1/chat/credit",
            "off the API's host",
        ),
        (
            "http://api.example:8443/prefix/api/v1/chat/credit",
            "off the API's host",
        ),
        ("//evil.example/x", "off the API's host"),
        (
            "/elsewhere/api/v1/chat/credit",
            "outside the API's base URL",
        ),
        ("credit2", "not an absolute URL"),
    ] {
        let mut sent = 0;
        let error = executor
            .execute(&Call::credits(), |_, _| {
                sent += 1;
                Ok(HttpResponse::new(302, "").with_header("location", location))
            })
            .expect_err("refused");
        assert_eq!(sent, 1, "{location}");
        let text = error.to_string();
        assert!(matches!(error, Error::Redirected { .. }), "{text}");
        assert!(text.contains(why), "{text}");
        assert!(
            text.contains(location.split('?').next().unwrap_or_default()),
            "{text}"
        );
    }
    // A loop ends after MAX_REDIRECTS.
    let mut sent = 0;
    let error = executor
        .execute(&Call::credits(), |_, _| {
            sent += 1;
            Ok(HttpResponse::new(301, "").with_header("location", "/prefix/api/v1/chat/credit"))
        })
        .expect_err("loop");
    assert_eq!(sent, MAX_REDIRECTS + 1);
    assert!(error.to_string().contains("more than"), "{error}");
}

#[test]
fn a_billable_redirect_is_an_error_naming_the_target_and_never_sent_again() {
    fn run<T>(
        executor: &crate::BlockingExecutor,
        call: &Call<T>,
        answer: &HttpResponse,
    ) -> (Error, u32) {
        let mut sent = 0;
        let error = executor
            .execute(call, |_, _| {
                sent += 1;
                Ok(answer.clone())
            })
            .err()
            .expect("a redirect is refused");
        (error, sent)
    }
    let clock = crate::time::SimulatedClock::new();
    let executor = crate::BlockingExecutor::simulated(RetryPolicy::default(), &clock)
        .with_base_url("https://api.example");
    let generate =
        Call::generate(&GenerateRequest::builder("a fox").build().expect("valid")).expect("valid");
    let extend = Call::extend(&veo3_types::ExtendRequest::new("t1", "more")).expect("valid");
    let upgrade = Call::upgrade_4k(&veo3_types::Upgrade4kRequest::new("t1")).expect("valid");
    let target = "https://api.example/api/v1/veo/generate-elsewhere";
    for status in [301, 302, 303, 307, 308] {
        let answer = HttpResponse::new(status, "").with_header("Location", target);
        for (error, sent) in [
            run(&executor, &generate, &answer),
            run(&executor, &extend, &answer),
            run(&executor, &upgrade, &answer),
        ] {
            let text = error.to_string();
            assert_eq!(sent, 1, "{text}");
            assert!(
                matches!(error, Error::Redirected { .. }),
                "{status}: {text}"
            );
            assert!(
                text.contains(target) && text.contains("never sent twice"),
                "{text}"
            );
            assert!(!error.is_retryable() && !error.is_outcome_unknown());
        }
    }
}
