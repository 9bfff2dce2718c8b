//! Tool-call parsing and formatting.
//!
//! LFM2 models call tools by writing `<|tool_call_start|>[f(a=1, b="x"), g()]<|tool_call_end|>`:
//! a Python list of calls with keyword arguments whose values are Python literals (JSON literals
//! are accepted too). When the system prompt asks for JSON, the same markers hold
//! `[{"name": ..., "arguments": {...}}]` or a single such object. [`parse_tool_calls`] accepts all
//! of these; it never panics and bounds its recursion depth.

use std::fmt;

use serde_json::{Map, Number, Value};

use super::ToolCall;

/// Nesting limit for lists, dicts and tuples inside a tool call (keeps the parser stack-safe).
pub const MAX_NESTING: usize = 64;

/// Why a tool-call body could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolParseError {
    /// Byte offset into the parsed body where parsing failed.
    pub offset: usize,
    /// Human-readable reason.
    pub reason: String,
}

impl fmt::Display for ToolParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.reason, self.offset)
    }
}

impl std::error::Error for ToolParseError {}

/// Parses the text between `<|tool_call_start|>` and `<|tool_call_end|>` (or a bare answer of the
/// form `[name(...), ...]`) into tool calls.
///
/// Accepted forms (surrounding whitespace ignored):
/// * Pythonic: `[f(a=1, b="x"), g()]`, or calls without the list brackets `f(a=1), g()`.
///   Values: strings in `'…'`, `"…"` or triple quotes with Python/JSON escapes; ints and floats
///   (sign, fraction, exponent); `True/False/None` and `true/false/null`; lists; tuples (as lists);
///   dicts with string (or number/bool, converted to string) keys. Only keyword arguments.
/// * JSON: `[{"name": "f", "arguments": {...}}, ...]` or a single such object; `parameters` is
///   accepted for `arguments`, an OpenAI `{"type": "function", "function": {...}}` wrapper is
///   unwrapped and `arguments` may be a JSON string holding the object.
///
/// Calls get the ids `call_0`, `call_1`, … in order; [`super::OutputParser`] renumbers them to be
/// unique over a whole generation. An empty list parses to no calls.
pub fn parse_tool_calls(body: &str) -> Result<Vec<ToolCall>, ToolParseError> {
    let mut p = Parser {
        s: body.as_bytes(),
        src: body,
        pos: 0,
    };
    let calls = p.top()?;
    Ok(calls
        .into_iter()
        .enumerate()
        .map(|(i, (name, arguments))| ToolCall {
            id: format!("call_{i}"),
            name,
            arguments: Value::Object(arguments),
        })
        .collect())
}

type Call = (String, Map<String, Value>);

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

/// Whether `s` is a name the pythonic syntax reads: a letter or `_`, then letters, digits,
/// `_`, `-` or `.`.
pub fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(|&c| is_ident_start(c)) && b[1..].iter().all(|&c| is_ident_continue(c))
}

