//! Eight sessions on eight threads share one engine while other threads cancel their turns,
//! drop running generations and save / restore: every session's text equals its
//! single-threaded run. `scripts/tsan.sh` runs this binary under ThreadSanitizer.

#[macro_use]
mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth::{
    BackendKind, Engine, Event, EventSink, GenerateOptions, Message, Request, Session,
    SessionOptions, SharedSession, TurnStats,
};

use common::seeded;

const MODEL: &str = "lfm2moe-h64-e8k2-q4_0";
const SESSIONS: usize = 8;

/// Collects a turn's visible text; optionally reports its first batch (for a canceller).
#[derive(Clone, Default)]
struct Sink {
    text: Arc<Mutex<String>>,
    first: Option<mpsc::Sender<()>>,
    finished: Option<mpsc::Sender<()>>,
}

impl EventSink for Sink {
    fn on_events(&mut self, events: Vec<Event>) -> bool {
        for ev in events {
            if let Event::Text(t) | Event::Thinking(t) = ev {
                self.text.lock().unwrap().push_str(&t);
            }
        }
        if let Some(tx) = self.first.take() {
            tx.send(()).ok();
        }
        true
    }
    fn on_finish(&mut self, _: hearth::Result<TurnStats>) {
        if let Some(tx) = self.finished.take() {
            tx.send(()).ok();
        }
    }
}

fn user(text: &str) -> Request {
    Request::Send(Message::user(text))
}

/// Runs one turn to its end and returns its text.
fn run(s: &SharedSession, request: Request, options: GenerateOptions) -> String {
    let sink = Sink::default();
    s.generate(request, options, sink.clone())
        .unwrap()
        .wait()
        .unwrap();
    sink.text.lock().unwrap().clone()
}

/// Session `i`'s script: a turn, a long turn cancelled from this thread once its worker has
/// produced a token, a regenerate, a save and restore, and a turn on the restored session.
/// Returns the texts that do not depend on timing.
fn script(engine: &Engine, i: usize, dir: &std::path::Path) -> Vec<String> {
    let s = SharedSession::new(Session::new(engine, SessionOptions::default()).unwrap());
    let seed = i as u64;
    let first = run(&s, user(&format!("Prompt number {i}")), seeded(seed, 12));

    let before = s.lock().messages().len();
    let (tx, rx) = mpsc::channel();
    let sink = Sink {
        first: Some(tx),
        ..Default::default()
    };
    let g = s
        .generate(user("Tell me a long story"), seeded(seed + 100, 400), sink)
        .unwrap();
    rx.recv_timeout(Duration::from_secs(120)).ok();
    g.cancel();
    g.wait().unwrap();
    // Cancelled (rolled back) or, if it ended first, finished: either way drop what it added.
    s.lock().truncate(before);

    let regenerated = run(&s, Request::Regenerate, seeded(seed + 200, 12));
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("session-{i}.json"));
    s.lock().save(&path, true).unwrap();
    drop(s);
    let restored = SharedSession::new(Session::restore(engine, &path).unwrap());
    let after = run(&restored, user("And then?"), seeded(seed + 300, 12));
    vec![first, regenerated, after]
}

/// Creates sessions and drops their generations (and the sessions) mid-turn until `stop` is
/// set.
fn churn(engine: Engine, stop: Arc<std::sync::atomic::AtomicBool>) -> usize {
    let mut rounds = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let s = SharedSession::new(Session::new(&engine, SessionOptions::default()).unwrap());
        let (tx, finished) = mpsc::channel();
        let sink = Sink {
            finished: Some(tx),
            ..Default::default()
        };
        let g = s
            .generate(user("Churn"), seeded(rounds as u64, 50), sink)
            .unwrap();
        std::thread::sleep(Duration::from_millis(1 + rounds as u64 % 5));
        drop(g); // cancels without waiting
        drop(s);
        // The abandoned worker still reports its end exactly once (and is not left running).
        finished.recv_timeout(Duration::from_secs(300)).unwrap();
        rounds += 1;
    }
    rounds
}

fn eight_sessions_with_concurrent_cancel_drop_and_restore_match_their_single_threaded_runs(
    kind: BackendKind,
) {
    let engine = common::engine(kind, MODEL);
    let dir = std::env::temp_dir().join(format!(
        "hearth-concurrency-{kind:?}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let alone: Vec<Vec<String>> = (0..SESSIONS)
        .map(|i| script(&engine, i, &dir.join("alone")))
        .collect();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churners: Vec<_> = (0..2)
        .map(|_| {
            let (e, stop) = (engine.clone(), stop.clone());
            std::thread::spawn(move || churn(e, stop))
        })
        .collect();
    let threads: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let (e, dir) = (engine.clone(), dir.join("together"));
            std::thread::spawn(move || script(&e, i, &dir))
        })
        .collect();
    let together: Vec<Vec<String>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let churned: usize = churners.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("{kind:?}: {churned} sessions created and dropped mid-turn alongside");
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a, t, "session {i}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

engine_tests!(
    eight_sessions_with_concurrent_cancel_drop_and_restore_match_their_single_threaded_runs
);
