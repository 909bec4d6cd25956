//! What a client's builder means, decided once: [`ClientSettings`] records what the caller set
//! (each setter of both clients' `ClientBuilder`s writes one field and decides nothing), and
//! [`ClientSettings::resolve`] turns it into the [`ClientConfig`] a client is built from,
//! applying every default and precedence rule in one place.
//!
//! The rules, so that the order of the setters never matters:
//! - An explicit `api_key` or `base_url` wins over the environment ([`ClientSettings::from_env`]),
//!   which wins over the default; an empty variable counts as unset.
//! - `attempt_timeout` and `timeout` override the matching fields of the retry policy, whether
//!   they are set before or after `retry_policy`.
//! - `max_response_bytes` is at least [`MIN_RESPONSE_BYTES`], so an error answer can always
//!   be read.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{
    API_KEY_ENV, DEFAULT_BASE_URL, EnvSettings, Schedules, Stage, UPLOAD_BASE_URL_ENV,
    WaitSchedules, default_upload_base_url, normalize_base_url,
};
use crate::download::DownloadPolicy;
use crate::{ApiKey, Error, Observer, PollSchedule, RequestLimit, RetryBudget, RetryPolicy};

/// The default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default limit on the size of an API answer read into memory (API answers are a few
/// kilobytes; this bounds memory when a proxy or a broken server sends something else). It is
/// more than twice [`veo3_types::MAX_ECHO_BYTES`], the most an answer can spend echoing a
/// request the SDK accepts (prompts are capped at [`veo3_types::MAX_PROMPT_CHARS`]); a limit
/// set below that may refuse the status answers of a task with a very long prompt.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The smallest limit on an API answer a client accepts: a smaller setting is raised to it,
/// so that an ordinary error answer is always read whole.
pub const MIN_RESPONSE_BYTES: usize = 1024;

/// The default cap on a client's concurrent HTTP exchanges (API calls and downloads together).
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 32;

/// The default time a download may go without receiving a byte before the transfer counts as
/// cut (and is resumed).
pub const DEFAULT_DOWNLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a caller set on a client's builder, before defaults and precedence apply.
///
/// Both clients' builders hold one of these and only record into it; they build from
/// [`ClientSettings::resolve`]. Its `Debug` never shows the key.
#[derive(Clone, Default)]
#[must_use]
pub struct ClientSettings {
    api_key: Option<String>,
    base_url: Option<String>,
    upload_base_url: Option<String>,
    environment: Option<EnvSettings>,
    connect_timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    timeout: Option<Duration>,
    user_agent: Option<String>,
    retry_policy: Option<RetryPolicy>,
    retry_budget: Option<Arc<RetryBudget>>,
    schedules: Schedules,
    download_policy: Option<DownloadPolicy>,
    download_idle_timeout: Option<Option<Duration>>,
    max_response_bytes: Option<usize>,
    max_concurrent_requests: Option<usize>,
    observer: Option<Observer>,
}

/// A client's settings, resolved: every default applied and every precedence rule decided.
///
/// Two builders given the same settings, in any order, resolve to equal configs (a test in
/// `tests/it/drivers.rs` checks it for the async and the blocking builder). Its `Debug` never
/// shows the key.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The API key.
    pub api_key: ApiKey,
    /// The API base URL, checked, without a trailing slash.
    pub base_url: String,
    /// The upload host's base URL, checked, without a trailing slash: the builder's, else
    /// `KIE_UPLOAD_BASE_URL`, else [`default_upload_base_url`] of the API base URL. Uploads
    /// carry the key there; no other host but the API gets it.
    pub upload_base_url: String,
    /// The caller's `User-Agent` (checked to fit in a header); `None`: the client's own name
    /// and version.
    pub user_agent: Option<String>,
    /// Time to establish a connection (for an HTTP client the client creates itself).
    pub connect_timeout: Duration,
    /// How API calls are retried, with the builder's `attempt_timeout` and `timeout` applied.
    pub retry_policy: RetryPolicy,
    /// A budget shared with other clients, when the caller gave one; `None`: a fresh one.
    pub retry_budget: Option<Arc<RetryBudget>>,
    /// The poll schedule per stage.
    pub schedules: Schedules,
    /// How downloads resume and refresh links.
    pub download_policy: DownloadPolicy,
    /// How long a download may receive nothing before the transfer counts as cut.
    pub download_idle_timeout: Option<Duration>,
    /// The largest API answer read into memory (at least [`MIN_RESPONSE_BYTES`]).
    pub max_response_bytes: usize,
    /// The most HTTP exchanges (API calls and downloads together) in flight at once; also
    /// the most connections the client keeps open to one host.
    pub max_concurrent_requests: usize,
    /// Where events go.
    pub observer: Observer,
}

