//! `--out` and downloads through the binary: targets refused before anything is billed, an
//! existing file kept unless `--force`, and a download killed half-way resumed by the next
//! run (issue 15, defects 3, 4 and 7).

use std::path::Path;
use std::process::Stdio;

use veo3_sandbox::Sandbox;

use super::{FAST, KEY, assert_ok, json, run, sandbox, stderr, veo3};

/// Runs `generate --out OUT` and checks that it is refused as a usage error (exit 2) with a
/// message containing `says`, and that nothing was billed.
async fn refused_before_billing(out: &str, says: &str) {
    let sandbox = sandbox().await;
    let mut args = vec!["generate", "A red fox in the snow", "--out", out];
    args.extend(FAST);
    let output = run(&sandbox, &args).await;
    assert_eq!(
        output.status.code(),
        Some(2),
        "--out {out}: {}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains(says),
        "--out {out}: {:?} does not say {says:?}",
        stderr(&output)
    );
    assert_eq!(
        sandbox.stats().tasks_created_by(KEY),
        0,
        "--out {out}: nothing may be billed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_that_cannot_be_written_is_refused_before_anything_is_billed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();

    // A folder that does not exist, written with a trailing slash: no task, and no
    // `newdir.part` either.
    let newdir = format!("{}/", at("newdir"));
    refused_before_billing(&newdir, "ends with a slash, so it names a folder").await;
    assert!(!Path::new(&at("newdir.part")).exists());
    assert!(!Path::new(&at("newdir")).exists());

    // `x.mp4.part` exists as a folder.
    std::fs::create_dir(at("x.mp4.part")).expect("folder");
    refused_before_billing(
        &at("x.mp4"),
        "x.mp4.part, where the download is written first, is a folder",
    )
    .await;

    // A file where a folder should be: named as a file, not as a missing folder.
    std::fs::write(at("existing.mp4"), b"video").expect("file");
    let inside = format!("{}/x.mp4", at("existing.mp4"));
    let says = format!("{} is a file, not a folder", at("existing.mp4"));
    refused_before_billing(&inside, &says).await;

    // A folder nobody may write in, even root (sysfs).
    if Path::new("/sys/kernel").is_dir() && std::fs::File::create("/sys/veo3-probe.mp4").is_err() {
        refused_before_billing("/sys/x.mp4", "folder /sys cannot be written").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_out_is_kept_unless_force_is_given() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("fox.mp4");
    let out_arg = out.to_str().expect("utf-8");
    std::fs::write(&out, b"an earlier, paid-for video").expect("write");

    let mut args = vec!["generate", "A red fox in the snow", "--out", out_arg];
    args.extend(FAST);
    let refused = run(&sandbox, &args).await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("already exists; pass --force to replace it"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(sandbox.stats().tasks_created_by(KEY), 0, "nothing billed");
    assert_eq!(
        std::fs::read(&out).expect("kept"),
        b"an earlier, paid-for video"
    );

    let mut args = vec![
        "--json",
        "generate",
        "A red fox in the snow",
        "--out",
        out_arg,
        "--force",
    ];
    args.extend(FAST);
    let replaced = json(&run(&sandbox, &args).await);
    let bytes = std::fs::read(&out).expect("replaced");
    assert_eq!(
        replaced["download"]["bytes"].as_u64(),
        Some(bytes.len() as u64)
    );
    assert_ne!(bytes, b"an earlier, paid-for video");
}

/// Compares the file at `path` with the sandbox's `/big` pattern, block by block.
fn assert_big_pattern(path: &Path, len: u64) {
    use std::io::Read as _;
    const PERIOD: usize = 65_521;
    let pattern: Vec<u8> = (0..PERIOD as u64)
        .map(veo3_sandbox::big_file_byte)
        .collect();
    let mut file = std::fs::File::open(path).expect("file");
    let mut block = vec![0; PERIOD];
    let mut offset = 0u64;
    loop {
        let want = PERIOD.min((len - offset) as usize);
        if want == 0 {
            break;
        }
        file.read_exact(&mut block[..want]).expect("read");
        assert!(
            block[..want] == pattern[..want],
            "bytes differ in the block at {offset}"
        );
        offset += want as u64;
    }
    assert_eq!(file.read(&mut block).expect("read"), 0, "longer than {len}");
}

/// A 1 GiB download killed with SIGKILL half-way leaves its `.part` and sidecar; the next run
/// asks only for the rest (the file host counts the bytes) and the result is byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_killed_half_way_is_resumed_by_the_next_run_with_the_missing_bytes_only() {
    let len: u64 = 1 << 30;
    let sandbox = Sandbox::builder()
        .key(KEY)
        .time_scale(0.001)
        .seed(7)
        .result_bytes(Some(len))
        .start()
        .await
        .expect("sandbox starts");
    let created = json(&run(&sandbox, &["--json", "generate", "A fox"]).await);
    let task_id = created["taskId"].as_str().expect("task id").to_owned();
    assert!(sandbox.complete_now(&task_id));
    // tmpfs where there is one: the test measures bytes, not the disk.
    let dir = tempfile::Builder::new()
        .tempdir_in(if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .expect("tempdir");
    let out = dir.path().join("big.mp4");
    let part = dir.path().join("big.mp4.part");
    let sidecar = dir.path().join("big.mp4.part.json");

    let mut child = std::process::Command::new(veo3())
        .args([
            "--base-url",
            sandbox.api_url(),
            "--api-key",
            KEY,
            "download",
            &task_id,
            "--out",
        ])
        .arg(&out)
        .env_remove("KIE_API_KEY")
        .env_remove("KIE_BASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("veo3 runs");
    let kept = tokio::task::spawn_blocking({
        let part = part.clone();
        move || {
            // Watch the .part grow; kill the process once half the file is there.
            loop {
                let size = std::fs::metadata(&part).map_or(0, |meta| meta.len());
                if size >= len / 2 {
                    child.kill().expect("SIGKILL");
                    child.wait().expect("reaped");
                    break;
                }
                assert!(
                    child.try_wait().expect("status").is_none(),
                    "veo3 ended before half the file arrived"
                );
                std::thread::yield_now();
            }
            std::fs::metadata(&part).expect("the .part stays").len()
        }
    })
    .await
    .expect("join");
    assert!(kept >= len / 2 && kept < len, "killed at {kept} of {len}");
    assert!(sidecar.exists(), "the sidecar stays beside the .part");
    assert!(!out.exists());

    let served_before = sandbox.stats().file_bytes_served;
    let resumed = run(
        &sandbox,
        &[
            "--json",
            "download",
            &task_id,
            "--out",
            out.to_str().expect("utf-8"),
        ],
    )
    .await;
    assert_ok(&resumed);
    let served = sandbox.stats().file_bytes_served - served_before;
    eprintln!(
        "killed at {kept} bytes ({:.1} %); the rerun transferred {served} bytes ({:.1} %)",
        kept as f64 * 100.0 / len as f64,
        served as f64 * 100.0 / len as f64
    );
    // The killed connection may still have handed a few buffers to its socket.
    assert!(
        served.abs_diff(len - kept) < 16 << 20,
        "the rerun asked only for the missing bytes: {served} served, {kept} of {len} kept"
    );
    assert_big_pattern(&out, len);
    assert!(!part.exists() && !sidecar.exists());
}
