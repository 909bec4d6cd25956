//! [`Client`], its builder, and the flows users reach for.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use veo3_core::download::DownloadPolicy;
use veo3_core::{
    ApiClient, Effects, Error, Executor, Observer, PollSchedule, RetryBudget, RetryPolicy,
    SystemClock, UpgradeStatus, Veo3Api,
};
use veo3_types::{
    Credits, ExtendRequest, GenerateRequest, GenerateWithImages, Hd1080pResult, TaskCreated,
    TaskRecord, Upgrade4kRequest, Upgrade4kResult, UploadOptions, UploadedFile,
};

use crate::transport::{ReqwestTransport, TokioSleeper};

pub use veo3_core::settings::{API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, Stage, WaitOptions};
use veo3_core::settings::{ClientConfig, ClientSettings, WaitMode, WaitSchedules};

pub use veo3_core::settings::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_DOWNLOAD_IDLE_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
};

/// The async Veo 3 client. Cheap to clone (an `Arc` inside); clones share the connection pool
/// and the retry budget. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) api: ApiClient<ReqwestTransport>,
    pub(crate) waits: WaitSchedules,
    pub(crate) download_policy: DownloadPolicy,
    pub(crate) download_idle_timeout: Option<Duration>,
}

impl Client {
    /// A client for kie.ai ([`DEFAULT_BASE_URL`]) with `api_key` and default settings.
    ///
    /// Fails on an empty key or one that cannot be sent in a header (the error never contains
    /// the key).
    pub fn new(api_key: impl Into<String>) -> Result<Self, Error> {
        Self::builder().api_key(api_key).build()
    }

    /// A client configured from the environment: `KIE_API_KEY` (required) and
    /// `KIE_BASE_URL` (optional, e.g. a sandbox).
    pub fn from_env() -> Result<Self, Error> {
        Self::builder().from_env().build()
    }

    /// A builder, for base URL, timeouts, policies, observer and HTTP client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// `POST /api/v1/veo/generate`, attempted once: a 429 (or another answer that proves the
    /// request was refused) is the error instead of a retry. For callers that pace their own
    /// sends under the account's limit, as `veo3-jobs` does; [`Veo3Api::generate`] retries
    /// proven rejections within the retry policy.
    pub async fn generate_once(&self, request: &GenerateRequest) -> Result<TaskCreated, Error> {
        self.inner.api.generate_once(request).await
    }

