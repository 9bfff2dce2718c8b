//! The byte-level pushdown automaton over a compiled [`Grammar`].
//!
//! A state is a small set of *threads* (stacks of [`Frame`]s): alternatives (`anyOf`, type
//! lists, big enums) run side by side until the bytes tell them apart. Every state reachable
//! from the start can still be completed to a valid value (the automaton only admits viable
//! prefixes), so masking tokens by "does some thread survive these bytes" never leads the model
//! into a dead end.
//!
//! Output form: compact JSON; the only whitespace is one optional space after `:` and after `,`.

use super::schema::{
    Grammar, LITS_PER_NODE, MAX_INT_DIGITS, NUM_LIMIT, Node, NodeId, NumSpec, Prop,
};

/// Most frames one thread may hold (nesting depth of containers); deeper openings are refused.
const MAX_STACK: usize = 64;
/// Total digit characters of a number (integer and fraction): the value stays exact in `f64`.
const MAX_DIGITS: u8 = MAX_INT_DIGITS;
/// Most alternatives followed at once.
const MAX_THREADS: usize = 256;
/// Str frames with this node are free-form object keys (any string).
pub(crate) const KEY: NodeId = NodeId::MAX;

// Number phases.
const N_START: u8 = 0;
const N_MINUS: u8 = 1;
const N_ZERO: u8 = 2;
const N_INT: u8 = 3;
const N_DOT: u8 = 4;
const N_FRAC: u8 = 5;

// Object phases.
const O_OPEN: u8 = 0;
const O_COLON: u8 = 1;
const O_VALUE: u8 = 2;
const O_COMMA: u8 = 3;
const O_COMMA_SP: u8 = 4;
const O_IN_KEY: u8 = 5;

// Array phases.
const A_OPEN: u8 = 0;
const A_AFTER: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Frame {
    /// A value of `node` not started yet; `ws`: one leading space is still allowed.
    Value { node: NodeId, ws: bool },
    /// Inside one of a literal set: `pos` bytes matched, `alive` = literals still matching.
    Lit { node: NodeId, pos: u32, alive: u64 },
    /// Inside a string after the opening quote. `len` counts characters; `esc`: 0 none,
    /// 1 after `\`, 2..=5 expecting hex digit 1..=4 of `\u` (6: digit 2 after a `D`);
    /// `utf8`: pending continuation bytes (low 2 bits) and the allowed range of the next (rest).
    Str {
        node: NodeId,
        len: u32,
        esc: u8,
        utf8: u8,
    },
    /// Inside a number: `mant` is all digits read as one integer, `fdig` of them after the point.
    Num {
        node: NodeId,
        phase: u8,
        ndig: u8,
        fdig: u8,
        neg: bool,
        mant: u64,
    },
    /// Inside an object. `next`: first property not yet used; `cur`: the one whose value comes.
    Obj {
        node: NodeId,
        next: u16,
        cur: u16,
        phase: u8,
    },
    /// Matching a declared key: `alive` bit i = property `base + i` still matches.
    Key {
        node: NodeId,
        base: u16,
        pos: u16,
        alive: u64,
    },
    /// Inside an array with `count` elements started.
    Arr { node: NodeId, count: u32, phase: u8 },
}

enum Adv {
    Dead,
    Ok,
    /// The stack changed without consuming the byte (a number ended, an element began):
    /// feed it again.
    Refeed,
}

/// A set of threads, stored flat: thread i is `frames[ends[i-1]..ends[i]]`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Threads {
    frames: Vec<Frame>,
    ends: Vec<u32>,
}

