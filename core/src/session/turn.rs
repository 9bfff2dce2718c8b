//! A running turn: the prefill, the step loop (sample, detokenize, stop strings, thinking
//! budget), and the events it streams.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::cache::Rollback;
use super::{Event, GenerateOptions, Session, StopReason, TurnStats};
use crate::cancel::CancelToken;
use crate::chat::{Message, OutputEvent, OutputParser, ParserOptions, ToolCall};
use crate::chat::{THINK_END, THINK_START, TOOL_CALL_END, TOOL_CALL_START};
use crate::constrain::JsonConstraint;
use crate::engine::BackendKind;
use crate::error::{Error, Result};
use crate::models::lfm2::Logits;
use crate::numerics::check_logits;
use crate::sampling::Sampler;

/// A running turn: an iterator of events. Finishing it commits the answer to the session;
/// dropping it early (or a cancel) rolls the session back to how it was before the turn.
pub struct Turn<'a> {
    session: &'a mut Session,
    cancel: CancelToken,
    rollback: Option<Rollback>,
    sampler: Sampler,
    constraint: Option<JsonConstraint>,
    constraint_time: Duration,
    options: GenerateOptions,
    parser: OutputParser,
    utf8: Utf8Stream,
    pending: VecDeque<Event>,
    /// Logits of the next token to sample.
    logits: Vec<f32>,
    forced: VecDeque<u32>,
    answer: AnswerBuilder,
    /// Text held back because it may be the start of a stop string.
    held: String,
    prompt_tokens: usize,
    cached_tokens: usize,
    generated: usize,
    thinking_tokens: usize,
    started: Instant,
    prefill_time: Duration,
    first_token: Option<Duration>,
    finished: bool,
}

#[derive(Default)]
struct AnswerBuilder {
    text: String,
    thinking: String,
    tool_calls: Vec<ToolCall>,
}

