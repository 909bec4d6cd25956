//! Retry decisions: the policy, exponential backoff with full jitter, `Retry-After`, the shared
//! retry budget and the per-call [`RetryState`].
//!
//! Everything here is a pure function of its inputs. "Now" is a [`Duration`] read from the
//! caller's [`Clock`](crate::time::Clock) and randomness is a `u64` drawn by the caller, so the
//! async driver ([`Executor`](crate::Executor)), the blocking client's loop and the tests all
//! get the same answers from the same inputs.
//!
//! Whether a failure may be retried at all is not decided here but by
//! [`classify`](crate::classify()): by the time a [`RetryState`] is asked, the failure is known
//! to be safe to repeat, and the only questions left are "how long to wait" and "is it still
//! worth it" (attempts, budget, deadline, the server's own hint).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

/// How one call is retried: attempts, backoff, the cap on `Retry-After`, and time limits.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_max_attempts(5)
///     .with_deadline(Some(Duration::from_secs(60)));
/// assert_eq!(policy.max_attempts, 5);
/// // Attempt 1,000 neither overflows nor exceeds the cap.
/// assert!(policy.backoff(1_000, u64::MAX) <= policy.max_backoff);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (so `1` means "never retry"). `0` is read
    /// as `1`: a call is always attempted once.
    pub max_attempts: u32,
    /// Ceiling of the first retry's delay; the ceiling doubles with each retry.
    pub initial_backoff: Duration,
    /// The ceiling never grows beyond this.
    pub max_backoff: Duration,
    /// The longest `Retry-After` the client will wait out. A longer hint fails the call at
    /// once with the hint in the error ([`Error::retry_after`](crate::Error::retry_after)),
    /// rather than hanging a caller for hours.
    pub max_retry_after: Duration,
    /// The time limit of a single attempt, passed to the transport. `None`: no limit of its
    /// own (the deadline still applies).
    pub attempt_timeout: Option<Duration>,
    /// The time limit of the whole call, attempts and sleeps together. `None`: unbounded
    /// (attempts and the budget still bound it).
    pub deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    /// Four attempts, backoff ceilings of 1, 2, 4 s (capped at 20 s), `Retry-After` honoured
    /// up to 60 s, 60 s per attempt and 3 min per call.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
            attempt_timeout: Some(Duration::from_secs(60)),
            deadline: Some(Duration::from_secs(180)),
        }
    }
}

impl RetryPolicy {
    /// A policy that attempts once and never retries (time limits as in the default).
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets [`RetryPolicy::max_attempts`].
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets [`RetryPolicy::initial_backoff`] and [`RetryPolicy::max_backoff`].
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets [`RetryPolicy::max_retry_after`].
    pub fn with_max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }

    /// Sets [`RetryPolicy::attempt_timeout`].
    pub fn with_attempt_timeout(mut self, attempt_timeout: Option<Duration>) -> Self {
        self.attempt_timeout = attempt_timeout;
        self
    }

    /// Sets [`RetryPolicy::deadline`].
    pub fn with_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The delay before retry number `retry` (1 for the first retry), with full jitter:
    /// uniform in `[0, min(max_backoff, initial_backoff * 2^(retry-1))]`, where `random` is a
    /// uniformly distributed `u64` chosen by the caller (`0` gives zero, `u64::MAX` the
    /// ceiling).
    ///
    /// Full jitter spreads the retries of many clients hit by the same outage instead of
    /// synchronising them. The arithmetic saturates: any `retry` is safe.
    pub fn backoff(&self, retry: u32, random: u64) -> Duration {
        let exponent = retry.saturating_sub(1);
        let factor = 2u32.saturating_pow(exponent);
        let ceiling = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        jitter_below(ceiling, random)
    }
}

/// `ceiling * random / 2^64`, exact and overflow-free for every `Duration`.
pub(crate) fn jitter_below(ceiling: Duration, random: u64) -> Duration {
    let nanos = ceiling.as_nanos();
    let random = u128::from(random);
    // Split the multiplication so that neither half can overflow 128 bits: `nanos` is below
    // 2^94, so its high part is below 2^30 and its low part below 2^64.
    let high = (nanos >> 64) * random;
    let low = ((nanos & u128::from(u64::MAX)) * random) >> 64;
    duration_from_nanos(high.saturating_add(low))
}

