//! The command line, declared with clap. Every command's `--help` carries examples.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use veo3_types::{AspectRatio, ExtendModel, GenerationType, Model, Resolution, VideoDuration};

const ROOT_EXAMPLES: &str = "\
Examples:
  # See the whole journey on a local sandbox (no account needed):
  veo3 demo --out demo.mp4

  # Generate a video and download it when it is ready:
  export KIE_API_KEY=...
  veo3 generate \"A red fox trotting through fresh snow at dawn\" --out fox.mp4

  # Script it: machine-readable output on stdout
  veo3 --json generate \"A lighthouse in a storm\" --wait | jq -r .videoUrls[0]

Exit codes:
  0 success, 1 API/network/file error, 2 usage or invalid request (nothing sent),
  3 the task failed, 4 --timeout reached (the task may still finish),
  128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; the message says how to resume)";

/// Generate videos with kie.ai's Veo 3 / 3.1 API from the command line.
#[derive(Debug, Parser)]
#[command(name = "veo3", version, about, after_help = ROOT_EXAMPLES)]
pub(crate) struct Cli {
    /// API key (kie.ai settings page). Never printed.
    #[arg(
        long,
        env = "KIE_API_KEY",
        global = true,
        hide_env_values = true,
        value_parser = clap::value_parser!(std::ffi::OsString)
    )]
    pub(crate) api_key: Option<std::ffi::OsString>,

    /// API base URL; point it at a sandbox to try things without an account.
    #[arg(
        long,
        env = "KIE_BASE_URL",
        global = true,
        default_value = "https://api.kie.ai"
    )]
    pub(crate) base_url: String,

    /// Upload host for `upload` and local `--image` files; default: kie's upload host for
    /// kie's API, else the base URL (`veo3 sandbox` prints its own as "uploads").
    #[arg(long, env = "KIE_UPLOAD_BASE_URL", global = true)]
    pub(crate) upload_base_url: Option<String>,

    /// Print machine-readable JSON results on stdout (and no progress bars).
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// More diagnostics on stderr (-v: debug, -vv: trace). The API key is never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    #[command(subcommand)]
    pub(crate) command: Command,

    /// Where `--api-key` and `--base-url` came from, so a message names what the user set.
    #[arg(skip)]
    pub(crate) sources: Sources,
}

/// Whether a setting came from its environment variable (or else from its flag or default).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sources {
    pub(crate) api_key_from_env: bool,
    pub(crate) base_url_from_env: bool,
}

impl Cli {
    /// Parses the process's arguments (exiting with clap's message and code 2 on bad usage).
    pub(crate) fn from_process() -> Self {
        use clap::FromArgMatches as _;
        use clap::parser::ValueSource;
        let matches = command().get_matches();
        let mut cli = Self::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
        let from_env = |id| matches.value_source(id) == Some(ValueSource::EnvVariable);
        cli.sources = Sources {
            api_key_from_env: from_env("api_key"),
            base_url_from_env: from_env("base_url"),
        };
        cli
    }
}

/// The command line, with every variable that is set but empty treated as unset (a
/// `KIE_BASE_URL=` left in a script means "the default", not "an empty URL").
pub(crate) fn command() -> clap::Command {
    use clap::CommandFactory as _;
    unset_empty_env(Cli::command())
}

fn unset_empty_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .is_some_and(|name| std::env::var_os(name).is_some_and(|value| value.is_empty()));
            if empty { arg.env(None) } else { arg }
        })
        .mut_subcommands(unset_empty_env)
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Submit a generation task; optionally wait for it and download the result.
    #[command(after_help = "\
