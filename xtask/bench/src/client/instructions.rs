//! `cargo xtask bench client --instructions`: status calls counted in instructions, the
//! figure a loaded machine cannot move.
//!
//! Wall-clock rates on a shared 2-core machine swing by 2x between windows; the instructions
//! a process retires for the same calls do not. Each side (veo3-reqwest, and reqwest alone
//! making the same calls without decoding) runs as a child of this binary under a counter:
//! `valgrind --tool=callgrind` (user-space instructions of every thread of the child, the
//! sandbox excluded: it serves from this process), or `perf stat -e instructions:u` where
//! valgrind is missing and the kernel lets perf count. Start-up (the runtime, the client,
//! the first connection) is cancelled by counting two runs that differ only in the number of
//! calls: instructions per call = (I(long) - I(short)) / (calls(long) - calls(short)).
//! Every pair is counted [`ROUNDS`] times, the sides alternating, and the range printed.

use std::process::Command;

use anyhow::{Context, bail};

/// Calls of the short and the long counted run (multiples of 16, so every caller of the
/// concurrent runs makes the same number).
const CALLS: [u64; 2] = [160, 960];
/// Counted pairs per side and number of callers.
const ROUNDS: usize = 2;

/// The tool that counts a child's instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counter {
    Callgrind,
    Perf,
}

impl Counter {
    /// valgrind when installed, else perf when it can count instructions here.
    fn find() -> Option<Self> {
        let works = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .is_ok_and(|output| output.status.success())
        };
        if works("valgrind", &["--version"]) {
            return Some(Self::Callgrind);
        }
        let perf = Command::new("perf")
            .args(["stat", "-x,", "-e", "instructions:u", "true"])
            .output()
            .ok()?;
        parse_perf(&String::from_utf8_lossy(&perf.stderr)).map(|_| Self::Perf)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Callgrind => "valgrind --tool=callgrind",
            Self::Perf => "perf stat -e instructions:u",
        }
    }

    /// The user-space instructions the child `args` of this binary retired.
    fn count(self, args: &[&str]) -> anyhow::Result<u64> {
        let exe = std::env::current_exe()?;
        let mut command = match self {
            Self::Callgrind => {
                let mut command = Command::new("valgrind");
                command.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"]);
                command
            }
            Self::Perf => {
                let mut command = Command::new("perf");
                command.args(["stat", "-x,", "-e", "instructions:u", "--"]);
                command
            }
        };
        let output = command
            .arg(exe)
            .args(["client", "--child"])
            .args(args)
            .output()
            .with_context(|| format!("cannot start {}", self.name()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            bail!("counted child {args:?} failed: {stderr}");
        }
        let count = match self {
            Self::Callgrind => parse_callgrind(&stderr),
            Self::Perf => parse_perf(&stderr),
        };
        count.with_context(|| format!("no instruction count in {}'s output: {stderr}", self.name()))
    }
}

/// Callgrind's `==PID== Collected : N` line.
fn parse_callgrind(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        let (_, rest) = line.split_once("Collected :")?;
        rest.trim().parse().ok()
    })
}

/// perf's CSV line `N,,instructions:u,...`; `None` for `<not supported>`.
fn parse_perf(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        let mut fields = line.split(',');
        let count = fields.next()?;
        fields
            .nth(1)
            .filter(|event| event.starts_with("instructions"))?;
        count.trim().parse().ok()
    })
}

/// Instructions per call of each side, per round.
struct Counted {
    name: &'static str,
    per_call: Vec<f64>,
}

impl Counted {
    fn least(&self) -> f64 {
        self.per_call.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn greatest(&self) -> f64 {
        self.per_call.iter().copied().fold(0.0, f64::max)
    }
}

/// Counts both sides at 1 and 16 callers and prints instructions per call and their ratio;
/// returns the ratios (1 caller, 16 callers), or `None` with a note when nothing can count.
pub(super) fn run(api_url: &str, task_id: &str) -> anyhow::Result<Option<[f64; 2]>> {
    let Some(counter) = Counter::find() else {
        println!(
            "instructions per status call: no counter (install valgrind: apt-get update && apt-get install -y valgrind)"
        );
        return Ok(None);
    };
    println!(
        "instructions per status call ({}; {} and {} calls counted, start-up cancelled; {ROUNDS} rounds, range in brackets):",
        counter.name(),
        CALLS[0],
        CALLS[1]
    );
    let mut ratios = [0.0; 2];
    for (slot, callers) in [1, super::CONCURRENCY].into_iter().enumerate() {
        let callers = callers.to_string();
        let mut sides = [
            Counted {
                name: "veo3-reqwest (one client)",
                per_call: Vec::new(),
            },
            Counted {
                name: "reqwest alone (same calls, no decoding)",
                per_call: Vec::new(),
            },
        ];
        for round in 0..ROUNDS {
            for turn in 0..sides.len() {
                let index = (round + turn) % sides.len();
                let mode = ["status", "reqwest"][index];
                let mut counts = [0_u64; 2];
                for (count, calls) in counts.iter_mut().zip(CALLS) {
                    let budget = format!("calls={calls}");
                    *count = counter.count(&[mode, api_url, task_id, &budget, &callers])?;
                }
                let per_call =
                    counts[1].saturating_sub(counts[0]) as f64 / (CALLS[1] - CALLS[0]) as f64;
                sides[index].per_call.push(per_call);
            }
        }
        let [ours, baseline] = &sides;
        let ratio = ours.least() / baseline.least();
        ratios[slot] = ratio;
        println!("  {callers} caller(s):");
        for side in &sides {
            println!(
                "    {:<52} {:>8.0} [{:.0}-{:.0}]",
                side.name,
                side.least(),
                side.least(),
                side.greatest()
            );
        }
        println!(
            "    ours / reqwest alone = {ratio:.3}x [{:.3}x-{:.3}x] (goal <= 1.15x)",
            ours.least() / baseline.greatest(),
            ours.greatest() / baseline.least()
        );
    }
    println!();
    Ok(Some(ratios))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_from_either_tool() {
        let callgrind = "==12== Events    : Ir\n==12== Collected : 123456789\n==12==\n==12== I   refs:      123,456,789\n";
        assert_eq!(parse_callgrind(callgrind), Some(123_456_789));
        assert_eq!(
            parse_perf("4521987,,instructions:u,1001,100.00,,\n"),
            Some(4_521_987)
        );
        assert_eq!(
            parse_perf("<not supported>,,instructions:u,0,100.00,,\n"),
            None
        );
    }
}
