//! `cargo xtask bench sandbox`: is the sandbox ever the bottleneck?
//!
//! Three figures, each against a baseline measured in the same run on the same machine:
//!
//! 1. **Status route throughput**: requests per second of `GET /api/v1/veo/record-info` with
//!    concurrent keep-alive clients, against a bare loopback HTTP/1.1 responder that answers a
//!    fixed body of the same size without parsing anything (the floor of client + loopback).
//! 2. **Scaled-time overshoot**: 200 concurrent tasks at time scale 0.01 (30 s of service time
//!    = 300 ms); for each, the real time from its creation to its completion callback, minus
//!    the nominal 300 ms, measured from just before the generate request is sent (so it also
//!    counts the request's own latency: an upper bound). Baseline: 200 concurrent
//!    `tokio::time::sleep(300 ms)` overshoots.
//! 3. **Large downloads**: MiB/s of a `/big/<bytes>` body from the file host, against the bare
//!    responder streaming the same number of bytes from a static buffer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use veo3_sandbox::Sandbox;

const KEY: &str = "bench-key";
const WORKERS: usize = 16;
const TASKS: usize = 200;
const TIME_SCALE: f64 = 0.01;
/// A `veo3_fast` generation: 30 s of service time.
const NOMINAL: Duration = Duration::from_millis(300);

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(quick))
}

async fn bench(quick: bool) -> anyhow::Result<()> {
    let window = if quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(3)
    };
    let download_bytes: u64 = if quick { 64 << 20 } else { 512 << 20 };

    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(TIME_SCALE)
        .rate_limit(None)
        .start()
        .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(WORKERS)
        .build()?;

    // 1. Status route throughput.
    let mut ids = Vec::new();
    for i in 0..WORKERS {
        ids.push(generate(&client, sandbox.api_url(), &format!("status {i}"), None).await?);
    }
    let record_size = client
        .get(format!(
            "{}/api/v1/veo/record-info?taskId={}",
            sandbox.api_url(),
            ids[0]
        ))
        .bearer_auth(KEY)
        .send()
        .await?
        .bytes()
        .await?
        .len();
    let baseline = Baseline::start(record_size).await?;
    let base_urls: Vec<String> = (0..WORKERS)
        .map(|_| format!("{}/api/v1/veo/record-info?taskId=x", baseline.url))
        .collect();
    let sandbox_urls: Vec<String> = ids
        .iter()
        .map(|id| format!("{}/api/v1/veo/record-info?taskId={id}", sandbox.api_url()))
        .collect();
    let base_rps = hammer(&client, &base_urls, window).await?;
    let sandbox_rps = hammer(&client, &sandbox_urls, window).await?;
    println!("status route ({WORKERS} keep-alive clients, {record_size}-byte answers):");
    println!("  bare loopback responder : {base_rps:>9.0} req/s (baseline)");
    println!(
        "  sandbox record-info     : {sandbox_rps:>9.0} req/s = {:.2} x baseline",
        sandbox_rps / base_rps
    );

    // 2. Scaled-time overshoot of 200 concurrent tasks.
    let timer = timer_overshoot().await;
    let receiver = Receiver::start().await?;
    let started = Instant::now();
    // Submitted back to back (each takes well under a millisecond), so all 200 run at once
    // and the measured start is close to the sandbox's own creation time.
    let mut created = Vec::new();
    for i in 0..TASKS {
        let sent = Instant::now();
        let id = generate(
            &client,
            sandbox.api_url(),
            &format!("task {i}"),
            Some(&receiver.url),
        )
        .await?;
        created.push((id, sent));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.count() < TASKS {
        if Instant::now() > deadline {
            bail!("only {} of {TASKS} callbacks arrived", receiver.count());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let arrivals = receiver.arrivals();
    let mut overshoots: Vec<Duration> = created
        .iter()
        .map(|(id, at)| {
            let arrived = arrivals.get(id).copied().unwrap_or(*at);
            arrived
                .saturating_duration_since(*at)
                .saturating_sub(NOMINAL)
        })
        .collect();
    overshoots.sort_unstable();
    let all_done = started.elapsed();
    println!(
        "scaled time ({TASKS} concurrent veo3_fast tasks at scale {TIME_SCALE}, nominal {NOMINAL:?}):"
    );
    print_overshoot("  tokio sleep (baseline)  ", &timer);
    print_overshoot("  sandbox, to callback    ", &overshoots);
    let p95 = percentile(&overshoots, 95);
    println!(
        "  sandbox p95 overshoot   : {:.2} x the timer's, {:.1}% of the nominal duration; all {TASKS} done in {:.0} ms",
        ratio(p95, percentile(&timer, 95)),
        100.0 * ratio(p95, NOMINAL),
        all_done.as_secs_f64() * 1000.0
    );

    // 3. Large downloads.
    let base_mib = download(
        &client,
        &format!("{}/big/{download_bytes}", baseline.url),
        download_bytes,
    )
    .await?;
    let sandbox_mib = download(
        &client,
        &sandbox.big_file_url(download_bytes),
        download_bytes,
    )
    .await?;
    println!("large download ({} MiB):", download_bytes >> 20);
    println!("  bare loopback responder : {base_mib:>9.0} MiB/s (baseline)");
    println!(
        "  sandbox /big            : {sandbox_mib:>9.0} MiB/s = {:.2} x baseline",
        sandbox_mib / base_mib
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() - 1) * p / 100]
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-6)
}