Examples:
  veo3 generate \"A red fox in the snow\"                      # prints the task id
  veo3 generate \"A red fox in the snow\" --wait               # waits, prints the URLs
  veo3 generate \"A red fox in the snow\" --out fox.mp4        # waits and downloads
  veo3 generate \"A cat walks\" --image ./cat.png --out cat.mp4   # uploads cat.png first
  veo3 generate \"The room fills with light\" --image https://example.com/room.jpg \\
       --generation-type first-and-last-frames --aspect-ratio 9:16 --out room.mp4
  veo3 generate \"...\" --wait --poll-interval 15s --timeout 20m
  veo3 generate \"...\" --callback-listen 0.0.0.0:8080 --callback-url https://my.host:8080/veo3")]
    Generate(GenerateArgs),

    /// Show a task's current state and result URLs.
    #[command(
        after_help = "Examples:\n  veo3 status 3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21\n  veo3 --json status 3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21"
    )]
    Status(TaskArgs),

    /// Wait for a task to finish (resume an interrupted `generate --wait`).
    #[command(
        after_help = "Examples:\n  veo3 wait 3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21\n  veo3 wait 3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21 --out fox.mp4 --timeout 30m"
    )]
    Wait(WaitArgs),

    /// Download a finished task's video, or a result URL (e.g. one printed by `status`).
    #[command(
        after_help = "Examples:\n  veo3 download 3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21 --out fox.mp4\n  veo3 download 3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21 --out second.mp4 --index 1\n  veo3 download https://tempfile.aiquickdraw.com/v/3f9c1e7a.mp4 --out fox.mp4"
    )]
    Download(DownloadArgs),

    /// Turn a kie-generated URL into a fresh download link (valid for 20 minutes).
    #[command(
        after_help = "Examples:\n  veo3 download-url https://tempfile.aiquickdraw.com/v/3f9c1e7a.mp4\n  veo3 --json download-url https://tempfile.aiquickdraw.com/v/3f9c1e7a.mp4 | jq -r .downloadUrl"
    )]
    DownloadUrl(DownloadUrlArgs),

    /// Upgrade a finished video to 1080p or 4K, waiting through the "processing" answers.
    #[command(
        after_help = "Examples:\n  veo3 upgrade 3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21 --resolution 1080p --out fox-1080p.mp4\n  veo3 upgrade 3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21 --resolution 4k   # extra credits"
    )]
    Upgrade(UpgradeArgs),

    /// Extend a finished video with a new prompt (creates a new, billed task).
    #[command(
        after_help = "Examples:\n  veo3 extend 3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21 \"The fox leaps over a log\" --wait\n  veo3 extend 3f9c1e7a2b4d4c0e9a8b7c6d5e4f3a21 \"...\" --model quality --out longer.mp4"
    )]
    Extend(ExtendArgs),

    /// Show the account's remaining credits.
    #[command(after_help = "Examples:\n  veo3 credits\n  veo3 --json credits")]
    Credits,

    /// Upload a local file (streamed) or have the upload host fetch a URL; prints the hosted
    /// URL to pass as an image (kept 24 hours to 3 days; uploads are free).
    #[command(
        after_help = "Examples:\n  veo3 upload ./cat.png\n  veo3 upload https://example.com/cat.jpg --path images/cats\n  veo3 --json upload ./cat.png | jq -r .downloadUrl"
    )]
    Upload(UploadArgs),

    /// Run the local emulator of the API until Ctrl-C.
    #[command(
        after_help = "Examples:\n  veo3 sandbox --port 8080 --time-scale 0.01\n  KIE_BASE_URL=http://127.0.0.1:8080 KIE_API_KEY=test veo3 generate \"...\" --out a.mp4"
    )]
    Sandbox(veo3_sandbox::serve::ServeArgs),

    /// Receive kie.ai callbacks: verify, deduplicate, print each as a JSON line.
    #[command(
        after_help = "Examples:\n  export KIE_WEBHOOK_HMAC_KEY=...   # from kie.ai settings\n  veo3 listen --addr 0.0.0.0:8080\n  veo3 listen --addr 127.0.0.1:8080 --hmac-key-env MY_KEY_VAR\n  veo3 listen --addr 127.0.0.1:8080 --unsigned   # accounts without an HMAC key"
    )]
    Listen(ListenArgs),

    /// Print a shell completion script on stdout.
    #[command(after_help = "\
Examples:
  veo3 completions bash > ~/.local/share/bash-completion/completions/veo3
  veo3 completions zsh > \"${fpath[1]}/_veo3\"
  veo3 completions fish > ~/.config/fish/completions/veo3.fish
  veo3 completions powershell >> $PROFILE")]
    Completions(CompletionsArgs),

    /// Print the man page (roff) on stdout, or write one page per command to a folder.
    #[command(after_help = "\
Examples:
  veo3 man | man -l -
  veo3 man --dir ~/.local/share/man/man1   # veo3.1, veo3-generate.1, ...")]
    Man(ManArgs),

    /// Run the whole journey on an in-process sandbox: generate, wait, download, 1080p.
    #[command(after_help = "Examples:\n  veo3 demo\n  veo3 demo --out /tmp/demo.mp4")]
    Demo(DemoArgs),

    /// Run many generations from a file, with a journal that survives crashes and never
    /// bills a video twice.
    #[command(subcommand, after_help = BATCH_EXAMPLES)]
    Batch(BatchCommand),

    /// Show the jobs recorded in the journal (batches and `veo3 generate`).
    #[command(
        subcommand,
        after_help = "Examples:\n  veo3 jobs list\n  veo3 jobs list --state unknown\n  veo3 jobs show 42"
    )]
    Jobs(JobsCommand),
}

