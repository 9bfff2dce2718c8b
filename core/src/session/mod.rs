//! A conversation: messages, the token history whose cache is on the backend, conv-state
//! checkpoints at turn boundaries, and the generate loop that streams [`Event`]s.
//!
//! Exact cache reuse on a hybrid conv + attention model: the prompt of a turn is rendered from
//! the whole conversation, its longest common prefix with the cached tokens is found, the
//! nearest conv checkpoint at or before that prefix is restored (attention KV rows simply stay),
//! and only the rest is prefilled. Cancel restores the state saved when the turn started.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::chat::{
    ChatTemplate, Message, OutputEvent, OutputParser, ParserOptions, RenderOptions, Role, Tool,
    ToolCall,
};
use crate::chat::{THINK_END, THINK_START, TOOL_CALL_END, TOOL_CALL_START};
use crate::constrain::JsonConstraint;
use crate::engine::{CacheState, Engine, Sequence};
use crate::error::{Error, Result};
use crate::models::lfm2::Logits;
use crate::sampling::{Sampler, SamplingOptions};
use crate::tokenizer::Tokenizer;

/// What to do when a conversation no longer fits the context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// Fail the turn with [`Error::ContextOverflow`].
    #[default]
    Error,
    /// Drop the oldest messages (never the system prompt or the newest user message).
    DropOldest,
}

/// Options fixed for the life of a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionOptions {
    /// Context length in tokens (capped at the model's).
    pub context_length: usize,
    /// Tokens per prefill chunk (cancel is checked between chunks).
    pub batch_size: usize,
    pub system_prompt: Option<String>,
    pub tools: Vec<Tool>,
    pub overflow: OverflowPolicy,
    /// Keep earlier turns' thinking in the prompt (templates drop it by default).
    pub keep_past_thinking: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            context_length: 4096,
            batch_size: 64,
            system_prompt: None,
            tools: Vec::new(),
            overflow: OverflowPolicy::Error,
            keep_past_thinking: false,
        }
    }
}

/// Options of one turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateOptions {
    #[serde(skip)]
    pub sampling: SamplingOptions,
    pub max_tokens: usize,
    /// Generation stops before any of these strings appears in the answer.
    pub stop: Vec<String>,
    /// Emit [`Event::Thinking`] (the thinking is kept in the message either way).
    pub show_thinking: bool,
    /// Thinking tokens allowed before `</think>` is forced.
    pub thinking_budget: Option<usize>,
    /// Constrain the answer to JSON valid under this schema (the turn ends when it is complete).
    pub json_schema: Option<serde_json::Value>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            sampling: SamplingOptions::default(),
            max_tokens: 512,
            stop: Vec::new(),
            show_thinking: true,
            thinking_budget: None,
            json_schema: None,
        }
    }
}

/// Why a turn ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The model ended its turn (EOS).
    EndOfTurn,
    MaxTokens,
    StopString,
    /// The context is full.
    ContextFull,
    Cancelled,
}

/// Figures of one turn.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnStats {
    pub stop_reason: StopReason,
    /// Tokens of the rendered prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose cache was reused (not prefilled again).
    pub cached_tokens: usize,
    pub generated_tokens: usize,
    pub time_to_first_token: Duration,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    /// Time spent computing JSON-schema token masks (zero without a schema).
    pub constraint_time: Duration,
}

/// What a turn streams.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Thinking(String),
    Text(String),
    ToolCall(ToolCall),
    /// The model wrote something that looked like a tool call but did not parse.
    ToolCallError {
        raw: String,
        reason: String,
    },
    Done(TurnStats),
}

/// Stops a running turn from any thread.
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// One conversation with its own caches. Several sessions can share an [`Engine`].
pub struct Session {
    engine: Engine,
    seq: Box<dyn Sequence>,
    options: SessionOptions,
    messages: Vec<Message>,
    /// Tokens whose KV / conv state is in `seq` (always `seq.n_past()` long).
    cached: Vec<u32>,
    /// Conv-only checkpoints, ascending `n_past`, each at a prefix of `cached`.
    checkpoints: Vec<Checkpoint>,
    cancel: CancelHandle,
    last_prompt: Vec<u32>,
    last_prefill_logits: Vec<f32>,
}

