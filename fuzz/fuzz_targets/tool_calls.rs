//! The tool-call parser, both syntaxes (pythonic `[f(a=1)]` and JSON); what parses must
//! format back as JSON and parse to the same calls, and as pythonic too when every argument
//! name is an identifier (JSON keys may be any string; Python keywords may not).
#![no_main]

use hearth::chat::{format_tool_calls_json, format_tool_calls_pythonic, is_ident, parse_tool_calls};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(calls) = parse_tool_calls(text) else {
        return;
    };
    let keys_are_idents = calls.iter().all(|c| {
        c.arguments
            .as_object()
            .is_none_or(|m| m.keys().all(|k| is_ident(k)))
    });
    let mut forms = vec![format_tool_calls_json(&calls)];
    if keys_are_idents {
        forms.push(format_tool_calls_pythonic(&calls));
    }
    for formatted in forms {
        let again = parse_tool_calls(&formatted).expect("formatted calls parse");
        assert_eq!(again.len(), calls.len());
        for (a, b) in again.iter().zip(&calls) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.arguments, b.arguments);
        }
    }
});
