//! `cargo xtask bench listen [STALLED]`: does `veo3 listen` keep answering while slow clients
//! (slowloris) hold connections open, and what do they cost it in memory?
//!
//! Runs the release `veo3 listen` (built first), then:
//!
//! 1. the baseline: a signed callback's round trip (connect, POST, 200) with nobody else
//!    connected, the median of 5;
//! 2. opens STALLED connections (2,000 by default) that stop half-way, half in the request
//!    head and half in the body (headers sent, 10 of 1,000 body bytes), and reads the
//!    listener's resident memory (VmRSS) once they are all open;
//! 3. times a signed callback for a new task among them: the round trip, and until its line is
//!    on the listener's stdout; the median of 5, each on a new connection;
//! 4. waits for the listener's timeouts (10 s for a head, 10 s for a request) and counts the
//!    stalled connections it closed, then reads its peak memory (VmHWM).
//!
//! The target: the callback answered within 1 s and RSS under 64 MiB at 2,000 stalled
//! connections. The bench raises its own soft open-file limit (the listener inherits it) when
//! it is too low for STALLED connections on both sides.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

const HMAC_KEY: &str = "bench_webhook_hmac_key_0123456789";
const ROUNDS: usize = 5;
/// Longer than the listener's header and request timeouts (10 s each).
const TIMEOUTS: Duration = Duration::from_secs(12);

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let stalled: usize = match args.first() {
        Some(count) => count
            .parse()
            .context("STALLED must be a number of connections")?,
        None => 2_000,
    };
    let files = raise_open_file_limit(2 * stalled as u64 + 256)?;
    let veo3 = build_veo3()?;
    let listener = Listener::start(&veo3)?;
    println!(
        "veo3 listen: {stalled} stalled connections (half in the head, half in the body), open-file limit {files}"
    );

    let baseline = median(
        (0..ROUNDS)
            .map(|round| listener.callback(&format!("baseline-{round}")))
            .collect::<anyhow::Result<_>>()?,
    );
    let rss_idle = listener.memory("VmRSS")?;

    let opened = Instant::now();
    let mut connections = Vec::with_capacity(stalled);
    for index in 0..stalled {
        let mut stream = TcpStream::connect(listener.addr)
            .with_context(|| format!("stalled connection {index}"))?;
        let partial = if index % 2 == 0 {
            "POST /veo3/callback HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl"
        } else {
            "POST /veo3/callback HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"code\":20"
        };
        stream.write_all(partial.as_bytes())?;
        connections.push(stream);
    }
    // Let the listener accept and read them all before measuring its memory.
    std::thread::sleep(Duration::from_millis(500));
    let rss_stalled = listener.memory("VmRSS")?;
    let opening = opened.elapsed();

    let mut answers = Vec::new();
    let mut printed = Vec::new();
    for round in 0..ROUNDS {
        let task = format!("among-stalled-{round}");
        let answered = listener.callback(&task)?;
        answers.push(answered);
        printed.push(listener.printed(&task)?);
    }
    let (answered, printed) = (median(answers), median(printed));

    let closed = count_closed(connections, opened + TIMEOUTS);
    let peak = listener.memory("VmHWM")?;
    listener.stop();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "  opening {stalled} stalled connections took {:.0} ms",
        ms(opening)
    );
    println!(
        "  callback answered: {:.1} ms among {stalled} stalled connections, {:.1} ms alone ({:.1}x); printed after {:.1} ms",
        ms(answered),
        ms(baseline),
        ms(answered) / ms(baseline).max(0.001),
        ms(printed)
    );
    println!(
        "  RSS: {:.1} MiB idle, {:.1} MiB with {stalled} stalled ({:.1} KiB each), peak {:.1} MiB",
        mib(rss_idle),
        mib(rss_stalled),
        rss_stalled.saturating_sub(rss_idle) as f64 / stalled.max(1) as f64,
        mib(peak)
    );
    println!(
        "  stalled connections closed by the listener within {} s: {closed} of {stalled}",
        TIMEOUTS.as_secs()
    );
    let within = answered < Duration::from_secs(1) && peak < 64 * 1024;
    println!(
        "  target (answered within 1 s, peak RSS under 64 MiB): {}",
        if within { "met" } else { "NOT met" }
    );
    Ok(())
}

