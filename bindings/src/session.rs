//! A conversation: [`ChatSession`] wraps the core's `SharedSession`; each turn runs on an
//! engine-owned worker thread and streams batched events to a foreign [`GenerationListener`].

use std::sync::Arc;

use hearth::{Engine, Event, EventSink, Generation, Request, Session, SharedSession};

use crate::HearthError;
use crate::convert::{ChatEvent, GenerateOptions, Message, SessionOptions, TurnStats};
use crate::model::HearthModel;

/// What a foreign callback returns when it failed (an exception in the listener); the turn is
/// then cancelled instead of the failure becoming a panic on the worker thread.
#[derive(Debug, uniffi::Error, thiserror::Error)]
pub enum CallbackError {
    #[error("{reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for CallbackError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CallbackError::Failed { reason: e.reason }
    }
}

/// Receives one generation, on its worker thread.
#[uniffi::export(foreign)]
pub trait GenerationListener: Send + Sync {
    /// The events of one generated token (adjacent text merged), in order. Return `false` (or
    /// fail) to cancel the turn.
    fn on_events(&self, events: Vec<ChatEvent>) -> Result<bool, CallbackError>;

    /// Called exactly once, last: the turn's figures (`stop_reason` `Cancelled` if it was
    /// cancelled; the session was then rolled back) or the error that ended it.
    fn on_finish(
        &self,
        stats: Option<TurnStats>,
        error: Option<HearthError>,
    ) -> Result<(), CallbackError>;
}

/// What a turn answers.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum ChatInput {
    /// A user message, or a tool result (`Role::Tool`).
    Send { message: Message },
    /// Answer the last message again, replacing the last answer.
    Regenerate,
    /// Replace the text of the last user message, drop what followed it, and answer it again
    /// (the cache up to that message is reused).
    Edit { text: String },
}

struct ListenerSink(Arc<dyn GenerationListener>);

impl EventSink for ListenerSink {
    fn on_events(&mut self, events: Vec<Event>) -> bool {
        let events = events.into_iter().map(ChatEvent::from).collect();
        self.0.on_events(events).unwrap_or(false)
    }

    fn on_finish(&mut self, result: hearth::Result<hearth::TurnStats>) {
        // A failing on_finish has nobody left to tell: the turn is over either way.
        let _ = match result {
            Ok(stats) => self.0.on_finish(Some((&stats).into()), None),
            Err(e) => self.0.on_finish(None, Some(e.into())),
        };
    }
}

/// A running turn. `cancel()` stops it within one token and rolls the session back exactly;
/// dropping (closing) the handle does the same.
#[derive(uniffi::Object)]
pub struct GenerationHandle {
    generation: Generation,
}

#[uniffi::export]
impl GenerationHandle {
    /// Idempotent; the listener's `on_finish` still comes (with `StopReason::Cancelled`).
    pub fn cancel(&self) {
        self.generation.cancel();
    }

    pub fn is_finished(&self) -> bool {
        self.generation.is_finished()
    }
}

/// One conversation with its own caches; thread-safe (one turn at a time, others wait).
/// Releasing it frees the caches once a running turn has ended.
#[derive(uniffi::Object)]
pub struct ChatSession {
    shared: SharedSession,
}

impl ChatSession {
    pub(crate) fn create(
        engine: &Engine,
        options: SessionOptions,
    ) -> Result<Arc<Self>, HearthError> {
        Ok(Self::wrap(Session::new(engine, options.to_core()?)?))
    }

    fn wrap(session: Session) -> Arc<Self> {
        Arc::new(ChatSession {
            shared: SharedSession::new(session),
        })
    }
}

#[uniffi::export]
impl ChatSession {
    /// A session saved with `save`, on `model`.
    #[uniffi::constructor]
    pub fn restore(model: Arc<HearthModel>, path: String) -> Result<Arc<Self>, HearthError> {
        let session = Session::restore(&model.engine, path.as_ref())?;
        Ok(Self::wrap(session))
    }

    /// Starts a turn on a worker thread (after any running turn of this session). An `Edit`
    /// first waits for a running turn, to find the last user message.
    pub fn generate(
        &self,
        input: ChatInput,
        options: GenerateOptions,
        listener: Arc<dyn GenerationListener>,
    ) -> Result<Arc<GenerationHandle>, HearthError> {
        let request = match input {
            ChatInput::Send { message } => Request::Send(message.to_core()?),
            ChatInput::Regenerate => Request::Regenerate,
            ChatInput::Edit { text } => {
                let session = self.shared.lock();
                let mut messages = session.messages().iter();
                let index = messages.rposition(|m| m.role == hearth::Role::User);
                let index = index.ok_or_else(|| HearthError::InvalidArgument {
                    message: "there is no user message to edit".into(),
                })?;
                Request::Edit {
                    index,
                    message: hearth::Message::user(text),
                }
            }
        };
        let sink = ListenerSink(listener);
        let generation = self.shared.generate(request, options.to_core()?, sink)?;
        Ok(Arc::new(GenerationHandle { generation }))
    }

    /// Adds messages to the history without answering them (e.g. a conversation kept by the
    /// app, or a tool call made elsewhere); the next turn prefills them.
    pub fn append_messages(&self, messages: Vec<Message>) -> Result<(), HearthError> {
        let messages = messages.iter().map(Message::to_core);
        let messages = messages.collect::<Result<Vec<_>, HearthError>>()?;
        let mut session = self.shared.lock();
        messages.into_iter().for_each(|m| session.push_message(m));
        Ok(())
    }

    /// The conversation so far (waits for a running turn).
    pub fn messages(&self) -> Result<Vec<Message>, HearthError> {
        let session = self.shared.lock();
        Ok(session.messages().iter().map(Message::from).collect())
    }

    /// Forgets the conversation (keeps the system prompt and tools).
    pub fn reset(&self) -> Result<(), HearthError> {
        Ok(self.shared.lock().reset()?)
    }

    /// Gives memory back (an iOS memory warning, Android's `onTrimMemory`): frees this
    /// session's caches; the conversation is kept and the next turn prefills it again.
    /// Waits for a running turn.
    pub fn release_memory(&self) {
        self.shared.lock().release_memory();
    }

    /// Tokens the conversation would take with `text` sent as the next user message.
    pub fn count_tokens(&self, text: String) -> Result<u32, HearthError> {
        let session = self.shared.lock();
        let mut messages = session.messages().to_vec();
        messages.push(hearth::Message::user(text));
        Ok(u32::try_from(session.count_tokens(&messages)?).unwrap_or(u32::MAX))
    }

    /// Writes the conversation (and, with `include_cache`, its token history) to `path`.
    pub fn save(&self, path: String, include_cache: bool) -> Result<(), HearthError> {
        Ok(self.shared.lock().save(path.as_ref(), include_cache)?)
    }
}

/// Test support: the text (thinking and answer) the core's own blocking `Session::send_with`
/// produces for `text` on a fresh session, to compare the bindings' streams against.
#[doc(hidden)]
#[uniffi::export]
pub fn reference_reply(
    model: Arc<HearthModel>,
    session_options: SessionOptions,
    text: String,
    options: GenerateOptions,
) -> Result<String, HearthError> {
    let mut session = Session::new(&model.engine, session_options.to_core()?)?;
    let mut out = String::new();
    let opts = options.to_core()?;
    session.send_with(hearth::Message::user(text), &opts, |e| match e {
        Event::Text(t) | Event::Thinking(t) => out.push_str(t),
        _ => {}
    })?;
    Ok(out)
}
