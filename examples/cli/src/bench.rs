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
    /// Print JSON instead of the table.
    pub json: bool,
    /// Time and bytes per op family (CPU backend) against the machine's read bandwidth.
    pub profile: bool,
}

#[derive(Clone, Copy, Debug)]
struct Speed {
    prefill: f64,
    decode: f64,
    /// Session creation + prefill of the prompt, to the first logits.
    ttft: f64,
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

/// Median, min and max of one metric over the runs.
#[derive(Clone, Copy, Debug)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(mut v: Vec<f64>) -> Spread {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Spread {
        median,
        min: v[0],
        max: v[n - 1],
    }
}

impl Spread {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({"median": self.median, "min": self.min, "max": self.max})
    }
    fn range(&self) -> String {
        format!("{:.1}-{:.1}", self.min, self.max)
    }
}

struct Runs {
    prefill: Spread,
    decode: Spread,
    ttft_ms: Spread,
}

fn runs_of(speeds: &[Speed]) -> Runs {
    let get = |f: fn(&Speed) -> f64| spread(speeds.iter().map(f).collect());
    Runs {
        prefill: get(|s| s.prefill),
        decode: get(|s| s.decode),
        ttft_ms: get(|s| s.ttft * 1e3),
    }
}

struct EngineRow {
    name: String,
    load_s: f64,
    /// Peak resident memory of this process from the load through the runs (Linux).
    peak_rss_mib: Option<f64>,
    runs: Runs,
    profile: Option<Profile>,
}

pub fn bench(args: BenchArgs) -> CliResult {
    let file = hearth::gguf::GgufFile::open(&args.model)?;
    let min_bytes = min_bytes_per_token(&file, &args)?;
    drop(file);
    let bandwidth = args.profile.then(read_bandwidth);
    let mut rows = Vec::new();
    for &backend in &args.backends {
        reset_peak_rss();
        let engine = Engine::load(&args.model, EngineOptions::with_backend(backend))?;
        let tokens = bench_tokens(args.prompt_tokens + args.gen_tokens, engine.config().vocab);
        let speeds = (0..args.repeats.max(1))
            .map(|_| hearth_once(&engine, &tokens, args.prompt_tokens))
            .collect::<CliResult<Vec<_>>>()?;
        let peak_rss_mib = peak_rss_mib();
        let cpu = engine.backend() == BackendKind::Cpu;
        let profile = match args.profile && cpu {
            true => Some(profile_once(&engine, &tokens, args.prompt_tokens)?),
            false => None,
        };
        rows.push(EngineRow {
            name: engine.backend_description(),
            load_s: engine.load_time().as_secs_f64(),
            peak_rss_mib,
            runs: runs_of(&speeds),
            profile,
        });
    }
    let llama = match &args.llama_cpp_python {
        Some(py) => {
            let vocab = Engine::load(&args.model, EngineOptions::with_backend(BackendKind::Cpu))?
                .config()
                .vocab;
            let tokens = bench_tokens(args.prompt_tokens + args.gen_tokens, vocab);
            let speeds = (0..args.repeats.max(1))
                .map(|_| llama_cpp_once(py, &args.model, &tokens, args.prompt_tokens))
                .collect::<CliResult<Vec<_>>>()?;
            Some(runs_of(&speeds))
        }
        None => None,
    };
    if args.json {
        print_json(&args, &rows, llama.as_ref(), min_bytes, bandwidth);
    } else {
        print_table(&args, &rows, llama.as_ref(), min_bytes, bandwidth);
    }
    Ok(())
}

fn print_table(
    args: &BenchArgs,
    rows: &[EngineRow],
    llama: Option<&Runs>,
    min_bytes: MinBytes,
    bandwidth: Option<Bandwidth>,
) {
    println!(
        "model: {} | prompt {} tokens, {} decoded, {} run(s): medians, [min-max]",
        args.model.display(),
        args.prompt_tokens,
        args.gen_tokens,
        args.repeats
    );
    println!(
        "minimum bytes per decoded token: {:.1} MiB (active weights once) + {:.2} MiB (mean KV read)",
        mib(min_bytes.weights),
        mib(min_bytes.kv)
    );
    if let Some(bw) = bandwidth {
        println!(
            "read bandwidth (this machine, now): {:.1} GB/s on 1 thread, {:.1} GB/s on {}; decode roofline {:.1} / {:.1} tok/s",
            bw.one / 1e9,
            bw.all / 1e9,
            bw.threads,
            bw.one / min_bytes.total(),
            bw.all / min_bytes.total()
        );
    }
    for r in rows {
        if let Some(p) = &r.profile {
            print_profile(&r.name, p, min_bytes, bandwidth);
        }
    }
    println!(
        "{:<44} {:>7} {:>9} {:>9} {:>13} {:>13} {:>14} {:>14}",
        "engine",
        "load s",
        "peak MiB",
        "TTFT ms",
        "[prefill]",
        "[decode]",
        "prefill tok/s",
        "decode tok/s"
    );
    if let Some(l) = llama {
        println!(
            "{:<44} {:>7} {:>9} {:>9.0} {:>13} {:>13} {:>14.1} {:>14.1}",
            "llama.cpp (llama-cpp-python, CPU)",
            "",
            "",
            l.ttft_ms.median,
            l.prefill.range(),
            l.decode.range(),
            l.prefill.median,
            l.decode.median
        );
    }
    for r in rows {
        let ratio = llama
            .map(|l| {
                format!(
                    " {:>9.2}x {:>9.2}x",
                    r.runs.prefill.median / l.prefill.median,
                    r.runs.decode.median / l.decode.median
                )
            })
            .unwrap_or_default();
        let rss = r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0}"));
        println!(
            "{:<44} {:>7.2} {:>9} {:>9.0} {:>13} {:>13} {:>14.1} {:>14.1}{ratio}",
            truncate(&r.name, 44),
            r.load_s,
            rss,
            r.runs.ttft_ms.median,
            r.runs.prefill.range(),
            r.runs.decode.range(),
            r.runs.prefill.median,
            r.runs.decode.median
        );
    }
}

