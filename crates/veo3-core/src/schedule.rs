//! When to poll: a first delay suited to the stage, then intervals that grow (with jitter) up
//! to a maximum, all bounded by a deadline on which the last poll lands exactly.
//!
//! Like the retry decisions this is pure: elapsed time and randomness are arguments.

use std::time::Duration;

use veo3_types::Model;

use crate::retry::{duration_from_nanos, jitter_below};

/// The polling cadence of one wait.
///
/// Generation takes minutes, so polling every second only burns the account's rate limit;
/// the presets ([`PollSchedule::generation`], [`PollSchedule::hd_1080p`],
/// [`PollSchedule::upgrade_4k`], [`PollSchedule::extension`]) follow the reference's timings
/// and recommended spacing. Everything can be overridden; tests use millisecond schedules on a
/// [`SimulatedClock`](crate::time::SimulatedClock).
///
/// Poll `n` (counting from 1) waits:
/// - `first_delay` for `n == 1`;
/// - otherwise `min(max_interval, interval * growth^(n-2))`, stretched by up to `jitter`
///   (a fraction: `0.2` means up to 20 % longer) so that many waits started together spread
///   out. Jitter only ever lengthens a delay, so the spacing never drops below what the API
///   asks for (30 s for 4K). It may exceed `max_interval` by the jitter fraction.
///
/// Any delay that would cross the deadline is shortened to end exactly on it, so the final
/// poll happens at the deadline and not a full interval before it; after that the wait ends.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::PollSchedule;
///
/// let schedule = PollSchedule::new(Duration::from_secs(30), Duration::from_secs(15), Duration::from_secs(100))
///     .with_jitter(0.0);
/// let mut elapsed = Duration::ZERO;
/// let mut polls = Vec::new();
/// let mut poll = 1;
/// while let Some(delay) = schedule.next_delay(poll, elapsed, 0) {
///     elapsed += delay;
///     polls.push(elapsed.as_secs());
///     poll += 1;
/// }
/// assert_eq!(polls, [30, 45, 60, 75, 90, 100]); // the last poll lands on the deadline
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PollSchedule {
    /// Delay before the first poll.
    pub first_delay: Duration,
    /// Delay between the first and the second poll; the base of later intervals.
    pub interval: Duration,
    /// Factor by which the interval grows after each poll (`1.0`: constant). Values below
    /// 1 or not finite are read as 1.
    pub growth: f64,
    /// The interval never grows beyond this (before jitter).
    pub max_interval: Duration,
    /// Up to this fraction is added to each interval at random; clamped to `0.0..=1.0`.
    pub jitter: f64,
    /// The wait ends with [`Error::WaitTimeout`](crate::Error::WaitTimeout) after the poll at
    /// this much time since it started.
    pub deadline: Duration,
    /// Poll calls that fail with a retryable error (after the client's own retries) are
    /// tolerated this many times in a row; one more ends the wait with that error.
    pub max_consecutive_errors: u32,
    /// By when, after the wait starts, the stage is expected to be done: the upper end of the
    /// reference's typical duration (a generation "typically 2-5 min", 1080p "1-3 min", 4K
    /// "5-10 min", an extension "several to 10+ min"). A hybrid wait makes its first safety
    /// read then ([`PollSchedule::safety_net`]): with callbacks arriving, an earlier read
    /// would mostly find the task still running and be wasted. [`PollSchedule::new`] sets it
    /// to `first_delay`.
    pub expected_completion: Duration,
    /// How long after a task's creation a record-info answer of 422 "record is null" means
    /// "not visible yet" rather than "no such task" (default [`RECORD_NULL_GRACE`], 90 s).
    /// Clients of kie's newer task API see that answer for a short while after a task is
    /// created (the reference's section 3.2); inside the window a task wait goes on
    /// following the schedule, after it the answer ends the wait as before. Only task waits
    /// (record-info) use it.
    pub record_null_grace: Duration,
    /// How old the task is when the wait starts, when the caller knows (a journal knows it
    /// from its times): [`WaitOptions::created_ago`](crate::settings::WaitOptions::created_ago).
    /// `None`: a wait after this client's own submission counts the task's age from the
    /// submit's answer (0 at the wait's start); a wait for an existing task gets no grace.
    pub task_age: Option<Duration>,
}

