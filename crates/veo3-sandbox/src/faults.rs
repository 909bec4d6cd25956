//! Routes, faults, task outcomes and the `--faults` grammar.
//!
//! A fault is something the *transport or front door* does to one request (drop the connection,
//! answer 503, lose the answer); an outcome is what happens to a *task* the request created
//! (moderation failure, generation failure...). Both can be scripted for the next requests of a
//! route, or drawn at random from a [`FaultPlan`] whose draws depend only on the seed, the route
//! and the request's ordinal on that route, so a run is reproducible whatever the interleaving of
//! other routes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use veo3_types::Endpoint;

/// A route of the sandbox, as named in fault specs, scripts and [`crate::Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Route {
    /// `POST /api/v1/veo/generate` (spec name `generate`).
    Generate,
    /// `GET /api/v1/veo/record-info` (spec name `record-info`, alias `status`).
    RecordInfo,
    /// `GET /api/v1/veo/get-1080p-video` (spec name `1080p`).
    Hd1080p,
    /// `POST /api/v1/veo/get-4k-video` (spec name `4k`).
    Upgrade4k,
    /// `POST /api/v1/veo/extend` (spec name `extend`).
    Extend,
    /// `GET /api/v1/chat/credit` (spec name `credit`, alias `credits`).
    Credits,
    /// `POST /api/v1/common/download-url` (spec name `download-url`).
    DownloadUrl,
    /// The three `POST /api/file-*-upload` routes (spec name `upload`).
    Upload,
    /// Any `GET`/`HEAD` on the file host (spec name `download`).
    Download,
}

impl Route {
    /// Every route, in a stable order.
    pub const ALL: [Route; 9] = [
        Route::Generate,
        Route::RecordInfo,
        Route::Hd1080p,
        Route::Upgrade4k,
        Route::Extend,
        Route::Credits,
        Route::DownloadUrl,
        Route::Upload,
        Route::Download,
    ];

    /// The name used in fault specs and statistics.
    pub fn name(self) -> &'static str {
        match self {
            Route::Generate => "generate",
            Route::RecordInfo => "record-info",
            Route::Hd1080p => "1080p",
            Route::Upgrade4k => "4k",
            Route::Extend => "extend",
            Route::Credits => "credit",
            Route::DownloadUrl => "download-url",
            Route::Upload => "upload",
            Route::Download => "download",
        }
    }

    /// The client-facing endpoint this route serves (`None` for uploads and downloads).
    pub fn endpoint(self) -> Option<Endpoint> {
        Some(match self {
            Route::Generate => Endpoint::Generate,
            Route::RecordInfo => Endpoint::RecordInfo,
            Route::Hd1080p => Endpoint::Hd1080p,
            Route::Upgrade4k => Endpoint::Upgrade4k,
            Route::Extend => Endpoint::Extend,
            Route::Credits => Endpoint::Credits,
            Route::DownloadUrl => Endpoint::DownloadUrl,
            Route::Upload | Route::Download => return None,
        })
    }

    /// The API path of the route (`None` for the file host's `download`).
    pub fn path(self) -> Option<&'static str> {
        match self {
            Route::Upload => Some("/api/file-stream-upload"),
            other => other.endpoint().map(Endpoint::path),
        }
    }

    /// The API route serving `path`, if any.
    pub(crate) fn from_api_path(path: &str) -> Option<Route> {
        match path {
            "/api/file-url-upload" | "/api/file-base64-upload" => Some(Route::Upload),
            _ => Route::ALL.into_iter().find(|r| r.path() == Some(path)),
        }
    }

    /// Whether requests on this route create tasks (and so can carry an [`Outcome`]).
    pub fn creates_tasks(self) -> bool {
        matches!(self, Route::Generate | Route::Extend | Route::Upgrade4k)
    }

    fn index(self) -> u64 {
        Route::ALL.iter().position(|r| *r == self).unwrap_or(0) as u64
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Route {
    type Err = FaultSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "status" => Ok(Route::RecordInfo),
            "credits" => Ok(Route::Credits),
            "hd" | "get-1080p-video" => Ok(Route::Hd1080p),
            "get-4k-video" => Ok(Route::Upgrade4k),
            _ => Route::ALL
                .into_iter()
                .find(|r| r.name() == s)
                .ok_or_else(|| FaultSpecError::new(format!("unknown route {s:?}"))),
        }
    }
}

