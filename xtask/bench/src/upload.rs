//! `cargo xtask bench upload`: does a streamed upload keep the client's memory flat?
//!
//! Uploads one 200 MiB file (`upload_file`, streamed from disk) to the sandbox's upload host
//! and reports each client process's peak RSS next to the file size, against baselines
//! measured in the same run: the same client program uploading a 1 KiB file (what the
//! process and the client cost whatever the file), and `curl -F file=@...` of the same file
//! to the same route (a streaming uploader written in C). Target: the client's peak RSS well
//! under the file size, near the 1 KiB run's.
//!
//! Every side runs as a child process (this binary again, with `--child`, or curl), timed
//! from here from spawn to exit, with its peak RSS from GNU time (`/usr/bin/time -f %M`);
//! the order of the sides rotates from round to round, and each figure is printed with its
//! range over the rounds. The sandbox runs in this process; it keeps what it receives in
//! memory, which is not counted for any side.
//!
//! Last measured (2026-11-29; 2 cores shared with other builds; 4 rounds of 200 MiB): peak
//! RSS veo3-reqwest 7.9-8.0 MiB (0.04x the file; 1.11-1.15x its 1 KiB run, the file adding at
//! most 1.1 MiB), veo3-blocking 5.4-5.6 MiB, curl 11.1-11.4 MiB (veo3-reqwest / curl
//! 0.70-0.72x); rates per round against curl 0.82-1.73x (async) and 0.65-1.49x (blocking),
//! best 135, 124 and 124 MiB/s.
//!
//! `--quick` uploads 32 MiB instead (a smoke run).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use veo3_reqwest::Veo3Api as _;
use veo3_sandbox::Sandbox;

const KEY: &str = "sk-bench-upload-0123456789";
/// Rounds; with four sides, each side takes each place in the order once.
const ROUNDS: usize = 4;

/// One side of the comparison.
struct Side {
    name: &'static str,
    program: Vec<OsString>,
    /// Bytes of the file it uploads.
    bytes: u64,
    samples: Vec<Sample>,
}

/// One run of a side: MiB/s from spawn to exit and the peak RSS in MiB.
#[derive(Clone, Copy, Debug)]
struct Sample {
    rate: f64,
    rss_mib: f64,
}

