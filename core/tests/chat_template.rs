//! Chat-template rendering: equality with Hugging Face `apply_chat_template` output.
//!
//! * `p2_chat` of every fixture model: the rendered text stored in the fixture refs (made by HF
//!   transformers) must be reproduced from the GGUF's own template (3 template kinds:
//!   LFM2.5-Instruct, LFM2-8B-A1B, LFM2.5-8B-A1B).
//! * Tool / history / thinking cases: the expected strings below follow from the template
//!   sources (`core/tests/fixtures/hf/*/tokenizer_config.json`), derivation in the comments of
//!   each case; they were additionally cross-checked by rendering the same inputs with Python
//!   jinja2 3.1 configured exactly like transformers (`ImmutableSandboxedEnvironment(trim_blocks,
//!   lstrip_blocks, loopcontrols, {% generation %})`, HF's `tojson` = `json.dumps(ensure_ascii=False)`).

mod common;

use hearth::chat::{ChatTemplate, Message, RenderOptions, TemplateFlavor, Tool, ToolCall};
use hearth::gguf::GgufFile;
use serde_json::json;

fn template(model: &str) -> ChatTemplate {
    let f = GgufFile::open(common::gguf_path(&format!("{model}-f32"))).unwrap();
    ChatTemplate::from_gguf(&f).unwrap()
}

/// LFM2.5-Instruct.jinja (tools without markers, past-thinking stripping by last assistant).
fn dense() -> ChatTemplate {
    template("lfm2-dense-h64")
}
/// LFM2-8B-A1B.jinja (tool list markers, tool responses wrapped, content only).
fn lfm2() -> ChatTemplate {
    template("lfm2moe-h64-e8k2")
}
/// LFM2.5-8B-A1B.jinja (`thinking` field, native `tool_calls` with single-quoted strings).
fn lfm25moe() -> ChatTemplate {
    template("lfm2moe-h64-e16k4")
}

fn render(t: &ChatTemplate, msgs: &[Message], tools: &[Tool]) -> String {
    t.render(msgs, tools, &RenderOptions::default()).unwrap()
}

