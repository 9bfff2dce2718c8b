//! `Session::release_memory` (what an app calls on an iOS memory warning or Android's
//! `onTrimMemory`): the session's caches are freed — the process's resident memory drops by
//! what the session had added — and the conversation continues exactly as it would have.
//! One test in this binary, so no other test's allocations blur the RSS figures.

mod common;

use hearth::chat::Message;
use hearth::session::{Event, Session, SessionOptions};
use hearth::{BackendKind, Engine};

const MODEL: &str = "lfm2-dense-h64-q4_0";

fn say(s: &mut Session, text: &str, seed: u64) -> String {
    let mut out = String::new();
    s.send_with(Message::user(text), &common::seeded(seed, 16), |ev| {
        if let Event::Text(t) = ev {
            out.push_str(t)
        }
    })
    .unwrap();
    out
}

fn session(engine: &Engine) -> Session {
    let options = SessionOptions {
        context_length: 8192,
        ..Default::default()
    };
    Session::new(engine, options).unwrap()
}

#[test]
fn released_memory_is_given_back_and_the_conversation_continues_exactly() {
    for kind in [BackendKind::Cpu, BackendKind::Gpu] {
        if kind == BackendKind::Gpu && !common::gpu_ready() {
            continue;
        }
        let engine = common::engine(kind, MODEL);
        // A long first message: its prefill fills thousands of KV rows and the checkpoints.
        // (Shorter on the GPU, whose caches are not in the RSS figures: lavapipe is slow.)
        let repeat = if kind == BackendKind::Cpu { 120 } else { 12 };
        let long = "Tell me about the worm C. elegans and its neurons. ".repeat(repeat);
        let mut twin = session(&engine);
        say(&mut twin, &long, 1);

        let before = common::rss_mb();
        let mut s = session(&engine);
        say(&mut s, &long, 1);
        let used = common::rss_mb();
        s.release_memory();
        let released = common::rss_mb();
        eprintln!(
            "{kind:?}: RSS {before:.1} MB, {used:.1} MB after the turn, {released:.1} MB released"
        );
        assert!(!s.has_cache() && s.cached_tokens().is_empty());
        if kind == BackendKind::Cpu {
            // On the GPU the caches live in device memory (lavapipe: its own heap).
            assert!(
                used - released >= 0.5 * (used - before),
                "{kind:?}: the session added {:.1} MB, the release gave back {:.1} MB",
                used - before,
                used - released
            );
        }
        assert_eq!(s.messages(), twin.messages());
        assert_eq!(
            say(&mut s, "And then?", 2),
            say(&mut twin, "And then?", 2),
            "{kind:?}"
        );
        assert!(s.has_cache());

        // Saving a released session saves the conversation; the restore prefills it.
        s.release_memory();
        let path = std::env::temp_dir().join(format!("hearth-release-{}.json", std::process::id()));
        s.save(&path, true).unwrap();
        let mut restored = Session::restore(&engine, &path).unwrap();
        assert_eq!(
            say(&mut restored, "Why?", 3),
            say(&mut twin, "Why?", 3),
            "{kind:?}"
        );
        std::fs::remove_file(&path).ok();
    }
}
