//! The blocking drivers: the same loops as [`Executor`](crate::Executor) and the async
//! waiters, and (in `flows`) the same flows, for a client without an async runtime.
//!
//! They are optional: a blocking client can also write the loops itself over [`Call::step`]
//! and [`WaitState`] (see the crate docs). Using these keeps events, `tracing` and secret
//! scrubbing identical to the async client's.

mod flows;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::call::{Call, Step};
use crate::event::Observer;
use crate::http::{HttpRequest, HttpResponse, TransportError};
use crate::retry::{DisplayDuration, RetryBudget, RetryPolicy, RetryState};
use crate::secret::ApiKey;
use crate::time::{BlockingSleeper, Clock, SimulatedClock};
use crate::wait::{Acceptance, WaitState, WaitStep, trigger_of};
use crate::webhook::Inbox;

/// Runs calls with retries by blocking the current thread between attempts.
///
/// ```
/// use std::sync::Arc;
/// use veo3_core::{BlockingExecutor, Call, HttpResponse, RetryPolicy, SimulatedClock};
///
/// let clock = SimulatedClock::new();
/// let executor = BlockingExecutor::simulated(RetryPolicy::default(), &clock);
/// let credits = executor.execute(&Call::credits(), |request, _timeout| {
///     assert_eq!(request.path_and_query, "/api/v1/chat/credit");
///     Ok(HttpResponse::new(200, r#"{"code":200,"msg":"success","data":1850}"#))
/// })?;
/// assert_eq!(credits.0, 1850);
/// # Ok::<(), veo3_core::Error>(())
/// ```
#[derive(Clone)]
pub struct BlockingExecutor {
    policy: RetryPolicy,
    budget: Arc<RetryBudget>,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn BlockingSleeper>,
    observer: Observer,
    random: Arc<dyn Fn() -> u64 + Send + Sync>,
    secret: Option<ApiKey>,
    base_url: Option<String>,
}

impl BlockingExecutor {
    /// An executor over `clock` and `sleeper`, with a fresh default budget, `fastrand` jitter
    /// and no observer.
    // The one default source of randomness here; pure code receives its draws as arguments.
    #[allow(clippy::disallowed_methods)]
    pub fn new(
        policy: RetryPolicy,
        clock: Arc<dyn Clock>,
        sleeper: Arc<dyn BlockingSleeper>,
    ) -> Self {
        Self {
            policy,
            budget: RetryBudget::shared(),
            clock,
            sleeper,
            observer: Observer::none(),
            random: Arc::new(|| fastrand::u64(..)),
            secret: None,
            base_url: None,
        }
    }

    /// The client's base URL, for following read-only redirects on its host; see
    /// [`Executor::with_base_url`](crate::Executor::with_base_url).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// An executor on simulated time (`clock` is clock and sleeper).
    pub fn simulated(policy: RetryPolicy, clock: &SimulatedClock) -> Self {
        Self::new(policy, Arc::new(clock.clone()), Arc::new(clock.clone()))
    }

    /// Shares `budget`.
    pub fn with_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// Sends events to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    /// Draws jitter from `random`.
    pub fn with_random(mut self, random: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.random = Arc::new(random);
        self
    }

