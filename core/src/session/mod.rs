//! A conversation: messages, the token history whose cache is on the backend, conv-state
//! checkpoints at turn boundaries, and the generate loop that streams [`Event`]s.
//!
//! Exact cache reuse on a hybrid conv + attention model: the prompt of a turn is rendered from
//! the whole conversation, its longest common prefix with the cached tokens is found, the
//! nearest conv checkpoint at or before that prefix is restored (attention KV rows simply stay),
//! and only the rest is prefilled. Cancel restores the state saved when the turn started.

mod cache;
mod persist;
mod shared;
mod turn;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cancel::CancelToken;
use crate::chat::{ChatTemplate, Message, RenderOptions, Role, Tool, ToolCall, literal};
use crate::engine::{Engine, Reservation, Sequence};
use crate::error::{Error, Result};
use crate::models::lfm2::Logits;
use crate::sampling::SamplingOptions;
use crate::tokenizer::Tokenizer;

use cache::Checkpoint;
pub use shared::{EventSink, Generation, SharedSession};
pub use turn::Turn;

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
    /// Instructions rendered as the system message before the conversation.
    pub system_prompt: Option<String>,
    /// Tools the model may call (rendered into the prompt; calls arrive as [`Event::ToolCall`]).
    pub tools: Vec<Tool>,
    /// What to do when a turn would not fit in the context.
    pub overflow: OverflowPolicy,
    /// Keep earlier turns' thinking in the prompt (templates drop it by default).
    pub keep_past_thinking: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            context_length: 4096,
            batch_size: crate::memory::DEFAULT_SESSION_BATCH as usize,
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
    /// Temperature, top-k/top-p/min-p, repetition penalty and seed.
    #[serde(skip)]
    pub sampling: SamplingOptions,
    /// Most tokens to generate in this turn (thinking included).
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
    /// `max_tokens` were generated.
    MaxTokens,
    /// A stop string appeared (it is not part of the answer).
    StopString,
    /// The context is full.
    ContextFull,
    /// The turn was cancelled (and rolled back).
    Cancelled,
}

/// Figures of one turn.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnStats {
    /// Why the turn ended.
    pub stop_reason: StopReason,
    /// Tokens of the rendered prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose cache was reused (not prefilled again).
    pub cached_tokens: usize,
    /// Tokens generated (thinking, answer and tool calls).
    pub generated_tokens: usize,
    /// From the start of the turn to the first generated token.
    pub time_to_first_token: Duration,
    /// Prompt tokens prefilled per second (cached ones excluded).
    pub prefill_tok_s: f64,
    /// Tokens generated per second after the first.
    pub decode_tok_s: f64,
    /// Time spent computing JSON-schema token masks (zero without a schema).
    pub constraint_time: Duration,
}

/// What a turn streams.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Reasoning text (between `<think>` and `</think>`), when shown.
    Thinking(String),
    /// Answer text.
    Text(String),
    /// A tool call the model made; answer it with a [`Message`] of role `Tool`.
    ToolCall(ToolCall),
    /// The model wrote something that looked like a tool call but did not parse.
    ToolCallError {
        /// The text as the model wrote it.
        raw: String,
        /// Why it did not parse.
        reason: String,
    },
    /// The turn ended (always the last event).
    Done(TurnStats),
}

/// What a turn answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Append this message (user text or a tool result) and answer it.
    Send(Message),
    /// Answer the last message again (the last assistant answer, if any, is replaced).
    Regenerate,
    /// Replace message `index`, drop everything after it, and answer it.
    Edit {
        /// Which message to replace (an index into [`Session::messages`]).
        index: usize,
        /// The new message.
        message: Message,
    },
}

/// One conversation with its own caches. Several sessions can share an [`Engine`], each on its
/// own thread (see [`SharedSession`] for an owned, thread-safe handle).
pub struct Session {
    engine: Engine,
    seq: LazySeq,
    options: SessionOptions,
    messages: Vec<Message>,
    /// Tokens whose KV / conv state is in `seq` (always `seq.n_past()` long).
    cached: Vec<u32>,
    /// Conv-only checkpoints, ascending `n_past`, each at a prefix of `cached`.
    checkpoints: Vec<Checkpoint>,
    last_prompt: Vec<u32>,
    last_prefill_logits: Vec<f32>,
    /// This session's share of the engine's memory budget, returned on drop.
    _reservation: Reservation,
}

