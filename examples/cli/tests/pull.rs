//! `hearth pull / list / rm` against a local hub server (non-TTY output: progress lines).
#![cfg(feature = "hub")]

#[path = "../../../core/tests/support/hub_server.rs"]
mod hub_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hub_server::{Config, Fault, Server};
use sha2::{Digest, Sha256};

const REPO: &str = "LiquidAI/Test-GGUF";
const FILE: &str = "lfm2-dense-h64-q4_0.gguf";

fn fixture() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../core/tests/fixtures/gguf")
        .join(FILE);
    std::fs::read(path).expect("fixture GGUF")
}

fn hearth(args: &[&str], endpoint_env: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.args(args)
        .env_remove("HEARTH_HUB_ENDPOINT")
        .env_remove("HEARTH_MODELS_DIR")
        .env_remove("HF_TOKEN")
        .env_remove("HEARTH_HUB_TOKEN");
    if let Some(e) = endpoint_env {
        cmd.env("HEARTH_HUB_ENDPOINT", e);
    }
    cmd.output().expect("run hearth")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn pull_list_rm_against_a_local_hub() {
    let data = fixture();
    let sha: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut config = Config::new(REPO, FILE, data.clone(), Some(sha.clone()));
    config.redirect = true;
    // Slow enough for several progress lines, interrupted once (resumed by the retry).
    config.faults = vec![
        Fault::DropAfter(60_000),
        Fault::Slow {
            chunk: 32 << 10,
            delay: Duration::from_millis(120),
        },
    ];
    let server = Server::start(config);
    let dir = TempDir(std::env::temp_dir().join(format!("hearth-cli-pull-{}", std::process::id())));
    let d = dir.0.to_str().unwrap();

    let out = hearth(
        &["pull", REPO, FILE, "--dir", d, "--endpoint", &server.url()],
        None,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let path = dir.0.join(FILE);
    assert_eq!(stdout.trim(), path.display().to_string());
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("pulling "))
        .collect();
    assert!(lines.len() >= 2, "progress lines: {stderr}");
    assert!(lines[0].contains("0 B / 346.8 KiB (0%)"), "{stderr}");
    assert!(
        lines
            .last()
            .unwrap()
            .contains("346.8 KiB / 346.8 KiB (100%)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("verified {FILE} (SHA-256 {sha})")),
        "{stderr}"
    );
    assert_eq!(server.file_gets()[1].range.as_deref(), Some("bytes=60000-"));

    // Endpoint from the environment; already present: no network, same path.
    let n = server.requests().len();
    let out = hearth(
        &["pull", &format!("{REPO}/{FILE}"), "--dir", d],
        Some(&server.url()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(server.requests().len(), n);

    let out = hearth(&["list", "--dir", d], None);
    let listing = text(&out.stdout);
    assert!(out.status.success());
    let row = listing
        .lines()
        .find(|l| l.starts_with(FILE))
        .expect(&listing);
    assert!(
        row.contains("346.8 KiB") && row.contains("Q4_0") && row.ends_with("yes"),
        "{row}"
    );

    let out = hearth(&["rm", FILE, "--dir", d], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!path.exists());
    let out = hearth(&["rm", FILE, "--dir", d], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no model named"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn pull_errors_are_reported_with_a_failure_status() {
    let data = fixture();
    let mut config = Config::new(REPO, FILE, data, None);
    config.head_status = Some(401);
    let server = Server::start(config);
    let dir = TempDir(std::env::temp_dir().join(format!("hearth-cli-err-{}", std::process::id())));
    let out = hearth(
        &["pull", REPO, FILE, "--dir", dir.0.to_str().unwrap()],
        Some(&server.url()),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("gated"),
        "{stderr}"
    );
    assert!(!dir.0.join(FILE).exists());

    // An unknown catalogue name is explained.
    let out = hearth(
        &["pull", "no-such-model", "--dir", dir.0.to_str().unwrap()],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not a catalogue model"));
}

#[test]
fn catalogue_listing_shows_sizes_and_ram() {
    let out = hearth(&["list", "--catalogue"], None);
    assert!(out.status.success());
    let s = text(&out.stdout);
    for name in [
        "LFM2.5-8B-A1B",
        "LFM2-8B-A1B",
        "LFM2.5-1.2B-Thinking",
        "LFM2-350M",
    ] {
        assert!(s.contains(name), "{s}");
    }
    assert!(
        s.contains("LiquidAI/LFM2-1.2B-GGUF/LFM2-1.2B-Q4_K_M.gguf"),
        "{s}"
    );
}