    /// Scrubs `key` from every error text.
    pub fn with_secret(mut self, key: ApiKey) -> Self {
        self.secret = Some(key);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The observer.
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// One draw of the executor's randomness.
    fn random(&self) -> u64 {
        (self.random)()
    }

    /// Sends `call` with `send` (one exchange, bounded by the given timeout), retrying what is
    /// safe to retry; the blocking twin of [`Executor::execute`](crate::Executor::execute).
    pub fn execute<T>(
        &self,
        call: &Call<T>,
        mut send: impl FnMut(&HttpRequest, Option<Duration>) -> Result<HttpResponse, TransportError>,
    ) -> Result<T, Error> {
        let _span = tracing::debug_span!("veo3.call", endpoint = call.endpoint().name()).entered();
        let mut state = RetryState::new(&self.policy, self.budget.clone(), self.clock.now());
        let mut request = Cow::Borrowed(call.request());
        let mut followed = 0;
        loop {
            let timeout = state.begin_attempt(self.clock.now());
            let result = send(&request, timeout);
            let step = match call.step(&mut state, result, self.clock.now(), (self.random)()) {
                Step::Follow(redirect) => {
                    match redirect.follow(self.base_url.as_deref(), &request, followed) {
                        Ok(next) => {
                            tracing::debug!(status = redirect.status(), path = %next.path_and_query, "following a redirect on the API host");
                            request = Cow::Owned(next);
                            followed += 1;
                            continue;
                        }
                        Err(error) => Step::Fail(error),
                    }
                }
                step => step,
            };
            match step {
                Step::Done(value) => return Ok(value),
                Step::Fail(error) => {
                    tracing::debug!(attempts = state.attempts(), %error, "call failed");
                    return Err(match &self.secret {
                        Some(key) => error.scrub(key.expose()),
                        None => error,
                    });
                }
                // Handled above.
                Step::Follow(_) => {}
                Step::Retry(plan) => {
                    tracing::info!(
                        attempt = plan.attempt,
                        delay = %DisplayDuration(plan.delay),
                        reason = %plan.reason,
                        cause = %plan.cause,
                        "retrying"
                    );
                    self.observer.emit(&plan.event());
                    self.sleeper.sleep(plan.delay);
                }
            }
        }
    }

    /// Runs a wait: sleeps per `wait`'s schedule and calls `poll` until it ends; the blocking
    /// twin of the async waiters. Build `wait` with this executor's clock and observer, e.g.
    /// `WaitState::new(id, WaitTarget::Task, &schedule, executor.observer().clone(), executor.clock().now())`,
    /// and poll with e.g. `|| client.record_info(id).map(accept_task)`.
    pub fn wait<T>(
        &self,
        mut wait: WaitState,
        mut poll: impl FnMut() -> Result<Acceptance<T>, Error>,
    ) -> Result<T, Error> {
        loop {
            let Some(delay) = wait.next_delay(self.clock.now(), (self.random)()) else {
                return Err(wait.timed_out(self.clock.now()));
            };
            if !delay.is_zero() {
                self.sleeper.sleep(delay);
            }
            match wait.observe(poll(), self.clock.now()) {
                WaitStep::Done(value) => return Ok(value),
                WaitStep::Continue => {}
                WaitStep::Fail(error) => return Err(error),
            }
        }
    }

    /// Runs a hybrid wait: like [`BlockingExecutor::wait`], but each sleep also ends when a
    /// callback about the wait's task and target reaches `inbox`
    /// ([`Inbox::sleep_or_take_target`]), and the poll that follows confirms it. The blocking twin of
    /// [`wait_for_task_hybrid`](crate::wait_for_task_hybrid); `wait`'s schedule is the safety
    /// net (see [`PollSchedule::safety_net`](crate::PollSchedule::safety_net)).
    ///
    /// ```
    /// use veo3_core::types::Callback;
    /// use veo3_core::webhook::{Inbox, VerifiedCallback};
    /// use veo3_core::{accept_task, BlockingExecutor, Clock, Observer, PollSchedule};
    /// use veo3_core::{RetryPolicy, SimulatedClock, WaitState, WaitTarget};
    ///
    /// let clock = SimulatedClock::new();
    /// let executor = BlockingExecutor::simulated(RetryPolicy::default(), &clock);
    /// let inbox = Inbox::new();
    /// let schedule = PollSchedule::generation().safety_net();
    /// let wait = WaitState::new("t1", WaitTarget::Task, &schedule, Observer::none(), clock.now());
    /// // The receiver (another thread in real life) delivered the task's callback.
    /// let body = br#"{"code":200,"msg":"ok","data":{"taskId":"t1"}}"#;
    /// inbox.deliver(VerifiedCallback::new("t1", Callback::from_slice(body).unwrap()));
    /// let mut reads = 0;
    /// let record = executor.wait_hybrid(wait, &inbox, || {
    ///     reads += 1;
    ///     let data = serde_json::json!({"taskId": "t1", "successFlag": 1});
    ///     Ok(accept_task(veo3_types::TaskRecord::from_data(&data).unwrap()))
    /// })?;
    /// assert_eq!((reads, clock.now().as_secs()), (1, 0));
    /// # Ok::<(), veo3_core::Error>(())
    /// ```
    pub fn wait_hybrid<T>(
        &self,
        mut wait: WaitState,
        inbox: &Inbox,
        mut poll: impl FnMut() -> Result<Acceptance<T>, Error>,
    ) -> Result<T, Error> {
        loop {
            let Some(delay) = wait.next_delay(self.clock.now(), (self.random)()) else {
                return Err(wait.timed_out(self.clock.now()));
            };
            let hint = inbox.sleep_or_take_target(
                self.sleeper.as_ref(),
                wait.task_id(),
                wait.target(),
                delay,
            );
            let trigger = trigger_of(hint.as_ref());
            match wait.observe_triggered(poll(), self.clock.now(), trigger) {
                WaitStep::Done(value) => return Ok(value),
                WaitStep::Continue => {}
                WaitStep::Fail(error) => return Err(error),
            }
        }
    }
}

impl fmt::Debug for BlockingExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingExecutor")
            .field("policy", &self.policy)
            .field("budget", &self.budget)
            .field("clock", &self.clock)
            .field("sleeper", &self.sleeper)
            .field("observer", &self.observer)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use veo3_types::{GenerateRequest, TaskRecord};

