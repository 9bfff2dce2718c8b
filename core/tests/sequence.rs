//! Sequences: chunked prefill equals one-shot prefill, checkpoints rewind exactly, saved caches
//! restore exactly, bad input is a typed error.

mod common;

use hearth::models::lfm2::Logits;
use hearth::{BackendKind, CacheState, Engine, EngineOptions, Error};

fn engine(name: &str) -> Engine {
    Engine::load(
        common::gguf_path(name),
        EngineOptions::with_backend(BackendKind::Cpu),
    )
    .unwrap()
}

fn tokens(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = common::Rng::new(seed);
    (0..n).map(|_| 14 + rng.below(2000) as u32).collect()
}

/// max |a − b|, failing the test on any NaN or infinity (a plain `f32::max` fold drops NaN).
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    hearth::numerics::compare(a, b).unwrap().max_abs
}

#[test]
fn chunked_prefill_equals_one_shot() {
    for model in ["lfm2-dense-h64-q4_0", "lfm2moe-h64-e8k2-f32"] {
        let e = engine(model);
        let toks = tokens(37, 1);
        let mut one = e.new_sequence(64, 64).unwrap();
        let want = one.forward(&toks, Logits::Last).unwrap();
        for batch in [1, 3, 7, 16] {
            let mut s = e.new_sequence(64, batch).unwrap();
            let got = s.forward(&toks, Logits::Last).unwrap();
            assert!(
                max_diff(&got, &want) < 1e-4,
                "{model} batch {batch}: {}",
                max_diff(&got, &want)
            );
        }
    }
}

#[test]
fn checkpoint_rewind_equals_fresh_prefill() {
    let e = engine("lfm2moe-h64-e8k2-q8_0");
    let (a, b, c) = (tokens(12, 2), tokens(9, 3), tokens(5, 4));
    let mut s = e.new_sequence(64, 8).unwrap();
    s.forward(&a, Logits::Last).unwrap();
    let ckpt = s.save(s.n_past()).unwrap();
    assert_eq!(
        ckpt.bytes(),
        4 * 4 * 2 * 64,
        "4 conv layers x (L-1) x d floats, no KV rows"
    );
    s.forward(&b, Logits::Last).unwrap();
    s.load(&ckpt).unwrap();
    assert_eq!(s.n_past(), a.len());
    let got = s.forward(&c, Logits::Last).unwrap();

    let mut fresh = e.new_sequence(64, 8).unwrap();
    let ac: Vec<u32> = a.iter().chain(&c).copied().collect();
    let want = fresh.forward(&ac, Logits::Last).unwrap();
    assert!(max_diff(&got, &want) < 1e-4);
}

#[test]
fn saved_cache_restores_exactly_through_bytes() {
    let e = engine("lfm2-dense-h64-f16");
    let (a, b) = (tokens(20, 5), tokens(6, 6));
    let mut s = e.new_sequence(64, 8).unwrap();
    s.forward(&a, Logits::Last).unwrap();
    let saved = CacheState::from_bytes(&s.save(0).unwrap().to_bytes()).unwrap();
    let want = s.forward(&b, Logits::Last).unwrap();

    let mut restored = e.new_sequence(64, 8).unwrap();
    restored.load(&saved).unwrap();
    assert_eq!(restored.n_past(), 20);
    let got = restored.forward(&b, Logits::Last).unwrap();
    assert_eq!(got, want, "restored cache must continue bit-identically");

    // Truncated or garbage bytes are errors.
    let bytes = saved.to_bytes();
    for cut in [0, 7, 8, 40, bytes.len() - 1] {
        assert!(CacheState::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
    }
    let other = engine("lfm2moe-h64-e16k4-q8_0");
    let mut wrong = other.new_sequence(64, 8).unwrap();
    assert!(matches!(wrong.load(&saved), Err(Error::Corrupt { .. })));
}

#[test]
fn bad_requests_are_typed_errors() {
    let e = engine("lfm2-dense-h64-q8_0");
    let mut s = e.new_sequence(16, 4).unwrap();
    assert!(matches!(
        s.forward(&[], Logits::Last),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s.forward(&[5000], Logits::Last),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s.forward(&tokens(17, 7), Logits::Last),
        Err(Error::ContextOverflow {
            needed: 17,
            capacity: 16
        })
    ));
    assert!(matches!(
        s.forward(&[3], Logits::All),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(s.n_past(), 0, "failed calls leave the sequence untouched");
    assert!(e.new_sequence(0, 4).is_err());
}

#[test]
fn a_model_that_does_not_fit_is_refused_before_loading() {
    let path = common::gguf_path("lfm2moe-h64-e8k2-q8_0");
    let tight = EngineOptions {
        backend: BackendKind::Cpu,
        context_length: 4096,
        memory_budget: Some(1 << 20),
        ..Default::default()
    };
    match Engine::load(&path, tight) {
        Err(Error::InsufficientMemory {
            footprint,
            available,
        }) => {
            assert_eq!(available, 1 << 20);
            assert!(
                footprint.weights_bytes > 500_000
                    && footprint.kv_cache_bytes == 2 * 4096 * 2 * 32 * 4
            );
            assert!(footprint.total_bytes > available);
        }
        other => panic!("expected InsufficientMemory, got {other:?}"),
    }
    let roomy = EngineOptions {
        backend: BackendKind::Cpu,
        context_length: 4096,
        memory_budget: Some(1 << 30),
        ..Default::default()
    };
    assert!(Engine::load(&path, roomy).is_ok());
}
