//! `cargo xtask`: the workspace's one entry point for automation.
//!
//! - `cargo xtask ci`: the same gates as `.ci/run` (fmt, clippy, docs, tests), locally.
//! - `cargo xtask bench NAME`: runs a benchmark program from `xtask/bench` in release mode.
//! - `cargo xtask assets`: regenerates the sandbox's MP4 assets with ffmpeg.
//!
//! It deliberately has no dependencies: it only sequences `cargo` and other tools.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("assets") => assets(),
        _ => {
            eprintln!("usage: cargo xtask <ci | bench NAME [ARGS...] | assets>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One gate: cargo's arguments and an environment variable to set.
type Step = (
    &'static [&'static str],
    Option<(&'static str, &'static str)>,
);

/// The CI gates, in the order `.ci/run` runs them.
const CI_STEPS: &[Step] = &[
    (&["fmt", "--all", "--", "--check"], None),
    (
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        None,
    ),
    (
        &["doc", "--workspace", "--no-deps"],
        Some(("RUSTDOCFLAGS", "-D warnings")),
    ),
    // Every crate meant for crates.io packages and builds from its .crate file (see the
    // cost in .ci/run).
    (
        &[
            "package",
            "--workspace",
            "--exclude",
            "xtask",
            "--exclude",
            "veo3-bench",
            "--exclude",
            "veo3-tests",
        ],
        None,
    ),
    // The exact test command README.md gives.
    (&["test", "--workspace"], None),
];

fn ci() -> Result<(), String> {
    for (args, env) in CI_STEPS {
        let mut command = cargo();
        command.args(*args);
        if let Some((key, value)) = env {
            command.env(key, value);
        }
        run(command)?;
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    if args.is_empty() {
        return Err("usage: cargo xtask bench NAME (see xtask/bench/src/main.rs)".into());
    }
    let mut command = cargo();
    command
        .args(["run", "--release", "--quiet", "-p", "veo3-bench", "--"])
        .args(args);
    run(command)
}

/// The sandbox's result videos: small, real, playable H.264 + AAC MP4 files, one per
/// resolution, deterministic (fixed test sources, no timestamps in the metadata).
fn assets() -> Result<(), String> {
    let dir = "crates/veo3-sandbox/assets";
    for (name, size) in [("720p", "320x180"), ("1080p", "480x270"), ("4k", "640x360")] {
        let mut command = Command::new("ffmpeg");
        command.args([
            "-y",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=12:duration=2"),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:v",
            "libx264",
            "-preset",
            "veryslow",
            "-crf",
            "38",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "24k",
            "-shortest",
            "-map_metadata",
            "-1",
            "-fflags",
            "+bitexact",
            "-flags:v",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-movflags",
            "+faststart",
            &format!("{dir}/sample-{name}.mp4"),
        ]);
        run(command)?;
    }
    // The thumbnail of a 4K result (`imageUrls`).
    let mut command = Command::new("ffmpeg");
    command.args([
        "-y",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=384x216:rate=1:duration=1",
        "-frames:v",
        "1",
        "-q:v",
        "10",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        &format!("{dir}/thumb-4k.jpg"),
    ]);
    run(command)
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(mut command: Command) -> Result<(), String> {
    eprintln!("$ {command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}