/// What the sandbox does to one request instead of (or on top of) answering it normally.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Close the TCP connection before reading the request further or answering (`drop`).
    /// Nothing is processed: no task is created.
    Drop,
    /// Process the request fully (the task exists, credits are debited), then close the
    /// connection without answering (`lost`): the case that tests at-most-once submission.
    Lost,
    /// Answer this bare HTTP status with a short HTML body, as a proxy in front of the API would
    /// (`http@STATUS`, alias `5xx`, default 503).
    Http(u16),
    /// Answer an envelope with this business code inside HTTP 200 (or mirrored into the status
    /// when the sandbox mirrors codes) without processing (`code@CODE`, aliases `500`, `455`).
    Envelope(i64),
    /// Answer the 429 envelope with a `Retry-After` header of this many seconds
    /// (`429@SECS`, default 1).
    RateLimited(u64),
    /// Delay the answer by this long in real time, then answer normally (`latency@MS`).
    Latency(Duration),
    /// Process the request, then answer a truncated, unparseable JSON body (`malformed`).
    Malformed,
    /// File host only: send the headers and half the body, then cut the connection (`cut`).
    Cut,
    /// File host only: send the headers and half the body, pause this long (real time), then
    /// send the rest (`stall@MS`, default 1000): a download caught half-way, for tests that
    /// interrupt one.
    Stall(Duration),
    /// Answer a redirect with this status without processing (`redirect@STATUS`, default
    /// 307), as a proxy or a moved API would: to `to`, or (when `None`, the only form the
    /// grammar writes) to the same URL on the same host, so a client that follows it gets
    /// the normal answer.
    Redirect {
        /// The redirect status.
        status: u16,
        /// The `Location`; `None` for the request's own URL.
        to: Option<String>,
    },
    /// record-info only, and not drawn per request: every read of a task younger than this
    /// (service time since its creation) answers 422 `record is null`, as clients of kie's
    /// newer task API report for a while after creation (`record-null-early@MS`, default
    /// 1500). The reads it answers count as injected faults of this name.
    RecordNullEarly(Duration),
}

impl Fault {
    /// The fault's name in specs and statistics.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Drop => "drop",
            Fault::Lost => "lost",
            Fault::Http(_) => "http",
            Fault::Envelope(_) => "code",
            Fault::RateLimited(_) => "429",
            Fault::Latency(_) => "latency",
            Fault::Malformed => "malformed",
            Fault::Cut => "cut",
            Fault::Stall(_) => "stall",
            Fault::Redirect { .. } => "redirect",
            Fault::RecordNullEarly(_) => "record-null-early",
        }
    }
}

/// How a task ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Outcome {
    /// The task succeeds (`successFlag` 1).
    #[default]
    Success,
    /// Rejected by content moderation: `successFlag` 2, `errorCode` 400 (`moderation`).
    Moderation,
    /// An input image could not be fetched: `successFlag` 2, `errorCode` 451 (`image`).
    ImageFetchFailed,
    /// Internal error or timeout upstream: `successFlag` 2, `errorCode` 500 (`internal`).
    Internal,
    /// Generation failed after creation: `successFlag` 3, `errorCode` 501 (`failed`).
    GenerationFailed,
}

