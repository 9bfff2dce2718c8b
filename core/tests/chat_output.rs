//! Streaming output parser: thinking / text / tool-call splitting, markers split at every byte
//! position, bare call lists, malformed calls, and a deterministic fuzz test against a simple
//! whole-string reference model.

mod common;

use common::Rng;
use hearth::chat::{Message, OutputEvent, OutputParser, ParserOptions, ToolCall, parse_tool_calls};
use serde_json::json;

const TOOLS: ParserOptions = ParserOptions {
    starts_in_thinking: false,
    parse_tool_calls: true,
};

fn text(s: &str) -> OutputEvent {
    OutputEvent::Text(s.into())
}
fn think(s: &str) -> OutputEvent {
    OutputEvent::Thinking(s.into())
}
fn call(id: usize, name: &str, args: serde_json::Value) -> OutputEvent {
    OutputEvent::ToolCall(ToolCall {
        id: format!("call_{id}"),
        name: name.into(),
        arguments: args,
    })
}

/// Merges adjacent text / thinking events and drops empty ones (events of different pushes are
/// not merged by the parser).
fn normalize(evs: Vec<OutputEvent>) -> Vec<OutputEvent> {
    let mut out: Vec<OutputEvent> = Vec::new();
    for e in evs {
        match (out.last_mut(), e) {
            (_, OutputEvent::Text(s)) | (_, OutputEvent::Thinking(s)) if s.is_empty() => {}
            (Some(OutputEvent::Text(a)), OutputEvent::Text(b)) => a.push_str(&b),
            (Some(OutputEvent::Thinking(a)), OutputEvent::Thinking(b)) => a.push_str(&b),
            (_, e) => out.push(e),
        }
    }
    out
}

fn run(opts: ParserOptions, chunks: &[&str]) -> Vec<OutputEvent> {
    let mut p = OutputParser::new(opts);
    let mut ev = Vec::new();
    for c in chunks {
        ev.extend(p.push(c));
    }
    ev.extend(p.finish());
    normalize(ev)
}

