//! Chat-template rendering: the model's own Jinja template, rendered like Hugging Face
//! `apply_chat_template` does (same whitespace rules, same `tojson`, Python string methods).

use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, ErrorKind, State, Value as JValue};

use super::budget::{self, bounded, check_printable};
use super::json::{JsonStyle, json_to_value, py_number, write_json};
use super::tools::{format_tool_calls_json, format_tool_calls_pythonic};
use super::{Message, Role, Tool};
use crate::gguf::GgufFile;
use crate::{Error, Result};

/// The template used by [`ChatTemplate::from_gguf`] when a file carries no
/// `tokenizer.chat_template`: LFM2.5-Instruct's (ChatML frame, `List of tools: [...]` in the
/// system prompt, past-thinking stripping).
pub const BUILTIN_LFM2_TEMPLATE: &str = include_str!("lfm2_builtin.jinja");

const TEMPLATE_NAME: &str = "chat";
const DATE_VAR: &str = "__hearth_date";

/// Which output/tool conventions a template follows, detected from its source like llama.cpp
/// does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateFlavor {
    /// Original LFM2 (350M…2.6B, LFM2-8B-A1B): the tool list is wrapped in
    /// `<|tool_list_start|>`/`<|tool_list_end|>`; the template contains those markers.
    Lfm2,
    /// LFM2.5 and anything else: `List of tools: [...]` without markers.
    Lfm25,
}

/// Options of one [`ChatTemplate::render`] call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// Append the assistant header (`<|im_start|>assistant\n`) so the model answers next.
    /// Default `true`.
    pub add_generation_prompt: bool,
    /// Keep the thinking of earlier assistant turns (template variables `keep_past_thinking`
    /// and `preserve_thinking`). Default `false`: the templates strip it.
    pub keep_past_thinking: bool,
    /// Date for the templates' `strftime_now`, as `YYYY-MM-DD`; `None` = the current UTC date
    /// and time. Set it to make renders reproducible.
    pub date: Option<String>,
    /// When a template cannot render `tool_calls` of assistant messages itself (it only prints
    /// `content`), the calls are folded into the content; this picks the JSON form
    /// `[{"name": …, "arguments": …}]` instead of the default Pythonic `[f(a=1)]`. Use it when
    /// the system prompt asked the model to "Output function calls as JSON". Default `false`.
    pub json_tool_calls: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            add_generation_prompt: true,
            keep_past_thinking: false,
            date: None,
            json_tool_calls: false,
        }
    }
}

/// A compiled chat template. `Send + Sync`, render takes `&self`: share one per model.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    /// The source as compiled (generation tags rewritten); compiled with the budget checks on
    /// each render (see [`budget`]), never registered in `env`, so `include` cannot reach an
    /// unchecked copy.
    source: std::sync::Arc<str>,
    syntax: minijinja::syntax::SyntaxConfig,
    bos_token: String,
    eos_token: String,
    flavor: TemplateFlavor,
    renders_tool_calls: bool,
    renders_thinking: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("flavor", &self.flavor)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

/// Template instructions one render may execute. Real chat templates spend a few hundred per
/// message, so this covers conversations far beyond any context length, while a hostile
/// template (loops nested thousands deep) stops within about a second instead of hanging.
const RENDER_FUEL: u64 = 50_000_000;