impl Threads {
    pub fn start(root: NodeId) -> Self {
        Threads {
            frames: vec![Frame::Value {
                node: root,
                ws: false,
            }],
            ends: vec![1],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// One thread, one frame.
    pub fn single(f: Frame) -> Self {
        Threads {
            frames: vec![f],
            ends: vec![1],
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn clear(&mut self) {
        self.frames.clear();
        self.ends.clear();
    }

    pub fn copy_from(&mut self, other: &Threads) {
        self.frames.clear();
        self.frames.extend_from_slice(&other.frames);
        self.ends.clear();
        self.ends.extend_from_slice(&other.ends);
    }

    pub fn thread(&self, i: usize) -> &[Frame] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.frames[start..self.ends[i] as usize]
    }

    fn dedup(&mut self) {
        let n = self.ends.len();
        let mut keep = vec![true; n];
        for i in 1..n {
            for j in 0..i {
                if keep[j] && self.thread(i) == self.thread(j) {
                    keep[i] = false;
                    break;
                }
            }
        }
        if keep.iter().all(|&k| k) {
            return;
        }
        let mut out = Threads::default();
        for (i, &k) in keep.iter().enumerate() {
            if k {
                out.frames.extend_from_slice(self.thread(i));
                out.ends.push(out.frames.len() as u32);
            }
        }
        *self = out;
    }

    /// The single thread's top frame when there is exactly one thread.
    pub fn single_top(&self) -> Option<&Frame> {
        if self.ends.len() == 1 {
            self.frames.last()
        } else {
            None
        }
    }
}

/// Validates a UTF-8 lead byte: the `utf8` state for the bytes that follow, or `None`.
fn utf8_lead(b: u8) -> Option<u8> {
    // Low 2 bits: continuation bytes still due; bits 2..: range of the next one
    // (0: 80..BF, 1: A0..BF, 2: 80..9F, 3: 90..BF, 4: 80..8F).
    Some(match b {
        0xC2..=0xDF => 1,
        0xE0 => 2 | (1 << 2),
        0xE1..=0xEC | 0xEE..=0xEF => 2,
        0xED => 2 | (2 << 2),
        0xF0 => 3 | (3 << 2),
        0xF1..=0xF3 => 3,
        0xF4 => 3 | (4 << 2),
        _ => return None,
    })
}

fn utf8_cont(state: u8, b: u8) -> Option<u8> {
    let (lo, hi) = match state >> 2 {
        0 => (0x80, 0xBF),
        1 => (0xA0, 0xBF),
        2 => (0x80, 0x9F),
        3 => (0x90, 0xBF),
        _ => (0x80, 0x8F),
    };
    if b < lo || b > hi {
        return None;
    }
    Some((state & 3) - 1)
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The exact value a number's digits denote (as a JSON parser reads it: `mant / 10^fdig` is
/// correctly rounded because both operands are exact).
fn num_value(neg: bool, mant: u64, fdig: u8) -> f64 {
    let v = mant as f64 / POW10[fdig as usize];
    if neg { -v } else { v }
}

/// Whether a number in this state can still end inside the bounds.
fn num_viable(spec: &NumSpec, phase: u8, ndig: u8, fdig: u8, neg: bool, mant: u64) -> bool {
    let left = MAX_DIGITS.saturating_sub(ndig) as usize;
    match phase {
        N_START => true,
        N_MINUS => spec.meets_signed(true, 0.0, NUM_LIMIT, false),
        N_ZERO => {
            if spec.integer || left == 0 {
                spec.contains(0.0)
            } else {
                spec.meets_signed(neg, 0.0, 1.0, false)
            }
        }
        N_INT => {
            let m = mant as f64;
            (0..=left).any(|k| {
                let lo = m * POW10[k];
                let hi = (m + 1.0) * POW10[k];
                if spec.integer || k == left {
                    spec.meets_signed(neg, lo, hi - 1.0, true)
                } else {
                    spec.meets_signed(neg, lo, hi, false)
                }
            })
        }
        N_DOT => {
            let v = mant as f64;
            left > 0 && spec.meets_signed(neg, v, v + 1.0, false)
        }
        _ => {
            let v = mant as f64 / POW10[fdig as usize];
            if left == 0 {
                spec.contains(num_value(neg, mant, fdig))
            } else {
                spec.meets_signed(neg, v, v + 1.0 / POW10[fdig as usize], false)
            }
        }
    }
}

impl Grammar {
    /// One byte from every thread of `from` into `out` (cleared first).
    pub fn step(&self, from: &Threads, b: u8, out: &mut Threads) {
        out.clear();
        for i in 0..from.ends.len() {
            self.feed(from.thread(i), b, out);
        }
        if out.ends.len() > 1 {
            out.dedup();
            if out.ends.len() > MAX_THREADS {
                // Pathologically ambiguous schema: keep the first alternatives. Every kept
                // thread is still viable, so the output stays valid, only less varied.
                out.ends.truncate(MAX_THREADS);
                out.frames.truncate(out.ends[MAX_THREADS - 1] as usize);
            }
        }
    }

    /// Whether some thread holds a whole value.
    pub fn is_complete(&self, t: &Threads) -> bool {
        (0..t.len()).any(|i| {
            let s = t.thread(i);
            match s {
                [] => true,
                [top] => self.can_end(top),
                _ => false,
            }
        })
    }

    /// Whether a frame may end without reading another byte (numbers, number literals).
    fn can_end(&self, f: &Frame) -> bool {
        match *f {
            Frame::Num {
                node,
                phase,
                fdig,
                neg,
                mant,
                ..
            } => {
                let Node::Num(spec) = &self.nodes[node as usize] else {
                    return false;
                };
                matches!(phase, N_ZERO | N_INT | N_FRAC)
                    && spec.contains(num_value(neg, mant, fdig))
            }
            Frame::Lit { node, pos, alive } => {
                let Node::Lits(lits) = &self.nodes[node as usize] else {
                    return false;
                };
                bits(alive).any(|i| lits[i].len() == pos as usize)
            }
            _ => false,
        }
    }

    fn feed(&self, stack: &[Frame], b: u8, out: &mut Threads) {
        let Some((&top, rest)) = stack.split_last() else {
            return; // a finished value takes no more bytes
        };
        if let Frame::Value { node, ws } = top
            && let Node::Alt(alts) = &self.nodes[node as usize]
        {
            let mut tmp = Vec::with_capacity(stack.len());
            if ws && b == b' ' {
                tmp.extend_from_slice(rest);
                tmp.push(Frame::Value { node, ws: false });
                out.frames.extend_from_slice(&tmp);
                out.ends.push(out.frames.len() as u32);
                return;
            }
            for &a in alts {
                tmp.clear();
                tmp.extend_from_slice(rest);
                tmp.push(Frame::Value { node: a, ws });
                self.feed(&tmp, b, out);
            }
            return;
        }
        let start = out.frames.len();
        out.frames.extend_from_slice(stack);
        match self.advance(&mut out.frames, start, b) {
            Adv::Dead => out.frames.truncate(start),
            Adv::Ok => out.ends.push(out.frames.len() as u32),
            Adv::Refeed => {
                let tmp: Vec<Frame> = out.frames.drain(start..).collect();
                self.feed(&tmp, b, out);
            }
        }
    }

    /// A frame below the top finished its child.
    fn child_done(st: &mut [Frame], base: usize) {
        if st.len() > base
            && let Some(Frame::Obj { phase, .. }) = st.last_mut()
            && *phase == O_IN_KEY
        {
            *phase = O_COLON;
        }
    }

    fn push(st: &mut Vec<Frame>, base: usize, f: Frame) -> bool {
        if st.len() - base >= MAX_STACK {
            return false;
        }
        st.push(f);
        true
    }

    /// Pushes `f`, then `ok`; a stack at its depth limit kills the thread instead.
    fn push_or_dead(st: &mut Vec<Frame>, base: usize, f: Frame, ok: Adv) -> Adv {
        if Self::push(st, base, f) {
            ok
        } else {
            Adv::Dead
        }
    }

    /// Pops the (finished) top frame and hands the byte to what is below.
    fn end_and_refeed(st: &mut Vec<Frame>, base: usize) -> Adv {
        st.pop();
        Self::child_done(st, base);
        Adv::Refeed
    }

    fn end(st: &mut Vec<Frame>, base: usize) -> Adv {
        st.pop();
        Self::child_done(st, base);
        Adv::Ok
    }

    /// Deterministic step of one thread (its top is not an unexpanded alternative).
    fn advance(&self, st: &mut Vec<Frame>, base: usize, b: u8) -> Adv {
        match st[st.len() - 1] {
            Frame::Value { .. } => self.advance_value(st, base, b),
            Frame::Lit { .. } => self.advance_lit(st, base, b),
            Frame::Str { .. } => self.advance_str(st, base, b),
            Frame::Num { .. } => self.advance_num(st, base, b),
            Frame::Obj { .. } => self.advance_obj(st, base, b),
            Frame::Key { .. } => self.advance_key(st, base, b),
            Frame::Arr { .. } => self.advance_arr(st, base, b),
        }
    }

    fn advance_value(&self, st: &mut Vec<Frame>, base: usize, b: u8) -> Adv {
        let ti = st.len() - 1;
        let Frame::Value { node, ws } = st[ti] else {
            return Adv::Dead;
        };
        if ws && b == b' ' {
            st[ti] = Frame::Value { node, ws: false };
            return Adv::Ok;
        }
        match &self.nodes[node as usize] {
            Node::Alt(_) => Adv::Dead, // expanded by `feed`
            Node::Lits(l) => {
                let alive = if l.len() >= LITS_PER_NODE {
                    u64::MAX
                } else {
                    (1u64 << l.len()) - 1
                };
                st[ti] = Frame::Lit {
                    node,
                    pos: 0,
                    alive,
                };
                self.advance(st, base, b)
            }
            Node::Str { .. } => {
                if b != b'"' {
                    return Adv::Dead;
                }
                st[ti] = Frame::Str {
                    node,
                    len: 0,
                    esc: 0,
                    utf8: 0,
                };
                Adv::Ok
            }
            Node::Num(_) => {
                if b != b'-' && !b.is_ascii_digit() {
                    return Adv::Dead;
                }
                st[ti] = Frame::Num {
                    node,
                    phase: N_START,
                    ndig: 0,
                    fdig: 0,
                    neg: false,
                    mant: 0,
                };
                self.advance(st, base, b)
            }
            Node::Obj { .. } => {
                if b != b'{' {
                    return Adv::Dead;
                }
                st[ti] = Frame::Obj {
                    node,
                    next: 0,
                    cur: 0,
                    phase: O_OPEN,
                };
                Adv::Ok
            }
            Node::Arr { .. } => {
                if b != b'[' {
                    return Adv::Dead;
                }
                st[ti] = Frame::Arr {
                    node,
                    count: 0,
                    phase: A_OPEN,
                };
                Adv::Ok
            }
        }
    }

    fn advance_lit(&self, st: &mut Vec<Frame>, base: usize, b: u8) -> Adv {
        let ti = st.len() - 1;
        let Frame::Lit { node, pos, alive } = st[ti] else {
            return Adv::Dead;
        };
        let Node::Lits(lits) = &self.nodes[node as usize] else {
            return Adv::Dead;
        };
        let p = pos as usize;
        let mut next = 0u64;
        let mut ends_here = false;
        for i in bits(alive) {
            let l = &lits[i];
            if l.len() == p {
                ends_here = true;
            } else if l[p] == b {
                next |= 1 << i;
            }
        }
        if next == 0 {
            return if ends_here {
                Self::end_and_refeed(st, base)
            } else {
                Adv::Dead
            };
        }
        if bits(next).all(|i| lits[i].len() == p + 1) {
            return Self::end(st, base);
        }
        st[ti] = Frame::Lit {
            node,
            pos: pos + 1,
            alive: next,
        };
        Adv::Ok
    }

    fn advance_str(&self, st: &mut Vec<Frame>, base: usize, b: u8) -> Adv {
        let ti = st.len() - 1;
        let Frame::Str {
            node,
            len,
            esc,
            utf8,
        } = st[ti]
        else {
            return Adv::Dead;
        };
        let (min, max) = match self.nodes.get(node as usize) {
            Some(Node::Str { min, max }) => (*min, *max),
            _ => (0, u32::MAX), // KEY
        };
        let set = |st: &mut Vec<Frame>, len: u32, esc: u8, utf8: u8| {
            st[ti] = Frame::Str {
                node,
                len,
                esc,
                utf8,
            };
            Adv::Ok
        };
        if utf8 != 0 {
            return match utf8_cont(utf8, b) {
                Some(rem) => set(st, len, 0, rem),
                None => Adv::Dead,
            };
        }
        let hex = b.is_ascii_hexdigit();
        match esc {
            0 => match b {
                b'"' if len >= min => Self::end(st, base),
                b'"' => Adv::Dead,
                _ if len >= max => Adv::Dead,
                b'\\' => set(st, len + 1, 1, 0),
                0..=0x1F => Adv::Dead,
                0x20..=0x7F => set(st, len + 1, 0, 0),
                _ => match utf8_lead(b) {
                    Some(u) => set(st, len + 1, 0, u),
                    None => Adv::Dead,
                },
            },
            1 => match b {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => set(st, len, 0, 0),
                b'u' => set(st, len, 2, 0),
                _ => Adv::Dead,
            },
            // First hex digit: a `D` may start a surrogate, which a lone `\u` escape
            // must not be (JSON parsers reject unpaired surrogates): restrict digit 2.
            2 if b == b'd' || b == b'D' => set(st, len, 6, 0),
            2..=4 if hex => set(st, len, esc + 1, 0),
            5 if hex => set(st, len, 0, 0),
            6 if (b'0'..=b'7').contains(&b) => set(st, len, 4, 0),
            _ => Adv::Dead,
        }
    }

    fn advance_num(&self, st: &mut Vec<Frame>, base: usize, b: u8) -> Adv {
        let ti = st.len() - 1;
        let Frame::Num {
            node,
            phase,
            ndig,
            fdig,
            neg,
            mant,
        } = st[ti]
        else {
            return Adv::Dead;
        };
        let Node::Num(spec) = &self.nodes[node as usize] else {
            return Adv::Dead;
        };
        let digit = b.is_ascii_digit();
        let d = b.wrapping_sub(b'0') as u64;
        let room = ndig < MAX_DIGITS;
        let next = match (phase, b) {
            (N_START, b'-') => Some((N_MINUS, 0, 0, true, 0)),
            (N_START | N_MINUS, b'0') => Some((N_ZERO, 1, 0, neg, 0)),
            (N_START | N_MINUS, b'1'..=b'9') => Some((N_INT, 1, 0, neg, d)),
            (N_INT, _) if digit && room => Some((N_INT, ndig + 1, 0, neg, mant * 10 + d)),
            (N_ZERO | N_INT, b'.') if !spec.integer && room => Some((N_DOT, ndig, 0, neg, mant)),
            (N_DOT | N_FRAC, _) if digit && room => {
                Some((N_FRAC, ndig + 1, fdig + 1, neg, mant * 10 + d))
            }
            _ => None,
        };
        match next {
            Some((phase, ndig, fdig, neg, mant)) => {
                if !num_viable(spec, phase, ndig, fdig, neg, mant) {
                    return Adv::Dead;
                }
                st[ti] = Frame::Num {
                    node,
                    phase,
                    ndig,
                    fdig,
                    neg,
                    mant,
                };
                Adv::Ok
            }
            None => {
                if self.can_end(&st[ti]) {
                    Self::end_and_refeed(st, base)
                } else {
                    Adv::Dead
                }
            }
        }
    }

    fn advance_obj(&self, st: &mut Vec<Frame>, base: usize, b: u8) -> Adv {
        let ti = st.len() - 1;
        let Frame::Obj {
            node,
            next,
            cur,
            phase,
        } = st[ti]
        else {
            return Adv::Dead;
        };
        let Node::Obj { props, free } = &self.nodes[node as usize] else {
            return Adv::Dead;
        };
        let set_phase = |st: &mut Vec<Frame>, phase: u8| {
            st[ti] = Frame::Obj {
                node,
                next,
                cur,
                phase,
            };
        };
        let none_required_left = || !props[next as usize..].iter().any(|p| p.required);
        match (phase, b) {
            (O_OPEN | O_VALUE, b'}') if none_required_left() => Self::end(st, base),
            (O_VALUE, b',') => {
                if free.is_none() && next as usize >= props.len() {
                    return Adv::Dead;
                }
                set_phase(st, O_COMMA);
                Adv::Ok
            }
            (O_COMMA, b' ') => {
                set_phase(st, O_COMMA_SP);
                Adv::Ok
            }
            (O_OPEN | O_COMMA | O_COMMA_SP, b'"') => {
                if free.is_some() {
                    set_phase(st, O_IN_KEY);
                    let key = Frame::Str {
                        node: KEY,
                        len: 0,
                        esc: 0,
                        utf8: 0,
                    };
                    return Self::push_or_dead(st, base, key, Adv::Ok);
                }
                let alive = key_candidates(&props[next as usize..]);
                if alive == 0 {
                    return Adv::Dead;
                }
                let key = Frame::Key {
                    node,
                    base: next,
                    pos: 1,
                    alive,
                };
                Self::push_or_dead(st, base, key, Adv::Ok)
            }
            (O_COLON, b':') => {
                let value = match free {
                    Some(v) => *v,
                    None => props[cur as usize].value,
                };
                set_phase(st, O_VALUE);
                let v = Frame::Value {
                    node: value,
                    ws: true,
                };
                Self::push_or_dead(st, base, v, Adv::Ok)
            }
            _ => Adv::Dead,
        }
    }

    fn advance_key(&self, st: &mut Vec<Frame>, _base: usize, b: u8) -> Adv {
        let ti = st.len() - 1;
        let Frame::Key {
            node,
            base: first,
            pos,
            alive,
        } = st[ti]
        else {
            return Adv::Dead;
        };
        let Node::Obj { props, .. } = &self.nodes[node as usize] else {
            return Adv::Dead;
        };
        let p = pos as usize;
        let mut next = 0u64;
        let mut done = None;
        for i in bits(alive) {
            let key = &props[first as usize + i].key;
            if key.get(p) == Some(&b) {
                next |= 1 << i;
                if key.len() == p + 1 {
                    done = Some(first as usize + i);
                }
            }
        }
        if next == 0 {
            return Adv::Dead;
        }
        if let Some(k) = done {
            // A closing quote: exactly one key ends here.
            st.pop();
            if let Some(Frame::Obj {
                next, cur, phase, ..
            }) = st.last_mut()
            {
                *cur = k as u16;
                *next = k as u16 + 1;
                *phase = O_COLON;
            }
            return Adv::Ok;
        }
        st[ti] = Frame::Key {
            node,
            base: first,
            pos: pos + 1,
            alive: next,
        };
        Adv::Ok
    }

    fn advance_arr(&self, st: &mut Vec<Frame>, base: usize, b: u8) -> Adv {
        let ti = st.len() - 1;
        let Frame::Arr { node, count, phase } = st[ti] else {
            return Adv::Dead;
        };
        let Node::Arr { items, min, max } = &self.nodes[node as usize] else {
            return Adv::Dead;
        };
        match (phase, b) {
            (A_OPEN, b']') if *min == 0 => Self::end(st, base),
            (A_OPEN, _) => {
                if *max == 0 {
                    return Adv::Dead;
                }
                st[ti] = Frame::Arr {
                    node,
                    count: 1,
                    phase: A_AFTER,
                };
                let v = Frame::Value {
                    node: *items,
                    ws: false,
                };
                Self::push_or_dead(st, base, v, Adv::Refeed)
            }
            (A_AFTER, b']') if count >= *min => Self::end(st, base),
            (A_AFTER, b',') if count < *max => {
                st[ti] = Frame::Arr {
                    node,
                    count: count + 1,
                    phase: A_AFTER,
                };
                let v = Frame::Value {
                    node: *items,
                    ws: true,
                };
                Self::push_or_dead(st, base, v, Adv::Ok)
            }
            _ => Adv::Dead,
        }
    }
}

/// The keys an object's next `"` may start: the properties from here up to and including the
/// first required one (at most 64), as a bit set.
fn key_candidates(props: &[Prop]) -> u64 {
    let mut alive = 0u64;
    for (i, p) in props.iter().take(64).enumerate() {
        alive |= 1 << i;
        if p.required {
            break;
        }
    }
    alive
}

/// Indices of the set bits of `m`, ascending.
fn bits(mut m: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if m == 0 {
            return None;
        }
        let i = m.trailing_zeros() as usize;
        m &= m - 1;
        Some(i)
    })
}