impl Session {
    /// A new, empty conversation. Fails with [`Error::InsufficientMemory`] when its caches at
    /// `options.context_length` would not fit next to the model and the other sessions.
    pub fn new(engine: &Engine, options: SessionOptions) -> Result<Session> {
        if options.batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be positive".into()));
        }
        if options.context_length == 0 {
            return Err(Error::InvalidArgument(
                "context_length must be positive".into(),
            ));
        }
        let reservation = engine.reserve_session(options.context_length, options.batch_size)?;
        let seq = LazySeq::new(engine, &options)?;
        Ok(Session {
            engine: engine.clone(),
            seq,
            options,
            messages: Vec::new(),
            cached: Vec::new(),
            checkpoints: Vec::new(),
            last_prompt: Vec::new(),
            last_prefill_logits: Vec::new(),
            _reservation: reservation,
        })
    }

    /// Moves the conversation to another engine — typically the same model reloaded on the
    /// CPU after a GPU fault ([`Engine::reload`]). Messages and options are kept; the cache is
    /// not (the next turn prefills the conversation on the new engine). On error nothing
    /// changes.
    pub fn move_to(&mut self, engine: &Engine) -> Result<()> {
        let mut moved = Session::new(engine, self.options.clone())?;
        moved.messages = std::mem::take(&mut self.messages);
        *self = moved;
        Ok(())
    }

    /// Gives memory back when the app is asked to (an iOS memory warning, Android's
    /// `onTrimMemory`): frees this session's KV and conv caches on the backend, its cached
    /// checkpoints and scratch. The conversation is kept and continues exactly — the next turn
    /// prefills it again (and allocates the caches again). The session's share of the engine's
    /// memory budget stays booked, so that turn is not refused for memory another session
    /// took meanwhile.
    pub fn release_memory(&mut self) {
        self.seq.release();
        self.cached = Vec::new();
        self.checkpoints = Vec::new();
        self.last_prompt = Vec::new();
        self.last_prefill_logits = Vec::new();
    }

    /// Whether the backend caches are allocated (false after [`Session::release_memory`]
    /// until the next turn).
    pub fn has_cache(&self) -> bool {
        self.seq.allocated().is_some()
    }

    /// The conversation so far (without the system prompt).
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The options the session was created with (and later changes).
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// The engine this session runs on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Tokens currently cached on the backend.
    pub fn cached_tokens(&self) -> &[u32] {
        &self.cached
    }

    /// The context window in tokens (the requested length, capped at the model's).
    pub fn context_length(&self) -> usize {
        self.seq.capacity()
    }

    /// Replaces the system prompt from the next turn on (the cache is reused up to where the prompt changes).
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

    /// The prompt tokens for `messages` (after the system prompt), ending with the assistant
    /// generation prompt: what a turn with this history would feed the model. Control-token
    /// strings inside message text are tokenized as text, never as control tokens.
    pub fn prompt_tokens(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.render(messages)
    }

    /// Sends a message and streams the answer. Dropping the returned turn before it finishes
    /// cancels it (the session rolls back); [`Turn::cancel_token`] cancels it from any thread.
    pub fn send(&mut self, message: Message, options: &GenerateOptions) -> Result<Turn<'_>> {
        self.start(Request::Send(message), options, CancelToken::new())
    }

    /// Answers the last message again (the last assistant answer, if any, is replaced).
    pub fn regenerate(&mut self, options: &GenerateOptions) -> Result<Turn<'_>> {
        self.start(Request::Regenerate, options, CancelToken::new())
    }

    /// Replaces message `index` (and drops everything after it), then answers it.
    pub fn edit(
        &mut self,
        index: usize,
        message: Message,
        options: &GenerateOptions,
    ) -> Result<Turn<'_>> {
        self.start(
            Request::Edit { index, message },
            options,
            CancelToken::new(),
        )
    }

    /// Starts a turn for `request` that `cancel` stops. A token cancelled before this call
    /// still starts (and immediately rolls back) the turn, so a cancel is never lost.
    pub fn start(
        &mut self,
        request: Request,
        options: &GenerateOptions,
        cancel: CancelToken,
    ) -> Result<Turn<'_>> {
        let messages = self.messages_for(request)?;
        Turn::start(self, messages, options, cancel)
    }

    /// Runs a turn to the end, calling `on_event` for every event.
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
        stats.ok_or_else(|| Error::Internal("turn ended without finishing".into()))
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
    pub fn debug_cache_state(&self) -> Result<crate::engine::CacheState> {
        self.seq
            .allocated()
            .ok_or_else(|| Error::Internal("the cache was released".into()))?
            .save(0)
    }

    /// The conversation a request turns the current one into (the session is not changed:
    /// a turn commits it only when it finishes).
    fn messages_for(&self, request: Request) -> Result<Vec<Message>> {
        let mut messages = self.messages.clone();
        match request {
            Request::Send(message) => messages.push(message),
            Request::Regenerate => {
                if let Some(last) = messages.iter().rposition(|m| m.role != Role::Assistant) {
                    messages.truncate(last + 1);
                }
                if messages.is_empty() {
                    return Err(Error::InvalidArgument("nothing to regenerate".into()));
                }
            }
            Request::Edit { index, message } => {
                if index >= messages.len() {
                    return Err(Error::InvalidArgument(format!("no message {index}")));
                }
                messages.truncate(index);
                messages.push(message);
            }
        }
        Ok(messages)
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
        let all = self.full_messages(messages);
        let controls = self.tokenizer().control_strings();
        if !literal::needs_marking(&all, controls) {
            let text = self.template().render(&all, &self.options.tools, &opts)?;
            return self.tokenizer().encode(&text, false);
        }
        // Control-token strings typed into messages stay text (see `chat::literal`).
        let marked = literal::mark(&all, controls);
        let text = self
            .template()
            .render(&marked, &self.options.tools, &opts)?;
        self.tokenizer().encode_marked(&text)
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
}

