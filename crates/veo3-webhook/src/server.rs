//! Standalone receivers: on the caller's tokio runtime, or on a thread with a runtime of its own.
//!
//! Both serve through one accept loop, which is where a receiver on the open internet defends
//! itself against slow clients (slowloris): each connection takes a permit from a semaphore of
//! [`Config::max_connections`] before it is accepted, hyper closes a connection whose request
//! head has not fully arrived within [`Config::header_timeout`] (idle keep-alive connections
//! included), hyper's read buffer is capped so a head cannot grow without bound, and the
//! router's timeout layer ends a request whose body is still incomplete after
//! [`Config::request_timeout`]. A stalled connection therefore holds a few kilobytes for a
//! bounded time, and at most `max_connections` of them exist at once.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use veo3_core::webhook::Inbox;

use crate::{Config, Limits, Stats, Webhook};

/// A callback receiver serving on its own address, on the current tokio runtime.
///
/// Answers `POST` on every path, so any `callBackUrl` pointing at its address works
/// ([`Receiver::url`] builds one). Dropping it stops accepting connections; call
/// [`Receiver::shutdown`] to also wait until in-flight requests are answered.
///
/// ```
/// use veo3_webhook::{Config, Receiver, Verifier, WebhookKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let config = Config::new(Verifier::new(WebhookKey::new("k").unwrap()));
/// let receiver = Receiver::bind("127.0.0.1:0", config).await?;
/// assert!(receiver.url("/cb").starts_with("http://127.0.0.1:"));
/// let inbox = receiver.inbox(); // hybrid waits listen here
/// # drop(inbox);
/// receiver.shutdown().await
/// # }
/// ```
#[derive(Debug)]
pub struct Receiver {
    local_addr: SocketAddr,
    webhook: Webhook,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl Receiver {
    /// Binds `addr` (port 0 picks a free port) and starts serving on the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`; use [`BlockingReceiver`] there.
    pub async fn bind(addr: impl tokio::net::ToSocketAddrs, config: Config) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let limits = config.limits;
        let webhook = Webhook::new(config);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, webhook.clone(), limits, stopped));
        Ok(Self {
            local_addr,
            webhook,
            stop: Some(stop),
            task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<local address><path>`, for `callBackUrl` (`path` should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.local_addr)
    }

    /// The inbox new verified callbacks are delivered into.
    pub fn inbox(&self) -> Inbox {
        self.webhook.inbox()
    }

    /// What it has done so far.
    pub fn stats(&self) -> Stats {
        self.webhook.stats()
    }

    /// Stops accepting connections, answers the requests in flight, and returns the server's
    /// outcome.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(outcome) => outcome,
            Err(join) => Err(io::Error::other(join)),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A callback receiver on a background thread with its own single-threaded tokio runtime, for
/// programs that do not run one (e.g. users of the blocking client).
///
/// The address is bound before `bind` returns, so errors (port in use) surface there.
/// Dropping it stops the server and joins the thread.
///
/// ```
/// use std::time::Duration;
/// use veo3_webhook::{BlockingReceiver, Config, Verifier, WebhookKey};
///
/// let config = Config::new(Verifier::new(WebhookKey::new("k").unwrap()));
/// let receiver = BlockingReceiver::bind("127.0.0.1:0", config)?;
/// let call_back_url = receiver.url("/veo3/callback");
/// // ... create a task with `call_back_url`, then:
/// let early = receiver.inbox().wait_timeout("task-id", Duration::ZERO);
/// assert!(early.is_none());
/// receiver.shutdown()?;
/// # drop(call_back_url);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct BlockingReceiver {
    local_addr: SocketAddr,
    webhook: Webhook,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl BlockingReceiver {
    /// Binds `addr` (port 0 picks a free port) and starts serving on a new thread.
    pub fn bind(addr: impl std::net::ToSocketAddrs, config: Config) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let limits = config.limits;
        let webhook = Webhook::new(config);
        let served = webhook.clone();
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("veo3-webhook".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    serve(listener, served, limits, stopped).await
                })
            })?;
        Ok(Self {
            local_addr,
            webhook,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<local address><path>`, for `callBackUrl` (`path` should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.local_addr)
    }

    /// The inbox new verified callbacks are delivered into.
    pub fn inbox(&self) -> Inbox {
        self.webhook.inbox()
    }

    /// What it has done so far.
    pub fn stats(&self) -> Stats {
        self.webhook.stats()
    }

    /// Stops the server, waits for the requests in flight and the thread, and returns the
    /// server's outcome.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Err(io::Error::other("the webhook receiver thread panicked")),
        }
    }
}

impl Drop for BlockingReceiver {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// How long a shutdown waits for the requests in flight before closing their connections.
/// Genuine callbacks are answered in milliseconds; only stalled clients would use more.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The smallest read buffer hyper accepts; enough for any genuine request head (a callback's
/// headers are a few hundred bytes), and what bounds the memory of a slow or oversized one.
const MAX_READ_BUFFER: usize = 16 * 1024;

/// The accept loop: a permit per connection, hyper's header timeout and buffer cap, the
/// router (with its request timeout) as the service.
async fn serve(
    listener: TcpListener,
    webhook: Webhook,
    limits: Limits,
    mut stopped: oneshot::Receiver<()>,
) -> io::Result<()> {
    let router: axum::Router = webhook.router();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_READ_BUFFER);
    // Logged once per run of failures, not once per retry.
    let mut failing = false;
    loop {
        // At the limit, wait for a connection to end before accepting another: new clients
        // queue in the kernel's backlog instead of costing memory here.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = &mut stopped => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stopped => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                failing = false;
                stream
            }
            Err(error) => {
                // Usually the process's open-file limit (EMFILE): the client stays in the
                // backlog and is accepted once a connection closes or times out.
                if !failing {
                    tracing::warn!(%error, "cannot accept a callback connection; retrying");
                    failing = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    _ = &mut stopped => break,
                }
            }
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "callback connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    // Stalled connections would hold a graceful shutdown until their timeouts: bound it.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}
