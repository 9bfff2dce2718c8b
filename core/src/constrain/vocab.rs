//! The vocabulary as byte tries, built once per tokenizer and shared between constraints.

use super::automaton::{Frame, KEY, Threads};
use super::schema::Grammar;
use crate::tokenizer::Tokenizer;

/// A byte trie in preorder: walking it in index order visits every parent before its children,
/// and `end` skips a whole subtree.
#[derive(Debug, Default)]
pub(crate) struct Trie {
    pub nodes: Vec<TrieNode>,
    /// Token ids, grouped by the node they end at.
    pub toks: Vec<u32>,
    pub max_depth: usize,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct TrieNode {
    pub byte: u8,
    pub depth: u16,
    /// One past the last node of this subtree.
    pub end: u32,
    pub tok_start: u32,
    pub tok_end: u32,
}

impl Trie {
    /// Builds the trie of `(bytes, id)` pairs (node 0 is the root, the empty string).
    fn build(mut words: Vec<(&[u8], u32)>) -> Trie {
        words.sort();
        let mut t = Trie {
            nodes: vec![TrieNode {
                byte: 0,
                depth: 0,
                end: 0,
                tok_start: 0,
                tok_end: 0,
            }],
            toks: Vec::with_capacity(words.len()),
            max_depth: 0,
        };
        // path[d] = node index of the current word's prefix of length d.
        let mut path: Vec<usize> = vec![0];
        let mut prev: &[u8] = &[];
        for (w, id) in words {
            let lcp = prev.iter().zip(w).take_while(|(a, b)| a == b).count();
            if lcp == w.len() && w.len() == prev.len() && !prev.is_empty() {
                // Same bytes as the previous word: same node.
                let n = *path.last().expect("path holds the root");
                t.toks.push(id);
                t.nodes[n].tok_end = t.toks.len() as u32;
                continue;
            }
            while path.len() > lcp + 1 {
                let n = path.pop().expect("non-empty");
                t.nodes[n].end = t.nodes.len() as u32;
            }
            for (d, &byte) in w.iter().enumerate().skip(lcp) {
                let start = t.toks.len() as u32;
                t.nodes.push(TrieNode {
                    byte,
                    depth: (d + 1) as u16,
                    end: 0,
                    tok_start: start,
                    tok_end: start,
                });
                path.push(t.nodes.len() - 1);
            }
            let n = *path.last().expect("non-empty");
            t.toks.push(id);
            t.nodes[n].tok_end = t.toks.len() as u32;
            t.max_depth = t.max_depth.max(w.len());
            prev = w;
        }
        while let Some(n) = path.pop() {
            t.nodes[n].end = t.nodes.len() as u32;
        }
        t
    }
}

/// Everything about the vocabulary a [`super::JsonConstraint`] needs: token bytes, the byte
/// tries, end-of-generation ids. Build it once per tokenizer ([`TokenIndex::new`]) and share it
/// through an `Arc` between constraints ([`super::JsonConstraint::with_index`]).
#[derive(Debug)]
pub struct TokenIndex {
    pub(crate) vocab_size: usize,
    pub(crate) eog: Vec<u32>,
    /// Bytes of every usable text token (`None`: control, missing or empty — never allowed).
    bytes: Vec<u8>,
    offsets: Vec<u32>,
    usable: Vec<bool>,
    /// Every usable token.
    pub(crate) full: Trie,
    /// Tokens that close a string: run from inside a string (no escape or UTF-8 sequence
    /// pending), they reach an unescaped `"`.
    pub(crate) closing: Trie,
    /// Bit per token that, from inside a string (nothing pending), stays inside it with valid
    /// content (escapes and a trailing partial UTF-8 character included): allowed in any such
    /// string with room for it. Tokens in neither set are invalid there.
    pub(crate) in_string: Vec<u64>,
    /// Most characters one `in_string` token adds.
    pub(crate) max_in_string_chars: u32,
    /// The `in_string` tokens sorted by the characters they add; `by_chars_end[c]` = how many
    /// add at most `c` (for strings near their `maxLength`).
    pub(crate) by_chars: Vec<u32>,
    pub(crate) by_chars_end: Vec<u32>,
}

impl TokenIndex {
    /// Indexes a tokenizer's vocabulary. Control tokens (`<|im_end|>`, ...) are never part of a
    /// value; end-of-generation ids are allowed exactly when the value is complete.
    pub fn new(tokenizer: &Tokenizer) -> TokenIndex {
        let pieces: Vec<Option<&[u8]>> = (0..tokenizer.vocab_size() as u32)
            .map(|id| {
                if tokenizer.is_control(id) || tokenizer.is_eog(id) {
                    None
                } else {
                    tokenizer.piece_bytes(id)
                }
            })
            .collect();
        Self::from_pieces(&pieces, tokenizer.eog_ids())
    }

