//! Configuration values of a sandbox: durations, prices, limits, response shapes, the clock.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::faults::FaultPlan;

/// Which generation of the documented response shapes the sandbox serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Shape {
    /// The current shapes: `resultUrls` arrays, `successFlag`, epoch-millisecond timestamps.
    #[default]
    Modern,
    /// The 2025 quickstart's shapes: `resultUrls` as JSON-encoded strings (also copied to
    /// `data.resultUrls`), a `status` next to `successFlag`, ISO-8601 string timestamps, and
    /// string-typed URL lists in callbacks.
    Legacy,
}

impl FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "modern" => Ok(Shape::Modern),
            "legacy" => Ok(Shape::Legacy),
            other => Err(format!(
                "unknown shape {other:?} (expected modern or legacy)"
            )),
        }
    }
}

/// How long each kind of job takes, in *unscaled* service time.
///
/// The defaults follow the reference's emulator notes (30 s for a Fast generation, 90 s for 1080p,
/// 300 s for 4K and extensions), with Quality slower and Lite faster than Fast.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Durations {
    /// `veo3_lite` generation.
    pub generate_lite: Duration,
    /// `veo3_fast` generation.
    pub generate_fast: Duration,
    /// `veo3` (Quality) generation.
    pub generate_quality: Duration,
    /// Producing the 1080p version.
    pub hd_1080p: Duration,
    /// Producing the 4K version.
    pub upgrade_4k: Duration,
    /// An extension with the `fast` or `lite` model (`quality` takes 1.5x).
    pub extend: Duration,
    /// A moderation rejection happens after this fraction (in percent) of the job's duration.
    pub moderation_percent: u32,
}

impl Default for Durations {
    fn default() -> Self {
        Self {
            generate_lite: Duration::from_secs(25),
            generate_fast: Duration::from_secs(30),
            generate_quality: Duration::from_secs(60),
            hd_1080p: Duration::from_secs(90),
            upgrade_4k: Duration::from_secs(300),
            extend: Duration::from_secs(300),
            moderation_percent: 20,
        }
    }
}

impl Durations {
    /// Every job takes `d` (handy for tests that want uniform timings).
    pub fn uniform(d: Duration) -> Self {
        Self {
            generate_lite: d,
            generate_fast: d,
            generate_quality: d,
            hd_1080p: d,
            upgrade_4k: d,
            extend: d,
            moderation_percent: 20,
        }
    }
}

/// Credits debited per operation (third-party mid-2026 price list; uploads are free).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Prices {
    /// `veo3_lite` at 720p / 1080p / 4k.
    pub lite: [i64; 3],
    /// `veo3_fast` at 720p / 1080p / 4k.
    pub fast: [i64; 3],
    /// `veo3` (Quality) at 720p / 1080p / 4k.
    pub quality: [i64; 3],
    /// `get-1080p-video`, charged on the first request for a given video.
    pub hd_1080p: i64,
    /// `get-4k-video`, charged when the 4K job is accepted.
    pub upgrade_4k: i64,
    /// Extensions with `lite` / `fast` / `quality`.
    pub extend: [i64; 3],
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            lite: [30, 35, 150],
            fast: [60, 65, 180],
            quality: [250, 255, 370],
            hd_1080p: 5,
            upgrade_4k: 120,
            extend: [30, 60, 250],
        }
    }
}

/// The generation rate limit: at most `max` new generations (generate + extend) per rolling
/// `window` of service time, per key. Excess requests get 429 and are dropped, not queued.
///
/// The window is service time, so it shrinks with the time scale like every job duration: at
/// a time scale of 0.01, `20/10s` allows 20 generations per 100 ms of real time.
///
/// Parsed from `MAX/WINDOW` (`--rate-limit 20/10s`), the window a number with a unit of `ms`,
/// `s`, `m` or `h`:
///
/// ```
/// use std::time::Duration;
/// use veo3_sandbox::RateLimit;
///
/// let limit: RateLimit = "20/10s".parse().unwrap();
/// assert_eq!(limit, RateLimit { max: 20, window: Duration::from_secs(10) });
/// assert!("0/10s".parse::<RateLimit>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub max: u32,
    /// The rolling window, in unscaled service time.
    pub window: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            max: 20,
            window: Duration::from_secs(10),
        }
    }
}