    /// The API base URL (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.api.transport().base_url
    }

    /// The upload base URL (kie's upload host by default; see
    /// [`default_upload_base_url`](veo3_core::settings::default_upload_base_url)).
    pub fn upload_base_url(&self) -> &str {
        &self.inner.api.transport().upload_base_url
    }

    /// The observer receiving this client's events.
    pub fn observer(&self) -> &Observer {
        self.inner.api.effects().observer()
    }

    /// The effects (clock, sleeper, observer, randomness) the flows run in.
    pub fn effects(&self) -> &Effects {
        self.inner.api.effects()
    }

    /// The poll schedule used for `stage` when a call does not override it; for
    /// [`Stage::Generation`] without an explicit schedule, the Fast-model preset.
    pub fn poll_schedule(&self, stage: Stage) -> PollSchedule {
        self.inner.waits.get(stage)
    }

    /// Submits a generation (billable, sent at most once) and waits for it to finish.
    ///
    /// Emits [`Event::Submitted`](veo3_core::Event::Submitted) with the new task id as soon as
    /// it is known; every later error carries it ([`Error::task_id`]).
    pub async fn generate_and_wait(
        &self,
        request: &GenerateRequest,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule = (self.inner.waits).schedule(
            Stage::Generation,
            Some(&request.model),
            wait,
            WaitMode::Polling,
        )?;
        veo3_core::generate_and_wait(self, request, &schedule, self.effects()).await
    }

    /// Waits for a generation or extension task created a moment ago: the schedule's first
    /// delay comes first, since a read at once would only find it queued. For callers that
    /// submit ([`Client::generate_once`], [`Veo3Api::generate`]), record the id, then wait;
    /// otherwise as [`Client::wait_for_task`].
    pub async fn wait_for_new_task(
        &self,
        task_id: &str,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Generation, None, wait, WaitMode::Polling)?;
        veo3_core::wait_for_new_task(self, task_id, &schedule, self.effects()).await
    }

    /// Waits for an existing generation or extension task to finish.
    pub async fn wait_for_task(
        &self,
        task_id: &str,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Generation, None, wait, WaitMode::Polling)?;
        veo3_core::wait_for_task(self, task_id, &schedule, self.effects()).await
    }

    /// Requests the 1080p version of video `index` (default 0) of a finished task and waits
    /// until it is ready.
    pub async fn upgrade_1080p_and_wait(
        &self,
        task_id: &str,
        index: Option<u32>,
        wait: &WaitOptions,
    ) -> Result<Hd1080pResult, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Hd1080p, None, wait, WaitMode::Polling)?;
        veo3_core::wait_for_1080p(self, task_id, index, &schedule, self.effects()).await
    }

    /// Requests the 4K version (billable, sent at most once) and waits until it is ready.
    pub async fn upgrade_4k_and_wait(
        &self,
        request: &Upgrade4kRequest,
        wait: &WaitOptions,
    ) -> Result<Upgrade4kResult, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Upgrade4k, None, wait, WaitMode::Polling)?;
        veo3_core::upgrade_4k_and_wait(self, request, &schedule, self.effects()).await
    }

    /// Waits for a 4K job that was already requested (by repeating the request, which does
    /// not bill again once the job exists).
    pub async fn wait_for_4k(
        &self,
        request: &Upgrade4kRequest,
        wait: &WaitOptions,
    ) -> Result<Upgrade4kResult, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Upgrade4k, None, wait, WaitMode::Polling)?;
        veo3_core::wait_for_4k(self, request, &schedule, self.effects()).await
    }

    /// Submits an extension (billable, sent at most once) and waits for it; the stitched
    /// video is in [`TaskRecord::video_urls`].
    pub async fn extend_and_wait(
        &self,
        request: &ExtendRequest,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule =
            (self.inner.waits).schedule(Stage::Extension, None, wait, WaitMode::Polling)?;
        veo3_core::extend_and_wait(self, request, &schedule, self.effects()).await
    }

    /// Checks every image of `pending` (files: exist, readable, at most
    /// [`MAX_IMAGE_BYTES`](veo3_types::MAX_IMAGE_BYTES), JPEG/PNG/WebP by content; the count
    /// for the generation type) before anything is sent, uploads the local ones in order
    /// (streamed, into `options.upload_path` under unique names; each reported as
    /// [`Event::Uploading`](veo3_core::Event::Uploading) and
    /// [`Event::Uploaded`](veo3_core::Event::Uploaded)), then submits the generation with the
    /// hosted URLs (billable, sent at most once).
    pub async fn generate_with_images(
        &self,
        pending: &GenerateWithImages,
        options: &UploadOptions,
    ) -> Result<TaskCreated, Error> {
        veo3_core::generate_with_images(self, pending, options, self.effects()).await
    }

    /// [`generate_with_images`](Self::generate_with_images), then waits for the task.
    pub async fn generate_with_images_and_wait(
        &self,
        pending: &GenerateWithImages,
        options: &UploadOptions,
        wait: &WaitOptions,
    ) -> Result<TaskRecord, Error> {
        let schedule = (self.inner.waits).schedule(
            Stage::Generation,
            Some(&pending.request.model),
            wait,
            WaitMode::Polling,
        )?;
        let created = self.generate_with_images(pending, options).await?;
        veo3_core::wait_for_new_task(self, &created.task_id, &schedule, self.effects()).await
    }
}

#[async_trait]
impl Veo3Api for Client {
    async fn generate(&self, request: &GenerateRequest) -> Result<TaskCreated, Error> {
        self.inner.api.generate(request).await
    }

    async fn record_info(&self, task_id: &str) -> Result<TaskRecord, Error> {
        self.inner.api.record_info(task_id).await
    }

    async fn hd_1080p(
        &self,
        task_id: &str,
        index: Option<u32>,
    ) -> Result<UpgradeStatus<Hd1080pResult>, Error> {
        self.inner.api.hd_1080p(task_id, index).await
    }

    async fn upgrade_4k(
        &self,
        request: &Upgrade4kRequest,
    ) -> Result<UpgradeStatus<Upgrade4kResult>, Error> {
        self.inner.api.upgrade_4k(request).await
    }

    async fn extend(&self, request: &ExtendRequest) -> Result<TaskCreated, Error> {
        self.inner.api.extend(request).await
    }

    async fn credits(&self) -> Result<Credits, Error> {
        self.inner.api.credits().await
    }

    async fn download_url(&self, url: &str) -> Result<String, Error> {
        self.inner.api.download_url(url).await
    }

    async fn upload_file(
        &self,
        path: &Path,
        options: &UploadOptions,
    ) -> Result<UploadedFile, Error> {
        self.inner.api.upload_file(path, options).await
    }

    async fn upload_bytes(
        &self,
        bytes: &[u8],
        file_name: &str,
        options: &UploadOptions,
    ) -> Result<UploadedFile, Error> {
        self.inner.api.upload_bytes(bytes, file_name, options).await
    }

