//! Client settings both clients share: where the API is, where the key comes from, the stages
//! a wait can be in with their schedules, and the per-call [`WaitOptions`].
//!
//! The async and the blocking client expose the same builder and the same flows; what those
//! mean is decided here once, so the two cannot drift apart: the builder's settings, defaults
//! and precedence ([`ClientSettings::resolve`] into a [`ClientConfig`]), which schedule a wait
//! follows and whether the host allows it ([`WaitSchedules::schedule`], over
//! [`Schedules::choose`] and [`check_poll_interval`]), and which base URLs are acceptable.

use std::time::Duration;

use veo3_types::Model;

use crate::{Error, PollSchedule};

mod client;

pub use client::{
    ClientConfig, ClientSettings, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DOWNLOAD_IDLE_TIMEOUT,
    DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_RESPONSE_BYTES, MIN_RESPONSE_BYTES,
};

/// The API base URL of kie.ai.
pub const DEFAULT_BASE_URL: &str = "https://api.kie.ai";

/// The environment variable holding the API key.
pub const API_KEY_ENV: &str = "KIE_API_KEY";

/// The environment variable that overrides the base URL (e.g. a local sandbox).
pub const BASE_URL_ENV: &str = "KIE_BASE_URL";

/// kie's file-upload host (reference section 3.8): uploads go here, with the same key.
pub const DEFAULT_UPLOAD_BASE_URL: &str = "https://kieai.redpandaai.co";

/// The environment variable that overrides the upload base URL (empty means unset).
pub const UPLOAD_BASE_URL_ENV: &str = "KIE_UPLOAD_BASE_URL";

/// The upload base URL when none is configured: kie's upload host when the API is kie's own
/// ([`DEFAULT_BASE_URL`]), else the API base URL itself, since a proxy or emulator that
/// stands in for the API serves the upload routes too (their paths do not collide).
///
/// ```
/// use veo3_core::settings::default_upload_base_url;
/// assert_eq!(default_upload_base_url("https://api.kie.ai"), "https://kieai.redpandaai.co");
/// assert_eq!(default_upload_base_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
/// ```
pub fn default_upload_base_url(api_base_url: &str) -> String {
    if api_base_url.trim_end_matches('/') == DEFAULT_BASE_URL {
        DEFAULT_UPLOAD_BASE_URL.to_owned()
    } else {
        api_base_url.to_owned()
    }
}

/// The shortest interval between the polls of a wait against any host but loopback.
///
/// A status read costs the account a share of its rate limit and tells nothing new sooner
/// than the task's own progress, which is measured in tens of seconds; an interval of a few
/// nanoseconds once sent 760 record-info requests per second. Loopback hosts (a local
/// sandbox) have no such floor, so tests can poll every few milliseconds.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The polling floor for the API at `base_url`: [`MIN_POLL_INTERVAL`], or zero when its host
/// is loopback (`localhost`, `127.0.0.0/8`, `::1`).
///
/// ```
/// use std::time::Duration;
/// use veo3_core::settings::{MIN_POLL_INTERVAL, poll_floor};
/// assert_eq!(poll_floor("https://api.kie.ai"), MIN_POLL_INTERVAL);
/// assert_eq!(poll_floor("http://127.0.0.1:8080"), Duration::ZERO);
/// assert_eq!(poll_floor("http://[::1]:8080/prefix"), Duration::ZERO);
/// ```
pub fn poll_floor(base_url: &str) -> Duration {
    if is_loopback(base_url) {
        Duration::ZERO
    } else {
        MIN_POLL_INTERVAL
    }
}