impl FromStr for RateLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("expected MAX/WINDOW such as 20/10s or 5/500ms (got {s:?})");
        let (max, window) = s.trim().split_once('/').ok_or_else(usage)?;
        let max: u32 = max.trim().parse().map_err(|_| usage())?;
        if max == 0 {
            return Err(format!("the maximum must be at least 1 (got {s:?})"));
        }
        let window = window.trim();
        let split = window
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(usage)?;
        let (number, unit) = window.split_at(split);
        let number: f64 = number.trim().parse().map_err(|_| usage())?;
        let unit_secs = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(usage()),
        };
        let window = Duration::try_from_secs_f64(number * unit_secs)
            .ok()
            .filter(|w| !w.is_zero() && number.is_finite())
            .ok_or_else(|| format!("the window must be a positive, finite duration (got {s:?})"))?;
        Ok(Self { max, window })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}ms", self.max, self.window.as_millis())
    }
}

/// A secret string (API key, webhook key) that never shows in `Debug`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// Everything a sandbox is started with; built by [`crate::SandboxBuilder`].
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) keys: Vec<Secret>,
    pub(crate) time_scale: f64,
    pub(crate) seed: u64,
    pub(crate) faults: FaultPlan,
    pub(crate) shape: Shape,
    pub(crate) callbacks: bool,
    pub(crate) hmac_key: Option<Secret>,
    pub(crate) mirror_http_status: bool,
    pub(crate) initial_credits: i64,
    pub(crate) credits: Vec<(Secret, i64)>,
    pub(crate) refund_failed: bool,
    pub(crate) durations: Durations,
    pub(crate) prices: Prices,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) retention: Duration,
    pub(crate) result_url_ttl: Duration,
    pub(crate) result_bytes: Option<u64>,
    pub(crate) download_url_ttl: Duration,
    pub(crate) callback_timeout: Duration,
    pub(crate) callback_retries: u32,
    pub(crate) callback_retry_delay: Duration,
    pub(crate) callback_duplicates: bool,
    pub(crate) epoch_ms: Option<i64>,
    pub(crate) api_port: u16,
    pub(crate) files_port: u16,
    pub(crate) uploads_port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            time_scale: 0.01,
            seed: 0,
            faults: FaultPlan::new(),
            shape: Shape::Modern,
            callbacks: true,
            hmac_key: None,
            mirror_http_status: false,
            initial_credits: 100_000,
            credits: Vec::new(),
            refund_failed: false,
            durations: Durations::default(),
            prices: Prices::default(),
            rate_limit: Some(RateLimit::default()),
            retention: Duration::from_secs(14 * 24 * 3600),
            result_url_ttl: Duration::from_secs(24 * 3600),
            result_bytes: None,
            download_url_ttl: Duration::from_secs(20 * 60),
            callback_timeout: Duration::from_secs(15),
            callback_retries: 3,
            callback_retry_delay: Duration::from_secs(30),
            callback_duplicates: false,
            epoch_ms: None,
            api_port: 0,
            files_port: 0,
            uploads_port: 0,
        }
    }
}

impl Config {
    /// Refuses settings that cannot describe a working sandbox, naming the builder setting: a
    /// non-finite or negative time scale (0 is allowed: it freezes the clock), an empty rate
    /// window, negative credits, and zero timeouts or lifetimes.
    pub(crate) fn check(&self) -> Result<(), String> {
        let scale = self.time_scale;
        if !scale.is_finite() || scale < 0.0 {
            return Err(format!(
                "time_scale must be a finite number, 0 or more (0 freezes the clock); got {scale}"
            ));
        }
        if let Some(limit) = self.rate_limit {
            if limit.max == 0 || limit.window.is_zero() {
                return Err(format!(
                    "rate_limit must allow at least 1 request in a window longer than 0 \
                     (None turns it off); got {} per {:?}",
                    limit.max, limit.window
                ));
            }
        }
        if self.initial_credits < 0 {
            return Err(format!(
                "initial_credits must not be negative; got {}",
                self.initial_credits
            ));
        }
        if let Some((_, credits)) = self.credits.iter().find(|(_, c)| *c < 0) {
            return Err(format!("credits must not be negative; got {credits}"));
        }
        for (name, value) in [
            ("callback_timeout", self.callback_timeout),
            ("retention", self.retention),
            ("result_url_ttl", self.result_url_ttl),
            ("download_url_ttl", self.download_url_ttl),
        ] {
            if value.is_zero() {
                return Err(format!("{name} must be longer than 0"));
            }
        }
        Ok(())
    }
}

