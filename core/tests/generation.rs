//! The owned, thread-safe API a binding holds: per-turn cancel tokens, generations on worker
//! threads with batched events, concurrent sessions, engine load progress and cancel, the
//! per-session memory fit, and error classes.

#[macro_use]
mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use hearth::{
    BackendKind, CancelToken, Engine, EngineOptions, Error, ErrorKind, Event, EventSink,
    GenerateOptions, LoadPhase, Message, Request, Session, SessionOptions, SharedSession,
    StopReason, TurnStats,
};

const MODEL: &str = "lfm2moe-h64-e8k2-q4_0";

use common::seeded;

fn engine(kind: BackendKind) -> Engine {
    common::engine(kind, MODEL)
}

/// The visible text of a turn run through the borrowing iterator API.
fn iterate(s: &mut Session, request: Request, opts: &GenerateOptions) -> (String, TurnStats) {
    let mut text = String::new();
    let mut stats = None;
    for ev in s.start(request, opts, CancelToken::new()).unwrap() {
        match ev.unwrap() {
            Event::Text(t) | Event::Thinking(t) => text.push_str(&t),
            Event::ToolCallError { raw, .. } => text.push_str(&raw),
            Event::Done(st) => stats = Some(st),
            Event::ToolCall(_) => {}
        }
    }
    (text, stats.unwrap())
}

/// A sink that records every batch and the final result, and can cancel after `stop_after`
/// batches by returning false.
#[derive(Clone, Default)]
struct Recorder {
    batches: Arc<Mutex<Vec<Vec<Event>>>>,
    finished: Arc<Mutex<Vec<hearth::Result<TurnStats>>>>,
    stop_after: Option<usize>,
}

impl Recorder {
    fn text(&self) -> String {
        let mut out = String::new();
        for ev in self.batches.lock().unwrap().iter().flatten() {
            match ev {
                Event::Text(t) | Event::Thinking(t) => out.push_str(t),
                Event::ToolCallError { raw, .. } => out.push_str(raw),
                _ => {}
            }
        }
        out
    }

    fn result(&self) -> TurnStats {
        let done = self.finished.lock().unwrap();
        assert_eq!(done.len(), 1, "on_finish is called exactly once");
        done[0].as_ref().unwrap().clone()
    }
}

impl EventSink for Recorder {
    fn on_events(&mut self, events: Vec<Event>) -> bool {
        assert!(!events.is_empty(), "no empty batches");
        assert!(!events.iter().any(|e| matches!(e, Event::Done(_))));
        let mut batches = self.batches.lock().unwrap();
        batches.push(events);
        self.stop_after.is_none_or(|n| batches.len() < n)
    }

    fn on_finish(&mut self, result: hearth::Result<TurnStats>) {
        self.finished.lock().unwrap().push(result);
    }
}

fn user(text: &str) -> Request {
    Request::Send(Message::user(text))
}

fn a_generation_streams_what_the_iterator_api_produces(kind: BackendKind) {
    let e = engine(kind);
    let mut direct = Session::new(&e, SessionOptions::default()).unwrap();
    let (want, want_stats) = iterate(&mut direct, user("Hello there"), &seeded(5, 24));

    let shared = SharedSession::new(Session::new(&e, SessionOptions::default()).unwrap());
    let rec = Recorder::default();
    let g = shared
        .generate(user("Hello there"), seeded(5, 24), rec.clone())
        .unwrap();
    g.wait().unwrap();
    assert_eq!(rec.text(), want);
    let stats = rec.result();
    assert_eq!(stats.generated_tokens, want_stats.generated_tokens);
    assert_eq!(stats.stop_reason, want_stats.stop_reason);
    // Batched: never more callbacks than generated tokens, adjacent text merged.
    let batches = rec.batches.lock().unwrap();
    assert!(batches.len() <= stats.generated_tokens, "{}", batches.len());
    for b in batches.iter() {
        for w in b.windows(2) {
            let same_kind = matches!(
                (&w[0], &w[1]),
                (Event::Text(_), Event::Text(_)) | (Event::Thinking(_), Event::Thinking(_))
            );
            assert!(!same_kind, "adjacent text not merged: {b:?}");
        }
    }
    assert_eq!(shared.lock().messages().len(), 2);
}