fn weather() -> Tool {
    Tool::new(
        "get_weather",
        "Get the current weather — in °C by default.",
        json!({"type": "object", "properties": {
            "location": {"type": "string", "description": "City, e.g. \"Paris\""},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["location"]}),
    )
}

fn search() -> Tool {
    Tool::new(
        "search",
        "Search the web.\nReturns snippets.",
        json!({"type": "object", "properties": {
            "query": {"type": "string"},
            "max_results": {"type": "integer", "default": 5, "minimum": 1.5, "multipleOf": 1e-05}}}),
    )
}

#[test]
fn p2_chat_matches_hf_for_every_fixture() {
    let mut checked = std::collections::BTreeSet::new();
    for path in common::all_ggufs() {
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let model = &stem[..stem.rfind('-').unwrap()];
        let meta_path = common::fixtures().join(format!("refs/{model}/hf_f32/meta.json"));
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
        let p2 = meta["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "p2_chat")
            .unwrap();
        let msgs: Vec<Message> = serde_json::from_value(p2["messages"].clone()).unwrap();
        let f = GgufFile::open(&path).unwrap();
        let t = ChatTemplate::from_gguf(&f).unwrap();
        let got = render(&t, &msgs, &[]);
        assert_eq!(got, p2["text"].as_str().unwrap(), "{stem}");
        // Same template text as the HF tokenizer_config.json.
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                common::fixtures().join(format!("hf/{model}/tokenizer_config.json")),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            f.get_str("tokenizer.chat_template").unwrap(),
            cfg["chat_template"].as_str().unwrap()
        );
        checked.insert(model.to_string());
    }
    // All three template kinds were covered.
    for m in ["lfm2-dense-h64", "lfm2moe-h64-e8k2", "lfm2moe-h64-e16k4"] {
        assert!(checked.contains(m), "{m}");
    }
}

#[test]
fn flavors_and_tokens() {
    assert_eq!(dense().flavor(), TemplateFlavor::Lfm25);
    assert_eq!(lfm2().flavor(), TemplateFlavor::Lfm2);
    let t = lfm25moe();
    assert_eq!(t.flavor(), TemplateFlavor::Lfm25);
    assert_eq!(t.bos_token(), "<|startoftext|>");
    assert_eq!(t.eos_token(), "<|im_end|>");
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ChatTemplate>();
}

#[test]
fn builtin_template_when_gguf_has_none() {
    let mut w = hearth::gguf::GgufWriter::new();
    w.meta(
        "general.architecture",
        hearth::gguf::MetaValue::String("lfm2".into()),
    );
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let t = ChatTemplate::from_gguf(&f).unwrap();
    assert_eq!(t.flavor(), TemplateFlavor::Lfm25);
    let msgs = [Message::system("S"), Message::user("U")];
    assert_eq!(
        render(&t, &msgs, &[]),
        "<|startoftext|><|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    );
}

/// Tools go into the system prompt: `system + "\n" (if any) + "List of tools: [" + tojson(tool)
/// joined by ", " + "]"`; the LFM2 template wraps the list in `<|tool_list_start|>` /
/// `<|tool_list_end|>`. Tools render as `{"name", "description", "parameters"}` in that order,
/// schema keys in insertion order, Python `json.dumps` spacing, non-ASCII kept, `1e-05`.
#[test]
fn tools_in_system_prompt() {
    let sys = [
        Message::system("You are a helpful assistant."),
        Message::user("What's the weather in Paris?"),
    ];
    let tools = [weather(), search()];
    assert_eq!(render(&dense(), &sys, &tools), DENSE_TOOLS_SYS);
    assert_eq!(render(&lfm2(), &sys, &tools), LFM2_TOOLS_SYS);
    assert_eq!(render(&lfm25moe(), &sys, &tools), LFM25MOE_TOOLS_SYS);
    // Without a system message the tool list alone forms the system block (no leading "\n").
    let nosys = [Message::user("Weather?")];
    assert_eq!(render(&dense(), &nosys, &[weather()]), DENSE_TOOLS_NOSYS);
    assert_eq!(render(&lfm2(), &nosys, &[weather()]), LFM2_TOOLS_NOSYS);
    assert_eq!(
        render(&lfm25moe(), &nosys, &[weather()]),
        LFM25MOE_TOOLS_NOSYS
    );
    // An empty system message behaves like none.
    let empty = [Message::system(""), Message::user("x")];
    assert_eq!(render(&lfm25moe(), &empty, &[search()]), LFM25MOE_EMPTY_SYS);
    assert_eq!(render(&lfm2(), &empty, &[search()]), LFM2_EMPTY_SYS);
    // Byte-level spot checks of the hand derivation.
    assert!(
        DENSE_TOOLS_SYS
            .contains("assistant.\nList of tools: [{\"name\": \"get_weather\", \"description\"")
    );
    assert!(LFM2_TOOLS_SYS.contains("List of tools: <|tool_list_start|>[{"));
    assert!(LFM2_TOOLS_SYS.contains("}}}}]<|tool_list_end|><|im_end|>"));
}

fn calls() -> Vec<ToolCall> {
    vec![
        ToolCall {
            id: "call_0".into(),
            name: "get_weather".into(),
            arguments: json!({"location": "Paris"}),
        },
        ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: json!({"location": "Tokyo", "unit": "celsius"}),
        },
    ]
}

fn roundtrip(assistant: Message) -> Vec<Message> {
    vec![
        Message::system("Be brief."),
        Message::user("Weather in Paris and Tokyo?"),
        assistant,
        Message::tool("call_0", "{\"temp\": 21}"),
        Message::tool("call_1", "{\"temp\": 18}"),
        Message::assistant("Paris 21°C, Tokyo 18°C."),
        Message::user("Thanks!"),
    ]
}

/// Assistant history with tool calls, then tool results.
/// * LFM2.5-8B-A1B renders `tool_calls` itself after the content:
///   `Checking.<|tool_call_start|>[get_weather(location='Paris'), …]<|tool_call_end|>` (its
///   `format_arg_value` quotes strings with `'`); tool turns are `<|im_start|>tool\n{content}`.
/// * LFM2.5-Instruct and LFM2-8B-A1B only print `content`, so Hearth folds the calls into it as
///   the model writes them: `<|tool_call_start|>[get_weather(location="Paris"), …]<|tool_call_end|>`
///   followed by the content. The expected text equals HF's rendering of a message whose content
///   is that folded string. LFM2-8B-A1B wraps tool results in `<|tool_response_start|>` /
///   `<|tool_response_end|>`.
#[test]
fn tool_call_history() {
    let a = Message::assistant("Checking.").with_tool_calls(calls());
    assert_eq!(
        render(&lfm25moe(), &roundtrip(a.clone()), &[weather()]),
        LFM25MOE_ROUNDTRIP
    );
    assert_eq!(
        render(&dense(), &roundtrip(a.clone()), &[weather()]),
        DENSE_ROUNDTRIP
    );
    assert_eq!(
        render(&lfm2(), &roundtrip(a.clone()), &[weather()]),
        LFM2_ROUNDTRIP
    );
    // Folding into content is exactly the HF rendering of the pre-folded content.
    let folded = Message::assistant(
        "<|tool_call_start|>[get_weather(location=\"Paris\"), get_weather(location=\"Tokyo\", unit=\"celsius\")]<|tool_call_end|>Checking.",
    );
    assert_eq!(
        render(&dense(), &roundtrip(folded), &[weather()]),
        DENSE_ROUNDTRIP
    );
    // JSON form on request.
    let opts = RenderOptions {
        json_tool_calls: true,
        ..Default::default()
    };
    let out = dense().render(&roundtrip(a), &[weather()], &opts).unwrap();
    assert!(out.contains("<|im_start|>assistant\n<|tool_call_start|>[{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}, {\"name\": \"get_weather\", \"arguments\": {\"location\": \"Tokyo\", \"unit\": \"celsius\"}}]<|tool_call_end|>Checking.<|im_end|>"), "{out}");
}

/// LFM2.5-8B-A1B's `format_arg_value`: strings `'…'` verbatim (no escaping), mappings via
/// `tojson`, everything else via `| string` = Python `str()`: `True`, `None`, `0.5`, `1e+20`,
/// `['a', 1, True, None]`.
#[test]
fn tool_call_argument_literals() {
    let call = ToolCall {
        id: "call_0".into(),
        name: "f".into(),
        arguments: json!({"flag": true, "none": null, "ratio": 0.5, "big": 1e20, "n": -3,
            "items": ["a", 1, true, null], "nested": {"k": "v", "n": [1, 2.0]},
            "text": "it's \"q\" ü"}),
    };
    let msgs = [
        Message::user("go"),
        Message::assistant("").with_tool_calls(vec![call.clone()]),
    ];
    let opts = RenderOptions {
        add_generation_prompt: false,
        ..Default::default()
    };
    assert_eq!(
        lfm25moe().render(&msgs, &[], &opts).unwrap(),
        LFM25MOE_LITERALS
    );
    // Folded (Pythonic, double quotes, JSON escapes, True/None, JSON lists/dicts).
    let out = dense().render(&msgs, &[], &opts).unwrap();
    assert!(out.ends_with("<|im_start|>assistant\n<|tool_call_start|>[f(flag=True, none=None, ratio=0.5, big=1e+20, n=-3, items=[\"a\", 1, true, null], nested={\"k\": \"v\", \"n\": [1, 2.0]}, text=\"it's \\\"q\\\" ü\")]<|tool_call_end|><|im_end|>\n"), "{out}");
    // The folded form parses back to the same call.
    let inner = out
        .split("<|tool_call_start|>")
        .nth(1)
        .unwrap()
        .split("<|tool_call_end|>")
        .next()
        .unwrap();
    assert_eq!(hearth::chat::parse_tool_calls(inner).unwrap(), vec![call]);
}

/// Past thinking. LFM2.5-Instruct: for assistant turns other than the LAST ASSISTANT turn,
/// `content.split("</think>")[-1] | trim` unless `keep_past_thinking`. LFM2.5-8B-A1B: the
/// `thinking` field is printed as `<think>…</think>` only for turns after the last user message
/// (or all with `preserve_thinking`), and `</think>` in older contents is stripped the same way.
#[test]
fn past_thinking() {
    let no_gen = |keep| RenderOptions {
        add_generation_prompt: false,
        keep_past_thinking: keep,
        ..Default::default()
    };
    let gen_ = |keep| RenderOptions {
        keep_past_thinking: keep,
        ..Default::default()
    };
    // Thinking inside content (HF-identical inputs).
    let th = [
        Message::user("Hi"),
        Message::assistant("<think>greet</think>Hello!"),
        Message::user("2+2?"),
        Message::assistant("<think>\nadd\n</think>\n\n4"),
    ];
    assert_eq!(
        dense().render(&th, &[], &no_gen(false)).unwrap(),
        DENSE_THINK_FALSE
    );
    assert_eq!(
        dense().render(&th, &[], &no_gen(true)).unwrap(),
        DENSE_THINK_TRUE
    );
    let th2 = [
        Message::user("Hi"),
        Message::assistant("<think>greet</think>Hello!"),
        Message::assistant("<think>more</think> Again."),
        Message::user("2+2?"),
    ];
    assert_eq!(
        dense().render(&th2, &[], &gen_(false)).unwrap(),
        DENSE_THINK2_FALSE
    );
    assert_eq!(
        dense().render(&th2, &[], &gen_(true)).unwrap(),
        DENSE_THINK2_TRUE
    );
    let m2 = [
        Message::user("Hi"),
        Message::assistant("<think>old</think> Hello!"),
        Message::user("2+2?"),
    ];
    assert_eq!(
        lfm25moe().render(&m2, &[], &gen_(false)).unwrap(),
        LFM25MOE_THINK2_FALSE
    );
    assert_eq!(
        lfm25moe().render(&m2, &[], &gen_(true)).unwrap(),
        LFM25MOE_THINK2_TRUE
    );

    // Thinking as a separate field: native for LFM2.5-8B-A1B, folded for the others; both give
    // the same text as the in-content form above.
    let mth = [
        Message::user("Hi"),
        Message::assistant("Hello!").with_thinking("greet"),
        Message::user("2+2?"),
        Message::assistant("\n\n4").with_thinking("\nadd\n"),
    ];
    assert_eq!(
        lfm25moe().render(&mth, &[], &no_gen(false)).unwrap(),
        LFM25MOE_THINK_FALSE
    );
    assert_eq!(
        lfm25moe().render(&mth, &[], &no_gen(true)).unwrap(),
        LFM25MOE_THINK_TRUE
    );
    assert_eq!(
        dense().render(&mth, &[], &no_gen(false)).unwrap(),
        DENSE_THINK_FALSE
    );
    assert_eq!(
        dense().render(&mth, &[], &no_gen(true)).unwrap(),
        DENSE_THINK_TRUE
    );
    // LFM2-8B-A1B has no stripping of its own: only the current turn's thinking is folded in.
    let out = lfm2().render(&mth, &[], &no_gen(false)).unwrap();
    assert_eq!(
        out,
        "<|startoftext|><|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nadd\n</think>\n\n4<|im_end|>\n"
    );
}

#[test]
fn python_semantics_of_filters_and_methods() {
    let data = json!({"list": ["x", 2, true, null, 1.5], "f": 0.1,
        "map": {"zeta": 1, "alpha": "it's", "e": 1e-7},
        "s": "tab\there \"quoted\" \\ é 🚀 \u{1} \u{7f}"});
    let t = ChatTemplate::new(CUSTOM_TEMPLATE, "", "").unwrap();
    let opts = RenderOptions {
        date: Some("2026-11-22".into()),
        ..Default::default()
    };
    let out = t
        .render(&[Message::user("hé")], &[Tool::new("t", "", data)], &opts)
        .unwrap();
    assert_eq!(out, CUSTOM_EXPECTED);
}

#[test]
fn errors_are_reported() {
    assert!(matches!(
        ChatTemplate::new("{% if %}", "", ""),
        Err(hearth::Error::Template(_))
    ));
    let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
    let e = t.render(&[Message::user("x")], &[], &RenderOptions::default());
    match e {
        Err(hearth::Error::Template(m)) => assert!(m.contains("no system role"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The LFM2 templates index messages[0]: an empty conversation is an error, not a panic.
    assert!(dense().render(&[], &[], &RenderOptions::default()).is_err());
    // strftime_now without a fixed date: today's date, well-formed.
    let t = ChatTemplate::new("{{ strftime_now('%Y-%m-%d') }}", "", "").unwrap();
    let today = t.render(&[], &[], &RenderOptions::default()).unwrap();
    assert_eq!(today.len(), 10, "{today}");
    let bad = RenderOptions {
        date: Some("22/11/2026".into()),
        ..Default::default()
    };
    assert!(t.render(&[], &[], &bad).is_err());
}

#[test]
fn message_serde_is_openai_shaped() {
    let m: Message = serde_json::from_value(json!({"role": "assistant", "content": null,
        "reasoning_content": "r", "tool_calls": [{"id": "call_0", "name": "f", "arguments": {"a": 1}}]}))
    .unwrap();
    assert_eq!(m.content, "");
    assert_eq!(m.thinking.as_deref(), Some("r"));
    assert_eq!(m.tool_calls[0].arguments, json!({"a": 1}));
    let v = serde_json::to_value(Message::tool("call_0", "42")).unwrap();
    assert_eq!(
        v,
        json!({"role": "tool", "content": "42", "tool_call_id": "call_0"})
    );
}

const DENSE_TOOLS_SYS: &str = r##"<|startoftext|><|im_start|>system
You are a helpful assistant.
List of tools: [{"name": "get_weather", "description": "Get the current weather — in °C by default.", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}, {"name": "search", "description": "Search the web.\nReturns snippets.", "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "max_results": {"type": "integer", "default": 5, "minimum": 1.5, "multipleOf": 1e-05}}}}]<|im_end|>
<|im_start|>user
What's the weather in Paris?<|im_end|>
<|im_start|>assistant
"##;

const DENSE_TOOLS_NOSYS: &str = r##"<|startoftext|><|im_start|>system
List of tools: [{"name": "get_weather", "description": "Get the current weather — in °C by default.", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}]<|im_end|>
<|im_start|>user
Weather?<|im_end|>
<|im_start|>assistant
"##;

const LFM2_TOOLS_SYS: &str = r##"<|startoftext|><|im_start|>system
You are a helpful assistant.
List of tools: <|tool_list_start|>[{"name": "get_weather", "description": "Get the current weather — in °C by default.", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}, {"name": "search", "description": "Search the web.\nReturns snippets.", "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "max_results": {"type": "integer", "default": 5, "minimum": 1.5, "multipleOf": 1e-05}}}}]<|tool_list_end|><|im_end|>
<|im_start|>user
What's the weather in Paris?<|im_end|>
<|im_start|>assistant
"##;

const LFM2_TOOLS_NOSYS: &str = r##"<|startoftext|><|im_start|>system
List of tools: <|tool_list_start|>[{"name": "get_weather", "description": "Get the current weather — in °C by default.", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}]<|tool_list_end|><|im_end|>
<|im_start|>user
Weather?<|im_end|>
<|im_start|>assistant
"##;

const LFM25MOE_TOOLS_SYS: &str = r##"<|startoftext|><|im_start|>system
You are a helpful assistant.
List of tools: [{"name": "get_weather", "description": "Get the current weather — in °C by default.", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}, {"name": "search", "description": "Search the web.\nReturns snippets.", "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "max_results": {"type": "integer", "default": 5, "minimum": 1.5, "multipleOf": 1e-05}}}}]<|im_end|>
<|im_start|>user
What's the weather in Paris?<|im_end|>
<|im_start|>assistant
"##;

const LFM25MOE_TOOLS_NOSYS: &str = r##"<|startoftext|><|im_start|>system
List of tools: [{"name": "get_weather", "description": "Get the current weather — in °C by default.", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}]<|im_end|>
<|im_start|>user
Weather?<|im_end|>
<|im_start|>assistant
"##;

const DENSE_ROUNDTRIP: &str = r##"<|startoftext|><|im_start|>system
Be brief.
List of tools: [{"name": "get_weather", "description": "Get the current weather — in °C by default.", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}]<|im_end|>
<|im_start|>user
Weather in Paris and Tokyo?<|im_end|>
<|im_start|>assistant
<|tool_call_start|>[get_weather(location="Paris"), get_weather(location="Tokyo", unit="celsius")]<|tool_call_end|>Checking.<|im_end|>
<|im_start|>tool
{"temp": 21}<|im_end|>
<|im_start|>tool
{"temp": 18}<|im_end|>
<|im_start|>assistant
Paris 21°C, Tokyo 18°C.<|im_end|>
<|im_start|>user
Thanks!<|im_end|>
<|im_start|>assistant
"##;

const LFM2_ROUNDTRIP: &str = r##"<|startoftext|><|im_start|>system
Be brief.
List of tools: <|tool_list_start|>[{"name": "get_weather", "description": "Get the current weather — in °C by default.", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}]<|tool_list_end|><|im_end|>
<|im_start|>user
Weather in Paris and Tokyo?<|im_end|>
<|im_start|>assistant
<|tool_call_start|>[get_weather(location="Paris"), get_weather(location="Tokyo", unit="celsius")]<|tool_call_end|>Checking.<|im_end|>
<|im_start|>tool
<|tool_response_start|>{"temp": 21}<|tool_response_end|><|im_end|>
<|im_start|>tool
<|tool_response_start|>{"temp": 18}<|tool_response_end|><|im_end|>
<|im_start|>assistant
Paris 21°C, Tokyo 18°C.<|im_end|>
<|im_start|>user
Thanks!<|im_end|>
<|im_start|>assistant
"##;

const LFM25MOE_ROUNDTRIP: &str = r##"<|startoftext|><|im_start|>system
Be brief.
List of tools: [{"name": "get_weather", "description": "Get the current weather — in °C by default.", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}]<|im_end|>
<|im_start|>user
Weather in Paris and Tokyo?<|im_end|>
<|im_start|>assistant
Checking.<|tool_call_start|>[get_weather(location='Paris'), get_weather(location='Tokyo', unit='celsius')]<|tool_call_end|><|im_end|>
<|im_start|>tool
{"temp": 21}<|im_end|>
<|im_start|>tool
{"temp": 18}<|im_end|>
<|im_start|>assistant
Paris 21°C, Tokyo 18°C.<|im_end|>
<|im_start|>user
Thanks!<|im_end|>
<|im_start|>assistant
"##;

const DENSE_THINK_FALSE: &str = r##"<|startoftext|><|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
Hello!<|im_end|>
<|im_start|>user
2+2?<|im_end|>
<|im_start|>assistant
<think>
add
</think>

4<|im_end|>
"##;

const DENSE_THINK2_FALSE: &str = r##"<|startoftext|><|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
Hello!<|im_end|>
<|im_start|>assistant
<think>more</think> Again.<|im_end|>
<|im_start|>user
2+2?<|im_end|>
<|im_start|>assistant
"##;

const LFM25MOE_THINK_FALSE: &str = r##"<|startoftext|><|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
Hello!<|im_end|>
<|im_start|>user
2+2?<|im_end|>
<|im_start|>assistant
<think>
add
</think>

4<|im_end|>
"##;

const LFM25MOE_THINK2_FALSE: &str = r##"<|startoftext|><|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
Hello!<|im_end|>
<|im_start|>user
2+2?<|im_end|>
<|im_start|>assistant
"##;

const DENSE_THINK_TRUE: &str = r##"<|startoftext|><|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
<think>greet</think>Hello!<|im_end|>
<|im_start|>user
2+2?<|im_end|>
<|im_start|>assistant
<think>
add
</think>

4<|im_end|>
"##;

const DENSE_THINK2_TRUE: &str = r##"<|startoftext|><|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
<think>greet</think>Hello!<|im_end|>
<|im_start|>assistant
<think>more</think> Again.<|im_end|>
<|im_start|>user
2+2?<|im_end|>
<|im_start|>assistant
"##;

const LFM25MOE_THINK_TRUE: &str = r##"<|startoftext|><|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
<think>greet</think>Hello!<|im_end|>
<|im_start|>user
2+2?<|im_end|>
<|im_start|>assistant
<think>
add
</think>

4<|im_end|>
"##;

const LFM25MOE_THINK2_TRUE: &str = r##"<|startoftext|><|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
<think>old</think> Hello!<|im_end|>
<|im_start|>user
2+2?<|im_end|>
<|im_start|>assistant
"##;

const LFM25MOE_LITERALS: &str = r##"<|startoftext|><|im_start|>user
go<|im_end|>
<|im_start|>assistant
<|tool_call_start|>[f(flag=True, none=None, ratio=0.5, big=1e+20, n=-3, items=['a', 1, True, None], nested={"k": "v", "n": [1, 2.0]}, text='it's "q" ü')]<|tool_call_end|><|im_end|>
"##;

const LFM25MOE_EMPTY_SYS: &str = r##"<|startoftext|><|im_start|>system
List of tools: [{"name": "search", "description": "Search the web.\nReturns snippets.", "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "max_results": {"type": "integer", "default": 5, "minimum": 1.5, "multipleOf": 1e-05}}}}]<|im_end|>
<|im_start|>user
x<|im_end|>
<|im_start|>assistant
"##;

const LFM2_EMPTY_SYS: &str = r##"<|startoftext|><|im_start|>system
List of tools: <|tool_list_start|>[{"name": "search", "description": "Search the web.\nReturns snippets.", "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "max_results": {"type": "integer", "default": 5, "minimum": 1.5, "multipleOf": 1e-05}}}}]<|tool_list_end|><|im_end|>
<|im_start|>user
x<|im_end|>
<|im_start|>assistant
"##;
const CUSTOM_TEMPLATE: &str = "{%- set d = tools[0].parameters -%}\n{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ d | tojson(sort_keys=true) }}|{{ d.list | string }}|{{ d.f | string }}|{{ d.map | string }}|{{ \"  a,b \".strip().split(\",\") | tojson }}|{{ \"abc\".startswith(\"ab\") }}|{{ d.f }}|{{ d.list }}|{{ none }}|\n{% for x in d.list %}\n    {% if loop.index0 == 1 %}{% continue %}{% endif %}\n    {% if loop.index0 == 3 %}{% break %}{% endif %}\n{{ x }};\n{% endfor %}\n|{% for k, v in d.map.items() %}{{ k }}={{ v }},{% endfor %}|{{ strftime_now(\"%Y-%m-%d %A %d %B\") }}|{% generation %}G{% endgeneration %}|{{ messages[0].get(\"missing\", \"dflt\") }}|{{ messages[0].content.upper() }}|{{ d.s | tojson }}|{{ d.s | tojson(ensure_ascii=true) }}|{{ (d.list + [9]) | length }}|{{ messages[-1].role }}";
const CUSTOM_EXPECTED: &str = "{\"list\": [\"x\", 2, true, null, 1.5], \"f\": 0.1, \"map\": {\"zeta\": 1, \"alpha\": \"it's\", \"e\": 1e-07}, \"s\": \"tab\\there \\\"quoted\\\" \\\\ é 🚀 \\u0001 \u{7f}\"}|{\n  \"list\": [\n    \"x\",\n    2,\n    true,\n    null,\n    1.5\n  ],\n  \"f\": 0.1,\n  \"map\": {\n    \"zeta\": 1,\n    \"alpha\": \"it's\",\n    \"e\": 1e-07\n  },\n  \"s\": \"tab\\there \\\"quoted\\\" \\\\ é 🚀 \\u0001 \u{7f}\"\n}|{\"f\": 0.1, \"list\": [\"x\", 2, true, null, 1.5], \"map\": {\"alpha\": \"it's\", \"e\": 1e-07, \"zeta\": 1}, \"s\": \"tab\\there \\\"quoted\\\" \\\\ é 🚀 \\u0001 \u{7f}\"}|['x', 2, True, None, 1.5]|0.1|{'zeta': 1, 'alpha': \"it's\", 'e': 1e-07}|[\"a\", \"b\"]|True|0.1|['x', 2, True, None, 1.5]|None|\nx;\nTrue;\n|zeta=1,alpha=it's,e=1e-07,|2026-11-22 Sunday 22 November|G|dflt|HÉ|\"tab\\there \\\"quoted\\\" \\\\ é 🚀 \\u0001 \u{7f}\"|\"tab\\there \\\"quoted\\\" \\\\ \\u00e9 \\ud83d\\ude80 \\u0001 \\u007f\"|6|user";
