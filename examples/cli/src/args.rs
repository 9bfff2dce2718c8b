//! Options shared by several subcommands, validated once (`run` and `chat` accept and refuse
//! the same values).

use clap::{Args, ValueEnum};
use hearth::{BackendKind, SamplingOptions};

/// Upper bound of `--max-tokens` (the longest context of any LFM2 model).
pub const MAX_TOKENS_LIMIT: usize = 1 << 17;

/// Which compute backend to run on.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendArg {
    /// The GPU if an adapter passes the numerical self-test (never a CPU emulation), else the CPU.
    Auto,
    /// The GPU (after its self-test), or an error.
    Gpu,
    /// The CPU reference backend.
    Cpu,
}

impl From<BackendArg> for BackendKind {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Auto => BackendKind::Auto,
            BackendArg::Gpu => BackendKind::Gpu,
            BackendArg::Cpu => BackendKind::Cpu,
        }
    }
}

/// Sampling flags; unset ones keep the command's defaults.
#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Sampling temperature (0 = greedy) [default: run 0, chat 0.3]
    #[arg(long)]
    pub temp: Option<f32>,
    /// Seed of the sampler's random numbers (same seed, same output)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep only the K most likely tokens (0 = off)
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens whose probability reaches P (1 = off)
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Drop tokens less likely than P times the best one (0 = off) [default: run 0, chat 0.15]
    #[arg(long)]
    pub min_p: Option<f32>,
    /// Penalize tokens of the recent output (1 = off; e.g. 1.1)
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
}

impl SamplingArgs {
    /// The options on top of `base`, validated.
    pub fn options(&self, base: SamplingOptions) -> hearth::Result<SamplingOptions> {
        let o = SamplingOptions {
            temperature: self.temp.unwrap_or(base.temperature),
            seed: self.seed,
            top_k: self.top_k.unwrap_or(base.top_k),
            top_p: self.top_p.unwrap_or(base.top_p),
            min_p: self.min_p.unwrap_or(base.min_p),
            repetition_penalty: self.repeat_penalty.unwrap_or(base.repetition_penalty),
            ..base
        };
        o.validate()?;
        Ok(o)
    }
}

/// `--max-tokens` must be 1..=MAX_TOKENS_LIMIT.
pub fn check_max_tokens(n: usize) -> hearth::Result<usize> {
    if (1..=MAX_TOKENS_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(hearth::Error::InvalidArgument(format!(
            "--max-tokens must be between 1 and {MAX_TOKENS_LIMIT}, got {n}"
        )))
    }
}

/// A byte count in MiB for people: one decimal under 10 MiB (a 400 KB file is not "0 MiB").
pub fn mib(bytes: u64) -> String {
    let m = bytes as f64 / (1u64 << 20) as f64;
    if m < 10.0 {
        format!("{m:.1} MiB")
    } else {
        format!("{m:.0} MiB")
    }
}