fn a_cancel_before_the_turn_starts_rolls_back_to_nothing(kind: BackendKind) {
    let e = engine(kind);
    let mut s = Session::new(&e, SessionOptions::default()).unwrap();
    iterate(&mut s, user("First"), &seeded(1, 6));
    let before = (
        s.messages().to_vec(),
        s.cached_tokens().to_vec(),
        s.debug_cache_state().unwrap(),
    );
    let cancel = CancelToken::new();
    cancel.cancel();
    let events: Vec<Event> = s
        .start(user("Never answered"), &seeded(1, 6), cancel)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    match &events[..] {
        [Event::Done(st)] => {
            assert_eq!(st.stop_reason, StopReason::Cancelled);
            assert_eq!(st.generated_tokens, 0);
        }
        other => panic!("expected only Done(Cancelled), got {other:?}"),
    }
    let after = (
        s.messages().to_vec(),
        s.cached_tokens().to_vec(),
        s.debug_cache_state().unwrap(),
    );
    assert!(after == before, "the session is exactly as before");
}

fn cancelling_or_dropping_a_generation_rolls_back_and_the_next_turn_is_unaffected(
    kind: BackendKind,
) {
    let e = engine(kind);
    let never = SharedSession::new(Session::new(&e, SessionOptions::default()).unwrap());
    let rec = Recorder::default();
    never
        .generate(user("First"), seeded(3, 8), rec.clone())
        .unwrap()
        .wait()
        .unwrap();
    let rec2 = Recorder::default();
    never
        .generate(user("Second"), seeded(4, 12), rec2.clone())
        .unwrap()
        .wait()
        .unwrap();
    let want = rec2.text();

    let s = SharedSession::new(Session::new(&e, SessionOptions::default()).unwrap());
    s.generate(user("First"), seeded(3, 8), Recorder::default())
        .unwrap()
        .wait()
        .unwrap();
    let before = s.lock().debug_cache_state().unwrap();
    // Cancelled by the sink after two batches.
    let stopper = Recorder {
        stop_after: Some(2),
        ..Recorder::default()
    };
    s.generate(user("Interrupted"), seeded(9, 40), stopper.clone())
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(stopper.result().stop_reason, StopReason::Cancelled);
    // No batch after the one that said stop, and the turn ended long before max_tokens.
    assert_eq!(stopper.batches.lock().unwrap().len(), 2);
    assert!(stopper.result().generated_tokens < 40);
    // Cancelled by dropping the handle.
    drop(s.generate(user("Dropped"), seeded(9, 40), Recorder::default()));
    // An explicit cancel.
    let g = s
        .generate(user("Cancelled"), seeded(9, 40), Recorder::default())
        .unwrap();
    g.cancel();
    g.wait().unwrap();
    assert_eq!(s.lock().messages().len(), 2);
    assert_eq!(s.lock().debug_cache_state().unwrap(), before);

    let rec3 = Recorder::default();
    s.generate(user("Second"), seeded(4, 12), rec3.clone())
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(rec3.text(), want);
}