/// Parses `input` whole, then split in two at every char boundary, then in three at every
/// pair of boundaries (short inputs) and char by char; all must agree.
fn check_all_splits(opts: ParserOptions, input: &str, expected: &[OutputEvent]) {
    assert_eq!(run(opts, &[input]), expected, "whole: {input:?}");
    let bounds: Vec<usize> = (0..=input.len())
        .filter(|&i| input.is_char_boundary(i))
        .collect();
    for &i in &bounds {
        let got = run(opts, &[&input[..i], &input[i..]]);
        assert_eq!(got, expected, "split at {i}: {input:?}");
    }
    if input.len() <= 80 {
        for (a, &i) in bounds.iter().enumerate() {
            for &j in &bounds[a..] {
                let got = run(opts, &[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(got, expected, "split at {i},{j}: {input:?}");
            }
        }
    }
    let chars: Vec<String> = input.chars().map(String::from).collect();
    let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(run(opts, &refs), expected, "char by char: {input:?}");
}

#[test]
fn thinking_split_everywhere() {
    check_all_splits(
        TOOLS,
        "<think>Let me think. ü</think>The answer is 4.",
        &[think("Let me think. ü"), text("The answer is 4.")],
    );
    check_all_splits(
        TOOLS,
        "<think>\nreason\n</think>\n\nanswer",
        &[think("\nreason\n"), text("\n\nanswer")],
    );
    // Prompt already opened the block.
    let opts = ParserOptions {
        starts_in_thinking: true,
        parse_tool_calls: true,
    };
    check_all_splits(opts, "r1 </think>done", &[think("r1 "), text("done")]);
    // Unterminated thinking stays thinking; "<" that never becomes a marker is text.
    check_all_splits(opts, "still thinking <", &[think("still thinking <")]);
    check_all_splits(TOOLS, "a < b <th c", &[text("a < b <th c")]);
    // Stray markers are dropped, never leak.
    check_all_splits(
        TOOLS,
        "x</think>y<think>t<think>u</think>z<|tool_call_end|>w",
        &[text("xy"), think("tu"), text("zw")],
    );
}

#[test]
fn streams_immediately_and_holds_only_marker_prefixes() {
    let mut p = OutputParser::new(TOOLS);
    assert_eq!(p.push("Hello wor"), vec![text("Hello wor")]);
    assert_eq!(p.push("ld <th"), vec![text("ld ")]);
    assert!(!p.in_thinking());
    assert_eq!(p.push("ink>rea"), vec![think("rea")]);
    assert!(p.in_thinking());
    assert_eq!(p.push("son</"), vec![think("son")]);
    assert_eq!(p.push("think>ok <|tool"), vec![text("ok ")]);
    assert!(!p.in_thinking());
    assert_eq!(p.push("_call_start|>[f(a=1)"), vec![]);
    assert!(p.in_tool_call());
    assert_eq!(
        p.push("]<|tool_call_end|> done"),
        vec![call(0, "f", json!({"a": 1})), text(" done")]
    );
    assert_eq!(p.finish(), vec![]);
}

#[test]
fn tool_calls_in_markers() {
    check_all_splits(
        TOOLS,
        "Sure.<|tool_call_start|>[get_weather(location=\"Paris\", days=3), noop()]<|tool_call_end|>Done.",
        &[
            text("Sure."),
            call(0, "get_weather", json!({"location": "Paris", "days": 3})),
            call(1, "noop", json!({})),
            text("Done."),
        ],
    );
    // JSON inside the markers; ids continue over blocks; thinking first.
    check_all_splits(
        TOOLS,
        "<think>plan</think><|tool_call_start|>[{\"name\": \"a\", \"arguments\": {\"x\": [1, 2]}}]<|tool_call_end|><|tool_call_start|>{\"name\": \"b\", \"arguments\": {}}<|tool_call_end|>",
        &[
            think("plan"),
            call(0, "a", json!({"x": [1, 2]})),
            call(1, "b", json!({})),
        ],
    );
    // Ids keep counting over finish() (one parser per generation restarts at call_0).
    let mut p = OutputParser::new(TOOLS);
    let mut ev = p.push("<|tool_call_start|>[f()]<|tool_call_end|>");
    ev.extend(p.finish());
    ev.extend(p.push("<|tool_call_start|>[g()]<|tool_call_end|>"));
    ev.extend(p.finish());
    assert_eq!(ev, vec![call(0, "f", json!({})), call(1, "g", json!({}))]);
}

#[test]
fn malformed_calls_become_errors_with_raw_text() {
    let raw = "<|tool_call_start|>[f(1, 2)]<|tool_call_end|>";
    let ev = run(TOOLS, &["A", raw, "B"]);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0], text("A"));
    match &ev[1] {
        OutputEvent::ToolCallError { raw: r, reason } => {
            assert_eq!(r, raw);
            assert!(reason.contains("positional"), "{reason}");
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(ev[2], text("B"));
    // Unterminated at the end of generation.
    let ev = run(TOOLS, &["ok <|tool_call_start|>[f(a=", "1)"]);
    assert_eq!(ev[0], text("ok "));
    match &ev[1] {
        OutputEvent::ToolCallError { raw, reason } => {
            assert_eq!(raw, "<|tool_call_start|>[f(a=1)");
            assert!(reason.contains("unterminated"));
        }
        e => panic!("{e:?}"),
    }
    // Each of these yields exactly one error carrying the whole block.
    for body in [
        "",
        "garbage",
        "[f(a=\"x)]",
        "[f(a=1]",
        "[f(a=1)] x",
        "[f(a=[[[[[",
    ] {
        let raw = format!("<|tool_call_start|>{body}<|tool_call_end|>");
        let ev = run(TOOLS, &[&raw]);
        assert!(
            matches!(&ev[..], [OutputEvent::ToolCallError { raw: r, .. }] if *r == raw),
            "{ev:?}"
        );
    }
}

#[test]
fn bare_pythonic_list() {
    check_all_splits(
        TOOLS,
        "[get_weather(city=\"Paris\")]",
        &[call(0, "get_weather", json!({"city": "Paris"}))],
    );
    check_all_splits(
        TOOLS,
        "\n [f(x=1), g(s='a]b')]\n",
        &[
            text("\n "),
            call(0, "f", json!({"x": 1})),
            call(1, "g", json!({"s": "a]b"})),
        ],
    );
    check_all_splits(
        TOOLS,
        "<think>r</think>\n[f(x=1)]",
        &[think("r"), text("\n"), call(0, "f", json!({"x": 1}))],
    );
    // Not a whole-answer call list: text.
    for s in [
        "[f(x=1)] and more",
        "[1, 2, 3]",
        "[Note](https://x.y)",
        "[f(x=1)",
        "[f(1)]",
        "Hi [f(x=1)]",
        "[]",
        "[f (x=1)]",
        "[f(x=1)]]",
        "[ {\"name\": \"f\"} ]",
    ] {
        check_all_splits(TOOLS, s, &[text(s)]);
    }
    // A marker ends the candidate.
    check_all_splits(
        TOOLS,
        "[f(x=1)]<think>t</think>",
        &[text("[f(x=1)]"), think("t")],
    );
    // Text that proves not to be a call list is released before the end of generation.
    let mut p = OutputParser::new(TOOLS);
    assert_eq!(p.push("[get"), vec![]);
    assert!(p.in_tool_call());
    assert_eq!(p.push("_w(a=1)"), vec![]);
    assert_eq!(p.push("] is a call"), vec![text("[get_w(a=1)] is a call")]);
    assert!(!p.in_tool_call());
    assert_eq!(p.push(" yes"), vec![text(" yes")]);
    let mut p = OutputParser::new(TOOLS);
    assert_eq!(p.push("[x"), vec![]);
    assert_eq!(p.push(" y"), vec![text("[x y")]);
    // Without tool parsing everything is text.
    let plain = ParserOptions {
        starts_in_thinking: false,
        parse_tool_calls: false,
    };
    let s = "[f(x=1)]<|tool_call_start|>[g()]<|tool_call_end|>";
    check_all_splits(plain, s, &[text(s)]);
}

// ---------------------------------------------------------------------------------------------
// Fuzz: random and truncated inputs, random chunkings, compared with a whole-string reference.

const MARKERS_TEXT: [&str; 4] = [
    "<think>",
    "</think>",
    "<|tool_call_start|>",
    "<|tool_call_end|>",
];

/// The specified semantics, computed on the whole string at once (no streaming).
fn reference(input: &str, opts: ParserOptions) -> Vec<OutputEvent> {
    #[derive(PartialEq)]
    enum M {
        Text,
        Think,
        Call,
    }
    let mut ev = Vec::new();
    let mut mode = if opts.starts_in_thinking {
        M::Think
    } else {
        M::Text
    };
    let mut pos = 0;
    let mut started = false;
    let mut next_id = 0;
    let mut push_calls = |ev: &mut Vec<OutputEvent>, calls: Vec<ToolCall>| {
        for mut c in calls {
            c.id = format!("call_{next_id}");
            next_id += 1;
            ev.push(OutputEvent::ToolCall(c));
        }
    };
    let earliest = |s: &str, ms: &[&'static str]| {
        ms.iter()
            .filter_map(|m| s.find(m).map(|i| (i, *m)))
            .min_by_key(|x| x.0)
    };
    loop {
        let rest = &input[pos..];
        match mode {
            M::Call => match rest.find("<|tool_call_end|>") {
                Some(i) => {
                    match parse_tool_calls(&rest[..i]) {
                        Ok(c) => push_calls(&mut ev, c),
                        Err(e) => ev.push(OutputEvent::ToolCallError {
                            raw: format!("<|tool_call_start|>{}<|tool_call_end|>", &rest[..i]),
                            reason: e.to_string(),
                        }),
                    }
                    pos += i + "<|tool_call_end|>".len();
                    mode = M::Text;
                    started = true;
                }
                None => {
                    ev.push(OutputEvent::ToolCallError {
                        raw: format!("<|tool_call_start|>{rest}"),
                        reason: "unterminated tool call (no <|tool_call_end|>)".into(),
                    });
                    break;
                }
            },
            M::Think => match earliest(rest, &["</think>", "<think>"]) {
                Some((i, m)) => {
                    ev.push(think(&rest[..i]));
                    if m == "</think>" {
                        mode = M::Text;
                        started = false;
                    }
                    pos += i + m.len();
                }
                None => {
                    ev.push(think(rest));
                    break;
                }
            },
            M::Text => {
                let ms: &[&'static str] = if opts.parse_tool_calls {
                    &MARKERS_TEXT
                } else {
                    &MARKERS_TEXT[..2]
                };
                let found = earliest(rest, ms);
                let seg = &rest[..found.map_or(rest.len(), |f| f.0)];
                if started || !opts.parse_tool_calls {
                    ev.push(text(seg));
                    started |= !seg.trim_start().is_empty();
                } else {
                    let t = seg.trim_start();
                    ev.push(text(&seg[..seg.len() - t.len()]));
                    if !t.is_empty() {
                        started = true;
                        let calls = if found.is_none() && bare_prefix_ok(t) {
                            parse_tool_calls(t).ok().filter(|c| !c.is_empty())
                        } else {
                            None
                        };
                        match calls {
                            Some(c) => push_calls(&mut ev, c),
                            None => ev.push(text(t)),
                        }
                    }
                }
                let Some((i, m)) = found else { break };
                pos += i + m.len();
                match m {
                    "<think>" => mode = M::Think,
                    "</think>" => started = false,
                    "<|tool_call_start|>" => mode = M::Call,
                    _ => {}
                }
            }
        }
    }
    normalize(ev)
}

/// `[` whitespace* identifier `(`.
fn bare_prefix_ok(t: &str) -> bool {
    let Some(r) = t.strip_prefix('[') else {
        return false;
    };
    let r = r.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let mut it = r.char_indices();
    match it.next() {
        Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    for (_, c) in it {
        if c == '(' {
            return true;
        }
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') {
            return false;
        }
    }
    false
}

const PIECES: &[&str] = &[
    "<think>",
    "</think>",
    "<|tool_call_start|>",
    "<|tool_call_end|>",
    "<th",
    "ink>",
    "</",
    "<|",
    "tool_call",
    "_start|>",
    "_end|>",
    "<",
    ">",
    "|",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ",",
    ":",
    "=",
    "\"",
    "'",
    "'''",
    "\\",
    "\\\"",
    "\\u00e9",
    "f",
    "get_weather",
    "x",
    "a",
    "1",
    "-2.5e3",
    "True",
    "None",
    "null",
    " ",
    "\n",
    "hello",
    "é",
    "🚀",
    "日本",
    "[f(a=1)]",
    "[g(s=\"x\\\"y\", d={\"k\": [1, 2]})]",
    "{\"name\": \"h\", \"arguments\": {\"z\": true}}",
];

const WELL_FORMED: &[&str] = &[
    "<think>\nI should call the tool.\n</think>\n\n<|tool_call_start|>[get_weather(location=\"Paris\", unit='c')]<|tool_call_end|>Checking the weather.",
    "<think>hmm</think>The answer is 42 🚀.",
    "[get_weather(location=\"Tokyo\"), search(q='it\\'s', n=3, f=True, d={\"a\": [1, None]})]",
    "Sure!<|tool_call_start|>[{\"name\": \"f\", \"arguments\": {\"x\": \"日本\"}}]<|tool_call_end|>",
    "  \n[f(code='''x = [1, (2)]\n''')]  ",
];

fn random_input(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => {
            // Truncated / spliced well-formed output.
            let w = WELL_FORMED[rng.below(WELL_FORMED.len())];
            let mut cut = rng.below(w.len() + 1);
            while !w.is_char_boundary(cut) {
                cut -= 1;
            }
            let mut s = w[..cut].to_string();
            if rng.below(3) == 0 {
                s.push_str(PIECES[rng.below(PIECES.len())]);
            }
            s
        }
        1 => {
            // Random bytes from a small alphabet mixing markup characters.
            const ALPHA: &[char] = &[
                '<', '>', '/', '|', '[', ']', '(', ')', '{', '}', '"', '\'', '\\', '=', ',', ':',
                ' ', '\n', 'a', 'f', 't', 'h', 'i', 'n', 'k', '1', 'é', '_',
            ];
            (0..rng.below(60))
                .map(|_| ALPHA[rng.below(ALPHA.len())])
                .collect()
        }
        _ => (0..rng.below(25))
            .map(|_| PIECES[rng.below(PIECES.len())])
            .collect(),
    }
}

fn random_chunks<'a>(rng: &mut Rng, s: &'a str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let mut j = (i + 1 + rng.below(8)).min(s.len());
        while !s.is_char_boundary(j) {
            j += 1;
        }
        out.push(&s[i..j]);
        i = j;
    }
    out
}

