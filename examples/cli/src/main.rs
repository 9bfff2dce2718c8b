//! `hearth`: inspect GGUF models, run generations, evaluate logits.

mod args;
mod bench;
mod chat;
#[cfg(feature = "hub")]
mod hub_cmd;
mod npy;
mod synth;

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::IsTerminal;
use std::time::Instant;

use clap::{Parser, Subcommand};
use hearth::sampling::Sampler;
use hearth::{
    BackendKind, Engine, EngineOptions, GenerateOptions, Logits, SamplingOptions, SessionOptions,
};

use args::{BackendArg, SamplingArgs, check_max_tokens, mib};

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    about = "On-device LLM inference for the LFM2 family"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a model file's metadata and tensor table.
    Info {
        /// Also open the GPU and print the adapter, its limits and the kernel variants chosen.
        #[arg(long)]
        gpu: bool,
        /// The GGUF model file
        model: PathBuf,
        /// Show every metadata array element instead of the first few.
        #[arg(long)]
        full: bool,
    },
    /// Generate text from a raw prompt, streaming it as it is produced.
    Run {
        /// The GGUF model file
        model: PathBuf,
        /// The raw prompt (no chat template; use `chat` for conversations)
        #[arg(long)]
        prompt: String,
        /// Tokens to generate at most
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// Compute backend
        #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
        backend: BackendArg,
    },
    /// Download a model into the models directory (resumable, SHA-256 verified).
    #[cfg(feature = "hub")]
    Pull(hub_cmd::PullArgs),
    /// List the downloaded models (or the catalogue with --catalogue).
    #[cfg(feature = "hub")]
    List(hub_cmd::ListArgs),
    /// Delete a downloaded model.
    #[cfg(feature = "hub")]
    Rm(hub_cmd::RmArgs),
    /// Chat with a model: a streaming REPL (scriptable: one message per line when stdin is not a terminal).
    Chat {
        /// The GGUF model file
        model: PathBuf,
        /// Tokens per answer at most
        #[arg(long, default_value_t = 512)]
        max_tokens: usize,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// System prompt (instructions for the whole conversation)
        #[arg(long)]
        system: Option<String>,
        /// Compute backend
        #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
        backend: BackendArg,
        /// Context window in tokens (capped at the model's)
        #[arg(long, default_value_t = 4096)]
        context: usize,
        /// Do not show the model's thinking.
        #[arg(long)]
        hide_thinking: bool,
    },
    /// Measure prefill and decode speed, side by side with llama.cpp when `--llama-cpp-python` is given.
    Bench {
        /// The GGUF model file
        model: PathBuf,
        /// Backends to measure (comma-separated)
        #[arg(long, value_enum, value_delimiter = ',', default_value = "cpu")]
        backend: Vec<BackendArg>,
        /// Prompt tokens to prefill per run
        #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=131072))]
        prompt_tokens: u32,
        /// Tokens to decode per run
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=131072))]
        gen_tokens: u32,
        /// Runs per backend (medians are reported, with the range)
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
        repeats: u32,
        /// A Python interpreter with the `llama-cpp-python` package, for the llama.cpp baseline.
        #[arg(long)]
        llama_cpp_python: Option<PathBuf>,
        /// Print the results as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Time and bytes read per op family and token (CPU backend), against the minimum a
        /// token must read and this machine's measured read bandwidth.
        #[arg(long)]
        profile: bool,
    },
    /// Write a full-size random-weight model with a released model's shape (for benchmarks).
    Synth {
        /// lfm2-350m, lfm2.5-1.2b, lfm2-8b-a1b or lfm2.5-8b-a1b.
        #[arg(long)]
        preset: String,
        /// q4_0, q4_k_m, q8_0 or f16 (tensor types as llama-quantize assigns them).
        #[arg(long, default_value = "q4_0")]
        quant: String,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(short = 'o', long)]
        out: PathBuf,
    },
    /// Write the logits of every position of a token sequence as a float32 .npy file.
    Eval {
        /// The GGUF model file
        model: PathBuf,
        /// Comma-separated token ids
        #[arg(long, value_delimiter = ',', required = true)]
        tokens: Vec<u32>,
        /// Compute backend
        #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
        backend: BackendArg,
        /// Where to write the logits (float32 .npy, [n_tokens, vocab])
        #[arg(long)]
        logits_out: PathBuf,
    },
}