/// Checks a wait's `schedule` against the polling floor of `base_url` ([`poll_floor`]): an
/// interval between polls below it is refused with the reason, before anything is sent. Both
/// clients check every wait's schedule (the stage's, with the call's [`WaitOptions`] applied)
/// before its first request, and a submit-and-wait flow before it submits.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::PollSchedule;
/// use veo3_core::settings::{WaitOptions, check_poll_interval};
///
/// let fast = WaitOptions::default().poll_interval(Duration::from_nanos(1));
/// let schedule = fast.apply(PollSchedule::generation());
/// assert!(check_poll_interval(&schedule, "https://api.kie.ai").is_err());
/// assert!(check_poll_interval(&schedule, "http://localhost:8080").is_ok());
/// ```
pub fn check_poll_interval(schedule: &PollSchedule, base_url: &str) -> Result<(), Error> {
    let floor = poll_floor(base_url);
    let interval = schedule.interval.min(schedule.max_interval);
    if interval >= floor {
        return Ok(());
    }
    Err(Error::invalid_input(format!(
        "the poll interval {interval:?} is below the minimum of {floor:?} for {base_url}: \
         faster polling only spends the account's rate limit (only a loopback host, such as \
         a local sandbox, may be polled faster)"
    )))
}

/// Whether the host of `base_url` is loopback.
fn is_loopback(base_url: &str) -> bool {
    let Some((_, rest)) = base_url.trim().split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A kind of wait, each with its own default [`PollSchedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// A generation task: [`PollSchedule::for_model`] of the request's model when it is known,
    /// [`PollSchedule::generation`] otherwise.
    Generation,
    /// An extension task ([`PollSchedule::extension`]).
    Extension,
    /// A 1080p version ([`PollSchedule::hd_1080p`]).
    Hd1080p,
    /// A 4K version ([`PollSchedule::upgrade_4k`]).
    Upgrade4k,
}

/// How a wait learns that its task finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitMode {
    /// Polling only, on the stage's schedule.
    Polling,
    /// A hybrid wait: a callback ends it early, and polling is kept as a rare safety net
    /// ([`PollSchedule::safety_net`] of the stage's schedule).
    Hybrid,
}

/// A client's schedule per stage: the core's presets unless the builder set one.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::PollSchedule;
/// use veo3_core::settings::{Schedules, Stage};
/// use veo3_types::Model;
///
/// let mut schedules = Schedules::default();
/// assert_eq!(schedules.get(Stage::Hd1080p), PollSchedule::hd_1080p());
/// assert_eq!(schedules.for_model(&Model::Veo3), PollSchedule::for_model(&Model::Veo3));
/// let fast = PollSchedule::new(Duration::from_secs(1), Duration::from_secs(1), Duration::from_secs(60));
/// schedules.set(Stage::Generation, fast.clone());
/// assert_eq!(schedules.for_model(&Model::Veo3), fast, "a configured schedule wins");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedules {
    generation: Option<PollSchedule>,
    extension: Option<PollSchedule>,
    hd_1080p: Option<PollSchedule>,
    upgrade_4k: Option<PollSchedule>,
}

impl Schedules {
    /// Uses `schedule` for every wait of `stage`.
    pub fn set(&mut self, stage: Stage, schedule: PollSchedule) {
        *self.slot(stage) = Some(schedule);
    }

    /// Uses `schedule` for every stage.
    pub fn set_all(&mut self, schedule: PollSchedule) {
        for stage in [
            Stage::Generation,
            Stage::Extension,
            Stage::Hd1080p,
            Stage::Upgrade4k,
        ] {
            self.set(stage, schedule.clone());
        }
    }

    /// The schedule of `stage`.
    pub fn get(&self, stage: Stage) -> PollSchedule {
        let configured = match stage {
            Stage::Generation => &self.generation,
            Stage::Extension => &self.extension,
            Stage::Hd1080p => &self.hd_1080p,
            Stage::Upgrade4k => &self.upgrade_4k,
        };
        configured.clone().unwrap_or_else(|| match stage {
            Stage::Generation => PollSchedule::generation(),
            Stage::Extension => PollSchedule::extension(),
            Stage::Hd1080p => PollSchedule::hd_1080p(),
            Stage::Upgrade4k => PollSchedule::upgrade_4k(),
        })
    }

    /// The generation schedule for a request with `model`: the configured one, or the preset
    /// that suits the model (Quality takes longer than Fast).
    pub fn for_model(&self, model: &Model) -> PollSchedule {
        self.generation
            .clone()
            .unwrap_or_else(|| PollSchedule::for_model(model))
    }

    /// The schedule a wait follows: the one place both clients choose it, for every flow.
    ///
    /// The base is the stage's schedule; for a generation whose `model` is known, the preset
    /// that suits the model unless a generation schedule was configured. A hybrid wait makes
    /// the base its safety net, and `options` apply last.
    ///
    /// ```
    /// use std::time::Duration;
    /// use veo3_core::PollSchedule;
    /// use veo3_core::settings::{Schedules, Stage, WaitMode, WaitOptions};
    /// use veo3_types::Model;
    ///
    /// let schedules = Schedules::default();
    /// let quality = schedules.choose(Stage::Generation, Some(&Model::Veo3), &WaitOptions::default(), WaitMode::Hybrid);
    /// assert_eq!(quality, PollSchedule::for_model(&Model::Veo3).safety_net());
    /// let options = WaitOptions::default().timeout(Duration::from_secs(60));
    /// let hd = schedules.choose(Stage::Hd1080p, None, &options, WaitMode::Polling);
    /// assert_eq!(hd, PollSchedule::hd_1080p().with_deadline(Duration::from_secs(60)));
    /// ```
    pub fn choose(
        &self,
        stage: Stage,
        model: Option<&Model>,
        options: &WaitOptions,
        mode: WaitMode,
    ) -> PollSchedule {
        let base = match (stage, model) {
            (Stage::Generation, Some(model)) => self.for_model(model),
            _ => self.get(stage),
        };
        let base = match mode {
            WaitMode::Polling => base,
            WaitMode::Hybrid => base.safety_net(),
        };
        options.apply(base)
    }

    fn slot(&mut self, stage: Stage) -> &mut Option<PollSchedule> {
        match stage {
            Stage::Generation => &mut self.generation,
            Stage::Extension => &mut self.extension,
            Stage::Hd1080p => &mut self.hd_1080p,
            Stage::Upgrade4k => &mut self.upgrade_4k,
        }
    }
}

/// A client's schedules with the polling floor of its API host: the one call both clients
/// make for every wait's schedule ([`WaitSchedules::schedule`]), so neither chooses nor
/// checks a schedule itself. Built by [`ClientConfig::wait_schedules`].
///
/// ```
/// use std::time::Duration;
/// use veo3_core::PollSchedule;
/// use veo3_core::settings::{Schedules, Stage, WaitMode, WaitOptions, WaitSchedules};
///
/// let remote = WaitSchedules::new(Schedules::default(), "https://api.kie.ai");
/// let options = WaitOptions::default().timeout(Duration::from_secs(60));
/// let hd = remote.schedule(Stage::Hd1080p, None, &options, WaitMode::Polling)?;
/// assert_eq!(hd, PollSchedule::hd_1080p().with_deadline(Duration::from_secs(60)));
/// let hasty = WaitOptions::default().poll_interval(Duration::from_millis(10));
/// assert!(remote.schedule(Stage::Generation, None, &hasty, WaitMode::Polling).is_err());
/// let sandbox = WaitSchedules::new(Schedules::default(), "http://127.0.0.1:8080");
/// assert!(sandbox.schedule(Stage::Generation, None, &hasty, WaitMode::Hybrid).is_ok());
/// # Ok::<(), veo3_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct WaitSchedules {
    schedules: Schedules,
    base_url: String,
}