/// What the events say about the input text: text, thinking and raw error blocks in order.
fn accounted(ev: &[OutputEvent]) -> String {
    ev.iter()
        .map(|e| match e {
            OutputEvent::Text(s) | OutputEvent::Thinking(s) => s.as_str(),
            OutputEvent::ToolCallError { raw, .. } => raw.as_str(),
            OutputEvent::ToolCall(_) => "",
        })
        .collect()
}

#[test]
fn fuzz_streaming_equals_reference() {
    let mut rng = Rng::new(0x5eed_c4a7);
    let all_opts = [
        TOOLS,
        ParserOptions {
            starts_in_thinking: true,
            parse_tool_calls: true,
        },
        ParserOptions {
            starts_in_thinking: false,
            parse_tool_calls: false,
        },
        ParserOptions {
            starts_in_thinking: true,
            parse_tool_calls: false,
        },
    ];
    let mut n_calls = 0;
    let mut n_errors = 0;
    for case in 0..4000 {
        let input = random_input(&mut rng);
        for opts in all_opts {
            let want = reference(&input, opts);
            let whole = run(opts, &[&input]);
            assert_eq!(whole, want, "case {case} {opts:?}: {input:?}");
            for _ in 0..2 {
                let chunks = random_chunks(&mut rng, &input);
                assert_eq!(run(opts, &chunks), want, "case {case} {opts:?}: {chunks:?}");
            }
            // Accounting: without tool parsing, the events are the input minus the think
            // markers, byte for byte.
            if !opts.parse_tool_calls {
                let stripped = strip_think_markers(&input, opts.starts_in_thinking);
                assert_eq!(accounted(&want), stripped, "case {case}: {input:?}");
            }
            for e in &want {
                match e {
                    OutputEvent::ToolCall(_) => n_calls += 1,
                    OutputEvent::ToolCallError { .. } => n_errors += 1,
                    _ => {}
                }
            }
        }
    }
    // The generator exercises both outcomes.
    assert!(
        n_calls > 100 && n_errors > 100,
        "{n_calls} calls, {n_errors} errors"
    );
}