const BATCH_EXAMPLES: &str = "\
Examples:
  veo3 batch run prompts.txt --out-dir videos          # one prompt per line
  veo3 batch run ads.jsonl --max-credits 3000 --upgrade 1080p
  veo3 batch run catalogue.csv --dry-run               # check every line, print the cost
  veo3 batch status
  veo3 batch resume                                    # after Ctrl-C, a crash or a 402
  veo3 batch resume --resubmit-unknown                 # bills again for unknown jobs

Many workers, one shared journal (PostgreSQL), on any number of machines:
  veo3 batch run ads.jsonl --journal postgres://veo3@db/veo3 --enqueue-only
  veo3 batch work --journal postgres://veo3@db/veo3 --until-empty   # on each machine

Files: JSONL (one object per line: prompt, model, aspect_ratio, imageUrls, seeds, ...,
plus name and upgrade), CSV with a header row of the same names, or plain text (one prompt
per line). The journal is the user's data folder's veo3/journal.db, or --journal / VEO3_JOURNAL
(a file, or a postgres:// URL shared by workers).";

/// Where the journal is.
#[derive(Debug, Args, Clone)]
pub(crate) struct JournalArg {
    /// The journal: a file (default: the user's data folder, e.g.
    /// ~/.local/share/veo3/journal.db), or a postgres:// URL that workers share.
    #[arg(long, env = "VEO3_JOURNAL", value_name = "PATH|URL")]
    pub(crate) journal: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BatchCommand {
    /// Read a file of jobs, journal them and run them.
    #[command(after_help = BATCH_EXAMPLES)]
    Run(BatchRunArgs),
    /// Continue a batch from its journal (its settings are stored there).
    #[command(after_help = BATCH_EXAMPLES)]
    Resume(BatchResumeArgs),
    /// Counts by state, credits spent, an ETA, and the unknown jobs with what to do.
    #[command(after_help = BATCH_EXAMPLES)]
    Status(BatchStatusArgs),
    /// Work on a shared (postgres://) journal's batches alongside other workers: claim jobs,
    /// submit them under the account's shared limit, take over the jobs of dead workers.
    #[command(after_help = BATCH_EXAMPLES)]
    Work(BatchWorkArgs),
}

/// How a worker holds its jobs (`batch work`, and `batch run|resume` on a shared journal).
#[derive(Debug, Args, Clone)]
pub(crate) struct WorkerArgs {
    /// How long this worker's claims last if it stops renewing them (it renews every third
    /// of it); after that, other workers take its jobs over.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub(crate) lease: Duration,

    /// A name for this worker in messages and the journal (default: host and process id).
    #[arg(long)]
    pub(crate) worker_name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct BatchWorkArgs {
    /// Exit once no job is pending or in flight (default: serve until stopped).
    #[arg(long)]
    pub(crate) until_empty: bool,

    /// Only this batch (default: every batch, oldest first).
    #[arg(long)]
    pub(crate) batch: Option<i64>,

    #[command(flatten)]
    pub(crate) worker: WorkerArgs,

    #[command(flatten)]
    pub(crate) journal: JournalArg,

    #[command(flatten)]
    pub(crate) common: BatchCommon,
}

#[derive(Debug, Args)]
pub(crate) struct BatchRunArgs {
    /// The jobs: JSONL, CSV or one prompt per line.
    pub(crate) file: PathBuf,

    /// Where the videos, manifest.jsonl and index.html go.
    #[arg(long, value_name = "DIR", default_value = "videos")]
    pub(crate) out_dir: PathBuf,

    /// Most tasks in flight at once (submitted, not yet downloaded).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) concurrency: u32,

    /// Refuse to start when the estimated cost exceeds this many credits.
    #[arg(long, value_name = "CREDITS")]
    pub(crate) max_credits: Option<i64>,

    /// The account's generation limit, MAX/WINDOW (kie: 20/10s).
    #[arg(long, default_value = "20/10s", value_parser = parse_rate)]
    pub(crate) rate: (u32, Duration),

    /// Download the 1080p or 4K version (4K costs extra credits).
    #[arg(long, value_enum)]
    pub(crate) upgrade: Option<UpgradeResolution>,

    /// Validate every line and print the estimated cost; send nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Journal the batch and exit: workers (`veo3 batch work`) run it.
    #[arg(long, conflicts_with = "dry_run")]
    pub(crate) enqueue_only: bool,

    #[command(flatten)]
    pub(crate) worker: WorkerArgs,

    /// A JSON price table overriding the built-in one (see README).
    #[arg(long, value_name = "FILE")]
    pub(crate) prices: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) journal: JournalArg,

    #[command(flatten)]
    pub(crate) common: BatchCommon,

    #[command(flatten)]
    pub(crate) callbacks: BatchCallbacks,
}

/// Options of `batch run` and `batch resume` that are not stored with the batch.
#[derive(Debug, Args, Clone)]
pub(crate) struct BatchCommon {
    /// Replace files at the jobs' output names (NAME.mp4 in the output folder). Without it,
    /// `batch run` refuses to start when one exists, and a job whose file appeared meanwhile
    /// is left resumable (a file that is the job's own, left by a crash, is kept as it is).
    #[arg(long)]
    pub(crate) force: bool,

    /// Start even if the balance is below the estimate (the run stops cleanly at the 402).
    #[arg(long)]
    pub(crate) skip_balance_check: bool,

    /// Time between status polls (stored with the batch).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) poll_interval: Option<Duration>,

    /// With callbacks: how long to keep listening for the callbacks of unknown submits once
    /// everything else is done.
    #[arg(long, value_parser = parse_duration, default_value = "20m")]
    pub(crate) recovery_window: Duration,
}

/// Callback reception for a batch (stored with it; the key stays in the environment).
#[derive(Debug, Args, Clone)]
pub(crate) struct BatchCallbacks {
    /// The public URL kie posts callbacks to; each job adds `job=<id>` to it, so a callback
    /// recovers a job whose generate answer was lost.
    #[arg(long, requires = "callback_listen")]
    pub(crate) callback_url: Option<String>,

    /// Where to receive the callbacks (HOST:PORT).
    #[arg(long, value_name = "HOST:PORT", requires = "callback_url")]
    pub(crate) callback_listen: Option<std::net::SocketAddr>,

    /// The environment variable holding the webhook HMAC key.
    #[arg(long, default_value = "KIE_WEBHOOK_HMAC_KEY")]
    pub(crate) hmac_key_env: String,

    /// Accept unsigned callbacks (accounts without an HMAC key).
    #[arg(long)]
    pub(crate) unsigned_callbacks: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BatchResumeArgs {
    /// The batch (default: the latest).
    #[arg(long)]
    pub(crate) batch: Option<i64>,

    /// Send the unknown jobs again. They may already be billed: this can bill twice.
    #[arg(long)]
    pub(crate) resubmit_unknown: bool,

    /// Send the failed jobs again (a new, billed task each).
    #[arg(long)]
    pub(crate) retry_failed: bool,

    #[command(flatten)]
    pub(crate) worker: WorkerArgs,

    #[command(flatten)]
    pub(crate) journal: JournalArg,

    #[command(flatten)]
    pub(crate) common: BatchCommon,
}

#[derive(Debug, Args)]
pub(crate) struct BatchStatusArgs {
    /// The batch (default: the latest).
    #[arg(long)]
    pub(crate) batch: Option<i64>,

    #[command(flatten)]
    pub(crate) journal: JournalArg,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// The latest jobs, newest first.
    #[command(after_help = "Examples:\n  veo3 jobs list\n  veo3 --json jobs list --limit 500")]
    List(JobsListArgs),
    /// One job: its request, state, task id, file and timings.
    #[command(after_help = "Examples:\n  veo3 jobs show 42")]
    Show(JobsShowArgs),
}

#[derive(Debug, Args)]
pub(crate) struct JobsListArgs {
    /// How many.
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: u64,

    /// Only jobs in this state (pending, submitting, submitted, succeeded, upgrading,
    /// downloaded, failed, unknown).
    #[arg(long)]
    pub(crate) state: Option<String>,

    #[command(flatten)]
    pub(crate) journal: JournalArg,
}

#[derive(Debug, Args)]
pub(crate) struct JobsShowArgs {
    /// The job id.
    pub(crate) id: i64,

    #[command(flatten)]
    pub(crate) journal: JournalArg,
}

/// `MAX/WINDOW`, e.g. `20/10s` or `20/100ms`.
fn parse_rate(text: &str) -> Result<(u32, Duration), String> {
    let (max, window) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: use MAX/WINDOW, e.g. 20/10s"))?;
    let max: u32 = max
        .trim()
        .parse()
        .ok()
        .filter(|m| *m > 0)
        .ok_or_else(|| format!("{text:?}: MAX must be a positive integer"))?;
    Ok((max, parse_duration(window.trim())?))
}

/// How long to wait and how often to ask.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct WaitTuning {
    /// Time between status polls (e.g. `200ms`, `30s`); default suits the model and stage.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) poll_interval: Option<Duration>,

    /// Give up waiting after this long (e.g. `10m`); the task keeps running on the server.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,
}

impl Command {
    /// Whether `--force` allows replacing an existing output file.
    pub(crate) fn force(&self) -> bool {
        match self {
            Self::Generate(args) => args.force,
            Self::Wait(args) => args.force,
            Self::Download(args) => args.force,
            Self::Upgrade(args) => args.force,
            Self::Extend(args) => args.force,
            Self::Demo(args) => args.force,
            // Without --force, the runner still adopts its own job's file (byte-identical to
            // the job's source, left by a crash before the journal write) and touches no other.
            Self::Batch(BatchCommand::Run(args)) => args.common.force,
            Self::Batch(BatchCommand::Resume(args)) => args.common.force,
            Self::Batch(BatchCommand::Work(args)) => args.common.force,
            Self::Status(_)
            | Self::DownloadUrl(_)
            | Self::Credits
            | Self::Sandbox(_)
            | Self::Listen(_)
            | Self::Completions(_)
            | Self::Man(_)
            | Self::Batch(BatchCommand::Status(_))
            | Self::Jobs(_)
            | Self::Upload(_) => false,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// What the video shows.
    pub(crate) prompt: String,

    /// Model: veo3_fast (default), veo3 (quality), veo3_lite.
    #[arg(long, default_value = "veo3_fast", value_parser = parse_model)]
    pub(crate) model: Model,

    /// Aspect ratio: 16:9, 9:16 or Auto.
    #[arg(long, value_parser = parse_aspect_ratio)]
    pub(crate) aspect_ratio: Option<AspectRatio>,

    /// Input image (repeatable), a URL or a local JPEG/PNG/WebP file (uploaded first): 1-2 for
    /// first-and-last-frames (what kie infers when --generation-type is not given), 1-3 for
    /// reference.
    #[arg(long = "image", value_name = "URL|FILE")]
    pub(crate) images: Vec<String>,

    /// How the video is derived from the images.
    #[arg(long, value_enum)]
    pub(crate) generation_type: Option<GenerationTypeArg>,

    /// Output resolution: 720p (default), 1080p or 4k (the reference's newest page only).
    #[arg(long, value_parser = parse_resolution)]
    pub(crate) resolution: Option<Resolution>,

    /// Seed, 10000-99999, for similar output across runs.
    #[arg(long)]
    pub(crate) seeds: Option<u32>,

    /// Clip length in seconds: 4, 6 or 8 (kie's default); REFERENCE_2_VIDEO takes 8 only.
    #[arg(long, value_name = "SECONDS", value_parser = parse_video_duration)]
    pub(crate) duration: Option<VideoDuration>,

    /// Text watermark burned into the video.
    #[arg(long)]
    pub(crate) watermark: Option<String>,

    /// Completion webhook URL kie.ai will POST to (`callBackUrl`).
    #[arg(long, visible_alias = "call-back-url")]
    pub(crate) callback_url: Option<String>,

    /// Send the prompt as-is (no translation to English). Without it `enableTranslation:
    /// true` is sent.
    #[arg(long)]
    pub(crate) no_translation: bool,

    /// Wait for the task to finish.
    #[arg(long)]
    pub(crate) wait: bool,

    /// Wait, then download the first video to PATH (implies --wait).
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,

    /// Replace the file at --out if one is there (otherwise an existing file is never
    /// overwritten: it is usually an earlier, paid-for video).
    #[arg(long)]
    pub(crate) force: bool,

    /// Finish the wait the moment kie's callback arrives: receive callbacks on HOST:PORT
    /// (--callback-url must reach it); polling continues rarely as a safety net. Implies --wait.
    #[arg(long, value_name = "HOST:PORT", requires = "callback_url")]
    pub(crate) callback_listen: Option<std::net::SocketAddr>,

    /// With --callback-listen: the environment variable holding the webhook HMAC key.
    #[arg(long, default_value = "KIE_WEBHOOK_HMAC_KEY")]
    pub(crate) hmac_key_env: String,

    /// With --callback-listen: accept unsigned callbacks (accounts without an HMAC key).
    #[arg(long)]
    pub(crate) unsigned_callbacks: bool,

    /// Do not record the task in the journal.
    #[arg(long)]
    pub(crate) no_journal: bool,

    #[command(flatten)]
    pub(crate) journal: JournalArg,

    #[command(flatten)]
    pub(crate) tuning: WaitTuning,
}

/// `generationType` spelled for a shell.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum GenerationTypeArg {
    /// TEXT_2_VIDEO: from the prompt alone.
    Text,
    /// FIRST_AND_LAST_FRAMES_2_VIDEO: one or two images.
    FirstAndLastFrames,
    /// REFERENCE_2_VIDEO: one to three reference images (documented for the Fast and Lite
    /// models; with veo3 a warning, and the server decides).
    Reference,
}

impl From<GenerationTypeArg> for GenerationType {
    fn from(arg: GenerationTypeArg) -> Self {
        match arg {
            GenerationTypeArg::Text => GenerationType::TextToVideo,
            GenerationTypeArg::FirstAndLastFrames => GenerationType::FirstAndLastFrames,
            GenerationTypeArg::Reference => GenerationType::Reference,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct TaskArgs {
    /// The task id printed by `generate` or `extend`.
    pub(crate) task_id: String,
}

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// The task id printed by `generate` or `extend`.
    pub(crate) task_id: String,

    /// Download the first video to PATH once the task succeeds.
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,

    /// Replace the file at --out if one is there (otherwise an existing file is never
    /// overwritten: it is usually an earlier, paid-for video).
    #[arg(long)]
    pub(crate) force: bool,

    #[command(flatten)]
    pub(crate) tuning: WaitTuning,

    /// Where a task recorded by `veo3 generate` gets its row finished (downloaded, failed);
    /// the default journal is only read if it exists.
    #[command(flatten)]
    pub(crate) journal: JournalArg,
}

#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    /// The task id, or an http(s) URL of a result file.
    #[arg(value_name = "TASK_ID_OR_URL")]
    pub(crate) source: String,

    /// Where to write the video (written to PATH.part, renamed when complete).
    #[arg(long, value_name = "PATH")]
    pub(crate) out: PathBuf,

    /// Replace the file at --out if one is there (otherwise an existing file is never
    /// overwritten: it is usually an earlier, paid-for video).
    #[arg(long)]
    pub(crate) force: bool,

    /// Which video of the task (0-based; only with a task id).
    #[arg(long, default_value_t = 0)]
    pub(crate) index: usize,
}

#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    /// A local file, or an http(s) URL for the upload host to fetch.
    pub(crate) source: String,

    /// The folder on the upload host (no leading or trailing slash).
    #[arg(long = "path", value_name = "DIR", default_value = veo3_types::DEFAULT_UPLOAD_PATH)]
    pub(crate) upload_path: String,

    /// The stored file name (the same name replaces an earlier file); default: the local file
    /// name, or a random one for URLs.
    #[arg(long = "name")]
    pub(crate) file_name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DownloadUrlArgs {
    /// A URL kie generated (a result or an upload).
    pub(crate) url: String,
}

#[derive(Debug, Args)]
pub(crate) struct UpgradeArgs {
    /// The source task id (a successful generation).
    pub(crate) task_id: String,

    /// Target resolution.
    #[arg(long, value_enum)]
    pub(crate) resolution: UpgradeResolution,

    /// Which video of the task (0-based).
    #[arg(long, default_value_t = 0)]
    pub(crate) index: u32,

    /// 4K only: completion webhook URL kie.ai will POST to (`callBackUrl`).
    #[arg(long, visible_alias = "call-back-url")]
    pub(crate) callback_url: Option<String>,

    #[command(flatten)]
    pub(crate) listen: CallbackListen,

    /// Download the upgraded video to PATH.
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,

    /// Replace the file at --out if one is there (otherwise an existing file is never
    /// overwritten: it is usually an earlier, paid-for video).
    #[arg(long)]
    pub(crate) force: bool,

    #[command(flatten)]
    pub(crate) tuning: WaitTuning,
}

/// `--callback-listen` and its options, for the commands that wait on a job kie calls back
/// about (`upgrade --resolution 4k`, `extend`); `generate` has the same flags.
#[derive(Debug, Args)]
pub(crate) struct CallbackListen {
    /// Finish the wait the moment kie's callback arrives: receive callbacks on HOST:PORT
    /// (--callback-url must reach it); polling continues rarely as a safety net. Implies a
    /// wait.
    #[arg(long, value_name = "HOST:PORT", requires = "callback_url")]
    pub(crate) callback_listen: Option<std::net::SocketAddr>,

    /// With --callback-listen: the environment variable holding the webhook HMAC key.
    #[arg(long, default_value = "KIE_WEBHOOK_HMAC_KEY")]
    pub(crate) hmac_key_env: String,

    /// With --callback-listen: accept unsigned callbacks (accounts without an HMAC key).
    #[arg(long)]
    pub(crate) unsigned_callbacks: bool,
}

/// Upgrade targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum UpgradeResolution {
    /// 1080p (get-1080p-video).
    #[value(name = "1080p")]
    P1080,
    /// 4K (get-4k-video; extra credits).
    #[value(name = "4k", alias = "4K")]
    K4,
}

#[derive(Debug, Args)]
pub(crate) struct ExtendArgs {
    /// The task to extend.
    pub(crate) task_id: String,

    /// What happens next in the video.
    pub(crate) prompt: String,

    /// Model: fast (default), quality or lite.
    #[arg(long, value_parser = parse_extend_model)]
    pub(crate) model: Option<ExtendModel>,

    /// Seed, 10000-99999.
    #[arg(long)]
    pub(crate) seeds: Option<u32>,

    /// Text watermark.
    #[arg(long)]
    pub(crate) watermark: Option<String>,

    /// Completion webhook URL (`callBackUrl`).
    #[arg(long, visible_alias = "call-back-url")]
    pub(crate) callback_url: Option<String>,

    /// Wait for the extension to finish.
    #[arg(long)]
    pub(crate) wait: bool,

    #[command(flatten)]
    pub(crate) listen: CallbackListen,

    /// Wait, then download the stitched video to PATH (implies --wait).
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,

    /// Replace the file at --out if one is there (otherwise an existing file is never
    /// overwritten: it is usually an earlier, paid-for video).
    #[arg(long)]
    pub(crate) force: bool,

    #[command(flatten)]
    pub(crate) tuning: WaitTuning,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write `veo3.1` and one page per command into this folder instead.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Where to write the generated video; the 1080p version goes next to it.
    #[arg(long, value_name = "PATH", default_value = "veo3-demo.mp4")]
    pub(crate) out: PathBuf,

    /// Replace the file at --out if one is there (otherwise an existing file is never
    /// overwritten: it is usually an earlier, paid-for video).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// Address to listen on, e.g. 0.0.0.0:8080 (callbacks arrive on any path).
    #[arg(long)]
    pub(crate) addr: std::net::SocketAddr,

    /// Environment variable holding the webhook HMAC key.
    #[arg(
        long,
        default_value = "KIE_WEBHOOK_HMAC_KEY",
        conflicts_with = "unsigned"
    )]
    pub(crate) hmac_key_env: String,

    /// Accept unsigned callbacks (only for accounts without an HMAC key).
    #[arg(long)]
    pub(crate) unsigned: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration =
        humantime::parse_duration(text).map_err(|e| format!("{e} (use e.g. 200ms, 30s, 5m)"))?;
    if duration.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(duration)
}

/// Any whole number of seconds: a length outside 4, 6 and 8 is refused by the request's own
/// validation, which names the rule (exit 2, nothing sent).
fn parse_video_duration(text: &str) -> Result<VideoDuration, String> {
    text.parse::<VideoDuration>().map_err(|e| e.to_string())
}

fn parse_model(text: &str) -> Result<Model, String> {
    match Model::from_wire(text) {
        Model::Other(_) => Err(format!(
            "unknown model {text:?}; use veo3_fast, veo3 or veo3_lite"
        )),
        model => Ok(model),
    }
}

fn parse_extend_model(text: &str) -> Result<ExtendModel, String> {
    match ExtendModel::from_wire(text) {
        ExtendModel::Other(_) => Err(format!("unknown model {text:?}; use fast, quality or lite")),
        model => Ok(model),
    }
}

fn parse_resolution(text: &str) -> Result<Resolution, String> {
    match Resolution::from_wire(text) {
        Resolution::Other(_) => Err(format!(
            "unknown resolution {text:?}; use 720p, 1080p or 4k"
        )),
        resolution => Ok(resolution),
    }
}

fn parse_aspect_ratio(text: &str) -> Result<AspectRatio, String> {
    match AspectRatio::from_wire(text) {
        AspectRatio::Other(_) => Err(format!(
            "unknown aspect ratio {text:?}; use 16:9, 9:16 or Auto"
        )),
        ratio => Ok(ratio),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_accept_human_forms_and_reject_nonsense() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    /// Every field of every request body or query, as serde writes it, has a flag or argument
    /// on the command that sends it. Each request is built with every builder setter, so a
    /// new field shows up here as soon as its setter is used; the table below is the only
    /// place that says which argument sets which field.
    #[test]
    fn every_request_field_has_a_flag() {
        use veo3_types::{
            DownloadUrlRequest, ExtendRequest, GenerateRequest, Hd1080pQuery, RecordInfoQuery,
            Upgrade4kRequest,
        };
        let url = "https://example.com/a.png";
        let generate = GenerateRequest::builder("p")
            .model(Model::Veo3Fast)
            .generation_type(GenerationType::Reference)
            .image_url(url)
            .aspect_ratio(AspectRatio::Landscape)
            .resolution(Resolution::P1080)
            .seeds(12345)
            .call_back_url(url)
            .enable_translation(false)
            .watermark("w")
            .duration(veo3_types::VideoDuration::Seconds8)
            .build()
            .expect("valid");
        let extend = ExtendRequest::new("t", "p")
            .model(ExtendModel::Fast)
            .seeds(12345)
            .watermark("w")
            .call_back_url(url);
        let upgrade_4k = Upgrade4kRequest::new("t").index(0).call_back_url(url);
        let requests: [(&str, serde_json::Value); 6] = [
            ("generate", serde_json::to_value(generate).expect("json")),
            ("extend", serde_json::to_value(extend).expect("json")),
            ("upgrade", serde_json::to_value(upgrade_4k).expect("json")),
            (
                "upgrade",
                serde_json::to_value(Hd1080pQuery::new("t", Some(0))).expect("json"),
            ),
            (
                "status",
                serde_json::to_value(RecordInfoQuery::new("t")).expect("json"),
            ),
            (
                "download-url",
                serde_json::to_value(DownloadUrlRequest::new(url)).expect("json"),
            ),
        ];
        // Wire name -> clap argument id.
        let argument = |field: &str| match field {
            "prompt" | "model" | "seeds" | "watermark" | "resolution" | "index" | "url"
            | "duration" => Some(field.to_owned()),
            "taskId" => Some("task_id".into()),
            "generationType" => Some("generation_type".into()),
            "imageUrls" => Some("images".into()),
            "aspect_ratio" => Some("aspect_ratio".into()),
            "callBackUrl" => Some("callback_url".into()),
            "enableTranslation" => Some("no_translation".into()),
            _ => None,
        };
        let root = Cli::command();
        for (name, body) in requests {
            let command = root
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("no `veo3 {name}`"));
            let fields = body.as_object().expect("an object");
            assert!(!fields.is_empty(), "{name}: {body}");
            for field in fields.keys() {
                let id = argument(field)
                    .unwrap_or_else(|| panic!("{name}: field {field} has no flag in the table"));
                assert!(
                    command
                        .get_arguments()
                        .any(|arg| arg.get_id() == id.as_str()),
                    "`veo3 {name}` has no argument for {field} ({id})"
                );
            }
        }
    }

    #[test]
    fn rates_are_max_per_window() {
        assert_eq!(parse_rate("20/10s"), Ok((20, Duration::from_secs(10))));
        assert_eq!(parse_rate("5/100ms"), Ok((5, Duration::from_millis(100))));
        assert!(parse_rate("0/10s").is_err());
        assert!(parse_rate("20").is_err());
        assert!(parse_rate("x/10s").is_err());
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        let mut root = Cli::command();
        root.build();
        // clap's own `help` subcommand is the only one without examples.
        for command in root.get_subcommands().filter(|c| c.get_name() != "help") {
            let help = command
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("Examples:"),
                "{} has no examples",
                command.get_name()
            );
            assert!(
                help.contains("veo3 "),
                "{} examples do not show a command",
                command.get_name()
            );
        }
    }
}