/// The default [`PollSchedule::record_null_grace`]: the window other clients of kie's task
/// API allow before believing "record is null" (the reference's section 3.2).
pub const RECORD_NULL_GRACE: Duration = Duration::from_secs(90);

impl PollSchedule {
    /// A schedule with constant `interval` after `first_delay`, 10 % jitter, and 3 tolerated
    /// consecutive poll errors.
    pub fn new(first_delay: Duration, interval: Duration, deadline: Duration) -> Self {
        Self {
            first_delay,
            interval,
            growth: 1.0,
            max_interval: interval,
            jitter: 0.1,
            deadline,
            max_consecutive_errors: 3,
            expected_completion: first_delay,
            record_null_grace: RECORD_NULL_GRACE,
            task_age: None,
        }
    }

    /// Waiting for a generation task: first poll at 90 s, then every 20 s growing by 1.05x
    /// up to 30 s; 30 min deadline.
    ///
    /// Generations take 2-5 minutes, so polls before 90 s are almost always wasted, and a
    /// 20 s cadence around the typical finish finds the video sooner than kie's fixed 30 s
    /// loop; the slow growth caps the cost of the long tail. Simulated over tasks finishing
    /// uniformly in 1-5, 2-5 and 1-15 minutes (with this jitter), it detects completion sooner
    /// *and* with fewer requests than a fixed 30 s loop in all three (e.g. 13.7 s mean delay
    /// and 5.2 polls against 16.0 s and 6.2 for 1-5 minutes); `cargo xtask bench callbacks`
    /// measures it against the sandbox.
    ///
    /// Expected completion: 5 minutes, the upper end of the reference's "typically 2-5 min".
    pub fn generation() -> Self {
        Self {
            growth: 1.05,
            max_interval: Duration::from_secs(30),
            expected_completion: Duration::from_secs(5 * 60),
            ..Self::new(
                Duration::from_secs(90),
                Duration::from_secs(20),
                Duration::from_secs(30 * 60),
            )
        }
    }

    /// Waiting for a generation by `model`: the Quality model (and unknown models) start
    /// polling later (120 s) than Fast and Lite (90 s), since they take minutes longer, and
    /// are expected done a minute later (6 minutes; the reference gives one range, 2-5 min,
    /// with "veo3_fast faster").
    pub fn for_model(model: &Model) -> Self {
        match model {
            Model::Veo3Fast | Model::Veo3Lite => Self::generation(),
            _ => Self {
                first_delay: Duration::from_secs(120),
                expected_completion: Duration::from_secs(6 * 60),
                ..Self::generation()
            },
        }
    }

    /// Waiting for an extension task (several to more than ten minutes): first poll at 60 s,
    /// then 20 s growing to 30 s; 40 min deadline; expected done in 10 minutes.
    pub fn extension() -> Self {
        Self {
            growth: 1.25,
            expected_completion: Duration::from_secs(10 * 60),
            max_interval: Duration::from_secs(30),
            ..Self::new(
                Duration::from_secs(60),
                Duration::from_secs(20),
                Duration::from_secs(40 * 60),
            )
        }
    }

    /// Waiting for a 1080p version (1-3 minutes; the docs say to ask again every 20-30 s):
    /// 20 s first delay and interval; 10 min deadline; expected done in 3 minutes.
    pub fn hd_1080p() -> Self {
        Self::new(
            Duration::from_secs(20),
            Duration::from_secs(20),
            Duration::from_secs(10 * 60),
        )
        .with_expected_completion(Duration::from_secs(3 * 60))
    }

    /// Waiting for a 4K version (5-10 minutes; the docs ask for at least 30 s spacing): first
    /// poll at 60 s, then every 30 s growing to 60 s; 30 min deadline; expected done in 10
    /// minutes.
    pub fn upgrade_4k() -> Self {
        Self {
            growth: 1.25,
            expected_completion: Duration::from_secs(10 * 60),
            max_interval: Duration::from_secs(60),
            ..Self::new(
                Duration::from_secs(60),
                Duration::from_secs(30),
                Duration::from_secs(30 * 60),
            )
        }
    }