impl Outcome {
    /// The outcome's name in specs.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Moderation => "moderation",
            Outcome::ImageFetchFailed => "image",
            Outcome::Internal => "internal",
            Outcome::GenerationFailed => "failed",
        }
    }

    /// `successFlag` of a task that ended this way.
    pub fn success_flag(self) -> i64 {
        match self {
            Outcome::Success => 1,
            Outcome::Moderation | Outcome::ImageFetchFailed | Outcome::Internal => 2,
            Outcome::GenerationFailed => 3,
        }
    }

    /// `errorCode` and `errorMessage` of a task that ended this way (`None` on success).
    pub fn error(self) -> Option<(i64, &'static str)> {
        match self {
            Outcome::Success => None,
            Outcome::Moderation => Some((
                400,
                "Your prompt was flagged by Website as violating content policies.",
            )),
            Outcome::ImageFetchFailed => Some((
                451,
                "Failed to fetch the image. Kindly verify any access limits set by you or your service provider.",
            )),
            Outcome::Internal => Some((500, "Internal Error, Please try again later.")),
            Outcome::GenerationFailed => Some((501, "Video generation task failed")),
        }
    }
}

impl FromStr for Outcome {
    type Err = FaultSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "success" => Outcome::Success,
            "moderation" => Outcome::Moderation,
            "image" | "451" => Outcome::ImageFetchFailed,
            "internal" => Outcome::Internal,
            "failed" | "501" => Outcome::GenerationFailed,
            _ => return Err(FaultSpecError::new(format!("unknown outcome {s:?}"))),
        })
    }
}

/// One action of a fault spec: a [`Fault`] on the request, or an [`Outcome`] for the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A fault applied to the request.
    Fault(Fault),
    /// An outcome for the task the request creates.
    Outcome(Outcome),
}

impl FromStr for Action {
    type Err = FaultSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = match s.split_once('@') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let num = |default: u64| -> Result<u64, FaultSpecError> {
            match arg {
                None => Ok(default),
                Some(a) => a
                    .parse()
                    .map_err(|_| FaultSpecError::new(format!("bad argument {a:?} for {name:?}"))),
            }
        };
        let fault = match name {
            "drop" => Fault::Drop,
            "lost" => Fault::Lost,
            "malformed" => Fault::Malformed,
            "cut" => Fault::Cut,
            "stall" => Fault::Stall(Duration::from_millis(num(1000)?)),
            "http" | "5xx" => {
                let status = num(503)?;
                if !(100..=599).contains(&status) {
                    return Err(FaultSpecError::new(format!("bad HTTP status {status}")));
                }
                Fault::Http(status as u16)
            }
            "redirect" => {
                let status = num(307)?;
                if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                    return Err(FaultSpecError::new(format!("bad redirect status {status}")));
                }
                Fault::Redirect {
                    status: status as u16,
                    to: None,
                }
            }
            "code" => Fault::Envelope(num(500)? as i64),
            "record-null-early" => Fault::RecordNullEarly(Duration::from_millis(num(1500)?)),
            // Shorthands for the envelope codes a client most needs to survive.
            "500" | "455" | "505" | "408" if arg.is_none() => {
                Fault::Envelope(name.parse().unwrap_or(500))
            }
            "429" => Fault::RateLimited(num(1)?),
            "latency" => Fault::Latency(Duration::from_millis(num(100)?)),
            other => return other.parse().map(Action::Outcome),
        };
        Ok(Action::Fault(fault))
    }
}

/// Which routes a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RouteSel {
    Any,
    One(Route),
}

/// One `route:action=probability` rule.
#[derive(Clone, Debug, PartialEq)]
struct Rule {
    route: RouteSel,
    action: Action,
    probability: f64,
}