    async fn upload_url(&self, url: &str, options: &UploadOptions) -> Result<UploadedFile, Error> {
        self.inner.api.upload_url(url, options).await
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url())
            .field("api_key", &"***")
            .field("retry_policy", self.inner.api.executor().policy())
            .field("observer", self.observer())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
///
/// Defaults: [`DEFAULT_BASE_URL`], 10 s to connect, the core's [`RetryPolicy`] (60 s per
/// attempt, 3 min per call, four attempts), the core's poll presets per [`Stage`], the default
/// [`DownloadPolicy`], API answers up to 4 MiB, a 60 s idle limit on downloads, rustls.
///
/// ```
/// use std::time::Duration;
/// use veo3_reqwest::{Client, Observer, RetryPolicy};
///
/// let client = Client::builder()
///     .api_key("sk-0123456789")
///     .base_url("http://127.0.0.1:8080")
///     .connect_timeout(Duration::from_secs(5))
///     .attempt_timeout(Duration::from_secs(30))
///     .timeout(Duration::from_secs(120))
///     .retry_policy(RetryPolicy::default().with_max_attempts(6))
///     .observer(Observer::new(|event| eprintln!("{event}")))
///     .build()?;
/// assert_eq!(client.base_url(), "http://127.0.0.1:8080");
/// assert!(!format!("{client:?}").contains("sk-0123456789"));
/// # Ok::<(), veo3_reqwest::Error>(())
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct ClientBuilder {
    settings: ClientSettings,
    http_client: Option<reqwest::Client>,
    effects: Option<Effects>,
}

impl ClientBuilder {
    /// The API key (required). Surrounding whitespace is trimmed.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.settings.api_key(key);
        self
    }