/// The session's backend cache: allocated on first use, freed by [`Session::release_memory`].
struct LazySeq {
    engine: Engine,
    context: usize,
    batch: usize,
    capacity: usize,
    inner: Option<Box<dyn Sequence>>,
}

impl LazySeq {
    fn new(engine: &Engine, options: &SessionOptions) -> Result<Self> {
        let inner = engine.new_sequence(options.context_length, options.batch_size)?;
        Ok(LazySeq {
            engine: engine.clone(),
            context: options.context_length,
            batch: options.batch_size,
            capacity: inner.capacity(),
            inner: Some(inner),
        })
    }

    fn get(&mut self) -> Result<&mut Box<dyn Sequence>> {
        if self.inner.is_none() {
            self.inner = Some(self.engine.new_sequence(self.context, self.batch)?);
        }
        self.inner
            .as_mut()
            .ok_or_else(|| Error::Internal("no session cache".into()))
    }

    fn allocated(&self) -> Option<&dyn Sequence> {
        self.inner.as_deref()
    }

    fn release(&mut self) {
        self.inner = None;
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn n_past(&self) -> usize {
        self.inner.as_ref().map_or(0, |s| s.n_past())
    }

    fn forward(&mut self, tokens: &[u32], mode: Logits) -> Result<Vec<f32>> {
        self.get()?.forward(tokens, mode)
    }

    fn reset(&mut self) -> Result<()> {
        match &mut self.inner {
            Some(s) => s.reset(),
            None => Ok(()),
        }
    }

    fn save(&mut self, from: usize) -> Result<crate::engine::CacheState> {
        self.get()?.save(from)
    }

    fn load(&mut self, state: &crate::engine::CacheState) -> Result<()> {
        self.get()?.load(state)
    }
}
