//! The client: configuration, the per-call retry loop, and one method per endpoint.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::Agent;
use veo3_core::download::DownloadPolicy;
use veo3_core::{
    BlockingExecutor, BlockingSleeper, BlockingVeo3Api, Call, Clock, Error, Observer, PollSchedule,
    RetryBudget, RetryPolicy, SystemClock, ThreadSleeper, UpgradeStatus,
};
use veo3_types::{
    Credits, ExtendRequest, GenerateRequest, GenerateWithImages, Hd1080pResult, TaskCreated,
    TaskRecord, Upgrade4kRequest, Upgrade4kResult, UploadOptions, UploadedFile,
};

use crate::transport::ApiTransport;
use veo3_core::settings::{ClientConfig, ClientSettings, Stage, WaitSchedules};

/// The default API base URL.
pub use veo3_core::settings::DEFAULT_BASE_URL;
pub use veo3_core::settings::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_DOWNLOAD_IDLE_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
};

type Random = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The blocking Veo 3 client. Cheap to clone (an `Arc` inside); clones share connections,
/// the retry budget and the observer. `Debug` never shows the key.
///
/// ```no_run
/// use veo3_blocking::{Client, GenerateRequest, WaitOptions};
///
/// let client = Client::from_env()?; // KIE_API_KEY, optional KIE_BASE_URL
/// let request = GenerateRequest::builder("A red fox trotting through fresh snow").build()?;
/// let record = client.generate_and_wait(&request, &WaitOptions::default())?;
/// let saved = client.download(&record.video_urls()[0], "fox.mp4")?;
/// println!("{} bytes in {}", saved.bytes, saved.path.display());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) api: ApiTransport,
    pub(crate) files: Agent,
    pub(crate) executor: BlockingExecutor,
    pub(crate) waits: WaitSchedules,
    pub(crate) download_policy: DownloadPolicy,
    pub(crate) observer: Observer,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sleeper: Arc<dyn BlockingSleeper>,
    random: Random,
}

impl Inner {
    pub(crate) fn now(&self) -> Duration {
        self.clock.now()
    }

    pub(crate) fn random(&self) -> u64 {
        (self.random)()
    }