impl PartialEq for ClientConfig {
    /// Equal settings; the budget and the observer are equal when they are the same one.
    fn eq(&self, other: &Self) -> bool {
        let same_budget = match (&self.retry_budget, &other.retry_budget) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        self.api_key == other.api_key
            && self.base_url == other.base_url
            && self.upload_base_url == other.upload_base_url
            && self.user_agent == other.user_agent
            && self.connect_timeout == other.connect_timeout
            && self.retry_policy == other.retry_policy
            && same_budget
            && self.schedules == other.schedules
            && self.download_policy == other.download_policy
            && self.download_idle_timeout == other.download_idle_timeout
            && self.max_response_bytes == other.max_response_bytes
            && self.max_concurrent_requests == other.max_concurrent_requests
            && self.observer == other.observer
    }
}

impl ClientSettings {
    /// The API key (required, here or in the environment). Surrounding whitespace is trimmed.
    pub fn api_key(&mut self, key: impl Into<String>) -> &mut Self {
        self.api_key = Some(key.into());
        self
    }

    /// The API base URL (default [`DEFAULT_BASE_URL`]).
    pub fn base_url(&mut self, url: impl Into<String>) -> &mut Self {
        self.base_url = Some(url.into());
        self
    }

    /// The upload host's base URL (default: kie's upload host for kie's API, else the API
    /// base URL; see [`default_upload_base_url`]).
    pub fn upload_base_url(&mut self, url: impl Into<String>) -> &mut Self {
        self.upload_base_url = Some(url.into());
        self
    }

    /// Reads `KIE_API_KEY`, `KIE_BASE_URL` and `KIE_UPLOAD_BASE_URL` from the process
    /// environment, for use where the builder sets no key or base URL of its own.
    pub fn from_env(&mut self) -> &mut Self {
        self.environment(EnvSettings::read())
    }

    /// [`ClientSettings::from_env`] with settings read elsewhere (tests).
    pub fn environment(&mut self, environment: EnvSettings) -> &mut Self {
        self.environment = Some(environment);
        self
    }