fn template_error(e: minijinja::Error) -> Error {
    if e.kind() == ErrorKind::OutOfFuel {
        return Error::Template(format!(
            "the chat template did more than {RENDER_FUEL} steps of work on one render \
             (a hostile or broken template); it was stopped"
        ));
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    Error::Template(msg)
}

impl ChatTemplate {
    /// Compiles a Jinja chat template (HF dialect: `trim_blocks` and `lstrip_blocks` on, loop
    /// controls, `{% generation %}` blocks, Python string/dict methods, HF's `tojson`,
    /// `raise_exception`, `strftime_now`).
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_fuel(Some(RENDER_FUEL));
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(template_error)?;
        env.set_syntax(syntax.clone());
        budget::register(&mut env);
        env.set_unknown_method_callback(py_methods);
        env.add_filter("trim", trim_filter);
        // Jinja2 prints values with Python's str(): True, None, 1.0, ['a'].
        // Every write of a render (raw text included, see budget) passes here and is counted.
        env.set_formatter(|out, state, value| match value.kind() {
            ValueKind::String | ValueKind::Undefined => {
                budget::count_output(value.as_str().map_or(0, str::len))?;
                minijinja::escape_formatter(out, state, value)
            }
            _ => {
                check_printable(value)?;
                let text = py_str(value, false);
                budget::count_output(text.len())?;
                out.write_str(&text).map_err(|_| {
                    minijinja::Error::new(ErrorKind::WriteFailure, "failed to write output")
                })
            }
        });
        env.add_filter("tojson", tojson_filter);
        env.add_filter("string", string_filter);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        let compiled: std::sync::Arc<str> = rewrite_generation_tags(source).into();
        budget::compile(TEMPLATE_NAME, &compiled, syntax.clone()).map_err(template_error)?;
        let flavor = if source.contains("<|tool_list_start|>") {
            TemplateFlavor::Lfm2
        } else {
            TemplateFlavor::Lfm25
        };
        let renders_thinking = [
            ".thinking",
            "[\"thinking\"]",
            "['thinking']",
            "reasoning_content",
        ]
        .iter()
        .any(|p| source.contains(p));
        Ok(ChatTemplate {
            env,
            source: compiled,
            syntax,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            flavor,
            renders_tool_calls: source.contains("tool_calls"),
            renders_thinking,
        })
    }

    /// The template of a GGUF file (`tokenizer.chat_template`), with its BOS/EOS token texts
    /// taken from `tokenizer.ggml.tokens`. Falls back to [`BUILTIN_LFM2_TEMPLATE`] only when the
    /// file has no template.
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let source = match f.get("tokenizer.chat_template") {
            None => BUILTIN_LFM2_TEMPLATE,
            Some(_) => f.get_str("tokenizer.chat_template")?,
        };
        let token = |key: &str, default: &str| -> String {
            let id = f.get(key).and_then(|v| v.as_u64());
            let tokens = f.get("tokenizer.ggml.tokens").and_then(|v| v.as_array());
            match (id, tokens) {
                (Some(id), Some(toks)) => toks
                    .get(id as usize)
                    .and_then(|t| t.as_str())
                    .unwrap_or(default)
                    .to_string(),
                _ => default.to_string(),
            }
        };
        let bos = token("tokenizer.ggml.bos_token_id", "<|startoftext|>");
        let eos = token("tokenizer.ggml.eos_token_id", "<|im_end|>");
        Self::new(source, &bos, &eos)
    }

    /// Tool-list convention of the template (see [`TemplateFlavor`]).
    pub fn flavor(&self) -> TemplateFlavor {
        self.flavor
    }

    /// The BOS text the template emits first (`<|startoftext|>`). The tokenizer must not add
    /// a second BOS: tokenize the rendered text without adding BOS (or strip this prefix).
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The EOS text (`<|im_end|>`), which ends every turn.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders a conversation to prompt text, exactly as HF `apply_chat_template` would with
    /// the same messages (`messages` as OpenAI-style dicts, `tools` as
    /// `{"name", "description", "parameters"}` dicts).
    ///
    /// Assistant `thinking` and `tool_calls` are passed to the template as `thinking` /
    /// `reasoning_content` and OpenAI-style `tool_calls`
    /// (`{"id", "type": "function", "function": {"name", "arguments": {...}}}`). Templates that
    /// do not reference them (LFM2, LFM2.5-Instruct) would silently drop them, so for those the
    /// content is extended instead: `<think>{thinking}</think>` (only for turns after the last
    /// user message, or all turns with `keep_past_thinking`), then
    /// `<|tool_call_start|>[calls]<|tool_call_end|>`, then the content.
    pub fn render(
        &self,
        messages: &[Message],
        tools: &[Tool],
        opts: &RenderOptions,
    ) -> Result<String> {
        let last_user = messages.iter().rposition(|m| m.role == Role::User);
        let msgs: Vec<JValue> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let after_last_user = last_user.is_none_or(|u| i > u);
                self.message_value(m, opts, opts.keep_past_thinking || after_last_user)
            })
            .collect();
        let tools_v = if tools.is_empty() {
            JValue::from(())
        } else {
            tools.iter().map(tool_value).collect::<JValue>()
        };
        let ctx = JValue::from_pairs([
            ("messages", JValue::from(msgs)),
            ("tools", tools_v),
            ("add_generation_prompt", opts.add_generation_prompt.into()),
            ("bos_token", self.bos_token.as_str().into()),
            ("eos_token", self.eos_token.as_str().into()),
            ("keep_past_thinking", opts.keep_past_thinking.into()),
            ("preserve_thinking", opts.keep_past_thinking.into()),
            (
                DATE_VAR,
                opts.date.clone().map_or(JValue::from(()), JValue::from),
            ),
        ]);
        let checked = budget::compile(TEMPLATE_NAME, &self.source, self.syntax.clone())
            .map_err(template_error)?;
        budget::render(&self.env, &checked, ctx).map_err(template_error)
    }

    fn message_value(&self, m: &Message, opts: &RenderOptions, fold_thinking: bool) -> JValue {
        let role = match m.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        };
        let mut content = String::new();
        if !self.renders_thinking && fold_thinking {
            if let Some(t) = &m.thinking {
                content.push_str("<think>");
                content.push_str(t);
                content.push_str("</think>");
            }
        }
        if !self.renders_tool_calls && !m.tool_calls.is_empty() {
            content.push_str("<|tool_call_start|>");
            if opts.json_tool_calls {
                content.push_str(&format_tool_calls_json(&m.tool_calls));
            } else {
                content.push_str(&format_tool_calls_pythonic(&m.tool_calls));
            }
            content.push_str("<|tool_call_end|>");
        }
        content.push_str(&m.content);
        let mut pairs: Vec<(&str, JValue)> =
            vec![("role", role.into()), ("content", content.into())];
        if self.renders_thinking {
            if let Some(t) = &m.thinking {
                pairs.push(("thinking", t.as_str().into()));
                pairs.push(("reasoning_content", t.as_str().into()));
            }
        }
        if self.renders_tool_calls && !m.tool_calls.is_empty() {
            let calls: Vec<JValue> = m
                .tool_calls
                .iter()
                .map(|c| {
                    JValue::from_pairs([
                        ("id", JValue::from(c.id.as_str())),
                        ("type", JValue::from("function")),
                        (
                            "function",
                            JValue::from_pairs([
                                ("name", JValue::from(c.name.as_str())),
                                ("arguments", json_to_value(&c.arguments)),
                            ]),
                        ),
                    ])
                })
                .collect();
            pairs.push(("tool_calls", JValue::from(calls)));
        }
        if let Some(id) = &m.tool_call_id {
            pairs.push(("tool_call_id", id.as_str().into()));
        }
        if let Some(n) = &m.name {
            pairs.push(("name", n.as_str().into()));
        }
        JValue::from_pairs(pairs)
    }
}

