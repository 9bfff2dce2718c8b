//! Sessions on every engine backend (`engine_tests!`: CPU, and the GPU where an adapter passes
//! the self-test): seeded determinism, exact cache reuse, cancel = rollback, overflow policies,
//! save/restore.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use hearth::chat::{Message, Role};
use hearth::models::lfm2::Logits;
use hearth::sampling::SamplingOptions;
use hearth::session::{
    Event, GenerateOptions, OverflowPolicy, Session, SessionOptions, StopReason, TurnStats,
};
use hearth::{BackendKind, CancelToken, Error, Request};

use common::{engine, seeded};

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        sampling: SamplingOptions::greedy(),
        max_tokens,
        ..Default::default()
    }
}

/// Runs a turn, returning the visible text and the stats.
fn turn(s: &mut Session, text: &str, opts: &GenerateOptions) -> (String, TurnStats) {
    let mut out = String::new();
    let stats = s
        .send_with(Message::user(text), opts, |ev| match ev {
            Event::Text(t) | Event::Thinking(t) => out.push_str(t),
            Event::ToolCallError { raw, .. } => out.push_str(raw),
            _ => {}
        })
        .unwrap();
    (out, stats)
}

/// max |a − b|, failing the test on any NaN or infinity (a plain `f32::max` fold drops NaN).
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    hearth::numerics::compare(a, b).unwrap().max_abs
}

fn same_seed_same_output_different_seed_differs(kind: BackendKind) {
    let e = engine(kind, "lfm2moe-h64-e8k2-q8_0");
    let run = |seed| {
        let mut s = Session::new(&e, SessionOptions::default()).unwrap();
        turn(&mut s, "Hello there", &seeded(seed, 24)).0
    };
    let a = run(11);
    assert_eq!(a, run(11));
    assert_ne!(a, run(12));
}

fn second_turn_reuses_the_cache_and_matches_a_fresh_prefill(kind: BackendKind) {
    let e = engine(kind, "lfm2-dense-h64-q4_0");
    let opts = SessionOptions {
        system_prompt: Some("You are terse.".into()),
        ..Default::default()
    };
    let mut s = Session::new(&e, opts.clone()).unwrap();
    let (_, first) = turn(&mut s, "What is C. elegans?", &greedy(12));
    assert_eq!(first.cached_tokens, 0);
    let (second_text, second) = turn(&mut s, "And a nematode?", &greedy(12));
    assert!(
        second.cached_tokens > first.prompt_tokens / 2,
        "reused {} of {}",
        second.cached_tokens,
        second.prompt_tokens
    );
    assert!(second.cached_tokens < second.prompt_tokens);

    // The logits after the reused prefill equal a from-scratch prefill of the same prompt.
    let prompt = s.debug_last_prompt().to_vec();
    assert_eq!(prompt.len(), second.prompt_tokens);
    let mut fresh = e.new_sequence(4096, 64).unwrap();
    let want = fresh.forward(&prompt, Logits::Last).unwrap();
    let d = max_diff(s.debug_prefill_logits(), &want);
    assert!(d < 1e-4, "reused-cache prefill vs fresh: max |Δ| {d}");

    // And a fresh session with the same history answers identically (greedy).
    let mut t = Session::new(&e, opts).unwrap();
    for m in &s.messages()[..2] {
        t.push_message(m.clone());
    }
    let (again, st) = turn(&mut t, "And a nematode?", &greedy(12));
    assert_eq!(st.cached_tokens, 0);
    assert_eq!(again, second_text);
}