/// The running `veo3 listen`, its address and the lines it prints.
struct Listener {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Listener {
    fn start(veo3: &std::path::Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut child = Command::new(veo3)
            .args(["listen", "--addr", &addr.to_string()])
            .env("KIE_WEBHOOK_HMAC_KEY", HMAC_KEY)
            .env_remove("KIE_API_KEY")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting veo3 listen")?;
        let mut stderr = BufReader::new(child.stderr.take().context("stderr")?);
        let mut line = String::new();
        while !line.starts_with("listening on") {
            line.clear();
            if stderr.read_line(&mut line)? == 0 {
                bail!("veo3 listen ended before listening");
            }
        }
        // Keep reading stderr so the listener never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, addr, lines })
    }

    /// A signed callback for `task` on a new connection; the time until its 200.
    fn callback(&self, task: &str) -> anyhow::Result<Duration> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)?
            .as_secs()
            .to_string();
        let signature = veo3_sandbox::webhook_signature(HMAC_KEY.as_bytes(), task, &timestamp);
        let body = format!(
            r#"{{"code":200,"msg":"ok","data":{{"taskId":"{task}","info":{{"resultUrls":["https://cdn.example.com/{task}.mp4"]}}}}}}"#
        );
        let request = format!(
            "POST /veo3/callback HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nX-Webhook-Timestamp: {timestamp}\r\nX-Webhook-Signature: {signature}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let started = Instant::now();
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.write_all(request.as_bytes())?;
        let mut status = [0u8; 12];
        stream.read_exact(&mut status)?;
        let elapsed = started.elapsed();
        if &status[9..12] != b"200" {
            bail!(
                "callback {task} answered {}",
                String::from_utf8_lossy(&status)
            );
        }
        Ok(elapsed)
    }

    /// Time until the line for `task` is printed, counted from now (the 200 came first).
    fn printed(&self, task: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .context("the callback's line")?;
            if line.contains(task) {
                return Ok(started.elapsed());
            }
        }
    }

    /// A memory figure of the listener from /proc (KiB).
    fn memory(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("/proc (Linux only)")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{field} in /proc/PID/status"))
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many of `connections` the listener closed (EOF, a 408, or a reset) by `deadline`.
fn count_closed(connections: Vec<TcpStream>, deadline: Instant) -> usize {
    let mut closed = 0;
    for mut stream in connections {
        let left = deadline.saturating_duration_since(Instant::now());
        if stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .is_err()
        {
            continue;
        }
        let mut sink = Vec::new();
        match stream.read_to_end(&mut sink) {
            Ok(_) => closed += 1,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Err(_) => {}
        }
    }
    closed
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Builds the release `veo3` next to this benchmark's own binary.
fn build_veo3() -> anyhow::Result<std::path::PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "veo3-cli",
            "--bin",
            "veo3",
        ])
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("building veo3 failed");
    }
    let exe = std::env::current_exe()?;
    let veo3 = exe.with_file_name("veo3");
    if !veo3.exists() {
        bail!("{} not found after building it", veo3.display());
    }
    Ok(veo3)
}

/// Raises this process's soft open-file limit to at least `needed` (within the hard limit);
/// the listener inherits it. Returns the soft limit in force.
fn raise_open_file_limit(needed: u64) -> anyhow::Result<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return Ok(soft);
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let raised = needed.min(hard);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(raised),
            maximum: limit.maximum,
        },
    )
    .context("raising the open-file limit")?;
    if raised < needed {
        bail!("the hard open-file limit ({hard}) is below the {needed} this run needs");
    }
    Ok(raised)
}
