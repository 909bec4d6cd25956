//! The whole API from the command line: every request field has a flag (checked in the CLI's
//! own unit tests), a URL can be downloaded by the tool that printed it, and shells and `man`
//! get their descriptions from the same declarations.

use std::process::Command;

use veo3_sandbox::Route;

use super::{FAST, fetch, json, run, sandbox, stderr, stdout, veo3};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_printed_by_status_downloads_and_download_url_refreshes_it() {
    let sandbox = sandbox().await;
    let mut args = vec![
        "--json",
        "generate",
        "A fox",
        "--resolution",
        "1080p",
        "--wait",
    ];
    args.extend(FAST);
    let record = json(&run(&sandbox, &args).await);
    let task_id = record["taskId"].as_str().expect("a task id").to_owned();
    let status = json(&run(&sandbox, &["--json", "status", &task_id]).await);
    for field in [
        "paramJson",
        "seeds",
        "hasAudioList",
        "mediaIds",
        "fallbackFlag",
    ] {
        assert!(
            status.get(field).is_some(),
            "status --json has {field}: {status}"
        );
    }
    assert!(
        status["paramJson"]
            .as_str()
            .is_some_and(|p| p.contains("1080p")),
        "--resolution reached the request: {status}"
    );
    let url = status["videoUrls"][0]
        .as_str()
        .expect("a video URL")
        .to_owned();

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("by-url.mp4");
    let saved = json(
        &run(
            &sandbox,
            &[
                "--json",
                "download",
                &url,
                "--out",
                out.to_str().expect("utf-8"),
            ],
        )
        .await,
    );
    assert_eq!(
        saved["bytes"].as_u64(),
        Some(fetch(&url).await.len() as u64)
    );
    assert_eq!(std::fs::read(&out).expect("the file"), fetch(&url).await);

    let fresh = run(&sandbox, &["download-url", &url]).await;
    assert!(fresh.status.success(), "{}", stderr(&fresh));
    let link = stdout(&fresh).trim().to_owned();
    assert!(link.starts_with("http"), "{link}");
    assert_eq!(sandbox.stats().requests(Route::DownloadUrl), 1);

    let index_with_url = run(
        &sandbox,
        &[
            "download",
            &url,
            "--out",
            out.to_str().expect("utf-8"),
            "--index",
            "1",
        ],
    )
    .await;
    assert_eq!(
        index_with_url.status.code(),
        Some(2),
        "{}",
        stderr(&index_with_url)
    );
}

#[test]
fn the_bash_completion_script_loads_in_bash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("veo3.bash");
    let output = Command::new(veo3())
        .args(["completions", "bash"])
        .output()
        .expect("veo3 runs");
    assert!(output.status.success(), "{}", stderr(&output));
    std::fs::write(&script, &output.stdout).expect("write the script");
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p veo3", script.display()))
        .output()
        .expect("bash runs");
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    assert!(stdout(&loaded).contains("veo3"), "{}", stdout(&loaded));
    for shell in ["zsh", "fish", "powershell"] {
        let output = Command::new(veo3())
            .args(["completions", shell])
            .output()
            .expect("veo3 runs");
        assert!(
            output.status.success() && !output.stdout.is_empty(),
            "{shell}"
        );
    }
}

#[test]
fn the_man_page_describes_every_command() {
    let output = Command::new(veo3()).arg("man").output().expect("veo3 runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let page = stdout(&output);
    assert!(
        page.starts_with(".ie") || page.contains(".TH veo3"),
        "{page}"
    );
    for command in ["generate", "credits", "completions", "upgrade"] {
        assert!(page.contains(command), "{command} is in the page");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let written = Command::new(veo3())
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .expect("veo3 runs");
    assert!(written.status.success(), "{}", stderr(&written));
    assert!(dir.path().join("veo3.1").exists());
    assert!(dir.path().join("veo3-generate.1").exists());
}

/// The subcommands a `--help` page lists under "Commands:" (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The long flags a `--help` page lists (without `--help` and `--version`).
fn long_flags(help: &str) -> Vec<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .filter_map(|line| {
            line.split([',', ' '])
                .find(|word| word.starts_with("--"))
                .map(|flag| flag.trim_end_matches("...").to_owned())
        })
        .filter(|flag| flag != "--help" && flag != "--version")
        .collect()
}

fn help(args: &[&str]) -> String {
    let output = Command::new(veo3())
        .args(args)
        .arg("--help")
        .output()
        .expect("veo3 runs");
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    stdout(&output)
}

/// README's command reference names every command and every flag `--help` shows, new ones
/// included: a flag added without documentation fails here.
#[test]
fn the_readme_documents_every_command_and_flag() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .expect("README.md");
    let mut checked = 0;
    for command in subcommands(&help(&[])) {
        let page = help(&[&command]);
        let nested = subcommands(&page);
        let pages = if nested.is_empty() {
            vec![(command.clone(), page)]
        } else {
            nested
                .iter()
                .map(|sub| (format!("{command} {sub}"), help(&[&command, sub])))
                .collect()
        };
        for (name, page) in pages {
            assert!(
                readme.contains(&format!("| `{name}")),
                "README's command reference has no row for `veo3 {name}`"
            );
            for flag in long_flags(&page) {
                assert!(
                    readme.contains(&format!("`{flag}`")) || readme.contains(&format!("`{flag} ")),
                    "README does not document `veo3 {name} {flag}`"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} flags checked");
}