    /// The API base URL (default [`DEFAULT_BASE_URL`]); a trailing slash is ignored. Only
    /// this URL's origin ever receives the key.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.settings.base_url(url);
        self
    }

    /// The upload host's base URL (default: kie's upload host,
    /// [`DEFAULT_UPLOAD_BASE_URL`](veo3_core::settings::DEFAULT_UPLOAD_BASE_URL), when the API
    /// is kie's, else the API base URL; `KIE_UPLOAD_BASE_URL` with
    /// [`from_env`](Self::from_env)). Uploads carry the key to this origin, which requires it.
    pub fn upload_base_url(mut self, url: impl Into<String>) -> Self {
        self.settings.upload_base_url(url);
        self
    }

    /// Reads `KIE_API_KEY`, `KIE_BASE_URL` and `KIE_UPLOAD_BASE_URL` (an empty variable counts
    /// as unset), used
    /// unless the builder is given a key or base URL of its own (in any order).
    pub fn from_env(mut self) -> Self {
        self.settings.from_env();
        self
    }

    /// Time to establish a connection (default 10 s). Applies to the client this builder
    /// creates, not to one given with [`ClientBuilder::http_client`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout(timeout);
        self
    }

    /// Time limit of one attempt of an API call (default 60 s; overrides the retry policy's
    /// [`RetryPolicy::attempt_timeout`], whichever is set first).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.settings.attempt_timeout(timeout);
        self
    }

    /// Time limit of a whole API call, retries and their pauses included (default 3 min;
    /// overrides the retry policy's [`RetryPolicy::deadline`], whichever is set first). Waits
    /// have their own deadlines ([`WaitOptions::timeout`], the poll schedules).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout(timeout);
        self
    }

    /// The `User-Agent` of API requests (default `veo3-reqwest/<version>`).
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.settings.user_agent(agent);
        self
    }

    /// How API calls are retried (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry_policy(policy);
        self
    }

    /// Shares a retry budget (e.g. between several clients of one account); by default each
    /// client has its own.
    pub fn retry_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.settings.retry_budget(budget);
        self
    }

    /// The poll schedule of `stage` (default: the core's preset for it).
    pub fn poll_schedule(mut self, stage: Stage, schedule: PollSchedule) -> Self {
        self.settings.poll_schedule(stage, schedule);
        self
    }

    /// The same poll schedule for every stage (handy against a sandbox).
    pub fn poll_schedules(mut self, schedule: PollSchedule) -> Self {
        self.settings.poll_schedules(schedule);
        self
    }

    /// How downloads resume and refresh links (default [`DownloadPolicy::default`]).
    pub fn download_policy(mut self, policy: DownloadPolicy) -> Self {
        self.settings.download_policy(policy);
        self
    }

    /// How long a download may receive nothing before the transfer counts as cut and is
    /// resumed (default 60 s; `None`: no limit).
    pub fn download_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.download_idle_timeout(timeout);
        self
    }

    /// The largest API answer read into memory (default 4 MiB, at least 1 KiB); a longer
    /// answer is an error that says so.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_response_bytes(bytes);
        self
    }

    /// The most HTTP exchanges this client (and its clones) has in flight at once, API calls
    /// and downloads together (default 32): a thousand concurrent waits share that many
    /// connections instead of opening a thousand. Further calls queue, in order, before their
    /// attempt's time limit starts.
    pub fn max_concurrent_requests(mut self, max: usize) -> Self {
        self.settings.max_concurrent_requests(max);
        self
    }

    /// Receives progress events (submitted, polled, retrying, finished, download progress).
    pub fn observer(mut self, observer: Observer) -> Self {
        self.settings.observer(observer);
        self
    }

    /// Sends through this `reqwest::Client` (for proxies, custom TLS, connection limits).
    /// The key is still added per API request only, never to the client's default headers.
    /// [`ClientBuilder::connect_timeout`] does not apply to it: configure it on the client.
    /// Build it with `redirect(reqwest::redirect::Policy::none())`: a client that follows
    /// redirects itself would re-send a billable request to the target before the SDK sees
    /// the redirect.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Runs retries and waits in `effects` instead of real time (tests with a
    /// [`SimulatedClock`](veo3_core::SimulatedClock)). The builder's observer, if any, is
    /// added to it.
    pub fn effects(mut self, effects: Effects) -> Self {
        self.effects = Some(effects);
        self
    }

    /// The settings as the client will use them: the core's
    /// [`ClientSettings::resolve`], which decides defaults and precedence for both clients.
    pub fn config(&self) -> Result<ClientConfig, Error> {
        self.settings.resolve()
    }

    /// Builds the client. Fails without a usable key or with an unusable base URL or user
    /// agent; no request is sent.
    pub fn build(self) -> Result<Client, Error> {
        let config = self.config()?;
        let user_agent = HeaderValue::from_str(
            config.user_agent_or(concat!("veo3-reqwest/", env!("CARGO_PKG_VERSION"))),
        )
        .map_err(|_| Error::invalid_input("the user agent cannot be sent in an HTTP header"))?;
        let http = match self.http_client {
            Some(http) => http,
            None => http_builder()
                .connect_timeout(config.connect_timeout)
                .tcp_nodelay(true)
                // Shorter than common server keep-alive limits (60-75 s), so a billable
                // request is rarely written into a connection the server has just closed,
                // which would make its outcome unknown.
                .pool_idle_timeout(Duration::from_secs(30))
                // Never more idle connections than exchanges may run at once, so the pool
                // keeps what the cap lets it use and closes the rest.
                .pool_max_idle_per_host(config.max_concurrent_requests)
                // API requests: never followed here (the core decides); result files: up to
                // 5 hops, which carry no key.
                .redirect(crate::transport::redirect_policy(&config.base_url))
                .build()
                .map_err(|error| {
                    Error::invalid_input(format!(
                        "cannot build the HTTP client: {}",
                        crate::transport::describe(&error)
                    ))
                })?,
        };
        let mut effects = self
            .effects
            .unwrap_or_else(|| Effects::new(Arc::new(SystemClock::new()), Arc::new(TokioSleeper)));
        if config.observer.is_active() {
            effects = effects.with_observer(config.observer.clone());
        }
        let transport = ReqwestTransport::new(
            http,
            config.base_url.clone(),
            config.upload_base_url.clone(),
            &config.api_key,
            Some(user_agent),
            config.max_response_bytes,
            config.request_limit(),
        )?;
        let executor = Executor::new(config.retry_policy.clone(), effects)
            .with_secret(config.api_key.clone())
            .with_base_url(config.base_url.as_str())
            .with_budget(config.retry_budget());
        Ok(Client {
            inner: Arc::new(Inner {
                api: ApiClient::new(transport, executor),
                waits: config.wait_schedules(),
                download_policy: config.download_policy,
                download_idle_timeout: config.download_idle_timeout,
            }),
        })
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A reqwest builder with the TLS stack the crate's features select: the platform's
/// (`native-tls`) when enabled, rustls otherwise.
fn http_builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    #[cfg(feature = "native-tls")]
    let builder = builder.use_native_tls();
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_bad_key_is_refused_without_echoing_it() {
        let error = Client::builder().build().unwrap_err();
        assert!(error.to_string().contains(API_KEY_ENV));
        let error = Client::new("sk secret with spaces").unwrap_err();
        assert!(!error.to_string().contains("secret"));
    }
}