/// A set of random faults and outcomes, parsed from the `--faults` grammar.
///
/// ```text
/// spec   := rule ("," rule)*
/// rule   := route ":" action ["=" probability]      probability in [0, 1], default 1
/// route  := generate | record-info | status | 1080p | 4k | extend | credit | download-url
///         | upload | download | "*"                 "*" = every API route (not download)
/// action := drop | lost | malformed | cut | stall[@MS] | latency@MS | http@STATUS | 5xx[@STATUS]
///         | code@CODE | 500 | 455 | 429[@RETRY_AFTER_SECS] | redirect[@STATUS] (request faults)
///         | record-null-early[@MS]          (record-info only, probability 1: see below)
///         | success | moderation | image | internal | failed                 (task outcomes)
/// ```
///
/// For example `generate:lost=0.1,status:5xx=0.05,download:cut=0.2,generate:moderation=0.1`.
///
/// `record-info:record-null-early@MS` is a rule about tasks, not a draw: every record-info
/// read of a task during the first MS of its life (service time) answers 422
/// `record is null` ([`Fault::RecordNullEarly`]).
/// Whether a rule fires for a request depends only on the seed, the route, the request's
/// ordinal on that route and the rule's position, so the same run draws the same faults.
///
/// ```
/// use veo3_sandbox::FaultPlan;
/// let plan: FaultPlan = "generate:lost=0.1,status:latency@20,download:cut".parse().unwrap();
/// assert_eq!(plan.len(), 3);
/// assert!("generate:explode".parse::<FaultPlan>().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    rules: Vec<Rule>,
}

impl FaultPlan {
    /// A plan without any rule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the plan has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Adds a rule for `route` (or every API route when `None`).
    pub fn with(mut self, route: Option<Route>, action: Action, probability: f64) -> Self {
        self.rules.push(Rule {
            route: route.map_or(RouteSel::Any, RouteSel::One),
            action,
            probability: probability.clamp(0.0, 1.0),
        });
        self
    }

    /// Draws the faults and the outcome for request number `ordinal` on `route`.
    pub(crate) fn draw(&self, seed: u64, route: Route, ordinal: u64) -> Drawn {
        let mut drawn = Drawn::default();
        for (i, rule) in self.rules.iter().enumerate() {
            let applies = match rule.route {
                RouteSel::Any => route != Route::Download,
                RouteSel::One(r) => r == route,
            };
            if !applies {
                continue;
            }
            let h =
                mix(seed ^ mix(route.index() << 32 ^ i as u64) ^ mix(ordinal.wrapping_add(0x5eed)));
            let u = (h >> 11) as f64 / (1u64 << 53) as f64;
            if u >= rule.probability {
                continue;
            }
            match &rule.action {
                // Applied by record-info from the task's age, never drawn.
                Action::Fault(Fault::RecordNullEarly(_)) => {}
                Action::Fault(Fault::Latency(d)) => drawn.latency += *d,
                Action::Fault(f) if drawn.fault.is_none() => drawn.fault = Some(f.clone()),
                Action::Outcome(o) if drawn.outcome.is_none() && route.creates_tasks() => {
                    drawn.outcome = Some(*o)
                }
                _ => {}
            }
        }
        drawn
    }

    /// The window of a `record-null-early` rule ([`Fault::RecordNullEarly`]): the longest
    /// one when there are several, `None` without any.
    pub fn record_null_early(&self) -> Option<Duration> {
        self.rules
            .iter()
            .filter_map(|rule| match rule.action {
                Action::Fault(Fault::RecordNullEarly(window)) => Some(window),
                _ => None,
            })
            .max()
    }
}

impl FromStr for FaultPlan {
    type Err = FaultSpecError;
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut plan = FaultPlan::new();
        for rule in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (route, rest) = rule
                .split_once(':')
                .ok_or_else(|| FaultSpecError::new(format!("rule {rule:?} lacks \"route:\"")))?;
            let (action, probability) = match rest.split_once('=') {
                Some((a, p)) => {
                    let p: f64 = p.parse().map_err(|_| {
                        FaultSpecError::new(format!("bad probability {p:?} in {rule:?}"))
                    })?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(FaultSpecError::new(format!(
                            "probability {p} in {rule:?} is outside [0, 1]"
                        )));
                    }
                    (a, p)
                }
                None => (rest, 1.0),
            };
            let route = match route.trim() {
                "*" => None,
                r => Some(r.parse::<Route>()?),
            };
            let action: Action = action.trim().parse()?;
            if let Action::Fault(Fault::RecordNullEarly(_)) = &action {
                if route != Some(Route::RecordInfo) || probability < 1.0 {
                    return Err(FaultSpecError::new(format!(
                        "record-null-early applies to every read of a young task: write it as record-info:record-null-early@MS, without a probability ({rule:?})"
                    )));
                }
            }
            if let (Some(r), Action::Outcome(_)) = (route, &action) {
                if !r.creates_tasks() {
                    return Err(FaultSpecError::new(format!(
                        "route {r} creates no task, so it cannot carry an outcome ({rule:?})"
                    )));
                }
            }
            plan = plan.with(route, action, probability);
        }
        Ok(plan)
    }
}

