//! The cache side of a session: conv-state checkpoints at turn boundaries, the reuse point of
//! a new prompt, and the rollback copy of a turn.

use super::Session;
use crate::chat::Message;
use crate::engine::CacheState;
use crate::error::Result;

/// The conv states at a turn boundary and the logits there (so a prompt that ends exactly at a
/// checkpoint, as when regenerating, needs no prefill at all).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Checkpoint {
    pub(super) state: CacheState,
    pub(super) logits: Vec<f32>,
}

impl Checkpoint {
    pub(super) fn n_past(&self) -> usize {
        self.state.n_past
    }
}

/// Conv checkpoints kept per session (oldest dropped first).
const MAX_CHECKPOINTS: usize = 16;

/// Everything needed to put a session back as it was when a turn started.
pub(super) struct Rollback {
    messages: Vec<Message>,
    cached: Vec<u32>,
    checkpoints: Vec<Checkpoint>,
    /// Conv states and the KV rows the turn may overwrite.
    state: CacheState,
}

impl Session {
    /// How many cached tokens a prompt can keep: all of them if the prompt extends the cache,
    /// else the position of the last checkpoint inside the common prefix (0 = start over).
    pub(super) fn reuse_point(&self, prompt: &[u32]) -> usize {
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
    pub(super) fn reuse_prefix(&mut self, prompt: &[u32]) -> Result<(usize, Option<Vec<f32>>)> {
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

    pub(super) fn checkpoint(&mut self, logits: &[f32]) -> Result<()> {
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

    /// Saves what a turn that renders `prompt` may change, and installs `messages` (a turn
    /// commits them by dropping the rollback, or puts the old ones back with [`Self::roll_back`]).
    pub(super) fn begin_turn(
        &mut self,
        messages: Vec<Message>,
        prompt: &[u32],
    ) -> Result<Rollback> {
        // KV rows from the reuse point on will be overwritten: keep a copy for a rollback.
        let state = self.seq.save(self.reuse_point(prompt))?;
        Ok(Rollback {
            messages: std::mem::replace(&mut self.messages, messages),
            cached: self.cached.clone(),
            checkpoints: self.checkpoints.clone(),
            state,
        })
    }

    /// Puts the session back exactly as it was when the turn began.
    pub(super) fn roll_back(&mut self, rb: Rollback) {
        self.messages = rb.messages;
        self.cached = rb.cached;
        self.checkpoints = rb.checkpoints;
        if let Err(e) = self.seq.load(&rb.state) {
            // The cache can no longer be trusted: start clean next turn.
            log::error!("rollback failed ({e}); the session cache is reset");
            self.cached.clear();
            self.checkpoints.clear();
            let _ = self.seq.reset();
        }
    }
}