/// Converts a nanosecond count, saturating at [`Duration::MAX`].
pub(crate) fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = nanos / 1_000_000_000;
    let subsec = (nanos % 1_000_000_000) as u32;
    match u64::try_from(secs) {
        Ok(secs) => Duration::new(secs, subsec),
        Err(_) => Duration::MAX,
    }
}

/// Reads a `Retry-After` header value: delay-seconds (also fractional, which some servers
/// send) or an HTTP-date.
///
/// An HTTP-date is resolved against `date`, the same response's `Date` header, so the answer
/// depends on the server's clock only and not on whether the local clock is right; without a
/// `Date` header an HTTP-date cannot be resolved and `None` is returned (the caller falls back
/// to its own backoff). A date in the past means "now" (zero). Values too large to represent
/// saturate to [`Duration::MAX`] so that they are caught by the policy's cap rather than
/// ignored. Anything else (negative, `NaN`, exponents, garbage) is `None`.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::parse_retry_after;
///
/// assert_eq!(parse_retry_after("120", None), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("1.5", None), Some(Duration::from_millis(1500)));
/// assert_eq!(
///     parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", Some("Wed, 21 Oct 2015 07:28:00 GMT")),
///     Some(Duration::from_secs(30)),
/// );
/// assert_eq!(parse_retry_after("soon", None), None);
/// ```
pub fn parse_retry_after(value: &str, date: Option<&str>) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_delay_seconds(value);
    }
    let target = httpdate::parse_http_date(value).ok()?;
    let reference: SystemTime = httpdate::parse_http_date(date?.trim()).ok()?;
    Some(target.duration_since(reference).unwrap_or(Duration::ZERO))
}

fn parse_delay_seconds(value: &str) -> Option<Duration> {
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (value, ""),
    };
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    // Digits only from here on. Saturate absurdly long integers instead of rejecting them:
    // a server asking for "999999999999999999999" seconds should hit the cap, not be ignored.
    let secs = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().unwrap_or(u64::MAX)
    };
    let mut nanos: u32 = 0;
    let mut scale: u32 = 100_000_000;
    for digit in fraction.bytes().take(9) {
        nanos += u32::from(digit - b'0') * scale;
        scale /= 10;
    }
    Some(Duration::new(secs, 0).saturating_add(Duration::from_nanos(u64::from(nanos))))
}

/// Why a call is being retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryReason {
    /// Code 429 / HTTP 429: the request was dropped, not queued.
    RateLimited,
    /// Code 455 / HTTP 503: maintenance or overload.
    ServiceUnavailable,
    /// Code 500 / HTTP 5xx on an endpoint that is safe to repeat.
    ServerError,
    /// Code 408 / HTTP 408 on an endpoint that is safe to repeat.
    UpstreamTimeout,
    /// The connection could not be established, so the request never left.
    ConnectFailed,
    /// The attempt timed out on an endpoint that is safe to repeat.
    Timeout,
    /// The connection broke while sending or receiving, on an endpoint that is safe to repeat.
    ConnectionLost,
    /// A success status whose body is not an API answer at all (not JSON, cut short, a
    /// proxy's HTML page), on an endpoint that is safe to repeat.
    UnreadableAnswer,
}

impl RetryReason {
    /// `true` for timeouts, which cost more of the [`RetryBudget`]: a slow server is not
    /// helped by more slow requests.
    pub fn is_timeout(self) -> bool {
        matches!(self, Self::Timeout | Self::UpstreamTimeout)
    }

