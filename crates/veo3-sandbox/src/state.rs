//! The sandbox's mutable world: tasks, the credit ledger, rate-limit windows, minted file URLs,
//! scripts and counters, all behind one mutex. Every method is synchronous and never awaits while
//! holding the lock; network work is returned as values ([`CallbackJob`]: a snapshot of the
//! settled task) for the caller to hand to `callbacks::dispatch`, which renders and sends it.
//! This module imports neither `callbacks` nor `render`: they depend on it, not the reverse.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::config::{Clock, Config, Shape, ms};
use crate::faults::{Drawn, Fault, FaultPlan, Outcome, Route, mix};

/// A snapshot of the sandbox's counters, from [`crate::SandboxHandle::stats`] or
/// `GET /__sandbox/stats`.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests received per route (API and file host), faulted ones included.
    pub requests: BTreeMap<Route, u64>,
    /// Tasks created (generate, extend and 4K jobs), whether or not the client heard of them.
    pub tasks_created: u64,
    /// Faults injected, by fault name (`drop`, `lost`, `http`, `code`, `429`, `latency`, ...).
    pub faults_injected: BTreeMap<String, u64>,
    /// Generation requests refused by the rate limiter.
    pub rate_limited: u64,
    /// Answers the sandbox gave with code 429, in the envelope or as the HTTP status, on the
    /// API and the file host: the rate limiter's refusals and injected 429 faults alike.
    pub answered_429: u64,
    /// Callback deliveries answered with HTTP 200 (duplicates included).
    pub callbacks_sent: u64,
    /// Callback attempts that failed (non-200, timeout, connection error).
    pub callbacks_failed: u64,
    /// Callbacks abandoned after the last retry.
    pub callbacks_abandoned: u64,
    /// Requests served by the file host.
    pub file_requests: u64,
    /// Body bytes the file host handed to its connections (what a resumed download saves
    /// shows here).
    pub file_bytes_served: u64,
    /// Paths of file-host requests that carried an `Authorization` header (values not kept).
    pub file_auth_headers: Vec<String>,
    /// TCP connections the API host accepted (how many a client opened, reuse included).
    pub api_connections: u64,
    /// TCP connections the file host accepted.
    pub file_connections: u64,
    tasks_by_key: HashMap<String, u64>,
}

impl Stats {
    /// Requests received on `route`.
    pub fn requests(&self, route: Route) -> u64 {
        self.requests.get(&route).copied().unwrap_or(0)
    }

    /// Tasks created with API key `key`.
    pub fn tasks_created_by(&self, key: &str) -> u64 {
        self.tasks_by_key.get(key).copied().unwrap_or(0)
    }

    /// Faults of the given name injected (see [`Fault::name`]).
    pub fn faults(&self, name: &str) -> u64 {
        self.faults_injected.get(name).copied().unwrap_or(0)
    }

    /// Total faults injected.
    pub fn faults_total(&self) -> u64 {
        self.faults_injected.values().sum()
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let requests: serde_json::Map<String, serde_json::Value> = self
            .requests
            .iter()
            .map(|(r, n)| (r.name().to_owned(), (*n).into()))
            .collect();
        serde_json::json!({
            "requests": requests,
            "tasksCreated": self.tasks_created,
            "tasksByKey": self.tasks_by_key,
            "faultsInjected": self.faults_injected,
            "rateLimited": self.rate_limited,
            "answered429": self.answered_429,
            "callbacksSent": self.callbacks_sent,
            "callbacksFailed": self.callbacks_failed,
            "callbacksAbandoned": self.callbacks_abandoned,
            "fileRequests": self.file_requests,
            "fileBytesServed": self.file_bytes_served,
            "fileAuthHeaders": self.file_auth_headers,
            "apiConnections": self.api_connections,
            "fileConnections": self.file_connections,
        })
    }
}

