//! Plain-HTTP helpers for tests that drive the sandbox (or any server) without a veo3 client:
//! an envelope-reading API caller, a hand-rolled callback receiver, MP4 box parsing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An HTTP answer: status, headers, raw body and the body parsed as JSON (Null if not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) json: Value,
}

impl Answer {
    /// The envelope's `code`.
    pub(crate) fn code(&self) -> i64 {
        self.json["code"].as_i64().unwrap_or(-1)
    }

    /// The envelope's `msg`.
    pub(crate) fn msg(&self) -> &str {
        self.json["msg"].as_str().unwrap_or_default()
    }

    /// The envelope's `data`.
    pub(crate) fn data(&self) -> &Value {
        &self.json["data"]
    }
}

/// Calls an API base URL with a bearer key, reading every answer as [`Answer`].
#[derive(Clone, Debug)]
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) key: Option<String>,
}

impl Api {
    pub(crate) fn new(base: &str, key: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: base.to_owned(),
            key: Some(key.to_owned()),
        }
    }

    /// The same API with another key (`None`: no Authorization header).
    pub(crate) fn with_key(&self, key: Option<&str>) -> Self {
        Self {
            key: key.map(str::to_owned),
            ..self.clone()
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Result<Answer> {
        let request = match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            body,
            json,
        })
    }

    /// `GET base + path_and_query`; `Err` on transport failure.
    pub(crate) async fn try_get(&self, path: &str) -> reqwest::Result<Answer> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST base + path` with a JSON body; `Err` on transport failure.
    pub(crate) async fn try_post(&self, path: &str, body: &Value) -> reqwest::Result<Answer> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(request).await
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.try_get(path).await.expect("GET answered")
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Answer {
        self.try_post(path, body).await.expect("POST answered")
    }

    /// `POST /api/v1/veo/generate`, returning the new task id (panics unless code 200).
    pub(crate) async fn generate(&self, body: &Value) -> String {
        let answer = self.post("/api/v1/veo/generate", body).await;
        assert_eq!(answer.code(), 200, "generate failed: {:?}", answer.json);
        answer.data()["taskId"].as_str().expect("taskId").to_owned()
    }

    /// `GET /api/v1/veo/record-info?taskId=...`.
    pub(crate) async fn record(&self, task_id: &str) -> Answer {
        self.get(&format!("/api/v1/veo/record-info?taskId={task_id}"))
            .await
    }
}

/// One request received by a [`Receiver`].
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) path: String,
    /// Header names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A minimal HTTP/1.1 server that records every request and answers with the next status of
/// a script (then 200 forever): a webhook receiver for callback tests.
#[derive(Clone, Debug)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<Received>>>,
    notify: Arc<tokio::sync::Notify>,
}

impl Receiver {
    /// Starts a receiver answering `statuses` in order, then 200.
    pub(crate) async fn start(statuses: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let notify = Arc::new(tokio::sync::Notify::new());
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(statuses)));
        let (log, wake) = (received.clone(), notify.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (log, wake, script) = (log.clone(), wake.clone(), script.clone());
                tokio::spawn(async move {
                    while let Some(request) = read_request(&mut stream).await {
                        let status = script.lock().expect("lock").pop_front().unwrap_or(200);
                        log.lock().expect("lock").push(request);
                        wake.notify_waiters();
                        let body = r#"{"code":200,"msg":"success"}"#;
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self {
            url,
            received,
            notify,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived (panics after 20 s of real time).
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.notify.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {n} callbacks, got {}", self.received().len());
            }
        }
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(Received {
        path,
        headers,
        body,
    })
}

/// The top-level ISO-BMFF boxes of an MP4 file, as (type, size); `None` if malformed.
pub(crate) fn mp4_boxes(bytes: &[u8]) -> Option<Vec<(String, u64)>> {
    let mut boxes = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let header = bytes.get(pos..pos + 8)?;
        let mut size = u64::from(u32::from_be_bytes(header[..4].try_into().ok()?));
        let kind = String::from_utf8_lossy(&header[4..8]).into_owned();
        if size == 1 {
            size = u64::from_be_bytes(bytes.get(pos + 8..pos + 16)?.try_into().ok()?);
        } else if size == 0 {
            size = (bytes.len() - pos) as u64;
        }
        if size < 8 || pos as u64 + size > bytes.len() as u64 {
            return None;
        }
        boxes.push((kind, size));
        pos += size as usize;
    }
    Some(boxes)
}