    /// A short description for logs and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate limited",
            Self::ServiceUnavailable => "service unavailable",
            Self::ServerError => "server error",
            Self::UpstreamTimeout => "upstream timeout",
            Self::ConnectFailed => "connection failed",
            Self::Timeout => "timed out",
            Self::ConnectionLost => "connection lost",
            Self::UnreadableAnswer => "unreadable answer",
        }
    }
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a retryable failure was not retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// [`RetryPolicy::max_attempts`] were made.
    AttemptsExhausted,
    /// The client's shared [`RetryBudget`] is empty: too many recent failures.
    BudgetExhausted,
    /// The next attempt could not start before [`RetryPolicy::deadline`].
    DeadlineExceeded,
    /// The server asked to wait longer than [`RetryPolicy::max_retry_after`].
    RetryAfterTooLong {
        /// What the server asked for.
        hint: Duration,
    },
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AttemptsExhausted => f.write_str("attempts exhausted"),
            Self::BudgetExhausted => f.write_str("retry budget exhausted"),
            Self::DeadlineExceeded => f.write_str("deadline exceeded"),
            Self::RetryAfterTooLong { hint } => {
                write!(
                    f,
                    "server asked to retry after {}, longer than allowed",
                    DisplayDuration(*hint)
                )
            }
        }
    }
}

/// A token bucket shared by every call of one client, which limits retries (never first
/// attempts) so that an outage cannot multiply the client's traffic.
///
/// This follows the AWS SDKs' "standard" retry mode: the bucket starts full; a retry takes
/// [`RetryBudget::RETRY_COST`] tokens ([`RetryBudget::TIMEOUT_RETRY_COST`] after a timeout); a
/// call that succeeds after retrying gives back what it took, and a call that succeeds at once
/// adds [`RetryBudget::SUCCESS_REWARD`]. Tokens never refill with time alone: only successes
/// refill them, so during a sustained outage retries stop after `capacity / cost` of them and
/// each call makes one attempt until the service answers again.
///
/// ```
/// use veo3_core::RetryBudget;
///
/// let budget = RetryBudget::new(10);
/// assert!(budget.try_acquire(RetryBudget::RETRY_COST));
/// assert!(budget.try_acquire(RetryBudget::RETRY_COST));
/// assert!(!budget.try_acquire(RetryBudget::RETRY_COST)); // the storm stops here
/// budget.release(RetryBudget::RETRY_COST);
/// assert_eq!(budget.available(), 5);
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    capacity: u32,
    available: AtomicU32,
}

impl RetryBudget {
    /// Tokens a retry costs.
    pub const RETRY_COST: u32 = 5;
    /// Tokens a retry after a timeout costs.
    pub const TIMEOUT_RETRY_COST: u32 = 10;
    /// Tokens a first-attempt success gives back.
    pub const SUCCESS_REWARD: u32 = 1;
    /// The default capacity (as in the AWS SDKs): 100 retries from a full bucket.
    pub const DEFAULT_CAPACITY: u32 = 500;

    /// A full bucket of `capacity` tokens.
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity,
            available: AtomicU32::new(capacity),
        }
    }

    /// A bucket that never runs out (retries are then limited by the policy alone).
    pub fn unlimited() -> Self {
        Self::new(u32::MAX)
    }

    /// A shareable default bucket.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Tokens left.
    pub fn available(&self) -> u32 {
        self.available.load(Ordering::Acquire)
    }

    /// The bucket's size.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Takes `cost` tokens if there are that many; `false` (taking nothing) otherwise.
    pub fn try_acquire(&self, cost: u32) -> bool {
        if self.capacity == u32::MAX {
            return true;
        }
        self.available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |available| {
                available.checked_sub(cost)
            })
            .is_ok()
    }

    /// Returns `amount` tokens, never beyond the capacity.
    pub fn release(&self, amount: u32) {
        let capacity = self.capacity;
        // A full bucket, the usual state, is only read: concurrent successful calls then share
        // its cache line instead of taking turns writing it.
        let _ = self
            .available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |available| {
                (available < capacity).then(|| available.saturating_add(amount).min(capacity))
            });
    }

    /// What a retry for `reason` costs.
    pub fn cost_of(reason: RetryReason) -> u32 {
        if reason.is_timeout() {
            Self::TIMEOUT_RETRY_COST
        } else {
            Self::RETRY_COST
        }
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

/// What to do after a retryable failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Sleep for `delay`, then make attempt number `attempt`.
    Retry {
        /// How long to wait first.
        delay: Duration,
        /// The number of the next attempt (2 for the first retry).
        attempt: u32,
    },
    /// Stop and report the failure.
    GiveUp(GiveUpReason),
}

