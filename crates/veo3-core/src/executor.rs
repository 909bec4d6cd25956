//! The async driver, written once: it runs a [`Call`] over a [`Transport`] with retries, and
//! [`ApiClient`] uses it to implement [`Veo3Api`] over any transport.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::Instrument;
use veo3_types::{
    Credits, Endpoint, ExtendRequest, GenerateRequest, Hd1080pResult, TaskCreated, TaskRecord,
    Upgrade4kRequest, Upgrade4kResult, UploadOptions, UploadedFile,
};

use crate::Error;
use crate::api::{UpgradeStatus, Veo3Api};
use crate::call::{Call, Step};
use crate::event::Observer;
use crate::http::Transport;
use crate::retry::{DisplayDuration, RetryBudget, RetryPolicy, RetryState};
use crate::secret::ApiKey;
use crate::time::{Clock, SimulatedClock, Sleeper};

/// The effects a driver needs, injected: a clock, a way to sleep, randomness for jitter, and
/// an observer for progress events.
///
/// Production: `Effects::new(Arc::new(SystemClock::new()), Arc::new(<runtime sleeper>))`. Tests:
/// [`Effects::simulated`], on which nothing ever really sleeps.
#[derive(Clone)]
pub struct Effects {
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    observer: Observer,
    random: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl Effects {
    /// Effects over `clock` and `sleeper`, with `fastrand` jitter and no observer.
    // The one default source of randomness; pure code receives its draws as arguments.
    #[allow(clippy::disallowed_methods)]
    pub fn new(clock: Arc<dyn Clock>, sleeper: Arc<dyn Sleeper>) -> Self {
        Self {
            clock,
            sleeper,
            observer: Observer::none(),
            random: Arc::new(|| fastrand::u64(..)),
        }
    }

    /// Effects on simulated time: `clock` is both the clock and the sleeper.
    pub fn simulated(clock: &SimulatedClock) -> Self {
        Self::new(Arc::new(clock.clone()), Arc::new(clock.clone()))
    }

    /// Sends events to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    /// Draws jitter from `random` (a uniform `u64` per call); e.g. `|| 0` for deterministic
    /// tests (no jitter at all: backoffs become zero, poll delays their base).
    pub fn with_random(mut self, random: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.random = Arc::new(random);
        self
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The sleeper.
    pub fn sleeper(&self) -> &dyn Sleeper {
        self.sleeper.as_ref()
    }

    /// The observer.
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// Clock reading.
    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    /// A uniform random `u64`.
    pub fn random(&self) -> u64 {
        (self.random)()
    }
}

impl fmt::Debug for Effects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Effects")
            .field("clock", &self.clock)
            .field("sleeper", &self.sleeper)
            .field("observer", &self.observer)
            .finish_non_exhaustive()
    }
}

/// Runs calls with retries: a [`RetryPolicy`], the client's shared [`RetryBudget`], and the
/// [`Effects`]. One per client; cheap to clone (clones share the budget).
#[derive(Clone, Debug)]
pub struct Executor {
    policy: RetryPolicy,
    budget: Arc<RetryBudget>,
    effects: Effects,
    secret: Option<ApiKey>,
    base_url: Option<String>,
}

impl Executor {
    /// An executor with `policy`, a fresh default budget, and `effects`.
    pub fn new(policy: RetryPolicy, effects: Effects) -> Self {
        Self {
            policy,
            budget: RetryBudget::shared(),
            effects,
            secret: None,
            base_url: None,
        }
    }

