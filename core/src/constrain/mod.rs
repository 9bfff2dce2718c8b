//! Structured output: constrain generation to a JSON Schema, so the output always parses and
//! validates.
//!
//! The schema is compiled to a byte-level pushdown automaton (`automaton.rs`); the vocabulary is
//! indexed once as a byte trie ([`TokenIndex`]). The mask for a step walks the trie from the
//! current automaton state, simulating each shared token prefix once and skipping every subtree
//! whose prefix is already invalid. Inside a string (the expensive case: nearly every token is
//! allowed), the tokens that stay inside it are allowed wholesale from a precomputed bitmap and
//! only those that close it (contain an unescaped `"`) are walked.
//!
//! # Output form
//! Compact JSON: no whitespace except one optional space after `:` and after `,`. Objects
//! with `properties` get exactly those keys, in schema order; required ones are mandatory,
//! optional ones may be skipped. Numbers have at most 15 digits and no exponent. Bounded
//! whitespace and digits keep a model from rambling inside a value; strings are bounded only by
//! `maxLength`, so give the generation a token budget and check [`JsonConstraint::is_complete`].
//! Key order is the schema's: `serde_json` is built with `preserve_order` for this.
//!
//! # End of generation and special tokens
//! Control tokens (`<|im_end|>`, ...) are never part of a value. End-of-generation ids are
//! allowed exactly when the value is complete; once nothing can follow (an object, array,
//! string or literal closed at the top level) they are the only ids allowed. A top-level number
//! is complete but may still grow, so then both its digits and end-of-generation are allowed.
//! Every state the automaton admits can still be completed, and a byte-level vocabulary has a
//! token for every byte, so the mask is never empty.
//!
//! # Cost
//! [`TokenIndex::new`] (the tries, ~1 ms for 2k ids, ~40 ms for 64k) is the costly part of
//! [`JsonConstraint::new`]: build it once per tokenizer and pass it to
//! [`JsonConstraint::with_index`]. A mask then costs a few µs (2k vocabulary) to ~100-200 µs
//! (64k) per token.
//!
//! # Supported schema subset
//! `type` (`object`, `array`, `string`, `number`, `integer`, `boolean`, `null`, or a list),
//! `properties`, `required`, `additionalProperties` (decides only for objects without
//! `properties`: `false` → `{}`, a schema → free keys with such values), `items`, `minItems`,
//! `maxItems`, `minLength`, `maxLength`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum` (number or draft-4 boolean), `enum`, `const`, `anyOf`, `oneOf` (as
//! `anyOf`: exclusivity is not enforced), `allOf` with one schema, local `$ref` (`#/$defs/..`,
//! `#/definitions/..`, recursion allowed), boolean schemas, `{}` (any value). Annotations
//! (`title`, `description`, `default`, `examples`, `format`, `$schema`, `$id`, `$comment`,
//! `readOnly`, `writeOnly`, `deprecated`, `contentMediaType`, `contentEncoding`) are ignored.
//! Anything else (`pattern`, `multipleOf`, `patternProperties`, `minProperties`, `uniqueItems`,
//! `prefixItems`, `not`, `if`, ...) is [`Error::InvalidArgument`].

mod automaton;
mod schema;
mod vocab;

use std::sync::Arc;

pub use vocab::TokenIndex;

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;
use automaton::{Frame, Threads};
use schema::Grammar;
use vocab::Trie;

const NEG_INF_BITS: u32 = 0xFF80_0000; // f32::NEG_INFINITY

/// Constrains a generation to JSON matching a schema. `Send`; one per generation.
///
/// Per step: [`mask`](Self::mask) the logits, sample, [`accept`](Self::accept) the token; stop
/// when the sampled token is end-of-generation (allowed only once [`is_complete`](Self::is_complete)).
pub struct JsonConstraint {
    grammar: Grammar,
    index: Arc<TokenIndex>,
    state: Threads,
    /// An end-of-generation token has been accepted.
    finished: bool,
    /// Automaton states per trie depth, reused between masks.
    scratch: Vec<Threads>,
    allowed: Vec<u64>,
}

impl std::fmt::Debug for JsonConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonConstraint")
            .field("nodes", &self.grammar.nodes.len())
            .field("threads", &self.state.len())
            .field("complete", &self.is_complete())
            .field("finished", &self.finished)
            .finish()
    }
}

impl JsonConstraint {
    /// Compiles `schema` for `tokenizer`'s vocabulary. A schema outside the supported subset
    /// (see the module docs) is [`Error::InvalidArgument`].
    pub fn new(schema: &serde_json::Value, tokenizer: &Tokenizer) -> Result<Self> {
        Self::with_index(schema, Arc::new(TokenIndex::new(tokenizer)))
    }

    /// Like [`new`](Self::new) with a prebuilt vocabulary index (build it once per tokenizer;
    /// it is the costly part).
    pub fn with_index(schema: &serde_json::Value, index: Arc<TokenIndex>) -> Result<Self> {
        let grammar = schema::compile(schema)?;
        let state = Threads::start(grammar.root);
        let depth = index.full.max_depth + 1;
        let words = index.vocab_size.div_ceil(64);
        Ok(JsonConstraint {
            grammar,
            index,
            state,
            finished: false,
            scratch: vec![Threads::default(); depth],
            allowed: vec![0; words],
        })
    }

