//! The accept loop and the API's front door (request faults).
//!
//! `axum::serve` cannot close a connection without answering, which is exactly what the `drop`
//! and `lost` faults need. So each listener runs its own accept loop over hyper's HTTP/1
//! connection driver, and every request carries a [`ConnKill`] in its extensions: a handler that
//! notifies it makes the connection task drop the connection (and the in-flight request with it),
//! so the socket closes with no byte of answer written.

use std::convert::Infallible;
use std::future::pending;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower_service::Service;

use crate::api::{DrawnOutcome, envelope, standard_message};
use crate::faults::{Fault, Route};
use crate::state::Shared;

/// Closes the request's connection without an answer when notified.
#[derive(Clone, Debug)]
pub(crate) struct ConnKill(Arc<Notify>);

impl ConnKill {
    /// Closes the connection; never returns (the request's future is dropped with it).
    pub(crate) async fn close(&self) -> Response {
        self.0.notify_one();
        pending::<Response>().await
    }
}

/// Serves `router` on `listener` until `shutdown` turns true, calling `accepted_one` for each TCP
/// connection (the counters in [`Stats`](crate::Stats)).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    accepted_one: impl Fn() + Send + 'static,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else {
            continue;
        };
        accepted_one();
        let _ = stream.set_nodelay(true);
        let kill = ConnKill(Arc::new(Notify::new()));
        let router = router.clone();
        let conn_kill = kill.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(conn_kill.clone());
            let mut router = router.clone();
            async move {
                let resp: Result<Response, Infallible> = router.call(req.map(Body::new)).await;
                resp
            }
        });
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = kill.0.notified() => {}
                _ = stop.wait_for(|stop| *stop) => {}
            }
        });
    }
    connections.abort_all();
}

/// The API's front door: counts the request, then applies the fault drawn for it.
pub(crate) async fn front_door(
    State(sh): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(route) = Route::from_api_path(req.uri().path()) else {
        return next.run(req).await;
    };
    let drawn = sh.admit(route);
    if !drawn.latency.is_zero() {
        tokio::time::sleep(drawn.latency).await;
    }
    let kill = req.extensions().get::<ConnKill>().cloned();
    req.extensions_mut().insert(DrawnOutcome(drawn.outcome));
    match drawn.fault {
        None => next.run(req).await,
        Some(Fault::Drop) => match kill {
            Some(kill) => kill.close().await,
            None => StatusCode::BAD_GATEWAY.into_response(),
        },
        Some(Fault::Http(status)) => http_error(status),
        Some(Fault::Envelope(code)) => {
            let msg = standard_message(code);
            envelope(&sh, code, msg, serde_json::Value::Null)
        }
        Some(Fault::RateLimited(secs)) => {
            let mut resp = envelope(&sh, 429, standard_message(429), serde_json::Value::Null);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
        Some(Fault::Lost) => {
            let _processed = next.run(req).await;
            match kill {
                Some(kill) => kill.close().await,
                None => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
        Some(Fault::Malformed) => malformed(next.run(req).await).await,
        Some(Fault::Redirect { status, to }) => redirect(&req, status, to.as_deref()),
        // Cut, stall and latency are meaningless here (latency was applied above).
        // record-null-early is applied by record-info from the task's age, not per request.
        Some(Fault::Cut | Fault::Stall(_) | Fault::Latency(_) | Fault::RecordNullEarly(_)) => {
            next.run(req).await
        }
    }
}

/// A bare HTTP error such as a proxy or load balancer in front of the API would send.
pub(crate) fn http_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let body = format!(
        "<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center></body></html>\n"
    );
    (status, [(header::CONTENT_TYPE, "text/html")], body).into_response()
}

/// A redirect to `to`, or to the request's own URL on the same host; nothing is processed.
pub(crate) fn redirect(req: &Request, status: u16, to: Option<&str>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
    let location = to.map_or_else(
        || {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .unwrap_or("127.0.0.1");
            let target = req
                .uri()
                .path_and_query()
                .map_or("/", |target| target.as_str());
            format!("http://{host}{target}")
        },
        str::to_owned,
    );
    match HeaderValue::from_str(&location) {
        Ok(location) => (status, [(header::LOCATION, location)]).into_response(),
        Err(_) => http_error(500),
    }
}

/// The processed answer, cut in the middle of its JSON.
async fn malformed(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let cut = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(cut))
}
