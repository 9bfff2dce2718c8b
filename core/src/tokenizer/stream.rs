//! Incremental detokenization for streaming generation.

use std::sync::Arc;

use super::Tokenizer;

/// Turns a stream of token ids into text, one token at a time, without ever emitting half a
/// UTF-8 character.
///
/// Byte-level BPE tokens can end in the middle of a multi-byte character (an emoji is often two
/// or more tokens). The bytes of each token are appended to a small buffer and only the complete
/// characters are returned; the incomplete tail waits for the next token. Invalid byte sequences
/// become U+FFFD exactly where [`String::from_utf8_lossy`] would put them, so the concatenation
/// of every [`push`](Self::push) plus [`finish`](Self::finish) equals
/// [`Tokenizer::decode`]`(ids, false)`. Each push costs O(bytes of the token).
///
/// Control and user-defined tokens yield their text (`<|im_end|>`, `<think>`); use
/// [`Tokenizer::is_control`] to hide the former if wanted.
#[derive(Debug)]
pub struct Detokenizer {
    tok: Arc<Tokenizer>,
    pending: Vec<u8>,
}

impl Detokenizer {
    /// A detokenizer over `tok` (it keeps the tokenizer alive).
    pub fn new(tok: Arc<Tokenizer>) -> Self {
        Detokenizer {
            tok,
            pending: Vec::with_capacity(16),
        }
    }

    /// Adds one token and returns the text it completes (possibly empty). An id outside the
    /// vocabulary yields nothing (and a warning in the log).
    pub fn push(&mut self, id: u32) -> String {
        match self.tok.piece_bytes(id) {
            Some(bytes) => self.pending.extend_from_slice(bytes),
            None => {
                log::warn!("detokenizer: token id {id} is not in the vocabulary, ignored");
                return String::new();
            }
        }
        take_complete_utf8(&mut self.pending)
    }

    /// Flushes the buffer at the end of the stream: an incomplete trailing character becomes
    /// U+FFFD. The detokenizer is empty afterwards and can be reused.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }

    /// Number of bytes held back waiting for the rest of a character (0 to 3).
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }
}

/// Removes and returns the complete UTF-8 characters at the front of `pending` (invalid
/// sequences become U+FFFD, as `String::from_utf8_lossy` would put them); an incomplete
/// character at the end stays for the next bytes.
pub(crate) fn take_complete_utf8(pending: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut start = 0;
    while start < pending.len() {
        match std::str::from_utf8(&pending[start..]) {
            Ok(s) => {
                out.push_str(s);
                start = pending.len();
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(&String::from_utf8_lossy(&pending[start..start + valid]));
                start += valid;
                match e.error_len() {
                    // Invalid whatever follows: replace, as from_utf8_lossy does.
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        start += n;
                    }
                    // A character cut short at the end: wait for more bytes.
                    None => break,
                }
            }
        }
    }
    pending.drain(..start);
    out
}