impl Side {
    fn range(&self, field: impl Fn(&Sample) -> f64) -> (f64, f64) {
        let values = || self.samples.iter().map(&field);
        (
            values().reduce(f64::min).unwrap_or(f64::NAN),
            values().reduce(f64::max).unwrap_or(f64::NAN),
        )
    }
}

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    if args.first().map(String::as_str) == Some("--child") {
        return child(&args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let file_bytes: u64 = if quick { 32 << 20 } else { 200 << 20 };
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(0.0)
        .rate_limit(None)
        .start_in_background()?;
    let upload_url = sandbox.upload_url().to_owned();
    let dir = work_dir()?;
    let big = dir.join("big.bin");
    let small = dir.join("small.bin");
    write_file(&big, file_bytes)?;
    write_file(&small, 1024)?;
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);

    let exe = std::env::current_exe()?.into_os_string();
    let ours = |mode: &str, path: &Path| -> Vec<OsString> {
        vec![
            exe.clone(),
            "upload".into(),
            "--child".into(),
            mode.into(),
            upload_url.as_str().into(),
            path.into(),
        ]
    };
    let curl: Vec<OsString> = vec![
        "curl".into(),
        "-sS".into(),
        "-f".into(),
        "-o".into(),
        "/dev/null".into(),
        "-H".into(),
        format!("Authorization: Bearer {KEY}").into(),
        "-F".into(),
        "uploadPath=bench".into(),
        "-F".into(),
        "fileName=curl.bin".into(),
        "-F".into(),
        format!("file=@{}", big.display()).into(),
        format!("{upload_url}/api/file-stream-upload").into(),
    ];
    let mut sides = [
        Side {
            name: "veo3-reqwest upload_file",
            program: ours("async", &big),
            bytes: file_bytes,
            samples: Vec::new(),
        },
        Side {
            name: "veo3-blocking upload_file",
            program: ours("blocking", &big),
            bytes: file_bytes,
            samples: Vec::new(),
        },
        Side {
            name: "curl -F file=@",
            program: curl,
            bytes: file_bytes,
            samples: Vec::new(),
        },
        Side {
            name: "veo3-reqwest, a 1 KiB file",
            program: ours("async", &small),
            bytes: 1024,
            samples: Vec::new(),
        },
    ];

    println!(
        "upload of a {:.0} MiB file to the sandbox's upload host ({ROUNDS} rounds, sides in rotating",
        mib(file_bytes)
    );
    println!("order; each timed from this process, spawn to exit, peak RSS from GNU time):");
    for round in 0..ROUNDS {
        let count = sides.len();
        for turn in 0..count {
            let side = &mut sides[(round + turn) % count];
            let sample = timed(&side.program, side.bytes)?;
            side.samples.push(sample);
        }
    }
    for side in &sides {
        let (rate_low, rate_high) = side.range(|s| s.rate);
        let (rss_low, rss_high) = side.range(|s| s.rss_mib);
        let rate = if side.bytes > 1024 {
            format!("{rate_high:>6.0} MiB/s (rounds {rate_low:.0}-{rate_high:.0})")
        } else {
            format!("{:>6}  {:<21}", "-", "")
        };
        println!(
            "  {:<28} {rate}  peak RSS {rss_low:.1}-{rss_high:.1} MiB = {:.3}-{:.3}x the file",
            side.name,
            rss_low / mib(file_bytes),
            rss_high / mib(file_bytes),
        );
    }
    let per_round = |a: usize, b: usize, field: fn(&Sample) -> f64| -> (f64, f64) {
        let ratios: Vec<f64> = sides[a]
            .samples
            .iter()
            .zip(&sides[b].samples)
            .map(|(x, y)| field(x) / field(y))
            .collect();
        (
            ratios.iter().copied().reduce(f64::min).unwrap_or(f64::NAN),
            ratios.iter().copied().reduce(f64::max).unwrap_or(f64::NAN),
        )
    };
    let rss = |s: &Sample| s.rss_mib;
    let rate = |s: &Sample| s.rate;
    let (low, high) = per_round(0, 3, rss);
    println!(
        "  veo3-reqwest peak RSS / its 1 KiB run: {low:.2}-{high:.2}x (per round; file / 1 KiB = {:.0}x)",
        file_bytes as f64 / 1024.0
    );
    let (low, high) = per_round(1, 3, rss);
    println!("  veo3-blocking peak RSS / the 1 KiB run: {low:.2}-{high:.2}x");
    let (low, high) = per_round(0, 2, rss);
    println!("  veo3-reqwest peak RSS / curl's: {low:.2}-{high:.2}x");
    let (low, high) = per_round(0, 2, rate);
    println!("  veo3-reqwest rate / curl's: {low:.2}-{high:.2}x (per round)");
    let (low, high) = per_round(1, 2, rate);
    println!("  veo3-blocking rate / curl's: {low:.2}-{high:.2}x (per round)");
    // What the file adds to the client's memory, at worst over the rounds.
    let added = sides[0]
        .samples
        .iter()
        .zip(&sides[3].samples)
        .map(|(big, small)| big.rss_mib - small.rss_mib)
        .fold(f64::NEG_INFINITY, f64::max);
    println!(
        "  memory the file adds to veo3-reqwest (peak RSS minus the 1 KiB run's, worst round): {added:.1} MiB"
    );
    if added > mib(file_bytes) / 4.0 {
        bail!(
            "the file adds {added:.1} MiB to the async client's peak RSS: not well under its {:.0} MiB",
            mib(file_bytes)
        );
    }
    let stats = sandbox.stats();
    if !stats.file_auth_headers.is_empty() {
        bail!("the file host saw Authorization headers");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The folder of the files to upload: `/dev/shm` when it exists (RAM, so the disk is not what
/// is measured), the temporary folder otherwise.
fn work_dir() -> anyhow::Result<PathBuf> {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("veo3-bench-upload-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes `len` bytes of a cheap pattern, 1 MiB at a time.
fn write_file(path: &Path, len: u64) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

/// Runs `program` under GNU time and times it from here, spawn to exit.
fn timed(program: &[OsString], bytes: u64) -> anyhow::Result<Sample> {
    let rss_file =
        std::env::temp_dir().join(format!("veo3-bench-upload-{}.rss", std::process::id()));
    let started = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .args(program)
        .status()
        .context("GNU time (/usr/bin/time) is needed for the peak RSS")?;
    let elapsed = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{program:?} failed: {status}");
    }
    let rss_kib: f64 = std::fs::read_to_string(&rss_file)?
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .context("unreadable GNU time output")?;
    let _ = std::fs::remove_file(&rss_file);
    Ok(Sample {
        rate: bytes as f64 / f64::from(1 << 20) / elapsed,
        rss_mib: rss_kib / 1024.0,
    })
}

/// A client uploading one file, in its own process: `async|blocking UPLOAD_URL PATH`.
fn child(args: &[String]) -> anyhow::Result<()> {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let (mode, upload_url, path) = (arg(0), arg(1), PathBuf::from(arg(2)));
    let expected = std::fs::metadata(&path)?.len();
    let options = veo3_types::UploadOptions::new("bench").file_name(format!("{mode}.bin"));
    let uploaded = match mode {
        "async" => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = veo3_reqwest::Client::builder()
                    .api_key(KEY)
                    .base_url(upload_url)
                    .upload_base_url(upload_url)
                    .build()?;
                client.upload_file(&path, &options).await
            })?
        }
        "blocking" => {
            let client = veo3_blocking::Client::builder()
                .api_key(KEY)
                .base_url(upload_url)
                .upload_base_url(upload_url)
                .build()?;
            client.upload_file(&path, &options)?
        }
        other => bail!("unknown child mode {other:?}"),
    };
    if uploaded.file_size != Some(expected as i64) {
        bail!(
            "the host stored {:?} of {expected} bytes",
            uploaded.file_size
        );
    }
    Ok(())
}