fn print_overshoot(label: &str, sorted: &[Duration]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: overshoot p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        ms(percentile(sorted, 50)),
        ms(percentile(sorted, 95)),
        ms(percentile(sorted, 100))
    );
}

async fn generate(
    client: &reqwest::Client,
    api: &str,
    prompt: &str,
    callback: Option<&str>,
) -> anyhow::Result<String> {
    let mut body = serde_json::json!({"prompt": prompt, "model": "veo3_fast"});
    if let Some(url) = callback {
        body["callBackUrl"] = url.into();
    }
    let answer = client
        .post(format!("{api}/api/v1/veo/generate"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?
        .bytes()
        .await?;
    let answer: serde_json::Value = serde_json::from_slice(&answer)?;
    answer["data"]["taskId"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("generate failed: {answer}"))
}

/// Requests per second over `window`, one worker per URL.
async fn hammer(
    client: &reqwest::Client,
    urls: &[String],
    window: Duration,
) -> anyhow::Result<f64> {
    let until = Instant::now() + window;
    let mut workers = tokio::task::JoinSet::new();
    for url in urls {
        let (client, url) = (client.clone(), url.clone());
        workers.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                let response = client.get(&url).bearer_auth(KEY).send().await?;
                response.bytes().await?;
                n += 1;
            }
            anyhow::Ok(n)
        });
    }
    let mut total = 0;
    while let Some(n) = workers.join_next().await {
        total += n??;
    }
    Ok(total as f64 / window.as_secs_f64())
}

async fn timer_overshoot() -> Vec<Duration> {
    let mut sleeps = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        sleeps.spawn(async {
            let start = Instant::now();
            tokio::time::sleep(NOMINAL).await;
            start.elapsed().saturating_sub(NOMINAL)
        });
    }
    let mut out = Vec::new();
    while let Some(d) = sleeps.join_next().await {
        out.push(d.unwrap_or_default());
    }
    out.sort_unstable();
    out
}

async fn download(client: &reqwest::Client, url: &str, bytes: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut response = client.get(url).send().await?;
    let mut received = 0u64;
    while let Some(chunk) = response.chunk().await? {
        received += chunk.len() as u64;
    }
    if received != bytes {
        bail!("{url}: received {received} of {bytes} bytes");
    }
    Ok(bytes as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64())
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body); `None` at end of stream.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Some((head, body))
}

/// The bare responder: a fixed JSON body for any path, or `n` bytes for `/big/<n>`.
struct Baseline {
    url: String,
}

impl Baseline {
    async fn start(body_size: usize) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let body: Arc<[u8]> = vec![b' '; body_size].into();
        let block: Arc<[u8]> = vec![0u8; 1 << 16].into();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (body, block) = (body.clone(), block.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    while let Some((head, _)) = read_request(&mut stream, &mut buf).await {
                        let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                        let ok = match path
                            .strip_prefix("/big/")
                            .and_then(|n| n.parse::<u64>().ok())
                        {
                            Some(n) => stream_zeros(&mut stream, &block, n).await,
                            None => {
                                let mut reply = format!(
                                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                                    body.len()
                                )
                                .into_bytes();
                                reply.extend_from_slice(&body);
                                stream.write_all(&reply).await.is_ok()
                            }
                        };
                        if !ok {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Self { url })
    }
}

async fn stream_zeros(stream: &mut TcpStream, block: &[u8], mut n: u64) -> bool {
    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    while n > 0 {
        let take = n.min(block.len() as u64) as usize;
        if stream.write_all(&block[..take]).await.is_err() {
            return false;
        }
        n -= take as u64;
    }
    true
}

/// Records when each task's callback arrives.
struct Receiver {
    url: String,
    arrivals: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let arrivals = Arc::new(Mutex::new(HashMap::new()));
        let log = arrivals.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    while let Some((_, body)) = read_request(&mut stream, &mut buf).await {
                        let now = Instant::now();
                        let json: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        let id = json["data"]["taskId"].as_str().map(str::to_owned);
                        if let (Some(id), Ok(mut log)) = (id, log.lock()) {
                            log.entry(id).or_insert(now);
                        }
                        let reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Self { url, arrivals })
    }

    fn count(&self) -> usize {
        self.arrivals.lock().map(|a| a.len()).unwrap_or(0)
    }

    fn arrivals(&self) -> HashMap<String, Instant> {
        self.arrivals.lock().map(|a| a.clone()).unwrap_or_default()
    }
}
