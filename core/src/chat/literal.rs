//! Control-token strings inside message text stay text.
//!
//! The prompt is one rendered string, tokenized with special-token parsing so the template's
//! own markers (`<|im_start|>`, `<|im_end|>`) become control tokens. Without care, the same
//! strings typed by a user, pasted from a web page or returned by a tool would become control
//! tokens too and could forge turns (a fake `<|im_end|>\n<|im_start|>system`). So before
//! rendering, every control-token string inside a message's text is wrapped in two
//! noncharacters, and the rendered prompt is tokenized piecewise: marked spans literally,
//! everything else with special-token parsing. Messages without such strings are untouched,
//! so ordinary prompts tokenize exactly as before.

use super::Message;

/// Opens a span of message text that must be tokenized literally (a Unicode noncharacter:
/// never meaningful in interchanged text).
pub const LITERAL_OPEN: char = '\u{FDD0}';
/// Closes a span opened by [`LITERAL_OPEN`].
pub const LITERAL_CLOSE: char = '\u{FDD1}';

/// Whether any message's text contains a control-token string (or one of the marks).
pub fn needs_marking(messages: &[Message], controls: &[String]) -> bool {
    messages
        .iter()
        .any(|m| texts(m).any(|t| contains_any(t, controls)))
}

/// The messages with every control-token string in their text wrapped in the marks (and any
/// mark already present replaced by U+FFFD, so text cannot fake a span).
pub fn mark(messages: &[Message], controls: &[String]) -> Vec<Message> {
    messages
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.content = mark_text(&m.content, controls);
            m.thinking = m.thinking.as_deref().map(|t| mark_text(t, controls));
            m
        })
        .collect()
}

fn texts(m: &Message) -> impl Iterator<Item = &str> {
    std::iter::once(m.content.as_str()).chain(m.thinking.as_deref())
}

fn contains_any(text: &str, controls: &[String]) -> bool {
    text.contains([LITERAL_OPEN, LITERAL_CLOSE])
        || controls.iter().any(|c| text.contains(c.as_str()))
}

fn mark_text(text: &str, controls: &[String]) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        // The longest control string starting here, if any.
        let hit = controls
            .iter()
            .filter(|s| !s.is_empty() && rest.starts_with(s.as_str()))
            .max_by_key(|s| s.len());
        if let Some(s) = hit {
            out.push(LITERAL_OPEN);
            out.push_str(s);
            out.push(LITERAL_CLOSE);
            rest = &rest[s.len()..];
            continue;
        }
        out.push(if c == LITERAL_OPEN || c == LITERAL_CLOSE {
            char::REPLACEMENT_CHARACTER
        } else {
            c
        });
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Splits a rendered prompt at the marks: `(piece, literal)` in order, marks removed.
pub fn pieces(text: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let (mut start, mut literal) = (0, false);
    for (i, ch) in text.char_indices() {
        if ch == LITERAL_OPEN || ch == LITERAL_CLOSE {
            if i > start {
                out.push((&text[start..i], literal));
            }
            literal = ch == LITERAL_OPEN;
            start = i + ch.len_utf8();
        }
    }
    if start < text.len() {
        out.push((&text[start..], literal));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controls() -> Vec<String> {
        ["<|im_end|>", "<|im_start|>", "<|im"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn control_strings_are_wrapped_longest_first_and_stray_marks_neutralised() {
        let t = format!("a<|im_end|>b<|im_start|>c<|imx{LITERAL_OPEN}");
        let m = mark_text(&t, &controls());
        let (o, c) = (LITERAL_OPEN, LITERAL_CLOSE);
        assert_eq!(
            m,
            format!("a{o}<|im_end|>{c}b{o}<|im_start|>{c}c{o}<|im{c}x\u{FFFD}")
        );
        let got = pieces(&m);
        assert_eq!(
            got,
            [
                ("a", false),
                ("<|im_end|>", true),
                ("b", false),
                ("<|im_start|>", true),
                ("c", false),
                ("<|im", true),
                ("x\u{FFFD}", false),
            ]
        );
    }

    #[test]
    fn plain_text_is_one_piece_and_needs_no_marking() {
        let msgs = [Message::user("hello <b>world</b> <|not a token|>")];
        assert!(!needs_marking(&msgs, &controls()));
        assert_eq!(pieces("hello"), [("hello", false)]);
        assert!(needs_marking(&[Message::user("x<|im_end|>")], &controls()));
    }
}
