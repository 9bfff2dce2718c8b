//! `hearth pull`, `hearth list`, `hearth rm`: models on this machine (feature `hub`).
//!
//! Environment: `HEARTH_HUB_ENDPOINT` (hub base URL, default `https://huggingface.co`),
//! `HEARTH_MODELS_DIR` (models directory), `HF_TOKEN` or `HEARTH_HUB_TOKEN` (for gated repos).
//! Command-line options win over the environment.

use std::cell::Cell;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use hearth::hub::{Catalogue, Hub, HubConfig, ModelRef, Phase, Progress};
use indicatif::{ProgressBar, ProgressStyle};

/// Where models live.
#[derive(Args, Debug)]
pub struct HubArgs {
    /// Models directory [env: HEARTH_MODELS_DIR; default: the platform's data directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Repository (owner/name), a full owner/name/file.gguf reference, or a catalogue model
    /// (e.g. LFM2-1.2B; see `hearth list --catalogue`)
    pub repo: String,
    /// File in the repository (e.g. LFM2-1.2B-Q4_K_M.gguf)
    pub file: Option<String>,
    /// Quantization, when REPO names a catalogue model
    #[arg(long, default_value = "Q4_K_M")]
    pub quant: String,
    /// Expected SHA-256 (hex); default: the catalogue's, else the hub's X-Linked-ETag
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Keep the file even if no SHA-256 is known at all (it is listed as unverified)
    #[arg(long)]
    pub allow_unverified: bool,
    /// Failed attempts in a row before giving up
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Hub base URL; files are fetched from {URL}/{repo}/resolve/main/{file}
    /// [env: HEARTH_HUB_ENDPOINT; default: https://huggingface.co]
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    #[command(flatten)]
    pub hub: HubArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Show the downloadable models of the built-in catalogue instead
    #[arg(long)]
    pub catalogue: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// File name of the model in the models directory (as shown by `hearth list`)
    pub name: String,
    #[command(flatten)]
    pub hub: HubArgs,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn open_hub(
    args: &HubArgs,
    endpoint: Option<&str>,
    edit: impl FnOnce(&mut HubConfig),
) -> hearth::Result<Hub> {
    let mut config = HubConfig::default();
    let endpoint = endpoint.map(str::to_string);
    if let Some(endpoint) = endpoint.or_else(|| env("HEARTH_HUB_ENDPOINT")) {
        config.endpoint = endpoint;
    }
    if let Some(dir) = args
        .dir
        .clone()
        .or_else(|| env("HEARTH_MODELS_DIR").map(PathBuf::from))
    {
        config.models_dir = dir;
    }
    config.token = env("HF_TOKEN").or_else(|| env("HEARTH_HUB_TOKEN"));
    edit(&mut config);
    Hub::new(config)
}

/// `hearth pull`: download (or resume) a model and print its path.
pub fn pull(args: PullArgs) -> hearth::Result<()> {
    let catalogue = Catalogue::builtin();
    let model = match &args.file {
        Some(file) => ModelRef::new(&args.repo, file)?,
        None if args.repo.matches('/').count() >= 2 => ModelRef::parse(&args.repo)?,
        None => {
            let entry = catalogue.find(&args.repo).ok_or_else(|| {
                let ids: Vec<&str> = catalogue.models.iter().map(|m| m.id.as_str()).collect();
                hearth::Error::InvalidArgument(format!(
                    "'{}' is not a catalogue model ({}); give REPO FILE instead",
                    args.repo,
                    ids.join(", ")
                ))
            })?;
            entry.model_ref(&args.quant).ok_or_else(|| {
                let quants: Vec<&str> = entry.files.iter().map(|f| f.quant.as_str()).collect();
                hearth::Error::InvalidArgument(format!(
                    "{} has no {} file (available: {})",
                    entry.name,
                    args.quant,
                    quants.join(", ")
                ))
            })?
        }
    };
    let expected = args
        .sha256
        .clone()
        .or_else(|| catalogue.lookup(&model).and_then(|(_, f)| f.sha256.clone()));
    let hub = open_hub(&args.hub, args.endpoint.as_deref(), |c| {
        c.allow_unverified = args.allow_unverified;
        c.retries = args.retries;
    })?;

    let name = model.local_name().to_string();
    let display = ProgressDisplay::new(&name);
    let cancel = hearth::CancelToken::new();
    let result = hub.download(&model, expected.as_deref(), &|p| display.update(p), &cancel);
    display.finish(result.is_ok());
    let path = result?;
    match hub.get(&name)? {
        Some(m) if m.verified => {
            eprintln!("verified {name} (SHA-256 {})", m.sha256.unwrap_or_default())
        }
        _ => eprintln!("warning: {name} is unverified (no SHA-256 was known)"),
    }
    println!("{}", path.display());
    Ok(())
}

/// `hearth list`: the models in the models directory, or the catalogue.
pub fn list(args: ListArgs) -> hearth::Result<()> {
    if args.catalogue {
        println!(
            "{:<22} {:<7} {:>10} {:>12}  REPO / FILE",
            "MODEL", "QUANT", "SIZE", "RAM@4096"
        );
        for m in &Catalogue::builtin().models {
            for f in &m.files {
                let approx = if f.size_exact { "" } else { "~" };
                println!(
                    "{:<22} {:<7} {:>10} {:>12}  {}/{}",
                    m.name,
                    f.quant,
                    format!("{approx}{}", human(f.size_bytes)),
                    human(f.ram_bytes),
                    m.repo,
                    f.file
                );
            }
        }
        return Ok(());
    }
    let hub = open_hub(&args.hub, None, |_| {})?;
    let models = hub.list()?;
    if models.is_empty() {
        eprintln!("no models in {}", hub.models_dir().display());
        return Ok(());
    }
    println!("{:<40} {:>10} {:<8} VERIFIED", "NAME", "SIZE", "QUANT");
    for m in models {
        println!(
            "{:<40} {:>10} {:<8} {}",
            m.name,
            human(m.size_bytes),
            m.quant.as_deref().unwrap_or("?"),
            if m.verified { "yes" } else { "no" }
        );
    }
    Ok(())
}

/// `hearth rm`: delete a model (and any partial download of it).
pub fn rm(args: RmArgs) -> hearth::Result<()> {
    let hub = open_hub(&args.hub, None, |_| {})?;
    hub.delete(&args.name)?;
    println!("removed {}", args.name);
    Ok(())
}

/// A progress bar on a terminal; plain lines (at most one a second) otherwise.
struct ProgressDisplay {
    name: String,
    bar: Option<ProgressBar>,
    last_line: Cell<Option<Instant>>,
    last: Cell<Option<Progress>>,
}

impl ProgressDisplay {
    fn new(name: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30.cyan/blue}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        ProgressDisplay {
            name: name.to_string(),
            bar,
            last_line: Cell::new(None),
            last: Cell::new(None),
        }
    }