/// `--time-scale`: a finite number above 0 (0 would stop the clock of a server nobody can
/// advance by hand, and leave every task generating forever).
pub(crate) fn parse_time_scale(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
        Ok(_) => {
            Err("must be a finite number above 0, e.g. 1 (real time) or 0.01 (100x faster)".into())
        }
        Err(_) => Err("must be a number, e.g. 1 or 0.01".into()),
    }
}

/// `--credits`: a whole number, 0 or more.
pub(crate) fn parse_credits(s: &str) -> Result<i64, String> {
    match s.trim().parse::<i64>() {
        Ok(credits) if credits >= 0 => Ok(credits),
        _ => Err("must be a whole number, 0 or more".into()),
    }
}

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The sandbox's service clock: real elapsed time divided by the time scale, plus manual
/// advances, on top of an epoch. A time scale of 0 freezes it: only [`Clock::advance`] moves it.
#[derive(Debug)]
pub(crate) struct Clock {
    start: Instant,
    epoch_ms: i64,
    /// Service milliseconds per real millisecond (1 / time scale; 0 when frozen).
    rate: f64,
    offset_ms: AtomicI64,
}

impl Clock {
    pub(crate) fn new(time_scale: f64, epoch_ms: Option<i64>) -> Self {
        let epoch_ms = epoch_ms.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        });
        let rate = if time_scale > 0.0 {
            1.0 / time_scale
        } else {
            0.0
        };
        Self {
            start: Instant::now(),
            epoch_ms,
            rate,
            offset_ms: AtomicI64::new(0),
        }
    }

    /// Service time now, epoch milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        // Float-to-int casts saturate, and so do the additions: absurd scales cannot panic.
        let elapsed = (self.start.elapsed().as_secs_f64() * 1000.0 * self.rate) as i64;
        self.epoch_ms
            .saturating_add(elapsed)
            .saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn advance(&self, by: Duration) {
        let by = ms(by);
        let _ = self
            .offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(by))
            });
    }

    /// Real time until service time has moved by `service_ms`; `None` when the clock is frozen.
    pub(crate) fn real_delay(&self, service_ms: i64) -> Option<Duration> {
        if self.rate == 0.0 {
            return None;
        }
        let secs = service_ms.max(0) as f64 / self.rate / 1000.0;
        // A vanishing rate (a huge time scale) would overflow: a year is "never" here.
        Some(Duration::try_from_secs_f64(secs).map_or(YEAR, |d| d.min(YEAR)))
    }
}

/// Milliseconds of a duration as i64, saturating.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Formats epoch milliseconds as ISO-8601 UTC (`2025-07-01T10:30:00Z`), for the legacy shape.
pub(crate) fn iso8601(epoch_ms: i64) -> String {
    let secs = epoch_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_767_225_600_000), "2026-01-01T00:00:00Z");
        assert_eq!(iso8601(1_751_365_800_000), "2025-07-01T10:30:00Z");
    }

    #[test]
    fn rate_limits_parse_with_units_and_refuse_nonsense() {
        let parse = |s: &str| s.parse::<RateLimit>();
        let limit = |max, ms| RateLimit {
            max,
            window: Duration::from_millis(ms),
        };
        assert_eq!(parse("20/10s"), Ok(limit(20, 10_000)));
        assert_eq!(parse(" 5 / 500ms "), Ok(limit(5, 500)));
        assert_eq!(parse("1/1.5m"), Ok(limit(1, 90_000)));
        assert_eq!(parse("100/1h"), Ok(limit(100, 3_600_000)));
        for bad in [
            "", "20", "20/", "/10s", "0/10s", "-1/10s", "20/10", "20/0s", "20/-1s", "20/NaNs",
            "20/infs", "20/10d", "x/10s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(parse(&limit(7, 2500).to_string()), Ok(limit(7, 2500)));
    }

    #[test]
    fn frozen_clock_moves_only_when_advanced() {
        let clock = Clock::new(0.0, Some(1000));
        assert_eq!(clock.now_ms(), 1000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3000);
        assert_eq!(clock.real_delay(5), None);
    }

    #[test]
    fn absurd_scales_and_advances_do_not_panic() {
        let slow = Clock::new(1e300, Some(0));
        assert!(slow.real_delay(i64::MAX).is_some());
        let fast = Clock::new(1e-300, Some(i64::MAX - 1));
        fast.advance(Duration::MAX);
        assert_eq!(fast.now_ms(), i64::MAX);
    }
}
