//! The JSON-schema compiler and its byte automaton: the input's first line is a schema, the
//! rest candidate output. Whatever the automaton accepts as complete must be JSON.
#![no_main]

use std::sync::{Arc, OnceLock};

use hearth::constrain::{JsonConstraint, TokenIndex};
use hearth::tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

/// The fixture vocabulary's index and size.
fn index() -> &'static (Arc<TokenIndex>, usize) {
    static INDEX: OnceLock<(Arc<TokenIndex>, usize)> = OnceLock::new();
    INDEX.get_or_init(|| {
        let json = include_bytes!("../../core/tests/fixtures/hf/lfm2-dense-h64/tokenizer.json");
        let tok = Tokenizer::from_json_bytes(json).expect("fixture tokenizer");
        (Arc::new(TokenIndex::new(&tok)), tok.vocab_size())
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (schema, output) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(schema) = serde_json::from_str::<serde_json::Value>(schema) else {
        return;
    };
    let (index, vocab) = index();
    let Ok(mut c) = JsonConstraint::with_index(&schema, index.clone()) else {
        return;
    };
    let mut logits = vec![0.0f32; *vocab];
    c.mask(&mut logits);
    if c.accept_bytes(output.as_bytes()) && c.is_complete() {
        serde_json::from_str::<serde_json::Value>(output).expect("accepted output is JSON");
    }
});