    pub(crate) fn sleep(&self, duration: Duration) {
        if !duration.is_zero() {
            self.sleeper.sleep(duration);
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Client")
            .field("base_url", &inner.api.base_url())
            .field("api_key", &"***")
            .field("retry_policy", inner.executor.policy())
            .field("download_policy", &inner.download_policy)
            .field("observer", &inner.observer)
            .field("clock", &inner.clock)
            .field("sleeper", &inner.sleeper)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `api_key` with every default (base URL [`DEFAULT_BASE_URL`]).
    pub fn new(api_key: impl Into<String>) -> Result<Client, Error> {
        Self::builder().api_key(api_key).build()
    }

    /// A client configured from the environment: `KIE_API_KEY` (required) and `KIE_BASE_URL`
    /// (optional, e.g. a local sandbox).
    pub fn from_env() -> Result<Client, Error> {
        Self::builder().from_env().build()
    }

    /// A builder with every default.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The API base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.inner.api.base_url()
    }

    /// The upload base URL (kie's upload host by default; see
    /// [`default_upload_base_url`](veo3_core::settings::default_upload_base_url)).
    pub fn upload_base_url(&self) -> &str {
        self.inner.api.upload_base_url()
    }

    /// The schedule a wait of `stage` follows before [`WaitOptions`](crate::WaitOptions)
    /// apply (for [`Stage::Generation`], the preset of an unknown model).
    pub fn poll_schedule(&self, stage: Stage) -> PollSchedule {
        self.inner.waits.get(stage)
    }

    /// The observer events go to.
    pub fn observer(&self) -> &Observer {
        &self.inner.observer
    }

    /// Runs `call` with retries over the core's [`BlockingExecutor`]: the same loop, events,
    /// `tracing` and secret scrubbing as the async client's driver.
    pub(crate) fn execute<T>(&self, call: Call<T>) -> Result<T, Error> {
        let api = &self.inner.api;
        self.inner
            .executor
            .execute(&call, |request, timeout| api.send(request, timeout))
    }

    /// `POST /api/v1/veo/generate`: creates a billable generation task and returns its id.
    ///
    /// Validated first (nothing is sent if invalid) and sent at most once: if the answer is
    /// lost after the request may have arrived, the error is
    /// [`Error::SubmitOutcomeUnknown`] and the request is not repeated.
    pub fn generate(&self, request: &GenerateRequest) -> Result<TaskCreated, Error> {
        let created = self.execute(Call::generate(request)?)?;
        tracing::info!(task_id = %created.task_id, "generation submitted");
        Ok(created)
    }

    /// `POST /api/v1/veo/generate`, attempted once: a 429 (or another answer that proves the
    /// request was refused) is the error instead of a retry. For callers that pace their own
    /// sends under the account's limit; [`Client::generate`] retries proven rejections within
    /// the retry policy.
    pub fn generate_once(&self, request: &GenerateRequest) -> Result<TaskCreated, Error> {
        let created = self.execute(Call::generate(request)?.once())?;
        tracing::info!(task_id = %created.task_id, "generation submitted");
        Ok(created)
    }

    /// `GET /api/v1/veo/record-info`: the state and result of any Veo task.
    pub fn record_info(&self, task_id: &str) -> Result<TaskRecord, Error> {
        // The core's decoder fills in the id when the answer omits it.
        self.execute(Call::record_info(task_id)?)
    }

    /// `GET /api/v1/veo/get-1080p-video`: the 1080p version of video `index` (default 0),
    /// produced on first request; [`UpgradeStatus::Processing`] until ready.
    pub fn hd_1080p(
        &self,
        task_id: &str,
        index: Option<u32>,
    ) -> Result<UpgradeStatus<Hd1080pResult>, Error> {
        self.execute(Call::hd_1080p(task_id, index)?)
    }

    /// `POST /api/v1/veo/get-4k-video`: requests (billable, first time) or re-checks the 4K
    /// version of a finished task.
    pub fn upgrade_4k(
        &self,
        request: &Upgrade4kRequest,
    ) -> Result<UpgradeStatus<Upgrade4kResult>, Error> {
        self.execute(Call::upgrade_4k(request)?)
    }

    /// `POST /api/v1/veo/extend`: creates a billable extension task (sent at most once).
    pub fn extend(&self, request: &ExtendRequest) -> Result<TaskCreated, Error> {
        let created = self.execute(Call::extend(request)?)?;
        tracing::info!(task_id = %created.task_id, "extension submitted");
        Ok(created)
    }

    /// `GET /api/v1/chat/credit`: the remaining credits.
    pub fn credits(&self) -> Result<Credits, Error> {
        self.execute(Call::credits())
    }

    /// `POST /api/v1/common/download-url`: a fresh 20-minute link for a kie-generated URL.
    pub fn download_url(&self, url: &str) -> Result<String, Error> {
        self.execute(Call::download_url(url)?)
    }

    /// `POST /api/file-stream-upload` on the upload host: streams the file at `path` from
    /// disk (never read whole into memory) and returns where it is hosted. The file is
    /// checked first (exists, regular, readable); a retry opens it again. Free; retried like
    /// a read-only call.
    pub fn upload_file(
        &self,
        path: impl AsRef<Path>,
        options: &UploadOptions,
    ) -> Result<UploadedFile, Error> {
        let file = veo3_core::LocalFile::inspect(path.as_ref())?;
        let progress = file.progress(self.inner.observer.clone(), self.inner.clock.clone());
        self.execute(Call::upload_file(&file, options, progress)?)
    }

    /// `POST /api/file-base64-upload` on the upload host: uploads `bytes` (meant for small
    /// files: base64 adds a third), stored as `options.file_name`, else `file_name`.
    pub fn upload_bytes(
        &self,
        bytes: &[u8],
        file_name: &str,
        options: &UploadOptions,
    ) -> Result<UploadedFile, Error> {
        self.execute(Call::upload_bytes(bytes, file_name, options)?)
    }

    /// `POST /api/file-url-upload` on the upload host: the host fetches `url` itself.
    pub fn upload_url(&self, url: &str, options: &UploadOptions) -> Result<UploadedFile, Error> {
        self.execute(Call::upload_url(url, options)?)
    }

    /// Checks every image of `pending` before anything is sent, uploads the local ones in
    /// order (reported as `Event::Uploading` / `Event::Uploaded`), then submits the
    /// generation with the hosted URLs (billable, sent at most once). The blocking twin of
    /// the async client's flow: the core's
    /// [`BlockingExecutor::generate_with_images`](veo3_core::BlockingExecutor::generate_with_images).
    pub fn generate_with_images(
        &self,
        pending: &GenerateWithImages,
        options: &UploadOptions,
    ) -> Result<TaskCreated, Error> {
        (self.inner.executor).generate_with_images(self, pending, options)
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
///
/// The settings mean what they mean for the async client: both builders record into the
/// core's [`ClientSettings`] and build from its one resolution ([`ClientBuilder::config`]).
#[derive(Clone, Default)]
#[must_use]
pub struct ClientBuilder {
    settings: ClientSettings,
    clock: Option<Arc<dyn Clock>>,
    sleeper: Option<Arc<dyn BlockingSleeper>>,
    random: Option<Random>,
    agent: Option<Agent>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The kie.ai API key (required).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.settings.api_key(key);
        self
    }

    /// The API base URL (default [`DEFAULT_BASE_URL`]); `http://` or `https://`, with or
    /// without a path prefix. The key is sent to this origin only.
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
    /// unless the builder is given a key or base URL of its own (in any order); a variable
    /// that is not UTF-8 is reported by [`ClientBuilder::build`].
    pub fn from_env(mut self) -> Self {
        self.settings.from_env();
        self
    }

    /// How long establishing a connection may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout(timeout);
        self
    }

    /// The time limit of one attempt of an API call (default 60 s; overrides the retry
    /// policy's, whichever is set first); also how long a download may wait for its response
    /// head.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.settings.attempt_timeout(timeout);
        self
    }

