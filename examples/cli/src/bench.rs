//! `hearth bench`: prefill and decode speed, side by side with llama.cpp (through the
//! `llama-cpp-python` package, when a Python with it is given) on the same GGUF and the same
//! token sequence, reported as ratios. Both run teacher-forced (no sampling cost on either side).

use std::path::{Path, PathBuf};
use std::time::Instant;

use hearth::models::lfm2::Logits;
use hearth::{BackendKind, Engine, EngineOptions};

use crate::CliResult;

pub struct BenchArgs {
    pub model: PathBuf,
    pub backends: Vec<BackendKind>,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    pub repeats: usize,
    /// A Python interpreter that can `import llama_cpp`.
    pub llama_cpp_python: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug)]
struct Speed {
    prefill: f64,
    decode: f64,
}

/// Deterministic ordinary tokens (ids above the special block).
fn bench_tokens(n: usize, vocab: usize) -> Vec<u32> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (64 + x % (vocab as u64 - 64)) as u32
        })
        .collect()
}

pub fn bench(args: BenchArgs) -> CliResult {
    let mut rows = Vec::new();
    for &backend in &args.backends {
        let engine = Engine::load(&args.model, EngineOptions::with_backend(backend))?;
        let tokens = bench_tokens(args.prompt_tokens + args.gen_tokens, engine.config().vocab);
        let speed = best_of(args.repeats, || {
            hearth_once(&engine, &tokens, args.prompt_tokens)
        })?;
        rows.push((engine.backend_description(), speed));
    }
    let llama = match &args.llama_cpp_python {
        Some(py) => {
            let vocab = Engine::load(&args.model, EngineOptions::with_backend(BackendKind::Cpu))?
                .config()
                .vocab;
            let tokens = bench_tokens(args.prompt_tokens + args.gen_tokens, vocab);
            Some(best_of(args.repeats, || {
                llama_cpp_once(py, &args.model, &tokens, args.prompt_tokens)
            })?)
        }
        None => None,
    };
    println!(
        "model: {} | prompt {} tokens, {} decoded, best of {}",
        args.model.display(),
        args.prompt_tokens,
        args.gen_tokens,
        args.repeats
    );
    println!(
        "{:<44} {:>14} {:>14} {:>10} {:>10}",
        "engine", "prefill tok/s", "decode tok/s", "vs llama", ""
    );
    if let Some(l) = llama {
        println!(
            "{:<44} {:>14.1} {:>14.1}",
            "llama.cpp (llama-cpp-python, CPU)", l.prefill, l.decode
        );
    }
    for (name, s) in rows {
        let ratio = llama
            .map(|l| {
                format!(
                    "{:>9.2}x {:>9.2}x",
                    s.prefill / l.prefill,
                    s.decode / l.decode
                )
            })
            .unwrap_or_default();
        println!(
            "{:<44} {:>14.1} {:>14.1} {ratio}",
            truncate(&name, 44),
            s.prefill,
            s.decode
        );
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn best_of(repeats: usize, mut run: impl FnMut() -> CliResult<Speed>) -> CliResult<Speed> {
    let mut best = Speed {
        prefill: 0.0,
        decode: 0.0,
    };
    for _ in 0..repeats.max(1) {
        let s = run()?;
        best.prefill = best.prefill.max(s.prefill);
        best.decode = best.decode.max(s.decode);
    }
    Ok(best)
}

fn hearth_once(engine: &Engine, tokens: &[u32], n_prompt: usize) -> CliResult<Speed> {
    let mut seq = engine.new_sequence(tokens.len() + 1, 64)?;
    let t0 = Instant::now();
    seq.forward(&tokens[..n_prompt], Logits::Last)?;
    let prefill = n_prompt as f64 / t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for &t in &tokens[n_prompt..] {
        seq.forward(&[t], Logits::Last)?;
    }
    let decode = (tokens.len() - n_prompt) as f64 / t1.elapsed().as_secs_f64();
    Ok(Speed { prefill, decode })
}

const LLAMA_SCRIPT: &str = r#"
import json, os, sys, time
from llama_cpp import Llama
model, n_prompt, toks = sys.argv[1], int(sys.argv[2]), [int(t) for t in sys.argv[3].split(",")]
llm = Llama(model_path=model, n_ctx=len(toks) + 8, n_batch=64, n_ubatch=64,
            n_threads=os.cpu_count(), n_threads_batch=os.cpu_count(), verbose=False)
t0 = time.perf_counter(); llm.eval(toks[:n_prompt]); t1 = time.perf_counter()
for t in toks[n_prompt:]:
    llm.eval([t])
t2 = time.perf_counter()
print(json.dumps({"prefill": n_prompt / (t1 - t0), "decode": (len(toks) - n_prompt) / (t2 - t1)}))
"#;

fn llama_cpp_once(
    python: &Path,
    model: &Path,
    tokens: &[u32],
    n_prompt: usize,
) -> CliResult<Speed> {
    let ids: Vec<String> = tokens.iter().map(u32::to_string).collect();
    let out = std::process::Command::new(python)
        .args([
            "-c",
            LLAMA_SCRIPT,
            &model.display().to_string(),
            &n_prompt.to_string(),
            &ids.join(","),
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "llama.cpp run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let v: serde_json::Value = serde_json::from_slice(out.stdout.trim_ascii())?;
    let get = |k: &str| {
        v[k].as_f64()
            .ok_or_else(|| format!("llama.cpp output lacks {k}"))
    };
    Ok(Speed {
        prefill: get("prefill")?,
        decode: get("decode")?,
    })
}
