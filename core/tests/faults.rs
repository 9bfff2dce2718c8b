//! GPU faults during a conversation never reach the user as text: NaN / inf / zero logits
//! (what a Metal command buffer that failed "successfully" or a miscompiled kernel reads back)
//! and a device lost in the middle of a turn fail the turn with a typed `GpuFault` error, roll
//! it back exactly like a cancel, are remembered per device, and the conversation continues
//! on the CPU. Injected through the GPU backend's test-only fault switch, on lavapipe in CI.

mod common;

use hearth::backend::gpu::Fault;
use hearth::chat::Message;
use hearth::sampling::SamplingOptions;
use hearth::session::{Event, GenerateOptions, Session, SessionOptions};
use hearth::{BackendKind, Engine, EngineOptions, ErrorKind};

const MODEL: &str = "lfm2moe-h64-e8k2-q4_k_m";

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        sampling: SamplingOptions::greedy(),
        max_tokens,
        ..Default::default()
    }
}

fn text_of(s: &mut Session, text: &str, max_tokens: usize) -> hearth::Result<String> {
    let mut out = String::new();
    s.send_with(Message::user(text), &greedy(max_tokens), |ev| {
        if let Event::Text(t) = ev {
            out.push_str(t)
        }
    })?;
    Ok(out)
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-faults-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

/// A GPU engine on the fixture model (None: no adapter, SKIP), remembering faults in `dir`.
fn gpu_engine(dir: &std::path::Path) -> Option<Engine> {
    if !common::gpu_ready() {
        return None;
    }
    let options = EngineOptions {
        gpu_failure_dir: Some(dir.to_path_buf()),
        ..EngineOptions::with_backend(BackendKind::Gpu)
    };
    Some(Engine::load(common::gguf_path(MODEL), options).unwrap())
}

/// What the CPU answers to `question` after `history`: the reference a moved conversation
/// must reproduce.
fn cpu_answer(history: &[Message], question: &str) -> String {
    let cpu = common::engine(BackendKind::Cpu, MODEL);
    let mut s = Session::new(&cpu, SessionOptions::default()).unwrap();
    for m in history {
        s.push_message(m.clone());
    }
    text_of(&mut s, question, 12).unwrap()
}

fn recorded(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("gpu-failures.json")).unwrap_or_default()
}

#[test]
fn invalid_logits_mid_conversation_fail_the_turn_roll_it_back_and_the_cpu_continues() {
    for fault in [Fault::Nan, Fault::Inf, Fault::Zero] {
        let dir = temp_dir(&format!("{fault:?}"));
        let Some(gpu) = gpu_engine(&dir) else {
            return;
        };
        let mut s = Session::new(&gpu, SessionOptions::default()).unwrap();
        text_of(&mut s, "Hello there", 8).unwrap();
        let (messages, cached) = (s.messages().to_vec(), s.cached_tokens().to_vec());

        gpu.gpu_backend().unwrap().inject_fault(Some(fault));
        let err = text_of(&mut s, "What is C. elegans?", 12).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GpuFault, "{fault:?}: {err}");
        assert_eq!(
            s.messages(),
            &messages[..],
            "{fault:?}: messages rolled back"
        );
        assert_eq!(
            s.cached_tokens(),
            &cached[..],
            "{fault:?}: cache rolled back"
        );
        assert!(
            recorded(&dir).contains("invalid logits"),
            "{fault:?}: the fault is remembered for this device: {}",
            recorded(&dir)
        );

        // Continue on the CPU: the same question gets the CPU's answer to this conversation.
        let cpu = gpu.reload(BackendKind::Cpu).unwrap();
        assert_eq!(cpu.backend(), BackendKind::Cpu);
        s.move_to(&cpu).unwrap();
        assert_eq!(s.messages(), &messages[..]);
        let answer = text_of(&mut s, "What is C. elegans?", 12).unwrap();
        assert_eq!(
            answer,
            cpu_answer(&messages, "What is C. elegans?"),
            "{fault:?}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn a_device_lost_mid_turn_rolls_back_and_the_conversation_continues_on_the_cpu() {
    let dir = temp_dir("lost");
    let Some(gpu) = gpu_engine(&dir) else {
        return;
    };
    let mut s = Session::new(&gpu, SessionOptions::default()).unwrap();
    text_of(&mut s, "Hello there", 8).unwrap();
    let messages = s.messages().to_vec();

    let mut turn = s
        .send(Message::user("What is C. elegans?"), &greedy(12))
        .unwrap();
    let first = turn.next_batch().expect("a first token").unwrap();
    assert!(!first.is_empty());
    gpu.gpu_backend().unwrap().simulate_device_loss();
    let err = loop {
        match turn.next_batch() {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e,
            None => panic!("the turn ended normally on a lost device"),
        }
    };
    drop(turn);
    assert_eq!(err.kind(), ErrorKind::GpuFault, "{err}");
    assert_eq!(
        s.messages(),
        &messages[..],
        "the half-written answer is rolled back"
    );
    assert!(!recorded(&dir).is_empty(), "device loss is remembered");

    // A save without the (lost) cache, a reload on the CPU and a restore continue the chat.
    let path = dir.join("chat.json");
    s.save(&path, false).unwrap();
    let cpu = gpu.reload(BackendKind::Cpu).unwrap();
    let mut restored = Session::restore(&cpu, &path).unwrap();
    assert_eq!(restored.messages(), &messages[..]);
    let answer = text_of(&mut restored, "What is C. elegans?", 12).unwrap();
    assert_eq!(answer, cpu_answer(&messages, "What is C. elegans?"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn auto_remembers_a_failed_gpu_and_takes_the_cpu_until_the_record_is_cleared() {
    let dir = temp_dir("auto");
    let Some(gpu) = gpu_engine(&dir) else {
        return;
    };
    let auto = || {
        let options = EngineOptions {
            gpu_failure_dir: Some(dir.clone()),
            // lavapipe is a software adapter, which `Auto` otherwise passes over.
            accept_software_gpu: true,
            ..EngineOptions::default()
        };
        Engine::load(common::gguf_path(MODEL), options).unwrap()
    };
    assert_eq!(
        auto().backend(),
        BackendKind::Gpu,
        "{}",
        auto().backend_description()
    );

    let mut s = Session::new(&gpu, SessionOptions::default()).unwrap();
    gpu.gpu_backend().unwrap().inject_fault(Some(Fault::Nan));
    assert!(text_of(&mut s, "Hello there", 8).is_err());

    let after = auto();
    assert_eq!(after.backend(), BackendKind::Cpu);
    assert!(
        after.backend_description().contains("failed before"),
        "{}",
        after.backend_description()
    );
    hearth::forget_gpu_failures(&dir).unwrap();
    assert_eq!(auto().backend(), BackendKind::Gpu);
    std::fs::remove_dir_all(&dir).ok();
}