    /// Sets every token that may not come next to `f32::NEG_INFINITY`. Ids past the vocabulary
    /// are always disallowed.
    pub fn mask(&mut self, logits: &mut [f32]) {
        self.compute_allowed();
        for (k, chunk) in logits.chunks_mut(64).enumerate() {
            let w = self.allowed.get(k).copied().unwrap_or(0);
            if w == u64::MAX {
                continue;
            }
            if w == 0 {
                chunk.fill(f32::NEG_INFINITY);
                continue;
            }
            // Branch-free: the bits of a mixed word are unpredictable.
            for (j, l) in chunk.iter_mut().enumerate() {
                let keep = (w >> j & 1) as u32;
                *l = f32::from_bits(
                    l.to_bits() & keep.wrapping_neg() | NEG_INF_BITS & !keep.wrapping_neg(),
                );
            }
        }
    }

    /// Whether `token` may come next (what [`mask`](Self::mask) would leave finite).
    pub fn allows(&self, token: u32) -> bool {
        if self.index.is_eog(token) {
            return self.is_complete();
        }
        if self.finished {
            return false;
        }
        let Some(bytes) = self.index.piece(token) else {
            return false;
        };
        run_bytes(&self.grammar, &self.state, bytes).is_some()
    }

    /// Advances past `token`. An error (and no change) if the token was not allowed.
    pub fn accept(&mut self, token: u32) -> Result<()> {
        if self.index.is_eog(token) {
            if !self.is_complete() {
                return Err(Error::InvalidArgument(format!(
                    "json constraint: end-of-generation token {token} before the JSON value is complete"
                )));
            }
            self.finished = true;
            return Ok(());
        }
        if self.finished {
            return Err(Error::InvalidArgument(format!(
                "json constraint: token {token} after end of generation"
            )));
        }
        let bytes = self.index.piece(token).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "json constraint: token {token} is a control token or not in the vocabulary"
            ))
        })?;
        match run_bytes(&self.grammar, &self.state, bytes) {
            Some(next) => {
                self.state = next;
                Ok(())
            }
            None => Err(Error::InvalidArgument(format!(
                "json constraint: token {token} ({:?}) does not continue valid JSON for the schema",
                String::from_utf8_lossy(bytes)
            ))),
        }
    }

    /// Whether a whole valid value has been produced (end-of-generation is then allowed).
    pub fn is_complete(&self) -> bool {
        self.finished || self.grammar.is_complete(&self.state)
    }

    /// Advances over raw bytes (as if a token had them); `false` and no change if they do not
    /// continue a valid value. For tests and for text produced outside the vocabulary.
    pub fn accept_bytes(&mut self, bytes: &[u8]) -> bool {
        if self.finished {
            return bytes.is_empty();
        }
        match run_bytes(&self.grammar, &self.state, bytes) {
            Some(next) => {
                self.state = next;
                true
            }
            None => false,
        }
    }

    /// Fills `self.allowed` with one bit per allowed id.
    fn compute_allowed(&mut self) {
        self.allowed.iter_mut().for_each(|w| *w = 0);
        if self.is_complete() {
            for &e in &self.index.eog {
                if let Some(w) = self.allowed.get_mut(e as usize / 64) {
                    *w |= 1 << (e % 64);
                }
            }
        }
        if self.finished {
            return;
        }
        // Inside a string (nothing pending): the tokens that stay inside it are allowed from
        // precomputed tables (all of them, or those short enough for the room left); only those
        // that close it are walked.
        let room = match self.state.single_top() {
            Some(&Frame::Str {
                node,
                len,
                esc: 0,
                utf8: 0,
            }) => {
                let max = match self.grammar.nodes.get(node as usize) {
                    Some(schema::Node::Str { max, .. }) => *max,
                    _ => u32::MAX,
                };
                Some(max.saturating_sub(len))
            }
            _ => None,
        };
        let index = Arc::clone(&self.index);
        let trie = match room {
            Some(r) if r >= index.max_in_string_chars => {
                for (w, p) in self.allowed.iter_mut().zip(&index.in_string) {
                    *w |= p;
                }
                &index.closing
            }
            Some(r) => {
                let n = index.by_chars_end[r as usize] as usize;
                for &t in &index.by_chars[..n] {
                    self.allowed[t as usize / 64] |= 1 << (t % 64);
                }
                &index.closing
            }
            None => &index.full,
        };
        walk(
            &self.grammar,
            &self.state,
            trie,
            &mut self.scratch,
            &mut self.allowed,
        );
    }
}

/// The state after `bytes`, or `None` if they do not continue a valid value.
fn run_bytes(g: &Grammar, from: &Threads, bytes: &[u8]) -> Option<Threads> {
    let mut a = Threads::default();
    let mut b = Threads::default();
    a.copy_from(from);
    for &byte in bytes {
        g.step(&a, byte, &mut b);
        if b.is_empty() {
            return None;
        }
        std::mem::swap(&mut a, &mut b);
    }
    Some(a)
}

/// Marks in `allowed` every token of `trie` whose bytes continue `state`.
fn walk(g: &Grammar, state: &Threads, trie: &Trie, scratch: &mut [Threads], allowed: &mut [u64]) {
    scratch[0].copy_from(state);
    let nodes = &trie.nodes;
    let mut i = 1;
    while i < nodes.len() {
        let n = nodes[i];
        let d = n.depth as usize;
        let (parents, rest) = scratch.split_at_mut(d);
        let here = &mut rest[0];
        g.step(&parents[d - 1], n.byte, here);
        if here.is_empty() {
            i = n.end as usize;
            continue;
        }
        for &t in &trie.toks[n.tok_start as usize..n.tok_end as usize] {
            allowed[t as usize / 64] |= 1 << (t % 64);
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests;
