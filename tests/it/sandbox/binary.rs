//! The `veo3-sandbox` binary, driven with the curl commands of kie's quickstart.

use std::time::Duration;

use serde_json::Value;

use super::KEY;

/// The built `veo3-sandbox` binary.
fn sandbox_binary() -> std::path::PathBuf {
    crate::support::workspace_binary("veo3-sandbox", "veo3-sandbox")
}

/// Kills the child on drop, so a failing test leaves no process behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(args: &[&str]) -> Value {
    let output = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("curl got JSON")
}

#[test]
fn the_quickstart_curl_commands_work_against_the_binary() {
    use std::io::BufRead as _;
    let binary = sandbox_binary();
    let mut child = Child(
        std::process::Command::new(binary)
            .args([
                "--port",
                "0",
                "--key",
                KEY,
                "--time-scale",
                "0.001",
                "--seed",
                "3",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sandbox binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let urls: Value = serde_json::from_str(&line).expect("one JSON line");
    let api = urls["api"].as_str().expect("api").to_owned();
    let uploads = urls["uploads"].as_str().expect("the upload host's URL");
    assert!(uploads.starts_with("http://127.0.0.1:") && uploads != api);
    assert!(
        urls["files"]
            .as_str()
            .expect("files")
            .starts_with("http://127.0.0.1:")
    );
    let auth = format!("Authorization: Bearer {KEY}");

    // The quickstart's generate command, with only the base URL and key changed.
    let created = curl(&[
        "--request",
        "POST",
        "--url",
        &format!("{api}/api/v1/veo/generate"),
        "--header",
        &auth,
        "--header",
        "Content-Type: application/json",
        "--data",
        r#"{"prompt": "A dog playing in a park", "model": "veo3", "aspectRatio": "16:9", "callBackUrl": "http://127.0.0.1:9/callback"}"#,
    ]);
    assert_eq!(created["code"], 200, "{created}");
    let id = created["data"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_owned();

    // Poll record-info the quickstart way (60 s of service time pass in 60 ms).
    let record_url = format!("{api}/api/v1/veo/record-info?taskId={id}");
    let mut record = Value::Null;
    for _ in 0..400 {
        record = curl(&["--request", "GET", "--url", &record_url, "--header", &auth]);
        if record["data"]["successFlag"] != 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(record["data"]["successFlag"], 1, "{record}");

    let hd_url = format!("{api}/api/v1/veo/get-1080p-video?taskId={id}&index=0");
    let mut hd = Value::Null;
    for _ in 0..400 {
        hd = curl(&["--request", "GET", "--url", &hd_url, "--header", &auth]);
        if hd["code"] == 200 {
            break;
        }
        assert_eq!(hd["code"], 400, "{hd}");
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        hd["data"]["resultUrl"]
            .as_str()
            .expect("resultUrl")
            .ends_with(".mp4")
    );

    // SIGTERM stops it cleanly.
    let pid = child.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.0.wait().expect("exits");
    assert!(status.success(), "{status:?}");
}

/// Starts the binary with `args` and returns it with its API URL (from its first stdout line).
fn start_binary(args: &[&str]) -> (Child, String) {
    use std::io::BufRead as _;
    let mut child = Child(
        std::process::Command::new(sandbox_binary())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sandbox binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let urls: Value = serde_json::from_str(&line).expect("one JSON line");
    let api = urls["api"].as_str().expect("api").to_owned();
    (child, api)
}

#[test]
fn the_binary_takes_a_rate_limit_and_counts_its_429_answers() {
    let (_child, api) = start_binary(&["--key", KEY, "--time-scale", "1", "--rate-limit", "2/1h"]);
    let auth = format!("Authorization: Bearer {KEY}");
    let generate = |_: usize| {
        curl(&[
            "--request",
            "POST",
            "--url",
            &format!("{api}/api/v1/veo/generate"),
            "--header",
            &auth,
            "--data",
            r#"{"prompt": "A dog playing in a park"}"#,
        ])["code"]
            .clone()
    };
    let codes: Vec<Value> = (0..3).map(generate).collect();
    assert_eq!(codes, [200, 200, 429]);
    let stats = curl(&["--url", &format!("{api}/__sandbox/stats")]);
    assert_eq!(stats["answered429"], 1, "{stats}");
    assert_eq!(stats["rateLimited"], 1, "{stats}");

    let (_unlimited, api) = start_binary(&["--time-scale", "1", "--no-rate-limit"]);
    for _ in 0..25 {
        let created = curl(&[
            "--request",
            "POST",
            "--url",
            &format!("{api}/api/v1/veo/generate"),
            "--header",
            &auth,
            "--data",
            r#"{"prompt": "p"}"#,
        ]);
        assert_eq!(created["code"], 200, "{created}");
    }
}

#[test]
fn the_binary_refuses_impossible_numbers_naming_the_option() {
    use std::io::Read as _;
    let cases: &[(&[&str], &str)] = &[
        (&["--time-scale", "0"], "--time-scale"),
        (&["--time-scale", "NaN"], "--time-scale"),
        (&["--time-scale", "inf"], "--time-scale"),
        (&["--time-scale", "-1"], "--time-scale"),
        (&["--time-scale=-0.5"], "--time-scale"),
        (&["--credits=-5"], "--credits"),
        (&["--credits", "-5"], "--credits"),
        (&["--rate-limit", "0/10s"], "--rate-limit"),
        (&["--rate-limit", "20/0s"], "--rate-limit"),
        (&["--rate-limit", "20/NaNs"], "--rate-limit"),
        (&["--faults", "generate:lost=NaN"], "--faults"),
    ];
    for (args, option) in cases {
        let mut child = Child(
            std::process::Command::new(sandbox_binary())
                .args(*args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("sandbox binary starts"),
        );
        // A sandbox that started prints its URLs; a refused one closes stdout with nothing.
        let mut stdout = String::new();
        let mut out = child.0.stdout.take().expect("stdout");
        let mut first = [0_u8; 1];
        let started = out.read(&mut first).expect("stdout readable") > 0;
        assert!(!started, "{args:?} was accepted: the sandbox started");
        out.read_to_string(&mut stdout).expect("stdout");
        let mut stderr = String::new();
        child
            .0
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("stderr");
        let status = child.0.wait().expect("exits");
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(option), "{args:?}: {stderr}");
    }
}
