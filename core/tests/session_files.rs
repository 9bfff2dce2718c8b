//! Saved sessions are crash-safe: a process killed at any point of a save leaves the previous
//! save or the new one — never a torn file, never a cache paired with the wrong conversation —
//! and a save that fails leaves the previous files as they were.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hearth::chat::Message;
use hearth::sampling::SamplingOptions;
use hearth::session::{GenerateOptions, Session, SessionOptions};
use hearth::{BackendKind, Engine, ErrorKind};

const MODEL: &str = "lfm2-dense-h64-q4_0";
/// Set in the child process of the kill test: the path it saves to, over and over.
const CHILD: &str = "HEARTH_SAVE_CHILD";
const READY: &str = "hearth-save-child: saved both";

fn engine() -> Engine {
    common::engine(BackendKind::Cpu, MODEL)
}

/// Two conversations with caches of the same length that differ in their words (so a cache
/// from one cannot pass as the other's by its length). Deterministic: the child and the
/// parent build the same two.
fn conversations(engine: &Engine) -> [Session; 2] {
    let opts = GenerateOptions {
        sampling: SamplingOptions::greedy(),
        max_tokens: 6,
        ..Default::default()
    };
    let mut made: Vec<Session> = Vec::new();
    for text in [
        "Hello there",
        "Good night",
        "Hi you",
        "Bye now",
        "Yes sir",
        "No way",
        "Ok",
    ] {
        let mut s = Session::new(engine, SessionOptions::default()).unwrap();
        s.send_with(Message::user(text), &opts, |_| {}).unwrap();
        let len = s.cached_tokens().len();
        if let Some(i) = made.iter().position(|m| m.cached_tokens().len() == len) {
            return [made.swap_remove(i), s];
        }
        made.push(s);
    }
    panic!("no two conversations of one length");
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-save-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cache_bytes(s: &Session) -> Vec<u8> {
    s.debug_cache_state().unwrap().to_bytes()
}

/// The child: saves the two conversations to one path in turn until it is killed.
fn save_forever(path: &Path) -> ! {
    let engine = engine();
    let sessions = conversations(&engine);
    let mut announced = false;
    loop {
        for s in &sessions {
            s.save(path, true).unwrap();
        }
        if !announced {
            println!("{READY}");
            announced = true;
        }
    }
}

#[test]
fn a_save_killed_at_any_point_leaves_the_old_or_the_new_session_intact() {
    if let Ok(path) = std::env::var(CHILD) {
        save_forever(Path::new(&path));
    }
    let engine = engine();
    let sessions = conversations(&engine);
    assert_eq!(
        sessions[0].cached_tokens().len(),
        sessions[1].cached_tokens().len()
    );
    let dir = temp_dir("kill");
    let path = dir.join("chat.json");
    let (mut with_cache, mut seen) = (0, [0; 2]);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..24 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_save_killed_at_any_point_leaves_the_old_or_the_new_session_intact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        for line in out.lines() {
            if line.unwrap().contains(READY) {
                break;
            }
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 20_000));
        child.kill().unwrap();
        child.wait().unwrap();

        let restored = Session::restore(&engine, &path)
            .unwrap_or_else(|e| panic!("round {round}: the save was torn: {e}"));
        let which = sessions
            .iter()
            .position(|s| s.messages() == restored.messages())
            .unwrap_or_else(|| panic!("round {round}: messages of neither save"));
        seen[which] += 1;
        if !restored.cached_tokens().is_empty() {
            with_cache += 1;
            let want = &sessions[which];
            assert_eq!(
                restored.cached_tokens(),
                want.cached_tokens(),
                "round {round}"
            );
            assert!(
                cache_bytes(&restored) == cache_bytes(want),
                "round {round}: a cache that belongs to the other conversation was loaded"
            );
        }
    }
    eprintln!(
        "restored A {} / B {} times, {with_cache} with their cache",
        seen[0], seen[1]
    );
    assert!(
        with_cache > 0,
        "no restore used its cache: the test checks nothing"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failed_save_leaves_the_previous_files_as_they_were() {
    let engine = engine();
    let [old, new] = conversations(&engine);
    let dir = temp_dir("fail");
    let path = dir.join("chat.json");
    old.save(&path, true).unwrap();

    // The cache's temporary file cannot be created (a directory is in its way), then the
    // JSON's: both saves fail with an I/O error and change nothing.
    for blocked in ["chat.json.cache.tmp", "chat.json.tmp"] {
        std::fs::create_dir(dir.join(blocked)).unwrap();
        let err = new.save(&path, true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{blocked}: {err}");
        let restored = Session::restore(&engine, &path).unwrap();
        assert_eq!(restored.messages(), old.messages(), "{blocked}");
        std::fs::remove_dir(dir.join(blocked)).unwrap();
    }
    // In the second case the new cache file was written before the JSON failed: the old JSON
    // must not take it for its own.
    let restored = Session::restore(&engine, &path).unwrap();
    assert!(restored.cached_tokens().is_empty() || cache_bytes(&restored) == cache_bytes(&old));

    // A truncated or damaged JSON is a typed error, not a panic or an empty conversation.
    let json = std::fs::read(&path).unwrap();
    for bad in [&json[..json.len() / 2], b"{\"format\": 1, \"messages\": 7}"] {
        std::fs::write(&path, bad).unwrap();
        let err = Session::restore(&engine, &path).err().expect("an error");
        assert!(matches!(err, hearth::Error::Corrupt { .. }), "{err:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Deleting the model file, or replacing it by a rename (how the model store installs a
/// download: `.part`, then rename — it never truncates a file in place), while an engine has
/// it mapped changes nothing for that engine: the mapping keeps the old file alive.
#[test]
fn a_model_file_deleted_or_replaced_while_loaded_keeps_working() {
    let dir = temp_dir("model");
    let path = dir.join("model.gguf");
    let answer = |engine: &Engine| {
        let mut s = Session::new(engine, SessionOptions::default()).unwrap();
        let opts = GenerateOptions {
            sampling: SamplingOptions::greedy(),
            max_tokens: 8,
            ..Default::default()
        };
        let mut text = String::new();
        s.send_with(Message::user("Hello there"), &opts, |ev| {
            if let hearth::Event::Text(t) = ev {
                text.push_str(t)
            }
        })
        .unwrap();
        text
    };
    for kind in [BackendKind::Cpu, BackendKind::Gpu] {
        if kind == BackendKind::Gpu && !common::gpu_ready() {
            continue;
        }
        std::fs::copy(common::gguf_path(MODEL), &path).unwrap();
        let loaded = Engine::load(&path, hearth::EngineOptions::with_backend(kind)).unwrap();
        let before = answer(&loaded);
        std::fs::remove_file(&path).unwrap();
        let deleted = answer(&loaded);
        // Another model renamed over the same path.
        let other = dir.join("other.gguf.part");
        std::fs::copy(common::gguf_path("lfm2moe-h64-e8k2-q8_0"), &other).unwrap();
        std::fs::rename(&other, &path).unwrap();
        let replaced = answer(&loaded);
        assert_eq!(deleted, before, "{kind:?}: after the delete");
        assert_eq!(replaced, before, "{kind:?}: after the replace");
        std::fs::remove_file(&path).unwrap();
    }
    std::fs::remove_dir_all(&dir).ok();
}