fn main() -> ExitCode {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // Mesa's Vulkan loader prints "XDG_RUNTIME_DIR is invalid or not set" on every GPU
        // probe without it; nothing of Hearth's lives there. Set before any thread starts.
        // SAFETY: single-threaded at this point.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    // `hearth list | head -1`: a closed pipe ends the process quietly, as for other Unix tools,
    // instead of a panic in the middle of a print.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of a signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { model, full, gpu } => info(&model, full, gpu),
        Command::Bench {
            model,
            backend,
            prompt_tokens,
            gen_tokens,
            repeats,
            llama_cpp_python,
            json,
            profile,
        } => bench::bench(bench::BenchArgs {
            model,
            backends: backend.into_iter().map(Into::into).collect(),
            prompt_tokens: prompt_tokens as usize,
            gen_tokens: gen_tokens as usize,
            repeats: repeats as usize,
            llama_cpp_python,
            json,
            profile,
        }),
        Command::Chat {
            model,
            max_tokens,
            sampling,
            system,
            backend,
            context,
            hide_thinking,
        } => chat_args(
            model,
            max_tokens,
            &sampling,
            system,
            backend,
            context,
            hide_thinking,
        )
        .and_then(chat::chat),
        #[cfg(feature = "hub")]
        Command::Pull(args) => hub_cmd::pull(args).map_err(Into::into),
        #[cfg(feature = "hub")]
        Command::List(args) => hub_cmd::list(args).map_err(Into::into),
        #[cfg(feature = "hub")]
        Command::Rm(args) => hub_cmd::rm(args).map_err(Into::into),
        Command::Run {
            model,
            prompt,
            max_tokens,
            sampling,
            backend,
        } => run(&model, &prompt, max_tokens, &sampling, backend.into()),
        Command::Synth {
            preset,
            quant,
            seed,
            out,
        } => synth::synth(&preset, &quant, seed, &out),
        Command::Eval {
            model,
            tokens,
            backend,
            logits_out,
        } => eval(&model, &tokens, backend.into(), &logits_out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type CliResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// `hearth chat`'s options, validated before the model is loaded.
fn chat_args(
    model: PathBuf,
    max_tokens: usize,
    sampling: &SamplingArgs,
    system: Option<String>,
    backend: BackendArg,
    context: usize,
    hide_thinking: bool,
) -> CliResult<chat::ChatArgs> {
    if context < 16 {
        return Err(format!("--context must be at least 16 tokens, got {context}").into());
    }
    Ok(chat::ChatArgs {
        model,
        engine: EngineOptions::with_backend(backend.into()),
        session: SessionOptions {
            context_length: context,
            system_prompt: system,
            ..Default::default()
        },
        generate: GenerateOptions {
            sampling: sampling.options(SamplingOptions::default())?,
            max_tokens: check_max_tokens(max_tokens)?,
            show_thinking: !hide_thinking,
            ..Default::default()
        },
        hide_thinking,
    })
}

/// Writes to stdout; a closed pipe (`hearth info m.gguf | head`) ends output quietly.
fn emit(text: &str) -> CliResult {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn info(path: &std::path::Path, full: bool, gpu: bool) -> CliResult {
    use std::fmt::Write;
    let f = hearth::gguf::GgufFile::open(path)?;
    let mut o = String::new();
    macro_rules! println {
        ($($t:tt)*) => { writeln!(o, $($t)*)? };
    }
    println!(
        "{}: GGUF v{}, {} bytes, alignment {}",
        path.display(),
        f.version,
        f.file_size(),
        f.alignment
    );
    println!("\n{} metadata entries:", f.metadata().len());
    let max_items = if full { usize::MAX } else { 8 };
    for (k, v) in f.metadata() {
        println!(
            "  {k:<44} {:<7} {}",
            v.type_name(),
            v.display_short(max_items)
        );
    }
    println!(
        "\n{} tensors (data at byte {}):",
        f.tensors().len(),
        f.data_offset
    );
    println!(
        "  {:<36} {:<22} {:<6} {:>12} {:>12}",
        "name", "shape (ggml ne)", "type", "offset", "bytes"
    );
    for t in f.tensors() {
        let shape = format!("{:?}", t.ne);
        println!(
            "  {:<36} {:<22} {:<6} {:>12} {:>12}",
            t.name,
            shape,
            t.ty.name(),
            t.offset,
            t.n_bytes
        );
    }
    match hearth::models::lfm2::Config::from_gguf(&f) {
        Ok(c) => println!("\n{}", describe(&c)),
        Err(e) => println!("\nnot a loadable model: {e}"),
    }
    if gpu {
        match hearth::backend::gpu::GpuBackend::new(Default::default()) {
            Ok(g) => {
                println!("\nGPU: {}", g.caps());
                match hearth::selftest::run(&g, Some(&f)) {
                    Ok(()) => println!("self-test vs CPU reference: passed"),
                    Err(e) => println!("self-test vs CPU reference: FAILED: {e}"),
                }
            }
            Err(e) => println!("\nGPU: {e}"),
        }
    }
    emit(&o)
}

/// The model's shape in one paragraph (`hearth info`).
fn describe(c: &hearth::models::lfm2::Config) -> String {
    let n_attn = (0..c.n_layer).filter(|&il| c.is_attention(il)).count();
    let kv = c.n_head_kv.iter().copied().max().unwrap_or(0);
    let mut s = format!(
        "model: {:?}, {} layers ({} short-conv, {n_attn} attention), hidden {}, {} heads \
         ({kv} KV) of {}, FFN {}, vocabulary {}, context {}",
        c.arch,
        c.n_layer,
        c.n_layer - n_attn,
        c.n_embd,
        c.n_head,
        c.head_dim,
        c.n_ff,
        c.vocab,
        c.context_length
    );
    if let Some(m) = &c.moe {
        s += &format!(
            "\n       MoE: {} experts, {} active per token, expert FFN {}, first {} layers dense",
            m.n_expert, m.n_expert_used, m.n_ff_exp, m.n_dense_lead
        );
    }
    s
}

fn run(
    path: &std::path::Path,
    prompt: &str,
    max_tokens: usize,
    sampling: &SamplingArgs,
    backend: BackendKind,
) -> CliResult {
    use std::io::Write;
    let max_tokens = check_max_tokens(max_tokens)?;
    let sampling = sampling.options(SamplingOptions::greedy())?;
    let engine = Engine::load(path, EngineOptions::with_backend(backend))?;
    eprintln!("backend: {}", engine.backend_description());
    let tok = engine.tokenizer();
    let prompt_ids = tok.encode(prompt, tok.add_bos_default())?;
    let mut sampler = Sampler::new(sampling)?;
    let context = (prompt_ids.len() + max_tokens).min(engine.config().context_length);
    let mut seq = engine.new_sequence(context, 64)?;

    let t0 = Instant::now();
    let mut logits = prefill_with_progress(seq.as_mut(), &prompt_ids)?;
    let prefill = t0.elapsed();
    let mut history = prompt_ids.clone();
    let mut detok = tok.detokenizer();
    let mut out = std::io::stdout().lock();
    write!(out, "{prompt}")?;
    let t1 = Instant::now();
    let mut generated = 0;
    while generated < max_tokens && seq.n_past() < seq.capacity() {
        let token = sampler.sample(&mut logits, &history);
        generated += 1;
        if tok.is_eog(token) {
            break;
        }
        write!(out, "{}", detok.push(token))?;
        out.flush()?;
        history.push(token);
        logits = seq.forward(&[token], Logits::Last)?;
    }
    writeln!(out, "{}", detok.finish())?;
    let decode = t1.elapsed();
    if let Some(peak) = peak_rss() {
        eprintln!(
            "\npeak host memory {} (model file {})",
            mib(peak),
            mib(engine.file().file_size())
        );
    }
    eprintln!(
        "load {:.0} ms | prompt {} tokens, prefill {:.1} tok/s | generated {generated} tokens, decode {:.1} tok/s",
        engine.load_time().as_secs_f64() * 1e3,
        prompt_ids.len(),
        prompt_ids.len() as f64 / prefill.as_secs_f64(),
        generated as f64 / decode.as_secs_f64(),
    );
    Ok(())
}

/// Prefills `prompt`, showing `prefill N/M tokens` on a terminal when the prompt is long
/// (a 48K-token prompt takes minutes on a phone-class CPU).
fn prefill_with_progress(seq: &mut dyn hearth::Sequence, prompt: &[u32]) -> CliResult<Vec<f32>> {
    const CHUNK: usize = 256;
    let show = prompt.len() > 2 * CHUNK && std::io::stderr().is_terminal();
    let mut logits = Vec::new();
    let n_chunks = prompt.len().div_ceil(CHUNK);
    for (i, chunk) in prompt.chunks(CHUNK).enumerate() {
        let mode = if i + 1 == n_chunks {
            Logits::Last
        } else {
            Logits::None
        };
        logits = seq.forward(chunk, mode)?;
        if show {
            eprint!(
                "\rprefill {}/{} tokens",
                (i * CHUNK + chunk.len()),
                prompt.len()
            );
        }
    }
    if show {
        eprintln!();
    }
    Ok(logits)
}

/// Peak resident set size of this process (`VmHWM`), where the OS reports it.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn eval(
    path: &std::path::Path,
    tokens: &[u32],
    backend: BackendKind,
    out: &std::path::Path,
) -> CliResult {
    let engine = Engine::load(path, EngineOptions::with_backend(backend))?;
    eprintln!("backend: {}", engine.backend_description());
    let mut seq = engine.new_eval_sequence(tokens.len(), tokens.len().min(256))?;
    let logits = seq.forward(tokens, Logits::All)?;
    let vocab = engine.config().vocab;
    npy::write_f32(out, &[tokens.len(), vocab], &logits).map_err(|source| hearth::Error::Io {
        path: out.display().to_string(),
        source,
    })?;
    eprintln!(
        "wrote {} x {} logits to {}",
        tokens.len(),
        vocab,
        out.display()
    );
    Ok(())
}