impl<'a> Parser<'a> {
    fn err<T>(&self, reason: impl Into<String>) -> Result<T, ToolParseError> {
        Err(ToolParseError {
            offset: self.pos,
            reason: reason.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), ToolParseError> {
        if self.eat(b) {
            Ok(())
        } else {
            match self.peek() {
                Some(c) => self.err(format!(
                    "expected '{}', found '{}'",
                    b as char,
                    self.char_at_pos(c)
                )),
                None => self.err(format!("expected '{}', found end of input", b as char)),
            }
        }
    }

    fn char_at_pos(&self, b: u8) -> char {
        self.src[self.pos..].chars().next().unwrap_or(b as char)
    }

    fn top(&mut self) -> Result<Vec<Call>, ToolParseError> {
        self.ws();
        let calls = match self.peek() {
            None => return self.err("empty tool call"),
            Some(b'[') => {
                self.pos += 1;
                let mut calls = Vec::new();
                self.ws();
                if !self.eat(b']') {
                    loop {
                        self.ws();
                        calls.push(self.call_item()?);
                        self.ws();
                        if self.eat(b',') {
                            self.ws();
                            if self.eat(b']') {
                                break;
                            }
                            continue;
                        }
                        self.expect(b']')?;
                        break;
                    }
                }
                calls
            }
            Some(b'{') => vec![self.json_call()?],
            Some(b) if is_ident_start(b) => {
                let mut calls = vec![self.py_call()?];
                loop {
                    self.ws();
                    if !self.eat(b',') {
                        break;
                    }
                    self.ws();
                    if self.peek().is_none() {
                        break;
                    }
                    calls.push(self.py_call()?);
                }
                calls
            }
            Some(c) => {
                return self.err(format!(
                    "expected '[', '{{' or a function name, found '{}'",
                    self.char_at_pos(c)
                ));
            }
        };
        self.ws();
        if self.pos != self.s.len() {
            return self.err("unexpected text after the tool calls");
        }
        Ok(calls)
    }

    fn call_item(&mut self) -> Result<Call, ToolParseError> {
        match self.peek() {
            Some(b'{') => self.json_call(),
            Some(b) if is_ident_start(b) => self.py_call(),
            Some(c) => self.err(format!(
                "expected a function call, found '{}'",
                self.char_at_pos(c)
            )),
            None => self.err("expected a function call, found end of input"),
        }
    }

    fn ident(&mut self) -> Result<&'a str, ToolParseError> {
        let start = self.pos;
        match self.peek() {
            Some(b) if is_ident_start(b) => self.pos += 1,
            _ => return self.err("expected a name"),
        }
        while self.peek().is_some_and(is_ident_continue) {
            self.pos += 1;
        }
        Ok(&self.src[start..self.pos])
    }

    /// `name(kw=value, ...)`
    fn py_call(&mut self) -> Result<Call, ToolParseError> {
        let name = self.ident()?.to_string();
        self.ws();
        self.expect(b'(')?;
        let mut args = Map::new();
        self.ws();
        if self.eat(b')') {
            return Ok((name, args));
        }
        loop {
            self.ws();
            let start = self.pos;
            let key = match self.peek() {
                Some(b) if is_ident_start(b) => {
                    let k = self.ident()?;
                    self.ws();
                    if self.peek() != Some(b'=') || self.s.get(self.pos + 1) == Some(&b'=') {
                        self.pos = start;
                        return self.err(format!(
                            "positional argument in call to '{name}' (only keyword arguments are supported)"
                        ));
                    }
                    self.pos += 1;
                    k.to_string()
                }
                Some(_) => {
                    return self.err(format!(
                        "positional argument in call to '{name}' (only keyword arguments are supported)"
                    ));
                }
                None => return self.err("unterminated argument list"),
            };
            self.ws();
            let value = self.value(0)?;
            if args.contains_key(&key) {
                self.pos = start;
                return self.err(format!("duplicate keyword argument '{key}'"));
            }
            args.insert(key, value);
            self.ws();
            if self.eat(b',') {
                self.ws();
                if self.eat(b')') {
                    break;
                }
                continue;
            }
            self.expect(b')')?;
            break;
        }
        Ok((name, args))
    }

    /// `{"name": ..., "arguments": {...}}` (JSON form).
    fn json_call(&mut self) -> Result<Call, ToolParseError> {
        let start = self.pos;
        let v = self.value(0)?;
        let fail = |reason: &str| {
            Err(ToolParseError {
                offset: start,
                reason: reason.to_string(),
            })
        };
        let Value::Object(mut obj) = v else {
            return fail("expected a JSON object");
        };
        if let Some(Value::Object(inner)) = obj.get("function") {
            let inner = inner.clone();
            obj = inner;
        }
        let name = match obj.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return fail("tool call object has no string \"name\""),
        };
        // The names the pythonic syntax (and every tool declaration) allows: a call to any
        // other name cannot be dispatched, nor written back in LFM2's syntax.
        if !is_ident(&name) {
            return fail("tool call \"name\" is not an identifier");
        }
        let args = obj
            .get("arguments")
            .or_else(|| obj.get("parameters"))
            .cloned();
        let args = match args {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Object(m)) => m,
                _ => return fail("\"arguments\" string is not a JSON object"),
            },
            Some(_) => return fail("\"arguments\" is not an object"),
        };
        Ok((name, args))
    }

    fn value(&mut self, depth: usize) -> Result<Value, ToolParseError> {
        if depth >= MAX_NESTING {
            return self.err(format!("values nested deeper than {MAX_NESTING}"));
        }
        match self.peek() {
            None => self.err("expected a value, found end of input"),
            Some(b'"') | Some(b'\'') => Ok(Value::String(self.string()?)),
            Some(b'[') => {
                self.pos += 1;
                Ok(Value::Array(self.seq(b']', depth)?.0))
            }
            Some(b'(') => {
                self.pos += 1;
                let (items, trailing_comma) = self.seq(b')', depth)?;
                if items.len() == 1 && !trailing_comma {
                    // A parenthesised value, not a tuple.
                    Ok(items.into_iter().next().unwrap_or(Value::Null))
                } else {
                    Ok(Value::Array(items))
                }
            }
            Some(b'{') => {
                self.pos += 1;
                self.dict(depth)
            }
            Some(b) if b == b'-' || b == b'+' || b == b'.' || b.is_ascii_digit() => self.number(),
            Some(b) if is_ident_start(b) => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    self.pos += 1;
                }
                match &self.src[start..self.pos] {
                    "True" | "true" => Ok(Value::Bool(true)),
                    "False" | "false" => Ok(Value::Bool(false)),
                    "None" | "null" => Ok(Value::Null),
                    w => {
                        let w = w.to_string();
                        self.pos = start;
                        self.err(format!("unknown name '{w}' (expected a literal value)"))
                    }
                }
            }
            Some(c) => self.err(format!("unexpected character '{}'", self.char_at_pos(c))),
        }
    }

    /// Items up to `close`; returns them and whether a trailing comma was present.
    fn seq(&mut self, close: u8, depth: usize) -> Result<(Vec<Value>, bool), ToolParseError> {
        let mut items = Vec::new();
        self.ws();
        if self.eat(close) {
            return Ok((items, false));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            if self.eat(b',') {
                self.ws();
                if self.eat(close) {
                    return Ok((items, true));
                }
                continue;
            }
            self.expect(close)?;
            return Ok((items, false));
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Value, ToolParseError> {
        let mut map = Map::new();
        self.ws();
        if self.eat(b'}') {
            return Ok(Value::Object(map));
        }
        loop {
            self.ws();
            let key = match self.value(depth + 1)? {
                Value::String(s) => s,
                k @ (Value::Number(_) | Value::Bool(_)) => k.to_string(),
                _ => return self.err("dict keys must be strings"),
            };
            self.ws();
            self.expect(b':')?;
            self.ws();
            let v = self.value(depth + 1)?;
            map.insert(key, v);
            self.ws();
            if self.eat(b',') {
                self.ws();
                if self.eat(b'}') {
                    break;
                }
                continue;
            }
            self.expect(b'}')?;
            break;
        }
        Ok(Value::Object(map))
    }

    fn number(&mut self) -> Result<Value, ToolParseError> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-') | Some(b'+')) {
            self.pos += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.peek().is_some_and(|b| b.is_ascii_digit() || b == b'_') {
                p.pos += 1;
            }
            p.pos - s
        };
        let int_digits = digits(self);
        let mut is_float = false;
        let mut frac_digits = 0;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            is_float = true;
            frac_digits = digits(self);
        }
        if int_digits == 0 && frac_digits == 0 {
            self.pos = start;
            return self.err("malformed number");
        }
        if matches!(self.peek(), Some(b'e') | Some(b'E')) {
            self.pos += 1;
            is_float = true;
            if matches!(self.peek(), Some(b'-') | Some(b'+')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                self.pos = start;
                return self.err("malformed number exponent");
            }
        }
        if self.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
            self.pos = start;
            return self.err("malformed number");
        }
        let text: String = self.src[start..self.pos]
            .chars()
            .filter(|&c| c != '_' && c != '+')
            .collect();
        if !is_float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Number(i.into()));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Value::Number(u.into()));
            }
        }
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => {
                self.pos = start;
                self.err("number out of range")
            }
        }
    }

    /// A string in single, double or triple quotes with Python / JSON escapes.
    fn string(&mut self) -> Result<String, ToolParseError> {
        let start = self.pos;
        let q = self.s[self.pos];
        let triple = self.s.get(self.pos..self.pos + 3) == Some(&[q, q, q][..]);
        self.pos += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(c) = rest.chars().next() else {
                self.pos = start;
                return self.err("unterminated string");
            };
            if c as u32 == q as u32 {
                if !triple {
                    self.pos += 1;
                    return Ok(out);
                }
                if self.s.get(self.pos..self.pos + 3) == Some(&[q, q, q][..]) {
                    self.pos += 3;
                    return Ok(out);
                }
                out.push(c);
                self.pos += 1;
                continue;
            }
            if c != '\\' {
                out.push(c);
                self.pos += c.len_utf8();
                continue;
            }
            // Escape sequence.
            self.pos += 1;
            let Some(e) = self.src[self.pos..].chars().next() else {
                self.pos = start;
                return self.err("unterminated string");
            };
            self.pos += e.len_utf8();
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                'a' => out.push('\u{7}'),
                '0' => out.push('\0'),
                '\\' | '\'' | '"' | '/' => out.push(e),
                '\n' => {} // line continuation
                'x' => {
                    let c = self.hex_escape(2)?;
                    out.push(c);
                }
                'u' => {
                    let c = self.unicode_escape()?;
                    out.push(c);
                }
                'U' => {
                    let c = self.hex_escape(8)?;
                    out.push(c);
                }
                other => {
                    // Python keeps unknown escapes verbatim.
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    fn hex_digits(&mut self, n: usize) -> Result<u32, ToolParseError> {
        let Some(h) = self.src.get(self.pos..self.pos + n) else {
            return self.err("truncated escape sequence");
        };
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.err("invalid hex digits in escape sequence");
        }
        self.pos += n;
        u32::from_str_radix(h, 16).or_else(|_| self.err("invalid escape sequence"))
    }

    fn hex_escape(&mut self, n: usize) -> Result<char, ToolParseError> {
        let v = self.hex_digits(n)?;
        char::from_u32(v).map_or_else(|| self.err("escape is not a Unicode scalar value"), Ok)
    }

    /// `\uXXXX`, combining UTF-16 surrogate pairs (`\ud83d\ude00`). Lone surrogates become U+FFFD.
    fn unicode_escape(&mut self) -> Result<char, ToolParseError> {
        let hi = self.hex_digits(4)?;
        if (0xD800..0xDC00).contains(&hi) && self.src[self.pos..].starts_with("\\u") {
            let save = self.pos;
            self.pos += 2;
            let lo = self.hex_digits(4)?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            self.pos = save;
        }
        Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }
}