impl WaitSchedules {
    /// `schedules` for a client of the API at `base_url`.
    pub fn new(schedules: Schedules, base_url: impl Into<String>) -> Self {
        Self {
            schedules,
            base_url: base_url.into(),
        }
    }

    /// The schedule of a wait: [`Schedules::choose`], refused by [`check_poll_interval`] for
    /// the client's host when it polls faster than the floor. Both clients call this before
    /// anything of the wait (or of the submission before it) is sent.
    pub fn schedule(
        &self,
        stage: Stage,
        model: Option<&Model>,
        options: &WaitOptions,
        mode: WaitMode,
    ) -> Result<PollSchedule, Error> {
        let schedule = self.schedules.choose(stage, model, options, mode);
        check_poll_interval(&schedule, &self.base_url)?;
        Ok(schedule)
    }

    /// The schedule of `stage` before any [`WaitOptions`] apply ([`Schedules::get`]).
    pub fn get(&self, stage: Stage) -> PollSchedule {
        self.schedules.get(stage)
    }
}

/// Per-call tuning of a wait. `Default` keeps the client's schedule for the stage; each field
/// set overrides one part of it.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::PollSchedule;
/// use veo3_core::settings::WaitOptions;
///
/// // Poll every 10 s from the start, give up after 15 minutes.
/// let wait = WaitOptions::default()
///     .poll_interval(Duration::from_secs(10))
///     .first_delay(Duration::from_secs(10))
///     .timeout(Duration::from_secs(15 * 60));
/// let schedule = wait.apply(PollSchedule::generation());
/// assert_eq!(schedule.first_delay, Duration::from_secs(10));
/// assert_eq!(schedule.deadline, Duration::from_secs(900));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct WaitOptions {
    /// A constant interval between polls (no growth).
    pub poll_interval: Option<Duration>,
    /// The delay before the first poll.
    pub first_delay: Option<Duration>,
    /// The wait's deadline, after which it ends with [`Error::WaitTimeout`] (the task may still
    /// finish: wait for it again).
    pub timeout: Option<Duration>,
    /// A whole schedule, replacing the stage's (the fields above still apply on top of it).
    pub schedule: Option<PollSchedule>,
    /// How long before the wait starts the task was created ([`PollSchedule::task_age`]).
    pub created_ago: Option<Duration>,
    /// The "record is null" grace window ([`PollSchedule::record_null_grace`]).
    pub record_null_grace: Option<Duration>,
}

