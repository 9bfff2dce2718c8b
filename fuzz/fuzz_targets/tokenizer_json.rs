//! `tokenizer.json` parsing and a round of encoding and decoding with what it builds.
#![no_main]

use hearth::tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tok) = Tokenizer::from_json_bytes(data) {
        if let Ok(ids) = tok.encode("The quick <|im_end|> fox ∑ 🚀", true) {
            let _ = tok.decode(&ids, false);
        }
        let _ = tok.decode(&[0, 1, 2, u32::MAX], true);
    }
});