    /// Time to establish a connection (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Time limit of one attempt of an API call; overrides the retry policy's.
    pub fn attempt_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Time limit of a whole API call, retries included; overrides the retry policy's
    /// deadline.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = Some(timeout);
        self
    }

    /// The `User-Agent` of API requests.
    pub fn user_agent(&mut self, agent: impl Into<String>) -> &mut Self {
        self.user_agent = Some(agent.into());
        self
    }

    /// How API calls are retried (default [`RetryPolicy::default`]).
    pub fn retry_policy(&mut self, policy: RetryPolicy) -> &mut Self {
        self.retry_policy = Some(policy);
        self
    }

    /// A retry budget shared with other clients.
    pub fn retry_budget(&mut self, budget: Arc<RetryBudget>) -> &mut Self {
        self.retry_budget = Some(budget);
        self
    }

    /// The poll schedule of `stage`.
    pub fn poll_schedule(&mut self, stage: Stage, schedule: PollSchedule) -> &mut Self {
        self.schedules.set(stage, schedule);
        self
    }

    /// The same poll schedule for every stage.
    pub fn poll_schedules(&mut self, schedule: PollSchedule) -> &mut Self {
        self.schedules.set_all(schedule);
        self
    }

    /// How downloads resume and refresh links (default [`DownloadPolicy::default`]).
    pub fn download_policy(&mut self, policy: DownloadPolicy) -> &mut Self {
        self.download_policy = Some(policy);
        self
    }

    /// How long a download may receive nothing (default [`DEFAULT_DOWNLOAD_IDLE_TIMEOUT`];
    /// `None`: no limit).
    pub fn download_idle_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.download_idle_timeout = Some(timeout);
        self
    }

    /// The largest API answer read into memory (default [`DEFAULT_MAX_RESPONSE_BYTES`], at
    /// least [`MIN_RESPONSE_BYTES`]).
    pub fn max_response_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_response_bytes = Some(bytes);
        self
    }

    /// The most HTTP exchanges in flight at once (default
    /// [`DEFAULT_MAX_CONCURRENT_REQUESTS`]; at least 1).
    pub fn max_concurrent_requests(&mut self, max: usize) -> &mut Self {
        self.max_concurrent_requests = Some(max);
        self
    }

    /// Where events go.
    pub fn observer(&mut self, observer: Observer) -> &mut Self {
        self.observer = Some(observer);
        self
    }

    /// Applies the defaults and precedence rules (see the module docs). Fails, naming the
    /// problem and never the key, without a usable key, with an unusable base URL or user
    /// agent, or when a variable read by [`ClientSettings::from_env`] is unusable.
    pub fn resolve(&self) -> Result<ClientConfig, Error> {
        let environment = self.environment.clone().unwrap_or_default();
        if let Some(problem) = environment.problem {
            return Err(Error::invalid_input(problem));
        }
        let api_key = match self.api_key.clone().or(environment.api_key) {
            Some(key) => ApiKey::new(key)?,
            None => {
                return Err(Error::invalid_input(format!(
                    "no API key: pass one to the builder or set {API_KEY_ENV}"
                )));
            }
        };
        let base_url = normalize_base_url(
            self.base_url
                .as_deref()
                .or(environment.base_url.as_deref())
                .unwrap_or(DEFAULT_BASE_URL),
        )?;
        let upload_base_url = match self
            .upload_base_url
            .as_deref()
            .or(environment.upload_base_url.as_deref())
        {
            Some(url) => normalize_base_url(url).map_err(|_| {
                Error::invalid_input(format!(
                    "the upload base URL is not an absolute http(s) URL without credentials \
                     (builder or {UPLOAD_BASE_URL_ENV})"
                ))
            })?,
            None => default_upload_base_url(&base_url),
        };
        if let Some(agent) = &self.user_agent {
            check_user_agent(agent)?;
        }
        let max_concurrent_requests = self
            .max_concurrent_requests
            .unwrap_or(DEFAULT_MAX_CONCURRENT_REQUESTS);
        if max_concurrent_requests == 0 {
            return Err(Error::invalid_input(
                "max_concurrent_requests must be at least 1",
            ));
        }
        let mut retry_policy = self.retry_policy.clone().unwrap_or_default();
        if let Some(attempt) = self.attempt_timeout {
            retry_policy = retry_policy.with_attempt_timeout(Some(attempt));
        }
        if let Some(deadline) = self.timeout {
            retry_policy = retry_policy.with_deadline(Some(deadline));
        }
        Ok(ClientConfig {
            api_key,
            base_url,
            upload_base_url,
            user_agent: self.user_agent.clone(),
            connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            retry_policy,
            retry_budget: self.retry_budget.clone(),
            schedules: self.schedules.clone(),
            download_policy: self.download_policy.clone().unwrap_or_default(),
            download_idle_timeout: self
                .download_idle_timeout
                .unwrap_or(Some(DEFAULT_DOWNLOAD_IDLE_TIMEOUT)),
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES)
                .max(MIN_RESPONSE_BYTES),
            max_concurrent_requests,
            observer: self.observer.clone().unwrap_or_default(),
        })
    }
}

impl ClientConfig {
    /// The `User-Agent` to send: the caller's, or `default` (the client's name and version).
    pub fn user_agent_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.user_agent.as_deref().unwrap_or(default)
    }

    /// The client's wait schedules, checked against the polling floor of its base URL.
    pub fn wait_schedules(&self) -> WaitSchedules {
        WaitSchedules::new(self.schedules.clone(), self.base_url.as_str())
    }

    /// A fresh cap of [`ClientConfig::max_concurrent_requests`], for the client to hold
    /// around every HTTP exchange (API calls and downloads).
    pub fn request_limit(&self) -> RequestLimit {
        RequestLimit::new(self.max_concurrent_requests)
    }

    /// The retry budget: the shared one given, or a fresh one for this client.
    pub fn retry_budget(&self) -> Arc<RetryBudget> {
        self.retry_budget
            .clone()
            .unwrap_or_else(RetryBudget::shared)
    }
}

