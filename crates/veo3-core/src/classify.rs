//! Classification: from what happened to one request, decide what it means.
//!
//! This is the heart of the at-most-once guarantee, written as one pure function over plain
//! facts ([`Outcome`]) and tested as a table. The rules, from the reference:
//!
//! - The envelope `code` is authoritative; the HTTP status is read only when the body is not an
//!   envelope.
//! - Billable endpoints (generate, extend, 4K) are retried only when the failure proves that
//!   no task was created: the connection was never established, or the server explicitly
//!   rejected the request (429 rate limit, 455 maintenance, HTTP 408 "request not received").
//!   A timeout, a broken connection, a 5xx or an unreadable success after the request was sent
//!   becomes [`Stop::OutcomeUnknown`], never a silent second submission.
//! - Read-only endpoints (record-info, 1080p, credits, download-url) retry transient failures
//!   freely: repeating them changes nothing on the server. That includes an unreadable answer
//!   (a success status whose body is not JSON, is cut short, or is a proxy's HTML page), which
//!   on a billable endpoint stays "outcome unknown".
//! - A redirect (301, 302, 303, 307, 308) is never followed for a billable endpoint: it is
//!   [`Stop::Redirected`], an error naming the target, and the body is never sent anywhere
//!   else. A read-only call may [`Disposition::Follow`] it, to the same host only
//!   ([`Redirect::follow`](crate::Redirect::follow) decides), so the key never travels.
//! - The 1080p endpoint's "processing" (code 400) and the 4K endpoint's 422 "processing" (and
//!   its first 200 without URLs) are [`Disposition::Pending`]; a 4K 422 that carries URLs is
//!   [`Disposition::Success`].

use std::time::Duration;

use veo3_types::{ApiCode, Endpoint, is_processing_message};

use crate::http::TransportPhase;
use crate::retry::RetryReason;

/// What happened to one request, reduced to the facts classification needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome<'a> {
    /// An HTTP answer arrived.
    Answer(Answer<'a>),
    /// No (complete) answer.
    Transport {
        /// How far the exchange got.
        phase: TransportPhase,
        /// Whether it timed out.
        timed_out: bool,
    },
}

/// The facts of an HTTP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Answer<'a> {
    /// The HTTP status.
    pub status: u16,
    /// The envelope code, or `None` when the body is missing or not an envelope.
    pub code: Option<ApiCode>,
    /// The envelope message (`""` without an envelope).
    pub message: &'a str,
    /// `true` when `data.resultUrls` is a non-empty list (a finished 4K answer).
    pub has_result_urls: bool,
    /// The parsed `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl<'a> Answer<'a> {
    /// An answer carrying an envelope with `code` and `message` in an HTTP 200.
    pub fn envelope(code: ApiCode, message: &'a str) -> Self {
        Self {
            status: 200,
            code: Some(code),
            message,
            has_result_urls: false,
            retry_after: None,
        }
    }

    /// An answer without a usable envelope.
    pub fn bare(status: u16) -> Self {
        Self {
            status,
            code: None,
            message: "",
            has_result_urls: false,
            retry_after: None,
        }
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Sets [`Answer::has_result_urls`].
    pub fn with_result_urls(mut self, has_result_urls: bool) -> Self {
        self.has_result_urls = has_result_urls;
        self
    }

    /// Sets [`Answer::retry_after`].
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}

/// What an outcome means for the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// The answer is good: decode its `data`.
    Success,
    /// The work is still in progress on the server (an upgrade being produced): the call
    /// succeeded, and its value says "not yet".
    Pending,
    /// Safe to send again, after `after` if the server said so (else after the backoff).
    Retry {
        /// Why.
        reason: RetryReason,
        /// The server's `Retry-After`.
        after: Option<Duration>,
    },
    /// A redirect answer to a read-only call: send the same request to its `Location`, if
    /// that is on the API's own host (see [`Redirect::follow`](crate::Redirect::follow)).
    Follow,
    /// Do not send again.
    Stop(Stop),
}