    /// The time limit of one API call, retries and their pauses included (default 3 min;
    /// overrides the retry policy's deadline, whichever is set first).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout(timeout);
        self
    }

    /// How long a download may receive nothing before the transfer counts as cut and is
    /// resumed (default 60 s; `None`: no limit).
    pub fn download_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.download_idle_timeout(timeout);
        self
    }

    /// The `User-Agent` header (default `veo3-blocking/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.settings.user_agent(user_agent);
        self
    }

    /// The retry policy of API calls (default [`RetryPolicy::default`]);
    /// [`ClientBuilder::attempt_timeout`] and [`ClientBuilder::timeout`] apply on top of it.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry_policy(policy);
        self
    }

    /// Shares a retry budget with other clients of the same account.
    pub fn retry_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.settings.retry_budget(budget);
        self
    }

    /// The default polling schedule of one stage (see [`WaitOptions`](crate::WaitOptions)
    /// for per-call changes).
    pub fn poll_schedule(mut self, stage: Stage, schedule: PollSchedule) -> Self {
        self.settings.poll_schedule(stage, schedule);
        self
    }

    /// The same poll schedule for every stage (handy against a sandbox).
    pub fn poll_schedules(mut self, schedule: PollSchedule) -> Self {
        self.settings.poll_schedules(schedule);
        self
    }

    /// Resumes, backoff and link refresh of downloads.
    pub fn download_policy(mut self, policy: DownloadPolicy) -> Self {
        self.settings.download_policy(policy);
        self
    }

    /// Receives progress [`Event`](veo3_core::Event)s (submitted, polled, retrying,
    /// finished, download progress).
    pub fn observer(mut self, observer: Observer) -> Self {
        self.settings.observer(observer);
        self
    }

    /// The clock of deadlines and schedules (default the system's monotonic clock). With a
    /// [`SimulatedClock`](veo3_core::SimulatedClock) as both clock and sleeper, waits run
    /// without sleeping.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How the client pauses between polls and retries (default `std::thread::sleep`).
    pub fn sleeper(mut self, sleeper: Arc<dyn BlockingSleeper>) -> Self {
        self.sleeper = Some(sleeper);
        self
    }

    /// The source of jitter: a uniform `u64` per draw (default `fastrand`); `|| 0` makes
    /// schedules deterministic.
    pub fn random(mut self, random: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.random = Some(Arc::new(random));
        self
    }

    /// A ureq agent of your own (proxies, TLS roots). The client still turns off redirects
    /// and status errors for API requests, and sets its own timeouts per request.
    pub fn agent(mut self, agent: Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    /// The largest API answer read (default [`DEFAULT_MAX_RESPONSE_BYTES`], at least 1 KiB);
    /// a longer answer is an error that says so.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_response_bytes(bytes);
        self
    }

    /// The most HTTP exchanges this client (and its clones) has in flight at once, API calls
    /// and downloads together (default 32): a thousand threads waiting share that many
    /// connections instead of opening a thousand. Further calls queue, in order, before their
    /// attempt's time limit starts.
    pub fn max_concurrent_requests(mut self, max: usize) -> Self {
        self.settings.max_concurrent_requests(max);
        self
    }

    /// The settings as the client will use them: the core's
    /// [`ClientSettings::resolve`], which decides defaults and precedence for both clients.
    pub fn config(&self) -> Result<ClientConfig, Error> {
        self.settings.resolve()
    }

    /// Checks the configuration and builds the client. Fails, naming the problem, on a
    /// missing or malformed key or an unusable base URL; nothing is sent.
    pub fn build(self) -> Result<Client, Error> {
        let config = self.config()?;
        let user_agent = config.user_agent_or(concat!("veo3-blocking/", env!("CARGO_PKG_VERSION")));
        let api_agent = self.agent.clone().unwrap_or_else(|| {
            Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_connect(Some(config.connect_timeout))
                .user_agent(user_agent)
                .max_idle_connections(config.max_concurrent_requests)
                .max_idle_connections_per_host(config.max_concurrent_requests)
                .build()
                .into()
        });
        // Result files: redirects are fine (no credential is ever attached), and a stall
        // is a cut to resume, not a reason to wait forever.
        let files = self.agent.unwrap_or_else(|| {
            Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(5)
                .timeout_connect(Some(config.connect_timeout))
                .timeout_recv_response(config.retry_policy.attempt_timeout)
                .timeout_per_read(config.download_idle_timeout)
                .user_agent(user_agent)
                .max_idle_connections(config.max_concurrent_requests)
                .max_idle_connections_per_host(config.max_concurrent_requests)
                .build()
                .into()
        });
        let random: Random = match self.random {
            Some(random) => random,
            None => Arc::new(|| fastrand::u64(..)),
        };
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let sleeper: Arc<dyn BlockingSleeper> =
            self.sleeper.unwrap_or_else(|| Arc::new(ThreadSleeper));
        let draw = random.clone();
        let executor =
            BlockingExecutor::new(config.retry_policy.clone(), clock.clone(), sleeper.clone())
                .with_budget(config.retry_budget())
                .with_observer(config.observer.clone())
                .with_random(move || draw())
                .with_secret(config.api_key.clone())
                .with_base_url(config.base_url.as_str());
        let limit = config.request_limit();
        let waits = config.wait_schedules();
        Ok(Client {
            inner: Arc::new(Inner {
                api: ApiTransport::new(
                    api_agent,
                    config.base_url,
                    config.upload_base_url,
                    config.api_key,
                    u64::try_from(config.max_response_bytes).unwrap_or(u64::MAX),
                    limit,
                ),
                files,
                executor,
                waits,
                download_policy: config.download_policy,
                observer: config.observer,
                clock,
                sleeper,
                random,
            }),
        })
    }
}