/// The retry bookkeeping of one call: attempts made, budget tokens taken, time used.
///
/// Drive it like this (the blocking client's loop; the async [`Executor`](crate::Executor) is
/// the same with `.await`):
///
/// 1. `let timeout = state.begin_attempt(clock.now());` then send with that timeout;
/// 2. classify the result; on success call [`RetryState::on_success`]; on a retryable failure
///    ask [`RetryState::on_retryable`] and either sleep and loop, or give up.
#[derive(Clone, Debug)]
pub struct RetryState {
    policy: RetryPolicy,
    budget: Arc<RetryBudget>,
    started: Duration,
    attempts: u32,
    acquired: u32,
}

impl RetryState {
    /// Starts a call at `now` under `policy`, drawing retries from `budget`.
    pub fn new(policy: &RetryPolicy, budget: Arc<RetryBudget>, now: Duration) -> Self {
        Self {
            policy: policy.clone(),
            budget,
            started: now,
            attempts: 0,
            acquired: 0,
        }
    }

    /// Records the start of an attempt and returns its time limit: the policy's attempt
    /// timeout, shortened so that the attempt cannot outlive the call's deadline.
    pub fn begin_attempt(&mut self, now: Duration) -> Option<Duration> {
        self.attempts = self.attempts.saturating_add(1);
        let remaining = self.remaining(now);
        match (self.policy.attempt_timeout, remaining) {
            (Some(timeout), Some(remaining)) => Some(timeout.min(remaining)),
            (timeout, remaining) => timeout.or(remaining),
        }
    }

    /// Attempts begun so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time since the call started.
    pub fn elapsed(&self, now: Duration) -> Duration {
        now.saturating_sub(self.started)
    }

    /// Time left before the deadline, if there is one.
    pub fn remaining(&self, now: Duration) -> Option<Duration> {
        self.policy
            .deadline
            .map(|deadline| deadline.saturating_sub(self.elapsed(now)))
    }

    /// The call succeeded (or ended with an answer that is not retried): refill the budget.
    pub fn on_success(&mut self) {
        if self.acquired > 0 {
            self.budget.release(self.acquired);
            self.acquired = 0;
        } else {
            self.budget.release(RetryBudget::SUCCESS_REWARD);
        }
    }

