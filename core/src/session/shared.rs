//! An owned, thread-safe session whose turns run on a worker thread: what a binding (Swift,
//! Kotlin) or a UI holds, since a [`super::Turn`] borrows its session.

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::{Event, GenerateOptions, Request, Session, TurnStats};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};

/// Receives a generation's events on its worker thread.
pub trait EventSink: Send + 'static {
    /// Events of one generated token (adjacent text merged; never [`Event::Done`]). Return
    /// `false` to cancel the turn (e.g. the consumer went away).
    fn on_events(&mut self, events: Vec<Event>) -> bool;

    /// Called exactly once, last: the turn's figures (its stop reason says whether it was
    /// cancelled, in which case the session was rolled back), or the error that ended it (the
    /// session was rolled back too).
    fn on_finish(&mut self, result: Result<TurnStats>);
}

/// A [`Session`] behind a mutex, cheap to clone and to share across threads. One turn runs at
/// a time per session; different sessions of one engine run concurrently.
#[derive(Clone)]
pub struct SharedSession {
    inner: Arc<Mutex<Session>>,
}

impl SharedSession {
    /// Wraps a session for use from several threads.
    pub fn new(session: Session) -> Self {
        SharedSession {
            inner: Arc::new(Mutex::new(session)),
        }
    }

    /// Exclusive access to the session (waits for a running turn to end). A turn that
    /// panicked has already rolled back (its drop does), so a poisoned lock is recovered.
    pub fn lock(&self) -> MutexGuard<'_, Session> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a turn on a new worker thread (after any running turn of this session) and
    /// streams it to `sink`. The returned handle cancels it; dropping the handle cancels too.
    pub fn generate(
        &self,
        request: Request,
        options: GenerateOptions,
        sink: impl EventSink,
    ) -> Result<Generation> {
        let cancel = CancelToken::new();
        let worker = Worker {
            session: self.clone(),
            cancel: cancel.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("hearth-generate".into())
            .spawn(move || worker.run(request, &options, sink))
            .map_err(|e| Error::Internal(format!("cannot start the generation thread: {e}")))?;
        Ok(Generation {
            cancel,
            thread: Some(thread),
        })
    }
}

struct Worker {
    session: SharedSession,
    cancel: CancelToken,
}

impl Worker {
    fn run(self, request: Request, options: &GenerateOptions, mut sink: impl EventSink) {
        let result = self.turn(request, options, &mut sink);
        sink.on_finish(result);
    }

    fn turn(
        &self,
        request: Request,
        options: &GenerateOptions,
        sink: &mut impl EventSink,
    ) -> Result<TurnStats> {
        let mut session = self.session.lock();
        let mut turn = session.start(request, options, self.cancel.clone())?;
        let mut stats = None;
        while let Some(batch) = turn.next_batch() {
            let mut events = batch?;
            if let Some(pos) = events.iter().position(|e| matches!(e, Event::Done(_))) {
                if let Event::Done(s) = events.remove(pos) {
                    stats = Some(s);
                }
            }
            if !events.is_empty() && !sink.on_events(events) {
                self.cancel.cancel();
            }
        }
        stats.ok_or_else(|| Error::Internal("turn ended without its figures".into()))
    }
}

/// A running generation. [`Generation::cancel`] stops it within one token and rolls the
/// session back exactly; dropping the handle does the same unless it was waited for.
pub struct Generation {
    cancel: CancelToken,
    thread: Option<JoinHandle<()>>,
}

impl Generation {
    /// Stops the turn (idempotent; also before it started).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// The turn's cancel token (clone it to cancel from elsewhere).
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// Whether the worker has finished (the sink's `on_finish` was called).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Blocks until the worker has finished (the result went to the sink's `on_finish`).
    pub fn wait(mut self) -> Result<()> {
        self.join()
    }

    fn join(&mut self) -> Result<()> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| Error::Internal("the generation thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Abandoned: stop the turn; the worker rolls back and releases the session.
            self.cancel.cancel();
        }
    }
}