impl WaitOptions {
    /// Sets [`WaitOptions::poll_interval`].
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// Sets [`WaitOptions::first_delay`].
    pub fn first_delay(mut self, delay: Duration) -> Self {
        self.first_delay = Some(delay);
        self
    }

    /// Sets [`WaitOptions::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`WaitOptions::schedule`].
    pub fn schedule(mut self, schedule: PollSchedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// The task was created `age` before this wait starts (a journal knows it from its
    /// times): a wait for an existing task then treats 422 "record is null" as "not visible
    /// yet" until the task is [`record_null_grace`](Self::record_null_grace) old. Without it
    /// such a wait ends on that answer; a wait after this client's own submission needs
    /// nothing (the task's age counts from the submit's answer).
    ///
    /// ```
    /// use std::time::Duration;
    /// use veo3_core::PollSchedule;
    /// use veo3_core::settings::WaitOptions;
    ///
    /// let resumed = WaitOptions::default().created_ago(Duration::from_secs(20));
    /// let schedule = resumed.apply(PollSchedule::generation());
    /// assert_eq!(schedule.task_age, Some(Duration::from_secs(20)));
    /// assert_eq!(schedule.record_null_grace, Duration::from_secs(90));
    /// ```
    pub fn created_ago(mut self, age: Duration) -> Self {
        self.created_ago = Some(age);
        self
    }

    /// Sets the window after a task's creation in which 422 "record is null" means "not
    /// visible yet" (default 90 s; `Duration::ZERO` turns the grace off).
    pub fn record_null_grace(mut self, grace: Duration) -> Self {
        self.record_null_grace = Some(grace);
        self
    }

    /// The schedule these options make of `base`.
    pub fn apply(&self, base: PollSchedule) -> PollSchedule {
        let mut schedule = self.schedule.clone().unwrap_or(base);
        if let Some(interval) = self.poll_interval {
            schedule = schedule.with_interval(interval).with_growth(1.0, interval);
        }
        if let Some(delay) = self.first_delay {
            schedule = schedule.with_first_delay(delay);
        }
        if let Some(timeout) = self.timeout {
            schedule = schedule.with_deadline(timeout);
        }
        if let Some(age) = self.created_ago {
            schedule = schedule.with_task_age(age);
        }
        if let Some(grace) = self.record_null_grace {
            schedule = schedule.with_record_null_grace(grace);
        }
        schedule
    }
}

/// Checks a base URL (`scheme://host[:port][/prefix]`, http or https, no credentials, query or
/// fragment) and drops trailing slashes. Only this URL's origin ever receives the API key.
///
/// ```
/// use veo3_core::settings::normalize_base_url;
/// assert_eq!(normalize_base_url(" https://api.kie.ai/ ").unwrap(), "https://api.kie.ai");
/// assert!(normalize_base_url("https://user:pw@api.kie.ai").is_err());
/// ```
pub fn normalize_base_url(url: &str) -> Result<String, Error> {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::invalid_input("the base URL must start with http:// or https://"))?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(Error::invalid_input(format!(
            "the base URL must use http or https, not {scheme:?}"
        )));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return Err(Error::invalid_input("the base URL has no host"));
    }
    if authority.contains('@') {
        return Err(Error::invalid_input(
            "the base URL must not contain credentials; pass the API key to the builder",
        ));
    }
    if url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
        return Err(Error::invalid_input(
            "the base URL must be scheme://host[:port][/prefix], without query, fragment or spaces",
        ));
    }
    Ok(url.to_owned())
}