/// The conv states at a turn boundary and the logits there (so a prompt that ends exactly at a
/// checkpoint, as when regenerating, needs no prefill at all).
#[derive(Clone, Debug, PartialEq)]
struct Checkpoint {
    state: CacheState,
    logits: Vec<f32>,
}

impl Checkpoint {
    fn n_past(&self) -> usize {
        self.state.n_past
    }
}

/// Conv checkpoints kept per session (oldest dropped first).
const MAX_CHECKPOINTS: usize = 16;

impl Session {
    pub fn new(engine: &Engine, options: SessionOptions) -> Result<Session> {
        if options.batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be positive".into()));
        }
        let seq = engine.new_sequence(options.context_length, options.batch_size)?;
        Ok(Session {
            engine: engine.clone(),
            seq,
            options,
            messages: Vec::new(),
            cached: Vec::new(),
            checkpoints: Vec::new(),
            cancel: CancelHandle::default(),
            last_prompt: Vec::new(),
            last_prefill_logits: Vec::new(),
        })
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Tokens currently cached on the backend.
    pub fn cached_tokens(&self) -> &[u32] {
        &self.cached
    }

    pub fn context_length(&self) -> usize {
        self.seq.capacity()
    }

    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    pub fn set_system_prompt(&mut self, system: Option<String>) {
        self.options.system_prompt = system;
    }

    /// Forgets the conversation (the system prompt and tools stay).
    pub fn reset(&mut self) -> Result<()> {
        self.messages.clear();
        self.seq.reset()?;
        self.cached.clear();
        self.checkpoints.clear();
        Ok(())
    }

    /// Drops messages from index `n` on; the cache is reused on the next turn where it matches.
    pub fn truncate(&mut self, n: usize) {
        self.messages.truncate(n);
    }

    /// Tokens the prompt for `messages` (after the system prompt) would take.
    pub fn count_tokens(&self, messages: &[Message]) -> Result<usize> {
        Ok(self.render(messages)?.len())
    }

