//! The two clients are drivers over one core: tests that fail when they start to differ in
//! what their settings mean.

use std::sync::Arc;
use std::time::Duration;

use veo3_core::download::DownloadPolicy;
use veo3_core::settings::{ClientConfig, Stage};
use veo3_core::{Observer, PollSchedule, RetryBudget, RetryPolicy};

/// One builder setter with its argument.
#[derive(Clone, Debug)]
enum Setting {
    ApiKey(&'static str),
    BaseUrl(&'static str),
    ConnectTimeout(Duration),
    AttemptTimeout(Duration),
    Timeout(Duration),
    UserAgent(&'static str),
    Retry(RetryPolicy),
    Budget(Arc<RetryBudget>),
    Schedule(Stage, PollSchedule),
    Download(DownloadPolicy),
    IdleTimeout(Option<Duration>),
    MaxResponseBytes(usize),
    Observer(Observer),
}

fn apply_async(
    builder: veo3_reqwest::ClientBuilder,
    setting: Setting,
) -> veo3_reqwest::ClientBuilder {
    match setting {
        Setting::ApiKey(key) => builder.api_key(key),
        Setting::BaseUrl(url) => builder.base_url(url),
        Setting::ConnectTimeout(timeout) => builder.connect_timeout(timeout),
        Setting::AttemptTimeout(timeout) => builder.attempt_timeout(timeout),
        Setting::Timeout(timeout) => builder.timeout(timeout),
        Setting::UserAgent(agent) => builder.user_agent(agent),
        Setting::Retry(policy) => builder.retry_policy(policy),
        Setting::Budget(budget) => builder.retry_budget(budget),
        Setting::Schedule(stage, schedule) => builder.poll_schedule(stage, schedule),
        Setting::Download(policy) => builder.download_policy(policy),
        Setting::IdleTimeout(timeout) => builder.download_idle_timeout(timeout),
        Setting::MaxResponseBytes(bytes) => builder.max_response_bytes(bytes),
        Setting::Observer(observer) => builder.observer(observer),
    }
}

fn apply_blocking(
    builder: veo3_blocking::ClientBuilder,
    setting: Setting,
) -> veo3_blocking::ClientBuilder {
    match setting {
        Setting::ApiKey(key) => builder.api_key(key),
        Setting::BaseUrl(url) => builder.base_url(url),
        Setting::ConnectTimeout(timeout) => builder.connect_timeout(timeout),
        Setting::AttemptTimeout(timeout) => builder.attempt_timeout(timeout),
        Setting::Timeout(timeout) => builder.timeout(timeout),
        Setting::UserAgent(agent) => builder.user_agent(agent),
        Setting::Retry(policy) => builder.retry_policy(policy),
        Setting::Budget(budget) => builder.retry_budget(budget),
        Setting::Schedule(stage, schedule) => builder.poll_schedule(stage, schedule),
        Setting::Download(policy) => builder.download_policy(policy),
        Setting::IdleTimeout(timeout) => builder.download_idle_timeout(timeout),
        Setting::MaxResponseBytes(bytes) => builder.max_response_bytes(bytes),
        Setting::Observer(observer) => builder.observer(observer),
    }
}

fn async_config(settings: &[Setting]) -> ClientConfig {
    let builder = settings
        .iter()
        .cloned()
        .fold(veo3_reqwest::Client::builder(), apply_async);
    builder.config().expect("the settings are valid")
}

fn blocking_config(settings: &[Setting]) -> ClientConfig {
    let builder = settings
        .iter()
        .cloned()
        .fold(veo3_blocking::Client::builder(), apply_blocking);
    builder.config().expect("the settings are valid")
}

/// Every setter both builders have, once each, with values that differ from the defaults.
fn every_setting() -> Vec<Setting> {
    let seconds = Duration::from_secs;
    vec![
        Setting::ApiKey("sk-permutation-0123"),
        Setting::BaseUrl("http://127.0.0.1:9/prefix/"),
        Setting::ConnectTimeout(seconds(3)),
        Setting::AttemptTimeout(seconds(7)),
        Setting::Timeout(seconds(70)),
        Setting::UserAgent("permutations/1.0"),
        Setting::Retry(
            RetryPolicy::default()
                .with_max_attempts(9)
                .with_attempt_timeout(Some(seconds(1)))
                .with_deadline(Some(seconds(2))),
        ),
        Setting::Budget(RetryBudget::shared()),
        Setting::Schedule(
            Stage::Extension,
            PollSchedule::new(seconds(1), seconds(2), seconds(30)),
        ),
        Setting::Schedule(
            Stage::Upgrade4k,
            PollSchedule::new(seconds(4), seconds(5), seconds(60)),
        ),
        Setting::Download(DownloadPolicy::default().with_max_resumes(2)),
        Setting::IdleTimeout(None),
        Setting::MaxResponseBytes(100),
        Setting::Observer(Observer::new(|_| {})),
    ]
}

/// A deterministic shuffle (xorshift), so the test needs no random-number crate and every run
/// checks the same orders.
fn shuffled(settings: &[Setting], seed: u64) -> Vec<Setting> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut order = settings.to_vec();
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = usize::try_from(state % (i as u64 + 1)).expect("small index");
        order.swap(i, j);
    }
    order
}

#[test]
fn both_builders_resolve_the_same_settings_in_any_order_to_the_same_config() {
    let settings = every_setting();
    let expected = async_config(&settings);
    // The precedence rules, independent of order: explicit timeouts override the policy's,
    // the answer limit has its floor, the base URL is normalised.
    assert_eq!(expected.retry_policy.max_attempts, 9);
    assert_eq!(
        expected.retry_policy.attempt_timeout,
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        expected.retry_policy.deadline,
        Some(Duration::from_secs(70))
    );
    assert_eq!(
        expected.max_response_bytes,
        veo3_core::settings::MIN_RESPONSE_BYTES
    );
    assert_eq!(expected.base_url, "http://127.0.0.1:9/prefix");
    assert_eq!(expected.download_idle_timeout, None);
    for seed in 0..300 {
        let order = shuffled(&settings, seed);
        let names: Vec<String> = order
            .iter()
            .map(|s| {
                format!("{s:?}")
                    .split('(')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(async_config(&order), expected, "async, order {names:?}");
        assert_eq!(
            blocking_config(&order),
            expected,
            "blocking, order {names:?}"
        );
    }
}

#[test]
fn both_builders_share_their_defaults() {
    let settings = [Setting::ApiKey("sk-defaults-0123")];
    let config = async_config(&settings);
    assert_eq!(blocking_config(&settings), config);
    assert_eq!(config.base_url, veo3_core::settings::DEFAULT_BASE_URL);
    assert_eq!(config.retry_policy, RetryPolicy::default());
    assert_eq!(
        config.max_response_bytes,
        veo3_core::settings::DEFAULT_MAX_RESPONSE_BYTES
    );
}