fn cancel_rolls_back_exactly(kind: BackendKind) {
    let e = engine(kind, "lfm2moe-h64-e8k2-q4_0");
    let mut s = Session::new(&e, SessionOptions::default()).unwrap();
    turn(&mut s, "First question", &greedy(8));
    let before_msgs = s.messages().to_vec();
    let before_tokens = s.cached_tokens().to_vec();
    let before_state = s.debug_cache_state().unwrap();

    let cancel = CancelToken::new();
    let seen = AtomicUsize::new(0);
    let request = Request::Send(Message::user("Second question, cancelled"));
    let mut stats = None;
    for ev in s.start(request, &greedy(40), cancel.clone()).unwrap() {
        match ev.unwrap() {
            Event::Text(_) if seen.fetch_add(1, Ordering::SeqCst) == 2 => cancel.cancel(),
            Event::Done(st) => stats = Some(st),
            _ => {}
        }
    }
    let stats = stats.unwrap();
    assert_eq!(stats.stop_reason, StopReason::Cancelled);
    assert!(
        stats.generated_tokens <= 4,
        "stopped within a token: {}",
        stats.generated_tokens
    );
    assert_eq!(s.messages(), &before_msgs[..]);
    assert_eq!(s.cached_tokens(), &before_tokens[..]);
    assert_eq!(
        s.debug_cache_state().unwrap(),
        before_state,
        "KV rows and conv states restored bit for bit"
    );

    // Still usable, and identical to a session that never saw the cancelled turn.
    let (a, _) = turn(&mut s, "Third", &greedy(10));
    let mut fresh = Session::new(&e, SessionOptions::default()).unwrap();
    turn(&mut fresh, "First question", &greedy(8));
    let (b, _) = turn(&mut fresh, "Third", &greedy(10));
    assert_eq!(a, b);
}

fn dropping_a_turn_early_rolls_back(kind: BackendKind) {
    let e = engine(kind, "lfm2-dense-h64-q8_0");
    let mut s = Session::new(&e, SessionOptions::default()).unwrap();
    turn(&mut s, "Hi", &greedy(6));
    let before = (
        s.messages().to_vec(),
        s.cached_tokens().to_vec(),
        s.debug_cache_state().unwrap(),
    );
    {
        let mut t = s.send(Message::user("Tell me more"), &greedy(30)).unwrap();
        let _ = t.next();
    }
    assert_eq!(
        (
            s.messages().to_vec(),
            s.cached_tokens().to_vec(),
            s.debug_cache_state().unwrap()
        ),
        before
    );
}

fn regenerate_and_edit_reuse_the_shared_prefix(kind: BackendKind) {
    let e = engine(kind, "lfm2moe-h64-e16k4-q8_0");
    let mut s = Session::new(&e, SessionOptions::default()).unwrap();
    turn(&mut s, "One", &greedy(6));
    let (_, st) = turn(&mut s, "Two", &greedy(6));
    let answer = s.messages()[3].content.clone();
    let stats = collect(s.regenerate(&greedy(6)).unwrap());
    assert!(
        stats.cached_tokens >= st.prompt_tokens - 1,
        "regenerate re-prefills only the tail"
    );
    assert_eq!(
        s.messages()[3].content,
        answer,
        "greedy regeneration reproduces the answer"
    );
    assert_eq!(s.messages().len(), 4);
    let stats = collect(s.edit(2, Message::user("Two, edited"), &greedy(6)).unwrap());
    assert!(stats.cached_tokens > 0);
    assert_eq!(s.messages()[2].content, "Two, edited");
    assert_eq!(s.messages()[3].role, Role::Assistant);
}

fn collect(turn: hearth::session::Turn<'_>) -> TurnStats {
    turn.filter_map(|e| match e.unwrap() {
        Event::Done(s) => Some(s),
        _ => None,
    })
    .last()
    .unwrap()
}

fn overflow_policies(kind: BackendKind) {
    let e = engine(kind, "lfm2-dense-h64-q4_0");
    let small = SessionOptions {
        context_length: 96,
        ..Default::default()
    };
    let mut s = Session::new(&e, small.clone()).unwrap();
    let long = "word ".repeat(30);
    turn(&mut s, &long, &greedy(4));
    let err = s.send(Message::user(&long), &greedy(4)).err().unwrap();
    assert!(matches!(err, Error::ContextOverflow { .. }), "{err:?}");
    assert_eq!(s.messages().len(), 2, "a refused turn changes nothing");

    let mut s = Session::new(
        &e,
        SessionOptions {
            overflow: OverflowPolicy::DropOldest,
            ..small
        },
    )
    .unwrap();
    turn(&mut s, &long, &greedy(4));
    let (_, st) = turn(&mut s, &long, &greedy(4));
    assert!(st.prompt_tokens <= 96);
    assert_eq!(s.messages().len(), 2, "the oldest turn was dropped");
    assert!(s.count_tokens(&[Message::user(&long)]).unwrap() > 30);
}