fn tool_value(t: &Tool) -> JValue {
    JValue::from_pairs([
        ("name", JValue::from(t.name.as_str())),
        ("description", JValue::from(t.description.as_str())),
        ("parameters", json_to_value(&t.parameters)),
    ])
}

// ---------------------------------------------------------------------------------------------
// `{% generation %}` (HF's AssistantTracker extension) -> a transparent `{% if true %}` block.

fn rewrite_generation_tags(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find("{%") {
        let Some(end_rel) = rest[start + 2..].find("%}") else {
            break;
        };
        let end = start + 2 + end_rel; // index of "%}"
        let inner = &rest[start + 2..end];
        let lmod = if inner.starts_with(['-', '+']) {
            &inner[..1]
        } else {
            ""
        };
        let rmod = if inner.len() > lmod.len() && inner.ends_with(['-', '+']) {
            &inner[inner.len() - 1..]
        } else {
            ""
        };
        let word = inner[lmod.len()..inner.len() - rmod.len()].trim();
        let replacement = match word {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        out.push_str(&rest[..start]);
        match replacement {
            Some(r) => {
                out.push_str("{%");
                out.push_str(lmod);
                out.push(' ');
                out.push_str(r);
                out.push(' ');
                out.push_str(rmod);
                out.push_str("%}");
            }
            None => out.push_str(&rest[start..end + 2]),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// Filters and functions with Python (HF) semantics.

/// HF's `tojson`: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`; minijinja's own differs (compact separators, HTML escaping).
fn tojson_filter(value: &JValue, kwargs: Kwargs) -> std::result::Result<JValue, minijinja::Error> {
    let indent: Option<JValue> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match v.as_str() {
            Some(s) => Some(s.chars().count()),
            None => Some(v.as_usize().unwrap_or(0)),
        },
    };
    let style = JsonStyle {
        indent,
        sort_keys: sort_keys.unwrap_or(false),
        ensure_ascii: ensure_ascii.unwrap_or(false),
    };
    check_printable(value)?;
    let mut out = String::new();
    write_json(&mut out, value, &style, 0)?;
    bounded(JValue::from(out))
}

/// Jinja2's `string` filter is Python `str()`: `True`, `None`, `1.0`, `['a', 1]`, `{'k': 'v'}`.
fn string_filter(value: &JValue) -> std::result::Result<JValue, minijinja::Error> {
    match value.kind() {
        ValueKind::String => Ok(value.clone()),
        _ => {
            check_printable(value)?;
            Ok(JValue::from(py_str(value, false)))
        }
    }
}

fn py_str(v: &JValue, nested: bool) -> String {
    match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::None => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number => py_number(v, false),
        ValueKind::String => {
            let s = v.as_str().unwrap_or("");
            if nested {
                py_repr_str(s)
            } else {
                s.to_string()
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = v
                .try_iter()
                .map(|it| it.map(|x| py_str(&x, true)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = v
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        let val = v.get_item(&k).unwrap_or_default();
                        format!("{}: {}", py_str(&k, true), py_str(&val, true))
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => v.to_string(),
    }
}

/// Python `repr(str)`.
fn py_repr_str(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Python's `str.isspace` (Rust's whitespace plus the ASCII separators U+001C..U+001F).
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python methods on values (`str.split`, `dict.items`, …) from minijinja-contrib, with
/// `strip`/`lstrip`/`rstrip` using Python's whitespace set.
fn py_methods(
    state: &mut State,
    value: &JValue,
    method: &str,
    args: &[JValue],
) -> std::result::Result<JValue, minijinja::Error> {
    if let (Some(s), [], "strip" | "lstrip" | "rstrip") = (value.as_str(), args, method) {
        return Ok(JValue::from(match method {
            "strip" => s.trim_matches(py_isspace),
            "lstrip" => s.trim_start_matches(py_isspace),
            _ => s.trim_end_matches(py_isspace),
        }));
    }
    budget::check_method(value, method, args)?;
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
        .and_then(bounded)
}

/// Jinja2's `trim` filter: `str(value).strip(chars)`.
fn trim_filter(
    value: &JValue,
    chars: Option<String>,
) -> std::result::Result<JValue, minijinja::Error> {
    let s = match value.as_str() {
        Some(s) => s.to_string(),
        None => {
            check_printable(value)?;
            py_str(value, false)
        }
    };
    Ok(JValue::from(match chars {
        Some(cs) => s.trim_matches(|c| cs.contains(c)).to_string(),
        None => s.trim_matches(py_isspace).to_string(),
    }))
}

fn raise_exception(msg: String) -> std::result::Result<JValue, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

/// `strftime_now(format)`: the date from [`RenderOptions::date`] (time 00:00:00) or the
/// current UTC time. Supports `%Y %y %m %d %e %H %I %M %S %p %j %B %b %A %a %F %%`.
fn strftime_now(state: &State, fmt: String) -> std::result::Result<JValue, minijinja::Error> {
    let fixed = state
        .lookup(DATE_VAR)
        .and_then(|v| v.as_str().map(str::to_string));
    let (days, secs) = match fixed {
        Some(d) => (
            parse_date(&d).ok_or_else(|| {
                minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("date '{d}' is not YYYY-MM-DD"),
                )
            })?,
            0,
        ),
        None => {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            (t.div_euclid(86_400), t.rem_euclid(86_400))
        }
    };
    Ok(JValue::from(strftime(&fmt, days, secs)))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn strftime(fmt: &str, days: i64, secs: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const WEEKDAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let (y, m, d) = civil_from_days(days);
    let wd = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday (index 3)
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let yday = days - parse_date(&format!("{y}-01-01")).unwrap_or(days) + 1;
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{y:04}")),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('I') => out.push_str(&format!("{:02}", (hh + 11) % 12 + 1)),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('p') => out.push_str(if hh < 12 { "AM" } else { "PM" }),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('B') => out.push_str(MONTHS[m as usize - 1]),
            Some('b') => out.push_str(&MONTHS[m as usize - 1][..3]),
            Some('A') => out.push_str(WEEKDAYS[wd]),
            Some('a') => out.push_str(&WEEKDAYS[wd][..3]),
            Some('F') => out.push_str(&format!("{y:04}-{m:02}-{d:02}")),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::json::py_float;

    #[test]
    fn python_float_repr() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1234.5, "1234.5"),
            (-0.0001, "-0.0001"),
            (123456789012345.0, "123456789012345.0"),
            (2.5e300, "2.5e+300"),
        ] {
            assert_eq!(py_float(f, true), s);
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("99999999999999999-01-01"), None);
        assert_eq!(parse_date("2026-13-01"), None);
        let d = parse_date("2026-11-22").unwrap();
        assert_eq!(civil_from_days(d), (2026, 11, 22));
        assert_eq!(
            strftime("%Y-%m-%d %A %b %j %%", d, 0),
            "2026-11-22 Sunday Nov 326 %"
        );
        assert_eq!(
            strftime("%d %B %Y", parse_date("2024-02-29").unwrap(), 0),
            "29 February 2024"
        );
    }

    #[test]
    fn python_whitespace() {
        let t = ChatTemplate::new(
            "{{ messages[0].content | trim }}|{{ messages[0].content.strip() }}|{{ messages[0].content.rstrip() }}|{{ 'xxaxx' | trim('x') }}",
            "",
            "",
        )
        .unwrap();
        let out = t
            .render(
                &[Message::user("\u{1f} a\u{a0}\n\u{1c}")],
                &[],
                &RenderOptions::default(),
            )
            .unwrap();
        assert_eq!(out, "a|a|\u{1f} a|a");
    }

    #[test]
    fn generation_tags() {
        assert_eq!(
            rewrite_generation_tags("a{%- generation -%}b{% endgeneration %}c{{ x }}"),
            "a{%- if true -%}b{% endif %}c{{ x }}"
        );
    }
}
