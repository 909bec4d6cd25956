//! Pacing billable submits under the account's limit: at most `max` generate requests in any
//! rolling `window`, as kie counts them (20 per 10 s; a request over it is dropped with 429).
//!
//! The rule, for every worker of every journal: **a send may go once the `max`-th latest send
//! was answered `window` ago** (plus 1 ms, in case kie's window includes its edge). kie counts
//! a request when it arrives, at some moment between our send and its answer, so a send made
//! `window` after the answer of the `max`-th latest one arrives at least `window` after that
//! one did, however long the network or a loaded machine delayed either. A send without an
//! answer yet holds its place until it has one. Counting from the send instead (as a token
//! bucket does) assumes each request arrives when it was scheduled; on a loaded machine a late
//! send then lands inside the window of the next ones, and is answered 429.
//!
//! The account's latest sends live in the journal ([`Store::reserve_submit`]), so every
//! process working on it, on one machine (SQLite) or many (PostgreSQL), queues on one list:
//! the rule is [`next_slot`], which the SQLite journal runs in its transaction and the
//! PostgreSQL journal in one SQL function (`veo3_reserve_submit`, migration
//! `0003_answered_sends.sql`). A send whose worker died counts as answered when its lease
//! ended.
//!
//! Every send is made once ([`Client::generate_once`](veo3_reqwest::Client::generate_once)):
//! a client retrying a 429 on its own would make sends the journal never saw.

use std::time::Duration;

use tokio::sync::Notify;

use crate::store::{Store, StoreError, WorkerId};

/// How one worker's submits are paced under the account's limit, shared in the journal.
pub(crate) struct Pace {
    /// The worker reserving.
    worker: WorkerId,
    /// The account's fingerprint.
    account: String,
    /// Submits per window.
    max: u32,
    /// The window.
    window: Duration,
    /// Signalled when this worker journals an answer: its own sends waiting on one ask again
    /// at once instead of after their back-off.
    answered: Notify,
}

/// A send this pace let go; hand it back to [`Pace::answered`] when the send ends.
#[derive(Debug)]
#[must_use = "a send holds its place in the window until its answer is recorded"]
pub(crate) struct Ticket(i64);

impl Pace {
    /// Pacing for `max` submits per `window_ms`, shared by every worker of `account`.
    pub(crate) fn new(worker: WorkerId, account: String, max: u32, window_ms: u64) -> Self {
        Self {
            worker,
            account,
            max: max.max(1),
            window: Duration::from_millis(window_ms.max(1)),
            answered: Notify::new(),
        }
    }