impl<'a> Turn<'a> {
    pub(super) fn start(
        session: &'a mut Session,
        messages: Vec<Message>,
        options: &GenerateOptions,
        cancel: CancelToken,
    ) -> Result<Turn<'a>> {
        if options.max_tokens == 0 {
            return Err(Error::InvalidArgument("max_tokens must be positive".into()));
        }
        let sampler = Sampler::new(options.sampling.clone())?;
        let constraint = match &options.json_schema {
            Some(schema) => Some(JsonConstraint::with_index(
                schema,
                session.engine.token_index(),
            )?),
            None => None,
        };
        let started = Instant::now();
        let (messages, prompt) = session.fit(messages, 1)?;
        let rollback = session.begin_turn(messages, &prompt)?;
        let mut turn = Turn {
            parser: OutputParser::new(ParserOptions {
                starts_in_thinking: false,
                parse_tool_calls: !session.options.tools.is_empty() && constraint.is_none(),
            }),
            constraint,
            constraint_time: Duration::ZERO,
            session,
            cancel,
            rollback: Some(rollback),
            sampler,
            options: options.clone(),
            utf8: Utf8Stream::default(),
            pending: Default::default(),
            logits: Vec::new(),
            forced: Default::default(),
            answer: AnswerBuilder::default(),
            held: String::new(),
            prompt_tokens: prompt.len(),
            cached_tokens: 0,
            generated: 0,
            thinking_tokens: 0,
            started,
            prefill_time: Duration::ZERO,
            first_token: None,
            finished: false,
        };
        if let Err(e) = turn.prefill(&prompt) {
            turn.roll_back();
            turn.session.engine.note_failure(&e);
            return Err(e);
        }
        Ok(turn)
    }

    /// Cancels this turn from any thread (the token can be cloned and kept).
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// Runs until at least one event is ready (or the turn ends) and returns all that are,
    /// adjacent text of one kind merged: at most one batch per generated token.
    pub fn next_batch(&mut self) -> Option<Result<Vec<Event>>> {
        while self.pending.is_empty() {
            if self.finished {
                return None;
            }
            if let Err(e) = self.step() {
                return Some(Err(self.fail(e)));
            }
        }
        Some(Ok(merge_text(self.pending.drain(..))))
    }

    fn fail(&mut self, e: Error) -> Error {
        self.roll_back();
        self.session.engine.note_failure(&e);
        self.finished = true;
        e
    }

    fn prefill(&mut self, prompt: &[u32]) -> Result<()> {
        let s = &mut *self.session;
        let (reused, logits) = s.reuse_prefix(prompt)?;
        self.cached_tokens = reused;
        if let Some(logits) = logits {
            self.logits = logits;
        }
        let t0 = Instant::now();
        let chunks = prompt[reused..].chunks(s.options.batch_size);
        let n_chunks = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            if self.cancel.is_cancelled() {
                self.cancelled();
                return Ok(());
            }
            // Only the last chunk's logits are sampled from.
            let mode = if i + 1 == n_chunks {
                Logits::Last
            } else {
                Logits::None
            };
            let logits = s.seq.forward(chunk, mode)?;
            if mode == Logits::Last {
                self.logits = logits;
            }
            s.cached.extend_from_slice(chunk);
        }
        self.prefill_time = t0.elapsed();
        s.last_prompt = prompt.to_vec();
        s.last_prefill_logits = self.logits.clone();
        s.checkpoint(&self.logits)
    }

    fn cancelled(&mut self) {
        self.roll_back();
        self.finish_with(StopReason::Cancelled);
    }

    fn roll_back(&mut self) {
        if let Some(rb) = self.rollback.take() {
            self.session.roll_back(rb);
        }
    }

    fn finish_with(&mut self, reason: StopReason) {
        if self.finished {
            return;
        }
        self.finished = true;
        if reason != StopReason::Cancelled {
            self.flush_text();
            for ev in self.parser.finish() {
                self.output_event(ev);
            }
            let answer = std::mem::take(&mut self.answer);
            // Not trimmed: re-rendering then reproduces the generated tokens (cache reuse).
            let mut msg = Message::assistant(answer.text);
            msg.thinking = (!answer.thinking.is_empty()).then_some(answer.thinking);
            msg.tool_calls = answer.tool_calls;
            self.session.messages.push(msg);
            self.rollback = None;
        }
        let first = self.first_token.unwrap_or_default();
        let decode_time = self.started.elapsed().saturating_sub(first);
        let prefilled = self.prompt_tokens - self.cached_tokens;
        self.pending.push_back(Event::Done(TurnStats {
            stop_reason: reason,
            prompt_tokens: self.prompt_tokens,
            cached_tokens: self.cached_tokens,
            generated_tokens: self.generated,
            time_to_first_token: first,
            prefill_tok_s: rate(prefilled, self.prefill_time),
            decode_tok_s: rate(self.generated.saturating_sub(1), decode_time),
            constraint_time: self.constraint_time,
        }));
    }

    /// Generates one token and queues what it produces.
    fn step(&mut self) -> Result<()> {
        if self.cancel.is_cancelled() {
            self.cancelled();
            return Ok(());
        }
        if self.generated >= self.options.max_tokens {
            self.finish_with(StopReason::MaxTokens);
            return Ok(());
        }
        let token = match self.forced.pop_front() {
            Some(t) => t,
            None => self.sample()?,
        };
        if let Some(c) = &mut self.constraint {
            c.accept(token)?;
        }
        self.generated += 1;
        if self.first_token.is_none() {
            self.first_token = Some(self.started.elapsed());
        }
        if self.session.tokenizer().is_eog(token) {
            self.finish_with(StopReason::EndOfTurn);
            return Ok(());
        }
        let piece = self.visible_bytes(token);
        let text = self.utf8.push(&piece);
        if self.parser.in_thinking() {
            self.thinking_tokens += 1;
        }
        if self.emit_text(&text) {
            self.finish_with(StopReason::StopString);
            return Ok(());
        }
        self.force_think_end_if_over_budget();
        if self.session.seq.n_past() >= self.session.seq.capacity() {
            self.finish_with(StopReason::ContextFull);
            return Ok(());
        }
        self.logits = self.session.seq.forward(&[token], Logits::Last)?;
        self.session.cached.push(token);
        Ok(())
    }

    /// The bytes a token adds to the answer: control tokens are dropped, except the markers
    /// the output parser understands (tool calls, thinking).
    fn visible_bytes(&self, token: u32) -> Vec<u8> {
        let tok = self.session.tokenizer();
        let bytes = tok.piece_bytes(token).unwrap_or_default();
        let is_marker = [THINK_START, THINK_END, TOOL_CALL_START, TOOL_CALL_END]
            .iter()
            .any(|m| m.as_bytes() == bytes);
        if tok.is_control(token) && !is_marker {
            Vec::new()
        } else {
            bytes.to_vec()
        }
    }

    /// Samples the next token from logits that passed [`check_logits`] (a broken computation
    /// must fail the turn, never become text).
    fn sample(&mut self) -> Result<u32> {
        if let Err(why) = check_logits(&self.logits) {
            return Err(match self.session.engine.backend() {
                BackendKind::Gpu => {
                    Error::Gpu(format!("invalid logits ({why}); the turn was rolled back"))
                }
                _ => Error::corrupt("model output", format!("invalid logits ({why})")),
            });
        }
        if let Some(c) = &mut self.constraint {
            let t0 = Instant::now();
            c.mask(&mut self.logits);
            self.constraint_time += t0.elapsed();
        }
        Ok(self.sampler.sample(&mut self.logits, &self.session.cached))
    }

    fn force_think_end_if_over_budget(&mut self) {
        let Some(budget) = self.options.thinking_budget else {
            return;
        };
        if self.parser.in_thinking() && self.thinking_tokens >= budget && self.forced.is_empty() {
            if let Ok(ids) = self.session.tokenizer().encode("</think>", false) {
                self.forced.extend(ids);
            }
        }
    }

    /// Feeds decoded text through stop-string detection and the output parser.
    /// Returns true when a stop string was hit.
    fn emit_text(&mut self, text: &str) -> bool {
        self.held.push_str(text);
        let stops = &self.options.stop;
        if let Some(at) = stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let before = self.held[..at].to_string();
            self.held.clear();
            self.parse(&before);
            return true;
        }
        // Keep back the longest suffix that could start a stop string.
        let keep = stops
            .iter()
            .map(|s| partial_suffix(&self.held, s))
            .max()
            .unwrap_or(0);
        let release = self.held.len() - keep;
        let out = self.held[..release].to_string();
        self.held.drain(..release);
        self.parse(&out);
        false
    }

    fn flush_text(&mut self) {
        let rest = self.utf8.finish();
        let mut held = std::mem::take(&mut self.held);
        held.push_str(&rest);
        self.parse(&held);
    }

    fn parse(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        for ev in self.parser.push(text) {
            self.output_event(ev);
        }
    }

    fn output_event(&mut self, ev: OutputEvent) {
        match ev {
            OutputEvent::Thinking(t) => {
                self.answer.thinking.push_str(&t);
                if self.options.show_thinking {
                    self.pending.push_back(Event::Thinking(t));
                }
            }
            OutputEvent::Text(t) => {
                self.answer.text.push_str(&t);
                self.pending.push_back(Event::Text(t));
            }
            OutputEvent::ToolCall(c) => {
                self.answer.tool_calls.push(c.clone());
                self.pending.push_back(Event::ToolCall(c));
            }
            OutputEvent::ToolCallError { raw, reason } => {
                self.answer.text.push_str(&raw);
                self.pending.push_back(Event::ToolCallError { raw, reason });
            }
        }
    }
}

impl Iterator for Turn<'_> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(Ok(ev));
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.step() {
                return Some(Err(self.fail(e)));
            }
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        // Abandoned before the end: the session goes back to how it was.
        self.roll_back();
    }
}

/// Merges adjacent `Text` (and adjacent `Thinking`) events into one.
fn merge_text(events: impl Iterator<Item = Event>) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for ev in events {
        match (out.last_mut(), ev) {
            (Some(Event::Text(a)), Event::Text(b))
            | (Some(Event::Thinking(a)), Event::Thinking(b)) => a.push_str(&b),
            (_, ev) => out.push(ev),
        }
    }
    out
}

fn rate(tokens: usize, time: Duration) -> f64 {
    if time.is_zero() {
        0.0
    } else {
        tokens as f64 / time.as_secs_f64()
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop`.
fn partial_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len().min(text.len() + 1))
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n)
                && stop.is_char_boundary(n)
                && text.ends_with(&stop[..n])
        })
        .unwrap_or(0)
}

/// Bytes in, whole UTF-8 characters out (invalid sequences become U+FFFD).
#[derive(Default)]
struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        crate::tokenizer::take_complete_utf8(&mut self.pending)
    }

    fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}
