//! Cooperative cancellation shared by generations, engine loads and downloads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cancel flag that can be cloned and set from any thread.
///
/// Make one per operation (a turn, a load, a download): it is honoured from the moment it
/// exists, so a cancel sent before the operation starts stops it before any work (a turn then
/// rolls back to exactly where it was). A token is never reset; a new operation takes a new one.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, not yet cancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the operation to stop (within one token for a generation).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`CancelToken::cancel`] was called on this token or a clone of it.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Error::Cancelled)` once cancelled.
    pub fn check(&self) -> crate::Result<()> {
        if self.is_cancelled() {
            Err(crate::Error::Cancelled)
        } else {
            Ok(())
        }
    }
}
