//! The chat-template renderer on hostile templates and messages: the input's first line is
//! the message text, the rest the template. Errors (including running out of fuel) are fine;
//! a panic, a hang or an abort is not.
#![no_main]

use hearth::chat::ChatTemplate;
use hearth::{Message, Tool};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (msg, src) = text.split_once('\n').unwrap_or(("hello", text));
    let Ok(t) = ChatTemplate::new(src, "<|startoftext|>", "<|im_end|>") else {
        return;
    };
    let mut answer = Message::assistant(msg);
    answer.thinking = Some(msg.to_string());
    let messages = [Message::system(msg), Message::user(msg), answer];
    let tools = [Tool::new("f", msg, serde_json::json!({"type": "object"}))];
    let _ = t.render(&messages, &tools, &Default::default());
});