/// The key and base URLs found in the environment ([`API_KEY_ENV`], [`BASE_URL_ENV`],
/// [`UPLOAD_BASE_URL_ENV`]).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnvSettings {
    /// The API key, when set and not empty.
    pub api_key: Option<String>,
    /// The base URL, when set and not empty.
    pub base_url: Option<String>,
    /// The upload base URL, when set and not empty.
    pub upload_base_url: Option<String>,
    /// A variable that is set but unusable, described without its value.
    pub problem: Option<String>,
}

impl EnvSettings {
    /// Reads the process environment.
    pub fn read() -> Self {
        Self::from_lookup(|name| std::env::var(name))
    }

    /// Reads through `lookup` (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Result<String, std::env::VarError>) -> Self {
        let mut settings = Self::default();
        match lookup(API_KEY_ENV) {
            Ok(key) if !key.trim().is_empty() => settings.api_key = Some(key),
            Ok(_) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                settings.problem = Some(format!("{API_KEY_ENV} is not valid UTF-8"));
            }
            Err(std::env::VarError::NotPresent) => {}
        }
        match lookup(BASE_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => settings.base_url = Some(url.trim().to_owned()),
            Ok(_) | Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                settings.problem = Some(format!("{BASE_URL_ENV} is not valid UTF-8"));
            }
        }
        match lookup(UPLOAD_BASE_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => {
                settings.upload_base_url = Some(url.trim().to_owned());
            }
            Ok(_) | Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                settings.problem = Some(format!("{UPLOAD_BASE_URL_ENV} is not valid UTF-8"));
            }
        }
        settings
    }
}