    /// Indexes a vocabulary given as the bytes of every id (`None` for ids that never appear in
    /// a value: control tokens, holes) plus the end-of-generation ids.
    pub fn from_pieces(pieces: &[Option<&[u8]>], eog: &[u32]) -> TokenIndex {
        let n = pieces.len();
        let mut bytes = Vec::new();
        let mut offsets = Vec::with_capacity(n + 1);
        let mut usable = Vec::with_capacity(n);
        offsets.push(0u32);
        for (id, p) in pieces.iter().enumerate() {
            let ok = matches!(p, Some(b) if !b.is_empty()) && !eog.contains(&(id as u32));
            if ok && let Some(b) = p {
                bytes.extend_from_slice(b);
            }
            usable.push(ok);
            offsets.push(bytes.len() as u32);
        }
        let mut index = TokenIndex {
            vocab_size: n,
            eog: eog.to_vec(),
            bytes,
            offsets,
            usable,
            full: Trie::default(),
            closing: Trie::default(),
            in_string: Vec::new(),
            max_in_string_chars: 0,
            by_chars: Vec::new(),
            by_chars_end: Vec::new(),
        };
        let mut all = Vec::new();
        let mut closing = Vec::new();
        let mut in_string = vec![0u64; n.div_ceil(64)];
        let mut max_in_string_chars = 0;
        let mut by_chars: Vec<(u32, u32)> = Vec::new();
        let strings = Grammar {
            nodes: Vec::new(),
            root: 0,
        };
        for id in 0..n as u32 {
            let Some(b) = index.piece(id) else { continue };
            all.push((b, id));
            match in_string_class(&strings, b) {
                StrClass::Stays(c) => {
                    in_string[id as usize / 64] |= 1 << (id % 64);
                    max_in_string_chars = max_in_string_chars.max(c);
                    by_chars.push((c, id));
                }
                StrClass::Closes => closing.push((b, id)),
                StrClass::Invalid => {}
            }
        }
        let full = Trie::build(all);
        let closing = Trie::build(closing);
        index.full = full;
        index.closing = closing;
        by_chars.sort_unstable();
        index.by_chars_end = (0..=max_in_string_chars)
            .map(|c| by_chars.partition_point(|&(k, _)| k <= c) as u32)
            .collect();
        index.by_chars = by_chars.into_iter().map(|(_, id)| id).collect();
        index.in_string = in_string;
        index.max_in_string_chars = max_in_string_chars;
        index
    }

    /// The bytes of a usable text token.
    pub(crate) fn piece(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        if !*self.usable.get(i)? {
            return None;
        }
        Some(&self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize])
    }

    pub(crate) fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// Number of ids indexed.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

enum StrClass {
    /// Stays inside the string, adding this many characters.
    Stays(u32),
    /// Reaches the closing quote.
    Closes,
    /// Invalid string content before any closing quote.
    Invalid,
}

/// What `b` does when read inside a string with nothing pending.
fn in_string_class(g: &Grammar, b: &[u8]) -> StrClass {
    let mut a = Threads::single(Frame::Str {
        node: KEY,
        len: 0,
        esc: 0,
        utf8: 0,
    });
    let mut next = Threads::default();
    for &byte in b {
        g.step(&a, byte, &mut next);
        if next.is_empty() {
            return StrClass::Invalid;
        }
        match next.single_top() {
            Some(Frame::Str { .. }) => {}
            _ => return StrClass::Closes, // the string frame was popped
        }
        std::mem::swap(&mut a, &mut next);
    }
    match a.single_top() {
        Some(&Frame::Str { len, .. }) => StrClass::Stays(len),
        _ => StrClass::Invalid,
    }
}