fn save_and_restore_continue_identically(kind: BackendKind) {
    let e = engine(kind, "lfm2moe-h64-e8k2-q8_0");
    let dir = std::env::temp_dir().join(format!("hearth-session-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = Session::new(
        &e,
        SessionOptions {
            system_prompt: Some("Be brief.".into()),
            ..Default::default()
        },
    )
    .unwrap();
    turn(&mut s, "Hello", &greedy(8));
    for with_cache in [true, false] {
        let path = dir.join(format!("s-{with_cache}.json"));
        s.save(&path, with_cache).unwrap();
        let mut r = Session::restore(&e, &path).unwrap();
        assert_eq!(r.messages(), s.messages());
        let (a, sa) = turn(&mut r, "Again", &greedy(8));
        let mut original = Session::restore(&e, &path).unwrap();
        let (b, _) = turn(&mut original, "Again", &greedy(8));
        assert_eq!(a, b);
        if with_cache {
            assert!(sa.cached_tokens > 0, "the saved cache is reused");
        }
    }
    std::fs::write(dir.join("bad.json"), b"{not json").unwrap();
    assert!(Session::restore(&e, &dir.join("bad.json")).is_err());
    assert!(matches!(
        Session::restore(&e, &dir.join("missing.json")),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

fn invalid_options_are_errors(kind: BackendKind) {
    let e = engine(kind, "lfm2-dense-h64-q8_0");
    let mut s = Session::new(&e, SessionOptions::default()).unwrap();
    let bad = GenerateOptions {
        sampling: SamplingOptions {
            top_p: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(matches!(
        s.send(Message::user("x"), &bad).err(),
        Some(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s.send(Message::user("x"), &greedy(0)).err(),
        Some(Error::InvalidArgument(_))
    ));
    assert!(
        Session::new(
            &e,
            SessionOptions {
                batch_size: 0,
                ..Default::default()
            }
        )
        .is_err()
    );
    assert!(s.messages().is_empty());
}

fn thinking_is_split_from_text_and_the_budget_forces_the_end(kind: BackendKind) {
    let e = engine(kind, "lfm2-dense-h64-q8_0");
    let think = e.tokenizer().token_id("<think>").unwrap();
    // A strong bias makes the random model open a thinking block first; the presence penalty
    // (same size) then stops it from repeating `<think>` so it thinks in words.
    let sampling = SamplingOptions {
        logit_bias: vec![(think, 40.0)],
        presence_penalty: 40.0,
        ..SamplingOptions::greedy()
    };
    let opts = GenerateOptions {
        sampling,
        max_tokens: 24,
        thinking_budget: Some(3),
        ..Default::default()
    };
    let mut s = Session::new(&e, SessionOptions::default()).unwrap();
    let mut events = Vec::new();
    s.send_with(Message::user("Think first"), &opts, |ev| {
        events.push(ev.clone())
    })
    .unwrap();
    let thinking: String = events
        .iter()
        .filter_map(|e| {
            if let Event::Thinking(t) = e {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect();
    let text: String = events
        .iter()
        .filter_map(|e| {
            if let Event::Text(t) = e {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect();
    assert!(!thinking.is_empty(), "{events:?}");
    for part in [&thinking, &text] {
        assert!(
            !part.contains("<think>") && !part.contains("</think>"),
            "markers leak: {part:?}"
        );
    }
    // The budget closed the first block after 3 thinking tokens: its text is short.
    let first_block = events
        .iter()
        .take_while(|e| matches!(e, Event::Thinking(_)))
        .count();
    assert!(first_block <= 3, "{events:?}");
    let msg = s.messages().last().unwrap();
    assert_eq!(msg.thinking.as_deref().map(str::is_empty), Some(false));

    // Hidden thinking: no Thinking events, but the message still records it.
    let hidden = GenerateOptions {
        show_thinking: false,
        ..opts
    };
    let mut s = Session::new(&e, SessionOptions::default()).unwrap();
    let mut n_thinking = 0;
    s.send_with(Message::user("Think first"), &hidden, |ev| {
        n_thinking += matches!(ev, Event::Thinking(_)) as usize
    })
    .unwrap();
    assert_eq!(n_thinking, 0);
    assert!(s.messages().last().unwrap().thinking.is_some());
}

fn tools_are_rendered_into_the_prompt(kind: BackendKind) {
    let e = engine(kind, "lfm2moe-h64-e8k2-q8_0");
    let tool = hearth::chat::Tool::new(
        "get_weather",
        "Current weather for a city",
        serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    );
    let plain = Session::new(&e, SessionOptions::default()).unwrap();
    let with_tools = Session::new(
        &e,
        SessionOptions {
            tools: vec![tool],
            ..Default::default()
        },
    )
    .unwrap();
    let msgs = [Message::user("Weather in Paris?")];
    assert!(with_tools.count_tokens(&msgs).unwrap() > plain.count_tokens(&msgs).unwrap() + 10);
    let mut s = with_tools;
    turn(&mut s, "Weather in Paris?", &greedy(4));
    let prompt = e.tokenizer().decode(s.debug_last_prompt(), false).unwrap();
    assert!(
        prompt.contains("<|tool_list_start|>") && prompt.contains("get_weather"),
        "{prompt}"
    );
}

fn json_schema_answers_always_parse_and_validate(kind: BackendKind) {
    let e = engine(kind, "lfm2moe-h64-e8k2-q4_0");
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3}
        },
        "required": ["name", "age", "tags"]
    });
    for seed in 0..6 {
        let mut s = Session::new(&e, SessionOptions::default()).unwrap();
        let opts = GenerateOptions {
            json_schema: Some(schema.clone()),
            ..seeded(seed, 200)
        };
        let (text, stats) = turn(&mut s, "Describe a person as JSON", &opts);
        assert_eq!(
            stats.stop_reason,
            StopReason::EndOfTurn,
            "seed {seed}: {text}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("seed {seed}: {e}: {text}"));
        assert!(
            v["name"].as_str().is_some_and(|n| n.chars().count() <= 12),
            "{v}"
        );
        assert!(
            v["age"].as_i64().is_some_and(|a| (0..=120).contains(&a)),
            "{v}"
        );
        assert!(
            v["tags"].as_array().is_some_and(|t| t.len() <= 3
                && t.iter()
                    .all(|x| ["a", "b", "c"].contains(&x.as_str().unwrap()))),
            "{v}"
        );
        assert!(
            stats.constraint_time.as_secs_f64() / (stats.generated_tokens as f64) < 0.01,
            "mask cost per token"
        );
    }
    let mut s = Session::new(&e, SessionOptions::default()).unwrap();
    let bad = GenerateOptions {
        json_schema: Some(serde_json::json!({"type": "object", "pattern": "x"})),
        ..greedy(5)
    };
    assert!(matches!(
        s.send(Message::user("x"), &bad).err(),
        Some(Error::InvalidArgument(_))
    ));
}

engine_tests! {
    same_seed_same_output_different_seed_differs,
    second_turn_reuses_the_cache_and_matches_a_fresh_prefill,
    cancel_rolls_back_exactly,
    dropping_a_turn_early_rolls_back,
    regenerate_and_edit_reuse_the_shared_prefix,
    overflow_policies,
    save_and_restore_continue_identically,
    invalid_options_are_errors,
    thinking_is_split_from_text_and_the_budget_forces_the_end,
    tools_are_rendered_into_the_prompt,
    json_schema_answers_always_parse_and_validate,
}