/// What [`FaultPlan::draw`] picked for one request.
#[derive(Debug, Default)]
pub(crate) struct Drawn {
    pub(crate) latency: Duration,
    pub(crate) fault: Option<Fault>,
    pub(crate) outcome: Option<Outcome>,
}

/// A fault spec that does not follow the grammar of [`FaultPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSpecError {
    message: String,
}

impl FaultSpecError {
    fn new(message: String) -> Self {
        Self { message }
    }
}

impl fmt::Display for FaultSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid fault spec: {}", self.message)
    }
}

impl std::error::Error for FaultSpecError {}

/// SplitMix64's finaliser: a cheap, well-mixed hash for deterministic draws and ids.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let plan: FaultPlan = "generate:lost=0.1,status:5xx=0.05,download:cut=0.2,*:latency@5"
            .parse()
            .expect("valid spec");
        assert_eq!(plan.len(), 4);
        assert_eq!(plan.rules[1].route, RouteSel::One(Route::RecordInfo));
        assert_eq!(plan.rules[1].action, Action::Fault(Fault::Http(503)));
        assert_eq!(plan.rules[3].route, RouteSel::Any);
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "generate",
            "nowhere:drop",
            "generate:drop=2",
            "status:moderation",
            "x:y=z",
        ] {
            assert!(
                bad.parse::<FaultPlan>().is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn draws_are_deterministic_and_roughly_calibrated() {
        let plan: FaultPlan = "generate:drop=0.25".parse().expect("valid spec");
        let hits = |seed| {
            (0..4000)
                .filter(|n| plan.draw(seed, Route::Generate, *n).fault.is_some())
                .count()
        };
        assert_eq!(hits(7), hits(7));
        assert!((800..1200).contains(&hits(7)), "{}", hits(7));
        assert!(plan.draw(7, Route::Credits, 0).fault.is_none());
    }

    #[test]
    fn envelope_aliases_carry_their_code() {
        assert_eq!(
            "455".parse::<Action>(),
            Ok(Action::Fault(Fault::Envelope(455)))
        );
        assert_eq!(
            "code@402".parse::<Action>(),
            Ok(Action::Fault(Fault::Envelope(402)))
        );
        assert_eq!(
            "429@7".parse::<Action>(),
            Ok(Action::Fault(Fault::RateLimited(7)))
        );
        assert_eq!(
            "redirect".parse::<Action>(),
            Ok(Action::Fault(Fault::Redirect {
                status: 307,
                to: None
            }))
        );
        assert!("redirect@200".parse::<Action>().is_err());
    }

    #[test]
    fn record_null_early_is_a_record_info_rule_never_drawn() {
        let plan: FaultPlan = "status:record-null-early@2500,generate:drop=0.5"
            .parse()
            .expect("valid spec");
        assert_eq!(plan.record_null_early(), Some(Duration::from_millis(2500)));
        assert!((0..100).all(|n| plan.draw(1, Route::RecordInfo, n).fault.is_none()));
        let default: FaultPlan = "record-info:record-null-early".parse().expect("valid");
        assert_eq!(
            default.record_null_early(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(FaultPlan::new().record_null_early(), None);
        for bad in [
            "generate:record-null-early@10",
            "*:record-null-early@10",
            "record-info:record-null-early@10=0.5",
            "record-info:record-null-early@soon",
        ] {
            assert!(bad.parse::<FaultPlan>().is_err(), "{bad}");
        }
    }
}
