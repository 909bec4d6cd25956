//! Mounting: the router nested in an application, the handler at a fixed path, shared state.
//! (Verification and delivery are tested end to end in `tests/it/callbacks.rs`.)

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const KEY: &str = "mount-test-key";

fn config() -> Config {
    Config::new(Verifier::new(WebhookKey::new(KEY).expect("key"))).clock(|| 1_000)
}

/// Serves `app` on loopback for the rest of the test; its address.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Sends a signed callback for `task_id` to `path`; the status code.
async fn post(addr: std::net::SocketAddr, path: &str, task_id: &str) -> u16 {
    let body = format!(r#"{{"code":200,"msg":"ok","data":{{"taskId":"{task_id}"}}}}"#);
    let signature = WebhookKey::new(KEY).expect("key").sign(task_id, "1000");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{TIMESTAMP_HEADER}: 1000\r\n{SIGNATURE_HEADER}: {signature}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
        .get(9..12)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_router_nests_under_the_applications_path() {
    let config = config();
    let inbox = config.inbox_handle();
    let app = Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .nest("/hooks/veo3", router(config));
    let addr = serve(app).await;
    assert_eq!(post(addr, "/hooks/veo3", "t1").await, 200);
    assert_eq!(post(addr, "/hooks/veo3/any/depth", "t2").await, 200);
    assert_eq!(post(addr, "/elsewhere", "t3").await, 404);
    assert!(inbox.try_take("t1").is_some());
    assert!(inbox.try_take("t2").is_some());
    assert!(inbox.try_take("t3").is_none());
}

#[tokio::test]
async fn routes_of_one_webhook_share_their_memory_of_events() {
    let webhook = Webhook::new(config());
    let app = Router::new()
        .route("/a", webhook.method_router())
        .route("/b", webhook.method_router());
    let addr = serve(app).await;
    assert_eq!(post(addr, "/a", "t1").await, 200);
    assert_eq!(post(addr, "/b", "t1").await, 200);
    let stats = webhook.stats();
    assert_eq!((stats.delivered, stats.duplicates), (1, 1));
    assert!(webhook.inbox().try_take("t1").is_some());
}
