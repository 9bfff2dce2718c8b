//! Time and bytes per op family on the CPU backend, for `hearth bench --profile`: every backend
//! op opens a [`span`] (one relaxed atomic load when profiling is off) and the weight products
//! count the weight bytes they read, attention the cache bytes. Process-wide counters: the CPU
//! ops run synchronously on the calling thread (their rayon work included), so a span's wall
//! time is the op's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::quant::GgmlType;

/// The op families reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Embed,
    Norm,
    MatmulQ4_0,
    MatmulQ4K,
    MatmulQ6K,
    MatmulQ8_0,
    MatmulOther,
    ShortConv,
    RopeKvStore,
    Attention,
    Swiglu,
    MoeRoute,
    MoeExperts,
    Elementwise,
}

const FAMILIES: [(Family, &str); 14] = [
    (Family::Embed, "embed"),
    (Family::Norm, "rms_norm"),
    (Family::MatmulQ4_0, "matmul q4_0"),
    (Family::MatmulQ4K, "matmul q4_k"),
    (Family::MatmulQ6K, "matmul q6_k"),
    (Family::MatmulQ8_0, "matmul q8_0"),
    (Family::MatmulOther, "matmul other"),
    (Family::ShortConv, "short_conv"),
    (Family::RopeKvStore, "qk norm + rope + kv store"),
    (Family::Attention, "attention"),
    (Family::Swiglu, "swiglu"),
    (Family::MoeRoute, "moe route"),
    (Family::MoeExperts, "moe experts"),
    (Family::Elementwise, "add / copy"),
];

impl Family {
    /// The weight-product family of weights of type `ty`.
    pub fn matmul(ty: GgmlType) -> Family {
        match ty {
            GgmlType::Q4_0 => Family::MatmulQ4_0,
            GgmlType::Q4_K => Family::MatmulQ4K,
            GgmlType::Q6_K => Family::MatmulQ6K,
            GgmlType::Q8_0 => Family::MatmulQ8_0,
            _ => Family::MatmulOther,
        }
    }
    fn index(self) -> usize {
        FAMILIES.iter().position(|&(f, _)| f == self).unwrap_or(0)
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; FAMILIES.len()] = [const { AtomicU64::new(0) }; FAMILIES.len()];
static CALLS: [AtomicU64; FAMILIES.len()] = [const { AtomicU64::new(0) }; FAMILIES.len()];
static BYTES: [AtomicU64; FAMILIES.len()] = [const { AtomicU64::new(0) }; FAMILIES.len()];

/// Turns the accounting on or off (process-wide).
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Zeroes every counter.
pub fn reset() {
    for c in NANOS.iter().chain(&CALLS).chain(&BYTES) {
        c.store(0, Ordering::Relaxed);
    }
}

/// An open op: its time is added to its family when dropped.
pub struct Span {
    family: usize,
    start: Option<Instant>,
}

/// Opens a span of `family` (a no-op unless [`enable`]d).
pub fn span(family: Family) -> Span {
    let start = ENABLED.load(Ordering::Relaxed).then(Instant::now);
    Span {
        family: family.index(),
        start,
    }
}

impl Span {
    /// Whether profiling was on when this span opened (to skip costly byte counts).
    pub fn on(&self) -> bool {
        self.start.is_some()
    }
    /// Counts `n` bytes read from memory (weights, caches) by this op.
    pub fn bytes(&self, n: u64) {
        if self.start.is_some() {
            BYTES[self.family].fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(t0) = self.start {
            let ns = t0.elapsed().as_nanos() as u64;
            NANOS[self.family].fetch_add(ns, Ordering::Relaxed);
            CALLS[self.family].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One family's totals since the last [`reset`].
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyTotals {
    pub name: &'static str,
    pub seconds: f64,
    pub calls: u64,
    pub bytes: u64,
}

/// The totals of every family that ran.
pub fn totals() -> Vec<FamilyTotals> {
    FAMILIES
        .iter()
        .enumerate()
        .map(|(i, &(_, name))| FamilyTotals {
            name,
            seconds: NANOS[i].load(Ordering::Relaxed) as f64 * 1e-9,
            calls: CALLS[i].load(Ordering::Relaxed),
            bytes: BYTES[i].load(Ordering::Relaxed),
        })
        .filter(|t| t.calls > 0)
        .collect()
}
