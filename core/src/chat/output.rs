//! Streaming splitter of model output into thinking, answer text and tool calls.
//!
//! Fed with detokenized text deltas (special tokens `<think>`, `</think>`,
//! `<|tool_call_start|>`, `<|tool_call_end|>` must be detokenized as their text). Markers may be
//! split across deltas: only a suffix that could still become a marker is held back, everything
//! else is emitted immediately.

use super::ToolCall;
use super::tools::{MAX_NESTING, bare_prefix_state, parse_tool_calls};

/// Opening marker of a reasoning block.
pub const THINK_START: &str = "<think>";
/// Closing marker of a reasoning block.
pub const THINK_END: &str = "</think>";
/// Opening marker of a tool-call block.
pub const TOOL_CALL_START: &str = "<|tool_call_start|>";
/// Closing marker of a tool-call block.
pub const TOOL_CALL_END: &str = "<|tool_call_end|>";

/// One piece of parsed model output.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputEvent {
    /// Reasoning text (between `<think>` and `</think>`), markers removed.
    Thinking(String),
    /// Answer text, markers removed.
    Text(String),
    /// A complete, parsed tool call.
    ToolCall(ToolCall),
    /// A tool-call block that could not be parsed, or was not closed before the end.
    /// `raw` is the exact text including the markers.
    ToolCallError { raw: String, reason: String },
}

/// Options of an [`OutputParser`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParserOptions {
    /// The prompt already opened a reasoning block (generation prompt ends in `<think>`), so
    /// output is thinking until `</think>`. The LFM2 / LFM2.5 templates do not do this:
    /// `false` for them.
    pub starts_in_thinking: bool,
    /// Recognise tool calls (`<|tool_call_start|>…<|tool_call_end|>` blocks, and a whole answer
    /// that is a bare Pythonic call list `[f(a=1)]`). When `false`, the tool-call markers are
    /// ordinary text.
    pub parse_tool_calls: bool,
}

impl ParserOptions {
    /// Options for output generated after `prompt` (the rendered chat): thinking is already
    /// open when the prompt ends with `<think>` (optionally followed by whitespace).
    pub fn for_prompt(prompt: &str, parse_tool_calls: bool) -> Self {
        ParserOptions {
            starts_in_thinking: prompt.trim_end().ends_with(THINK_START),
            parse_tool_calls,
        }
    }
}