fn four_sessions_on_four_threads_produce_their_single_threaded_tokens(kind: BackendKind) {
    let e = engine(kind);
    let prompts = ["Alpha", "Bravo charlie", "Delta echo foxtrot", "Golf"];
    let alone: Vec<String> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut s = Session::new(&e, SessionOptions::default()).unwrap();
            iterate(&mut s, user(p), &seeded(i as u64, 20)).0
        })
        .collect();
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let s = SharedSession::new(Session::new(&e, SessionOptions::default()).unwrap());
            let rec = Recorder::default();
            let g = s
                .generate(user(p), seeded(i as u64, 20), rec.clone())
                .unwrap();
            let tx = tx.clone();
            std::thread::spawn(move || {
                g.wait().unwrap();
                tx.send((i, rec.text())).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    drop(tx);
    let mut got: Vec<(usize, String)> = rx.iter().collect();
    got.sort();
    for (i, text) in got {
        assert_eq!(text, alone[i], "session {i}");
    }
}

fn an_engine_load_reports_progress_and_can_be_cancelled(kind: BackendKind) {
    let seen = Mutex::new(Vec::new());
    let path = common::gguf_path(MODEL);
    let opts = EngineOptions::with_backend(kind);
    Engine::load_with(
        &path,
        opts.clone(),
        &|p| seen.lock().unwrap().push(p),
        &CancelToken::new(),
    )
    .unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.first().unwrap().phase, LoadPhase::Reading);
    assert_eq!(seen.last().unwrap().phase, LoadPhase::Ready);
    assert_eq!(seen.last().unwrap().fraction, 1.0);
    assert!(seen.iter().any(|p| p.phase == LoadPhase::Weights));
    assert!(seen.windows(2).all(|w| w[0].fraction <= w[1].fraction));

    // Cancelled half way through the weights.
    let cancel = CancelToken::new();
    let weights_seen = Mutex::new(0);
    let err = Engine::load_with(
        &path,
        opts.clone(),
        &|p| {
            if p.phase == LoadPhase::Weights {
                let mut n = weights_seen.lock().unwrap();
                *n += 1;
                if *n == 3 {
                    cancel.cancel();
                }
            }
        },
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    // Cancelled before it began.
    let err = Engine::load_with(&path, opts, &|_| {}, &cancel).unwrap_err();
    assert!(matches!(err, Error::Cancelled));
}

fn sessions_are_fit_checked_against_the_memory_budget(kind: BackendKind) {
    let path = common::gguf_path(MODEL);
    let probe = engine(kind);
    let weights: u64 = probe.file().tensors().iter().map(|t| t.n_bytes).sum();
    let one = probe.session_footprint(4096, 64).total_bytes;
    assert!(one > 0);
    // Room for the weights and one 4096-token session, not two.
    let opts = EngineOptions {
        backend: BackendKind::Cpu,
        context_length: 16,
        memory_budget: Some(weights + one + one / 2),
        ..Default::default()
    };
    let e = Engine::load(&path, opts).unwrap();
    let first = Session::new(&e, SessionOptions::default()).unwrap();
    let err = match Session::new(&e, SessionOptions::default()) {
        Err(e) => e,
        Ok(_) => panic!("a second session must not fit"),
    };
    assert!(matches!(err, Error::InsufficientMemory { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InsufficientMemory);
    // A shorter context fits next to the first; dropping the first frees its share.
    let small = SessionOptions {
        context_length: 256,
        ..SessionOptions::default()
    };
    let _small = Session::new(&e, small).unwrap();
    drop(first);
    Session::new(&e, SessionOptions::default()).unwrap();
    // The model's whole context is refused when it cannot fit.
    let huge = SessionOptions {
        context_length: usize::MAX,
        ..SessionOptions::default()
    };
    assert!(Session::new(&e, huge).is_err());
}

fn errors_have_the_class_a_binding_maps(kind: BackendKind) {
    let e = engine(kind);
    let dir = std::env::temp_dir().join(format!("hearth-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("session.json");
    std::fs::write(&bad, b"{ not json").unwrap();
    let err = Session::restore(&e, &bad).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidModel, "{err}");
    let missing = Engine::load(dir.join("missing.gguf"), EngineOptions::default()).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Io, "{missing}");
    let mut s = Session::new(&e, SessionOptions::default()).unwrap();
    let zero = GenerateOptions {
        max_tokens: 0,
        ..Default::default()
    };
    let err = s.send(Message::user("x"), &zero).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let tiny = SessionOptions {
        context_length: 8,
        ..SessionOptions::default()
    };
    let mut s = Session::new(&e, tiny).unwrap();
    let err = s
        .send(Message::user("a long message"), &GenerateOptions::default())
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::ContextOverflow);
    std::fs::remove_dir_all(&dir).ok();
}

/// CPU only: the file is patched for the CPU engine.
#[test]
fn non_finite_logits_fail_the_turn_instead_of_becoming_text() {
    // A fixture whose RMS-norm epsilon is patched to NaN: every logit becomes NaN.
    let mut bytes = std::fs::read(common::gguf_path("lfm2-dense-h64-q8_0")).unwrap();
    let key = b"lfm2.attention.layer_norm_rms_epsilon";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("epsilon key")
        + key.len();
    assert_eq!(
        &bytes[at..at + 4],
        &6u32.to_le_bytes(),
        "an f32 value follows"
    );
    bytes[at + 4..at + 8].copy_from_slice(&f32::NAN.to_le_bytes());
    let dir = std::env::temp_dir().join(format!("hearth-nan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nan-eps.gguf");
    std::fs::write(&path, &bytes).unwrap();
    match Engine::load(&path, EngineOptions::with_backend(BackendKind::Cpu)) {
        // Refused at load (hyper-parameters validated) ...
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidModel, "{e}"),
        // ... or the first turn fails with a typed error and rolls back.
        Ok(e) => {
            let mut s = Session::new(&e, SessionOptions::default()).unwrap();
            let err = s
                .send(Message::user("hi"), &GenerateOptions::default())
                .and_then(|turn| turn.collect::<hearth::Result<Vec<Event>>>())
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidModel, "{err}");
            assert!(s.messages().is_empty(), "rolled back");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

engine_tests! {
    a_generation_streams_what_the_iterator_api_produces,
    a_cancel_before_the_turn_starts_rolls_back_to_nothing,
    cancelling_or_dropping_a_generation_rolls_back_and_the_next_turn_is_unaffected,
    four_sessions_on_four_threads_produce_their_single_threaded_tokens,
    an_engine_load_reports_progress_and_can_be_cancelled,
    sessions_are_fit_checked_against_the_memory_budget,
    errors_have_the_class_a_binding_maps,
}
