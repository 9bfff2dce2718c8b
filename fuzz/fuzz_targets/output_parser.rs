//! The thinking / answer / tool-call stream splitter, fed in arbitrary chunks: the text it
//! emits never depends on how the stream was cut.
#![no_main]

use hearth::chat::{OutputEvent, OutputParser, ParserOptions};
use libfuzzer_sys::fuzz_target;

fn run(chunks: &[&str]) -> Vec<OutputEvent> {
    let mut p = OutputParser::new(ParserOptions::for_prompt("", true));
    let mut out = Vec::new();
    for c in chunks {
        out.extend(p.push(c));
    }
    out.extend(p.finish());
    out
}

/// Adjacent text events of one kind merged, so differently cut streams compare.
fn merged(events: Vec<OutputEvent>) -> Vec<OutputEvent> {
    let mut out: Vec<OutputEvent> = Vec::new();
    for e in events {
        match (out.last_mut(), e) {
            (Some(OutputEvent::Text(a)), OutputEvent::Text(b)) => a.push_str(&b),
            (Some(OutputEvent::Thinking(a)), OutputEvent::Thinking(b)) => a.push_str(&b),
            (_, e) => out.push(e),
        }
    }
    out.retain(|e| !matches!(e, OutputEvent::Text(t) | OutputEvent::Thinking(t) if t.is_empty()));
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let whole = merged(run(&[text]));
    // Cut every `cut`-th char boundary.
    let step = 1 + cut as usize % 7;
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .step_by(step)
        .chain([text.len()])
        .collect();
    let pieces: Vec<&str> = bounds.windows(2).map(|w| &text[w[0]..w[1]]).collect();
    assert_eq!(merged(run(&pieces)), whole, "cut every {step} chars");
});