    use super::*;
    use crate::error::WaitTarget;
    use crate::http::TransportPhase;
    use crate::schedule::PollSchedule;
    use crate::wait::accept_task;

    #[test]
    fn retries_reads_on_simulated_time_and_never_resends_a_billable_post() {
        let clock = SimulatedClock::new();
        let executor =
            BlockingExecutor::simulated(RetryPolicy::default(), &clock).with_random(|| 0);
        let mut sent = 0;
        let credits = executor.execute(&Call::credits(), |_, _| {
            sent += 1;
            if sent < 3 {
                Err(TransportError::new(
                    TransportPhase::AwaitingResponse,
                    true,
                    "timed out",
                ))
            } else {
                Ok(HttpResponse::new(
                    200,
                    r#"{"code":200,"msg":"ok","data":5}"#,
                ))
            }
        });
        assert_eq!(credits.expect("credits").0, 5);
        assert_eq!(clock.sleeps().len(), 2);

        let request = GenerateRequest::builder("a fox").build().expect("valid");
        let mut sent = 0;
        let error = executor
            .execute(&Call::generate(&request).expect("valid"), |_, _| {
                sent += 1;
                Err(TransportError::new(
                    TransportPhase::AwaitingResponse,
                    false,
                    "reset",
                ))
            })
            .expect_err("unknown");
        assert!(error.is_outcome_unknown());
        assert_eq!(sent, 1);
    }

    #[test]
    fn waits_on_simulated_time() {
        let clock = SimulatedClock::new();
        let executor =
            BlockingExecutor::simulated(RetryPolicy::default(), &clock).with_random(|| 0);
        let schedule = PollSchedule::new(
            Duration::from_secs(30),
            Duration::from_secs(10),
            Duration::from_secs(120),
        );
        let wait = WaitState::new(
            "t1",
            WaitTarget::Task,
            &schedule,
            Observer::none(),
            clock.now(),
        );
        let mut polls = 0;
        let record = executor.wait(wait, || {
            polls += 1;
            let data = json!({"taskId": "t1", "successFlag": if polls < 4 { 0 } else { 1 }});
            Ok(accept_task(TaskRecord::from_data(&data).expect("record")))
        });
        assert!(record.is_ok());
        assert_eq!(clock.now(), Duration::from_secs(60));
    }
}