    /// The safety net of a hybrid wait (one that also listens for callbacks, e.g.
    /// [`wait_for_task_hybrid`](crate::wait_for_task_hybrid)): the first poll at the stage's
    /// [`expected_completion`](PollSchedule::expected_completion) (or the first delay or one
    /// safety interval, if later), then a constant interval of four times this schedule's longest interval, with
    /// the same jitter, deadline and error tolerance.
    ///
    /// With callbacks, polls are only there in case a callback is lost, so they can be rare,
    /// and the first one waits until the task should be done: a read before that would mostly
    /// find it still running, and its callback would still be needed. For
    /// [`PollSchedule::generation`] that is a first poll at 5 min and one every 2 min after,
    /// instead of 90 s then every 20-30 s: a delivered callback costs a single confirming read
    /// (`cargo xtask bench callbacks`: about 1.0 read per task), and a lost one delays the
    /// result until the expected completion, or by at most about two minutes after it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use veo3_core::PollSchedule;
    ///
    /// let safety = PollSchedule::generation().safety_net();
    /// assert_eq!(safety.first_delay, Duration::from_secs(300));
    /// assert_eq!(safety.delay(5, 0), Duration::from_secs(120));
    /// assert_eq!(safety.deadline, PollSchedule::generation().deadline);
    /// assert_eq!(PollSchedule::upgrade_4k().safety_net().first_delay, Duration::from_secs(600));
    /// ```
    pub fn safety_net(&self) -> Self {
        let interval = self.max_interval.max(self.interval).saturating_mul(4);
        Self {
            first_delay: self.first_delay.max(self.expected_completion).max(interval),
            interval,
            growth: 1.0,
            max_interval: interval,
            ..self.clone()
        }
    }

    /// This schedule with every duration (first delay, intervals, deadline) multiplied by
    /// `factor`, e.g. the time scale of a sandbox whose clock runs 100 times faster (`0.01`).
    /// A negative or NaN factor counts as 0; products too large for a `Duration` saturate.
    ///
    /// ```
    /// use std::time::Duration;
    /// use veo3_core::PollSchedule;
    ///
    /// let fast = PollSchedule::generation().scaled(0.01);
    /// assert_eq!(fast.first_delay, Duration::from_millis(900));
    /// assert_eq!(fast.deadline, Duration::from_secs(18));
    /// ```
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            first_delay: scale(self.first_delay, factor),
            interval: scale(self.interval, factor),
            max_interval: scale(self.max_interval, factor),
            deadline: scale(self.deadline, factor),
            expected_completion: scale(self.expected_completion, factor),
            ..self.clone()
        }
    }

    /// Sets [`PollSchedule::first_delay`].
    pub fn with_first_delay(mut self, first_delay: Duration) -> Self {
        self.first_delay = first_delay;
        self
    }

    /// Sets [`PollSchedule::interval`], and raises `max_interval` to it if needed.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self.max_interval = self.max_interval.max(interval);
        self
    }

    /// Sets [`PollSchedule::growth`] and [`PollSchedule::max_interval`].
    pub fn with_growth(mut self, growth: f64, max_interval: Duration) -> Self {
        self.growth = growth;
        self.max_interval = max_interval;
        self
    }

    /// Sets [`PollSchedule::jitter`].
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`PollSchedule::deadline`].
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets [`PollSchedule::expected_completion`].
    pub fn with_expected_completion(mut self, expected: Duration) -> Self {
        self.expected_completion = expected;
        self
    }

    /// Sets [`PollSchedule::record_null_grace`].
    pub fn with_record_null_grace(mut self, grace: Duration) -> Self {
        self.record_null_grace = grace;
        self
    }

    /// Sets [`PollSchedule::task_age`]: the task was created `age` before the wait starts.
    pub fn with_task_age(mut self, age: Duration) -> Self {
        self.task_age = Some(age);
        self
    }

    /// Sets [`PollSchedule::max_consecutive_errors`].
    pub fn with_max_consecutive_errors(mut self, max_consecutive_errors: u32) -> Self {
        self.max_consecutive_errors = max_consecutive_errors;
        self
    }

    /// The delay before poll `poll` (1-based), ignoring the deadline. `random` is a uniform
    /// `u64` for the jitter.
    pub fn delay(&self, poll: u32, random: u64) -> Duration {
        if poll <= 1 {
            return self.first_delay;
        }
        let base = self.grown_interval(poll - 2);
        let jitter = self.jitter_fraction();
        // The extra part is base * jitter * random/2^64, computed in integers after turning
        // the fraction into parts per billion, so nothing here can overflow or panic.
        let ppb = (jitter * 1e9) as u128;
        let extra_ceiling =
            duration_from_nanos(base.as_nanos().saturating_mul(ppb) / 1_000_000_000);
        base.saturating_add(jitter_below(extra_ceiling, random))
    }

    /// The delay before poll `poll` when `elapsed` has passed since the wait started, or
    /// `None` when the deadline has been reached and the wait is over. The delay is shortened
    /// so that no poll happens after the deadline.
    pub fn next_delay(&self, poll: u32, elapsed: Duration, random: u64) -> Option<Duration> {
        let remaining = self
            .deadline
            .checked_sub(elapsed)
            .filter(|r| !r.is_zero())?;
        Some(self.delay(poll, random).min(remaining))
    }

    fn jitter_fraction(&self) -> f64 {
        if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// `min(max_interval, interval * growth^steps)` without overflow or float surprises.
    fn grown_interval(&self, steps: u32) -> Duration {
        let cap = self.max_interval.max(self.interval);
        let growth = if self.growth.is_finite() && self.growth > 1.0 {
            self.growth
        } else {
            1.0
        };
        // Past 64 steps any growth > 1 that has not hit the cap yet is irrelevant in practice;
        // bounding the exponent keeps `powi` finite.
        let factor = growth.powi(steps.min(64) as i32);
        let nanos = self.interval.as_nanos() as f64 * factor;
        if nanos.is_finite() && nanos < cap.as_nanos() as f64 {
            duration_from_nanos(nanos as u128)
        } else {
            cap
        }
    }
}

