//! The `hearth` binary end to end: info, eval (.npy logits vs the HF reference), errors.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../core/tests/fixtures")
}

fn hearth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .unwrap()
}

fn read_npy(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "header must be 64-byte aligned");
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    let shape: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data = bytes[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (shape, data)
}

#[test]
fn info_lists_metadata_and_tensors() {
    let model = fixtures().join("gguf/lfm2moe-h64-e8k2-q4_k_m.gguf");
    let out = hearth(&["info", model.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("lfm2moe.expert_count"));
    assert!(text.contains("blk.5.ffn_down_exps.weight"));
    assert!(text.contains("64 tensors"));
}

#[test]
fn eval_writes_the_reference_logits() {
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("refs/lfm2-dense-h64/hf_f32/meta.json")).unwrap(),
    )
    .unwrap();
    let p = &meta["prompts"][0];
    let ids: Vec<String> = p["prompt_ids"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p["greedy"].as_array().unwrap())
        .map(|v| v.to_string())
        .collect();
    let out_path = std::env::temp_dir().join(format!("hearth-eval-{}.npy", std::process::id()));
    let model = fixtures().join("gguf/lfm2-dense-h64-f32.gguf");
    let out = hearth(&[
        "eval",
        model.to_str().unwrap(),
        "--backend",
        "cpu",
        "--tokens",
        &ids.join(","),
        "--logits-out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (shape, got) = read_npy(&out_path);
    std::fs::remove_file(&out_path).ok();
    let want_path = fixtures().join("refs/lfm2-dense-h64/hf_f32/p0_short_logits.npy");
    let (want_shape, want) = read_npy(&want_path);
    assert_eq!(shape, want_shape);
    let diff = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-3, "max |Δ| {diff}");
}

#[test]
fn bad_inputs_fail_with_a_message_not_a_panic() {
    let model = fixtures().join("gguf/lfm2-dense-h64-q8_0.gguf");
    for args in [
        vec!["info", "/nonexistent.gguf"],
        vec!["info", "Cargo.toml"],
        vec![
            "eval",
            model.to_str().unwrap(),
            "--tokens",
            "99999",
            "--logits-out",
            "/tmp/x.npy",
        ],
        vec![
            "eval",
            model.to_str().unwrap(),
            "--backend",
            "tpu",
            "--tokens",
            "1",
            "--logits-out",
            "/tmp/x.npy",
        ],
    ] {
        let out = hearth(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.is_empty());
    }
}

#[test]
fn chat_reads_one_message_per_line_when_piped() {
    use std::io::Write;
    let model = fixtures().join("gguf/lfm2moe-h64-e16k4-q8_0.gguf");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "chat",
            model.to_str().unwrap(),
            "--backend",
            "cpu",
            "--max-tokens",
            "8",
            "--temp",
            "0",
            "--system",
            "Be brief.",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hello there\nWhat is C. elegans?\n/reset\nHello there\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let stats: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('[') && l.contains("cached"))
        .collect();
    assert_eq!(stats.len(), 3, "{text}");
    assert!(stats[0].contains("cached 0"), "{}", stats[0]);
    assert!(
        !stats[1].contains("cached 0 "),
        "second turn reuses the cache: {}",
        stats[1]
    );
    assert!(text.contains("(conversation cleared)"));
    // Greedy: the first answer after /reset repeats the very first answer.
    let answers: Vec<&str> = text.split('\n').collect();
    let first = answers[0];
    assert!(answers.iter().skip(2).any(|l| *l == first), "{text}");
}
