//! Soak: one long conversation — 50 turns, 10 000+ generated tokens, with regenerates, edits,
//! cancels and context overflow (oldest messages dropped) mixed in — on the CPU and the GPU.
//! Resident memory and the GPU's buffer / bind-group creations are sampled every turn and
//! must be flat after warm-up; a second run with the same seeds must produce the same text.
//!
//! Ignored by default (minutes, not seconds): `scripts/soak.sh` runs it in release mode and
//! prints the per-turn curve.

mod common;

use hearth::backend::gpu::GpuBackend;
use hearth::chat::Message;
use hearth::session::{Event, GenerateOptions, OverflowPolicy, Session, SessionOptions};
use hearth::{BackendKind, CancelToken, Engine, Request};

const MODEL: &str = "lfm2moe-h64-e8k2-q4_0";
const TURNS: usize = 50;
const TOKENS_PER_TURN: usize = 600;
/// Turns before the curves must be flat: caches, checkpoints and the allocator settle, and
/// the GPU's bind-group cache sees each prefill shape once (on lavapipe the last new one came
/// at turn 11 of 50; creations are flat from there to the end).
const WARM_UP: usize = 20;
/// Allowed RSS growth after warm-up: allocator noise, not a leak (a leaked turn of this model
/// — its prompt, logits and KV rows — is ~1 MB, 40 turns of it 40 MB).
const RSS_SLACK_MB: f64 = 8.0;

struct Sample {
    turn: usize,
    tokens: usize,
    rss_mb: f64,
    gpu_creations: u64,
}

/// What turn `i` does: most send a new message, some regenerate, edit an earlier message, or
/// are cancelled after a few tokens (and rolled back).
fn request(i: usize, messages: usize) -> (Request, Option<usize>) {
    let user = Message::user(format!(
        "Turn {i}: tell me more about number {}",
        i * 7 % 13
    ));
    match i % 10 {
        3 if messages > 0 => (Request::Regenerate, None),
        6 if messages >= 2 => (
            Request::Edit {
                index: messages - 2,
                message: Message::user(format!("Edited at turn {i}")),
            },
            None,
        ),
        8 => (Request::Send(user), Some(1 + i % 17)),
        _ => (Request::Send(user), None),
    }
}

/// Runs the conversation; returns every turn's text and the per-turn samples.
fn conversation(engine: &Engine, gpu: Option<&GpuBackend>) -> (Vec<String>, Vec<Sample>) {
    let options = SessionOptions {
        context_length: 2048,
        overflow: OverflowPolicy::DropOldest,
        ..Default::default()
    };
    let mut s = Session::new(engine, options).unwrap();
    let (mut texts, mut samples, mut tokens) = (Vec::new(), Vec::new(), 0);
    for i in 0..TURNS {
        let opts: GenerateOptions = common::seeded(i as u64, TOKENS_PER_TURN);
        let (req, cancel_after) = request(i, s.messages().len());
        let cancel = CancelToken::new();
        let mut text = String::new();
        let mut turn = s.start(req, &opts, cancel.clone()).unwrap();
        let mut batches = 0;
        while let Some(batch) = turn.next_batch() {
            for ev in batch.unwrap() {
                match ev {
                    Event::Text(t) | Event::Thinking(t) => text.push_str(&t),
                    Event::Done(st) => tokens += st.generated_tokens,
                    _ => {}
                }
            }
            batches += 1;
            if cancel_after == Some(batches) {
                cancel.cancel();
            }
        }
        drop(turn);
        texts.push(text);
        samples.push(Sample {
            turn: i,
            tokens,
            rss_mb: common::rss_mb(),
            gpu_creations: gpu.map_or(0, GpuBackend::resource_creations),
        });
    }
    (texts, samples)
}

fn soak(kind: BackendKind) {
    let engine = common::engine(kind, MODEL);
    let gpu = engine.gpu_backend().cloned();
    let (texts, samples) = conversation(&engine, gpu.as_ref());
    println!("{kind:?} soak: turn, generated tokens so far, RSS MB, GPU creations");
    for s in &samples {
        println!(
            "{kind:?} {:3} {:6} {:8.1} {:6}",
            s.turn, s.tokens, s.rss_mb, s.gpu_creations
        );
    }
    let last = samples.last().unwrap();
    assert!(
        last.tokens >= 10_000,
        "only {} tokens generated",
        last.tokens
    );
    let warm = &samples[WARM_UP];
    let peak = samples[WARM_UP..]
        .iter()
        .map(|s| s.rss_mb)
        .fold(0.0, f64::max);
    assert!(
        peak - warm.rss_mb <= RSS_SLACK_MB,
        "{kind:?}: RSS grew from {:.1} MB (turn {WARM_UP}) to {peak:.1} MB",
        warm.rss_mb
    );
    assert_eq!(
        last.gpu_creations, warm.gpu_creations,
        "{kind:?}: GPU buffers or bind groups created after warm-up"
    );

    let (again, _) = conversation(&engine, gpu.as_ref());
    assert_eq!(
        texts, again,
        "{kind:?}: the same seeds gave another conversation"
    );
}

#[test]
#[ignore = "minutes; scripts/soak.sh"]
fn soak_cpu() {
    soak(BackendKind::Cpu);
}

#[test]
#[ignore = "minutes; scripts/soak.sh"]
fn soak_gpu() {
    if common::gpu_ready() {
        soak(BackendKind::Gpu);
    }
}