    /// Sends a message and streams the answer. Dropping the returned turn before it finishes
    /// cancels it (the session rolls back).
    pub fn send(&mut self, message: Message, options: &GenerateOptions) -> Result<Turn<'_>> {
        Turn::start(self, Some(message), options)
    }

    /// Answers the last message again (the last assistant answer, if any, is replaced).
    pub fn regenerate(&mut self, options: &GenerateOptions) -> Result<Turn<'_>> {
        if let Some(last_user) = self
            .messages
            .iter()
            .rposition(|m| m.role != Role::Assistant)
        {
            self.messages.truncate(last_user + 1);
        }
        if self.messages.is_empty() {
            return Err(Error::InvalidArgument("nothing to regenerate".into()));
        }
        Turn::start(self, None, options)
    }

    /// Replaces message `index` (and drops everything after it), then answers it.
    pub fn edit(
        &mut self,
        index: usize,
        message: Message,
        options: &GenerateOptions,
    ) -> Result<Turn<'_>> {
        if index >= self.messages.len() {
            return Err(Error::InvalidArgument(format!("no message {index}")));
        }
        self.messages.truncate(index);
        Turn::start(self, Some(message), options)
    }

    /// Runs a turn to the end, calling `on_event` for every event (the FFI's path).
    pub fn send_with(
        &mut self,
        message: Message,
        options: &GenerateOptions,
        mut on_event: impl FnMut(&Event),
    ) -> Result<TurnStats> {
        let turn = self.send(message, options)?;
        let mut stats = None;
        for ev in turn {
            let ev = ev?;
            on_event(&ev);
            if let Event::Done(s) = ev {
                stats = Some(s);
            }
        }
        stats.ok_or_else(|| Error::InvalidArgument("turn ended without finishing".into()))
    }

    /// Saves the conversation (messages and options) as JSON at `path`; with `include_cache`
    /// also the backend cache next to it (`<path>.cache`), so a restored session continues
    /// without prefilling again. Files are written atomically.
    pub fn save(&self, path: &Path, include_cache: bool) -> Result<()> {
        let saved = SavedSession {
            format: SAVE_FORMAT,
            options: self.options.clone(),
            messages: self.messages.clone(),
            cached_tokens: include_cache.then(|| self.cached.clone()),
        };
        let json = serde_json::to_vec_pretty(&saved)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialize session: {e}")))?;
        if include_cache {
            let mut blobs = vec![self.seq.save(0)?.to_bytes()];
            for c in &self.checkpoints {
                blobs.push(c.state.to_bytes());
                blobs.push(c.logits.iter().flat_map(|x| x.to_le_bytes()).collect());
            }
            write_atomic(&cache_path(path), &pack_blobs(&blobs))?;
        }
        write_atomic(path, &json)
    }

    /// Restores a session saved with [`Session::save`]. A missing or unusable cache file is not
    /// an error: the conversation is then prefilled again on the next turn.
    pub fn restore(engine: &Engine, path: &Path) -> Result<Session> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let saved: SavedSession = serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidArgument(format!("not a saved session: {e}")))?;
        if saved.format != SAVE_FORMAT {
            return Err(Error::InvalidArgument(format!(
                "saved session format {} is not supported",
                saved.format
            )));
        }
        let mut session = Session::new(engine, saved.options)?;
        session.messages = saved.messages;
        if let Some(tokens) = saved.cached_tokens {
            match std::fs::read(cache_path(path))
                .map_err(|e| e.to_string())
                .and_then(|b| session.load_cache(&b, tokens))
            {
                Ok(()) => {}
                Err(e) => log::warn!("session cache not restored ({e}); it will be rebuilt"),
            }
        }
        Ok(session)
    }

    fn load_cache(&mut self, bytes: &[u8], tokens: Vec<u32>) -> std::result::Result<(), String> {
        let blobs = unpack_blobs(bytes).ok_or("corrupt cache file")?;
        let (full, rest) = blobs.split_first().ok_or("empty cache file")?;
        let full = CacheState::from_bytes(full).map_err(|e| e.to_string())?;
        if full.from != 0 || full.n_past != tokens.len() {
            return Err("cache does not match the saved tokens".into());
        }
        let mut checkpoints = Vec::new();
        for pair in rest.chunks(2) {
            let [state, logits] = pair else {
                return Err("corrupt checkpoint".into());
            };
            let state = CacheState::from_bytes(state).map_err(|e| e.to_string())?;
            let logits: Vec<f32> = logits
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect();
            if state.n_past > tokens.len() || logits.len() != self.engine.config().vocab {
                return Err("checkpoint does not match the saved tokens".into());
            }
            checkpoints.push(Checkpoint { state, logits });
        }
        self.seq.load(&full).map_err(|e| e.to_string())?;
        self.cached = tokens;
        self.checkpoints = checkpoints;
        Ok(())
    }

    /// Appends a message without generating (e.g. to rebuild a conversation).
    pub fn push_message(&mut self, message: Message) {
        self.messages.push(message);
    }

    #[doc(hidden)]
    /// The prompt tokens of the last turn (tests compare them against a fresh prefill).
    pub fn debug_last_prompt(&self) -> &[u32] {
        &self.last_prompt
    }

    #[doc(hidden)]
    /// The logits at the end of the last turn's prefill.
    pub fn debug_prefill_logits(&self) -> &[f32] {
        &self.last_prefill_logits
    }

    #[doc(hidden)]
    /// A host copy of the whole cache (tests check rollback exactness with it).
    pub fn debug_cache_state(&self) -> Result<CacheState> {
        self.seq.save(0)
    }

    fn tokenizer(&self) -> &Tokenizer {
        self.engine.tokenizer()
    }

    fn template(&self) -> &ChatTemplate {
        self.engine.template()
    }

    fn full_messages(&self, messages: &[Message]) -> Vec<Message> {
        let mut all = Vec::with_capacity(messages.len() + 1);
        if let Some(sys) = &self.options.system_prompt {
            all.push(Message::system(sys));
        }
        all.extend_from_slice(messages);
        all
    }

    /// The prompt tokens for a conversation, ending with the assistant generation prompt.
    fn render(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let opts = RenderOptions {
            add_generation_prompt: true,
            keep_past_thinking: self.options.keep_past_thinking,
            ..RenderOptions::default()
        };
        let text =
            self.template()
                .render(&self.full_messages(messages), &self.options.tools, &opts)?;
        self.tokenizer().encode(&text, false)
    }

    /// Renders, applying the overflow policy; returns the messages kept and their tokens.
    fn fit(&self, mut messages: Vec<Message>, reserve: usize) -> Result<(Vec<Message>, Vec<u32>)> {
        let capacity = self.seq.capacity();
        loop {
            let tokens = self.render(&messages)?;
            let needed = tokens.len() + reserve;
            if needed <= capacity {
                return Ok((messages, tokens));
            }
            let droppable =
                messages.len() > 1 && self.options.overflow == OverflowPolicy::DropOldest;
            if !droppable {
                return Err(Error::ContextOverflow { needed, capacity });
            }
            messages.remove(0);
            // Never start the history with an orphaned answer or tool result.
            while messages.len() > 1 && messages[0].role != Role::User {
                messages.remove(0);
            }
        }
    }

    /// How many cached tokens a prompt can keep: all of them if the prompt extends the cache,
    /// else the position of the last checkpoint inside the common prefix (0 = start over).
    fn reuse_point(&self, prompt: &[u32]) -> usize {
        let common = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        if common == prompt.len() && self.checkpoints.iter().any(|c| c.n_past() == common) {
            return common;
        }
        // Otherwise at least one token must be computed to get logits.
        let limit = common.min(prompt.len().saturating_sub(1));
        if limit == self.cached.len() {
            return limit;
        }
        self.checkpoints
            .iter()
            .rev()
            .map(Checkpoint::n_past)
            .find(|&n| n <= limit)
            .unwrap_or(0)
    }

    /// Rewinds the cache to [`Session::reuse_point`]; returns it and, when the whole prompt is
    /// reused, the logits stored with its checkpoint.
    fn reuse_prefix(&mut self, prompt: &[u32]) -> Result<(usize, Option<Vec<f32>>)> {
        let point = self.reuse_point(prompt);
        if point < self.cached.len() {
            self.checkpoints.retain(|c| c.n_past() <= point);
            match self.checkpoints.last() {
                Some(c) if c.n_past() == point => {
                    let state = c.state.clone();
                    self.seq.load(&state)?;
                }
                _ => self.seq.reset()?,
            }
            self.cached.truncate(point);
        }
        let logits = (point == prompt.len())
            .then(|| {
                self.checkpoints
                    .iter()
                    .find(|c| c.n_past() == point)
                    .map(|c| c.logits.clone())
            })
            .flatten();
        Ok((point, logits))
    }

    fn checkpoint(&mut self, logits: &[f32]) -> Result<()> {
        let n = self.seq.n_past();
        if self.checkpoints.last().is_some_and(|c| c.n_past() == n) {
            return Ok(());
        }
        self.checkpoints.push(Checkpoint {
            state: self.seq.save(n)?,
            logits: logits.to_vec(),
        });
        if self.checkpoints.len() > MAX_CHECKPOINTS {
            self.checkpoints.remove(0);
        }
        Ok(())
    }
}