/// Why a call must not be repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stop {
    /// The server answered definitively (bad input, auth, credits, not found, ...). Nothing
    /// was created.
    Rejected,
    /// A billable request may have been processed; repeating it could bill twice.
    OutcomeUnknown,
    /// A billable request was answered with a redirect. It is not sent to the target: a
    /// second POST could bill twice, and the target may be another host.
    Redirected,
}

/// Classifies `outcome` for `endpoint`. Pure and total: every input has an answer.
///
/// ```
/// use veo3_core::{classify, Answer, Disposition, Outcome, Stop, TransportPhase};
/// use veo3_types::{ApiCode, Endpoint};
///
/// // The connection dropped after the generate request went out: never resend.
/// let dropped = Outcome::Transport { phase: TransportPhase::AwaitingResponse, timed_out: false };
/// assert_eq!(classify(Endpoint::Generate, &dropped), Disposition::Stop(Stop::OutcomeUnknown));
/// // The same on record-info is harmless to retry.
/// assert!(matches!(classify(Endpoint::RecordInfo, &dropped), Disposition::Retry { .. }));
/// // A 4K "422" with URLs is the finished video.
/// let done = Answer::envelope(ApiCode::Unprocessable, "The video has been generated successfully")
///     .with_result_urls(true);
/// assert_eq!(classify(Endpoint::Upgrade4k, &Outcome::Answer(done)), Disposition::Success);
/// ```
pub fn classify(endpoint: Endpoint, outcome: &Outcome<'_>) -> Disposition {
    match *outcome {
        Outcome::Transport { phase, timed_out } => classify_transport(endpoint, phase, timed_out),
        Outcome::Answer(answer) => match answer.code {
            Some(code) => classify_code(endpoint, code, &answer),
            None => classify_status(endpoint, &answer),
        },
    }
}

fn classify_transport(endpoint: Endpoint, phase: TransportPhase, timed_out: bool) -> Disposition {
    if !phase.may_have_reached_server() {
        return retry(RetryReason::ConnectFailed, None);
    }
    if endpoint.is_billable() {
        return Disposition::Stop(Stop::OutcomeUnknown);
    }
    retry(
        if timed_out {
            RetryReason::Timeout
        } else {
            RetryReason::ConnectionLost
        },
        None,
    )
}

fn classify_code(endpoint: Endpoint, code: ApiCode, answer: &Answer<'_>) -> Disposition {
    let upgrade = matches!(endpoint, Endpoint::Hd1080p | Endpoint::Upgrade4k);
    match code {
        // The first 4K request is accepted with null URLs: accepted, not finished.
        ApiCode::Success if endpoint == Endpoint::Upgrade4k && !answer.has_result_urls => {
            Disposition::Pending
        }
        ApiCode::Success => Disposition::Success,
        // A repeated 4K request reports a finished video as 422 with the URLs.
        ApiCode::Unprocessable if endpoint == Endpoint::Upgrade4k && answer.has_result_urls => {
            Disposition::Success
        }
        ApiCode::BadRequest | ApiCode::Unprocessable
            if upgrade && is_processing_message(answer.message) =>
        {
            Disposition::Pending
        }
        // Rejections: the request was dropped before any work, so even billable calls may be
        // repeated.
        ApiCode::RateLimited => retry(RetryReason::RateLimited, answer.retry_after),
        ApiCode::ServiceUnavailable => retry(RetryReason::ServiceUnavailable, answer.retry_after),
        // Server-side failures and upstream timeouts say nothing about whether a task was
        // created before things went wrong.
        ApiCode::InternalError | ApiCode::UpstreamTimeout if endpoint.is_billable() => {
            Disposition::Stop(Stop::OutcomeUnknown)
        }
        ApiCode::InternalError => retry(RetryReason::ServerError, answer.retry_after),
        ApiCode::UpstreamTimeout => retry(RetryReason::UpstreamTimeout, answer.retry_after),
        ApiCode::Other(raw) if (500..600).contains(&raw) => {
            if endpoint.is_billable() {
                Disposition::Stop(Stop::OutcomeUnknown)
            } else {
                retry(RetryReason::ServerError, answer.retry_after)
            }
        }
        // 400, 401, 402, 404, 405, 422, 433 (a sub-key's usage limit: a setting of the key,
        // not a passing condition), 451, 501, 505 and undocumented non-5xx codes.
        _ => Disposition::Stop(Stop::Rejected),
    }
}