/// `duration * factor`, never panicking: 0 for a negative or NaN factor, saturating above.
fn scale(duration: Duration, factor: f64) -> Duration {
    if duration.is_zero() || factor.is_nan() || factor <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

impl Default for PollSchedule {
    /// [`PollSchedule::generation`].
    fn default() -> Self {
        Self::generation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn run(schedule: &PollSchedule, random: u64) -> Vec<Duration> {
        let mut elapsed = Duration::ZERO;
        let mut at = Vec::new();
        let mut poll = 1;
        while let Some(delay) = schedule.next_delay(poll, elapsed, random) {
            elapsed += delay;
            at.push(elapsed);
            poll += 1;
            assert!(poll < 10_000, "schedule does not end");
        }
        at
    }

    #[test]
    fn growth_caps_and_last_poll_lands_on_deadline() {
        let schedule = PollSchedule::new(secs(30), secs(10), secs(120))
            .with_growth(2.0, secs(40))
            .with_jitter(0.0);
        let at: Vec<u64> = run(&schedule, 0).iter().map(Duration::as_secs).collect();
        assert_eq!(at, [30, 40, 60, 100, 120]);
    }

    #[test]
    fn jitter_only_lengthens_and_is_bounded() {
        let schedule = PollSchedule::upgrade_4k().with_jitter(0.5);
        for poll in 2..20 {
            let low = schedule.delay(poll, 0);
            let high = schedule.delay(poll, u64::MAX);
            assert!(low >= secs(30), "4K spacing must stay >= 30 s");
            assert!(high <= low + low / 2);
            assert!(high > low);
        }
    }

    #[test]
    fn hostile_parameters_do_not_panic_or_loop() {
        let schedule = PollSchedule::new(Duration::MAX, Duration::MAX, secs(60))
            .with_growth(f64::INFINITY, Duration::MAX)
            .with_jitter(f64::NAN);
        assert_eq!(run(&schedule, u64::MAX), [secs(60)]);
        let shrinking = PollSchedule::new(secs(1), secs(4), secs(20))
            .with_growth(0.1, secs(4))
            .with_jitter(7.0);
        for poll in 1..100 {
            assert!(shrinking.delay(poll, u64::MAX) <= secs(8));
        }
        assert_eq!(
            PollSchedule::hd_1080p()
                .delay(1_000_000, u64::MAX)
                .as_secs(),
            21
        );
    }

    #[test]
    fn no_poll_at_or_after_deadline() {
        let schedule = PollSchedule::hd_1080p();
        assert_eq!(schedule.next_delay(5, schedule.deadline, 0), None);
        assert_eq!(schedule.next_delay(5, Duration::MAX, 0), None);
        assert_eq!(
            schedule.next_delay(5, schedule.deadline - secs(1), u64::MAX),
            Some(secs(1))
        );
    }

    #[test]
    fn scaling_never_panics_and_keeps_the_shape() {
        let base = PollSchedule::generation();
        assert_eq!(base.scaled(1.0), base);
        let slow = base.scaled(2.0);
        assert_eq!(slow.delay(3, 0), base.delay(3, 0) * 2);
        assert_eq!(slow.growth, base.growth);
        for factor in [f64::NAN, -1.0, 0.0, f64::NEG_INFINITY] {
            let zero = base.scaled(factor);
            assert_eq!(
                (zero.first_delay, zero.deadline),
                (Duration::ZERO, Duration::ZERO)
            );
        }
        assert_eq!(base.scaled(f64::INFINITY).deadline, Duration::MAX);
        assert_eq!(base.scaled(1e300).first_delay, Duration::MAX);
        let huge = PollSchedule::new(Duration::MAX, Duration::MAX, Duration::MAX).safety_net();
        assert_eq!(huge.first_delay, Duration::MAX);
    }

    #[test]
    fn the_safety_net_polls_rarely_until_the_same_deadline() {
        let base = PollSchedule::upgrade_4k();
        let safety = base.safety_net();
        assert_eq!(safety.first_delay, secs(600), "at the expected completion");
        for poll in 2..10 {
            assert_eq!(safety.delay(poll, 0), secs(240));
        }
        assert_eq!(
            (
                safety.deadline,
                safety.jitter,
                safety.max_consecutive_errors
            ),
            (base.deadline, base.jitter, base.max_consecutive_errors)
        );
    }

    #[test]
    fn presets_match_the_reference_timings() {
        assert_eq!(PollSchedule::for_model(&Model::Veo3).first_delay, secs(120));
        assert_eq!(
            PollSchedule::for_model(&Model::Veo3Fast).first_delay,
            secs(90)
        );
        assert!(PollSchedule::generation().delay(2, 0) >= secs(20));
        assert!(PollSchedule::upgrade_4k().delay(2, 0) >= secs(30));
        assert_eq!(PollSchedule::generation().deadline, secs(1800));
    }

    #[test]
    fn the_safety_nets_first_read_is_at_each_stages_expected_completion() {
        let stages = [
            (PollSchedule::for_model(&Model::Veo3Fast), 300),
            (PollSchedule::for_model(&Model::Veo3Lite), 300),
            (PollSchedule::for_model(&Model::Veo3), 360),
            (PollSchedule::extension(), 600),
            (PollSchedule::hd_1080p(), 180),
            (PollSchedule::upgrade_4k(), 600),
        ];
        for (schedule, expected) in stages {
            assert_eq!(schedule.expected_completion, secs(expected));
            assert_eq!(schedule.safety_net().first_delay, secs(expected));
            // Scaled along with the rest (tests and benchmarks on a fast sandbox).
            assert_eq!(
                schedule.scaled(0.01).safety_net().first_delay,
                secs(expected) / 100
            );
        }
        // A schedule built by hand expects nothing before its first poll.
        let custom = PollSchedule::new(secs(7), secs(5), secs(60));
        assert_eq!(custom.safety_net().first_delay, secs(20));
        assert_eq!(
            custom
                .with_expected_completion(secs(45))
                .safety_net()
                .first_delay,
            secs(45)
        );
    }
}