// Keys are secrets even in a sandbox: Debug shows the per-key counts without the keys.
impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut per_key: Vec<u64> = self.tasks_by_key.values().copied().collect();
        per_key.sort_unstable();
        f.debug_struct("Stats")
            .field("requests", &self.requests)
            .field("tasks_created", &self.tasks_created)
            .field("tasks_per_key", &per_key)
            .field("faults_injected", &self.faults_injected)
            .field("rate_limited", &self.rate_limited)
            .field("answered_429", &self.answered_429)
            .field("callbacks_sent", &self.callbacks_sent)
            .field("callbacks_failed", &self.callbacks_failed)
            .field("callbacks_abandoned", &self.callbacks_abandoned)
            .field("file_requests", &self.file_requests)
            .field("file_bytes_served", &self.file_bytes_served)
            .field("file_auth_headers", &self.file_auth_headers)
            .field("api_connections", &self.api_connections)
            .field("file_connections", &self.file_connections)
            .finish()
    }
}

/// What kind of job a task is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Generate,
    Extend { source: String },
    Upgrade4k { source: String, index: usize },
}

/// A task's visible state, from [`crate::SandboxHandle::task`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task id.
    pub task_id: String,
    /// `successFlag`: 0 while running, then 1, 2 or 3.
    pub success_flag: i64,
    /// The outcome the task will have (or had).
    pub outcome: Outcome,
    /// `generate`, `extend` or `4k`.
    pub kind: &'static str,
    /// The callback URL given at creation.
    pub call_back_url: Option<String>,
    /// Creation time, epoch ms of service time.
    pub create_time: i64,
    /// Completion time (planned while running), epoch ms of service time.
    pub complete_time: i64,
    /// The result URLs once successful.
    pub result_urls: Vec<String>,
}

/// What a billed job is, in [`CreatedTask::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskKind {
    /// `POST /api/v1/veo/generate`.
    Generate,
    /// `POST /api/v1/veo/extend`.
    Extend,
    /// The first `GET /api/v1/veo/get-1080p-video` of a (task, index): it has no id of its
    /// own, so [`CreatedTask::task_id`] is the source's.
    Hd1080p,
    /// A `POST /api/v1/veo/get-4k-video` that started a 4K job.
    Upgrade4k,
}

impl TaskKind {
    /// `generate`, `extend`, `1080p` or `4k`, as in `GET /__sandbox/tasks`.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Generate => "generate",
            TaskKind::Extend => "extend",
            TaskKind::Hd1080p => "1080p",
            TaskKind::Upgrade4k => "4k",
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A billed job the sandbox created, from [`crate::SandboxHandle::tasks`] or
/// `GET /__sandbox/tasks`: what a test compares with its own records to assert "exactly one
/// task per job".
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreatedTask {
    /// The task id (for a 1080p job, its source task's id).
    pub task_id: String,
    /// What was asked for.
    pub kind: TaskKind,
    /// The prompt (generate and extend).
    pub prompt: Option<String>,
    /// The model as sent (generate, extend).
    pub model: Option<String>,
    /// The `callBackUrl` given, query included.
    pub call_back_url: Option<String>,
    /// The `imageUrls` given (generate).
    pub image_urls: Vec<String>,
    /// The task it builds on (extend, 1080p, 4K).
    pub source_task_id: Option<String>,
    /// The result index it upgrades (1080p, 4K).
    pub index: Option<usize>,
    /// Creation time, epoch ms of service time.
    pub create_time: i64,
    /// `successFlag` as last settled (0 running; for 1080p, 1 once its URL was handed out).
    pub success_flag: i64,
    /// `duration` as sent (generate; `None` when absent: the server's 8 s).
    pub duration: Option<i64>,
    /// `enableTranslation` as sent (generate; `None` when absent).
    pub enable_translation: Option<bool>,
}

impl CreatedTask {
    /// The value of query parameter `name` in [`CreatedTask::call_back_url`], if any (e.g.
    /// the `job` id a batch runner puts there), percent-decoded.
    pub fn callback_param(&self, name: &str) -> Option<String> {
        let url = reqwest::Url::parse(self.call_back_url.as_deref()?).ok()?;
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "taskId": self.task_id,
            "kind": self.kind.name(),
            "prompt": self.prompt,
            "model": self.model,
            "callBackUrl": self.call_back_url,
            "imageUrls": self.image_urls,
            "sourceTaskId": self.source_task_id,
            "index": self.index,
            "createTime": self.create_time,
            "successFlag": self.success_flag,
            "duration": self.duration,
            "enableTranslation": self.enable_translation,
        })
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Results {
    pub(crate) result_urls: Vec<String>,
    pub(crate) origin_urls: Option<Vec<String>>,
    pub(crate) full_result_urls: Option<Vec<String>>,
    pub(crate) image_urls: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub(crate) struct HdJob {
    pub(crate) due_ms: i64,
    pub(crate) url: Option<String>,
    /// When the job was asked for (service time) and its place in creation order.
    pub(crate) create_ms: i64,
    pub(crate) seq: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) kind: Kind,
    pub(crate) param_json: String,
    pub(crate) create_ms: i64,
    pub(crate) due_ms: i64,
    pub(crate) complete_ms: Option<i64>,
    pub(crate) outcome: Outcome,
    pub(crate) flag: i64,
    pub(crate) resolution: String,
    pub(crate) aspect: String,
    pub(crate) seeds: i64,
    pub(crate) call_back_url: Option<String>,
    pub(crate) cost: i64,
    pub(crate) result: Option<Results>,
    pub(crate) hd: BTreeMap<usize, HdJob>,
    pub(crate) upgrades: BTreeMap<usize, String>,
    /// Place in creation order (shared with 1080p jobs), for [`Shared::created_tasks`].
    pub(crate) seq: u64,
    pub(crate) sent: Sent,
}

impl Task {
    pub(crate) fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Generate => "generate",
            Kind::Extend { .. } => "extend",
            Kind::Upgrade4k { .. } => "4k",
        }
    }
}

