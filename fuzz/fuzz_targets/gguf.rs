//! GGUF parsing, tensor-table validation, the model config, the tokenizer built from the GGUF
//! vocabulary and the chat template: a hostile file is an error, never a crash or a memory bomb.
#![no_main]

use hearth::chat::ChatTemplate;
use hearth::gguf::GgufFile;
use hearth::models::lfm2::Config;
use hearth::tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = Config::from_gguf(&file);
    if let Ok(tok) = Tokenizer::from_gguf(&file) {
        let _ = tok.encode("Hello <|im_start|> wörld 🚀", true);
    }
    if let Ok(t) = ChatTemplate::from_gguf(&file) {
        let _ = t.render(&[hearth::Message::user("hi")], &[], &Default::default());
    }
});