const SAVE_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct SavedSession {
    format: u32,
    options: SessionOptions,
    messages: Vec<Message>,
    cached_tokens: Option<Vec<u32>>,
}

const CACHE_MAGIC: &[u8; 8] = b"HRTHCCH1";

/// `magic, count, (len, bytes)*` — the cache file of a saved session.
fn pack_blobs(blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = CACHE_MAGIC.to_vec();
    out.extend_from_slice(&(blobs.len() as u64).to_le_bytes());
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    out
}

fn unpack_blobs(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let rest = bytes.strip_prefix(CACHE_MAGIC)?;
    let (count, mut rest) = rest.split_first_chunk::<8>()?;
    let count = u64::from_le_bytes(*count);
    let mut blobs = Vec::new();
    for _ in 0..count {
        let (len, tail) = rest.split_first_chunk::<8>()?;
        let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
        if len > tail.len() {
            return None;
        }
        let (blob, tail) = tail.split_at(len);
        blobs.push(blob);
        rest = tail;
    }
    Some(blobs)
}

fn cache_path(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".cache");
    p.into()
}

/// Writes via a temporary file and a rename, so a crash never leaves a half-written file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Everything needed to put a session back as it was when a turn started.
struct Rollback {
    messages: Vec<Message>,
    cached: Vec<u32>,
    checkpoints: Vec<Checkpoint>,
    /// Conv states and the KV rows the turn may overwrite.
    state: CacheState,
}