/// A media file the file host serves.
#[derive(Clone, Debug)]
pub(crate) enum Asset {
    Video720,
    Video1080,
    Video4k,
    Thumb4k,
    /// A `/big`-pattern body of this many bytes (see `SandboxBuilder::result_bytes`).
    Big(u64),
    Upload {
        bytes: Bytes,
        mime: String,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct FileEntry {
    pub(crate) asset: Asset,
    pub(crate) expires_ms: i64,
    pub(crate) name: String,
}

/// A callback to send: where, and the settled task as it was when it completed (the body is
/// rendered from this snapshot by `callbacks::dispatch`).
#[derive(Debug)]
pub(crate) struct CallbackJob {
    pub(crate) url: String,
    pub(crate) task: Task,
    pub(crate) shape: Shape,
}

/// Parameters of a new task, decided by the API handlers.
pub(crate) struct NewTask {
    pub(crate) key: String,
    pub(crate) kind: Kind,
    pub(crate) param_json: String,
    pub(crate) duration_ms: i64,
    pub(crate) resolution: String,
    pub(crate) aspect: String,
    pub(crate) seeds: Option<i64>,
    pub(crate) call_back_url: Option<String>,
    pub(crate) cost: i64,
    pub(crate) outcome: Outcome,
    pub(crate) sent: Sent,
}

/// Fields of a generate request as the client sent them (absent stays `None`), for
/// [`CreatedTask`]: tests check what reached the server, not what it defaulted to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) duration: Option<i64>,
    pub(crate) enable_translation: Option<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) tasks: HashMap<String, Task>,
    due: BinaryHeap<Reverse<(i64, String)>>,
    pub(crate) files: HashMap<String, FileEntry>,
    ledger: HashMap<String, i64>,
    windows: HashMap<String, VecDeque<i64>>,
    counter: u64,
    /// Billed jobs created so far (tasks and 1080p jobs): the next one's `seq`.
    created: u64,
    ordinals: HashMap<Route, u64>,
    scripted_faults: HashMap<Route, VecDeque<Fault>>,
    scripted_outcomes: HashMap<Route, VecDeque<Outcome>>,
    /// Answers the next download-url calls give as-is, instead of a fresh link.
    pub(crate) scripted_links: VecDeque<String>,
    pub(crate) faults: FaultPlan,
    pub(crate) shape: Shape,
    pub(crate) stats: Stats,
    last_purge_ms: i64,
}