fn classify_status(endpoint: Endpoint, answer: &Answer<'_>) -> Disposition {
    let billable = endpoint.is_billable();
    match answer.status {
        // A success status whose body we cannot read: a billable request probably worked, but
        // we do not know the task id.
        200..=299 if billable => Disposition::Stop(Stop::OutcomeUnknown),
        // The same on a read-only call is harmless to ask again: a proxy's error page or a
        // body cut short says nothing about the task.
        200..=299 => retry(RetryReason::UnreadableAnswer, answer.retry_after),
        301 | 302 | 303 | 307 | 308 if billable => Disposition::Stop(Stop::Redirected),
        301 | 302 | 303 | 307 | 308 => Disposition::Follow,
        // HTTP 408 means the server did not receive the whole request, so nothing was done.
        408 => retry(RetryReason::Timeout, answer.retry_after),
        429 => retry(RetryReason::RateLimited, answer.retry_after),
        500..=599 if billable => Disposition::Stop(Stop::OutcomeUnknown),
        503 => retry(RetryReason::ServiceUnavailable, answer.retry_after),
        504 => retry(RetryReason::UpstreamTimeout, answer.retry_after),
        500..=599 => retry(RetryReason::ServerError, answer.retry_after),
        _ => Disposition::Stop(Stop::Rejected),
    }
}