/// Whether `text` (after leading whitespace) could be the start of a bare Pythonic call list
/// `[name(`: `Some(true)` if it is, `Some(false)` if it cannot be, `None` if more text is needed.
pub(crate) fn bare_prefix_state(text: &str) -> Option<bool> {
    let b = text.trim_start().as_bytes();
    if b.is_empty() {
        return None;
    }
    if b[0] != b'[' {
        return Some(false);
    }
    let mut i = 1;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if i == b.len() {
        return None;
    }
    if !is_ident_start(b[i]) {
        return Some(false);
    }
    while i < b.len() && is_ident_continue(b[i]) {
        i += 1;
    }
    if i == b.len() {
        return None;
    }
    Some(b[i] == b'(')
}

/// Formats tool calls the way LFM2 writes them: `[f(a="x", n=1, flag=True, d={"k": "v"})]`
/// (strings double-quoted with JSON escapes, `True/False/None`, lists and dicts as JSON).
pub fn format_tool_calls_pythonic(calls: &[ToolCall]) -> String {
    let mut out = String::from("[");
    for (i, c) in calls.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&c.name);
        out.push('(');
        if let Value::Object(args) = &c.arguments {
            for (j, (k, v)) in args.iter().enumerate() {
                if j > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                match v {
                    Value::Bool(true) => out.push_str("True"),
                    Value::Bool(false) => out.push_str("False"),
                    Value::Null => out.push_str("None"),
                    other => out.push_str(&super::json::json_dumps(other)),
                }
            }
        }
        out.push(')');
    }
    out.push(']');
    out
}

/// Formats tool calls as the JSON list LFM2 writes when asked for JSON:
/// `[{"name": "f", "arguments": {"a": "x"}}]`.
pub fn format_tool_calls_json(calls: &[ToolCall]) -> String {
    let list: Vec<Value> = calls
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("name".into(), Value::String(c.name.clone()));
            m.insert("arguments".into(), c.arguments.clone());
            Value::Object(m)
        })
        .collect();
    super::json::json_dumps(&Value::Array(list))
}