    /// A failure that is safe to repeat happened at `now`: retry (after how long) or give up?
    ///
    /// `retry_after` is the server's hint, already parsed; `random` is a uniform `u64` for the
    /// jitter. Checks run from the cheapest to explain to the most stateful, and tokens are
    /// only taken from the budget when the answer is "retry".
    pub fn on_retryable(
        &mut self,
        reason: RetryReason,
        retry_after: Option<Duration>,
        now: Duration,
        random: u64,
    ) -> Decision {
        if let Some(hint) = retry_after {
            if hint > self.policy.max_retry_after {
                return Decision::GiveUp(GiveUpReason::RetryAfterTooLong { hint });
            }
        }
        if self.attempts >= self.policy.max_attempts.max(1) {
            return Decision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let delay = retry_after.unwrap_or_else(|| self.policy.backoff(self.attempts, random));
        if let Some(remaining) = self.remaining(now) {
            // The next attempt must start strictly before the deadline, or it would have no
            // time at all.
            if delay >= remaining {
                return Decision::GiveUp(GiveUpReason::DeadlineExceeded);
            }
        }
        let cost = RetryBudget::cost_of(reason);
        if !self.budget.try_acquire(cost) {
            return Decision::GiveUp(GiveUpReason::BudgetExhausted);
        }
        self.acquired = self.acquired.saturating_add(cost);
        Decision::Retry {
            delay,
            attempt: self.attempts.saturating_add(1),
        }
    }
}

/// Formats a duration compactly for messages: `750ms`, `12.5s`, `3m05s`, `2h00m`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DisplayDuration(pub(crate) Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        if secs == 0 {
            write!(f, "{}ms", d.subsec_millis())
        } else if secs < 60 {
            let tenths = d.subsec_millis() / 100;
            if tenths == 0 {
                write!(f, "{secs}s")
            } else {
                write!(f, "{secs}.{tenths}s")
            }
        } else if secs < 3600 {
            write!(f, "{}m{:02}s", secs / 60, secs % 60)
        } else {
            write!(f, "{}h{:02}m", secs / 3600, (secs % 3600) / 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn backoff_ceiling_doubles_then_caps() {
        let policy = RetryPolicy::default().with_backoff(SECOND, Duration::from_secs(20));
        let ceilings: Vec<_> = (1..=7)
            .map(|retry| policy.backoff(retry, u64::MAX))
            .collect();
        // u64::MAX / 2^64 is just below 1, so the ceiling is reached within a nanosecond.
        let expected = [1, 2, 4, 8, 16, 20, 20];
        for (got, secs) in ceilings.iter().zip(expected) {
            let want = Duration::from_secs(secs);
            assert!(
                *got <= want && want - *got <= Duration::from_nanos(1),
                "{got:?} vs {want:?}"
            );
        }
        assert_eq!(policy.backoff(3, 0), Duration::ZERO);
        assert_eq!(policy.backoff(3, u64::MAX / 2 + 1), Duration::from_secs(2));
    }

    #[test]
    fn backoff_never_overflows() {
        let extreme = RetryPolicy::default().with_backoff(Duration::MAX, Duration::MAX);
        for retry in [0, 1, 2, 63, 64, 65, 1_000, u32::MAX] {
            for random in [0, 1, u64::MAX / 3, u64::MAX] {
                assert!(extreme.backoff(retry, random) <= Duration::MAX);
                let normal = RetryPolicy::default();
                assert!(normal.backoff(retry, random) <= normal.max_backoff);
            }
        }
        assert_eq!(
            RetryPolicy::default().backoff(1_000, u64::MAX / 2 + 1),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn retry_after_forms() {
        let cases: &[(&str, Option<&str>, Option<Duration>)] = &[
            ("0", None, Some(Duration::ZERO)),
            ("7", None, Some(Duration::from_secs(7))),
            (" 7 ", None, Some(Duration::from_secs(7))),
            ("0.25", None, Some(Duration::from_millis(250))),
            (".5", None, Some(Duration::from_millis(500))),
            ("3.", None, Some(Duration::from_secs(3))),
            (
                "1.0000000019",
                None,
                Some(Duration::from_nanos(1_000_000_001)),
            ),
            (
                "99999999999999999999999",
                None,
                Some(Duration::from_secs(u64::MAX)),
            ),
            ("7200", None, Some(Duration::from_secs(7200))),
            ("", None, None),
            (".", None, None),
            ("1.2.3", None, None),
            ("-5", None, None),
            ("NaN", None, None),
            ("inf", None, None),
            ("1e3", None, None),
            ("soon", None, None),
            // HTTP-dates resolve against the response's Date header only.
            ("Wed, 21 Oct 2015 07:28:00 GMT", None, None),
            (
                "Wed, 21 Oct 2015 07:28:00 GMT",
                Some("Wed, 21 Oct 2015 07:27:00 GMT"),
                Some(Duration::from_secs(60)),
            ),
            (
                "Wed, 21 Oct 2015 07:28:00 GMT",
                Some("Wed, 21 Oct 2015 08:00:00 GMT"),
                Some(Duration::ZERO),
            ),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some("garbage"), None),
            (
                "Sunday, 06-Nov-94 08:49:37 GMT",
                Some("Sun, 06 Nov 1994 08:49:30 GMT"),
                Some(Duration::from_secs(7)),
            ),
        ];
        for (value, date, expected) in cases {
            assert_eq!(
                parse_retry_after(value, *date),
                *expected,
                "{value:?} with Date {date:?}"
            );
        }
    }

    #[test]
    fn budget_refills_only_on_success() {
        let budget = Arc::new(RetryBudget::new(12));
        let policy = RetryPolicy::default().with_deadline(None);
        let mut call = RetryState::new(&policy, budget.clone(), Duration::ZERO);
        call.begin_attempt(Duration::ZERO);
        assert!(matches!(
            call.on_retryable(RetryReason::ServerError, None, Duration::ZERO, 0),
            Decision::Retry { attempt: 2, .. }
        ));
        call.begin_attempt(Duration::ZERO);
        assert!(matches!(
            call.on_retryable(RetryReason::ServerError, None, Duration::ZERO, 0),
            Decision::Retry { attempt: 3, .. }
        ));
        assert_eq!(budget.available(), 2);
        call.begin_attempt(Duration::ZERO);
        assert_eq!(
            call.on_retryable(RetryReason::ServerError, None, Duration::ZERO, 0),
            Decision::GiveUp(GiveUpReason::BudgetExhausted)
        );
        call.on_success();
        assert_eq!(budget.available(), 12);
        let mut clean = RetryState::new(&policy, budget.clone(), Duration::ZERO);
        clean.begin_attempt(Duration::ZERO);
        clean.on_success();
        assert_eq!(budget.available(), 12, "never beyond capacity");
    }

    #[test]
    fn timeouts_cost_more() {
        assert_eq!(
            RetryBudget::cost_of(RetryReason::Timeout),
            RetryBudget::TIMEOUT_RETRY_COST
        );
        assert_eq!(
            RetryBudget::cost_of(RetryReason::RateLimited),
            RetryBudget::RETRY_COST
        );
    }

    #[test]
    fn decisions_check_hint_attempts_deadline_then_budget() {
        let policy = RetryPolicy::default()
            .with_max_attempts(3)
            .with_max_retry_after(Duration::from_secs(30))
            .with_deadline(Some(Duration::from_secs(10)));
        let budget = Arc::new(RetryBudget::new(100));
        let mut state = RetryState::new(&policy, budget.clone(), Duration::from_secs(1000));
        let now = Duration::from_secs(1000);
        assert_eq!(state.begin_attempt(now), Some(Duration::from_secs(10)));
        let hint = Duration::from_secs(31);
        assert_eq!(
            state.on_retryable(RetryReason::RateLimited, Some(hint), now, 0),
            Decision::GiveUp(GiveUpReason::RetryAfterTooLong { hint })
        );
        assert_eq!(budget.available(), 100, "no tokens taken when giving up");
        // A hint within the cap is obeyed exactly, but must leave time before the deadline.
        assert_eq!(
            state.on_retryable(
                RetryReason::RateLimited,
                Some(Duration::from_secs(10)),
                now,
                0
            ),
            Decision::GiveUp(GiveUpReason::DeadlineExceeded)
        );
        assert_eq!(
            state.on_retryable(
                RetryReason::RateLimited,
                Some(Duration::from_secs(4)),
                now,
                0
            ),
            Decision::Retry {
                delay: Duration::from_secs(4),
                attempt: 2
            }
        );
        let later = now + Duration::from_secs(4);
        assert_eq!(
            state.begin_attempt(later),
            Some(Duration::from_secs(6)),
            "timeout shrinks to the deadline"
        );
        assert!(matches!(
            state.on_retryable(RetryReason::Timeout, None, later, 0),
            Decision::Retry { attempt: 3, .. }
        ));
        state.begin_attempt(later);
        assert_eq!(
            state.on_retryable(RetryReason::Timeout, None, later, 0),
            Decision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
        assert_eq!(
            budget.available(),
            100 - RetryBudget::RETRY_COST - RetryBudget::TIMEOUT_RETRY_COST
        );
    }

    #[test]
    fn zero_attempts_means_one() {
        let policy = RetryPolicy::default().with_max_attempts(0);
        let mut state = RetryState::new(&policy, Arc::new(RetryBudget::default()), Duration::ZERO);
        state.begin_attempt(Duration::ZERO);
        assert_eq!(
            state.on_retryable(RetryReason::ServerError, None, Duration::ZERO, 0),
            Decision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
    }

    #[test]
    fn display_durations() {
        let cases = [
            (250, "250ms"),
            (12_500, "12.5s"),
            (60_000, "1m00s"),
            (185_000, "3m05s"),
            (7_200_000, "2h00m"),
        ];
        for (millis, text) in cases {
            assert_eq!(
                DisplayDuration(Duration::from_millis(millis)).to_string(),
                text
            );
        }
    }
}