impl std::fmt::Debug for EnvSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSettings")
            .field("api_key", &self.api_key.as_ref().map(|_| crate::REDACTED))
            .field("base_url", &self.base_url)
            .field("upload_base_url", &self.upload_base_url)
            .field("problem", &self.problem)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_normalised() {
        assert_eq!(
            normalize_base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_base_url(" https://api.kie.ai/prefix/ ").unwrap(),
            "https://api.kie.ai/prefix"
        );
        for bad in [
            "api.kie.ai",
            "ftp://api.kie.ai",
            "https://user:pw@api.kie.ai",
            "https://api.kie.ai/?x=1",
            "https://api.kie.ai/#x",
            "https://",
            "https:///x",
            "https://:80",
            "https://a b",
            "",
        ] {
            assert!(normalize_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wait_options_override_parts_of_the_schedule() {
        let base = PollSchedule::generation();
        assert_eq!(WaitOptions::default().apply(base.clone()), base);
        let schedule = WaitOptions::default()
            .poll_interval(Duration::from_secs(5))
            .first_delay(Duration::from_secs(1))
            .timeout(Duration::from_secs(60))
            .apply(base);
        assert_eq!(schedule.first_delay, Duration::from_secs(1));
        assert_eq!(schedule.delay(5, 0), Duration::from_secs(5));
        assert_eq!(schedule.deadline, Duration::from_secs(60));
    }

    #[test]
    fn the_polling_floor_refuses_fast_intervals_except_on_loopback() {
        let schedule = |interval| {
            WaitOptions::default()
                .poll_interval(interval)
                .apply(PollSchedule::generation())
        };
        for remote in [
            "https://api.kie.ai",
            "http://10.0.0.1:80",
            "http://127.0.0.1.example.com",
        ] {
            let error = check_poll_interval(&schedule(Duration::from_nanos(1)), remote)
                .expect_err("below the floor");
            let text = error.to_string();
            assert!(
                text.contains("poll interval 1ns") && text.contains("minimum of 1s"),
                "{text}"
            );
            assert!(check_poll_interval(&schedule(Duration::from_secs(1)), remote).is_ok());
            assert!(check_poll_interval(&PollSchedule::generation(), remote).is_ok());
        }
        for local in [
            "http://127.0.0.1:9",
            "http://LOCALHOST:8080/x",
            "http://[::1]:1",
            "http://127.3.2.1",
        ] {
            assert!(
                check_poll_interval(&schedule(Duration::from_nanos(1)), local).is_ok(),
                "{local}"
            );
        }
    }

    #[test]
    fn schedules_default_to_the_stage_presets() {
        let schedules = Schedules::default();
        assert_eq!(schedules.get(Stage::Generation), PollSchedule::generation());
        assert_eq!(schedules.get(Stage::Extension), PollSchedule::extension());
        assert_eq!(schedules.get(Stage::Upgrade4k), PollSchedule::upgrade_4k());
    }

    #[test]
    fn the_schedule_choice_follows_stage_model_mode_and_options() {
        let mut schedules = Schedules::default();
        let none = WaitOptions::default();
        let quality = Some(&Model::Veo3);
        let hybrid = |stage, model| schedules.choose(stage, model, &none, WaitMode::Hybrid);
        assert_eq!(
            hybrid(Stage::Generation, quality),
            PollSchedule::for_model(&Model::Veo3).safety_net()
        );
        assert_eq!(
            hybrid(Stage::Extension, None),
            PollSchedule::extension().safety_net()
        );
        assert_eq!(
            schedules.choose(
                Stage::Generation,
                Some(&Model::Veo3Fast),
                &none,
                WaitMode::Polling
            ),
            PollSchedule::generation()
        );
        // The model only picks among presets: a configured generation schedule wins, and the
        // model of a generation never changes another stage's schedule.
        let fast = PollSchedule::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(9),
        );
        schedules.set(Stage::Generation, fast.clone());
        let options = WaitOptions::default().timeout(Duration::from_secs(5));
        assert_eq!(
            schedules.choose(Stage::Generation, quality, &options, WaitMode::Hybrid),
            fast.safety_net().with_deadline(Duration::from_secs(5))
        );
        assert_eq!(
            schedules.choose(Stage::Upgrade4k, quality, &none, WaitMode::Polling),
            PollSchedule::upgrade_4k()
        );
    }

    #[test]
    fn the_environment_is_read_without_leaking_the_key() {
        let settings = EnvSettings::from_lookup(|name| match name {
            API_KEY_ENV => Ok("sk-secret".into()),
            BASE_URL_ENV => Ok("  ".into()),
            _ => Err(std::env::VarError::NotPresent),
        });
        assert_eq!(settings.api_key.as_deref(), Some("sk-secret"));
        assert_eq!(settings.base_url, None, "an empty override is ignored");
        assert!(!format!("{settings:?}").contains("sk-secret"));
    }
}
