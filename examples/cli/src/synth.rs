//! `hearth synth`: a full-size random-weight model with a released model's shape and tensor
//! types, written streaming (for benchmarks: same shapes and bytes per token as the real file).

use std::io::BufWriter;
use std::path::PathBuf;

use hearth::gguf::synth::{PRESETS, SynthQuant, preset, write_synthetic};

use crate::CliResult;

pub fn synth(name: &str, quant: &str, seed: u64, out: &PathBuf) -> CliResult {
    let shape = preset(name)
        .ok_or_else(|| format!("unknown preset '{name}' (known: {})", PRESETS.join(", ")))?;
    let q = SynthQuant::parse(quant)
        .ok_or_else(|| format!("unknown quant '{quant}' (known: q4_0, q4_k_m, q8_0, f16)"))?;
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let n = write_synthetic(&shape, q, name, seed, &mut w)?;
    eprintln!(
        "wrote {} ({:.1} MiB)",
        out.display(),
        n as f64 / (1 << 20) as f64
    );
    Ok(())
}