/// A header value both HTTP stacks accept: visible ASCII, spaces and tabs.
fn check_user_agent(agent: &str) -> Result<(), Error> {
    if agent.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "the user agent cannot be sent in an HTTP header (visible ASCII only)",
        ))
    }
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("api_key", &self.api_key.as_ref().map(|_| crate::REDACTED))
            .field("base_url", &self.base_url)
            .field("upload_base_url", &self.upload_base_url)
            .field("environment", &self.environment)
            .field("retry_policy", &self.retry_policy)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::BASE_URL_ENV;

    fn environment(key: &str, url: &str) -> EnvSettings {
        let (key, url) = (key.to_owned(), url.to_owned());
        EnvSettings::from_lookup(move |name| match name {
            API_KEY_ENV => Ok(key.clone()),
            BASE_URL_ENV => Ok(url.clone()),
            _ => Err(std::env::VarError::NotPresent),
        })
    }

    #[test]
    fn timeouts_override_the_retry_policy_in_either_order() {
        let policy = RetryPolicy::default().with_max_attempts(7);
        let mut before = ClientSettings::default();
        before
            .api_key("sk-1")
            .attempt_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(50))
            .retry_policy(policy.clone());
        let mut after = ClientSettings::default();
        after
            .api_key("sk-1")
            .retry_policy(policy)
            .timeout(Duration::from_secs(50))
            .attempt_timeout(Duration::from_secs(5));
        let config = before.resolve().unwrap();
        assert_eq!(config, after.resolve().unwrap());
        assert_eq!(config.retry_policy.max_attempts, 7);
        assert_eq!(
            config.retry_policy.attempt_timeout,
            Some(Duration::from_secs(5))
        );
        assert_eq!(config.retry_policy.deadline, Some(Duration::from_secs(50)));
    }

    #[test]
    fn explicit_settings_win_over_the_environment_which_wins_over_defaults() {
        let mut settings = ClientSettings::default();
        settings.environment(environment("sk-env", "http://127.0.0.1:9"));
        let config = settings.resolve().unwrap();
        assert_eq!(config.api_key.expose(), "sk-env");
        assert_eq!(config.base_url, "http://127.0.0.1:9");
        settings.api_key("sk-mine").base_url("https://example.com/");
        let config = settings.resolve().unwrap();
        assert_eq!(config.api_key.expose(), "sk-mine");
        assert_eq!(config.base_url, "https://example.com");
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let mut settings = ClientSettings::default();
        settings.environment(environment("  ", ""));
        let error = settings.resolve().unwrap_err().to_string();
        assert!(error.contains("no API key"), "{error}");
        settings.api_key("sk-1");
        assert_eq!(settings.resolve().unwrap().base_url, DEFAULT_BASE_URL);
    }

    /// Every status answer echoes the request (`paramJson`): the default answer limit must
    /// hold the largest echo of any request the SDK accepts, or a task could be created whose
    /// video can never be fetched.
    #[test]
    fn the_default_answer_limit_holds_the_largest_echo_of_an_accepted_request() {
        const { assert!(DEFAULT_MAX_RESPONSE_BYTES > 2 * veo3_types::MAX_ECHO_BYTES) };
    }

    #[test]
    fn the_answer_limit_has_a_floor_and_defaults_apply() {
        let mut settings = ClientSettings::default();
        settings.api_key("sk-1");
        let config = settings.resolve().unwrap();
        assert_eq!(config.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(
            config.download_idle_timeout,
            Some(DEFAULT_DOWNLOAD_IDLE_TIMEOUT)
        );
        assert_eq!(config.retry_policy, RetryPolicy::default());
        assert_eq!(
            config.max_concurrent_requests,
            DEFAULT_MAX_CONCURRENT_REQUESTS
        );
        settings.max_concurrent_requests(0);
        assert!(settings.resolve().is_err(), "no request could ever be sent");
        settings.max_concurrent_requests(1);
        settings.max_response_bytes(10);
        assert_eq!(
            settings.resolve().unwrap().max_response_bytes,
            MIN_RESPONSE_BYTES
        );
    }

    #[test]
    fn bad_settings_are_refused_without_echoing_the_key() {
        let mut settings = ClientSettings::default();
        settings.api_key("sk secret");
        assert!(
            !settings
                .resolve()
                .unwrap_err()
                .to_string()
                .contains("secret")
        );
        settings.api_key("sk-1").user_agent("tab\tok");
        assert!(settings.resolve().is_ok());
        settings.user_agent("line\nbreak");
        assert!(settings.resolve().is_err());
        settings.user_agent("ok").base_url("localhost:80");
        assert!(settings.resolve().is_err());
        let debug = format!("{:?}", ClientSettings::default().api_key("sk-hidden"));
        assert!(!debug.contains("sk-hidden"), "{debug}");
    }
}