    /// The client's base URL: a read-only call's redirect is followed only to this host and
    /// under this path (see [`Redirect::follow`](crate::Redirect::follow)); without it, no
    /// redirect is followed.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// Shares `budget` (e.g. between several clients of one account).
    pub fn with_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// Scrubs `key` from every error text, as a last line of defence.
    pub fn with_secret(mut self, key: ApiKey) -> Self {
        self.secret = Some(key);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The shared budget.
    pub fn budget(&self) -> &Arc<RetryBudget> {
        &self.budget
    }

    /// The effects (clock, sleeper, observer, randomness).
    pub fn effects(&self) -> &Effects {
        &self.effects
    }

    /// Sends `call` through `transport`, retrying what [`classify`](crate::classify()) says
    /// is safe to retry, within the policy, the budget and the deadline.
    ///
    /// Each attempt gets the time limit of
    /// [`RetryState::begin_attempt`](crate::RetryState::begin_attempt), which the transport
    /// must enforce: that is what bounds the total time by the deadline.
    pub async fn execute<T: Send>(
        &self,
        call: &Call<T>,
        transport: &dyn Transport,
    ) -> Result<T, Error> {
        let endpoint = call.endpoint();
        let span = tracing::debug_span!("veo3.call", endpoint = endpoint.name());
        let result = self.run(call, transport).instrument(span).await;
        match (&self.secret, result) {
            (Some(key), Err(error)) => Err(error.scrub(key.expose())),
            (_, result) => result,
        }
    }

    async fn run<T: Send>(&self, call: &Call<T>, transport: &dyn Transport) -> Result<T, Error> {
        let effects = &self.effects;
        let mut state = RetryState::new(&self.policy, self.budget.clone(), effects.now());
        let mut request = Cow::Borrowed(call.request());
        let mut followed = 0;
        loop {
            let timeout = state.begin_attempt(effects.now());
            tracing::trace!(attempt = state.attempts(), ?timeout, "sending");
            let result = transport.send(&request, timeout).await;
            match call.step(&mut state, result, effects.now(), effects.random()) {
                Step::Done(value) => return Ok(value),
                Step::Fail(error) => {
                    tracing::debug!(attempts = state.attempts(), %error, "call failed");
                    return Err(error);
                }
                Step::Retry(plan) => {
                    tracing::info!(
                        attempt = plan.attempt,
                        delay = %DisplayDuration(plan.delay),
                        reason = %plan.reason,
                        cause = %plan.cause,
                        "retrying"
                    );
                    effects.observer().emit(&plan.event());
                    effects.sleeper().sleep(plan.delay).await;
                }
                Step::Follow(redirect) => {
                    let next = redirect.follow(self.base_url.as_deref(), &request, followed)?;
                    tracing::debug!(status = redirect.status(), path = %next.path_and_query, "following a redirect on the API host");
                    request = Cow::Owned(next);
                    followed += 1;
                }
            }
        }
    }
}

/// [`Veo3Api`] over any [`Transport`]: the whole protocol, so that a client crate only writes
/// the transport.
///
/// ```
/// use std::sync::Arc;
/// use veo3_core::{
///     ApiClient, Effects, Executor, HttpRequest, HttpResponse, RetryPolicy, SimulatedClock,
///     Transport, TransportError, Veo3Api,
/// };
///
/// struct Canned;
///
/// #[async_trait::async_trait]
/// impl Transport for Canned {
///     async fn send(&self, request: &HttpRequest, _timeout: Option<std::time::Duration>)
///         -> Result<HttpResponse, TransportError> {
///         assert_eq!(request.path_and_query, "/api/v1/chat/credit");
///         Ok(HttpResponse::new(200, r#"{"code":200,"msg":"success","data":1850}"#))
///     }
/// }
///
/// let executor = Executor::new(RetryPolicy::default(), Effects::simulated(&SimulatedClock::new()));
/// let client = ApiClient::new(Canned, executor);
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// assert_eq!(runtime.block_on(client.credits()).unwrap().0, 1850);
/// ```
#[derive(Debug)]
pub struct ApiClient<T> {
    transport: T,
    executor: Executor,
}

impl<T: Transport> ApiClient<T> {
    /// A client sending through `transport` with `executor`'s retries and effects.
    pub fn new(transport: T, executor: Executor) -> Self {
        Self {
            transport,
            executor,
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The executor.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// The effects (clock, sleeper, observer, randomness) for the waiters.
    pub fn effects(&self) -> &Effects {
        self.executor.effects()
    }

    /// `POST /api/v1/veo/generate`, attempted once ([`Call::once`]): a 429 or another proven
    /// rejection is the error, not retried, so that a caller pacing its sends under the
    /// account's limit (a batch runner) counts every request that reaches kie. Otherwise as
    /// [`Veo3Api::generate`]: validated first, and an answer lost after the request may have
    /// arrived is [`Error::SubmitOutcomeUnknown`].
    pub async fn generate_once(&self, request: &GenerateRequest) -> Result<TaskCreated, Error> {
        self.submit(Call::generate(request)?.once()).await
    }

    async fn submit(&self, call: Call<TaskCreated>) -> Result<TaskCreated, Error> {
        let endpoint: Endpoint = call.endpoint();
        let created = self.executor.execute(&call, &self.transport).await?;
        // The `Submitted` event is the flows' (see `generate_and_wait`), so that it is emitted
        // once whichever `Veo3Api` implementation runs underneath.
        tracing::info!(endpoint = endpoint.name(), task_id = %created.task_id, "task submitted");
        Ok(created)
    }
}

#[async_trait]
impl<T: Transport> Veo3Api for ApiClient<T> {
    async fn generate(&self, request: &GenerateRequest) -> Result<TaskCreated, Error> {
        self.submit(Call::generate(request)?).await
    }

    async fn record_info(&self, task_id: &str) -> Result<TaskRecord, Error> {
        self.executor
            .execute(&Call::record_info(task_id)?, &self.transport)
            .await
    }

    async fn hd_1080p(
        &self,
        task_id: &str,
        index: Option<u32>,
    ) -> Result<UpgradeStatus<Hd1080pResult>, Error> {
        self.executor
            .execute(&Call::hd_1080p(task_id, index)?, &self.transport)
            .await
    }

    async fn upgrade_4k(
        &self,
        request: &Upgrade4kRequest,
    ) -> Result<UpgradeStatus<Upgrade4kResult>, Error> {
        self.executor
            .execute(&Call::upgrade_4k(request)?, &self.transport)
            .await
    }

    async fn extend(&self, request: &ExtendRequest) -> Result<TaskCreated, Error> {
        self.submit(Call::extend(request)?).await
    }

    async fn credits(&self) -> Result<Credits, Error> {
        self.executor
            .execute(&Call::credits(), &self.transport)
            .await
    }

    async fn download_url(&self, url: &str) -> Result<String, Error> {
        self.executor
            .execute(&Call::download_url(url)?, &self.transport)
            .await
    }

    async fn upload_file(
        &self,
        path: &Path,
        options: &UploadOptions,
    ) -> Result<UploadedFile, Error> {
        let file = crate::LocalFile::inspect(path)?;
        let effects = self.executor.effects();
        let progress = file.progress(effects.observer().clone(), effects.clock.clone());
        self.executor
            .execute(
                &Call::upload_file(&file, options, progress)?,
                &self.transport,
            )
            .await
    }

    async fn upload_bytes(
        &self,
        bytes: &[u8],
        file_name: &str,
        options: &UploadOptions,
    ) -> Result<UploadedFile, Error> {
        self.executor
            .execute(
                &Call::upload_bytes(bytes, file_name, options)?,
                &self.transport,
            )
            .await
    }

    async fn upload_url(&self, url: &str, options: &UploadOptions) -> Result<UploadedFile, Error> {
        self.executor
            .execute(&Call::upload_url(url, options)?, &self.transport)
            .await
    }
}
