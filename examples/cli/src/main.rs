//! `hearth`: inspect GGUF models, run generations, evaluate logits.

mod bench;
mod chat;
#[cfg(feature = "hub")]
mod hub_cmd;
mod npy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hearth::models::lfm2::Logits;
use std::time::Instant;

use hearth::sampling::{Sampler, SamplingOptions};
use hearth::session::{GenerateOptions, SessionOptions};
use hearth::{BackendKind, Engine, EngineOptions};

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
        model: PathBuf,
        /// Show every metadata array element instead of the first few.
        #[arg(long)]
        full: bool,
    },
    /// Generate text from a raw prompt, streaming it as it is produced.
    Run {
        model: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        /// Sampling temperature (0 = greedy).
        #[arg(long, default_value_t = 0.0)]
        temp: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value = "auto")]
        backend: BackendKind,
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
        model: PathBuf,
        #[arg(long, default_value_t = 512)]
        max_tokens: usize,
        /// Sampling temperature (0 = greedy).
        #[arg(long, default_value_t = 0.3)]
        temp: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value = "auto")]
        backend: BackendKind,
        #[arg(long, default_value_t = 4096)]
        context: usize,
        /// Do not show the model's thinking.
        #[arg(long)]
        hide_thinking: bool,
    },
    /// Measure prefill and decode speed, side by side with llama.cpp when `--llama-cpp-python` is given.
    Bench {
        model: PathBuf,
        /// Backends to measure (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "cpu")]
        backend: Vec<BackendKind>,
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 64)]
        gen_tokens: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// A Python interpreter with the `llama-cpp-python` package, for the llama.cpp baseline.
        #[arg(long)]
        llama_cpp_python: Option<PathBuf>,
    },
    /// Write the logits of every position of a token sequence as a float32 .npy file.
    Eval {
        model: PathBuf,
        /// Comma-separated token ids.
        #[arg(long, value_delimiter = ',', required = true)]
        tokens: Vec<u32>,
        #[arg(long, default_value = "auto")]
        backend: BackendKind,
        #[arg(long)]
        logits_out: PathBuf,
    },
}

fn main() -> ExitCode {
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
        } => bench::bench(bench::BenchArgs {
            model,
            backends: backend,
            prompt_tokens,
            gen_tokens,
            repeats,
            llama_cpp_python,
        }),
        Command::Chat {
            model,
            max_tokens,
            temp,
            seed,
            system,
            backend,
            context,
            hide_thinking,
        } => chat::chat(chat::ChatArgs {
            model,
            engine: EngineOptions::with_backend(backend),
            session: SessionOptions {
                context_length: context,
                system_prompt: system,
                ..Default::default()
            },
            generate: GenerateOptions {
                sampling: SamplingOptions {
                    temperature: temp,
                    seed,
                    ..SamplingOptions::default()
                },
                max_tokens,
                show_thinking: !hide_thinking,
                ..Default::default()
            },
            hide_thinking,
        }),
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
            temp,
            seed,
            backend,
        } => run(&model, &prompt, max_tokens, temp, seed, backend),
        Command::Eval {
            model,
            tokens,
            backend,
            logits_out,
        } => eval(&model, &tokens, backend, &logits_out),
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
        Ok(c) => println!("\nmodel: {c:?}"),
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

fn run(
    path: &std::path::Path,
    prompt: &str,
    max_tokens: usize,
    temp: f32,
    seed: u64,
    backend: BackendKind,
) -> CliResult {
    use std::io::Write;
    let engine = Engine::load(path, EngineOptions::with_backend(backend))?;
    eprintln!("backend: {}", engine.backend_description());
    let tok = engine.tokenizer();
    let prompt_ids = tok.encode(prompt, tok.add_bos_default())?;
    let sampling = SamplingOptions {
        temperature: temp,
        seed,
        ..SamplingOptions::greedy()
    };
    let mut sampler = Sampler::new(sampling)?;
    let context = (prompt_ids.len() + max_tokens).min(engine.config().context_length);
    let mut seq = engine.new_sequence(context, 64)?;

    let t0 = Instant::now();
    let mut logits = seq.forward(&prompt_ids, Logits::Last)?;
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
            "\npeak host memory {} MiB (model file {} MiB)",
            peak >> 20,
            engine.file().file_size() >> 20
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
    npy::write_f32(out, &[tokens.len(), vocab], &logits)?;
    eprintln!(
        "wrote {} x {} logits to {}",
        tokens.len(),
        vocab,
        out.display()
    );
    Ok(())
}
