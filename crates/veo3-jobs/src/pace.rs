//! Pacing billable submits under the account's limit: at most `max` generate requests in any
//! rolling `window`, as kie counts them (20 per 10 s; a request over it is dropped with 429).
//!
//! The rule, for both the one-process runner and the shared journal's workers: **a send may go
//! once the `max`-th latest send was answered `window` ago** (plus 1 ms, in case kie's window
//! includes its edge). kie counts a request when it arrives, at some moment between our send
//! and its answer, so a send made `window` after the answer of the `max`-th latest one arrives
//! at least `window` after that one did, however long the network or a loaded machine delayed
//! either. A send without an answer yet holds its place until it has one. Counting from the
//! send instead (as governor alone does) assumes each request arrives when it was scheduled;
//! on a loaded machine a late send then lands inside the window of the next ones, and is
//! answered 429.
//!
//! - In one process, [`Pace::Local`]: governor spaces the sends evenly, one per
//!   `window / max` (a burst of `max` and then one per period would put up to `2 max - 1`
//!   in some window), and the [`Ledger`] holds each back until the rule allows it, which
//!   costs one answer's latency per window.
//! - In the shared journal, [`Pace::Shared`]: the same rule in one SQL function
//!   (`veo3_reserve_submit`, migration `0003_answered_sends.sql`), so that every worker of the
//!   account queues on one row; a send whose worker died counts as answered when its lease
//!   ended.
//!
//! Every send is made once ([`Client::generate_once`](veo3_reqwest::Client::generate_once)):
//! a client retrying a 429 on its own would make sends the ledger never saw.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use governor::{Quota, RateLimiter};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::store::{Store, StoreError, WorkerId};

/// How submits are paced under the account's limit.
pub(crate) enum Pace {
    /// In this process (one runner per account).
    Local {
        /// Even spacing.
        limiter: Limiter,
        /// The answer-time rule.
        ledger: Mutex<Ledger>,
        /// Signalled on each answer, for sends waiting on one.
        answered: Notify,
    },
    /// In the shared journal, for every worker of the account ([`Store::reserve_submit`]).
    Shared {
        /// The worker reserving.
        worker: WorkerId,
        /// The account's fingerprint.
        account: String,
        /// Submits per window.
        max: u32,
        /// The window.
        window: Duration,
    },
}

/// A send this pace let go; hand it back to [`Pace::answered`] when the send ends.
#[derive(Debug)]
#[must_use = "a send holds its place in the window until its answer is recorded"]
pub(crate) enum Ticket {
    /// A place in the local ledger.
    Local(u64),
    /// A reservation in the shared journal.
    Shared(i64),
}

impl Pace {
    /// Pacing for `max` submits per `window_ms` in this process.
    pub(crate) fn local(max: u32, window_ms: u64) -> Self {
        Self::Local {
            limiter: RateLimiter::direct(quota(max, window_ms)),
            ledger: Mutex::new(Ledger::new(max, window(window_ms))),
            answered: Notify::new(),
        }
    }

    /// Pacing for `max` submits per `window_ms`, shared by every worker of `account`.
    pub(crate) fn shared(worker: WorkerId, account: String, max: u32, window_ms: u64) -> Self {
        Self::Shared {
            worker,
            account,
            max: max.max(1),
            window: window(window_ms),
        }
    }

    /// Waits for the next send's turn.
    pub(crate) async fn turn(&self, store: &dyn Store) -> Result<Ticket, StoreError> {
        match self {
            Self::Local {
                limiter,
                ledger,
                answered,
            } => {
                limiter.until_ready().await;
                loop {
                    // Registered before the ledger is read, so an answer in between wakes it.
                    let notified = answered.notified();
                    let turn = {
                        let mut ledger = ledger.lock().unwrap_or_else(PoisonError::into_inner);
                        match ledger.turn(Instant::now()) {
                            Turn::Now => return Ok(Ticket::Local(ledger.send())),
                            other => other,
                        }
                    };
                    match turn {
                        Turn::At(at) => tokio::time::sleep_until(at).await,
                        Turn::AfterAnswer | Turn::Now => notified.await,
                    }
                }
            }
            Self::Shared {
                worker,
                account,
                max,
                window,
            } => {
                let mut again = ASK_AGAIN;
                loop {
                    let reserved = store.reserve_submit(*worker, account, *max, *window);
                    match reserved.await? {
                        Some(reservation) => {
                            tokio::time::sleep(reservation.wait).await;
                            return Ok(Ticket::Shared(reservation.id));
                        }
                        // The `max`-th latest send is still in flight: its answer usually
                        // comes within one request's latency, but a slow one may take up to
                        // the client's attempt timeout, so the asking slows down.
                        None => {
                            tokio::time::sleep(again).await;
                            again = (again * 2).min(ASK_AGAIN_MAX);
                        }
                    }
                }
            }
        }
    }