    /// Waits for the next send's turn. (The send check comes after it, not ahead of it: a
    /// job is `submitting` only once its turn came, so a crash while it waits leaves it
    /// pending.)
    pub(crate) async fn turn(&self, store: &dyn Store) -> Result<Ticket, StoreError> {
        let mut again = ASK_AGAIN;
        loop {
            // Registered before asking, so an answer journaled meanwhile wakes it.
            let answered = self.answered.notified();
            let reserved = store.reserve_submit(self.worker, &self.account, self.max, self.window);
            match reserved.await? {
                Some(reservation) => {
                    tokio::time::sleep(reservation.wait).await;
                    return Ok(Ticket(reservation.id));
                }
                // The `max`-th latest send is still in flight: its answer usually comes within
                // one request's latency, but a slow one may take up to the client's attempt
                // timeout, so the asking slows down. An answer of this worker's own wakes it.
                None => {
                    tokio::select! {
                        () = answered => {}
                        () = tokio::time::sleep(again) => {}
                    }
                    again = (again * 2).min(ASK_AGAIN_MAX);
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
        let result = store.submit_answered(ticket.0).await;
        self.answered.notify_waiters();
        result
    }
}

/// How long a worker waits before asking the limiter again, when the send it must wait for
/// has no answer yet: 5 ms at first, doubling up to 200 ms.
const ASK_AGAIN: Duration = Duration::from_millis(5);
const ASK_AGAIN_MAX: Duration = Duration::from_millis(200);

/// Past the window's edge, which kie's count may include, in microseconds.
const EDGE_US: i64 = 1_000;

/// The rule, on the account's sends: when (in microseconds) the next send may go, at `now`,
/// after the latest reserved `last_slot`; `maxth_latest` is the `max`-th latest send's answer
/// (`None` if there are fewer than `max` sends, `Some(None)` while it has no answer). `None`
/// while that send is in flight: ask again once it has its answer.
///
/// ```text
/// fewer than max sends           -> max(now, last slot)
/// max-th latest answered at A    -> max(now, last slot, A + window + 1 ms)
/// max-th latest in flight        -> ask again
/// ```
pub(crate) fn next_slot(
    now: i64,
    last_slot: Option<i64>,
    maxth_latest: Option<Option<i64>>,
    window: i64,
) -> Option<i64> {
    let slot = now.max(last_slot.unwrap_or(now));
    match maxth_latest {
        None => Some(slot),
        Some(None) => None,
        Some(Some(answered)) => {
            Some(slot.max(answered.saturating_add(window).saturating_add(EDGE_US)))
        }
    }
}

/// How many submits a worker holds claimed ahead of its turns: enough that 100 ms of journal
/// latency (a slow fsync, a group commit's queue) never leaves the pace without a submit
/// ready, at least 2 and at most 8. At kie's 20 per 10 s (a submit every 500 ms) that is 2;
/// a faster account (or a time-scaled sandbox) gets more, since each journal write then spans
/// several turns. A claimed job is still `pending`: a crash leaves it to the next claim.
///
/// ```text
/// 20 per 10 s -> 2, 20 per 200 ms -> 8
/// ```
pub(crate) fn submits_ahead(rate_max: u32, window_ms: u64) -> usize {
    let period = (window_ms.max(1).saturating_mul(1000) / u64::from(rate_max.max(1))).max(1);
    let cover = 100_000u64.div_ceil(period);
    usize::try_from(cover).unwrap_or(usize::MAX).clamp(2, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_ahead_cover_the_journal_latency_at_the_accounts_pace() {
        assert_eq!(submits_ahead(20, 10_000), 2, "kie's limit");
        assert_eq!(submits_ahead(20, 200), 8, "capped");
        assert_eq!(submits_ahead(20, 1_000), 2);
        assert_eq!(submits_ahead(20, 500), 4);
        assert_eq!(submits_ahead(0, 0), 8, "nonsense limits stay in range");
    }

    /// The rule: the `max`-th latest send's window runs from its answer, however late it came;
    /// a send without an answer holds its place; slots never go back in time.
    #[test]
    fn a_send_waits_for_the_window_of_the_maxth_latest_answer() {
        let window = 1_000_000;
        assert_eq!(next_slot(10, None, None, window), Some(10), "no sends yet");
        assert_eq!(
            next_slot(10, Some(50), None, window),
            Some(50),
            "after the last slot"
        );
        assert_eq!(
            next_slot(10, Some(5), Some(None), window),
            None,
            "in flight"
        );
        assert_eq!(
            next_slot(10, Some(5), Some(Some(300)), window),
            Some(300 + window + EDGE_US),
            "a window after its (late) answer"
        );
        assert_eq!(
            next_slot(5_000_000, Some(5), Some(Some(300)), window),
            Some(5_000_000),
            "long past"
        );
    }

    /// Under the rule, with sends going as soon as it allows and up to `max` in flight, however
    /// late each request's arrival falls between its send and its answer, no window of the
    /// server ever holds more than `max` arrivals; and the rule costs no more than one
    /// answer's latency per window.
    #[test]
    fn no_window_ever_holds_more_than_max_arrivals() {
        let window: i64 = 1_000_000;
        let max = 5usize;
        let mut now: i64 = 0;
        // (slot, answered), every send in order; and (answer, index) in flight.
        let mut sends: Vec<(i64, Option<i64>)> = Vec::new();
        let mut in_flight: Vec<(i64, usize)> = Vec::new();
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
            while in_flight.first().is_some_and(|(at, _)| *at <= now) {
                let (at, index) = in_flight.remove(0);
                sends[index].1 = Some(at);
            }
            let maxth = (sends.len() >= max).then(|| sends[sends.len() - max].1);
            match next_slot(now, sends.last().map(|s| s.0), maxth, window) {
                Some(slot) if slot <= now => {
                    let latency = i64::try_from(next_random() % 400_000).unwrap();
                    let fraction = i64::try_from(next_random() % 101).unwrap();
                    // The server counts it anywhere between the send and the answer.
                    arrivals.push(now + latency * fraction / 100);
                    in_flight.push((now + latency, sends.len()));
                    sends.push((now, None));
                }
                Some(slot) => now = in_flight.first().map_or(slot, |(a, _)| slot.min(*a)),
                None => now = in_flight.first().expect("a send in flight").0,
            }
        }
        arrivals.sort();
        for (i, at) in arrivals.iter().enumerate() {
            let in_window = arrivals[..=i]
                .iter()
                .filter(|earlier| *at - **earlier <= window)
                .count();
            assert!(in_window <= max, "arrival {i}: {in_window} in one window");
        }
        // 200 sends are 40 windows; each costs at most one answer (400 ms) and the edge.
        assert!(now <= (window + 401_000) * 40, "{now}");
    }
}
