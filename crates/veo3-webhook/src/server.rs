//! Standalone receivers: on the caller's tokio runtime, or on a thread with a runtime of its own.

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use veo3_core::webhook::Inbox;

use crate::{Config, Stats, Webhook};

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
        let webhook = Webhook::new(config);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, webhook.clone(), stopped));
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
        let webhook = Webhook::new(config);
        let served = webhook.clone();
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("veo3-webhook".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    serve(listener, served, stopped).await
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

async fn serve(
    listener: TcpListener,
    webhook: Webhook,
    stopped: oneshot::Receiver<()>,
) -> io::Result<()> {
    let router: axum::Router = webhook.router();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            // A dropped sender (the handle went away) stops the server too.
            let _ = stopped.await;
        })
        .await
}
