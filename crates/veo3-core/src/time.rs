//! Time as an injected dependency.
//!
//! Every decision in this crate takes "now" as an argument, and the drivers get "now" from a
//! [`Clock`] and wait through a [`Sleeper`]. Production code plugs in [`SystemClock`] and a
//! runtime's timer (the async client uses tokio's, the blocking client `std::thread::sleep`);
//! tests plug in [`SimulatedClock`], which is both: sleeping on it advances its time instantly,
//! so a thirty-minute wait runs in microseconds and the elapsed time it reports is exact.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// A monotonic clock: the time elapsed since an arbitrary origin fixed when the clock was made.
///
/// Only differences between two readings mean anything, which is all retry deadlines and poll
/// schedules need. Wall-clock time is deliberately absent: the one place that needs a calendar
/// date (an HTTP-date `Retry-After`) resolves it against the response's own `Date` header, which
/// is immune to the local clock being wrong.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Time elapsed since this clock's origin. Never decreases.
    fn now(&self) -> Duration;
}

/// Waits for a while, without blocking a thread in async code.
///
/// Core has no async runtime of its own; the async client implements this over its runtime's
/// timer. A sleeper must not return early: the drivers rely on it to honour `Retry-After`.
#[async_trait]
pub trait Sleeper: Send + Sync + fmt::Debug {
    /// Completes after `duration` has passed on the clock the caller pairs with this sleeper.
    async fn sleep(&self, duration: Duration);
}

/// Waits for a while by blocking the current thread: the blocking client's [`Sleeper`].
///
/// Implemented by [`ThreadSleeper`] (the real one) and [`SimulatedClock`] (instant, advances
/// the simulated time), so blocking loops are testable without sleeping too.
pub trait BlockingSleeper: Send + Sync + fmt::Debug {
    /// Returns after `duration` has passed on the paired clock.
    fn sleep(&self, duration: Duration);

    /// Whether sleeping only moves a simulated clock instead of passing real time (`false`
    /// by default; [`SimulatedClock`] says `true`).
    ///
    /// A blocking wait that can end early when something arrives from another thread (a
    /// hybrid wait's callback) blocks on that arrival for real time when this is `false`, and
    /// only checks for it before and after [`BlockingSleeper::sleep`] when it is `true`, so
    /// that simulated waits stay instant.
    fn is_simulated(&self) -> bool {
        false
    }
}

/// [`BlockingSleeper`] over `std::thread::sleep`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadSleeper;

impl BlockingSleeper for ThreadSleeper {
    // The one place that really sleeps a thread; decisions never do.
    #[allow(clippy::disallowed_methods)]
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// The real monotonic clock, measured from the moment it was created.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    // This is the one place in the crate that reads the real clock; everything else is handed
    // time by a `Clock`, which is what makes the decisions testable on simulated time.
    #[allow(clippy::disallowed_methods)]
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    // See `SystemClock::new`: reading the real clock is this type's whole purpose.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that only moves when told to, and a sleeper that moves it.
///
/// [`Sleeper::sleep`] (and [`BlockingSleeper::sleep`]) returns at once after advancing the clock by the requested duration, and
/// records the duration, so tests can assert the exact schedule a driver followed without
/// sleeping. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::time::{Clock, Sleeper, SimulatedClock};
///
/// # async fn demo() {
/// let clock = SimulatedClock::new();
/// clock.sleep(Duration::from_secs(90)).await;
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(clock.now(), Duration::from_secs(100));
/// assert_eq!(clock.sleeps(), vec![Duration::from_secs(90)]);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct SimulatedClock {
    inner: Arc<SimulatedInner>,
}

#[derive(Default)]
struct SimulatedInner {
    // Nanoseconds since the origin. `u64` nanoseconds cover 584 years of simulated time.
    nanos: AtomicU64,
    sleeps: Mutex<Vec<Duration>>,
}

impl SimulatedClock {
    /// A simulated clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward (saturating at the end of representable time).
    pub fn advance(&self, duration: Duration) {
        let add = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .inner
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(add))
            });
    }

    /// Every duration passed to [`Sleeper::sleep`] so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock_sleeps().clone()
    }

    /// The sum of all sleeps so far.
    pub fn total_slept(&self) -> Duration {
        self.lock_sleeps()
            .iter()
            .fold(Duration::ZERO, |sum, d| sum.saturating_add(*d))
    }

    fn lock_sleeps(&self) -> std::sync::MutexGuard<'_, Vec<Duration>> {
        // A panic while holding this lock cannot leave the list half-updated (push is atomic
        // from our point of view), so a poisoned lock is still safe to use.
        self.inner
            .sleeps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for SimulatedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedClock")
            .field("now", &self.now())
            .finish()
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.inner.nanos.load(Ordering::SeqCst))
    }
}

#[async_trait]
impl Sleeper for SimulatedClock {
    async fn sleep(&self, duration: Duration) {
        self.lock_sleeps().push(duration);
        self.advance(duration);
    }
}

impl BlockingSleeper for SimulatedClock {
    fn sleep(&self, duration: Duration) {
        self.lock_sleeps().push(duration);
        self.advance(duration);
    }

    fn is_simulated(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_clock_saturates_instead_of_overflowing() {
        let clock = SimulatedClock::new();
        clock.advance(Duration::MAX);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn clones_share_time() {
        let clock = SimulatedClock::new();
        let other = clock.clone();
        clock.advance(Duration::from_millis(1500));
        assert_eq!(other.now(), Duration::from_millis(1500));
    }

    #[test]
    fn blocking_sleep_on_simulated_time_is_instant() {
        let clock = SimulatedClock::new();
        BlockingSleeper::sleep(&clock, Duration::from_secs(3600));
        assert_eq!(clock.now(), Duration::from_secs(3600));
        assert_eq!(clock.total_slept(), Duration::from_secs(3600));
    }

    #[test]
    fn system_clock_is_monotonic() {
        let clock = SystemClock::new();
        let first = clock.now();
        assert!(clock.now() >= first);
    }
}