impl Default for ParserOptions {
    fn default() -> Self {
        ParserOptions {
            starts_in_thinking: false,
            parse_tool_calls: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Text,
    Thinking,
    ToolCall,
}

/// Incremental bracket/string scanner over a bare call-list candidate. It only decides when the
/// candidate has *proved* to be text (unbalanced brackets, text after the closing `]`);
/// whether it is a valid call list is decided by [`parse_tool_calls`] at the end.
#[derive(Clone, Debug, Default)]
struct BareScan {
    pos: usize,
    stack: Vec<u8>,
    quote: Option<(u8, bool)>, // (quote byte, triple)
    escape: bool,
    closed: bool,
    invalid: bool,
}

impl BareScan {
    /// Advances over `s` (the whole candidate so far). `final_` = no more text will come.
    fn advance(&mut self, s: &[u8], final_: bool) {
        while self.pos < s.len() && !self.invalid {
            let b = s[self.pos];
            if self.closed {
                if !b.is_ascii_whitespace() {
                    self.invalid = true;
                }
                self.pos += 1;
                continue;
            }
            if let Some((q, triple)) = self.quote {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == q {
                    if !triple {
                        self.quote = None;
                    } else {
                        if self.pos + 3 > s.len() && !final_ {
                            return; // need lookahead
                        }
                        if s.get(self.pos..self.pos + 3) == Some(&[q, q, q][..]) {
                            self.quote = None;
                            self.pos += 3;
                            continue;
                        }
                    }
                }
                self.pos += 1;
                continue;
            }
            match b {
                b'"' | b'\'' => {
                    if self.pos + 3 > s.len() && !final_ {
                        return; // need lookahead to tell a triple quote
                    }
                    if s.get(self.pos..self.pos + 3) == Some(&[b, b, b][..]) {
                        self.quote = Some((b, true));
                        self.pos += 3;
                        continue;
                    }
                    self.quote = Some((b, false));
                }
                b'[' | b'(' | b'{' => {
                    self.stack.push(b);
                    if self.stack.len() > 4 * MAX_NESTING {
                        self.invalid = true;
                    }
                }
                b']' | b')' | b'}' => {
                    let open = match b {
                        b']' => b'[',
                        b')' => b'(',
                        _ => b'{',
                    };
                    if self.stack.pop() != Some(open) {
                        self.invalid = true;
                    } else if self.stack.is_empty() {
                        self.closed = true;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
    }
}

/// Streaming parser of model output. Feed it the detokenized text as it is generated with
/// [`push`](Self::push), then call [`finish`](Self::finish) once at the end of generation.
///
/// * `<think>…</think>` becomes [`OutputEvent::Thinking`]; the markers never appear in events.
/// * `<|tool_call_start|>…<|tool_call_end|>` becomes one [`OutputEvent::ToolCall`] per call, or
///   an [`OutputEvent::ToolCallError`] holding the raw block.
/// * An answer that (after whitespace) starts with `[name(` is held back until it either stops
///   looking like a call list (then it is emitted as text) or generation ends; at
///   [`finish`](Self::finish) it becomes tool calls if it parses as a Pythonic call list, text
///   otherwise.
/// * Stray markers (`</think>` outside thinking, `<think>` inside thinking,
///   `<|tool_call_end|>` outside a call) are dropped.
/// * Text is emitted verbatim (not trimmed): concatenating thinking/text with the markers
///   re-creates the generated text, which keeps re-rendered history token-identical.
///
/// Tool-call ids are `call_0`, `call_1`, … in order over the parser's lifetime.
#[derive(Clone, Debug)]
pub struct OutputParser {
    opts: ParserOptions,
    mode: Mode,
    /// Unprocessed text: a held-back possible-marker suffix, or the body of an open tool call.
    buf: String,
    /// In tool-call mode: how far `buf` has been searched for the end marker.
    scanned: usize,
    /// Non-whitespace answer text was emitted since the start / the last `</think>`.
    answer_started: bool,
    /// Bare call-list candidate (answer text starting with `[`), with its scanner.
    cand: Option<(String, BareScan)>,
    next_id: usize,
}

impl OutputParser {
    pub fn new(opts: ParserOptions) -> Self {
        OutputParser {
            opts,
            mode: if opts.starts_in_thinking {
                Mode::Thinking
            } else {
                Mode::Text
            },
            buf: String::new(),
            scanned: 0,
            answer_started: false,
            cand: None,
            next_id: 0,
        }
    }

    /// Whether the parser is inside a reasoning block (output is currently thinking).
    pub fn in_thinking(&self) -> bool {
        self.mode == Mode::Thinking
    }

    /// Whether the parser is inside an open tool-call block (or holds a possible bare call
    /// list): the generate loop may want to show a "calling tool" state.
    pub fn in_tool_call(&self) -> bool {
        self.mode == Mode::ToolCall || self.cand.is_some()
    }

    /// Feeds a text delta; returns the events that are complete.
    pub fn push(&mut self, delta: &str) -> Vec<OutputEvent> {
        let mut ev = Vec::new();
        self.buf.push_str(delta);
        self.process(&mut ev, false);
        ev
    }

    /// Ends the stream: flushes held-back text, resolves a bare call-list candidate and turns an
    /// unterminated tool call into [`OutputEvent::ToolCallError`]. The parser is then reset to
    /// its initial state (tool-call ids keep counting).
    pub fn finish(&mut self) -> Vec<OutputEvent> {
        let mut ev = Vec::new();
        self.process(&mut ev, true);
        match self.mode {
            Mode::Text => {
                let rest = std::mem::take(&mut self.buf);
                self.text_out(&rest, &mut ev);
            }
            Mode::Thinking => {
                let rest = std::mem::take(&mut self.buf);
                emit(&mut ev, OutputEvent::Thinking(rest));
            }
            Mode::ToolCall => {
                let body = std::mem::take(&mut self.buf);
                emit(
                    &mut ev,
                    OutputEvent::ToolCallError {
                        raw: format!("{TOOL_CALL_START}{body}"),
                        reason: format!("unterminated tool call (no {TOOL_CALL_END})"),
                    },
                );
            }
        }
        if let Some((text, mut scan)) = self.cand.take() {
            scan.advance(text.as_bytes(), true);
            let calls = if scan.invalid {
                None
            } else {
                parse_tool_calls(&text).ok().filter(|c| !c.is_empty())
            };
            match calls {
                Some(calls) => {
                    for c in calls {
                        let call = self.renumber(c);
                        emit(&mut ev, OutputEvent::ToolCall(call));
                    }
                }
                None => emit(&mut ev, OutputEvent::Text(text)),
            }
        }
        let next_id = self.next_id;
        *self = OutputParser::new(self.opts);
        self.next_id = next_id;
        ev
    }

    fn renumber(&mut self, mut c: ToolCall) -> ToolCall {
        c.id = format!("call_{}", self.next_id);
        self.next_id += 1;
        c
    }

    fn markers(&self) -> &'static [&'static str] {
        match (self.mode, self.opts.parse_tool_calls) {
            (Mode::Text, true) => &[THINK_START, THINK_END, TOOL_CALL_START, TOOL_CALL_END],
            (Mode::Text, false) => &[THINK_START, THINK_END],
            (Mode::Thinking, _) => &[THINK_END, THINK_START],
            (Mode::ToolCall, _) => &[TOOL_CALL_END],
        }
    }

    fn process(&mut self, ev: &mut Vec<OutputEvent>, final_: bool) {
        loop {
            if self.mode == Mode::ToolCall {
                if self.finish_tool_call(ev) {
                    continue;
                }
                return;
            }
            // Text or thinking: earliest full marker.
            let found = self
                .markers()
                .iter()
                .filter_map(|m| self.buf.find(m).map(|i| (i, *m)))
                .min_by_key(|&(i, _)| i);
            let Some((i, marker)) = found else {
                // No marker: emit all but a possible-marker suffix.
                let keep = if final_ {
                    0
                } else {
                    held_suffix_len(&self.buf, self.markers())
                };
                let n = self.buf.len() - keep;
                if n > 0 {
                    let out: String = self.buf.drain(..n).collect();
                    self.plain_out(&out, ev);
                }
                return;
            };
            let before: String = self.buf.drain(..i).collect();
            self.buf.drain(..marker.len());
            self.plain_out(&before, ev);
            match (self.mode, marker) {
                (Mode::Text, THINK_START) => {
                    self.flush_cand(ev);
                    self.mode = Mode::Thinking;
                }
                (Mode::Text, TOOL_CALL_START) => {
                    self.flush_cand(ev);
                    self.mode = Mode::ToolCall;
                    self.scanned = 0;
                }
                (Mode::Thinking, THINK_END) | (Mode::Text, THINK_END) => {
                    self.flush_cand(ev);
                    self.mode = Mode::Text;
                    self.answer_started = false;
                }
                _ => {
                    // Stray marker (<think> inside thinking, <|tool_call_end|> in text): dropped.
                    self.flush_cand(ev);
                }
            }
        }
    }

    /// In tool-call mode: if the closing marker has arrived, parses the call body, emits its
    /// calls (or a `ToolCallError`), returns to text and says true; otherwise remembers how far
    /// the buffer was scanned and says false.
    fn finish_tool_call(&mut self, ev: &mut Vec<OutputEvent>) -> bool {
        let from = self.scanned.saturating_sub(TOOL_CALL_END.len() - 1);
        let from = floor_char_boundary(&self.buf, from);
        let Some(i) = self.buf[from..].find(TOOL_CALL_END) else {
            self.scanned = self.buf.len();
            return false;
        };
        let i = from + i;
        let body = self.buf[..i].to_string();
        self.buf.drain(..i + TOOL_CALL_END.len());
        self.scanned = 0;
        self.mode = Mode::Text;
        self.answer_started = true;
        match parse_tool_calls(&body) {
            Ok(calls) => {
                for c in calls {
                    let call = self.renumber(c);
                    emit(ev, OutputEvent::ToolCall(call));
                }
            }
            Err(e) => emit(
                ev,
                OutputEvent::ToolCallError {
                    raw: format!("{TOOL_CALL_START}{body}{TOOL_CALL_END}"),
                    reason: e.to_string(),
                },
            ),
        }
        true
    }

    /// Text of the current mode (thinking or answer) that contains no marker.
    fn plain_out(&mut self, s: &str, ev: &mut Vec<OutputEvent>) {
        if s.is_empty() {
            return;
        }
        match self.mode {
            Mode::Thinking => emit(ev, OutputEvent::Thinking(s.to_string())),
            _ => self.text_out(s, ev),
        }
    }

    /// Answer text, with bare call-list detection at the start of the answer.
    fn text_out(&mut self, s: &str, ev: &mut Vec<OutputEvent>) {
        if s.is_empty() {
            return;
        }
        if let Some((cand, scan)) = &mut self.cand {
            cand.push_str(s);
            scan.advance(cand.as_bytes(), false);
            self.check_cand(ev);
            return;
        }
        if self.answer_started || !self.opts.parse_tool_calls {
            if !s.trim_start().is_empty() {
                self.answer_started = true;
            }
            emit(ev, OutputEvent::Text(s.to_string()));
            return;
        }
        let ws = s.len() - s.trim_start().len();
        if ws > 0 {
            emit(ev, OutputEvent::Text(s[..ws].to_string()));
        }
        let rest = &s[ws..];
        if rest.is_empty() {
            return;
        }
        self.answer_started = true;
        if rest.starts_with('[') {
            let mut scan = BareScan::default();
            scan.advance(rest.as_bytes(), false);
            self.cand = Some((rest.to_string(), scan));
            self.check_cand(ev);
        } else {
            emit(ev, OutputEvent::Text(rest.to_string()));
        }
    }

    /// Emits the candidate as text once it can no longer be a bare call list.
    fn check_cand(&mut self, ev: &mut Vec<OutputEvent>) {
        let Some((cand, scan)) = &self.cand else {
            return;
        };
        if scan.invalid || bare_prefix_state(cand) == Some(false) {
            self.flush_cand(ev);
        }
    }

    fn flush_cand(&mut self, ev: &mut Vec<OutputEvent>) {
        if let Some((text, _)) = self.cand.take() {
            emit(ev, OutputEvent::Text(text));
        }
    }
}

/// Appends an event, merging consecutive text / thinking pieces and skipping empty ones.
fn emit(ev: &mut Vec<OutputEvent>, e: OutputEvent) {
    match (ev.last_mut(), e) {
        (_, OutputEvent::Text(s)) | (_, OutputEvent::Thinking(s)) if s.is_empty() => {}
        (Some(OutputEvent::Text(a)), OutputEvent::Text(b)) => a.push_str(&b),
        (Some(OutputEvent::Thinking(a)), OutputEvent::Thinking(b)) => a.push_str(&b),
        (_, e) => ev.push(e),
    }
}

/// Length of the longest suffix of `s` that is a proper prefix of one of `markers`.
fn held_suffix_len(s: &str, markers: &[&str]) -> usize {
    let max = markers.iter().map(|m| m.len() - 1).max().unwrap_or(0);
    let b = s.as_bytes();
    for len in (1..=max.min(b.len())).rev() {
        let suffix = &b[b.len() - len..];
        if markers.iter().any(|m| m.as_bytes().starts_with(suffix)) {
            return len;
        }
    }
    0
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