/// The blocking twin of the async client's `Veo3Api`: code written against
/// [`BlockingVeo3Api`] runs on this client and is tested with core's `MockBlockingVeo3Api`.
impl BlockingVeo3Api for Client {
    fn generate(&self, request: &GenerateRequest) -> Result<TaskCreated, Error> {
        Client::generate(self, request)
    }

    fn record_info(&self, task_id: &str) -> Result<TaskRecord, Error> {
        Client::record_info(self, task_id)
    }

    fn hd_1080p(
        &self,
        task_id: &str,
        index: Option<u32>,
    ) -> Result<UpgradeStatus<Hd1080pResult>, Error> {
        Client::hd_1080p(self, task_id, index)
    }

    fn upgrade_4k(
        &self,
        request: &Upgrade4kRequest,
    ) -> Result<UpgradeStatus<Upgrade4kResult>, Error> {
        Client::upgrade_4k(self, request)
    }

    fn extend(&self, request: &ExtendRequest) -> Result<TaskCreated, Error> {
        Client::extend(self, request)
    }

    fn credits(&self) -> Result<Credits, Error> {
        Client::credits(self)
    }

    fn download_url(&self, url: &str) -> Result<String, Error> {
        Client::download_url(self, url)
    }

    fn upload_file(&self, path: &Path, options: &UploadOptions) -> Result<UploadedFile, Error> {
        Client::upload_file(self, path, options)
    }

    fn upload_bytes(
        &self,
        bytes: &[u8],
        file_name: &str,
        options: &UploadOptions,
    ) -> Result<UploadedFile, Error> {
        Client::upload_bytes(self, bytes, file_name, options)
    }

    fn upload_url(&self, url: &str, options: &UploadOptions) -> Result<UploadedFile, Error> {
        Client::upload_url(self, url, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let client = Client::new("sk-very-secret-key").unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("api.kie.ai"));
        let builder = Client::builder().api_key("sk-very-secret-key");
        assert!(!format!("{builder:?}").contains("very-secret"));
    }

    #[test]
    fn bad_configuration_is_refused_before_anything_is_sent() {
        assert!(
            Client::builder()
                .build()
                .unwrap_err()
                .to_string()
                .contains("API key")
        );
        assert!(Client::new("has space").is_err());
        let error = Client::builder()
            .api_key("k-123")
            .base_url("localhost:8080")
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("http://"));
    }
}