/// Input with think markers removed (left to right, as the modes switch).
fn strip_think_markers(s: &str, starts_in_thinking: bool) -> String {
    let mut out = String::new();
    let mut rest = s;
    let _ = starts_in_thinking; // both markers are removed in both modes
    while let Some(i) = [rest.find("<think>"), rest.find("</think>")]
        .into_iter()
        .flatten()
        .min()
    {
        out.push_str(&rest[..i]);
        let m = if rest[i..].starts_with("<think>") {
            "<think>"
        } else {
            "</think>"
        };
        rest = &rest[i + m.len()..];
    }
    out.push_str(rest);
    out
}

/// Accounting with tool parsing on: every byte of the input is in exactly one of text,
/// thinking, an error's raw block, a removed marker, or a parsed call. Checked on inputs built
/// from whole well-formed blocks, where the parsed call regions are known.
#[test]
fn fuzz_accounting_with_tool_calls() {
    let mut rng = Rng::new(7);
    let blocks: &[(&str, &str, usize)] = &[
        // (text, what it contributes to text/thinking/raw, number of calls)
        ("plain text ", "plain text ", 0),
        ("<think>why</think>", "why", 0),
        ("<|tool_call_start|>[f(a=1), g()]<|tool_call_end|>", "", 2),
        (
            "<|tool_call_start|>[f(1)]<|tool_call_end|>",
            "<|tool_call_start|>[f(1)]<|tool_call_end|>",
            0,
        ),
        ("é🚀 ", "é🚀 ", 0),
        (
            "<|tool_call_start|>{\"name\": \"x\"}<|tool_call_end|>",
            "",
            1,
        ),
    ];
    for _ in 0..2000 {
        let mut input = String::from("x"); // answer started: no bare-list detection
        let mut want = String::from("x");
        let mut want_calls = 0;
        for _ in 0..rng.below(10) {
            let (b, w, n) = blocks[rng.below(blocks.len())];
            input.push_str(b);
            want.push_str(w);
            want_calls += n;
        }
        let chunks = random_chunks(&mut rng, &input);
        let ev = run(TOOLS, &chunks);
        assert_eq!(accounted(&ev), want, "{input:?}");
        let calls: Vec<&ToolCall> = ev
            .iter()
            .filter_map(|e| match e {
                OutputEvent::ToolCall(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), want_calls);
        for (i, c) in calls.iter().enumerate() {
            assert_eq!(c.id, format!("call_{i}"));
        }
        for e in &ev {
            if let OutputEvent::Text(s) | OutputEvent::Thinking(s) = e {
                assert!(!s.contains("<think>") && !s.contains("</think>"), "{s:?}");
            }
        }
    }
}

#[test]
fn message_from_events() {
    let ev = run(
        TOOLS,
        &[
            "<think>a</think>Hi <|tool_call_start|>[f(x=1)]<|tool_call_end|><|tool_call_start|>[g(1)]<|tool_call_end|>",
        ],
    );
    let m = Message::from_output(&ev);
    assert_eq!(m.thinking.as_deref(), Some("a"));
    assert_eq!(m.content, "Hi <|tool_call_start|>[g(1)]<|tool_call_end|>");
    assert_eq!(m.tool_calls.len(), 1);
    assert_eq!(m.tool_calls[0].id, "call_0");
    assert_eq!(Message::from_output(&run(TOOLS, &["x"])).thinking, None);
}

#[test]
fn options_from_prompt() {
    let p = ParserOptions::for_prompt("<|im_start|>assistant\n<think>\n", true);
    assert!(p.starts_in_thinking && p.parse_tool_calls);
    let p = ParserOptions::for_prompt("<|im_start|>assistant\n", false);
    assert!(!p.starts_in_thinking && !p.parse_tool_calls);
    let mut parser = OutputParser::new(ParserOptions::for_prompt("x<think>", true));
    assert!(parser.in_thinking());
    assert_eq!(parser.push("a</think>b"), vec![think("a"), text("b")]);
}