    /// Records that the send of `ticket` ended (answered, or failed without an answer): its
    /// window runs from now.
    pub(crate) async fn answered(
        &self,
        store: &dyn Store,
        ticket: Ticket,
    ) -> Result<(), StoreError> {
        match (self, ticket) {
            (
                Self::Local {
                    ledger, answered, ..
                },
                Ticket::Local(id),
            ) => {
                ledger
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .answered(id, Instant::now());
                answered.notify_waiters();
                Ok(())
            }
            (Self::Shared { .. }, Ticket::Shared(id)) => store.submit_answered(id).await,
            // A ticket is only ever handed back to the pace that issued it.
            _ => Ok(()),
        }
    }
}

/// How long a worker waits before asking the shared limiter again, when the send it must wait
/// for has no answer yet: 5 ms at first, doubling up to 200 ms.
const ASK_AGAIN: Duration = Duration::from_millis(5);
const ASK_AGAIN_MAX: Duration = Duration::from_millis(200);

/// The window, at least 1 ms.
fn window(window_ms: u64) -> Duration {
    Duration::from_millis(window_ms.max(1))
}

/// The even spacing of `max` submits per `window_ms`: `window / max`, at least 1 µs.
fn period(max: u32, window_ms: u64) -> Duration {
    let micros = window_ms.max(1).saturating_mul(1000) / u64::from(max.max(1));
    Duration::from_micros(micros.max(1))
}

/// A quota of one submit per [`period`]: GCRA with a burst of one.
fn quota(max: u32, window_ms: u64) -> Quota {
    Quota::with_period(period(max, window_ms))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::MIN)
}

/// Governor's limiter, in this process.
pub(crate) type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::DefaultClock,
>;

/// How many submits may be journaled and waiting for their turn at once (the shared
/// journal's workers).
pub(crate) const SUBMITS_AHEAD: usize = 2;

/// How many submits may be journaled and waiting for their turn at once: enough that 100 ms
/// of journal latency (a slow fsync, a group commit's queue) never leaves the pace without a
/// submit ready, at least 2 and at most 8. At kie's 20 per 10 s (a submit every 500 ms) that
/// is 2; a faster account (or a time-scaled sandbox) gets more, since each journal write then
/// spans several turns. Each is `unknown` after a crash, so few.
///
/// ```text
/// 20 per 10 s -> 2, 20 per 200 ms -> 8
/// ```
pub(crate) fn submits_ahead(rate_max: u32, window_ms: u64) -> usize {
    let period = period(rate_max, window_ms).as_micros();
    let cover = 100_000u128.div_ceil(period);
    usize::try_from(cover)
        .unwrap_or(usize::MAX)
        .clamp(SUBMITS_AHEAD, 8)
}

/// When the next send may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Now.
    Now,
    /// At this instant.
    At(Instant),
    /// Once the `max`-th latest send has its answer.
    AfterAnswer,
}

/// The latest `max` sends and when each was answered: the rule of this module, in one
/// process.
#[derive(Debug)]
pub(crate) struct Ledger {
    max: usize,
    window: Duration,
    /// `(id, answered)`, oldest first; at most `max`.
    sends: VecDeque<(u64, Option<Instant>)>,
    next: u64,
}

impl Ledger {
    /// A ledger for `max` sends per `window`.
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        let max = usize::try_from(max.max(1)).unwrap_or(usize::MAX);
        Self {
            max,
            window,
            sends: VecDeque::with_capacity(max.min(1024)),
            next: 0,
        }
    }

    /// When a send may go, at `now`.
    pub(crate) fn turn(&self, now: Instant) -> Turn {
        if self.sends.len() < self.max {
            return Turn::Now;
        }
        // The oldest kept is the `max`-th latest.
        match self.sends.front() {
            Some((_, Some(answered))) => {
                let at = *answered + self.window + EDGE;
                if at <= now { Turn::Now } else { Turn::At(at) }
            }
            Some((_, None)) => Turn::AfterAnswer,
            None => Turn::Now,
        }
    }

    /// Records a send going now; its id is for [`Ledger::answered`].
    pub(crate) fn send(&mut self) -> u64 {
        let id = self.next;
        self.next += 1;
        self.sends.push_back((id, None));
        // Older ones never decide a turn again.
        while self.sends.len() > self.max {
            self.sends.pop_front();
        }
        id
    }

    /// Records the answer of send `id` (ignored once it no longer matters).
    pub(crate) fn answered(&mut self, id: u64, at: Instant) {
        if let Some((_, answered)) = self.sends.iter_mut().find(|(i, _)| *i == id) {
            answered.get_or_insert(at);
        }
    }
}