fn retry(reason: RetryReason, after: Option<Duration>) -> Disposition {
    Disposition::Retry { reason, after }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Disposition::{Pending, Success};
    use Endpoint::{Credits, DownloadUrl, Extend, Generate, Hd1080p, RecordInfo, Upgrade4k};

    const REJECTED: Disposition = Disposition::Stop(Stop::Rejected);
    const UNKNOWN: Disposition = Disposition::Stop(Stop::OutcomeUnknown);

    fn r(reason: RetryReason) -> Disposition {
        Disposition::Retry {
            reason,
            after: None,
        }
    }

    const HD_PROCESSING: &str = "1080P is processing. It should be ready in 1-2 minutes.";
    const K4_PROCESSING: &str =
        "4k is processing. It should be ready in 5-10 minutes. Please check back shortly.";

    /// One row per code of the reference's table (section 5), with every endpoint, in the
    /// order of `Endpoint::ALL`: generate, record-info, 1080p, 4K, extend, credits, download-url.
    #[test]
    fn the_code_table_for_every_endpoint() {
        use RetryReason::{RateLimited, ServerError, ServiceUnavailable, UpstreamTimeout};
        let rl = r(RateLimited);
        let su = r(ServiceUnavailable);
        let se = r(ServerError);
        let ut = r(UpstreamTimeout);
        #[rustfmt::skip]
        let table: &[(i64, &str, [Disposition; 7])] = &[
            //                                            generate  record    1080p     4K        extend    credits   download
            (200, "success",                             [Success,  Success,  Success,  Pending,  Success,  Success,  Success]),
            (400, "Your prompt was flagged",             [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            (400, HD_PROCESSING,                         [REJECTED, REJECTED, Pending,  Pending,  REJECTED, REJECTED, REJECTED]),
            (401, "You do not have access permissions",  [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            (402, "Insufficient credits",                [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            (404, "Not found",                           [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            (405, "Method not allowed",                  [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            (408, "Upstream timeout",                    [UNKNOWN,  ut,       ut,       UNKNOWN,  UNKNOWN,  ut,       ut]),
            (422, "record is null",                      [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            (422, "record status is not success",        [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            (422, K4_PROCESSING,                         [REJECTED, REJECTED, Pending,  Pending,  REJECTED, REJECTED, REJECTED]),
            (429, "Rate limited",                        [rl,       rl,       rl,       rl,       rl,       rl,       rl]),
            (451, "Failed to fetch the image",           [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            (455, "Service unavailable",                 [su,       su,       su,       su,       su,       su,       su]),
            (500, "Internal Error, Please try again later", [UNKNOWN, se,     se,       UNKNOWN,  UNKNOWN,  se,       se]),
            (501, "Generation failed",                   [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            (505, "Feature disabled",                    [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            // Codes the reference does not document: 5xx like 500, anything else rejected.
            (503, "Unknown server trouble",              [UNKNOWN,  se,       se,       UNKNOWN,  UNKNOWN,  se,       se]),
            (433, "sub-key usage exceeds limit",         [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
            (434, "Undocumented",                        [REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED]),
        ];
        for (code, message, expected) in table {
            for (endpoint, want) in Endpoint::ALL.iter().zip(expected) {
                // The envelope is authoritative whatever the HTTP status carrying it.
                for status in [200, *code as u16, 500] {
                    let answer =
                        Answer::envelope(ApiCode::from_i64(*code), message).with_status(status);
                    assert_eq!(
                        classify(*endpoint, &Outcome::Answer(answer)),
                        *want,
                        "code {code} {message:?} on {endpoint} (HTTP {status})"
                    );
                }
            }
        }
    }

    #[test]
    fn four_k_answers_with_urls_are_success() {
        for code in [ApiCode::Success, ApiCode::Unprocessable] {
            let answer = Answer::envelope(code, "The video has been generated successfully")
                .with_result_urls(true);
            assert_eq!(
                classify(Upgrade4k, &Outcome::Answer(answer)),
                Success,
                "{code}"
            );
        }
        let bare_422 = Answer::envelope(
            ApiCode::Unprocessable,
            "The video has been generated successfully",
        );
        assert_eq!(classify(Upgrade4k, &Outcome::Answer(bare_422)), REJECTED);
    }

    #[test]
    fn retry_after_is_carried() {
        let hint = Some(Duration::from_secs(3));
        let answer = Answer::envelope(ApiCode::RateLimited, "slow down").with_retry_after(hint);
        assert_eq!(
            classify(Generate, &Outcome::Answer(answer)),
            Disposition::Retry {
                reason: RetryReason::RateLimited,
                after: hint
            }
        );
        let bare = Answer::bare(503).with_retry_after(hint);
        assert_eq!(
            classify(Credits, &Outcome::Answer(bare)),
            Disposition::Retry {
                reason: RetryReason::ServiceUnavailable,
                after: hint
            }
        );
    }

    /// HTTP statuses without an envelope in the body.
    #[test]
    fn bare_statuses_for_every_endpoint() {
        use RetryReason::{
            RateLimited, ServerError, ServiceUnavailable, Timeout, UnreadableAnswer,
            UpstreamTimeout,
        };
        let unreadable = r(UnreadableAnswer);
        let moved = Disposition::Stop(Stop::Redirected);
        let follow = Disposition::Follow;
        #[rustfmt::skip]
        let table: &[(u16, [Disposition; 7])] = &[
            (200, [UNKNOWN, unreadable, unreadable, UNKNOWN, UNKNOWN, unreadable, unreadable]),
            (204, [UNKNOWN, unreadable, unreadable, UNKNOWN, UNKNOWN, unreadable, unreadable]),
            (300, [REJECTED; 7]),
            (301, [moved, follow, follow, moved, moved, follow, follow]),
            (302, [moved, follow, follow, moved, moved, follow, follow]),
            (303, [moved, follow, follow, moved, moved, follow, follow]),
            (304, [REJECTED; 7]),
            (307, [moved, follow, follow, moved, moved, follow, follow]),
            (308, [moved, follow, follow, moved, moved, follow, follow]),
            (400, [REJECTED; 7]),
            (401, [REJECTED; 7]),
            (404, [REJECTED; 7]),
            (408, [r(Timeout); 7]),
            (413, [REJECTED; 7]),
            (429, [r(RateLimited); 7]),
            (500, [UNKNOWN, r(ServerError), r(ServerError), UNKNOWN, UNKNOWN, r(ServerError), r(ServerError)]),
            (502, [UNKNOWN, r(ServerError), r(ServerError), UNKNOWN, UNKNOWN, r(ServerError), r(ServerError)]),
            (503, [UNKNOWN, r(ServiceUnavailable), r(ServiceUnavailable), UNKNOWN, UNKNOWN, r(ServiceUnavailable), r(ServiceUnavailable)]),
            (504, [UNKNOWN, r(UpstreamTimeout), r(UpstreamTimeout), UNKNOWN, UNKNOWN, r(UpstreamTimeout), r(UpstreamTimeout)]),
        ];
        for (status, expected) in table {
            for (endpoint, want) in Endpoint::ALL.iter().zip(expected) {
                assert_eq!(
                    classify(*endpoint, &Outcome::Answer(Answer::bare(*status))),
                    *want,
                    "HTTP {status} on {endpoint}"
                );
            }
        }
    }

    /// The at-most-once invariant over every code and status, not just the documented ones:
    /// a billable endpoint is only ever retried when the outcome proves nothing was created.
    #[test]
    fn billable_retries_only_on_proven_rejections() {
        let messages = ["", "4k is processing"];
        for endpoint in Endpoint::ALL.into_iter().filter(|e| e.is_billable()) {
            for status in 100..=599u16 {
                for code in (0..=999).map(Some).chain([None, Some(-1), Some(i64::MAX)]) {
                    for message in messages {
                        for has_result_urls in [false, true] {
                            let answer = Answer {
                                status,
                                code: code.map(ApiCode::from_i64),
                                message,
                                has_result_urls,
                                retry_after: None,
                            };
                            let disposition = classify(endpoint, &Outcome::Answer(answer));
                            assert_ne!(
                                disposition,
                                Disposition::Follow,
                                "{endpoint} followed a redirect (HTTP {status})"
                            );
                            if let Disposition::Retry { .. } = disposition {
                                let proven = match code {
                                    Some(code) => code == 429 || code == 455,
                                    None => status == 408 || status == 429,
                                };
                                assert!(
                                    proven,
                                    "{endpoint} retried on code {code:?} HTTP {status}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transport_failures_by_phase() {
        use RetryReason::{ConnectFailed, ConnectionLost, Timeout};
        use TransportPhase::{AwaitingResponse, Connect, ReadingBody, Send};
        for endpoint in Endpoint::ALL {
            for timed_out in [false, true] {
                let connect = Outcome::Transport {
                    phase: Connect,
                    timed_out,
                };
                assert_eq!(classify(endpoint, &connect), r(ConnectFailed), "{endpoint}");
                for phase in [Send, AwaitingResponse, ReadingBody] {
                    let outcome = Outcome::Transport { phase, timed_out };
                    let want = if endpoint.is_billable() {
                        UNKNOWN
                    } else if timed_out {
                        r(Timeout)
                    } else {
                        r(ConnectionLost)
                    };
                    assert_eq!(
                        classify(endpoint, &outcome),
                        want,
                        "{endpoint} {phase:?} timed_out={timed_out}"
                    );
                }
            }
        }
        assert!(
            [Generate, Extend, Upgrade4k]
                .iter()
                .all(|e| e.is_billable())
        );
        assert!(
            [RecordInfo, Hd1080p, Credits, DownloadUrl]
                .iter()
                .all(|e| !e.is_billable())
        );
    }
}