fn print_json(
    args: &BenchArgs,
    rows: &[EngineRow],
    llama: Option<&Runs>,
    min_bytes: MinBytes,
    bandwidth: Option<Bandwidth>,
) {
    let runs = |r: &Runs| {
        serde_json::json!({
            "prefill_tok_s": r.prefill.json(),
            "decode_tok_s": r.decode.json(),
            "ttft_ms": r.ttft_ms.json(),
        })
    };
    let engines: Vec<_> = rows
        .iter()
        .map(|r| {
            let mut v = runs(&r.runs);
            v["engine"] = r.name.clone().into();
            v["load_s"] = r.load_s.into();
            v["peak_rss_mib"] = r.peak_rss_mib.into();
            if let Some(p) = &r.profile {
                v["profile"] = p.json();
            }
            v
        })
        .collect();
    let out = serde_json::json!({
        "model": args.model.display().to_string(),
        "prompt_tokens": args.prompt_tokens,
        "gen_tokens": args.gen_tokens,
        "repeats": args.repeats,
        "min_bytes_per_token": {"weights": min_bytes.weights, "kv": min_bytes.kv},
        "read_bandwidth": bandwidth.map(|b| serde_json::json!({
            "one_thread_bytes_s": b.one, "all_threads_bytes_s": b.all, "threads": b.threads,
        })),
        "engines": engines,
        "llama_cpp": llama.map(runs),
    });
    println!("{out:#}");
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn mib(b: f64) -> f64 {
    b / (1024.0 * 1024.0)
}

fn hearth_once(engine: &Engine, tokens: &[u32], n_prompt: usize) -> CliResult<Speed> {
    let t0 = Instant::now();
    let mut seq = engine.new_sequence(tokens.len() + 1, 64)?;
    let t_pre = Instant::now();
    seq.forward(&tokens[..n_prompt], Logits::Last)?;
    let prefill = n_prompt as f64 / t_pre.elapsed().as_secs_f64();
    let ttft = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for &t in &tokens[n_prompt..] {
        seq.forward(&[t], Logits::Last)?;
    }
    let decode = (tokens.len() - n_prompt) as f64 / t1.elapsed().as_secs_f64();
    Ok(Speed {
        prefill,
        decode,
        ttft,
    })
}

// ---------------------------------------------------------------- roofline and profile

/// The least a decoded token must read: every weight it uses once, and its KV cache.
#[derive(Clone, Copy, Debug)]
struct MinBytes {
    weights: f64,
    /// Mean over the decoded positions of the bench.
    kv: f64,
}

impl MinBytes {
    fn total(&self) -> f64 {
        self.weights + self.kv
    }
}

/// From the GGUF header: all tensors, routed experts at `n_expert_used / n_expert`, the token
/// embedding only as the LM head (when tied; a lookup reads one row); f32 KV rows of every
/// attention layer for each decoded position.
fn min_bytes_per_token(f: &hearth::gguf::GgufFile, args: &BenchArgs) -> CliResult<MinBytes> {
    let cfg = hearth::models::lfm2::Config::from_gguf(f)?;
    let tied = f.tensor_info("output.weight").is_none();
    let used = cfg
        .moe
        .as_ref()
        .map_or(1.0, |m| m.n_expert_used as f64 / m.n_expert as f64);
    let weights = f
        .tensors()
        .iter()
        .map(|t| {
            let b = t.n_bytes as f64;
            match t.name.as_str() {
                "token_embd.weight" if !tied => 0.0,
                n if n.contains("_exps") => b * used,
                _ => b,
            }
        })
        .sum();
    let kv_row: usize = cfg.n_head_kv.iter().map(|h| 2 * 4 * h * cfg.head_dim).sum();
    let positions = args.prompt_tokens..args.prompt_tokens + args.gen_tokens;
    let kv = positions.map(|p| ((p + 1) * kv_row) as f64).sum::<f64>() / args.gen_tokens as f64;
    Ok(MinBytes { weights, kv })
}

#[derive(Clone, Copy, Debug)]
struct Bandwidth {
    one: f64,
    all: f64,
    threads: usize,
}

/// Bytes per second summing a 1 GiB buffer, on one thread and on all of rayon's (best of 3).
fn read_bandwidth() -> Bandwidth {
    let buf: Vec<u64> = (0..(1usize << 27) as u64).collect();
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rate = |t: usize| {
        (0..3)
            .map(|_| {
                let t0 = Instant::now();
                let sum: u64 = std::thread::scope(|s| {
                    let parts: Vec<_> = buf
                        .chunks(buf.len().div_ceil(t))
                        .map(|c| s.spawn(move || c.iter().fold(0u64, |a, &x| a.wrapping_add(x))))
                        .collect();
                    parts
                        .into_iter()
                        .map(|h| h.join().unwrap_or(0))
                        .fold(0, u64::wrapping_add)
                });
                std::hint::black_box(sum);
                (buf.len() * 8) as f64 / t0.elapsed().as_secs_f64()
            })
            .fold(0f64, f64::max)
    };
    Bandwidth {
        one: rate(1),
        all: rate(threads),
        threads,
    }
}

/// One prefill and its decode with the CPU backend's op accounting on.
struct Profile {
    prefill: Vec<hearth::backend::cpu::profile::FamilyTotals>,
    decode: Vec<hearth::backend::cpu::profile::FamilyTotals>,
    n_prompt: usize,
    n_gen: usize,
    decode_s: f64,
}

fn profile_once(engine: &Engine, tokens: &[u32], n_prompt: usize) -> CliResult<Profile> {
    use hearth::backend::cpu::profile;
    let mut seq = engine.new_sequence(tokens.len() + 1, 64)?;
    profile::reset();
    profile::enable(true);
    let res = (|| -> CliResult<Profile> {
        seq.forward(&tokens[..n_prompt], Logits::Last)?;
        let prefill = profile::totals();
        profile::reset();
        let t0 = Instant::now();
        for &t in &tokens[n_prompt..] {
            seq.forward(&[t], Logits::Last)?;
        }
        Ok(Profile {
            prefill,
            decode: profile::totals(),
            n_prompt,
            n_gen: tokens.len() - n_prompt,
            decode_s: t0.elapsed().as_secs_f64(),
        })
    })();
    profile::enable(false);
    res
}

impl Profile {
    fn json(&self) -> serde_json::Value {
        let fams = |v: &[hearth::backend::cpu::profile::FamilyTotals], n: usize| {
            v.iter()
                .map(|f| {
                    serde_json::json!({
                        "family": f.name, "ms_per_token": f.seconds * 1e3 / n as f64,
                        "calls": f.calls, "bytes_per_token": f.bytes as f64 / n as f64,
                    })
                })
                .collect::<Vec<_>>()
        };
        serde_json::json!({
            "prefill": fams(&self.prefill, self.n_prompt),
            "decode": fams(&self.decode, self.n_gen),
            "decode_seconds": self.decode_s,
        })
    }
}

fn print_profile(name: &str, p: &Profile, min: MinBytes, bw: Option<Bandwidth>) {
    for (phase, fams, n) in [
        ("prefill", &p.prefill, p.n_prompt),
        ("decode", &p.decode, p.n_gen),
    ] {
        let total: f64 = fams.iter().map(|f| f.seconds).sum();
        println!("profile, {name}, {phase} ({n} tokens): per token");
        println!(
            "  {:<28} {:>9} {:>7} {:>11}",
            "op family", "ms", "%", "MiB read"
        );
        for f in fams {
            println!(
                "  {:<28} {:>9.3} {:>6.1}% {:>11.2}",
                f.name,
                f.seconds * 1e3 / n as f64,
                100.0 * f.seconds / total.max(1e-12),
                mib(f.bytes as f64 / n as f64)
            );
        }
        if phase == "decode" {
            let bytes = fams.iter().map(|f| f.bytes as f64).sum::<f64>() / n as f64;
            let rate = bytes * n as f64 / p.decode_s;
            let of_bw = bw.map_or(String::new(), |b| {
                format!(
                    ", {:.0} % of the 1-thread / {:.0} % of the all-thread bandwidth",
                    100.0 * rate / b.one,
                    100.0 * rate / b.all
                )
            });
            println!(
                "  read {:.1} MiB per token (minimum {:.1}: {:.2}x), {:.1} GB/s{of_bw}",
                mib(bytes),
                mib(min.total()),
                bytes / min.total(),
                rate / 1e9
            );
        }
    }
}

// ---------------------------------------------------------------- peak RSS (Linux)

/// Resets the kernel's peak-RSS mark of this process (`/proc/self/clear_refs`, Linux 4.0+).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `VmHWM` of this process in MiB (Linux), since the last [`reset_peak_rss`].
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
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
    let prefill = get("prefill")?;
    Ok(Speed {
        prefill,
        decode: get("decode")?,
        ttft: n_prompt as f64 / prefill,
    })
}
