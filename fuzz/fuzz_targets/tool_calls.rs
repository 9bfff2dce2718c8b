//! The tool-call parser, both syntaxes (pythonic `[f(a=1)]` and JSON); what parses must
//! format back and parse to the same calls.
#![no_main]

use hearth::chat::{format_tool_calls_json, format_tool_calls_pythonic, parse_tool_calls};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(calls) = parse_tool_calls(text) else {
        return;
    };
    for formatted in [format_tool_calls_json(&calls), format_tool_calls_pythonic(&calls)] {
        let again = parse_tool_calls(&formatted).expect("formatted calls parse");
        assert_eq!(again.len(), calls.len());
        for (a, b) in again.iter().zip(&calls) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.arguments, b.arguments);
        }
    }
});