/// Past the window's edge, which kie's count may include.
const EDGE: Duration = Duration::from_millis(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journaled_submits_ahead_cover_the_journal_latency_at_the_accounts_pace() {
        assert_eq!(submits_ahead(20, 10_000), 2, "kie's limit");
        assert_eq!(submits_ahead(20, 200), 8, "capped");
        assert_eq!(submits_ahead(20, 1_000), 2);
        assert_eq!(submits_ahead(20, 500), 4);
        assert_eq!(submits_ahead(0, 0), 8, "nonsense limits stay in range");
    }

    #[test]
    fn the_period_spreads_the_window_evenly() {
        assert_eq!(period(20, 10_000), Duration::from_millis(500));
        assert_eq!(period(3, 1), Duration::from_micros(333));
        assert_eq!(period(u32::MAX, 1), Duration::from_micros(1));
    }

    /// The rule: the `max`-th latest send's window runs from its answer, however late it came;
    /// a send without an answer holds its place.
    #[test]
    fn a_send_waits_for_the_window_of_the_maxth_latest_answer() {
        let window = Duration::from_millis(1_000);
        let mut ledger = Ledger::new(2, window);
        let t0 = Instant::now();
        assert_eq!(ledger.turn(t0), Turn::Now);
        let first = ledger.send();
        assert_eq!(ledger.turn(t0), Turn::Now, "fewer than max sends");
        let second = ledger.send();
        assert_eq!(
            ledger.turn(t0),
            Turn::AfterAnswer,
            "the 2nd latest is in flight"
        );
        // The first answer came 300 ms late: the window runs from there.
        let late = t0 + Duration::from_millis(300);
        ledger.answered(first, late);
        assert_eq!(ledger.turn(late), Turn::At(late + window + EDGE));
        assert_eq!(ledger.turn(late + window + EDGE), Turn::Now);
        let third = ledger.send();
        // Now the second send decides, and it has no answer yet.
        assert_eq!(ledger.turn(late + window * 2), Turn::AfterAnswer);
        ledger.answered(second, t0);
        assert_eq!(ledger.turn(t0 + window), Turn::At(t0 + window + EDGE));
        // An answer recorded twice keeps the first; a forgotten id is ignored.
        ledger.answered(second, t0 + window);
        assert_eq!(ledger.turn(t0 + window), Turn::At(t0 + window + EDGE));
        ledger.answered(first, t0 + window * 9);
        ledger.answered(third, t0);
        assert_eq!(ledger.turn(t0 + window + EDGE), Turn::Now);
    }

    /// Under the rule, with sends going as soon as it allows and up to `max` in flight, however
    /// late each request's arrival falls between its send and its answer, no window of the
    /// server ever holds more than `max` arrivals; and the rule costs no more than one
    /// answer's latency per window.
    #[test]
    fn no_window_ever_holds_more_than_max_arrivals() {
        let window = Duration::from_millis(1_000);
        let max = 5;
        let mut ledger = Ledger::new(max, window);
        let start = Instant::now();
        let mut now = start;
        // (answer, id), and every arrival.
        let mut in_flight: Vec<(Instant, u64)> = Vec::new();
        let mut arrivals = Vec::new();
        let mut random = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next_random = move || {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            random
        };
        while arrivals.len() < 200 {
            in_flight.sort();
            // Answers due by now are recorded first.
            while in_flight.first().is_some_and(|(at, _)| *at <= now) {
                let (at, id) = in_flight.remove(0);
                ledger.answered(id, at);
            }
            match ledger.turn(now) {
                Turn::Now => {
                    let id = ledger.send();
                    let latency = Duration::from_millis(next_random() % 400);
                    // The server counts it anywhere between the send and the answer.
                    arrivals.push(now + latency.mul_f64((next_random() % 101) as f64 / 100.0));
                    in_flight.push((now + latency, id));
                }
                Turn::At(at) => now = in_flight.first().map_or(at, |(a, _)| at.min(*a)),
                Turn::AfterAnswer => now = in_flight.first().expect("a send in flight").0,
            }
        }
        arrivals.sort();
        for (i, at) in arrivals.iter().enumerate() {
            let in_window = arrivals[..=i]
                .iter()
                .filter(|earlier| *at - **earlier <= window)
                .count();
            assert!(
                in_window <= max as usize,
                "arrival {i}: {in_window} in one window"
            );
        }
        // 200 sends are 40 windows; each costs at most one answer (400 ms) and the edge.
        let elapsed = now - start;
        assert!(
            elapsed <= (window + Duration::from_millis(401)) * 40,
            "{elapsed:?}"
        );
    }
}