/// A running turn: an iterator of events. Finishing it commits the answer to the session;
/// dropping it early (or a cancel) rolls the session back to how it was before the turn.
pub struct Turn<'a> {
    session: &'a mut Session,
    rollback: Option<Rollback>,
    sampler: Sampler,
    constraint: Option<JsonConstraint>,
    constraint_time: Duration,
    options: GenerateOptions,
    parser: OutputParser,
    utf8: Utf8Stream,
    pending: std::collections::VecDeque<Event>,
    /// Logits of the next token to sample.
    logits: Vec<f32>,
    forced: std::collections::VecDeque<u32>,
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
    fn start(
        session: &'a mut Session,
        message: Option<Message>,
        options: &GenerateOptions,
    ) -> Result<Turn<'a>> {
        let sampler = Sampler::new(options.sampling.clone())?;
        let constraint = match &options.json_schema {
            Some(schema) => Some(JsonConstraint::with_index(
                schema,
                session.engine.token_index(),
            )?),
            None => None,
        };
        if options.max_tokens == 0 {
            return Err(Error::InvalidArgument("max_tokens must be positive".into()));
        }
        session.cancel.clear();
        let started = Instant::now();
        let mut messages = session.messages.clone();
        messages.extend(message);
        let (messages, prompt) = session.fit(messages, 1)?;

        // KV rows from the reuse point on will be overwritten: keep a copy for a rollback.
        let saved_state = session.seq.save(session.reuse_point(&prompt))?;
        let rollback = Rollback {
            messages: std::mem::replace(&mut session.messages, messages),
            cached: session.cached.clone(),
            checkpoints: session.checkpoints.clone(),
            state: saved_state,
        };
        let mut turn = Turn {
            parser: OutputParser::new(ParserOptions {
                starts_in_thinking: false,
                parse_tool_calls: !session.options.tools.is_empty() && constraint.is_none(),
            }),
            constraint,
            constraint_time: Duration::ZERO,
            session,
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
        turn.prefill(&prompt)?;
        Ok(turn)
    }

    fn prefill(&mut self, prompt: &[u32]) -> Result<()> {
        let s = &mut *self.session;
        let (reused, logits) = s.reuse_prefix(prompt)?;
        self.cached_tokens = reused;
        if let Some(logits) = logits {
            self.logits = logits;
        }
        let t0 = Instant::now();
        for chunk in prompt[reused..].chunks(s.options.batch_size) {
            if s.cancel.is_cancelled() {
                self.cancelled();
                return Ok(());
            }
            self.logits = s.seq.forward(chunk, Logits::Last)?;
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
        let Some(rb) = self.rollback.take() else {
            return;
        };
        let s = &mut *self.session;
        s.messages = rb.messages;
        s.cached = rb.cached;
        s.checkpoints = rb.checkpoints;
        if let Err(e) = s.seq.load(&rb.state) {
            // The cache can no longer be trusted: start clean next turn.
            log::error!("rollback failed ({e}); the session cache is reset");
            s.cached.clear();
            s.checkpoints.clear();
            let _ = s.seq.reset();
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
        if self.session.cancel.is_cancelled() {
            self.cancelled();
            return Ok(());
        }
        if self.generated >= self.options.max_tokens {
            self.finish_with(StopReason::MaxTokens);
            return Ok(());
        }
        let token = match self.forced.pop_front() {
            Some(t) => t,
            None => self.sample(),
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

    fn sample(&mut self) -> u32 {
        if let Some(c) = &mut self.constraint {
            let t0 = Instant::now();
            c.mask(&mut self.logits);
            self.constraint_time += t0.elapsed();
        }
        self.sampler.sample(&mut self.logits, &self.session.cached)
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
                self.roll_back();
                self.finished = true;
                return Some(Err(e));
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