/// Everything the servers, the scheduler and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) clock: Clock,
    pub(crate) api_url: String,
    pub(crate) files_url: String,
    pub(crate) upload_url: String,
    pub(crate) wake: Notify,
    /// Notified (all waiters) whenever a request is counted, a fault injected, a task created
    /// or a callback counter changes.
    pub(crate) stats_changed: Notify,
    pub(crate) callbacks_on: AtomicBool,
    pub(crate) http: reqwest::Client,
    /// The runtime the sandbox runs on, so callbacks can be spawned from any thread.
    pub(crate) runtime: Option<tokio::runtime::Handle>,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(
        cfg: Config,
        api_url: String,
        files_url: String,
        upload_url: String,
    ) -> Arc<Self> {
        let clock = Clock::new(cfg.time_scale, cfg.epoch_ms);
        let mut state = State {
            faults: cfg.faults.clone(),
            shape: cfg.shape,
            ..State::default()
        };
        for (key, credits) in &cfg.credits {
            state.ledger.insert(key.0.clone(), *credits);
        }
        let http = reqwest::Client::builder()
            .timeout(cfg.callback_timeout)
            .build()
            .unwrap_or_default();
        Arc::new(Self {
            callbacks_on: AtomicBool::new(cfg.callbacks),
            cfg,
            clock,
            api_url,
            files_url,
            upload_url,
            wake: Notify::new(),
            stats_changed: Notify::new(),
            http,
            runtime: tokio::runtime::Handle::try_current().ok(),
            state: Mutex::new(state),
        })
    }

    /// Locks the state; a panic elsewhere never poisons the sandbox for good.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Whether `key` may use the API.
    pub(crate) fn key_ok(&self, key: &str) -> bool {
        !key.is_empty() && (self.cfg.keys.is_empty() || self.cfg.keys.iter().any(|k| k.0 == key))
    }

    /// Counts a request and decides what happens to it: scripted faults first, then the plan.
    pub(crate) fn admit(&self, route: Route) -> Drawn {
        let mut st = self.lock();
        *st.stats.requests.entry(route).or_default() += 1;
        let ordinal = {
            let n = st.ordinals.entry(route).or_default();
            *n += 1;
            *n - 1
        };
        let mut drawn = st.faults.draw(self.cfg.seed, route, ordinal);
        if let Some(fault) = st
            .scripted_faults
            .get_mut(&route)
            .and_then(VecDeque::pop_front)
        {
            match fault {
                Fault::Latency(d) => drawn.latency += d,
                f => drawn.fault = Some(f),
            }
        }
        if !drawn.latency.is_zero() {
            *st.stats
                .faults_injected
                .entry("latency".into())
                .or_default() += 1;
        }
        if let Some(f) = &drawn.fault {
            *st.stats.faults_injected.entry(f.name().into()).or_default() += 1;
            tracing::info!(%route, fault = ?f, "injecting a fault");
        }
        drop(st);
        self.stats_changed.notify_waiters();
        drawn
    }

    /// The outcome of the next task created on `route`: scripted first, then the plan's draw.
    pub(crate) fn next_outcome(st: &mut State, route: Route, drawn: Option<Outcome>) -> Outcome {
        st.scripted_outcomes
            .get_mut(&route)
            .and_then(VecDeque::pop_front)
            .or(drawn)
            .unwrap_or_default()
    }

    pub(crate) fn script_fault(&self, route: Route, fault: Fault, times: usize) {
        let mut st = self.lock();
        let queue = st.scripted_faults.entry(route).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    pub(crate) fn script_outcome(&self, route: Route, outcome: Outcome, times: usize) {
        let mut st = self.lock();
        let queue = st.scripted_outcomes.entry(route).or_default();
        queue.extend(std::iter::repeat_n(outcome, times));
    }

    pub(crate) fn clear_scripts(&self) {
        let mut st = self.lock();
        st.scripted_faults.clear();
        st.scripted_outcomes.clear();
    }

    /// Balance of `key`, opening its account with the initial credits if needed.
    pub(crate) fn balance(st: &mut State, cfg: &Config, key: &str) -> i64 {
        *st.ledger
            .entry(key.to_owned())
            .or_insert(cfg.initial_credits)
    }

    /// Debits `cost` from `key`; false (and nothing debited) when the balance is too low.
    pub(crate) fn debit(st: &mut State, cfg: &Config, key: &str, cost: i64) -> bool {
        let balance = Self::balance(st, cfg, key);
        if balance < cost {
            return false;
        }
        st.ledger.insert(key.to_owned(), balance - cost);
        true
    }

    pub(crate) fn set_credits(&self, key: &str, credits: i64) {
        self.lock().ledger.insert(key.to_owned(), credits);
    }

    pub(crate) fn credits(&self, key: &str) -> i64 {
        let mut st = self.lock();
        Self::balance(&mut st, &self.cfg, key)
    }

    /// Records a generation in `key`'s window; false when the window is full.
    pub(crate) fn rate_ok(&self, st: &mut State, key: &str, now: i64) -> bool {
        let Some(limit) = self.cfg.rate_limit else {
            return true;
        };
        let window = st.windows.entry(key.to_owned()).or_default();
        let horizon = now - ms(limit.window);
        while window.front().is_some_and(|t| *t <= horizon) {
            window.pop_front();
        }
        if window.len() >= limit.max as usize {
            st.stats.rate_limited += 1;
            return false;
        }
        window.push_back(now);
        true
    }

    /// A fresh 32-hex-digit id, deterministic from the seed.
    pub(crate) fn new_id(&self, st: &mut State) -> String {
        st.counter += 1;
        let a = mix(self.cfg.seed ^ mix(st.counter));
        let b = mix(a ^ 0x7461_736b);
        format!("{a:016x}{b:016x}")
    }

    /// Creates a task (the caller has validated, debited and rate-checked).
    pub(crate) fn create_task(&self, st: &mut State, new: NewTask, now: i64) -> String {
        let id = self.new_id(st);
        let duration = if new.outcome == Outcome::Moderation {
            new.duration_ms * i64::from(self.cfg.durations.moderation_percent) / 100
        } else {
            new.duration_ms
        };
        let seeds = new
            .seeds
            .unwrap_or_else(|| 10_000 + (mix(st.counter ^ self.cfg.seed) % 90_000) as i64);
        let task = Task {
            id: id.clone(),
            key: new.key.clone(),
            kind: new.kind,
            param_json: new.param_json,
            create_ms: now,
            due_ms: now + duration,
            complete_ms: None,
            outcome: new.outcome,
            flag: 0,
            resolution: new.resolution,
            aspect: new.aspect,
            seeds,
            call_back_url: new.call_back_url,
            cost: new.cost,
            result: None,
            hd: BTreeMap::new(),
            upgrades: BTreeMap::new(),
            seq: Self::next_seq(st),
            sent: new.sent,
        };
        tracing::debug!(task_id = %id, kind = task.kind_name(), outcome = task.outcome.name(), "task created");
        st.due.push(Reverse((task.due_ms, id.clone())));
        st.tasks.insert(id.clone(), task);
        st.stats.tasks_created += 1;
        *st.stats.tasks_by_key.entry(new.key).or_default() += 1;
        self.wake.notify_one();
        self.stats_changed.notify_waiters();
        id
    }

    /// The creation-order number of the next billed job (task or 1080p job).
    pub(crate) fn next_seq(st: &mut State) -> u64 {
        st.created += 1;
        st.created
    }

    /// Every billed job still remembered (tasks are forgotten after twice the retention
    /// window), in creation order: generations, extensions, 4K tasks and 1080p jobs.
    pub(crate) fn created_tasks(&self) -> Vec<CreatedTask> {
        let st = self.lock();
        let mut out: Vec<(u64, CreatedTask)> = Vec::with_capacity(st.tasks.len());
        for task in st.tasks.values() {
            let params: serde_json::Value =
                serde_json::from_str(&task.param_json).unwrap_or_default();
            let text = |field: &str| params[field].as_str().map(str::to_owned);
            let (kind, source_task_id, index) = match &task.kind {
                Kind::Generate => (TaskKind::Generate, None, None),
                Kind::Extend { source } => (TaskKind::Extend, Some(source.clone()), None),
                Kind::Upgrade4k { source, index } => {
                    (TaskKind::Upgrade4k, Some(source.clone()), Some(*index))
                }
            };
            let image_urls = params["imageUrls"]
                .as_array()
                .map(|urls| {
                    urls.iter()
                        .filter_map(|u| u.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            out.push((
                task.seq,
                CreatedTask {
                    task_id: task.id.clone(),
                    kind,
                    prompt: text("prompt"),
                    model: text("model"),
                    call_back_url: task.call_back_url.clone(),
                    image_urls,
                    source_task_id,
                    index,
                    create_time: task.create_ms,
                    success_flag: task.flag,
                    duration: task.sent.duration,
                    enable_translation: task.sent.enable_translation,
                },
            ));
            for (index, job) in &task.hd {
                out.push((
                    job.seq,
                    CreatedTask {
                        task_id: task.id.clone(),
                        kind: TaskKind::Hd1080p,
                        prompt: None,
                        model: None,
                        call_back_url: None,
                        image_urls: Vec::new(),
                        source_task_id: Some(task.id.clone()),
                        index: Some(*index),
                        create_time: job.create_ms,
                        success_flag: i64::from(job.url.is_some()),
                        duration: None,
                        enable_translation: None,
                    },
                ));
            }
        }
        out.sort_unstable_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, task)| task).collect()
    }

    /// Mints a unique, expiring file-host URL for `asset`.
    pub(crate) fn mint_url(
        &self,
        st: &mut State,
        asset: Asset,
        name: &str,
        expires_ms: i64,
    ) -> String {
        st.counter += 1;
        let token = format!(
            "{:016x}",
            mix(self.cfg.seed ^ mix(st.counter ^ 0x6669_6c65))
        );
        st.files.insert(
            token.clone(),
            FileEntry {
                asset,
                expires_ms,
                name: name.to_owned(),
            },
        );
        format!("{}/r/{token}/{name}", self.files_url)
    }

    /// Finishes task `id` if its time has come; returns the callback to send, if any.
    pub(crate) fn settle(&self, st: &mut State, id: &str, now: i64) -> Option<CallbackJob> {
        let task = st.tasks.get(id)?;
        if task.flag != 0 || task.due_ms > now {
            return None;
        }
        let done = task.due_ms;
        let outcome = task.outcome;
        let kind = task.kind.clone();
        let resolution = task.resolution.clone();
        let portrait = task.aspect != "16:9";
        let (key, cost) = (task.key.clone(), task.cost);
        let expires = done + ms(self.cfg.result_url_ttl);
        let result = (outcome == Outcome::Success).then(|| match &kind {
            Kind::Generate => {
                let asset = match (self.cfg.result_bytes, resolution.as_str()) {
                    (Some(bytes), _) => Asset::Big(bytes),
                    (None, "1080p") => Asset::Video1080,
                    (None, "4k") => Asset::Video4k,
                    (None, _) => Asset::Video720,
                };
                let result = self.mint_url(st, asset.clone(), "result_0.mp4", expires);
                let origin =
                    portrait.then(|| vec![self.mint_url(st, asset, "origin_0.mp4", expires)]);
                Results {
                    result_urls: vec![result],
                    origin_urls: origin,
                    full_result_urls: None,
                    image_urls: None,
                }
            }
            Kind::Extend { .. } => Results {
                result_urls: vec![self.mint_url(st, Asset::Video720, "segment_0.mp4", expires)],
                origin_urls: None,
                full_result_urls: Some(vec![self.mint_url(
                    st,
                    Asset::Video720,
                    "full_0.mp4",
                    expires,
                )]),
                image_urls: None,
            },
            Kind::Upgrade4k { index, .. } => Results {
                result_urls: vec![self.mint_url(
                    st,
                    Asset::Video4k,
                    &format!("result_{index}_4k.mp4"),
                    expires,
                )],
                origin_urls: None,
                full_result_urls: None,
                image_urls: Some(vec![self.mint_url(
                    st,
                    Asset::Thumb4k,
                    &format!("result_{index}_4k.jpg"),
                    expires,
                )]),
            },
        });
        if outcome != Outcome::Success && self.cfg.refund_failed {
            if let Some(balance) = st.ledger.get_mut(&key) {
                *balance += cost;
            }
        }
        let shape = st.shape;
        let task = st.tasks.get_mut(id)?;
        tracing::debug!(task_id = %id, outcome = outcome.name(), "task completed");
        task.flag = outcome.success_flag();
        task.complete_ms = Some(done);
        task.result = result;
        let url = task.call_back_url.clone()?;
        if !self.callbacks_on.load(Ordering::Relaxed) {
            return None;
        }
        Some(CallbackJob {
            url,
            task: task.clone(),
            shape,
        })
    }

    /// Settles every task whose time has come; returns the callbacks and the next due time.
    pub(crate) fn settle_due(&self) -> (Vec<CallbackJob>, Option<i64>) {
        let now = self.now();
        let mut st = self.lock();
        let mut jobs = Vec::new();
        while let Some(Reverse((due, _))) = st.due.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, id))) = st.due.pop() else {
                break;
            };
            // A stale heap entry (the task was rescheduled) is skipped.
            if st.tasks.get(&id).is_some_and(|t| t.due_ms == due) {
                jobs.extend(self.settle(&mut st, &id, now));
            }
        }
        self.purge(&mut st, now);
        let next = st.due.peek().map(|Reverse((due, _))| *due);
        (jobs, next)
    }

    /// Forgets, at most once per hour of service time, what can no longer be observed
    /// differently: tasks past twice the retention window (until then they answer the
    /// "14 days" message) and URLs expired for longer than the retention window. This keeps a
    /// long-running sandbox's memory bounded.
    fn purge(&self, st: &mut State, now: i64) {
        const HOUR_MS: i64 = 3600 * 1000;
        if now - st.last_purge_ms < HOUR_MS {
            return;
        }
        st.last_purge_ms = now;
        let retention = ms(self.cfg.retention);
        st.tasks
            .retain(|_, t| t.flag == 0 || now - t.create_ms <= retention.saturating_mul(2));
        st.files.retain(|_, f| now - f.expires_ms <= retention);
    }

    /// Moves task `id` (and its pending 1080p and 4K jobs, whose answers carry its id) to
    /// completion now.
    pub(crate) fn complete_now(&self, id: &str) -> Option<Vec<CallbackJob>> {
        let now = self.now();
        let mut st = self.lock();
        let task = st.tasks.get_mut(id)?;
        for job in task.hd.values_mut() {
            job.due_ms = job.due_ms.min(now);
        }
        let upgrades: Vec<String> = task.upgrades.values().cloned().collect();
        let mut jobs: Vec<CallbackJob> = self.complete_one(&mut st, id, now).into_iter().collect();
        for upgrade in upgrades {
            jobs.extend(self.complete_one(&mut st, &upgrade, now));
        }
        Some(jobs)
    }

    /// Completes task `id` now if it is running.
    fn complete_one(&self, st: &mut State, id: &str, now: i64) -> Option<CallbackJob> {
        let task = st.tasks.get_mut(id)?;
        if task.flag != 0 {
            return None;
        }
        task.due_ms = now.max(task.create_ms);
        let due = task.due_ms;
        st.due.push(Reverse((due, id.to_owned())));
        self.settle(st, id, now.max(due))
    }

    /// Completes every running task (and pending 1080p job) now; returns how many tasks.
    pub(crate) fn complete_all(&self) -> (usize, Vec<CallbackJob>) {
        let running: Vec<String> = {
            let mut st = self.lock();
            let now = self.now();
            for task in st.tasks.values_mut() {
                for job in task.hd.values_mut() {
                    job.due_ms = job.due_ms.min(now);
                }
            }
            st.tasks
                .values()
                .filter(|t| t.flag == 0)
                .map(|t| t.id.clone())
                .collect()
        };
        let jobs = running
            .iter()
            .filter_map(|id| self.complete_now(id))
            .flatten()
            .collect();
        (running.len(), jobs)
    }

    pub(crate) fn set_outcome(&self, id: &str, outcome: Outcome) -> bool {
        let mut st = self.lock();
        match st.tasks.get_mut(id) {
            Some(task) if task.flag == 0 => {
                task.outcome = outcome;
                true
            }
            _ => false,
        }
    }

    /// A task's state, settled to now, with the callback its settling released (if any).
    pub(crate) fn task_info(&self, id: &str) -> (Option<TaskInfo>, Option<CallbackJob>) {
        let now = self.now();
        let mut st = self.lock();
        let job = self.settle(&mut st, id, now);
        let info = st.tasks.get(id).map(|task| TaskInfo {
            task_id: task.id.clone(),
            success_flag: task.flag,
            outcome: task.outcome,
            kind: task.kind_name(),
            call_back_url: task.call_back_url.clone(),
            create_time: task.create_ms,
            complete_time: task.complete_ms.unwrap_or(task.due_ms),
            result_urls: task
                .result
                .as_ref()
                .map(|r| r.result_urls.clone())
                .unwrap_or_default(),
        });
        (info, job)
    }
}