    fn update(&self, p: Progress) {
        self.last.set(Some(p));
        if let Some(bar) = &self.bar {
            match p.total {
                Some(t) => bar.set_length(t),
                None => bar.unset_length(),
            }
            bar.set_message(match p.phase {
                Phase::Rehashing => format!("{} (checking partial file)", self.name),
                Phase::Downloading => self.name.clone(),
            });
            bar.set_position(p.downloaded);
            return;
        }
        let now = Instant::now();
        let due = self
            .last_line
            .get()
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if due {
            self.last_line.set(Some(now));
            eprintln!("{}", self.line(&p));
        }
    }

    fn line(&self, p: &Progress) -> String {
        let what = match p.phase {
            Phase::Rehashing => "checking",
            Phase::Downloading => "pulling",
        };
        let amount = match p.total {
            Some(t) if t > 0 => format!(
                "{} / {} ({:.0}%)",
                human(p.downloaded),
                human(t),
                p.downloaded as f64 * 100.0 / t as f64
            ),
            _ => human(p.downloaded),
        };
        format!(
            "{what} {}: {amount} {}/s",
            self.name,
            human(p.bytes_per_sec as u64)
        )
    }

    fn finish(&self, ok: bool) {
        // The last state is always shown, even if it came within the throttle interval.
        if let Some(bar) = &self.bar {
            if ok {
                bar.finish();
            } else {
                bar.abandon();
            }
        } else if let Some(p) = self.last.get() {
            eprintln!("{}", self.line(&p));
        }
    }
}

/// Binary units: `355104` → `346.8 KiB`.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
